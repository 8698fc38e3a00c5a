//! A job that panics on the engine thread (a bug) costs its batch, not the
//! server: the batch's uncommitted changes leave memory, its jobs are
//! answered `INTERNAL_ERROR` (500, retryable), the panic is counted
//! (`enginePanics`, `sessile_engine_panics_total`, `/healthz`), and the next
//! requests are served. `/healthz` sends a job through the engine and says
//! `unavailable` (503) when the engine does not answer within 2 s.
//! (A debug build unwinds; the release profile aborts on panic, and a
//! supervisor restarts the process.)

mod common;

use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sessile::core::error::SessileError;
use sessile_server::engine::Engine;
use sessile_server::sessions::{CreateRequest, Sessions};
use sessile_server::{app_and_engine, bind};

/// A server with a fresh database and the handle of its engine.
async fn start_with_engine() -> (SocketAddr, Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("sessile.db"));
    let (listener, addr) = bind(&cfg).await.unwrap();
    let (router, engine) = app_and_engine(&cfg).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, engine, dir)
}

/// A job that creates a session in memory, tells its id and token, then panics.
fn create_then_panic(
    told: mpsc::Sender<Sess>,
) -> impl Fn(&mut Sessions) -> Result<(), SessileError> + Send + Sync + 'static {
    move |s| {
        let c = s.create(CreateRequest::default(), sessile_server::ids::now_ms())?;
        told.send(Sess {
            id: c.id,
            token: c.token,
        })
        .unwrap();
        panic!("injected by the test: a bug on the engine thread");
    }
}

fn internal(out: Result<(), SessileError>) {
    match out {
        Err(e) => {
            assert_eq!(e.code(), "INTERNAL_ERROR", "{e}");
            assert!(e.is_retryable());
        }
        Ok(()) => panic!("a job of a batch that panicked was answered as done"),
    }
}

async fn health(addr: SocketAddr) -> (u16, Value) {
    let a = request(addr, "GET", "/healthz", &[], b"").await;
    (a.status, a.json())
}

#[tokio::test]
async fn a_panicking_job_is_answered_and_the_engine_goes_on() {
    let (addr, engine, _dir) = start_with_engine().await;
    let before = create(addr, json!({"state": {"n": 0}})).await;

    let (tx, rx) = mpsc::channel();
    internal(engine.call(create_then_panic(tx)).await);
    let lost = rx.recv().unwrap();

    // Memory does not hold what the store never committed.
    let a = view(addr, &lost).await;
    assert_eq!((a.status, a.code()), (404, "SESSION_NOT_FOUND".into()));
    // The server goes on: reads, ops and creates work.
    assert_eq!(view(addr, &before).await.status, 200);
    let a = http_op(
        addr,
        &before,
        &op(&client_id(1), 1, 1, json!({"n": 1}), None),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let after = create(addr, json!({})).await;
    assert_eq!(view(addr, &after).await.status, 200);

    let (status, body) = health(addr).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
    assert_eq!(body["enginePanics"], 1, "{body}");
    let stats = admin(addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json();
    assert_eq!(stats["enginePanics"], 1, "{stats}");
    let metrics = admin(addr, "GET", "/metrics", &Value::Null).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("\nsessile_engine_panics_total 1\n"), "{text}");
}

#[tokio::test]
async fn every_job_of_the_panicking_batch_is_told_and_nothing_of_it_is_kept() {
    let (addr, engine, dir) = start_with_engine().await;
    create(addr, json!({})).await;
    // Hold the engine so that the next jobs queue up and run as one batch.
    let hold = engine.clone();
    let first = tokio::spawn(async move {
        hold.call(|_| {
            std::thread::sleep(Duration::from_millis(400));
            Ok(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (tx_mate, rx_mate) = mpsc::channel();
    let mate_engine = engine.clone();
    let mate = tokio::spawn(async move {
        mate_engine
            .call(move |s| {
                let c = s.create(CreateRequest::default(), sessile_server::ids::now_ms())?;
                tx_mate
                    .send(Sess {
                        id: c.id,
                        token: c.token,
                    })
                    .unwrap();
                Ok(())
            })
            .await
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (tx, rx) = mpsc::channel();
    let panicking = engine.clone();
    let bug = tokio::spawn(async move { panicking.call(create_then_panic(tx)).await });

    internal(first.await.unwrap());
    internal(mate.await.unwrap());
    internal(bug.await.unwrap());
    for lost in [rx_mate.recv().unwrap(), rx.recv().unwrap()] {
        let a = view(addr, &lost).await;
        assert_eq!((a.status, a.code()), (404, "SESSION_NOT_FOUND".into()));
        let rows = sql_count(
            &dir.path().join("sessile.db"),
            &format!("SELECT COUNT(*) FROM sessions WHERE id = '{}'", lost.id),
        );
        assert_eq!(rows, 0);
    }
    let s = create(addr, json!({})).await;
    assert_eq!(view(addr, &s).await.status, 200);
}

#[tokio::test]
async fn healthz_says_unavailable_when_the_engine_does_not_answer() {
    let (addr, engine, _dir) = start_with_engine().await;
    assert_eq!(health(addr).await.0, 200);
    let hold = engine.clone();
    let held = tokio::spawn(async move {
        hold.call(|_| {
            std::thread::sleep(Duration::from_millis(3500));
            Ok(())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = std::time::Instant::now();
    let (status, body) = health(addr).await;
    assert_eq!(
        (status, &body["status"]),
        (503, &json!("unavailable")),
        "{body}"
    );
    assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()));
    assert!(
        t0.elapsed() < Duration::from_millis(3000),
        "answered after ~2 s"
    );
    held.await.unwrap().unwrap();
    let (status, body) = health(addr).await;
    assert_eq!((status, &body["status"]), (200, &json!("ok")), "{body}");
}
