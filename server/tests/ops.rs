//! Ops through the real server: a repeated op id is applied once (also after
//! a restart), a gap in sequence numbers is refused, a stale base version is
//! rebased when its keys are disjoint and rejected with the current state
//! when not, limits hold, and other clients get the change pushed.

mod common;

use common::*;
use serde_json::json;
use sessile::core::protocol::{CatchUp, Message};

fn ack(m: &Message) -> (u64, bool, bool) {
    match m {
        Message::Ack(a) => (a.version, a.duplicate, a.rebased),
        other => panic!("expected ack, got {other:?}"),
    }
}

#[tokio::test]
async fn repeated_op_is_applied_once_also_after_a_restart() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let c = client_id(1);
    let first = op(&c, 1, 1, json!({"n": 1}), None);
    let a = http_op(srv.addr, &s, &first).await;
    assert_eq!(
        a.json(),
        json!({"type": "ack", "id": {"client": c, "seq": 1}, "version": 2})
    );
    let again = http_op(srv.addr, &s, &first).await.json();
    assert_eq!(
        (again["duplicate"].as_bool(), again["version"].as_u64()),
        (Some(true), Some(2))
    );

    // Over WebSocket too, with a different patch under the same id: still not applied.
    let (mut ws, welcome) = Ws::hello(srv.addr, &s, &c, 2).await;
    let Message::Welcome(w) = welcome else {
        panic!("{welcome:?}")
    };
    assert_eq!(
        (w.applied_seq, w.version, w.catch_up),
        (1, 2, CatchUp::UpToDate)
    );
    ws.send(&op(&c, 1, 2, json!({"n": 99}), None)).await;
    assert_eq!(ack(&ws.recv().await.unwrap()), (2, true, false));
    ws.send(&op(&c, 2, 2, json!({"m": 1}), None)).await;
    assert_eq!(ack(&ws.recv().await.unwrap()), (3, false, false));

    let after = srv.restart().await;
    for seq in [1, 2] {
        let a = http_op(after, &s, &op(&c, seq, 1, json!({"n": 50}), None))
            .await
            .json();
        assert_eq!(a["duplicate"], true, "seq {seq} after restart: {a}");
    }
    let view = view(after, &s).await.json();
    assert_eq!(
        (view["state"].clone(), view["version"].as_u64()),
        (json!({"n": 1, "m": 1}), Some(3))
    );
    let ops = sql_count(
        &srv.db,
        &format!(
            "SELECT count(*) FROM audit WHERE session_id = '{}' AND action = 'op'",
            s.id
        ),
    );
    assert_eq!(ops, 2);
}

#[tokio::test]
async fn a_gap_in_sequence_numbers_is_refused() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(2);
    let a = http_op(srv.addr, &s, &op(&c, 3, 1, json!({"x": 1}), None)).await;
    assert_eq!((a.status, a.code()), (422, "OP_OUT_OF_ORDER".into()));
    assert!(a.json()["message"].as_str().unwrap().contains("expected 1"));
    let a = http_op(srv.addr, &s, &op(&c, 1, 1, json!({"x": 1}), None)).await;
    assert_eq!(a.status, 200);
}

