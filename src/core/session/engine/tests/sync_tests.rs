//! A synced session with the server's side played by hand: the session
//! created or joined, ops leaving only after their record is stored, the
//! server's answers taken into the store, statuses and expiry, `flush`,
//! `extend`, `validate`, `end`, `authenticate` and `close`.

use serde_json::{json, Value};

use super::harness::*;
use crate::core::protocol::{CatchUp, ErrorFrame, Extended, Message};
use crate::core::session::engine::*;
use crate::core::session::link::{Transport, TransportReason};
use crate::core::session::store::BackendKind;

fn ok(p: &Page, id: RequestId) -> Outcome {
    p.result(id).expect("finished").expect("succeeded")
}

#[test]
fn a_session_is_created_holding_the_pages_state_then_joined() {
    let b = browser();
    let options =
        json!({"name": "s-create", "server": {"http": "h"}, "flow": "table", "ttlSeconds": 600});
    let mut c = SessionConfig::from_options(&options, client(1), 3).unwrap();
    c.store.initial = json!({"cart": {"X": 1}});
    let mut p = Page::open(&b, c, 1_000);
    let (_, call) = p.calls[0].clone();
    assert_eq!(
        call,
        ServerCall::Create {
            body: json!({"state": {"cart": {"X": 1}}, "flow": "table", "ttlSeconds": 600})
        }
    );
    assert!(p.opened.is_empty(), "no link before the session exists");
    p.created(700_000);
    assert_eq!(p.opened, [Transport::WebSocket]);
    assert_eq!(p.engine.server_session().unwrap().id, SESSION);
    assert_eq!(p.engine.expires_at(), 700_000);
    assert_eq!(
        b.borrow()
            .local
            .get("s-create:server")
            .map(|t| serde_json::from_str::<Value>(t).unwrap()),
        Some(json!({"id": SESSION, "token": TOKEN}))
    );
    p.connected(Transport::WebSocket);
    assert_eq!(
        (
            p.sent[0]["type"].as_str(),
            p.sent[0]["haveVersion"].as_u64()
        ),
        (Some("hello"), Some(1))
    );
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    let kinds = p.kinds();
    for k in [
        "SessionCreated",
        "ConnectionEstablished",
        "AuthSuccess",
        "StateSynchronized",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} in {kinds:?}");
    }
    let kept: Value = serde_json::from_str(&b.borrow().local["s-create:lifecycle"]).unwrap();
    assert_eq!(
        kept,
        json!({"session": SESSION, "status": p.engine.status(), "expiresAt": 9_000_000}),
        "the welcome's status and expiry, kept for the next load"
    );
}

#[test]
fn a_creation_the_server_cannot_take_now_is_retried_with_backoff() {
    let b = browser();
    let mut p = Page::open(&b, synced_config("s-retry", 1), 0);
    let (id, _) = p.take_call(|_| true);
    let down = Failure::new("SERVER_UNREACHABLE", "no route", true);
    p.engine.handle_call_result(id, Err(down), 0);
    p.run();
    assert!(p.events.contains(&SessionEvent::ErrorOccurred {
        code: "SERVER_UNREACHABLE".into(),
        message: "no route".into(),
        terminal: false
    }));
    let at = p.engine.poll_timeout().unwrap();
    assert!(at <= 250, "full jitter under the first ceiling: {at}");
    p.advance(at);
    let (id, _) = p.take_call(|c| matches!(c, ServerCall::Create { .. }));
    let refused = Failure::new("INVALID_OPTIONS", "bad ttl", false);
    p.engine.handle_call_result(id, Err(refused), at);
    p.run();
    assert!(matches!(
        p.events.last(),
        Some(SessionEvent::ErrorOccurred { terminal: true, .. })
    ));
    assert_eq!(
        p.engine.poll_timeout(),
        Some(1_800_000),
        "the TTL's, no retry"
    );
}

#[test]
fn a_change_made_while_the_session_is_created_goes_out_once_joined() {
    let b = browser();
    let mut p = Page::open(&b, synced_config("s-meanwhile", 1), 0);
    p.update(json!({"cart": {"X": 1}}));
    p.engine.step("checkout", None, 0).unwrap();
    p.created(9_000_000);
    assert_eq!(
        p.engine.status(),
        "checkout",
        "the page's step is not undone"
    );
    p.connected(Transport::WebSocket);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    let ops = p.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (&ops[0]["patch"], &ops[0]["to"]),
        (&json!({"cart": {"X": 1}}), &json!("checkout"))
    );
}

