//! Session operations on the engine thread: create, hello (with catch-up),
//! ops (exactly-once by client sequence, optimistic concurrency with rebase
//! of disjoint patches, transitions checked by the flow's table, built-in or
//! declared by the page and stored with the session), get,
//! validate, extend, and end and expiry (both erase the state and the patch
//! log's values). Every change is queued as a [`Change`] and committed by
//! the engine before anyone is answered.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sessile::core::error::SessileError;
use sessile::core::flow_table::{DeclaredFlow, SessionFlow};
use sessile::core::lifecycle::{self, FlowRules};
use sessile::core::merge_patch;
use sessile::core::protocol::{
    Ack, CatchUp, Current, Ended, Hello, LoggedPatch, Message, Op, OpId, Reject, Welcome,
    PROTOCOL_VERSION,
};

use crate::clients::{self, Admission};
use crate::engine::{Hub, Metrics, Push};
use crate::ids;
use crate::store::{
    storage_error, AuditEntry, Change, SessionRecord, Store, Stored, PATCH_LOG_LEN,
};

type Result<T, E = SessileError> = std::result::Result<T, E>;

/// Cached sessions above this count are dropped after a commit.
const MAX_CACHED: usize = 100_000;
/// Longest `key` of a create request, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 256;
/// Parsed declared tables kept (by their text) before the cache starts over.
const MAX_CACHED_FLOWS: usize = 1024;

/// The limits the engine enforces.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest state, bytes of JSON.
    pub max_state_bytes: usize,
    /// Most live sessions per client key.
    pub max_sessions_per_key: u64,
    /// Heartbeat interval told to clients, ms.
    pub heartbeat_ms: u64,
    /// Waiting this long is a warning, s.
    pub stale_warning_secs: u64,
    /// Waiting this long is stale, s.
    pub stale_secs: u64,
    /// Ended sessions older than this are removed by the periodic sweep, s.
    pub retention_secs: u64,
    /// The audit of sessions removed this long ago is deleted by the sweep, s.
    pub audit_retention_secs: u64,
}

impl Limits {
    /// The limits `config` sets.
    pub fn of(config: &crate::config::Config) -> Self {
        Limits {
            max_state_bytes: config.max_state_bytes,
            max_sessions_per_key: config.max_sessions_per_key,
            heartbeat_ms: config.heartbeat_ms,
            stale_warning_secs: config.stale_warning_secs,
            stale_secs: config.stale_secs,
            retention_secs: config.retention_secs,
            audit_retention_secs: config.audit_retention_secs,
        }
    }
}

/// A session in memory with its recent patches and client sequences.
pub(crate) struct Live {
    pub(crate) rec: SessionRecord,
    /// The version and expiry the store holds (as loaded or last
    /// committed); `None` until a new session's first commit.
    stored: Option<Stored>,
    pub(crate) flow: SessionFlow,
    recent: VecDeque<LoggedPatch>,
}

/// A request to create a session (`POST /v1/sessions`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateRequest {
    /// A built-in flow's name, `checkout` (default) or `table`, or a
    /// declared table (`{initial, statuses, transitions, expired?, ended?,
    /// name?}`, validated by the core).
    pub flow: Option<Value>,
    /// Initial state, a JSON object (default `{}`).
    pub state: Option<Value>,
    /// TTL in seconds (default 1800, at least 60).
    pub ttl_seconds: Option<u64>,
    /// Client key the per-key limit counts against (at most 256 bytes).
    pub key: Option<String>,
}

/// A created session: the only answer that carries its token.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// Session id.
    pub id: String,
    /// Secret token; send it in `Authorization: Bearer` or `hello`.
    pub token: String,
    /// Flow name.
    pub flow: String,
    /// Initial status.
    pub status: String,
    /// Version 1.
    pub version: u64,
    /// Expiry, ms since the Unix epoch.
    pub expires_at: u64,
}

/// A session as `GET` shows it to its token holder.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    /// Session id.
    pub id: String,
    /// Flow name.
    pub flow: String,
    /// Status.
    pub status: String,
    /// Version.
    pub version: u64,
    /// State.
    pub state: Value,
    /// Creation, ms.
    pub created_at: u64,
    /// Last change, ms.
    pub updated_at: u64,
    /// Expiry, ms.
    pub expires_at: u64,
    /// A declared flow's table, as the server stores it (every field given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<Value>,
}

