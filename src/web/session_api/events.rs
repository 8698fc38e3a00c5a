//! A session's events as the page gets them (`SessionEvent` in
//! js/src/types.ts: `{ type, ...fields }`), and the page's handlers:
//! `onEvent`, then those of the event's type, then those of `"*"`, each in
//! the order added. A handler that throws is logged and reported as an
//! `error_occurred` with `HANDLER_FAILED`; sessile goes on.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Function};
use wasm_bindgen::JsValue;

use super::values::{summary, to_js};
use crate::core::error::SessileError;
use crate::core::session::engine::SessionEvent;
use crate::core::session::link::{ConflictWinner, LossReason, Transport};
use crate::core::session::store::{During, RestoreOutcome, StoreEvent, Winner};
use crate::core::slots::SlotId;
use crate::web::convert::object;
use crate::web::store::page::js_message;

/// The page's handlers of one session.
#[derive(Default)]
pub(crate) struct Handlers {
    /// `(id, type or "*", handler, once)`, in the order added; id 0 is `onEvent`.
    entries: Vec<(u32, String, Function, bool)>,
    next: u32,
}

/// Handlers shared by the session's event callback and its JS object.
pub(crate) type SharedHandlers = Rc<RefCell<Handlers>>;

impl Handlers {
    /// Adds `handler` for events of `kind` (`"*"`: all); returns its id.
    pub(crate) fn add(&mut self, kind: String, handler: Function, once: bool) -> u32 {
        self.next += 1;
        self.entries.push((self.next, kind, handler, once));
        self.next
    }

    /// Removes handler `id` (nothing when it is gone).
    pub(crate) fn remove(&mut self, id: u32) {
        self.entries.retain(|(i, ..)| *i != id);
    }

    /// Removes every handler.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    /// `onEvent` (registered first, under `"*"`, with id 0).
    pub(crate) fn set_on_event(&mut self, handler: Function) {
        self.entries.insert(0, (0, "*".into(), handler, false));
    }

    /// Who gets an event of `kind`, in order: `onEvent`, that type's, `"*"`'s.
    fn targets(&self, kind: &str) -> Vec<u32> {
        let on_event = self.entries.iter().filter(|e| e.0 == 0);
        let typed = self.entries.iter().filter(|e| e.0 != 0 && e.1 == kind);
        let all = self.entries.iter().filter(|e| e.0 != 0 && e.1 == "*");
        on_event.chain(typed).chain(all).map(|e| e.0).collect()
    }

    /// Handler `id` if it is still there; a `once` handler is removed.
    fn take(&mut self, id: u32) -> Option<Function> {
        let at = self.entries.iter().position(|e| e.0 == id)?;
        let handler = self.entries[at].2.clone();
        if self.entries[at].3 {
            self.entries.remove(at);
        }
        Some(handler)
    }
}

/// Gives `event` to the page's handlers.
pub(crate) fn deliver(handlers: &SharedHandlers, event: &SessionEvent) {
    let (kind, js) = event_js(event);
    dispatch(handlers, kind, &js, false);
}

fn dispatch(handlers: &SharedHandlers, kind: &str, event: &JsValue, reporting: bool) {
    let targets = handlers.borrow().targets(kind);
    for id in targets {
        // A handler removed by an earlier one is skipped.
        let Some(handler) = handlers.borrow_mut().take(id) else {
            continue;
        };
        if let Err(thrown) = handler.call1(&JsValue::NULL, event) {
            let what = ["sessile: a \"", kind, "\" event handler threw"].concat();
            web_sys::console::error_2(&what.into(), &thrown);
            // A handler of this very report that throws again is only logged.
            if reporting {
                continue;
            }
            let message = [
                "a \"",
                kind,
                "\" event handler threw: ",
                &js_message(&thrown),
            ]
            .concat();
            let report = sync_error("HANDLER_FAILED", &message, false);
            dispatch(handlers, "error_occurred", &report, true);
        }
    }
}

fn sync_error(code: &str, message: &str, terminal: bool) -> JsValue {
    object(&[
        ("type", "error_occurred".into()),
        (
            "error",
            object(&[("code", code.into()), ("message", message.into())]).into(),
        ),
        ("during", "sync".into()),
        ("terminal", terminal.into()),
    ])
    .into()
}

fn n(v: u64) -> JsValue {
    JsValue::from(v as f64)
}

fn transport(t: Transport) -> JsValue {
    match t {
        Transport::WebSocket => "websocket".into(),
        Transport::Http => "http".into(),
    }
}

fn skipped(list: &[(SlotId, SessileError)]) -> JsValue {
    let a: Array = list
        .iter()
        .map(|(slot, e)| {
            JsValue::from(object(&[
                ("slot", slot.name().into()),
                ("error", summary(e)),
            ]))
        })
        .collect();
    a.into()
}

