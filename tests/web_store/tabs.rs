//! Two stores of one namespace in one page, standing for two tabs: the
//! broadcast of a stored write, compare-and-set between racing writers,
//! clear across tabs, the namespace's Web Lock, a newer schema heard from
//! another tab, the client id kept in sessionStorage, and events.

use std::cell::RefCell;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use sessile::web::store::{BackendKind, During, StoreEvent, Winner};
use sessile::web::{Store, StoreOptions};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

use super::helpers::*;

#[wasm_bindgen_test]
async fn another_tab_follows_a_stored_write_through_the_broadcast_channel() {
    let (_, a, _, b, eb) = two_tabs("ws-follow").await;
    a.set(json!({ "step": "checkout" })).unwrap();
    a.flush().await.unwrap();
    until(|| b.version() == 1).await;
    assert_eq!(b.get(), json!({ "step": "checkout" }));
    assert_eq!(b.version(), 1);
    assert_eq!(eb.updates(), vec![(1, false)]);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_stale_write_is_refused_and_the_newer_stored_state_wins() {
    let (opts, a, _, b, eb) = two_tabs("ws-stale").await;
    a.set(json!({ "step": "checkout" })).unwrap();
    a.flush().await.unwrap();
    until(|| b.version() == 1).await;
    // b changes before it hears of a's next write.
    a.set(json!({ "step": "upsell-1" })).unwrap();
    a.flush().await.unwrap();
    b.set(json!({ "step": "success" })).unwrap();
    let flushed = code(b.flush().await);
    assert!(
        flushed.starts_with("no error") || flushed == "STALE_WRITE",
        "{flushed}"
    );
    until(|| b.get() == json!({ "step": "upsell-1" })).await;
    assert_eq!(b.get(), json!({ "step": "upsell-1" }));
    assert_eq!(
        eb.conflicts(),
        vec![(
            json!({ "step": "success" }),
            json!({ "step": "upsell-1" }),
            Winner::Remote
        )]
    );
    let (reopened, _) = open(opts).await.unwrap();
    assert_eq!(reopened.get(), json!({ "step": "upsell-1" }));
    for s in [a, b, reopened] {
        s.close().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_tab_with_more_unsaved_edits_cannot_overwrite_a_newer_stored_state() {
    let (opts, a, ea, b, _) = two_tabs("ws-race").await;
    // a makes two edits (its counter runs ahead), b one, stored first: a's
    // write is based on the old head and must be refused, not win by its counter.
    a.set(json!({ "step": "checkout", "by": "a" })).unwrap();
    assert_eq!(a.set(json!({ "step": "upsell-1", "by": "a" })).unwrap(), 2);
    assert_eq!(b.set(json!({ "step": "success", "by": "b" })).unwrap(), 1);
    b.flush().await.unwrap();
    let flushed = code(a.flush().await);
    assert!(
        flushed.starts_with("no error") || flushed == "STALE_WRITE",
        "{flushed}"
    );
    until(|| a.get() == json!({ "step": "success", "by": "b" })).await;
    assert_eq!(a.get(), json!({ "step": "success", "by": "b" }));
    let conflicts = ea.conflicts();
    assert_eq!(conflicts[0].0, json!({ "step": "upsell-1", "by": "a" }));
    assert_eq!(conflicts[0].2, Winner::Remote);
    let (reopened, _) = open(opts).await.unwrap();
    assert_eq!(reopened.get(), json!({ "step": "success", "by": "b" }));
    for s in [a, b, reopened] {
        s.close().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn clear_in_one_tab_resets_the_others_and_removes_the_marker() {
    let (opts, a, _, b, eb) = two_tabs("ws-clear-tabs").await;
    a.set(json!({ "step": "success" })).unwrap();
    a.flush().await.unwrap();
    until(|| b.version() == 1).await;
    assert_eq!(b.get(), json!({ "step": "success" }));
    a.clear().await.unwrap();
    until(|| b.get() == json!({ "step": "cart" })).await;
    assert_eq!(a.get(), json!({ "step": "cart" }));
    assert_eq!(b.get(), json!({ "step": "cart" }), "b heard of the clear");
    assert!(eb.updates().iter().any(|(_, cleared)| *cleared));
    assert_eq!(ls_get("sessile:ws-clear-tabs:marker"), None);
    b.set(json!({ "step": "checkout" })).unwrap();
    b.flush().await.unwrap();
    let (reopened, events) = open(opts).await.unwrap();
    assert_eq!(reopened.get(), json!({ "step": "checkout" }));
    assert!(restored_from(&events.restored()).is_some());
    for s in [a, b, reopened] {
        s.close().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_tab_that_missed_the_clear_is_refused_by_the_tombstone_and_resets() {
    let (opts, a, _, b, eb) = two_tabs("ws-tombstone").await;
    a.set(json!({ "step": "success" })).unwrap();
    a.flush().await.unwrap();
    until(|| b.version() == 1).await;
    // The test holds the namespace's lock, so a's clear and then b's write
    // wait for it, in that order: b writes before it can hear of the clear.
    let release = hold_lock("sessile:ws-tombstone").await;
    let clearing = {
        let a = a.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            a.clear()
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| e.code().into())
        })
    };
    sleep(20).await;
    b.set(json!({ "step": "checkout", "by": "b" })).unwrap();
    let writing = {
        let b = b.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let r = b.flush().await;
            Ok(JsValue::from_str(&code(r)))
        })
    };
    sleep(20).await;
    release.call0(&JsValue::UNDEFINED).unwrap();
    wasm_bindgen_futures::JsFuture::from(clearing)
        .await
        .unwrap();
    let flushed = wasm_bindgen_futures::JsFuture::from(writing).await.unwrap();
    assert_eq!(flushed.as_string().as_deref(), Some("STALE_WRITE"));
    assert_eq!(
        b.get(),
        json!({ "step": "cart" }),
        "the ended session is not written back"
    );
    assert_eq!(
        eb.conflicts(),
        vec![(
            json!({ "step": "checkout", "by": "b" }),
            json!({ "step": "cart" }),
            Winner::Remote
        )]
    );
    let (reopened, events) = open(opts).await.unwrap();
    assert_eq!(
        events.restored(),
        sessile::web::store::RestoreOutcome::Fresh
    );
    for s in [a, b, reopened] {
        s.close().await.unwrap();
    }
}

#[wasm_bindgen_test]
async fn a_slot_write_waits_for_the_namespaces_web_lock() {
    fresh("ws-lock").await;
    let (store, _) = open(
        options("ws-lock")
            .storage(BackendKind::LocalStorage)
            .debounce_ms(60_000),
    )
    .await
    .unwrap();
    let release = hold_lock("sessile:ws-lock").await;
    store.set(json!({ "n": 1 })).unwrap();
    let flushing = {
        let store = store.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            store
                .flush()
                .await
                .map(|()| JsValue::UNDEFINED)
                .map_err(|e| e.code().into())
        })
    };
    sleep(150).await;
    assert!(store.diagnostics().store.writing, "waiting for the lock");
    assert_eq!(
        ls_get("sessile:ws-lock:head"),
        None,
        "nothing written under another's lock"
    );
    release.call0(&JsValue::UNDEFINED).unwrap();
    wasm_bindgen_futures::JsFuture::from(flushing)
        .await
        .unwrap();
    assert_eq!(ls_get("sessile:ws-lock:head").as_deref(), Some("1"));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_newer_schema_heard_from_another_tab_stops_this_tabs_writes() {
    fresh("ws-newer-tab").await;
    let old = options("ws-newer-tab").debounce_ms(60_000);
    let new = options("ws-newer-tab")
        .debounce_ms(60_000)
        .schema_version(2);
    let (older, events) = open(old).await.unwrap();
    let (newer, _) = open(new).await.unwrap();
    newer.set(json!({ "v": 2 })).unwrap();
    newer.flush().await.unwrap();
    until(|| !events.errors().is_empty()).await;
    assert_eq!(
        events.errors(),
        vec![("SCHEMA_TOO_NEW".into(), During::Sync)]
    );
    assert_eq!(code(older.set(json!({ "v": 1 }))), "SCHEMA_TOO_NEW");
    assert_eq!(
        older.diagnostics().store.blocked.map(|e| e.code()),
        Some("SCHEMA_TOO_NEW")
    );
    older.close().await.unwrap();
    newer.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn the_client_id_is_kept_in_session_storage_and_a_live_one_is_not_shared() {
    fresh("ws-client").await;
    let key = "sessile:ws-client:client";
    let session = window().session_storage().unwrap().unwrap();
    let (a, _) = open(options("ws-client")).await.unwrap();
    let id_a = a.diagnostics().client;
    assert_eq!(id_a.0.len(), 32);
    assert!(id_a
        .0
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    let stored = session.get_item(key).unwrap().unwrap();
    assert_eq!(stored, ["\"", &id_a.0, "\""].concat(), "a JSON string");
    let (b, _) = open(options("ws-client")).await.unwrap();
    let id_b = b.diagnostics().client;
    assert_ne!(id_a, id_b, "a's id is held by a live store");
    a.close().await.unwrap();
    b.close().await.unwrap();
    // The lock manager lets go of a released lock a moment later.
    sleep(100).await;
    // Both closed: the id this tab kept last is free, and taken again.
    let (c, _) = open(options("ws-client")).await.unwrap();
    assert_eq!(c.diagnostics().client, id_b);
    c.close().await.unwrap();
    let given = sessile::web::store::ClientId("f".repeat(32));
    let (d, _) = open(options("ws-client").client(given.clone()))
        .await
        .unwrap();
    assert_eq!(d.diagnostics().client, given);
    d.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_subscription_hears_later_events_until_it_is_dropped() {
    let (_, a, _, b, _) = two_tabs("ws-subscribe").await;
    let heard = Rc::new(RefCell::new(Vec::new()));
    let sink = heard.clone();
    let subscription = b.subscribe(move |e| sink.borrow_mut().push(e.clone()));
    a.set(json!(1)).unwrap();
    a.flush().await.unwrap();
    until(|| !heard.borrow().is_empty()).await;
    assert!(matches!(
        heard.borrow().as_slice(),
        [StoreEvent::SessionUpdated { version: 1, .. }]
    ));
    drop(subscription);
    a.set(json!(2)).unwrap();
    a.flush().await.unwrap();
    until(|| b.get() == json!(2)).await;
    assert_eq!(heard.borrow().len(), 1, "nothing after the drop");
    assert_eq!(b.get(), json!(2));
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Cart {
    step: String,
    items: Vec<u32>,
}

#[wasm_bindgen_test]
async fn typed_states_round_trip_through_set_as_and_get_as() {
    fresh("ws-typed").await;
    let opts = StoreOptions::new("ws-typed").initial(json!({ "step": "cart", "items": [] }));
    let store = Store::open(opts.clone()).await.unwrap();
    let cart: Cart = store.get_as().unwrap();
    assert_eq!(
        cart,
        Cart {
            step: "cart".into(),
            items: vec![]
        }
    );
    store
        .set_as(&Cart {
            step: "checkout".into(),
            items: vec![1, 2],
        })
        .unwrap();
    store.close().await.unwrap();
    let again = Store::open(opts).await.unwrap();
    assert_eq!(again.get_as::<Cart>().unwrap().items, vec![1, 2]);
    assert_eq!(code(again.get_as::<Vec<u8>>()), "INVALID_STATE");
    again.close().await.unwrap();
}