#[test]
fn steps_taken_while_a_creation_waits_for_its_retry_go_out_one_op_each() {
    let b = browser();
    let mut p = Page::open(&b, synced_config("s-steps-retry", 1), 0);
    let (id, _) = p.take_call(|_| true);
    let down = Failure::new("SERVER_UNREACHABLE", "no route", true);
    p.engine.handle_call_result(id, Err(down), 0);
    p.run();
    // No server session, no creation under way: the page goes on.
    p.update(json!({"cart": {"X": 1}}));
    p.engine.step("checkout", None, p.now).unwrap();
    p.engine
        .step("processing", Some(&json!({"paid": false})), p.now)
        .unwrap();
    p.run();
    let at = p.engine.poll_timeout().unwrap();
    p.advance(at);
    p.created(9_000_000);
    assert_eq!(p.engine.status(), "processing", "the page's steps stand");
    p.connected(Transport::WebSocket);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    let ops = p.ops();
    let moves: Vec<_> = ops.iter().map(|o| (&o["patch"], &o["to"])).collect();
    // The state posted holds the changes; each step leaves from the one before.
    assert_eq!(
        moves,
        [
            (&json!({}), &json!("checkout")),
            (&json!({}), &json!("processing"))
        ]
    );
}

#[test]
fn steps_taken_before_a_session_exists_survive_a_reload_and_go_out_once_created() {
    let b = browser();
    let mut p = Page::open(&b, synced_config("s-steps-reload", 1), 0);
    let (id, _) = p.take_call(|_| true);
    let down = Failure::new("SERVER_UNREACHABLE", "no route", true);
    p.engine.handle_call_result(id, Err(down), 0);
    p.run();
    p.update(json!({"cart": {"X": 1}}));
    p.engine.step("checkout", None, p.now).unwrap();
    p.run();
    let kept: Value = serde_json::from_str(&b.borrow().local["s-steps-reload:lifecycle"]).unwrap();
    assert_eq!(
        kept,
        json!({"session": null, "status": "checkout", "steps": ["checkout"]})
    );
    drop(p);
    let mut q = Page::open(&b, synced_config("s-steps-reload", 1), 1_000);
    assert_eq!(
        q.engine.status(),
        "checkout",
        "the reload starts at its step"
    );
    q.created(9_000_000);
    assert_eq!(q.engine.status(), "checkout");
    q.connected(Transport::WebSocket);
    q.frame(welcome(1, 0, CatchUp::UpToDate));
    let ops = q.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["to"], "checkout");
    let kept: Value = serde_json::from_str(&b.borrow().local["s-steps-reload:lifecycle"]).unwrap();
    assert_eq!(kept["session"], SESSION);
    // A remembered path the flow does not allow is not taken.
    let c = browser();
    c.borrow_mut().local.insert(
        "s-steps-bad:lifecycle".into(),
        json!({"session": null, "status": "processing", "steps": ["processing"]}).to_string(),
    );
    let r = Page::open(&c, synced_config("s-steps-bad", 1), 0);
    assert_eq!(r.engine.status(), "cart");
}

#[test]
fn flush_during_a_creation_waits_for_the_session_and_its_changes_on_the_server() {
    let b = browser();
    let mut p = Page::open(&b, synced_config("s-flush-create", 1), 0);
    p.update(json!({"cart": {"X": 1}}));
    let id = p.engine.flush(p.now).unwrap();
    p.run();
    assert_eq!(p.result(id), None, "the creation is under way");
    assert!(p.engine.creating());
    p.created(9_000_000);
    assert!(!p.engine.creating());
    assert_eq!(
        p.result(id),
        None,
        "the change made meanwhile is not on the server yet"
    );
    p.connected(Transport::WebSocket);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    assert_eq!(p.ops().len(), 1);
    p.frame(ack(&client(1), 1, 2));
    assert_eq!(ok(&p, id), Outcome::Done);
    // A creation that failed waits for its retry: a flush does not wait for it.
    let mut q = Page::open(&b, synced_config("s-flush-retry", 2), 0);
    let (call, _) = q.take_call(|c| matches!(c, ServerCall::Create { .. }));
    let unreachable = Failure::new("SERVER_UNREACHABLE", "down", true);
    assert!(q.engine.creating());
    q.engine.handle_call_result(call, Err(unreachable), q.now);
    q.run();
    assert!(
        !q.engine.creating(),
        "answered: openSession goes on, the retry is timed"
    );
    let id = q.engine.flush(q.now).unwrap();
    q.run();
    assert_eq!(ok(&q, id), Outcome::Done);
}

