/**
 * sessile: session state for checkout pages. This entry loads the
 * WebAssembly module and exposes the snapshot functions with typed options
 * and {@link SessileError}s.
 *
 * ```ts
 * import { loadSessile } from "sessile";
 * const sessile = await loadSessile();
 * const info = sessile.saveSnapshot("checkout", { step: "cart", items: [] }, { stateVersion: 1 });
 * const restored = sessile.loadSnapshot<{ step: string }>("checkout");
 * ```
 */
import init, * as wasm from "../../pkg/sessile.js";
import type { DecodeOptions, SnapshotInfo, SnapshotOptions } from "../../pkg/sessile.js";
import { SessileError, toSessileError } from "./errors.js";

export { SessileError } from "./errors.js";
export type { SessileErrorCode } from "./errors.js";
export type { DecodeOptions, SnapshotInfo, SnapshotOptions } from "../../pkg/sessile.js";

/** A verified snapshot with its state typed as `T`. */
export interface Decoded<T> extends SnapshotInfo {
  state: T;
}

/** The snapshot functions, available once the wasm module is loaded. */
export interface Sessile {
  /** Encodes a JSON value into snapshot bytes (format v1). */
  encodeSnapshot<T>(state: T, options?: SnapshotOptions): Uint8Array;
  /** Decodes and verifies snapshot bytes. */
  decodeSnapshot<T = unknown>(bytes: Uint8Array, options?: DecodeOptions): Decoded<T>;
  /** Encodes `state` and stores it in localStorage under `sessile:<key>`. */
  saveSnapshot<T>(key: string, state: T, options?: SnapshotOptions): SnapshotInfo;
  /** Reads and verifies the snapshot under `sessile:<key>`; undefined if none. */
  loadSnapshot<T = unknown>(key: string, options?: DecodeOptions): Decoded<T> | undefined;
}

function guarded<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => R {
  return (...args: A) => {
    try {
      return f(...args);
    } catch (e) {
      throw toSessileError(e);
    }
  };
}

const api: Sessile = {
  encodeSnapshot: guarded((state, options) => wasm.encodeSnapshot(state, options)),
  decodeSnapshot: guarded((bytes, options) => wasm.decodeSnapshot(bytes, options)) as Sessile["decodeSnapshot"],
  saveSnapshot: guarded((key, state, options) => wasm.saveSnapshot(key, state, options)),
  loadSnapshot: guarded((key, options) => wasm.loadSnapshot(key, options)) as Sessile["loadSnapshot"],
};

let loading: Promise<Sessile> | undefined;

/**
 * Loads the WebAssembly module once (later calls share the same promise).
 * `wasmUrl` overrides where `sessile_bg.wasm` is fetched from.
 * Rejects with a SessileError `WASM_LOAD_FAILED` when the module cannot load;
 * a later call tries again.
 */
export function loadSessile(wasmUrl?: string | URL): Promise<Sessile> {
  loading ??= init(wasmUrl === undefined ? undefined : { module_or_path: wasmUrl }).then(
    () => api,
    (e: unknown) => {
      loading = undefined;
      throw new SessileError("WASM_LOAD_FAILED", `sessile could not load its WebAssembly module: ${String(e)}`, {
        cause: e,
        retryable: true,
      });
    },
  );
  return loading;
}
