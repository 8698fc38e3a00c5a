//! The journal's storage shape: what a reopened file rebuilds, what the
//! snapshot interval bounds, what erasure leaves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde_json::{json, Value};
use sessile::core::merge_patch;
use sessile::core::protocol::{LoggedPatch, OpId};

use super::{JOURNAL_FROM, QUIET_AFTER, SNAPSHOT_EVERY};
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

/// What the engine keeps: each session's record and patch log, and the
/// audit entries it queued for each.
#[derive(Clone)]
struct Model {
    records: Vec<SessionRecord>,
    recent: Vec<Vec<LoggedPatch>>,
    audits: Vec<Vec<AuditEntry>>,
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
            audits: vec![Vec::new(); count],
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
                let entry = AuditEntry {
                    session: r.id.clone(),
                    at_ms: now,
                    actor: "c1".into(),
                    action: "op".into(),
                    keys: vec!["step".into()],
                    version: r.version,
                    seq: Some(seq),
                };
                self.audits[i].push(entry.clone());
                rest.push(Change::Audit(entry));
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
            let audit = store.audit(&r.id, u64::MAX).unwrap();
            assert_eq!(audit, self.audits[i], "{when}: audit of session {i}");
            let newest = store.audit(&r.id, 3).unwrap();
            let surplus = self.audits[i].len().saturating_sub(3);
            assert_eq!(
                newest,
                self.audits[i][surplus..],
                "{when}: newest audit of {i}"
            );
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

/// A store on a file of its own, with [`SESSIONS`] sessions created.
struct Fixture {
    /// Keeps the directory alive.
    _dir: tempfile::TempDir,
    db: PathBuf,
    store: SqliteStore,
    model: Model,
}

impl Fixture {
    /// Every light batch counts as quiet here (see
    /// [`a_light_batch_soon_after_a_heavy_one_writes_no_rows`]).
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("s.db");
        let mut store = SqliteStore::open(&db).unwrap();
        store.journal.set_quiet_after(Duration::ZERO);
        let model = Model::create(&mut store, SESSIONS);
        Fixture {
            _dir: dir,
            db,
            store,
            model,
        }
    }

    /// One batch of `ops` ops on every session.
    fn ops_on_all(&mut self, ops: usize, step: u64) {
        let all = self.model.all();
        self.model.ops(&mut self.store, &all, ops, step);
    }

    /// Opens the file again (replaying its journal), as a restarted server
    /// does, in place of the store.
    fn reopen(&mut self) {
        self.store = SqliteStore::open(&self.db).unwrap();
        self.store.journal.set_quiet_after(Duration::ZERO);
    }

    /// Every session reads back as the model holds it.
    fn check(&mut self, when: &str) {
        self.model.check(&mut self.store, when);
    }

    /// [`Fixture::check`], then the same once the file is opened again.
    fn check_and_reopen(&mut self, when: &str) {
        self.check(when);
        self.reopen();
        self.check(&format!("{when}, reopened"));
    }

    /// The changes of one batch of `ops` ops on every session, not committed.
    fn batch_on_all(&mut self, ops: usize, step: u64) -> Vec<Change> {
        let all = self.model.all();
        self.model.batch(&all, ops, step)
    }

    fn count(&self, sql: &str) -> i64 {
        count(&self.db, sql)
    }

    /// Journal rows of session `i`.
    fn journal_rows_of(&self, i: usize) -> i64 {
        let id = &self.model.records[i].id;
        self.count(&format!(
            "SELECT count(*) FROM journal WHERE session_id = '{id}'"
        ))
    }
}

