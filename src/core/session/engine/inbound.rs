//! What the link brings back, after every input: the store told which of
//! its changes the server answered (before anything else, so the server's
//! copy taken below never gets an answered change put back on top), the
//! link's events turned into the page's (connection, sync, auth, errors,
//! statuses), conflicts (rule 3: one made on top of a change this tab had
//! taken from another tab is submitted again), and the server's copy taken
//! into the store, keeping the page's values wherever another client of
//! this browser still has to send a change (rule 1), with this tab's own
//! unanswered changes on top.

use serde_json::Value;

use super::page::Wait;
use super::register::{self, Path};
use super::sync::shown_status;
use super::tracking::patched;
use super::types::{Failure, SessionEvent};
use super::SessionEngine;
use crate::core::protocol::OpId;
use crate::core::session::link::{ConflictWinner, Link, LinkEvent};
use crate::core::session::store::Listed;

impl SessionEngine {
    /// After every input: the link's events, the store told which changes
    /// are answered, the expiry the server says, the register and the
    /// record written.
    pub(super) fn pump_link(&mut self, now: u64) {
        // The store first learns what was answered: the server's copy taken
        // below must not get an answered change put back on top.
        self.settle();
        self.release_held(now);
        loop {
            let event = self
                .sync
                .as_mut()
                .and_then(|s| s.link.as_mut())
                .and_then(Link::poll_event);
            let Some(event) = event else { break };
            self.on_link_event(event, now);
        }
        self.settle();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        sync.tracking.forget_answered();
        let Some(link) = sync.link.as_ref() else {
            return;
        };
        let at = link.expires_at();
        if at != sync.seen_expiry {
            sync.seen_expiry = at;
            self.life_expires(at, now);
        }
        self.publish();
        self.write_record();
    }

    /// Once the link has the server's version (and, for a link resumed
    /// from a record, its `welcome`), held changes become ops (before the
    /// welcome's copy is taken: they stay shown), less the paths another
    /// client of this browser changed on top of them; the store learns at
    /// once that none is to be put back on top of the server's copy (what
    /// was left out would come back, with nothing to send it).
    fn release_held(&mut self, now: u64) {
        let me = self.client.0.as_str();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let unwelcomed = sync.unwelcomed;
        let (link, server) = (sync.link.as_mut(), sync.server.as_ref());
        let (Some(link), Some(server)) = (link.filter(|l| l.version() > 0 && !unwelcomed), server)
        else {
            return;
        };
        let others = &sync.entries.others;
        let covered =
            |listed: u64, paths: &[Path]| register::covered(others, &server.id, me, listed, paths);
        let answered = sync.tracking.answered();
        let (any, dropped) = sync.tracking.release(link, covered, now);
        if any {
            sync.records.changed(true);
        }
        // Each part left out is told as a conflict the server's copy won (it
        // holds the newer change): never numbered, its `op` is 0.
        for local in dropped {
            self.events.push_back(SessionEvent::Conflict {
                op: OpId {
                    client: me.to_string(),
                    seq: 0,
                },
                local,
                server: link.confirmed().clone(),
                winner: ConflictWinner::Server,
            });
        }
        if sync.tracking.answered() > answered {
            self.store.handle_acknowledged(sync.tracking.answered());
        }
    }

    /// Tells the store where other clients of this browser still have a
    /// change to send, before an input that may take another tab's copy:
    /// a server state it puts back on that copy leaves those paths as the
    /// copy has them (rule 1).
    pub(super) fn tell_listed(&mut self) {
        let Some(sync) = self.sync.as_ref() else {
            return;
        };
        let (Some(link), Some(server)) = (sync.link.as_ref(), sync.server.as_ref()) else {
            return;
        };
        let pending =
            register::pending_of(&sync.entries.others, &server.id, |c| link.applied_seq(c));
        self.store.set_listed(Listed {
            all: pending.all,
            paths: pending.paths,
        });
    }

    /// Tells the store which of its changes the server has answered.
    fn settle(&mut self) {
        let last_seq = self.store.last_seq();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let Some(link) = sync.link.as_ref() else {
            return;
        };
        if let Some(seq) = sync.tracking.settle(link.outbox(), last_seq) {
            self.store.handle_acknowledged(seq);
        }
    }

