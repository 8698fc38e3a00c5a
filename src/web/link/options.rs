//! What a page gives the link: where the server is, which session and
//! client, the engine's tuning, and where it starts when nothing is stored;
//! checked with stable codes before anything opens, and the URLs the
//! transports use.

use serde_json::Value;

use super::browser;
use crate::core::error::SessileError;
use crate::core::protocol::is_id;
use crate::core::session::link::LinkConfig;

/// How long a refused WebSocket is remembered by the origin by default, ms.
pub const DEFAULT_REMEMBER_FALLBACK_MS: u64 = 600_000;

/// Options of [`Link::connect`](super::Link::connect);
/// [`LinkOptions::new`] fills in the defaults.
///
/// ```no_run
/// # async fn run() -> Result<(), sessile::SessileError> {
/// use sessile::web::link::{Link, LinkOptions};
/// let client = sessile::web::link::random_client_id()?;
/// let mut options = LinkOptions::new("https://shop.example/sessile", "checkout",
///     "0123456789abcdef0123456789abcdef", "the session's token", &client);
/// options.engine.heartbeat_ms = 2_000;
/// let link = Link::connect(options).await?;
/// link.submit(serde_json::json!({"step": "checkout"}), None)?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LinkOptions {
    /// Base URL of the server's HTTP API (`https://shop.example/sessile`;
    /// relative to the page when it has no scheme).
    pub http: String,
    /// The WebSocket URL; `None`: `http` with a `ws:`/`wss:` scheme plus
    /// `/v1/ws`.
    pub ws: Option<String>,
    /// The page's storage namespace: the record lives in the store
    /// `<namespace>:link:<client>`, a refused WebSocket is remembered under
    /// `sessile:<namespace>:fallback` in localStorage.
    pub namespace: String,
    /// This tab's client id (32 lowercase hex digits, see
    /// [`random_client_id`](super::random_client_id)); a reload that keeps
    /// it resumes the outbox.
    pub client: String,
    /// The engine's settings: the session id and token, heartbeat, backoff,
    /// timeouts, the outbox limit and the jitter seed (drawn by `new`).
    /// `start_on_http` is set by the driver from a remembered refusal.
    pub engine: LinkConfig,
    /// The server version held when nothing is stored for this session (0:
    /// none; 1 with `confirmed` for a session the page just created).
    pub version: u64,
    /// The server's state at `version` (a JSON object).
    pub confirmed: Value,
    /// How long one HTTP long-poll waits; `None`: 80 % of the heartbeat.
    pub long_poll_ms: Option<u64>,
    /// How long a refused WebSocket is remembered by the origin (every tab,
    /// across loads: they start on HTTP and probe the WebSocket later), ms.
    pub remember_fallback_ms: u64,
}

impl LinkOptions {
    /// The defaults for session `session` with `token`, client `client`,
    /// namespace `namespace`, server `http`.
    pub fn new(http: &str, namespace: &str, session: &str, token: &str, client: &str) -> Self {
        LinkOptions {
            http: http.into(),
            ws: None,
            namespace: namespace.into(),
            client: client.into(),
            engine: LinkConfig::new(session, token, browser::random_seed()),
            version: 0,
            confirmed: Value::Object(Default::default()),
            long_poll_ms: None,
            remember_fallback_ms: DEFAULT_REMEMBER_FALLBACK_MS,
        }
    }

    /// Checks what the engine does not: `INVALID_OPTIONS` naming the option
    /// (`OUTBOX_CORRUPT` for a client id, as the engine's outbox says).
    pub(super) fn check(&self) -> Result<(), SessileError> {
        let invalid = |option: &'static str, reason: &str| SessileError::InvalidOptions {
            option,
            reason: reason.into(),
        };
        let bad_name = self.namespace.is_empty()
            || self.namespace.len() > 100
            || self.namespace.chars().any(char::is_control);
        if bad_name {
            return Err(invalid(
                "name",
                "must be 1 to 100 characters, none of them control characters",
            ));
        }
        if !is_id(&self.engine.session) {
            return Err(invalid("session", "must be 32 lowercase hex digits"));
        }
        if self.engine.token.is_empty() {
            return Err(invalid("token", "is required (a string)"));
        }
        if !is_id(&self.client) {
            return Err(SessileError::OutboxCorrupt {
                reason: "client id must be 32 lowercase hex digits".into(),
            });
        }
        if !self.confirmed.is_object() {
            return Err(invalid("confirmed", "must be a JSON object"));
        }
        Ok(())
    }
}

/// The resolved URLs of a link.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    /// The HTTP API's base, absolute, without a trailing slash.
    pub http: String,
    /// The WebSocket URL.
    pub ws: String,
}

impl Endpoint {
    /// Resolves `options`' URLs against the page; `INVALID_OPTIONS` naming
    /// `http` or `ws` when one is not a URL.
    pub fn of(options: &LinkOptions) -> Result<Endpoint, SessileError> {
        Self::resolve(&options.http, options.ws.as_deref())
    }

    /// Resolves the HTTP API's base `http` and the WebSocket URL `ws`
    /// (default: `http` with a `ws:`/`wss:` scheme plus `/v1/ws`).
    pub fn resolve(http: &str, ws: Option<&str>) -> Result<Endpoint, SessileError> {
        let bad = |option: &'static str| SessileError::InvalidOptions {
            option,
            reason: "is not a URL".into(),
        };
        let base = web_sys::window()
            .and_then(|w| w.location().href().ok())
            .unwrap_or_default();
        let resolve = |url: &str| web_sys::Url::new_with_base(url, &base).ok();
        let http = resolve(http.trim_end_matches('/')).ok_or_else(|| bad("http"))?;
        if !matches!(http.protocol().as_str(), "http:" | "https:") {
            return Err(bad("http"));
        }
        let http = http.href().trim_end_matches('/').to_string();
        let ws = match ws {
            Some(ws) => resolve(ws).ok_or_else(|| bad("ws"))?,
            None => {
                let u = resolve(&[&http, "/v1/ws"].concat()).ok_or_else(|| bad("http"))?;
                let secure = u.protocol() == "https:";
                u.set_protocol(if secure { "wss:" } else { "ws:" });
                u
            }
        };
        if !matches!(ws.protocol().as_str(), "ws:" | "wss:") {
            return Err(bad("ws"));
        }
        Ok(Endpoint {
            http,
            ws: ws.href(),
        })
    }
}
