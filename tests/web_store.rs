//! Browser tests of `openStore` (Chrome and Firefox, real IndexedDB and
//! localStorage): restore after reopening, each slot corrupted, both
//! corrupted, backends unavailable, quota, oversize state, two stores of one
//! namespace, migrations from golden old schemas, eviction, page hide.
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, Reflect, JSON};
use sessile::web::store_api::{open as open_store, SessileStore};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen(inline_js = r#"
export function idbSetRaw(db, key, bytes) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(db, 1);
    r.onsuccess = () => {
      const tx = r.result.transaction("slots", "readwrite");
      tx.objectStore("slots").put(bytes, key);
      tx.oncomplete = () => { r.result.close(); resolve(); };
      tx.onerror = () => reject(tx.error);
    };
    r.onerror = () => reject(r.error);
  });
}
export function idbGetRaw(db, key) {
  return new Promise((resolve, reject) => {
    const r = indexedDB.open(db, 1);
    r.onsuccess = () => {
      const g = r.result.transaction("slots").objectStore("slots").get(key);
      g.onsuccess = () => { r.result.close(); resolve(g.result); };
      g.onerror = () => reject(g.error);
    };
    r.onerror = () => reject(r.error);
  });
}
export function deleteDb(name) {
  return new Promise((resolve) => {
    const r = indexedDB.deleteDatabase(name);
    r.onsuccess = r.onerror = r.onblocked = () => resolve();
  });
}
const realIdb = Object.getOwnPropertyDescriptor(window, "indexedDB");
const realLs = Object.getOwnPropertyDescriptor(window, "localStorage");
export function breakIndexedDb() {
  // What a browser with storage disabled does: open throws SecurityError.
  Object.defineProperty(window, "indexedDB", { configurable: true, value: {
    open() { throw new DOMException("The operation is insecure.", "SecurityError"); } } });
}
export function breakLocalStorage() {
  Object.defineProperty(window, "localStorage", { configurable: true,
    get() { throw new DOMException("Access is denied for this document.", "SecurityError"); } });
}
export function repairStorage() {
  if (realIdb) Object.defineProperty(window, "indexedDB", realIdb); else delete window.indexedDB;
  if (realLs) Object.defineProperty(window, "localStorage", realLs); else delete window.localStorage;
}
export function firePagehide() { window.dispatchEvent(new PageTransitionEvent("pagehide")); }
export function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }
"#)]
extern "C" {
    #[wasm_bindgen(js_name = idbSetRaw)]
    fn idb_set_raw(db: &str, key: &str, bytes: &js_sys::Uint8Array) -> js_sys::Promise;
    #[wasm_bindgen(js_name = idbGetRaw)]
    fn idb_get_raw(db: &str, key: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = deleteDb)]
    fn delete_db(name: &str) -> js_sys::Promise;
    #[wasm_bindgen(js_name = breakIndexedDb)]
    fn break_indexed_db();
    #[wasm_bindgen(js_name = breakLocalStorage)]
    fn break_local_storage();
    #[wasm_bindgen(js_name = repairStorage)]
    fn repair_storage();
    #[wasm_bindgen(js_name = firePagehide)]
    fn fire_pagehide();
    fn sleep(ms: u32) -> js_sys::Promise;
}

fn js(json: &str) -> JsValue {
    JSON::parse(json).expect("test JSON")
}

