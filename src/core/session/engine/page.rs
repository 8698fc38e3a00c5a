//! The page's calls: `update`, `set` and `step` (checked against the
//! lifecycle, stored, then sent as an op), `flush` (stored, then answered
//! while connected), `extend` and `validate` (the server's word when there
//! is a server session, the same rules here otherwise), `end` (nothing is
//! cleared before the server has the end), `authenticate` and `close`, and
//! the requests that wait for the store, the link or the server.

use serde_json::Value;

use super::types::{Failure, Outcome, RequestId, ServerCall, Validity};
use super::{EnginePhase, SessionEngine};
use crate::core::error::SessileError;
use crate::core::lifecycle::{self, FlowRules, StatusKind};
use crate::core::merge_patch;
use crate::core::session::store;

/// What a DELETE of a session can answer when the server has already
/// ended it: ending it here is all that is left.
const ALREADY_OVER: [&str; 3] = ["SESSION_EXPIRED", "SESSION_CLOSED", "SESSION_NOT_FOUND"];

/// A request waiting.
#[derive(Debug)]
pub enum Wait {
    /// `flush`: the store's flush (`Some`), then the link.
    Flush {
        id: RequestId,
        store: Option<store::RequestId>,
    },
    /// `extend` on the server.
    Extend { id: RequestId, call: super::CallId },
    /// `validate` on the server.
    Validate { id: RequestId, call: super::CallId },
    /// `end`.
    End(EndJob),
    /// `close`: the store's close.
    Close {
        id: RequestId,
        store: store::RequestId,
    },
}

/// An `end` under way.
#[derive(Debug)]
pub struct EndJob {
    id: RequestId,
    reason: String,
    keep: bool,
    step: EndStep,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndStep {
    /// Every op answered (the final status among them).
    Answered,
    /// The server's answer to DELETE.
    Deleted(super::CallId),
    /// The store's clear.
    Cleared(store::RequestId),
    /// The store's close.
    Closed(store::RequestId),
}

impl SessionEngine {
    /// `STORE_CLOSED` while opening, closing or closed.
    fn usable(&self) -> Result<(), SessileError> {
        if self.phase == EnginePhase::Ready && !self.closing {
            Ok(())
        } else {
            Err(SessileError::StoreClosed)
        }
    }

    /// Applies `patch` (a JSON merge patch) to the state; see
    /// [`set`](Self::set).
    pub fn update(
        &mut self,
        patch: &Value,
        to: Option<&str>,
        now: u64,
    ) -> Result<u64, SessileError> {
        self.life.validate(now)?;
        self.usable()?;
        let mut next = self.store.state().clone();
        merge_patch::apply(&mut next, patch);
        self.change(next, to, now)
    }

    /// Replaces the state; persists it and, synced, sends the difference
    /// as an op. `to` also moves the status. Returns the new version.
    /// `SESSION_EXPIRED` / `SESSION_CLOSED` once the session is over,
    /// `INVALID_TRANSITION` for a move the flow does not allow,
    /// `INVALID_STATE` for a synced state that is not a JSON object,
    /// `STATE_TOO_LARGE`, `STORE_CLOSED`: nothing changes on error.
    pub fn set(&mut self, state: Value, to: Option<&str>, now: u64) -> Result<u64, SessileError> {
        self.change(state, to, now)
    }

    /// Moves the status to `to` with an optional change.
    pub fn step(&mut self, to: &str, patch: Option<&Value>, now: u64) -> Result<u64, SessileError> {
        let empty = Value::Object(serde_json::Map::new());
        self.update(patch.unwrap_or(&empty), Some(to), now)
    }

