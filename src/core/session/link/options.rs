//! A link from a page's options, as a JSON value (what the bindings get
//! from JavaScript): the session, token and client id, a record to resume
//! or the version and state to start from, and the tuning fields, each
//! checked. The checks of the TypeScript client's `LinkCore`, with the same
//! codes: `INVALID_OPTIONS` for a missing or malformed option,
//! `OUTBOX_CORRUPT` for a record that does not read or a bad client id.

use serde_json::{Map, Value};

use super::{Link, LinkConfig, LinkRecord, Outbox};
use crate::core::error::{Result, SessileError};

/// Largest tuning value, ms (one day).
pub(crate) const MAX_TUNING_MS: u64 = 86_400_000;
/// Largest whole number a page can give exactly (2^53 − 1).
pub(crate) const MAX_SAFE: u64 = (1 << 53) - 1;

fn invalid(option: &'static str, reason: &str) -> SessileError {
    SessileError::InvalidOptions {
        option,
        reason: reason.into(),
    }
}

/// An optional whole number from 0 to `max` (absent or null: `None`); a
/// JavaScript number with no fraction (`5.0`) counts, as `Number.isInteger`
/// says. Also the session's options (`session/engine/options.rs`).
pub(crate) fn whole(o: &Map<String, Value>, key: &'static str, max: u64) -> Result<Option<u64>> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .filter(|n| *n <= max)
            .map(Some)
            .ok_or_else(|| {
                let mut reason = String::from("must be a whole number from 0 to ");
                reason.push_str(&crate::core::error_text::decimal(max));
                invalid(key, &reason)
            }),
    }
}

fn text<'a>(o: &'a Map<String, Value>, key: &'static str) -> Result<&'a str> {
    o.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(key, "is required (a string)"))
}

impl Link {
    /// A link from `options`: `{session, token, client, record?, version?,
    /// confirmed?, heartbeatMs?, backoffBaseMs?, backoffCapMs?, wsProbeMs?,
    /// wsRaceMs?, connectTimeoutMs?, ackTimeoutMs?, startOnHttp?, seed?}`. With a
    /// `record` (the object [`LinkRecord::read`] takes) the link resumes it;
    /// without, it starts at `version` (default 0) holding `confirmed` (a
    /// JSON object, default `{}`). Tuning fields are whole ms from 0 to a
    /// day (0 counts as 1).
    pub fn from_options(options: &Value) -> Result<Link> {
        let empty = Map::new();
        let o = options.as_object().unwrap_or(&empty);
        let session = text(o, "session")?;
        let token = text(o, "token")?;
        let client = text(o, "client")?;
        let mut cfg = LinkConfig::new(session, token, whole(o, "seed", MAX_SAFE)?.unwrap_or(0));
        read_tuning(o, &mut cfg)?;
        cfg.start_on_http = o.get("startOnHttp").is_some_and(truthy);
        if let Some(r) = o.get("record").filter(|r| !r.is_null()) {
            return Ok(Link::resume(cfg, LinkRecord::read(r, client)?));
        }
        let version = whole(o, "version", MAX_SAFE)?.unwrap_or(0);
        let confirmed = match o.get("confirmed") {
            None | Some(Value::Null) => super::empty_state(),
            Some(v) => v.clone(),
        };
        if !confirmed.is_object() {
            // The record could not hold it: a reload would lose the outbox.
            return Err(invalid("confirmed", "must be a JSON object"));
        }
        Ok(Link::new(cfg, Outbox::new(client)?, version, confirmed))
    }
}

