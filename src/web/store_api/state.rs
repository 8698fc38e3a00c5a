//! The page's state across the JS boundary as JSON text: `JSON.stringify`
//! and `JSON.parse` in the browser, serde_json in the module. A value
//! `JSON.stringify` cannot hold (a cycle, a BigInt, `undefined`, a
//! function) is `INVALID_STATE`, as it was for the TypeScript store.
//! docs/PERFORMANCE.md ("The JS boundary") has what this costs against
//! serde-wasm-bindgen.

use js_sys::JSON;
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::core::error::SessileError;
use crate::web::store::page::js_message;

fn invalid(reason: String) -> SessileError {
    SessileError::InvalidState { reason }
}

/// A page's value as JSON.
pub(crate) fn from_js(value: &JsValue) -> Result<Value, SessileError> {
    let text = JSON::stringify(value).map_err(|e| invalid(js_message(&e)))?;
    let Some(text) = JsValue::from(text).as_string() else {
        return Err(invalid(
            "the state must be a JSON value (got undefined or a function)".into(),
        ));
    };
    serde_json::from_slice(text.as_bytes()).map_err(|_| invalid("the state is not JSON".into()))
}

/// JSON text as a page's value (`null` if it is not JSON, which the
/// engine's own text always is).
pub(crate) fn text_to_js(json: &str) -> JsValue {
    JSON::parse(json).unwrap_or(JsValue::NULL)
}

/// A value as a page's value (serde_json's writer, not `Display`: no
/// `core::fmt` in the module).
pub(crate) fn to_js(value: &Value) -> JsValue {
    text_to_js(&serde_json::to_string(value).unwrap_or_default())
}
