//! `openStore()` and the `SessileStore` class exported to JS: a namespace's
//! state, restored on open, written debounced to crash-safe slots, with
//! `flush()`, `diagnostics()`, `clear()` and `close()`. Events reach the
//! page's `onEvent` callback.

use std::rc::Rc;

use js_sys::Promise;
use wasm_bindgen::prelude::*;

use super::convert::{error_summary, hex32, object, state_to_json, to_js_error};
use super::page::promise;
use super::store::Store;
use super::store_options::store_options;

#[wasm_bindgen(typescript_custom_section)]
const TS_STORE_TYPES: &'static str = r#"
/** Options of openStore. Only `name` is required. */
export interface StoreOptions {
  /** Storage namespace (1-100 characters). */
  name: string;
  /** Where to keep the state. "auto" (default) tries IndexedDB, then localStorage, then memory. */
  storage?: "auto" | "indexeddb" | "localstorage" | "memory";
  /** Delay between the last change and its write, ms (default 250, at most 60000). */
  debounceMs?: number;
  /** The page's state schema version (default 1). */
  schemaVersion?: number;
  /** migrate[v] turns a stored state of schema v into schema v + 1. */
  migrate?: Record<number, (state: any) => unknown>;
  /** The state when nothing valid is stored (default null). */
  initial?: unknown;
  /** Receives every event: { type, ...fields }. */
  onEvent?: (event: StoreEvent) => void;
  /** Ask the browser to keep this origin's storage (navigator.storage.persist()); default true. */
  persist?: boolean;
  /** Deflate the JSON above this many bytes (default 10240). */
  compressAbove?: number;
  /** Refuse states larger than this many bytes of JSON (default 5 MiB). */
  maxBytes?: number;
  /** Deflate level 0-9 (default 1). */
  compressionLevel?: number;
}
/** An error as events carry it. */
export interface EventError { code: string; message: string }
/** Events of a store. */
export type StoreEvent =
  | { type: "state_restored"; outcome: "restored"; from: "a" | "b" | "rescue"; version: number; schemaVersion: number; migrated: boolean; skipped: { slot: string; error: EventError }[] }
  | { type: "state_restored"; outcome: "fresh" }
  | { type: "state_restored"; outcome: "evicted"; lastVersion: string; reason: string }
  | { type: "state_restored"; outcome: "unreadable"; skipped: { slot: string; error: EventError }[] }
  | { type: "storage_degraded"; backend: string; using: string; error: EventError }
  | { type: "error_occurred"; error: EventError; during: "restore" | "write" | "sync" }
  | { type: "conflict"; local: unknown; remote: unknown; winner: "remote" | "local"; localVersion: number; remoteVersion: number }
  | { type: "session_updated"; origin: "tab"; version: number; cleared?: boolean };
/** What diagnostics() reports. */
export interface StoreDiagnostics {
  name: string;
  backend: "indexeddb" | "localstorage" | "memory";
  /** navigator.storage.persisted(): true, false, or null when unknown. */
  durable: boolean | null;
  /** Whether writes are serialized across tabs by Web Locks. */
  webLocks: boolean;
  degraded: { backend: string; error: EventError }[];
  version: number;
  storedVersion: number;
  unsaved: boolean;
  writing: boolean;
  rawBytes: number;
  lastWrite: null | { slot: string; generation: number; checksum: string; storedBytes: number; compressed: boolean; at: number };
  lastError: EventError | null;
  /** Why writing stopped (a newer schema was stored by a newer page), or null. */
  blocked: EventError | null;
}
"#;

/// A namespace's persisted state. Create it with `openStore`.
#[wasm_bindgen]
pub struct SessileStore {
    store: Rc<Store>,
}

