//! Frames from the server: the handshake's `welcome` (resume by version and
//! the outbox re-sent), answers to ops (`ack`, `reject`: conflicts and the
//! server-wins policy), other clients' `patch`es held in version order,
//! heartbeats, errors, `bye`, `ended` and `extended`.

use std::sync::Arc;

use serde_json::Value;

use super::{
    ConflictWinner, Link, LinkEvent, LinkState, LossReason, Transport, TransportReason, MAX_SEQ,
};
use crate::core::error_text::message;
use crate::core::merge_patch;
use crate::core::protocol::{
    self, Ack, CatchUp, ErrorFrame, Message, Op, OpId, Pong, Reject, Welcome,
};

/// Error codes after which retrying cannot help: the page must authenticate
/// again (an event), or the session is over.
const AUTH_CODES: [&str; 2] = ["INVALID_TOKEN", "SESSION_NOT_FOUND"];
const TERMINAL_CODES: [&str; 4] = [
    "SESSION_EXPIRED",
    "SESSION_CLOSED",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "ORIGIN_NOT_ALLOWED",
];

impl Link {
    /// One inbound text frame on the current transport. A frame that does
    /// not decode, or would make the confirmed state something other than a
    /// JSON object, is an [`LinkEvent::ErrorOccurred`] (never a panic); the
    /// link carries on.
    pub fn handle_frame(&mut self, bytes: &[u8], now: u64) {
        self.frame_in(bytes, now);
        // An answer may have left HTTP with nothing in flight: the standby
        // of the race, open, takes over now.
        if self.standby.is_some_and(|s| s.open) {
            self.try_promote(now);
        }
    }

    fn frame_in(&mut self, bytes: &[u8], now: u64) {
        if !matches!(
            self.state,
            LinkState::Handshaking { .. } | LinkState::Connected { .. }
        ) {
            return;
        }
        self.last_inbound = now;
        let msg = match protocol::decode(bytes, self.cfg.max_frame_bytes) {
            Ok(m) => m,
            Err(e) => return self.error_event(e.code(), &message(&e), false),
        };
        if let Some(what) = not_an_object(&msg) {
            // The confirmed state is always an object (the record holds it
            // so): a frame that would make it anything else is refused.
            let mut message = String::from("protocol error: ");
            message.push_str(what);
            message.push_str(" must be a JSON object");
            return self.error_event("PROTOCOL_ERROR", &message, false);
        }
        if let Some(what) = past_max_seq(&msg) {
            // Above it are the register's held changes; near u64::MAX the
            // outbox's numbering would overflow.
            let message = ["protocol error: ", what, " must be at most 2^52 - 1"].concat();
            return self.error_event("PROTOCOL_ERROR", &message, false);
        }
        let connected = matches!(self.state, LinkState::Connected { .. });
        match msg {
            Message::Welcome(w) if !connected => self.on_welcome(w, now),
            Message::Ack(a) if connected => self.on_ack(a, now),
            Message::Reject(r) if connected => self.on_reject(r, now),
            Message::Patch(p) if connected => {
                if let Some(op) = p.op.filter(|_| p.version > self.version) {
                    self.ahead_ops.insert(p.version, op);
                }
                self.integrate(p.version, p.patch, p.status, 0, now)
            }
            Message::Ping(p) => self.send(&Message::Pong(Pong {
                ts: p.ts,
                server_ts: now,
            })),
            Message::Pong(p) => self.on_pong(p.ts, now),
            Message::Error(e) => self.on_error(e, now),
            Message::Bye(b) => {
                let reason = b.reason.unwrap_or_default();
                if is_auth(&reason) || is_terminal(&reason) {
                    self.stop(&reason);
                } else {
                    self.connection_down(LossReason::Server, true, now);
                }
            }
            // The session ended or expired (after its last patch): as a `bye` with that code.
            Message::Ended(e) => self.stop(&e.code),
            // Another client moved the expiry.
            Message::Extended(e) => self.expires_at = e.expires_at,
            _ => {}
        }
    }

