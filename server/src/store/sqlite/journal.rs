//! The SQLite store's journal: under load, an op's change is appended to
//! one table in commit order (its patch, the client that sent it, and the
//! row's small fields), and the session's row (the whole state) and its
//! patch log are written only every [`SNAPSHOT_EVERY`] versions, when the
//! session's first unwritten change falls [`JOURNAL_WINDOW`] rows behind
//! (a few per batch from half of that: [`FOLD_PACE`]), or when the server
//! is quiet again (a batch of fewer than [`JOURNAL_FROM`] sessions,
//! [`QUIET_AFTER`] or more after the last batch that journaled, writes up
//! to [`FOLD_QUIET`] of them). Appends fill the table's last pages, so one
//! op costs about the same whatever the state's size and however many
//! sessions there are; a random page of the sessions table and of the patch
//! log is written once per snapshot instead of once per op.
//!
//! Reading a session is its row plus the journal's later changes: the
//! journal keeps, in memory, each session it holds changes of (the record
//! as the engine last committed it and its unwritten patches). Opening the
//! file (and recovering from a failed commit) replays the table instead:
//! each session's row, then its journal rows of later versions in order,
//! written back as rows and patch log, the journal emptied, all in one
//! transaction (a replay cut short leaves the file to replay again).
//!
//! A session's ops are journaled only from the version its row holds (or
//! the journal, when it holds changes of it): the replay goes on from the
//! row, so a session without one (removed) is written as a row instead.
//! Erasure deletes a session's journal rows (memory lists them), after
//! writing its row when the journal held changes of it.
//!
//! A journaled session's audit entries of the batch ride on its last
//! journal row of the batch (the one with `meta`) and are written into the
//! audit table with its row (an entry there costs a page of the
//! `audit_session` index at a random place: one per op otherwise). Memory
//! keeps them for reads, after the table's: an entry of the session that
//! is not journaled (another action, a light batch) writes its row first,
//! and a removal writes them before it forgets the session. The replay
//! writes those of the versions it writes.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};
use sessile::core::error::SessileError;
use sessile::core::merge_patch;
use sessile::core::protocol::{LoggedPatch, OpId};

use crate::clients::ClientBook;
use crate::store::{storage_error, AuditEntry, Change, SessionRecord};

use super::{read_row, write};

/// Most versions of one session the journal holds before its row is written.
pub const SNAPSHOT_EVERY: usize = 32;
/// A batch that changes at least this many sessions journals their ops
/// (the default of `--journal-from`);
/// a smaller one writes their rows (a quiet server: the fsync costs more
/// than the pages) and every session the journal still holds.
pub const JOURNAL_FROM: usize = 32;
/// Most sessions a light batch writes the rows of (the rest follow in the
/// next ones): the first quiet commit after a burst stays short.
pub const FOLD_QUIET: usize = 1024;
/// A heavy batch also writes the rows of up to one session per this many
/// ops it journals, oldest first, among those whose first unwritten change
/// is half the window old or more.
///
/// Sessions that started together (a sale, a restart) all come to the
/// window's end within a second or so, and writing thousands of rows in
/// those few commits made their acks wait: at 10,000 sessions, the
/// slowest 1% of a `make load` run. Paced from half the window, the same
/// rows are written over several seconds, and the next round is spread
/// wider still.
pub const FOLD_PACE: usize = 8;
/// How long after the last heavy batch a light one counts as quiet.
///
/// Under steady load some batches are light all the same (the engine's
/// queue was short when it took them): at 10,000 ops/s about four a
/// second, and each wrote 1,024 rows, a quarter of the engine thread's
/// time and twice its commit's length (perf, `make load`).
pub const QUIET_AFTER: Duration = Duration::from_secs(1);
/// A session whose first unwritten change is this many journal rows old is
/// written at the next commit; the journal then drops the rows before the
/// oldest change still unwritten. Bounds the table, and what opening replays.
pub const JOURNAL_WINDOW: i64 = 262_144;

/// A session with changes in the journal that its row does not have yet.
struct Pending {
    /// The row as the engine last committed it.
    record: SessionRecord,
    /// Its patches after the row's version, oldest first.
    patches: Vec<LoggedPatch>,
    /// Its oldest journal row not yet in its row.
    first_row: i64,
    /// Its audit entries of those patches' batches, oldest first (not yet
    /// in the audit table).
    audits: Vec<AuditEntry>,
}