/// Opens (restoring what is stored) the store `options.name`.
///
/// Rejects with a `SessileError`: `INVALID_OPTIONS`, `STORAGE_UNAVAILABLE`
/// (only when a specific backend was asked for), `SCHEMA_TOO_NEW` or
/// `MIGRATION_FAILED` (the stored copy is left untouched).
///
/// ```ts
/// const store = await openStore({ name: "checkout", initial: { step: "cart" } });
/// ```
#[wasm_bindgen(js_name = openStore, unchecked_return_type = "Promise<SessileStore>")]
pub fn open_store(
    #[wasm_bindgen(unchecked_param_type = "StoreOptions")] options: JsValue,
) -> Promise {
    promise(async move { open(options).await.map(JsValue::from) })
}

/// `openStore` for Rust callers (the browser tests): the same, unwrapped.
pub async fn open(options: JsValue) -> Result<SessileStore, JsValue> {
    let options = store_options(&options).map_err(to_js_error)?;
    let store = Store::open(options).await.map_err(to_js_error)?;
    Ok(SessileStore { store })
}

#[wasm_bindgen]
impl SessileStore {
    /// The current state (restored, set, or taken from another tab).
    #[wasm_bindgen(getter, unchecked_return_type = "unknown")]
    pub fn state(&self) -> JsValue {
        self.store.inner.borrow().state.clone()
    }

    /// The current state version.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.store.inner.borrow().version as f64
    }

    /// Replaces the state; returns its new version. The write follows within
    /// the debounce delay (or at once when the page is hidden). Throws
    /// `STATE_TOO_LARGE` or `INVALID_STATE` and keeps the previous state.
    pub fn set(&self, state: JsValue) -> Result<f64, JsValue> {
        let json = state_to_json(&state).map_err(to_js_error)?;
        self.store
            .set(state, json)
            .map(|v| v as f64)
            .map_err(to_js_error)
    }

    /// Writes anything unsaved now; resolves when the bytes are stored.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        let store = self.store.clone();
        promise(async move {
            Store::flush(&store).await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Removes every stored copy of this namespace (end of session).
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        let store = self.store.clone();
        promise(async move {
            Store::clear(&store).await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Flushes, then releases listeners and the tab channel.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        let store = self.store.clone();
        promise(async move {
            Store::close(&store).await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Backend, durability, versions, sizes and the last write and error.
    #[wasm_bindgen(unchecked_return_type = "StoreDiagnostics")]
    pub fn diagnostics(&self) -> JsValue {
        let store = &self.store;
        let s = store.inner.borrow();
        let degraded = js_sys::Array::new();
        for d in &s.degraded {
            degraded.push(
                &object(&[
                    ("backend", d.kind.name().into()),
                    ("error", error_summary(&d.error)),
                ])
                .into(),
            );
        }
        let last_write = s.last_write.map_or(JsValue::NULL, |w| {
            object(&[
                ("slot", w.slot.name().into()),
                ("generation", w.generation.into()),
                ("checksum", hex32(w.checksum).into()),
                ("storedBytes", (w.stored_bytes as f64).into()),
                ("compressed", w.compressed.into()),
                ("at", (w.at_ms as f64).into()),
            ])
            .into()
        });
        object(&[
            ("name", store.options.name.as_str().into()),
            ("backend", store.backend.borrow().kind().name().into()),
            ("durable", s.durable.map_or(JsValue::NULL, JsValue::from)),
            ("webLocks", super::locks::available().into()),
            ("degraded", degraded.into()),
            ("version", (s.version as f64).into()),
            ("storedVersion", (s.stored_version as f64).into()),
            ("unsaved", s.debouncer.has_unsaved().into()),
            ("writing", s.in_flight.is_some().into()),
            (
                "blocked",
                s.blocked.as_ref().map_or(JsValue::NULL, error_summary),
            ),
            ("rawBytes", (s.json.len() as f64).into()),
            ("lastWrite", last_write),
            (
                "lastError",
                s.last_error.as_ref().map_or(JsValue::NULL, error_summary),
            ),
        ])
        .into()
    }
}
