//! `WasmSession`: the session ([`crate::web::session::Session`], the
//! engine driven from Rust) exported to JavaScript, which `openSession`
//! (js/src/session.ts) wraps with its types. Every call goes to the Rust
//! session; the wrapper only turns a change function into a value and
//! thrown `Error`s into `SessileError`s. Where the parts live:
//! `options.rs` (the options object), `events.rs` (events and handlers),
//! `values.rs` (states, errors, diagnostics).

mod events;
mod options;
mod values;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Function, Promise};
use serde_json::Value;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use self::events::{deliver, Handlers, SharedHandlers};
use self::values::{error_js, failure_js, from_js, to_js};
use crate::core::error::SessileError;
use crate::core::session::engine::{Failure, ServerSession, Validity};
use crate::web::convert::object;
use crate::web::session::Session;

/// One page's session of one namespace, as `openSession` opens it.
#[wasm_bindgen]
pub struct WasmSession {
    session: Session,
    handlers: SharedHandlers,
    name: String,
}

fn number(n: u64) -> JsValue {
    JsValue::from(n as f64)
}

/// Runs a request of the session as a Promise rejecting with a `SessileError`.
fn promise<F>(handlers: Option<SharedHandlers>, f: F) -> Promise
where
    F: Future<Output = Result<JsValue, Failure>> + 'static,
{
    promise_boxed(handlers, Box::pin(f))
}

/// A request of the session, boxed.
type Request = Pin<Box<dyn Future<Output = Result<JsValue, Failure>>>>;

/// [`promise`]'s work, once for every request: a generic body would copy
/// `future_to_promise` into the wasm module for each of them.
fn promise_boxed(handlers: Option<SharedHandlers>, f: Request) -> Promise {
    future_to_promise(async move {
        let result = f.await;
        if let (Some(h), Ok(_)) = (handlers, &result) {
            h.borrow_mut().clear();
        }
        result.map_err(|e| failure_js(&e))
    })
}

fn bad_argument(option: &'static str, reason: &'static str) -> Failure {
    Failure::from(SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    })
}

#[wasm_bindgen]
impl WasmSession {
    /// Opens the session of `options` (those of `openSession`, checked in
    /// Rust): restores the stored copy and, with a server, joins or creates
    /// the server session. Rejects with a `SessileError`.
    pub async fn open(options: JsValue) -> Result<WasmSession, JsValue> {
        let read = options::read(&options).map_err(|e| error_js(&e))?;
        let handlers: SharedHandlers = Rc::new(RefCell::new(Handlers::default()));
        if let Some(f) = read.on_event {
            handlers.borrow_mut().set_on_event(f);
        }
        let to = handlers.clone();
        let opts = read.options.on_event(move |e| deliver(&to, e));
        let name = opts.name().to_string();
        let session = Session::open(opts).await.map_err(|e| error_js(&e))?;
        Ok(WasmSession {
            session,
            handlers,
            name,
        })
    }

    /// The current state (a fresh copy).
    pub fn state(&self) -> JsValue {
        to_js(&self.session.get())
    }

    /// The local state version.
    pub fn version(&self) -> f64 {
        self.session.version() as f64
    }

    /// The server session id, or null.
    #[wasm_bindgen(js_name = sessionId)]
    pub fn session_id(&self) -> Option<String> {
        self.session.server_session().map(|s| s.id)
    }

    /// The server session token, or null.
    pub fn token(&self) -> Option<String> {
        self.session.server_session().map(|s| s.token)
    }

    /// The lifecycle status.
    pub fn status(&self) -> String {
        self.session.status()
    }

    /// When the session expires, ms since the epoch.
    #[wasm_bindgen(js_name = expiresAt)]
    pub fn expires_at(&self) -> f64 {
        self.session.expires_at() as f64
    }

    /// Applies the merge patch `patch` (moving the status to `to` when
    /// given); returns the new version.
    pub fn update(&self, patch: JsValue, to: Option<String>) -> Result<f64, JsValue> {
        let patch = from_js(&patch).map_err(|e| error_js(&e))?;
        self.change(|e, now| e.update(&patch, to.as_deref(), now))
    }

    /// Replaces the state (moving the status to `to` when given); returns
    /// the new version.
    pub fn set(&self, state: JsValue, to: Option<String>) -> Result<f64, JsValue> {
        let state = from_js(&state).map_err(|e| error_js(&e))?;
        self.change(|e, now| e.set(state, to.as_deref(), now))
    }

    /// Moves the status to `to` with the merge patch `patch` (none:
    /// `undefined`); returns the new version.
    pub fn step(&self, to: &str, patch: JsValue) -> Result<f64, JsValue> {
        let patch = match patch.is_undefined() {
            true => None,
            false => Some(from_js(&patch).map_err(|e| error_js(&e))?),
        };
        self.change(|e, now| e.step(to, patch.as_ref(), now))
    }