    fn change(&mut self, after: Value, to: Option<&str>, now: u64) -> Result<u64, SessileError> {
        self.input(now);
        // A session that is over says so before a closed store does.
        self.life.validate(now)?;
        self.usable()?;
        if let Some(to) = to {
            self.life.check(to)?;
        }
        if self.sync.is_some() && !after.is_object() {
            return Err(SessileError::InvalidState {
                reason: "a synced state must be a JSON object".into(),
            });
        }
        let before = self.store.state().clone();
        let version = self.store.set(after.clone(), now)?;
        // Cannot fail: `after` is an object and its difference a patch.
        let _ = self.submit_op(&before, &after, to.map(String::from), now);
        if self.sync.is_some() {
            // The register lists the change for the other tabs (rule 1):
            // the stored copy they restore holds it even if this tab
            // crashes before the debounce would have written it.
            self.store.write_at_once(now);
        }
        if let Some(to) = to {
            self.step_unsent(to);
            self.life_status(to);
        }
        self.after(now);
        Ok(version)
    }

    /// Stores the state again at the same version (the next slot): after
    /// the driver's encryption key changed, a `rewrite` and a `flush`,
    /// twice, leave both slots sealed with the new key.
    pub fn rewrite(&mut self, now: u64) -> Result<(), SessileError> {
        self.input(now);
        self.usable()?;
        self.store.rewrite(now)
    }

    /// Stores everything unsaved now; completes once stored and, while the
    /// link is connected or connecting, once the server answered every op
    /// (offline it does not wait for the server).
    pub fn flush(&mut self, now: u64) -> Result<RequestId, SessileError> {
        self.input(now);
        self.usable()?;
        let store = self.store.flush(now)?;
        let id = self.request_id();
        self.waits.push(Wait::Flush {
            id,
            store: Some(store),
        });
        self.after(now);
        Ok(id)
    }

    /// Adds `seconds` to the TTL: on the server when there is a server
    /// session (its answer is the new expiry), else here by the same rule.
    /// `INVALID_OPTIONS` for `seconds` outside 1 s to 24 h.
    pub fn extend(&mut self, seconds: u64, now: u64) -> Result<RequestId, SessileError> {
        self.input(now);
        self.usable()?;
        let id = self.request_id();
        match self.server_session().cloned() {
            Some(session) => {
                lifecycle::extend(0, 0, seconds)?;
                let call = self.call(ServerCall::Extend { session, seconds });
                self.waits.push(Wait::Extend { id, call });
            }
            None => {
                let at = self.life.extend(seconds, now)?;
                self.check_expiry(now);
                self.complete(id, Ok(Outcome::ExpiresAt(at)));
            }
        }
        self.after(now);
        Ok(id)
    }

    /// Whether the session can still be used: the server's answer when
    /// there is a server session, else the lifecycle's here.
    pub fn validate(&mut self, now: u64) -> RequestId {
        self.input(now);
        let id = self.request_id();
        match self.server_session().cloned() {
            Some(session) => {
                let call = self.call(ServerCall::Validate { session });
                self.waits.push(Wait::Validate { id, call });
            }
            None => {
                let validity = match self.life.validate(now) {
                    Ok(()) => Validity::Valid {
                        expires_at: self.life.expires_at(),
                    },
                    Err(e) => Validity::Invalid {
                        code: e.code().into(),
                    },
                };
                self.complete(id, Ok(Outcome::Validity(validity)));
            }
        }
        self.after(now);
        id
    }

    /// Ends the session: moves it to `reason` when that is a closed status
    /// of the flow other than its ended one (completing once the server
    /// acknowledged it, waiting through a lost connection), else
    /// terminates it (`DELETE` on the server; a session the server already
    /// ended is just cleared; any other failure, `SERVER_UNREACHABLE` too,
    /// ends the request with nothing cleared). Then clears the local copy
    /// unless `keep`, and closes.
    pub fn end(
        &mut self,
        reason: Option<&str>,
        keep: bool,
        now: u64,
    ) -> Result<RequestId, SessileError> {
        self.input(now);
        self.usable()?;
        let ended = self.life.flow().ended().to_string();
        let reason = reason.map_or_else(|| ended.clone(), String::from);
        let to_reason = self.life.kind(&reason) == Some(StatusKind::Closed) && reason != ended;
        let step = if to_reason {
            if self.life.status() != reason {
                let state = self.store.state().clone();
                self.change(state, Some(&reason), now)?;
            }
            EndStep::Answered
        } else if let Some(session) = self.server_session().cloned() {
            EndStep::Deleted(self.call(ServerCall::End { session }))
        } else {
            self.life_status(&ended);
            EndStep::Answered
        };
        let id = self.request_id();
        self.waits.push(Wait::End(EndJob {
            id,
            reason,
            keep,
            step,
        }));
        self.after(now);
        Ok(id)
    }

