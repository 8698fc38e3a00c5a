//! Server-side session lifecycle: flows whose statuses and allowed transitions
//! are declared as data, the two built-in flows (checkout funnel, QR table
//! ordering), the rules every flow follows ([`FlowRules`]: transitions, TTL
//! expiry, validity, stale detection), TTL and extend. Flows a page declares
//! are in `flow_table.rs`. Pure: time is always an argument (`now_ms`,
//! milliseconds since the Unix epoch).

use crate::core::error::{Result, SessileError};

/// Default time to live of a session: 30 minutes.
pub const DEFAULT_TTL_SECS: u64 = 30 * 60;
/// Shortest TTL accepted: 60 seconds.
pub const MIN_TTL_SECS: u64 = 60;
/// Longest TTL (and longest extension from now) accepted: 24 hours.
pub const MAX_TTL_SECS: u64 = 24 * 60 * 60;
/// A session in a waiting status this long gets a warning (15 minutes).
pub const DEFAULT_STALE_WARNING_SECS: u64 = 15 * 60;
/// A session in a waiting status this long is stale (20 minutes).
pub const DEFAULT_STALE_SECS: u64 = 20 * 60;

/// What a status means for the session holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusKind {
    /// The shopper is moving through the flow.
    Active,
    /// The session waits on something outside (a payment, a kitchen); a
    /// session stuck here too long is reported as stale.
    Waiting,
    /// Terminal, ended by the flow or by the page: validation answers
    /// `SESSION_CLOSED`.
    Closed,
    /// Terminal, ended by its TTL: validation answers `SESSION_EXPIRED`.
    Expired,
}

/// A flow: its statuses, the transitions between them (a table), and which
/// statuses creating, expiring and ending a session use.
#[derive(Debug)]
pub struct Flow {
    /// Name used by `create` (`checkout`, `table`).
    pub name: &'static str,
    /// Status of a new session.
    pub initial: &'static str,
    /// Status the sweeper moves a session to when its TTL has passed (only
    /// from statuses whose row allows it).
    pub expired: &'static str,
    /// Status `delete` / `end` moves a session to.
    pub ended: &'static str,
    /// Every status with its kind.
    pub statuses: &'static [(&'static str, StatusKind)],
    /// Allowed transitions: each row is a status and the statuses it may go to.
    pub transitions: &'static [(&'static str, &'static [&'static str])],
}

/// The checkout funnel: cart → checkout → processing → upsell-1 → upsell-2 →
/// success → completed; any active step may expire or be terminated.
pub static CHECKOUT: Flow = Flow {
    name: "checkout",
    initial: "cart",
    expired: "expired",
    ended: "terminated",
    statuses: &[
        ("cart", StatusKind::Active),
        ("checkout", StatusKind::Active),
        ("processing", StatusKind::Waiting),
        ("upsell-1", StatusKind::Active),
        ("upsell-2", StatusKind::Active),
        ("success", StatusKind::Active),
        ("completed", StatusKind::Closed),
        ("expired", StatusKind::Expired),
        ("terminated", StatusKind::Closed),
    ],
    transitions: &[
        ("cart", &["checkout", "expired", "terminated"]),
        ("checkout", &["processing", "expired", "terminated"]),
        ("processing", &["upsell-1", "expired", "terminated"]),
        ("upsell-1", &["upsell-2", "expired", "terminated"]),
        ("upsell-2", &["success", "expired", "terminated"]),
        ("success", &["completed", "expired", "terminated"]),
    ],
};

