//! What the store's browser tests share: raw IndexedDB and localStorage
//! access (to plant and inspect bytes as another build would), storage
//! switched off the way a browser with storage disabled does it, page
//! events, a Web Lock held by the test, and stores that collect their events.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use serde_json::{json, Value};
use sessile::core::envelope::{decode, encode, EnvelopeConfig, SnapshotMeta};
use sessile::core::slots::SlotId;
use sessile::web::store::{
    BackendKind, During, RestoreOutcome, Store, StoreEvent, StoreOptions, Winner,
};
use sessile::SessileError;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest};

pub fn window() -> web_sys::Window {
    web_sys::window().expect("a window")
}

pub fn ls() -> web_sys::Storage {
    window().local_storage().unwrap().unwrap()
}

pub fn ls_get(key: &str) -> Option<String> {
    ls().get_item(key).unwrap()
}

pub fn ls_set(key: &str, value: &str) {
    ls().set_item(key, value).unwrap();
}

pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}

/// Waits (up to 5 s, a loaded machine's worst) until `done()` holds, for
/// what arrives asynchronously (a tab's message, a timer's write); the
/// assertion after it says what was expected.
pub async fn until(done: impl Fn() -> bool) {
    let end = js_sys::Date::now() + 5000.0;
    while !done() && js_sys::Date::now() < end {
        sleep(10).await;
    }
}

/// Waits for `request`'s success, error or blocked event.
async fn settled(request: &IdbOpenDbRequest) {
    let promise = Promise::new(&mut |resolve, _| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&resolve));
        request.set_onblocked(Some(&resolve));
    });
    let _ = JsFuture::from(promise).await;
}

pub async fn delete_db(name: &str) {
    let factory = window().indexed_db().unwrap().unwrap();
    let request = factory.delete_database(name).unwrap();
    settled(&request).await;
}

/// Opens database `name` at `version` as another tab's upgrade would
/// (creating nothing): the connection, or `Err("blocked")` when a
/// connection of this page held the upgrade up, or the open's error.
pub async fn upgrade_db(name: &str, version: u32) -> Result<IdbDatabase, String> {
    let factory = window().indexed_db().unwrap().unwrap();
    let request = factory.open_with_u32(name, version).unwrap();
    let outcome = Promise::new(&mut |resolve, _| {
        let answer = resolve.clone();
        let on_blocked = Closure::once_into_js(move || {
            let _ = answer.call1(&JsValue::NULL, &"blocked".into());
        });
        request.set_onblocked(Some(on_blocked.unchecked_ref()));
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&resolve));
    });
    let what = JsFuture::from(outcome).await.unwrap();
    if what.as_string().as_deref() == Some("blocked") {
        return Err("blocked".into());
    }
    request
        .result()
        .map(JsCast::unchecked_into)
        .map_err(|e| format!("{e:?}"))
}

/// Opens database `name` as the stores do (version 1, object store `slots`).
async fn open_db(name: &str) -> IdbDatabase {
    let factory = window().indexed_db().unwrap().unwrap();
    let request = factory.open_with_u32(name, 1).unwrap();
    let r = request.clone();
    let upgrade = Closure::<dyn FnMut()>::new(move || {
        let db: IdbDatabase = r.result().unwrap().unchecked_into();
        let _ = db.create_object_store("slots");
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    settled(&request).await;
    request.result().unwrap().unchecked_into()
}

/// Waits for a transaction to commit.
async fn committed(tx: &web_sys::IdbTransaction) {
    let promise = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onabort(Some(&reject));
    });
    JsFuture::from(promise)
        .await
        .expect("transaction committed");
}

/// The value under `key` in database `db`.
pub async fn idb_get(db: &str, key: &str) -> JsValue {
    let db = open_db(db).await;
    let tx = db.transaction_with_str("slots").unwrap();
    let request = tx.object_store("slots").unwrap().get(&key.into()).unwrap();
    committed(&tx).await;
    db.close();
    request.result().unwrap()
}

/// Puts `value` under `key` in database `db`.
pub async fn idb_set(db: &str, key: &str, value: &JsValue) {
    let db = open_db(db).await;
    let tx = db
        .transaction_with_str_and_mode("slots", web_sys::IdbTransactionMode::Readwrite)
        .unwrap();
    tx.object_store("slots")
        .unwrap()
        .put_with_key(value, &key.into())
        .unwrap();
    committed(&tx).await;
    db.close();
}

pub async fn idb_bytes(db: &str, key: &str) -> Vec<u8> {
    let value = idb_get(db, key).await;
    assert!(
        value.is_instance_of::<Uint8Array>(),
        "{key} holds a Uint8Array"
    );
    value.unchecked_into::<Uint8Array>().to_vec()
}

pub async fn idb_set_bytes(db: &str, key: &str, bytes: &[u8]) {
    idb_set(db, key, &Uint8Array::from(bytes).into()).await;
}

fn cookie() -> String {
    let doc = window().document().unwrap();
    Reflect::get(&doc, &"cookie".into())
        .unwrap()
        .as_string()
        .unwrap_or_default()
}