#[test]
fn an_op_leaves_only_after_its_record_is_stored() {
    let b = browser();
    let mut p = synced_page(&b, "s-record", 1);
    p.hold_records = true;
    p.update(json!({"cart": {"X": 1}}));
    assert!(p.ops().is_empty(), "the frame waits for the record");
    let record = b.borrow().records["s-record:link:00000000000000000000000000000001"].clone();
    assert!(
        record.contains("\"patch\":{\"cart\":{\"X\":1}}"),
        "{record}"
    );
    p.hold_records = false;
    p.engine.handle_record_stored(Ok(()), p.now);
    p.run();
    assert_eq!(p.ops().len(), 1);
    let last_record = p.log.iter().rposition(|l| l == "record").unwrap();
    let first_send_after = p.log.iter().rposition(|l| l == "send").unwrap();
    assert!(last_record < first_send_after);
}

#[test]
fn a_record_that_cannot_be_stored_is_reported_once_and_the_op_sent_anyway() {
    let b = browser();
    let mut p = synced_page(&b, "s-record-fail", 1);
    b.borrow_mut().fail_records = 5;
    p.update(json!({"cart": {"X": 1}}));
    p.update(json!({"cart": {"X": 2}}));
    assert_eq!(
        p.ops().len(),
        2,
        "sent: they are in memory and in the page's state"
    );
    let errors: Vec<_> = p
        .events
        .iter()
        .filter(|e| matches!(e, SessionEvent::ErrorOccurred { .. }))
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        matches!(errors[0], SessionEvent::ErrorOccurred { code, message, .. }
        if code == "QUOTA_EXCEEDED" && message.starts_with("the outbox could not be stored: "))
    );
    b.borrow_mut().fail_records = 0;
    p.engine.handle_visible(true, p.now);
    p.run();
    let record = b.borrow().records["s-record-fail:link:00000000000000000000000000000001"].clone();
    assert!(record.contains("\"X\":2"), "written at the next input");
}

/// docs/FUZZING.md's case: a page sent an op whose record could not be
/// stored, then crashed. Reloaded from the older record, it holds the
/// changes it makes until the `welcome` says which ops of this client the
/// server processed, and numbers them above: a change numbered from the
/// older record would be taken for the op sent before the crash (a
/// duplicate) and lost.
#[test]
fn a_page_reloaded_from_an_older_record_numbers_its_changes_above_what_the_server_processed() {
    let b = browser();
    let name = "s-renumber";
    let key = [name, ":link:", &client(1).0].concat();
    let mut p = synced_page(&b, name, 1);
    p.advance(p.now + 20);
    assert!(
        b.borrow().records.contains_key(&key),
        "a record at version 1"
    );
    b.borrow_mut().fail_records = 100;
    p.update(json!({"cart": {"X": 1}}));
    assert_eq!(p.ops().len(), 1, "sent, though its record is not stored");
    drop(p); // crashed
    b.borrow_mut().fail_records = 0;
    let mut again = Page::open(&b, synced_config(name, 1), 5_000);
    again.update(json!({"cart": {"Y": 1}}));
    again.connected(Transport::WebSocket);
    assert!(again.ops().is_empty(), "held until the welcome");
    again.frame(welcome(
        2,
        1,
        CatchUp::Snapshot {
            state: json!({"cart": {"X": 1}}),
        },
    ));
    let sent = again.ops();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (&sent[0]["id"]["seq"], &sent[0]["patch"]),
        (&json!(2), &json!({"cart": {"Y": 1}}))
    );
    again.frame(ack(&client(1), 2, 3));
    assert_eq!(again.engine.state(), &json!({"cart": {"X": 1, "Y": 1}}));
}

#[test]
fn the_servers_answers_tell_the_store_which_changes_it_may_forget() {
    let b = browser();
    let mut p = synced_page(&b, "s-ack", 1);
    let me = client(1);
    p.update(json!({"cart": {"X": 1}}));
    p.advance(p.now + 20);
    assert_eq!(
        p.engine.diagnostics().store.pending_changes,
        1,
        "stored, not answered"
    );
    p.frame(ack(&me, 1, 2));
    assert_eq!(p.engine.diagnostics().store.pending_changes, 0);
    assert_eq!(p.engine.diagnostics().unanswered, 0);
}

