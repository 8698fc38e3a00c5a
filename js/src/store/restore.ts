/**
 * What a store takes on open: the newest valid slot (the codec's choice,
 * src/core/slots.rs), or a rescue copy that continues it (written by a tab
 * closed with unsaved changes), migrated to the page's schema; and what it
 * tells the page: where the state came from, which copies were skipped and
 * why, rescue copies that lost to a newer stored state, eviction.
 */
import { SessileError } from "../errors.js";
import type { SlotsRead } from "./backends/backend.js";
import { forget, readText, type RescueCopy } from "./backends/local.js";
import { decodeSnapshot, restoreSlots, type DecodedSnapshot, type Skipped, type SlotName } from "./codec.js";
import { coded, summary } from "./errors.js";
import { migrate } from "./migrate.js";
import { fromJson } from "./options.js";
import { now, readMarkerCookie } from "./page.js";
import { markerKey, type Core } from "./store.js";

/** The newest valid slot copy, if any, and every slot skipped. */
export interface Chosen {
  snapshot?: DecodedSnapshot;
  slot?: SlotName;
  skipped: Skipped[];
}

const ORDER: Record<SlotName, number> = { a: 0, b: 1, rescue: 2 };

/**
 * The newest valid copy of slots a and b (or none), and every slot skipped
 * (a read that failed counts as a skipped slot). Throws nothing.
 */
export function chooseSlot(core: Core, read: SlotsRead): Chosen {
  const skipped: Skipped[] = [];
  const bytes = (slot: SlotName, b: SlotsRead["a"]) => {
    if (!(b instanceof SessileError)) return b;
    skipped.push({ slot, error: summary(b) });
    return undefined;
  };
  const a = bytes("a", read.a);
  const b = bytes("b", read.b);
  let result;
  try {
    result = restoreSlots(a, b, { maxBytes: core.options.codec.maxBytes });
  } catch (e) {
    // The codec reports bad bytes in `skipped`; a throw is the module itself failing.
    skipped.push({ slot: "a", error: summary(coded(e)) });
    return { skipped };
  }
  if (result.outcome !== "fresh") skipped.push(...result.skipped);
  skipped.sort((x, y) => ORDER[x.slot] - ORDER[y.slot]);
  return result.outcome === "restored" ? { snapshot: result.snapshot, slot: result.from, skipped } : { skipped };
}

interface Rescues {
  /** The newest copy that continues the stored state, with its key. */
  chosen: { snap: DecodedSnapshot; key: string } | undefined;
  /** Valid copies that lost: based on an older head, or older than `chosen`. */
  stale: DecodedSnapshot[];
  /** Copies that could not be decoded. */
  broken: Skipped[];
}

/**
 * Keeps the newest rescue copy based on `head` (any one when nothing was
 * ever stored: head 0, as after an eviction); removes the others. With a
 * tombstone head (a clear) and no slot, only a copy based on the tombstone
 * continues the session.
 */
function sortRescues(core: Core, copies: RescueCopy[], head: number, nothingStored: boolean): Rescues {
  const out: Rescues = { chosen: undefined, stale: [], broken: [] };
  for (const copy of copies) {
    let snap: DecodedSnapshot;
    try {
      if (copy.bytes instanceof SessileError) throw copy.bytes;
      snap = decodeSnapshot(copy.bytes, { maxBytes: core.options.codec.maxBytes });
    } catch (e) {
      out.broken.push({ slot: "rescue", error: summary(coded(e)) });
      forget(copy.key);
      continue;
    }
    const continues = (nothingStored && head === 0) || (copy.base === head && snap.stateVersion > head);
    const newer = !out.chosen || snap.stateVersion > out.chosen.snap.stateVersion;
    if (continues && newer) {
      if (out.chosen) {
        out.stale.push(out.chosen.snap);
        forget(out.chosen.key);
      }
      out.chosen = { snap, key: copy.key };
    } else {
      out.stale.push(snap);
      forget(copy.key);
    }
  }
  return out;
}

