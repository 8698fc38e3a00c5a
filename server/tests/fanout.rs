//! Two `sessile-server` processes on one PostgreSQL database (a throwaway
//! cluster, tests/common/pg.rs): a change committed on one reaches the
//! clients of the same session on the other, over WebSocket and long-poll,
//! in order and without gaps; clients on both hammering one session get
//! contiguous versions, nothing lost or doubled, an exact audit and the
//! same state; a server that missed the other's commits takes a client's
//! next op rather than refuse it out of order; a listener that lost its connection while the other server
//! committed catches up by version; one of them runs the periodic sweep,
//! and the other once the first is gone. Always on PostgreSQL (fails, never
//! skips, when it is not installed).
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::binary::{spawn_server, Db, Proc};
use common::pg::Cluster;
use common::*;
use serde_json::{json, Value};
use sessile::core::protocol::{decode, Message};

/// Starts the binary on database `url`, sweeping only when asked.
async fn spawn(url: &str) -> Proc {
    spawn_with(url, &["--sweep-every-secs", "0"]).await
}

/// [`spawn`] with other arguments.
async fn spawn_with(url: &str, args: &[&str]) -> Proc {
    spawn_server(Db::Postgres(url), args).await
}

/// A cluster of its own, a database, and two servers on it.
async fn two_servers() -> (Arc<Cluster>, String, Proc, Proc) {
    let cluster = Arc::new(Cluster::start());
    let db = cluster.create_db();
    let url = cluster.url(&db);
    let a = spawn(&url).await;
    let b = spawn(&url).await;
    (cluster, db, a, b)
}

/// A cluster of its own, a database, server A on it, and server B
/// connecting as a role of its own (`fan`), so that its listener can be
/// kept from connecting again while A commits ([`cut_bs_listener`]).
async fn a_and_b_as_its_own_role() -> (Arc<Cluster>, String, Proc, Proc) {
    let cluster = Arc::new(Cluster::start());
    let db = cluster.create_db();
    let a = spawn(&cluster.url(&db)).await;
    cluster.psql(
        &db,
        "CREATE ROLE fan LOGIN; GRANT CREATE ON SCHEMA public TO fan; \
         GRANT ALL ON ALL TABLES IN SCHEMA public TO fan; \
         GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO fan",
    );
    let b = spawn(&format!("postgres://fan@127.0.0.1:{}/{db}", cluster.port)).await;
    (cluster, db, a, b)
}

/// B's listening connection goes, and cannot come back until
/// `ALTER ROLE fan LOGIN`.
fn cut_bs_listener(cluster: &Cluster, db: &str) {
    cluster.psql(db, "ALTER ROLE fan NOLOGIN");
    let killed = cluster.psql(
        db,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'sessile-fanout' AND usename = 'fan'",
    );
    assert_eq!(killed, "1");
}

/// The next patch on `ws`; panics on anything else.
async fn patch(ws: &mut Ws) -> (u64, Value) {
    match ws.recv().await {
        Some(Message::Patch(p)) => (p.version, p.patch),
        other => panic!("expected a patch, got {other:?}"),
    }
}

/// A long-poll for what changed since `since`: the welcome's version and
/// the catch-up's patch versions (`None`: a full state instead).
async fn poll(addr: SocketAddr, s: &Sess, since: u64, wait_ms: u64) -> (u64, Option<Vec<u64>>) {
    let path = format!(
        "/v1/sessions/{}/changes?since={since}&waitMs={wait_ms}",
        s.id
    );
    let a = call(addr, "GET", &path, s, &Value::Null).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let Message::Welcome(w) = decode(&a.body, usize::MAX).unwrap() else {
        panic!("not a welcome: {}", String::from_utf8_lossy(&a.body));
    };
    let versions = match w.catch_up {
        sessile::core::protocol::CatchUp::Patches { patches } => {
            Some(patches.iter().map(|p| p.version).collect())
        }
        sessile::core::protocol::CatchUp::UpToDate => Some(Vec::new()),
        _ => None,
    };
    (w.version, versions)
}

/// Long-polls `addr` from `since` until version `upto`: every version in
/// between is seen once, in order.
async fn poll_until(addr: SocketAddr, s: &Sess, mut since: u64, upto: u64) {
    while since < upto {
        let (version, patches) = poll(addr, s, since, 5_000).await;
        let patches = patches.expect("a gap: the server sent a full state");
        assert!(!patches.is_empty(), "no change within 5 s at {since}");
        let expected: Vec<u64> = (since + 1..=version).collect();
        assert_eq!(patches, expected);
        since = version;
    }
    assert_eq!(since, upto);
}