/// The answer to validate: valid, or a code, never session data.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Validation {
    /// Whether the session can be used.
    pub valid: bool,
    /// Why not (`SESSION_NOT_FOUND`, `SESSION_EXPIRED`, `SESSION_CLOSED`, `INVALID_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    /// Expiry of a valid session, ms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// All sessions, as the engine thread sees them.
pub struct Sessions {
    store: Box<dyn Store>,
    pub(crate) cache: HashMap<String, Live>,
    changes: Vec<Change>,
    /// Sessions changed since the last commit: their rows are written once
    /// per batch, however many ops changed them.
    pub(crate) dirty: HashSet<String>,
    pushes: Vec<(String, Push)>,
    /// What other servers committed, read from the store in this batch, to
    /// push to this server's listeners whatever becomes of the batch.
    facts: Vec<(String, Push)>,
    /// This server's listeners, by session.
    pub(crate) hub: Hub,
    /// The state a `VERSION_CONFLICT` reject carries, by session, with its
    /// version: copied once per version and batch, shared by every reject.
    conflict_states: HashMap<String, (u64, Arc<Value>)>,
    created_per_key: HashMap<String, u64>,
    /// Sessions the sweeper removed in the batch under way: not found until
    /// the commit deletes them (the store still holds their older rows).
    pub(crate) removed: HashSet<String>,
    /// Declared flows read from the store, by their stored text.
    flows: HashMap<String, SessionFlow>,
    /// The ops of the batch under way, counted into [`Metrics`] once its
    /// commit succeeds (a batch run again is not counted twice).
    counted: OpCounts,
    /// This server's name among those sharing one database.
    pub instance: String,
    /// The enforced limits.
    pub limits: Limits,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
}

impl Sessions {
    /// Sessions kept in `store`, under `limits`.
    pub fn new(store: Box<dyn Store>, limits: Limits) -> Self {
        Sessions {
            store,
            cache: HashMap::new(),
            changes: Vec::new(),
            dirty: HashSet::new(),
            pushes: Vec::new(),
            facts: Vec::new(),
            hub: Hub::default(),
            conflict_states: HashMap::new(),
            created_per_key: HashMap::new(),
            removed: HashSet::new(),
            flows: HashMap::new(),
            counted: OpCounts::default(),
            instance: String::new(),
            limits,
            metrics: Arc::default(),
        }
    }

    /// Commits the queued changes in one transaction; returns the outcome and
    /// what to push when it succeeded.
    pub(crate) fn commit(&mut self) -> (Result<()>, Vec<(String, Push)>) {
        let dirty: Vec<String> = self.dirty.drain().collect();
        let mut batch: Vec<Change> = dirty
            .iter()
            .filter_map(|id| {
                self.cache.get(id).map(|l| Change::Upsert {
                    record: l.rec.clone(),
                    stored: l.stored,
                })
            })
            .collect();
        batch.append(&mut self.changes);
        let result = self.store.commit(&batch);
        let counted = std::mem::take(&mut self.counted);
        self.created_per_key.clear();
        self.conflict_states.clear();
        self.removed.clear();
        let pushes = std::mem::take(&mut self.pushes);
        Metrics::inc(&self.metrics.commits);
        if let Err(e) = &result {
            Metrics::inc(&self.metrics.commit_errors);
            if crate::store::is_moved(e) {
                // Nothing of the batch was stored: its sessions, and those
                // another server wrote, are read again; the rest stay.
                for id in self.store.moved() {
                    self.cache.remove(&id);
                }
                for change in &batch {
                    self.cache.remove(change.session());
                }
            } else {
                // Memory may hold what the store refused: forget it all.
                self.cache.clear();
            }
            return (result, pushes);
        }
        counted.add_to(&self.metrics);
        if self.cache.len() > MAX_CACHED {
            self.cache.clear();
        } else {
            for id in &dirty {
                if let Some(live) = self.cache.get_mut(id) {
                    // A new row is inserted at revision 0; every update bumps it.
                    let rev = live.stored.map_or(0, |s| s.rev + 1);
                    live.stored = Some(Stored::at(&live.rec, rev));
                }
            }
        }
        (result, pushes)
    }

    /// Forgets every change not committed yet (after a job panicked midway):
    /// sessions are read from the store again when next used.
    pub(crate) fn discard_uncommitted(&mut self) {
        self.cache.clear();
        self.changes.clear();
        self.dirty.clear();
        self.pushes.clear();
        self.counted = OpCounts::default();
        self.created_per_key.clear();
        self.conflict_states.clear();
        // Their removal was not committed: the store still holds them.
        self.removed.clear();
    }

