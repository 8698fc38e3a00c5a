/**
 * The persistent store behind `openStore`: its state and versions, `set`,
 * `flush`, `clear`, `close`, `diagnostics`, events, and the page hooks
 * (write at once when hidden, rescue copy on `pagehide`). Restoring is in
 * restore.ts, writing in write.ts, other tabs in tabs.ts.
 *
 * Versions: `version` is this tab's state; `storedVersion` is the head it
 * last saw stored (by itself or another tab). A write is based on
 * `storedVersion` and is refused if another tab moved the head meanwhile.
 */
import type { SessileError } from "../errors.js";
import type { Backend } from "./backends/backend.js";
import { openBackend, type Degradation } from "./backends/chain.js";
import { forget, forgetRescues, readRescues } from "./backends/local.js";
import type { SlotName } from "./codec.js";
import { Debouncer } from "./debounce.js";
import { coded, fail, isCode, summary } from "./errors.js";
import { exclusive, hasLocks } from "./locks.js";
import { storeOptions, toJson, type Options } from "./options.js";
import { documentHidden, listen, now, requestPersistence, writeMarkerCookie } from "./page.js";
import { applyRestore } from "./restore.js";
import { TabChannel } from "./tabs.js";
import { utf8Length } from "../utf8.js";
import { applyMergePatch, diff, isObject, type Json } from "../link/core/merge-patch.js";
import type { Store, StoreDiagnostics, StoreEvent, TypedStoreOptions } from "./types.js";
import { armTimer, reportWriteError, waitInFlight, writeNow, writeRescue } from "./write.js";

/** The key of the eviction marker of `ns` in localStorage. */
export const markerKey = (ns: string) => `${ns}:marker`;

/** A store's state; the functions of restore.ts, write.ts and tabs.ts work on it. */
export class Core {
  state: unknown;
  json: string;
  version = 0;
  modifiedAt = now();
  /** The stored head this tab knows of: the base of its next write. */
  storedVersion = 0;
  /** The state at that head as this tab knows it (JSON): what its unsaved changes are made on. */
  storedJson: string;
  /** Where the newest stored slot copy is, and its generation. */
  lastGood: { slot: SlotName; generation: number } | undefined;
  lastWrite: StoreDiagnostics["lastWrite"] = null;
  lastError: SessileError | undefined;
  readonly debouncer: Debouncer;
  /** Settles when the write under way ends. */
  inFlight: Promise<void> | undefined;
  timerArmed = false;
  /** Ends the debounce or backoff wait of the timer (set while it waits). */
  wake: (() => void) | undefined;
  /** close() was called: set() is refused from then on. */
  closing = false;
  closed = false;
  /** Set when writing would destroy data this page cannot read (a newer schema): every write is refused with it. */
  blocked: SessileError | undefined;
  /** The key of a rescue copy restored at open, removed once written back. */
  restoredRescue: string | undefined;
  durable: boolean | null = null;
  hooks: (() => void)[] = [];
  tabs: TabChannel | undefined;
  /** This tab's id (rescue copy key, tab messages). */
  readonly tabId = Math.floor(Math.random() * Number.MAX_SAFE_INTEGER).toString(16);

  constructor(
    readonly options: Options,
    public backend: Backend,
    readonly degraded: Degradation[],
    readonly initialJson: string,
  ) {
    this.state = options.initial;
    this.json = initialJson;
    this.storedJson = initialJson;
    this.debouncer = new Debouncer(options.debounceMs);
  }

  /** Calls the page's `onEvent`; a throwing handler is logged, never breaks the store. */
  emit(event: StoreEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (e) {
      console.error("sessile: onEvent handler threw", e);
    }
  }

  /** Reports that a state lost to another one (`winner` says which). */
  conflict(local: unknown, remote: unknown, winner: "remote" | "local", localVersion: number, remoteVersion: number) {
    this.emit({ type: "conflict", local, remote, winner, localVersion, remoteVersion });
  }

