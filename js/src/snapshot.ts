/**
 * The public snapshot functions of {@link Sessile}: a JSON value to
 * snapshot bytes and back, and one snapshot saved in localStorage under
 * `sessile:<key>` (base64). `JSON.stringify` / `JSON.parse` run here, in
 * the browser's own engine; the module (src/web/snapshot_api.rs) does the
 * bytes (header, CRC-32, deflate), base64 and the storage, and checks the
 * options.
 */
import * as wasm from "./wasm/sessile.js";
import type { DecodedSnapshot } from "./wasm/sessile.js";
import { SessileError, toSessileError } from "./errors.js";

/** Options of encodeSnapshot / saveSnapshot (all optional). */
export interface SnapshotOptions {
  /** Version of the page's state schema (for migrations). Default 0. */
  schemaVersion?: number;
  /** Version of the state; grows with every change. Default 0. */
  stateVersion?: number;
  /** Last change, ms since the Unix epoch. Default Date.now(). */
  modifiedAt?: number;
  /** Deflate the JSON when it has more bytes than this. Default 10240. */
  compressAbove?: number;
  /** Refuse states whose JSON is larger (STATE_TOO_LARGE). Default 5 MiB. */
  maxBytes?: number;
  /** Deflate level 0-9. Default 1. */
  compressionLevel?: number;
}

/** Options of decodeSnapshot / loadSnapshot. */
export interface DecodeOptions {
  /** Refuse snapshots that declare a larger state. Default 5 MiB. */
  maxBytes?: number;
}

/** Figures about a snapshot. */
export interface SnapshotInfo {
  schemaVersion: number;
  stateVersion: number;
  modifiedAt: number;
  /** Bytes of the state's JSON. */
  rawBytes: number;
  /** Bytes of the whole snapshot as stored (header included). */
  storedBytes: number;
  compressed: boolean;
  /** CRC-32 over header and payload, 8 hex digits. */
  checksum: string;
}

/** A verified snapshot with its state typed as `T`. */
export interface Decoded<T> extends SnapshotInfo {
  state: T;
}

/** Runs `f`, turning whatever it throws into a SessileError (INVALID_STATE when the module did not name one). */
function guarded<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    const coded = toSessileError(e);
    if (coded instanceof SessileError) throw coded;
    throw new SessileError("INVALID_STATE", e instanceof Error ? e.message : String(e), { cause: e });
  }
}

/** `JSON.stringify(state)`; INVALID_STATE when the state is not a JSON value. */
function toJson(state: unknown): string {
  const text = JSON.stringify(state);
  if (typeof text !== "string") throw new SessileError("INVALID_STATE", "the state must be a JSON value (got undefined or a function)");
  return text;
}

function info(d: Omit<DecodedSnapshot, "json">): SnapshotInfo {
  const { schemaVersion, stateVersion, modifiedAt, rawBytes, storedBytes, compressed, checksum } = d;
  return { schemaVersion, stateVersion, modifiedAt, rawBytes, storedBytes, compressed, checksum };
}

const decoded = <T>(d: DecodedSnapshot): Decoded<T> => ({ ...info(d), state: JSON.parse(d.json) as T });

// The options object carries the header fields and the codec's options; the
// module reads each from it and checks them (INVALID_OPTIONS).

/** Encodes a JSON value into snapshot bytes (format v1). */
export const encodeSnapshot = <T>(state: T, options?: SnapshotOptions): Uint8Array =>
  guarded(() => wasm.encodeSnapshot(toJson(state), options ?? {}, options));

/** Decodes and verifies snapshot bytes. */
export const decodeSnapshot = <T = unknown>(bytes: Uint8Array, options?: DecodeOptions): Decoded<T> =>
  guarded(() => decoded<T>(wasm.decodeSnapshot(bytes, options)));

/** Encodes `state` and stores it in localStorage under `sessile:<key>`; on failure the previous value stays. */
export const saveSnapshot = <T>(key: string, state: T, options?: SnapshotOptions): SnapshotInfo =>
  guarded(() => info(wasm.saveSnapshot(key, toJson(state), options ?? {}, options)));

/** Reads and verifies the snapshot under `sessile:<key>`; undefined if none. A corrupted value throws. */
export const loadSnapshot = <T = unknown>(key: string, options?: DecodeOptions): Decoded<T> | undefined =>
  guarded(() => {
    const d = wasm.loadSnapshot(key, options);
    return d === undefined ? undefined : decoded<T>(d);
  });
