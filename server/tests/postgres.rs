//! The PostgreSQL store against a throwaway cluster (tests/common/pg.rs):
//! an unreachable database at start is named with its password hidden and
//! the server exits non-zero; a database lost while running fails requests
//! with `SERVER_STORAGE_ERROR`, acknowledges nothing that is not stored, and
//! the server carries on by itself once the database is back; a session
//! another server changed in between is not overwritten; the schema is
//! versioned. These always run on PostgreSQL (and fail, never skip, when it
//! is not installed: scripts/setup installs it).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::pg::{self, Cluster};
use common::*;
use serde_json::{json, Value};
use sessile::core::protocol::Message;
use sessile_server::store::{PostgresStore, SessionRecord, Store};

/// A server in this process on a new database of `cluster`.
async fn serve_on(cluster: &Arc<Cluster>) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stands-for-postgres");
    let name = cluster.create_db();
    pg::register(&db, cluster, &name);
    let addr = serve(config(&db)).await;
    Server {
        addr,
        db,
        dir,
        pg: Some(cluster.clone()),
    }
}

/// The database name a test server's path stands for.
fn db_name(srv: &Server) -> String {
    pg::lookup(&srv.db).unwrap().1
}

/// The version an op's answer acknowledges; panics on anything else.
fn acked(a: &Answer) -> u64 {
    let v = a.json();
    assert_eq!(v["type"], "ack", "{v}");
    assert_eq!(v["duplicate"], Value::Null, "{v}");
    v["version"].as_u64().unwrap()
}

