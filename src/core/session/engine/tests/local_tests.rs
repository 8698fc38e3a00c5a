//! A session without a server: opening, changes checked against the flow,
//! the TTL by timestamp, `extend` and `validate` by the server's rules
//! applied here, `end` and `close`.

use serde_json::json;

use super::harness::*;
use crate::core::session::engine::*;
use crate::core::session::store::{BackendKind, RestoreOutcome, StoreEvent};

#[test]
fn a_session_opens_once_its_store_restored_and_changes_persist() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-open", 1), 0);
    assert_eq!(p.engine.phase(), &EnginePhase::Ready);
    assert_eq!(p.engine.state(), &json!({"cart": {}}));
    assert_eq!(
        p.events,
        [SessionEvent::Store(StoreEvent::StateRestored(
            RestoreOutcome::Fresh
        ))]
    );
    assert_eq!(p.update(json!({"cart": {"X": 1}})), 1);
    assert_eq!(b.borrow().stored(BackendKind::IndexedDb), None, "debounced");
    p.advance(20);
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}}))
    );
    let again = Page::open(&b, local_config("l-open", 2), 30);
    assert_eq!(again.engine.state(), &json!({"cart": {"X": 1}}));
}

#[test]
fn a_step_the_flow_does_not_allow_changes_nothing() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-step", 1), 0);
    let e = p
        .engine
        .step("success", Some(&json!({"x": 1})), 0)
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_TRANSITION");
    assert_eq!((p.engine.version(), p.engine.status()), (0, "cart"));
    assert_eq!(p.engine.state(), &json!({"cart": {}}));
    assert_eq!(p.engine.step("checkout", None, 0).unwrap(), 1);
    p.run();
    assert_eq!(p.engine.status(), "checkout");
    assert!(p.events.contains(&SessionEvent::StatusChanged {
        status: "checkout".into()
    }));
    // A state that JSON cannot hold within the limit is refused, unchanged.
    let big = json!({"k": "x".repeat(6 * 1024 * 1024)});
    assert_eq!(
        p.engine.set(big, None, 0).unwrap_err().code(),
        "STATE_TOO_LARGE"
    );
    assert_eq!(p.engine.version(), 1);
}

#[test]
fn the_ttl_is_a_timestamp_and_an_expired_session_refuses_changes() {
    let b = browser();
    let mut c = local_config("l-ttl", 1);
    c.ttl_seconds = Some(60);
    let mut p = Page::open(&b, c, 1_000);
    assert_eq!(p.engine.expires_at(), 61_000);
    assert!(p.engine.poll_timeout().is_some_and(|t| t <= 61_000));
    p.advance(60_999);
    assert!(!p.kinds().contains(&"SessionExpired".to_string()));
    // The tab slept: the timer fires an hour late and finds it expired.
    p.advance(3_661_000);
    assert!(p.events.contains(&SessionEvent::SessionExpired {
        expires_at: 61_000,
        status: "expired".into()
    }));
    assert_eq!(p.engine.status(), "expired");
    let e = p
        .engine
        .update(&json!({"x": 1}), None, 3_661_000)
        .unwrap_err();
    assert_eq!(e.code(), "SESSION_EXPIRED");
    let id = p.engine.validate(3_661_000);
    p.run();
    assert_eq!(
        p.result(id),
        Some(Ok(Outcome::Validity(Validity::Invalid {
            code: "SESSION_EXPIRED".into()
        })))
    );
}

#[test]
fn an_expiry_passed_while_hidden_is_found_when_the_page_is_visible_again() {
    let b = browser();
    let mut c = local_config("l-visible", 1);
    c.ttl_seconds = Some(60);
    let mut p = Page::open(&b, c, 0);
    p.now = 100_000;
    p.engine.handle_visible(true, p.now);
    p.run();
    assert_eq!(p.engine.status(), "expired");
}

#[test]
fn extend_and_validate_without_a_server_follow_the_servers_rules() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-extend", 1), 0);
    let id = p.engine.extend(600, 1_000).unwrap();
    p.run();
    assert_eq!(
        p.result(id),
        Some(Ok(Outcome::ExpiresAt(1_800_000 + 600_000)))
    );
    let e = p.engine.extend(0, 1_000).unwrap_err();
    assert_eq!(
        e.to_string(),
        "invalid option `seconds`: 0 s is outside 1..=86400 s"
    );
    let id = p.engine.validate(1_000);
    p.run();
    assert_eq!(
        p.result(id),
        Some(Ok(Outcome::Validity(Validity::Valid {
            expires_at: 2_400_000
        })))
    );
}

