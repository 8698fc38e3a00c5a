//! The namespace's BroadcastChannel (`sessile:<ns>`): every announcement
//! of the engine is posted there, and every message heard is handed back
//! as a [`TabMessage`] (the wire form is `core::session::store::wire`'s, the
//! TypeScript store's: a plain object, converted through JSON text). Absent where BroadcastChannel is; the
//! compare-and-set on the stored head still keeps tabs from overwriting.

use wasm_bindgen::prelude::*;
use web_sys::{BroadcastChannel, MessageEvent};

use crate::core::session::store::wire::TabWire;
use crate::core::session::store::TabMessage;
use crate::web::convert::{json_text, json_value};

/// An open channel and its message handler.
pub(crate) struct TabChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl TabChannel {
    /// Joins channel `name`; `None` where BroadcastChannel is missing or refused.
    pub(crate) fn open(name: &str, mut heard: impl FnMut(TabMessage) + 'static) -> Option<Self> {
        let channel = BroadcastChannel::new(name).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            // As JSON text, read with the derive's rules, as
            // serde-wasm-bindgen read the object (docs/PERFORMANCE.md).
            let wire = json_text(&event.data())
                .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
                .and_then(TabWire::from_json);
            if let Some(message) = wire.and_then(TabWire::into_message) {
                heard(message);
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Self {
            channel,
            _on_message: on_message,
        })
    }

    /// Tells the other tabs; a closed channel is ignored (they read the
    /// stored state on their next write).
    pub(crate) fn post(&self, message: &TabMessage) {
        let value = json_value(&TabWire::from_message(message).to_json());
        if !value.is_undefined() {
            let _ = self.channel.post_message(&value);
        }
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}
