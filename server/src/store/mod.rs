//! Storage behind a trait: what the session engine needs from a durable
//! store (load one session with its recent patches and client sequences,
//! commit a batch of changes atomically, scan for the sweeper and health).
//! SQLite implements it (the default), and PostgreSQL (selected by
//! `SESSILE_DATABASE_URL`); [`MemoryStore`] keeps the same in memory, for
//! tests and fuzzing.

mod memory;
mod pg_write;
mod postgres;
mod sqlite;

pub use memory::MemoryStore;
pub use postgres::{parse_notification, redact_url, PostgresStore, CHANNEL};
pub use sqlite::{SqliteStore, DEFAULT_JOURNAL_FROM};

use serde_json::Value;
use sessile::core::error::SessileError;
use sessile::core::protocol::LoggedPatch;

use crate::clients::ClientBook;

/// How many recent patches each session keeps for rebase and catch-up.
pub const PATCH_LOG_LEN: usize = 64;
/// Most removed sessions whose audit one [`Store::prune_audit`] deletes
/// (the rest waits for the next sweep: one sweep never holds the engine long).
pub const AUDIT_SESSIONS_PER_PRUNE: u64 = 1000;

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// 32 hex digits.
    pub id: String,
    /// SHA-256 of the token.
    pub token_hash: Vec<u8>,
    /// Flow name (`checkout`, `table`, or a declared table's name).
    pub flow: String,
    /// A declared flow's table (canonical JSON text); `None` for a built-in flow.
    pub flow_table: Option<String>,
    /// Current status in the flow.
    pub status: String,
    /// When the status last changed, ms.
    pub status_since_ms: u64,
    /// Client key the per-key limit counts against (a table, a shop).
    pub key: Option<String>,
    /// Current state, a JSON object.
    pub state: Value,
    /// Current version; 1 at creation, +1 per change.
    pub version: u64,
    /// Creation time, ms.
    pub created_at_ms: u64,
    /// Last change, ms.
    pub updated_at_ms: u64,
    /// Expiry, ms.
    pub expires_at_ms: u64,
    /// Last processed op sequence per client id, bounded (kept in the row:
    /// one B-tree less to write per op).
    pub clients: ClientBook,
}

/// A session with what the engine keeps in memory beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The session row.
    pub record: SessionRecord,
    /// The last [`PATCH_LOG_LEN`] patches, oldest first.
    pub recent: Vec<LoggedPatch>,
    /// The row's revision: +1 at every write of it, whatever changed
    /// (PostgreSQL; 0 in a store only one server uses).
    pub rev: u64,
}

/// One entry of the audit log: who changed what, when.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Session id.
    pub session: String,
    /// When, ms.
    pub at_ms: u64,
    /// Who: a client id, `http`, `sweeper` or `admin`.
    pub actor: String,
    /// What: `create`, `op`, `extend`, `end`, `expire`, `remove`.
    pub action: String,
    /// Top-level state keys touched (`*`: all), or the status change.
    pub keys: Vec<String>,
    /// Session version after the change.
    pub version: u64,
    /// The op's sequence number, for `op`.
    pub seq: Option<u64>,
}

/// What a session row held when the engine read or last wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its version.
    pub version: u64,
    /// Its expiry, ms.
    pub expires_at_ms: u64,
    /// Its revision ([`Loaded::rev`]): a write that changes neither
    /// version nor expiry (a rejected op's sequence number) changes it.
    pub rev: u64,
}

impl Stored {
    /// What `record` holds, at revision 0.
    pub fn of(record: &SessionRecord) -> Self {
        Stored {
            version: record.version,
            expires_at_ms: record.expires_at_ms,
            rev: 0,
        }
    }

    /// What `record`, as loaded at revision `rev`, holds.
    pub fn at(record: &SessionRecord, rev: u64) -> Self {
        Stored {
            rev,
            ..Stored::of(record)
        }
    }
}

/// One durable change; a batch of them commits in one transaction.
#[derive(Debug, Clone)]
pub enum Change {
    /// Insert or replace the session row.
    Upsert {
        /// The row as it is now.
        record: SessionRecord,
        /// The version, expiry and revision the store holds, as the engine
        /// loaded or last committed them; `None`: a new session. The
        /// PostgreSQL store, which several servers may share, writes the
        /// row only where it still holds that revision (every write bumps
        /// it, even one that keeps version and expiry), and fails the batch
        /// otherwise.
        stored: Option<Stored>,
    },
    /// Append to the session's patch log (and trim it).
    Patch {
        /// Session id.
        session: String,
        /// The change.
        patch: LoggedPatch,
    },
    /// Append to the audit log.
    Audit(AuditEntry),
    /// Delete the session and its patches (audit stays). A patch of it
    /// later in the same batch is dropped, unless an upsert writes the
    /// session again first: no row would ever delete it.
    Remove(String),
    /// Delete the session's patches older than `version` (they hold state
    /// values; the session was ended or expired and its state erased).
    ErasePatchesBefore {
        /// Session id.
        session: String,
        /// The first version kept.
        version: u64,
    },
}

