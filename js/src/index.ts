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
 *
 * Importing this module reads no browser global (it is safe in Node and
 * server-side rendering); the module is fetched, and the browser's storage
 * touched, only when {@link loadSessile} or {@link openSession} is called.
 *
 * @packageDocumentation
 */
import init, * as wasm from "./wasm/sessile.js";
import { SessileError, toSessileError } from "./errors.js";
import { openSessionWith, type Session } from "./session.js";
import type { SessionOptions } from "./types.js";
import {
  decodeSnapshot,
  encodeSnapshot,
  loadSnapshot,
  saveSnapshot,
  type Decoded,
  type DecodeOptions,
  type SnapshotInfo,
  type SnapshotOptions,
} from "./snapshot.js";
import { openStore } from "./open-store.js";
import type { Store, TypedStoreOptions } from "./store-types.js";

export { SESSILE_ERROR_CODES, SessileError } from "./errors.js";
export type { Session } from "./session.js";
export type {
  FlowDeclaration,
  LinkDiagnostics,
  LinkOptions,
  EncryptionOptions,
  ServerOptions,
  ServerSession,
  SessionDiagnostics,
  SessionEvent,
  SessionOptions,
  StatusKind,
} from "./types.js";
export type { SessileErrorCode } from "./errors.js";
export type { Decoded, DecodeOptions, SnapshotInfo, SnapshotOptions } from "./snapshot.js";
export type {
  EventError,
  Store,
  StoreDiagnostics,
  StoreEvent,
  StoreOptions,
  TypedStoreOptions,
} from "./store-types.js";

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
  /**
   * Opens the store `options.name`, restoring the newest valid stored copy.
   * Events (restore outcome, fallbacks, conflicts, write errors) reach
   * `options.onEvent`.
   */
  openStore<T>(options: TypedStoreOptions<T>): Promise<Store<T>>;
  /**
   * Opens the session `options.name`: the store, plus (with `options.server`)
   * this tab's link to the server, which sends every change as an op from a
   * crash-safe outbox and brings the server's changes back.
   */
  openSession<T>(options: SessionOptions<T>): Promise<Session<T>>;
}

const api: Sessile = {
  encodeSnapshot,
  decodeSnapshot,
  saveSnapshot,
  loadSnapshot,
  openStore,
  openSession: <T>(options: SessionOptions<T>) =>
    openSessionWith<T>(wasm, options).catch((e: unknown) => {
      throw toSessileError(e);
    }),
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

/**
 * Opens the session `options.name`: loads the WebAssembly module once (as
 * {@link loadSessile}), restores the newest valid stored copy and, with
 * `options.server`, syncs it with the server. Importing the package touches
 * no browser global; this call does.
 *
 * ```ts
 * const session = await openSession<Checkout>({
 *   name: "checkout",
 *   initial: { step: "cart", items: [] },
 *   server: { http: "https://shop.example/sessile" },
 * });
 * session.update({ email: "shopper@example.com" });
 * ```
 */
export async function openSession<T>(options: SessionOptions<T>): Promise<Session<T>> {
  return (await loadSessile()).openSession(options);
}
