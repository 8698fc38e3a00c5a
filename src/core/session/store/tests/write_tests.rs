//! Writing: debounce, at once when hidden, the rescue copy on pagehide,
//! quota errors that keep the previous copy, retries after a backoff, a
//! reopened connection, refused sizes, `close`. The cases of
//! js/test/store_browser.test.mjs and store_safety.test.mjs.

use serde_json::json;

use super::super::*;
use super::harness::*;
use crate::core::slots::SlotId;

#[test]
fn writes_are_debounced_and_written_within_four_delays_under_a_stream_of_changes() {
    let w = world();
    let cfg = StoreConfig {
        debounce_ms: 200,
        ..config("t-debounce", 1)
    };
    let mut tab = Tab::open(&w, cfg, 1_000);
    let mut first_write = None;
    for i in 1..=30u64 {
        tab.advance(1_000 + i * 50);
        tab.set(json!({ "n": i }));
        if first_write.is_none() && tab.engine.diagnostics().last_write.is_some() {
            first_write = Some(i * 50);
        }
    }
    let at = first_write.expect("written during the stream");
    assert!(
        at <= 850,
        "first write after {at} ms (four delays after the first change)"
    );
    tab.flush().unwrap();
    assert_eq!(
        w.borrow_mut().slots(BackendKind::IndexedDb).head.version,
        30
    );
}

#[test]
fn hiding_the_page_writes_at_once() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-hidden", 1), 0);
    tab.set(json!({ "n": "hidden" }));
    assert_eq!(tab.engine.poll_timeout(), Some(60_000));
    tab.advance(100);
    assert!(tab.engine.diagnostics().unsaved);
    tab.hide();
    assert!(
        !tab.engine.diagnostics().unsaved,
        "written when hidden, not 60 s later"
    );
    assert_eq!(w.borrow_mut().slots(BackendKind::IndexedDb).head.version, 1);
}

#[test]
fn pagehide_with_a_pending_write_leaves_a_rescue_copy_first() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-pagehide", 1), 0);
    tab.hold = true; // the write cannot finish before the page is gone
    tab.set(json!({ "step": "success" }));
    tab.engine.handle_pagehide(10);
    let StorageCommand::WriteRescue { key, base, bytes } = tab.engine.poll_command().unwrap()
    else {
        panic!("the rescue copy comes first, to be written synchronously")
    };
    assert_eq!(key, ["t-pagehide:rescue:", &client(1).0].concat());
    assert_eq!(base, 0);
    w.borrow_mut()
        .rescues
        .insert(key, (base, Stored::Bytes(bytes)));
    tab.run();
    assert_eq!(w.borrow().rescues.len(), 1);
    // The reloaded page restores it although the slot write never ran.
    drop(tab);
    let mut next = Tab::open(&w, config("t-pagehide", 1), 20);
    let RestoreOutcome::Restored { from, .. } = next.restored() else {
        panic!()
    };
    assert_eq!(from, SlotId::Rescue);
    assert_eq!(next.state(), json!({ "step": "success" }));
    next.flush().unwrap();
    assert!(w.borrow().rescues.is_empty(), "removed once written back");
    let third = Tab::open(&w, config("t-pagehide", 2), 30);
    assert_eq!(third.state(), json!({ "step": "success" }));
}

#[test]
fn nothing_unsaved_leaves_no_rescue_copy() {
    let w = world();
    let mut tab = Tab::open(&w, config("t", 1), 0);
    tab.set(json!({ "n": 1 }));
    tab.flush().unwrap();
    tab.pagehide();
    assert!(w.borrow().rescues.is_empty());
}

