//! Every error answer of the API is the documented JSON body
//! `{"type":"error","code":...,"message":...,"retryable":...}` with a status
//! that fits: bodies over the limit (also over twice the limit, which the
//! HTTP layer refuses before any handler runs), unknown routes under `/v1/`,
//! wrong methods, malformed path ids, bad query strings, a WebSocket
//! endpoint asked without an upgrade, and a wrong or missing token.

mod common;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Checks that an answer is the error body with `code` and `status`.
fn is_error(what: &str, a: &Answer, status: u16, code: &str) {
    let text = String::from_utf8_lossy(&a.body);
    assert_eq!(a.status, status, "{what}: {text}");
    assert!(
        a.head.contains("content-type: application/json"),
        "{what}: not JSON: {}",
        a.head
    );
    let body: Value = serde_json::from_slice(&a.body)
        .unwrap_or_else(|_| panic!("{what}: body is not JSON: {text}"));
    assert_eq!(body["type"], "error", "{what}: {body}");
    assert_eq!(body["code"], code, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
    assert!(body["retryable"].is_boolean(), "{what}: {body}");
}

/// Sends `raw` (a whole HTTP/1.1 request) and parses the answer.
async fn raw(addr: std::net::SocketAddr, raw: &[u8]) -> Answer {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut resp = Vec::new();
    // The server may answer and close before reading the whole body.
    let _ = s.read_to_end(&mut resp).await;
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&resp[..split]).to_lowercase();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = resp[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Answer { status, head, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = b.windows(2).position(|w| w == b"\r\n").unwrap();
        let n = usize::from_str_radix(std::str::from_utf8(&b[..line]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[line + 2..line + 2 + n]);
        b = &b[line + 2 + n + 2..];
    }
}

#[tokio::test]
async fn every_error_is_the_documented_json_body() {
    let srv = start(|c| c.max_frame_bytes = 4096).await;
    let addr = srv.addr;
    let s = create(addr, json!({})).await;
    let auth = bearer(&s.token);
    let ops = format!("/v1/sessions/{}/ops", s.id);

    // Bodies over the limit, and over twice the limit.
    for (n, path) in [
        (5_000, "/v1/sessions"),
        (10_000, "/v1/sessions"),
        (1_000_000, "/v1/sessions"),
        (10_000, ops.as_str()),
    ] {
        let body = format!("{{\"state\":{{\"x\":\"{}\"}}}}", "y".repeat(n));
        let a = request(
            addr,
            "POST",
            path,
            &[("Authorization", &auth)],
            body.as_bytes(),
        )
        .await;
        is_error(&format!("{n} bytes to {path}"), &a, 413, "FRAME_TOO_LARGE");
        let message = a.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("4096"), "names the limit: {message}");
    }
    // Chunked, without a length, over twice the limit.
    let mut chunked = b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..4 {
        chunked.extend_from_slice(format!("{:x}\r\n{}\r\n", 4000, "z".repeat(4000)).as_bytes());
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    is_error(
        "chunked body",
        &raw(addr, &chunked).await,
        413,
        "FRAME_TOO_LARGE",
    );
    // A snapshot over its (larger) limit.
    let big = vec![b'S'; 6 * 1024 * 1024];
    let a = request(addr, "POST", "/v1/snapshots/verify", &[], &big).await;
    is_error("snapshot over the limit", &a, 413, "FRAME_TOO_LARGE");

    // A snapshot that does not decode: the verdict is an error body too
    // (with `ok: false`).
    let a = request(addr, "POST", "/v1/snapshots/verify", &[], b"not a snapshot").await;
    is_error("a snapshot that does not decode", &a, 422, "BAD_MAGIC");
    assert_eq!(a.json()["ok"], false);

    // Unknown routes under /v1/.
    for path in [
        "/v1/nope",
        "/v1",
        "/v1/",
        "/v1/sessions/0123/nope",
        "/v1/admin/nope",
        "/v1/sessions/x/ops/more",
    ] {
        let a = request(addr, "GET", path, &[], b"").await;
        is_error(path, &a, 404, "ROUTE_NOT_FOUND");
    }

    // Wrong methods, on session, admin and health endpoints.
    for (method, path) in [
        ("PUT", "/v1/sessions".to_string()),
        ("GET", "/v1/sessions".to_string()),
        ("GET", ops.clone()),
        ("PATCH", format!("/v1/sessions/{}", s.id)),
        ("DELETE", "/v1/admin/stats".to_string()),
        ("POST", "/metrics".to_string()),
        ("POST", "/healthz".to_string()),
        ("POST", "/v1/ws".to_string()),
        ("OPTIONS", "/v1/sessions".to_string()),
    ] {
        let a = request(addr, method, &path, &[], b"").await;
        is_error(&format!("{method} {path}"), &a, 405, "METHOD_NOT_ALLOWED");
        assert!(
            a.head.contains("\nallow: "),
            "405 names the methods: {}",
            a.head
        );
    }

    // Malformed path ids.
    let a = request(
        addr,
        "GET",
        "/v1/sessions/%FF%FE",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    is_error("an id that is not UTF-8", &a, 400, "PROTOCOL_ERROR");
    let a = request(
        addr,
        "GET",
        "/v1/sessions/not-an-id",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    is_error("an id that is no session's", &a, 404, "SESSION_NOT_FOUND");

    // Bad query strings.
    for query in [
        "since=-1",
        "since=abc",
        "",
        "since=1&bogus=2",
        "since=1&waitMs=x",
        "since=1%FF",
    ] {
        let path = format!("/v1/sessions/{}/changes?{query}", s.id);
        let a = request(addr, "GET", &path, &[("Authorization", &auth)], b"").await;
        is_error(&format!("query `{query}`"), &a, 400, "PROTOCOL_ERROR");
    }

    // The WebSocket endpoint without an upgrade.
    let a = request(addr, "GET", "/v1/ws", &[], b"").await;
    assert!(a.status >= 400, "{}", a.status);
    is_error("GET /v1/ws without upgrade", &a, a.status, "PROTOCOL_ERROR");

    // Malformed bodies, missing and wrong tokens.
    let a = request(addr, "POST", "/v1/sessions", &[], b"{nope").await;
    is_error("malformed JSON", &a, 400, "PROTOCOL_ERROR");
    let a = request(addr, "GET", &format!("/v1/sessions/{}", s.id), &[], b"").await;
    is_error("no token", &a, 401, "INVALID_TOKEN");
    let a = request(
        addr,
        "GET",
        "/v1/admin/stats",
        &[("Authorization", "Bearer x")],
        b"",
    )
    .await;
    is_error("wrong admin token", &a, 401, "INVALID_TOKEN");

    // The server still answers normally.
    assert_eq!(view(addr, &s).await.status, 200);
}