pub fn cookie_has(text: &str) -> bool {
    cookie().split("; ").any(|c| c.starts_with(text))
}

/// Deletes namespace `name`'s database, localStorage keys and cookie;
/// returns the database's name.
pub async fn fresh(name: &str) -> String {
    let db = ["sessile:", name].concat();
    delete_db(&db).await;
    let prefix = ["sessile:", name, ":"].concat();
    let storage = ls();
    let keys: Vec<String> = (0..storage.length().unwrap())
        .filter_map(|i| storage.key(i).unwrap())
        .filter(|k| k.starts_with(&prefix))
        .collect();
    for key in keys {
        storage.remove_item(&key).unwrap();
    }
    let doc = window().document().unwrap();
    let expired = ["sessile_", name, "=; Max-Age=0; Path=/"].concat();
    Reflect::set(&doc, &"cookie".into(), &expired.into()).unwrap();
    db
}

pub fn rescue_keys(name: &str) -> Vec<String> {
    let prefix = ["sessile:", name, ":rescue:"].concat();
    let storage = ls();
    (0..storage.length().unwrap())
        .filter_map(|i| storage.key(i).unwrap())
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

fn throwing(name: &'static str, message: &'static str) -> Function {
    let f = Closure::<dyn Fn() -> Result<JsValue, JsValue>>::new(move || {
        Err(
            web_sys::DomException::new_with_message_and_name(message, name)
                .unwrap()
                .into(),
        )
    });
    f.into_js_value().unchecked_into()
}

fn define(target: &JsValue, key: &str, descriptor: &Object) {
    Object::define_property(target.unchecked_ref::<Object>(), &key.into(), descriptor);
}

fn descriptor(entries: &[(&str, JsValue)]) -> Object {
    let d = Object::new();
    Reflect::set(&d, &"configurable".into(), &JsValue::TRUE).unwrap();
    for (k, v) in entries {
        Reflect::set(&d, &(*k).into(), v).unwrap();
    }
    d
}

thread_local! {
    static REAL: RefCell<Option<(JsValue, JsValue)>> = const { RefCell::new(None) };
}

fn remember_real() {
    let w: JsValue = window().into();
    REAL.with(|r| {
        if r.borrow().is_none() {
            let idb = Object::get_own_property_descriptor(
                w.unchecked_ref::<Object>(),
                &"indexedDB".into(),
            );
            let ls = Object::get_own_property_descriptor(
                w.unchecked_ref::<Object>(),
                &"localStorage".into(),
            );
            *r.borrow_mut() = Some((idb, ls));
        }
    });
}

/// `indexedDB.open` throws a SecurityError, as with storage disabled.
pub fn break_indexed_db() {
    remember_real();
    let fake = Object::new();
    Reflect::set(
        &fake,
        &"open".into(),
        &throwing("SecurityError", "The operation is insecure."),
    )
    .unwrap();
    define(
        &window().into(),
        "indexedDB",
        &descriptor(&[("value", fake.into())]),
    );
}

/// Reading `localStorage` throws a SecurityError.
pub fn break_local_storage() {
    remember_real();
    let getter = throwing("SecurityError", "Access is denied for this document.");
    define(
        &window().into(),
        "localStorage",
        &descriptor(&[("get", getter.into())]),
    );
}

pub fn repair_storage() {
    let w: JsValue = window().into();
    REAL.with(|r| {
        if let Some((idb, ls)) = r.borrow_mut().take() {
            for (key, real) in [("indexedDB", idb), ("localStorage", ls)] {
                if real.is_undefined() {
                    Reflect::delete_property(w.unchecked_ref::<Object>(), &key.into()).unwrap();
                } else {
                    define(&w, key, real.unchecked_ref());
                }
            }
        }
    });
}

pub fn fire_pagehide() {
    let event = web_sys::PageTransitionEvent::new("pagehide").unwrap();
    window().dispatch_event(&event).unwrap();
}

/// `visibilitychange` with the document hidden.
pub fn fire_hidden() {
    let doc: JsValue = window().document().unwrap().into();
    let getter = Closure::<dyn Fn() -> JsValue>::new(|| JsValue::from_str("hidden"));
    define(
        &doc,
        "visibilityState",
        &descriptor(&[("get", getter.into_js_value())]),
    );
    let event = web_sys::Event::new("visibilitychange").unwrap();
    window().document().unwrap().dispatch_event(&event).unwrap();
    Reflect::delete_property(doc.unchecked_ref::<Object>(), &"visibilityState".into()).unwrap();
}

#[wasm_bindgen]
extern "C" {
    type Locks;
    #[wasm_bindgen(method)]
    fn request(this: &Locks, name: &str, callback: &Function) -> Promise;
}

/// Holds the Web Lock `name` (as another tab writing would); returns the
/// function that releases it.
pub async fn hold_lock(name: &str) -> Function {
    let mut deliver = None;
    let granted = Promise::new(&mut |resolve, _| deliver = Some(resolve));
    let deliver = deliver.unwrap();
    let callback = Closure::once_into_js(move |_lock: JsValue| -> Promise {
        Promise::new(&mut |release, _| {
            let _ = deliver.call1(&JsValue::UNDEFINED, &release);
        })
    });
    let locks: Locks = Reflect::get(&window().navigator(), &"locks".into())
        .unwrap()
        .unchecked_into();
    let _ = locks.request(name, callback.unchecked_ref());
    JsFuture::from(granted).await.unwrap().unchecked_into()
}

/// The events a store emitted, in order.
#[derive(Clone, Default)]
pub struct Events(pub Rc<RefCell<Vec<StoreEvent>>>);

impl Events {
    pub fn restored(&self) -> RestoreOutcome {
        self.0
            .borrow()
            .iter()
            .find_map(|e| match e {
                StoreEvent::StateRestored(o) => Some(o.clone()),
                _ => None,
            })
            .expect("a StateRestored event")
    }

    pub fn conflicts(&self) -> Vec<(Value, Value, Winner)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                StoreEvent::Conflict {
                    local,
                    remote,
                    winner,
                    ..
                } => Some((local.clone(), remote.clone(), *winner)),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<(String, During)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                StoreEvent::ErrorOccurred { error, during } => {
                    Some((error.code().to_string(), *during))
                }
                _ => None,
            })
            .collect()
    }

    pub fn updates(&self) -> Vec<(u64, bool)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                StoreEvent::SessionUpdated {
                    version, cleared, ..
                } => Some((*version, *cleared)),
                _ => None,
            })
            .collect()
    }

    pub fn degraded(&self) -> Vec<(BackendKind, BackendKind, SessileError)> {
        self.0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                StoreEvent::StorageDegraded {
                    backend,
                    using,
                    error,
                } => Some((*backend, *using, error.clone())),
                _ => None,
            })
            .collect()
    }
}