#[test]
fn the_servers_copy_comes_into_the_page_with_this_tabs_unanswered_changes_on_top() {
    let b = browser();
    let mut p = synced_page(&b, "s-reconcile", 1);
    p.update(json!({"cart": {"X": 1}}));
    p.frame(patch(2, json!({"email": "o@x"}), Some((OTHER, 1))));
    assert_eq!(p.engine.state(), &json!({"cart": {"X": 1}, "email": "o@x"}));
    assert!(p.events.contains(&SessionEvent::SessionUpdated {
        version: p.engine.version(),
        server_version: 2
    }));
    // The same version again (a duplicate frame) changes nothing.
    let before = p.engine.version();
    p.frame(patch(2, json!({"email": "o@x"}), Some((OTHER, 1))));
    assert_eq!(p.engine.version(), before);
    p.advance(p.now + 20);
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}, "email": "o@x"}))
    );
}

#[test]
fn a_conflict_the_server_won_is_reported_and_the_page_takes_the_servers_value() {
    let b = browser();
    let mut p = synced_page(&b, "s-conflict", 1);
    let me = client(1);
    p.update(json!({"cart": {"X": 1}}));
    p.frame(conflict(&me, 1, 3, json!({"cart": {"X": 5}})));
    assert!(
        matches!(p.events.iter().rev().find(|e| matches!(e, SessionEvent::Conflict { .. })),
        Some(SessionEvent::Conflict { local, server, .. }) if *local == json!({"cart": {"X": 1}}) && *server == json!({"cart": {"X": 5}}))
    );
    assert_eq!(p.engine.state(), &json!({"cart": {"X": 5}}));
    assert_eq!(p.ops().len(), 1, "not submitted again");
}

#[test]
fn the_page_shows_its_own_step_until_the_server_answers_and_a_refused_step_goes_back() {
    let b = browser();
    let mut p = synced_page(&b, "s-status", 1);
    let me = client(1);
    p.engine.step("checkout", None, p.now).unwrap();
    p.run();
    // A reconnect's welcome still says cart: the page's step stands.
    let transport = p.reconnect();
    p.connected(transport);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    assert_eq!(p.engine.status(), "checkout");
    let reject = json!({"type": "reject", "id": {"client": me.0, "seq": 1}, "code": "INVALID_TRANSITION", "message": "no"});
    p.engine.handle_frame(reject.to_string().as_bytes(), p.now);
    p.run();
    assert_eq!(p.engine.status(), "cart", "the server's status stands");
    let kept: Value = serde_json::from_str(&b.borrow().local["s-status:lifecycle"]).unwrap();
    assert_eq!(kept["status"], "cart");
}

#[test]
fn a_remembered_session_is_joined_at_its_last_known_status_without_a_creation() {
    let b = browser();
    b.borrow_mut().local.insert(
        "s-known:server".into(),
        json!({"id": SESSION, "token": TOKEN}).to_string(),
    );
    let kept = json!({"session": SESSION, "status": "checkout", "expiresAt": 5_000_000});
    b.borrow_mut()
        .local
        .insert("s-known:lifecycle".into(), kept.to_string());
    let p = Page::open(&b, synced_config("s-known", 1), 1_000);
    assert!(p.calls.is_empty());
    assert_eq!(p.opened, [Transport::WebSocket]);
    assert_eq!(
        (p.engine.status(), p.engine.expires_at()),
        ("checkout", 5_000_000)
    );
    // Another session's lifecycle, or an expiry already past, is not taken.
    let b = browser();
    b.borrow_mut().local.insert(
        "s-known:server".into(),
        json!({"id": SESSION, "token": TOKEN}).to_string(),
    );
    let past = json!({"session": SESSION, "status": "checkout", "expiresAt": 10});
    b.borrow_mut()
        .local
        .insert("s-known:lifecycle".into(), past.to_string());
    let p = Page::open(&b, synced_config("s-known", 1), 1_000);
    assert_eq!(p.engine.status(), "checkout");
    assert_eq!(p.engine.expires_at(), 1_000 + 1_800_000);
}

#[test]
fn a_reload_resends_the_unanswered_ops_of_its_record() {
    let b = browser();
    let mut p = synced_page(&b, "s-reload", 1);
    p.engine.handle_online(false, p.now);
    p.update(json!({"cart": {"X": 1}}));
    // The tab crashes: no close. Its reload keeps its client id.
    let mut again = Page::open(&b, synced_config("s-reload", 1), 5_000);
    assert!(again.calls.is_empty());
    again.connected(Transport::WebSocket);
    assert_eq!(again.sent[0]["haveVersion"], 1);
    again.frame(welcome(1, 0, CatchUp::UpToDate));
    let ops = again.ops();
    assert_eq!(
        (ops.len(), &ops[0]["patch"]),
        (1, &json!({"cart": {"X": 1}}))
    );
}