#[test]
fn a_reopened_file_rebuilds_every_version_the_rows_do_not_have() {
    let mut f = Fixture::new();
    for step in 0..10 {
        f.ops_on_all(2, step);
    }
    // 20 versions each, none in the rows yet: they are in the journal only.
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 1"),
        SESSIONS as i64
    );
    assert_eq!(
        f.count("SELECT count(*) FROM journal"),
        (SESSIONS * 20) as i64
    );
    // Their audit entries too: the table has none of them yet.
    assert_eq!(f.count("SELECT count(*) FROM audit"), 0);
    f.check("running");

    f.reopen();
    f.check("reopened");
    assert_eq!(f.count("SELECT count(*) FROM journal"), 0);
    assert_eq!(
        f.count("SELECT count(*) FROM audit"),
        (SESSIONS * 20) as i64
    );
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 21"),
        SESSIONS as i64
    );
    // And it goes on from there.
    f.ops_on_all(3, 99);
    f.check("after more ops");
}

#[test]
fn a_replay_that_fails_midway_leaves_the_file_to_replay_again() {
    let mut f = Fixture::new();
    for step in 0..3 {
        f.ops_on_all(2, step);
    }
    let journaled = f.count("SELECT count(*) FROM journal");
    assert_eq!(journaled, (SESSIONS * 6) as i64);
    // The replay on open fails after writing some sessions' patches (as a
    // full disk would, or a process killed before its commit).
    let fail = "CREATE TRIGGER fail_midway AFTER INSERT ON patches \
                WHEN (SELECT count(*) FROM patches) > 50 \
                BEGIN SELECT RAISE(ABORT, 'disk full'); END;";
    Connection::open(&f.db)
        .unwrap()
        .execute_batch(fail)
        .unwrap();
    let failed = SqliteStore::open(&f.db).err().expect("the replay fails");
    assert!(failed.to_string().contains("disk full"), "{failed}");
    // Nothing of it stayed: the rows as they were, the journal whole.
    assert_eq!(f.count("SELECT count(*) FROM journal"), journaled);
    assert_eq!(f.count("SELECT count(*) FROM patches"), 0);
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 1"),
        SESSIONS as i64
    );
    Connection::open(&f.db)
        .unwrap()
        .execute_batch("DROP TRIGGER fail_midway")
        .unwrap();
    // Opened again (twice): every version once, none applied twice.
    f.reopen();
    f.check("replayed after a failed replay");
    f.reopen();
    f.check("replayed twice");
    assert_eq!(
        f.count("SELECT count(*) FROM patches"),
        (SESSIONS * 6) as i64
    );
}

#[test]
fn the_snapshot_interval_bounds_what_the_journal_holds() {
    let mut f = Fixture::new();
    let behind = "SELECT coalesce(max(j.version - s.version), 0) FROM journal j \
         JOIN sessions s ON s.id = j.session_id";
    for step in 0..60 {
        f.ops_on_all(3, step);
        let most = f.count(behind);
        assert!(
            most <= SNAPSHOT_EVERY as i64,
            "step {step}: a row {most} versions behind"
        );
        let log = f.count(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM patches GROUP BY session_id)",
        );
        assert!(
            log <= PATCH_LOG_LEN as i64 + 16 + SNAPSHOT_EVERY as i64,
            "patch log {log}"
        );
    }
    // 180 versions each: the rows were written along the way.
    assert!(f.count("SELECT min(version) FROM sessions") > 180 - SNAPSHOT_EVERY as i64);
    f.check("after 180 versions");
}

#[test]
fn a_quiet_batch_writes_the_rows_and_empties_the_journal() {
    let mut f = Fixture::new();
    f.ops_on_all(2, 0);
    assert!(f.count("SELECT count(*) FROM journal") > 0);
    f.model.ops(&mut f.store, &[3], 1, 1);
    assert_eq!(f.count("SELECT count(*) FROM journal"), 0);
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 3"),
        SESSIONS as i64 - 1
    );
    f.check("quiet");
}

