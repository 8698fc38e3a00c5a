/**
 * How a store writes: the debounce timer (with backoff after a failure, up
 * to 30 s, never dropping a change), one write at a time under the
 * namespace's lock, compare-and-set on the head it is based on, what
 * happens when another tab got there first, and the synchronous rescue copy
 * on `pagehide`.
 */
import { SessileError } from "../errors.js";
import type { SlotsRead } from "./backends/backend.js";
import { forget, rescueKey, writeRescue as storeRescue, writeText } from "./backends/local.js";
import { encodeSnapshot, nextWrite, readHeader } from "./codec.js";
import { coded, isCode, staleWrite, summary } from "./errors.js";
import { exclusive } from "./locks.js";
import { migrate } from "./migrate.js";
import { now, writeMarkerCookie } from "./page.js";
import { chooseSlot } from "./restore.js";
import { markerKey, type Core } from "./store.js";

/** Longest wait between two attempts after failed writes, in ms. */
const MAX_BACKOFF_MS = 30_000;

/** Sleeps `ms`, or until close() ends the wait (`core.wake`). */
async function pause(core: Core, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.min(ms, 2 ** 31 - 1));
    core.wake = resolve;
  });
  clearTimeout(timer);
  core.wake = undefined;
}

/** Runs the debounce timer while anything is unsaved; reports the first failure of a run. */
export function armTimer(core: Core): void {
  if (core.timerArmed || core.closed) return;
  core.timerArmed = true;
  void (async () => {
    let failures = 0;
    for (;;) {
      const at = core.debouncer.dueAt();
      if (at === undefined || core.closed) break;
      const t = now();
      if (t < at) {
        await pause(core, at - t);
        continue;
      }
      try {
        await writeNow(core);
        failures = 0;
      } catch (e) {
        if (isCode(e, "STALE_WRITE")) {
          failures = 0;
          continue;
        }
        if (failures === 0) reportWriteError(core, coded(e));
        failures++;
        const delay = Math.max(core.options.debounceMs, 100);
        await pause(core, Math.min(delay * 2 ** Math.min(failures, 8), MAX_BACKOFF_MS));
      }
    }
    core.timerArmed = false;
    // A change that came in as the loop ended gets a timer of its own.
    if (core.debouncer.unsaved) armTimer(core);
  })();
}

/**
 * Marks the state unsaved again after a write that did not store it, and
 * makes sure a timer will retry it (the one that started the write may have
 * ended while it ran).
 */
function unsaved(core: Core): void {
  core.debouncer.changed(now());
  armTimer(core);
}

/** The current state as the snapshot of the next write, and where it goes. */
function encodeCurrent(core: Core) {
  const plan = nextWrite(core.lastGood);
  const meta = {
    generation: plan.generation,
    schemaVersion: core.options.schemaVersion,
    stateVersion: core.version,
    modifiedAt: core.modifiedAt,
  };
  try {
    return { plan, bytes: encodeSnapshot(core.json, meta, core.options.codec) };
  } catch (e) {
    throw coded(e, "INVALID_STATE");
  }
}

export function reportWriteError(core: Core, e: SessileError): void {
  core.emit({ type: "error_occurred", error: summary(e), during: "write" });
}

/** Waits until no write is under way. */
export async function waitInFlight(core: Core): Promise<void> {
  while (core.inFlight) await core.inFlight;
}

/** One write under the lock: undefined when stored, the stored head when refused, or the error. */
async function attempt(
  core: Core,
  slot: "a" | "b",
  bytes: Uint8Array,
  base: number,
  version: number,
): Promise<number | SessileError | undefined> {
  try {
    const backend = await core.liveBackend();
    return await exclusive(`sessile:${core.options.name}`, () => backend.writeIfHead(slot, bytes, base, version));
  } catch (e) {
    return coded(e);
  }
}

/** Writes the latest state now if it is unsaved (after any write under way); resolves when stored. */
export async function writeNow(core: Core): Promise<void> {
  await waitInFlight(core);
  if (!core.debouncer.unsaved) return;
  if (core.blocked) throw core.blocked;
  const { plan, bytes } = encodeCurrent(core);
  core.debouncer.taken();
  const base = core.storedVersion;
  const version = core.version;
  const json = core.json;
  let done = () => {};
  core.inFlight = new Promise<void>((resolve) => (done = resolve));
  let result = await attempt(core, plan.slot, bytes, base, version);
  if (isCode(result, "STORAGE_UNAVAILABLE") && core.backend.closed) {
    // The browser closed the connection: reopen and try once more.
    result = await attempt(core, plan.slot, bytes, base, version);
  }
  try {
    if (result === undefined) {
      afterWrite(core, bytes, plan, version, json);
    } else if (typeof result === "number") {
      // Still in flight until the stored state is taken: a write planned
      // meanwhile would start from this tab's stale slot and head.
      const unread = await onStale(core, result, version);
      if (unread) {
        // The stored state could not be read: still unsaved, retried like a failed write.
        unsaved(core);
        core.lastError = unread;
        throw unread;
      }
      throw staleWrite(result, version);
    } else {
      // Still unsaved: tried again after a backoff, on the next change, flush or page hide.
      unsaved(core);
      core.lastError = result;
      throw result;
    }
  } finally {
    core.inFlight = undefined;
    done();
  }
}