  /** Takes a state stored elsewhere (another tab, or found on a refused write) as current and stored. */
  adopt(state: unknown, json: string, version: number, slot: SlotName, generation: number): void {
    this.state = state;
    this.json = json;
    this.version = version;
    this.storedVersion = Math.max(this.storedVersion, version);
    this.storedJson = json;
    this.lastGood = { slot, generation };
    this.debouncer.taken();
  }

  /**
   * With `rebaseUnsaved` (a synced session), after `adopt`: this tab's
   * changes that were not stored yet (`local` against `base`, the stored
   * state they were made on) go back on top of the taken state, as a new
   * unsaved version. They cannot be in the copy taken: nothing stored had
   * them. Returns whether anything was put back; a result over `maxBytes`
   * is not taken (the copy stays, and the page is told by the `conflict`).
   */
  putBack(local: unknown, base: string): boolean {
    if (!this.options.rebaseUnsaved) return false;
    let ours: Json;
    try {
      ours = diff(JSON.parse(base) as Json, local as Json);
    } catch {
      return false;
    }
    if (isObject(ours) && Object.keys(ours).length === 0) return false;
    const merged = applyMergePatch(this.state, ours);
    const json = toJson(merged);
    if (json === this.json || utf8Length(json) > this.options.codec.maxBytes) return false;
    this.version = Math.max(this.version, this.storedVersion) + 1;
    this.state = merged;
    this.json = json;
    this.modifiedAt = now();
    this.debouncer.changed(this.modifiedAt);
    armTimer(this);
    return true;
  }

  /** The state after a clear (here or in another tab). */
  resetToInitial(tombstone: number): void {
    this.state = this.options.initial;
    this.json = this.initialJson;
    this.version = tombstone;
    this.storedVersion = tombstone;
    this.storedJson = this.initialJson;
    this.lastGood = undefined;
    this.lastWrite = null;
    this.debouncer.taken();
  }

  /** Stops writing: what is stored is not for this page (a newer schema) or cannot be migrated. */
  block(e: SessileError): void {
    this.blocked = e;
    this.emit({ type: "error_occurred", error: summary(e), during: "sync" });
  }

  /** The backend, reopened first if the browser closed the connection. */
  async liveBackend(): Promise<Backend> {
    const current = this.backend;
    if (!current.closed) return current;
    const { backend } = await openBackend(this.options.name, current.kind);
    current.release();
    this.backend = backend;
    return backend;
  }

  refuseIfClosed(): void {
    if (this.closed) throw fail("STORE_CLOSED", "the store is closed");
  }

  /** Replaces the state (already JSON-checked) as a new version and schedules its write. */
  set(state: unknown): number {
    const json = toJson(state);
    const size = utf8Length(json);
    const limit = this.options.codec.maxBytes;
    if (size > limit) throw fail("STATE_TOO_LARGE", `state is ${size} bytes, above the limit of ${limit} bytes`);
    this.refuseIfClosed();
    // A change after close()'s last flush would be neither written nor rescued.
    if (this.closing) throw fail("STORE_CLOSED", "the store is closing");
    if (this.blocked) throw this.blocked;
    this.version = Math.max(this.version, this.storedVersion) + 1;
    this.state = state;
    this.json = json;
    this.modifiedAt = now();
    this.debouncer.changed(this.modifiedAt);
    armTimer(this);
    return this.version;
  }

  /**
   * Writes everything unsaved and waits until it is stored. Rejects with
   * STALE_WRITE when another tab stored a newer state first (this tab took
   * it); when the stored state was gone or its bytes did not decode this
   * tab's state is written over it, within a few attempts. A stored state
   * that could not be read rejects with that (retryable) error.
   */
  async flush(): Promise<void> {
    this.refuseIfClosed();
    let staleRetries = 0;
    for (;;) {
      try {
        await writeNow(this);
      } catch (e) {
        if (!(isCode(e, "STALE_WRITE") && staleRetries < 4 && this.debouncer.unsaved)) throw e;
        staleRetries++;
      }
      if (!this.debouncer.unsaved && !this.inFlight) return;
    }
  }

