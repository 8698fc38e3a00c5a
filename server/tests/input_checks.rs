//! Inputs refused with a clear code: an op with a field the protocol does
//! not have (over HTTP and WebSocket, as create and extend already refuse
//! them), a `key` over 256 bytes, a state that is JSON but not an object
//! (the message says what it is), an extend out of range (the message names
//! `seconds` and the range); and `--help` prints the usage and exits 0.

mod common;

use common::*;
use serde_json::json;
use sessile::core::protocol::Message;

#[tokio::test]
async fn ops_with_unknown_fields_are_refused() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let c = client_id(1);
    let auth = bearer(&s.token);
    let path = format!("/v1/sessions/{}/ops", s.id);
    let frames = [
        json!({"type": "op", "id": {"client": c, "seq": 1}, "base": 1, "patch": {"n": 1}, "extra": true}),
        json!({"type": "op", "id": {"client": c, "seq": 1, "tab": 2}, "base": 1, "patch": {"n": 1}}),
        json!({"type": "op", "id": {"client": c, "seq": 1}, "base": 1, "patch": {"n": 1}, "To": "checkout"}),
    ];
    for frame in &frames {
        let body = frame.to_string();
        let a = request(
            srv.addr,
            "POST",
            &path,
            &[("Authorization", &auth)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(
            (a.status, a.code()),
            (400, "PROTOCOL_ERROR".into()),
            "{frame}"
        );
        let message = a.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("unknown field"), "{message}");
    }
    let (mut ws, _) = Ws::hello(srv.addr, &s, &c, 1).await;
    for frame in &frames {
        ws.send_text(frame.to_string()).await;
        match ws.recv().await.unwrap() {
            Message::Error(e) => assert_eq!(e.code, "PROTOCOL_ERROR", "{frame}"),
            other => panic!("{frame}: expected an error, got {other:?}"),
        }
    }
    // Nothing was applied and no sequence number was used.
    ws.send(&op(&c, 1, 1, json!({"n": 1}), None)).await;
    assert!(matches!(ws.recv().await.unwrap(), Message::Ack(a) if a.version == 2 && !a.duplicate));
    assert_eq!(view(srv.addr, &s).await.json()["state"], json!({"n": 1}));
}

#[tokio::test]
async fn a_key_longer_than_256_bytes_is_refused() {
    let srv = start(|_| {}).await;
    create(srv.addr, json!({"key": "k".repeat(256)})).await;
    for key in ["k".repeat(257), "é".repeat(129)] {
        let body = json!({ "key": key }).to_string();
        let a = request(srv.addr, "POST", "/v1/sessions", &[], body.as_bytes()).await;
        assert_eq!((a.status, a.code()), (400, "INVALID_OPTIONS".into()));
        let message = a.json()["message"].as_str().unwrap().to_string();
        assert!(
            message.contains("`key`") && message.contains("256"),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_state_that_is_not_an_object_says_what_it_is() {
    let srv = start(|_| {}).await;
    for (state, what) in [
        (json!([1, 2]), "an array"),
        (json!(12.5), "a number"),
        (json!("cart"), "a string"),
        (json!(true), "a boolean"),
    ] {
        let body = json!({ "state": state }).to_string();
        let a = request(srv.addr, "POST", "/v1/sessions", &[], body.as_bytes()).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "INVALID_STATE".into()),
            "{state}"
        );
        let message = a.json()["message"].as_str().unwrap().to_string();
        assert!(!message.contains("not valid JSON"), "{message}");
        assert!(
            message.contains("must be a JSON object") && message.contains(what),
            "{state}: {message}"
        );
    }
}

#[tokio::test]
async fn extend_out_of_range_names_seconds_and_the_range() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let path = format!("/v1/sessions/{}/extend", s.id);
    for seconds in [0, 86_401] {
        let a = call(srv.addr, "POST", &path, &s, &json!({ "seconds": seconds })).await;
        assert_eq!((a.status, a.code()), (400, "INVALID_OPTIONS".into()));
        assert_eq!(
            a.json()["message"],
            format!("invalid option `seconds`: {seconds} s is outside 1..=86400 s")
        );
    }
}

#[test]
fn help_prints_the_usage_to_stdout_and_exits_0() {
    for flag in ["--help", "-h"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessile-server"))
            .arg(flag)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("usage: sessile-server"), "{stdout}");
        assert!(stdout.contains("--audit-retention-secs"));
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A wrong option still goes to stderr with status 2.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sessile-server"))
        .args(["--nope", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
}