/// The journal's memory of the table.
#[derive(Default)]
pub(super) struct Journal {
    /// A batch changing this many sessions journals their ops (0: none does).
    from: usize,
    pending: HashMap<String, Pending>,
    /// Pending sessions by their oldest unwritten journal row.
    by_age: BTreeMap<i64, String>,
    /// The journal rows in the table, oldest first, with their session.
    rows: VecDeque<(i64, String)>,
    /// The rows in the table of each session (for erasure), oldest first.
    /// Exact: every row is appended, and deleted, through this memory, and
    /// when a commit fails the table is replayed and emptied before the
    /// next use (an index of the table by session would cost every append
    /// a write at a random place: a fifth of the store's ops/s).
    rows_of: HashMap<String, VecDeque<i64>>,
    /// The newest row written.
    tail: i64,
    /// Memory may no longer match the file (a commit failed): replay the
    /// table before the next use.
    stale: bool,
    /// When the last heavy batch was written.
    last_heavy: Option<Instant>,
    /// A light batch this long after the last heavy one writes rows
    /// ([`QUIET_AFTER`]; tests shorten it).
    quiet_after: Duration,
}

impl Journal {
    /// Journals the ops of batches that change at least `from` sessions.
    pub(super) fn new(from: usize) -> Journal {
        Journal {
            from,
            quiet_after: QUIET_AFTER,
            ..Journal::default()
        }
    }

    /// An empty memory with the same settings.
    fn fresh(&self) -> Journal {
        Journal {
            quiet_after: self.quiet_after,
            ..Journal::new(self.from)
        }
    }

    /// Counts a light batch as quiet `after` the last heavy one.
    #[cfg(test)]
    pub(super) fn set_quiet_after(&mut self, after: Duration) {
        self.quiet_after = after;
    }

    /// Whether memory must be rebuilt from the file first.
    pub(super) fn is_stale(&self) -> bool {
        self.stale
    }

    /// The record of a session the journal holds changes of, with its
    /// unwritten patches.
    pub(super) fn pending(&self, id: &str) -> Option<(&SessionRecord, &[LoggedPatch])> {
        self.pending
            .get(id)
            .map(|p| (&p.record, p.patches.as_slice()))
    }

    /// The audit entries of a session the journal holds, oldest first:
    /// newer than any of it in the audit table.
    pub(super) fn audits(&self, id: &str) -> &[AuditEntry] {
        self.pending.get(id).map_or(&[], |p| p.audits.as_slice())
    }

    /// Writes a batch in `tx`: see the module's text. On error the caller
    /// rolls back and must call [`Journal::lost`].
    pub(super) fn write_batch(
        &mut self,
        tx: &Transaction<'_>,
        changes: &[Change],
    ) -> rusqlite::Result<()> {
        let upserts = changes
            .iter()
            .filter(|c| matches!(c, Change::Upsert { .. }))
            .count();
        let heavy = self.from > 0 && upserts >= self.from;
        let quiet = !heavy
            && self
                .last_heavy
                .is_none_or(|at| at.elapsed() >= self.quiet_after);
        if heavy {
            self.last_heavy = Some(Instant::now());
        }
        let journaled = if heavy {
            self.journaled(tx, changes)?
        } else {
            HashMap::new()
        };
        // The audit entries of the journaled sessions, by session, in order:
        // on each one's last journal row of the batch.
        let mut audits: HashMap<&str, Vec<&AuditEntry>> = HashMap::new();
        for change in changes {
            if let Change::Audit(a) = change {
                if journaled.contains_key(a.session.as_str()) {
                    audits.entry(&a.session).or_default().push(a);
                }
            }
        }
        // Sessions this batch removed and has not written again since: a
        // later patch of one is dropped (no row, nothing would delete it).
        let mut removed: HashSet<&str> = HashSet::new();
        let mut appended = 0;
        for change in changes {
            match change {
                Change::Upsert { record, .. } if journaled.contains_key(record.id.as_str()) => {}
                Change::Upsert { record, .. } => {
                    // Its row is this change; its journaled patches go to the log.
                    removed.remove(record.id.as_str());
                    self.fold(tx, &record.id, false)?;
                    write(tx, change)?;
                }
                Change::Patch { session, .. } if removed.contains(session.as_str()) => {}
                Change::Patch { session, patch } => match journaled.get(session.as_str()) {
                    Some(record) => {
                        let audits = audits.get(session.as_str()).map_or(&[][..], Vec::as_slice);
                        self.append(tx, record, patch, audits)?;
                        appended += 1;
                    }
                    None => write(tx, change)?,
                },
                Change::ErasePatchesBefore { session: id, .. } => {
                    // Its row holds what the journal did (written here
                    // unless its upsert came first): none of it stays there.
                    self.fold(tx, id, true)?;
                    self.erase(tx, id)?;
                    write(tx, change)?;
                }
                Change::Remove(id) => {
                    // The audit outlives the session; its patches do not.
                    if let Some(p) = self.forget(id) {
                        write_audits(tx, p.audits)?;
                    }
                    self.erase(tx, id)?;
                    removed.insert(id);
                    write(tx, change)?;
                }
                Change::Audit(a) if journaled.contains_key(a.session.as_str()) => {}
                Change::Audit(a) => {
                    // After the session's entries the journal holds.
                    self.fold(tx, &a.session, true)?;
                    write(tx, change)?;
                }
            }
        }
        for (id, record) in journaled {
            if let Some(p) = self.pending.get_mut(id) {
                p.record = record.clone();
            }
        }
        self.settle(tx, quiet, appended / FOLD_PACE)
    }

