//! What other builds stored: the TypeScript store's IndexedDB and
//! localStorage layout read back and written the same way, its
//! BroadcastChannel messages understood and answered in its shape, and the
//! golden snapshots of schemas 1 to 4 migrated or refused.

use js_sys::{Reflect, Uint8Array};
use serde_json::{json, Value};
use sessile::core::slots::SlotId;
use sessile::web::store::{BackendKind, RestoreOutcome};
use wasm_bindgen::prelude::*;
use wasm_bindgen_test::*;

use super::helpers::*;

const GOLDEN: [&[u8]; 4] = [
    include_bytes!("../fixtures/v1/schema/checkout-schema1.snap"),
    include_bytes!("../fixtures/v1/schema/checkout-schema2.snap"),
    include_bytes!("../fixtures/v1/schema/checkout-schema3.snap"),
    include_bytes!("../fixtures/v1/schema/checkout-schema4.snap"),
];

fn migrated() -> Value {
    json!({ "step": "checkout", "items": [{ "sku": "TEE-1", "qty": 2 }], "email": "a@example.com" })
}

/// Schema 3 with the page's two migrations (1: a step, 2: `mail` renamed `email`).
fn schema3(name: &str) -> sessile::web::StoreOptions {
    options(name)
        .storage(BackendKind::IndexedDb)
        .schema_version(3)
        .migration(1, |mut s| {
            s["step"] = json!("checkout");
            Ok(s)
        })
        .migration(2, |mut s| {
            let mail = s.as_object_mut().and_then(|o| o.remove("mail"));
            s["email"] = mail.unwrap_or(Value::Null);
            Ok(s)
        })
}

/// Golden bytes in slot a of a fresh namespace (the database made by a store).
async fn plant_golden(name: &str, n: usize) -> String {
    let db = fresh(name).await;
    let (store, _) = open(options(name).storage(BackendKind::IndexedDb))
        .await
        .unwrap();
    store.close().await.unwrap();
    idb_set_bytes(&db, "a", GOLDEN[n - 1]).await;
    db
}