fn port_nobody_listens_on() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn an_unreachable_database_at_start_is_named_without_its_password_and_exits_1() {
    let port = port_nobody_listens_on();
    let out = Command::new(env!("CARGO_BIN_EXE_sessile-server"))
        .args(["--port", "0"])
        .env(
            "SESSILE_DATABASE_URL",
            format!("postgres://shop:topsecret@127.0.0.1:{port}/sessile"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "cannot open postgres://shop:***@127.0.0.1:{port}/sessile"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Something that is not a PostgreSQL URL is refused before anything starts.
    let out = Command::new(env!("CARGO_BIN_EXE_sessile-server"))
        .env("SESSILE_DATABASE_URL", "mysql://shop:topsecret@127.0.0.1/x")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("must be a postgres://"), "{stderr}");
    assert!(!stderr.contains("topsecret"), "{stderr}");
}

#[tokio::test]
async fn a_lost_database_fails_requests_acknowledges_nothing_unstored_and_recovers() {
    // A cluster of its own: this test stops it.
    let cluster = Arc::new(Cluster::start());
    let srv = serve_on(&cluster).await;
    let s = create(srv.addr, json!({"state": {"a": 0}})).await;
    let c = client_id(1);
    let first = http_op(srv.addr, &s, &op(&c, 1, 1, json!({"a": 1}), None)).await;
    assert_eq!(acked(&first), 2);

    cluster.stop();
    // The op is refused with the storage code (retryable) and not acknowledged.
    let lost = http_op(srv.addr, &s, &op(&c, 2, 2, json!({"lost": true}), None)).await;
    assert_eq!(
        (lost.status, lost.code()),
        (503, "SERVER_STORAGE_ERROR".into())
    );
    assert_eq!(lost.json()["retryable"], true);
    // So is a read: the session is read from the database again.
    let read = view(srv.addr, &s).await;
    assert_eq!(
        (read.status, read.code()),
        (503, "SERVER_STORAGE_ERROR".into())
    );
    let created = request(srv.addr, "POST", "/v1/sessions", &[], b"{}").await;
    assert_eq!(created.code(), "SERVER_STORAGE_ERROR");

    // Back on the same port: the same server carries on, nothing restarted.
    cluster.start_again();
    // Sequence 2 was never applied: a different patch under it is new.
    let second = http_op(srv.addr, &s, &op(&c, 2, 2, json!({"b": 2}), None)).await;
    assert_eq!(acked(&second), 3);
    let third = http_op(srv.addr, &s, &op(&c, 3, 3, json!({"c": 3}), None)).await;
    assert_eq!(acked(&third), 4);

    let v = view(srv.addr, &s).await.json();
    assert_eq!(v["state"], json!({"a": 1, "b": 2, "c": 3}), "{v}");
    assert_eq!(v["version"], 4);
    // The database holds exactly the acknowledged ops: patches, audit, row.
    let name = db_name(&srv);
    let q = |sql: &str| cluster.psql(&name, sql);
    assert_eq!(
        q(&format!(
            "SELECT string_agg(version || ':' || patch, ' ' ORDER BY version) FROM patches \
             WHERE session_id = '{}'",
            s.id
        )),
        r#"2:{"a":1} 3:{"b":2} 4:{"c":3}"#
    );
    assert_eq!(
        q(&format!(
            "SELECT string_agg(seq::text, ',' ORDER BY id) FROM audit \
             WHERE session_id = '{}' AND action = 'op'",
            s.id
        )),
        "1,2,3"
    );
    assert_eq!(
        q(&format!(
            "SELECT version FROM sessions WHERE id = '{}'",
            s.id
        )),
        "4"
    );
}

#[tokio::test]
async fn a_database_restarted_while_the_server_idles_costs_no_request() {
    let cluster = Arc::new(Cluster::start());
    let srv = serve_on(&cluster).await;
    let s = create(srv.addr, json!({"state": {}})).await;
    let c = client_id(1);
    let first = http_op(srv.addr, &s, &op(&c, 1, 1, json!({"a": 1}), None)).await;
    assert_eq!(acked(&first), 2);
    // No request while it is down: the server's connection is stale, not
    // known lost. The next write (the session is in memory: a commit first)
    // and the next read (a session not in memory) go through.
    cluster.stop();
    cluster.start_again();
    let second = http_op(srv.addr, &s, &op(&c, 2, 2, json!({"b": 2}), None)).await;
    assert_eq!(acked(&second), 3);
    // Stopped as an operator would: the connection was told why it closed.
    cluster.stop_fast();
    cluster.start_again();
    let third = http_op(srv.addr, &s, &op(&c, 3, 3, json!({"c": 3}), None)).await;
    assert_eq!(acked(&third), 4);
    cluster.stop();
    cluster.start_again();
    let other = create(srv.addr, json!({"state": {"z": 1}})).await;
    let later = srv.restart().await;
    cluster.stop();
    cluster.start_again();
    let v = view(later, &other).await.json();
    assert_eq!(v["state"], json!({"z": 1}), "{v}");
}

#[tokio::test]
async fn a_session_another_server_changed_is_not_overwritten() {
    let cluster = pg::shared();
    let a = serve_on(&cluster).await;
    // A second server on the same database.
    let b = a.restart().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let (ca, cb) = (client_id(1), client_id(2));
    // A reads the session (and keeps it in memory at version 2) ...
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&ca, 1, 1, json!({"x": 1}), None)).await),
        2
    );
    // ... B changes it to version 3 ...
    assert_eq!(
        acked(&http_op(b, &s, &op(&cb, 1, 2, json!({"y": 1}), None)).await),
        3
    );
    // ... so A's next op, made on version 2, must not overwrite it: A's
    // write of the row is conditional on the version it read, and when it
    // fails (or A heard of B's commit first) A reads the session again and
    // runs the op on top of B's change (rebased: disjoint keys).
    let retried = http_op(a.addr, &s, &op(&ca, 2, 2, json!({"x": 2}), None)).await;
    assert_eq!(acked(&retried), 4);
    assert_eq!(retried.json()["rebased"], true);
    // B reads it so once told of A's commit (fanout.rs).
    let mut vb = view(b, &s).await.json();
    for _ in 0..50 {
        if vb["version"] == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        vb = view(b, &s).await.json();
    }
    assert_eq!(vb["state"], json!({"x": 2, "y": 1}), "{vb}");
    let v = view(a.addr, &s).await.json();
    assert_eq!(v["state"], json!({"x": 2, "y": 1}), "{v}");
    let row = cluster.psql(
        &db_name(&a),
        &format!(
            "SELECT version || ' ' || state FROM sessions WHERE id = '{}'",
            s.id
        ),
    );
    assert_eq!(row, r#"4 {"x":2,"y":1}"#);
    let ops = cluster.psql(
        &db_name(&a),
        &format!(
            "SELECT count(*) FROM audit WHERE session_id = '{}' AND action = 'op'",
            s.id
        ),
    );
    assert_eq!(ops, "3");
}

