//! The PostgreSQL store, selected by `SESSILE_DATABASE_URL=postgres://…`:
//! one transaction per batch of changes (the engine's group commit), the
//! schema versioned in table `sessile_schema`, a session row written only
//! where it still holds the version this server read (another server may
//! share the database), and a lost connection opened again on the next call.
//!
//! The client is the synchronous `postgres` crate (tokio-postgres driven on
//! a runtime of its own): every call comes from the engine's one std thread,
//! and a batch is one transaction on one connection, so a pool would hold
//! connections nobody uses at the same time, and an async client would have
//! to be blocked on from that thread anyway. Statements are prepared once
//! per connection, and a batch's writes go as arrays, a few statements per
//! batch (`pg_write.rs`).

use std::str::FromStr;
use std::time::Duration;

use postgres::{Client, NoTls, Statement};
use sessile::core::error::SessileError;
use sessile::core::protocol::{LoggedPatch, OpId};

use crate::clients::ClientBook;

use super::pg_write::{write_batch, WriteError, Writes};

use super::{
    storage_error, AuditEntry, Change, Loaded, SessionRecord, Store, Stored, Summary,
    AUDIT_SESSIONS_PER_PRUNE, MOVED, PATCH_LOG_LEN,
};

/// Schema steps in order: step `i` takes a database from schema version `i`
/// to `i + 1` (0: no sessile tables yet). Append only; never edit a released
/// step. States, patches and client books are kept as JSON text, not
/// `jsonb`: they come back byte for byte (key order, number spelling).
const MIGRATIONS: &[&str] = &[
    "
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, token_hash BYTEA NOT NULL, flow TEXT NOT NULL,
  flow_table TEXT, status TEXT NOT NULL, status_since BIGINT NOT NULL, key TEXT,
  state TEXT NOT NULL, version BIGINT NOT NULL, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL, expires_at BIGINT NOT NULL,
  clients TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_key ON sessions(key);
CREATE TABLE patches (
  session_id TEXT NOT NULL, version BIGINT NOT NULL, patch TEXT NOT NULL,
  status TEXT, client TEXT, seq BIGINT,
  PRIMARY KEY (session_id, version)
);
CREATE TABLE audit (
  id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, session_id TEXT NOT NULL,
  at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, keys TEXT NOT NULL,
  version BIGINT NOT NULL, seq BIGINT
);
CREATE INDEX audit_session ON audit(session_id, id);
CREATE INDEX audit_removals ON audit(at) WHERE action = 'remove';
",
    "
ALTER TABLE sessions ADD COLUMN rev BIGINT NOT NULL DEFAULT 0;
",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Key of the advisory lock that serializes migrations of servers starting
/// together on one database.
const MIGRATION_LOCK: i64 = 0x5e55_11e0;

/// The channel each commit notifies (`pg_notify`) of the sessions it
/// wrote, for other servers' listeners (`fanout.rs`).
pub const CHANNEL: &str = "sessile_changes";

/// Key of the advisory lock the periodic sweeper holds: one server of
/// those sharing a database sweeps, until its connection goes.
const SWEEP_LOCK: i64 = 0x5e55_11e1;

/// How long opening a connection may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `url` with its password (in the user part or a `password=` parameter)
/// replaced by `***`, to be printed.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(a database URL that is not scheme://…)".into();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => match user.split_once(':') {
            Some((name, _)) => format!("{name}:***@{host}"),
            None => format!("{user}@{host}"),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The statements every connection prepares once.
struct Prepared {
    load: Statement,
    load_patches: Statement,
    scan_key: Statement,
    scan: Statement,
    audit: Statement,
    stamps: Statement,
    notify: Statement,
    writes: Writes,
}

/// The columns [`summary_from`] reads; `octet_length` counts UTF-8 bytes,
/// as [`Summary::of`] does.
const SUMMARY_COLUMNS: &str = "SELECT id, flow, status, status_since, updated_at, expires_at, \
     octet_length(state)::BIGINT, flow_table, octet_length(clients)::BIGINT";

impl Prepared {
    fn new(c: &mut Client) -> Result<Self, postgres::Error> {
        Ok(Prepared {
            // FOR SHARE: a row another server is writing is read once its
            // commit is done (waiting for it), not as it was before: read
            // before, it would fail this server's next write of it.
            load: c.prepare(
                "SELECT id, token_hash, flow, status, status_since, key, state, version, \
                 created_at, updated_at, expires_at, clients, flow_table, rev FROM sessions \
                 WHERE id = $1 FOR SHARE",
            )?,
            load_patches: c.prepare(
                "SELECT version, patch, status, client, seq FROM patches \
                 WHERE session_id = $1 AND version > $2 AND version <= $3 ORDER BY version",
            )?,
            scan_key: c.prepare(&format!(
                "{SUMMARY_COLUMNS} FROM sessions WHERE key = $1 AND expires_at > $2"
            ))?,
            scan: c.prepare(&format!("{SUMMARY_COLUMNS} FROM sessions"))?,
            audit: c.prepare(
                "SELECT session_id, at, actor, action, keys, version, seq FROM audit \
                 WHERE session_id = $1 ORDER BY id DESC LIMIT $2",
            )?,
            stamps: c
                .prepare("SELECT id, version, expires_at, rev FROM sessions WHERE id = ANY($1)")?,
            notify: c.prepare("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n")?,
            writes: Writes::prepare(c)?,
        })
    }
}

/// An open connection and its prepared statements.
struct Connection {
    client: Client,
    st: Prepared,
    /// Whether this connection holds [`SWEEP_LOCK`].
    sweeper: bool,
}

/// Sessions in a PostgreSQL database.
pub struct PostgresStore {
    config: postgres::Config,
    /// `None` after the connection was lost: the next call opens another.
    conn: Option<Connection>,
    /// The id of this server, first in each notification (its own
    /// listener skips them).
    origin: String,
    /// The sessions the last failed commit found written by another server.
    moved: Vec<String>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and
    /// brings its schema to [`SCHEMA_VERSION`]. Errors do not name the URL
    /// (they reach clients); print [`redact_url`] beside them. Call it off
    /// any async runtime's threads (the client blocks on a runtime of its
    /// own), or see [`PostgresStore::open_blocking`].
    pub fn open(url: &str) -> Result<Self, SessileError> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| storage_error(format!("not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let mut client = config.connect(NoTls).map_err(unreachable)?;
        migrate(&mut client)?;
        let st = Prepared::new(&mut client).map_err(unreachable)?;
        Ok(PostgresStore {
            config,
            conn: Some(Connection {
                client,
                st,
                sweeper: false,
            }),
            origin: String::new(),
            moved: Vec::new(),
        })
    }

    /// The same store, naming this server `origin` in its notifications.
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = origin.to_string();
        self
    }

    /// [`PostgresStore::open`] on a thread of its own, so that it may be
    /// called from inside an async runtime (the server's start).
    pub fn open_blocking(url: &str) -> Result<Self, SessileError> {
        let url = url.to_string();
        std::thread::spawn(move || PostgresStore::open(&url))
            .join()
            .unwrap_or_else(|_| Err(storage_error("opening the PostgreSQL store panicked")))
    }

    /// The open connection, opened (again) if there is none or it was lost.
    fn conn(&mut self) -> Result<&mut Connection, SessileError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let mut client = self.config.connect(NoTls).map_err(unreachable)?;
            let st = Prepared::new(&mut client).map_err(unreachable)?;
            self.conn = Some(Connection {
                client,
                st,
                sweeper: false,
            });
        }
        self.conn
            .as_mut()
            .ok_or_else(|| storage_error("no PostgreSQL connection"))
    }

    /// Runs `f` on the connection, and once more on a new one when the
    /// connection turns out lost (the database restarted while this server
    /// was idle). `f` must only read, or write nothing before it fails.
    fn retrying<T>(
        &mut self,
        mut f: impl FnMut(&mut Connection) -> Result<T, postgres::Error>,
    ) -> Result<T, SessileError> {
        let conn = self.conn()?;
        match f(conn) {
            Ok(v) => return Ok(v),
            Err(e) if is_lost(&e) => self.conn = None,
            Err(e) => return Err(self.failed(e)),
        }
        let conn = self.conn()?;
        f(conn).map_err(|e| self.failed(e))
    }

    /// The error of a call; forgets the connection unless the server
    /// answered with the error (a lost connection, a broken one).
    fn failed(&mut self, e: postgres::Error) -> SessileError {
        if is_lost(&e) || self.conn.as_ref().is_none_or(|c| c.client.is_closed()) {
            self.conn = None;
            return storage_error(format!(
                "lost the connection to PostgreSQL: {}",
                describe(&e)
            ));
        }
        storage_error(describe(&e))
    }
}

