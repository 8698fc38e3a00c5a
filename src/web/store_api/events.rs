//! The store's events and diagnostics as the plain objects the package's
//! types declare (`StoreEvent`, `StoreDiagnostics` in js/src/store-types.ts),
//! built field by field: no serde derive on the event enum, no
//! `core::fmt` (docs/PERFORMANCE.md, "The JS boundary").

use js_sys::Array;
use wasm_bindgen::JsValue;

use super::state;
use crate::core::error::SessileError;
use crate::core::session::store::{During, RestoreOutcome, StoreEvent, Winner};
use crate::core::slots::SlotId;
use crate::web::convert::{error_summary, hex32, object};
use crate::web::store::Diagnostics;

/// Why an evicted namespace is reported, as the page reads it.
const EVICTED: &str =
    "storage that held this session is empty: the browser evicted it or site data was cleared";

fn number(n: u64) -> JsValue {
    JsValue::from(n as f64)
}

fn skipped(list: &[(SlotId, SessileError)]) -> JsValue {
    list.iter()
        .map(|(slot, error)| -> JsValue {
            object(&[
                ("slot", slot.name().into()),
                ("error", error_summary(error)),
            ])
            .into()
        })
        .collect::<Array>()
        .into()
}

fn restored(outcome: &RestoreOutcome) -> Vec<(&'static str, JsValue)> {
    match outcome {
        RestoreOutcome::Restored {
            from,
            version,
            schema_version,
            migrated,
            skipped: list,
        } => vec![
            ("outcome", "restored".into()),
            ("from", from.name().into()),
            ("version", number(*version)),
            ("schemaVersion", JsValue::from(*schema_version)),
            ("migrated", JsValue::from_bool(*migrated)),
            ("skipped", skipped(list)),
        ],
        RestoreOutcome::Evicted { last_version } => vec![
            ("outcome", "evicted".into()),
            ("lastVersion", last_version.as_str().into()),
            ("reason", EVICTED.into()),
        ],
        RestoreOutcome::Unreadable { skipped: list } => {
            vec![("outcome", "unreadable".into()), ("skipped", skipped(list))]
        }
        RestoreOutcome::Fresh => vec![("outcome", "fresh".into())],
    }
}

/// `{ type, ...fields }` of an event.
pub(crate) fn event_to_js(event: &StoreEvent) -> JsValue {
    let mut fields: Vec<(&str, JsValue)> = Vec::new();
    let kind = match event {
        StoreEvent::StateRestored(outcome) => {
            fields = restored(outcome);
            "state_restored"
        }
        StoreEvent::StorageDegraded {
            backend,
            using,
            error,
        } => {
            fields.push(("backend", backend.name().into()));
            fields.push(("using", using.name().into()));
            fields.push(("error", error_summary(error)));
            "storage_degraded"
        }
        StoreEvent::ErrorOccurred { error, during } => {
            let during = match during {
                During::Restore => "restore",
                During::Write => "write",
                During::Sync => "sync",
            };
            fields.push(("error", error_summary(error)));
            fields.push(("during", during.into()));
            "error_occurred"
        }
        StoreEvent::Conflict {
            local,
            remote,
            winner,
            local_version,
            remote_version,
        } => {
            let winner = match winner {
                Winner::Remote => "remote",
                Winner::Local => "local",
            };
            fields.push(("local", state::to_js(local)));
            fields.push(("remote", state::to_js(remote)));
            fields.push(("winner", winner.into()));
            fields.push(("localVersion", number(*local_version)));
            fields.push(("remoteVersion", number(*remote_version)));
            "conflict"
        }
        StoreEvent::SessionUpdated {
            version, cleared, ..
        } => {
            fields.push(("origin", "tab".into()));
            fields.push(("version", number(*version)));
            if *cleared {
                fields.push(("cleared", JsValue::TRUE));
            }
            "session_updated"
        }
    };
    fields.insert(0, ("type", kind.into()));
    object(&fields).into()
}

fn summary_or_null(error: &Option<SessileError>) -> JsValue {
    error.as_ref().map_or(JsValue::NULL, error_summary)
}

/// What `diagnostics()` reports.
pub(crate) fn diagnostics_to_js(name: &str, d: &Diagnostics) -> JsValue {
    let s = &d.store;
    let degraded: Array = s
        .degraded
        .iter()
        .map(|(kind, error)| -> JsValue {
            object(&[
                ("backend", kind.name().into()),
                ("error", error_summary(error)),
            ])
            .into()
        })
        .collect();
    let last_write = s.last_write.as_ref().map_or(JsValue::NULL, |w| {
        object(&[
            ("slot", w.slot.name().into()),
            ("generation", JsValue::from(w.generation)),
            ("checksum", hex32(w.checksum).into()),
            ("storedBytes", number(w.stored_bytes as u64)),
            ("compressed", JsValue::from_bool(w.compressed)),
            ("at", number(w.at)),
        ])
        .into()
    });
    object(&[
        ("name", name.into()),
        (
            "backend",
            s.backend.map_or(JsValue::NULL, |b| b.name().into()),
        ),
        (
            "durable",
            d.durable.map_or(JsValue::NULL, JsValue::from_bool),
        ),
        ("webLocks", JsValue::from_bool(d.web_locks)),
        ("degraded", degraded.into()),
        ("version", number(s.version)),
        ("storedVersion", number(s.stored_version)),
        ("unsaved", JsValue::from_bool(s.unsaved)),
        ("writing", JsValue::from_bool(s.writing)),
        ("rawBytes", number(s.raw_bytes as u64)),
        ("lastWrite", last_write),
        ("lastError", summary_or_null(&s.last_error)),
        ("blocked", summary_or_null(&s.blocked)),
    ])
    .into()
}
