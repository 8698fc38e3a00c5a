//! Bad input on purpose, over the real sockets: malformed, truncated,
//! oversize and wrong-version frames each get an error code, and the
//! connection stays usable or is closed cleanly; the same over HTTP.

mod common;

use common::*;
use serde_json::json;
use sessile::core::protocol::{encode, Message, Ping};

fn error_code(m: Option<Message>) -> String {
    match m {
        Some(Message::Error(e)) => e.code,
        other => panic!("expected an error frame, got {other:?}"),
    }
}

async fn still_usable(ws: &mut Ws) {
    ws.send(&Message::Ping(Ping { ts: 5 })).await;
    assert!(matches!(ws.recv().await, Some(Message::Pong(p)) if p.ts == 5));
}

#[tokio::test]
async fn bad_frames_get_codes_and_the_connection_survives() {
    let srv = start(|c| c.max_frame_bytes = 4096).await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);

    // Before hello: an op is refused, then hello still works.
    let mut ws = Ws::connect(srv.addr).await;
    ws.send(&op(&c, 1, 1, json!({}), None)).await;
    assert_eq!(error_code(ws.recv().await), "PROTOCOL_ERROR");
    ws.send_text("{not json".into()).await;
    assert_eq!(error_code(ws.recv().await), "PROTOCOL_ERROR");
    ws.send(&hello_msg(&s, &c, 1)).await;
    assert!(matches!(ws.recv().await, Some(Message::Welcome(_))));

    let good = encode(&op(&c, 1, 1, json!({"a": 1}), None));
    let cases = [
        (
            "malformed",
            "{\"type\":\"op\",,}".to_string(),
            "PROTOCOL_ERROR",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_string(),
            "PROTOCOL_ERROR",
        ),
        (
            "unknown type",
            r#"{"type":"teleport"}"#.to_string(),
            "PROTOCOL_ERROR",
        ),
        ("bad client id", good.replace(&c, "ABC"), "PROTOCOL_ERROR"),
        (
            "not a patch object",
            encode(&op(&c, 1, 1, json!([1]), None)),
            "PROTOCOL_ERROR",
        ),
        (
            "oversize",
            format!(
                "{{\"type\":\"ping\",\"ts\":1,\"pad\":\"{}\"}}",
                "x".repeat(5000)
            ),
            "FRAME_TOO_LARGE",
        ),
        (
            "server-only message",
            r#"{"type":"extended","expiresAt":1}"#.to_string(),
            "PROTOCOL_ERROR",
        ),
    ];
    for (what, frame, code) in cases {
        ws.send_text(frame).await;
        let answer = ws.recv().await;
        let got = match &answer {
            Some(Message::Reject(r)) => r.code.clone(),
            _ => error_code(answer),
        };
        assert_eq!(got, code, "{what}");
        still_usable(&mut ws).await;
    }
    // The non-object patch was refused as an op: it used sequence 1, so the next is 2.
    ws.send_text(encode(&op(&c, 2, 1, json!({"a": 1}), None)))
        .await;
    assert!(matches!(ws.recv().await, Some(Message::Ack(a)) if a.version == 2));

    // Far past the limit: the server closes with 1009 (message too big).
    ws.send_text("x".repeat(20_000)).await;
    assert_eq!(ws.close_code().await, Some(1009));
}

#[tokio::test]
async fn wrong_protocol_version_is_named_and_the_connection_closed() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let mut ws = Ws::connect(srv.addr).await;
    let hello =
        encode(&hello_msg(&s, &client_id(1), 0)).replace("\"protocol\":1", "\"protocol\":7");
    ws.send_text(hello).await;
    match ws.recv().await {
        Some(Message::Error(e)) => {
            assert_eq!(e.code, "UNSUPPORTED_PROTOCOL_VERSION");
            assert!(e.message.contains('7'), "{}", e.message);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(ws.recv().await, Some(Message::Bye(_))));
    assert_eq!(ws.close_code().await, Some(1008));

    // A wrong token is refused the same clean way.
    let mut bad = s.clone();
    bad.token = "0".repeat(64);
    let (mut ws, answer) = Ws::hello(srv.addr, &bad, &client_id(1), 0).await;
    assert_eq!(error_code(Some(answer)), "INVALID_TOKEN");
    assert_eq!(ws.close_code().await, Some(1008));
}