    /// The sessions of a heavy batch whose ops go to the journal, with the
    /// record of each: those with one upsert in the batch, from the version
    /// the journal (or, for a session it does not hold, the row) has, and
    /// the patches up to the upsert's version, neither erased nor removed,
    /// within [`SNAPSHOT_EVERY`].
    fn journaled<'c>(
        &self,
        tx: &Transaction<'_>,
        changes: &'c [Change],
    ) -> rusqlite::Result<HashMap<&'c str, &'c SessionRecord>> {
        let mut patches: HashMap<&str, Vec<&LoggedPatch>> = HashMap::new();
        let mut upserts: HashMap<&str, usize> = HashMap::new();
        let mut erased: HashSet<&str> = HashSet::new();
        for change in changes {
            match change {
                Change::Upsert { record, .. } => *upserts.entry(&record.id).or_default() += 1,
                Change::Patch { session, patch } => patches.entry(session).or_default().push(patch),
                Change::ErasePatchesBefore { session: id, .. } | Change::Remove(id) => {
                    erased.insert(id);
                }
                Change::Audit(_) => {}
            }
        }
        let mut journaled = HashMap::new();
        for change in changes {
            let Change::Upsert {
                record,
                stored: Some(stored),
            } = change
            else {
                continue;
            };
            let stored = stored.version;
            let id = record.id.as_str();
            let Some(mine) = patches.get(id) else {
                continue;
            };
            let held = self.pending.get(id).map_or(0, |p| p.patches.len());
            let contiguous = mine
                .iter()
                .enumerate()
                .all(|(i, p)| p.version == stored + 1 + i as u64);
            if !contiguous
                || stored + mine.len() as u64 != record.version
                || held + mine.len() > SNAPSHOT_EVERY
                || erased.contains(id)
                || upserts[id] != 1
            {
                continue;
            }
            let in_step = match self.pending.get(id) {
                Some(p) => p.record.version == stored,
                // A replay goes on from the row: it must be there, at that
                // version (a session removed since has none).
                None => row_version(tx, id)? == Some(stored),
            };
            if in_step {
                journaled.insert(id, record);
            }
        }
        Ok(journaled)
    }

    /// Appends one patch of a journaled session; its last patch of the
    /// batch carries the row's small fields and the session's `audits` of
    /// the batch.
    fn append(
        &mut self,
        tx: &Transaction<'_>,
        record: &SessionRecord,
        patch: &LoggedPatch,
        audits: &[&AuditEntry],
    ) -> rusqlite::Result<()> {
        let last = patch.version == record.version;
        let meta = last.then(|| meta_of(record));
        let audits = if last { audits } else { &[] };
        let audit = (!audits.is_empty())
            .then(|| serde_json::to_string(audits))
            .transpose()
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        tx.prepare_cached(
            "INSERT INTO journal (session_id, version, patch, status, client, seq, meta, audit) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            record.id,
            patch.version as i64,
            patch.patch.to_string(),
            patch.status,
            patch.op.as_ref().map(|o| o.client.as_str()),
            patch.op.as_ref().map(|o| o.seq as i64),
            meta,
            audit,
        ])?;
        let row = tx.last_insert_rowid();
        self.tail = row;
        self.rows.push_back((row, record.id.clone()));
        self.rows_of
            .entry(record.id.clone())
            .or_default()
            .push_back(row);
        let pending = self.pending.entry(record.id.clone()).or_insert_with(|| {
            self.by_age.insert(row, record.id.clone());
            Pending {
                record: record.clone(),
                patches: Vec::new(),
                first_row: row,
                audits: Vec::new(),
            }
        });
        pending.patches.push(patch.clone());
        pending.audits.extend(audits.iter().map(|a| (*a).clone()));
        Ok(())
    }

    /// Writes a pending session's patches to the patch log and its audit
    /// entries to the audit table, and its row when `with_row` (otherwise
    /// the change that follows writes it), and drops it from memory. Its
    /// journal rows stay until the head of the table passes them.
    fn fold(&mut self, tx: &Transaction<'_>, id: &str, with_row: bool) -> rusqlite::Result<()> {
        let Some(p) = self.forget(id) else {
            return Ok(());
        };
        if with_row {
            write(
                tx,
                &Change::Upsert {
                    record: p.record,
                    stored: None,
                },
            )?;
        }
        for patch in p.patches {
            write(
                tx,
                &Change::Patch {
                    session: id.to_string(),
                    patch,
                },
            )?;
        }
        write_audits(tx, p.audits)
    }

    /// Drops a session from memory (not from the table); what it held.
    fn forget(&mut self, id: &str) -> Option<Pending> {
        let p = self.pending.remove(id)?;
        self.by_age.remove(&p.first_row);
        Some(p)
    }

    /// Deletes every journal row of a session (they hold state values).
    fn erase(&mut self, tx: &Transaction<'_>, id: &str) -> rusqlite::Result<()> {
        for row in self.rows_of.remove(id).unwrap_or_default() {
            tx.prepare_cached("DELETE FROM journal WHERE id = ?1")?
                .execute([row])?;
        }
        Ok(())
    }

    /// After a batch: writes the sessions due (all, up to a bound, when the
    /// server is `quiet`; those past the window; `paced` more of those past
    /// half of it), then drops the table's rows before the oldest
    /// unwritten change.
    fn settle(
        &mut self,
        tx: &Transaction<'_>,
        quiet: bool,
        mut paced: usize,
    ) -> rusqlite::Result<()> {
        let mut due: Vec<String> = Vec::new();
        for (first, id) in &self.by_age {
            if (quiet && due.len() < FOLD_QUIET) || *first <= self.tail - JOURNAL_WINDOW {
                due.push(id.clone());
            } else if paced > 0 && *first <= self.tail - JOURNAL_WINDOW / 2 {
                paced -= 1;
                due.push(id.clone());
            } else {
                break;
            }
        }
        for id in due {
            self.fold(tx, &id, true)?;
        }
        let keep_from = self.by_age.keys().next().copied().unwrap_or(self.tail + 1);
        if self.rows.front().is_some_and(|(row, _)| *row < keep_from) {
            tx.prepare_cached("DELETE FROM journal WHERE id < ?1")?
                .execute([keep_from])?;
        }
        while let Some((row, id)) = self.rows.front() {
            if *row >= keep_from {
                break;
            }
            if let Some(of) = self.rows_of.get_mut(id) {
                while of.front().is_some_and(|r| r < &keep_from) {
                    of.pop_front();
                }
                if of.is_empty() {
                    self.rows_of.remove(id);
                }
            }
            self.rows.pop_front();
        }
        Ok(())
    }

    /// A commit failed: memory may hold what the file does not.
    pub(super) fn lost(&mut self) {
        *self = Journal {
            stale: true,
            ..self.fresh()
        };
    }

    /// Rebuilds from the file: replays the journal table into rows and
    /// patch log, in one transaction, and empties it.
    pub(super) fn recover(&mut self, conn: &mut Connection) -> Result<(), SessileError> {
        replay(conn)?;
        *self = self.fresh();
        Ok(())
    }
}

