//! The client link, sans-IO: connection state, transport choice (WebSocket
//! first, raced against HTTP when slow to open, HTTP at once when refused,
//! probing back), heartbeat with RTT and timestamp
//! liveness, full-jitter backoff, and the outbox of ops with (client, seq)
//! ids, resume by version, rebase of out-of-order versions and the conflict
//! policy. Inputs are `handle_*(…, now)` and `submit`; outputs are
//! [`Link::poll_transmit`], [`Link::poll_timeout`] and [`Link::poll_event`].
//! No clock, no randomness of its own (the jitter's seed comes in with the
//! configuration), no sockets, no storage: the driver owns all of them.
//! Frames are the types of [`crate::core::protocol`], encoded and decoded
//! only through its `encode` and `decode`.
//!
//! Tabs: each tab is its own client with its own outbox, and an outbox is
//! self-contained (client id, sequences, its part of the record), so the
//! outbox of a tab that is gone can be resumed by another under its
//! original (client, seq) ids, which the server dedupes by. Today a link
//! sends one outbox, its own, and ignores answers that name another client;
//! taking in another tab's outbox beside it is the next step.
//!
//! Where the parts live: `types.rs` (what the driver sees), `outbox.rs`,
//! `backoff.rs`, `record.rs` (the persisted record), `options.rs` (a link
//! from a page's options), `inbound.rs` (frames from the server),
//! `connection.rs` (opening, losing and stopping; the race and its
//! standby). For the browser driver:
//! `http.rs` (the HTTP fallback's requests and answers) and `stored.rs`
//! (the record a page keeps between loads, the remembered fallback).

mod backoff;
mod connection;
pub mod http;
mod inbound;
mod options;
pub mod outbox;
mod record;
pub mod stored;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_applied;
#[cfg(test)]
mod tests_frames;
#[cfg(test)]
mod tests_race;

use std::collections::VecDeque;

use serde_json::{Map, Value};

use self::backoff::Backoff;
pub use self::backoff::Rng;
pub(crate) use self::options::{read_tuning, whole, MAX_SAFE, MAX_TUNING_MS};
pub use self::outbox::{Outbox, MAX_SEQ};
pub use self::record::{LinkRecord, RECORD_FORMAT};
pub use self::types::{
    ConflictWinner, Diagnostics, LinkConfig, LinkEvent, LinkState, LossReason, Transmit, Transport,
    TransportReason,
};
use crate::core::error::{Result, SessileError};
use crate::core::merge_patch;
use crate::core::protocol::{self, Hello, Message, OpId, Ping, PROTOCOL_VERSION};
use crate::core::vec_map::VecMap;

/// Out-of-order versions held before the link gives up and resyncs.
const MAX_BUFFERED_VERSIONS: usize = 256;