/// Runs the schema steps the database has not had, in one transaction
/// under an advisory lock (servers starting together migrate one after the
/// other). A database of a newer schema is refused.
fn migrate(client: &mut Client) -> Result<(), SessileError> {
    let db = |e: postgres::Error| storage_error(describe(&e));
    let mut tx = client.transaction().map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(db)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS sessile_schema (version INTEGER NOT NULL)")
        .map_err(db)?;
    let row = tx
        .query_opt("SELECT version FROM sessile_schema", &[])
        .map_err(db)?;
    let version = row.map_or(0, |r| r.get::<_, i32>(0));
    let version = usize::try_from(version).unwrap_or(usize::MAX);
    if version > SCHEMA_VERSION {
        return Err(storage_error(format!(
            "the database has schema version {version}, newer than this server's \
             {SCHEMA_VERSION}; run a newer sessile-server"
        )));
    }
    for step in &MIGRATIONS[version..] {
        tx.batch_execute(step).map_err(db)?;
    }
    tx.execute("DELETE FROM sessile_schema", &[]).map_err(db)?;
    tx.execute(
        "INSERT INTO sessile_schema (version) VALUES ($1)",
        &[&(SCHEMA_VERSION as i32)],
    )
    .map_err(db)?;
    tx.commit().map_err(db)
}

