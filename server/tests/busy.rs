//! `SERVER_BUSY` for real: a server whose engine queue holds one job, its
//! engine held up by a write lock another process of SQLite takes on the
//! database file. The job being committed waits for the lock, the next one
//! waits in the queue, and a third request is answered 503 `SERVER_BUSY` at
//! once instead of waiting; once the lock goes, the two waiting ones finish.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_full_queue_answers_server_busy_at_once_and_the_queued_work_finishes() {
    let server = start(|c| c.queue_jobs = 1).await;
    let addr = server.addr;
    create(addr, json!({})).await; // the schema exists before the lock

    let lock = rusqlite::Connection::open(&server.db).unwrap();
    lock.execute_batch("BEGIN IMMEDIATE;").unwrap();

    let post = move || async move { request(addr, "POST", "/v1/sessions", &[], b"{}").await };
    let first = tokio::spawn(post()); // on the engine, its commit waits for the lock
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let second = tokio::spawn(post()); // waits in the queue of one
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let t0 = Instant::now();
    let third = post().await;
    assert_eq!(
        third.status,
        503,
        "{}",
        String::from_utf8_lossy(&third.body)
    );
    assert_eq!(third.code(), "SERVER_BUSY");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "answered at once, not after the lock"
    );

    lock.execute_batch("COMMIT;").unwrap();
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!(
        first.status,
        201,
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert_eq!(
        second.status,
        201,
        "{}",
        String::from_utf8_lossy(&second.body)
    );
    assert_eq!(sql_count(&server.db, "SELECT COUNT(*) FROM sessions"), 3);
}