fn acked(a: &Answer) -> u64 {
    let v = a.json();
    assert_eq!(v["type"], "ack", "{v}");
    v["version"].as_u64().unwrap()
}

async fn stats(addr: SocketAddr) -> Value {
    admin(addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json()
}

#[tokio::test]
async fn a_change_on_one_server_reaches_the_other_servers_clients_in_order() {
    let (_cluster, _db, a, b) = two_servers().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let (ca, cb, cw) = (client_id(1), client_id(2), client_id(3));
    // A WebSocket client and a long-poll on B; the changes go to A.
    let (mut ws_b, welcome) = Ws::hello(b.addr, &s, &cw, 1).await;
    assert!(matches!(welcome, Message::Welcome(_)), "{welcome:?}");
    let long_poll = tokio::spawn({
        let s = s.clone();
        async move { poll_until(b.addr, &s, 1, 21).await }
    });
    for seq in 1..=20u64 {
        let answer = http_op(a.addr, &s, &op(&ca, seq, seq, json!({ "n": seq }), None)).await;
        assert_eq!(acked(&answer), seq + 1);
    }
    for v in 2..=21u64 {
        assert_eq!(patch(&mut ws_b).await, (v, json!({ "n": v - 1 })));
    }
    long_poll.await.unwrap();

    // B, told of A's changes, takes an op on top of them at once, and A's
    // clients get it in turn.
    let (mut ws_a, _) = Ws::hello(a.addr, &s, &ca, 21).await;
    let on_b = http_op(b.addr, &s, &op(&cb, 1, 21, json!({ "b": true }), None)).await;
    assert_eq!(acked(&on_b), 22);
    assert_eq!(patch(&mut ws_a).await, (22, json!({ "b": true })));
    assert_eq!(patch(&mut ws_b).await, (22, json!({ "b": true })));

    // A new expiry set on A reaches B's client as `extended`.
    let extended = call(
        a.addr,
        "POST",
        &format!("/v1/sessions/{}/extend", s.id),
        &s,
        &json!({"seconds": 600}),
    )
    .await;
    let at = extended.json()["expiresAt"].as_u64().unwrap();
    match ws_b.recv().await {
        Some(Message::Extended(x)) => assert_eq!(x.expires_at, at),
        other => panic!("expected extended, got {other:?}"),
    }
    // Both read the same session.
    let (va, vb) = (view(a.addr, &s).await.json(), view(b.addr, &s).await.json());
    assert_eq!(va, vb);
    assert_eq!(va["version"], 22);
    assert_eq!(va["expiresAt"], at);
    assert!(stats(b.addr).await["fanoutNotifications"].as_u64().unwrap() >= 20);

    // Ended on A: B's client gets the clearing patch, then `ended`.
    assert_eq!(end(a.addr, &s).await.status, 200);
    let (v, clear) = patch(&mut ws_b).await;
    assert_eq!((v, clear), (23, json!({ "n": null, "b": null })));
    match ws_b.recv().await {
        Some(Message::Ended(e)) => assert_eq!((e.version, e.code.as_str()), (23, "SESSION_CLOSED")),
        other => panic!("expected ended, got {other:?}"),
    }
}

/// One writer: `ops` ops on key `k{i}` over WebSocket, each on the newest
/// version it has heard of; the versions it was acknowledged at and sent
/// as patches, each once.
async fn writer(addr: SocketAddr, s: Sess, i: u8, ops: u64) -> (Vec<u64>, Vec<u64>) {
    let c = client_id(10 + i);
    let (mut ws, welcome) = Ws::hello(addr, &s, &c, 1).await;
    let Message::Welcome(w) = welcome else {
        panic!("{welcome:?}")
    };
    let mut base = w.version;
    let (mut acks, mut patches) = (Vec::new(), Vec::new());
    for seq in 1..=ops {
        ws.send(&op(&c, seq, base, json!({ format!("k{i}"): seq }), None))
            .await;
        loop {
            match ws.recv().await {
                Some(Message::Ack(a)) => {
                    assert_eq!((a.id.seq, a.duplicate), (seq, false), "{a:?}");
                    acks.push(a.version);
                    base = base.max(a.version);
                    break;
                }
                Some(Message::Patch(p)) => {
                    patches.push(p.version);
                    base = base.max(p.version);
                }
                other => panic!("client {i} seq {seq}: {other:?}"),
            }
        }
    }
    (acks, patches)
}

#[tokio::test]
async fn clients_on_two_servers_hammering_one_session_lose_nothing_and_double_nothing() {
    const WRITERS: u8 = 4;
    const OPS: u64 = 60;
    let (cluster, db, a, b) = two_servers().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let total = u64::from(WRITERS) * OPS;
    let last = 1 + total;
    // Observers, one on each server, read every version.
    let (mut watch_a, _) = Ws::hello(a.addr, &s, &client_id(1), 1).await;
    let (mut watch_b, _) = Ws::hello(b.addr, &s, &client_id(2), 1).await;
    let polled = tokio::spawn({
        let s = s.clone();
        async move { poll_until(b.addr, &s, 1, last).await }
    });
    let mut writers = Vec::new();
    for i in 0..WRITERS {
        let addr = if i % 2 == 0 { a.addr } else { b.addr };
        writers.push(tokio::spawn(writer(addr, s.clone(), i, OPS)));
    }
    let mut all_acks = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        let (acks, patches) = w.await.unwrap();
        assert_eq!(acks.len() as u64, OPS, "writer {i}");
        all_acks.extend(acks.iter().copied());
        // What a writer heard, its acks and others' patches, never twice.
        let heard: Vec<u64> = acks.iter().chain(&patches).copied().collect();
        let unique: BTreeSet<u64> = heard.iter().copied().collect();
        assert_eq!(
            unique.len(),
            heard.len(),
            "writer {i} heard a version twice"
        );
        let mut sorted = patches.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, patches, "writer {i}: patches out of order");
    }
    // Every version acknowledged exactly once: contiguous, none doubled.
    all_acks.sort_unstable();
    assert_eq!(all_acks, (2..=last).collect::<Vec<_>>());
    for (name, ws) in [("A", &mut watch_a), ("B", &mut watch_b)] {
        for v in 2..=last {
            assert_eq!(patch(ws).await.0, v, "observer on {name}");
        }
    }
    polled.await.unwrap();

    // Both servers read the same state, with every writer's last op.
    let (va, vb) = (view(a.addr, &s).await.json(), view(b.addr, &s).await.json());
    assert_eq!(va, vb);
    assert_eq!(va["version"], last);
    let expected: serde_json::Map<String, Value> = (0..WRITERS)
        .map(|i| (format!("k{i}"), json!(OPS)))
        .collect();
    assert_eq!(va["state"], Value::Object(expected));

    // A client's op sent again to the other server is a duplicate there.
    for i in 0..WRITERS {
        let other = if i % 2 == 0 { b.addr } else { a.addr };
        let c = client_id(10 + i);
        let again = http_op(
            other,
            &s,
            &op(&c, OPS, 1, json!({ format!("k{i}"): OPS }), None),
        )
        .await;
        let v = again.json();
        assert_eq!(
            (v["type"].as_str(), v["duplicate"].as_bool()),
            (Some("ack"), Some(true)),
            "{v}"
        );
    }
    assert_eq!(view(a.addr, &s).await.json()["version"], last);
    // How often a batch ran again because the other server had moved the
    // session (shown with --nocapture).
    let moved = |v: Value| v["batchesMoved"].as_u64().unwrap();
    eprintln!(
        "batches run again: {} on A, {} on B",
        moved(stats(a.addr).await),
        moved(stats(b.addr).await)
    );

    // The audit: one entry per op, in version order, each client's
    // sequence 1..=OPS once.
    let rows = cluster.psql(
        &db,
        &format!(
            "SELECT actor || ' ' || seq || ' ' || version FROM audit \
             WHERE session_id = '{}' AND action = 'op' ORDER BY id",
            s.id
        ),
    );
    let mut versions = Vec::new();
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for line in rows.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        seqs.entry(f[0].into())
            .or_default()
            .push(f[1].parse().unwrap());
        versions.push(f[2].parse::<u64>().unwrap());
    }
    assert_eq!(versions, (2..=last).collect::<Vec<_>>());
    assert_eq!(seqs.len(), usize::from(WRITERS));
    for (client, s) in &seqs {
        assert_eq!(s, &(1..=OPS).collect::<Vec<_>>(), "{client}");
    }
}

