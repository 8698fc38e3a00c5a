//! The in-memory store: the [`Store`] trait over maps, with the SQLite
//! store's semantics (an upsert keeps a row's identity columns, the patch
//! log is trimmed every 16 versions to the last 64 to 80 patches, a load
//! returns the last 64, a commit is all or nothing) and nothing on disk.
//! The session engine's fuzz target runs on it, so do tests that need a
//! store but not durability; it can be told to refuse commits, as a full
//! disk would.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use sessile::core::error::SessileError;
use sessile::core::protocol::LoggedPatch;

use super::{
    storage_error, AuditEntry, Change, Loaded, SessionRecord, Store, Summary,
    AUDIT_SESSIONS_PER_PRUNE, PATCH_LOG_LEN,
};

/// Sessions, patch logs and the audit log in memory.
///
/// Cloning gives a second handle on the same data: a test keeps one to look
/// inside (or to make commits fail) while the engine owns the other.
#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    sessions: BTreeMap<String, SessionRecord>,
    /// Each session's patch log by version (trimmed as SQLite's is).
    patches: HashMap<String, BTreeMap<u64, LoggedPatch>>,
    audit: Vec<AuditEntry>,
    /// Commits still to refuse.
    refuse_commits: u32,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves whole maps behind: go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes the next `n` commits fail with `SERVER_STORAGE_ERROR`, writing
    /// nothing (a full disk, a lost connection).
    pub fn refuse_next_commits(&self, n: u32) {
        self.lock().refuse_commits = n;
    }

    /// The ids of every stored session, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.lock().sessions.keys().cloned().collect()
    }

    /// The stored row of session `id`.
    pub fn record(&self, id: &str) -> Option<SessionRecord> {
        self.lock().sessions.get(id).cloned()
    }

    /// Every patch still in the log of session `id`, oldest first (64 to
    /// 80 of them once the log is long, as in SQLite).
    pub fn patch_log(&self, id: &str) -> Vec<LoggedPatch> {
        self.lock()
            .patches
            .get(id)
            .map(|log| log.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The first and last versions in the patch log of session `id` and
    /// how many patches it holds, without copying them.
    pub fn patch_log_span(&self, id: &str) -> Option<(u64, u64, usize)> {
        let inner = self.lock();
        let log = inner.patches.get(id)?;
        let (first, last) = (log.keys().next()?, log.keys().next_back()?);
        Some((*first, *last, log.len()))
    }

    /// The patches of session `id` after `version`, oldest first.
    pub fn patches_after(&self, id: &str, version: u64) -> Vec<LoggedPatch> {
        self.lock()
            .patches
            .get(id)
            .map(|log| {
                log.range(version.saturating_add(1)..)
                    .map(|(_, p)| p.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// How many audit entries there are, of every session.
    pub fn audit_len(&self) -> usize {
        self.lock().audit.len()
    }
}

impl Inner {
    fn write(&mut self, change: &Change) {
        match change {
            Change::Upsert { record: s, .. } => match self.sessions.get_mut(&s.id) {
                // As SQLite's ON CONFLICT: id, token, flow, its table, key
                // and creation time stay as first written.
                Some(row) => {
                    row.status = s.status.clone();
                    row.status_since_ms = s.status_since_ms;
                    row.state = s.state.clone();
                    row.version = s.version;
                    row.updated_at_ms = s.updated_at_ms;
                    row.expires_at_ms = s.expires_at_ms;
                    row.clients = s.clients.clone();
                }
                None => {
                    self.sessions.insert(s.id.clone(), s.clone());
                }
            },
            Change::Patch { session, patch } => {
                let log = self.patches.entry(session.clone()).or_default();
                log.insert(patch.version, patch.clone());
                if patch.version % 16 == 0 {
                    let keep_from = patch.version.saturating_sub(PATCH_LOG_LEN as u64) + 1;
                    *log = log.split_off(&keep_from);
                }
            }
            Change::Audit(a) => self.audit.push(a.clone()),
            Change::ErasePatchesBefore { session, version } => {
                if let Some(log) = self.patches.get_mut(session) {
                    *log = log.split_off(version);
                }
            }
            Change::Remove(id) => {
                self.sessions.remove(id);
                self.patches.remove(id);
            }
        }
    }
}

impl Store for MemoryStore {
    fn load(&mut self, id: &str) -> Result<Option<Loaded>, SessileError> {
        let inner = self.lock();
        let Some(record) = inner.sessions.get(id).cloned() else {
            return Ok(None);
        };
        let oldest = record.version.saturating_sub(PATCH_LOG_LEN as u64);
        let recent = inner
            .patches
            .get(id)
            .map(|log| log.range(oldest + 1..).map(|(_, p)| p.clone()).collect())
            .unwrap_or_default();
        Ok(Some(Loaded {
            record,
            recent,
            rev: 0,
        }))
    }

    fn scan_key(&mut self, key: &str, now_ms: u64) -> Result<Vec<Summary>, SessileError> {
        Ok(self
            .lock()
            .sessions
            .values()
            .filter(|r| r.key.as_deref() == Some(key) && r.expires_at_ms > now_ms)
            .map(Summary::of)
            .collect())
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), SessileError> {
        let mut inner = self.lock();
        if inner.refuse_commits > 0 {
            inner.refuse_commits -= 1;
            return Err(storage_error(
                "commit refused (MemoryStore::refuse_next_commits)",
            ));
        }
        // As in SQLite: a patch of a session the batch removed (and has not
        // written again) is dropped.
        let mut removed: Vec<&str> = Vec::new();
        for change in changes {
            match change {
                Change::Patch { session, .. } if removed.contains(&session.as_str()) => continue,
                Change::Upsert { record, .. } => removed.retain(|id| *id != record.id),
                Change::Remove(id) => removed.push(id),
                _ => {}
            }
            inner.write(change);
        }
        Ok(())
    }

    fn scan(&mut self) -> Result<Vec<Summary>, SessileError> {
        Ok(self.lock().sessions.values().map(Summary::of).collect())
    }

    fn audit(&mut self, session: &str, limit: u64) -> Result<Vec<AuditEntry>, SessileError> {
        let inner = self.lock();
        let mut newest: Vec<AuditEntry> = inner
            .audit
            .iter()
            .rev()
            .filter(|a| a.session == session)
            .take(usize::try_from(limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        newest.reverse();
        Ok(newest)
    }

    fn prune_audit(&mut self, removed_before_ms: u64, dry_run: bool) -> Result<u64, SessileError> {
        let mut inner = self.lock();
        let mut due: Vec<String> = Vec::new();
        for a in &inner.audit {
            let removed = a.action == "remove" && a.at_ms <= removed_before_ms;
            if removed && !due.contains(&a.session) && (due.len() as u64) < AUDIT_SESSIONS_PER_PRUNE
            {
                due.push(a.session.clone());
            }
        }
        let before = inner.audit.len();
        let concerned = inner
            .audit
            .iter()
            .filter(|a| due.contains(&a.session))
            .count();
        if !dry_run {
            inner.audit.retain(|a| !due.contains(&a.session));
            debug_assert_eq!(before - inner.audit.len(), concerned);
        }
        Ok(concerned as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(id: &str, version: u64) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            token_hash: vec![1, 2],
            flow: "checkout".into(),
            flow_table: None,
            status: "CART".into(),
            status_since_ms: 5,
            key: Some("shop".into()),
            state: json!({"a": version}),
            version,
            created_at_ms: 5,
            updated_at_ms: 5,
            expires_at_ms: 1_000,
            clients: Default::default(),
        }
    }

    fn patch(version: u64) -> LoggedPatch {
        LoggedPatch {
            version,
            patch: json!({"a": version}),
            status: None,
            op: None,
        }
    }

    #[test]
    fn keeps_what_sqlite_keeps() {
        let mut store = MemoryStore::new();
        let view = store.clone();
        store
            .commit(&[Change::Upsert {
                record: record("s", 1),
                stored: None,
            }])
            .unwrap();
        let mut later = record("s", 2);
        later.token_hash = vec![9];
        later.key = None;
        for v in 2..=100 {
            store
                .commit(&[Change::Patch {
                    session: "s".into(),
                    patch: patch(v),
                }])
                .unwrap();
        }
        later.version = 100;
        store
            .commit(&[Change::Upsert {
                record: later,
                stored: Some(crate::store::Stored {
                    version: 1,
                    expires_at_ms: 0,
                    rev: 0,
                }),
            }])
            .unwrap();
        let loaded = store.load("s").unwrap().unwrap();
        assert_eq!(
            loaded.record.token_hash,
            vec![1, 2],
            "identity columns stay"
        );
        assert_eq!(loaded.record.key.as_deref(), Some("shop"));
        assert_eq!(loaded.record.version, 100);
        let versions: Vec<u64> = loaded.recent.iter().map(|p| p.version).collect();
        assert_eq!(versions, (37..=100).collect::<Vec<_>>(), "the last 64");
        // Trimmed at 96 to versions above 32: 68 patches are kept.
        assert_eq!(view.patch_log("s").first().map(|p| p.version), Some(33));
        assert_eq!(store.scan_key("shop", 999).unwrap().len(), 1);
        assert!(store.scan_key("shop", 1_000).unwrap().is_empty());
        assert_eq!(store.scan().unwrap()[0].state_bytes, 7, "{{\"a\":2}}");
    }

    #[test]
    fn a_refused_commit_writes_nothing_and_removal_keeps_the_audit() {
        let mut store = MemoryStore::new();
        store.refuse_next_commits(1);
        let entry = AuditEntry {
            session: "s".into(),
            at_ms: 1,
            actor: "http".into(),
            action: "create".into(),
            keys: vec![],
            version: 1,
            seq: None,
        };
        let batch = [
            Change::Upsert {
                record: record("s", 1),
                stored: None,
            },
            Change::Audit(entry),
        ];
        assert_eq!(
            store.commit(&batch).unwrap_err().code(),
            "SERVER_STORAGE_ERROR"
        );
        assert!(store.ids().is_empty() && store.audit_len() == 0);
        store.commit(&batch).unwrap();
        assert_eq!(store.ids(), vec!["s".to_string()]);
        store.commit(&[Change::Remove("s".into())]).unwrap();
        assert!(store.load("s").unwrap().is_none());
        assert_eq!(store.audit("s", 10).unwrap().len(), 1);
    }

    #[test]
    fn a_patch_after_a_remove_in_the_same_batch_is_dropped() {
        let mut store = MemoryStore::new();
        let view = store.clone();
        let upsert = Change::Upsert {
            record: record("s", 1),
            stored: None,
        };
        let late = Change::Patch {
            session: "s".into(),
            patch: patch(2),
        };
        store
            .commit(&[upsert.clone(), Change::Remove("s".into()), late.clone()])
            .unwrap();
        assert!(view.ids().is_empty());
        assert!(view.patch_log("s").is_empty(), "its state values linger");
        // Written again after the removal, it keeps its patches.
        store
            .commit(&[Change::Remove("s".into()), upsert, late])
            .unwrap();
        assert_eq!(view.patch_log("s"), vec![patch(2)]);
    }
}
