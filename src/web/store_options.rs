//! The options object of `openStore`, read and checked once: a bad option is
//! INVALID_OPTIONS naming it, before anything is opened or written.

use js_sys::Function;
use wasm_bindgen::{JsCast, JsValue};

use crate::core::envelope::EnvelopeConfig;
use crate::core::error::SessileError;

use super::convert::{envelope_config, get, integer};
use super::storage::BackendKind;

/// Default delay between the last change and its write, in ms.
pub(crate) const DEFAULT_DEBOUNCE_MS: u64 = 250;

/// Everything `openStore` was asked for.
pub(crate) struct StoreOptions {
    pub(crate) name: String,
    /// `None` is "auto": IndexedDB, then localStorage, then memory.
    pub(crate) storage: Option<BackendKind>,
    pub(crate) debounce_ms: u64,
    pub(crate) schema_version: u32,
    /// `{ [v]: (state) => state }`: migrates schema v to v + 1.
    pub(crate) migrate: JsValue,
    pub(crate) initial: JsValue,
    pub(crate) on_event: Option<Function>,
    pub(crate) persist: bool,
    pub(crate) envelope: EnvelopeConfig,
}

fn invalid(option: &'static str, reason: &str) -> SessileError {
    SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    }
}

pub(crate) fn store_options(options: &JsValue) -> Result<StoreOptions, SessileError> {
    if !options.is_object() {
        return Err(invalid(
            "options",
            "openStore needs an options object with a `name`",
        ));
    }
    let name = get(options, "name")
        .and_then(|n| n.as_string())
        .ok_or_else(|| invalid("name", "must be a non-empty string"))?;
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_control()) {
        return Err(invalid(
            "name",
            "must be 1 to 100 characters, none of them control characters",
        ));
    }
    let storage = match get(options, "storage") {
        None => None,
        Some(v) => match v.as_string().as_deref() {
            Some("auto") => None,
            Some(kind) => Some(BackendKind::parse(kind).ok_or_else(|| {
                invalid(
                    "storage",
                    "must be \"auto\", \"indexeddb\", \"localstorage\" or \"memory\"",
                )
            })?),
            None => return Err(invalid("storage", "must be a string")),
        },
    };
    let on_event = match get(options, "onEvent") {
        None => None,
        Some(f) => Some(
            f.dyn_into::<Function>()
                .map_err(|_| invalid("onEvent", "must be a function"))?,
        ),
    };
    let migrate = get(options, "migrate").unwrap_or(JsValue::UNDEFINED);
    if !migrate.is_undefined() && !migrate.is_object() {
        return Err(invalid(
            "migrate",
            "must be an object of functions keyed by schema version",
        ));
    }
    Ok(StoreOptions {
        name,
        storage,
        debounce_ms: integer(options, "debounceMs", 60_000)?
            .map_or(DEFAULT_DEBOUNCE_MS, |n| n as u64),
        schema_version: integer(options, "schemaVersion", u64::from(u32::MAX))?
            .map_or(1, |n| n as u32),
        migrate,
        initial: get(options, "initial").unwrap_or(JsValue::NULL),
        on_event,
        persist: get(options, "persist")
            .and_then(|v| v.as_bool())
            .unwrap_or(true),
        envelope: envelope_config(options)?,
    })
}