/// QR table ordering: a table's guests browse, fill a cart, order and pay.
/// An order once placed never expires: it must be paid or closed.
pub static TABLE: Flow = Flow {
    name: "table",
    initial: "PENDING",
    expired: "EXPIRED",
    ended: "CLOSED",
    statuses: &[
        ("PENDING", StatusKind::Active),
        ("BROWSING", StatusKind::Active),
        ("CART_ACTIVE", StatusKind::Active),
        ("ORDER_PLACED", StatusKind::Waiting),
        ("AWAITING_PAYMENT", StatusKind::Waiting),
        ("PAYMENT_COMPLETED", StatusKind::Active),
        ("CLOSED", StatusKind::Closed),
        ("EXPIRED", StatusKind::Expired),
    ],
    transitions: &[
        ("PENDING", &["BROWSING", "CLOSED", "EXPIRED"]),
        ("BROWSING", &["CART_ACTIVE", "CLOSED", "EXPIRED"]),
        (
            "CART_ACTIVE",
            &["ORDER_PLACED", "BROWSING", "CLOSED", "EXPIRED"],
        ),
        (
            "ORDER_PLACED",
            &["AWAITING_PAYMENT", "PAYMENT_COMPLETED", "CLOSED"],
        ),
        ("AWAITING_PAYMENT", &["PAYMENT_COMPLETED", "CLOSED"]),
        ("PAYMENT_COMPLETED", &["CLOSED"]),
    ],
};

/// The built-in flows.
pub static FLOWS: [&Flow; 2] = [&CHECKOUT, &TABLE];

/// The built-in flow called `name`, or `UNKNOWN_FLOW`.
pub fn flow(name: &str) -> Result<&'static Flow> {
    FLOWS
        .iter()
        .copied()
        .find(|f| f.name == name)
        .ok_or_else(|| SessileError::UnknownFlow { name: name.into() })
}

/// The rules every flow follows, built-in ([`Flow`]) or declared by a page
/// ([`DeclaredFlow`](crate::core::flow_table::DeclaredFlow)): a flow gives
/// its statuses' kinds and its table, and the checks are the same for all.
pub trait FlowRules {
    /// Name the session reports as its flow.
    fn name(&self) -> &str;
    /// Status of a new session.
    fn initial(&self) -> &str;
    /// Status the sweeper moves a session to when its TTL has passed.
    fn expired(&self) -> &str;
    /// Status `delete` / `end` moves a session to.
    fn ended(&self) -> &str;
    /// The kind of `status`, `None` when the flow has no such status.
    fn kind(&self, status: &str) -> Option<StatusKind>;
    /// Whether the table allows `from` → `to`.
    fn allows(&self, from: &str, to: &str) -> bool;

    /// `Ok` when `from` → `to` is allowed, else `INVALID_TRANSITION` naming both.
    fn check(&self, from: &str, to: &str) -> Result<()> {
        if self.allows(from, to) {
            Ok(())
        } else {
            Err(SessileError::InvalidTransition {
                from: from.into(),
                to: to.into(),
            })
        }
    }

    /// Whether `status` ends the session (closed or expired).
    fn is_terminal(&self, status: &str) -> bool {
        self.kind(status).is_some_and(StatusKind::is_terminal)
    }

    /// `Ok` when a session in `status` with this expiry is usable at `now_ms`;
    /// otherwise `SESSION_EXPIRED` or `SESSION_CLOSED`. A session past its TTL
    /// in a status that may not expire (an order placed) stays usable.
    fn validity(&self, status: &str, expires_at_ms: u64, now_ms: u64) -> Result<()> {
        match self.kind(status) {
            Some(StatusKind::Expired) => Err(SessileError::SessionExpired),
            Some(StatusKind::Closed) | None => Err(SessileError::SessionClosed {
                status: status.into(),
            }),
            _ if self.due_to_expire(status, expires_at_ms, now_ms) => {
                Err(SessileError::SessionExpired)
            }
            _ => Ok(()),
        }
    }

    /// Whether the sweeper should move this session to the expired status now.
    fn due_to_expire(&self, status: &str, expires_at_ms: u64, now_ms: u64) -> bool {
        now_ms >= expires_at_ms && self.allows(status, self.expired())
    }

    /// How long a session has sat in `status` since `since_ms`, judged
    /// against the warning and stale thresholds (seconds). Only waiting
    /// statuses can be stale.
    fn staleness(
        &self,
        status: &str,
        since_ms: u64,
        now_ms: u64,
        warning_secs: u64,
        stale_secs: u64,
    ) -> Staleness {
        if self.kind(status) != Some(StatusKind::Waiting) {
            return Staleness::Fresh;
        }
        let waited = now_ms.saturating_sub(since_ms);
        if waited >= stale_secs.saturating_mul(1000) {
            Staleness::Stale
        } else if waited >= warning_secs.saturating_mul(1000) {
            Staleness::Warning
        } else {
            Staleness::Fresh
        }
    }
}

