//! The client link, sans-IO: connection state, transport choice (WebSocket,
//! HTTP fallback, probing back), heartbeat liveness, jittered backoff and the
//! outbox of ops with resume. Inputs are `handle_*(…, now)` and `submit`;
//! outputs are `poll_transmit`, `poll_timeout` and `poll_event`. No clock, no
//! randomness of its own, no sockets: the driver owns all three.

#![deny(missing_docs)]

mod backoff;
pub mod outbox;
mod types;

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Map, Value};

use self::backoff::{Backoff, Rng};
pub use self::outbox::Outbox;
pub use self::types::{
    Diagnostics, LinkConfig, LinkEvent, LinkState, LossReason, Transmit, Transport,
};
use crate::core::error::{Result, SessileError};
use crate::core::merge_patch;
use crate::core::protocol::{
    self, Ack, CatchUp, ErrorFrame, Hello, LoggedPatch, Message, Op, OpId, Ping, Pong, Reject,
    Welcome, PROTOCOL_VERSION,
};

/// Out-of-order versions held before the link gives up and resyncs.
const MAX_BUFFERED_VERSIONS: usize = 256;

/// Error codes after which retrying cannot help.
const AUTH_CODES: [&str; 2] = ["INVALID_TOKEN", "SESSION_NOT_FOUND"];
const TERMINAL_CODES: [&str; 4] = [
    "SESSION_EXPIRED",
    "SESSION_CLOSED",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "ORIGIN_NOT_ALLOWED",
];

/// One client's link to the server for one session.
#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    rng: Rng,
    backoff: Backoff,
    outbox: Outbox,
    state: LinkState,
    /// The server's state at `version`, as far as this client knows.
    confirmed: Value,
    version: u64,
    /// Versions that arrived ahead of a gap, with the status each set.
    ahead: BTreeMap<u64, (Value, Option<String>)>,
    /// The session's status at `version` ("" until the first `welcome`).
    status: String,
    /// When the session expires (ms since the Unix epoch, 0 until known).
    expires_at: u64,
    gap_since: Option<u64>,
    /// Since when sent ops have waited without progress.
    inflight_since: Option<u64>,
    preferred: Transport,
    ws_failures: u32,
    probe_at: Option<u64>,
    probe_ms: u64,
    probing: bool,
    heartbeat_ms: u64,
    /// When the current attempt started (Connecting and Handshaking).
    attempt_started: u64,
    welcomed_at: Option<u64>,
    last_inbound: u64,
    next_ping: u64,
    srtt_ms: Option<f64>,
    online: bool,
    connections: u64,
    transmits: VecDeque<Transmit>,
    events: VecDeque<LinkEvent>,
}

impl Link {
    /// A link sending `outbox`'s ops, holding `state` at server `version`
    /// (0 and `{}` for nothing yet). Starts [`LinkState::Idle`].
    pub fn new(cfg: LinkConfig, outbox: Outbox, version: u64, state: Value) -> Self {
        let preferred = if cfg.start_on_http {
            Transport::Http
        } else {
            Transport::WebSocket
        };
        Link {
            rng: Rng::new(cfg.seed),
            backoff: Backoff::new(cfg.backoff_base_ms, cfg.backoff_cap_ms),
            probe_ms: cfg.ws_probe_ms,
            heartbeat_ms: cfg.heartbeat_ms.max(1),
            cfg,
            outbox,
            state: LinkState::Idle,
            confirmed: state,
            version,
            ahead: BTreeMap::new(),
            status: String::new(),
            expires_at: 0,
            gap_since: None,
            inflight_since: None,
            preferred,
            ws_failures: 0,
            probe_at: None,
            probing: false,
            attempt_started: 0,
            welcomed_at: None,
            last_inbound: 0,
            next_ping: 0,
            srtt_ms: None,
            online: true,
            connections: 0,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Where the link stands.
    pub fn state(&self) -> &LinkState {
        &self.state
    }

    /// The outbox, for the web layer to persist after every change.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// The server version the client holds.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The session's status at [`version`](Self::version) ("" until the
    /// first `welcome`).
    pub fn status(&self) -> &str {
        &self.status
    }

    /// When the session expires, ms since the Unix epoch (0 until known).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The server moved the expiry (an `extended` answer or the HTTP API).
    pub fn set_expires_at(&mut self, at: u64) {
        self.expires_at = at;
    }

    /// The server's state at [`version`](Self::version).
    pub fn confirmed(&self) -> &Value {
        &self.confirmed
    }

    /// What the page sees: the confirmed state with the outbox's ops on top.
    pub fn view(&self) -> Value {
        let mut v = self.confirmed.clone();
        for op in self.outbox.iter() {
            merge_patch::apply(&mut v, &op.patch);
        }
        v
    }

    /// Sizes and counters.
    pub fn diagnostics(&self) -> Diagnostics {
        Diagnostics {
            srtt_ms: self.srtt_ms,
            connections: self.connections,
            preferred: self.preferred,
            outbox_len: self.outbox.len(),
            queued_transmits: self.transmits.len(),
            queued_events: self.events.len(),
            buffered_versions: self.ahead.len(),
        }
    }

    /// The next network action, if any.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event, if any.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match &self.state {
            LinkState::Backoff { until } => Some(*until),
            LinkState::Connecting { .. } => {
                Some(self.attempt_started + self.cfg.connect_timeout_ms)
            }
            LinkState::Handshaking { .. } => Some(
                self.dead_at()
                    .min(self.attempt_started + self.cfg.connect_timeout_ms),
            ),
            LinkState::Connected { transport } => {
                let mut at = self.dead_at().min(self.next_ping);
                for t in [self.inflight_since, self.gap_since].into_iter().flatten() {
                    at = at.min(t + self.cfg.ack_timeout_ms);
                }
                if *transport == Transport::Http {
                    at = at.min(self.probe_at.unwrap_or(u64::MAX));
                }
                Some(at)
            }
            _ => None,
        }
    }