    /// Joins another server session (or, without one, creates a new one
    /// holding the current state). `INVALID_OPTIONS` for a session opened
    /// without a server.
    pub fn authenticate(
        &mut self,
        session: Option<super::ServerSession>,
        now: u64,
    ) -> Result<RequestId, SessileError> {
        self.input(now);
        self.usable()?;
        if self.sync.is_none() {
            return Err(SessileError::InvalidOptions {
                option: "server",
                reason: "authenticate needs a session opened with `server`".into(),
            });
        }
        let id = self.request_id();
        self.restart(session, id, now);
        self.after(now);
        Ok(id)
    }

    /// Flushes and releases everything: the link stops (its record and its
    /// unsent ops kept for the next load), the store closes. Completes with
    /// the store's close (a failed flush leaves a rescue copy).
    pub fn close(&mut self, now: u64) -> Result<RequestId, SessileError> {
        self.input(now);
        self.usable()?;
        self.closing = true;
        self.fail_end_waits();
        self.shutdown(false);
        let store = self.store.close(now)?;
        let id = self.request_id();
        self.waits.push(Wait::Close { id, store });
        self.after(now);
        Ok(id)
    }

    /// The answer to a [`ServerCall`](super::ServerCall): a network failure
    /// is the retryable `SERVER_UNREACHABLE`.
    pub fn handle_call_result(
        &mut self,
        id: super::CallId,
        result: Result<Value, Failure>,
        now: u64,
    ) {
        self.input(now);
        if self.sync.as_ref().and_then(|s| s.creating_call()) == Some(id) {
            self.on_created(result, now);
            return self.after(now);
        }
        let Some(at) = self.waits.iter().position(|w| match w {
            Wait::Extend { call, .. } | Wait::Validate { call, .. } => *call == id,
            Wait::End(job) => job.step == EndStep::Deleted(id),
            _ => false,
        }) else {
            return;
        };
        match (self.waits.remove(at), result) {
            (Wait::Extend { id, .. }, Ok(v)) => {
                self.life_expires(v.get("expiresAt").and_then(Value::as_u64).unwrap_or(0), now);
                let at = self.life.expires_at();
                self.complete(id, Ok(Outcome::ExpiresAt(at)));
            }
            (Wait::Validate { id, .. }, Ok(v)) => {
                let validity = if v.get("valid") == Some(&Value::Bool(true)) {
                    self.life_expires(v.get("expiresAt").and_then(Value::as_u64).unwrap_or(0), now);
                    Validity::Valid {
                        expires_at: self.life.expires_at(),
                    }
                } else {
                    let code = v
                        .get("code")
                        .and_then(Value::as_str)
                        .unwrap_or("SESSION_CLOSED");
                    Validity::Invalid { code: code.into() }
                };
                self.complete(id, Ok(Outcome::Validity(validity)));
            }
            (Wait::End(job), result) => match result {
                Err(f) if !ALREADY_OVER.contains(&f.code.as_str()) => self.complete(job.id, Err(f)),
                _ => {
                    let ended = self.life.flow().ended().to_string();
                    self.life_status(&ended);
                    self.end_now(job, now);
                }
            },
            (Wait::Extend { id, .. } | Wait::Validate { id, .. }, Err(f)) => {
                self.complete(id, Err(f))
            }
            (other, _) => self.waits.push(other),
        }
        self.after(now);
    }

