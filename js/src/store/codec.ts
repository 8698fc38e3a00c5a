/**
 * The wasm codec the store runs on (src/web/snapshot_api.rs and
 * slots_api.rs over src/core/envelope.rs and src/core/slots.rs): the
 * snapshot envelope, the two-slot restore choice and the next-write plan.
 * Those rules stay in Rust, where they are small; everything around them
 * (drivers, timers, tabs) is TypeScript, where it is smaller still. Also the
 * header's figures, read without decoding.
 */
import * as wasm from "../wasm/sessile.js";
import type { DecodedSnapshot, RestoreResult, SkippedSlot, SlotName } from "../wasm/sessile.js";

export type { DecodedSnapshot, SlotName };
export type Skipped = SkippedSlot;

/** The header fields of a snapshot to write. */
export interface SnapshotMeta {
  schemaVersion?: number;
  stateVersion?: number;
  modifiedAt?: number;
  generation?: number;
}

/** Encodes JSON text; throws STATE_TOO_LARGE (before any work) or INVALID_OPTIONS. */
export const encodeSnapshot = (
  json: string,
  meta: SnapshotMeta,
  options?: { compressAbove?: number; maxBytes?: number; compressionLevel?: number },
): Uint8Array => wasm.encodeSnapshot(json, meta, options);

/** Decodes and verifies; throws the envelope's codes (CHECKSUM_MISMATCH, TRUNCATED, ...). */
export const decodeSnapshot = (bytes: Uint8Array, options?: { maxBytes?: number }): DecodedSnapshot =>
  wasm.decodeSnapshot(bytes, options);

/** The newest valid copy of slots a and b (undefined: empty). */
export const restoreSlots = (
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
  options?: { maxBytes?: number },
): RestoreResult => wasm.restoreSlots(a, b, options);

/** Where the next write goes (never the slot holding the newest copy) and its generation. */
export const nextWrite = (last: { slot: SlotName; generation: number } | undefined): { slot: "a" | "b"; generation: number } =>
  wasm.nextWrite(last);

/** What the 40-byte header of encoded bytes says (docs/FORMAT.md), without decoding the payload. */
export function readHeader(bytes: Uint8Array): Omit<DecodedSnapshot, "json"> {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u64 = (at: number) => v.getUint32(at, true) + v.getUint32(at + 4, true) * 2 ** 32;
  return {
    generation: v.getUint16(6, true),
    schemaVersion: v.getUint32(8, true),
    stateVersion: u64(12),
    modifiedAt: u64(20),
    rawBytes: v.getUint32(28, true),
    storedBytes: bytes.length,
    compressed: (v.getUint8(5) & 1) !== 0,
    checksum: v.getUint32(36, true).toString(16).padStart(8, "0"),
  };
}