    /// The page wants the session: start connecting.
    pub fn handle_open(&mut self, now: u64) {
        if self.state == LinkState::Idle {
            if self.online {
                self.open_transport(now);
            } else {
                self.state = LinkState::Offline;
            }
        }
    }

    /// The transport asked for opened: `hello` goes out.
    pub fn handle_connected(&mut self, transport: Transport, now: u64) {
        if self.state != (LinkState::Connecting { transport }) {
            return;
        }
        self.state = LinkState::Handshaking { transport };
        self.last_inbound = now;
        self.next_ping = now + self.heartbeat_ms;
        self.send(&Message::Hello(Hello {
            protocol: u64::from(PROTOCOL_VERSION),
            session: self.cfg.session.clone(),
            token: self.cfg.token.clone(),
            client: self.outbox.client().into(),
            have_version: self.version,
        }));
    }

    /// The transport closed or failed to open (not after `Transmit::Close`).
    pub fn handle_closed(&mut self, now: u64) {
        if self.is_attempting() {
            self.connection_down(LossReason::Closed, false, now);
        }
    }

    /// The browser went online (`true`) or offline.
    pub fn handle_online(&mut self, online: bool, now: u64) {
        self.online = online;
        match (&self.state, online) {
            (LinkState::Offline, true) => {
                self.backoff.reset();
                self.open_transport(now);
            }
            (LinkState::Backoff { .. }, false) => self.state = LinkState::Offline,
            (_, false) if self.is_attempting() => {
                self.connection_down(LossReason::Offline, true, now);
            }
            _ => {}
        }
    }

    /// The page became visible (`true`) or hidden. Visible during a backoff
    /// tries at once; hidden changes nothing (liveness uses timestamps, so
    /// throttled timers do not kill the link).
    pub fn handle_visible(&mut self, visible: bool, now: u64) {
        if visible && matches!(self.state, LinkState::Backoff { .. }) {
            self.open_transport(now);
        }
    }

    /// A timer set from [`poll_timeout`](Self::poll_timeout) fired (or any
    /// time later; early calls do nothing).
    pub fn handle_timeout(&mut self, now: u64) {
        match self.state.clone() {
            LinkState::Backoff { until } if now >= until => self.open_transport(now),
            LinkState::Connecting { .. }
                if now >= self.attempt_started + self.cfg.connect_timeout_ms =>
            {
                self.connection_down(LossReason::Timeout, true, now);
            }
            LinkState::Handshaking { .. } | LinkState::Connected { .. } => self.live_timers(now),
            _ => {}
        }
    }

    fn live_timers(&mut self, now: u64) {
        if now >= self.dead_at() {
            return self.connection_down(LossReason::Dead, true, now);
        }
        if let LinkState::Handshaking { .. } = self.state {
            if now >= self.attempt_started + self.cfg.connect_timeout_ms {
                return self.connection_down(LossReason::Timeout, true, now);
            }
        }
        if let LinkState::Connected { transport } = self.state {
            let overdue = |t: Option<u64>| t.is_some_and(|t| now >= t + self.cfg.ack_timeout_ms);
            if overdue(self.inflight_since) || overdue(self.gap_since) {
                return self.connection_down(LossReason::Resync, true, now);
            }
            if transport == Transport::Http && self.probe_at.is_some_and(|t| now >= t) {
                return self.connection_down(LossReason::Upgrade, true, now);
            }
        }
        // No ping before `welcome`: the server wants `hello` answered first.
        if matches!(self.state, LinkState::Connected { .. }) && now >= self.next_ping {
            self.send(&Message::Ping(Ping { ts: now }));
            self.next_ping = now + self.heartbeat_ms;
        }
    }