#[test]
fn a_record_that_does_not_read_is_reported_and_the_link_starts_afresh() {
    let b = browser();
    b.borrow_mut().local.insert(
        "s-corrupt:server".into(),
        json!({"id": SESSION, "token": TOKEN}).to_string(),
    );
    b.borrow_mut().records.insert(
        "s-corrupt:link:00000000000000000000000000000001".into(),
        "{\"session\":".into(),
    );
    let mut p = Page::open(&b, synced_config("s-corrupt", 1), 0);
    assert!(
        matches!(&p.events[..], [.., SessionEvent::ErrorOccurred { code, terminal: false, .. }] if code == "OUTBOX_CORRUPT")
    );
    p.connected(Transport::WebSocket);
    assert_eq!(p.sent[0]["haveVersion"], 0);
}

#[test]
fn flush_waits_for_the_server_while_connected_and_not_while_offline() {
    let b = browser();
    let mut p = synced_page(&b, "s-flush", 1);
    p.update(json!({"cart": {"X": 1}}));
    let id = p.engine.flush(p.now).unwrap();
    p.run();
    assert_eq!(p.result(id), None, "stored, waiting for the ack");
    p.frame(ack(&client(1), 1, 2));
    assert_eq!(ok(&p, id), Outcome::Done);
    p.engine.handle_online(false, p.now);
    p.update(json!({"cart": {"X": 2}}));
    let id = p.engine.flush(p.now).unwrap();
    p.run();
    assert_eq!(
        ok(&p, id),
        Outcome::Done,
        "offline: nothing to wait for now"
    );
}

#[test]
fn extend_and_validate_ask_the_server_and_its_pushes_move_the_expiry() {
    let b = browser();
    let mut p = synced_page(&b, "s-extend", 1);
    assert_eq!(p.engine.expires_at(), 9_000_000, "the welcome's");
    assert_eq!(
        p.engine.extend(0, p.now).unwrap_err().code(),
        "INVALID_OPTIONS"
    );
    let id = p.engine.extend(600, p.now).unwrap();
    p.run();
    let (call, what) = p.take_call(|c| matches!(c, ServerCall::Extend { .. }));
    assert!(matches!(what, ServerCall::Extend { seconds: 600, .. }));
    p.engine
        .handle_call_result(call, Ok(json!({"expiresAt": 9_600_000})), p.now);
    p.run();
    assert_eq!(ok(&p, id), Outcome::ExpiresAt(9_600_000));
    p.frame(Message::Extended(Extended {
        expires_at: 9_900_000,
    }));
    assert_eq!(p.engine.expires_at(), 9_900_000);
    let kept: Value = serde_json::from_str(&b.borrow().local["s-extend:lifecycle"]).unwrap();
    assert_eq!(kept["expiresAt"], 9_900_000);
    let id = p.engine.validate(p.now);
    p.run();
    let (call, _) = p.take_call(|c| matches!(c, ServerCall::Validate { .. }));
    p.engine.handle_call_result(
        call,
        Ok(json!({"valid": false, "code": "SESSION_EXPIRED"})),
        p.now,
    );
    p.run();
    assert_eq!(
        ok(&p, id),
        Outcome::Validity(Validity::Invalid {
            code: "SESSION_EXPIRED".into()
        })
    );
}

#[test]
fn end_with_a_final_status_waits_for_the_server_then_forgets_everything() {
    let b = browser();
    let mut p = synced_page(&b, "s-end", 1);
    let me = client(1);
    let mut version = 1;
    for (seq, to) in ["checkout", "processing", "upsell-1", "upsell-2", "success"]
        .iter()
        .enumerate()
    {
        p.engine.step(to, None, p.now).unwrap();
        p.run();
        version += 1;
        p.frame(ack(&me, seq as u64 + 1, version));
    }
    let id = p.engine.end(Some("completed"), false, p.now).unwrap();
    p.run();
    assert_eq!(p.result(id), None, "waits for the server's answer");
    assert_eq!(p.ops().last().unwrap()["to"], "completed");
    p.frame(ack(&me, 6, version + 1));
    assert_eq!(ok(&p, id), Outcome::Done);
    assert_eq!(p.engine.phase(), &EnginePhase::Closed);
    let b = b.borrow();
    assert_eq!(b.stored(BackendKind::IndexedDb), None);
    assert!(
        !b.local.keys().any(|k| k.starts_with("s-end:")),
        "{:?}",
        b.local
    );
    assert!(b.records.is_empty());
    assert_eq!(p.released, [true]);
    assert_eq!(p.closes, 1, "the transport closed");
}

