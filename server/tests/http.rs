//! The real router on a free loopback port, spoken to over plain HTTP/1.1:
//! health, static files, and snapshot verification (good and corrupted).

use std::path::PathBuf;

use sessile::core::envelope::{encode, EnvelopeConfig, SnapshotMeta};
use sessile_server::{app, bind, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server on a free port with a fresh SQLite file (removed with the `TempDir`).
async fn start(www: PathBuf) -> (std::net::SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessile.db");
    let config = Config {
        port: 0,
        www,
        pkg: "/nonexistent-pkg".into(),
        js: "/nonexistent-js".into(),
        db,
        ..Config::default()
    };
    let (listener, addr) = bind(&config).await.unwrap();
    let router = app(&config).unwrap();
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, service).await.unwrap() });
    (addr, dir)
}

/// Sends one request and returns (status, body).
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status_line = String::from_utf8_lossy(&resp[..split]).to_string();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    (status, resp[split + 4..].to_vec())
}

fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn health_and_static_files() {
    let dir = std::env::temp_dir().join(format!("sessile-www-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>sessile demo</h1>").unwrap();
    let (addr, _db) = start(dir.clone()).await;
    let (status, body) = request(addr, "GET", "/healthz", b"").await;
    assert_eq!(status, 200);
    assert_eq!(json(&body)["status"], "ok");
    let (status, body) = request(addr, "GET", "/", b"").await;
    assert_eq!(
        (status, body.as_slice()),
        (200, b"<h1>sessile demo</h1>".as_slice())
    );
    assert_eq!(request(addr, "GET", "/missing.js", b"").await.0, 404);
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn verifies_snapshots_with_the_core_decoder() {
    let (addr, _db) = start("/nonexistent-www".into()).await;
    let meta = SnapshotMeta {
        schema_version: 1,
        state_version: 9,
        modified_at_ms: 5,
        ..Default::default()
    };
    let state = format!(
        "{{\"items\":[{}]}}",
        vec!["{\"sku\":\"A-1\",\"qty\":2}"; 2000].join(",")
    );
    let bytes = encode(&state, &meta, &EnvelopeConfig::default()).unwrap();
    let (status, body) = request(addr, "POST", "/v1/snapshots/verify", &bytes).await;
    let v = json(&body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["stateVersion"].as_u64(), v["compressed"].as_bool()),
        (Some(9), Some(true))
    );
    assert_eq!(v["rawBytes"].as_u64(), Some(state.len() as u64));

    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    let (status, body) = request(addr, "POST", "/v1/snapshots/verify", &bad).await;
    assert_eq!(
        (status, json(&body)["code"].as_str()),
        (422, Some("CHECKSUM_MISMATCH"))
    );
    let (status, body) = request(addr, "POST", "/v1/snapshots/verify", &bytes[..30]).await;
    assert_eq!(
        (status, json(&body)["code"].as_str()),
        (422, Some("TRUNCATED"))
    );
}
