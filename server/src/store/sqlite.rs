//! The SQLite store (rusqlite, bundled SQLite): WAL journal with
//! `synchronous = FULL`, so a committed batch survives a killed process and a
//! power cut; one transaction per batch of changes. The schema is the first
//! one plus numbered migrations, its version kept in `PRAGMA user_version`.
//! Under load, ops go to an append-only journal and rows are written every
//! few versions ([`journal`]); reads see the rows plus the journal.

mod journal;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use sessile::core::error::SessileError;
use sessile::core::protocol::{LoggedPatch, OpId};

use crate::clients::ClientBook;

use journal::Journal;
pub use journal::JOURNAL_FROM as DEFAULT_JOURNAL_FROM;

use super::{
    storage_error, AuditEntry, Change, Loaded, SessionRecord, Store, Summary,
    AUDIT_SESSIONS_PER_PRUNE, PATCH_LOG_LEN,
};

/// The first schema (`user_version` 0). Never edited: later changes are
/// [`MIGRATIONS`], so that a database file of any earlier version upgrades.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
  id TEXT PRIMARY KEY, token_hash BLOB NOT NULL, flow TEXT NOT NULL,
  status TEXT NOT NULL, status_since INTEGER NOT NULL, key TEXT,
  state TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  clients TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS sessions_key ON sessions(key);
CREATE TABLE IF NOT EXISTS patches (
  session_id TEXT NOT NULL, version INTEGER NOT NULL, patch TEXT NOT NULL,
  status TEXT, client TEXT, seq INTEGER,
  PRIMARY KEY (session_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit (
  id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, at INTEGER NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, keys TEXT NOT NULL,
  version INTEGER NOT NULL, seq INTEGER
);
CREATE INDEX IF NOT EXISTS audit_session ON audit(session_id, id);
";

/// Schema changes after [`SCHEMA`], in order: step `i` takes a database from
/// `user_version` `i` to `i + 1`. Append only; never edit a released step.
const MIGRATIONS: &[&str] = &[
    // 1: the table of a flow the page declared (NULL for a built-in flow).
    "ALTER TABLE sessions ADD COLUMN flow_table TEXT;",
    // 2: the audit retention finds the removals without reading the whole log.
    "CREATE INDEX IF NOT EXISTS audit_removals ON audit(at) WHERE action = 'remove';",
    // 3: ops appended in commit order, written into the rows every few
    // versions (`journal.rs`); `meta` holds the row's small fields.
    "CREATE TABLE IF NOT EXISTS journal (
       id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, version INTEGER NOT NULL,
       patch TEXT NOT NULL, status TEXT, client TEXT, seq INTEGER, meta TEXT
     );",
    // 4: a journaled session's audit entries, written into the audit table
    // with its row (`journal.rs`).
    "ALTER TABLE journal ADD COLUMN audit TEXT;",
];

/// The schema version this build writes (`PRAGMA user_version`).
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Creates the first schema where there is none and runs the migrations the
/// file has not had, in one transaction. A file from a newer build is
/// refused (`SERVER_STORAGE_ERROR`) rather than written with an older schema.
fn migrate(conn: &mut Connection) -> Result<(), SessileError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(storage_error)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(storage_error)?;
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(storage_error(format!(
            "the database has schema version {version}, newer than this server's \
             {SCHEMA_VERSION}; run a newer sessile-server"
        )));
    }
    if version == 0 {
        tx.execute_batch(SCHEMA).map_err(storage_error)?;
    }
    for step in &MIGRATIONS[version..] {
        tx.execute_batch(step).map_err(storage_error)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION as i64)
        .map_err(storage_error)?;
    tx.commit().map_err(storage_error)
}

