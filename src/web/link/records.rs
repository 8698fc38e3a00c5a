//! Where the link's record is kept between loads. [`RecordStore`] is what
//! the driver needs (load once, save after every change);
//! [`IndexedDbRecords`] keeps it where the TypeScript client kept it: the
//! database `sessile:<name>:link:<client>`, object store `slots`, the
//! snapshot envelope in slot `a` or `b` (the newer valid one restored,
//! writes alternating, `crate::core::session::link::stored`) and `{version}`
//! under `head`, written in one transaction. [`MemoryRecords`] keeps it for
//! the page's life only.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{DomException, Event, IdbDatabase, IdbRequest, IdbTransaction, IdbTransactionMode};

use super::browser::now;
use crate::core::error::SessileError;
use crate::core::session::link::stored::{self, RecordSlots, Restored, SLOTS_STORE};
use crate::core::slots::SlotRead;

type EventHandler = Closure<dyn FnMut(Event)>;

/// A future of the driver's single thread.
pub type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

/// Keeps one link's record (the store's state: `{session, record}` as JSON
/// text). Implement it to keep the record elsewhere
/// ([`Link::connect_with`](super::Link::connect_with)).
pub trait RecordStore {
    /// What is stored: the newest valid copy's text, and why stored bytes
    /// were passed over. `Err` when the storage cannot be read at all.
    fn load(&self) -> LocalFuture<Result<Restored, SessileError>>;
    /// Stores `text`; resolves once it is durable (or with why not:
    /// `QUOTA_EXCEEDED`, `STORAGE_UNAVAILABLE`, `STATE_TOO_LARGE`).
    fn save(&self, text: String) -> LocalFuture<Result<(), SessileError>>;
}

/// The record in memory: gone with the page.
#[derive(Debug, Default)]
pub struct MemoryRecords {
    text: RefCell<Option<String>>,
}

impl MemoryRecords {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RecordStore for MemoryRecords {
    fn load(&self) -> LocalFuture<Result<Restored, SessileError>> {
        let text = self.text.borrow().clone();
        Box::pin(async move {
            Ok(Restored {
                text,
                ..Restored::default()
            })
        })
    }

    fn save(&self, text: String) -> LocalFuture<Result<(), SessileError>> {
        *self.text.borrow_mut() = Some(text);
        Box::pin(async { Ok(()) })
    }
}

/// The record in IndexedDB, in the TypeScript client's layout.
pub struct IndexedDbRecords {
    inner: Rc<Inner>,
}

struct Inner {
    name: String,
    db: RefCell<Option<IdbDatabase>>,
    slots: RefCell<RecordSlots>,
    /// Closes and forgets the connection when another tab upgrades the
    /// database or the browser wants it back.
    on_versionchange: RefCell<Option<EventHandler>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(db) = self.db.get_mut().take() {
            db.set_onversionchange(None);
            db.set_onclose(None);
            db.close();
        }
    }
}

impl IndexedDbRecords {
    /// The record store of `client` in `namespace`; nothing opens until
    /// the first load or save.
    pub fn new(namespace: &str, client: &str) -> Self {
        IndexedDbRecords {
            inner: Rc::new(Inner {
                name: stored::database_name(namespace, client),
                db: RefCell::new(None),
                slots: RefCell::new(RecordSlots::new()),
                on_versionchange: RefCell::new(None),
            }),
        }
    }
}

impl RecordStore for IndexedDbRecords {
    fn load(&self) -> LocalFuture<Result<Restored, SessileError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.load().await })
    }

    fn save(&self, text: String) -> LocalFuture<Result<(), SessileError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.save(&text).await })
    }
}

