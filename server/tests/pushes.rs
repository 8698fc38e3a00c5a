//! What reaches the other connected clients of a session besides patches:
//! an extension (`extended`), and its end or expiry (`ended`, then a close
//! with 4410), over WebSocket and the HTTP long-poll.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use sessile::core::protocol::{decode, Extend, Message};
use sessile_server::ids::Clock;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Every protocol message until the server closes, and its close code.
async fn until_close(ws: &mut Ws) -> (Vec<Message>, Option<u16>) {
    let mut got = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.inner.next())
            .await
            .expect("no close within 5 s");
        match next {
            Some(Ok(WsMessage::Text(t))) => got.push(decode(t.as_bytes(), usize::MAX).unwrap()),
            Some(Ok(WsMessage::Close(f))) => return (got, f.map(|f| u16::from(f.code))),
            None | Some(Err(_)) => return (got, None),
            Some(Ok(_)) => {}
        }
    }
}

/// Checks the end of a connection: the patch that cleared or expired the
/// session, `ended` (status, code, that patch's version), `bye` naming the
/// code, and the close code 4410.
fn assert_ended(got: (Vec<Message>, Option<u16>), status: &str, code: &str) {
    let (msgs, close) = got;
    let [Message::Patch(p), Message::Ended(e), Message::Bye(b)] = msgs.as_slice() else {
        panic!("expected patch, ended, bye: {msgs:?}");
    };
    assert_eq!(p.status.as_deref(), Some(status));
    assert_eq!(
        (e.status.as_str(), e.code.as_str(), e.version),
        (status, code, p.version)
    );
    assert!(!e.message.is_empty());
    assert_eq!(b.reason.as_deref(), Some(code));
    assert_eq!(close, Some(4410));
}

fn expires_at(m: Option<Message>) -> u64 {
    match m {
        Some(Message::Extended(e)) => e.expires_at,
        other => panic!("expected `extended`, got {other:?}"),
    }
}

#[tokio::test]
async fn an_extension_reaches_the_other_clients() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let (mut a, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    let (mut b, _) = Ws::hello(srv.addr, &s, &client_id(2), 1).await;
    a.send(&Message::Extend(Extend { seconds: 600 })).await;
    let at = expires_at(a.recv().await);
    assert_eq!(
        expires_at(b.recv().await),
        at,
        "the other client hears of it"
    );
    // The caller got its answer once, not a second time as a push.
    a.send(&Message::Ping(sessile::core::protocol::Ping { ts: 3 }))
        .await;
    assert!(matches!(a.recv().await, Some(Message::Pong(_))));

    // An extension over HTTP reaches both.
    let r = call(
        srv.addr,
        "POST",
        &format!("/v1/sessions/{}/extend", s.id),
        &s,
        &json!({"seconds": 900}),
    )
    .await;
    let later = r.json()["expiresAt"].as_u64().unwrap();
    assert!(later > at);
    assert_eq!(expires_at(a.recv().await), later);
    assert_eq!(expires_at(b.recv().await), later);
}