#[tokio::test]
async fn pipelined_ops_of_two_sessions_are_stored_in_order_with_a_trimmed_log() {
    let cluster = pg::shared();
    let srv = serve_on(&cluster).await;
    let sessions = [
        create(srv.addr, json!({"state": {}})).await,
        create(srv.addr, json!({"state": {}})).await,
    ];
    let c = client_id(1);
    let mut sockets = Vec::new();
    for s in &sessions {
        let (ws, _) = Ws::hello(srv.addr, s, &c, 1).await;
        sockets.push(ws);
    }
    // 100 ops on each, sent without waiting: the engine batches them.
    for seq in 1..=100u64 {
        for ws in &mut sockets {
            ws.send(&op(&c, seq, seq, json!({ "n": seq }), None)).await;
        }
    }
    for ws in &mut sockets {
        for seq in 1..=100u64 {
            match ws.recv().await {
                Some(sessile::core::protocol::Message::Ack(a)) => {
                    assert_eq!((a.id.seq, a.version, a.duplicate), (seq, seq + 1, false))
                }
                other => panic!("seq {seq}: {other:?}"),
            }
        }
    }
    let name = db_name(&srv);
    for s in &sessions {
        let q = |sql: String| cluster.psql(&name, &sql);
        let id = &s.id;
        assert_eq!(
            q(format!(
                "SELECT version || ' ' || state FROM sessions WHERE id = '{id}'"
            )),
            r#"101 {"n":100}"#
        );
        // Trimmed at version 96 (to above 32), so 33..=101.
        assert_eq!(
            q(format!(
                "SELECT min(version) || '..' || max(version) || ' ' || count(*) \
                 FROM patches WHERE session_id = '{id}'"
            )),
            "33..101 69"
        );
        assert_eq!(
            q(format!(
                "SELECT patch || ' ' || client || ' ' || seq FROM patches \
                 WHERE session_id = '{id}' AND version = 101"
            )),
            format!(r#"{{"n":100}} {c} 100"#)
        );
        // The audit in order: one entry per op, versions rising with ids.
        assert_eq!(
            q(format!(
                "SELECT string_agg(version::text, ',' ORDER BY id) = \
                 string_agg(version::text, ',' ORDER BY version) \
                 AND string_agg(seq::text, ',' ORDER BY id) = \
                 (SELECT string_agg(n::text, ',' ORDER BY n) FROM generate_series(1, 100) n) \
                 FROM audit WHERE session_id = '{id}' AND action = 'op'"
            )),
            "t"
        );
    }
}

#[test]
fn the_schema_is_versioned_and_a_newer_one_refused() {
    let cluster = pg::shared();
    let name = cluster.create_db();
    let url = cluster.url(&name);
    let mut store = PostgresStore::open(&url).unwrap();
    assert!(store.scan().unwrap().is_empty());
    drop(store);
    // Opening again runs no step twice.
    PostgresStore::open(&url).unwrap();
    assert_eq!(
        cluster.psql(&name, "SELECT version FROM sessile_schema"),
        "2"
    );
    cluster.psql(&name, "UPDATE sessile_schema SET version = 99");
    let err = PostgresStore::open(&url)
        .err()
        .expect("a newer schema opened");
    assert!(
        err.to_string()
            .contains("schema version 99, newer than this server's 2"),
        "{err}"
    );
}

/// A new session's row at version 1, expiring at 1 s.
fn record(id: &str, state: Value) -> SessionRecord {
    SessionRecord {
        id: id.into(),
        token_hash: vec![0; 32],
        flow: "checkout".into(),
        flow_table: None,
        status: "cart".into(),
        status_since_ms: 1,
        key: None,
        state,
        version: 1,
        created_at_ms: 1,
        updated_at_ms: 1,
        expires_at_ms: 1_000,
        clients: Default::default(),
    }
}

#[test]
fn a_new_expiry_another_server_stored_is_not_overwritten_at_the_same_version() {
    use sessile_server::store::{Change, Stored};
    let cluster = pg::shared();
    let name = cluster.create_db();
    let url = cluster.url(&name);
    let (mut a, mut b) = (
        PostgresStore::open(&url).unwrap(),
        PostgresStore::open(&url).unwrap(),
    );
    let rec = record(&"0".repeat(32), json!({}));
    let read = Stored::of(&rec);
    a.commit(&[Change::Upsert {
        record: rec.clone(),
        stored: None,
    }])
    .unwrap();
    // A extends it: the version stays 1.
    let extended = SessionRecord {
        expires_at_ms: 9_000,
        ..rec.clone()
    };
    a.commit(&[Change::Upsert {
        record: extended,
        stored: Some(read),
    }])
    .unwrap();
    // B, which read it before the extension, changes it at version 1: its
    // row would put the old expiry back; refused, nothing stored.
    let changed = SessionRecord {
        version: 2,
        state: json!({"b": 1}),
        ..rec
    };
    let err = b
        .commit(&[Change::Upsert {
            record: changed,
            stored: Some(read),
        }])
        .unwrap_err();
    assert!(sessile_server::store::is_moved(&err), "{err}");
    assert_eq!(
        cluster.psql(
            &name,
            "SELECT version || ' ' || expires_at || ' ' || state FROM sessions"
        ),
        "1 9000 {}"
    );
}

#[test]
fn a_patch_after_a_remove_in_the_same_batch_is_not_kept() {
    use sessile::core::protocol::LoggedPatch;
    use sessile_server::store::Change;
    let cluster = pg::shared();
    let name = cluster.create_db();
    let mut store = PostgresStore::open(&cluster.url(&name)).unwrap();
    let id = "1".repeat(32);
    let rec = record(&id, json!({"email": "a@example.com"}));
    let late = LoggedPatch {
        version: 2,
        patch: json!({"email": "b@example.com"}),
        status: None,
        op: None,
    };
    store
        .commit(&[
            Change::Upsert {
                record: rec,
                stored: None,
            },
            Change::Remove(id.clone()),
            Change::Patch {
                session: id.clone(),
                patch: late,
            },
        ])
        .unwrap();
    assert!(store.load(&id).unwrap().is_none());
    assert_eq!(
        cluster.psql(&name, "SELECT count(*) FROM patches"),
        "0",
        "its state values linger"
    );
}

/// Waits (5 s at most) until server `addr` shows session `s` at `version`:
/// it heard of another server's commit.
async fn settled(addr: std::net::SocketAddr, s: &Sess, version: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let v = view(addr, s).await.json();
        if v["version"] == version {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never at {version}: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_rejected_op_on_one_server_is_not_undone_by_another_servers_older_copy() {
    let cluster = pg::shared();
    let a = serve_on(&cluster).await;
    let b = a.restart().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let (c, d) = (client_id(1), client_id(2));
    assert_eq!(
        acked(&http_op(b, &s, &op(&d, 1, 1, json!({"d": 1}), None)).await),
        2
    );
    settled(a.addr, &s, 2).await;
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&c, 1, 2, json!({"c": 1}), None)).await),
        3
    );
    // B holds the session at version 3 ...
    settled(b, &s, 3).await;
    // ... when A rejects C's next op (D changed `d` after C's base): the
    // row keeps version and expiry, and remembers C's sequence number 2.
    let rejected = http_op(a.addr, &s, &op(&c, 2, 1, json!({"d": 5}), None)).await;
    assert_eq!(rejected.code(), "VERSION_CONFLICT");
    // B commits D's op from its copy, made before that write: it must not
    // put back the row without C's number.
    assert_eq!(
        acked(&http_op(b, &s, &op(&d, 2, 3, json!({"e": 1}), None)).await),
        4
    );
    settled(a.addr, &s, 4).await;
    // C goes on with its next number, on either server.
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&c, 3, 4, json!({"c": 3}), None)).await),
        5
    );
    assert_eq!(
        acked(&http_op(b, &s, &op(&c, 4, 5, json!({"c": 4}), None)).await),
        6
    );
    let rev = cluster.psql(
        &db_name(&a),
        &format!("SELECT rev FROM sessions WHERE id = '{}'", s.id),
    );
    assert!(
        rev.parse::<u64>().unwrap() >= 5,
        "every write bumps the revision: {rev}"
    );
}

