//! Browser origins with no allow-list (DNS rebinding): only loopback pages
//! may call the session API, whatever `Host` says, and the binary refuses
//! to listen on a non-loopback address without a list (or the explicit
//! `--allow-any-origin`).

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

#[tokio::test]
async fn without_a_list_only_loopback_origins_pass_whatever_the_host() {
    let srv = start(|_| {}).await;
    let port = srv.addr.port();
    // A rebound name: the page's origin and the Host header agree, and both
    // are the attacker's.
    let evil = format!("http://evil.example:{port}");
    let host = format!("evil.example:{port}");
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[("Origin", &evil), ("Host", &host)],
        b"{}",
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "ORIGIN_NOT_ALLOWED".into()));
    // The WebSocket upgrade from there is refused too.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/ws", srv.addr),
    )
    .unwrap();
    req.headers_mut().insert("Origin", evil.parse().unwrap());
    req.headers_mut().insert("Host", host.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());

    // Loopback pages pass, on any port, by name or address.
    for origin in [
        format!("http://127.0.0.1:{port}"),
        "http://localhost:5173".to_string(),
        "https://localhost".to_string(),
        "http://127.8.9.10:80".to_string(),
        "http://[::1]:8787".to_string(),
    ] {
        let a = request(
            srv.addr,
            "POST",
            "/v1/sessions",
            &[("Origin", &origin)],
            b"{}",
        )
        .await;
        assert_eq!(a.status, 201, "{origin}");
    }
    // Names that only look like loopback do not.
    for origin in [
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "http://evil.example/127.0.0.1",
        "ftp://127.0.0.1",
        "http://[::2]",
        "null",
    ] {
        let a = request(
            srv.addr,
            "POST",
            "/v1/sessions",
            &[("Origin", origin)],
            b"{}",
        )
        .await;
        assert_eq!(a.status, 403, "{origin}");
    }
    // Requests without Origin (not from a browser page) still pass.
    create(srv.addr, json!({})).await;
}

#[tokio::test]
async fn a_non_loopback_address_without_an_allow_list_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sessile-server"))
        .args(["--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(dir.path().join("s.db"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let status = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
        Ok(status) => status.unwrap(),
        Err(_) => {
            child.kill().await.unwrap();
            panic!("the server started on 0.0.0.0 without an allow-list");
        }
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("--allow-origin") && stderr.contains("--allow-any-origin"),
        "{stderr}"
    );
}