/// The tuning fields of a page's options into `cfg`: `heartbeatMs`,
/// `backoffBaseMs`, `backoffCapMs`, `wsProbeMs`, `wsRaceMs`,
/// `connectTimeoutMs`, `ackTimeoutMs`, whole ms from 0 to a day (0 counts
/// as 1).
pub(crate) fn read_tuning(o: &Map<String, Value>, cfg: &mut LinkConfig) -> Result<()> {
    let tuning: [(&'static str, &mut u64); 7] = [
        ("heartbeatMs", &mut cfg.heartbeat_ms),
        ("backoffBaseMs", &mut cfg.backoff_base_ms),
        ("backoffCapMs", &mut cfg.backoff_cap_ms),
        ("wsProbeMs", &mut cfg.ws_probe_ms),
        ("wsRaceMs", &mut cfg.ws_race_ms),
        ("connectTimeoutMs", &mut cfg.connect_timeout_ms),
        ("ackTimeoutMs", &mut cfg.ack_timeout_ms),
    ];
    for (key, field) in tuning {
        if let Some(n) = whole(o, key, MAX_TUNING_MS)? {
            *field = n.max(1);
        }
    }
    Ok(())
}

/// What JavaScript's `Boolean(v)` says of a JSON value.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const CLIENT: &str = "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47";

    fn base() -> Value {
        json!({"session": "fedcba9876543210fedcba9876543210", "token": "t", "client": CLIENT})
    }

    fn with(k: &str, v: Value) -> Value {
        let mut o = base();
        o[k] = v;
        o
    }

    fn code(options: &Value) -> &'static str {
        Link::from_options(options).map(|_| ()).unwrap_err().code()
    }

    #[test]
    fn options_are_checked() {
        let mut no_token = base();
        no_token.as_object_mut().unwrap().remove("token");
        assert_eq!(code(&no_token), "INVALID_OPTIONS");
        assert_eq!(code(&with("heartbeatMs", json!(-1))), "INVALID_OPTIONS");
        assert_eq!(code(&with("backoffCapMs", json!(1.5))), "INVALID_OPTIONS");
        assert_eq!(code(&with("seed", json!("7"))), "INVALID_OPTIONS");
        assert_eq!(code(&with("wsRaceMs", json!(-5))), "INVALID_OPTIONS");
        assert_eq!(
            code(&with("wsRaceMs", json!(86_400_001))),
            "INVALID_OPTIONS"
        );
        assert_eq!(code(&with("wsRaceMs", json!("fast"))), "INVALID_OPTIONS");
        let raced = Link::from_options(&with("wsRaceMs", json!(120))).unwrap();
        assert_eq!(raced.cfg.ws_race_ms, 120);
        assert_eq!(Link::from_options(&base()).unwrap().cfg.ws_race_ms, 250);
        assert_eq!(code(&with("client", json!("short"))), "OUTBOX_CORRUPT");
        // The confirmed state is a JSON object, not its text.
        for confirmed in [json!("{nope"), json!(r#"{"a":1}"#), json!([1]), json!(5)] {
            assert_eq!(code(&with("confirmed", confirmed)), "INVALID_OPTIONS");
        }
        let mut o = base();
        o["version"] = json!(3);
        o["confirmed"] = json!({"a": 1});
        o["heartbeatMs"] = json!(0);
        o["seed"] = json!(1u64 << 52);
        let l = Link::from_options(&o).unwrap();
        assert_eq!((l.version(), l.view()), (3, json!({"a": 1})));
        let l = Link::from_options(&with("confirmed", json!({"b": 2}))).unwrap();
        assert_eq!(l.view()["b"], 2);
        let e = Link::from_options(&with("heartbeatMs", json!(-1))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid option `heartbeatMs`: must be a whole number from 0 to 86400000"
        );
    }

    #[test]
    fn a_record_resumes_as_its_value_not_its_text() {
        let mut src = Link::from_options(&base()).unwrap();
        let _ = src.submit(json!({"a": 1}), None, 0).unwrap();
        let text = src.record();
        let value: Value = serde_json::from_str(&text).unwrap();
        let resumed = Link::from_options(&with("record", value)).unwrap();
        assert_eq!(resumed.outbox().len(), 1);
        assert_eq!(code(&with("record", json!(text))), "OUTBOX_CORRUPT");
        assert_eq!(code(&with("record", json!("{"))), "OUTBOX_CORRUPT");
    }
}