/// Commits version `version` of session `s` as another server would, but
/// without its notification (one lost or not arrived yet): the patch
/// `{"late": version}`, the expiry `expires_at`.
fn commit_unheard(cluster: &Cluster, db: &str, s: &Sess, version: u64, expires_at: u64) {
    cluster.psql(
        db,
        &format!(
            "UPDATE sessions SET version = {version}, state = '{{\"late\":{version}}}', \
             expires_at = {expires_at}, rev = rev + 1 WHERE id = '{id}'; \
             INSERT INTO patches (session_id, version, patch) \
             VALUES ('{id}', {version}, '{{\"late\":{version}}}')",
            id = s.id
        ),
    );
}

#[tokio::test]
async fn a_client_past_this_servers_copy_is_answered_from_the_database() {
    let cluster = pg::shared();
    let a = serve_on(&cluster).await;
    let s = create(a.addr, json!({"state": {}})).await;
    let c = client_id(1);
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&c, 1, 1, json!({"x": 1}), None)).await),
        2
    );
    let expires = view(a.addr, &s).await.json()["expiresAt"].as_u64().unwrap();
    // Another server committed version 3; the client saw it there.
    commit_unheard(&cluster, &db_name(&a), &s, 3, expires);
    let (_ws, welcome) = Ws::hello(a.addr, &s, &c, 3).await;
    let Message::Welcome(w) = welcome else {
        panic!("a client at version 3 was refused: {welcome:?}");
    };
    assert_eq!(w.version, 3);
    // An op made on version 4 (committed elsewhere, not heard of here).
    commit_unheard(&cluster, &db_name(&a), &s, 4, expires);
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&c, 2, 4, json!({"x": 2}), None)).await),
        5
    );
}

