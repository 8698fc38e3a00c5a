//! The real `sessile-server` binary is killed with SIGKILL in the middle of
//! a burst of ops and started again on the same SQLite file: every op it had
//! acknowledged is there, and re-sending the whole burst applies none twice.
//! With many sessions at once the ops go to the store's journal, and the
//! kill comes before their rows are written: the restart replays them, even
//! after restarts killed while replaying.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::binary::{spawn_server, start_server, Db, Proc};
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sessile::core::protocol::{decode, encode, Message};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const BURST: u64 = 2000;

/// Starts the binary on the SQLite file `db` with `more` arguments.
async fn spawn(db: &Path, more: &[&str]) -> Proc {
    spawn_server(Db::Sqlite(db), more).await
}

fn op_n(c: &str, seq: u64) -> String {
    encode(&op(c, seq, seq, json!({ format!("k{seq}"): seq }), None))
}

/// Says hello, then sends ops 1..=BURST without waiting and collects the
/// acks (seq, duplicate) until the connection ends or all are in; calls
/// `on_ack` with the number of acks so far.
async fn burst(
    addr: SocketAddr,
    s: &Sess,
    c: &str,
    mut on_ack: impl FnMut(usize),
) -> (u64, Vec<(u64, bool)>) {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws"))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    tx.send(WsMessage::Text(encode(&hello_msg(s, c, 0)).into()))
        .await
        .unwrap();
    let Some(Ok(WsMessage::Text(t))) = rx.next().await else {
        panic!("no welcome")
    };
    let Message::Welcome(w) = decode(t.as_bytes(), usize::MAX).unwrap() else {
        panic!("{t}")
    };
    let c2 = c.to_string();
    let sender = tokio::spawn(async move {
        for seq in 1..=BURST {
            if tx
                .send(WsMessage::Text(op_n(&c2, seq).into()))
                .await
                .is_err()
            {
                break;
            }
        }
        tx
    });
    let mut acks = Vec::new();
    while let Some(Ok(WsMessage::Text(t))) = rx.next().await {
        match decode(t.as_bytes(), usize::MAX).unwrap() {
            Message::Ack(a) => acks.push((a.id.seq, a.duplicate)),
            other => panic!("{other:?}"),
        }
        on_ack(acks.len());
        if acks.len() as u64 == BURST {
            break;
        }
    }
    sender.abort();
    (w.applied_seq, acks)
}

#[tokio::test]
async fn acked_ops_survive_sigkill_and_none_is_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessile.db");
    let Proc {
        addr,
        child: mut server,
    } = spawn(&db, &[]).await;
    let s = create(addr, json!({})).await;
    let c = client_id(9);
    let (_, acked) = burst(addr, &s, &c, |n| {
        if n == 300 {
            server.start_kill().unwrap(); // SIGKILL
        }
    })
    .await;
    server.wait().await.unwrap();
    assert!(
        acked.len() >= 300 && (acked.len() as u64) < BURST,
        "killed mid-burst: {} acks",
        acked.len()
    );
    assert!(acked.iter().all(|(_, dup)| !dup));
    let last_acked = acked.iter().map(|(seq, _)| *seq).max().unwrap();

    // Restarted on the same file; the client does not trust the welcome and
    // re-sends the whole burst.
    let Proc {
        addr,
        child: _server,
    } = spawn(&db, &[]).await;
    let (applied, again) = burst(addr, &s, &c, |_| {}).await;
    assert!(
        applied >= last_acked,
        "acked {last_acked}, durable {applied}"
    );
    assert_eq!(again.len() as u64, BURST);
    for (seq, dup) in again {
        assert_eq!(dup, seq <= applied, "seq {seq}");
    }
    let view = view(addr, &s).await.json();
    assert_eq!(
        view["version"].as_u64(),
        Some(BURST + 1),
        "every op applied exactly once"
    );
    assert_eq!(view["state"].as_object().unwrap().len() as u64, BURST);
    let audit = admin(
        addr,
        "GET",
        &format!("/v1/admin/sessions/{}/audit", s.id),
        &Value::Null,
    )
    .await
    .json();
    let mut per_seq: BTreeMap<u64, u32> = BTreeMap::new();
    for e in audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "op")
    {
        *per_seq.entry(e["seq"].as_u64().unwrap()).or_default() += 1;
    }
    assert_eq!(per_seq.len() as u64, BURST);
    assert!(per_seq.values().all(|&n| n == 1), "an op was applied twice");
}

/// Sessions bursting at once: enough for the store to journal their ops.
const MANY: usize = 64;
/// Ops each of them sends.
const EACH: u64 = 200;

