//! Tabs of one namespace keep each other current through a BroadcastChannel
//! `sessile:<ns>`: after each stored write a tab announces version, slot,
//! schema and state (or that it cleared the namespace). A tab that hears of
//! a head newer than the one it knows takes that state; its own unsaved
//! changes lose and are reported as a `conflict`. The compare-and-set on
//! write keeps a tab that has not heard yet from overwriting in any case.

use std::rc::{Rc, Weak};

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

use super::convert::{get, json_to_state, object};
use super::migrate::migrate;
use super::page::Listener;
use super::store::Store;

pub(crate) struct TabChannel {
    channel: web_sys::BroadcastChannel,
    tab_id: String,
    schema_version: u32,
    _listener: Listener,
}

impl TabChannel {
    /// Joins the namespace's channel; `None` where BroadcastChannel is missing.
    pub(crate) fn open(store: &Rc<Store>) -> Option<TabChannel> {
        let channel =
            web_sys::BroadcastChannel::new(&format!("sessile:{}", store.options.name)).ok()?;
        let weak: Weak<Store> = Rc::downgrade(store);
        let listener = Listener::new(&channel, "message", move |event| {
            let Some(store) = weak.upgrade() else {
                return;
            };
            let data = Reflect::get(&event, &"data".into()).unwrap_or(JsValue::UNDEFINED);
            receive(&store, &data);
        })?;
        Some(TabChannel {
            channel,
            tab_id: store.tab_id.clone(),
            schema_version: store.options.schema_version,
            _listener: listener,
        })
    }

    /// Tells the other tabs that `version` is stored.
    pub(crate) fn announce(&self, version: u64, slot: SlotId, generation: u16, json: &str) {
        let message = object(&[
            ("tab", self.tab_id.as_str().into()),
            ("version", (version as f64).into()),
            ("slot", slot.name().into()),
            ("generation", generation.into()),
            ("schema", self.schema_version.into()),
            ("json", json.into()),
        ]);
        let _ = self.channel.post_message(&message);
    }

    /// Tells the other tabs that the namespace was cleared (head `tombstone`).
    pub(crate) fn announce_cleared(&self, tombstone: u64) {
        let message = object(&[
            ("tab", self.tab_id.as_str().into()),
            ("version", (tombstone as f64).into()),
            ("cleared", true.into()),
        ]);
        let _ = self.channel.post_message(&message);
    }

    pub(crate) fn close(self) {
        self.channel.close();
    }
}

fn receive(store: &Rc<Store>, data: &JsValue) {
    let field = |k| get(data, k);
    if field("tab").and_then(|t| t.as_string()).as_deref() == Some(store.tab_id.as_str()) {
        return;
    }
    let Some(version) = field("version").and_then(|v| v.as_f64()).map(|v| v as u64) else {
        return;
    };
    let (known, unsaved, writing, local_state, local_version) = {
        let s = store.inner.borrow();
        let writing = s.in_flight.is_some();
        (
            s.stored_version,
            s.debouncer.has_unsaved(),
            writing,
            s.state.clone(),
            s.version,
        )
    };
    // Only a head newer than the one this tab knows is news; this tab's own
    // counter does not matter (it counts its unsaved changes too). A write of
    // this tab under way is refused by the compare-and-set and takes the
    // newer state itself.
    if version <= known || writing {
        return;
    }
    if field("cleared").and_then(|v| v.as_bool()) == Some(true) {
        store.reset_to_initial(version);
        store.emit(
            "session_updated",
            &[
                ("origin", "tab".into()),
                ("version", (version as f64).into()),
                ("cleared", true.into()),
            ],
        );
        return;
    }
    let Some(json) = field("json").and_then(|v| v.as_string()) else {
        return;
    };
    let schema = field("schema").and_then(|v| v.as_f64()).unwrap_or(0.0) as u32;
    let remote = migrate(
        &json,
        schema,
        store.options.schema_version,
        &store.options.migrate,
    )
    .and_then(|(json, _)| Ok((json_to_state(&json)?, json)));
    let (remote, json) = match remote {
        Ok(taken) => taken,
        Err(e @ (SessileError::SchemaTooNew { .. } | SessileError::MigrationFailed { .. })) => {
            store.block(e);
            return;
        }
        Err(_) => return,
    };
    let slot = match field("slot").and_then(|v| v.as_string()).as_deref() {
        Some("b") => SlotId::B,
        _ => SlotId::A,
    };
    let generation = field("generation").and_then(|v| v.as_f64()).unwrap_or(0.0) as u16;
    store.adopt(remote.clone(), json, version, slot, generation);
    if unsaved {
        store.report_conflict(local_state, remote, "remote", local_version, version);
    }
    store.emit(
        "session_updated",
        &[
            ("origin", "tab".into()),
            ("version", (version as f64).into()),
        ],
    );
}
