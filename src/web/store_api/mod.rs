//! The store exported to JavaScript: `openStore(options)` resolves to a
//! [`WasmStore`] over [`crate::web::Store`], which the package's
//! `openStore<T>` (js/src/open-store.ts) types and wraps. Options are
//! checked here (`options.rs`), events and diagnostics become the package's
//! plain objects here (`events.rs`), and the state crosses as JSON text
//! (`state.rs`). Errors are `Error`s named `SessileError` with a `code`.

mod events;
mod options;
mod state;

use std::cell::RefCell;

use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::convert::to_js_error;
use super::store::{Request, Store};

/// An open store, for the package's wrapper (pages use `Store<T>`).
#[wasm_bindgen]
pub struct WasmStore {
    store: Store,
    name: String,
    /// The page's value of the current state and its JSON text: `state`
    /// hands out the same object until the state changes (the one `set`
    /// was given, as the TypeScript store did).
    current: RefCell<Option<(String, JsValue)>>,
}

/// Opens (restoring what is stored) the store `options.name`; `rebase`:
/// a synced session's store, whose unsaved changes go back on top of
/// another tab's copy. Rejects with `INVALID_OPTIONS`, `INVALID_STATE` (an
/// `initial` that is not JSON), `STORAGE_UNAVAILABLE` (only when a backend
/// was named), `SCHEMA_TOO_NEW` or `MIGRATION_FAILED` (the stored copy is
/// left untouched).
#[wasm_bindgen(js_name = openStore)]
pub async fn open_store(
    #[wasm_bindgen(unchecked_param_type = "unknown")] options: JsValue,
    rebase: bool,
) -> Result<WasmStore, JsValue> {
    let options = options::read(&options, rebase).map_err(to_js_error)?;
    let name = options.name.clone();
    let store = Store::open(options).await.map_err(to_js_error)?;
    Ok(WasmStore {
        store,
        name,
        current: RefCell::new(None),
    })
}

#[wasm_bindgen]
impl WasmStore {
    /// The current state: restored, set, or taken from another tab.
    #[wasm_bindgen(getter, unchecked_return_type = "unknown")]
    pub fn state(&self) -> JsValue {
        let mut current = self.current.borrow_mut();
        self.store.with_json(|json| {
            if let Some((text, value)) = current.as_ref() {
                if text == json {
                    return value.clone();
                }
            }
            let value = state::text_to_js(json);
            *current = Some((json.to_owned(), value.clone()));
            value
        })
    }

    /// The current state version.
    #[wasm_bindgen(getter)]
    pub fn version(&self) -> f64 {
        self.store.version() as f64
    }

    /// Replaces the state as a new version and schedules its write; returns
    /// the version. `INVALID_STATE` (not JSON), `STATE_TOO_LARGE`,
    /// `STORE_CLOSED`, `SCHEMA_TOO_NEW` (a newer page stored a newer schema).
    pub fn set(
        &self,
        #[wasm_bindgen(unchecked_param_type = "unknown")] state: JsValue,
    ) -> Result<f64, JsValue> {
        let value = state::from_js(&state).map_err(to_js_error)?;
        let version = self.store.set(value).map_err(to_js_error)?;
        let json = self.store.with_json(str::to_owned);
        *self.current.borrow_mut() = Some((json, state));
        Ok(version as f64)
    }

    /// Writes everything unsaved now; resolves when it is stored.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn flush(&self) -> Promise {
        self.run(Request::Flush)
    }

    /// Removes every stored copy of this namespace.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn clear(&self) -> Promise {
        self.run(Request::Clear)
    }

    /// Refuses further changes, flushes, then lets go of the browser's
    /// resources.
    #[wasm_bindgen(unchecked_return_type = "Promise<void>")]
    pub fn close(&self) -> Promise {
        self.run(Request::Close)
    }

    /// Backend, durability, versions, sizes, last write and error.
    pub fn diagnostics(&self) -> JsValue {
        events::diagnostics_to_js(&self.name, &self.store.diagnostics())
    }
}

impl WasmStore {
    fn run(&self, request: Request) -> Promise {
        // Started now, not when the promise is first polled.
        let done = self.store.start(request);
        future_to_promise(async move {
            done.await.map_err(to_js_error)?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