#[tokio::test]
async fn bad_http_bodies_get_codes() {
    let srv = start(|c| c.max_frame_bytes = 4096).await;
    let s = create(srv.addr, json!({})).await;
    let path = format!("/v1/sessions/{}/ops", s.id);
    let auth = bearer(&s.token);
    let h = [("Authorization", auth.as_str())];
    let a = request(srv.addr, "POST", &path, &h, b"{\"type\":\"op\"").await;
    assert_eq!((a.status, a.code()), (400, "PROTOCOL_ERROR".into()));
    let a = request(srv.addr, "POST", &path, &h, "x".repeat(5000).as_bytes()).await;
    assert_eq!((a.status, a.code()), (413, "FRAME_TOO_LARGE".into()));
    let a = request(
        srv.addr,
        "POST",
        &path,
        &h,
        br#"{"type":"hello","protocol":2}"#,
    )
    .await;
    assert_eq!(a.code(), "UNSUPPORTED_PROTOCOL_VERSION");
    let a = request(
        srv.addr,
        "POST",
        &path,
        &[],
        encode(&op(&client_id(1), 1, 1, json!({}), None)).as_bytes(),
    )
    .await;
    assert_eq!((a.status, a.code()), (401, "INVALID_TOKEN".into()));
    let a = request(srv.addr, "POST", "/v1/sessions", &[], b"[").await;
    assert_eq!(a.code(), "PROTOCOL_ERROR");
}

/// (what, first header byte, payload, masked, close code, a word of the reason)
type Violation = (&'static str, u8, &'static [u8], bool, u16, &'static str);

/// Each WebSocket protocol violation is closed with the code RFC 6455 gives
/// it (1007 for text that is not UTF-8, 1002 for the rest) and a reason that
/// names it, before `hello` and after; never 1009 "frame too large".
#[tokio::test]
async fn protocol_violations_are_closed_with_their_own_code_and_reason() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    const PING: &[u8] = br#"{"type":"ping","ts":1}"#;
    let cases: [Violation; 5] = [
        (
            "invalid UTF-8",
            0x81,
            b"{\"a\":\"\xff\xfe\"}",
            true,
            1007,
            "UTF-8",
        ),
        ("unmasked", 0x81, PING, false, 1002, "unmasked"),
        ("reserved opcode", 0x83, b"{}", true, 1002, "opcode"),
        ("RSV1", 0xc1, PING, true, 1002, "reserved bit"),
        ("fragmented ping", 0x09, b"p", true, 1002, "fragmented"),
    ];
    for after_hello in [false, true] {
        for (what, head, payload, masked, code, word) in cases {
            let mut ws = RawWs::connect(srv.addr).await;
            if after_hello {
                ws.send(&hello_msg(&s, &client_id(1), 1)).await;
                assert!(
                    matches!(ws.recv().await, Some(Message::Welcome(_))),
                    "{what}"
                );
            }
            ws.send_frame(head, payload, masked).await;
            let (texts, close) = ws.until_close().await;
            let (got, reason) = close.unwrap_or_else(|| panic!("{what}: no close frame"));
            assert_eq!(got, code, "{what} (after hello: {after_hello}): {reason}");
            assert!(reason.contains(word), "{what}: reason `{reason}`");
            // The protocol's own `bye` says the same before the close.
            let bye = texts.iter().find_map(|m| match m {
                Message::Bye(b) => b.reason.clone(),
                _ => None,
            });
            assert_eq!(bye.as_deref(), Some(reason.as_str()), "{what}");
        }
    }
    // A frame that is really too large still gets 1009.
    let srv = start(|c| c.max_frame_bytes = 4096).await;
    let mut ws = RawWs::connect(srv.addr).await;
    ws.send_frame(0x81, "x".repeat(9000).as_bytes(), true).await;
    let (_, close) = ws.until_close().await;
    assert_eq!(close.map(|c| c.0), Some(1009));
}
