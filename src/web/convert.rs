//! Every conversion between `JsValue` and Rust values in one place: errors to
//! JS `Error` objects with a `code`, option objects to core configs, decoded
//! snapshots to plain JS objects.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use crate::core::envelope::{EnvelopeConfig, SnapshotMeta};
use crate::core::error::SessileError;
// The error's message, built without `core::fmt`.
use crate::core::error_text::{decimal, message};

/// Turns a core error into a JS `Error` whose `name` is `SessileError` and
/// whose `code` is the stable code.
pub(crate) fn to_js_error(err: SessileError) -> JsValue {
    let js = js_sys::Error::new(&message(&err));
    js.set_name("SessileError");
    set(&js, "code", &JsValue::from_str(err.code()));
    set(&js, "retryable", &JsValue::from_bool(err.is_retryable()));
    js.into()
}

pub(crate) fn set(target: &JsValue, key: &str, value: &JsValue) {
    // Reflect.set only fails on frozen or proxy targets, which these are not.
    let _ = Reflect::set(target, &JsValue::from_str(key), value);
}

pub(crate) fn get(options: &JsValue, key: &str) -> Option<JsValue> {
    if !options.is_object() {
        return None;
    }
    Reflect::get(options, &JsValue::from_str(key))
        .ok()
        .filter(|v| !v.is_undefined() && !v.is_null())
}

/// Reads an optional non-negative integer option no larger than `max`.
/// (The message formats `max` as an integer: formatting an f64 would pull
/// about 17 KB of float printing into the wasm module.)
pub(crate) fn integer(
    options: &JsValue,
    key: &'static str,
    max: u64,
) -> Result<Option<f64>, SessileError> {
    let Some(value) = get(options, key) else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(n) if n >= 0.0 && n <= max as f64 && n.fract() == 0.0 => Ok(Some(n)),
        _ => Err(SessileError::InvalidOptions {
            option: key,
            reason: ["must be a whole number from 0 to ", &decimal(max)].concat(),
        }),
    }
}

pub(crate) const MAX_SAFE_INTEGER: u64 = 9_007_199_254_740_991;

/// Reads `compressAbove`, `maxBytes` and `compressionLevel`.
pub(crate) fn envelope_config(options: &JsValue) -> Result<EnvelopeConfig, SessileError> {
    let mut cfg = EnvelopeConfig::default();
    if let Some(n) = integer(options, "compressAbove", MAX_SAFE_INTEGER)? {
        cfg.compress_above = n as usize;
    }
    if let Some(n) = integer(options, "maxBytes", u64::from(u32::MAX))? {
        cfg.max_raw_bytes = n as usize;
    }
    if let Some(n) = integer(options, "compressionLevel", 9)? {
        cfg.compression_level = n as u8;
    }
    cfg.validate()?;
    Ok(cfg)
}

/// Figures about a snapshot that the page may show or log.
pub(crate) fn snapshot_info(
    meta: &SnapshotMeta,
    raw_bytes: usize,
    stored_bytes: usize,
    compressed: bool,
    checksum: u32,
) -> Object {
    let obj = Object::new();
    set(&obj, "schemaVersion", &JsValue::from(meta.schema_version));
    set(
        &obj,
        "stateVersion",
        &JsValue::from(meta.state_version as f64),
    );
    set(
        &obj,
        "modifiedAt",
        &JsValue::from(meta.modified_at_ms as f64),
    );
    set(&obj, "rawBytes", &JsValue::from(raw_bytes as f64));
    set(&obj, "storedBytes", &JsValue::from(stored_bytes as f64));
    set(&obj, "compressed", &JsValue::from_bool(compressed));
    set(&obj, "checksum", &JsValue::from_str(&hex32(checksum)));
    obj
}

/// A checksum as 8 lowercase hex digits.
pub(crate) fn hex32(v: u32) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    (0..8)
        .rev()
        .map(|i| HEX[((v >> (i * 4)) & 0xF) as usize] as char)
        .collect()
}

/// `JSON.stringify(value)`; `None` when it throws (a cycle, a BigInt) or
/// gives nothing (`undefined`, a function).
pub(crate) fn json_text(value: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(value).ok()?.as_string()
}

/// A value serde_json writes, as the plain JS value `JSON.parse` makes of
/// its text (`undefined` if it cannot be written: a map with keys that are
/// not strings, which no type crossing this way has). Through JSON text,
/// not serde-wasm-bindgen, so the module carries one serializer.
pub(crate) fn json_value<T: serde::Serialize + ?Sized>(value: &T) -> JsValue {
    serde_json::to_string(value)
        .ok()
        .and_then(|text| js_sys::JSON::parse(&text).ok())
        .unwrap_or(JsValue::UNDEFINED)
}

/// A plain object from key/value pairs (event payloads, diagnostics).
pub(crate) fn object(entries: &[(&str, JsValue)]) -> Object {
    let obj = Object::new();
    for (key, value) in entries {
        set(&obj, key, value);
    }
    obj
}

/// `{ code, message }` of an error, for event payloads.
pub(crate) fn error_summary(err: &SessileError) -> JsValue {
    object(&[
        ("code", err.code().into()),
        ("message", message(err).into()),
    ])
    .into()
}