fn field(obj: &JsValue, key: &str) -> JsValue {
    Reflect::get(obj, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// The string field `key` of `obj`, if it is a string.
fn string(obj: &JsValue, key: &str) -> Option<String> {
    field(obj, key).as_string()
}

fn text(v: &JsValue) -> String {
    JSON::stringify(v).map(String::from).unwrap_or_default()
}

fn code(err: &JsValue) -> String {
    field(err, "code")
        .as_string()
        .unwrap_or_else(|| format!("not coded: {err:?}"))
}

async fn wait(p: js_sys::Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(p).await
}

/// Deletes the IndexedDB database of namespace `name`; returns its name.
async fn fresh_db(name: &str) -> String {
    let db = format!("sessile:{name}");
    let _ = wait(delete_db(&db)).await;
    db
}

/// The localStorage keys of every rescue copy of namespace `name`.
fn rescue_keys(name: &str) -> Vec<String> {
    let ls = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let prefix = format!("sessile:{name}:rescue:");
    (0..ls.length().unwrap())
        .filter_map(|i| ls.key(i).unwrap())
        .filter(|k| k.starts_with(&prefix))
        .collect()
}

/// Two stores of a fresh namespace `name` (as two tabs would have), with a
/// long debounce so that only `flush` writes; returns their options too.
async fn two_tabs(name: &str) -> (String, SessileStore, Events, SessileStore, Events) {
    fresh_db(name).await;
    let opts = format!(r#"{{"name":"{name}","initial":{{"step":"cart"}},"debounceMs":60000}}"#);
    let (ea, eb) = (Events::default(), Events::default());
    let a = open(&opts, &ea).await.unwrap();
    let b = open(&opts, &eb).await.unwrap();
    (opts, a, ea, b, eb)
}

/// Events a store emitted, in order.
#[derive(Clone, Default)]
struct Events(Rc<RefCell<Vec<JsValue>>>);

impl Events {
    fn of(&self, kind: &str) -> Vec<JsValue> {
        self.0
            .borrow()
            .iter()
            .filter(|e| string(e, "type").as_deref() == Some(kind))
            .cloned()
            .collect()
    }
}

async fn open(options: &str, events: &Events) -> Result<SessileStore, JsValue> {
    open_with(js(options), events).await
}

/// Opens a store with `opts` (an object), collecting its events in `events`.
async fn open_with(opts: JsValue, events: &Events) -> Result<SessileStore, JsValue> {
    let sink = events.0.clone();
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |e| sink.borrow_mut().push(e));
    Reflect::set(&opts, &"onEvent".into(), handler.as_ref()).unwrap();
    handler.forget();
    open_store(opts).await
}

fn checkout(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"sku":"SKU-{i:05}","name":"Item {i}","qty":{}}}"#,
                i % 3 + 1
            )
        })
        .collect();
    format!(r#"{{"step":"checkout","items":[{}]}}"#, items.join(","))
}

