//! The options object of `openStore`, read and checked once: a bad option
//! is `INVALID_OPTIONS` naming it, before anything is opened or written
//! (the engine then checks the name, the debounce and the envelope). The
//! page's `onEvent` and `migrate[v]` functions become the store's handler
//! and migrations.

use std::rc::Rc;

use js_sys::{Function, Object};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};

use super::events::event_to_js;
use super::state;
use crate::core::error::SessileError;
use crate::core::error_text::message;
use crate::core::session::store::identity::client_from_bytes;
use crate::core::session::store::BackendKind;
use crate::core::vec_map::VecMap;
use crate::web::convert::{envelope_config, get, integer};
use crate::web::store::page::{js_message, random_bytes};
use crate::web::store::{Migration, StoreOptions};

fn invalid(option: &'static str, reason: &'static str) -> SessileError {
    SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    }
}

/// The store options of `options` (a page's object); `rebase` is set by a
/// synced session.
pub(crate) fn read(options: &JsValue, rebase: bool) -> Result<StoreOptions, SessileError> {
    if !options.is_object() {
        return Err(invalid(
            "options",
            "openStore needs an options object with a `name`",
        ));
    }
    let Some(name) = get(options, "name").and_then(|n| n.as_string()) else {
        return Err(invalid("name", "must be a non-empty string"));
    };
    let mut out = StoreOptions::new(&name);
    out.storage = storage(get(options, "storage"))?;
    if let Some(on_event) = get(options, "onEvent") {
        let Some(handler) = on_event.dyn_ref::<Function>().cloned() else {
            return Err(invalid("onEvent", "must be a function"));
        };
        out.on_event = Some(Rc::new(move |event| {
            if let Err(thrown) = handler.call1(&JsValue::NULL, &event_to_js(event)) {
                // A throwing handler is the page's bug: logged, never breaks the store.
                web_sys::console::error_2(&"sessile: onEvent handler threw".into(), &thrown);
            }
        }));
    }
    if let Some(migrate) = get(options, "migrate") {
        if !migrate.is_object() {
            return Err(invalid(
                "migrate",
                "must be an object of functions keyed by schema version",
            ));
        }
        out.migrate = migrations(&migrate);
    }
    if let Some(ms) = integer(options, "debounceMs", 60_000)? {
        out.debounce_ms = ms as u64;
    }
    if let Some(v) = integer(options, "schemaVersion", u64::from(u32::MAX))? {
        out.schema_version = v as u32;
    }
    out.envelope = envelope_config(options)?;
    if let Some(initial) = get(options, "initial") {
        out.initial = state::from_js(&initial)?;
    }
    out.persist = get(options, "persist")
        .and_then(|p| p.as_bool())
        .unwrap_or(true);
    out.rebase = rebase;
    // A client id of this open only, as each TypeScript store had: the id
    // kept in sessionStorage, and its lock, belong to the page's session
    // (whose link sends this tab's ops under it).
    out.client = Some(client_from_bytes(random_bytes()));
    Ok(out)
}

fn storage(value: Option<JsValue>) -> Result<Option<BackendKind>, SessileError> {
    let Some(value) = value else { return Ok(None) };
    let Some(name) = value.as_string() else {
        return Err(invalid("storage", "must be a string"));
    };
    BackendKind::from_option(&name).ok_or_else(|| invalid("storage", BackendKind::OPTION_NAMES))
}

/// `migrate[v]` for every key `v` that is a schema version and holds a
/// function; a missing one fails the restore that needs it
/// (`MIGRATION_FAILED`, "no migration function migrate[v]").
fn migrations(migrate: &JsValue) -> VecMap<u32, Migration> {
    let mut out = VecMap::new();
    for key in Object::keys(migrate.unchecked_ref::<Object>()).iter() {
        let Some(from) = key.as_string().and_then(|k| k.parse::<u32>().ok()) else {
            continue;
        };
        let Some(f) = get(migrate, &key.as_string().unwrap_or_default())
            .and_then(|f| f.dyn_into::<Function>().ok())
        else {
            continue;
        };
        out.insert(
            from,
            Rc::new(move |state: Value| call(&f, &state)) as Migration,
        );
    }
    out
}

/// One migration: the page's function on the state, its result back as JSON.
fn call(f: &Function, state: &Value) -> Result<Value, String> {
    let out = f
        .call1(&JsValue::NULL, &state::to_js(state))
        .map_err(|thrown| js_message(&thrown))?;
    if out.is_undefined() {
        return Err("the migration returned undefined".into());
    }
    state::from_js(&out).map_err(|e| message(&e))
}
