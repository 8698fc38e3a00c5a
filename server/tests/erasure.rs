//! What a session held is erased when it ends, whichever way: expiry (on a
//! request or by the sweeper) clears the state as DELETE does, and the
//! patch log keeps no state values (only the erasing patch, which names the
//! keys), nor do the file's pages. The audit log of sessions the sweeper removed is deleted after the
//! audit retention (`--audit-retention-secs`, default 30 days); the audit of
//! other sessions stays.

mod common;

use common::*;
use serde_json::{json, Value};

const SECRETS: [&str; 3] = ["4111-SECRET", "shopper@example.test", "190.62609999999998"];

/// A session holding secrets in its state and its patch log.
async fn secret_session(addr: std::net::SocketAddr) -> Sess {
    let s = create(
        addr,
        json!({"ttlSeconds": 60, "state": {"card": "4111-SECRET", "amount": 190.62609999999998}}),
    )
    .await;
    let a = http_op(
        addr,
        &s,
        &op(
            &client_id(1),
            1,
            1,
            json!({"email": "shopper@example.test"}),
            None,
        ),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    s
}

fn text(db: &std::path::Path, sql: &str) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get::<_, Option<String>>(0))
        .unwrap()
        .unwrap_or_default()
}

/// The row's state is `{}` and no patch of the session holds a value.
fn erased(db: &std::path::Path, s: &Sess, status: &str) {
    let row = text(
        db,
        &format!("SELECT state FROM sessions WHERE id = '{}'", s.id),
    );
    assert_eq!(row, "{}");
    let st = text(
        db,
        &format!("SELECT status FROM sessions WHERE id = '{}'", s.id),
    );
    assert_eq!(st, status);
    let log = text(
        db,
        &format!(
            "SELECT group_concat(patch, ' ') FROM patches WHERE session_id = '{}'",
            s.id
        ),
    );
    for secret in SECRETS {
        assert!(
            !log.contains(secret),
            "the patch log still holds {secret}: {log}"
        );
    }
    // Nor do the file's pages, once the WAL is copied in: what was replaced
    // or deleted is zeroed (`secure_delete`), not left in free space.
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    let bytes = std::fs::read(db).unwrap();
    for secret in SECRETS {
        let found = bytes.windows(secret.len()).any(|w| w == secret.as_bytes());
        assert!(!found, "the database file still holds {secret}");
    }
}

/// Moves the session's expiry into the past (the row, then a restart reads it).
async fn past_ttl(srv: &Server, s: &Sess) -> std::net::SocketAddr {
    sql(
        &srv.db,
        &format!("UPDATE sessions SET expires_at = 1 WHERE id = '{}'", s.id),
    );
    srv.restart().await
}

#[tokio::test]
async fn expiry_on_a_request_erases_the_state_and_the_patch_log() {
    let srv = start(|_| {}).await;
    let s = secret_session(srv.addr).await;
    let addr = past_ttl(&srv, &s).await;
    let a = view(addr, &s).await;
    assert_eq!((a.status, a.code()), (410, "SESSION_EXPIRED".into()));
    erased(&srv.db, &s, "expired");
}

#[tokio::test]
async fn expiry_by_the_sweeper_erases_the_state_and_the_patch_log() {
    let srv = start(|_| {}).await;
    let s = secret_session(srv.addr).await;
    let addr = past_ttl(&srv, &s).await;
    let report = admin(addr, "POST", "/v1/admin/sweep", &json!({}))
        .await
        .json();
    assert_eq!(report["expired"], json!([s.id]), "{report}");
    erased(&srv.db, &s, "expired");
}

#[tokio::test]
async fn delete_erases_the_patch_log_too() {
    let srv = start(|_| {}).await;
    let s = secret_session(srv.addr).await;
    assert_eq!(end(srv.addr, &s).await.status, 200);
    erased(&srv.db, &s, "terminated");
}

#[tokio::test]
async fn the_audit_of_removed_sessions_is_deleted_after_the_retention() {
    let srv = start(|_| {}).await;
    let (old, recent, live) = (
        create(srv.addr, json!({})).await,
        create(srv.addr, json!({})).await,
        create(srv.addr, json!({})).await,
    );
    for s in [&old, &recent] {
        assert_eq!(end(srv.addr, s).await.status, 200);
    }
    let report = admin(
        srv.addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"olderThanSecs": 0}),
    )
    .await
    .json();
    assert_eq!(report["removed"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(report["auditRemoved"], 0, "{report}");
    let audit_rows = |s: &Sess| {
        sql_count(
            &srv.db,
            &format!("SELECT COUNT(*) FROM audit WHERE session_id = '{}'", s.id),
        )
    };
    assert_eq!(audit_rows(&old), 3, "create, end, remove");
    // The old session was removed 31 days ago; the live one's audit is as old.
    let month = 31 * 24 * 60 * 60 * 1000_i64;
    for s in [&old, &live] {
        sql(
            &srv.db,
            &format!(
                "UPDATE audit SET at = at - {month} WHERE session_id = '{}'",
                s.id
            ),
        );
    }
    let dry = admin(
        srv.addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"dryRun": true}),
    )
    .await
    .json();
    assert_eq!(dry["auditRemoved"], 3, "{dry}");
    assert_eq!(audit_rows(&old), 3, "a dry run deletes nothing");
    let report = admin(srv.addr, "POST", "/v1/admin/sweep", &json!({}))
        .await
        .json();
    assert_eq!(report["auditRemoved"], 3, "{report}");
    assert_eq!(audit_rows(&old), 0);
    assert_eq!(audit_rows(&recent), 3, "removed recently: kept");
    assert_eq!(audit_rows(&live), 1, "not removed: kept");
    let a = admin(
        srv.addr,
        "GET",
        &format!("/v1/admin/sessions/{}/audit", old.id),
        &Value::Null,
    )
    .await;
    assert_eq!(a.json(), json!([]));
    // A shorter retention, asked for in the sweep.
    let report = admin(
        srv.addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"auditOlderThanSecs": 0}),
    )
    .await
    .json();
    assert_eq!(report["auditRemoved"], 3, "{report}");
    assert_eq!(audit_rows(&recent), 0);
}

#[test]
fn the_audit_retention_is_a_flag_of_30_days_by_default() {
    use sessile_server::Config;
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let c = Config::from_args(args(&[]), None).unwrap();
    assert_eq!(c.audit_retention_secs, 30 * 24 * 60 * 60);
    let c = Config::from_args(args(&["--audit-retention-secs", "5"]), None).unwrap();
    assert_eq!(c.audit_retention_secs, 5);
}