#[test]
fn terminating_needs_the_server_unless_it_already_ended_the_session() {
    let b = browser();
    let mut p = synced_page(&b, "s-terminate", 1);
    p.update(json!({"cart": {"X": 1}}));
    p.advance(p.now + 20);
    let id = p.engine.end(None, false, p.now).unwrap();
    p.run();
    let (call, _) = p.take_call(|c| matches!(c, ServerCall::End { .. }));
    let down = Failure::new("SERVER_UNREACHABLE", "offline", true);
    p.engine.handle_call_result(call, Err(down.clone()), p.now);
    p.run();
    assert_eq!(p.result(id), Some(Err(down)));
    assert_eq!(p.engine.phase(), &EnginePhase::Ready, "nothing cleared");
    assert!(b.borrow().stored(BackendKind::IndexedDb).is_some());
    let id = p.engine.end(None, false, p.now).unwrap();
    p.run();
    let (call, _) = p.take_call(|c| matches!(c, ServerCall::End { .. }));
    let gone = Failure::new("SESSION_NOT_FOUND", "swept", false);
    p.engine.handle_call_result(call, Err(gone), p.now);
    p.run();
    assert_eq!(ok(&p, id), Outcome::Done);
    assert_eq!(p.engine.status(), "terminated");
    assert_eq!(b.borrow().stored(BackendKind::IndexedDb), None);
}

/// Seen in Firefox (tests/web_session/lifecycle.rs): the server's push of
/// the end (status `terminated`, the state erased) came over the link
/// before the answer to `DELETE`, and the erased state replaced the copy
/// `end(keep)` keeps.
#[test]
fn the_erased_state_pushed_while_an_end_waits_does_not_replace_the_kept_copy() {
    let b = browser();
    let mut p = synced_page(&b, "s-end-push", 1);
    let me = client(1);
    p.update(json!({"cart": {"X": 1}}));
    p.frame(ack(&me, 1, 2));
    let id = p.engine.end(None, true, p.now).unwrap();
    p.run();
    let (call, _) = p.take_call(|c| matches!(c, ServerCall::End { .. }));
    // The server ended the session: its push comes first.
    let mut end = patch(3, json!({"cart": null}), None);
    if let Message::Patch(lp) = &mut end {
        lp.status = Some("terminated".into());
    }
    p.frame(end);
    assert_eq!(p.engine.state(), &json!({"cart": {"X": 1}}), "kept");
    p.engine
        .handle_call_result(call, Ok(json!({"status": "terminated"})), p.now);
    p.run();
    assert_eq!(ok(&p, id), Outcome::Done);
    assert_eq!(p.engine.status(), "terminated");
    assert_eq!(
        b.borrow().stored(BackendKind::IndexedDb),
        Some(json!({"cart": {"X": 1}})),
        "the local copy is kept"
    );
}

#[test]
fn close_keeps_the_record_and_the_listed_ops_and_fails_an_end_still_waiting() {
    let b = browser();
    let mut p = synced_page(&b, "s-close", 1);
    for to in ["checkout", "processing", "upsell-1", "upsell-2", "success"] {
        p.engine.step(to, None, p.now).unwrap();
    }
    p.run();
    let end = p.engine.end(Some("completed"), false, p.now).unwrap();
    p.run();
    let id = p.engine.close(p.now).unwrap();
    p.run();
    assert_eq!(p.result(end).unwrap().unwrap_err().code, "SESSION_CLOSED");
    assert_eq!(ok(&p, id), Outcome::Done);
    assert_eq!((p.closes, &p.released[..]), (1, &[false][..]));
    let b = b.borrow();
    let record = &b.records["s-close:link:00000000000000000000000000000001"];
    assert!(
        record.contains("completed"),
        "the final step stays in the outbox"
    );
    assert!(b
        .local
        .contains_key("s-close:pending:00000000000000000000000000000001"));
    assert!(b.local.contains_key("s-close:server"));
}

