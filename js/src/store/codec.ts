/**
 * The wasm codec the store runs on (src/web/snapshot_api.rs over
 * src/core/envelope.rs and src/core/slots.rs): the snapshot envelope, the
 * two-slot restore choice and the next-write plan, typed for the store.
 * Those rules stay in Rust, where they are small; everything around them
 * (drivers, timers, tabs) is TypeScript, where it is smaller still.
 */
import * as wasm from "../wasm/sessile.js";

/** The header fields of a snapshot besides its bytes. */
export interface SnapshotMeta {
  schemaVersion: number;
  stateVersion: number;
  modifiedAt: number;
  generation: number;
}

/** A verified snapshot, its JSON text still unparsed. */
export interface DecodedSnapshot extends SnapshotMeta {
  json: string;
  rawBytes: number;
  storedBytes: number;
  compressed: boolean;
  /** CRC-32 over header and payload, 8 hex digits. */
  checksum: string;
}

export type SlotName = "a" | "b" | "rescue";

/** A copy that held bytes which could not be used, and why. */
export interface Skipped {
  slot: SlotName;
  error: { code: string; message: string };
}

export type RestoreResult =
  | { outcome: "restored"; from: SlotName; snapshot: DecodedSnapshot; skipped: Skipped[] }
  | { outcome: "fresh" }
  | { outcome: "unreadable"; skipped: Skipped[] };

/** Encodes JSON text; throws STATE_TOO_LARGE (before any work) or INVALID_OPTIONS. */
export const encodeSnapshot = wasm.encodeSnapshot as unknown as (
  json: string,
  meta: SnapshotMeta,
  options?: { compressAbove?: number; maxBytes?: number; compressionLevel?: number },
) => Uint8Array;

/** Decodes and verifies; throws the envelope's codes (CHECKSUM_MISMATCH, TRUNCATED, ...). */
export const decodeSnapshot = wasm.decodeSnapshot as unknown as (
  bytes: Uint8Array,
  options?: { maxBytes?: number },
) => DecodedSnapshot;

/** The newest valid copy of slots a, b and the rescue copy (undefined: empty). */
export const restoreSlots = wasm.restoreSlots as unknown as (
  a: Uint8Array | undefined,
  b: Uint8Array | undefined,
  rescue: Uint8Array | undefined,
  options?: { maxBytes?: number },
) => RestoreResult;

/** Where the next write goes (never the slot holding the newest copy) and its generation. */
export const nextWrite = wasm.nextWrite as unknown as (
  last: { slot: SlotName; generation: number } | undefined,
) => { slot: "a" | "b"; generation: number };

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
