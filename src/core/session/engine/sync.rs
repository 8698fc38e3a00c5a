//! The synced half of a session: the server session (given by the shop's
//! backend, remembered for the namespace, or created holding the page's
//! state, retried with jittered backoff while the server cannot be
//! reached), this tab's link to it (resumed from its record, or fresh with
//! the changes made while the session was created sent as one op), its
//! changes submitted, and the link stopped (`authenticate`, `close`, `end`).
//! What the link brings back is `inbound.rs`.

use serde_json::{Map, Value};

use super::options::SyncConfig;
use super::record::{self, Entries, Records};
use super::register;
use super::tracking::Tracking;
use super::types::{
    CallId, Failure, RequestId, Scope, ServerCall, ServerSession, SessionCommand, SessionEvent,
};
use super::{Found, Outcome, SessionEngine};
use crate::core::error::SessileError;
use crate::core::flow_table::SessionFlow;
use crate::core::lifecycle::FlowRules;
use crate::core::merge_patch;
use crate::core::protocol::is_id;
use crate::core::session::link::stored;
use crate::core::session::link::{empty_state, Link, LinkState, Outbox, Transmit};
use crate::core::session::store::ClientId;

/// The state a creation request posted, and where the page stood then.
#[derive(Debug, Clone)]
pub struct Posted {
    state: Value,
    store_seq: u64,
}

/// A server session being created.
#[derive(Debug)]
struct Creating {
    attempt: u32,
    call: Option<CallId>,
    retry_at: Option<u64>,
    posted: Option<Posted>,
    /// An `authenticate` waiting for the first answer.
    request: Option<RequestId>,
}

/// The server side of a session.
#[derive(Debug)]
pub struct Sync {
    /// The server and the link's tuning.
    pub cfg: SyncConfig,
    /// The server session, once known.
    pub server: Option<ServerSession>,
    /// This tab's link, while there is a server session.
    pub link: Option<Link>,
    /// The link record's writes.
    pub records: Records,
    /// This client's entry of the pending register, and the others'.
    pub entries: Entries,
    /// This tab's unanswered ops.
    pub tracking: Tracking,
    found_session: Option<String>,
    found_lifecycle: Option<String>,
    /// The stored link record a link starts from (the one found at open,
    /// then the last one written).
    last_record: Option<String>,
    start_on_http: bool,
    creating: Option<Creating>,
    /// `auth_success` is due at the next connection.
    pub auth_pending: bool,
    /// The server version last taken into the store.
    pub last_reconciled: u64,
    /// The expiry the link last said.
    pub seen_expiry: u64,
    /// `close` or `end` stopped it.
    pub stopped: bool,
    /// The statuses the page moved through, from the flow's initial one,
    /// while there was no server session (a loop back to a status passed
    /// before cut out, so each follows the one before it in the flow): one
    /// op each once the session is created, which starts at the initial
    /// status. Kept for the next load with the status.
    pub steps: Vec<String>,
    /// The link was resumed from a record and has had no `welcome` yet:
    /// changes are held until the server says which of this client's ops
    /// it processed (the record may be older than what a crashed page sent,
    /// and a new op numbered from it would reuse a number the server has).
    pub unwelcomed: bool,
}

impl Sync {
    /// The server side of `client`'s session of namespace `name`.
    pub fn new(cfg: SyncConfig, _name: &str, client: &ClientId, found: &Found, now: u64) -> Self {
        let entries = Entries::found(&found.register, &client.0);
        Sync {
            cfg,
            server: None,
            link: None,
            records: Records::default(),
            entries,
            tracking: Tracking::default(),
            found_session: found.session.clone(),
            found_lifecycle: found.lifecycle.clone(),
            last_record: found.record.clone(),
            start_on_http: stored::starts_on_http(found.fallback.as_deref(), now),
            creating: None,
            auth_pending: true,
            last_reconciled: 0,
            seen_expiry: 0,
            stopped: false,
            steps: Vec::new(),
            unwelcomed: false,
        }
    }