#[test]
fn a_refused_token_asks_for_authentication_and_authenticate_joins_or_creates() {
    let b = browser();
    let mut p = synced_page(&b, "s-auth", 1);
    let transport = p.reconnect();
    p.connected(transport);
    p.frame(Message::Error(ErrorFrame {
        code: "INVALID_TOKEN".into(),
        message: "no".into(),
        retryable: false,
    }));
    let kinds = p.kinds();
    assert!(
        kinds.ends_with(&["AuthFailed".to_string(), "AuthRequired".to_string()]),
        "{kinds:?}"
    );
    let other = ServerSession {
        id: "0123456789abcdef0123456789abcdef".into(),
        token: "t2".into(),
    };
    let id = p.engine.authenticate(Some(other.clone()), p.now).unwrap();
    p.run();
    assert_eq!(ok(&p, id), Outcome::Done);
    p.connected(Transport::WebSocket);
    assert_eq!(p.sent.last().unwrap()["session"], other.id.as_str());
    let id = p.engine.authenticate(None, p.now).unwrap();
    p.run();
    assert_eq!(p.result(id), None, "waits for the creation's first answer");
    p.created(9_000_000);
    assert_eq!(ok(&p, id), Outcome::Done);
    assert_eq!(p.engine.server_session().unwrap().id, SESSION);
}

#[test]
fn a_refused_websocket_is_remembered_by_the_origin_and_its_next_pages_start_on_http() {
    let b = browser();
    let mut p = synced_page(&b, "s-fallback", 1);
    let remembered = |b: &Shared| b.borrow().local.get("s-fallback:fallback").cloned();
    assert_eq!(remembered(&b), None, "on WebSocket");
    // The connection drops; the next WebSocket is refused: HTTP at once,
    // and once it works the refusal is remembered for ten minutes.
    assert_eq!(p.reconnect(), Transport::WebSocket);
    let opened = p.opened.len();
    p.engine.handle_closed(p.now);
    p.run();
    assert_eq!(p.opened[opened..], [Transport::Http], "no backoff");
    p.connected(Transport::Http);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    let until = p.now + 600_000;
    assert_eq!(remembered(&b), Some(until.to_string()));
    let link = p.engine.diagnostics().link.unwrap();
    assert_eq!(
        (link.preferred, link.reason),
        (Transport::Http, TransportReason::WebSocketRefused)
    );
    // Another page of the origin (a new tab, its own client) starts on HTTP.
    let again = Page::open_with(&b, synced_config("s-fallback", 2), p.now + 1, |_| {});
    assert_eq!(again.opened, [Transport::Http]);
    assert_eq!(
        again.engine.diagnostics().link.unwrap().reason,
        TransportReason::Remembered
    );
    // Once the time is up, WebSocket first again.
    let later = Page::open_with(&b, synced_config("s-fallback", 3), until, |_| {});
    assert_eq!(
        later.opened,
        [Transport::WebSocket],
        "the refusal is forgotten"
    );
}

#[test]
fn a_websocket_failing_with_http_failing_too_is_not_remembered() {
    let b = browser();
    let mut p = synced_page(&b, "s-down", 1);
    // The server is down: WebSocket and HTTP both fail, several rounds.
    for _ in 0..4 {
        let opened = p.opened.len();
        p.engine.handle_closed(p.now);
        p.run();
        while p.opened.len() == opened {
            let at = p.engine.poll_timeout().expect("a retry is due");
            p.advance(at);
        }
    }
    assert_eq!(b.borrow().local.get("s-down:fallback"), None);
}

#[test]
fn a_server_state_the_store_cannot_hold_is_reported_and_the_page_keeps_its_own() {
    let b = browser();
    let mut c = synced_config("s-large", 1);
    c.store.envelope.max_raw_bytes = 200;
    let mut p = Page::open(&b, c, 0);
    p.created(9_000_000);
    p.connected(Transport::WebSocket);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    p.frame(patch(2, json!({"big": "x".repeat(300)}), None));
    assert_eq!(p.engine.state(), &json!({"cart": {}}));
    assert!(p.events.iter().any(|e| matches!(e, SessionEvent::ErrorOccurred { code, message, terminal: false }
        if code == "STATE_TOO_LARGE" && message.starts_with("the server's state could not be taken: "))));
}

