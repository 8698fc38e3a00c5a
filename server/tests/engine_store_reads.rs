//! What the engine reads from its store, counted under the engine's logic
//! on one thread: a store only this server writes (SQLite, memory) never
//! has a session moved under it by another server, so refusing an op
//! `OP_OUT_OF_ORDER` (a client sending `seq = u64::MAX` in a loop) reads
//! nothing from it; and a commit failed because another server wrote one
//! session forgets that batch's sessions only, and its ops are counted once,
//! when run again and committed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use sessile::core::error::SessileError;
use sessile::core::protocol::{Message, Op, OpId};
use sessile_server::sessions::{CreateRequest, Limits, Sessions};
use sessile_server::store::{AuditEntry, Change, Loaded, MemoryStore, Store, Stored, Summary};

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_700_000_000_000;

/// The in-memory store, counting the sessions it reads; its next commit
/// fails as if another server had written the session named in `moved`.
struct Counting {
    inner: MemoryStore,
    reads: Arc<AtomicU64>,
    moved: Arc<Mutex<Option<String>>>,
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
        if let Some(id) = self.moved.lock().unwrap().as_ref() {
            return Err(SessileError::ServerStorage {
                reason: format!("session {id} changed in the database since this server read it"),
            });
        }
        self.inner.commit(changes)
    }
    fn shared(&self) -> bool {
        true
    }
    fn moved(&self) -> Vec<String> {
        self.moved.lock().unwrap().iter().cloned().collect()
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

fn sessions(store: impl Store + 'static) -> Sessions {
    let limits = Limits::of(&sessile_server::config::Config::default());
    Sessions::new(Box::new(store), limits)
}

/// The in-memory store as one only this server writes.
struct Alone(Counting);

impl Store for Alone {
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError> {
        self.0.load(id)
    }
    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError> {
        self.0.scan_key(key, now_ms)
    }
    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError> {
        self.0.commit(changes)
    }
    fn scan(&mut self) -> Result<Vec<Summary>, SessileError> {
        self.0.scan()
    }
    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError> {
        self.0.audit(session, limit)
    }
    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError> {
        self.0.prune_audit(removed_before_ms, dry_run)
    }
    fn stamps(&mut self, ids: &[String]) -> Result<Vec<(String, Stored)>, SessileError> {
        self.0.stamps(ids)
    }
}

fn counting() -> (Counting, Arc<AtomicU64>, Arc<Mutex<Option<String>>>) {
    let (reads, moved) = (Arc::default(), Arc::default());
    let store = Counting {
        inner: MemoryStore::new(),
        reads: Arc::clone(&reads),
        moved: Arc::clone(&moved),
    };
    (store, reads, moved)
}

#[test]
fn out_of_order_ops_read_nothing_from_a_store_only_this_server_writes() {
    let (store, reads, _) = counting();
    let mut s = sessions(Alone(store));
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

#[test]
fn a_batch_failed_by_another_servers_write_forgets_only_its_sessions_and_counts_once() {
    let (store, reads, moved) = counting();
    let mut s = sessions(store);
    let x = s.create(CreateRequest::default(), NOW).unwrap().id;
    let y = s.create(CreateRequest::default(), NOW).unwrap().id;
    s.commit_batch().unwrap();
    // Y is in memory, untouched by the batch that fails.
    assert!(matches!(s.op(&x, op(1, 1), NOW), Ok(Message::Ack(_))));
    *moved.lock().unwrap() = Some(x.clone());
    let err = s.commit_batch().unwrap_err();
    assert!(sessile_server::store::is_moved(&err), "{err}");
    *moved.lock().unwrap() = None;
    let applied = |s: &Sessions| s.metrics.ops_applied.load(Ordering::Relaxed);
    assert_eq!(applied(&s), 0, "an op whose batch failed was counted");
    // Run again (as the engine does), on X read afresh.
    let before = reads.load(Ordering::Relaxed);
    assert!(matches!(s.op(&x, op(1, 1), NOW), Ok(Message::Ack(_))));
    s.commit_batch().unwrap();
    assert_eq!(applied(&s), 1);
    assert_eq!(reads.load(Ordering::Relaxed), before + 1, "X read again");
    assert!(matches!(s.op(&y, op(1, 1), NOW), Ok(Message::Ack(_))));
    s.commit_batch().unwrap();
    assert_eq!(
        reads.load(Ordering::Relaxed),
        before + 1,
        "Y, not in the failed batch, was forgotten"
    );
    assert_eq!(applied(&s), 2);
}