#[test]
fn a_light_batch_soon_after_a_heavy_one_writes_no_rows() {
    let mut f = Fixture::new();
    f.store.journal.set_quiet_after(QUIET_AFTER);
    f.ops_on_all(2, 0);
    let journaled = f.count("SELECT count(*) FROM journal");
    assert_eq!(journaled, (SESSIONS * 2) as i64);
    // Under load a batch may be light all the same: it writes its own
    // session's row, and leaves the others in the journal.
    f.model.ops(&mut f.store, &[3], 1, 1);
    assert_eq!(f.count("SELECT count(*) FROM journal"), journaled);
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 1"),
        SESSIONS as i64 - 1
    );
    f.check("light under load");
    // Once the server is quiet, the next light batch writes them.
    std::thread::sleep(QUIET_AFTER + Duration::from_millis(50));
    f.model.ops(&mut f.store, &[4], 1, 2);
    assert_eq!(f.count("SELECT count(*) FROM journal"), 0);
    assert_eq!(
        f.count("SELECT count(*) FROM sessions WHERE version = 1"),
        0
    );
    f.check_and_reopen("quiet");
}

/// The changes that erase session `i`'s state (as the engine ends it):
/// its row cleared at the next version, the patch that says so, and the
/// older patches dropped. The record is the cleared one.
fn erase_changes(model: &Model, i: usize) -> (SessionRecord, Vec<Change>) {
    let id = model.records[i].id.clone();
    let mut cleared = model.records[i].clone();
    cleared.state = json!({});
    cleared.version += 1;
    let changes = vec![
        Change::Upsert {
            record: cleared.clone(),
            stored: Some(Stored::of(&model.records[i])),
        },
        Change::Patch {
            session: id.clone(),
            patch: LoggedPatch {
                version: cleared.version,
                patch: json!({"n": null, "big": null, "step": null, "k": null}),
                status: Some("ENDED".into()),
                op: None,
            },
        },
        Change::ErasePatchesBefore {
            session: id,
            version: cleared.version,
        },
    ];
    (cleared, changes)
}

#[test]
fn erasing_a_session_removes_its_journal_rows() {
    let mut f = Fixture::new();
    f.ops_on_all(2, 0);
    // The last two: their journal rows come after the others' first ones.
    let (e, r) = (SESSIONS - 1, SESSIONS - 2);
    let (erased, removed) = (f.model.records[e].id.clone(), f.model.records[r].id.clone());
    assert_eq!(f.journal_rows_of(e), 2);
    // In a batch heavy enough to journal the others' ops.
    let others: Vec<usize> = (0..SESSIONS - 2).collect();
    let mut batch = f.model.batch(&others, 1, 1);
    let (cleared, erase) = erase_changes(&f.model, e);
    let mut erase = erase.into_iter();
    batch.insert(0, erase.next().unwrap());
    batch.extend(erase);
    batch.push(Change::Remove(removed.clone()));
    f.store.commit(&batch).unwrap();
    assert!(
        f.count("SELECT count(*) FROM journal") > 0,
        "the others' ops are journaled"
    );
    for i in [e, r] {
        assert_eq!(f.journal_rows_of(i), 0, "session {i}");
    }
    assert_eq!(
        f.count(&format!(
            "SELECT count(*) FROM patches WHERE session_id = '{erased}'"
        )),
        1
    );
    assert!(f.store.load(&removed).unwrap().is_none());
    // The removed session's journaled audit entries stay, in the table.
    let audit_of_removed = f.model.audits[r].clone();
    assert_eq!(audit_of_removed.len(), 2);
    assert_eq!(f.store.audit(&removed, 100).unwrap(), audit_of_removed);
    f.reopen();
    assert_eq!(f.store.load(&erased).unwrap().unwrap().record, cleared);
    assert!(f.store.load(&removed).unwrap().is_none());
    assert_eq!(f.store.audit(&removed, 100).unwrap(), audit_of_removed);
}

