//! The IndexedDB backend (web-sys): database `sessile:<ns>`, object store
//! `slots`, keys `a` and `b` (snapshot bytes as `Uint8Array`) and `head`
//! (`{ version, includes }`; the TypeScript store wrote `{ version }`). A
//! write is a compare-and-set in one `readwrite` transaction: the puts are
//! issued in the success callback of the head's read, so the transaction
//! cannot commit in between, and a failed request aborts it whole. When
//! the browser closes the connection (`close`, `versionchange` from a
//! deletion or another tab's upgrade, or an `InvalidStateError` without an
//! event) it is reopened on the next request (at the upgraded version, if
//! the `slots` store is still there), and a write it broke says so.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::prelude::*;
use web_sys::{IdbDatabase, IdbObjectStore, IdbOpenDbRequest, IdbTransaction};

use super::backend::{storage_error, unavailable, SlotsRead};
use super::page::{field, js_name, quota};
use super::signal;
use crate::core::error::SessileError;
use crate::core::session::store::layout::{HeadRecord, Layout, HEAD_KEY, IDB_STORE, IDB_VERSION};
use crate::core::session::store::{Head, Stored, WriteResult};
use crate::core::slots::SlotId;
use crate::web::convert::{json_text, json_value};

#[wasm_bindgen]
extern "C" {
    /// An `IDBDatabase` seen for `transaction(store, mode, { durability })`:
    /// web-sys has the options only behind `web_sys_unstable_apis`.
    type DatabaseWithOptions;
    #[wasm_bindgen(method, catch, js_name = transaction)]
    fn transaction_with_options(
        this: &DatabaseWithOptions,
        store: &str,
        mode: &str,
        options: &JsValue,
    ) -> Result<IdbTransaction, JsValue>;
}

/// An open connection and whether the browser has closed it.
struct Connection {
    db: IdbDatabase,
    closed: Rc<Cell<bool>>,
    _on_close: Closure<dyn FnMut()>,
    _on_version_change: Closure<dyn FnMut()>,
}

impl Connection {
    fn new(db: IdbDatabase) -> Self {
        let closed = Rc::new(Cell::new(false));
        let flag = closed.clone();
        let on_close = Closure::<dyn FnMut()>::new(move || flag.set(true));
        let (flag, handle) = (closed.clone(), db.clone());
        // Another tab upgrades, or the database is deleted: let it go.
        let on_version_change = Closure::<dyn FnMut()>::new(move || {
            handle.close();
            flag.set(true);
        });
        db.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));
        Self {
            db,
            closed,
            _on_close: on_close,
            _on_version_change: on_version_change,
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.db.set_onclose(None);
        self.db.set_onversionchange(None);
        self.db.close();
    }
}

/// A connection to one namespace's database.
pub(crate) struct IdbBackend {
    name: String,
    connection: RefCell<Option<Connection>>,
}

/// A request's (or transaction's) error, or a generic one naming `what`.
fn failure(what: &str, error: Option<web_sys::DomException>) -> JsValue {
    match error {
        Some(e) => e.into(),
        None => js_sys::Error::new(&[what, " failed"].concat()).into(),
    }
}

/// Opens (creating, with its `slots` store) database `name` at
/// [`IDB_VERSION`]; the link's record uses it too. One that another
/// page upgraded past it (a later release in another tab) is opened at the
/// version it has, as long as it keeps the `slots` store: the bytes in it
/// carry their own format and schema versions, which a restore checks
/// (docs/FORMAT.md), so nothing newer is misread.
pub(crate) async fn open_db(name: &str) -> Result<IdbDatabase, JsValue> {
    match open_at(name, Some(IDB_VERSION)).await {
        Err(e) if js_name(&e) == "VersionError" => {
            let db = open_at(name, None).await?;
            if db.object_store_names().contains(IDB_STORE) {
                return Ok(db);
            }
            db.close();
            Err(failure(
                "IndexedDB (upgraded by another page without the slots store)",
                None,
            ))
        }
        opened => opened,
    }
}