impl Inner {
    async fn load(self: &Rc<Self>) -> Result<Restored, SessileError> {
        let db = self.database().await?;
        let (tx, store) = transaction(&db, IdbTransactionMode::Readonly)?;
        let get = |key: &str| store.get(&key.into()).map_err(|e| storage_error(&e, 0));
        let (a, b, head) = (get("a")?, get("b")?, get("head")?);
        settled(&tx, 0).await?;
        let (a, b) = (bytes_of(&a), bytes_of(&b));
        fn read(v: &Result<Option<Vec<u8>>, SessileError>) -> SlotRead<'_> {
            match v {
                Ok(Some(bytes)) => SlotRead::Bytes(bytes.as_slice()),
                Ok(None) => SlotRead::Missing,
                Err(e) => SlotRead::Failed(e.clone()),
            }
        }
        let head = head_version(&head.result().unwrap_or(JsValue::UNDEFINED));
        Ok(self.slots.borrow_mut().restore(read(&a), read(&b), head))
    }

    async fn save(self: &Rc<Self>, text: &str) -> Result<(), SessileError> {
        let write = self.slots.borrow().plan(text, now())?;
        let size = write.bytes.len() as u64;
        // A connection the browser closed (eviction, another tab's upgrade)
        // is opened again once.
        for attempt in 0..2 {
            let db = self.database().await?;
            let (tx, store) = match transaction(&db, IdbTransactionMode::Readwrite) {
                Ok(t) => t,
                Err(_) if attempt == 0 => {
                    self.db.borrow_mut().take();
                    continue;
                }
                Err(e) => return Err(e),
            };
            let head = Object::new();
            let _ = Reflect::set(&head, &"version".into(), &(write.version as f64).into());
            let bytes = Uint8Array::from(write.bytes.as_slice());
            let put = |value: &JsValue, key: &str| {
                store
                    .put_with_key(value, &key.into())
                    .map_err(|e| storage_error(&e, size))
            };
            put(&bytes, write.slot.name())?;
            put(&head, "head")?;
            settled(&tx, size).await?;
            self.slots.borrow_mut().written(&write);
            return Ok(());
        }
        Err(unavailable("IndexedDB connection closed"))
    }

    async fn database(self: &Rc<Self>) -> Result<IdbDatabase, SessileError> {
        if let Some(db) = self.db.borrow().clone() {
            return Ok(db);
        }
        // Opened as the store opens its own: at version 1, or at the
        // version another tab's upgrade left while `slots` is there.
        let db = crate::web::store::idb::open_db(&self.name)
            .await
            .map_err(|e| storage_error(&e, 0))?;
        // A connection the browser wants back (`versionchange`) or closed
        // (`close`) is let go, and opened anew at the next load or save.
        let me = Rc::downgrade(self);
        let forget = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
            let db = me.upgrade().and_then(|i| i.db.borrow_mut().take());
            if let Some(db) = db {
                db.close();
            }
        });
        db.set_onversionchange(Some(forget.as_ref().unchecked_ref()));
        db.set_onclose(Some(forget.as_ref().unchecked_ref()));
        *self.on_versionchange.borrow_mut() = Some(forget);
        *self.db.borrow_mut() = Some(db.clone());
        Ok(db)
    }
}

/// A transaction on the slots store, mode `mode`; durability "strict" where
/// the browser has it (a write that resolved survives a power cut).
fn transaction(
    db: &IdbDatabase,
    mode: IdbTransactionMode,
) -> Result<(IdbTransaction, web_sys::IdbObjectStore), SessileError> {
    let tx = if mode == IdbTransactionMode::Readwrite {
        let options = Object::new();
        let _ = Reflect::set(&options, &"durability".into(), &"strict".into());
        let f: Function = Reflect::get(db, &"transaction".into())
            .ok()
            .and_then(|f| f.dyn_into().ok())
            .ok_or_else(|| unavailable("IDBDatabase.transaction is missing"))?;
        f.call3(db, &SLOTS_STORE.into(), &"readwrite".into(), &options)
            .and_then(|t| t.dyn_into::<IdbTransaction>())
    } else {
        db.transaction_with_str_and_mode(SLOTS_STORE, mode)
    }
    .map_err(|e| storage_error(&e, 0))?;
    let store = tx
        .object_store(SLOTS_STORE)
        .map_err(|e| storage_error(&e, 0))?;
    Ok((tx, store))
}

/// Waits until `tx` commits; its error (or abort) otherwise.
async fn settled(tx: &IdbTransaction, bytes: u64) -> Result<(), SessileError> {
    let promise = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
        tx.set_onerror(Some(&reject));
    });
    let result = JsFuture::from(promise).await;
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    tx.set_onerror(None);
    result.map(|_| ()).map_err(|_| {
        let err = tx.error();
        err.map_or_else(
            || unavailable("the IndexedDB transaction was aborted"),
            |e| storage_error(&e.into(), bytes),
        )
    })
}

/// A slot's value as bytes (`None`: nothing there).
fn bytes_of(req: &IdbRequest) -> Result<Option<Vec<u8>>, SessileError> {
    let v = req.result().unwrap_or(JsValue::UNDEFINED);
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(Some(a.to_vec()));
    }
    if let Some(b) = v.dyn_ref::<js_sys::ArrayBuffer>() {
        return Ok(Some(Uint8Array::new(b).to_vec()));
    }
    Err(SessileError::CorruptPayload {
        reason: "the slot does not hold bytes",
    })
}

/// The `version` of a head record (0 when there is none).
fn head_version(v: &JsValue) -> u64 {
    Reflect::get(v, &"version".into())
        .ok()
        .and_then(|n| n.as_f64())
        .filter(|n| *n >= 0.0)
        .map_or(0, |n| n as u64)
}

fn unavailable(reason: &str) -> SessileError {
    SessileError::StorageUnavailable {
        reason: reason.into(),
    }
}

/// A storage failure: a full disk is `QUOTA_EXCEEDED` (with the size of the
/// write), anything else `STORAGE_UNAVAILABLE` with the browser's words.
fn storage_error(e: &JsValue, bytes: u64) -> SessileError {
    let (name, message) = match e.dyn_ref::<DomException>() {
        Some(d) => (d.name(), d.message()),
        None => (String::new(), String::from(Array::of1(e).join(""))),
    };
    if name == "QuotaExceededError" {
        return SessileError::QuotaExceeded { bytes };
    }
    let mut reason = name;
    if !message.is_empty() {
        if !reason.is_empty() {
            reason.push_str(": ");
        }
        reason.push_str(&message);
    }
    unavailable(&reason)
}
