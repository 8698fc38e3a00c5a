/**
 * The public snapshot functions of {@link Sessile}: a value in, snapshot
 * bytes out, and back. `JSON.stringify` / `JSON.parse` run here, in the
 * browser's own engine; the wasm codec does the bytes (header, CRC-32,
 * deflate).
 *
 * @module
 */
import type * as wasm from "./wasm/sessile.js";
import { SessileError } from "./errors.js";

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

/**
 * `JSON.stringify(state)`, refusing what JSON cannot hold (a function,
 * `undefined`, a cycle, a BigInt) with `INVALID_STATE`.
 */
export function stateToJson(state: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(state);
  } catch (e) {
    throw new SessileError("INVALID_STATE", `state is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (json === undefined) {
    throw new SessileError("INVALID_STATE", "state is not valid JSON: the state must be a JSON value (got undefined or a function)");
  }
  return json;
}

/** A decoded snapshot with its JSON text parsed into `state`. */
export function withState<T = unknown>(decoded: wasm.DecodedSnapshot): Decoded<T> {
  const { json, generation: _generation, ...info } = decoded;
  let state: T;
  try {
    state = JSON.parse(json) as T;
  } catch (e) {
    throw new SessileError("INVALID_STATE", `stored state is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return { ...info, state };
}

/** Encodes a JSON value into snapshot bytes (format v1) with the wasm codec `w`. */
export function encodeValue(w: typeof wasm, state: unknown, options?: SnapshotOptions): Uint8Array {
  // The options object carries both the header fields and the codec's
  // options; each side reads only its own keys.
  return w.encodeSnapshot(stateToJson(state), options, options);
}
