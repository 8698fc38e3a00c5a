//! A store only this server writes (SQLite, memory) never has a session
//! moved under it by another server: refusing an op `OP_OUT_OF_ORDER`
//! (a client sending `seq = u64::MAX` in a loop) reads nothing from it.
//! Counts the store's reads under the engine's logic, on one thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::json;
use sessile::core::error::SessileError;
use sessile::core::protocol::{Message, Op, OpId};
use sessile_server::sessions::{CreateRequest, Limits, Sessions};
use sessile_server::store::{AuditEntry, Change, Loaded, MemoryStore, Store, Stored, Summary};

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000_000;

/// The in-memory store, counting the sessions it reads.
struct Counting {
    inner: MemoryStore,
    reads: Arc<AtomicU64>,
}

impl Store for Counting {
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.load(id)
    }
    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError> {
        self.inner.scan_key(key, now_ms)
    }
    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError> {
        self.inner.commit(changes)
    }
    fn scan(&mut self) -> Result<Vec<Summary>, SessileError> {
        self.inner.scan()
    }
    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError> {
        self.inner.audit(session, limit)
    }
    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError> {
        self.inner.prune_audit(removed_before_ms, dry_run)
    }
    fn stamps(&mut self, ids: &[String]) -> Result<Vec<(String, Stored)>, SessileError> {
        self.reads.fetch_add(ids.len() as u64, Ordering::Relaxed);
        self.inner.stamps(ids)
    }
}

fn op(seq: u64, base: u64) -> Op {
    Op {
        id: OpId {
            client: CLIENT.into(),
            seq,
        },
        base,
        patch: json!({"n": seq.min(1000)}),
        to: None,
    }
}

#[test]
fn out_of_order_ops_read_nothing_from_a_store_only_this_server_writes() {
    let reads = Arc::new(AtomicU64::new(0));
    let store = Counting {
        inner: MemoryStore::new(),
        reads: reads.clone(),
    };
    let limits = Limits {
        max_state_bytes: 1 << 20,
        max_sessions_per_key: 10,
        heartbeat_ms: 5_000,
        stale_warning_secs: 900,
        stale_secs: 1_200,
        retention_secs: 3_600,
        audit_retention_secs: 7_200,
    };
    let mut s = Sessions::new(Box::new(store), limits);
    let id = s.create(CreateRequest::default(), NOW).unwrap().id;
    s.commit_batch().unwrap();
    assert!(matches!(s.op(&id, op(1, 1), NOW), Ok(Message::Ack(_))));
    s.commit_batch().unwrap();
    let before = reads.load(Ordering::Relaxed);
    for _ in 0..100 {
        let answer = s.op(&id, op(u64::MAX, 2), NOW).unwrap();
        let Message::Reject(r) = answer else {
            panic!("{answer:?}");
        };
        assert_eq!(r.code, "OP_OUT_OF_ORDER");
        s.commit_batch().unwrap();
    }
    assert_eq!(reads.load(Ordering::Relaxed), before, "the store was read");
}