#[test]
fn a_quota_error_keeps_the_previous_copy_and_the_change_unsaved() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-quota", 1), 0);
    tab.set(json!({ "step": "cart" }));
    tab.flush().unwrap();
    w.borrow_mut().quota = Some(1_000);
    tab.set(json!({ "blob": "q".repeat(2_000) }));
    let error = tab.flush().unwrap_err();
    assert_eq!(error.code(), "QUOTA_EXCEEDED");
    let d = tab.engine.diagnostics();
    assert_eq!(d.last_error.unwrap().code(), "QUOTA_EXCEEDED");
    assert!(d.unsaved, "kept to be tried again");
    assert_eq!(
        w.borrow().state_in(BackendKind::IndexedDb, SlotId::A),
        Some(json!({ "step": "cart" }))
    );
    assert_eq!(
        w.borrow().state_in(BackendKind::IndexedDb, SlotId::B),
        None,
        "nothing half-written"
    );
    // Leaving the page keeps the latest state in the rescue copy (localStorage has room).
    w.borrow_mut().quota = None;
    tab.pagehide();
    let next = Tab::open(&w, config("t-quota", 1), 10);
    assert_eq!(next.state()["blob"].as_str().unwrap().len(), 2_000);
}

#[test]
fn a_failed_write_is_retried_after_a_backoff_and_reported_once() {
    let w = world();
    let cfg = StoreConfig {
        debounce_ms: 20,
        ..config("t-backoff", 1)
    };
    let mut tab = Tab::open(&w, cfg, 0);
    w.borrow_mut().quota = Some(100);
    tab.set(json!({ "blob": "b".repeat(1_000) }));
    tab.advance(20);
    assert_eq!(
        tab.errors(),
        [("QUOTA_EXCEEDED".to_string(), During::Write)]
    );
    // Backoff: 200, 400, 800 ms after each failure; no change, flush or hide needed.
    assert_eq!(tab.engine.poll_timeout(), Some(220));
    tab.advance(220);
    assert_eq!(tab.engine.poll_timeout(), Some(620));
    tab.advance(700);
    assert!(tab.engine.diagnostics().unsaved);
    w.borrow_mut().quota = None;
    tab.advance(1_500);
    let d = tab.engine.diagnostics();
    assert!(!d.unsaved && d.last_error.is_none(), "{d:?}");
    assert_eq!(d.stored_version, d.version);
    assert_eq!(tab.errors().len(), 1, "a run of failures is reported once");
    let again = Tab::open(&w, config("t-backoff", 2), 2_000);
    assert_eq!(again.state()["blob"].as_str().unwrap().len(), 1_000);
}

#[test]
fn a_write_that_fails_after_its_timer_fired_is_still_retried() {
    let w = world();
    let cfg = StoreConfig {
        debounce_ms: 20,
        ..config("s-retry", 1)
    };
    let mut tab = Tab::open(&w, cfg, 0);
    w.borrow_mut().quota = Some(100);
    tab.hold = true;
    tab.set(json!({ "blob": "b".repeat(1_000) }));
    let flush = tab.start_flush();
    tab.advance(300); // the debounce comes due while the write waits for the lock
    tab.release();
    assert_eq!(
        tab.result(flush).unwrap().unwrap_err().code(),
        "QUOTA_EXCEEDED"
    );
    assert!(tab.engine.diagnostics().unsaved);
    w.borrow_mut().quota = None;
    tab.advance(10_000);
    let d = tab.engine.diagnostics();
    assert!(!d.unsaved && d.last_error.is_none(), "{d:?}");
    assert_eq!(w.borrow_mut().slots(BackendKind::IndexedDb).head.version, 1);
}

#[test]
fn a_closed_connection_is_reopened_and_the_write_tried_once_more() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-conn", 1), 0);
    tab.set(json!({ "n": 1 }));
    tab.flush().unwrap();
    w.borrow_mut().close_connection = true;
    tab.set(json!({ "n": 2 }));
    tab.flush().unwrap();
    assert_eq!(
        w.borrow().state_in(BackendKind::IndexedDb, SlotId::B),
        Some(json!({ "n": 2 }))
    );
}

#[test]
fn an_oversize_state_is_refused_and_the_state_is_unchanged() {
    let w = world();
    let cfg = StoreConfig {
        envelope: crate::core::envelope::EnvelopeConfig {
            max_raw_bytes: 1_000,
            ..Default::default()
        },
        initial: json!({ "a": 1 }),
        ..config("t-oversize", 1)
    };
    let mut tab = Tab::open(&w, cfg, 0);
    let big = tab.engine.set(json!("y".repeat(2_000)), 1).unwrap_err();
    assert_eq!(big.code(), "STATE_TOO_LARGE");
    // 400 characters of 3 UTF-8 bytes: 1202 bytes of JSON.
    let wide = tab.engine.set(json!("€".repeat(400)), 1).unwrap_err();
    assert_eq!(wide.code(), "STATE_TOO_LARGE");
    assert_eq!(tab.state(), json!({ "a": 1 }));
    assert_eq!(tab.engine.version(), 0);
    tab.close().unwrap();
    assert_eq!(
        tab.engine.set(json!({ "a": 2 }), 2).unwrap_err().code(),
        "STORE_CLOSED"
    );
    assert_eq!(tab.engine.flush(2).unwrap_err().code(), "STORE_CLOSED");
}

