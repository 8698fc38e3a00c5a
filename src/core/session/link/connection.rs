//! Opening, losing and stopping connections: which transport the next
//! attempt uses (WebSocket first, HTTP after repeated failures or flaps,
//! a WebSocket probe from HTTP now and then), the jittered wait before it,
//! and what a lost connection leaves behind (nothing queued for it).

use super::{Link, LinkEvent, LinkState, LossReason, Transmit, Transport};

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
        self.attempt_started = now;
        self.welcomed_at = None;
        self.state = LinkState::Connecting { transport };
        self.transmits.push_back(Transmit::Open(transport));
    }

    /// Retries stop for good: the open transport (if any) is closed, and
    /// nothing else queued for it leaves.
    pub(super) fn stop(&mut self, code: &str) {
        let had = self.is_attempting();
        self.transmits.clear();
        if had {
            self.transmits.push_back(Transmit::Close);
        }
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
            self.ws_failures = self.ws_failures.saturating_add(1);
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
                .min(self.cfg.ws_probe_ms.saturating_mul(16));
            self.probe_at = Some(now.saturating_add(self.probe_ms));
        } else if self.preferred == Transport::WebSocket
            && self.ws_failures >= self.cfg.ws_failures_before_fallback
        {
            self.preferred = Transport::Http;
            self.probe_at = Some(now.saturating_add(self.probe_ms));
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
            self.state = LinkState::Backoff {
                until: now.saturating_add(delay),
            };
        }
    }
}