/// One client's ops over HTTP, sent to either server (as round-robin
/// sends them), while B hears no notification: B's copy of the session
/// trails what A committed, and B reads the stored version rather than
/// refuse the client's next op `OP_OUT_OF_ORDER`.
#[tokio::test]
async fn a_server_that_missed_another_servers_commits_takes_the_clients_next_op() {
    let (cluster, db, a, b) = a_and_b_as_its_own_role().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let c = client_id(7);
    let send = |addr, seq: u64| {
        let (s, c) = (s.clone(), c.clone());
        async move { acked(&http_op(addr, &s, &op(&c, seq, seq, json!({ "n": seq }), None)).await) }
    };
    assert_eq!(send(b.addr, 1).await, 2);
    cut_bs_listener(&cluster, &db);
    assert_eq!(send(a.addr, 2).await, 3);
    assert_eq!(send(a.addr, 3).await, 4);
    assert_eq!(send(b.addr, 4).await, 5);
    cluster.psql(&db, "ALTER ROLE fan LOGIN");
    assert_eq!(view(a.addr, &s).await.json()["state"], json!({ "n": 4 }));
}

#[tokio::test]
async fn a_listener_that_lost_its_connection_catches_up_by_version() {
    let (cluster, db, a, b) = a_and_b_as_its_own_role().await;
    let s = create(a.addr, json!({"state": {}})).await;
    let c = client_id(1);
    let (mut ws_b, _) = Ws::hello(b.addr, &s, &client_id(2), 1).await;
    assert_eq!(
        acked(&http_op(a.addr, &s, &op(&c, 1, 1, json!({"n": 1}), None)).await),
        2
    );
    assert_eq!(patch(&mut ws_b).await.0, 2);

    // B's listening connection goes, and cannot come back for now.
    cut_bs_listener(&cluster, &db);
    for seq in 2..=11u64 {
        let answer = http_op(a.addr, &s, &op(&c, seq, seq, json!({ "n": seq }), None)).await;
        assert_eq!(acked(&answer), seq + 1);
    }
    // Nothing reaches B meanwhile ...
    let quiet = tokio::time::timeout(Duration::from_millis(1500), ws_b.recv()).await;
    assert!(quiet.is_err(), "B heard while not listening: {quiet:?}");
    // ... and once it listens again it reads what it missed, by version:
    // every one, in order, with no further commit to tell it.
    cluster.psql(&db, "ALTER ROLE fan LOGIN");
    for v in 3..=12u64 {
        assert_eq!(patch(&mut ws_b).await, (v, json!({ "n": v - 1 })));
    }
    poll_until(b.addr, &s, 2, 12).await;
    assert!(stats(b.addr).await["fanoutReconnects"].as_u64().unwrap() >= 1);
    assert_eq!(view(b.addr, &s).await.json()["version"], 12);
}