    /// What other servers committed that this batch read (see `facts`).
    pub(crate) fn take_facts(&mut self) -> Vec<(String, Push)> {
        std::mem::take(&mut self.facts)
    }

    pub(crate) fn store(&mut self) -> &mut dyn Store {
        &mut *self.store
    }

    /// The flow of a stored session: the built-in one of that name, or its
    /// declared table (read once per distinct table).
    pub(crate) fn flow_of(&mut self, name: &str, table: Option<&str>) -> Result<SessionFlow> {
        let Some(text) = table else {
            return lifecycle::flow(name).map(SessionFlow::Builtin);
        };
        if let Some(flow) = self.flows.get(text) {
            return Ok(flow.clone());
        }
        let unreadable = |e: &dyn std::fmt::Display| {
            storage_error(format!("stored table of flow `{name}`: {e}"))
        };
        let value: Value = serde_json::from_str(text).map_err(|e| unreadable(&e))?;
        let flow = DeclaredFlow::from_json(&value).map_err(|e| unreadable(&e))?;
        let flow = SessionFlow::Declared(Arc::new(flow));
        if self.flows.len() >= MAX_CACHED_FLOWS {
            self.flows.clear();
        }
        self.flows.insert(text.to_string(), flow.clone());
        Ok(flow)
    }

    /// The session `id`, loaded into memory if needed.
    pub(crate) fn live(&mut self, id: &str) -> Result<&mut Live> {
        if self.removed.contains(id) {
            return Err(SessileError::SessionNotFound);
        }
        if !self.cache.contains_key(id) {
            let loaded = self.store.load(id)?.ok_or(SessileError::SessionNotFound)?;
            let record = &loaded.record;
            let flow = self.flow_of(&record.flow, record.flow_table.as_deref())?;
            if let Some(pushed) = self.hub.pushed(id) {
                // Listeners here may lack what another server committed:
                // the stored patches newer than what was pushed here go to
                // them, and each connection passes on only the versions it
                // lacks, in order (ws.rs).
                for p in loaded.recent.iter().filter(|p| p.version > pushed) {
                    self.facts.push((id.to_string(), Push::Patch(p.clone())));
                }
                let expires_at = loaded.record.expires_at_ms;
                let told = self.hub.told_expiry(id);
                if told.is_some_and(|t| t != expires_at) && !flow.is_terminal(&loaded.record.status)
                {
                    // Another server set it: what was pushed is compared,
                    // not the copy here, which may have been forgotten.
                    let by = String::new();
                    let push = Push::Extended { expires_at, by };
                    self.facts.push((id.to_string(), push));
                }
                if pushed < loaded.record.version && flow.is_terminal(&loaded.record.status) {
                    let ended = ended_of(&loaded.record, &flow);
                    self.facts.push((id.to_string(), Push::Ended(ended)));
                }
            }
            let live = Live {
                stored: Some(Stored::at(&loaded.record, loaded.rev)),
                flow,
                recent: loaded.recent.into(),
                rec: loaded.record,
            };
            self.cache.insert(id.to_string(), live);
        }
        self.cache.get_mut(id).ok_or(SessileError::SessionNotFound)
    }

    /// The session `id` if `token` is its token; `SESSION_NOT_FOUND` or `INVALID_TOKEN`.
    fn authorized(&mut self, id: &str, token: &str) -> Result<&mut Live> {
        let live = self.live(id)?;
        if ids::token_matches(token, &live.rec.token_hash) {
            Ok(live)
        } else {
            Err(SessileError::InvalidToken)
        }
    }

    /// Checks `id` + `token` and that the session is usable at `now`,
    /// expiring it first when its TTL has passed.
    pub fn usable(&mut self, id: &str, token: &str, now: u64) -> Result<()> {
        self.authorized(id, token)?;
        self.expire_if_due(id, now, "server")?;
        let live = self.live(id)?;
        live.flow
            .validity(&live.rec.status, live.rec.expires_at_ms, now)
    }

