//! What one op costs the SQLite store, apart from the network and the
//! engine: N sessions with a state of S bytes, then batches of B ops on
//! sessions picked at random, each op as the engine commits it (the row,
//! the patch, the audit entry), one transaction with `synchronous = FULL`
//! per batch. Run with the journal (`--journal-from 32`, the server's
//! default) and without it (`--journal-from 0`: every op writes its row and
//! patch log, as before the journal). Prints one JSON line.
//!
//! `cargo run --release -p sessile-server --example store_bench -- --sessions 10000 --state-bytes 1000 --batch 256 --batches 200 --journal-from 32`

use std::time::Instant;

use serde_json::json;
use sessile::core::protocol::{LoggedPatch, OpId};
use sessile_server::clients::ClientBook;
use sessile_server::store::{AuditEntry, Change, SessionRecord, SqliteStore, Store, Stored};

fn main() {
    let mut sessions = 10_000usize;
    let mut state_bytes = 1_000usize;
    let mut batch = 256usize;
    let mut batches = 200usize;
    let mut journal_from = 32usize;
    let mut it = std::env::args().skip(1);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        let n: usize = v.parse().expect("a number");
        match k.as_str() {
            "--sessions" => sessions = n,
            "--state-bytes" => state_bytes = n,
            "--batch" => batch = n,
            "--batches" => batches = n,
            "--journal-from" => journal_from = n,
            _ => panic!("unknown option {k}"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open_with(&dir.path().join("b.db"), journal_from).unwrap();
    let mut records: Vec<SessionRecord> = (0..sessions)
        .map(|i| SessionRecord {
            id: format!("{:032x}", 0xb0b0_0000_u128 + i as u128),
            token_hash: vec![0; 32],
            flow: "checkout".into(),
            flow_table: None,
            status: "CART".into(),
            status_since_ms: 1,
            key: None,
            state: json!({ "pad": "x".repeat(state_bytes), "step": 0 }),
            version: 1,
            created_at_ms: 1,
            updated_at_ms: 1,
            expires_at_ms: u64::MAX >> 2,
            clients: ClientBook::default(),
        })
        .collect();
    for chunk in records.chunks(1000) {
        let rows: Vec<Change> = chunk
            .iter()
            .map(|r| Change::Upsert {
                record: r.clone(),
                stored: None,
            })
            .collect();
        store.commit(&rows).unwrap();
    }
    // A fixed xorshift: the same sessions for every run.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let (mut ops, mut slowest) = (0usize, 0f64);
    let t0 = Instant::now();
    for b in 0..batches {
        let mut picked: Vec<usize> = (0..batch).map(|_| next() as usize % sessions).collect();
        picked.sort_unstable();
        picked.dedup();
        let mut rows = Vec::new();
        let mut rest = Vec::new();
        for &i in &picked {
            let r = &mut records[i];
            let stored = Stored::of(r);
            let patch = json!({ "step": b, "cart": { "sku": "A-1", "qty": b % 5 + 1 } });
            sessile::core::merge_patch::apply(&mut r.state, &patch);
            r.version += 1;
            r.updated_at_ms += 1;
            let seq = r.version - 1;
            r.clients
                .record("c", seq, r.updated_at_ms, stored.version, 1 << 40);
            rest.push(Change::Patch {
                session: r.id.clone(),
                patch: LoggedPatch {
                    version: r.version,
                    patch,
                    status: None,
                    op: Some(OpId {
                        client: "c".into(),
                        seq,
                    }),
                },
            });
            rest.push(Change::Audit(AuditEntry {
                session: r.id.clone(),
                at_ms: r.updated_at_ms,
                actor: "c".into(),
                action: "op".into(),
                keys: vec!["step".into(), "cart".into()],
                version: r.version,
                seq: Some(seq),
            }));
            rows.push(Change::Upsert {
                record: r.clone(),
                stored: Some(stored),
            });
        }
        rows.append(&mut rest);
        let t = Instant::now();
        store.commit(&rows).unwrap();
        slowest = slowest.max(t.elapsed().as_secs_f64());
        ops += picked.len();
    }
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "sessions": sessions, "stateBytes": state_bytes, "batch": batch,
            "journalFrom": journal_from, "ops": ops,
            "opsPerSecond": (ops as f64 / secs).round(),
            "commitMsMean": ((secs / batches as f64) * 1e4).round() / 10.0,
            "commitMsMax": (slowest * 1e4).round() / 10.0,
        })
    );
}