/// The version of session `id`'s row, if it has one.
fn row_version(tx: &Transaction<'_>, id: &str) -> rusqlite::Result<Option<u64>> {
    tx.prepare_cached("SELECT version FROM sessions WHERE id = ?1")?
        .query_row([id], |r| r.get::<_, i64>(0))
        .optional()
        .map(|v| v.map(|v| v as u64))
}

/// One journal row as read back.
struct Entry {
    version: u64,
    patch: String,
    status: Option<String>,
    op: Option<OpId>,
    meta: Option<String>,
    audit: Option<String>,
}

/// Writes every session's journal rows into its row and patch log, then
/// deletes them. A session that is gone (removed) is skipped.
fn replay(conn: &mut Connection) -> Result<(), SessileError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(storage_error)?;
    let mut by_session: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    {
        let mut st = tx
            .prepare(
                "SELECT session_id, version, patch, status, client, seq, meta, audit \
                 FROM journal ORDER BY id",
            )
            .map_err(storage_error)?;
        let rows = st
            .query_map([], |r| {
                let client: Option<String> = r.get(4)?;
                let seq: Option<i64> = r.get(5)?;
                Ok((
                    r.get::<_, String>(0)?,
                    Entry {
                        version: r.get::<_, i64>(1)? as u64,
                        patch: r.get(2)?,
                        status: r.get(3)?,
                        op: client.zip(seq).map(|(client, seq)| OpId {
                            client,
                            seq: seq as u64,
                        }),
                        meta: r.get(6)?,
                        audit: r.get(7)?,
                    },
                ))
            })
            .map_err(storage_error)?;
        for row in rows {
            let (id, entry) = row.map_err(storage_error)?;
            by_session.entry(id).or_default().push(entry);
        }
    }
    for (id, entries) in by_session {
        let Some(mut record) = read_row(&tx, &id)? else {
            continue;
        };
        let mut logged = Vec::new();
        let mut audits: Vec<AuditEntry> = Vec::new();
        for e in entries {
            if e.version <= record.version {
                continue; // Already in the row.
            }
            if e.version != record.version + 1 {
                return Err(storage_error(format!(
                    "the journal of session {id} goes from version {} to {}",
                    record.version, e.version
                )));
            }
            let patch: Value = serde_json::from_str(&e.patch).map_err(storage_error)?;
            merge_patch::apply(&mut record.state, &patch);
            record.version = e.version;
            if let Some(status) = &e.status {
                record.status = status.clone();
            }
            if let Some(meta) = &e.meta {
                apply_meta(&mut record, meta)?;
            }
            if let Some(audit) = &e.audit {
                let of_row: Vec<AuditEntry> = serde_json::from_str(audit).map_err(storage_error)?;
                audits.extend(of_row);
            }
            logged.push(LoggedPatch {
                version: e.version,
                patch,
                status: e.status,
                op: e.op,
            });
        }
        if logged.is_empty() {
            continue;
        }
        write(
            &tx,
            &Change::Upsert {
                record,
                stored: None,
            },
        )
        .map_err(storage_error)?;
        for patch in logged {
            let session = id.clone();
            write(&tx, &Change::Patch { session, patch }).map_err(storage_error)?;
        }
        write_audits(&tx, audits).map_err(storage_error)?;
    }
    tx.execute("DELETE FROM journal", [])
        .map_err(storage_error)?;
    tx.commit().map_err(storage_error)
}