/// Opens a store collecting its events.
pub async fn open(options: StoreOptions) -> Result<(Store, Events), SessileError> {
    let events = Events::default();
    let sink = events.0.clone();
    let store = Store::open(options.on_event(move |e| sink.borrow_mut().push(e.clone()))).await?;
    Ok((store, events))
}

/// The default options of namespace `name`.
pub fn options(name: &str) -> StoreOptions {
    StoreOptions::new(name)
}

pub fn code<T: std::fmt::Debug>(result: Result<T, SessileError>) -> String {
    match result {
        Ok(v) => format!("no error: {v:?}"),
        Err(e) => e.code().to_string(),
    }
}

pub fn checkout(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({ "sku": format!("SKU-{i:05}"), "name": format!("Item {i}"), "qty": i % 3 + 1 }))
        .collect();
    json!({ "step": "checkout", "items": items })
}

/// Writes two versions to a fresh store of `name` and closes it; returns both states.
pub async fn saved_twice(name: &str, storage: Option<BackendKind>) -> (Value, Value) {
    let mut opts = options(name).initial(json!({}));
    opts.storage = storage;
    let (store, _) = open(opts).await.unwrap();
    let (first, second) = (checkout(3), checkout(5));
    store.set(first.clone()).unwrap();
    store.flush().await.unwrap();
    store.set(second.clone()).unwrap();
    store.flush().await.unwrap();
    store.close().await.unwrap();
    (first, second)
}

/// Two stores of a fresh namespace, as two tabs would have; only `flush` writes.
pub async fn two_tabs(name: &str) -> (StoreOptions, Store, Events, Store, Events) {
    fresh(name).await;
    let opts = options(name)
        .initial(json!({ "step": "cart" }))
        .debounce_ms(60_000);
    let (a, ea) = open(opts.clone()).await.unwrap();
    let (b, eb) = open(opts.clone()).await.unwrap();
    (opts, a, ea, b, eb)
}

/// A snapshot of `state` as a write of `version` stores it.
pub fn snapshot(state: &Value, version: u64, generation: u16, schema: u32) -> Vec<u8> {
    let meta = SnapshotMeta {
        generation,
        schema_version: schema,
        state_version: version,
        modified_at_ms: 1,
    };
    encode(&state.to_string(), &meta, &EnvelopeConfig::default()).unwrap()
}

/// The state a snapshot holds, and its meta.
pub fn decoded(bytes: &[u8]) -> (Value, SnapshotMeta) {
    let snap = decode(bytes, &EnvelopeConfig::default()).expect("a valid snapshot");
    (serde_json::from_str(&snap.json).unwrap(), snap.meta)
}

pub fn base64(bytes: &[u8]) -> String {
    sessile::core::session::store::base64::to_base64(bytes)
}

pub fn from_base64(text: &str) -> Vec<u8> {
    sessile::core::session::store::base64::from_base64(text).unwrap()
}

pub fn restored_from(outcome: &RestoreOutcome) -> Option<SlotId> {
    match outcome {
        RestoreOutcome::Restored { from, .. } => Some(*from),
        _ => None,
    }
}

pub fn skipped(outcome: &RestoreOutcome) -> Vec<(SlotId, String)> {
    let list = match outcome {
        RestoreOutcome::Restored { skipped, .. } | RestoreOutcome::Unreadable { skipped } => {
            skipped
        }
        _ => return Vec::new(),
    };
    list.iter()
        .map(|(s, e)| (*s, e.code().to_string()))
        .collect()
}