    /// A local change: `patch` (a JSON merge patch object) becomes the next
    /// op in the outbox, sent at once when connected. `to` asks for a status
    /// change. Persist [`outbox`](Self::outbox) before the frame leaves.
    pub fn submit(&mut self, patch: Value, to: Option<String>, now: u64) -> Result<OpId> {
        if !patch.is_object() {
            return Err(SessileError::ProtocolError {
                reason: "an op's patch must be a JSON object".into(),
            });
        }
        let id = self
            .outbox
            .push(self.version, patch, to, self.cfg.outbox_limit);
        if matches!(self.state, LinkState::Connected { .. }) {
            self.send_unsent(now);
        }
        Ok(id)
    }

    /// One inbound frame on the current transport.
    pub fn handle_frame(&mut self, bytes: &[u8], now: u64) {
        if !matches!(
            self.state,
            LinkState::Handshaking { .. } | LinkState::Connected { .. }
        ) {
            return;
        }
        self.last_inbound = now;
        let msg = match protocol::decode(bytes, self.cfg.max_frame_bytes) {
            Ok(m) => m,
            Err(e) => return self.error_event(e.code(), &e.to_string(), false),
        };
        let connected = matches!(self.state, LinkState::Connected { .. });
        match msg {
            Message::Welcome(w) if !connected => self.on_welcome(w, now),
            Message::Ack(a) if connected => self.on_ack(a, now),
            Message::Reject(r) if connected => self.on_reject(r, now),
            Message::Patch(p) if connected => self.on_patch(p, now),
            Message::Ping(p) => self.send(&Message::Pong(Pong {
                ts: p.ts,
                server_ts: now,
            })),
            Message::Pong(p) => self.on_pong(p.ts, now),
            Message::Error(e) => self.on_error(e, now),
            Message::Bye(b) => {
                let reason = b.reason.unwrap_or_default();
                if AUTH_CODES.contains(&reason.as_str())
                    || TERMINAL_CODES.contains(&reason.as_str())
                {
                    self.stop(&reason, now);
                } else {
                    self.connection_down(LossReason::Server, true, now);
                }
            }
            _ => {}
        }
    }