/// Whether `e` says the connection is gone or broken: not an error the
/// database answered a statement with, or its own word that it is shutting
/// down or dropping the connection (SQLSTATE classes 57P and 08).
fn is_lost(e: &postgres::Error) -> bool {
    let code = e.code().map_or("", |c| c.code());
    e.as_db_error().is_none() || e.is_closed() || code.starts_with("57P") || code.starts_with("08")
}

/// A failed connection attempt as the store's error.
fn unreachable(e: postgres::Error) -> SessileError {
    storage_error(format!("cannot connect to PostgreSQL: {}", describe(&e)))
}

/// What went wrong, with the server's message (the error's own text says
/// only `db error`) or the I/O error under it.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} {}: {}", db.severity(), db.code().code(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// One notification per session a batch writes: `origin id version
/// expires_at` (version 0: removed). Ids and numbers only, never a state:
/// a payload must stay under 8,000 bytes, and another server reads what
/// changed from the database, by version.
fn notifications(origin: &str, changes: &[Change]) -> Vec<String> {
    let mut last: Vec<(&str, u64, u64)> = Vec::new();
    let mut at: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for change in changes {
        let (id, version, expires) = match change {
            Change::Upsert { record, .. } => (&record.id, record.version, record.expires_at_ms),
            Change::Remove(id) => (id, 0, 0),
            _ => continue,
        };
        match at.get(id.as_str()) {
            Some(&i) => last[i] = (id, version, expires),
            None => {
                at.insert(id, last.len());
                last.push((id, version, expires));
            }
        }
    }
    last.into_iter()
        .map(|(id, v, e)| format!("{origin} {id} {v} {e}"))
        .collect()
}

/// A notification's payload: the origin, session id, version and expiry;
/// `None` when it is not one of ours.
pub fn parse_notification(payload: &str) -> Option<(&str, &str, u64, u64)> {
    let mut parts = payload.split(' ');
    let origin = parts.next()?;
    let id = parts.next()?;
    let version = parts.next()?.parse().ok()?;
    let expires = parts.next()?.parse().ok()?;
    parts
        .next()
        .is_none()
        .then_some((origin, id, version, expires))
}