    /// The end is settled: the page told, the link stopped (and, unless
    /// `keep`, the server session, record and entry forgotten), the local
    /// copy cleared unless `keep`, the store closed.
    fn end_now(&mut self, mut job: EndJob, now: u64) {
        self.life.end(&job.reason, &mut self.events);
        self.closing = true;
        self.shutdown(!job.keep);
        let next = if job.keep {
            self.store.close(now).map(EndStep::Closed)
        } else {
            self.store.clear(now).map(EndStep::Cleared)
        };
        match next {
            Ok(step) => {
                job.step = step;
                self.waits.push(Wait::End(job));
            }
            Err(e) => self.complete(job.id, Err(Failure::from(e))),
        }
    }

    /// `end`s waiting for the server's answers when the page closes first:
    /// their change stays in the outbox for the next load.
    fn fail_end_waits(&mut self) {
        let (failed, kept): (Vec<Wait>, Vec<Wait>) = std::mem::take(&mut self.waits)
            .into_iter()
            .partition(|w| matches!(w, Wait::End(j) if j.step == EndStep::Answered));
        self.waits = kept;
        for w in failed {
            if let Wait::End(job) = w {
                let f = Failure::new(
                    "SESSION_CLOSED",
                    "the link was closed before the server acknowledged every change; they stay in the outbox",
                    false,
                );
                self.complete(job.id, Err(f));
            }
        }
    }

    /// A store request finished.
    pub(super) fn store_done(&mut self, done: store::Completion, now: u64) {
        let Some(at) = self.waits.iter().position(|w| match w {
            Wait::Flush { store: Some(s), .. } | Wait::Close { store: s, .. } => *s == done.id,
            Wait::End(job) => {
                matches!(job.step, EndStep::Cleared(s) | EndStep::Closed(s) if s == done.id)
            }
            _ => false,
        }) else {
            return;
        };
        let result = done.result.map_err(Failure::from);
        match self.waits.remove(at) {
            Wait::Flush { id, .. } => match result {
                Ok(()) => self.waits.push(Wait::Flush { id, store: None }),
                Err(f) => self.complete(id, Err(f)),
            },
            Wait::Close { id, .. } => {
                self.phase = EnginePhase::Closed;
                self.complete(id, result.map(|()| Outcome::Done));
            }
            Wait::End(mut job) => match job.step {
                EndStep::Cleared(_) => match self.store.close(now) {
                    // A clear that failed is the request's error; the store closes anyway.
                    Ok(s) if result.is_ok() => {
                        job.step = EndStep::Closed(s);
                        self.waits.push(Wait::End(job));
                    }
                    Ok(_) => {
                        self.phase = EnginePhase::Closed;
                        self.complete(job.id, result.map(|()| Outcome::Done));
                    }
                    Err(e) => self.complete(job.id, Err(Failure::from(e))),
                },
                _ => {
                    self.phase = EnginePhase::Closed;
                    self.complete(job.id, result.map(|()| Outcome::Done));
                }
            },
            other => self.waits.push(other),
        }
    }

    /// Requests waiting on the link: a flush once every op is answered or
    /// the link is not connected, an `end` once every op is answered.
    pub(super) fn check_waits(&mut self, now: u64) {
        let settled = self.link_settled();
        let answered = self.all_answered();
        let mut i = 0;
        while i < self.waits.len() {
            let ready = match &self.waits[i] {
                Wait::Flush { store: None, .. } => settled,
                Wait::End(job) => job.step == EndStep::Answered && answered,
                _ => false,
            };
            if !ready {
                i += 1;
                continue;
            }
            match self.waits.remove(i) {
                Wait::Flush { id, .. } => self.complete(id, Ok(Outcome::Done)),
                Wait::End(job) => self.end_now(job, now),
                other => self.waits.push(other),
            }
        }
    }
}