    /// Creates a session. The per-key limit applies to sessions created
    /// with the same `key` (a table, a shop); without a key there is none
    /// (an address would put everyone behind one proxy under one key).
    pub fn create(&mut self, req: CreateRequest, now: u64) -> Result<Created> {
        let flow = match &req.flow {
            None => SessionFlow::Builtin(&lifecycle::CHECKOUT),
            Some(flow) => SessionFlow::from_json(flow)?,
        };
        let ttl = lifecycle::ttl_ms(req.ttl_seconds)?;
        let state = req.state.unwrap_or_else(|| Value::Object(Map::new()));
        if !state.is_object() {
            return Err(SessileError::InvalidState {
                reason: format!(
                    "a session's state must be a JSON object, got {}",
                    json_kind(&state)
                ),
            });
        }
        if let Some(key) = req.key.as_ref().filter(|k| k.len() > MAX_KEY_BYTES) {
            return Err(SessileError::InvalidOptions {
                option: "key",
                reason: format!(
                    "{} bytes is over the limit of {MAX_KEY_BYTES} bytes",
                    key.len()
                ),
            });
        }
        self.check_size(&state)?;
        let key = req.key;
        if let Some(key) = &key {
            let mut live = self.created_per_key.get(key).copied().unwrap_or(0);
            for s in self.store.scan_key(key, now)? {
                // A session whose flow does not read counts as live.
                let ended = self
                    .flow_of(&s.flow, s.flow_table.as_deref())
                    .is_ok_and(|f| f.is_terminal(&s.status));
                live += u64::from(!ended);
            }
            if live >= self.limits.max_sessions_per_key {
                return Err(SessileError::SessionLimitReached {
                    limit: self.limits.max_sessions_per_key,
                });
            }
            *self.created_per_key.entry(key.clone()).or_default() += 1;
        }
        let (id, token) = (ids::session_id(), ids::token());
        let rec = SessionRecord {
            id: id.clone(),
            token_hash: ids::token_hash(&token),
            flow: flow.name().into(),
            flow_table: flow.table().map(|t| t.to_string()),
            status: flow.initial().into(),
            status_since_ms: now,
            key,
            state,
            version: 1,
            created_at_ms: now,
            updated_at_ms: now,
            expires_at_ms: now.saturating_add(ttl),
            clients: Default::default(),
        };
        self.changes.push(Change::Audit(audit(
            &rec,
            now,
            "http",
            "create",
            keys_of(&rec.state),
            None,
        )));
        self.dirty.insert(id.clone());
        let created = Created {
            id: id.clone(),
            token,
            flow: rec.flow.clone(),
            status: rec.status.clone(),
            version: 1,
            expires_at: rec.expires_at_ms,
        };
        self.cache.insert(
            id,
            Live {
                rec,
                stored: None,
                flow,
                recent: VecDeque::new(),
            },
        );
        Metrics::inc(&self.metrics.sessions_created);
        Ok(created)
    }

    fn check_size(&self, state: &Value) -> Result<()> {
        let size = serde_json::to_vec(state).map_or(0, |v| v.len());
        if size > self.limits.max_state_bytes {
            return Err(SessileError::StateTooLarge {
                size: size as u64,
                limit: self.limits.max_state_bytes as u64,
            });
        }
        Ok(())
    }

    /// Answers a WebSocket `hello`: the session's version and what the
    /// client missed since `haveVersion`.
    pub fn hello(&mut self, h: &Hello, now: u64) -> Result<Welcome> {
        self.usable(&h.session, &h.token, now)?;
        // A client past the copy here saw another server's commit that
        // has not been heard of yet: read the session as stored rather
        // than answer VERSION_AHEAD (the link would drop acknowledged
        // changes until fan-out caught up).
        if self.live(&h.session)?.rec.version < h.have_version
            && self.moved_elsewhere(&h.session)?
        {
            self.usable(&h.session, &h.token, now)?;
        }
        let heartbeat_ms = self.limits.heartbeat_ms;
        let hub = self.hub.clone();
        let live = self.live(&h.session)?;
        let have = h.have_version;
        let catch_up = CatchUp::since(have, live.rec.version, &live.recent, || {
            live.rec.state.clone()
        })?;
        // What its listeners here were told: an expiry another server
        // sets later is pushed to them as `extended` (see `live`).
        hub.tell_expiry(&h.session, live.rec.expires_at_ms);
        Ok(Welcome {
            protocol: PROTOCOL_VERSION,
            version: live.rec.version,
            status: live.rec.status.clone(),
            expires_at: live.rec.expires_at_ms,
            heartbeat_ms,
            applied_seq: live.rec.clients.applied_seq(&h.client),
            server_time: now,
            catch_up,
        })
    }