/**
 * Takes over what is stored and tells the page how it went. Throws (and
 * writes nothing) SCHEMA_TOO_NEW or MIGRATION_FAILED.
 */
export function applyRestore(core: Core, read: SlotsRead, copies: RescueCopy[]): void {
  const head = read.head;
  const found = chooseSlot(core, read);
  const { snapshot: stored, skipped } = found;
  const unreadable = !stored && skipped.length > 0;
  const rescues = sortRescues(core, copies, head, !stored);
  skipped.push(...rescues.broken);
  const snapshot = rescues.chosen?.snap ?? stored;
  const from: SlotName = rescues.chosen ? "rescue" : (found.slot ?? "a");
  if (!snapshot) {
    startWithoutState(core, head, unreadable, skipped);
    reportStale(core, rescues.stale);
    return;
  }
  const { state, json, migrated } = migrate(
    snapshot.json,
    snapshot.schemaVersion,
    core.options.schemaVersion,
    core.options.migrate,
  );
  core.state = state;
  core.json = json;
  core.modifiedAt = snapshot.modifiedAt;
  core.lastGood = stored && found.slot ? { slot: found.slot, generation: stored.generation } : undefined;
  // The copy restored from a slot is the last write known, by an earlier page.
  core.lastWrite =
    stored && found.slot && from !== "rescue"
      ? {
          slot: found.slot,
          generation: stored.generation,
          checksum: stored.checksum,
          storedBytes: stored.storedBytes,
          compressed: stored.compressed,
          at: stored.modifiedAt,
        }
      : null;
  core.storedVersion = head;
  // What later unsaved changes are made on: the stored copy (a rescue copy continues it).
  core.storedJson = from === "rescue" ? (stored?.json ?? core.initialJson) : json;
  if (from === "rescue") {
    // Continues the stored head: written back as it is.
    core.version = Math.max(snapshot.stateVersion, head + 1);
    core.restoredRescue = rescues.chosen?.key;
    core.debouncer.changed(now());
  } else {
    // Never below the head: a newer copy may have been written and then
    // corrupted, and the next write must still win.
    core.version = Math.max(snapshot.stateVersion, head);
  }
  if (migrated) {
    core.version += 1;
    core.debouncer.changed(now());
  }
  core.emit({
    type: "state_restored",
    outcome: "restored",
    from,
    version: core.version,
    schemaVersion: snapshot.schemaVersion,
    migrated,
    skipped,
  });
  reportStale(core, rescues.stale);
}

/** Nothing valid is stored: a fresh session, an evicted one, or an unreadable one. */
function startWithoutState(core: Core, head: number, unreadable: boolean, skipped: Skipped[]): void {
  core.version = head;
  core.storedVersion = head;
  if (unreadable) {
    core.emit({ type: "state_restored", outcome: "unreadable", skipped });
    const first = skipped[0];
    if (first) core.emit({ type: "error_occurred", error: first.error, during: "restore" });
    return;
  }
  const ns = core.options.name;
  let marker: string | null | undefined;
  try {
    marker = readText(markerKey(ns));
  } catch {
    marker = undefined;
  }
  marker ??= readMarkerCookie(ns);
  if (marker != null && core.backend.kind !== "memory") {
    core.emit({
      type: "state_restored",
      outcome: "evicted",
      lastVersion: marker,
      reason: "storage that held this session is empty: the browser evicted it or site data was cleared",
    });
  } else {
    core.emit({ type: "state_restored", outcome: "fresh" });
  }
}

/** A rescue copy that lost to a newer stored state is a conflict. */
function reportStale(core: Core, stale: DecodedSnapshot[]): void {
  for (const snap of stale) {
    let local: unknown;
    try {
      local = fromJson(snap.json);
    } catch {
      continue;
    }
    core.conflict(local, core.state, "remote", snap.stateVersion, core.version);
  }
}