/// Opens database `name` at `version`, or at the version it has.
async fn open_at(name: &str, version: Option<u32>) -> Result<IdbDatabase, JsValue> {
    let window = web_sys::window().ok_or_else(|| failure("IndexedDB (no window)", None))?;
    let factory = window
        .indexed_db()?
        .ok_or_else(|| failure("IndexedDB (not in this browser)", None))?;
    let request: IdbOpenDbRequest = match version {
        Some(v) => factory.open_with_u32(name, v)?,
        None => factory.open(name)?,
    };
    let (tx, rx) = signal::channel::<Result<IdbDatabase, JsValue>>();
    let r = request.clone();
    let on_upgrade = Closure::<dyn FnMut()>::new(move || {
        if let Ok(db) = r.result() {
            // A new database (version 0 to 1): no object store yet.
            let _ = db
                .unchecked_into::<IdbDatabase>()
                .create_object_store(IDB_STORE);
        }
    });
    let (r, ok) = (request.clone(), tx.clone());
    let on_success = Closure::<dyn FnMut()>::new(move || {
        ok.send(r.result().map(JsCast::unchecked_into));
    });
    let (r, err) = (request.clone(), tx.clone());
    let on_error = Closure::<dyn FnMut()>::new(move || {
        err.send(Err(failure("indexedDB.open", r.error().ok().flatten())));
    });
    let on_blocked = Closure::<dyn FnMut()>::new(move || {
        tx.send(Err(failure(
            "indexedDB.open (blocked by another tab)",
            None,
        )));
    });
    request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    request.set_onsuccess(Some(on_success.as_ref().unchecked_ref()));
    request.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    request.set_onblocked(Some(on_blocked.as_ref().unchecked_ref()));
    let result = rx.await;
    request.set_onupgradeneeded(None);
    request.set_onsuccess(None);
    request.set_onerror(None);
    request.set_onblocked(None);
    result
}

/// Waits for `tx` to commit, or for its abort and its error.
async fn finished(tx: &IdbTransaction) -> Result<(), JsValue> {
    let (done, rx) = signal::channel::<Result<(), JsValue>>();
    let ok = done.clone();
    let on_complete = Closure::<dyn FnMut()>::new(move || ok.send(Ok(())));
    let t = tx.clone();
    let on_abort = Closure::<dyn FnMut()>::new(move || {
        done.send(Err(failure("IndexedDB transaction", t.error())));
    });
    tx.set_oncomplete(Some(on_complete.as_ref().unchecked_ref()));
    tx.set_onabort(Some(on_abort.as_ref().unchecked_ref()));
    let result = rx.await;
    tx.set_oncomplete(None);
    tx.set_onabort(None);
    result
}

/// A stored slot value: bytes, nothing, or a value that is not bytes.
fn stored_of(value: JsValue) -> Stored {
    if value.is_undefined() || value.is_null() {
        return Stored::Missing;
    }
    if let Some(bytes) = value.dyn_ref::<Uint8Array>() {
        return Stored::Bytes(bytes.to_vec());
    }
    if let Some(buffer) = value.dyn_ref::<ArrayBuffer>() {
        return Stored::Bytes(Uint8Array::new(buffer).to_vec());
    }
    Stored::Failed(SessileError::CorruptPayload {
        reason: "the stored value is not bytes",
    })
}

/// The head record: `version` (0 when it is not a whole number) and the
/// `includes` written with it.
fn head_of(value: &JsValue) -> Head {
    let version = field(value, "version")
        .as_f64()
        .filter(|v| *v >= 0.0 && v.fract() == 0.0)
        .map_or(0, |v| v as u64);
    // Through JSON text, with serde_json's reader the localStorage head
    // uses too (the record is a plain object: `{ version, includes }`).
    let record = json_text(value)
        .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
        .and_then(HeadRecord::from_json)
        .unwrap_or_default();
    record.for_head(version)
}

fn head_value(head: &Head) -> JsValue {
    json_value(&HeadRecord::of(head).to_json())
}

fn readwrite(db: &IdbDatabase) -> Result<(IdbTransaction, IdbObjectStore), JsValue> {
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"durability".into(), &"strict".into());
    let db: &DatabaseWithOptions = db.unchecked_ref();
    let tx = db.transaction_with_options(IDB_STORE, "readwrite", &options)?;
    let store = tx.object_store(IDB_STORE)?;
    Ok((tx, store))
}

impl IdbBackend {
    /// Opens (creating) the database and reads it once: private modes that
    /// expose `indexedDB` but fail every transaction are caught here, and an
    /// origin granted no quota is refused.
    pub(crate) async fn open(layout: &Layout) -> Result<Self, SessileError> {
        let name = layout.shared_name();
        let db = open_db(&name).await.map_err(|e| storage_error(&e, 0))?;
        let backend = Self {
            name,
            connection: RefCell::new(Some(Connection::new(db))),
        };
        if quota().await == Some(0.0) {
            return Err(unavailable(
                "the browser grants this origin no storage quota",
            ));
        }
        backend.read().await?;
        Ok(backend)
    }

