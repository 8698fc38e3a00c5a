//! IndexedDB backend: one database `sessile:<namespace>` with binary slot
//! values, written by a compare-and-set transaction (storage/idb.js). When
//! the browser closes the connection (eviction, "clear site data", a version
//! change from another tab) the store notices and reopens it.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::{Array, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

use crate::core::error::SessileError;
use crate::core::slots::SlotId;

use super::local::storage_error;
use super::{SlotStorage, SlotsRead};
use crate::web::convert::js_name;

#[wasm_bindgen(module = "/src/web/storage/idb.js")]
extern "C" {
    #[wasm_bindgen(js_name = idbOpen)]
    fn idb_open(name: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbWatchClose)]
    fn idb_watch_close(db: &JsValue, onclose: &js_sys::Function);
    #[wasm_bindgen(js_name = idbRelease)]
    fn idb_release(db: &JsValue);
    #[wasm_bindgen(js_name = idbReadAll)]
    fn idb_read_all(db: &JsValue) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbWriteIfHead)]
    fn idb_write_if_head(
        db: &JsValue,
        slot: &str,
        bytes: &Uint8Array,
        base: f64,
        version: f64,
    ) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbClear)]
    fn idb_clear(db: &JsValue, tombstone: f64) -> js_sys::Promise;
}

pub(crate) struct IdbSlots {
    db: JsValue,
    closed: Rc<Cell<bool>>,
    /// The connection's close handler; lives as long as this value.
    _onclose: Closure<dyn FnMut()>,
}

impl IdbSlots {
    pub(crate) async fn open(namespace: &str) -> Result<Self, SessileError> {
        let has_idb = web_sys::window()
            .map(|w| js_sys::Reflect::has(&w, &"indexedDB".into()).unwrap_or(false))
            .unwrap_or(false);
        if !has_idb {
            return Err(SessileError::StorageUnavailable {
                reason: "IndexedDB is not available (no window or no indexedDB)".into(),
            });
        }
        // The quota estimate runs while the database opens.
        let estimate = crate::web::page::start_quota_estimate();
        let opening = idb_open(&format!("sessile:{namespace}"));
        let db = JsFuture::from(opening)
            .await
            .map_err(|e| storage_error(&e, 0))?;
        if crate::web::page::quota_of(estimate).await == Some(0.0) {
            idb_release(&db);
            return Err(SessileError::StorageUnavailable {
                reason: "the browser grants this origin no storage quota".into(),
            });
        }
        let closed = Rc::new(Cell::new(false));
        let flag = closed.clone();
        let onclose = Closure::<dyn FnMut()>::new(move || flag.set(true));
        idb_watch_close(&db, onclose.as_ref().unchecked_ref());
        let slots = Self {
            db,
            closed,
            _onclose: onclose,
        };
        // A read proves the database is usable (private modes that expose
        // indexedDB but fail every transaction are caught here).
        slots.read_all().await?;
        Ok(slots)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Awaits an IndexedDB promise, mapping a rejection to a coded error. An
    /// InvalidStateError means the browser closed the connection without an
    /// event (Safari does): the store reopens it before the next operation.
    async fn settle(
        &self,
        promise: js_sys::Promise,
        bytes: usize,
    ) -> Result<JsValue, SessileError> {
        JsFuture::from(promise).await.map_err(|e| {
            if js_name(&e) == "InvalidStateError" {
                self.closed.set(true);
            }
            storage_error(&e, bytes)
        })
    }
}

impl Drop for IdbSlots {
    fn drop(&mut self) {
        // Detach before the close handler is freed with this value.
        idb_release(&self.db);
    }
}

impl SlotStorage for IdbSlots {
    async fn read_all(&self) -> Result<SlotsRead, SessileError> {
        let out: Array = self.settle(idb_read_all(&self.db), 0).await?.into();
        let bytes = |i: u32| -> Result<Option<Vec<u8>>, SessileError> {
            let v = out.get(i);
            Ok(v.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec))
        };
        Ok(SlotsRead {
            a: bytes(0),
            b: bytes(1),
            head: out.get(2).as_f64().map_or(0, |v| v as u64),
        })
    }

    async fn write_if_head(
        &self,
        slot: SlotId,
        bytes: &[u8],
        base: u64,
        version: u64,
    ) -> Result<(), SessileError> {
        let array = Uint8Array::from(bytes);
        let refused = self
            .settle(
                idb_write_if_head(&self.db, slot.name(), &array, base as f64, version as f64),
                bytes.len(),
            )
            .await?;
        match refused.as_f64() {
            Some(stored) if stored >= 0.0 => Err(SessileError::StaleWrite {
                stored: stored as u64,
                attempted: version,
            }),
            _ => Ok(()),
        }
    }

    async fn clear(&self, tombstone: u64) -> Result<(), SessileError> {
        self.settle(idb_clear(&self.db, tombstone as f64), 0)
            .await
            .map(|_| ())
    }
}