/// The WebSocket of the race, opening beside HTTP (see [`Transmit::SetAside`]).
#[derive(Debug, Clone, Copy)]
struct Standby {
    /// When its attempt started.
    since: u64,
    /// It opened: it takes over once no op is in flight.
    open: bool,
}

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
    ahead: VecMap<u64, (Value, Option<String>)>,
    /// The ops named by the patches held in `ahead`, by version.
    ahead_ops: VecMap<u64, OpId>,
    /// Per client, the highest sequence whose change `confirmed` holds, as
    /// the patches that named their op said (a snapshot names none).
    applied: VecMap<String, u64>,
    /// The session's status at `version` ("" until the first `welcome`).
    status: String,
    /// When the session expires (ms since the Unix epoch, 0 until known).
    expires_at: u64,
    gap_since: Option<u64>,
    /// Since when sent ops have waited without progress.
    inflight_since: Option<u64>,
    preferred: Transport,
    /// Why `preferred` is what it is.
    reason: TransportReason,
    standby: Option<Standby>,
    /// A WebSocket of this round failed to open: if HTTP then works, it is
    /// preferred.
    ws_refused: bool,
    ws_failures: u32,
    /// The last welcome's `appliedSeq` was past every sequence this outbox
    /// numbered: it was restored from an older record.
    outnumbered: bool,
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
    /// A link sending `outbox`'s ops, holding `state` (a JSON object: the
    /// record keeps it) at server `version` (0 and `{}` for nothing yet).
    /// Starts [`LinkState::Idle`].
    pub fn new(cfg: LinkConfig, outbox: Outbox, version: u64, state: Value) -> Self {
        let (preferred, reason) = if cfg.start_on_http {
            (Transport::Http, TransportReason::Remembered)
        } else {
            (Transport::WebSocket, TransportReason::WebSocket)
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
            ahead: VecMap::new(),
            ahead_ops: VecMap::new(),
            applied: VecMap::new(),
            status: String::new(),
            expires_at: 0,
            gap_since: None,
            inflight_since: None,
            preferred,
            reason,
            standby: None,
            ws_refused: false,
            ws_failures: 0,
            outnumbered: false,
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

    /// The outbox, for the driver to persist after every change.
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

    /// The highest sequence of `client` whose change the confirmed state
    /// holds, as far as the patches naming their op told this link (0: none
    /// seen; a snapshot names none). A session engine asks it of the other
    /// tabs' clients, to know which of their listed changes the server's
    /// copy already has.
    pub fn applied_seq(&self, client: &str) -> u64 {
        self.applied.get(client).copied().unwrap_or(0)
    }

    /// Whether the last `welcome` said the server processed ops of this
    /// client that this outbox never numbered: the outbox was restored from
    /// an older record (its last writes failed before a crash), so changes
    /// kept aside from it may have gone out already, under those numbers.
    pub fn outnumbered(&self) -> bool {
        self.outnumbered
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
        let transport = match self.state {
            LinkState::Connected { transport } => Some(transport),
            _ => None,
        };
        let slow = transport == Some(Transport::Http) && self.preferred == Transport::WebSocket;
        Diagnostics {
            state: self.state.clone(),
            version: self.version,
            srtt_ms: self.srtt_ms,
            connections: self.connections,
            preferred: self.preferred,
            transport,
            reason: if slow {
                TransportReason::WebSocketSlow
            } else {
                self.reason
            },
            standby: self.standby.is_some(),
            probing: self.probing || (self.standby.is_some() && self.preferred == Transport::Http),
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

    /// When to call [`handle_timeout`](Self::handle_timeout) next (the
    /// caller's ms clock), if ever.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        let connect_by = self.connect_by();
        let at = match &self.state {
            LinkState::Backoff { until } => Some(*until),
            LinkState::Connecting {
                transport: Transport::WebSocket,
            } => Some(connect_by.min(self.race_at())),
            LinkState::Connecting { .. } => Some(connect_by),
            LinkState::Handshaking { .. } => Some(self.dead_at().min(connect_by)),
            LinkState::Connected { transport } => {
                let mut at = self.dead_at().min(self.next_ping);
                for t in [self.inflight_since, self.gap_since].into_iter().flatten() {
                    at = at.min(t.saturating_add(self.cfg.ack_timeout_ms));
                }
                if *transport == Transport::Http {
                    at = at.min(self.probe_at.unwrap_or(u64::MAX));
                }
                Some(at)
            }
            _ => None,
        };
        let standby_by = self.standby_by();
        match (at, standby_by) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
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

    /// The transport asked for opened: `hello` goes out. The standby of
    /// the race opening is `handle_connected(Transport::WebSocket)` too: it
    /// takes over at once while HTTP is not synced yet, or once no op is in
    /// flight on HTTP.
    pub fn handle_connected(&mut self, transport: Transport, now: u64) {
        if transport == Transport::WebSocket {
            if let Some(s) = self.standby.as_mut().filter(|s| !s.open) {
                s.open = true;
                self.ws_refused = false;
                return self.try_promote(now);
            }
        }
        if self.state != (LinkState::Connecting { transport }) {
            return;
        }
        if transport == Transport::WebSocket {
            self.ws_refused = false;
        }
        self.state = LinkState::Handshaking { transport };
        self.last_inbound = now;
        self.next_ping = now.saturating_add(self.heartbeat_ms);
        self.send(&Message::Hello(Hello {
            protocol: u64::from(PROTOCOL_VERSION),
            session: self.cfg.session.clone(),
            token: self.cfg.token.clone(),
            client: self.outbox.client().into(),
            have_version: self.version,
        }));
    }

    /// The transport closed or failed to open (not after a
    /// [`Transmit::Close`]).
    pub fn handle_closed(&mut self, now: u64) {
        if self.is_attempting() {
            self.connection_down(LossReason::Closed, false, now);
        }
    }

    /// The standby of the race (a WebSocket set aside, see
    /// [`Transmit::SetAside`]) closed or failed to open (not after a
    /// [`Transmit::DropStandby`], [`Transmit::Close`] or
    /// [`Transmit::Promote`]).
    pub fn handle_standby_closed(&mut self, now: u64) {
        if self.standby.take().is_some() {
            self.standby_failed(now);
        }
    }

    /// The browser went online (`true`) or offline.
    pub fn handle_online(&mut self, online: bool, now: u64) {
        self.online = online;
        match self.state {
            LinkState::Offline if online => {
                self.backoff.reset();
                self.open_transport(now);
            }
            LinkState::Backoff { .. } if !online => self.state = LinkState::Offline,
            _ if !online && self.is_attempting() => {
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

    /// The page came back from the back/forward cache (`pageshow` with
    /// `persisted`). While it was frozen its connection may have died
    /// without a `close` reaching it (the server, a proxy or the network
    /// dropped it), and the liveness window would take up to two
    /// heartbeats to tell. So a connection or attempt under way is closed
    /// (`connection_lost` with [`LossReason::Frozen`]) and a new one opened
    /// at once, as is one waiting out a backoff: its `hello` resumes by
    /// version and the outbox is sent again (the server applies each op
    /// once, by its client and sequence number).
    pub fn handle_resumed(&mut self, now: u64) {
        if self.is_attempting() {
            self.connection_down(LossReason::Frozen, true, now);
        }
        if matches!(self.state, LinkState::Backoff { .. }) {
            self.backoff.reset();
            self.open_transport(now);
        }
    }

    /// A timer set from [`poll_timeout`](Self::poll_timeout) fired (or any
    /// time later; early calls do nothing).
    pub fn handle_timeout(&mut self, now: u64) {
        if self.standby_by().is_some_and(|t| now >= t) {
            self.standby = None;
            self.transmits.push_back(Transmit::DropStandby);
            self.standby_failed(now);
        }
        match self.state {
            LinkState::Backoff { until } if now >= until => self.open_transport(now),
            LinkState::Connecting { .. } if now >= self.connect_by() => {
                self.connection_down(LossReason::Timeout, true, now);
            }
            LinkState::Connecting {
                transport: Transport::WebSocket,
            } if now >= self.race_at() => self.start_race(now),
            LinkState::Handshaking { .. } | LinkState::Connected { .. } => self.live_timers(now),
            _ => {}
        }
    }

    fn live_timers(&mut self, now: u64) {
        if now >= self.dead_at() {
            return self.connection_down(LossReason::Dead, true, now);
        }
        match self.state {
            LinkState::Handshaking { .. } if now >= self.connect_by() => {
                self.connection_down(LossReason::Timeout, true, now);
            }
            LinkState::Connected { transport } => {
                let ack_timeout = self.cfg.ack_timeout_ms;
                let overdue =
                    |t: Option<u64>| t.is_some_and(|t| now >= t.saturating_add(ack_timeout));
                if overdue(self.inflight_since) || overdue(self.gap_since) {
                    return self.connection_down(LossReason::Resync, true, now);
                }
                if transport == Transport::Http && self.probe_at.is_some_and(|t| now >= t) {
                    return self.connection_down(LossReason::Upgrade, true, now);
                }
                // No ping before `welcome`: the server wants `hello` answered first.
                if now >= self.next_ping {
                    self.send(&Message::Ping(Ping { ts: now }));
                    self.next_ping = now.saturating_add(self.heartbeat_ms);
                }
            }
            _ => {}
        }
    }

    /// A local change: `patch` (a JSON merge patch object) becomes the next
    /// op in the outbox, sent at once when connected. `to` asks for a status
    /// change. Persist [`record`](Self::record) before the frame leaves.
    /// `PROTOCOL_ERROR` when the patch is not an object.
    pub fn submit(&mut self, patch: Value, to: Option<String>, now: u64) -> Result<OpId> {
        if !patch.is_object() {
            return Err(SessileError::ProtocolError {
                reason: "an op's patch must be a JSON object".into(),
            });
        }
        let id = self
            .outbox
            .push(self.version, patch, to, self.cfg.outbox_limit);
        // While the standby waits to take over, new ops wait for it.
        let waiting = self.standby.is_some_and(|s| s.open);
        if matches!(self.state, LinkState::Connected { .. }) && !waiting {
            self.send_unsent(now);
        }
        Ok(id)
    }

    /// A local change from `before` to `after`: their merge patch becomes
    /// the next op. Returns the op's sequence, or 0 when nothing changed
    /// (and no status move was asked). `INVALID_STATE` when `after` is not a
    /// JSON object.
    pub fn submit_change(
        &mut self,
        before: &Value,
        after: &Value,
        to: Option<String>,
        now: u64,
    ) -> Result<u64> {
        if !after.is_object() {
            return Err(SessileError::InvalidState {
                reason: "a synced state must be a JSON object".into(),
            });
        }
        let patch = merge_patch::diff(before, after);
        if patch.as_object().is_some_and(Map::is_empty) && to.is_none() {
            return Ok(0);
        }
        Ok(self.submit(patch, to, now)?.seq)
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

    fn send(&mut self, msg: &Message) {
        self.transmits
            .push_back(Transmit::Send(protocol::encode(msg)));
    }

    fn connect_by(&self) -> u64 {
        self.attempt_started
            .saturating_add(self.cfg.connect_timeout_ms)
    }

    /// When a WebSocket still opening gets HTTP opened beside it.
    fn race_at(&self) -> u64 {
        self.attempt_started.saturating_add(self.cfg.ws_race_ms)
    }

    /// When the standby, not open yet, is given up.
    fn standby_by(&self) -> Option<u64> {
        self.standby
            .filter(|s| !s.open)
            .map(|s| s.since.saturating_add(self.cfg.connect_timeout_ms))
    }

    fn dead_at(&self) -> u64 {
        self.last_inbound
            .saturating_add(self.heartbeat_ms.saturating_mul(2))
    }

    fn is_attempting(&self) -> bool {
        matches!(
            self.state,
            LinkState::Connecting { .. }
                | LinkState::Handshaking { .. }
                | LinkState::Connected { .. }
        )
    }
}

/// An empty JSON object, the state of a client that holds nothing yet.
pub fn empty_state() -> Value {
    Value::Object(Map::new())
}