#[test]
fn end_terminates_clears_the_local_copy_and_closes() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-end", 1), 0);
    p.update(json!({"email": "a@b.c"}));
    p.advance(20);
    assert!(b.borrow().stored(BackendKind::IndexedDb).is_some());
    let id = p.engine.end(None, false, 30).unwrap();
    p.run();
    assert_eq!(p.result(id), Some(Ok(Outcome::Done)));
    assert_eq!(p.engine.phase(), &EnginePhase::Closed);
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        None,
        "cleared (GDPR)"
    );
    assert!(p.events.contains(&SessionEvent::SessionTerminated {
        reason: "terminated".into(),
        status: "terminated".into()
    }));
    // The session is over: that is what a change is told (openSession's code).
    let e = p.engine.update(&json!({"x": 1}), None, 40).unwrap_err();
    assert_eq!(e.code(), "SESSION_CLOSED");
    let e = p.engine.set(json!({"x": 1}), None, 40).unwrap_err();
    assert_eq!(e.code(), "SESSION_CLOSED");
}

#[test]
fn end_with_a_closed_status_of_the_flow_moves_there_and_keep_keeps_the_copy() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-end-keep", 1), 0);
    for to in ["checkout", "processing", "upsell-1", "upsell-2", "success"] {
        p.engine.step(to, None, 0).unwrap();
    }
    let id = p.engine.end(Some("completed"), true, 10).unwrap();
    p.run();
    assert_eq!(p.result(id), Some(Ok(Outcome::Done)));
    assert_eq!(p.engine.status(), "completed");
    assert_eq!(
        p.events
            .iter()
            .filter(|e| matches!(e, SessionEvent::SessionTerminated { .. }))
            .count(),
        1
    );
    let stored = b.borrow().stored(BackendKind::IndexedDb);
    assert!(stored.is_some(), "kept");
}

#[test]
fn close_flushes_and_a_second_close_is_refused() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-close", 1), 0);
    p.update(json!({"cart": {"X": 1}}));
    let id = p.engine.close(1).unwrap();
    p.run();
    assert_eq!(p.result(id), Some(Ok(Outcome::Done)));
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}}))
    );
    assert_eq!(p.engine.close(2).unwrap_err().code(), "STORE_CLOSED");
    assert_eq!(p.engine.flush(2).unwrap_err().code(), "STORE_CLOSED");
    assert_eq!(p.engine.poll_timeout(), None, "no timer left");
}

#[test]
fn flush_without_a_server_completes_once_stored() {
    let b = browser();
    let mut p = Page::open(&b, local_config("l-flush", 1), 0);
    p.update(json!({"cart": {"X": 1}}));
    let id = p.engine.flush(0).unwrap();
    p.run();
    assert_eq!(p.result(id), Some(Ok(Outcome::Done)));
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}}))
    );
}

#[test]
fn bad_configs_are_refused_before_storage_is_touched() {
    let mut c = local_config("l-bad", 1);
    c.ttl_seconds = Some(30);
    assert_eq!(
        SessionEngine::new(c, Found::default(), 0)
            .unwrap_err()
            .code(),
        "INVALID_OPTIONS"
    );
    let mut c = synced_config("l-bad", 1);
    c.store.client.0 = "not-hex".into();
    assert_eq!(
        SessionEngine::new(c, Found::default(), 0)
            .unwrap_err()
            .code(),
        "OUTBOX_CORRUPT"
    );
    let b = browser();
    let mut p = Page::open(&b, local_config("l-auth", 1), 0);
    assert_eq!(
        p.engine.authenticate(None, 0).unwrap_err().code(),
        "INVALID_OPTIONS"
    );
}

#[test]
fn the_page_waits_while_the_store_opens_and_a_store_that_cannot_open_fails_the_session() {
    use crate::core::session::store::StorageCommand;
    let mut c = local_config("l-opening", 1);
    c.store.storage = Some(BackendKind::IndexedDb);
    let mut e = SessionEngine::new(c, Found::default(), 0).unwrap();
    assert_eq!(e.phase(), &EnginePhase::Opening);
    assert_eq!(
        e.update(&json!({"x": 1}), None, 0).unwrap_err().code(),
        "STORE_CLOSED"
    );
    assert!(matches!(
        e.poll_command(),
        Some(SessionCommand::Store(StorageCommand::Open(_)))
    ));
    let refused = crate::core::error::SessileError::StorageUnavailable {
        reason: "SecurityError".into(),
    };
    e.handle_backend_opened(Err(refused), 0);
    assert!(matches!(e.phase(), EnginePhase::Failed(err) if err.code() == "STORAGE_UNAVAILABLE"));
    assert_eq!(e.poll_timeout(), None);
}
