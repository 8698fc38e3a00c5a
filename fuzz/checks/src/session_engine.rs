//! Target `session_engine`: the server's session engine (`Sessions`, on
//! the in-memory store) fed an arbitrary sequence of calls and clock ticks,
//! as the engine thread runs them: creates, hellos (any `haveVersion`),
//! ops over WebSocket and HTTP (next, repeated, skipped and huge sequence
//! numbers; current, stale, future and huge bases; patches that are and are
//! not objects; status moves), extends, ends, GETs, validations, sweeps
//! (dry runs, any retention), health reports, ticks forward and back, and
//! commits, some of which the store refuses.
//!
//! Input: one action per byte (and the bytes it reads for its choices);
//! at most 24 actions run before a commit (the patch log keeps 64).
//!
//! Asserts after every commit, per session: versions are contiguous (the
//! patch log has no gap and ends at the row's version; every version since
//! the last commit has its patch); applying the new patches to the last
//! state gives the stored state and status; each (client, seq) is applied
//! at most once, in increasing order per client, and never after being
//! rejected; a client's sequence never goes back; a session leaves the
//! store only when a sweep removed it, with its patches. Per answer given
//! in the committed batch: an ack (not a duplicate) names an op the store
//! holds at that version; a duplicate ack or a reject names a sequence
//! already used; a conflict's state is the state at its version; a
//! `welcome` is at a committed version, its catch-up patches are exactly
//! those after `haveVersion` (or the state at its version), its
//! `appliedSeq` is one the client used; a GET shows a committed state.
//! After a refused commit the store is as before. No call panics or
//! answers `SERVER_STORAGE_ERROR` or `INTERNAL_ERROR`.

use std::collections::HashSet;

use serde_json::{json, Value};
use sessile::core::error::SessileError;
use sessile::core::lifecycle;
use sessile::core::protocol::{Hello, Message, Op, OpId, PROTOCOL_VERSION};
use sessile_server::maintenance::SweepOptions;
use sessile_server::sessions::{CreateRequest, Limits, Sessions};
use sessile_server::store::MemoryStore;

use crate::input::Input;
use crate::session_model::{Seen, Tracked};

/// The clock at the start: a date in 2023, in ms.
const START_MS: u64 = 1_700_000_000_000;
/// Most sessions one input creates.
const MAX_SESSIONS: usize = 6;
/// Most actions between two commits.
const MAX_BATCH: usize = 24;
/// The clients that send ops.
const CLIENTS: [&str; 3] = [
    "0123456789abcdef0123456789abcdef",
    "fedcba9876543210fedcba9876543210",
    "00000000000000000000000000000000",
];
/// A token no session has.
const WRONG_TOKEN: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Whether to print each call and its answer (`SESSILE_FUZZ_TRACE=1`), to
/// read what a crashing input did.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SESSILE_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut h = Harness::new();
    let mut input = Input::new(data);
    while !input.is_empty() {
        h.step(&mut input);
    }
    h.commit(false);
}

struct Harness {
    sessions: Sessions,
    store: MemoryStore,
    now: u64,
    tracked: Vec<Tracked>,
    /// Sessions created in the batch under way: (created, state, statuses).
    created: Vec<(sessile_server::sessions::Created, Value, Vec<String>)>,
    seen: Vec<Seen>,
    creates: usize,
    batch: usize,
}

/// A declared flow the creates may ask for.
fn shop_flow() -> Value {
    json!({
        "initial": "cart", "name": "shop",
        "statuses": { "cart": "active", "paying": "waiting", "paid": "closed",
                      "expired": "expired", "terminated": "closed" },
        "transitions": { "cart": ["paying", "expired", "terminated"],
                         "paying": ["paid", "terminated"] },
    })
}