#[test]
fn an_audit_entry_of_a_session_not_journaled_follows_its_journaled_ones() {
    let mut f = Fixture::new();
    f.ops_on_all(2, 0);
    // A heavy batch: the others take ops; session 0 is only extended, its
    // audit entry queued before its row (so it is not journaled, and its
    // entry must come after the two the journal holds).
    let others: Vec<usize> = (1..SESSIONS).collect();
    let mut batch = f.model.batch(&others, 1, 1);
    let before = Stored::of(&f.model.records[0]);
    let r = &mut f.model.records[0];
    r.expires_at_ms += 60_000;
    let extend = AuditEntry {
        session: r.id.clone(),
        at_ms: 3_000,
        actor: "http".into(),
        action: "extend".into(),
        keys: Vec::new(),
        version: r.version,
        seq: None,
    };
    f.model.audits[0].push(extend.clone());
    batch.insert(0, Change::Audit(extend));
    batch.push(Change::Upsert {
        record: f.model.records[0].clone(),
        stored: Some(before),
    });
    f.store.commit(&batch).unwrap();
    assert!(f.journal_rows_of(1) > 0, "the others' ops are journaled");
    f.check_and_reopen("extended between journaled ops");
    // And once more journaled after it.
    f.ops_on_all(2, 2);
    f.check_and_reopen("journaled again");
}

#[test]
fn erasure_after_a_failed_commit_leaves_no_journal_row() {
    let mut f = Fixture::new();
    f.ops_on_all(2, 0);
    // A heavy batch fails at its last write (its ops were appended): the
    // store's memory is dropped, the file stays as it was.
    let before = f.model.clone();
    let batch = f.batch_on_all(1, 1);
    let last = &f.model.records[SESSIONS - 1].id;
    let fail = format!(
        "CREATE TRIGGER fail_last BEFORE INSERT ON journal WHEN NEW.session_id = '{last}' \
         BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
    );
    Connection::open(&f.db)
        .unwrap()
        .execute_batch(&fail)
        .unwrap();
    assert!(f.store.commit(&batch).is_err());
    Connection::open(&f.db)
        .unwrap()
        .execute_batch("DROP TRIGGER fail_last")
        .unwrap();
    f.model = before;
    // The session ends: its state is erased, and none of it stays in the
    // journal (replayed, then written by the next commit).
    let e = SESSIONS - 1;
    let (cleared, erase) = erase_changes(&f.model, e);
    let Change::Patch { patch, .. } = &erase[1] else {
        unreachable!()
    };
    f.model.recent[e] = vec![patch.clone()];
    f.model.records[e] = cleared;
    f.store.commit(&erase).unwrap();
    assert_eq!(f.journal_rows_of(e), 0);
    f.check_and_reopen("erased after a failed commit");
}

#[test]
fn erasing_patches_without_the_sessions_row_keeps_its_journaled_versions() {
    let mut f = Fixture::new();
    f.ops_on_all(2, 0);
    // The store is told to drop session 0's older patches, and nothing
    // else of it (no row in the batch): its journaled versions stay.
    let id = f.model.records[0].id.clone();
    let version = f.model.records[0].version;
    f.store
        .commit(&[Change::ErasePatchesBefore {
            session: id.clone(),
            version,
        }])
        .unwrap();
    f.model.recent[0].retain(|p| p.version >= version);
    assert_eq!(f.journal_rows_of(0), 0);
    f.check_and_reopen("patches erased");
}

#[test]
fn an_upsert_of_a_removed_session_writes_its_row() {
    let mut f = Fixture::new();
    let id = f.model.records[0].id.clone();
    f.store.commit(&[Change::Remove(id.clone())]).unwrap();
    // The engine, holding it from before, writes it again in a heavy batch.
    f.ops_on_all(2, 0);
    assert_eq!(f.journal_rows_of(0), 0, "no journal without a row");
    f.check_and_reopen("written again");
}

#[test]
fn two_upserts_of_one_session_in_a_batch_keep_the_last() {
    let mut f = Fixture::new();
    let mut batch = f.batch_on_all(2, 0);
    // Session 0 is extended after its ops, in the same batch.
    let before = Stored::of(&f.model.records[0]);
    f.model.records[0].expires_at_ms += 60_000;
    let extended = f.model.records[0].clone();
    assert_eq!(before.version, extended.version);
    batch.push(Change::Upsert {
        record: extended,
        stored: Some(before),
    });
    f.store.commit(&batch).unwrap();
    f.check_and_reopen("extended");
}