impl StatusKind {
    /// Every kind, in the order the docs list them.
    pub const ALL: [StatusKind; 4] = [
        StatusKind::Active,
        StatusKind::Waiting,
        StatusKind::Closed,
        StatusKind::Expired,
    ];

    /// The kind's name in a declared table: `active`, `waiting`, `closed`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Active => "active",
            StatusKind::Waiting => "waiting",
            StatusKind::Closed => "closed",
            StatusKind::Expired => "expired",
        }
    }

    /// The kind called `name`, `None` for any other text.
    pub fn from_name(name: &str) -> Option<StatusKind> {
        StatusKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Whether a status of this kind ends the session (closed or expired).
    pub fn is_terminal(self) -> bool {
        matches!(self, StatusKind::Closed | StatusKind::Expired)
    }
}

impl FlowRules for Flow {
    fn name(&self) -> &str {
        self.name
    }
    fn initial(&self) -> &str {
        self.initial
    }
    fn expired(&self) -> &str {
        self.expired
    }
    fn ended(&self) -> &str {
        self.ended
    }
    fn kind(&self, status: &str) -> Option<StatusKind> {
        self.statuses
            .iter()
            .find(|(s, _)| *s == status)
            .map(|(_, k)| *k)
    }
    fn allows(&self, from: &str, to: &str) -> bool {
        self.transitions
            .iter()
            .any(|(f, targets)| *f == from && targets.contains(&to))
    }
}

/// The [`FlowRules`] of a built-in flow, callable without importing the trait.
impl Flow {
    /// See [`FlowRules::kind`].
    pub fn kind(&self, status: &str) -> Option<StatusKind> {
        FlowRules::kind(self, status)
    }
    /// See [`FlowRules::allows`].
    pub fn allows(&self, from: &str, to: &str) -> bool {
        FlowRules::allows(self, from, to)
    }
    /// See [`FlowRules::check`].
    pub fn check(&self, from: &str, to: &str) -> Result<()> {
        FlowRules::check(self, from, to)
    }
    /// See [`FlowRules::is_terminal`].
    pub fn is_terminal(&self, status: &str) -> bool {
        FlowRules::is_terminal(self, status)
    }
    /// See [`FlowRules::validity`].
    pub fn validity(&self, status: &str, expires_at_ms: u64, now_ms: u64) -> Result<()> {
        FlowRules::validity(self, status, expires_at_ms, now_ms)
    }
    /// See [`FlowRules::due_to_expire`].
    pub fn due_to_expire(&self, status: &str, expires_at_ms: u64, now_ms: u64) -> bool {
        FlowRules::due_to_expire(self, status, expires_at_ms, now_ms)
    }
    /// See [`FlowRules::staleness`].
    pub fn staleness(
        &self,
        status: &str,
        since_ms: u64,
        now_ms: u64,
        warning_secs: u64,
        stale_secs: u64,
    ) -> Staleness {
        FlowRules::staleness(self, status, since_ms, now_ms, warning_secs, stale_secs)
    }
}

/// How long a session has waited in a waiting status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staleness {
    /// Not waiting, or not for long.
    Fresh,
    /// Past the warning threshold (15 min by default).
    Warning,
    /// Past the stale threshold (20 min by default): someone should look.
    Stale,
}

/// The TTL in milliseconds for a requested TTL in seconds (`None`: the
/// default, 30 min). Below 60 s or above 24 h is `INVALID_OPTIONS`.
pub fn ttl_ms(requested_secs: Option<u64>) -> Result<u64> {
    let secs = requested_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&secs) {
        return Err(SessileError::InvalidOptions {
            option: "ttlSeconds",
            reason: format!("{secs} s is outside {MIN_TTL_SECS}..={MAX_TTL_SECS} s"),
        });
    }
    Ok(secs * 1000)
}