  /**
   * Ends the session's storage: removes both slots under the lock, leaving
   * a tombstone head so a tab that has not heard of it cannot write the old
   * state back; removes the markers and every tab's rescue copy; resets to
   * `initial`; tells the tabs.
   */
  async clear(): Promise<void> {
    this.refuseIfClosed();
    await waitInFlight(this);
    const tombstone = Math.max(this.version, this.storedVersion) + 1;
    const backend = await this.liveBackend();
    const ns = this.options.name;
    await exclusive(`sessile:${ns}`, () => backend.clear(tombstone));
    // Every tab's rescue copy: one left before the clear must not bring the session back.
    forgetRescues(ns);
    forget(markerKey(ns));
    writeMarkerCookie(ns, undefined);
    this.resetToInitial(tombstone);
    this.tabs?.announceCleared(tombstone);
  }

  /**
   * Refuses further changes, flushes, then releases listeners, the tab
   * channel, the connection and the timer; a failed flush leaves a rescue
   * copy.
   */
  async close(): Promise<void> {
    this.refuseIfClosed();
    if (this.closing) throw fail("STORE_CLOSED", "the store is closing");
    this.closing = true;
    let failed: unknown;
    try {
      await this.flush();
    } catch (e) {
      failed = e;
      writeRescue(this);
    }
    this.closed = true;
    this.wake?.();
    for (const stop of this.hooks.splice(0)) stop();
    this.tabs?.close();
    this.tabs = undefined;
    this.backend.release();
    if (failed !== undefined) throw failed;
  }

  diagnostics(): StoreDiagnostics {
    return {
      name: this.options.name,
      backend: this.backend.kind,
      durable: this.durable,
      webLocks: hasLocks(),
      degraded: this.degraded.map((d) => ({ backend: d.kind, error: summary(d.error) })),
      version: this.version,
      storedVersion: this.storedVersion,
      unsaved: this.debouncer.unsaved,
      writing: this.inFlight !== undefined,
      blocked: this.blocked ? summary(this.blocked) : null,
      rawBytes: utf8Length(this.json),
      lastWrite: this.lastWrite && { ...this.lastWrite },
      lastError: this.lastError ? summary(this.lastError) : null,
    };
  }

  /** Write at once when the page is hidden; rescue copy and a last write on `pagehide`; the tab channel. */
  installHooks(): void {
    if (typeof window === "undefined") return;
    if (typeof document !== "undefined") {
      this.hooks.push(
        listen(document, "visibilitychange", () => {
          if (documentHidden()) writeNow(this).catch((e: unknown) => reportWriteError(this, coded(e)));
        }),
      );
    }
    this.hooks.push(
      listen(window, "pagehide", () => {
        writeRescue(this);
        writeNow(this).catch(() => {});
      }),
    );
    this.tabs = TabChannel.open(this);
    if (this.debouncer.unsaved) armTimer(this);
  }
}

/**
 * Opens (restoring what is stored) the store `options.name`. Rejects with a
 * SessileError: INVALID_OPTIONS, STORAGE_UNAVAILABLE (only when a specific
 * backend was asked for), SCHEMA_TOO_NEW or MIGRATION_FAILED (the stored
 * copy is left untouched).
 */
export async function openStore<T>(options: TypedStoreOptions<T>): Promise<Store<T>> {
  const opts = storeOptions(options);
  const initialJson = toJson(opts.initial);
  const { backend, degraded } = await openBackend(opts.name, opts.storage);
  const core = new Core(opts, backend, degraded, initialJson);
  try {
    const read = await backend.readAll();
    const rescues = backend.kind === "memory" ? [] : readRescues(opts.name);
    for (const d of degraded) {
      core.emit({ type: "storage_degraded", backend: d.kind, using: backend.kind, error: summary(d.error) });
    }
    applyRestore(core, read, rescues);
  } catch (e) {
    backend.release();
    throw coded(e);
  }
  core.installHooks();
  // Not awaited: Firefox may ask the user and never answer.
  void requestPersistence(opts.persist && backend.kind !== "memory").then((durable) => (core.durable = durable));
  return {
    get state() {
      return core.state as T;
    },
    get version() {
      return core.version;
    },
    set: (state: T) => core.set(state),
    flush: () => core.flush(),
    clear: () => core.clear(),
    close: () => core.close(),
    diagnostics: () => core.diagnostics(),
  };
}
