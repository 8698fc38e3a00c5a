//! The facts docs/PROTOCOL.md states for a client written from it alone,
//! checked against the real server: which requests need the token and what
//! each answers without it, the long-poll's parameters, `ping` being
//! WebSocket-only, liveness (the server never pings, WebSocket pings count
//! as traffic, `bye` before the idle close), fields omitted rather than
//! false, which answers use up an op's sequence number, what a connection
//! takes besides ops (binary frames; an `error` for a second `hello` or a
//! `pong`) and how a refused `hello` ends, `current` on HTTP rejects, and
//! the creation rate counting a create before its body is read.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sessile::core::protocol::{encode, Message, Ping};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The next text frame as raw JSON (fields kept exactly as sent), or `None`
/// when the server closed; `Err(code)` is the close frame's code.
async fn raw(ws: &mut Ws, within: Duration) -> Result<Value, Option<u16>> {
    loop {
        match tokio::time::timeout(within, ws.inner.next()).await {
            Err(_) => panic!("no frame within {within:?}"),
            Ok(Some(Ok(WsMessage::Text(t)))) => return Ok(serde_json::from_str(&t).unwrap()),
            Ok(Some(Ok(WsMessage::Close(f)))) => return Err(f.map(|f| u16::from(f.code))),
            Ok(None | Some(Err(_))) => return Err(None),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

async fn next_raw(ws: &mut Ws) -> Value {
    raw(ws, Duration::from_secs(5)).await.expect("a frame")
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

#[tokio::test]
async fn the_token_each_request_needs_and_the_answer_without_it() {
    let srv = start(|_| {}).await;
    let a = srv.addr;
    // Creating needs none.
    let s = create(a, json!({})).await;
    let unknown = "0123456789abcdef0123456789abcdef";
    let none: &[(&str, &str)] = &[];
    let an_op = encode(&op(&client_id(1), 1, 1, json!({}), None));
    let paths = [
        ("GET", format!("/v1/sessions/{}", s.id), String::new()),
        ("POST", format!("/v1/sessions/{}/ops", s.id), an_op),
        (
            "GET",
            format!("/v1/sessions/{}/changes?since=1", s.id),
            String::new(),
        ),
        (
            "POST",
            format!("/v1/sessions/{}/extend", s.id),
            r#"{"seconds":60}"#.into(),
        ),
        ("DELETE", format!("/v1/sessions/{}", s.id), String::new()),
    ];
    for (method, path, body) in &paths {
        let json_body = serde_json::from_str(body).unwrap_or(Value::Null);
        // No token, a token of another scheme, or an unknown session without a token: 401.
        let r = request(a, method, path, none, body.as_bytes()).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "INVALID_TOKEN".into()),
            "{method} {path}"
        );
        let basic = [("Authorization", "Basic abc")];
        let r = request(a, method, path, &basic, body.as_bytes()).await;
        assert_eq!(r.status, 401, "{method} {path}");
        let other = path.replace(&s.id, unknown);
        let r = request(a, method, &other, none, body.as_bytes()).await;
        assert_eq!(r.status, 401, "{method} {other}");
        // A wrong token: 401 for the session, 404 for an unknown id.
        let r = with_token(a, method, path, "wrong", &json_body).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "INVALID_TOKEN".into()),
            "{method} {path}"
        );
        let r = with_token(a, method, &other, "wrong", &json_body).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "SESSION_NOT_FOUND".into()),
            "{method} {other}"
        );
    }
    // Validate answers 200 with a code, never 401.
    let validate = |id: &str| format!("/v1/sessions/{id}/validate");
    let r = request(a, "POST", &validate(&s.id), none, b"").await;
    assert_eq!(
        (r.status, r.json()),
        (200, json!({"valid": false, "code": "INVALID_TOKEN"}))
    );
    let r = request(a, "POST", &validate(unknown), none, b"").await;
    assert_eq!(
        r.json(),
        json!({"valid": false, "code": "SESSION_NOT_FOUND"})
    );
    let r = call(a, "POST", &validate(&s.id), &s, &Value::Null).await;
    assert_eq!(
        (r.status, keys(&r.json())),
        (200, vec!["expiresAt", "valid"])
    );
}