    fn on_welcome(&mut self, w: Welcome, now: u64) {
        self.outnumbered = w.applied_seq >= self.outbox.next_seq();
        let confirmed = self.outbox.remove_upto(w.applied_seq);
        self.ahead.clear();
        self.ahead_ops.clear();
        self.gap_since = None;
        match w.catch_up {
            CatchUp::UpToDate => {}
            CatchUp::Patches { patches } => {
                for p in patches {
                    if p.version == self.version.saturating_add(1) {
                        merge_patch::apply(&mut self.confirmed, &p.patch);
                        self.version = p.version;
                        self.note_applied(p.op);
                    }
                }
            }
            CatchUp::Snapshot { state } => {
                self.confirmed = state;
                self.version = w.version;
            }
        }
        self.expires_at = w.expires_at;
        self.set_status(w.status);
        if self.version != w.version {
            // The catch-up did not reach the server's version: try again.
            return self.connection_down(LossReason::Resync, true, now);
        }
        if w.heartbeat_ms > 0 {
            self.heartbeat_ms = self.cfg.heartbeat_ms.min(w.heartbeat_ms).max(1);
        }
        let transport = match self.state {
            LinkState::Handshaking { transport } => transport,
            _ => self.preferred,
        };
        self.state = LinkState::Connected { transport };
        self.welcomed_at = Some(now);
        if transport == Transport::WebSocket {
            if self.preferred != Transport::WebSocket {
                self.events.push_back(LinkEvent::TransportPreferred {
                    transport,
                    reason: TransportReason::WebSocket,
                });
            }
            self.preferred = Transport::WebSocket;
            self.reason = TransportReason::WebSocket;
            self.probe_at = None;
            self.probe_ms = self.cfg.ws_probe_ms;
        } else if self.ws_refused && self.preferred == Transport::WebSocket {
            // HTTP works where the WebSocket did not open.
            self.fall_back(TransportReason::WebSocketRefused, now);
        }
        self.probing = false;
        self.events.push_back(if self.connections == 0 {
            LinkEvent::ConnectionEstablished { transport }
        } else {
            LinkEvent::ConnectionRestored { transport }
        });
        self.connections += 1;
        self.events.push_back(LinkEvent::StateSynchronized {
            version: self.version,
            confirmed,
        });
        // Re-send every op still waiting, in order, on this connection.
        self.inflight_since = None;
        let ops: Vec<Message> = self.outbox.iter().cloned().map(Message::Op).collect();
        for op in &ops {
            self.send(op);
        }
        if let Some(Message::Op(last)) = ops.last() {
            self.outbox.mark_sent(last.id.seq);
            self.inflight_since = Some(now);
        }
    }

    /// The op an answer is about, which must be the oldest one waiting:
    /// `None` when it was already answered; a resync when answers skip.
    fn answered(&mut self, id: &OpId, now: u64) -> Option<Op> {
        if id.client != self.outbox.client() {
            return None;
        }
        let front = self.outbox.front()?.id.seq;
        if id.seq < front {
            return None;
        }
        if id.seq > front || !self.outbox.was_sent(id.seq) {
            self.connection_down(LossReason::Resync, true, now);
            return None;
        }
        let op = self.outbox.pop_front()?;
        self.inflight_since = (!self.outbox.is_empty()
            && self.outbox.was_sent(op.id.seq.saturating_add(1)))
        .then_some(now);
        Some(op)
    }

    fn on_ack(&mut self, a: Ack, now: u64) {
        let Some(op) = self.answered(&a.id, now) else {
            return;
        };
        if a.duplicate {
            // Applied earlier, at a version this connection never said:
            // the welcome of a fresh connection carries it.
            return self.connection_down(LossReason::Resync, true, now);
        }
        self.integrate(a.version, op.patch, op.to, 1, now);
    }

    fn on_reject(&mut self, r: Reject, now: u64) {
        if r.code == "OP_OUT_OF_ORDER" {
            return self.connection_down(LossReason::Resync, true, now);
        }
        let Some(Op { patch: local, .. }) = self.answered(&r.id, now) else {
            return;
        };
        match r.current {
            Some(current) if r.code == "VERSION_CONFLICT" => {
                let server = Arc::unwrap_or_clone(current.state);
                if current.version >= self.version {
                    self.confirmed = server.clone();
                    self.version = current.version;
                    self.set_status(current.status);
                    self.ahead.retain(|v, _| *v > current.version);
                    self.drain_ahead(now);
                }
                self.conflict(r.id, local, server);
            }
            // The server sends a version's state once per connection: this
            // link holds it already. VERSION_AHEAD: the op was made on a
            // version the server no longer has (it lost changes); the
            // server's state, taken at the welcome, wins as in any conflict.
            _ if r.code == "VERSION_CONFLICT" || r.code == "VERSION_AHEAD" => {
                let server = self.confirmed.clone();
                self.conflict(r.id, local, server);
            }
            _ => self.error_event(&r.code, &r.message, false),
        }
    }

    fn conflict(&mut self, op: OpId, local: Value, server: Value) {
        self.events.push_back(LinkEvent::Conflict {
            op,
            local,
            server,
            winner: ConflictWinner::Server,
        });
    }

    /// A change at `version`: applied when it is the next one, held when it
    /// is ahead of a gap, ignored when already known.
    fn integrate(
        &mut self,
        version: u64,
        patch: Value,
        status: Option<String>,
        confirmed: usize,
        now: u64,
    ) {
        if version <= self.version {
            return;
        }
        self.ahead.insert(version, (patch, status));
        if self.ahead.len() > super::MAX_BUFFERED_VERSIONS {
            return self.connection_down(LossReason::Resync, true, now);
        }
        let before = self.version;
        self.drain_ahead(now);
        if self.version > before || confirmed > 0 {
            self.events.push_back(LinkEvent::StateSynchronized {
                version: self.version,
                confirmed,
            });
        }
    }