/// How often the checkpoint thread copies the WAL into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);
/// WAL frames (pages of about 4 KiB) past which the engine finishes a
/// checkpoint itself, so that the WAL starts again from its beginning
/// (once the checkpoint thread has caught up: [`RESTART_LEFT`]).
///
/// The checkpoint thread's `PASSIVE` checkpoints never finish under steady
/// load: the engine commits more frames while one runs. A WAL that is never
/// wholly copied never restarts, so it grew by about 80 MB/s at 10,000 ops/s,
/// and every append past its end made the kernel allocate and zero new
/// pages of the file: a third of the engine thread's time (perf, `make
/// load`). The engine is the only writer: a checkpoint it runs between two
/// commits copies what the thread's left (a fraction of a period's frames)
/// and completes, and its next commit writes the WAL from the start again,
/// over pages already in the page cache.
///
/// 32,768 frames: a WAL of up to 128 MiB. The engine's checkpoint makes
/// the commits behind it wait (it copies what is left and syncs it), and at
/// 4,096 frames it ran several times a second.
const WAL_RESTART_FRAMES: i64 = 32_768;
/// Frames left to copy under which the checkpoint thread, catching up with
/// a long WAL, asks the engine to finish. The engine's checkpoint copies
/// what is left and syncs the database file while its commits wait: when it
/// was asked without catching up first, that took 15 to 70 ms about once a
/// second, and made the slowest 1% of a `make load` run (see also
/// `checkpoint_loop`: the thread syncs what it copied).
const RESTART_LEFT: i64 = 256;
/// Most `PASSIVE` passes of one catching up (each copies what the engine
/// wrote during the previous one).
const CATCH_UP_PASSES: usize = 8;

/// What the store and its checkpoint thread share.
#[derive(Default)]
struct Checkpoints {
    /// Tells the checkpoint thread to end.
    stop: AtomicBool,
    /// The WAL is past [`WAL_RESTART_FRAMES`]: the engine checkpoints after
    /// its next commit.
    restart_due: AtomicBool,
}

/// Sessions in one SQLite file.
pub struct SqliteStore {
    conn: Connection,
    /// The ops appended but not yet in their sessions' rows.
    journal: Journal,
    /// Shared with the checkpoint thread.
    checkpoints: Arc<Checkpoints>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, its directory
    /// included, journaling the ops of batches that change at least
    /// [`DEFAULT_JOURNAL_FROM`] sessions.
    pub fn open(path: &Path) -> Result<Self, SessileError> {
        Self::open_with(path, DEFAULT_JOURNAL_FROM)
    }

    /// [`SqliteStore::open`], journaling the ops of batches that change at
    /// least `journal_from` sessions (0: never; 1: every batch).
    pub fn open_with(path: &Path, journal_from: usize) -> Result<Self, SessileError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(storage_error)?;
        }
        let mut conn = Connection::open(path).map_err(storage_error)?;
        conn.execute_batch(
            // FULL: every commit is fsynced before any ack. A 16 MiB page
            // cache: every commit's end scans the cache's hash table (pages
            // past the file's end are dropped), which at 64 MiB was a
            // tenth of the engine thread's time; at 8 MiB more pages were
            // read again from the file. Both were slower under `make load`.
            // Checkpoints run on their own thread (see `checkpoint_loop`).
            // secure_delete = FAST: a replaced or deleted value (an erased
            // state, a dropped patch) is zeroed in its page, at no extra I/O.
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -16384; PRAGMA wal_autocheckpoint = 0;
             PRAGMA secure_delete = FAST;",
        )
        .map_err(storage_error)?;
        migrate(&mut conn)?;
        let mut journal = Journal::new(journal_from);
        journal.recover(&mut conn)?;
        let checkpoints = Arc::new(Checkpoints::default());
        let checkpointer = Connection::open(path).map_err(storage_error)?;
        // Only synced, never written (without it the engine's checkpoint
        // syncs all, as SQLite alone does).
        let db = std::fs::OpenOptions::new().write(true).open(path).ok();
        let shared = checkpoints.clone();
        std::thread::Builder::new()
            .name("sessile-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, db, &shared))
            .map_err(storage_error)?;
        Ok(SqliteStore {
            conn,
            journal,
            checkpoints,
        })
    }
}

impl SqliteStore {
    /// Replays the journal into the rows if a failed commit left memory
    /// unsure of the file.
    fn ready(&mut self) -> Result<(), SessileError> {
        if self.journal.is_stale() {
            self.journal.recover(&mut self.conn)?;
        }
        Ok(())
    }

    /// The last [`PATCH_LOG_LEN`] patches of the log table up to `version`.
    fn logged(&mut self, id: &str, version: u64) -> Result<Vec<LoggedPatch>, SessileError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT version, patch, status, client, seq FROM patches \
                 WHERE session_id = ?1 AND version > ?2 ORDER BY version",
            )
            .map_err(storage_error)?;
        let oldest = version as i64 - PATCH_LOG_LEN as i64;
        let rows = st
            .query_map(params![id, oldest], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                ))
            })
            .map_err(storage_error)?;
        let mut recent = Vec::new();
        for row in rows {
            let (version, patch, status, client, seq) = row.map_err(storage_error)?;
            recent.push(LoggedPatch {
                version,
                patch: json(&patch)?,
                status,
                op: client.zip(seq).map(|(client, seq)| OpId {
                    client,
                    seq: seq as u64,
                }),
            });
        }
        Ok(recent)
    }

    /// `summaries` with the sessions the journal holds changes of as they
    /// are now.
    fn current(&self, mut summaries: Vec<Summary>) -> Vec<Summary> {
        for s in &mut summaries {
            if let Some((record, _)) = self.journal.pending(&s.id) {
                *s = Summary::of(record);
            }
        }
        summaries
    }
}