#[tokio::test]
async fn ping_is_websocket_only_and_the_long_poll_parameters() {
    let srv = start(|_| {}).await;
    let a = srv.addr;
    let s = create(a, json!({"state": {"n": 0}})).await;
    let c = client_id(1);
    let ping = encode(&Message::Ping(Ping { ts: 5 }));
    let auth = bearer(&s.token);
    let headers = [("Authorization", auth.as_str())];
    let r = request(
        a,
        "POST",
        &format!("/v1/sessions/{}/ops", s.id),
        &headers,
        ping.as_bytes(),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, "PROTOCOL_ERROR".into()));

    let changes = |q: &str| format!("/v1/sessions/{}/changes{q}", s.id);
    let get = |path: String| {
        let s = s.clone();
        async move { call(a, "GET", &path, &s, &Value::Null).await }
    };
    // `since` is required; unknown parameters are refused.
    for q in [
        "",
        "?waitMs=10",
        "?since=1&wait=10",
        "?since=-1",
        "?since=1&waitMs=x",
    ] {
        let r = get(changes(q)).await;
        assert_eq!((r.status, r.code()), (400, "PROTOCOL_ERROR".into()), "{q}");
    }
    // `waitMs` defaults to 0: up to date, answered at once.
    let t0 = Instant::now();
    let w = get(changes("?since=1")).await.json();
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(
        (w["type"].as_str(), w["appliedSeq"].as_u64()),
        (Some("welcome"), Some(0))
    );
    // The client's own op is in the long-poll's catch-up, with its id.
    let mine = http_op(a, &s, &op(&c, 1, 1, json!({"n": 1}), None)).await;
    assert_eq!(mine.status, 200);
    let w = get(changes(&format!("?since=1&client={c}"))).await.json();
    assert_eq!(w["appliedSeq"], 1);
    assert_eq!(
        w["catchUp"]["patches"],
        json!([{"version": 2, "patch": {"n": 1}, "op": {"client": c, "seq": 1}}])
    );
    // `client` absent or not an id: appliedSeq 0, no error.
    for q in ["?since=2", "?since=2&client=nope"] {
        let w = get(changes(q)).await.json();
        assert_eq!(w["appliedSeq"], 0, "{q}");
    }
    // The timestamps are Unix epoch milliseconds.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let v = view(a, &s).await.json();
    for field in ["createdAt", "updatedAt", "expiresAt"] {
        let t = v[field].as_u64().unwrap();
        assert!(t.abs_diff(now) < 31 * 60 * 1000, "{field} {t}");
    }
    assert!(w["serverTime"].as_u64().unwrap().abs_diff(now) < 60_000);
}

#[tokio::test]
async fn extend_takes_one_second_to_a_day_from_the_later_of_now_and_the_expiry() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"ttlSeconds": 60})).await;
    let path = format!("/v1/sessions/{}/extend", s.id);
    for body in [json!({"seconds": 0}), json!({"seconds": 86_401})] {
        let r = call(srv.addr, "POST", &path, &s, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "INVALID_OPTIONS".into()),
            "{body}"
        );
    }
    for body in [
        json!({}),
        json!({"seconds": -1}),
        json!({"seconds": 1.5}),
        json!({"seconds": 60, "x": 1}),
    ] {
        let r = call(srv.addr, "POST", &path, &s, &body).await;
        assert_eq!(
            (r.status, r.code()),
            (400, "PROTOCOL_ERROR".into()),
            "{body}"
        );
    }
    let before = view(srv.addr, &s).await.json()["expiresAt"]
        .as_u64()
        .unwrap();
    let r = call(srv.addr, "POST", &path, &s, &json!({"seconds": 60})).await;
    assert_eq!(r.json()["expiresAt"].as_u64().unwrap(), before + 60_000);
    // At most a day from now, however often it is asked.
    let now = view(srv.addr, &s).await.json()["updatedAt"]
        .as_u64()
        .unwrap();
    for _ in 0..2 {
        let r = call(srv.addr, "POST", &path, &s, &json!({"seconds": 86_400})).await;
        let at = r.json()["expiresAt"].as_u64().unwrap();
        assert!(
            at <= now + 86_400_000 + 60_000 && at >= now + 86_400_000 - 60_000,
            "{at}"
        );
    }
}