/// An event's `type` and its object.
pub(crate) fn event_js(event: &SessionEvent) -> (&'static str, JsValue) {
    let (kind, mut fields): (&'static str, Vec<(&str, JsValue)>) = match event {
        SessionEvent::Store(e) => return store_event_js(e),
        SessionEvent::SessionCreated { id } => {
            ("session_created", vec![("id", id.as_str().into())])
        }
        SessionEvent::SessionExpired { expires_at, status } => (
            "session_expired",
            vec![
                ("expiresAt", n(*expires_at)),
                ("status", status.as_str().into()),
            ],
        ),
        SessionEvent::SessionTerminated { reason, status } => (
            "session_terminated",
            vec![
                ("reason", reason.as_str().into()),
                ("status", status.as_str().into()),
            ],
        ),
        SessionEvent::StatusChanged { status } => {
            ("status_changed", vec![("status", status.as_str().into())])
        }
        SessionEvent::SessionUpdated {
            version,
            server_version,
        } => (
            "session_updated",
            vec![
                ("origin", "server".into()),
                ("version", n(*version)),
                ("serverVersion", n(*server_version)),
            ],
        ),
        SessionEvent::ConnectionEstablished { transport: t } => {
            ("connection_established", vec![("transport", transport(*t))])
        }
        SessionEvent::ConnectionLost { reason } => {
            ("connection_lost", vec![("reason", loss(*reason).into())])
        }
        SessionEvent::ConnectionRestored { transport: t } => {
            ("connection_restored", vec![("transport", transport(*t))])
        }
        SessionEvent::StateSynchronized { version, confirmed } => (
            "state_synchronized",
            vec![
                ("version", n(*version)),
                ("confirmed", n(*confirmed as u64)),
            ],
        ),
        SessionEvent::AuthRequired { code } => {
            ("auth_required", vec![("code", code.as_str().into())])
        }
        SessionEvent::AuthSuccess { id } => ("auth_success", vec![("id", id.as_str().into())]),
        SessionEvent::AuthFailed { code, message } => (
            "auth_failed",
            vec![
                ("code", code.as_str().into()),
                ("message", message.as_str().into()),
            ],
        ),
        SessionEvent::Conflict {
            op,
            local,
            server,
            winner,
        } => (
            "conflict",
            vec![
                ("op", n(op.seq)),
                ("local", to_js(local)),
                ("server", to_js(server)),
                ("winner", winner_name(*winner).into()),
            ],
        ),
        SessionEvent::ErrorOccurred {
            code,
            message,
            terminal,
        } => {
            return ("error_occurred", sync_error(code, message, *terminal));
        }
    };
    fields.insert(0, ("type", kind.into()));
    (kind, object(&fields).into())
}

fn winner_name(w: ConflictWinner) -> &'static str {
    match w {
        ConflictWinner::Server => "server",
    }
}

fn loss(r: LossReason) -> &'static str {
    match r {
        LossReason::Closed => "closed",
        LossReason::Dead => "dead",
        LossReason::Timeout => "timeout",
        LossReason::Resync => "resync",
        LossReason::Offline => "offline",
        LossReason::Server => "server",
        LossReason::Upgrade => "upgrade",
        LossReason::Frozen => "frozen",
    }
}

/// The store's events (`StoreEvent` in js/src/store/types.ts).
fn store_event_js(event: &StoreEvent) -> (&'static str, JsValue) {
    let (kind, fields): (&'static str, Vec<(&str, JsValue)>) = match event {
        StoreEvent::StateRestored(outcome) => ("state_restored", restored(outcome)),
        StoreEvent::StorageDegraded {
            backend,
            using,
            error,
        } => (
            "storage_degraded",
            vec![
                ("backend", backend.name().into()),
                ("using", using.name().into()),
                ("error", summary(error)),
            ],
        ),
        StoreEvent::ErrorOccurred { error, during } => (
            "error_occurred",
            vec![
                ("error", summary(error)),
                ("during", during_name(*during).into()),
            ],
        ),
        StoreEvent::Conflict {
            local,
            remote,
            winner,
            local_version,
            remote_version,
        } => (
            "conflict",
            vec![
                ("local", to_js(local)),
                ("remote", to_js(remote)),
                (
                    "winner",
                    if *winner == Winner::Local {
                        "local"
                    } else {
                        "remote"
                    }
                    .into(),
                ),
                ("localVersion", n(*local_version)),
                ("remoteVersion", n(*remote_version)),
            ],
        ),
        StoreEvent::SessionUpdated {
            version, cleared, ..
        } => {
            let mut f = vec![("origin", "tab".into()), ("version", n(*version))];
            if *cleared {
                f.push(("cleared", true.into()));
            }
            ("session_updated", f)
        }
    };
    let mut all = vec![("type", kind.into())];
    all.extend(fields);
    (kind, object(&all).into())
}

fn during_name(d: During) -> &'static str {
    match d {
        During::Restore => "restore",
        During::Write => "write",
        During::Sync => "sync",
    }
}

fn restored(outcome: &RestoreOutcome) -> Vec<(&'static str, JsValue)> {
    match outcome {
        RestoreOutcome::Restored { from, version, schema_version, migrated, skipped: s } => vec![
            ("outcome", "restored".into()),
            ("from", from.name().into()),
            ("version", n(*version)),
            ("schemaVersion", JsValue::from(*schema_version)),
            ("migrated", (*migrated).into()),
            ("skipped", skipped(s)),
        ],
        RestoreOutcome::Evicted { last_version } => vec![
            ("outcome", "evicted".into()),
            ("lastVersion", last_version.as_str().into()),
            (
                "reason",
                "storage that held this session is empty: the browser evicted it or site data was cleared".into(),
            ),
        ],
        RestoreOutcome::Unreadable { skipped: s } => vec![("outcome", "unreadable".into()), ("skipped", skipped(s))],
        RestoreOutcome::Fresh => vec![("outcome", "fresh".into())],
    }
}