    fn on_link_event(&mut self, event: LinkEvent, now: u64) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let Some(link) = sync.link.as_ref() else {
            return;
        };
        let shown = shown_status(link);
        match event {
            LinkEvent::Conflict {
                op,
                local,
                server,
                winner,
            } => {
                sync.records.changed(false);
                if winner == ConflictWinner::Server && self.resubmit(&op, &local, &server, now) {
                    if let Some(s) = self.sync.as_mut() {
                        s.tracking.forget(op.seq);
                    }
                    return self.reconcile(true, now);
                }
                self.events.push_back(SessionEvent::Conflict {
                    op,
                    local,
                    server,
                    winner,
                });
                // A refused op's status move, if it had one, is gone with it.
                self.life_status(&shown);
                self.reconcile(true, now);
            }
            LinkEvent::StatusChanged { status } => {
                let status = if shown.is_empty() { status } else { shown };
                self.life_status(&status);
            }
            LinkEvent::ConnectionEstablished { transport }
            | LinkEvent::ConnectionRestored { transport } => {
                sync.unwelcomed = false;
                let first = matches!(event, LinkEvent::ConnectionEstablished { .. });
                self.events.push_back(if first {
                    SessionEvent::ConnectionEstablished { transport }
                } else {
                    SessionEvent::ConnectionRestored { transport }
                });
                let id = sync.server.as_ref().map(|s| s.id.clone());
                let pending = std::mem::take(&mut sync.auth_pending);
                self.remember_fallback(&event, now);
                if let (true, Some(id)) = (pending, id) {
                    self.events.push_back(SessionEvent::AuthSuccess { id });
                }
                self.release_held(now);
                self.reconcile(true, now);
            }
            LinkEvent::StateSynchronized { version, confirmed } => {
                sync.records.changed(false);
                self.events
                    .push_back(SessionEvent::StateSynchronized { version, confirmed });
                self.reconcile(false, now);
            }
            // Diagnostics say it; the origin remembers a refused WebSocket.
            LinkEvent::TransportPreferred { .. } => self.remember_fallback(&event, now),
            LinkEvent::ConnectionLost { reason } => {
                self.events
                    .push_back(SessionEvent::ConnectionLost { reason });
            }
            LinkEvent::AuthFailed { code, message } => {
                self.events.push_back(SessionEvent::AuthFailed {
                    code: code.clone(),
                    message,
                });
                self.events.push_back(SessionEvent::AuthRequired { code });
            }
            LinkEvent::ErrorOccurred {
                code,
                message,
                terminal,
            } => {
                let refused_move = code == "INVALID_TRANSITION";
                self.events.push_back(SessionEvent::ErrorOccurred {
                    code,
                    message,
                    terminal,
                });
                // A refused status move: the server's status stands.
                if refused_move {
                    self.life_status(&shown);
                }
            }
        }
    }

    /// Rule 3: submits op `seq`'s patch again on the current version when
    /// the conflict was with a change this tab had already taken, less the
    /// paths another client of this browser changed on top of it (the
    /// server's value there holds the op's effect and that change: that
    /// part loses, and is told as a conflict). Returns whether the conflict
    /// is settled so (and not to be reported).
    fn resubmit(&mut self, op: &OpId, local: &Value, server: &Value, now: u64) -> bool {
        let Some(sync) = self.sync.as_mut() else {
            return false;
        };
        let (Some(link), Some(session)) = (sync.link.as_mut(), sync.server.as_ref()) else {
            return false;
        };
        let paths = register::paths_of(local);
        let lost = register::covered(
            &sync.entries.others,
            &session.id,
            &self.client.0,
            op.seq,
            &paths,
        );
        let Some(patch) = sync
            .tracking
            .resubmittable(op.seq, local, server, link.outbox(), &lost)
        else {
            return false;
        };
        let view = link.view();
        let next = patched(&view, &patch);
        let had = link.outbox().len();
        if let Ok(again) = link.submit_change(&view, &next, None, now) {
            if again > 0 {
                sync.tracking
                    .submitted(link.outbox(), had, 0, &view, &next, None);
                sync.records.changed(true);
            }
        }
        if !lost.is_empty() {
            let (_, part) = register::split(local, &lost);
            self.events.push_back(SessionEvent::Conflict {
                op: op.clone(),
                local: part,
                server: server.clone(),
                winner: ConflictWinner::Server,
            });
        }
        true
    }

    /// Takes what the server says (plus this tab's unanswered ops) into the
    /// store when it differs from the page's state, except where another
    /// client of this browser still has ops to send: there the page's value
    /// stays (the server's copy is older there). Only when the server's
    /// version moved, unless `always`. Not while an `end` waits: the
    /// server's push of the end (its state erased) may come before the
    /// answer, and the copy an `end(keep)` keeps is the page's.
    pub(super) fn reconcile(&mut self, always: bool, now: u64) {
        if self.waits.iter().any(|w| matches!(w, Wait::End(_))) {
            return;
        }
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let (Some(link), Some(server)) = (sync.link.as_ref(), sync.server.as_ref()) else {
            return;
        };
        let server_version = link.version();
        if !always && server_version <= sync.last_reconciled {
            return;
        }
        sync.last_reconciled = server_version;
        let pending =
            register::pending_of(&sync.entries.others, &server.id, |c| link.applied_seq(c));
        let target = register::keep_pending(link.view(), self.store.state(), &pending);
        if target == *self.store.state() {
            return;
        }
        match self
            .store
            .handle_server_state(target, sync.tracking.answered(), now)
        {
            Ok(version) => self.events.push_back(SessionEvent::SessionUpdated {
                version,
                server_version,
            }),
            // Closing: the page keeps its state; nothing to tell.
            Err(_) if self.closing => {}
            Err(e) => {
                // STATE_TOO_LARGE, a blocked store: the page keeps its state, the link keeps running.
                let f = Failure::from(&e);
                let message = ["the server's state could not be taken: ", &f.message].concat();
                let failure = Failure::new(&f.code, &message, false);
                self.events.push_back(SessionEvent::error(&failure, false));
            }
        }
    }
}
