//! Failover: two `sessile-server` processes on one PostgreSQL database (a
//! throwaway cluster, tests/common/pg.rs) behind HAProxy (round-robin,
//! tests/common/proxy.rs). Clients reach them only through the proxy, over
//! WebSocket and over HTTP, each writing a burst of ops to a session of its
//! own (as a page does; clients of one session on both servers are
//! tests/fanout.rs); one server is killed with SIGKILL in the middle of the
//! burst. Its clients connect
//! again through the proxy (which sends them to the other server) and send
//! every op they hold no ack for again, with the same sequence number.
//! Afterwards every acknowledged op is applied exactly once (the audit
//! log), versions are contiguous, nothing acknowledged is lost and nothing
//! is doubled. Always on PostgreSQL and HAProxy (fails, never skips, when
//! either is not installed).
#![cfg(unix)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::binary::{spawn_server, Db, Proc};
use common::pg::Cluster;
use common::proxy::Proxy;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sessile::core::protocol::{decode, encode, Message};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// WebSocket writers, each with its own client id and key.
const WS_WRITERS: u8 = 4;
/// Ops per WebSocket writer.
const WS_OPS: u64 = 200;
/// Ops a WebSocket writer has in flight at most.
const WINDOW: usize = 16;
/// Ops of the HTTP writer (one request at a time).
const HTTP_OPS: u64 = 40;
/// The server is killed once this many ops are acknowledged.
const KILL_AT: usize = 250;
/// How long a client keeps trying to reach a server through the proxy.
const RECONNECT_FOR: Duration = Duration::from_secs(20);

/// Starts the binary on database `url`, sweeping only when asked.
async fn spawn(url: &str) -> Proc {
    spawn_server(Db::Postgres(url), &["--sweep-every-secs", "0"]).await
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An acknowledgement a client heard: seq, version, duplicate.
type Heard = (u64, u64, bool);

/// What one writer heard: its acks and how often it connected again.
struct Outcome {
    sess: Sess,
    client: String,
    acks: Vec<Heard>,
    reconnects: u32,
}

/// Connects through the proxy and says hello; the socket and the welcome's
/// (version, appliedSeq), or `None` when the connection failed on the way.
async fn hello(proxy: SocketAddr, s: &Sess, c: &str, have: u64) -> Option<(Socket, u64, u64)> {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{proxy}/v1/ws"))
        .await
        .ok()?;
    ws.send(WsMessage::Text(encode(&hello_msg(s, c, have)).into()))
        .await
        .ok()?;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(WsMessage::Text(t)))) => match decode(t.as_bytes(), usize::MAX).unwrap() {
                Message::Welcome(w) => return Some((ws, w.version, w.applied_seq)),
                other => panic!("{c}: expected a welcome, got {other:?}"),
            },
            Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
            Err(_) => return None,
        }
    }
}