    pub(super) fn drain_ahead(&mut self, now: u64) {
        while let Some((patch, status)) = self.ahead.remove(&self.version.saturating_add(1)) {
            merge_patch::apply(&mut self.confirmed, &patch);
            self.version += 1;
            let op = self.ahead_ops.remove(&self.version);
            self.note_applied(op);
            if let Some(status) = status {
                self.set_status(status);
            }
        }
        let version = self.version;
        self.ahead_ops.retain(|v, _| *v > version);
        self.gap_since = if self.ahead.is_empty() {
            None
        } else {
            Some(self.gap_since.unwrap_or(now))
        };
    }

    /// The confirmed state now holds `op`'s change (when a patch named it).
    fn note_applied(&mut self, op: Option<OpId>) {
        if let Some(OpId { client, seq }) = op {
            let at = self.applied.get_or_insert(client, 0);
            *at = (*at).max(seq);
        }
    }

    /// Takes the server's status; a change is an event.
    fn set_status(&mut self, status: String) {
        if status != self.status {
            self.status.clone_from(&status);
            self.events.push_back(LinkEvent::StatusChanged { status });
        }
    }

    fn on_pong(&mut self, ts: u64, now: u64) {
        let rtt = now.saturating_sub(ts) as f64;
        self.srtt_ms = Some(match self.srtt_ms {
            None => rtt,
            Some(s) => s * 0.875 + rtt * 0.125,
        });
    }

    fn on_error(&mut self, e: ErrorFrame, now: u64) {
        if is_auth(&e.code) {
            self.events.push_back(LinkEvent::AuthFailed {
                code: e.code.clone(),
                message: e.message,
            });
            self.stop(&e.code);
        } else if is_terminal(&e.code) {
            self.error_event(&e.code, &e.message, true);
            self.stop(&e.code);
        } else if e.code == "VERSION_AHEAD" && matches!(self.state, LinkState::Handshaking { .. }) {
            // This link holds a version the server does not have (the server
            // lost changes): ask again from version 0, and the welcome's
            // snapshot wins.
            self.version = 0;
            self.connection_down(LossReason::Resync, true, now);
        } else {
            self.error_event(&e.code, &e.message, false);
            if e.retryable {
                self.connection_down(LossReason::Server, true, now);
            }
        }
    }

    pub(super) fn error_event(&mut self, code: &str, message: &str, terminal: bool) {
        self.events.push_back(LinkEvent::ErrorOccurred {
            code: code.into(),
            message: message.into(),
            terminal,
        });
    }
}

/// What in `msg` would become the confirmed state, or be merged into it,
/// and is not a JSON object: `None` when all is well.
fn not_an_object(msg: &Message) -> Option<&'static str> {
    match msg {
        Message::Patch(p) if !p.patch.is_object() => Some("a patch"),
        Message::Reject(r) if r.current.as_ref().is_some_and(|c| !c.state.is_object()) => {
            Some("a conflict's current state")
        }
        Message::Welcome(w) => match &w.catch_up {
            CatchUp::Snapshot { state } if !state.is_object() => Some("a snapshot's state"),
            CatchUp::Patches { patches } if patches.iter().any(|p| !p.patch.is_object()) => {
                Some("a catch-up patch")
            }
            _ => None,
        },
        _ => None,
    }
}

/// What op sequence number in `msg` is above [`MAX_SEQ`]: `None` when
/// all are within it.
fn past_max_seq(msg: &Message) -> Option<&'static str> {
    let past = |op: &Option<OpId>| op.as_ref().is_some_and(|o| o.seq > MAX_SEQ);
    match msg {
        Message::Welcome(w) if w.applied_seq > MAX_SEQ => Some("a welcome's appliedSeq"),
        Message::Welcome(w) => match &w.catch_up {
            CatchUp::Patches { patches } if patches.iter().any(|p| past(&p.op)) => {
                Some("a catch-up patch's op sequence")
            }
            _ => None,
        },
        Message::Ack(a) if a.id.seq > MAX_SEQ => Some("an ack's op sequence"),
        Message::Reject(r) if r.id.seq > MAX_SEQ => Some("a reject's op sequence"),
        Message::Patch(p) if past(&p.op) => Some("a patch's op sequence"),
        _ => None,
    }
}

fn is_auth(code: &str) -> bool {
    AUTH_CODES.contains(&code)
}

fn is_terminal(code: &str) -> bool {
    TERMINAL_CODES.contains(&code)
}