async fn golden_is_migrated_and_written_back(n: usize) {
    let name = ["ws-schema", &n.to_string()].concat();
    let db = plant_golden(&name, n).await;
    let (store, events) = open(schema3(&name)).await.unwrap();
    assert_eq!(store.get(), migrated());
    match events.restored() {
        RestoreOutcome::Restored {
            migrated,
            schema_version,
            ..
        } => assert_eq!((migrated, schema_version), (true, n as u32)),
        other => panic!("{other:?}"),
    }
    assert_eq!(store.version(), 5, "a migrated state is a new version");
    store.flush().await.unwrap();
    let (state, meta) = decoded(&idb_bytes(&db, "b").await);
    assert_eq!((meta.schema_version, meta.state_version), (3, 5));
    assert_eq!(state, migrated());
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_golden_schema_1_snapshot_is_migrated_and_written_back() {
    golden_is_migrated_and_written_back(1).await;
}

#[wasm_bindgen_test]
async fn a_golden_schema_2_snapshot_is_migrated_and_written_back() {
    golden_is_migrated_and_written_back(2).await;
}

#[wasm_bindgen_test]
async fn a_golden_schema_3_snapshot_is_restored_as_it_is() {
    let db = plant_golden("ws-schema3", 3).await;
    let (store, events) = open(schema3("ws-schema3")).await.unwrap();
    assert_eq!(store.get(), migrated());
    assert!(matches!(
        events.restored(),
        RestoreOutcome::Restored {
            migrated: false,
            ..
        }
    ));
    assert!(!store.diagnostics().store.unsaved, "nothing to write back");
    store.close().await.unwrap();
    assert_eq!(idb_bytes(&db, "a").await, GOLDEN[2]);
}

async fn refused_and_untouched(name: &str, n: usize, opts: sessile::web::StoreOptions) -> String {
    let db = plant_golden(name, n).await;
    let error = match open(opts).await {
        Ok(_) => panic!("{name}: opened"),
        Err(e) => e,
    };
    assert_eq!(
        idb_bytes(&db, "a").await,
        GOLDEN[n - 1],
        "{name}: the stored bytes are left"
    );
    [error.code(), ": ", &error.to_string()].concat()
}

#[wasm_bindgen_test]
async fn a_newer_schema_is_refused_and_left_untouched() {
    let error = refused_and_untouched("ws-schema4", 4, schema3("ws-schema4")).await;
    assert!(error.starts_with("SCHEMA_TOO_NEW"), "{error}");
}

#[wasm_bindgen_test]
async fn a_failing_migration_is_refused_with_its_reason() {
    let opts = schema3("ws-schema-throw").migration(1, |_| Err("bad data".into()));
    let error = refused_and_untouched("ws-schema-throw", 1, opts).await;
    assert!(
        error.starts_with("MIGRATION_FAILED") && error.contains("bad data"),
        "{error}"
    );
}

#[wasm_bindgen_test]
async fn a_missing_migration_is_refused_naming_it() {
    let mut opts = schema3("ws-schema-missing");
    opts.migrate.remove(&2);
    let error = refused_and_untouched("ws-schema-missing", 1, opts).await;
    assert!(
        error.starts_with("MIGRATION_FAILED") && error.contains("migrate[2]"),
        "{error}"
    );
}

#[wasm_bindgen_test]
async fn indexeddb_bytes_stored_the_typescript_way_restore() {
    // Database sessile:<ns>, store "slots", keys a / b / head { version }.
    let db = fresh("ws-compat-idb").await;
    let (store, _) = open(options("ws-compat-idb").storage(BackendKind::IndexedDb))
        .await
        .unwrap();
    store.close().await.unwrap();
    idb_set_bytes(&db, "b", GOLDEN[0]).await;
    let head = js_sys::Object::new();
    Reflect::set(&head, &"version".into(), &4.into()).unwrap();
    idb_set(&db, "head", &head.into()).await;
    let (store, events) = open(options("ws-compat-idb")).await.unwrap();
    assert_eq!(restored_from(&events.restored()), Some(SlotId::B));
    assert_eq!(store.get()["mail"], json!("a@example.com"));
    assert_eq!(store.version(), 4);
    assert_eq!(
        store.diagnostics().store.backend,
        Some(BackendKind::IndexedDb)
    );
    store.set(json!({ "step": "cart" })).unwrap();
    store.flush().await.unwrap();
    let (state, meta) = decoded(&idb_bytes(&db, "a").await);
    assert_eq!((state, meta.state_version), (json!({ "step": "cart" }), 5));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn localstorage_text_stored_the_typescript_way_restores_and_continues() {
    // sessile:<ns>:a / :b as base64, :head as a decimal version.
    fresh("ws-compat-ls").await;
    ls_set("sessile:ws-compat-ls:a", &base64(GOLDEN[0]));
    ls_set("sessile:ws-compat-ls:head", "4");
    let opts = options("ws-compat-ls").storage(BackendKind::LocalStorage);
    let (store, events) = open(opts).await.unwrap();
    assert_eq!(restored_from(&events.restored()), Some(SlotId::A));
    assert_eq!(store.get()["mail"], json!("a@example.com"));
    assert_eq!(store.version(), 4);
    let mut next = store.get();
    next["step"] = json!("cart");
    store.set(next).unwrap();
    store.flush().await.unwrap();
    assert_eq!(ls_get("sessile:ws-compat-ls:head").as_deref(), Some("5"));
    let b = ls_get("sessile:ws-compat-ls:b").unwrap();
    assert_eq!(decoded(&from_base64(&b)).0["step"], json!("cart"));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn what_this_driver_stores_is_in_the_layout_the_typescript_store_reads() {
    let db = fresh("ws-layout").await;
    let (store, _) = open(options("ws-layout").storage(BackendKind::IndexedDb))
        .await
        .unwrap();
    store.set(json!({ "step": "cart" })).unwrap();
    store.flush().await.unwrap();
    let client = store.diagnostics().client;
    store.close().await.unwrap();
    // IndexedDB: a Uint8Array in slot a, a head whose `version` is a number.
    let a = idb_get(&db, "a").await;
    assert!(a.is_instance_of::<Uint8Array>());
    let head = idb_get(&db, "head").await;
    assert_eq!(
        Reflect::get(&head, &"version".into()).unwrap().as_f64(),
        Some(1.0)
    );
    let includes = Reflect::get(&head, &"includes".into()).unwrap();
    assert_eq!(
        js_sys::JSON::stringify(&includes)
            .unwrap()
            .as_string()
            .unwrap(),
        ["[[\"", &client.0, "\",1]]"].concat()
    );
    assert_eq!(ls_get("sessile:ws-layout:marker").as_deref(), Some("1"));
    // localStorage: base64 slots, a decimal head, the includes beside it.
    fresh("ws-layout-ls").await;
    let (store, _) = open(options("ws-layout-ls").storage(BackendKind::LocalStorage))
        .await
        .unwrap();
    store.set(json!({ "step": "cart" })).unwrap();
    store.flush().await.unwrap();
    let client = store.diagnostics().client;
    store.close().await.unwrap();
    let text = ls_get("sessile:ws-layout-ls:a").unwrap();
    let atob = web_sys::window().unwrap().atob(&text).unwrap();
    assert_eq!(
        atob.chars().map(|c| c as u8).collect::<Vec<_>>(),
        from_base64(&text)
    );
    assert_eq!(decoded(&from_base64(&text)).0, json!({ "step": "cart" }));
    assert_eq!(ls_get("sessile:ws-layout-ls:head").as_deref(), Some("1"));
    assert_eq!(
        ls_get("sessile:ws-layout-ls:includes").unwrap(),
        ["{\"version\":1,\"includes\":[[\"", &client.0, "\",1]]}"].concat()
    );
}

#[wasm_bindgen_test]
async fn tab_messages_in_the_typescript_shape_are_taken_and_sent() {
    fresh("ws-wire").await;
    let (store, events) = open(options("ws-wire").debounce_ms(60_000)).await.unwrap();
    let channel = web_sys::BroadcastChannel::new("sessile:ws-wire").unwrap();
    let heard = std::rc::Rc::new(std::cell::RefCell::new(Vec::<JsValue>::new()));
    let sink = heard.clone();
    let on_message =
        Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
            sink.borrow_mut().push(e.data());
        });
    channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    // A TypeScript tab stored version 1 (the store reads it back on its next write).
    let bytes = snapshot(&json!({ "step": "checkout" }), 1, 1, 1);
    let db = "sessile:ws-wire";
    idb_set_bytes(db, "a", &bytes).await;
    let head = js_sys::Object::new();
    Reflect::set(&head, &"version".into(), &1.into()).unwrap();
    idb_set(db, "head", &head.into()).await;
    let message = js_sys::JSON::parse(
        r#"{"tab":"1f2e3d","version":1,"slot":"a","generation":1,"schema":1,"json":"{\"step\":\"checkout\"}"}"#,
    )
    .unwrap();
    channel.post_message(&message).unwrap();
    until(|| store.version() == 1).await;
    assert_eq!(store.get(), json!({ "step": "checkout" }));
    assert_eq!(events.updates(), vec![(1, false)]);
    store.set(json!({ "step": "success" })).unwrap();
    store.flush().await.unwrap();
    until(|| !heard.borrow().is_empty()).await;
    let sent = heard.borrow().last().cloned().expect("an announcement");
    let field = |k: &str| Reflect::get(&sent, &k.into()).unwrap();
    assert_eq!(field("tab").as_string(), Some(store.diagnostics().client.0));
    assert_eq!(field("version").as_f64(), Some(2.0));
    assert_eq!(field("slot").as_string().as_deref(), Some("b"));
    assert_eq!(field("generation").as_f64(), Some(2.0));
    assert_eq!(field("schema").as_f64(), Some(1.0));
    assert_eq!(
        field("json").as_string().as_deref(),
        Some(r#"{"step":"success"}"#)
    );
    channel.set_onmessage(None);
    channel.close();
    store.close().await.unwrap();
}