/// [`hello`] again and again until it works (within [`RECONNECT_FOR`]).
async fn hello_until(proxy: SocketAddr, s: &Sess, c: &str, have: u64) -> (Socket, u64, u64) {
    let deadline = Instant::now() + RECONNECT_FOR;
    loop {
        if let Some(got) = hello(proxy, s, c, have).await {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{c}: no server through the proxy"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The op `seq` of writer `i`: its key `k{i}` set to `seq`.
fn op_of(c: &str, i: u8, seq: u64, base: u64) -> String {
    encode(&op(c, seq, base, json!({ format!("k{i}"): seq }), None))
}

/// One WebSocket writer through the proxy: ops 1..=WS_OPS on key `k{i}`,
/// up to [`WINDOW`] in flight, each on the newest version heard. When the
/// connection is lost it says hello again through the proxy and sends
/// every op it holds no ack for again, with the same sequence number.
async fn ws_writer(
    proxy: SocketAddr,
    s: Sess,
    i: u8,
    mut ws: Socket,
    mut base: u64,
    acked: Arc<AtomicUsize>,
) -> Outcome {
    let c = client_id(10 + i);
    let mut acks = Vec::new();
    let mut in_flight: BTreeSet<u64> = BTreeSet::new();
    let mut next = 1;
    let mut reconnects = 0;
    while next <= WS_OPS || !in_flight.is_empty() {
        let mut lost = false;
        while next <= WS_OPS && in_flight.len() < WINDOW {
            in_flight.insert(next);
            if ws
                .send(WsMessage::Text(op_of(&c, i, next, base).into()))
                .await
                .is_err()
            {
                lost = true;
            }
            next += 1;
            if lost {
                break;
            }
        }
        if !lost {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(WsMessage::Text(t)))) => {
                    match decode(t.as_bytes(), usize::MAX).unwrap() {
                        Message::Ack(a) => {
                            assert!(
                                in_flight.remove(&a.id.seq),
                                "{c}: an ack for seq {} not in flight",
                                a.id.seq
                            );
                            acks.push((a.id.seq, a.version, a.duplicate));
                            acked.fetch_add(1, Ordering::Relaxed);
                            base = base.max(a.version);
                        }
                        Message::Patch(p) => base = base.max(p.version),
                        Message::Ping(_) | Message::Pong(_) => {}
                        other => panic!("{c}: {other:?}"),
                    }
                }
                Ok(Some(Ok(WsMessage::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => lost = true,
                Ok(Some(Ok(_))) => {}
                Err(_) => panic!("{c}: nothing heard within 10 s, {in_flight:?} in flight"),
            }
        }
        if lost {
            reconnects += 1;
            let (again, version, _applied) = hello_until(proxy, &s, &c, base).await;
            ws = again;
            base = version;
            // Every op without an ack, in order and under its own number:
            // those up to `applied` come back as duplicates.
            for &seq in &in_flight {
                if ws
                    .send(WsMessage::Text(op_of(&c, i, seq, base).into()))
                    .await
                    .is_err()
                {
                    break; // lost again: the next read says so
                }
            }
        }
    }
    Outcome {
        sess: s,
        client: c,
        acks,
        reconnects,
    }
}

/// The HTTP writer through the proxy: ops 1..=HTTP_OPS on key `kh`, one
/// request at a time; an answer from the proxy that no server gave (502,
/// 503, 504) sends the same op again.
async fn http_writer(proxy: SocketAddr, s: Sess, acked: Arc<AtomicUsize>) -> Outcome {
    let c = client_id(99);
    let mut acks = Vec::new();
    let mut base = 1;
    let mut retries = 0;
    for seq in 1..=HTTP_OPS {
        let deadline = Instant::now() + RECONNECT_FOR;
        loop {
            let msg = op(&c, seq, base, json!({ "kh": seq }), None);
            let a = http_op(proxy, &s, &msg).await;
            if matches!(a.status, 502..=504) {
                assert!(
                    Instant::now() < deadline,
                    "{c}: no server through the proxy"
                );
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            let v = a.json();
            assert_eq!(v["type"], "ack", "{c} seq {seq}: {} {v}", a.status);
            let version = v["version"].as_u64().unwrap();
            acks.push((seq, version, v["duplicate"] == true));
            acked.fetch_add(1, Ordering::Relaxed);
            base = base.max(version);
            break;
        }
    }
    Outcome {
        sess: s,
        client: c,
        acks,
        reconnects: retries,
    }
}

#[tokio::test]
async fn a_server_killed_mid_burst_loses_no_acknowledged_op_and_doubles_none() {
    let cluster = Cluster::start();
    let db = cluster.create_db();
    let url = cluster.url(&db);
    let Proc {
        addr: a,
        child: mut victim,
    } = spawn(&url).await;
    let Proc {
        addr: b,
        child: _survivor,
    } = spawn(&url).await;
    let proxy = Proxy::start(&[a, b]).await;
    let mut sessions = Vec::new();
    for _ in 0..=WS_WRITERS {
        sessions.push(create(proxy.addr, json!({"state": {}})).await);
    }

    // The writers connect one after the other: round-robin puts half of
    // them on each server.
    let acked = Arc::new(AtomicUsize::new(0));
    let mut sockets = Vec::new();
    for i in 0..WS_WRITERS {
        let c = client_id(10 + i);
        let s = &sessions[usize::from(i)];
        let (ws, version, applied) = hello(proxy.addr, s, &c, 1)
            .await
            .expect("no welcome through the proxy");
        assert_eq!(applied, 0);
        sockets.push((ws, version));
    }
    let mut writers = Vec::new();
    for (i, (ws, version)) in sockets.into_iter().enumerate() {
        writers.push(tokio::spawn(ws_writer(
            proxy.addr,
            sessions[i].clone(),
            i as u8,
            ws,
            version,
            acked.clone(),
        )));
    }
    writers.push(tokio::spawn(http_writer(
        proxy.addr,
        sessions[usize::from(WS_WRITERS)].clone(),
        acked.clone(),
    )));

    // SIGKILL one server in the middle of the burst.
    let total = u64::from(WS_WRITERS) * WS_OPS + HTTP_OPS;
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.load(Ordering::Relaxed) < KILL_AT {
        assert!(Instant::now() < deadline, "the burst did not get going");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    victim.start_kill().unwrap();
    victim.wait().await.unwrap();
    let at_kill = acked.load(Ordering::Relaxed);
    assert!(
        (at_kill as u64) < total,
        "the burst was over before the kill"
    );

    let mut outcomes = Vec::new();
    for w in writers {
        outcomes.push(w.await.unwrap());
    }
    let ws_reconnects: u32 = outcomes[..usize::from(WS_WRITERS)]
        .iter()
        .map(|o| o.reconnects)
        .sum();
    eprintln!(
        "killed at {at_kill} of {total} acks; WebSocket reconnects {ws_reconnects}, \
         HTTP retries {}",
        outcomes[usize::from(WS_WRITERS)].reconnects
    );
    assert!(
        ws_reconnects >= 1,
        "no WebSocket writer was on the killed server"
    );

    let (mut lost, mut doubled) = (0, 0);
    for o in &outcomes {
        let (key, ops) = if o.client == client_id(99) {
            ("kh".to_string(), HTTP_OPS)
        } else {
            let i = o.client.clone();
            (
                format!("k{}", outcomes.iter().position(|x| x.client == i).unwrap()),
                WS_OPS,
            )
        };
        // The audit: one entry per op, in version order without a gap, the
        // client's sequence once each.
        let rows = cluster.psql(
            &db,
            &format!(
                "SELECT actor || ' ' || seq || ' ' || version FROM audit \
                 WHERE session_id = '{}' AND action = 'op' ORDER BY id",
                o.sess.id
            ),
        );
        let mut versions = Vec::new();
        let mut audited: BTreeMap<u64, u64> = BTreeMap::new();
        for line in rows.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            assert_eq!(f[0], o.client);
            let (seq, version) = (f[1].parse().unwrap(), f[2].parse().unwrap());
            versions.push(version);
            if audited.insert(seq, version).is_some() {
                doubled += 1;
            }
        }
        assert_eq!(
            versions,
            (2..=1 + ops).collect::<Vec<_>>(),
            "{key}: versions not contiguous"
        );
        assert_eq!(
            audited.keys().copied().collect::<Vec<_>>(),
            (1..=ops).collect::<Vec<_>>(),
            "{key}: each op applied once"
        );
        // Every op acknowledged; an ack that is not a duplicate at the
        // version the audit has; every acknowledged op applied.
        let mut heard: BTreeMap<u64, u32> = BTreeMap::new();
        for &(seq, version, duplicate) in &o.acks {
            *heard.entry(seq).or_default() += 1;
            match audited.get(&seq) {
                None => lost += 1,
                Some(&at) if !duplicate => assert_eq!(at, version, "{key} seq {seq}"),
                Some(_) => {}
            }
        }
        assert_eq!(
            heard.keys().copied().collect::<Vec<_>>(),
            (1..=ops).collect::<Vec<_>>(),
            "{key}: every op acknowledged"
        );
        assert!(
            heard.values().all(|&n| n == 1),
            "{key}: an op acknowledged twice"
        );

        // The state through the proxy: the last op, at the last version.
        let view = view(proxy.addr, &o.sess).await.json();
        assert_eq!(view["version"], 1 + ops, "{key}");
        assert_eq!(view["state"], json!({ key.clone(): ops }));
    }
    assert_eq!((lost, doubled), (0, 0), "lost, doubled");
}
