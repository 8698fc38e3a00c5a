//! When the store writes and what it leaves behind: debounce and hide,
//! the rescue copy on `pagehide` (and when a store is dropped), backoff
//! after a failed write, a connection the browser closed (or another tab's
//! upgrade made this page close), `close`, and the
//! eviction marker.

use serde_json::json;
use sessile::core::envelope::EnvelopeConfig;
use sessile::core::slots::SlotId;
use sessile::web::store::{BackendKind, During, RestoreOutcome, Winner};
use wasm_bindgen_test::*;

use super::helpers::*;

#[wasm_bindgen_test]
async fn writes_are_debounced_and_still_written_within_four_delays_under_a_stream_of_changes() {
    fresh("ws-debounce").await;
    let opts = options("ws-debounce")
        .storage(BackendKind::LocalStorage)
        .debounce_ms(200);
    let (store, _) = open(opts).await.unwrap();
    let start = js_sys::Date::now();
    let mut first_write = None;
    // A change every 50 ms for 1.5 s: the trailing delay never elapses.
    for i in 1..=30 {
        store.set(json!({ "n": i })).unwrap();
        sleep(50).await;
        if first_write.is_none() && store.diagnostics().store.last_write.is_some() {
            first_write = Some(js_sys::Date::now() - start);
        }
    }
    let first_write = first_write.expect("a write during the stream");
    assert!(first_write <= 1100.0, "first write after {first_write} ms");
    assert!(
        first_write >= 150.0,
        "not before the delay: {first_write} ms"
    );
    store.flush().await.unwrap();
    assert_eq!(ls_get("sessile:ws-debounce:head").as_deref(), Some("30"));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_change_is_not_written_before_its_delay() {
    fresh("ws-debounce-wait").await;
    let opts = options("ws-debounce-wait")
        .storage(BackendKind::LocalStorage)
        .debounce_ms(300);
    let (store, _) = open(opts).await.unwrap();
    store.set(json!({ "n": 1 })).unwrap();
    sleep(100).await;
    assert_eq!(ls_get("sessile:ws-debounce-wait:head"), None, "not yet");
    assert!(store.diagnostics().store.unsaved);
    until(|| ls_get("sessile:ws-debounce-wait:head").is_some()).await;
    assert_eq!(
        ls_get("sessile:ws-debounce-wait:head").as_deref(),
        Some("1")
    );
    assert!(!store.diagnostics().store.unsaved);
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn hiding_the_page_writes_at_once() {
    fresh("ws-hidden").await;
    let opts = options("ws-hidden")
        .storage(BackendKind::LocalStorage)
        .debounce_ms(60_000);
    let (store, _) = open(opts).await.unwrap();
    store.set(json!({ "n": "hidden" })).unwrap();
    assert!(store.diagnostics().store.unsaved);
    fire_hidden();
    until(|| ls_get("sessile:ws-hidden:head").is_some()).await;
    assert!(
        !store.diagnostics().store.unsaved,
        "written when hidden, not 60 s later"
    );
    assert_eq!(ls_get("sessile:ws-hidden:head").as_deref(), Some("1"));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn pagehide_with_a_pending_write_leaves_a_rescue_copy_at_once() {
    fresh("ws-pagehide").await;
    let (store, _) = open(options("ws-pagehide").debounce_ms(60_000))
        .await
        .unwrap();
    store.set(json!({ "step": "success" })).unwrap();
    fire_pagehide();
    // Written synchronously: no await between the event and this read.
    let keys = rescue_keys("ws-pagehide");
    assert_eq!(keys.len(), 1, "one rescue copy, this tab's");
    let client = store.diagnostics().client;
    assert_eq!(keys[0], ["sessile:ws-pagehide:rescue:", &client.0].concat());
    let text = ls_get(&keys[0]).unwrap();
    let (base, b64) = text.split_once(':').unwrap();
    assert_eq!(base, "0", "based on the empty head");
    assert_eq!(decoded(&from_base64(b64)).0, json!({ "step": "success" }));
    // The reloaded page restores it even if the async write had not finished.
    let (again, events) = open(options("ws-pagehide")).await.unwrap();
    assert_eq!(again.get(), json!({ "step": "success" }));
    let from = restored_from(&events.restored()).unwrap();
    assert!(
        matches!(from, SlotId::Rescue | SlotId::A | SlotId::B),
        "{from:?}"
    );
    if from == SlotId::Rescue {
        // The first store's write may land meanwhile: either way nothing is lost.
        let flushed = code(again.flush().await);
        assert!(
            flushed.starts_with("no error") || flushed == "STALE_WRITE",
            "{flushed}"
        );
    }
    store.flush().await.unwrap();
    assert_eq!(again.get(), json!({ "step": "success" }));
    store.close().await.unwrap();
    again.close().await.unwrap();
    assert!(rescue_keys("ws-pagehide").is_empty(), "removed once stored");
    let (third, _) = open(options("ws-pagehide")).await.unwrap();
    assert_eq!(third.get(), json!({ "step": "success" }));
    third.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn nothing_unsaved_leaves_no_rescue_copy_on_pagehide() {
    fresh("ws-pagehide-clean").await;
    let (store, _) = open(options("ws-pagehide-clean")).await.unwrap();
    store.set(json!(1)).unwrap();
    store.flush().await.unwrap();
    fire_pagehide();
    assert!(rescue_keys("ws-pagehide-clean").is_empty());
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_rescue_copy_alone_is_restored_and_written_back_and_a_broken_one_reported() {
    fresh("ws-rescue-only").await;
    let bytes = snapshot(&json!({ "step": "upsell-2" }), 5, 3, 1);
    ls_set(
        "sessile:ws-rescue-only:rescue:closedtab",
        &["0:", &base64(&bytes)].concat(),
    );
    ls_set("sessile:ws-rescue-only:rescue:broken", "0:not base64!");
    let (store, events) = open(options("ws-rescue-only").storage(BackendKind::IndexedDb))
        .await
        .unwrap();
    let restored = events.restored();
    assert_eq!(restored_from(&restored), Some(SlotId::Rescue));
    assert_eq!(
        skipped(&restored),
        vec![(SlotId::Rescue, "CORRUPT_PAYLOAD".into())]
    );
    assert_eq!(store.get(), json!({ "step": "upsell-2" }));
    assert_eq!(store.version(), 5, "continues the (empty) stored head");
    assert!(store.diagnostics().store.unsaved, "to be written back");
    store.flush().await.unwrap();
    assert_eq!(
        store.diagnostics().store.last_write.unwrap().slot,
        SlotId::A
    );
    assert!(
        rescue_keys("ws-rescue-only").is_empty(),
        "removed once written back"
    );
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_rescue_copy_based_on_an_older_head_loses_and_is_reported() {
    fresh("ws-rescue-stale").await;
    let (_, second) = saved_twice("ws-rescue-stale", Some(BackendKind::IndexedDb)).await;
    let old = json!({ "step": "old tab" });
    let bytes = snapshot(&old, 2, 2, 1);
    ls_set(
        "sessile:ws-rescue-stale:rescue:oldtab",
        &["1:", &base64(&bytes)].concat(),
    );
    let (store, events) = open(options("ws-rescue-stale")).await.unwrap();
    assert_eq!(store.get(), second);
    assert_eq!(events.conflicts(), vec![(old, second, Winner::Remote)]);
    assert!(rescue_keys("ws-rescue-stale").is_empty());
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_store_dropped_without_close_leaves_a_rescue_copy_the_next_open_restores() {
    fresh("ws-dropped").await;
    {
        let (store, _) = open(options("ws-dropped").debounce_ms(60_000))
            .await
            .unwrap();
        store.set(json!({ "kept": true })).unwrap();
    }
    assert_eq!(rescue_keys("ws-dropped").len(), 1);
    let (again, events) = open(options("ws-dropped")).await.unwrap();
    assert_eq!(restored_from(&events.restored()), Some(SlotId::Rescue));
    assert_eq!(again.get(), json!({ "kept": true }));
    again.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn close_writes_what_is_unsaved_and_leaves_no_rescue_copy() {
    fresh("ws-close").await;
    let (store, _) = open(options("ws-close").debounce_ms(60_000)).await.unwrap();
    store.set(json!({ "step": "checkout" })).unwrap();
    store.close().await.unwrap();
    assert!(rescue_keys("ws-close").is_empty());
    let (again, _) = open(options("ws-close")).await.unwrap();
    assert_eq!(again.get(), json!({ "step": "checkout" }));
    again.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_failed_write_is_tried_again_after_a_backoff_without_another_change() {
    fresh("ws-backoff").await;
    let envelope = EnvelopeConfig {
        compress_above: 100_000_000,
        ..EnvelopeConfig::default()
    };
    let opts = options("ws-backoff")
        .storage(BackendKind::LocalStorage)
        .debounce_ms(20)
        .envelope(envelope);
    let (store, events) = open(opts.clone()).await.unwrap();
    // Fill localStorage until it refuses, then ask for a write that cannot fit.
    let storage = ls();
    let mut junk = Vec::new();
    let mut size = 1 << 20;
    while size >= 1024 {
        let key = ["ws-junk-", &junk.len().to_string()].concat();
        if storage.set_item(&key, &"j".repeat(size)).is_ok() {
            junk.push(key);
        } else {
            size >>= 1;
        }
    }
    store.set(json!({ "blob": "b".repeat(64 * 1024) })).unwrap();
    sleep(300).await;
    let not_stored = |s: &sessile::web::Store| {
        let d = s.diagnostics().store;
        d.stored_version < d.version || d.writing
    };
    assert_eq!(
        events.errors(),
        vec![("QUOTA_EXCEEDED".into(), During::Write)]
    );
    assert!(not_stored(&store));
    for key in &junk {
        storage.remove_item(key).unwrap();
    }
    let end = js_sys::Date::now() + 15_000.0;
    while not_stored(&store) && js_sys::Date::now() < end {
        sleep(50).await;
    }
    let d = store.diagnostics().store;
    assert_eq!(
        d.stored_version, d.version,
        "the timer wrote it once there was room: {d:?}"
    );
    assert_eq!(d.last_error, None);
    assert_eq!(
        events.errors().len(),
        1,
        "a run of failures is reported once"
    );
    store.close().await.unwrap();
    let (again, _) = open(opts).await.unwrap();
    assert_eq!(again.get()["blob"].as_str().map(str::len), Some(64 * 1024));
    again.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_connection_the_browser_closed_is_reopened_for_the_next_write() {
    let db = fresh("ws-reopen-conn").await;
    let (store, _) = open(options("ws-reopen-conn").storage(BackendKind::IndexedDb))
        .await
        .unwrap();
    store.set(json!({ "n": 1 })).unwrap();
    store.flush().await.unwrap();
    // Deleting the database makes the browser close this store's connection.
    delete_db(&db).await;
    store.set(json!({ "n": 2 })).unwrap();
    let flushed = code(store.flush().await);
    assert!(
        flushed.starts_with("no error") || flushed == "STALE_WRITE",
        "{flushed}"
    );
    store.flush().await.unwrap();
    assert_eq!(decoded(&idb_bytes(&db, "b").await).0, json!({ "n": 2 }));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn another_tabs_upgrade_is_not_held_up_and_the_next_write_reopens_the_database() {
    let db = fresh("ws-upgraded").await;
    let opts = options("ws-upgraded").storage(BackendKind::IndexedDb);
    let (store, _) = open(opts.clone()).await.unwrap();
    store.set(json!({ "n": 1 })).unwrap();
    store.flush().await.unwrap();
    // Another tab (a later release) opens the database at version 2: this
    // store's connection hears `versionchange` and must let go, or the
    // upgrade waits, blocked, for as long as this page lives.
    let upgraded = upgrade_db(&db, 2).await.expect("the upgrade went through");
    upgraded.close();
    // The next write reopens the database, now at version 2.
    store.set(json!({ "n": 2 })).unwrap();
    store.flush().await.unwrap();
    store.close().await.unwrap();
    let (again, events) = open(opts).await.unwrap();
    assert_eq!(again.get(), json!({ "n": 2 }), "nothing was lost");
    assert!(
        restored_from(&events.restored()).is_some(),
        "restored from a slot of the upgraded database: {:?}",
        events.restored()
    );
    again.close().await.unwrap();
    delete_db(&db).await;
}

#[wasm_bindgen_test]
async fn an_evicted_namespace_is_reported_and_clear_ends_it() {
    let db = fresh("ws-evicted").await;
    saved_twice("ws-evicted", Some(BackendKind::IndexedDb)).await;
    assert!(
        cookie_has("sessile_ws-evicted=2"),
        "the marker cookie holds the last version"
    );
    assert_eq!(ls_get("sessile:ws-evicted:marker").as_deref(), Some("2"));
    // What eviction or "clear site data" does to IndexedDB.
    delete_db(&db).await;
    let (store, events) = open(options("ws-evicted")).await.unwrap();
    assert_eq!(
        events.restored(),
        RestoreOutcome::Evicted {
            last_version: "2".into()
        }
    );
    store.clear().await.unwrap();
    store.close().await.unwrap();
    assert!(!cookie_has("sessile_ws-evicted="));
    assert_eq!(ls_get("sessile:ws-evicted:marker"), None);
    let (again, events) = open(options("ws-evicted")).await.unwrap();
    assert_eq!(
        events.restored(),
        RestoreOutcome::Fresh,
        "clear() ends the session"
    );
    again.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn the_marker_cookie_alone_still_tells_an_eviction() {
    let db = fresh("ws-evicted-cookie").await;
    saved_twice("ws-evicted-cookie", Some(BackendKind::IndexedDb)).await;
    delete_db(&db).await;
    ls().remove_item("sessile:ws-evicted-cookie:marker")
        .unwrap();
    let (store, events) = open(options("ws-evicted-cookie")).await.unwrap();
    assert_eq!(
        events.restored(),
        RestoreOutcome::Evicted {
            last_version: "2".into()
        }
    );
    store.clear().await.unwrap();
    store.close().await.unwrap();
}
