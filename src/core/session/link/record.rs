//! What the driver persists after every change, crash-safe: the server
//! version the link holds, the server's state at it, and the outbox. Format
//! 1, the JSON record the TypeScript client wrote (`{format, version,
//! confirmed, outbox}`), so a page upgraded from it resumes its outbox.

use serde::Serialize;
use serde_json::Value;

use super::outbox::corrupt;
use super::{Link, LinkConfig, Outbox};
use crate::core::error::Result;

/// Format version of the record [`Link::record`] writes.
pub const RECORD_FORMAT: u64 = 1;

/// A record read back: what [`Link::resume`] starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkRecord {
    /// The ops not yet answered, every one counted as possibly sent.
    pub outbox: Outbox,
    /// The server version held.
    pub version: u64,
    /// The server's state at `version` (a JSON object).
    pub confirmed: Value,
}

/// The record as written, borrowed from the link; fields in the order the
/// TypeScript client wrote them.
#[derive(Serialize)]
struct RecordOut<'a> {
    format: u64,
    version: u64,
    confirmed: &'a Value,
    outbox: &'a Outbox,
}

impl LinkRecord {
    /// Reads a record of `client` from its JSON text. `OUTBOX_CORRUPT` when
    /// it is not one, or when it belongs to another client.
    pub fn decode(bytes: &[u8], client: &str) -> Result<Self> {
        let v: Value = serde_json::from_slice(bytes).map_err(|_| corrupt("record is not JSON"))?;
        Self::read(&v, client)
    }

    /// Reads a record of `client` from its JSON value (the checks of
    /// [`decode`](Self::decode)).
    pub fn read(v: &Value, client: &str) -> Result<Self> {
        let Value::Object(o) = v else {
            return Err(corrupt("record is not JSON"));
        };
        if o.get("format").and_then(Value::as_u64) != Some(RECORD_FORMAT) {
            return Err(corrupt("unknown record format"));
        }
        let Some(version) = o
            .get("version")
            .and_then(Value::as_u64)
            .filter(|n| *n < 1 << 53)
        else {
            return Err(corrupt("record has no version"));
        };
        let confirmed = match o.get("confirmed") {
            Some(c @ Value::Object(_)) => c.clone(),
            _ => return Err(corrupt("record has no confirmed state")),
        };
        let outbox = Outbox::from_record(o.get("outbox").unwrap_or(&Value::Null))?;
        if outbox.client() != client {
            return Err(corrupt("record belongs to another client"));
        }
        Ok(LinkRecord {
            outbox,
            version,
            confirmed,
        })
    }
}

impl Link {
    /// A link resuming `record` (see [`Link::new`]).
    pub fn resume(cfg: LinkConfig, record: LinkRecord) -> Self {
        Link::new(cfg, record.outbox, record.version, record.confirmed)
    }

    /// What to persist (crash-safe) after every change, as JSON text:
    /// version, confirmed state and outbox, for [`LinkRecord::decode`].
    pub fn record(&self) -> String {
        let out = RecordOut {
            format: RECORD_FORMAT,
            version: self.version,
            confirmed: &self.confirmed,
            outbox: &self.outbox,
        };
        // Integers, strings and `Value`s with string keys: cannot fail.
        serde_json::to_string(&out).unwrap_or_default()
    }
}
