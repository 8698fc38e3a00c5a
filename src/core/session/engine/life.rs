//! The session's status and expiry on the page, checked by the rules the
//! server applies (`FlowRules`): a change may move the status only where
//! the flow allows, nothing changes once the session is over, the TTL is
//! checked by timestamp (a timer that fires late in a throttled tab still
//! finds the session expired), and every status the page learns or sets is
//! an event (`status_changed`, then `session_expired` or
//! `session_terminated` once, when it ends the session).

use std::collections::VecDeque;

use super::types::SessionEvent;
use crate::core::error::Result;
use crate::core::flow_table::SessionFlow;
use crate::core::lifecycle::{self, FlowRules, StatusKind};

/// Status and expiry of one session.
#[derive(Debug, Clone)]
pub struct Life {
    flow: SessionFlow,
    status: String,
    expires_at: u64,
    /// `session_expired` or `session_terminated` was told.
    over: bool,
}

impl Life {
    /// A session of `flow` at its initial status, expiring `ttl_ms` after `now`.
    pub fn new(flow: SessionFlow, ttl_ms: u64, now: u64) -> Self {
        Life {
            status: flow.initial().into(),
            expires_at: now.saturating_add(ttl_ms),
            flow,
            over: false,
        }
    }

    /// The flow.
    pub fn flow(&self) -> &SessionFlow {
        &self.flow
    }

    /// The current status.
    pub fn status(&self) -> &str {
        &self.status
    }

    /// When the session expires, ms since the epoch.
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// What `status` means in this flow.
    pub fn kind(&self, status: &str) -> Option<StatusKind> {
        self.flow.kind(status)
    }

    /// `INVALID_TRANSITION` unless the flow allows moving to `to` now
    /// (staying put is allowed).
    pub fn check(&self, to: &str) -> Result<()> {
        if to == self.status {
            return Ok(());
        }
        self.flow.check(&self.status, to)
    }

    /// `SESSION_EXPIRED` or `SESSION_CLOSED` when the session cannot be
    /// used at `now`.
    pub fn validate(&self, now: u64) -> Result<()> {
        self.flow.validity(&self.status, self.expires_at, now)
    }

    /// Takes a status (the page's, checked before, or the server's, which
    /// decided): `status_changed`, and the end of the session told once.
    /// Returns whether it changed.
    pub fn set_status(&mut self, status: &str, events: &mut VecDeque<SessionEvent>) -> bool {
        if status.is_empty() || status == self.status {
            return false;
        }
        self.status = status.into();
        events.push_back(SessionEvent::StatusChanged {
            status: status.into(),
        });
        match self.flow.kind(status) {
            Some(StatusKind::Expired) if !self.over => {
                self.over = true;
                events.push_back(SessionEvent::SessionExpired {
                    expires_at: self.expires_at,
                    status: status.into(),
                });
            }
            Some(StatusKind::Closed) if !self.over => {
                self.over = true;
                events.push_back(SessionEvent::SessionTerminated {
                    reason: status.into(),
                    status: status.into(),
                });
            }
            _ => {}
        }
        true
    }

    /// Takes an expiry the server reports (0: unknown, ignored). Returns
    /// whether it changed.
    pub fn set_expires_at(&mut self, at: u64) -> bool {
        if at == 0 || at == self.expires_at {
            return false;
        }
        self.expires_at = at;
        true
    }

    /// `extend` without a server: the server's rule applied here
    /// (`INVALID_OPTIONS` for `seconds` outside 1 s to 24 h).
    pub fn extend(&mut self, seconds: u64, now: u64) -> Result<u64> {
        self.expires_at = lifecycle::extend(self.expires_at, now, seconds)?;
        Ok(self.expires_at)
    }

    /// The session is ended by the page: `session_terminated` with
    /// `reason`, unless its end was told already.
    pub fn end(&mut self, reason: &str, events: &mut VecDeque<SessionEvent>) {
        if !self.over {
            self.over = true;
            events.push_back(SessionEvent::SessionTerminated {
                reason: reason.into(),
                status: self.status.clone(),
            });
        }
    }