    /// The record last written, for a link that starts again on the same
    /// session (`authenticate`).
    pub fn remember_record(&mut self, text: &str) {
        self.last_record = Some(text.into());
    }

    /// When a creation is retried.
    pub fn timeout(&self) -> Option<u64> {
        self.creating.as_ref().and_then(|c| c.retry_at)
    }

    /// The call creating the session, if one is under way.
    pub fn creating_call(&self) -> Option<CallId> {
        self.creating.as_ref().and_then(|c| c.call)
    }
}

/// The status the page shows: the newest unanswered op's move, else the
/// server's (a `welcome` with an older status does not undo a step the
/// page took).
pub(super) fn shown_status(link: &Link) -> String {
    link.outbox()
        .iter()
        .filter_map(|op| op.to.clone())
        .last()
        .unwrap_or_else(|| link.status().into())
}

/// The server session remembered in `text` (`{id, token}`), if it reads.
fn read_session(text: Option<&str>) -> Option<ServerSession> {
    let v: Value = serde_json::from_slice(text?.as_bytes()).ok()?;
    let (Some(Value::String(id)), Some(Value::String(token))) = (v.get("id"), v.get("token"))
    else {
        return None;
    };
    is_id(id).then(|| ServerSession {
        id: id.clone(),
        token: token.clone(),
    })
}

/// The status and expiry remembered in `text` for session `session`.
fn read_lifecycle(text: Option<&str>, session: &str) -> Option<(String, u64)> {
    let v: Value = serde_json::from_slice(text?.as_bytes()).ok()?;
    let status = v.get("status")?.as_str().filter(|s| !s.is_empty())?;
    let at = v.get("expiresAt")?.as_f64().filter(|f| f.is_finite())?;
    (v.get("session")?.as_str()? == session).then(|| (status.to_string(), at.max(0.0) as u64))
}

/// The status and the steps to it remembered in `text` by a page that had
/// no server session yet (`session` null), if each step follows the one
/// before it from `flow`'s initial status.
fn read_unsent_steps(text: Option<&str>, flow: &SessionFlow) -> Option<Vec<String>> {
    let v: Value = serde_json::from_slice(text?.as_bytes()).ok()?;
    if !v.get("session")?.is_null() {
        return None;
    }
    let mut at = flow.initial().to_string();
    let mut steps = Vec::new();
    for step in v.get("steps")?.as_array()? {
        let step = step.as_str()?;
        flow.check(&at, step).ok()?;
        at = step.into();
        steps.push(at.clone());
    }
    (v.get("status")?.as_str()? == at).then_some(steps)
}

fn attempting(link: &Link) -> bool {
    matches!(
        link.state(),
        LinkState::Connecting { .. } | LinkState::Handshaking { .. } | LinkState::Connected { .. }
    )
}

impl SessionEngine {
    /// Whether a request creating the server session is waiting for its
    /// answer (`openSession` resolves once the first one is answered, so
    /// a created session's id is known when it does).
    pub fn creating(&self) -> bool {
        self.sync
            .as_ref()
            .and_then(|s| s.creating.as_ref())
            .is_some_and(|c| c.call.is_some())
    }