/// Writes audit entries the journal held into the audit table, in order.
fn write_audits(tx: &Transaction<'_>, audits: Vec<AuditEntry>) -> rusqlite::Result<()> {
    audits
        .into_iter()
        .try_for_each(|a| write(tx, &Change::Audit(a)))
}

/// A journal row's `meta`: the row's small fields ([`apply_meta`] reads it).
fn meta_of(record: &SessionRecord) -> String {
    json!({
        "status": record.status,
        "statusSince": record.status_since_ms,
        "updatedAt": record.updated_at_ms,
        "expiresAt": record.expires_at_ms,
        "clients": record.clients.to_json(),
    })
    .to_string()
}

/// Sets the row's small fields from a journal row's `meta`.
fn apply_meta(record: &mut SessionRecord, meta: &str) -> Result<(), SessileError> {
    let m: Value = serde_json::from_str(meta).map_err(storage_error)?;
    let number = |k: &str| {
        m[k].as_u64()
            .ok_or_else(|| storage_error(format!("journal meta without `{k}`")))
    };
    record.status_since_ms = number("statusSince")?;
    record.updated_at_ms = number("updatedAt")?;
    record.expires_at_ms = number("expiresAt")?;
    if let Some(status) = m["status"].as_str() {
        record.status = status.to_string();
    }
    let clients = m["clients"]
        .as_str()
        .ok_or_else(|| storage_error("journal meta without `clients`"))?;
    record.clients = ClientBook::from_json(clients, record.version, record.updated_at_ms)?;
    Ok(())
}

#[cfg(test)]
mod tests;