function afterWrite(
  core: Core,
  bytes: Uint8Array,
  plan: { slot: "a" | "b"; generation: number },
  version: number,
  json: string,
): void {
  const ns = core.options.name;
  const header = readHeader(bytes);
  core.lastGood = plan;
  core.storedVersion = Math.max(core.storedVersion, version);
  core.storedJson = json;
  core.lastError = undefined;
  core.lastWrite = {
    slot: plan.slot,
    generation: plan.generation,
    checksum: header.checksum,
    storedBytes: bytes.length,
    compressed: header.compressed,
    at: now(),
  };
  // This tab's rescue copy, and one restored at open, are now older than
  // what is stored. Other tabs' rescue copies are theirs.
  forget(rescueKey(ns, core.tabId));
  if (core.restoredRescue) forget(core.restoredRescue);
  core.restoredRescue = undefined;
  if (core.backend.kind !== "memory") {
    try {
      writeText(markerKey(ns), String(version));
    } catch {
      // The cookie below still marks it.
    }
    writeMarkerCookie(ns, String(version));
  }
  core.tabs?.announce(version, plan.slot, plan.generation, json);
}

/**
 * Another tab moved the head to `stored` while this tab's state was
 * unsaved: take the stored state (the newest stored state wins) and report
 * this tab's as a conflict. If another tab cleared the namespace (a
 * tombstone head, no slot), reset to `initial`. If the stored bytes were
 * read but none decodes, this tab's state is kept and written over them. If
 * reading failed, nothing is decided: resolves the (retryable) error, and
 * the head this tab knows stays where it was.
 */
async function onStale(core: Core, stored: number, attempted: number): Promise<SessileError | undefined> {
  const local = core.state;
  const base = core.storedJson;
  let read: SlotsRead;
  try {
    read = await (await core.liveBackend()).readAll();
  } catch (e) {
    return coded(e);
  }
  const found = chooseSlot(core, read);
  const snapshot = found.snapshot;
  const newest = snapshot && found.slot && snapshot.stateVersion >= stored;
  if (!newest) {
    // A slot whose read failed (not bytes that failed to decode) may hold the newer copy.
    const failed = [read.a, read.b].find((slot) => slot instanceof SessileError && slot.retryable);
    if (failed instanceof SessileError) return failed;
  }
  if (read.head > 0 && read.a === undefined && read.b === undefined) {
    // A tombstone head and no slot: another tab cleared the namespace. The
    // session ended; this tab's state is not written back.
    core.resetToInitial(read.head);
    core.conflict(local, core.state, "remote", attempted, read.head);
    core.emit({ type: "session_updated", origin: "tab", version: read.head, cleared: true });
    return;
  }
  if (!snapshot || !found.slot || !newest) {
    // Written over: the next write is based on the head that refused this one.
    core.storedVersion = stored;
    unsaved(core);
    core.conflict(local, null, "local", attempted, stored);
    return;
  }
  try {
    const remote = migrate(snapshot.json, snapshot.schemaVersion, core.options.schemaVersion, core.options.migrate);
    core.adopt(remote.state, remote.json, snapshot.stateVersion, found.slot, snapshot.generation);
    core.putBack(local, base);
    core.conflict(local, remote.state, "remote", attempted, snapshot.stateVersion);
  } catch (e) {
    core.block(coded(e));
  }
  return undefined;
}

/**
 * On unload with a write pending or under way, stores this tab's rescue
 * copy in localStorage synchronously (an asynchronous write may not
 * finish), with the head it is based on.
 */
export function writeRescue(core: Core): void {
  if (!core.debouncer.unsaved && !core.inFlight) return;
  if (core.backend.kind === "memory" || core.blocked) return;
  try {
    storeRescue(core.options.name, core.tabId, core.storedVersion, encodeCurrent(core).bytes);
  } catch {
    // Nothing more can be done while the page goes away.
  }
}