#[test]
fn a_store_that_is_closing_refuses_changes_instead_of_dropping_them() {
    let w = world();
    let mut tab = Tab::open(&w, config("s-closing", 1), 0);
    tab.set(json!({ "step": "checkout" }));
    tab.hold = true;
    let close = tab.engine.close(1).unwrap();
    tab.run();
    assert!(tab.engine.diagnostics().writing);
    let during = tab.engine.set(json!({ "step": "payment" }), 2).unwrap_err();
    assert_eq!(during.code(), "STORE_CLOSED", "refused, not dropped");
    tab.release();
    assert_eq!(tab.result(close), Some(Ok(())));
    assert_eq!(tab.engine.phase(), &Phase::Closed);
    let again = Tab::open(&w, config("s-closing", 2), 3);
    assert_eq!(again.state(), json!({ "step": "checkout" }));
    assert_eq!(again.engine.version(), 1);
}

#[test]
fn a_close_whose_flush_fails_leaves_a_rescue_copy() {
    let w = world();
    let mut tab = Tab::open(&w, config("t-close-fail", 1), 0);
    // IndexedDB is full; localStorage still has room for the rescue copy.
    w.borrow_mut().quota = Some(200);
    tab.set(json!({ "blob": "c".repeat(300) }));
    let error = tab.close().unwrap_err();
    assert_eq!(error.code(), "QUOTA_EXCEEDED");
    assert_eq!(tab.engine.phase(), &Phase::Closed);
    assert_eq!(w.borrow().rescues.len(), 1);
    w.borrow_mut().quota = None;
    let next = Tab::open(&w, config("t-close-fail", 2), 10);
    assert_eq!(next.state(), json!({ "blob": "c".repeat(300) }));
}

#[test]
fn a_rescue_copy_restored_while_the_old_pages_write_lands_meets_it_without_loss() {
    let w = world();
    let mut old = Tab::open(&w, config("t-late", 1), 0);
    old.hold = true;
    old.set(json!({ "step": "success" }));
    old.pagehide(); // rescue copy now; its slot write waits for the lock
    let mut next = Tab::open(&w, config("t-late", 2), 10);
    let RestoreOutcome::Restored { from, .. } = next.restored() else {
        panic!()
    };
    assert_eq!(from, SlotId::Rescue);
    old.release(); // the old page's write lands after all
    let flushed = next.flush();
    assert!(
        matches!(&flushed, Ok(()) | Err(SessileError::StaleWrite { .. })),
        "{flushed:?}"
    );
    assert_eq!(next.state(), json!({ "step": "success" }));
    assert!(w.borrow().rescues.is_empty());
    let third = Tab::open(&w, config("t-late", 3), 20);
    assert_eq!(third.state(), json!({ "step": "success" }));
}

#[test]
fn the_pages_key_order_is_stored_and_restored() {
    // A page compares `JSON.stringify` of what it set with what comes back:
    // keys keep the order the page wrote them in, not sorted.
    let w = world();
    let state: Value =
        serde_json::from_str(r#"{"step":"checkout","items":[{"sku":"A","name":"x","qty":1}]}"#)
            .unwrap();
    let text = r#"{"step":"checkout","items":[{"sku":"A","name":"x","qty":1}]}"#;
    let mut tab = Tab::open(&w, config("t-order", 1), 0);
    tab.set(state);
    assert_eq!(tab.engine.json(), text);
    tab.flush().unwrap();
    tab.close().unwrap();
    let next = Tab::open(&w, config("t-order", 2), 10);
    assert_eq!(next.engine.json(), text);
}
