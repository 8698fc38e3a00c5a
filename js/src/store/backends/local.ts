/**
 * localStorage as a place for snapshot bytes: base64 text under
 * `sessile:<key>`. Holds the slots of the localStorage backend
 * (`sessile:<ns>:a` / `:b`, the compare-and-set head `sessile:<ns>:head` as
 * a decimal version), the rescue copy written synchronously on page hide
 * (`sessile:<ns>:rescue:<tab>`, text `<base>:<base64>`), the eviction marker
 * and `saveSnapshot`'s values. A missing or disabled store is
 * STORAGE_UNAVAILABLE, a full one QUOTA_EXCEEDED; the previous value stays
 * on failure.
 */
import type { SessileError } from "../../errors.js";
import { fromBase64, toBase64 } from "../base64.js";
import { coded, fail, messageOf, unavailable } from "../errors.js";
import { storageError, type Backend, type SlotBytes, type SlotsRead } from "./backend.js";

/** The prefix of every key sessile writes, so its entries are easy to find. */
export const KEY_PREFIX = "sessile:";

function storage(): Storage {
  if (typeof window === "undefined") throw unavailable("no window (server-side rendering or a worker)");
  let ls: Storage | null;
  try {
    ls = window.localStorage;
  } catch (e) {
    throw unavailable(`localStorage is blocked: ${messageOf(e)}`);
  }
  if (!ls) throw unavailable("localStorage is not available in this browser");
  return ls;
}

/** Writes `text` under `sessile:<key>` (localStorage counts two bytes a character). */
export function writeText(key: string, text: string): void {
  const ls = storage();
  try {
    ls.setItem(KEY_PREFIX + key, text);
  } catch (e) {
    throw storageError(e, text.length * 2);
  }
}

/** The text under `sessile:<key>`, null when there is none. */
export function readText(key: string): string | null {
  const ls = storage();
  try {
    return ls.getItem(KEY_PREFIX + key);
  } catch (e) {
    throw unavailable(messageOf(e));
  }
}

export function remove(key: string): void {
  const ls = storage();
  try {
    ls.removeItem(KEY_PREFIX + key);
  } catch (e) {
    throw unavailable(messageOf(e));
  }
}

/** Removes `sessile:<key>`, ignoring a storage that is gone. */
export function forget(key: string): void {
  try {
    remove(key);
  } catch {
    // Nothing to remove from a storage that cannot be reached.
  }
}

/** Writes `bytes` (as base64) under `sessile:<key>`. */
export const write = (key: string, bytes: Uint8Array) => writeText(key, toBase64(bytes));

/** The bytes under `sessile:<key>`, undefined when none; text that is not base64 is CORRUPT_PAYLOAD. */
export function read(key: string): Uint8Array | undefined {
  const text = readText(key);
  return text === null ? undefined : fromBase64(text);
}

/** A slot's read, a failure kept as the slot's error. */
function readSlot(key: string): SlotBytes {
  try {
    return read(key);
  } catch (e) {
    return coded(e);
  }
}

/** The localStorage backend; its read-compare-write runs in one task. */
export function openLocal(ns: string): Backend {
  // Disabled storage, a zero quota and old Safari private mode refuse a write.
  writeText("probe", "1");
  remove("probe");
  const headKey = `${ns}:head`;
  const head = () => Number.parseInt(readText(headKey) ?? "", 10) || 0;
  return {
    kind: "localstorage",
    closed: false,
    async readAll(): Promise<SlotsRead> {
      const h = head();
      return { a: readSlot(`${ns}:a`), b: readSlot(`${ns}:b`), head: h };
    },
    async writeIfHead(slot, bytes, base, version) {
      const stored = head();
      if (stored !== base) return stored;
      write(`${ns}:${slot}`, bytes);
      writeText(headKey, String(version));
      return undefined;
    },
    async clear(tombstone) {
      remove(`${ns}:a`);
      remove(`${ns}:b`);
      writeText(headKey, String(tombstone));
    },
    release() {},
  };
}

/** A rescue copy found in localStorage, written by a tab on `pagehide`. */
export interface RescueCopy {
  /** Its key, without the `sessile:` prefix. */
  key: string;
  /** The stored head version the rescued state was based on. */
  base: number;
  /** The snapshot bytes, or why they could not be read. */
  bytes: Uint8Array | SessileError;
}

/** The key of tab `tab`'s rescue copy of `ns`. */
export const rescueKey = (ns: string, tab: string) => `${ns}:rescue:${tab}`;

/** Writes a rescue copy synchronously: `<base>:<base64 snapshot>`. */
export function writeRescue(ns: string, tab: string, base: number, bytes: Uint8Array): void {
  writeText(rescueKey(ns, tab), `${base}:${toBase64(bytes)}`);
}

/** localStorage and the full keys of every rescue copy of `ns`; none when storage cannot be reached. */
function rescueKeys(ns: string): { ls?: Storage; keys: string[] } {
  let ls: Storage;
  try {
    ls = storage();
  } catch {
    return { keys: [] };
  }
  const prefix = `${KEY_PREFIX}${ns}:rescue:`;
  const keys: string[] = [];
  for (let i = 0; i < ls.length; i++) {
    const k = ls.key(i);
    if (k?.startsWith(prefix)) keys.push(k);
  }
  return { ls, keys };
}

/** Removes the rescue copy of every tab of `ns`. */
export function forgetRescues(ns: string): void {
  for (const full of rescueKeys(ns).keys) forget(full.slice(KEY_PREFIX.length));
}

/** Every rescue copy of `ns`, whichever tab wrote it. */
export function readRescues(ns: string): RescueCopy[] {
  const { ls, keys } = rescueKeys(ns);
  if (!ls) return [];
  const copies: RescueCopy[] = [];
  for (const full of keys) {
    const text = ls.getItem(full);
    if (text === null) continue;
    const colon = text.indexOf(":");
    const baseText = colon < 0 ? "" : text.slice(0, colon);
    let bytes: Uint8Array | SessileError;
    if (!/^\d+$/.test(baseText)) {
      bytes = fail("CORRUPT_PAYLOAD", "snapshot payload is corrupt: rescue copy without its base version");
    } else {
      try {
        bytes = fromBase64(text.slice(colon + 1));
      } catch (e) {
        bytes = coded(e);
      }
    }
    copies.push({ key: full.slice(KEY_PREFIX.length), base: Number(baseText) || 0, bytes });
  }
  return copies;
}