fn json(text: &str) -> Result<serde_json::Value, SessileError> {
    serde_json::from_str(text).map_err(storage_error)
}

fn summary_from(r: &postgres::Row) -> Summary {
    Summary {
        id: r.get(0),
        flow: r.get(1),
        status: r.get(2),
        status_since_ms: r.get::<_, i64>(3) as u64,
        updated_at_ms: r.get::<_, i64>(4) as u64,
        expires_at_ms: r.get::<_, i64>(5) as u64,
        state_bytes: r.get::<_, i64>(6) as u64,
        flow_table: r.get(7),
        clients_bytes: r.get::<_, i64>(8) as u64,
    }
}

impl Store for PostgresStore {
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError> {
        let found = self.retrying(|c| {
            let Some(row) = c.client.query_opt(&c.st.load, &[&id])? else {
                return Ok(None);
            };
            // Not past the row's version: another server may commit
            // between the two reads.
            let version = row.get::<_, i64>(7);
            let oldest = version - PATCH_LOG_LEN as i64;
            let patches = c
                .client
                .query(&c.st.load_patches, &[&id, &oldest, &version])?;
            Ok(Some((row, patches)))
        })?;
        let Some((row, rows)) = found else {
            return Ok(None);
        };
        let version = row.get::<_, i64>(7) as u64;
        let updated_at_ms = row.get::<_, i64>(9) as u64;
        let rev = row.get::<_, i64>(13) as u64;
        let record = SessionRecord {
            id: row.get(0),
            token_hash: row.get(1),
            flow: row.get(2),
            status: row.get(3),
            status_since_ms: row.get::<_, i64>(4) as u64,
            key: row.get(5),
            state: json(row.get(6))?,
            version,
            created_at_ms: row.get::<_, i64>(8) as u64,
            updated_at_ms,
            expires_at_ms: row.get::<_, i64>(10) as u64,
            clients: ClientBook::from_json(row.get(11), version, updated_at_ms)?,
            flow_table: row.get(12),
        };
        let mut recent = Vec::with_capacity(rows.len());
        for r in rows {
            let client: Option<String> = r.get(3);
            let seq: Option<i64> = r.get(4);
            recent.push(LoggedPatch {
                version: r.get::<_, i64>(0) as u64,
                patch: json(r.get(1))?,
                status: r.get(2),
                op: client.zip(seq).map(|(client, seq)| OpId {
                    client,
                    seq: seq as u64,
                }),
            });
        }
        Ok(Some(Loaded {
            record,
            recent,
            rev,
        }))
    }

    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError> {
        let now = i64::try_from(now_ms).unwrap_or(i64::MAX);
        let rows = self.retrying(|c| c.client.query(&c.st.scan_key, &[&key, &now]))?;
        Ok(rows.iter().map(summary_from).collect())
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError> {
        self.moved.clear();
        if changes.is_empty() {
            return Ok(());
        }
        // BEGIN writes nothing: a connection found lost there (the database
        // restarted while this server was idle) is replaced, and the batch
        // goes on. Once past it, a failure fails the batch.
        self.retrying(|c| c.client.batch_execute("BEGIN"))?;
        // This very connection (never a new one, outside the transaction).
        let Some(conn) = self.conn.as_mut() else {
            return Err(storage_error("no PostgreSQL connection"));
        };
        let notes = notifications(&self.origin, changes);
        let out = (|| {
            write_batch(&mut conn.client, &conn.st.writes, changes)?;
            if !notes.is_empty() {
                // Delivered to the listeners when (and only if) this commits.
                conn.client.query(&conn.st.notify, &[&CHANNEL, &notes])?;
            }
            conn.client.batch_execute("COMMIT")?;
            Ok(())
        })();
        if out.is_err() && !conn.client.is_closed() {
            // Nothing of the batch stays; an error here means the
            // connection went, and the next call opens another.
            let _ = conn.client.batch_execute("ROLLBACK");
        }
        match out {
            Ok(()) => Ok(()),
            Err(WriteError::Db(e)) => Err(self.failed(e)),
            Err(WriteError::Moved { sessions }) => {
                let first = sessions.first().cloned().unwrap_or_default();
                let more = sessions.len().saturating_sub(1);
                self.moved = sessions;
                Err(storage_error(format!(
                    "session {first} {MOVED} (another server wrote it{}); nothing of the \
                     batch was stored",
                    match more {
                        0 => String::new(),
                        n => format!(", and {n} more of the batch"),
                    }
                )))
            }
        }
    }

    fn scan(&mut self) -> Result<Vec<Summary>, SessileError> {
        let rows = self.retrying(|c| c.client.query(&c.st.scan, &[]))?;
        Ok(rows.iter().map(summary_from).collect())
    }

    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.retrying(|c| c.client.query(&c.st.audit, &[&session, &limit]))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows.iter().rev() {
            out.push(AuditEntry {
                session: r.get(0),
                at_ms: r.get::<_, i64>(1) as u64,
                actor: r.get(2),
                action: r.get(3),
                keys: serde_json::from_str(r.get(4)).map_err(storage_error)?,
                version: r.get::<_, i64>(5) as u64,
                seq: r.get::<_, Option<i64>>(6).map(|s| s as u64),
            });
        }
        Ok(out)
    }

