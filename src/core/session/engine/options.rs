//! A session's configuration, and reading it from the page's options (a
//! JSON value: what the bindings get from `openSession`, functions left
//! out): the store's options, the lifecycle flow and TTL, the server and
//! the link's tuning. Each is checked before anything is opened, with
//! `INVALID_OPTIONS` naming it (`UNKNOWN_FLOW` for a flow name nobody
//! knows), as `openStore` and `openSession` have always answered.

use serde_json::{Map, Value};

use super::types::ServerSession;
use crate::core::envelope::EnvelopeConfig;
use crate::core::error::{Result, SessileError};
use crate::core::flow_table::SessionFlow;
use crate::core::lifecycle;
use crate::core::session::link::{read_tuning, whole, LinkConfig, MAX_SAFE, MAX_TUNING_MS};
use crate::core::session::store::{BackendKind, ClientId, StoreConfig};

/// How long a refused WebSocket is remembered by the origin by default, ms.
pub const DEFAULT_REMEMBER_FALLBACK_MS: u64 = 600_000;
/// Longest HTTP long-poll, ms (the server waits at most this long).
pub const MAX_LONG_POLL_MS: u64 = 30_000;

/// What a session is opened with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The store (namespace, backend, debounce, schema, initial state,
    /// envelope, this tab's client id).
    pub store: StoreConfig,
    /// The lifecycle flow.
    pub flow: SessionFlow,
    /// The flow as the create request names it: a built-in flow's name, a
    /// declared table with every field given, or `None` for the default.
    pub flow_request: Option<Value>,
    /// The TTL the page asked for, seconds (`None`: the default, 30 min).
    pub ttl_seconds: Option<u64>,
    /// The server, for a synced session.
    pub sync: Option<SyncConfig>,
    /// Seed of every random draw (backoff jitter), from the driver.
    pub seed: u64,
}

/// The server side of a session.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// A session created by the shop's backend (`server.session`), else the
    /// one remembered, else a new one.
    pub session: Option<ServerSession>,
    /// The link's tuning (its session, token and seed are set per link).
    pub link: LinkConfig,
    /// How long one HTTP long-poll waits, ms (the driver's; default 80 % of
    /// the heartbeat, at most 30 s).
    pub long_poll_ms: u64,
    /// How long a refused WebSocket is remembered by the origin
    /// (localStorage), ms (600 000).
    pub remember_fallback_ms: u64,
}

impl SessionConfig {
    /// A session of namespace `name` for client `client`, local only, with
    /// the defaults of `openSession`.
    pub fn new(name: &str, client: ClientId, seed: u64) -> Self {
        SessionConfig {
            store: StoreConfig::new(name, client),
            flow: SessionFlow::Builtin(&lifecycle::CHECKOUT),
            flow_request: None,
            ttl_seconds: None,
            sync: None,
            seed,
        }
    }

    /// The TTL in ms; `INVALID_OPTIONS` outside 60 s to 24 h.
    pub fn ttl_ms(&self) -> Result<u64> {
        lifecycle::ttl_ms(self.ttl_seconds)
    }

    /// Reads the page's options: `{name, storage?, debounceMs?,
    /// schemaVersion?, initial?, compressAbove?, maxBytes?,
    /// compressionLevel?, flow?, ttlSeconds?, server?: {http, ws?,
    /// session?: {id, token}}, heartbeatMs?, backoffBaseMs?, backoffCapMs?,
    /// wsProbeMs?, wsRaceMs?, connectTimeoutMs?, ackTimeoutMs?, longPollMs?,
    /// rememberFallbackMs?}`. `null` counts as absent.
    pub fn from_options(options: &Value, client: ClientId, seed: u64) -> Result<Self> {
        let Value::Object(o) = options else {
            return Err(invalid(
                "options",
                "openSession needs an options object with a `name`",
            ));
        };
        let name = match get(o, "name") {
            Some(Value::String(n)) => n.as_str(),
            _ => return Err(invalid("name", "must be a non-empty string")),
        };
        let mut config = SessionConfig::new(name, client, seed);
        config.store.storage = storage(o)?;
        config.store.debounce_ms = whole(o, "debounceMs", 60_000)?.unwrap_or(250);
        config.store.schema_version =
            whole(o, "schemaVersion", u64::from(u32::MAX))?.map_or(1, |v| v as u32);
        config.store.initial = get(o, "initial").cloned().unwrap_or(Value::Null);
        config.store.envelope = envelope(o)?;
        config.store.discard_local = match get(o, "discardLocal") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(invalid("discardLocal", "must be true or false")),
        };
        config.store.validate()?;
        if let Some(flow) = get(o, "flow") {
            config.flow = SessionFlow::from_json(flow)?;
            // The server gets a declared table as the page validated it, every field given.
            config.flow_request = Some(config.flow.table().unwrap_or_else(|| flow.clone()));
        }
        config.ttl_seconds = match get(o, "ttlSeconds") {
            None => None,
            // Fractions are cut off, as the page's lifecycle always did.
            Some(v) => match v.as_f64().filter(|f| f.is_finite()) {
                Some(f) => Some(f.trunc().clamp(0.0, u64::MAX as f64) as u64),
                None => return Err(invalid("ttlSeconds", "must be a number of seconds")),
            },
        };
        config.ttl_ms()?;
        if let Some(server) = get(o, "server") {
            config.sync = Some(sync(o, server)?);
        }
        Ok(config)
    }
}

