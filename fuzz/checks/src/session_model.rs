//! What the `session_engine` target knows of each session, and the checks
//! it makes after every commit: the store's rows and patch logs against
//! the patches seen so far, and every answer given in the batch against
//! what the store now holds.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sessile::core::merge_patch;
use sessile::core::protocol::{CatchUp, LoggedPatch, Message, Welcome};
use sessile_server::store::MemoryStore;

/// Versions of history kept per session (states and patches).
const HISTORY: u64 = 256;

/// The most patches a log holds: 64, and up to 16 more until the next trim.
const MAX_LOG: usize = 80;

/// A committed session as the harness knows it.
#[derive(Debug)]
pub struct Tracked {
    /// Session id.
    pub id: String,
    /// Its token.
    pub token: String,
    /// Its flow's statuses (for `to`).
    pub statuses: Vec<String>,
    /// Committed version.
    pub version: u64,
    state: Value,
    status: String,
    /// State and status after each recent version.
    history: BTreeMap<u64, (Value, String)>,
    /// Each recent patch by the version it made.
    patches: BTreeMap<u64, LoggedPatch>,
    /// Committed last processed sequence per client.
    pub clients: BTreeMap<String, u64>,
    /// Every op applied: (client, seq) to the version it made.
    applied: HashMap<(String, u64), u64>,
    /// Every op rejected for good (its sequence used up).
    rejected: HashSet<(String, u64)>,
    /// Clients the server has forgotten at some point.
    forgotten: HashSet<String>,
    /// Versions up to this one were erased (an end or expiry in the batch
    /// that made them) before the model could read their patches.
    erased_through: u64,
    /// The sweeper removed it (committed).
    pub removed: bool,
    /// A sweep in the batch under way removed it.
    pub removed_pending: bool,
    /// In the batch under way: the last sequence each client used.
    pub spec_seq: HashMap<String, u64>,
    /// In the batch under way: the newest version seen.
    pub spec_version: u64,
}

/// An answer given during a batch, checked once the batch commits.
#[derive(Debug)]
pub enum Seen {
    /// `ack` or `reject` of an op on session `session`.
    Reply {
        /// Index of the session.
        session: usize,
        /// The answer.
        msg: Message,
    },
    /// `welcome` to `client` holding `have`.
    Welcome {
        /// Index of the session.
        session: usize,
        /// The client.
        client: String,
        /// Its `haveVersion`.
        have: u64,
        /// The answer.
        welcome: Welcome,
    },
    /// A `GET`: version, status and state.
    View {
        /// Index of the session.
        session: usize,
        /// Version shown.
        version: u64,
        /// Status shown.
        status: String,
        /// State shown.
        state: Value,
    },
    /// A sweep (not a dry run) removed this session.
    Removed(String),
}

impl Tracked {
    /// A session just created, at version 1.
    pub fn new(
        id: String,
        token: String,
        statuses: Vec<String>,
        state: Value,
        status: String,
    ) -> Self {
        let mut history = BTreeMap::new();
        history.insert(1, (state.clone(), status.clone()));
        Tracked {
            id,
            token,
            statuses,
            version: 1,
            state,
            status,
            history,
            patches: BTreeMap::new(),
            clients: BTreeMap::new(),
            forgotten: HashSet::new(),
            erased_through: 0,
            applied: HashMap::new(),
            rejected: HashSet::new(),
            removed: false,
            removed_pending: false,
            spec_seq: HashMap::new(),
            spec_version: 1,
        }
    }

    /// Forgets what the batch under way made (it was not committed).
    pub fn roll_back(&mut self) {
        self.removed_pending = false;
        self.spec_seq = self.clients.iter().map(|(c, s)| (c.clone(), *s)).collect();
        self.spec_version = self.version;
    }