    fn sweeper_lock(&mut self) -> Result<bool, SessileError> {
        self.retrying(|c| {
            if !c.sweeper {
                let row = c
                    .client
                    .query_one("SELECT pg_try_advisory_lock($1)", &[&SWEEP_LOCK])?;
                c.sweeper = row.get(0);
            }
            Ok(c.sweeper)
        })
    }

    fn stamps(&mut self, ids: &[String]) -> Result<Vec<(String, Stored)>, SessileError> {
        let rows = self.retrying(|c| c.client.query(&c.st.stamps, &[&ids]))?;
        Ok(rows
            .iter()
            .map(|r| {
                let stored = Stored {
                    version: r.get::<_, i64>(1) as u64,
                    expires_at_ms: r.get::<_, i64>(2) as u64,
                    rev: r.get::<_, i64>(3) as u64,
                };
                (r.get(0), stored)
            })
            .collect())
    }

    fn shared(&self) -> bool {
        true
    }

    fn moved(&self) -> Vec<String> {
        self.moved.clone()
    }

    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError> {
        let cutoff = i64::try_from(removed_before_ms).unwrap_or(i64::MAX);
        let limit = AUDIT_SESSIONS_PER_PRUNE as i64;
        let removed = "SELECT session_id FROM audit WHERE action = 'remove' AND at <= $1 LIMIT $2";
        let conn = self.conn()?;
        let out = if dry_run {
            let sql = format!("SELECT COUNT(*) FROM audit WHERE session_id IN ({removed})");
            conn.client
                .query_one(&sql, &[&cutoff, &limit])
                .map(|r| r.get::<_, i64>(0) as u64)
        } else {
            let sql = format!("DELETE FROM audit WHERE session_id IN ({removed})");
            conn.client.execute(&sql, &[&cutoff, &limit])
        };
        out.map_err(|e| self.failed(e))
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_notification, redact_url};

    #[test]
    fn notifications_name_origin_session_version_and_expiry_only() {
        assert_eq!(
            parse_notification("ab12 0123 7 99"),
            Some(("ab12", "0123", 7, 99))
        );
        for bad in ["", "a b", "a b x 1", "a b 1 2 3", "a b -1 2"] {
            assert_eq!(parse_notification(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_are_shown_without_their_password() {
        for (url, shown) in [
            (
                "postgres://shop:s3cr@t@db.example:5432/sessile",
                "postgres://shop:***@db.example:5432/sessile",
            ),
            (
                "postgresql://shop@127.0.0.1/sessile?sslmode=disable&password=x",
                "postgresql://shop@127.0.0.1/sessile?sslmode=disable&password=***",
            ),
            ("postgres://localhost", "postgres://localhost"),
            (
                "postgres://a:b@h:1?password=c",
                "postgres://a:***@h:1?password=***",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        assert!(!redact_url("host=h password=secret").contains("secret"));
    }
}