#[tokio::test]
async fn stale_base_is_rebased_when_disjoint_and_rejected_with_state_when_not() {
    let srv = start(|_| {}).await;
    let s = create(
        srv.addr,
        json!({"state": {"cart": {"a": 1}, "email": "x@y"}}),
    )
    .await;
    let (c1, c2) = (client_id(1), client_id(2));
    // Client 1 changes the cart at version 1 -> 2.
    let a = http_op(
        srv.addr,
        &s,
        &op(&c1, 1, 1, json!({"cart": {"a": 2}}), None),
    )
    .await;
    assert_eq!(a.status, 200);
    // Client 2, still at version 1, changes the email: disjoint, rebased.
    let a = http_op(srv.addr, &s, &op(&c2, 1, 1, json!({"email": "z@y"}), None))
        .await
        .json();
    assert_eq!(
        (a["version"].as_u64(), a["rebased"].as_bool()),
        (Some(3), Some(true))
    );
    // Client 2 at version 1 again, now touching the cart: conflict, current state attached.
    let a = http_op(
        srv.addr,
        &s,
        &op(&c2, 2, 1, json!({"cart": {"a": 5}}), None),
    )
    .await;
    assert_eq!((a.status, a.code()), (409, "VERSION_CONFLICT".into()));
    let current = &a.json()["current"];
    assert_eq!(current["version"], 3);
    assert_eq!(current["state"], json!({"cart": {"a": 2}, "email": "z@y"}));
    assert_eq!(current["status"], "cart");
    // A status change on a stale base conflicts with a newer status change.
    assert_eq!(
        http_op(srv.addr, &s, &op(&c1, 2, 3, json!({}), Some("checkout")))
            .await
            .status,
        200
    );
    let a = http_op(
        srv.addr,
        &s,
        &op(&c2, 3, 3, json!({"note": 1}), Some("checkout")),
    )
    .await;
    assert_eq!(a.code(), "VERSION_CONFLICT");
    // A base ahead of the server is refused with its own code.
    let a = http_op(srv.addr, &s, &op(&c2, 4, 99, json!({}), None)).await;
    assert_eq!((a.status, a.code()), (409, "VERSION_AHEAD".into()));
}

#[tokio::test]
async fn limits_on_state_size_and_sessions_per_key() {
    let srv = start(|c| {
        c.max_state_bytes = 1000;
        c.max_sessions_per_key = 2;
    })
    .await;
    let big = "x".repeat(2000);
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        json!({"state": {"b": big}}).to_string().as_bytes(),
    )
    .await;
    assert_eq!((a.status, a.code()), (413, "STATE_TOO_LARGE".into()));
    let s = create(srv.addr, json!({"key": "table-7"})).await;
    create(srv.addr, json!({"key": "table-7"})).await;
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"key":"table-7"}"#,
    )
    .await;
    assert_eq!((a.status, a.code()), (429, "SESSION_LIMIT_REACHED".into()));
    create(srv.addr, json!({"key": "table-8"})).await;
    // Ending one frees a place.
    end(srv.addr, &s).await;
    create(srv.addr, json!({"key": "table-7"})).await;
    let s = create(srv.addr, json!({})).await;
    let a = http_op(
        srv.addr,
        &s,
        &op(&client_id(1), 1, 1, json!({"b": big}), None),
    )
    .await;
    assert_eq!(a.code(), "STATE_TOO_LARGE");
    let a = request(srv.addr, "POST", "/v1/sessions", &[], br#"{"state":[1]}"#).await;
    assert_eq!(a.code(), "INVALID_STATE");
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"flow":"pizza"}"#,
    )
    .await;
    assert_eq!(a.code(), "UNKNOWN_FLOW");
}

