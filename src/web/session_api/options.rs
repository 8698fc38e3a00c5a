//! `openSession`'s options object read into [`SessionOptions`]: every
//! value but the functions goes to the engine under its name (as JSON
//! text, a function or symbol inside it refused) and is checked there, `migrate` becomes the page's
//! migrations (called from Rust), `onEvent` the first handler, `persist` a
//! flag. What is not data is refused with `INVALID_OPTIONS` naming the
//! option.

use std::rc::Rc;

use js_sys::{ArrayBuffer, Function, JsString, Object, Reflect, Uint8Array, JSON};
use serde_json::{Map, Value};
use wasm_bindgen::{JsCast, JsError, JsValue};

use super::values::{from_js, to_js};
use crate::core::error::SessileError;
use crate::core::vec_map::VecMap;
use crate::web::crypt::EncryptionKey;
use crate::web::session::ServerSession;
use crate::web::session::{ServerOptions, SessionOptions};
use crate::web::store::page::js_message;
use crate::web::store::Migration;

/// What the page's options object holds besides its data.
pub(crate) struct Read {
    /// The options for `Session::open` (without a handler).
    pub options: SessionOptions,
    /// `onEvent`, if given.
    pub on_event: Option<Function>,
}

fn invalid(option: &'static str, reason: &'static str) -> SessileError {
    SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    }
}

/// Reads the page's options object.
pub(crate) fn read(js: &JsValue) -> Result<Read, SessileError> {
    if !js.is_object() {
        return Err(invalid(
            "options",
            "openSession needs an options object with a `name`",
        ));
    }
    let mut map = Map::new();
    let mut migrate = VecMap::new();
    let mut on_event = None;
    let mut persist = true;
    let mut encryption = None;
    let keys = Object::keys(js.unchecked_ref::<Object>());
    for key in keys.iter() {
        let Some(name) = key.as_string() else {
            continue;
        };
        let value = Reflect::get(js, &key).unwrap_or(JsValue::UNDEFINED);
        if value.is_undefined() {
            continue;
        }
        match name.as_str() {
            "onEvent" => on_event = Some(function(value, "onEvent")?),
            "encryption" => {
                let key = Reflect::get(&value, &"key".into()).unwrap_or_default();
                encryption = Some(encryption_key(&key)?);
            }
            "migrate" => migrate = migrations(&value)?,
            "persist" => {
                persist = value
                    .as_bool()
                    .ok_or_else(|| invalid("persist", "must be true or false"))?
            }
            "initial" => {
                let state = from_js(&value).map_err(|_| {
                    invalid("initial", "must be JSON data (JSON.stringify refused it)")
                })?;
                map.insert(name, state);
            }
            _ => {
                let data = data(&value).ok_or_else(|| SessileError::InvalidOptions {
                    option: "options",
                    reason: ["`", &name, "` must be JSON data, not a function"].concat(),
                })?;
                map.insert(name, data);
            }
        }
    }
    let server = map.get("server").and_then(server);
    if server.is_some() {
        map.remove("server");
    }
    Ok(Read {
        options: SessionOptions::from_parts(map, server, migrate, persist, None, encryption),
        on_event,
    })
}

/// An option's value as JSON (`JSON.stringify`, then serde_json): `None`
/// when it is not JSON data, and, as serde-wasm-bindgen read it before,
/// when a function or a symbol is anywhere in it (`JSON.stringify` alone
/// would leave those out). Through JSON text the module needs no
/// serde-wasm-bindgen, and with it no `core::fmt` float printing: about
/// 13 KB gzip of the download (docs/PERFORMANCE.md).
fn data(value: &JsValue) -> Option<Value> {
    let mut refuse = |_key: JsString, v: JsValue| {
        if v.is_function() || v.is_symbol() {
            Err(JsError::new("not JSON data"))
        } else {
            Ok(Some(v))
        }
    };
    let text = JSON::stringify_with_replacer_func(value, &mut refuse, None)
        .ok()?
        .as_string()?;
    serde_json::from_slice(text.as_bytes()).ok()
}

/// `encryption.key` (or `rotateKey`'s argument): a `CryptoKey`, or raw key
/// bytes (a `Uint8Array` or an `ArrayBuffer`), checked when imported.
pub(crate) fn encryption_key(value: &JsValue) -> Result<EncryptionKey, SessileError> {
    if let Some(key) = value.dyn_ref::<web_sys::CryptoKey>() {
        return Ok(EncryptionKey::Crypto(key.clone()));
    }
    if value.is_instance_of::<Uint8Array>() || value.is_instance_of::<ArrayBuffer>() {
        return Ok(EncryptionKey::Raw(Uint8Array::new(value).to_vec()));
    }
    Err(invalid(
        "encryption.key",
        "must be an AES-GCM CryptoKey or 32 raw key bytes (Uint8Array)",
    ))
}

fn function(value: JsValue, option: &'static str) -> Result<Function, SessileError> {
    value
        .dyn_into::<Function>()
        .map_err(|_| invalid(option, "must be a function"))
}

/// `server` when it has the shape the engine accepts; otherwise it stays
/// in the options for the engine to refuse with its message.
fn server(v: &Value) -> Option<ServerOptions> {
    let http = v.get("http")?.as_str()?;
    let mut s = ServerOptions::new(http);
    match v.get("ws") {
        None | Some(Value::Null) => {}
        Some(Value::String(ws)) => s = s.ws(ws),
        Some(_) => return None,
    }
    match v.get("session") {
        None | Some(Value::Null) => {}
        Some(x) => {
            let id = x.get("id")?.as_str()?;
            let token = x.get("token")?.as_str()?;
            s = s.session(ServerSession {
                id: id.into(),
                token: token.into(),
            });
        }
    }
    Some(s)
}

/// `migrate`: `{ [from]: (state) => next }`, each called from Rust with
/// the state of schema `from`.
fn migrations(value: &JsValue) -> Result<VecMap<u32, Migration>, SessileError> {
    const WHAT: &str = "must be an object of functions keyed by schema version";
    if !value.is_object() {
        return Err(invalid("migrate", WHAT));
    }
    let mut out: VecMap<u32, Migration> = VecMap::new();
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let from = key
            .as_string()
            .and_then(|k| k.parse::<u32>().ok())
            .ok_or_else(|| invalid("migrate", WHAT))?;
        let f = function(Reflect::get(value, &key).unwrap_or_default(), "migrate")?;
        out.insert(from, Rc::new(move |state: Value| migrate(&f, &state)));
    }
    Ok(out)
}

/// Calls one migration of the page: its result, or why it failed.
fn migrate(f: &Function, state: &Value) -> Result<Value, String> {
    let next = f
        .call1(&JsValue::NULL, &to_js(state))
        .map_err(|thrown| js_message(&thrown))?;
    from_js(&next).map_err(|_| "it did not return JSON data".into())
}