/// The new expiry when a session expiring at `expires_at_ms` is extended by
/// `secs` at `now_ms`: `secs` added to the later of now and the current
/// expiry, never more than [`MAX_TTL_SECS`] from now. `secs` must be 1..=24 h.
pub fn extend(expires_at_ms: u64, now_ms: u64, secs: u64) -> Result<u64> {
    if !(1..=MAX_TTL_SECS).contains(&secs) {
        return Err(SessileError::InvalidOptions {
            option: "seconds",
            reason: format!("{secs} s is outside 1..={MAX_TTL_SECS} s"),
        });
    }
    let from = expires_at_ms.max(now_ms);
    let latest = now_ms.saturating_add(MAX_TTL_SECS * 1000);
    Ok(from.saturating_add(secs * 1000).min(latest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_known_statuses_and_terminals_have_no_row() {
        for f in FLOWS {
            assert!(f.kind(f.initial).is_some() && f.kind(f.ended).is_some());
            assert_eq!(f.kind(f.expired), Some(StatusKind::Expired));
            for (from, tos) in f.transitions {
                assert!(!f.is_terminal(from), "{from} is terminal but has a row");
                assert!(tos.iter().all(|t| f.kind(t).is_some()), "{from}: {tos:?}");
            }
            for (s, _) in f.statuses.iter().filter(|(s, _)| !f.is_terminal(s)) {
                assert!(f.allows(s, f.ended), "{}: {s} cannot end", f.name);
            }
        }
    }

    #[test]
    fn invalid_transition_names_from_and_to() {
        let e = CHECKOUT.check("cart", "success").unwrap_err();
        assert_eq!(e.code(), "INVALID_TRANSITION");
        assert!(e.to_string().contains("`cart`") && e.to_string().contains("`success`"));
        assert!(TABLE.check("ORDER_PLACED", "EXPIRED").is_err());
        assert!(TABLE.check("CLOSED", "BROWSING").is_err());
        assert!(TABLE.check("CART_ACTIVE", "BROWSING").is_ok());
        assert_eq!(flow("nope").unwrap_err().code(), "UNKNOWN_FLOW");
    }

    #[test]
    fn ttl_expiry_and_extend_take_now_as_an_argument() {
        assert_eq!(ttl_ms(None).unwrap(), 1_800_000);
        assert_eq!(ttl_ms(Some(59)).unwrap_err().code(), "INVALID_OPTIONS");
        assert_eq!(ttl_ms(Some(60)).unwrap(), 60_000);
        let exp = 1_000_000;
        assert!(CHECKOUT.validity("cart", exp, exp - 1).is_ok());
        assert_eq!(
            CHECKOUT.validity("cart", exp, exp).unwrap_err().code(),
            "SESSION_EXPIRED"
        );
        assert_eq!(
            CHECKOUT.validity("completed", exp, 0).unwrap_err().code(),
            "SESSION_CLOSED"
        );
        assert!(TABLE.validity("ORDER_PLACED", exp, exp + 1).is_ok());
        assert_eq!(extend(exp, exp - 10, 60).unwrap(), exp + 60_000);
        assert_eq!(extend(exp, exp + 5_000, 60).unwrap(), exp + 65_000);
        assert_eq!(extend(exp, 0, MAX_TTL_SECS).unwrap(), MAX_TTL_SECS * 1000);
        assert!(extend(exp, 0, 0).is_err());
        let e = extend(exp, 0, MAX_TTL_SECS + 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid option `seconds`: 86401 s is outside 1..=86400 s"
        );
        // Clocks and expiries at the end of u64 saturate instead of overflowing.
        assert_eq!(extend(u64::MAX, u64::MAX - 1, 60).unwrap(), u64::MAX);
        assert_eq!(extend(0, u64::MAX, 60).unwrap(), u64::MAX);
    }

    #[test]
    fn only_waiting_statuses_go_stale() {
        let m = 60_000;
        let st = |s, waited| TABLE.staleness(s, 0, waited, 15 * 60, 20 * 60);
        assert_eq!(st("AWAITING_PAYMENT", 14 * m), Staleness::Fresh);
        assert_eq!(st("AWAITING_PAYMENT", 15 * m), Staleness::Warning);
        assert_eq!(st("ORDER_PLACED", 20 * m), Staleness::Stale);
        assert_eq!(st("BROWSING", 99 * m), Staleness::Fresh);
    }
}
