//! The size probe (cargo feature `size-probe`, off by default): one export
//! that drives the whole Rust client (`Session` and `Store`) so that the
//! linker keeps all of it, to measure the module with the client in it
//! (`scripts/size-probe`). It converts what crosses the boundary the way
//! an export would: the state by serde-wasm-bindgen, errors and failures
//! as `SessileError` objects, events by their type.

use serde_json::Value;
use wasm_bindgen::prelude::*;

use super::convert::{object, set, to_js_error};
use super::session::{Failure, ServerOptions, Session, SessionEvent, SessionOptions};
use super::store::{Store, StoreEvent, StoreOptions};
use crate::core::error::SessileError;

/// Opens the session `name` (with the server at `server`, if any), applies
/// `patch`, flushes, reads the diagnostics and closes; then opens the
/// store `name:store`, sets `patch` and flushes. `on_event` gets each
/// event's type. Resolves with `{ state, version, unanswered, webLocks }`.
#[wasm_bindgen(js_name = sizeProbe)]
pub async fn size_probe(
    name: String,
    server: Option<String>,
    patch: JsValue,
    on_event: js_sys::Function,
) -> Result<JsValue, JsValue> {
    let patch: Value = serde_wasm_bindgen::from_value(patch).map_err(|_| {
        to_js_error(SessileError::InvalidState {
            reason: "the patch is not JSON".into(),
        })
    })?;
    let mut options = SessionOptions::new(&name).initial(patch.clone());
    if let Some(url) = server {
        options = options.server(ServerOptions::new(&url));
    }
    let session = Session::open(options).await.map_err(to_js_error)?;
    let handler = on_event.clone();
    let subscription = session.subscribe(move |event| {
        let _ = handler.call1(&JsValue::NULL, &JsValue::from_str(session_event(event)));
    });
    session.update(patch.clone()).map_err(to_js_error)?;
    session.flush().await.map_err(failure)?;
    let diagnostics = session.diagnostics();
    let state = serde_wasm_bindgen::to_value(&session.get()).map_err(|_| JsValue::NULL)?;
    let version = session.version();
    session.close().await.map_err(failure)?;
    drop(subscription);

    let store = Store::open(
        StoreOptions::new(&[&name, ":store"].concat()).on_event(move |e| {
            let _ = on_event.call1(&JsValue::NULL, &JsValue::from_str(store_event(e)));
        }),
    )
    .await
    .map_err(to_js_error)?;
    store.set(patch).map_err(to_js_error)?;
    store.flush().await.map_err(to_js_error)?;

    Ok(object(&[
        ("state", state),
        ("version", JsValue::from(version as f64)),
        (
            "unanswered",
            JsValue::from(diagnostics.session.unanswered as f64),
        ),
        ("webLocks", JsValue::from_bool(diagnostics.web_locks)),
    ])
    .into())
}

fn failure(f: Failure) -> JsValue {
    let js = js_sys::Error::new(&f.message);
    js.set_name("SessileError");
    set(&js, "code", &JsValue::from_str(&f.code));
    set(&js, "retryable", &JsValue::from_bool(f.retryable));
    js.into()
}

fn session_event(event: &SessionEvent) -> &'static str {
    match event {
        SessionEvent::Store(e) => store_event(e),
        SessionEvent::SessionCreated { .. } => "session_created",
        SessionEvent::SessionExpired { .. } => "session_expired",
        SessionEvent::SessionTerminated { .. } => "session_terminated",
        SessionEvent::StatusChanged { .. } => "status_changed",
        SessionEvent::SessionUpdated { .. } => "session_updated",
        _ => "other",
    }
}

fn store_event(event: &StoreEvent) -> &'static str {
    match event {
        StoreEvent::StateRestored(_) => "state_restored",
        StoreEvent::StorageDegraded { .. } => "storage_degraded",
        StoreEvent::ErrorOccurred { .. } => "error_occurred",
        StoreEvent::Conflict { .. } => "conflict",
        _ => "other",
    }
}
