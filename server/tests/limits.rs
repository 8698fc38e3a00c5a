//! Per-address limits and connection pacing through the real server: the
//! session creation rate (429 `RATE_LIMITED` with `Retry-After`), the caps
//! on WebSocket connections and on connections that have not said `hello`
//! (per address and in all), the hello timeout, and the two paces of one
//! connection (messages read, bytes sent), which slow a client down and
//! lose nothing. Each with its metric.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sessile::core::protocol::{decode, encode, Message};
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

async fn stats(addr: SocketAddr) -> Value {
    admin(addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json()
}

async fn metrics(addr: SocketAddr) -> String {
    let a = admin(addr, "GET", "/metrics", &Value::Null).await;
    String::from_utf8(a.body).unwrap()
}

/// Tries to open `/v1/ws`: the socket, or the HTTP status and body code of the refusal.
async fn try_connect(addr: SocketAddr) -> Result<Ws, (u16, String)> {
    match tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")).await {
        Ok((inner, _)) => Ok(Ws { inner }),
        Err(tungstenite::Error::Http(resp)) => {
            let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            let code = body["code"].as_str().unwrap_or_default().to_string();
            Err((resp.status().as_u16(), code))
        }
        Err(e) => panic!("{e}"),
    }
}

/// Connects until admitted (a closed connection is released asynchronously).
async fn connect_eventually(addr: SocketAddr) -> Ws {
    for _ in 0..50 {
        if let Ok(ws) = try_connect(addr).await {
            return ws;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never admitted again");
}

#[tokio::test]
async fn session_creation_is_rate_limited_per_address() {
    let srv = start(|c| c.creates_per_minute_per_ip = 3).await;
    for _ in 0..3 {
        create(srv.addr, json!({})).await;
    }
    let a = request(srv.addr, "POST", "/v1/sessions", &[], b"{}").await;
    assert_eq!((a.status, a.code()), (429, "RATE_LIMITED".into()));
    assert_eq!(a.json()["retryable"], true);
    let retry: u64 = a
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    // Three a minute: the next one in at most 20 s.
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(stats(srv.addr).await["createsRateLimited"], 1);
    assert!(metrics(srv.addr)
        .await
        .contains("sessile_creates_rate_limited_total 1\n"));
    // Not a limit on everything: the sessions made still work.
}

#[tokio::test]
async fn websocket_connections_per_address_are_capped() {
    let srv = start(|c| c.ws_per_ip = 2).await;
    let s = create(srv.addr, json!({})).await;
    let (a, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    let (_b, _) = Ws::hello(srv.addr, &s, &client_id(2), 1).await;
    let refused = try_connect(srv.addr).await.err();
    assert_eq!(refused, Some((429, "RATE_LIMITED".into())));
    assert_eq!(stats(srv.addr).await["wsRefused"], 1);
    drop(a);
    let mut c = connect_eventually(srv.addr).await;
    c.send(&hello_msg(&s, &client_id(3), 1)).await;
    assert!(matches!(c.recv().await, Some(Message::Welcome(_))));
    assert!(metrics(srv.addr)
        .await
        .contains("sessile_websocket_refused_total 1\n"));
}

#[tokio::test]
async fn connections_without_hello_are_capped_per_address_and_in_all() {
    let srv = start(|c| {
        c.ws_unauthenticated_per_ip = 2;
        c.hello_timeout_ms = 60_000;
    })
    .await;
    let s = create(srv.addr, json!({})).await;
    let mut first = try_connect(srv.addr).await.unwrap();
    let _second = try_connect(srv.addr).await.unwrap();
    assert_eq!(
        try_connect(srv.addr).await.err(),
        Some((429, "RATE_LIMITED".into()))
    );
    assert_eq!(stats(srv.addr).await["wsUnauthenticated"], 2);
    assert!(metrics(srv.addr)
        .await
        .contains("sessile_websocket_unauthenticated 2\n"));
    // Once welcomed, a connection no longer counts as unauthenticated.
    first.send(&hello_msg(&s, &client_id(1), 1)).await;
    assert!(matches!(first.recv().await, Some(Message::Welcome(_))));
    let _third = try_connect(srv.addr).await.unwrap();

    let all = start(|c| {
        c.ws_unauthenticated = 1;
        c.hello_timeout_ms = 60_000;
    })
    .await;
    let _only = try_connect(all.addr).await.unwrap();
    assert_eq!(
        try_connect(all.addr).await.err(),
        Some((429, "RATE_LIMITED".into()))
    );
}

#[tokio::test]
async fn silent_connections_are_not_all_held_by_default() {
    // The probe: many connections that never say hello. By default 32 per
    // address are admitted, and each is closed after 5 s.
    let srv = start(|_| {}).await;
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..40 {
        match try_connect(srv.addr).await {
            Ok(ws) => held.push(ws),
            Err((429, code)) if code == "RATE_LIMITED" => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((held.len(), refused), (32, 8));
}

#[tokio::test]
async fn a_connection_without_hello_is_closed_after_the_hello_timeout() {
    let srv = start(|c| c.hello_timeout_ms = 300).await;
    let mut ws = try_connect(srv.addr).await.unwrap();
    let t0 = Instant::now();
    let bye = ws.recv().await;
    assert!(
        matches!(&bye, Some(Message::Bye(b)) if b.reason.as_deref() == Some("hello timeout")),
        "{bye:?}"
    );
    assert_eq!(ws.close_code().await, Some(1008));
    assert!(t0.elapsed() < Duration::from_secs(4));
    assert_eq!(stats(srv.addr).await["wsHelloTimeouts"], 1);
}

#[tokio::test]
async fn a_fast_sender_is_slowed_down_and_loses_nothing() {
    let srv = start(|c| {
        c.ws_messages_per_sec = 20;
        c.ws_messages_burst = 5;
    })
    .await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c, 1).await;
    let t0 = Instant::now();
    const N: u64 = 30;
    for seq in 1..=N {
        let o = encode(&op(
            &c,
            seq,
            1 + seq - 1,
            json!({ format!("k{seq}"): seq }),
            None,
        ));
        ws.inner.feed(WsMessage::Text(o.into())).await.unwrap();
    }
    ws.inner.flush().await.unwrap();
    for seq in 1..=N {
        match ws.recv().await {
            Some(Message::Ack(a)) => assert_eq!((a.id.seq, a.version), (seq, seq + 1)),
            other => panic!("{other:?}"),
        }
    }
    // 5 at once, then 20 a second: 25 more take at least 1.25 s.
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(1000), "{took:?}");
    assert!(stats(srv.addr).await["wsRatePaused"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn a_connection_past_its_send_budget_is_read_no_further_until_within_it() {
    const FRAME: usize = 64 * 1024;
    let srv = start(|c| {
        c.max_frame_bytes = FRAME;
        c.ws_send_bytes_per_sec = 100_000;
    })
    .await;
    let big = "x".repeat(50_000);
    let s = create(srv.addr, json!({"state": {"big": big, "k": 0}})).await;
    let (a, b) = (client_id(1), client_id(2));
    let (mut ws, _) = Ws::hello(srv.addr, &s, &a, 1).await;
    // Each round: another client changes `k`, then this one sends a stale
    // op on `k`: a conflict at a new version, whose reject carries 50 KB.
    let t0 = Instant::now();
    const ROUNDS: u64 = 8;
    let (mut received, mut last_round) = (0, 0);
    for round in 1..=ROUNDS {
        last_round = received;
        let r = http_op(
            srv.addr,
            &s,
            &op(&b, round, round, json!({"k": round}), None),
        )
        .await;
        assert_eq!(r.status, 200);
        let stale = encode(&op(&a, round, 1, json!({"k": "a"}), None));
        ws.inner.send(WsMessage::Text(stale.into())).await.unwrap();
        loop {
            let Some(Ok(WsMessage::Text(t))) = ws.inner.next().await else {
                panic!("closed")
            };
            received += t.len();
            match decode(t.as_bytes(), usize::MAX).unwrap() {
                Message::Reject(r) => {
                    assert_eq!(r.current.map(|c| c.version), Some(round + 1));
                    break;
                }
                Message::Patch(_) => {}
                other => panic!("{other:?}"),
            }
        }
    }
    // 2 x 64 KiB at once, then 100 kB a second; the last round's answer
    // is the debt paid before reading the next op, which never comes.
    let took = t0.elapsed();
    let floor = (last_round - 2 * FRAME) as f64 / 100_000.0;
    println!("{received} bytes in {took:?} (at least {floor:.2} s by the budget)");
    assert!(
        floor > 1.5 && took.as_secs_f64() >= floor * 0.95,
        "{took:?}"
    );
    assert!(stats(srv.addr).await["wsSendPaused"].as_u64().unwrap() >= 1);
}
