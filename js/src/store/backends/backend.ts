/**
 * What every storage backend does, in the store's terms: read slots a and b
 * and the head (the version of the last write, 0 when none); write one slot
 * and move the head only if the head is still the version the write is
 * based on (so a tab that missed another tab's write never overwrites it);
 * clear the slots leaving a tombstone head. Also the mapping of what a
 * browser throws to QUOTA_EXCEEDED / STORAGE_UNAVAILABLE.
 */
import type { SessileError } from "../../errors.js";
import { fail, messageOf, nameOf, unavailable } from "../errors.js";
import type { BackendKind } from "../options.js";

/** One slot as read: its bytes, undefined when empty, or why it could not be read. */
export type SlotBytes = Uint8Array | undefined | SessileError;

export interface SlotsRead {
  a: SlotBytes;
  b: SlotBytes;
  /** Version of the last successful write (the compare-and-set head), 0 when none. */
  head: number;
}

export interface Backend {
  readonly kind: BackendKind;
  /** Whether the browser closed the connection (IndexedDB); the store reopens it. */
  readonly closed: boolean;
  readAll(): Promise<SlotsRead>;
  /**
   * Writes `bytes` to `slot` and sets the head to `version` if the stored
   * head is `base`. Resolves undefined when written, or the stored head when
   * refused (nothing written).
   */
  writeIfHead(slot: "a" | "b", bytes: Uint8Array, base: number, version: number): Promise<number | undefined>;
  /** Removes both slots and sets the head to `tombstone`. */
  clear(tombstone: number): Promise<void>;
  /** Lets go of the connection (the store closed or reopened it). */
  release(): void;
}

/**
 * A thrown storage error: quota errors (under every browser's name) are
 * QUOTA_EXCEEDED with the size of the write, the rest STORAGE_UNAVAILABLE.
 */
export function storageError(thrown: unknown, bytes: number): SessileError {
  const name = nameOf(thrown);
  const message = messageOf(thrown);
  // Firefox once said NS_ERROR_DOM_QUOTA_REACHED; Firefox and Safari wrap
  // IndexedDB quota failures in an AbortError that mentions the quota.
  const quota =
    name === "QuotaExceededError" ||
    name === "NS_ERROR_DOM_QUOTA_REACHED" ||
    (name === "AbortError" && /quota/i.test(message));
  if (quota) return fail("QUOTA_EXCEEDED", `storage quota exceeded while writing ${bytes} bytes`);
  return unavailable(name ? `${name}: ${message}` : message);
}
