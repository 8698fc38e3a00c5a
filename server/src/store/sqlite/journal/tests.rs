//! The journal's storage shape: what a reopened file rebuilds, what the
//! snapshot interval bounds, what erasure leaves.

use std::path::Path;

use rusqlite::Connection;
use serde_json::{json, Value};
use sessile::core::merge_patch;
use sessile::core::protocol::{LoggedPatch, OpId};

use super::{JOURNAL_FROM, SNAPSHOT_EVERY};
use crate::store::sqlite::SqliteStore;
use crate::store::{AuditEntry, Change, SessionRecord, Store, Stored, Summary, PATCH_LOG_LEN};

/// Sessions per batch: enough for the batch to be journaled.
const SESSIONS: usize = JOURNAL_FROM + 8;

fn new_record(i: usize) -> SessionRecord {
    SessionRecord {
        id: format!("{i:032x}"),
        token_hash: vec![i as u8],
        flow: "checkout".into(),
        flow_table: None,
        status: "CART".into(),
        status_since_ms: 1_000,
        key: Some(format!("k{}", i % 3)),
        state: json!({"n": i, "big": "x".repeat(2_000)}),
        version: 1,
        created_at_ms: 1_000,
        updated_at_ms: 1_000,
        expires_at_ms: 10_000_000,
        clients: Default::default(),
    }
}

/// What the engine keeps: each session's record and patch log.
struct Model {
    records: Vec<SessionRecord>,
    recent: Vec<Vec<LoggedPatch>>,
}

impl Model {
    /// Creates the sessions in `store` (one light batch).
    fn create(store: &mut SqliteStore, count: usize) -> Model {
        let records: Vec<SessionRecord> = (0..count).map(new_record).collect();
        let batch: Vec<Change> = records
            .iter()
            .map(|r| Change::Upsert {
                record: r.clone(),
                stored: None,
            })
            .collect();
        store.commit(&batch).unwrap();
        Model {
            recent: vec![Vec::new(); count],
            records,
        }
    }

    /// One batch in which `sessions` each take `ops` ops, as the engine
    /// queues them (rows first, then patches and audit); the step `step`
    /// goes to the state and, every 7th op, a status change.
    fn ops(&mut self, store: &mut SqliteStore, sessions: &[usize], ops: usize, step: u64) {
        let batch = self.batch(sessions, ops, step);
        store.commit(&batch).unwrap();
    }

    /// The changes of [`Model::ops`], not committed.
    fn batch(&mut self, sessions: &[usize], ops: usize, step: u64) -> Vec<Change> {
        let mut rows = Vec::new();
        let mut rest = Vec::new();
        for &i in sessions {
            let stored = Stored::of(&self.records[i]);
            for k in 0..ops {
                let r = &mut self.records[i];
                let seq = r.version; // one client, one op per version
                let now = 2_000 + step * 10 + k as u64;
                let patch = json!({ "step": step, "k": k, "drop": if k % 2 == 0 { Value::Null } else { json!(k) } });
                merge_patch::apply(&mut r.state, &patch);
                r.version += 1;
                r.updated_at_ms = now;
                let status = (r.version % 7 == 0).then(|| {
                    let to = if r.status == "CART" { "PAYING" } else { "CART" };
                    r.status = to.into();
                    r.status_since_ms = now;
                    to.to_string()
                });
                r.clients.record("c1", seq, now, r.version - 1, 1 << 40);
                let logged = LoggedPatch {
                    version: r.version,
                    patch,
                    status,
                    op: Some(OpId {
                        client: "c1".into(),
                        seq,
                    }),
                };
                self.recent[i].push(logged.clone());
                let surplus = self.recent[i].len().saturating_sub(PATCH_LOG_LEN);
                self.recent[i].drain(..surplus);
                rest.push(Change::Patch {
                    session: r.id.clone(),
                    patch: logged,
                });
                rest.push(Change::Audit(AuditEntry {
                    session: r.id.clone(),
                    at_ms: now,
                    actor: "c1".into(),
                    action: "op".into(),
                    keys: vec!["step".into()],
                    version: r.version,
                    seq: Some(seq),
                }));
            }
            rows.push(Change::Upsert {
                record: self.records[i].clone(),
                stored: Some(stored),
            });
        }
        rows.append(&mut rest);
        rows
    }

    /// Every session reads back as the model holds it.
    fn check(&self, store: &mut SqliteStore, when: &str) {
        for (i, r) in self.records.iter().enumerate() {
            let loaded = store.load(&r.id).unwrap().unwrap();
            assert_eq!(&loaded.record, r, "{when}: session {i}");
            assert_eq!(loaded.recent, self.recent[i], "{when}: log of session {i}");
        }
        let mut scanned = store.scan().unwrap();
        scanned.sort_by(|a, b| a.id.cmp(&b.id));
        let mut want: Vec<Summary> = self.records.iter().map(Summary::of).collect();
        want.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(scanned, want, "{when}: scan");
    }