#[test]
fn a_patch_after_a_remove_in_the_same_batch_is_not_kept() {
    let mut f = Fixture::new();
    let mut batch = f.batch_on_all(1, 0);
    let id = f.model.records[0].id.clone();
    let late = f.model.recent[0][0].clone();
    batch.push(Change::Remove(id.clone()));
    batch.push(Change::Patch {
        session: id.clone(),
        patch: late,
    });
    f.store.commit(&batch).unwrap();
    assert!(f.store.load(&id).unwrap().is_none());
    let left = format!("SELECT count(*) FROM patches WHERE session_id = '{id}'");
    assert_eq!(f.count(&left), 0, "its state values linger");
    assert_eq!(f.journal_rows_of(0), 0);
}

#[test]
fn a_key_scan_sees_an_expiry_only_the_journal_holds() {
    let mut f = Fixture::new();
    let mut batch = f.batch_on_all(2, 0);
    // Every session extended in the batch of its ops: the rows keep the
    // old expiry until they are written.
    let old = f.model.records[0].expires_at_ms;
    for change in &mut batch {
        if let Change::Upsert { record, .. } = change {
            record.expires_at_ms = old + 60_000;
        }
    }
    for r in &mut f.model.records {
        r.expires_at_ms = old + 60_000;
    }
    f.store.commit(&batch).unwrap();
    assert!(f.journal_rows_of(0) > 0);
    let live = f.store.scan_key("k0", old + 1).unwrap();
    let want = f
        .model
        .records
        .iter()
        .filter(|r| r.key.as_deref() == Some("k0"));
    assert_eq!(live.len(), want.count(), "sessions past their old expiry");
    assert!(f.store.scan_key("k0", old + 60_000).unwrap().is_empty());
    f.check("extended");
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
    assert_eq!(
        count(&db, "PRAGMA user_version"),
        super::super::SCHEMA_VERSION as i64
    );
}

#[test]
fn a_journal_of_the_schema_before_its_audit_column_replays_without_doubling_the_audit() {
    // A file of schema version 3, as the server before it left it when
    // killed: session 0's row at version 1, its ops 2 and 3 in the journal
    // only, and their audit entries already in the audit table.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut record = new_record(0);
    let mut audits = Vec::new();
    {
        let mut c = Connection::open(&db).unwrap();
        c.execute_batch(super::super::SCHEMA).unwrap();
        for step in &super::super::MIGRATIONS[..3] {
            c.execute_batch(step).unwrap();
        }
        c.pragma_update(None, "user_version", 3).unwrap();
        let tx = c.transaction().unwrap();
        let row = Change::Upsert {
            record: record.clone(),
            stored: None,
        };
        super::super::write(&tx, &row).unwrap();
        for version in [2u64, 3] {
            let patch = json!({ "n": version });
            merge_patch::apply(&mut record.state, &patch);
            record.version = version;
            record.updated_at_ms = 1_000 + version;
            // `meta` has not changed since version 3.
            let meta = (version == 3).then(|| super::meta_of(&record));
            tx.execute(
                "INSERT INTO journal (session_id, version, patch, status, client, seq, meta) \
                 VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4)",
                rusqlite::params![record.id, version as i64, patch.to_string(), meta],
            )
            .unwrap();
            let entry = AuditEntry {
                session: record.id.clone(),
                at_ms: record.updated_at_ms,
                actor: "c1".into(),
                action: "op".into(),
                keys: vec!["n".into()],
                version,
                seq: Some(version - 1),
            };
            super::super::write(&tx, &Change::Audit(entry.clone())).unwrap();
            audits.push(entry);
        }
        tx.commit().unwrap();
    }
    let mut store = SqliteStore::open(&db).unwrap();
    assert_eq!(
        count(&db, "PRAGMA user_version"),
        super::super::SCHEMA_VERSION as i64
    );
    assert_eq!(store.load(&record.id).unwrap().unwrap().record, record);
    assert_eq!(store.audit(&record.id, 100).unwrap(), audits);
    assert_eq!(count(&db, "SELECT count(*) FROM journal"), 0);
}