#[tokio::test]
async fn changes_are_pushed_to_other_clients_and_caught_up_on_reconnect() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"step": "cart"}})).await;
    let (c1, c2) = (client_id(1), client_id(2));
    let (mut a, _) = Ws::hello(srv.addr, &s, &c1, 1).await;
    let (mut b, _) = Ws::hello(srv.addr, &s, &c2, 1).await;
    a.send(&op(&c1, 1, 1, json!({"email": "a@b"}), Some("checkout")))
        .await;
    assert_eq!(ack(&a.recv().await.unwrap()).0, 2);
    match b.recv().await.unwrap() {
        Message::Patch(p) => {
            assert_eq!(
                (p.version, p.patch, p.status.as_deref()),
                (2, json!({"email": "a@b"}), Some("checkout"))
            );
            assert_eq!(p.op.unwrap().client, c1);
        }
        other => panic!("expected a pushed patch, got {other:?}"),
    }
    // A third connection that holds version 1 gets the missing patch; one holding nothing gets a snapshot.
    let (_, w) = Ws::hello(srv.addr, &s, &client_id(3), 1).await;
    let Message::Welcome(w) = w else { panic!() };
    assert!(
        matches!(w.catch_up, CatchUp::Patches { ref patches } if patches.len() == 1 && patches[0].version == 2)
    );
    let (mut d, w) = Ws::hello(srv.addr, &s, &client_id(4), 0).await;
    let Message::Welcome(w) = w else { panic!() };
    assert_eq!(
        w.catch_up,
        CatchUp::Snapshot {
            state: json!({"step": "cart", "email": "a@b"})
        }
    );
    // Ping answers pong with the timestamp echoed; extend over WebSocket.
    d.send(&Message::Ping(sessile::core::protocol::Ping { ts: 77 }))
        .await;
    assert!(matches!(d.recv().await.unwrap(), Message::Pong(p) if p.ts == 77 && p.server_ts > 0));
    d.send(&Message::Extend(sessile::core::protocol::Extend {
        seconds: 120,
    }))
    .await;
    assert!(matches!(d.recv().await.unwrap(), Message::Extended(e) if e.expires_at > w.expires_at));
}

#[tokio::test]
async fn http_long_poll_answers_changes_at_once_or_when_they_happen() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"a": 1}})).await;
    let c = client_id(5);
    let poll = |since: u64, wait: u64| {
        let s = s.clone();
        let c = c.clone();
        async move {
            let path = format!(
                "/v1/sessions/{}/changes?since={since}&waitMs={wait}&client={c}",
                s.id
            );
            call(srv.addr, "GET", &path, &s, &serde_json::Value::Null).await
        }
    };
    // Up to date and no wait: at once.
    let w = poll(1, 0).await.json();
    assert_eq!(
        (w["type"].as_str(), w["catchUp"]["kind"].as_str()),
        (Some("welcome"), Some("upToDate"))
    );
    // A change made while the poll waits ends the wait with that patch.
    let waiting = tokio::spawn(poll(1, 10_000));
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let t0 = std::time::Instant::now();
    assert_eq!(
        http_op(
            srv.addr,
            &s,
            &op(&client_id(6), 1, 1, json!({"b": 2}), None)
        )
        .await
        .status,
        200
    );
    let w = waiting.await.unwrap().json();
    assert!(t0.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(w["catchUp"]["patches"][0]["patch"], json!({"b": 2}));
    // Behind: at once, with what was missed; nothing new: after the wait.
    assert_eq!(poll(1, 10_000).await.json()["version"], 2);
    let t0 = std::time::Instant::now();
    assert_eq!(poll(2, 300).await.json()["catchUp"]["kind"], "upToDate");
    assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
    let bad = call(
        srv.addr,
        "GET",
        &format!("/v1/sessions/{}/changes", s.id),
        &s,
        &serde_json::Value::Null,
    )
    .await;
    assert_eq!((bad.status, bad.code()), (400, "PROTOCOL_ERROR".into()));
}

#[tokio::test]
async fn a_clients_pipelined_ops_on_one_base_never_conflict_with_each_other() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"cart": {"a": 1}}})).await;
    let (c1, c2) = (client_id(1), client_id(2));
    // Client 1 sends three changes of the same key before any ack: all on base 1.
    for (seq, qty) in [(1, 2), (2, 3), (3, 4)] {
        let a = http_op(
            srv.addr,
            &s,
            &op(&c1, seq, 1, json!({"cart": {"a": qty}}), None),
        )
        .await;
        assert_eq!(a.status, 200, "op {seq}: {:?}", a.json());
        assert_eq!(a.json()["version"], 1 + seq);
    }
    // Another client on that old base touching the same key still conflicts.
    let a = http_op(
        srv.addr,
        &s,
        &op(&c2, 1, 1, json!({"cart": {"a": 9}}), None),
    )
    .await;
    assert_eq!(a.code(), "VERSION_CONFLICT");
    assert_eq!(a.json()["current"]["state"], json!({"cart": {"a": 4}}));
}