#[tokio::test]
async fn one_server_sweeps_per_interval_and_another_takes_over_when_it_is_gone() {
    let cluster = Arc::new(Cluster::start());
    let db = cluster.create_db();
    let url = cluster.url(&db);
    let sweep = ["--sweep-every-secs", "1"];
    let a = spawn_with(&url, &sweep).await;
    let b = spawn_with(&url, &sweep).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (sa, sb) = (stats(a.addr).await, stats(b.addr).await);
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    assert_ne!(sa["instance"], sb["instance"]);
    // Each server ticked about 4 times (at 0, 1, 2, 3 s); one swept each time.
    let (swept, idle) = if n(&sa, "sweeps") > 0 {
        (&sa, &sb)
    } else {
        (&sb, &sa)
    };
    // (Bounds loose enough for a loaded machine.)
    assert!((2..=5).contains(&n(swept, "sweeps")), "{swept}");
    assert_eq!(n(swept, "sweepsSkipped"), 0, "{swept}");
    assert_eq!(n(idle, "sweeps"), 0, "{idle}");
    assert!(n(idle, "sweepsSkipped") >= 2, "{idle}");
    // Health is per server, with the counts of the whole database.
    create(a.addr, json!({"state": {}})).await;
    for srv in [&a, &b] {
        let h = admin(srv.addr, "GET", "/v1/admin/health", &Value::Null)
            .await
            .json();
        assert_eq!(h["total"], 1, "{h}");
        let st = stats(srv.addr).await;
        assert_eq!(h["instance"], st["instance"]);
        let m = admin(srv.addr, "GET", "/metrics", &Value::Null).await;
        let text = String::from_utf8_lossy(&m.body).to_string();
        let id = st["instance"].as_str().unwrap();
        assert!(
            text.contains(&format!("sessile_instance_info{{instance=\"{id}\"}} 1")),
            "{text}"
        );
    }

    // The sweeping server goes (its connection, and so its lock, with it):
    // the other sweeps from its next tick on.
    let (survivor, gone) = if n(&sa, "sweeps") > 0 { (b, a) } else { (a, b) };
    drop(gone);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = stats(survivor.addr).await;
    assert!(n(&later, "sweeps") >= 1, "{later}");
}