/// The session row `id` as stored (state and clients read).
fn read_row(conn: &Connection, id: &str) -> Result<Option<SessionRecord>, SessileError> {
    let found = conn
        .prepare_cached(
            "SELECT id, token_hash, flow, status, status_since, key, state, version, \
             created_at, updated_at, expires_at, clients, flow_table FROM sessions WHERE id = ?1",
        )
        .and_then(|mut st| st.query_row([id], record_from).optional())
        .map_err(storage_error)?;
    let Some((mut record, state, clients)) = found else {
        return Ok(None);
    };
    record.state = json(&state)?;
    record.clients = ClientBook::from_json(&clients, record.version, record.updated_at_ms)?;
    Ok(Some(record))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.checkpoints.stop.store(true, Ordering::Relaxed);
    }
}

/// A `PASSIVE` checkpoint (it never blocks the writer): the WAL's frames
/// then and how many of them are in the database file, or `None` when it
/// failed (a later one catches up).
fn checkpoint(conn: &Connection) -> Option<(i64, i64)> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    })
    .ok()
}

/// Copies the WAL into the database file every [`CHECKPOINT_EVERY`]
/// without blocking the writer, syncs what it copied (`db`: the database
/// file), and asks the engine to finish the copy when the WAL is long (see
/// [`WAL_RESTART_FRAMES`]), until the store is dropped.
///
/// SQLite syncs the database file only at a checkpoint that copies the
/// whole WAL, which under load only the engine's does: it then flushed
/// every page the thread had copied since the last one (about 120 MB at
/// 10,000 ops/s), 35 to 50 ms once a second while the commits behind it
/// waited (`perf trace`, `make load`): the slowest 1% of the run. Synced
/// here after each pass, the engine's sync flushes only what it copied.
fn checkpoint_loop(conn: Connection, db: Option<std::fs::File>, shared: &Checkpoints) {
    let mut synced = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(CHECKPOINT_EVERY);
        let mut last = checkpoint(&conn);
        sync_copied(db.as_ref(), last, &mut synced);
        if last.is_none_or(|(frames, _)| frames < WAL_RESTART_FRAMES) {
            continue;
        }
        for _ in 0..CATCH_UP_PASSES {
            match last {
                Some((frames, copied)) if frames - copied <= RESTART_LEFT => {
                    shared.restart_due.store(true, Ordering::Relaxed);
                    break;
                }
                Some(_) => {
                    last = checkpoint(&conn);
                    sync_copied(db.as_ref(), last, &mut synced);
                }
                None => break,
            }
        }
    }
}

/// Syncs the database file when a checkpoint copied frames since the last
/// sync (`synced`: the copied count then; a restarted WAL counts from 0).
/// A sync that fails is left to SQLite's own, at the engine's checkpoint.
fn sync_copied(db: Option<&std::fs::File>, checkpoint: Option<(i64, i64)>, synced: &mut i64) {
    let (Some(db), Some((_, copied))) = (db, checkpoint) else {
        return;
    };
    if copied != *synced && db.sync_data().is_ok() {
        *synced = copied;
    }
}

fn record_from(row: &rusqlite::Row<'_>) -> rusqlite::Result<(SessionRecord, String, String)> {
    let state: String = row.get(6)?;
    Ok((
        SessionRecord {
            id: row.get(0)?,
            token_hash: row.get(1)?,
            flow: row.get(2)?,
            status: row.get(3)?,
            status_since_ms: row.get::<_, i64>(4)? as u64,
            key: row.get(5)?,
            state: serde_json::Value::Null,
            version: row.get::<_, i64>(7)? as u64,
            created_at_ms: row.get::<_, i64>(8)? as u64,
            updated_at_ms: row.get::<_, i64>(9)? as u64,
            expires_at_ms: row.get::<_, i64>(10)? as u64,
            clients: Default::default(),
            flow_table: row.get(12)?,
        },
        state,
        row.get(11)?,
    ))
}

