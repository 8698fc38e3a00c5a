/**
 * `openStore<T>`: the typed face of the Rust store (`WasmStore`, exported
 * by src/web/store_api/). Rust checks the options, restores, writes, talks
 * to the other tabs and builds every event; this file only types the calls
 * and turns what the module throws into {@link SessileError}s.
 */
import { openStore as openWasmStore, type WasmStore } from "./wasm/sessile.js";
import { toSessileError } from "./errors.js";
import type { Store, StoreDiagnostics, TypedStoreOptions } from "./store-types.js";

/** `f()`, with a thrown module error as a SessileError. */
function call<R>(f: () => R): R {
  try {
    return f();
  } catch (e) {
    throw toSessileError(e);
  }
}

/** `p`, rejecting with a SessileError. */
const settle = (p: Promise<void>): Promise<void> =>
  p.catch((e: unknown) => {
    throw toSessileError(e);
  });

/**
 * Opens (restoring what is stored) the store `options.name`. Rejects with a
 * SessileError: INVALID_OPTIONS, STORAGE_UNAVAILABLE (only when a specific
 * backend was asked for), SCHEMA_TOO_NEW or MIGRATION_FAILED (the stored
 * copy is left untouched).
 */
export async function openStore<T>(options: TypedStoreOptions<T>): Promise<Store<T>> {
  let inner: WasmStore;
  try {
    // `false`: a store alone lets another tab's newer copy win (only a synced session rebases).
    inner = await openWasmStore(options, false);
  } catch (e) {
    throw toSessileError(e);
  }
  return {
    get state() {
      return inner.state as T;
    },
    get version() {
      return inner.version;
    },
    set: (state: T) => call(() => inner.set(state)),
    flush: () => settle(call(() => inner.flush())),
    clear: () => settle(call(() => inner.clear())),
    close: () => settle(call(() => inner.close())),
    diagnostics: () => inner.diagnostics() as StoreDiagnostics,
  };
}