    fn all(&self) -> Vec<usize> {
        (0..self.records.len()).collect()
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    Connection::open(db)
        .unwrap()
        .query_row(sql, [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_reopened_file_rebuilds_every_version_the_rows_do_not_have() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let mut model = Model::create(&mut store, SESSIONS);
    let all = model.all();
    for step in 0..10 {
        model.ops(&mut store, &all, 2, step);
    }
    // 20 versions each, none in the rows yet: they are in the journal only.
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE version = 1"),
        SESSIONS as i64
    );
    assert_eq!(
        count(&db, "SELECT count(*) FROM journal"),
        (SESSIONS * 20) as i64
    );
    model.check(&mut store, "running");
    drop(store);

    let mut store = SqliteStore::open(&db).unwrap();
    model.check(&mut store, "reopened");
    assert_eq!(count(&db, "SELECT count(*) FROM journal"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE version = 21"),
        SESSIONS as i64
    );
    // And it goes on from there.
    model.ops(&mut store, &all, 3, 99);
    model.check(&mut store, "after more ops");
}

#[test]
fn the_snapshot_interval_bounds_what_the_journal_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let mut model = Model::create(&mut store, SESSIONS);
    let all = model.all();
    let behind = "SELECT coalesce(max(j.version - s.version), 0) FROM journal j \
         JOIN sessions s ON s.id = j.session_id";
    for step in 0..60 {
        model.ops(&mut store, &all, 3, step);
        let most = count(&db, behind);
        assert!(
            most <= SNAPSHOT_EVERY as i64,
            "step {step}: a row {most} versions behind"
        );
        let log = count(
            &db,
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM patches GROUP BY session_id)",
        );
        assert!(
            log <= PATCH_LOG_LEN as i64 + 16 + SNAPSHOT_EVERY as i64,
            "patch log {log}"
        );
    }
    // 180 versions each: the rows were written along the way.
    assert!(count(&db, "SELECT min(version) FROM sessions") > 180 - SNAPSHOT_EVERY as i64);
    model.check(&mut store, "after 180 versions");
}

#[test]
fn a_quiet_batch_writes_the_rows_and_empties_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let mut model = Model::create(&mut store, SESSIONS);
    let all = model.all();
    model.ops(&mut store, &all, 2, 0);
    assert!(count(&db, "SELECT count(*) FROM journal") > 0);
    model.ops(&mut store, &[3], 1, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM journal"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM sessions WHERE version = 3"),
        SESSIONS as i64 - 1
    );
    model.check(&mut store, "quiet");
}

#[test]
fn erasing_a_session_removes_its_journal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut store = SqliteStore::open(&db).unwrap();
    let mut model = Model::create(&mut store, SESSIONS);
    let all = model.all();
    model.ops(&mut store, &all, 2, 0);
    // The last two: their journal rows come after the others' first ones.
    let (e, r) = (SESSIONS - 1, SESSIONS - 2);
    let (erased, removed) = (model.records[e].id.clone(), model.records[r].id.clone());
    let rows_of = |id: &str| format!("SELECT count(*) FROM journal WHERE session_id = '{id}'");
    assert_eq!(count(&db, &rows_of(&erased)), 2);
    // In a batch heavy enough to journal the others' ops.
    let others: Vec<usize> = (0..SESSIONS - 2).collect();
    let mut batch = model.batch(&others, 1, 1);
    let mut cleared = model.records[e].clone();
    cleared.state = json!({});
    cleared.version += 1;
    let stored = Stored::of(&model.records[e]);
    batch.insert(
        0,
        Change::Upsert {
            record: cleared.clone(),
            stored: Some(stored),
        },
    );
    batch.extend([
        Change::Patch {
            session: erased.clone(),
            patch: LoggedPatch {
                version: cleared.version,
                patch: json!({"n": null, "big": null, "step": null, "k": null}),
                status: Some("ENDED".into()),
                op: None,
            },
        },
        Change::ErasePatchesBefore {
            session: erased.clone(),
            version: cleared.version,
        },
        Change::Remove(removed.clone()),
    ]);
    store.commit(&batch).unwrap();
    assert!(
        count(&db, "SELECT count(*) FROM journal") > 0,
        "the others' ops are journaled"
    );
    for id in [&erased, &removed] {
        assert_eq!(count(&db, &rows_of(id)), 0, "{id}");
    }
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM patches WHERE session_id = '{erased}'")
        ),
        1
    );
    assert!(store.load(&removed).unwrap().is_none());
    drop(store);
    let mut store = SqliteStore::open(&db).unwrap();
    assert_eq!(store.load(&erased).unwrap().unwrap().record, cleared);
    assert!(store.load(&removed).unwrap().is_none());
}

#[test]
fn a_file_of_the_previous_schema_upgrades() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    {
        let c = Connection::open(&db).unwrap();
        c.execute_batch(super::super::SCHEMA).unwrap();
        for step in &super::super::MIGRATIONS[..2] {
            c.execute_batch(step).unwrap();
        }
        c.pragma_update(None, "user_version", 2).unwrap();
    }
    let mut store = SqliteStore::open(&db).unwrap();
    let mut model = Model::create(&mut store, SESSIONS);
    let all = model.all();
    model.ops(&mut store, &all, 2, 0);
    model.check(&mut store, "upgraded");
    assert_eq!(count(&db, "PRAGMA user_version"), 3);
}
