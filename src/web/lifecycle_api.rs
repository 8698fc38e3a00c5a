//! The `Lifecycle` class: a session's status and expiry on the page, checked
//! by the same core rules the server applies (`crate::core::lifecycle`):
//! which transitions a flow allows, the TTL bounds, how `extend` moves the
//! expiry, and when a session counts as expired.

use wasm_bindgen::prelude::*;

use crate::core::lifecycle::{self, Flow, StatusKind};
use crate::web::convert::to_js_error;

/// Status and expiry of one session under a named flow.
#[wasm_bindgen]
pub struct Lifecycle {
    flow: &'static Flow,
    status: String,
    expires_at: u64,
}

#[wasm_bindgen]
impl Lifecycle {
    /// A session of flow `flow` ("checkout" or "table") at its initial
    /// status, expiring `ttlSeconds` (60 s to 24 h, default 30 min) after
    /// `now`. UNKNOWN_FLOW / INVALID_OPTIONS otherwise.
    #[wasm_bindgen(constructor)]
    pub fn new(flow: &str, ttl_seconds: Option<f64>, now: f64) -> Result<Lifecycle, JsValue> {
        let flow = lifecycle::flow(flow).map_err(to_js_error)?;
        let ttl = lifecycle::ttl_ms(ttl_seconds.map(|s| s.max(0.0) as u64)).map_err(to_js_error)?;
        Ok(Lifecycle {
            flow,
            status: flow.initial.into(),
            expires_at: now.max(0.0) as u64 + ttl,
        })
    }

    /// The current status.
    #[wasm_bindgen(getter)]
    pub fn status(&self) -> String {
        self.status.clone()
    }

    /// When the session expires, ms since the Unix epoch.
    #[wasm_bindgen(getter, js_name = expiresAt)]
    pub fn expires_at(&self) -> f64 {
        self.expires_at as f64
    }

    /// "active", "waiting", "closed" or "expired" for `status` of this flow;
    /// undefined for a status the flow does not know.
    pub fn kind(&self, status: &str) -> Option<String> {
        self.flow.kind(status).map(|k| {
            match k {
                StatusKind::Active => "active",
                StatusKind::Waiting => "waiting",
                StatusKind::Closed => "closed",
                StatusKind::Expired => "expired",
            }
            .into()
        })
    }

    /// Throws INVALID_TRANSITION unless the flow allows moving to `to` now
    /// (`to` equal to the current status is allowed and changes nothing).
    pub fn check(&self, to: &str) -> Result<(), JsValue> {
        if to == self.status {
            return Ok(());
        }
        self.flow.check(&self.status, to).map_err(to_js_error)
    }

    /// Takes a status the server reports (no check: the server decided).
    #[wasm_bindgen(js_name = setStatus)]
    pub fn set_status(&mut self, status: String) {
        self.status = status;
    }

    /// Takes an expiry the server reports.
    #[wasm_bindgen(js_name = setExpiresAt)]
    pub fn set_expires_at(&mut self, at: f64) {
        self.expires_at = at.max(0.0) as u64;
    }

    /// The expiry after extending by `seconds` at `now` (the server's rule:
    /// added to the later of now and the expiry, at most 24 h from now).
    /// Stores it and returns it; INVALID_OPTIONS for 0 or over 24 h.
    pub fn extend(&mut self, seconds: f64, now: f64) -> Result<f64, JsValue> {
        let at = lifecycle::extend(
            self.expires_at,
            now.max(0.0) as u64,
            seconds.max(0.0) as u64,
        )
        .map_err(to_js_error)?;
        self.expires_at = at;
        Ok(at as f64)
    }

    /// Throws SESSION_EXPIRED or SESSION_CLOSED when the session cannot be
    /// used at `now`.
    pub fn validate(&self, now: f64) -> Result<(), JsValue> {
        self.flow
            .validity(&self.status, self.expires_at, now.max(0.0) as u64)
            .map_err(to_js_error)
    }

    /// Whether the session is past its expiry at `now` in a status that may
    /// expire (an order placed never expires silently).
    #[wasm_bindgen(js_name = dueToExpire)]
    pub fn due_to_expire(&self, now: f64) -> bool {
        self.flow
            .due_to_expire(&self.status, self.expires_at, now.max(0.0) as u64)
    }

    /// The flow's status for an expired session, and for an ended one.
    #[wasm_bindgen(js_name = terminalStatuses)]
    pub fn terminal_statuses(&self) -> Vec<String> {
        vec![self.flow.expired.into(), self.flow.ended.into()]
    }
}
