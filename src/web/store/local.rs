//! localStorage for the store (through gloo-storage, once the page is known
//! to let this document use it; gloo would throw otherwise): the slots of
//! the localStorage backend (base64 text under `sessile:<ns>:a` / `:b`, the
//! head a decimal under `:head`, its `includes` as JSON under
//! `:includes`), every tab's rescue copy (`sessile:<ns>:rescue:<client>`,
//! `<base>:<base64>`, written synchronously on `pagehide`) and the eviction
//! marker (`sessile:<ns>:marker`); also any key under a prefix (a
//! session's pending register). Names and text forms are
//! `core::session::store::layout`'s. A blocked store is
//! `STORAGE_UNAVAILABLE`, a full one `QUOTA_EXCEEDED`; a failed write
//! leaves the previous value.

use gloo_storage::errors::StorageError;
use gloo_storage::{LocalStorage, Storage};

use super::backend::{named_error, storage_error, unavailable, SlotsRead};
use super::page::js_message;
use crate::core::error::SessileError;
use crate::core::session::store::layout::{
    parse_rescue, parse_slot, parse_version, rescue_text, slot_text, version_text, HeadRecord,
    Layout, KEY_PREFIX, PROBE_KEY,
};
use crate::core::session::store::{Head, RescueCopy, Stored, WriteResult};
use crate::core::slots::SlotId;

/// localStorage, if this document may use it.
fn storage() -> Result<web_sys::Storage, SessileError> {
    let window = web_sys::window()
        .ok_or_else(|| unavailable("no window (server-side rendering or a worker)"))?;
    match window.local_storage() {
        // Reachable: gloo's handle (the same object) no longer throws.
        Ok(Some(_)) => Ok(LocalStorage::raw()),
        Ok(None) => Err(unavailable("localStorage is not available in this browser")),
        Err(e) => Err(unavailable(
            &["localStorage is blocked: ", &js_message(&e)].concat(),
        )),
    }
}

fn full(key: &str) -> String {
    [KEY_PREFIX, key].concat()
}

/// Writes `text` under `sessile:<key>` (localStorage counts two bytes a character).
pub(crate) fn write_text(key: &str, text: &str) -> Result<(), SessileError> {
    storage()?
        .set_item(&full(key), text)
        .map_err(|e| storage_error(&e, text.len() * 2))
}

/// The text under `sessile:<key>`, `None` when there is none.
pub(crate) fn read_text(key: &str) -> Result<Option<String>, SessileError> {
    storage()?
        .get_item(&full(key))
        .map_err(|e| storage_error(&e, 0))
}

/// Removes `sessile:<key>`, ignoring a storage that cannot be reached.
pub(crate) fn forget(key: &str) {
    if storage().is_ok() {
        LocalStorage::delete(full(key));
    }
}

/// The localStorage backend; a read-compare-write runs in one task.
pub(crate) struct LocalBackend {
    layout: Layout,
}

impl LocalBackend {
    /// Disabled storage, a zero quota and old Safari private mode refuse
    /// the probe write.
    pub(crate) fn open(layout: &Layout) -> Result<Self, SessileError> {
        write_text(PROBE_KEY, "1")?;
        forget(PROBE_KEY);
        Ok(Self {
            layout: layout.clone(),
        })
    }

    fn head(&self) -> Result<Head, SessileError> {
        let version = parse_version(read_text(&self.layout.head_key())?.as_deref());
        // Checked again: a write under way would never end if the page lost
        // localStorage since the head was read.
        storage()?;
        // Read as text and parsed from bytes, as every JSON text of the
        // module is: gloo's `get` parses from a `&str`, which brings a
        // second copy of serde_json's parser into the wasm module.
        let record = read_text(&self.layout.includes_key())
            .ok()
            .flatten()
            .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
            .and_then(HeadRecord::from_json)
            .unwrap_or_default();
        Ok(record.for_head(version))
    }

    fn slot(&self, slot: SlotId) -> Stored {
        match read_text(&self.layout.slot_key(slot)) {
            Ok(text) => parse_slot(text.as_deref()),
            Err(error) => Stored::Failed(error),
        }
    }

    pub(crate) fn read(&self) -> Result<SlotsRead, SessileError> {
        let head = self.head()?;
        Ok(SlotsRead {
            a: self.slot(SlotId::A),
            b: self.slot(SlotId::B),
            head,
        })
    }