#[tokio::test]
async fn fields_are_omitted_rather_than_false_and_ends_carry_no_op() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"a": 1, "b": 2}})).await;
    let (c1, c2) = (client_id(1), client_id(2));
    let (mut watcher, _) = Ws::hello(srv.addr, &s, &c2, 1).await;
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c1, 1).await;
    ws.send(&op(&c1, 1, 1, json!({"a": 5}), None)).await;
    let ack = next_raw(&mut ws).await;
    assert_eq!(keys(&ack), ["id", "type", "version"]);
    let pushed = next_raw(&mut watcher).await;
    assert_eq!(keys(&pushed), ["op", "patch", "type", "version"]);
    ws.send(&op(&c1, 1, 1, json!({"a": 5}), None)).await;
    assert_eq!(
        keys(&next_raw(&mut ws).await),
        ["duplicate", "id", "type", "version"]
    );
    // Ending: a patch that nulls every key and names the status, with no `op`.
    assert_eq!(end(srv.addr, &s).await.status, 200);
    let ended = next_raw(&mut watcher).await;
    assert_eq!(
        ended,
        json!({"type": "patch", "version": 3, "patch": {"a": null, "b": null}, "status": "terminated"})
    );

    // Expiry (lazily, on the next use): an empty patch with the expired status.
    let s = create(srv.addr, json!({"state": {"a": 1}, "ttlSeconds": 60})).await;
    sql(
        &srv.db,
        &format!("UPDATE sessions SET expires_at = 1 WHERE id = '{}'", s.id),
    );
    let after = srv.restart().await;
    let w = call(
        after,
        "GET",
        &format!("/v1/sessions/{}/changes?since=1", s.id),
        &s,
        &Value::Null,
    )
    .await;
    assert_eq!((w.status, w.code()), (410, "SESSION_EXPIRED".into()));
    let patches = sql_count(
        &srv.db,
        &format!("SELECT count(*) FROM patches WHERE session_id = '{}' AND patch = '{{\"a\":null}}' AND status = 'expired' AND client IS NULL", s.id),
    );
    assert_eq!(patches, 1);
}