impl Change {
    /// The session it changes.
    pub fn session(&self) -> &str {
        match self {
            Change::Upsert { record, .. } => &record.id,
            Change::Patch { session, .. } | Change::ErasePatchesBefore { session, .. } => session,
            Change::Audit(a) => &a.session,
            Change::Remove(id) => id,
        }
    }
}

/// What the sweeper and the health report read of every session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Session id.
    pub id: String,
    /// Flow name.
    pub flow: String,
    /// A declared flow's table (canonical JSON text); `None` for a built-in flow.
    pub flow_table: Option<String>,
    /// Status.
    pub status: String,
    /// When the status last changed, ms.
    pub status_since_ms: u64,
    /// Last change, ms.
    pub updated_at_ms: u64,
    /// Expiry, ms.
    pub expires_at_ms: u64,
    /// Bytes of the state's JSON.
    pub state_bytes: u64,
    /// Bytes of the JSON of the clients remembered for exactly-once ops.
    pub clients_bytes: u64,
}

impl Summary {
    /// The summary of a session row (as the store or the engine's memory holds it).
    pub fn of(r: &SessionRecord) -> Self {
        Summary {
            id: r.id.clone(),
            flow: r.flow.clone(),
            flow_table: r.flow_table.clone(),
            status: r.status.clone(),
            status_since_ms: r.status_since_ms,
            updated_at_ms: r.updated_at_ms,
            expires_at_ms: r.expires_at_ms,
            state_bytes: r.state.to_string().len() as u64,
            clients_bytes: r.clients.to_json().len() as u64,
        }
    }
}

/// A durable session store. Calls come from one thread (the engine's).
pub trait Store: Send {
    /// The session `id` with its recent patches and client sequences.
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError>;
    /// A summary of every session with this key that expires after `now_ms`
    /// (the engine tells, by each one's flow, which of them are still live).
    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError>;
    /// Writes every change in one transaction: all or nothing.
    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError>;
    /// A summary of every session.
    fn scan(&mut self) -> Result<Vec<Summary>, SessileError>;
    /// The newest `limit` audit entries of a session, oldest first.
    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError>;
    /// Deletes (or, in a dry run, counts) the audit entries of sessions
    /// removed at `removed_before_ms` or earlier, at most
    /// [`AUDIT_SESSIONS_PER_PRUNE`] sessions' worth per call; the entries
    /// concerned. Runs in its own transaction.
    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError>;
    /// Whether this server is the one that sweeps periodically: always with
    /// a store only it uses; with one that several servers share, the one
    /// holding a lock (taken here when free, kept while its connection lives).
    fn sweeper_lock(&mut self) -> Result<bool, SessileError> {
        Ok(true)
    }
    /// The version, expiry (ms) and revision of each of the sessions
    /// `ids` that exists, to tell which copies in memory another server
    /// changed.
    fn stamps(&mut self, ids: &[String]) -> Result<Vec<(String, Stored)>, SessileError> {
        let mut out = Vec::new();
        for id in ids {
            if let Some(l) = self.load(id)? {
                out.push((id.clone(), Stored::at(&l.record, l.rev)));
            }
        }
        Ok(out)
    }
    /// Whether other servers may write this store's sessions (PostgreSQL):
    /// only then can a copy in memory be behind it. A store only this
    /// server uses is never asked whether another moved a session.
    fn shared(&self) -> bool {
        false
    }
    /// The sessions the last failed commit found changed by another server
    /// (see [`is_moved`]); empty when it failed otherwise, or succeeded.
    fn moved(&self) -> Vec<String> {
        Vec::new()
    }
}

/// What a commit's error says when a session row no longer held the
/// version this server read: another server wrote it (PostgreSQL).
pub(crate) const MOVED: &str = "changed in the database since this server read it";

/// Whether `e` is a commit that failed because another server had changed
/// one of its sessions: nothing of it was stored, and its jobs may run
/// again on the sessions read afresh.
pub fn is_moved(e: &SessileError) -> bool {
    matches!(e, SessileError::ServerStorage { reason } if reason.contains(MOVED))
}

/// A store failure as the one error type.
pub(crate) fn storage_error(e: impl std::fmt::Display) -> SessileError {
    SessileError::ServerStorage {
        reason: e.to_string(),
    }
}