    fn change(
        &self,
        f: impl FnOnce(
            &mut crate::core::session::engine::SessionEngine,
            u64,
        ) -> Result<u64, SessileError>,
    ) -> Result<f64, JsValue> {
        self.session
            .change(f)
            .map(|v| v as f64)
            .map_err(|e| error_js(&e))
    }

    /// Seals everything stored with `key` (a `CryptoKey` or 32 raw bytes)
    /// from now on; resolves once the outbox and both slots are re-encrypted.
    #[wasm_bindgen(js_name = rotateKey)]
    pub fn rotate_key(&self, key: JsValue) -> Promise {
        let s = self.session.clone();
        promise(None, async move {
            let key = options::encryption_key(&key).map_err(Failure::from)?;
            s.rotate_key(key).await.map(|_| JsValue::UNDEFINED)
        })
    }

    /// Lets the stored copies this session's key cannot open be written
    /// over (those stored now) and writes the current state; a no-op
    /// without a key.
    #[wasm_bindgen(js_name = discardLocal)]
    pub fn discard_local(&self) -> Promise {
        let s = self.session.clone();
        promise(None, async move {
            s.discard_local().await.map(|_| JsValue::UNDEFINED)
        })
    }

    /// Resolves when stored locally and, while connected or connecting,
    /// every change is acknowledged.
    pub fn flush(&self) -> Promise {
        let s = self.session.clone();
        promise(
            None,
            async move { s.flush().await.map(|_| JsValue::UNDEFINED) },
        )
    }

    /// Adds `seconds` to the TTL; resolves with the new expiry.
    pub fn extend(&self, seconds: f64) -> Promise {
        let s = self.session.clone();
        promise(None, async move {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(bad_argument("seconds", "must be a number of seconds"));
            }
            // The server's API takes whole seconds: a fraction cannot be sent.
            if seconds.fract() != 0.0 {
                return Err(Failure::new(
                    "PROTOCOL_ERROR",
                    "extend takes whole seconds (the server's API has no fractions)",
                    false,
                ));
            }
            s.extend(seconds as u64).await.map(number)
        })
    }

    /// Resolves with `{ valid: true, expiresAt }` or `{ valid: false, code }`.
    pub fn validate(&self) -> Promise {
        let s = self.session.clone();
        promise(None, async move {
            Ok(match s.validate().await? {
                Validity::Valid { expires_at } => {
                    object(&[("valid", true.into()), ("expiresAt", number(expires_at))])
                }
                Validity::Invalid { code } => {
                    object(&[("valid", false.into()), ("code", code.into())])
                }
            }
            .into())
        })
    }

    /// Ends the session (`reason`: a closed status of the flow, else it
    /// is terminated); clears the local copy unless `keep`; then closes.
    pub fn end(&self, reason: Option<String>, keep: bool) -> Promise {
        let s = self.session.clone();
        promise(Some(self.handlers.clone()), async move {
            s.end(reason.as_deref(), keep)
                .await
                .map(|_| JsValue::UNDEFINED)
        })
    }

    /// Joins `session` (`{ id, token }`), or with `undefined` creates a new
    /// server session holding the current state.
    pub fn authenticate(&self, session: JsValue) -> Promise {
        let s = self.session.clone();
        promise(None, async move {
            let joined = match session.is_undefined() || session.is_null() {
                true => None,
                false => Some(
                    server_session(&session)
                        .ok_or_else(|| bad_argument("session", "must be `{ id, token }`"))?,
                ),
            };
            s.authenticate(joined).await.map(|_| JsValue::UNDEFINED)
        })
    }

    /// Flushes and releases everything.
    pub fn close(&self) -> Promise {
        let s = self.session.clone();
        promise(Some(self.handlers.clone()), async move {
            s.close().await.map(|_| JsValue::UNDEFINED)
        })
    }

    /// Calls `handler` with every later event of `type` (`"*"`: all; only
    /// the next one when `once`); returns the id `off` takes.
    pub fn on(&self, kind: String, handler: Function, once: bool) -> u32 {
        self.handlers.borrow_mut().add(kind, handler, once)
    }

    /// Removes the handler `on` returned `id` for.
    pub fn off(&self, id: u32) {
        self.handlers.borrow_mut().remove(id);
    }

    /// Store, link and session figures.
    pub fn diagnostics(&self) -> JsValue {
        values::diagnostics(&self.session.diagnostics(), &self.name)
    }
}

/// `{ id, token }` of the page.
fn server_session(v: &JsValue) -> Option<ServerSession> {
    match from_js(v).ok()? {
        Value::Object(o) => Some(ServerSession {
            id: o.get("id")?.as_str()?.into(),
            token: o.get("token")?.as_str()?.into(),
        }),
        _ => None,
    }
}