#[tokio::test]
async fn liveness_the_server_never_pings_and_says_bye_before_the_idle_close() {
    let srv = start(|c| c.heartbeat_ms = 300).await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);
    // WebSocket-level pings keep a connection that sends no frame open.
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c, 1).await;
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(2_500) {
        ws.inner
            .send(WsMessage::Ping(vec![1].into()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Our `ping` gets `pong` with our `ts` and the server's clock in `serverTs`.
    ws.send(&Message::Ping(Ping { ts: 42 })).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let pong = next_raw(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["ts"].as_u64()),
        (Some("pong"), Some(42))
    );
    assert!(pong["serverTs"].as_u64().unwrap().abs_diff(now) < 5_000);
    // Then silence: no `ping` from the server, `bye {reason: "idle"}`, close 1000
    // after three heartbeats (1 s at least).
    let silent = Instant::now();
    let bye = next_raw(&mut ws).await;
    assert_eq!(bye, json!({"type": "bye", "reason": "idle"}));
    assert!(
        silent.elapsed() >= Duration::from_millis(900),
        "{:?}",
        silent.elapsed()
    );
    assert_eq!(raw(&mut ws, Duration::from_secs(5)).await, Err(Some(1000)));
}

#[tokio::test]
async fn which_answers_use_up_an_ops_sequence_number() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let c = client_id(1);
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c, 1).await;
    let send = |seq: u64, base: u64, patch: Value, to: Option<&'static str>| {
        encode(&op(&c, seq, base, patch, to))
    };
    // seq 0 is not an op at all: an error frame, nothing used.
    ws.send_text(send(0, 1, json!({"n": 1}), None)).await;
    let e = next_raw(&mut ws).await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("PROTOCOL_ERROR"))
    );
    // A gap: rejected, number not used.
    ws.send_text(send(2, 1, json!({"n": 1}), None)).await;
    assert_eq!(next_raw(&mut ws).await["code"], "OP_OUT_OF_ORDER");
    // A base ahead of the server: rejected, and seq 1 is used up.
    ws.send_text(send(1, 9, json!({"n": 1}), None)).await;
    let r = next_raw(&mut ws).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("reject"), Some("VERSION_AHEAD"))
    );
    ws.send_text(send(1, 1, json!({"n": 1}), None)).await;
    assert_eq!(next_raw(&mut ws).await["duplicate"], true);
    // A forbidden transition and a patch that is not an object: used up too.
    ws.send_text(send(2, 1, json!({}), Some("success"))).await;
    assert_eq!(next_raw(&mut ws).await["code"], "INVALID_TRANSITION");
    ws.send_text(send(3, 1, json!([1]), None)).await;
    assert_eq!(next_raw(&mut ws).await["code"], "PROTOCOL_ERROR");
    ws.send_text(send(4, 1, json!({"n": 4}), None)).await;
    let ack = next_raw(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["version"].as_u64()),
        (Some("ack"), Some(2))
    );
    // Over HTTP, a reject other than VERSION_CONFLICT is 422.
    let r = http_op(srv.addr, &s, &op(&c, 5, 2, json!({}), Some("success"))).await;
    assert_eq!((r.status, r.code()), (422, "INVALID_TRANSITION".into()));

    // An ended session: a connected client gets the clearing patch, then
    // `ended` and `bye`, and the connection closes (4410); over HTTP an op
    // is a 410 error that does not use its number.
    assert_eq!(end(srv.addr, &s).await.status, 200);
    assert_eq!(next_raw(&mut ws).await["type"], "patch");
    let ended = next_raw(&mut ws).await;
    assert_eq!(
        (ended["type"].as_str(), ended["code"].as_str()),
        (Some("ended"), Some("SESSION_CLOSED"))
    );
    assert_eq!(next_raw(&mut ws).await["type"], "bye");
    let r = http_op(srv.addr, &s, &op(&c, 6, 3, json!({}), None)).await;
    assert_eq!(
        (r.status, r.json()["type"].as_str(), r.code()),
        (410, Some("error"), "SESSION_CLOSED".into())
    );
    let w = with_token(
        srv.addr,
        "GET",
        &format!("/v1/sessions/{}", s.id),
        &s.token,
        &Value::Null,
    )
    .await;
    assert_eq!(w.status, 410);
    let clients = sql_count(
        &srv.db,
        &format!(
            "SELECT json_extract(clients, '$.clients.{c}[0]') FROM sessions WHERE id = '{}'",
            s.id
        ),
    );
    assert_eq!(
        clients, 5,
        "seq 5 (the 422) was used, seq 6 (the 410) was not"
    );
}

#[tokio::test]
async fn pipelined_ops_on_one_base_are_rebased_while_the_log_reaches_it() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let c = client_id(1);
    // Every op on base 1, the last version this client saw: the first is
    // applied as it is, the next 64 are rebased over the client's own...
    for seq in 1..=65 {
        let a = http_op(srv.addr, &s, &op(&c, seq, 1, json!({"n": seq}), None))
            .await
            .json();
        assert_eq!(a["type"], "ack", "op {seq}: {a}");
        assert_eq!(a.get("rebased").is_some(), seq > 1, "op {seq}: {a}");
    }
    // ... and then the bounded log (64 changes) no longer reaches base 1.
    let a = http_op(srv.addr, &s, &op(&c, 66, 1, json!({"n": 66}), None)).await;
    assert_eq!((a.status, a.code()), (409, "VERSION_CONFLICT".into()));
    assert_eq!(a.json()["current"]["version"], 66);
}