fn statuses_of(flow: &Option<Value>) -> Vec<String> {
    match flow {
        None => names(&lifecycle::CHECKOUT),
        Some(Value::String(n)) => lifecycle::flow(n).map(names).unwrap_or_default(),
        Some(table) => table["statuses"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

fn names(flow: &lifecycle::Flow) -> Vec<String> {
    flow.statuses.iter().map(|(s, _)| s.to_string()).collect()
}

impl Harness {
    fn new() -> Self {
        let store = MemoryStore::new();
        let limits = Limits {
            max_state_bytes: 256,
            max_sessions_per_key: 2,
            heartbeat_ms: 5_000,
            stale_warning_secs: 15 * 60,
            stale_secs: 20 * 60,
            retention_secs: 3_600,
            audit_retention_secs: 7_200,
        };
        Harness {
            sessions: Sessions::new(Box::new(store.clone()), limits),
            store,
            now: START_MS,
            tracked: Vec::new(),
            created: Vec::new(),
            seen: Vec::new(),
            creates: 0,
            batch: 0,
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let action = input.byte();
        trace!(
            "t={} action {}",
            self.now.saturating_sub(START_MS),
            action % 16
        );
        if self.tracked.is_empty() && action % 16 != 15 {
            self.create(input);
        } else {
            match action % 16 {
                0 | 1 => self.create(input),
                2 => self.hello(input),
                3..=6 => self.op(input, false),
                7 => self.op(input, true),
                8 => self.extend(input),
                9 => self.end(input),
                10 => self.get(input),
                11 => self.sweep(input),
                12 => self.report(input),
                13 => self.tick(input),
                14 => self.commit(input.one_in(8)),
                _ => self.tick(input),
            }
        }
        self.batch += 1;
        if self.batch >= MAX_BATCH {
            self.commit(false);
        }
    }

    /// A failed call: never a storage or internal error.
    fn refused(&self, what: &str, e: &SessileError) {
        assert!(
            !matches!(e.code(), "SERVER_STORAGE_ERROR" | "INTERNAL_ERROR"),
            "{what}: {e:?}"
        );
    }

    /// Picks a session, returning its index.
    fn session(&self, input: &mut Input<'_>) -> usize {
        input.below(self.tracked.len())
    }

    fn create(&mut self, input: &mut Input<'_>) {
        if self.creates >= MAX_SESSIONS {
            return;
        }
        self.creates += 1;
        let flow = match input.below(6) {
            0 | 1 => None,
            2 => Some(json!("table")),
            3 => Some(shop_flow()),
            4 => Some(json!("checkout")),
            _ => Some(input.value(1)),
        };
        let state = if input.one_in(8) {
            Some(input.value(2))
        } else if input.one_in(4) {
            None
        } else {
            Some(input.object(2))
        };
        let ttl_seconds = match input.below(6) {
            0 => None,
            1 => Some(60),
            2 => Some(59),
            3 => Some(86_400),
            4 => Some(86_401),
            _ => Some(60 + u64::from(input.u16())),
        };
        let key = match input.below(3) {
            0 => None,
            1 => Some("k1".to_string()),
            _ => Some("k2".to_string()),
        };
        let statuses = statuses_of(&flow);
        let initial = state.clone().unwrap_or_else(|| json!({}));
        let req = CreateRequest {
            flow,
            state,
            ttl_seconds,
            key,
        };
        let result = self.sessions.create(req, self.now);
        trace!("  create -> {result:?}");
        match result {
            Ok(created) => {
                assert!(sessile::core::protocol::is_id(&created.id));
                assert_eq!(created.version, 1);
                self.created.push((created, initial, statuses));
            }
            Err(e) => self.refused("create", &e),
        }
    }

    fn client(input: &mut Input<'_>) -> String {
        input.pick(&CLIENTS).to_string()
    }

    fn token(&self, input: &mut Input<'_>, i: usize) -> String {
        if input.one_in(16) {
            WRONG_TOKEN.to_string()
        } else {
            self.tracked[i].token.clone()
        }
    }

    /// After a call on session `i` failed: a removed session (even one
    /// removed earlier in the batch under way) is not found.
    fn failed(&self, what: &str, i: usize, e: &SessileError) {
        self.refused(what, e);
        if self.gone(i) {
            assert_eq!(e.code(), "SESSION_NOT_FOUND", "{what} of a removed session");
        }
    }

    /// Whether a sweep removed session `i`, committed or in the batch under way.
    fn gone(&self, i: usize) -> bool {
        self.tracked[i].removed || self.tracked[i].removed_pending
    }

    fn hello(&mut self, input: &mut Input<'_>) {
        let i = self.session(input);
        let t = &self.tracked[i];
        let have = match input.below(8) {
            0 => t.version,
            1 => t.spec_version,
            2 => 0,
            3 => t
                .spec_version
                .saturating_sub(1 + u64::from(input.byte() % 80)),
            4 => t.spec_version + 1,
            5 => u64::MAX,
            6 => u64::from(input.byte()),
            _ => input.u64(),
        };
        let hello = Hello {
            protocol: PROTOCOL_VERSION.into(),
            session: t.id.clone(),
            token: self.token(input, i),
            client: Self::client(input),
            have_version: have,
        };
        let result = self.sessions.hello(&hello, self.now);
        trace!("  hello {i} have {have} -> {result:?}");
        match result {
            Ok(welcome) => {
                assert!(!self.gone(i), "welcome to a removed session");
                let t = &mut self.tracked[i];
                t.spec_version = t.spec_version.max(welcome.version);
                self.seen.push(Seen::Welcome {
                    session: i,
                    client: hello.client,
                    have,
                    welcome,
                });
            }
            Err(e) => self.failed("hello", i, &e),
        }
    }

    fn op(&mut self, input: &mut Input<'_>, http: bool) {
        let i = self.session(input);
        let client = Self::client(input);
        let t = &self.tracked[i];
        let last = t.spec_seq.get(&client).copied().unwrap_or(0);
        let seq = match input.below(10) {
            0..=5 => last.saturating_add(1),
            6 => last.max(1),
            7 => last.saturating_add(2),
            8 => 1,
            _ => u64::MAX,
        };
        let base = match input.below(9) {
            0..=3 => t.spec_version,
            4 => t
                .spec_version
                .saturating_sub(1 + u64::from(input.byte() % 70)),
            5 => 0,
            6 => t.spec_version + 1,
            7 => u64::MAX,
            _ => t.version,
        };
        let patch = if input.one_in(16) {
            input.value(2)
        } else {
            input.object(2)
        };
        let to = if !t.statuses.is_empty() && input.one_in(4) {
            Some(t.statuses[input.below(t.statuses.len())].clone())
        } else {
            None
        };
        let id = t.id.clone();
        let op = Op {
            id: OpId { client, seq },
            base,
            patch,
            to,
        };
        trace!("  op {i} http={http} {op:?}");
        let answer = if http {
            let token = self.token(input, i);
            self.sessions
                .usable(&id, &token, self.now)
                .and_then(|()| self.sessions.op(&id, op, self.now))
        } else {
            self.sessions.op(&id, op, self.now)
        };
        trace!("    -> {answer:?}");
        match answer {
            Ok(msg) => {
                assert!(!self.gone(i), "an answer from a removed session");
                let t = &mut self.tracked[i];
                match &msg {
                    Message::Ack(a) if !a.duplicate => {
                        t.spec_seq.insert(a.id.client.clone(), a.id.seq);
                        t.spec_version = t.spec_version.max(a.version);
                    }
                    Message::Reject(r) if r.code != "OP_OUT_OF_ORDER" => {
                        t.spec_seq.insert(r.id.client.clone(), r.id.seq);
                    }
                    _ => {}
                }
                self.seen.push(Seen::Reply { session: i, msg });
            }
            Err(e) => self.failed("op", i, &e),
        }
    }

    fn extend(&mut self, input: &mut Input<'_>) {
        let i = self.session(input);
        let seconds = match input.below(5) {
            0 => 0,
            1 => 1,
            2 => 86_400,
            3 => 86_401,
            _ => u64::from(input.u16()),
        };
        let id = self.tracked[i].id.clone();
        let result = if input.one_in(2) {
            let token = self.token(input, i);
            self.sessions
                .extend_with_token(&id, &token, seconds, self.now)
        } else {
            let client = Self::client(input);
            self.sessions.extend(&id, seconds, &client, self.now)
        };
        trace!("  extend {i} {seconds} -> {result:?}");
        match result {
            Ok(_) => assert!(!self.gone(i), "a removed session extended"),
            Err(e) => self.failed("extend", i, &e),
        }
    }

    fn end(&mut self, input: &mut Input<'_>) {
        let i = self.session(input);
        let id = self.tracked[i].id.clone();
        let token = self.token(input, i);
        let result = self.sessions.end(&id, &token, self.now);
        trace!("  end {i} -> {result:?}");
        match result {
            Ok(_) => assert!(!self.gone(i), "a removed session ended"),
            Err(e) => self.failed("end", i, &e),
        }
    }

    fn get(&mut self, input: &mut Input<'_>) {
        let i = self.session(input);
        let id = self.tracked[i].id.clone();
        let token = self.token(input, i);
        if input.one_in(2) {
            match self.sessions.validate(&id, &token, self.now) {
                Ok(v) if self.gone(i) => {
                    assert_eq!(
                        v.code,
                        Some("SESSION_NOT_FOUND"),
                        "validate of a removed session"
                    )
                }
                Ok(_) => {}
                Err(e) => self.failed("validate", i, &e),
            }
            return;
        }
        match self.sessions.get(&id, &token, self.now) {
            Ok(view) => {
                assert!(!self.gone(i), "GET of a removed session");
                assert_eq!(view.id, id);
                self.seen.push(Seen::View {
                    session: i,
                    version: view.version,
                    status: view.status,
                    state: view.state,
                });
            }
            Err(e) => self.failed("get", i, &e),
        }
    }

    fn sweep(&mut self, input: &mut Input<'_>) {
        let older_than_secs = match input.below(4) {
            0 => None,
            1 => Some(0),
            2 => Some(u64::from(input.u16())),
            _ => Some(u64::MAX),
        };
        let statuses = match input.below(3) {
            0 => None,
            1 => Some(vec!["terminated".into(), "expired".into()]),
            _ => Some(vec!["CLOSED".into(), "paid".into()]),
        };
        let opts = SweepOptions {
            older_than_secs,
            statuses,
            dry_run: input.one_in(4),
            audit_older_than_secs: None,
            // A sweep limited to ids, or pinned to a dry run's cut-offs, is
            // checked by server/tests/admin.rs; here the committed corpora
            // keep their meaning.
            ids: None,
            expire: None,
            remove: None,
            cutoff_ms: None,
            audit_cutoff_ms: None,
        };
        let result = self.sessions.sweep(&opts, self.now);
        trace!("  sweep {opts:?} -> {result:?}");
        match result {
            Ok(report) => {
                assert!(report.problems.is_empty(), "{:?}", report.problems);
                if !opts.dry_run {
                    for id in report.removed {
                        if let Some(t) = self.tracked.iter_mut().find(|t| t.id == id) {
                            t.removed_pending = true;
                        }
                        self.seen.push(Seen::Removed(id));
                    }
                }
            }
            Err(e) => self.refused("sweep", &e),
        }
    }

    fn report(&mut self, input: &mut Input<'_>) {
        if input.one_in(2) {
            let health = self.sessions.health(self.now).expect("health");
            assert!(health.problems.iter().all(|p| !p.contains("does not read")));
        } else {
            self.sessions.stats(self.now).expect("stats");
        }
    }

    /// Moves the clock. A batch of the engine takes milliseconds: a step of
    /// more than a second (or back) starts a new batch.
    fn tick(&mut self, input: &mut Input<'_>) {
        let b = u64::from(input.byte());
        let to = match input.below(6) {
            0 => self.now + b,
            1 => self.now + b * 1_000,
            2 => self.now + b * 60_000,
            3 => self.now + (b % 30) * 3_600_000,
            4 => self.now.saturating_sub(b * 1_000),
            _ => self.now + 1,
        };
        if to > self.now + 1_000 || to < self.now {
            self.commit(false);
        }
        self.now = to;
    }

    /// Commits the batch (`refuse`: the store refuses it) and checks it.
    fn commit(&mut self, refuse: bool) {
        self.batch = 0;
        if refuse {
            self.store.refuse_next_commits(1);
        }
        let result = self.sessions.commit_batch();
        trace!("  commit (refused: {refuse}) -> {result:?}");
        let seen = std::mem::take(&mut self.seen);
        let created = std::mem::take(&mut self.created);
        match result {
            Err(e) => {
                assert!(refuse, "a commit failed: {e:?}");
                assert_eq!(e.code(), "SERVER_STORAGE_ERROR");
                for (c, _, _) in &created {
                    assert!(
                        self.store.record(&c.id).is_none(),
                        "a refused create stored"
                    );
                }
                for t in self.tracked.iter_mut().filter(|t| !t.removed) {
                    let stored = self.store.record(&t.id).map(|r| r.version);
                    assert_eq!(stored, Some(t.version), "a refused commit changed {}", t.id);
                    t.roll_back();
                }
            }
            Ok(()) => {
                assert!(!refuse, "a refused commit succeeded");
                for (c, state, statuses) in created {
                    self.tracked
                        .push(Tracked::new(c.id, c.token, statuses, state, c.status));
                }
                let removed: HashSet<String> = seen
                    .iter()
                    .filter_map(|s| match s {
                        Seen::Removed(id) => Some(id.clone()),
                        _ => None,
                    })
                    .collect();
                for t in self.tracked.iter_mut().filter(|t| !t.removed) {
                    t.sync(&self.store, &removed);
                }
                for s in &seen {
                    let i = match s {
                        Seen::Reply { session, .. }
                        | Seen::Welcome { session, .. }
                        | Seen::View { session, .. } => *session,
                        Seen::Removed(_) => continue,
                    };
                    // A session removed in this batch took its answers' effects with it.
                    if !self.tracked[i].removed {
                        self.tracked[i].check_seen(s);
                    }
                }
            }
        }
    }
}