#[tokio::test]
async fn an_end_reaches_every_client_and_closes_them_with_4410() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"card": "4242"}})).await;
    let (mut a, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    let (mut b, _) = Ws::hello(srv.addr, &s, &client_id(2), 1).await;
    // A long-poll waiting for changes answers at once too.
    let addr = srv.addr;
    let s2 = s.clone();
    let poll = tokio::spawn(async move {
        let path = format!("/v1/sessions/{}/changes?since=1&waitMs=25000", s2.id);
        let answer = call(addr, "GET", &path, &s2, &Value::Null).await;
        (answer, Instant::now())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let r = end(srv.addr, &s).await;
    let ended_at = Instant::now();
    assert_eq!(r.json()["status"], "terminated");
    assert_ended(until_close(&mut a).await, "terminated", "SESSION_CLOSED");
    assert_ended(until_close(&mut b).await, "terminated", "SESSION_CLOSED");
    let (answer, at) = poll.await.unwrap();
    assert_eq!(
        (answer.status, answer.code()),
        (410, "SESSION_CLOSED".into())
    );
    assert!(at.duration_since(ended_at) < Duration::from_secs(5));
}

#[tokio::test]
async fn an_expiry_by_the_sweeper_reaches_the_connected_client() {
    let clock = Clock::default();
    let srv = start(|c| c.clock = clock.clone()).await;
    let s = create(srv.addr, json!({"ttlSeconds": 60})).await;
    let (mut ws, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    clock.advance(61_000);
    let report = admin(srv.addr, "POST", "/v1/admin/sweep", &json!({})).await;
    assert_eq!(report.json()["expired"], json!([s.id]));
    assert_ended(until_close(&mut ws).await, "expired", "SESSION_EXPIRED");
    // A client arriving now is refused with the same code.
    let (_, welcome) = Ws::hello(srv.addr, &s, &client_id(2), 1).await;
    assert!(
        matches!(&welcome, Message::Error(e) if e.code == "SESSION_EXPIRED"),
        "{welcome:?}"
    );
}

#[tokio::test]
async fn an_expiry_found_by_a_request_reaches_the_other_clients() {
    let clock = Clock::default();
    let srv = start(|c| c.clock = clock.clone()).await;
    let s = create(srv.addr, json!({"ttlSeconds": 60})).await;
    let (mut ws, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    clock.advance(61_000);
    let a = view(srv.addr, &s).await;
    assert_eq!((a.status, a.code()), (410, "SESSION_EXPIRED".into()));
    assert_ended(until_close(&mut ws).await, "expired", "SESSION_EXPIRED");
}

/// The sessions this server holds a push channel for (`pushChannels`).
async fn push_channels(addr: std::net::SocketAddr) -> u64 {
    let live = admin(addr, "GET", "/v1/admin/live", &Value::Null)
        .await
        .json();
    live["pushChannels"].as_u64().expect("pushChannels")
}

#[tokio::test]
async fn refused_hellos_leave_no_push_channel_and_the_last_listener_takes_its_own() {
    let srv = start(|_| {}).await;
    assert_eq!(push_channels(srv.addr).await, 0);
    // Hellos naming sessions that do not exist (ids drawn anew each time),
    // and one with a wrong token for a session that does.
    let s = create(srv.addr, json!({})).await;
    let mut refused = Vec::new();
    for i in 0..40u8 {
        let unknown = Sess {
            id: sessile_server::ids::session_id(),
            token: sessile_server::ids::token(),
        };
        refused.push(unknown);
        if i == 0 {
            refused.push(Sess {
                id: s.id.clone(),
                token: sessile_server::ids::token(),
            });
        }
    }
    for bad in &refused {
        let mut ws = Ws::connect(srv.addr).await;
        ws.send(&hello_msg(bad, &client_id(1), 0)).await;
        let Some(Message::Error(e)) = ws.recv().await else {
            panic!("a refused hello is answered with an error");
        };
        assert!(
            ["SESSION_NOT_FOUND", "INVALID_TOKEN"].contains(&e.code.as_str()),
            "{e:?}"
        );
        assert_eq!(ws.close_code().await, Some(1008));
    }
    assert_eq!(
        push_channels(srv.addr).await,
        0,
        "refused hellos kept channels"
    );
    // A welcomed connection holds one channel, which goes with it.
    let (mut ws, welcome) = Ws::hello(srv.addr, &s, &client_id(2), 0).await;
    assert!(matches!(welcome, Message::Welcome(_)), "{welcome:?}");
    assert_eq!(push_channels(srv.addr).await, 1);
    ws.inner.close(None).await.unwrap();
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(5);
    while push_channels(srv.addr).await != 0 {
        assert!(
            Instant::now() < deadline,
            "the channel outlived its listener"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