    /// The store is open: join the session given or remembered (from the
    /// status and expiry this browser last knew), or create one.
    pub(super) fn start_sync(&mut self, now: u64) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let known = sync
            .cfg
            .session
            .clone()
            .or_else(|| read_session(sync.found_session.as_deref()));
        let Some(server) = known else {
            // Steps taken on an earlier load, before a session was created.
            let kept = read_unsent_steps(sync.found_lifecycle.as_deref(), self.life.flow());
            if let Some(last) = kept.as_ref().and_then(|s| s.last()).cloned() {
                sync.steps = kept.unwrap_or_default();
                self.life_status(&last);
            }
            return self.create(now, None);
        };
        let kept = read_lifecycle(sync.found_lifecycle.as_deref(), &server.id);
        self.remember_session(Some(&server));
        if let Some((status, at)) = kept {
            self.life_status(&status);
            // A remembered expiry already past may have been extended elsewhere: the server says.
            if at > now {
                self.life_expires(at, now);
            }
        }
        self.connect(server, None, now);
    }

    /// Asks the server to create a session holding the page's state.
    fn create(&mut self, now: u64, request: Option<RequestId>) {
        let _ = now;
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        if sync.stopped {
            return;
        }
        let attempt = sync.creating.as_ref().map_or(0, |c| c.attempt);
        let state = self.store.state();
        let state = if state.is_object() {
            state.clone()
        } else {
            empty_state()
        };
        let mut body = Map::new();
        body.insert("state".into(), state.clone());
        if let Some(flow) = &self.flow_request {
            body.insert("flow".into(), flow.clone());
        }
        if let Some(ttl) = self.ttl_seconds {
            body.insert("ttlSeconds".into(), ttl.into());
        }
        let posted = Posted {
            state,
            store_seq: self.store.last_seq(),
        };
        let call = self.call(ServerCall::Create {
            body: Value::Object(body),
        });
        if let Some(sync) = self.sync.as_mut() {
            sync.creating = Some(Creating {
                attempt,
                call: Some(call),
                retry_at: None,
                posted: Some(posted),
                request,
            });
        }
    }

    /// A failed creation's retry is due.
    pub(super) fn retry_create(&mut self, now: u64) {
        let Some(creating) = self.sync.as_mut().and_then(|s| s.creating.as_mut()) else {
            return;
        };
        if creating.retry_at.is_some_and(|at| now >= at) {
            creating.retry_at = None;
            self.create(now, None);
        }
    }

    /// The answer to the creation request.
    pub(super) fn on_created(&mut self, result: Result<Value, Failure>, now: u64) {
        let Some(creating) = self.sync.as_mut().and_then(|s| s.creating.take()) else {
            return;
        };
        if let Some(id) = creating.request {
            self.complete(id, Ok(Outcome::Done));
        }
        let created = result.and_then(|v| {
            match (
                v.get("id").and_then(Value::as_str),
                v.get("token").and_then(Value::as_str),
            ) {
                (Some(id), Some(token)) if !id.is_empty() && !token.is_empty() => Ok((
                    ServerSession {
                        id: id.into(),
                        token: token.into(),
                    },
                    v,
                )),
                _ => Err(Failure::new(
                    "PROTOCOL_ERROR",
                    "the server created a session without an id or token",
                    false,
                )),
            }
        });
        match created {
            Ok((server, v)) => {
                self.remember_session(Some(&server));
                self.events.push_back(SessionEvent::SessionCreated {
                    id: server.id.clone(),
                });
                let posted = creating.posted.unwrap_or_else(|| Posted {
                    state: empty_state(),
                    store_seq: 0,
                });
                // The steps the page took before the session existed go
                // to the server after it (`connect`); with none, the
                // server's status is the page's.
                if self.sync.as_ref().is_some_and(|s| s.steps.is_empty()) {
                    self.life_status(v.get("status").and_then(Value::as_str).unwrap_or(""));
                }
                self.life_expires(v.get("expiresAt").and_then(Value::as_u64).unwrap_or(0), now);
                self.connect(server, Some(posted), now);
            }
            Err(failure) => {
                self.events
                    .push_back(SessionEvent::error(&failure, !failure.retryable));
                let Some(sync) = self.sync.as_mut() else {
                    return;
                };
                if !failure.retryable || sync.stopped {
                    return;
                }
                let link = &sync.cfg.link;
                let shift = creating.attempt.min(40);
                let cap = link
                    .backoff_base_ms
                    .saturating_mul(1 << shift)
                    .min(link.backoff_cap_ms);
                let delay = self.rng.up_to(cap);
                sync.creating = Some(Creating {
                    attempt: creating.attempt.saturating_add(1),
                    call: None,
                    retry_at: Some(now.saturating_add(delay)),
                    posted: None,
                    request: None,
                });
            }
        }
    }

    /// Starts this tab's link to `server`: a new session holding what was
    /// `posted`, or a known one resumed from its stored record (a record
    /// that does not read is reported, `OUTBOX_CORRUPT`, and the link
    /// starts afresh).
    fn connect(&mut self, server: ServerSession, fresh: Option<Posted>, now: u64) {
        let seed = self.rng.next_u64();
        let client = self.client.0.clone();
        let online = self.online;
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let mut cfg = sync.cfg.link.clone();
        cfg.session.clone_from(&server.id);
        cfg.token.clone_from(&server.token);
        cfg.seed = seed;
        cfg.start_on_http = sync.start_on_http;
        let Ok(outbox) = Outbox::new(&client) else {
            return; // checked by `new`
        };
        let mut problem = None;
        let mut saved = None;
        let mut link = match &fresh {
            Some(posted) => Link::new(cfg, outbox, 1, posted.state.clone()),
            None => match record::unwrap(sync.last_record.as_deref(), &server.id, &client) {
                Ok(Some((rec, made))) => {
                    saved = Some(made);
                    sync.unwelcomed = true;
                    Link::resume(cfg, rec)
                }
                Ok(None) => Link::new(cfg, outbox, 0, empty_state()),
                Err(e) => {
                    problem = Some(e);
                    Link::new(cfg, outbox, 0, empty_state())
                }
            },
        };
        if !online {
            link.handle_online(false, now);
        }
        link.handle_open(now);
        // What the store holds of this page's changes is in the server's
        // state (posted), or belongs to the session left.
        let answered = fresh
            .as_ref()
            .map_or(self.store.last_seq(), |p| p.store_seq);
        sync.tracking = Tracking::resumed(link.outbox(), answered, saved.as_ref());
        sync.entries.resume_over(&server.id);
        sync.link = Some(link);
        sync.server = Some(server);
        sync.auth_pending = true;
        sync.last_reconciled = 0;
        sync.seen_expiry = 0;
        sync.records.changed(false);
        self.store.handle_acknowledged(answered);
        if let Some(e) = problem {
            self.events
                .push_back(SessionEvent::error(&Failure::from(&e), false));
        }
        if let Some(posted) = fresh {
            // Changes made before the session existed, and each step the
            // page took from the initial status (the server's now): the
            // changes go with the first step, one op per step.
            let steps = std::mem::take(&mut sync.steps);
            let page = self.store.state().clone();
            if page.is_object() {
                let mut to = steps.into_iter();
                let first = to.next();
                if page != posted.state || first.is_some() {
                    let _ = self.submit_op(&posted.state, &page, first, now);
                }
                for step in to {
                    let _ = self.submit_op(&page, &page, Some(step), now);
                }
            }
        }
        self.remember_lifecycle();
        self.publish();
    }

    /// The page moves to `to` while there is no server session: kept, to
    /// be sent once the session is created (a move back to the initial
    /// status or to one passed before cuts the loop out).
    pub(super) fn step_unsent(&mut self, to: &str) {
        let initial = self.life.flow().initial();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        if sync.server.is_some() || sync.stopped {
            return;
        }
        if to == initial {
            sync.steps.clear();
        } else if let Some(at) = sync.steps.iter().position(|s| s == to) {
            sync.steps.truncate(at + 1);
        } else {
            sync.steps.push(to.into());
        }
    }

    /// A change from `before` to `after` (and a status move) as the next
    /// op; returns its sequence (0: nothing to send).
    pub(super) fn submit_op(
        &mut self,
        before: &Value,
        after: &Value,
        to: Option<String>,
        now: u64,
    ) -> Result<u64, SessileError> {
        let store_seq = self.store.last_seq();
        let Some(sync) = self.sync.as_mut() else {
            return Ok(0);
        };
        let Some(link) = sync.link.as_mut() else {
            return Ok(0);
        };
        // What another client of this browser listed and this change was
        // made on top of: marked in this client's entry (rule 3's exception).
        if let Some(server) = sync.server.as_ref() {
            let paths = register::paths_of(&merge_patch::diff(before, after));
            let over = register::built_over(
                &sync.entries.others,
                &server.id,
                |c| link.applied_seq(c),
                &paths,
            );
            register::add_over(&mut sync.entries.over, over);
        }
        if link.version() == 0 || sync.unwelcomed {
            // No server version yet, or no word yet of which ops the server
            // processed: held until the link has both.
            let patch = merge_patch::diff(before, after);
            if patch.as_object().is_some_and(|p| !p.is_empty()) || to.is_some() {
                sync.tracking.hold(patch, to, store_seq, before, now);
                sync.records.changed(false);
            }
            return Ok(0);
        }
        let had = link.outbox().len();
        let seq = link.submit_change(before, after, to.clone(), now)?;
        if seq > 0 {
            sync.tracking
                .submitted(link.outbox(), had, store_seq, before, after, to.as_deref());
            sync.records.changed(true);
        }
        Ok(seq)
    }

    /// Joins `server`, or (`None`) creates a new session holding the
    /// current state; `request` completes once joined, or at the creation's
    /// first answer.
    pub(super) fn restart(&mut self, server: Option<ServerSession>, request: RequestId, now: u64) {
        self.drop_link(false);
        if let Some(sync) = self.sync.as_mut() {
            sync.server = None;
            sync.creating = None;
        }
        match server {
            Some(server) => {
                self.remember_session(Some(&server));
                self.connect(server, None, now);
                self.complete(request, Ok(Outcome::Done));
            }
            None => {
                self.remember_session(None);
                self.create(now, Some(request));
            }
        }
    }

    /// Stops the link: its transport closed, its record written for the
    /// next load (unless `forget`), its ops left listed for the tab that
    /// adopts this id.
    pub(super) fn drop_link(&mut self, forget: bool) {
        if !forget {
            self.publish();
        }
        let key = self.key_of_record();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let Some(link) = sync.link.take() else { return };
        if attempting(&link) {
            self.transmits.push_back(Transmit::Close);
        }
        sync.records.stop();
        if let (false, Some(server)) = (forget, sync.server.as_ref()) {
            let text = record::wrap(&server.id, &link.record(), &sync.tracking.saved());
            sync.last_record = Some(text.clone());
            self.commands
                .push_back(SessionCommand::WriteRecord { key, text });
        }
        if let Some(sync) = self.sync.as_mut() {
            sync.tracking = Tracking::default();
        }
    }

    /// `close` (keep everything for the next load) or `end` (with
    /// `forget`: drop the server session, this client's record, its entry
    /// and its id).
    pub(super) fn shutdown(&mut self, forget: bool) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        sync.creating = None;
        self.drop_link(forget);
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        sync.stopped = true;
        if forget {
            let pending = self.key(&[":pending:", self.client.0.as_str()].concat());
            for key in [pending, self.key(":server"), self.key(":lifecycle")] {
                self.commands.push_back(SessionCommand::Remember {
                    scope: Scope::Local,
                    key,
                    value: None,
                });
            }
            let key = self.key_of_record();
            self.commands
                .push_back(SessionCommand::RemoveRecord { key });
        }
        self.commands
            .push_back(SessionCommand::ReleaseClient { forget });
    }

    /// Whether every op of this tab is answered (or there is no link).
    pub(super) fn all_answered(&self) -> bool {
        self.sync.as_ref().is_none_or(|s| {
            s.link
                .as_ref()
                .is_none_or(|l| s.tracking.unanswered(l.outbox()) == 0)
        })
    }

    /// Whether a flush has nothing to wait for on the link: every op
    /// answered, or the link not connected nor connecting.
    pub(super) fn link_settled(&self) -> bool {
        self.sync.as_ref().is_none_or(|s| match &s.link {
            Some(l) => s.tracking.unanswered(l.outbox()) == 0 || !attempting(l),
            // A creation under way is the link connecting: its answer
            // starts the link that sends what the page changed meanwhile.
            None => s.creating.as_ref().is_none_or(|c| c.call.is_none()),
        })
    }
}