/// A close frame's code and reason, `None` when the server just went away.
async fn close_frame(ws: &mut Ws) -> Option<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.inner.next())
            .await
            .expect("no close within 5 s")
        {
            Some(Ok(WsMessage::Close(f))) => {
                return f.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn what_a_connection_takes_besides_ops_and_how_a_refused_hello_ends() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let (mut ws, _) = Ws::hello(srv.addr, &s, &client_id(1), 1).await;
    // A binary frame is read as a text frame is.
    let ping = encode(&Message::Ping(Ping { ts: 7 }));
    ws.inner
        .send(WsMessage::Binary(ping.into_bytes().into()))
        .await
        .unwrap();
    let pong = next_raw(&mut ws).await;
    assert_eq!(
        (pong["type"].as_str(), pong["ts"].as_u64()),
        (Some("pong"), Some(7))
    );
    // A second hello, or a pong from the client: an error, and the connection stays.
    for frame in [
        encode(&hello_msg(&s, &client_id(1), 1)),
        r#"{"type":"pong","ts":1,"serverTs":2}"#.to_string(),
    ] {
        ws.send_text(frame).await;
        let e = next_raw(&mut ws).await;
        assert_eq!(
            (
                e["type"].as_str(),
                e["code"].as_str(),
                e["retryable"].as_bool()
            ),
            (Some("error"), Some("PROTOCOL_ERROR"), Some(false)),
            "{e}"
        );
    }
    ws.send(&Message::Ping(Ping { ts: 8 })).await;
    assert_eq!(next_raw(&mut ws).await["ts"], 8);

    // A refused hello: `error`, `bye` "hello refused", close 1008 with that reason.
    let mut bad = s.clone();
    bad.token = "0".repeat(64);
    let mut ws = Ws::connect(srv.addr).await;
    ws.send(&hello_msg(&bad, &client_id(2), 0)).await;
    assert_eq!(next_raw(&mut ws).await["code"], "INVALID_TOKEN");
    let bye = next_raw(&mut ws).await;
    assert_eq!(
        (bye["type"].as_str(), bye["reason"].as_str()),
        (Some("bye"), Some("hello refused"))
    );
    assert_eq!(
        close_frame(&mut ws).await,
        Some((1008, "hello refused".into()))
    );
}

#[tokio::test]
async fn http_rejects_carry_current_only_for_version_conflict_and_every_time() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": null})).await;
    let w = view(srv.addr, &s).await.json();
    assert_eq!(w["state"], json!({}), "`state: null` counts as absent");
    let c = client_id(1);
    let a = http_op(srv.addr, &s, &op(&c, 1, 1, json!({"n": 1}), None)).await;
    assert_eq!(a.json()["version"], 2);
    // Two conflicts at the same version over HTTP: both carry `current`.
    for seq in [2, 3] {
        let r = http_op(
            srv.addr,
            &s,
            &op(&client_id(2 + seq as u8), 1, 1, json!({"n": seq}), None),
        )
        .await;
        assert_eq!((r.status, r.code()), (409, "VERSION_CONFLICT".into()));
        assert_eq!(r.json()["current"]["version"], 2, "seq {seq}");
    }
    // VERSION_AHEAD: 409 too, without `current`.
    let r = http_op(srv.addr, &s, &op(&c, 2, 9, json!({"n": 9}), None)).await;
    assert_eq!((r.status, r.code()), (409, "VERSION_AHEAD".into()));
    assert!(r.json().get("current").is_none(), "{}", r.json());
}

#[tokio::test]
async fn the_creation_rate_counts_a_create_before_its_body_is_read() {
    let srv = start(|c| c.creates_per_minute_per_ip = 2).await;
    let none: &[(&str, &str)] = &[];
    let malformed = request(srv.addr, "POST", "/v1/sessions", none, b"{nope").await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "PROTOCOL_ERROR".into())
    );
    let ok = request(srv.addr, "POST", "/v1/sessions", none, b"{}").await;
    assert_eq!(ok.status, 201);
    let limited = request(srv.addr, "POST", "/v1/sessions", none, b"{}").await;
    assert_eq!(
        (limited.status, limited.code()),
        (429, "RATE_LIMITED".into())
    );
    assert!(limited.json()["retryable"].as_bool().unwrap());
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!(retry_after >= 1, "{retry_after}");
}