fn invalid(option: &'static str, reason: &str) -> SessileError {
    SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    }
}

/// `o[key]`, `None` when absent or null.
fn get<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    o.get(key).filter(|v| !v.is_null())
}

fn storage(o: &Map<String, Value>) -> Result<Option<BackendKind>> {
    match get(o, "storage") {
        None => Ok(None),
        Some(Value::String(s)) => {
            BackendKind::from_option(s).ok_or_else(|| invalid("storage", BackendKind::OPTION_NAMES))
        }
        Some(_) => Err(invalid("storage", "must be a string")),
    }
}

/// The envelope's options (their range is checked by `EnvelopeConfig::validate`).
fn envelope(o: &Map<String, Value>) -> Result<EnvelopeConfig> {
    let defaults = EnvelopeConfig::default();
    let max = whole(o, "maxBytes", u64::from(u32::MAX))?.unwrap_or(defaults.max_raw_bytes as u64);
    Ok(EnvelopeConfig {
        compress_above: whole(o, "compressAbove", MAX_SAFE)?
            .map_or(defaults.compress_above, |v| v as usize),
        max_raw_bytes: max as usize,
        compression_level: whole(o, "compressionLevel", 9)?
            .map_or(defaults.compression_level, |v| v as u8),
    })
}

fn sync(o: &Map<String, Value>, server: &Value) -> Result<SyncConfig> {
    let Value::Object(s) = server else {
        return Err(invalid(
            "server",
            "must be an object `{ http, ws?, session? }`",
        ));
    };
    if !matches!(get(s, "http"), Some(Value::String(_))) {
        return Err(invalid("server", "`http` must be the server's base URL"));
    }
    if get(s, "ws").is_some_and(|w| !w.is_string()) {
        return Err(invalid("server", "`ws` must be a WebSocket URL"));
    }
    let session = match get(s, "session") {
        None => None,
        Some(Value::Object(x)) => match (get(x, "id"), get(x, "token")) {
            (Some(Value::String(id)), Some(Value::String(token))) => Some(ServerSession {
                id: id.clone(),
                token: token.clone(),
            }),
            _ => return Err(invalid("server", "`session` must be `{ id, token }`")),
        },
        Some(_) => return Err(invalid("server", "`session` must be `{ id, token }`")),
    };
    let mut link = LinkConfig::new("", "", 0);
    read_tuning(o, &mut link)?;
    let long_poll_ms = whole(o, "longPollMs", MAX_TUNING_MS)?
        .unwrap_or(link.heartbeat_ms * 4 / 5)
        .min(MAX_LONG_POLL_MS);
    let remember = whole(o, "rememberFallbackMs", MAX_TUNING_MS)?;
    Ok(SyncConfig {
        session,
        long_poll_ms,
        remember_fallback_ms: remember.unwrap_or(DEFAULT_REMEMBER_FALLBACK_MS),
        link,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::lifecycle::FlowRules;

    fn me() -> ClientId {
        ClientId("5f0c2a9be4d14c7a8e0b3f6d9a1c2e47".into())
    }

    fn read(options: Value) -> Result<SessionConfig> {
        SessionConfig::from_options(&options, me(), 7)
    }

    fn refused(options: Value) -> (String, String) {
        let e = read(options).unwrap_err();
        (e.code().into(), e.to_string())
    }

    #[test]
    fn the_defaults_of_open_session() {
        let c = read(json!({"name": "checkout"})).unwrap();
        assert_eq!(c.store.name, "checkout");
        assert_eq!(
            (c.store.storage, c.store.debounce_ms, c.store.schema_version),
            (None, 250, 1)
        );
        assert_eq!(c.store.initial, Value::Null);
        assert_eq!(c.store.envelope, EnvelopeConfig::default());
        assert_eq!(c.flow.name(), "checkout");
        assert_eq!((&c.flow_request, c.ttl_seconds), (&None, None));
        assert_eq!(c.ttl_ms().unwrap(), 1_800_000);
        assert!(c.sync.is_none());
    }

    #[test]
    fn every_option_is_read() {
        let c = read(json!({
            "name": "n", "storage": "localstorage", "debounceMs": 0, "schemaVersion": 3,
            "initial": {"step": "cart"}, "compressAbove": 10, "maxBytes": 1000,
            "compressionLevel": 9, "flow": "table", "ttlSeconds": 90.9,
            "server": {"http": "http://x", "session": {"id": "a", "token": "t"}},
            "heartbeatMs": 0, "ackTimeoutMs": 3000, "longPollMs": 99_999, "rememberFallbackMs": 5,
        }))
        .unwrap();
        assert_eq!(c.store.storage, Some(BackendKind::LocalStorage));
        assert_eq!((c.store.debounce_ms, c.store.schema_version), (0, 3));
        assert_eq!(c.store.envelope.compress_above, 10);
        assert_eq!(c.store.envelope.max_raw_bytes, 1000);
        assert_eq!(c.flow.name(), "table");
        assert_eq!(c.flow_request, Some(json!("table")));
        assert_eq!(c.ttl_seconds, Some(90));
        let s = c.sync.unwrap();
        assert_eq!(s.session.unwrap().token, "t");
        assert_eq!((s.link.heartbeat_ms, s.link.ack_timeout_ms), (1, 3000));
        assert_eq!((s.long_poll_ms, s.remember_fallback_ms), (30_000, 5));
    }

    #[test]
    fn a_declared_flow_goes_to_the_server_with_every_field() {
        let table = json!({
            "initial": "cart",
            "statuses": {"cart": "active", "paid": "closed", "expired": "expired", "terminated": "closed"},
            "transitions": {"cart": ["paid", "expired", "terminated"]},
        });
        let c = read(json!({"name": "n", "flow": table})).unwrap();
        let sent = c.flow_request.unwrap();
        assert_eq!(
            (sent["name"].as_str(), sent["ended"].as_str()),
            (Some("custom"), Some("terminated"))
        );
    }

    #[test]
    fn bad_options_are_named_with_stable_codes() {
        let cases = [
            (json!(5), "INVALID_OPTIONS", "invalid option `options`: openSession needs an options object with a `name`"),
            (json!({}), "INVALID_OPTIONS", "invalid option `name`: must be a non-empty string"),
            (json!({"name": ""}), "INVALID_OPTIONS", "invalid option `name`: must be 1 to 100 characters, none of them control characters"),
            (json!({"name": "a\u{7}"}), "INVALID_OPTIONS", "invalid option `name`: must be 1 to 100 characters, none of them control characters"),
            (json!({"name": "n", "storage": "disk"}), "INVALID_OPTIONS", "invalid option `storage`: must be \"auto\", \"indexeddb\", \"localstorage\" or \"memory\""),
            (json!({"name": "n", "storage": 1}), "INVALID_OPTIONS", "invalid option `storage`: must be a string"),
            (json!({"name": "n", "debounceMs": 60_001}), "INVALID_OPTIONS", "invalid option `debounceMs`: must be a whole number from 0 to 60000"),
            (json!({"name": "n", "debounceMs": 1.5}), "INVALID_OPTIONS", "invalid option `debounceMs`: must be a whole number from 0 to 60000"),
            (json!({"name": "n", "maxBytes": 0}), "INVALID_OPTIONS", "invalid option `maxBytes`: must be between 1 and 268435456"),
            (json!({"name": "n", "compressionLevel": 10}), "INVALID_OPTIONS", "invalid option `compressionLevel`: must be a whole number from 0 to 9"),
            (json!({"name": "n", "flow": "kiosk"}), "UNKNOWN_FLOW", "unknown flow `kiosk`"),
            (json!({"name": "n", "flow": {"initial": "x"}}), "INVALID_OPTIONS", "invalid option `flow`: `statuses` must be an object giving each status its kind"),
            (json!({"name": "n", "ttlSeconds": 59}), "INVALID_OPTIONS", "invalid option `ttlSeconds`: 59 s is outside 60..=86400 s"),
            (json!({"name": "n", "ttlSeconds": "600"}), "INVALID_OPTIONS", "invalid option `ttlSeconds`: must be a number of seconds"),
            (json!({"name": "n", "server": "http://x"}), "INVALID_OPTIONS", "invalid option `server`: must be an object `{ http, ws?, session? }`"),
            (json!({"name": "n", "server": {}}), "INVALID_OPTIONS", "invalid option `server`: `http` must be the server's base URL"),
            (json!({"name": "n", "server": {"http": "h", "session": {"id": 1}}}), "INVALID_OPTIONS", "invalid option `server`: `session` must be `{ id, token }`"),
            (json!({"name": "n", "server": {"http": "h"}, "heartbeatMs": -1}), "INVALID_OPTIONS", "invalid option `heartbeatMs`: must be a whole number from 0 to 86400000"),
        ];
        for (options, code, message) in cases {
            assert_eq!(
                refused(options.clone()),
                (code.into(), message.into()),
                "{options}"
            );
        }
    }
}
