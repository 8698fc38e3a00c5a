//! Versions a client claims that the server never produced: a `changes`
//! long-poll `since`, a `hello` `haveVersion` or an op `base` ahead of the
//! session (u64::MAX included) answer `VERSION_AHEAD` (HTTP 409, a `reject`
//! for an op), and the server goes on serving every session afterwards.

mod common;

use common::*;
use serde_json::{json, Value};
use sessile::core::protocol::Message;

/// A session at version 2: its patch log holds a patch, which is what an
/// overflowing `have + 1` was compared with.
async fn changed_session(addr: std::net::SocketAddr) -> Sess {
    let s = create(addr, json!({"state": {"n": 0}})).await;
    let a = http_op(addr, &s, &op(&client_id(7), 1, 1, json!({"n": 1}), None)).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    s
}

/// The server still creates, reads and changes sessions.
async fn still_serving(addr: std::net::SocketAddr) {
    let other = create(addr, json!({"state": {"n": 1}})).await;
    let a = view(addr, &other).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let a = http_op(
        addr,
        &other,
        &op(&client_id(9), 1, 1, json!({"n": 2}), None),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    assert_eq!(view(addr, &other).await.json()["state"], json!({"n": 2}));
}

#[tokio::test]
async fn changes_since_a_version_ahead_is_version_ahead() {
    let srv = start(|_| {}).await;
    let s = changed_session(srv.addr).await;
    for since in [u64::MAX, u64::MAX - 1, 3] {
        let path = format!("/v1/sessions/{}/changes?since={since}", s.id);
        let a = call(srv.addr, "GET", &path, &s, &Value::Null).await;
        assert_eq!(
            (a.status, a.code()),
            (409, "VERSION_AHEAD".into()),
            "since={since}: {}",
            String::from_utf8_lossy(&a.body)
        );
        let body = a.json();
        assert_eq!(body["type"], "error");
        assert_eq!(body["retryable"], false);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains(&since.to_string()),
            "{body}"
        );
    }
    // The version it holds is fine.
    let path = format!("/v1/sessions/{}/changes?since=1", s.id);
    assert_eq!(
        call(srv.addr, "GET", &path, &s, &Value::Null).await.status,
        200
    );
    still_serving(srv.addr).await;
}

#[tokio::test]
async fn hello_with_a_version_ahead_is_version_ahead() {
    let srv = start(|_| {}).await;
    let s = changed_session(srv.addr).await;
    for have in [u64::MAX, 3] {
        let (mut ws, answer) = Ws::hello(srv.addr, &s, &client_id(1), have).await;
        match answer {
            Message::Error(e) => {
                assert_eq!(e.code, "VERSION_AHEAD", "{e:?}");
                assert!(!e.retryable);
            }
            other => panic!("haveVersion {have}: expected an error, got {other:?}"),
        }
        assert_eq!(ws.close_code().await, Some(1008));
    }
    let (_ws, welcome) = Ws::hello(srv.addr, &s, &client_id(1), 2).await;
    assert!(matches!(welcome, Message::Welcome(_)), "{welcome:?}");
    still_serving(srv.addr).await;
}

#[tokio::test]
async fn an_op_based_on_a_version_ahead_is_rejected_with_version_ahead() {
    let srv = start(|_| {}).await;
    let s = changed_session(srv.addr).await;
    let c = client_id(1);
    let a = http_op(srv.addr, &s, &op(&c, 1, u64::MAX, json!({"n": 1}), None)).await;
    assert_eq!((a.status, a.code()), (409, "VERSION_AHEAD".into()));
    assert_eq!(a.json()["type"], "reject");

    // Over WebSocket the same; the op used its sequence number.
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c, 2).await;
    ws.send(&op(&c, 2, 3, json!({"n": 2}), None)).await;
    match ws.recv().await.unwrap() {
        Message::Reject(r) => assert_eq!(r.code, "VERSION_AHEAD"),
        other => panic!("expected a reject, got {other:?}"),
    }
    ws.send(&op(&c, 3, 2, json!({"n": 3}), None)).await;
    assert!(matches!(ws.recv().await.unwrap(), Message::Ack(_)));
    assert_eq!(view(srv.addr, &s).await.json()["state"], json!({"n": 3}));
    still_serving(srv.addr).await;
}