    fn on_welcome(&mut self, w: Welcome, now: u64) {
        let confirmed = self.outbox.remove_upto(w.applied_seq);
        self.ahead.clear();
        self.gap_since = None;
        match w.catch_up {
            CatchUp::UpToDate => {}
            CatchUp::Patches { patches } => {
                for p in patches {
                    if p.version == self.version + 1 {
                        merge_patch::apply(&mut self.confirmed, &p.patch);
                        self.version = p.version;
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
            self.preferred = Transport::WebSocket;
            self.probe_at = None;
            self.probe_ms = self.cfg.ws_probe_ms;
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

    fn send_unsent(&mut self, now: u64) {
        let ops: Vec<Message> = self.outbox.unsent().cloned().map(Message::Op).collect();
        for op in &ops {
            self.send(op);
        }
        if let Some(Message::Op(last)) = ops.last() {
            self.outbox.mark_sent(last.id.seq);
            self.inflight_since.get_or_insert(now);
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
        self.inflight_since =
            (!self.outbox.is_empty() && self.outbox.was_sent(op.id.seq + 1)).then_some(now);
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
                if current.version >= self.version {
                    self.confirmed = current.state.clone();
                    self.version = current.version;
                    self.set_status(current.status.clone());
                    self.ahead.retain(|v, _| *v > current.version);
                    self.drain_ahead(now);
                }
                self.events.push_back(LinkEvent::Conflict {
                    op: r.id,
                    local,
                    server: current.state,
                });
            }
            _ => self.error_event(&r.code, &r.message, false),
        }
    }

    fn on_patch(&mut self, p: LoggedPatch, now: u64) {
        self.integrate(p.version, p.patch, p.status, 0, now);
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
        if self.ahead.len() > MAX_BUFFERED_VERSIONS {
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

    fn drain_ahead(&mut self, now: u64) {
        while let Some((patch, status)) = self.ahead.remove(&(self.version + 1)) {
            merge_patch::apply(&mut self.confirmed, &patch);
            self.version += 1;
            if let Some(status) = status {
                self.set_status(status);
            }
        }
        self.gap_since = if self.ahead.is_empty() {
            None
        } else {
            Some(self.gap_since.unwrap_or(now))
        };
    }

    /// Takes the server's status; a change is an event.
    fn set_status(&mut self, status: String) {
        if status != self.status {
            self.status = status.clone();
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
        if AUTH_CODES.contains(&e.code.as_str()) {
            self.events.push_back(LinkEvent::AuthFailed {
                code: e.code.clone(),
                message: e.message,
            });
            self.stop(&e.code, now);
        } else if TERMINAL_CODES.contains(&e.code.as_str()) {
            self.error_event(&e.code, &e.message, true);
            self.stop(&e.code, now);
        } else {
            self.error_event(&e.code, &e.message, false);
            if e.retryable {
                self.connection_down(LossReason::Server, true, now);
            }
        }
    }

    fn error_event(&mut self, code: &str, message: &str, terminal: bool) {
        self.events.push_back(LinkEvent::ErrorOccurred {
            code: code.into(),
            message: message.into(),
            terminal,
        });
    }

    fn stop(&mut self, code: &str, _now: u64) {
        let had = self.is_attempting();
        self.transmits.clear();
        if had {
            self.transmits.push_back(Transmit::Close);
        }
        self.ahead.clear();
        self.state = LinkState::Stopped { code: code.into() };
    }

    fn is_attempting(&self) -> bool {
        matches!(
            self.state,
            LinkState::Connecting { .. }
                | LinkState::Handshaking { .. }
                | LinkState::Connected { .. }
        )
    }

    fn dead_at(&self) -> u64 {
        self.last_inbound + 2 * self.heartbeat_ms
    }

    fn send(&mut self, msg: &Message) {
        self.transmits
            .push_back(Transmit::Send(protocol::encode(msg)));
    }

    fn open_transport(&mut self, now: u64) {
        if self.preferred == Transport::Http && self.probe_at.is_none() {
            self.probe_at = Some(now + self.probe_ms);
        }
        let probe = self.preferred == Transport::Http && self.probe_at.is_some_and(|t| now >= t);
        self.probing = probe;
        let transport = if probe {
            Transport::WebSocket
        } else {
            self.preferred
        };
        self.attempt_started = now;
        self.welcomed_at = None;
        self.state = LinkState::Connecting { transport };
        self.transmits.push_back(Transmit::Open(transport));
    }

    /// The current attempt or connection ended: count it, tell the page,
    /// pick the transport and when to try again.
    fn connection_down(&mut self, reason: LossReason, close: bool, now: u64) {
        let transport = match self.state {
            LinkState::Connecting { transport }
            | LinkState::Handshaking { transport }
            | LinkState::Connected { transport } => transport,
            _ => return,
        };
        let up_for = self.welcomed_at.map(|t| now.saturating_sub(t));
        if let Some(up) = up_for {
            self.events.push_back(LinkEvent::ConnectionLost { reason });
            if up >= self.cfg.stable_after_ms {
                self.backoff.reset();
                self.ws_failures = 0;
            }
        }
        let failed = up_for.is_none_or(|up| up < self.cfg.stable_after_ms);
        if transport == Transport::WebSocket && failed && reason != LossReason::Offline {
            self.ws_failures += 1;
        }
        // Frames queued for the dead connection go nowhere.
        self.transmits.clear();
        if close {
            self.transmits.push_back(Transmit::Close);
        }
        self.ahead.clear();
        self.gap_since = None;
        self.inflight_since = None;
        self.welcomed_at = None;
        let was_probe = self.probing;
        self.probing = false;
        if was_probe && up_for.is_none() {
            // The WebSocket probe failed: stay on HTTP, probe later.
            self.probe_ms = self
                .probe_ms
                .saturating_mul(2)
                .min(self.cfg.ws_probe_ms << 4);
            self.probe_at = Some(now + self.probe_ms);
        } else if self.preferred == Transport::WebSocket
            && self.ws_failures >= self.cfg.ws_failures_before_fallback
        {
            self.preferred = Transport::Http;
            self.probe_at = Some(now + self.probe_ms);
        }
        if !self.online {
            self.state = LinkState::Offline;
            return;
        }
        // Switching transports is one deliberate attempt; everything else,
        // resyncs included, waits its jittered turn (so no loop is tight).
        if reason == LossReason::Upgrade || was_probe {
            self.open_transport(now);
        } else {
            let delay = self.backoff.next_delay(&mut self.rng);
            self.state = LinkState::Backoff { until: now + delay };
        }
    }
}

/// An empty JSON object, the state of a client that holds nothing yet.
pub fn empty_state() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests;