    /// Reads the committed row and patch log of this session after a
    /// commit and checks them against everything seen before.
    pub fn sync(&mut self, store: &MemoryStore, removed_now: &HashSet<String>) {
        let id = self.id.clone();
        let Some(rec) = store.record(&id) else {
            assert!(
                removed_now.contains(&id),
                "session {id} left the store without a sweep removing it"
            );
            assert!(
                store.patch_log(&id).is_empty(),
                "patches of removed session {id} are still stored"
            );
            self.removed = true;
            return;
        };
        assert!(
            !removed_now.contains(&id),
            "session {id} was reported removed but is still stored"
        );
        assert!(
            rec.version >= self.version,
            "session {id} went back from version {} to {}",
            self.version,
            rec.version
        );
        // A client the server no longer remembers (silent past the TTL, or
        // the least recently active at the cap) was forgotten: it may come
        // back at any sequence, and exactly-once for it rests on the bases
        // of its ops (server/tests/clients_map.rs), not on sequences.
        for client in self.clients.keys() {
            if rec.clients.applied_seq(client) == 0 {
                self.forgotten.insert(client.clone());
            }
        }
        // Taken in again after someone was forgotten (maybe itself): its
        // sequence may have started anywhere.
        for (client, _) in rec.clients.seqs() {
            if rec.clients.floor(client) > 0 {
                self.forgotten.insert(client.to_string());
            }
        }
        match store.patch_log_span(&id) {
            Some((first, last, len)) => {
                assert!(len <= MAX_LOG, "patch log of {len} entries");
                assert_eq!(last - first + 1, len as u64, "patch log has a gap");
                assert_eq!(last, rec.version, "log ends before the row");
            }
            None => assert_eq!(rec.version, 1, "a changed session without patches"),
        }
        let mut new = store.patches_after(&id, self.version);
        // An end or expiry erases the state and every older patch, those of
        // this batch included: the log then starts at the erasing patch,
        // which leaves `{}` (versions before it are not checkable here).
        let erased = new.len() as u64 != rec.version - self.version;
        if erased {
            assert_eq!(new.len(), 1, "patches missing without an erasure");
            let last = &new[0];
            assert!(
                last.op.is_none() && last.status.is_some() && rec.state == serde_json::json!({}),
                "versions without their patch: {} to {}",
                self.version,
                rec.version
            );
            new.clear();
            self.erased_through = rec.version - 1;
            self.state = rec.state.clone();
            self.status = rec.status.clone();
            self.history.clear();
            self.patches.clear();
            self.history
                .insert(rec.version, (self.state.clone(), self.status.clone()));
        }
        for (k, p) in new.iter().enumerate() {
            assert_eq!(
                p.version,
                self.version + 1 + k as u64,
                "a patch under another version"
            );
        }
        for p in &new {
            merge_patch::apply(&mut self.state, &p.patch);
            if let Some(status) = &p.status {
                self.status = status.clone();
            }
            if let Some(op) = &p.op {
                let key = (op.client.clone(), op.seq);
                // A forgotten client may start its sequence anew: its ops
                // are told apart by their bases, which the log does not keep.
                if !self.forgotten.contains(&op.client) {
                    assert!(
                        !self.applied.contains_key(&key),
                        "op {key:?} applied twice (versions {:?} and {})",
                        self.applied.get(&key),
                        p.version
                    );
                    assert!(
                        !self.rejected.contains(&key),
                        "op {key:?} rejected, then applied"
                    );
                    let later = self
                        .applied
                        .keys()
                        .any(|(c, s)| *c == op.client && *s > op.seq);
                    assert!(!later, "op {key:?} applied after a later op of its client");
                }
                self.applied.insert(key, p.version);
            }
            self.history
                .insert(p.version, (self.state.clone(), self.status.clone()));
            self.patches.insert(p.version, p.clone());
        }
        assert_eq!(
            self.state, rec.state,
            "session {id}: the patches do not make the state"
        );
        assert_eq!(
            self.status, rec.status,
            "session {id}: the patches do not make the status"
        );
        let book: BTreeMap<String, u64> = rec
            .clients
            .seqs()
            .map(|(c, s)| (c.to_string(), s))
            .collect();
        for (client, seq) in &self.clients {
            let Some(&now) = book.get(client) else {
                continue;
            };
            if self.forgotten.contains(client) {
                continue;
            }
            assert!(
                now >= *seq,
                "client {client}'s sequence went back from {seq} to {now}"
            );
        }
        for (client, seq) in self.applied.keys() {
            if self.forgotten.contains(client) {
                continue;
            }
            let now = book.get(client).copied().unwrap_or(0);
            assert!(
                now >= *seq,
                "applied op {client}/{seq} past the client's sequence {now}"
            );
        }
        self.version = rec.version;
        self.clients = book;
        let keep_from = self.version.saturating_sub(HISTORY);
        self.history = self.history.split_off(&keep_from);
        self.patches = self.patches.split_off(&keep_from);
        self.roll_back();
    }

