//! Browser tests of the Rust store driver (`sessile::web::Store`) in real
//! IndexedDB and localStorage, run by `wasm-pack test --headless --chrome`
//! and `--firefox`: the cases of js/test/store_browser.test.mjs (restore
//! after reopening, corrupted slots, backends unavailable, a real quota
//! error, oversize state, two stores racing, clear across tabs, golden old
//! schemas, eviction, a closed connection, the rescue copy, debounce and
//! hide, backoff) and the storage layout the TypeScript store wrote. Two
//! stores in one page stand for two tabs: they share storage, Web Locks
//! and the BroadcastChannel as tabs do. Each test has its own namespace.
#![cfg(target_arch = "wasm32")]

#[path = "web_store/compat.rs"]
mod compat;
#[path = "web_store/helpers.rs"]
mod helpers;
#[path = "web_store/lifecycle.rs"]
mod lifecycle;
#[path = "web_store/tabs.rs"]
mod tabs;

use helpers::*;
use serde_json::json;
use sessile::core::envelope::EnvelopeConfig;
use sessile::core::slots::SlotId;
use sessile::web::store::{BackendKind, During, RestoreOutcome};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn the_state_comes_back_after_reopening_from_indexeddb() {
    fresh("ws-reopen").await;
    let (_, second) = saved_twice("ws-reopen", None).await;
    let (store, events) = open(options("ws-reopen")).await.unwrap();
    assert_eq!(store.get(), second);
    assert_eq!(store.version(), 2);
    let d = store.diagnostics();
    assert_eq!(d.store.backend, Some(BackendKind::IndexedDb));
    assert!(d.web_locks);
    let restored = events.restored();
    assert_eq!(restored_from(&restored), Some(SlotId::B));
    assert!(skipped(&restored).is_empty());
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn the_state_comes_back_after_reopening_from_localstorage() {
    fresh("ws-reopen-ls").await;
    let (_, second) = saved_twice("ws-reopen-ls", Some(BackendKind::LocalStorage)).await;
    assert_eq!(ls_get("sessile:ws-reopen-ls:head").as_deref(), Some("2"));
    let (store, events) = open(options("ws-reopen-ls").storage(BackendKind::LocalStorage))
        .await
        .unwrap();
    assert_eq!(store.get(), second);
    assert_eq!(store.version(), 2);
    assert_eq!(restored_from(&events.restored()), Some(SlotId::B));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn the_memory_backend_is_shared_by_the_pages_stores_and_writes_nothing_durable() {
    fresh("ws-memory").await;
    let opts = options("ws-memory").storage(BackendKind::Memory);
    let (a, _) = open(opts.clone()).await.unwrap();
    a.set(json!({ "n": 1 })).unwrap();
    a.flush().await.unwrap();
    a.close().await.unwrap();
    let (b, events) = open(opts).await.unwrap();
    assert_eq!(b.get(), json!({ "n": 1 }));
    assert_eq!(restored_from(&events.restored()), Some(SlotId::A));
    assert_eq!(b.diagnostics().store.backend, Some(BackendKind::Memory));
    assert_eq!(
        b.diagnostics().durable,
        None,
        "memory is never made durable"
    );
    assert_eq!(
        ls_get("sessile:ws-memory:marker"),
        None,
        "no eviction marker"
    );
    assert!(!cookie_has("sessile_ws-memory="));
    b.close().await.unwrap();
}

async fn corrupt_one_slot(slot: SlotId) {
    let name = ["ws-corrupt-", slot.name()].concat();
    let db = fresh(&name).await;
    let (first, second) = saved_twice(&name, Some(BackendKind::IndexedDb)).await;
    let mut bytes = idb_bytes(&db, slot.name()).await;
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    idb_set_bytes(&db, slot.name(), &bytes).await;
    let (store, events) = open(options(&name)).await.unwrap();
    let (expect_from, expect_state) = if slot == SlotId::B {
        (SlotId::A, first)
    } else {
        (SlotId::B, second)
    };
    assert_eq!(store.get(), expect_state);
    assert_eq!(
        store.version(),
        2,
        "the version never falls below the stored head"
    );
    let restored = events.restored();
    assert_eq!(restored_from(&restored), Some(expect_from));
    assert_eq!(skipped(&restored), vec![(slot, "CHECKSUM_MISMATCH".into())]);
    assert!(events.errors().is_empty());
    store.set(json!({ "step": "upsell-1" })).unwrap();
    store.flush().await.unwrap();
    let last = store.diagnostics().store.last_write.unwrap();
    assert_eq!(
        last.slot, slot,
        "the next write goes over the corrupted slot"
    );
    // Slot a holds generation 1, slot b generation 2.
    assert_eq!(last.generation, if slot == SlotId::B { 2 } else { 3 });
    assert_ne!(last.checksum, 0);
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_corrupted_slot_b_is_skipped_reported_and_written_over() {
    corrupt_one_slot(SlotId::B).await;
}

#[wasm_bindgen_test]
async fn a_corrupted_slot_a_is_skipped_reported_and_written_over() {
    corrupt_one_slot(SlotId::A).await;
}

#[wasm_bindgen_test]
async fn both_slots_corrupted_give_the_initial_state_an_unreadable_restore_and_an_error() {
    let db = fresh("ws-corrupt-both").await;
    saved_twice("ws-corrupt-both", Some(BackendKind::IndexedDb)).await;
    for slot in ["a", "b"] {
        idb_set_bytes(&db, slot, b"SSNP\x01torn").await;
    }
    let initial = json!({ "step": "cart" });
    let (store, events) = open(options("ws-corrupt-both").initial(initial.clone()))
        .await
        .unwrap();
    assert_eq!(store.get(), initial);
    let restored = events.restored();
    assert!(
        matches!(restored, RestoreOutcome::Unreadable { .. }),
        "{restored:?}"
    );
    assert_eq!(
        skipped(&restored),
        vec![
            (SlotId::A, "TRUNCATED".into()),
            (SlotId::B, "TRUNCATED".into())
        ]
    );
    assert_eq!(events.errors(), vec![("TRUNCATED".into(), During::Restore)]);
    assert_eq!(
        store.set(json!({ "step": "checkout" })).unwrap(),
        3,
        "above the stored head 2"
    );
    store.flush().await.unwrap();
    store.close().await.unwrap();
    let (again, _) = open(options("ws-corrupt-both")).await.unwrap();
    assert_eq!(again.get(), json!({ "step": "checkout" }));
    again.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn a_localstorage_slot_that_is_not_base64_is_skipped_as_corrupt() {
    fresh("ws-corrupt-text").await;
    let (first, _) = saved_twice("ws-corrupt-text", Some(BackendKind::LocalStorage)).await;
    ls_set("sessile:ws-corrupt-text:b", "not base64!");
    let (store, events) = open(options("ws-corrupt-text").storage(BackendKind::LocalStorage))
        .await
        .unwrap();
    assert_eq!(store.get(), first);
    let restored = events.restored();
    assert_eq!(restored_from(&restored), Some(SlotId::A));
    assert_eq!(
        skipped(&restored),
        vec![(SlotId::B, "CORRUPT_PAYLOAD".into())]
    );
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn indexeddb_unavailable_falls_back_to_localstorage_with_storage_degraded() {
    fresh("ws-no-idb").await;
    break_indexed_db();
    let opened = open(options("ws-no-idb").initial(json!({ "n": 1 }))).await;
    repair_storage();
    let (store, events) = opened.unwrap();
    store.set(json!({ "n": 2 })).unwrap();
    store.flush().await.unwrap();
    let degraded = events.degraded();
    assert_eq!(degraded.len(), 1);
    let (backend, using, error) = &degraded[0];
    assert_eq!(
        (*backend, *using),
        (BackendKind::IndexedDb, BackendKind::LocalStorage)
    );
    assert_eq!(error.code(), "STORAGE_UNAVAILABLE");
    assert!(error.to_string().contains("SecurityError"), "{error}");
    let d = store.diagnostics();
    assert_eq!(d.store.backend, Some(BackendKind::LocalStorage));
    assert_eq!(d.store.degraded.len(), 1);
    assert_eq!(ls_get("sessile:ws-no-idb:head").as_deref(), Some("1"));
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn naming_a_backend_that_cannot_be_used_fails_the_open() {
    break_indexed_db();
    let idb = open(options("ws-no-idb-named").storage(BackendKind::IndexedDb)).await;
    repair_storage();
    assert_eq!(code(idb.map(|_| ())), "STORAGE_UNAVAILABLE");
    break_local_storage();
    let local = open(options("ws-no-ls-named").storage(BackendKind::LocalStorage)).await;
    repair_storage();
    assert_eq!(code(local.map(|_| ())), "STORAGE_UNAVAILABLE");
}

#[wasm_bindgen_test]
async fn no_storage_at_all_gives_memory_with_two_storage_degraded_events() {
    break_indexed_db();
    break_local_storage();
    let opened = open(options("ws-no-storage").initial(json!({ "n": 1 }))).await;
    let (store, events) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            repair_storage();
            panic!("{e}");
        }
    };
    store.set(json!({ "n": 2 })).unwrap();
    let flushed = store.flush().await;
    let d = store.diagnostics();
    let closed = store.close().await;
    repair_storage();
    flushed.unwrap();
    closed.unwrap();
    assert_eq!(d.store.backend, Some(BackendKind::Memory));
    assert!(!d.store.unsaved);
    assert_eq!(d.store.last_write.unwrap().slot, SlotId::A);
    let pairs: Vec<_> = events.degraded().iter().map(|(b, u, _)| (*b, *u)).collect();
    assert_eq!(
        pairs,
        vec![
            (BackendKind::IndexedDb, BackendKind::Memory),
            (BackendKind::LocalStorage, BackendKind::Memory)
        ]
    );
    assert_eq!(events.restored(), RestoreOutcome::Fresh);
}

#[wasm_bindgen_test]
async fn a_real_localstorage_quota_error_keeps_the_previous_state_stored() {
    fresh("ws-quota").await;
    let envelope = EnvelopeConfig {
        compress_above: 100_000_000,
        max_raw_bytes: 10_000_000,
        ..EnvelopeConfig::default()
    };
    let opts = options("ws-quota")
        .storage(BackendKind::LocalStorage)
        .envelope(envelope);
    let (store, events) = open(opts.clone()).await.unwrap();
    store.set(json!({ "step": "cart" })).unwrap();
    store.flush().await.unwrap();
    // 6 MB of JSON stored uncompressed: 8 M base64 characters, over every browser's quota.
    store.set(json!("x".repeat(6 * 1024 * 1024))).unwrap();
    assert_eq!(code(store.flush().await), "QUOTA_EXCEEDED");
    let d = store.diagnostics();
    let error = d.store.last_error.unwrap();
    assert_eq!(error.code(), "QUOTA_EXCEEDED");
    assert!(error.is_retryable());
    let message = error.to_string();
    let digits: String = message.chars().filter(char::is_ascii_digit).collect();
    assert!(
        message.contains("while writing") && digits.len() >= 7,
        "{message}"
    );
    assert!(
        d.store.unsaved,
        "the failed change is kept to be tried again"
    );
    assert!(
        events.errors().is_empty(),
        "a flush's error is the flush's, not an event"
    );
    let (again, _) = open(opts.clone()).await.unwrap();
    assert_eq!(again.get(), json!({ "step": "cart" }));
    again.close().await.unwrap();
    store.set(json!({ "step": "checkout" })).unwrap();
    store.flush().await.unwrap();
    store.close().await.unwrap();
    let (last, _) = open(opts).await.unwrap();
    assert_eq!(last.get(), json!({ "step": "checkout" }));
    last.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn an_oversize_state_is_refused_and_the_state_is_unchanged() {
    let envelope = EnvelopeConfig {
        max_raw_bytes: 1000,
        ..EnvelopeConfig::default()
    };
    let opts = options("ws-oversize")
        .storage(BackendKind::Memory)
        .envelope(envelope)
        .initial(json!({ "a": 1 }));
    let (store, _) = open(opts).await.unwrap();
    assert_eq!(code(store.set(json!("y".repeat(2000)))), "STATE_TOO_LARGE");
    // 400 characters of 3 UTF-8 bytes each: 1202 bytes of JSON.
    assert_eq!(code(store.set(json!("€".repeat(400)))), "STATE_TOO_LARGE");
    assert_eq!(store.get(), json!({ "a": 1 }));
    assert_eq!(store.version(), 0);
    store.close().await.unwrap();
}

#[wasm_bindgen_test]
async fn bad_options_are_refused_before_storage_is_touched() {
    assert_eq!(code(open(options("")).await.map(|_| ())), "INVALID_OPTIONS");
    assert_eq!(
        code(open(options("a\u{7}b")).await.map(|_| ())),
        "INVALID_OPTIONS"
    );
    assert_eq!(
        code(open(options(&"n".repeat(101))).await.map(|_| ())),
        "INVALID_OPTIONS"
    );
    let slow = options("ws-bad-debounce").debounce_ms(60_001);
    assert_eq!(code(open(slow).await.map(|_| ())), "INVALID_OPTIONS");
    let level = EnvelopeConfig {
        compression_level: 10,
        ..EnvelopeConfig::default()
    };
    let bad = options("ws-bad-level").envelope(level);
    assert_eq!(code(open(bad).await.map(|_| ())), "INVALID_OPTIONS");
    assert_eq!(ls_get("sessile:ws-bad-level:head"), None);
}

#[wasm_bindgen_test]
async fn a_closed_store_refuses_everything_with_store_closed() {
    let (store, _) = open(options("ws-closed").storage(BackendKind::Memory))
        .await
        .unwrap();
    store.close().await.unwrap();
    assert_eq!(code(store.set(json!(1))), "STORE_CLOSED");
    assert_eq!(code(store.flush().await), "STORE_CLOSED");
    assert_eq!(code(store.clear().await), "STORE_CLOSED");
    assert_eq!(code(store.close().await), "STORE_CLOSED");
    assert_eq!(store.phase(), sessile::core::session::store::Phase::Closed);
}