    /// Processes one op of an authorized caller: `ack` or `reject`.
    pub fn op(&mut self, session: &str, op: Op, now: u64) -> Result<Message> {
        self.expire_if_due(session, now, "server")?;
        if self.live(session)?.rec.version < op.base && self.moved_elsewhere(session)? {
            // Made on another server's commit not heard of yet: decide on
            // the session as stored, not VERSION_AHEAD on the old copy.
            return self.op(session, op, now);
        }
        let live = self.live(session)?;
        let version = live.rec.version;
        let admission = live.rec.clients.admit(&op.id.client, op.id.seq, op.base);
        match admission {
            Admission::Duplicate => {
                self.counted.duplicate += 1;
                return Ok(Message::Ack(Ack {
                    version,
                    id: op.id,
                    duplicate: true,
                    rebased: false,
                }));
            }
            Admission::OutOfOrder { expected } => {
                if self.moved_elsewhere(session)? {
                    // Another server had committed this client's earlier
                    // ops: decide on the session as stored.
                    return self.op(session, op, now);
                }
                let e = SessileError::OpOutOfOrder {
                    expected,
                    got: op.id.seq,
                };
                self.counted.rejected.push(e.code());
                return Ok(Message::Reject(Reject::new(op.id, &e, None)));
            }
            Admission::Forgotten | Admission::Next => {}
        }
        // From here the sequence number is used, whatever the outcome.
        let prune_after = clients::prune_after_ms(live.rec.created_at_ms, live.rec.expires_at_ms);
        live.rec
            .clients
            .record(&op.id.client, op.id.seq, now, version, prune_after);
        let outcome = if admission == Admission::Forgotten {
            // It may have been applied before its client was forgotten.
            live.flow
                .validity(&live.rec.status, live.rec.expires_at_ms, now)
                .and(Err(SessileError::VersionConflict {
                    base: op.base,
                    current: version,
                }))
        } else {
            self.try_apply(session, &op, now)
        };
        self.dirty.insert(session.to_string());
        match outcome {
            Ok(rebased) => {
                self.counted.applied += 1;
                if rebased {
                    self.counted.rebased += 1;
                }
                let version = self.live(session)?.rec.version;
                Ok(Message::Ack(Ack {
                    id: op.id,
                    version,
                    duplicate: false,
                    rebased,
                }))
            }
            Err(e) => {
                self.counted.rejected.push(e.code());
                let current = match e {
                    SessileError::VersionConflict { .. } => Some(self.current(session)?),
                    _ => None,
                };
                Ok(Message::Reject(Reject::new(op.id, &e, current)))
            }
        }
    }

    /// The session as a `VERSION_CONFLICT` reject shows it; the state is
    /// copied once per version and batch, and shared.
    fn current(&mut self, session: &str) -> Result<Current> {
        let rec = &self.live(session)?.rec;
        let (version, status) = (rec.version, rec.status.clone());
        let state = match self.conflict_states.get(session) {
            Some((v, state)) if *v == version => state.clone(),
            _ => {
                let state = Arc::new(self.live(session)?.rec.state.clone());
                let entry = (version, state.clone());
                self.conflict_states.insert(session.to_string(), entry);
                state
            }
        };
        Ok(Current {
            version,
            status,
            state,
        })
    }

    /// Checks and applies an op whose sequence is the next one; `Ok(true)`
    /// when it was rebased over newer disjoint changes.
    fn try_apply(&mut self, session: &str, op: &Op, now: u64) -> Result<bool> {
        let max_state = self.limits.max_state_bytes;
        let live = self.live(session)?;
        live.flow
            .validity(&live.rec.status, live.rec.expires_at_ms, now)?;
        if !op.patch.is_object() {
            return Err(SessileError::ProtocolError {
                reason: "an op's patch must be a JSON object (a merge patch of the state)".into(),
            });
        }
        let version = live.rec.version;
        if op.base > version {
            return Err(SessileError::VersionAhead {
                have: op.base,
                current: version,
            });
        }
        let rebased = op.base < version;
        if rebased {
            let conflict = SessileError::VersionConflict {
                base: op.base,
                current: version,
            };
            let reaches = live
                .recent
                .front()
                .is_some_and(|p| p.version <= op.base.saturating_add(1));
            // The client's own earlier ops were in its view when it made this
            // one (pipelined ops share a base): they never conflict with it.
            let own = |p: &&LoggedPatch| p.op.as_ref().is_some_and(|o| o.client == op.id.client);
            let newer = live
                .recent
                .iter()
                .filter(|p| p.version > op.base)
                .filter(|p| !own(p));
            let clash = newer.into_iter().any(|p| {
                merge_patch::overlaps(&p.patch, &op.patch)
                    || (op.to.is_some() && p.status.is_some())
            });
            if !reaches || clash {
                return Err(conflict);
            }
        }
        let to = op.to.as_deref().filter(|t| *t != live.rec.status);
        if let Some(to) = to {
            live.flow.check(&live.rec.status, to)?;
        }
        let mut state = live.rec.state.clone();
        merge_patch::apply(&mut state, &op.patch);
        let size = serde_json::to_vec(&state).map_or(0, |v| v.len());
        if size > max_state {
            return Err(SessileError::StateTooLarge {
                size: size as u64,
                limit: max_state as u64,
            });
        }
        let to = to.map(str::to_string);
        self.record(
            session,
            state,
            op.patch.clone(),
            to,
            Some(op.id.clone()),
            now,
            &op.id.client.clone(),
            "op",
        )?;
        Ok(rebased)
    }