    pub(crate) fn write_if_head(
        &self,
        slot: SlotId,
        base: u64,
        head: &Head,
        bytes: &[u8],
    ) -> WriteResult {
        let failed = |error| WriteResult::Failed {
            error,
            connection_closed: false,
        };
        let stored = match self.head() {
            Ok(h) => h.version,
            Err(error) => return failed(error),
        };
        if stored != base {
            return WriteResult::Refused { head: stored };
        }
        // The includes first: until the head moves they name another head
        // and are ignored, so a failure half way leaves the old copy whole.
        if let Err(error) = self.write_includes(head) {
            return failed(error);
        }
        let written = write_text(&self.layout.slot_key(slot), &slot_text(bytes))
            .and_then(|()| write_text(&self.layout.head_key(), &version_text(head.version)));
        match written {
            Ok(()) => WriteResult::Stored,
            Err(error) => failed(error),
        }
    }

    fn write_includes(&self, head: &Head) -> Result<(), SessileError> {
        let key = full(&self.layout.includes_key());
        if head.includes.is_empty() {
            storage()?;
            LocalStorage::delete(key);
            return Ok(());
        }
        let record = HeadRecord::of(head).to_json();
        // localStorage counts two bytes a character; the JSON is ASCII.
        let bytes = serde_json::to_vec(&record).map_or(0, |j| j.len() * 2);
        storage()?;
        LocalStorage::set(key, &record).map_err(|e| match e {
            StorageError::JsError(js) => named_error(&js.name, &js.message, bytes),
            _ => unavailable("the head's includes could not be written"),
        })
    }

    pub(crate) fn clear(&self, at_least: u64) -> Result<u64, SessileError> {
        let tombstone = at_least.max(self.head()?.version + 1);
        storage()?;
        for key in [
            self.layout.slot_key(SlotId::A),
            self.layout.slot_key(SlotId::B),
            self.layout.includes_key(),
        ] {
            LocalStorage::delete(full(&key));
        }
        write_text(&self.layout.head_key(), &version_text(tombstone))?;
        Ok(tombstone)
    }
}

/// The full keys starting with `sessile:<prefix>` (none when localStorage
/// cannot be reached).
fn keys_under(prefix: &str) -> Vec<String> {
    let Ok(ls) = storage() else {
        return Vec::new();
    };
    let prefix = full(prefix);
    (0..LocalStorage::length())
        .filter_map(|i| ls.key(i).ok().flatten())
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

/// The full keys of every rescue copy of the namespace.
fn rescue_keys(layout: &Layout) -> Vec<String> {
    keys_under(&layout.rescue_prefix())
}

/// Every `(rest of the key, text)` under `sessile:<prefix>`.
pub(crate) fn read_under(prefix: &str) -> Vec<(String, String)> {
    let cut = KEY_PREFIX.len() + prefix.len();
    keys_under(prefix)
        .into_iter()
        .filter_map(|key| {
            let text = read_text(&key[KEY_PREFIX.len()..]).ok().flatten()?;
            Some((key[cut..].to_string(), text))
        })
        .collect()
}

/// Every tab's rescue copy of the namespace.
pub(crate) fn read_rescues(layout: &Layout) -> Vec<RescueCopy> {
    let Ok(ls) = storage() else {
        return Vec::new();
    };
    let mut copies = Vec::new();
    for key in rescue_keys(layout) {
        let Ok(Some(text)) = ls.get_item(&key) else {
            continue;
        };
        let (base, bytes) = parse_rescue(&text);
        let key = key[KEY_PREFIX.len()..].to_string();
        copies.push(RescueCopy { key, base, bytes });
    }
    copies
}

/// Stores a rescue copy synchronously; a failure is ignored (the page is
/// going away and nothing more can be done).
pub(crate) fn write_rescue(key: &str, base: u64, bytes: &[u8]) {
    let _ = write_text(key, &rescue_text(base, bytes));
}

/// Removes every tab's rescue copy of the namespace.
pub(crate) fn forget_rescues(layout: &Layout) {
    for key in rescue_keys(layout) {
        LocalStorage::delete(key);
    }
}

/// The eviction marker in localStorage.
pub(crate) fn read_marker(layout: &Layout) -> Option<String> {
    read_text(&layout.marker_key()).ok().flatten()
}

/// Sets the eviction marker in localStorage (the cookie is the fallback).
pub(crate) fn write_marker(layout: &Layout, version: u64) {
    let _ = write_text(&layout.marker_key(), &version_text(version));
}