    /// At `now`, past the expiry in a status that may expire: the flow's
    /// expired status and `session_expired`, once. Returns whether it did.
    pub fn check_expiry(&mut self, now: u64, events: &mut VecDeque<SessionEvent>) -> bool {
        if self.over || !self.flow.due_to_expire(&self.status, self.expires_at, now) {
            return false;
        }
        self.over = true;
        self.status = self.flow.expired().into();
        events.push_back(SessionEvent::SessionExpired {
            expires_at: self.expires_at,
            status: self.status.clone(),
        });
        true
    }

    /// When to look at the expiry again: the expiry itself, while the
    /// session is not over and its status may expire.
    pub fn timeout(&self) -> Option<u64> {
        let may_expire = self.flow.allows(&self.status, self.flow.expired());
        (!self.over && may_expire).then_some(self.expires_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::lifecycle::CHECKOUT;

    fn life(now: u64) -> Life {
        Life::new(SessionFlow::Builtin(&CHECKOUT), 60_000, now)
    }

    fn drain(events: &mut VecDeque<SessionEvent>) -> Vec<SessionEvent> {
        events.drain(..).collect()
    }

    #[test]
    fn a_step_is_checked_and_staying_put_is_allowed() {
        let l = life(0);
        assert!(l.check("cart").is_ok());
        assert!(l.check("checkout").is_ok());
        assert_eq!(l.check("success").unwrap_err().code(), "INVALID_TRANSITION");
    }

    #[test]
    fn expiry_is_a_timestamp_checked_once_and_ends_the_session() {
        let mut l = life(1_000);
        let mut ev = VecDeque::new();
        assert_eq!(l.timeout(), Some(61_000));
        assert!(!l.check_expiry(60_999, &mut ev));
        assert!(l.validate(60_999).is_ok());
        assert_eq!(l.validate(61_000).unwrap_err().code(), "SESSION_EXPIRED");
        // A timer that fired an hour late still finds it expired, once.
        assert!(l.check_expiry(3_600_000, &mut ev));
        assert!(!l.check_expiry(3_600_001, &mut ev));
        assert_eq!(
            drain(&mut ev),
            [SessionEvent::SessionExpired {
                expires_at: 61_000,
                status: "expired".into()
            }]
        );
        assert_eq!((l.status(), l.timeout()), ("expired", None));
        assert_eq!(l.validate(0).unwrap_err().code(), "SESSION_EXPIRED");
    }

    #[test]
    fn an_order_placed_does_not_expire() {
        let mut l = Life::new(
            SessionFlow::Builtin(&crate::core::lifecycle::TABLE),
            60_000,
            0,
        );
        let mut ev = VecDeque::new();
        l.set_status("ORDER_PLACED", &mut ev);
        assert_eq!(l.timeout(), None);
        assert!(!l.check_expiry(u64::MAX, &mut ev));
        assert!(l.validate(u64::MAX).is_ok());
    }

    #[test]
    fn a_closed_status_tells_the_end_once() {
        let mut l = life(0);
        let mut ev = VecDeque::new();
        assert!(!l.set_status("", &mut ev));
        assert!(!l.set_status("cart", &mut ev));
        assert!(l.set_status("terminated", &mut ev));
        l.end("terminated", &mut ev);
        assert_eq!(
            drain(&mut ev),
            [
                SessionEvent::StatusChanged {
                    status: "terminated".into()
                },
                SessionEvent::SessionTerminated {
                    reason: "terminated".into(),
                    status: "terminated".into()
                }
            ]
        );
        assert_eq!(l.validate(0).unwrap_err().code(), "SESSION_CLOSED");
    }

    #[test]
    fn extend_follows_the_servers_rule() {
        let mut l = life(0);
        assert_eq!(l.extend(60, 10_000).unwrap(), 120_000);
        assert_eq!(l.extend(0, 0).unwrap_err().code(), "INVALID_OPTIONS");
        assert!(!l.set_expires_at(0), "0 is unknown");
        assert!(l.set_expires_at(5));
        assert_eq!(l.expires_at(), 5);
    }
}
