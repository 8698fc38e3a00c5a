//! What reaches the other connected clients of a session besides patches:
//! an extension (`extended`), and its end or expiry (`ended`, then a close
//! with 4410), over WebSocket and the HTTP long-poll.

mod common;

use common::*;
use serde_json::json;
use sessile::core::protocol::{Extend, Message};

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
