//! Values crossing between the page and the session: states, patches and
//! migration results as JSON (`JSON.stringify` on the way in,
//! `JSON.parse` on the way out: measured smaller and faster for a 100 KB
//! state than serde-wasm-bindgen, docs/PERFORMANCE.md), errors as
//! `SessileError`-named `Error`s with `code` and `retryable`, and the
//! session's `diagnostics()` as a plain object.

use js_sys::{Array, Object};
use serde_json::Value;
use wasm_bindgen::JsValue;

use crate::core::error::SessileError;
use crate::core::session::engine::Failure;
use crate::core::session::link::{LinkState, Transport, TransportReason};
use crate::core::session::store::StoreDiagnostics;
use crate::web::convert::{hex32, object, set};
use crate::web::session::Diagnostics;

/// A page's value as JSON: `INVALID_STATE` when `JSON.stringify` refuses
/// it (a cycle, a BigInt) or gives nothing (`undefined`, a function).
pub(crate) fn from_js(value: &JsValue) -> Result<Value, SessileError> {
    let text = js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| not_json("the state must be JSON data (JSON.stringify refused it)"))?;
    serde_json::from_slice(text.as_bytes()).map_err(|_| not_json("the state is not valid JSON"))
}

fn not_json(reason: &'static str) -> SessileError {
    SessileError::InvalidState {
        reason: reason.into(),
    }
}

/// A JSON value as a fresh JavaScript value.
pub(crate) fn to_js(value: &Value) -> JsValue {
    let text = serde_json::to_string(value).unwrap_or_default();
    js_sys::JSON::parse(&text).unwrap_or(JsValue::NULL)
}

/// A failed request as the `Error` the wrapper turns into a `SessileError`.
pub(crate) fn failure_js(f: &Failure) -> JsValue {
    let js = js_sys::Error::new(&f.message);
    js.set_name("SessileError");
    set(&js, "code", &JsValue::from_str(&f.code));
    set(&js, "retryable", &JsValue::from_bool(f.retryable));
    js.into()
}

/// A refused change as a `SessileError`-named `Error`.
pub(crate) fn error_js(e: &SessileError) -> JsValue {
    failure_js(&Failure::from(e))
}

/// `{ code, message }` of an error, as events and diagnostics carry it.
pub(crate) fn summary(e: &SessileError) -> JsValue {
    let f = Failure::from(e);
    object(&[("code", f.code.into()), ("message", f.message.into())]).into()
}

fn number(n: u64) -> JsValue {
    JsValue::from(n as f64)
}

fn or_null(v: Option<JsValue>) -> JsValue {
    v.unwrap_or(JsValue::NULL)
}

fn transport(t: Transport) -> &'static str {
    match t {
        Transport::WebSocket => "websocket",
        Transport::Http => "http",
    }
}

/// The `reason` of the link's diagnostics: why it uses (or prefers) the
/// transport it does.
fn transport_reason(r: TransportReason) -> &'static str {
    match r {
        TransportReason::WebSocket => "websocket",
        TransportReason::WebSocketSlow => "websocket_slow",
        TransportReason::WebSocketRefused => "websocket_refused",
        TransportReason::WebSocketFlapping => "websocket_flapping",
        TransportReason::Remembered => "remembered",
    }
}

/// `diagnostics()`: the store's figures, then the session's and the link's.
pub(crate) fn diagnostics(d: &Diagnostics, name: &str) -> JsValue {
    let s = &d.session;
    let obj = store(&s.store, d, name);
    set(
        &obj,
        "sessionId",
        &or_null(s.session_id.clone().map(JsValue::from)),
    );
    set(&obj, "status", &JsValue::from_str(&s.status));
    set(&obj, "expiresAt", &number(s.expires_at));
    let link = s.link.as_ref().map(|l| {
        let (state, at, stopped) = match &l.state {
            LinkState::Idle => ("idle", None, None),
            LinkState::Connecting { transport: t } => ("connecting", Some(*t), None),
            LinkState::Handshaking { transport: t } => ("handshaking", Some(*t), None),
            LinkState::Connected { transport: t } => ("connected", Some(*t), None),
            LinkState::Backoff { .. } => ("backoff", None, None),
            LinkState::Offline => ("offline", None, None),
            LinkState::Stopped { code } => ("stopped", None, Some(code.as_str())),
        };
        JsValue::from(object(&[
            ("state", state.into()),
            ("stoppedBy", or_null(stopped.map(JsValue::from))),
            ("transport", or_null(at.map(|t| transport(t).into()))),
            ("preferred", transport(l.preferred).into()),
            ("reason", transport_reason(l.reason).into()),
            ("standby", l.standby.into()),
            ("probing", l.probing.into()),
            ("rttMs", or_null(l.srtt_ms.map(JsValue::from))),
            // The changes waiting: the outbox's ops and the changes held
            // until the link's first welcome.
            ("outbox", number(s.unanswered as u64)),
            ("connections", number(l.connections)),
            ("serverVersion", number(l.version)),
            ("clientId", d.client.0.as_str().into()),
        ]))
    });
    set(&obj, "link", &or_null(link));
    obj.into()
}

/// The store's half of `diagnostics()` (`StoreDiagnostics` in js/src/store/types.ts).
fn store(s: &StoreDiagnostics, d: &Diagnostics, name: &str) -> Object {
    let degraded: Array = s
        .degraded
        .iter()
        .map(|(kind, e)| {
            JsValue::from(object(&[
                ("backend", kind.name().into()),
                ("error", summary(e)),
            ]))
        })
        .collect();
    let last_write = s.last_write.as_ref().map(|w| {
        JsValue::from(object(&[
            ("slot", w.slot.name().into()),
            ("generation", JsValue::from(w.generation)),
            ("checksum", hex32(w.checksum).into()),
            ("storedBytes", number(w.stored_bytes as u64)),
            ("compressed", w.compressed.into()),
            ("at", number(w.at)),
        ]))
    });
    object(&[
        ("name", name.into()),
        ("backend", s.backend.map_or("memory", |b| b.name()).into()),
        ("durable", or_null(d.durable.map(JsValue::from))),
        ("webLocks", d.web_locks.into()),
        ("degraded", degraded.into()),
        ("version", number(s.version)),
        ("storedVersion", number(s.stored_version)),
        ("unsaved", s.unsaved.into()),
        ("writing", s.writing.into()),
        ("rawBytes", number(s.raw_bytes as u64)),
        ("lastWrite", or_null(last_write)),
        ("lastError", or_null(s.last_error.as_ref().map(summary))),
        ("blocked", or_null(s.blocked.as_ref().map(summary))),
    ])
}