/// Ops of one connection in flight at once: a batch carries at most this
/// many of one session however slow the machine, so they fit the journal's
/// 32 versions between snapshots (a burst of all 200 at once can reach a slow
/// debug build as one batch, written as a row and never journaled).
const WINDOW: u64 = 8;

/// Sends ops 1..=EACH of `c` to `s`, at most [`WINDOW`] unacknowledged;
/// the acked sequences, until the connection ends or all are in. Counts
/// each ack in `acks`.
async fn burst_of(addr: SocketAddr, s: Sess, c: String, acks: Arc<AtomicUsize>) -> Vec<u64> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws"))
        .await
        .unwrap();
    let (mut tx, mut rx) = ws.split();
    tx.send(WsMessage::Text(encode(&hello_msg(&s, &c, 0)).into()))
        .await
        .unwrap();
    let Some(Ok(WsMessage::Text(_welcome))) = rx.next().await else {
        panic!("no welcome")
    };
    let (heard, mut hearing) = tokio::sync::watch::channel(0u64);
    let sender = tokio::spawn(async move {
        for seq in 1..=EACH {
            if hearing.wait_for(|n| seq <= n + WINDOW).await.is_err() {
                break;
            }
            if tx
                .send(WsMessage::Text(op_n(&c, seq).into()))
                .await
                .is_err()
            {
                break;
            }
        }
        tx
    });
    let mut acked = Vec::new();
    while let Some(Ok(WsMessage::Text(t))) = rx.next().await {
        match decode(t.as_bytes(), usize::MAX).unwrap() {
            Message::Ack(a) if !a.duplicate => acked.push(a.id.seq),
            other => panic!("{other:?}"),
        }
        acks.fetch_add(1, Ordering::Relaxed);
        heard.send_replace(acked.len() as u64);
        if acked.len() as u64 == EACH {
            break;
        }
    }
    sender.abort();
    acked
}

#[tokio::test]
async fn acked_ops_in_the_journal_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessile.db");
    // 64 connections from one address say hello at once; every batch
    // journals (a slow debug build may not batch 32 sessions together).
    // Each connection is read at 100 ops/s: a batch holds a few ops of a
    // session (more than 32 would write its row, not the journal), and
    // the server cannot run through every burst before the test, reading
    // the acks on a busy machine, has counted a third of them.
    let more = [
        "--ws-unauthenticated-per-ip",
        "0",
        "--journal-from",
        "1",
        "--ws-messages-per-sec",
        "100",
        "--ws-messages-burst",
        "10",
    ];
    let Proc {
        addr,
        child: mut server,
    } = spawn(&db, &more).await;
    let mut sessions = Vec::new();
    for _ in 0..MANY {
        sessions.push(create(addr, json!({})).await);
    }
    let acks = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let c = client_id(i as u8);
            tokio::spawn(burst_of(addr, s.clone(), c, acks.clone()))
        })
        .collect();
    // Kill it once a third of the ops are acknowledged.
    let third = MANY * EACH as usize / 3;
    while acks.load(Ordering::Relaxed) < third {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    server.start_kill().unwrap(); // SIGKILL
    server.wait().await.unwrap();
    let mut last_acked = Vec::new();
    for t in tasks {
        let acked = t.await.unwrap();
        // Acks come in order: the last is the highest.
        last_acked.push(acked.last().copied().unwrap_or(0));
    }
    let total: u64 = last_acked.iter().sum();
    assert!(
        total >= third as u64 && total < MANY as u64 * EACH,
        "killed mid-burst: {total} acks"
    );
    // Acknowledged ops were left in the journal, not in the rows.
    let journaled = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM journal", [], |r| r.get::<_, i64>(0))
        .unwrap();
    assert!(journaled > 0, "the ops never went to the journal");
    // Killed again while it opens the file and replays the journal (or
    // before, or just after: wherever the kill lands), a few times: the
    // replay is one transaction, and the next start does it all the same.
    for after_ms in [0, 10, 30, 60, 100] {
        let mut opening = start_server(Db::Sqlite(&db), &[]);
        tokio::time::sleep(std::time::Duration::from_millis(after_ms)).await;
        opening.start_kill().unwrap(); // SIGKILL
        opening.wait().await.unwrap();
    }

    let Proc {
        addr,
        child: _server,
    } = spawn(&db, &[]).await;
    for (s, acked) in sessions.iter().zip(last_acked) {
        let v = view(addr, s).await.json();
        let version = v["version"].as_u64().unwrap();
        assert!(version > acked, "acked {acked}, durable version {version}");
        // Ops apply in order: exactly ops 1..version - 1 are there.
        let state = v["state"].as_object().unwrap();
        assert_eq!(state.len() as u64, version - 1);
        for seq in 1..version {
            assert_eq!(state[&format!("k{seq}")], json!(seq));
        }
    }
}