    /// Makes a change: new state and maybe status, version + 1, logged,
    /// audited and queued for commit and push.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        session: &str,
        state: Value,
        patch: Value,
        to: Option<String>,
        op: Option<OpId>,
        now: u64,
        actor: &str,
        action: &str,
    ) -> Result<u64> {
        let live = self.live(session)?;
        live.rec.state = state;
        live.rec.version += 1;
        live.rec.updated_at_ms = now;
        let mut keys = merge_patch::touched_keys(&patch);
        if let Some(to) = &to {
            keys.push(format!("status:{}->{to}", live.rec.status));
            live.rec.status = to.clone();
            live.rec.status_since_ms = now;
        }
        let logged = LoggedPatch {
            version: live.rec.version,
            patch,
            status: to,
            op,
        };
        live.recent.push_back(logged.clone());
        while live.recent.len() > PATCH_LOG_LEN {
            live.recent.pop_front();
        }
        let seq = logged.op.as_ref().map(|o| o.seq);
        let entry = audit(&live.rec, now, actor, action, keys, seq);
        let version = live.rec.version;
        self.dirty.insert(session.to_string());
        self.changes.push(Change::Patch {
            session: session.into(),
            patch: logged.clone(),
        });
        self.changes.push(Change::Audit(entry));
        self.pushes.push((session.into(), Push::Patch(logged)));
        Ok(version)
    }

    /// Moves the session to its flow's expired status when its TTL has
    /// passed and its status allows it; `Ok(true)` if it did.
    pub(crate) fn expire_if_due(&mut self, session: &str, now: u64, actor: &str) -> Result<bool> {
        let live = self.live(session)?;
        if !live
            .flow
            .due_to_expire(&live.rec.status, live.rec.expires_at_ms, now)
        {
            return Ok(false);
        }
        let to = live.flow.expired().to_string();
        self.erase(session, to, now, actor, "expire")?;
        self.push_ended(session, &SessileError::SessionExpired)?;
        Metrics::inc(&self.metrics.sessions_expired);
        Ok(true)
    }

    /// The session as its token holder may see it.
    pub fn get(&mut self, id: &str, token: &str, now: u64) -> Result<View> {
        self.usable(id, token, now)?;
        let live = self.live(id)?;
        let r = &live.rec;
        Ok(View {
            table: live.flow.table(),
            id: r.id.clone(),
            flow: r.flow.clone(),
            status: r.status.clone(),
            version: r.version,
            state: r.state.clone(),
            created_at: r.created_at_ms,
            updated_at: r.updated_at_ms,
            expires_at: r.expires_at_ms,
        })
    }

    /// Whether `id` + `token` name a usable session; a code when not.
    pub fn validate(&mut self, id: &str, token: &str, now: u64) -> Result<Validation> {
        match self.usable(id, token, now) {
            Ok(()) => Ok(Validation {
                valid: true,
                code: None,
                expires_at: Some(self.live(id)?.rec.expires_at_ms),
            }),
            Err(
                e @ (SessileError::SessionNotFound
                | SessileError::SessionExpired
                | SessileError::SessionClosed { .. }
                | SessileError::InvalidToken),
            ) => Ok(Validation {
                valid: false,
                code: Some(e.code()),
                expires_at: None,
            }),
            Err(e) => Err(e),
        }
    }

    /// Extends an authorized, usable session by `seconds`; the new expiry,
    /// also pushed as `extended` to the session's other clients (`actor`:
    /// the asking client's id, or `http`).
    pub fn extend(&mut self, id: &str, seconds: u64, actor: &str, now: u64) -> Result<u64> {
        let live = self.live(id)?;
        live.flow
            .validity(&live.rec.status, live.rec.expires_at_ms, now)?;
        live.rec.expires_at_ms = lifecycle::extend(live.rec.expires_at_ms, now, seconds)?;
        let entry = audit(&live.rec, now, actor, "extend", Vec::new(), None);
        let at = live.rec.expires_at_ms;
        self.dirty.insert(id.to_string());
        self.changes.push(Change::Audit(entry));
        let by = actor.to_string();
        let push = Push::Extended { expires_at: at, by };
        self.pushes.push((id.to_string(), push));
        Ok(at)
    }

    /// Checks the token, then [`Sessions::extend`].
    pub fn extend_with_token(
        &mut self,
        id: &str,
        token: &str,
        seconds: u64,
        now: u64,
    ) -> Result<u64> {
        self.usable(id, token, now)?;
        self.extend(id, seconds, "http", now)
    }

    /// Ends the session (its flow's `ended` status) and clears its state;
    /// its connected clients get the clearing patch, then `ended`.
    /// Ending an ended session changes nothing.
    pub fn end(&mut self, id: &str, token: &str, now: u64) -> Result<String> {
        self.authorized(id, token)?;
        self.expire_if_due(id, now, "server")?;
        let live = self.live(id)?;
        if live.flow.is_terminal(&live.rec.status) {
            return Ok(live.rec.status.clone());
        }
        let to = live.flow.ended().to_string();
        self.erase(id, to.clone(), now, "http", "end")?;
        self.push_ended(id, &SessileError::SessionClosed { status: to.clone() })?;
        Ok(to)
    }

    /// Moves session `id` to the terminal status `to` and erases what it
    /// held: the state becomes `{}` (the change, logged and pushed, sets
    /// every key to null) and the older patches, which hold state values,
    /// leave the patch log, in memory and in the store.
    fn erase(&mut self, id: &str, to: String, now: u64, actor: &str, action: &str) -> Result<()> {
        let clear: Map<String, Value> = self
            .live(id)?
            .rec
            .state
            .as_object()
            .map(|m| m.keys().map(|k| (k.clone(), Value::Null)).collect())
            .unwrap_or_default();
        let version = self.record(
            id,
            Value::Object(Map::new()),
            Value::Object(clear),
            Some(to),
            None,
            now,
            actor,
            action,
        )?;
        self.live(id)?.recent.retain(|p| p.version >= version);
        self.changes.push(Change::ErasePatchesBefore {
            session: id.into(),
            version,
        });
        Ok(())
    }

    /// Queues the `ended` push of a session that just ended or expired
    /// (`why`: `SESSION_CLOSED` or `SESSION_EXPIRED`), after its last patch.
    fn push_ended(&mut self, id: &str, why: &SessileError) -> Result<()> {
        let rec = &self.live(id)?.rec;
        let ended = ended_message(rec, why);
        self.pushes.push((id.to_string(), Push::Ended(ended)));
        Ok(())
    }

    /// Another server committed session `id` at `version` with expiry
    /// `expires_at` (`version` 0: it removed the session). A copy in memory
    /// that is older is forgotten; when this server has listeners for the
    /// session it is read again at once, and what they lack is pushed to
    /// them (a new expiry as `extended`, compared with the last one they
    /// were told, whether or not a copy was in memory). A session changed in the batch
    /// under way is left alone: its commit fails, and its jobs run again
    /// on the stored session ([`crate::engine::Engine::call`]).
    pub fn refresh(&mut self, id: &str, version: u64, expires_at: u64) -> Result<()> {
        if self.dirty.contains(id) || self.removed.contains(id) {
            return Ok(());
        }
        let cached = self
            .cache
            .get(id)
            .map(|l| (l.rec.version, l.rec.expires_at_ms));
        let newer = match cached {
            Some((v, e)) => version == 0 || v < version || (v == version && e != expires_at),
            None => version > 0,
        };
        if !newer {
            return Ok(());
        }
        self.cache.remove(id);
        if version == 0 || self.hub.pushed(id).is_none() {
            return Ok(());
        }
        Metrics::inc(&self.metrics.fanout_refreshed);
        // Reading it pushes what the listeners lack, a new expiry too.
        match self.live(id) {
            // Removed meanwhile: nothing to push.
            Ok(_) | Err(SessileError::SessionNotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Whether another server committed session `id` past the copy in
    /// memory (whose notification has not arrived yet); the copy is then
    /// forgotten, to be read again. A refusal that writes nothing
    /// (`OP_OUT_OF_ORDER`) asks first: no conditional write would catch a
    /// decision made on an old copy. One read of the row's version, expiry
    /// and revision (none for a session changed in the batch under way,
    /// whose commit checks for itself, nor with a store only this server
    /// writes).
    fn moved_elsewhere(&mut self, id: &str) -> Result<bool> {
        if !self.store.shared() || self.dirty.contains(id) {
            return Ok(false);
        }
        let Some(cached) = self.cache.get(id).and_then(|l| l.stored) else {
            return Ok(false);
        };
        let stamps = self.store.stamps(&[id.to_string()])?;
        // None: removed there.
        if stamps.first().map(|(_, s)| *s) == Some(cached) {
            return Ok(false);
        }
        self.cache.remove(id);
        Ok(true)
    }

    /// After notifications may have been missed (the listener's connection
    /// was lost): every session this server holds in memory or has
    /// listeners for is compared with the store by version and expiry, and
    /// refreshed where it moved ([`Sessions::refresh`]).
    pub fn catch_up(&mut self) -> Result<()> {
        let mut ids: HashSet<String> = self.cache.keys().cloned().collect();
        ids.extend(self.hub.listened());
        let ids: Vec<String> = ids.into_iter().collect();
        let stamps: HashMap<String, (u64, u64)> = self
            .store
            .stamps(&ids)?
            .into_iter()
            .map(|(id, s)| (id, (s.version, s.expires_at_ms)))
            .collect();
        for id in ids {
            let (version, expires_at) = stamps.get(&id).copied().unwrap_or((0, 0));
            self.refresh(&id, version, expires_at)?;
        }
        Ok(())
    }

    /// Queues a change for the next commit (used by maintenance).
    pub(crate) fn queue(&mut self, change: Change) {
        self.changes.push(change);
    }
}

/// The ops a batch answered, by outcome, until its commit is known.
#[derive(Default)]
struct OpCounts {
    applied: u64,
    rebased: u64,
    duplicate: u64,
    /// The code of each reject.
    rejected: Vec<&'static str>,
}

impl OpCounts {
    /// Adds these to the shared counters (the batch was committed).
    fn add_to(&self, m: &Metrics) {
        use std::sync::atomic::Ordering::Relaxed;
        m.ops_applied.fetch_add(self.applied, Relaxed);
        m.ops_rebased.fetch_add(self.rebased, Relaxed);
        m.ops_duplicate.fetch_add(self.duplicate, Relaxed);
        m.ops_rejected
            .fetch_add(self.rejected.len() as u64, Relaxed);
        for code in &self.rejected {
            m.rejects_by_code.count_code(code);
        }
    }
}

/// The `ended` message of a session that ended or expired (`why`:
/// `SESSION_CLOSED` or `SESSION_EXPIRED`).
fn ended_message(rec: &SessionRecord, why: &SessileError) -> Ended {
    Ended {
        status: rec.status.clone(),
        code: why.code().into(),
        version: rec.version,
        message: why.to_string(),
    }
}

/// The `ended` message of a session read in a terminal status: expired
/// when that status is its flow's expired one, else closed.
fn ended_of(rec: &SessionRecord, flow: &SessionFlow) -> Ended {
    let why = if rec.status == flow.expired() {
        SessileError::SessionExpired
    } else {
        SessileError::SessionClosed {
            status: rec.status.clone(),
        }
    };
    ended_message(rec, &why)
}

/// What kind of JSON value `v` is, with its article ("an array").
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The top-level keys of a state.
fn keys_of(state: &Value) -> Vec<String> {
    state
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// An audit entry for session `rec` after a change.
pub(crate) fn audit(
    rec: &SessionRecord,
    now: u64,
    actor: &str,
    action: &str,
    keys: Vec<String>,
    seq: Option<u64>,
) -> AuditEntry {
    AuditEntry {
        session: rec.id.clone(),
        at_ms: now,
        actor: actor.into(),
        action: action.into(),
        keys,
        version: rec.version,
        seq,
    }
}