/// A new tab (no record) knows no server version before its first
/// `welcome`: an op made on version 0 would be refused as a conflict, so
/// its change is held, kept in the record and the register, and sent on
/// the welcome's version.
#[test]
fn a_change_made_before_a_new_tabs_first_welcome_is_sent_on_its_version() {
    let b = browser();
    b.borrow_mut().local.insert(
        "s-held:server".into(),
        json!({"id": SESSION, "token": TOKEN}).to_string(),
    );
    let mut p = Page::open(&b, synced_config("s-held", 1), 0);
    p.update(json!({"cart": {"X": 1}}));
    p.connected(Transport::WebSocket);
    assert!(p.ops().is_empty());
    let entry: Value =
        serde_json::from_str(&b.borrow().local["s-held:pending:00000000000000000000000000000001"])
            .unwrap();
    assert_eq!(
        entry["ops"][0]["paths"],
        json!([["cart", "X"]]),
        "listed for the other tabs"
    );
    // The tab crashes before the welcome; its reload finds the change in the record.
    let record = b.borrow().records["s-held:link:00000000000000000000000000000001"].clone();
    assert!(record.contains("\"held\":[{"), "{record}");
    let mut again = Page::open(&b, synced_config("s-held", 1), 10);
    assert_eq!(again.engine.diagnostics().unanswered, 1);
    again.connected(Transport::WebSocket);
    again.frame(welcome(
        7,
        0,
        CatchUp::Snapshot {
            state: json!({"cart": {}, "email": "o@x"}),
        },
    ));
    let ops = again.ops();
    assert_eq!(ops.len(), 1);
    assert_eq!(
        (&ops[0]["base"], &ops[0]["id"]["seq"], &ops[0]["patch"]),
        (&json!(7), &json!(1), &json!({"cart": {"X": 1}}))
    );
    assert_eq!(
        again.engine.state(),
        &json!({"cart": {"X": 1}, "email": "o@x"}),
        "shown throughout"
    );
    let id = again.engine.flush(again.now).unwrap();
    again.run();
    assert_eq!(
        again.result(id),
        None,
        "a held change is not answered yet either"
    );
    again.frame(ack(&client(1), 1, 8));
    assert_eq!(again.result(id), Some(Ok(Outcome::Done)));
}

#[test]
fn a_synced_state_must_be_an_object_and_is_refused_unchanged() {
    let b = browser();
    let mut p = synced_page(&b, "s-object", 1);
    let e = p.engine.set(json!([1, 2]), None, p.now).unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert_eq!(
        (p.engine.state(), p.engine.version()),
        (&json!({"cart": {}}), 0)
    );
    assert!(p.ops().is_empty());
}

/// Rule 3 after a reload: what the op was made on was written beside the
/// record, so the reloaded tab still submits it again.
#[test]
fn an_op_made_on_another_tabs_change_is_submitted_again_after_a_reload() {
    let b = browser();
    let mut p = synced_page(&b, "s-rule3-reload", 1);
    p.engine.handle_online(false, p.now);
    // The page holds another tab's X = 1 (taken from the stored copy); the shopper makes it 2.
    p.engine
        .set(json!({"cart": {"X": 1}}), None, p.now)
        .unwrap();
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    let mut again = Page::open(&b, synced_config("s-rule3-reload", 1), p.now + 10);
    again.connected(Transport::WebSocket);
    again.frame(welcome(1, 0, CatchUp::UpToDate));
    again.update(json!({"cart": {"X": 2}}));
    let before = again.ops().len();
    // Reload again: ops 1 (X=1) and 2 (X=2) are in the record with what they were made on.
    let mut third = Page::open(&b, synced_config("s-rule3-reload", 1), again.now + 10);
    third.connected(Transport::WebSocket);
    third.frame(welcome(1, 0, CatchUp::UpToDate));
    let me = client(1);
    third.frame(ack(&me, 1, 2));
    // Op 2 was made on X = 1, which is what the server holds: a conflict with that is settled by submitting again.
    third.frame(conflict(&me, 2, 3, json!({"cart": {"X": 1}, "o": 1})));
    assert!(
        !third.kinds().contains(&"Conflict".to_string()),
        "{:?}",
        third.kinds()
    );
    let last = third.ops().last().cloned().unwrap();
    assert_eq!(
        (&last["patch"], &last["base"]),
        (&json!({"cart": {"X": 2}}), &json!(3))
    );
    assert!(before > 0);
}

#[test]
fn the_record_holds_four_states_worth_plus_64_kib_up_to_the_envelopes_limit() {
    assert_eq!(record_limit(20_000), 4 * 20_000 + 65_536);
    assert_eq!(record_limit(5 << 20), (20 << 20) + 65_536);
    assert_eq!(
        record_limit(usize::MAX),
        crate::core::envelope::MAX_RAW_BYTES_LIMIT
    );
}
