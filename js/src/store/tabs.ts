/**
 * Tabs of one namespace keep each other current through the
 * BroadcastChannel `sessile:<ns>`: after each stored write a tab announces
 * version, slot, generation, schema and state (or that it cleared the
 * namespace). A tab that hears of a head newer than the one it knows takes
 * that state; its own unsaved changes lose and are reported as a
 * `conflict` (in a synced session they go back on top of it:
 * `Core.putBack`). The compare-and-set on write keeps a tab that has not heard
 * yet from overwriting in any case.
 */
import { isCode } from "./errors.js";
import { migrate } from "./migrate.js";
import type { Core } from "./store.js";

interface Message {
  tab?: unknown;
  version?: unknown;
  cleared?: unknown;
  json?: unknown;
  schema?: unknown;
  slot?: unknown;
  generation?: unknown;
}

export class TabChannel {
  private constructor(
    private readonly channel: BroadcastChannel,
    private readonly core: Core,
  ) {
    channel.onmessage = (event: MessageEvent) => this.receive(event.data as Message | null);
  }

  /** Joins the namespace's channel; undefined where BroadcastChannel is missing. */
  static open(core: Core): TabChannel | undefined {
    if (typeof BroadcastChannel === "undefined") return undefined;
    try {
      return new TabChannel(new BroadcastChannel(`sessile:${core.options.name}`), core);
    } catch {
      return undefined;
    }
  }

  private post(message: Message): void {
    try {
      this.channel.postMessage({ tab: this.core.tabId, ...message });
    } catch {
      // A closed channel: the other tabs read the stored state on their next write.
    }
  }

  /** Tells the other tabs that `version` is stored. */
  announce(version: number, slot: string, generation: number, json: string): void {
    this.post({ version, slot, generation, schema: this.core.options.schemaVersion, json });
  }

  /** Tells the other tabs that the namespace was cleared (head `tombstone`). */
  announceCleared(tombstone: number): void {
    this.post({ version: tombstone, cleared: true });
  }

  close(): void {
    this.channel.onmessage = null;
    this.channel.close();
  }

  private receive(data: Message | null): void {
    const core = this.core;
    if (!data || typeof data !== "object" || data.tab === core.tabId) return;
    const version = data.version;
    // Only a head newer than the one this tab knows is news; this tab's own
    // counter does not matter (it counts its unsaved changes too). A write
    // of this tab under way is refused by the compare-and-set and takes the
    // newer state itself; a clear is applied once that write ended (unless
    // the write found it), so a write that got in first cannot hide it.
    if (typeof version !== "number" || version <= core.storedVersion) return;
    if (core.inFlight) {
      if (data.cleared === true) void core.inFlight.then(() => core.closed || this.receive(data));
      return;
    }
    if (data.cleared === true) {
      core.resetToInitial(version);
      core.emit({ type: "session_updated", origin: "tab", version, cleared: true });
      return;
    }
    if (typeof data.json !== "string") return;
    const schema = typeof data.schema === "number" ? data.schema : 0;
    let remote;
    try {
      remote = migrate(data.json, schema, core.options.schemaVersion, core.options.migrate);
    } catch (e) {
      if (isCode(e, "SCHEMA_TOO_NEW") || isCode(e, "MIGRATION_FAILED")) core.block(e);
      return;
    }
    const unsaved = core.debouncer.unsaved;
    const local = core.state;
    const base = core.storedJson;
    const localVersion = core.version;
    const generation = typeof data.generation === "number" ? data.generation & 0xffff : 0;
    core.adopt(remote.state, remote.json, version, data.slot === "b" ? "b" : "a", generation);
    if (unsaved) {
      core.putBack(local, base);
      core.conflict(local, remote.state, "remote", localVersion, version);
    }
    core.emit({ type: "session_updated", origin: "tab", version });
  }
}
