//! Opening, losing and stopping connections: which transport the next
//! attempt uses (WebSocket first, HTTP after a refused WebSocket or
//! repeated flaps, a WebSocket probe from HTTP now and then), the race of a
//! slow WebSocket against HTTP (happy eyeballs: the standby, and its taking
//! over), the jittered wait before a retry, and what a lost connection
//! leaves behind (nothing queued for it).

use super::{
    Link, LinkEvent, LinkState, LossReason, Standby, Transmit, Transport, TransportReason,
};

impl Link {
    pub(super) fn open_transport(&mut self, now: u64) {
        if self.preferred == Transport::Http && self.probe_at.is_none() {
            self.probe_at = Some(now.saturating_add(self.probe_ms));
        }
        let probe = self.preferred == Transport::Http && self.probe_at.is_some_and(|t| now >= t);
        self.probing = probe;
        let transport = if probe {
            Transport::WebSocket
        } else {
            self.preferred
        };
        self.open_on(transport, now);
    }

    fn open_on(&mut self, transport: Transport, now: u64) {
        self.attempt_started = now;
        self.welcomed_at = None;
        self.state = LinkState::Connecting { transport };
        self.transmits.push_back(Transmit::Open(transport));
    }

    /// The WebSocket has not opened within `ws_race_ms`: it goes aside as
    /// the standby, and HTTP opens beside it.
    pub(super) fn start_race(&mut self, now: u64) {
        self.transmits.push_back(Transmit::SetAside);
        self.standby = Some(Standby {
            since: self.attempt_started,
            open: false,
        });
        // A probe that races is settled by its standby.
        self.probing = false;
        self.open_on(Transport::Http, now);
    }

    /// The standby, open, takes over: at once while HTTP is not synced,
    /// else once no op is in flight on it (so no answer is left behind on
    /// the connection that closes). Its handshake resends what the outbox
    /// holds under the same (client, seq) ids.
    pub(super) fn try_promote(&mut self, now: u64) {
        if !self.standby.is_some_and(|s| s.open) {
            return;
        }
        match self.state {
            LinkState::Connecting { .. } | LinkState::Handshaking { .. } => {}
            LinkState::Connected { .. } if self.inflight_since.is_none() => {
                self.events.push_back(LinkEvent::ConnectionLost {
                    reason: LossReason::Upgrade,
                });
            }
            _ => return,
        }
        self.standby = None;
        self.transmits.push_back(Transmit::Promote);
        self.ahead.clear();
        self.gap_since = None;
        self.inflight_since = None;
        self.state = LinkState::Connecting {
            transport: Transport::WebSocket,
        };
        self.attempt_started = now;
        self.welcomed_at = None;
        self.handle_connected(Transport::WebSocket, now);
    }

    /// The standby failed to open (closed, or not open in time).
    pub(super) fn standby_failed(&mut self, now: u64) {
        if self.preferred == Transport::Http {
            // A probe from HTTP: probe later, twice as long.
            self.probe_failed(now);
        } else {
            self.ws_refused = true;
            if matches!(self.state, LinkState::Connected { .. }) {
                self.fall_back(TransportReason::WebSocketRefused, now);
            }
        }
    }

    fn probe_failed(&mut self, now: u64) {
        self.probe_ms = self
            .probe_ms
            .saturating_mul(2)
            .min(self.cfg.ws_probe_ms.saturating_mul(16));
        self.probe_at = Some(now.saturating_add(self.probe_ms));
    }

    /// New connections use HTTP from now on, and probe the WebSocket later.
    pub(super) fn fall_back(&mut self, reason: TransportReason, now: u64) {
        self.ws_refused = false;
        self.preferred = Transport::Http;
        self.reason = reason;
        self.probe_at = Some(now.saturating_add(self.probe_ms));
        self.events.push_back(LinkEvent::TransportPreferred {
            transport: Transport::Http,
            reason,
        });
    }

    /// Retries stop for good: the open transport (if any) is closed, and
    /// nothing else queued for it leaves.
    pub(super) fn stop(&mut self, code: &str) {
        let had = self.is_attempting();
        self.transmits.clear();
        if had {
            self.transmits.push_back(Transmit::Close);
        }
        self.standby = None;
        self.ahead.clear();
        self.state = LinkState::Stopped { code: code.into() };
    }

    /// The current attempt or connection ended: count it, tell the page,
    /// pick the transport and when to try again.
    pub(super) fn connection_down(&mut self, reason: LossReason, close: bool, now: u64) {
        let transport = match self.state {
            LinkState::Connecting { transport }
            | LinkState::Handshaking { transport }
            | LinkState::Connected { transport } => transport,
            _ => return,
        };
        let opening = matches!(self.state, LinkState::Connecting { .. });
        let up_for = self.welcomed_at.map(|t| now.saturating_sub(t));
        if let Some(up) = up_for {
            self.events.push_back(LinkEvent::ConnectionLost { reason });
            if up >= self.cfg.stable_after_ms {
                self.backoff.reset();
                self.ws_failures = 0;
            }
        }
        let failed = up_for.is_none_or(|up| up < self.cfg.stable_after_ms);
        // Offline or frozen: nothing the transport did wrong.
        let blameless = matches!(reason, LossReason::Offline | LossReason::Frozen);
        if transport == Transport::WebSocket && failed && !blameless {
            self.ws_failures = self.ws_failures.saturating_add(1);
        }
        // A WebSocket that did not open: HTTP is tried at once (as happy
        // eyeballs starts the next attempt when one fails).
        let ws_unopened = transport == Transport::WebSocket && opening && !blameless;
        if ws_unopened && self.preferred == Transport::WebSocket {
            self.ws_refused = true;
        }
        // Frames queued for the dead connection go nowhere; the standby
        // goes with it.
        self.transmits.clear();
        if close {
            self.transmits.push_back(Transmit::Close);
        } else if self.standby.is_some() {
            self.transmits.push_back(Transmit::DropStandby);
        }
        self.standby = None;
        self.ahead.clear();
        self.gap_since = None;
        self.inflight_since = None;
        self.welcomed_at = None;
        let was_probe = self.probing;
        self.probing = false;
        if was_probe && up_for.is_none() {
            // The WebSocket probe failed: stay on HTTP, probe later.
            self.probe_failed(now);
        } else if self.preferred == Transport::WebSocket
            && self.ws_failures >= self.cfg.ws_failures_before_fallback
        {
            self.fall_back(TransportReason::WebSocketFlapping, now);
        }
        if !self.online {
            self.state = LinkState::Offline;
            return;
        }
        // Switching transports is one deliberate attempt; everything else,
        // resyncs included, waits its jittered turn (so no loop is tight).
        if reason == LossReason::Upgrade || was_probe {
            self.open_transport(now);
        } else if ws_unopened {
            self.open_on(Transport::Http, now);
        } else {
            let delay = self.backoff.next_delay(&mut self.rng);
            self.state = LinkState::Backoff {
                until: now.saturating_add(delay),
            };
        }
    }
}