#[tokio::test]
async fn a_listener_that_could_not_listen_at_start_catches_up_once_it_does() {
    let cluster = pg::shared();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stands-for-postgres");
    let name = cluster.create_db();
    pg::register(&db, &cluster, &name);
    // A role allowed one connection: the store's. The listener's is
    // refused until the limit goes.
    let role = format!("{name}_one");
    cluster.psql(
        "postgres",
        &format!(
            "CREATE ROLE {role} LOGIN CONNECTION LIMIT 1; ALTER DATABASE {name} OWNER TO {role}"
        ),
    );
    let mut cfg = config(&db);
    cfg.database_url = Some(format!(
        "postgres://{role}@127.0.0.1:{}/{name}",
        cluster.port
    ));
    let a = serve(cfg).await;
    let b = serve(config(&db)).await;
    let s = create(a, json!({"state": {}})).await;
    assert_eq!(view(a, &s).await.json()["version"], 1);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let live = admin(a, "GET", "/v1/admin/live", &Value::Null).await.json();
        if live["fanoutListenFailures"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{live}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // B commits while A cannot listen: its notification is lost for A.
    assert_eq!(
        acked(&http_op(b, &s, &op(&client_id(1), 1, 1, json!({"b": 1}), None)).await),
        2
    );
    assert_eq!(view(a, &s).await.json()["version"], 1, "A's copy, unheard");
    cluster.psql(
        "postgres",
        &format!("ALTER ROLE {role} CONNECTION LIMIT -1"),
    );
    // Once listening, A compares its copy with the database.
    settled(a, &s, 2).await;
}

#[tokio::test]
async fn another_servers_extension_reaches_listeners_when_the_session_is_read_again() {
    let cluster = pg::shared();
    let a = serve_on(&cluster).await;
    let s = create(a.addr, json!({"state": {}})).await;
    let (mut w, welcome) = Ws::hello(a.addr, &s, &client_id(1), 1).await;
    let Message::Welcome(welcome) = welcome else {
        panic!("{welcome:?}");
    };
    // Another server's commit of version 2 with a later expiry, unheard:
    // A forgets its copy when a client shows it is behind, and reads the
    // session again.
    let later = welcome.expires_at + 600_000;
    commit_unheard(&cluster, &db_name(&a), &s, 2, later);
    let (_other, _) = Ws::hello(a.addr, &s, &client_id(2), 2).await;
    let Some(Message::Patch(p)) = w.recv().await else {
        panic!("the listener lacks version 2");
    };
    assert_eq!(p.version, 2);
    let got = w.recv().await;
    let Some(Message::Extended(e)) = got else {
        panic!("the listener was not told the new expiry: {got:?}");
    };
    assert_eq!(e.expires_at, later);
}