    /// The connection, reopened first if the browser closed it.
    async fn live(&self) -> Result<IdbDatabase, SessileError> {
        let open = self
            .connection
            .borrow()
            .as_ref()
            .and_then(|c| (!c.closed.get()).then(|| c.db.clone()));
        if let Some(db) = open {
            return Ok(db);
        }
        self.connection.borrow_mut().take();
        let db = open_db(&self.name)
            .await
            .map_err(|e| storage_error(&e, 0))?;
        *self.connection.borrow_mut() = Some(Connection::new(db.clone()));
        Ok(db)
    }

    /// Notes a failure that means the browser closed the connection.
    fn closed_by(&self, thrown: &JsValue) -> bool {
        let closed = js_name(thrown) == "InvalidStateError";
        if closed {
            if let Some(c) = self.connection.borrow().as_ref() {
                c.closed.set(true);
            }
        }
        closed
    }

    pub(crate) async fn read(&self) -> Result<SlotsRead, SessileError> {
        let db = self.live().await?;
        let run = async {
            let tx = db.transaction_with_str(IDB_STORE)?;
            let store = tx.object_store(IDB_STORE)?;
            let a = store.get(&"a".into())?;
            let b = store.get(&"b".into())?;
            let head = store.get(&HEAD_KEY.into())?;
            finished(&tx).await?;
            Ok::<_, JsValue>(SlotsRead {
                a: stored_of(a.result()?),
                b: stored_of(b.result()?),
                head: head_of(&head.result()?),
            })
        };
        run.await.map_err(|e| {
            self.closed_by(&e);
            storage_error(&e, 0)
        })
    }

    pub(crate) async fn write_if_head(
        &self,
        slot: SlotId,
        base: u64,
        head: &Head,
        bytes: &[u8],
    ) -> WriteResult {
        let db = match self.live().await {
            Ok(db) => db,
            Err(error) => {
                return WriteResult::Failed {
                    error,
                    connection_closed: false,
                }
            }
        };
        let refused_by = Rc::new(Cell::new(None::<u64>));
        let run = async {
            let (tx, store) = readwrite(&db)?;
            let read = store.get(&HEAD_KEY.into())?;
            let value = Uint8Array::from(bytes);
            let record = head_value(head);
            let (r, t, refused) = (read.clone(), tx.clone(), refused_by.clone());
            let key = slot.name();
            let on_head = Closure::<dyn FnMut()>::new(move || {
                let stored = head_of(&r.result().unwrap_or(JsValue::UNDEFINED)).version;
                if stored != base {
                    refused.set(Some(stored));
                    let _ = t.abort();
                    return;
                }
                let puts = store
                    .put_with_key(&value, &key.into())
                    .and_then(|_| store.put_with_key(&record, &HEAD_KEY.into()));
                if puts.is_err() {
                    let _ = t.abort();
                }
            });
            read.set_onsuccess(Some(on_head.as_ref().unchecked_ref()));
            let result = finished(&tx).await;
            read.set_onsuccess(None);
            result
        };
        match run.await {
            Ok(()) => WriteResult::Stored,
            Err(_) if refused_by.get().is_some() => WriteResult::Refused {
                head: refused_by.get().unwrap_or(0),
            },
            Err(e) => WriteResult::Failed {
                connection_closed: self.closed_by(&e),
                error: storage_error(&e, bytes.len()),
            },
        }
    }

    pub(crate) async fn clear(&self, at_least: u64) -> Result<u64, SessileError> {
        let db = self.live().await?;
        let tombstone = Rc::new(Cell::new(at_least));
        let run = async {
            let (tx, store) = readwrite(&db)?;
            let read = store.get(&HEAD_KEY.into())?;
            let (r, t, left) = (read.clone(), tx.clone(), tombstone.clone());
            let on_head = Closure::<dyn FnMut()>::new(move || {
                let stored = head_of(&r.result().unwrap_or(JsValue::UNDEFINED)).version;
                left.set(at_least.max(stored + 1));
                let done = store
                    .delete(&"a".into())
                    .and_then(|_| store.delete(&"b".into()))
                    .and_then(|_| {
                        store.put_with_key(&head_value(&Head::at(left.get())), &HEAD_KEY.into())
                    });
                if done.is_err() {
                    let _ = t.abort();
                }
            });
            read.set_onsuccess(Some(on_head.as_ref().unchecked_ref()));
            let result = finished(&tx).await;
            read.set_onsuccess(None);
            result
        };
        match run.await {
            Ok(()) => Ok(tombstone.get()),
            Err(e) => {
                self.closed_by(&e);
                Err(storage_error(&e, 0))
            }
        }
    }
}