async fn saved_twice(name: &str, storage: &str) -> (String, String) {
    let events = Events::default();
    let store = open(
        &format!(r#"{{"name":"{name}","storage":"{storage}","initial":{{}}}}"#),
        &events,
    )
    .await
    .unwrap();
    let first = checkout(3);
    let second = checkout(5);
    store.set(js(&first)).unwrap();
    wait(store.flush()).await.unwrap();
    store.set(js(&second)).unwrap();
    wait(store.flush()).await.unwrap();
    wait(store.close()).await.unwrap();
    (first, second)
}

#[wasm_bindgen_test]
async fn state_comes_back_after_reopening_from_indexeddb() {
    let name = "t-reopen";
    fresh_db(name).await;
    let (_, second) = saved_twice(name, "auto").await;
    let events = Events::default();
    let store = open(&format!(r#"{{"name":"{name}","initial":null}}"#), &events)
        .await
        .unwrap();
    assert_eq!(text(&store.state()), second);
    assert_eq!(store.version(), 2.0);
    let d = store.diagnostics();
    assert_eq!(string(&d, "backend").as_deref(), Some("indexeddb"));
    let restored = &events.of("state_restored")[0];
    assert_eq!(string(restored, "outcome").as_deref(), Some("restored"));
    assert_eq!(string(restored, "from").as_deref(), Some("b"));
    wait(store.close()).await.unwrap();
}

async fn corrupt_idb_slot_and_reopen(name: &str, slot: &str) -> (SessileStore, Events) {
    let db = format!("sessile:{name}");
    let good: js_sys::Uint8Array = wait(idb_get_raw(&db, slot)).await.unwrap().into();
    let mut bytes = good.to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    wait(idb_set_raw(
        &db,
        slot,
        &js_sys::Uint8Array::from(bytes.as_slice()),
    ))
    .await
    .unwrap();
    let events = Events::default();
    let store = open(&format!(r#"{{"name":"{name}","initial":null}}"#), &events)
        .await
        .unwrap();
    (store, events)
}

#[wasm_bindgen_test]
async fn each_corrupted_slot_in_turn_is_skipped_and_reported() {
    for (slot, expect_from) in [("b", "a"), ("a", "b")] {
        let name = format!("t-corrupt-{slot}");
        fresh_db(&name).await;
        let (first, second) = saved_twice(&name, "indexeddb").await;
        let (store, events) = corrupt_idb_slot_and_reopen(&name, slot).await;
        let expected = if expect_from == "a" { &first } else { &second };
        assert_eq!(&text(&store.state()), expected, "slot {slot} corrupted");
        assert_eq!(
            store.version(),
            2.0,
            "version never falls below the stored head"
        );
        let restored = &events.of("state_restored")[0];
        assert_eq!(string(restored, "from").as_deref(), Some(expect_from));
        let skipped: Array = field(restored, "skipped").into();
        assert_eq!(skipped.length(), 1);
        assert_eq!(
            field(&skipped.get(0), "slot").as_string().as_deref(),
            Some(slot)
        );
        assert_eq!(code(&field(&skipped.get(0), "error")), "CHECKSUM_MISMATCH");
        assert!(events.of("error_occurred").is_empty());
        // The next write goes to the corrupted slot, never over the good one.
        store.set(js(r#"{"step":"upsell-1"}"#)).unwrap();
        wait(store.flush()).await.unwrap();
        let d = store.diagnostics();
        assert_eq!(
            string(&field(&d, "lastWrite"), "slot").as_deref(),
            Some(slot)
        );
        wait(store.close()).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn both_slots_corrupted_gives_a_fresh_state_and_a_clear_error() {
    let name = "t-corrupt-both";
    let db = fresh_db(name).await;
    saved_twice(name, "indexeddb").await;
    for slot in ["a", "b"] {
        wait(idb_set_raw(
            &db,
            slot,
            &js_sys::Uint8Array::from(&b"SSNP\x01torn"[..]),
        ))
        .await
        .unwrap();
    }
    let events = Events::default();
    let store = open(
        &format!(r#"{{"name":"{name}","initial":{{"step":"cart"}}}}"#),
        &events,
    )
    .await
    .unwrap();
    assert_eq!(text(&store.state()), r#"{"step":"cart"}"#);
    let restored = &events.of("state_restored")[0];
    assert_eq!(string(restored, "outcome").as_deref(), Some("unreadable"));
    assert_eq!(Array::from(&field(restored, "skipped")).length(), 2);
    let error = &events.of("error_occurred")[0];
    assert_eq!(code(&field(error, "error")), "TRUNCATED");
    // A new write still wins over the stored head (version 2).
    assert_eq!(store.set(js(r#"{"step":"checkout"}"#)).unwrap(), 3.0);
    wait(store.flush()).await.unwrap();
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn indexeddb_unavailable_falls_back_to_localstorage_with_an_event() {
    break_indexed_db();
    let events = Events::default();
    let opened = open(r#"{"name":"t-no-idb","initial":{"n":1}}"#, &events).await;
    let explicit = open(
        r#"{"name":"t-no-idb2","storage":"indexeddb"}"#,
        &Events::default(),
    )
    .await;
    repair_storage();
    let store = opened.unwrap();
    assert_eq!(
        code(&explicit.err().expect("asked for IndexedDB only")),
        "STORAGE_UNAVAILABLE"
    );
    assert_eq!(
        string(&store.diagnostics(), "backend").as_deref(),
        Some("localstorage")
    );
    let degraded = &events.of("storage_degraded")[0];
    assert_eq!(string(degraded, "backend").as_deref(), Some("indexeddb"));
    assert_eq!(string(degraded, "using").as_deref(), Some("localstorage"));
    assert_eq!(code(&field(degraded, "error")), "STORAGE_UNAVAILABLE");
    store.set(js(r#"{"n":2}"#)).unwrap();
    wait(store.flush()).await.unwrap();
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn no_storage_at_all_falls_back_to_memory_with_two_events() {
    break_indexed_db();
    break_local_storage();
    let events = Events::default();
    let opened = open(r#"{"name":"t-no-storage","initial":{"n":1}}"#, &events).await;
    let store = opened.unwrap();
    store.set(js(r#"{"n":2}"#)).unwrap();
    let flushed = wait(store.flush()).await;
    repair_storage();
    flushed.unwrap();
    assert_eq!(
        string(&store.diagnostics(), "backend").as_deref(),
        Some("memory")
    );
    let degraded = events.of("storage_degraded");
    let backends: Vec<_> = degraded
        .iter()
        .map(|e| field(e, "backend").as_string().unwrap())
        .collect();
    assert_eq!(backends, ["indexeddb", "localstorage"]);
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn quota_exceeded_keeps_the_previous_state_stored() {
    let name = "t-quota-store";
    let events = Events::default();
    let opts = format!(
        r#"{{"name":"{name}","storage":"localstorage","compressAbove":100000000,"maxBytes":10000000}}"#
    );
    let store = open(&opts, &events).await.unwrap();
    store.set(js(r#"{"step":"cart"}"#)).unwrap();
    wait(store.flush()).await.unwrap();
    store
        .set(JsValue::from_str(&"x".repeat(6 * 1024 * 1024)))
        .unwrap();
    let err = wait(store.flush()).await.unwrap_err();
    assert_eq!(code(&err), "QUOTA_EXCEEDED");
    assert_eq!(
        code(&field(&store.diagnostics(), "lastError")),
        "QUOTA_EXCEEDED"
    );
    // Released without writing the huge state; the old one is what is stored.
    let again = open(&opts, &Events::default()).await.unwrap();
    assert_eq!(text(&again.state()), r#"{"step":"cart"}"#);
    store.set(js(r#"{"step":"checkout"}"#)).unwrap();
    wait(store.flush()).await.unwrap();
}

#[wasm_bindgen_test]
async fn oversize_state_is_refused_and_the_state_is_unchanged() {
    let store = open(
        r#"{"name":"t-oversize","storage":"memory","maxBytes":1000,"initial":{"a":1}}"#,
        &Events::default(),
    )
    .await
    .unwrap();
    let err = store.set(JsValue::from_str(&"y".repeat(2000))).unwrap_err();
    assert_eq!(code(&err), "STATE_TOO_LARGE");
    assert_eq!(text(&store.state()), r#"{"a":1}"#);
    assert_eq!(store.version(), 0.0);
    assert_eq!(
        code(&store.set(JsValue::UNDEFINED).unwrap_err()),
        "INVALID_STATE"
    );
}

#[wasm_bindgen_test]
async fn two_stores_of_one_namespace_never_let_an_older_version_win() {
    let name = "t-tabs";
    fresh_db(name).await;
    let (ea, eb) = (Events::default(), Events::default());
    let opts = format!(r#"{{"name":"{name}","initial":{{"step":"cart"}}}}"#);
    let a = open(&opts, &ea).await.unwrap();
    let b = open(&opts, &eb).await.unwrap();
    // Broadcast: b follows a's stored write.
    a.set(js(r#"{"step":"checkout"}"#)).unwrap();
    wait(a.flush()).await.unwrap();
    wait(sleep(100)).await.unwrap();
    assert_eq!(text(&b.state()), r#"{"step":"checkout"}"#);
    assert_eq!(b.version(), 1.0);
    assert_eq!(eb.of("session_updated").len(), 1);
    // A stale write: b changes before it hears of a's next write.
    a.set(js(r#"{"step":"upsell-1"}"#)).unwrap();
    wait(a.flush()).await.unwrap();
    b.set(js(r#"{"step":"success"}"#)).unwrap();
    let stale = wait(b.flush()).await;
    wait(sleep(100)).await.unwrap();
    if let Err(e) = stale {
        assert_eq!(code(&e), "STALE_WRITE");
    }
    // Whichever way the race went, b now holds a's stored version, and a
    // conflict was reported with both values.
    assert_eq!(text(&b.state()), r#"{"step":"upsell-1"}"#);
    let conflict = &eb.of("conflict")[0];
    assert_eq!(text(&field(conflict, "local")), r#"{"step":"success"}"#);
    assert_eq!(text(&field(conflict, "remote")), r#"{"step":"upsell-1"}"#);
    let reopened = open(&opts, &Events::default()).await.unwrap();
    assert_eq!(text(&reopened.state()), r#"{"step":"upsell-1"}"#);
    for s in [a, b, reopened] {
        wait(s.close()).await.unwrap();
    }
}

const SCHEMA1: &[u8] = include_bytes!("fixtures/v1/schema/checkout-schema1.snap");
const SCHEMA2: &[u8] = include_bytes!("fixtures/v1/schema/checkout-schema2.snap");
const SCHEMA4: &[u8] = include_bytes!("fixtures/v1/schema/checkout-schema4.snap");

const MIGRATE: &str = r#"
  const m = { 1: (s) => ({ ...s, step: "checkout" }), 2: ({ mail, ...rest }) => ({ ...rest, email: mail }) };
  m"#;

async fn open_with_golden(
    name: &str,
    golden: &[u8],
    migrate: &str,
) -> (Result<SessileStore, JsValue>, Events) {
    let db = fresh_db(name).await;
    // Create the database with its store, then put the golden bytes in slot a.
    let first = open(
        &format!(r#"{{"name":"{name}","storage":"indexeddb"}}"#),
        &Events::default(),
    )
    .await
    .unwrap();
    wait(first.close()).await.unwrap();
    wait(idb_set_raw(&db, "a", &js_sys::Uint8Array::from(golden)))
        .await
        .unwrap();
    let opts = js(&format!(
        r#"{{"name":"{name}","storage":"indexeddb","schemaVersion":3}}"#
    ));
    let migrations = js_sys::eval(migrate).unwrap();
    Reflect::set(&opts, &"migrate".into(), &migrations).unwrap();
    let events = Events::default();
    (open_with(opts, &events).await, events)
}

#[wasm_bindgen_test]
async fn golden_old_schemas_are_migrated_on_restore() {
    for (name, golden) in [("t-schema1", SCHEMA1), ("t-schema2", SCHEMA2)] {
        let (store, events) = open_with_golden(name, golden, MIGRATE).await;
        let store = store.unwrap();
        let state = store.state();
        assert_eq!(
            string(&state, "email").as_deref(),
            Some("a@example.com"),
            "{name}"
        );
        assert_eq!(
            string(&state, "step").as_deref(),
            Some("checkout"),
            "{name}"
        );
        assert!(field(&state, "mail").is_undefined(), "{name}");
        assert_eq!(
            text(&field(&state, "items")),
            r#"[{"sku":"TEE-1","qty":2}]"#
        );
        assert_eq!(
            js_sys::Object::keys(&state.clone().into()).length(),
            3,
            "{name}"
        );
        let restored = &events.of("state_restored")[0];
        assert_eq!(field(restored, "migrated").as_bool(), Some(true));
        assert_eq!(store.version(), 5.0, "migrated state is a new version");
        wait(store.flush()).await.unwrap();
        let stored: js_sys::Uint8Array = wait(idb_get_raw(&format!("sessile:{name}"), "b"))
            .await
            .unwrap()
            .into();
        let snap = sessile::decode(&stored.to_vec(), &Default::default()).unwrap();
        assert_eq!(snap.meta.schema_version, 3);
        let reparsed: JsValue = js(&snap.json);
        assert_eq!(string(&reparsed, "email").as_deref(), Some("a@example.com"));
        wait(store.close()).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_newer_schema_or_a_failing_migration_is_refused_and_left_untouched() {
    let (store, _) = open_with_golden("t-schema4", SCHEMA4, MIGRATE).await;
    assert_eq!(
        code(&store.err().expect("newer schema refused")),
        "SCHEMA_TOO_NEW"
    );
    let kept: js_sys::Uint8Array = wait(idb_get_raw("sessile:t-schema4", "a"))
        .await
        .unwrap()
        .into();
    assert_eq!(kept.to_vec(), SCHEMA4);

    let throwing = "({ 1: () => { throw new Error('bad data') }, 2: (s) => s })";
    let (store, _) = open_with_golden("t-schema-throw", SCHEMA1, throwing).await;
    let err = store.err().expect("failing migration refused");
    assert_eq!(code(&err), "MIGRATION_FAILED");
    assert!(field(&err, "message")
        .as_string()
        .unwrap()
        .contains("bad data"));
    let kept: js_sys::Uint8Array = wait(idb_get_raw("sessile:t-schema-throw", "a"))
        .await
        .unwrap()
        .into();
    assert_eq!(kept.to_vec(), SCHEMA1);
}

#[wasm_bindgen_test]
async fn an_evicted_namespace_is_reported_not_treated_as_new() {
    let name = "t-evicted";
    let db = fresh_db(name).await;
    saved_twice(name, "indexeddb").await;
    // What eviction or "clear site data" does to IndexedDB.
    wait(delete_db(&db)).await.unwrap();
    let events = Events::default();
    let store = open(&format!(r#"{{"name":"{name}","initial":null}}"#), &events)
        .await
        .unwrap();
    let restored = &events.of("state_restored")[0];
    assert_eq!(string(restored, "outcome").as_deref(), Some("evicted"));
    assert_eq!(string(restored, "lastVersion").as_deref(), Some("2"));
    wait(store.clear()).await.unwrap();
    wait(store.close()).await.unwrap();
    let events = Events::default();
    let store = open(&format!(r#"{{"name":"{name}","initial":null}}"#), &events)
        .await
        .unwrap();
    let restored = &events.of("state_restored")[0];
    assert_eq!(
        string(restored, "outcome").as_deref(),
        Some("fresh"),
        "clear() ends the session"
    );
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_closed_connection_is_reopened_for_the_next_write() {
    let name = "t-reopen-conn";
    let db = fresh_db(name).await;
    let store = open(
        &format!(r#"{{"name":"{name}","storage":"indexeddb"}}"#),
        &Events::default(),
    )
    .await
    .unwrap();
    store.set(js(r#"{"n":1}"#)).unwrap();
    wait(store.flush()).await.unwrap();
    // Deleting the database makes the browser close this store's connection.
    wait(delete_db(&db)).await.unwrap();
    store.set(js(r#"{"n":2}"#)).unwrap();
    wait(store.flush()).await.unwrap();
    let stored: js_sys::Uint8Array = wait(idb_get_raw(&db, "b")).await.unwrap().into();
    assert!(sessile::decode(&stored.to_vec(), &Default::default())
        .unwrap()
        .json
        .contains("2"));
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn pagehide_with_a_pending_write_leaves_a_rescue_copy_at_once() {
    let name = "t-pagehide";
    fresh_db(name).await;
    let store = open(
        &format!(r#"{{"name":"{name}","debounceMs":60000}}"#),
        &Events::default(),
    )
    .await
    .unwrap();
    store.set(js(r#"{"step":"success"}"#)).unwrap();
    fire_pagehide();
    // Synchronously written: no await between the event and this read.
    assert_eq!(rescue_keys(name).len(), 1, "one rescue copy, this tab's");
    // A new store (the reloaded page) restores it even if the async write
    // had not finished.
    let events = Events::default();
    let again = open(&format!(r#"{{"name":"{name}"}}"#), &events)
        .await
        .unwrap();
    assert_eq!(text(&again.state()), r#"{"step":"success"}"#);
    // Either the asynchronous write finished first (restored from a slot,
    // the rescue copy already removed), or the rescue copy was restored and
    // is written back to a slot as a new version, and then removed.
    let from = field(&events.of("state_restored")[0], "from").as_string();
    if from.as_deref() == Some("rescue") {
        wait(again.flush()).await.unwrap();
        let slot = field(&field(&again.diagnostics(), "lastWrite"), "slot");
        assert!(
            matches!(slot.as_string().as_deref(), Some("a" | "b")),
            "{slot:?}"
        );
    } else {
        wait(store.flush()).await.unwrap();
    }
    assert!(rescue_keys(name).is_empty());
    wait(store.close()).await.unwrap();
    wait(again.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_rescue_copy_alone_is_restored_and_written_back_to_a_slot() {
    let name = "t-rescue-only";
    fresh_db(name).await;
    let meta = sessile::SnapshotMeta {
        generation: 3,
        schema_version: 1,
        state_version: 5,
        modified_at_ms: 1,
    };
    let bytes = sessile::encode(r#"{"step":"upsell-2"}"#, &meta, &Default::default()).unwrap();
    let ls = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    let encoded = String::from(js_sys::Uint8Array::from(bytes.as_slice()).to_base64());
    ls.set_item(
        &format!("sessile:{name}:rescue:closedtab"),
        &format!("0:{encoded}"),
    )
    .unwrap();
    let events = Events::default();
    let store = open(
        &format!(r#"{{"name":"{name}","storage":"indexeddb"}}"#),
        &events,
    )
    .await
    .unwrap();
    let restored = &events.of("state_restored")[0];
    assert_eq!(string(restored, "from").as_deref(), Some("rescue"));
    assert_eq!(text(&store.state()), r#"{"step":"upsell-2"}"#);
    assert_eq!(store.version(), 5.0, "continues the (empty) stored head");
    wait(store.flush()).await.unwrap();
    let last = field(&store.diagnostics(), "lastWrite");
    assert_eq!(string(&last, "slot").as_deref(), Some("a"));
    assert!(rescue_keys(name).is_empty(), "removed once written back");
    wait(store.close()).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_tab_with_more_unsaved_edits_cannot_overwrite_a_newer_stored_state() {
    // Both tabs start from the same stored head. Tab a makes two edits (its
    // counter runs ahead), tab b makes one and stores it first: a's write is
    // based on the old head and must be refused, not win by its counter.
    let (opts, a, ea, b, _) = two_tabs("t-race").await;
    a.set(js(r#"{"step":"checkout","by":"a"}"#)).unwrap();
    assert_eq!(a.set(js(r#"{"step":"upsell-1","by":"a"}"#)).unwrap(), 2.0);
    assert_eq!(b.set(js(r#"{"step":"success","by":"b"}"#)).unwrap(), 1.0);
    wait(b.flush()).await.unwrap();
    // a flushes before b's announcement can arrive (no await in between
    // that lets the message task run first is not guaranteed, so accept
    // either path: refused write, or the message taken first).
    let flushed = wait(a.flush()).await;
    if let Err(e) = &flushed {
        assert_eq!(code(e), "STALE_WRITE");
    }
    wait(sleep(50)).await.unwrap();
    assert_eq!(text(&a.state()), r#"{"step":"success","by":"b"}"#);
    let conflict = &ea.of("conflict")[0];
    assert_eq!(
        text(&field(conflict, "local")),
        r#"{"step":"upsell-1","by":"a"}"#
    );
    assert_eq!(string(conflict, "winner").as_deref(), Some("remote"));
    let reopened = open(&opts, &Events::default()).await.unwrap();
    assert_eq!(text(&reopened.state()), r#"{"step":"success","by":"b"}"#);
    for s in [a, b, reopened] {
        wait(s.close()).await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn clear_in_one_tab_resets_the_others_and_blocks_a_stale_write_back() {
    let (opts, a, _, b, eb) = two_tabs("t-clear-tabs").await;
    a.set(js(r#"{"step":"success"}"#)).unwrap();
    wait(a.flush()).await.unwrap();
    wait(sleep(50)).await.unwrap();
    assert_eq!(text(&b.state()), r#"{"step":"success"}"#);
    wait(a.clear()).await.unwrap();
    wait(sleep(50)).await.unwrap();
    assert_eq!(text(&a.state()), r#"{"step":"cart"}"#);
    assert_eq!(
        text(&b.state()),
        r#"{"step":"cart"}"#,
        "b heard of the clear"
    );
    let cleared = eb
        .of("session_updated")
        .into_iter()
        .any(|e| field(&e, "cleared").as_bool() == Some(true));
    assert!(cleared);
    // The next session in b starts on top of the tombstone.
    b.set(js(r#"{"step":"checkout"}"#)).unwrap();
    wait(b.flush()).await.unwrap();
    let reopened = open(&opts, &Events::default()).await.unwrap();
    assert_eq!(text(&reopened.state()), r#"{"step":"checkout"}"#);
    for s in [a, b, reopened] {
        wait(s.close()).await.unwrap();
    }
}