/// The columns [`summary_from`] reads.
/// `length` of TEXT counts characters: the casts make it count UTF-8 bytes,
/// as [`Summary::of`] does.
const SUMMARY_COLUMNS: &str = "SELECT id, flow, status, status_since, updated_at, expires_at, \
     length(CAST(state AS BLOB)), flow_table, length(CAST(clients AS BLOB))";

fn summary_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<Summary> {
    Ok(Summary {
        id: r.get(0)?,
        flow: r.get(1)?,
        status: r.get(2)?,
        status_since_ms: r.get::<_, i64>(3)? as u64,
        updated_at_ms: r.get::<_, i64>(4)? as u64,
        expires_at_ms: r.get::<_, i64>(5)? as u64,
        state_bytes: r.get::<_, i64>(6)? as u64,
        flow_table: r.get(7)?,
        clients_bytes: r.get::<_, i64>(8)? as u64,
    })
}

fn json(text: &str) -> Result<serde_json::Value, SessileError> {
    serde_json::from_str(text).map_err(storage_error)
}

impl Store for SqliteStore {
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError> {
        self.ready()?;
        if let Some((record, unwritten)) = self.journal.pending(id) {
            let (record, unwritten) = (record.clone(), unwritten.to_vec());
            let first = unwritten.first().map_or(record.version, |p| p.version - 1);
            let mut recent = self.logged(id, first)?;
            recent.retain(|p| p.version <= first);
            recent.extend(unwritten);
            let surplus = recent.len().saturating_sub(PATCH_LOG_LEN);
            recent.drain(..surplus);
            return Ok(Some(Loaded {
                record,
                recent,
                rev: 0,
            }));
        }
        let Some(record) = read_row(&self.conn, id)? else {
            return Ok(None);
        };
        let recent = self.logged(id, record.version)?;
        Ok(Some(Loaded {
            record,
            recent,
            rev: 0,
        }))
    }

    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError> {
        self.ready()?;
        // Every row of the key, its expiry read as it is now: the journal
        // may hold a later one than the row.
        let mut st = self
            .conn
            .prepare_cached(&format!("{SUMMARY_COLUMNS} FROM sessions WHERE key = ?1"))
            .map_err(storage_error)?;
        let rows = st
            .query_map(params![key], summary_from)
            .and_then(|rows| rows.collect())
            .map_err(storage_error)?;
        drop(st);
        let mut live = self.current(rows);
        live.retain(|s| s.expires_at_ms > now_ms);
        Ok(live)
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError> {
        if changes.is_empty() {
            return Ok(());
        }
        self.ready()?;
        let tx = self.conn.transaction().map_err(storage_error)?;
        let written = self
            .journal
            .write_batch(&tx, changes)
            .and_then(|()| tx.commit());
        if written.is_err() {
            self.journal.lost();
        } else if self.checkpoints.restart_due.swap(false, Ordering::Relaxed) {
            // Committed already: a checkpoint that fails costs WAL length,
            // never the batch.
            checkpoint(&self.conn);
        }
        written.map_err(storage_error)
    }

    fn scan(&mut self) -> Result<Vec<Summary>, SessileError> {
        self.ready()?;
        let mut st = self
            .conn
            .prepare_cached(&format!("{SUMMARY_COLUMNS} FROM sessions"))
            .map_err(storage_error)?;
        let rows = st
            .query_map([], summary_from)
            .and_then(|rows| rows.collect())
            .map_err(storage_error)?;
        drop(st);
        Ok(self.current(rows))
    }

    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError> {
        self.ready()?;
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT session_id, at, actor, action, keys, version, seq FROM audit \
                 WHERE session_id = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(storage_error)?;
        let rows = st
            .query_map(params![session, limit as i64], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(storage_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for (session, at, actor, action, keys, version, seq) in rows.into_iter().rev() {
            out.push(AuditEntry {
                session,
                at_ms: at as u64,
                actor,
                action,
                keys: serde_json::from_str(&keys).map_err(storage_error)?,
                version: version as u64,
                seq: seq.map(|s| s as u64),
            });
        }
        // The journal's entries of the session are newer than the table's:
        // any other entry of it writes them first.
        out.extend(self.journal.audits(session).iter().cloned());
        let surplus = out
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(usize::MAX));
        out.drain(..surplus);
        Ok(out)
    }

    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError> {
        let cutoff = i64::try_from(removed_before_ms).unwrap_or(i64::MAX);
        let limit = AUDIT_SESSIONS_PER_PRUNE as i64;
        let rows = if dry_run {
            let sql = format!("SELECT COUNT(*) FROM audit WHERE session_id IN ({REMOVED_BEFORE})");
            self.conn
                .query_row(&sql, params![cutoff, limit], |r| r.get::<_, i64>(0))
                .map_err(storage_error)? as usize
        } else {
            let sql = format!("DELETE FROM audit WHERE session_id IN ({REMOVED_BEFORE})");
            self.conn
                .execute(&sql, params![cutoff, limit])
                .map_err(storage_error)?
        };
        Ok(rows as u64)
    }
}

/// The removed sessions whose audit is due, as SQL over `?1` (the cutoff).
const REMOVED_BEFORE: &str = "SELECT session_id FROM audit \
     WHERE action = 'remove' AND at <= ?1 LIMIT ?2";

fn write(tx: &rusqlite::Transaction<'_>, change: &Change) -> rusqlite::Result<()> {
    match change {
        Change::Upsert { record: s, .. } => {
            tx.prepare_cached(
                "INSERT INTO sessions (id, token_hash, flow, status, status_since, \
                 key, state, version, created_at, updated_at, expires_at, clients, flow_table) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                 ON CONFLICT(id) DO UPDATE SET status = ?4, status_since = ?5, state = ?7, \
                 version = ?8, updated_at = ?10, expires_at = ?11, clients = ?12",
            )?
            .execute(params![
                s.id,
                s.token_hash,
                s.flow,
                s.status,
                s.status_since_ms as i64,
                s.key,
                s.state.to_string(),
                s.version as i64,
                s.created_at_ms as i64,
                s.updated_at_ms as i64,
                s.expires_at_ms as i64,
                s.clients.to_json(),
                s.flow_table,
            ])?;
        }
        Change::Patch { session, patch } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO patches (session_id, version, patch, status, client, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                session,
                patch.version as i64,
                patch.patch.to_string(),
                patch.status,
                patch.op.as_ref().map(|o| o.client.as_str()),
                patch.op.as_ref().map(|o| o.seq as i64),
            ])?;
            // Trim every 16 versions: the log holds 64 to 80 patches, and
            // most commits touch one page of it less.
            if patch.version % 16 == 0 {
                tx.prepare_cached("DELETE FROM patches WHERE session_id = ?1 AND version <= ?2")?
                    .execute(params![
                        session,
                        patch.version as i64 - PATCH_LOG_LEN as i64
                    ])?;
            }
        }
        Change::Audit(a) => {
            tx.prepare_cached(
                "INSERT INTO audit (session_id, at, actor, action, keys, version, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                a.session,
                a.at_ms as i64,
                a.actor,
                a.action,
                serde_json::to_string(&a.keys).unwrap_or_else(|_| "[]".into()),
                a.version as i64,
                a.seq.map(|s| s as i64),
            ])?;
        }
        Change::ErasePatchesBefore { session, version } => {
            tx.prepare_cached("DELETE FROM patches WHERE session_id = ?1 AND version < ?2")?
                .execute(params![session, *version as i64])?;
        }
        Change::Remove(id) => {
            for table in [
                "DELETE FROM sessions WHERE id = ?1",
                "DELETE FROM patches WHERE session_id = ?1",
            ] {
                tx.prepare_cached(table)?.execute([id])?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summaries_count_bytes_not_characters() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("s.db")).unwrap();
        let record = SessionRecord {
            id: "s".into(),
            token_hash: vec![1, 2],
            flow: "checkout".into(),
            flow_table: None,
            status: "CART".into(),
            status_since_ms: 5,
            key: None,
            // 2, 3 and 4 bytes per character in UTF-8.
            state: json!({"name": "Zoë €uro 🛒"}),
            version: 1,
            created_at_ms: 5,
            updated_at_ms: 5,
            expires_at_ms: 1_000,
            clients: Default::default(),
        };
        store
            .commit(&[Change::Upsert {
                record: record.clone(),
                stored: None,
            }])
            .unwrap();
        let scanned = store.scan().unwrap();
        assert_eq!(scanned, vec![Summary::of(&record)]);
        assert_eq!(
            scanned[0].state_bytes,
            r#"{"name":"Zoë €uro 🛒"}"#.len() as u64
        );
    }
}
