//! Tabs of one namespace keep each other current through a BroadcastChannel
//! `sessile:<ns>`: after each stored write a tab announces version, slot and
//! state; a tab that sees a newer version takes it (unsaved older changes of
//! its own are reported as a `conflict`, the newer stored state wins). The
//! version check on write keeps a stale tab from overwriting in any case.

use std::rc::{Rc, Weak};

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::core::slots::SlotId;

use super::convert::{get, json_to_state, object};
use super::page::Listener;
use super::store::Store;

pub(crate) struct TabChannel {
    channel: web_sys::BroadcastChannel,
    tab_id: String,
    _listener: Listener,
}

impl TabChannel {
    /// Joins the namespace's channel; `None` where BroadcastChannel is missing.
    pub(crate) fn open(store: &Rc<Store>) -> Option<TabChannel> {
        let channel =
            web_sys::BroadcastChannel::new(&format!("sessile:{}", store.options.name)).ok()?;
        let tab_id = format!(
            "{:x}",
            (js_sys::Math::random() * 9_007_199_254_740_991.0) as u64
        );
        let weak: Weak<Store> = Rc::downgrade(store);
        let own = tab_id.clone();
        let listener = Listener::new(&channel, "message", move |event| {
            let Some(store) = weak.upgrade() else { return };
            let data = Reflect::get(&event, &"data".into()).unwrap_or(JsValue::UNDEFINED);
            receive(&store, &own, &data);
        })?;
        Some(TabChannel {
            channel,
            tab_id,
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
            ("json", json.into()),
        ]);
        let _ = self.channel.post_message(&message);
    }

    pub(crate) fn close(self) {
        self.channel.close();
    }
}

fn receive(store: &Rc<Store>, own_tab: &str, data: &JsValue) {
    let field = |k| get(data, k);
    if field("tab").and_then(|t| t.as_string()).as_deref() == Some(own_tab) {
        return;
    }
    let (Some(version), Some(json)) = (
        field("version").and_then(|v| v.as_f64()).map(|v| v as u64),
        field("json").and_then(|v| v.as_string()),
    ) else {
        return;
    };
    let slot = match field("slot").and_then(|v| v.as_string()).as_deref() {
        Some("b") => SlotId::B,
        _ => SlotId::A,
    };
    let generation = field("generation").and_then(|v| v.as_f64()).unwrap_or(0.0) as u16;
    let (mine, unsaved, local_state) = {
        let s = store.inner.borrow();
        (s.version, s.debouncer.has_unsaved(), s.state.clone())
    };
    if version <= mine && !(unsaved && version == mine) {
        return;
    }
    let Ok(remote) = json_to_state(&json) else {
        return;
    };
    store.adopt(remote.clone(), json, version, slot, generation);
    if unsaved {
        store.report_conflict(local_state, remote, mine, version);
    }
    store.emit(
        "session_updated",
        &[
            ("origin", "tab".into()),
            ("version", (version as f64).into()),
        ],
    );
}