    /// Checks an answer given during the batch just committed.
    pub fn check_seen(&mut self, seen: &Seen) {
        match seen {
            Seen::Reply { msg, .. } => self.check_reply(msg),
            Seen::Welcome {
                client,
                have,
                welcome,
                ..
            } => self.check_welcome(client, *have, welcome),
            Seen::View {
                version,
                status,
                state,
                ..
            } => {
                assert!(
                    *version <= self.version,
                    "GET showed an uncommitted version"
                );
                if let Some((s, st)) = self.history.get(version) {
                    assert_eq!((s, st), (state, status), "GET of version {version}");
                }
            }
            Seen::Removed(_) => {}
        }
    }

    fn check_reply(&mut self, msg: &Message) {
        // Read through JSON: the fields are the protocol's, whatever types
        // the server's structs use for them.
        let v = serde_json::to_value(msg).expect("a message serializes");
        let client = v["id"]["client"].as_str().unwrap_or_default().to_string();
        let seq = v["id"]["seq"].as_u64().unwrap_or_default();
        let key = (client.clone(), seq);
        let processed = self.clients.get(&client).copied().unwrap_or(0);
        // A client forgotten by the commit (or taken in again) has a
        // sequence the committed book no longer vouches for.
        let forgotten = self.forgotten.contains(&client) || processed == 0;
        match v["type"].as_str() {
            Some("ack") if v["duplicate"] == Value::Bool(true) => {
                assert!(
                    forgotten || seq <= processed,
                    "duplicate ack of {key:?}, processed {processed}"
                );
                let version = v["version"].as_u64().unwrap_or(u64::MAX);
                assert!(
                    version <= self.version,
                    "duplicate ack at an uncommitted version"
                );
            }
            Some("ack")
                if v["version"]
                    .as_u64()
                    .is_some_and(|at| at <= self.erased_through) =>
            {
                // Its patch was erased in the batch that made it.
                let version = v["version"].as_u64().unwrap_or_default();
                self.applied.entry(key).or_insert(version);
            }
            Some("ack") => {
                let version = v["version"].as_u64();
                assert_eq!(
                    self.applied.get(&key).copied(),
                    version,
                    "ack of op {key:?} that the store does not hold at that version ({})",
                    self.id
                );
            }
            Some("reject") if v["code"] == "OP_OUT_OF_ORDER" => {}
            Some("reject") => {
                // A forgotten client's re-sent op is rightly refused.
                assert!(
                    !self.applied.contains_key(&key) || self.forgotten.contains(&client),
                    "op {key:?} rejected and applied"
                );
                assert!(
                    forgotten || seq <= processed,
                    "rejected op {key:?} did not use its sequence"
                );
                self.rejected.insert(key);
                if v["code"] == "VERSION_CONFLICT" {
                    let current = &v["current"];
                    let version = current["version"].as_u64().expect("a conflict's version");
                    assert!(version <= self.version);
                    if let Some((state, status)) = self.history.get(&version) {
                        assert_eq!(&current["state"], state, "a conflict's state");
                        assert_eq!(&current["status"], status, "a conflict's status");
                    }
                }
            }
            _ => {}
        }
    }

    fn check_welcome(&self, client: &str, have: u64, w: &Welcome) {
        let v = w.version;
        assert!(v <= self.version, "welcome at uncommitted version {v}");
        let processed = self.clients.get(client).copied().unwrap_or(0);
        let forgotten = self.forgotten.contains(client) || processed == 0;
        assert!(
            forgotten || w.applied_seq <= processed,
            "welcome's appliedSeq {} past {processed}",
            w.applied_seq
        );
        let Some((state, status)) = self.history.get(&v) else {
            return;
        };
        assert_eq!(&w.status, status, "welcome's status at version {v}");
        match &w.catch_up {
            CatchUp::UpToDate => assert_eq!(have, v, "up to date from {have} at {v}"),
            CatchUp::Patches { patches } => {
                let versions: Vec<u64> = patches.iter().map(|p| p.version).collect();
                let want: Vec<u64> = (have.saturating_add(1)..=v).collect();
                assert_eq!(versions, want, "catch-up from {have} to {v}");
                for p in patches {
                    if let Some(logged) = self.patches.get(&p.version) {
                        assert_eq!(p, logged, "catch-up patch {}", p.version);
                    }
                }
            }
            CatchUp::Snapshot { state: snap } => {
                assert_eq!(snap, state, "catch-up snapshot at version {v}");
            }
        }
    }
}
