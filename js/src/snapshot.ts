/**
 * The public snapshot functions of {@link Sessile}: a JSON value to
 * snapshot bytes and back, and one snapshot saved in localStorage under
 * `sessile:<key>` (base64). `JSON.stringify` / `JSON.parse` run here, in
 * the browser's own engine; the wasm codec does the bytes (header, CRC-32,
 * deflate) and checks the options.
 */
import { read, write } from "./store/backends/local.js";
import { decodeSnapshot as decode, encodeSnapshot as encode, readHeader } from "./store/codec.js";
import { coded } from "./store/errors.js";
import { fromJson, toJson } from "./store/options.js";

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

/** Runs `f`, turning whatever it throws into a SessileError. */
function guarded<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    throw coded(e, "INVALID_STATE");
  }
}

function info(d: ReturnType<typeof readHeader>): SnapshotInfo {
  const { schemaVersion, stateVersion, modifiedAt, rawBytes, storedBytes, compressed, checksum } = d;
  return { schemaVersion, stateVersion, modifiedAt, rawBytes, storedBytes, compressed, checksum };
}

function encodeValue(state: unknown, options?: SnapshotOptions): Uint8Array {
  // The options object carries the header fields and the codec's options;
  // the codec reads each from it and checks them (INVALID_OPTIONS).
  return encode(toJson(state), options ?? {}, options);
}

function decodeValue<T>(bytes: Uint8Array, options?: DecodeOptions): Decoded<T> {
  const d = decode(bytes, options);
  return { ...info(d), state: fromJson(d.json) as T };
}

/** Encodes a JSON value into snapshot bytes (format v1). */
export const encodeSnapshot = <T>(state: T, options?: SnapshotOptions): Uint8Array =>
  guarded(() => encodeValue(state, options));

/** Decodes and verifies snapshot bytes. */
export const decodeSnapshot = <T = unknown>(bytes: Uint8Array, options?: DecodeOptions): Decoded<T> =>
  guarded(() => decodeValue<T>(bytes, options));

/** Encodes `state` and stores it in localStorage under `sessile:<key>`; on failure the previous value stays. */
export const saveSnapshot = <T>(key: string, state: T, options?: SnapshotOptions): SnapshotInfo =>
  guarded(() => {
    const bytes = encodeValue(state, options);
    write(key, bytes);
    return info(readHeader(bytes));
  });

/** Reads and verifies the snapshot under `sessile:<key>`; undefined if none. A corrupted value throws. */
export const loadSnapshot = <T = unknown>(key: string, options?: DecodeOptions): Decoded<T> | undefined =>
  guarded(() => {
    const bytes = read(key);
    return bytes === undefined ? undefined : decodeValue<T>(bytes, options);
  });
