//! Where a store's bytes live in the browser, and the text forms of what
//! localStorage holds: one place for every name the browser drivers use
//! (IndexedDB database and object store, localStorage keys, cookie,
//! BroadcastChannel, Web Locks, sessionStorage), the same ones the
//! TypeScript store wrote, so a page that upgrades keeps its stored copy.
//! docs/STORAGE.md describes them.

use super::base64::{from_base64, to_base64};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::types::{ClientId, Head, OpSeq, Stored};
use crate::core::error::SessileError;
use crate::core::slots::SlotId;

/// The prefix of every localStorage and sessionStorage key sessile writes.
pub const KEY_PREFIX: &str = "sessile:";

/// The IndexedDB object store holding `a`, `b` and `head`.
pub const IDB_STORE: &str = "slots";

/// The IndexedDB database version (the object store is made on upgrade).
pub const IDB_VERSION: u32 = 1;

/// The IndexedDB key of the compare-and-set head record.
pub const HEAD_KEY: &str = "head";

/// The localStorage key (without [`KEY_PREFIX`]) written and removed to
/// find out whether localStorage takes writes at all.
pub const PROBE_KEY: &str = "probe";

/// The names one namespace uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    name: String,
}

impl Layout {
    /// The names of namespace `name`.
    pub fn new(name: &str) -> Self {
        Self { name: name.into() }
    }

    /// The namespace.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `sessile:<ns>`: the IndexedDB database, the BroadcastChannel and the
    /// exclusive Web Lock that slot writes and clears run under.
    pub fn shared_name(&self) -> String {
        [KEY_PREFIX, &self.name].concat()
    }

    /// localStorage key of slot `a` or `b` (base64 text), without the prefix.
    pub fn slot_key(&self, slot: SlotId) -> String {
        [&self.name, ":", slot.name()].concat()
    }

    /// localStorage key of the head (a decimal version), without the prefix.
    pub fn head_key(&self) -> String {
        [&self.name, ":head"].concat()
    }

    /// localStorage key of the head's `includes` (a [`HeadRecord`] as JSON),
    /// without the prefix.
    pub fn includes_key(&self) -> String {
        [&self.name, ":includes"].concat()
    }

    /// localStorage key of the eviction marker, without the prefix.
    pub fn marker_key(&self) -> String {
        [&self.name, ":marker"].concat()
    }

    /// The start of every rescue copy's key, without the prefix
    /// (`<ns>:rescue:<client>`, as [`StoreEngine`](super::StoreEngine) names them).
    pub fn rescue_prefix(&self) -> String {
        [&self.name, ":rescue:"].concat()
    }

    /// sessionStorage key of this tab's client id (a JSON string), with the prefix.
    pub fn client_key(&self) -> String {
        [KEY_PREFIX, &self.name, ":client"].concat()
    }

    /// The Web Lock a live tab holds on its client id.
    pub fn client_lock(&self, client: &ClientId) -> String {
        [KEY_PREFIX, &self.name, ":client:", &client.0].concat()
    }

    /// The eviction marker cookie's name, given the namespace as
    /// `encodeURIComponent` writes it.
    pub fn cookie_name(encoded_name: &str) -> String {
        ["sessile_", encoded_name].concat()
    }
}

/// A decimal stored by the TypeScript store, read as it read it
/// (`parseInt(text, 10) || 0`): leading whitespace, then the digits; any
/// other text, or none, is 0.
pub fn parse_version(text: Option<&str>) -> u64 {
    let Some(text) = text else { return 0 };
    let digits: &str = text.trim_start();
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().unwrap_or(0)
}

/// `n` in decimal, without `core::fmt`.
pub fn version_text(n: u64) -> String {
    crate::core::error_text::decimal(n)
}

/// A rescue copy as localStorage holds it: `<base>:<base64 snapshot>`.
pub fn rescue_text(base: u64, bytes: &[u8]) -> String {
    [version_text(base), ":".into(), to_base64(bytes)].concat()
}

/// A rescue copy's text: its base and its bytes, or why they cannot be
/// used (`CORRUPT_PAYLOAD` without a decimal base or with text that is not
/// base64).
pub fn parse_rescue(text: &str) -> (u64, Stored) {
    let (base, rest) = text.split_once(':').unwrap_or(("", text));
    if base.is_empty() || !base.bytes().all(|b| b.is_ascii_digit()) {
        let error = SessileError::CorruptPayload {
            reason: "rescue copy without its base version",
        };
        return (0, Stored::Failed(error));
    }
    let base = base.parse().unwrap_or(0);
    match from_base64(rest) {
        Ok(bytes) => (base, Stored::Bytes(bytes)),
        Err(error) => (base, Stored::Failed(error)),
    }
}

/// A slot's base64 text as its bytes (`CORRUPT_PAYLOAD` when it is not base64).
pub fn parse_slot(text: Option<&str>) -> Stored {
    match text.map(from_base64) {
        None => Stored::Missing,
        Some(Ok(bytes)) => Stored::Bytes(bytes),
        Some(Err(error)) => Stored::Failed(error),
    }
}

/// A slot's bytes as base64 text.
pub fn slot_text(bytes: &[u8]) -> String {
    to_base64(bytes)
}

/// The head's `includes` as localStorage holds it beside the decimal head
/// (JSON `{"version":5,"includes":[["<client>",3],...]}`), and IndexedDB
/// inside the head record. The version ties it to the head it was written
/// with: a head written without it (by the TypeScript store, which knew
/// nothing of `includes`) leaves a stale one, which [`Self::for_head`]
/// ignores.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HeadRecord {
    /// The head version.
    pub version: u64,
    /// `(client, seq)` pairs: the changes the stored copy includes.
    #[serde(default)]
    pub includes: Vec<(String, OpSeq)>,
}

impl HeadRecord {
    /// The record in `value`, read by hand with the rules of the serde
    /// derive above (tested against it): `version` a whole number,
    /// `includes` absent or `[client, seq]` pairs, other fields ignored;
    /// `None` for anything else. Smaller in the wasm module than serde_json's
    /// derive (docs/PERFORMANCE.md).
    pub fn from_json(value: Value) -> Option<Self> {
        let Value::Object(mut o) = value else {
            return None;
        };
        Some(Self {
            version: o.remove("version")?.as_u64()?,
            includes: match o.remove("includes") {
                None => Vec::new(),
                Some(v) => super::wire::read_pairs(v, Value::as_u64)?,
            },
        })
    }

    /// As JSON, the shape the serde derive writes (tested against it).
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        o.insert("version".into(), self.version.into());
        o.insert("includes".into(), super::wire::write_pairs(&self.includes));
        Value::Object(o)
    }

    /// The record of `head`.
    pub fn of(head: &Head) -> Self {
        Self {
            version: head.version,
            includes: head
                .includes
                .iter()
                .map(|(c, s)| (c.0.clone(), *s))
                .collect(),
        }
    }

    /// What it says of head `version`: its `includes` (at most
    /// [`MAX_INCLUDES`](super::MAX_INCLUDES)), or nothing when it was written
    /// with another head.
    pub fn for_head(self, version: u64) -> Head {
        let includes = if self.version == version {
            self.includes
                .into_iter()
                .take(super::MAX_INCLUDES)
                .map(|(c, s)| (ClientId(c), s))
                .collect()
        } else {
            Vec::new()
        };
        Head { version, includes }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_typescript_stores() {
        let l = Layout::new("checkout");
        assert_eq!(l.shared_name(), "sessile:checkout");
        assert_eq!(l.slot_key(SlotId::A), "checkout:a");
        assert_eq!(l.slot_key(SlotId::B), "checkout:b");
        assert_eq!(l.head_key(), "checkout:head");
        assert_eq!(l.marker_key(), "checkout:marker");
        assert_eq!(l.rescue_prefix(), "checkout:rescue:");
        assert_eq!(l.client_key(), "sessile:checkout:client");
        let c = ClientId("ab".repeat(16));
        assert_eq!(
            l.client_lock(&c),
            ["sessile:checkout:client:", &c.0].concat()
        );
        assert_eq!(Layout::cookie_name("a%20b"), "sessile_a%20b");
    }

    #[test]
    fn versions_parse_as_parse_int_did() {
        assert_eq!(parse_version(None), 0);
        assert_eq!(parse_version(Some("")), 0);
        assert_eq!(parse_version(Some("4")), 4);
        assert_eq!(parse_version(Some("  12x")), 12);
        assert_eq!(parse_version(Some("x12")), 0);
        assert_eq!(parse_version(Some("-3")), 0);
        assert_eq!(parse_version(Some("99999999999999999999999")), 0);
        assert_eq!(version_text(0), "0");
        assert_eq!(version_text(1234), "1234");
    }

    #[test]
    fn rescue_copies_round_trip_and_bad_ones_are_corrupt() {
        let text = rescue_text(7, &[1, 2, 3, 250]);
        assert_eq!(text, "7:AQID+g==");
        assert_eq!(parse_rescue(&text), (7, Stored::Bytes(vec![1, 2, 3, 250])));
        for bad in ["AQID", ":AQID", "x:AQID", "-1:AQID"] {
            let (_, stored) = parse_rescue(bad);
            match stored {
                Stored::Failed(e) => assert_eq!(e.code(), "CORRUPT_PAYLOAD", "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        match parse_rescue("0:not base64!").1 {
            Stored::Failed(e) => assert_eq!(e.code(), "CORRUPT_PAYLOAD"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn slots_are_base64_text() {
        assert_eq!(parse_slot(None), Stored::Missing);
        assert_eq!(
            parse_slot(Some(&slot_text(b"SSNP"))),
            Stored::Bytes(b"SSNP".to_vec())
        );
        assert!(matches!(parse_slot(Some("%%%")), Stored::Failed(_)));
    }

    #[test]
    fn includes_are_tied_to_their_head() {
        let head = Head {
            version: 5,
            includes: vec![(ClientId("a".repeat(32)), 3), (ClientId("b".repeat(32)), 9)],
        };
        let record = HeadRecord::of(&head);
        let text = serde_json::to_string(&record).unwrap();
        assert_eq!(
            text,
            [
                "{\"version\":5,\"includes\":[[\"",
                &"a".repeat(32),
                "\",3],[\"",
                &"b".repeat(32),
                "\",9]]}"
            ]
            .concat()
        );
        let back: HeadRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back.clone().for_head(5), head);
        assert_eq!(back.for_head(6), Head::at(6), "written with another head");
        let ts: HeadRecord = serde_json::from_str("{\"version\":4}").unwrap();
        assert_eq!(
            ts.for_head(4),
            Head::at(4),
            "the TypeScript store's head record"
        );
    }

    #[test]
    fn the_hand_reader_and_writer_follow_the_derive() {
        use serde_json::json;
        for input in [
            json!({"version": 5, "includes": [["a", 3], ["b", 9]]}),
            json!({"version": 4}),
            json!({"version": 4, "includes": [], "other": true}),
            json!({"version": 4, "includes": null}),
            json!({"version": 4.5}),
            json!({"version": -1}),
            json!({"version": "4"}),
            json!({"includes": []}),
            json!({"version": 4, "includes": [["a", 1.5]]}),
            json!({"version": 4, "includes": [["a", -1]]}),
            json!({"version": 4, "includes": [["a"]]}),
            json!({"version": 4, "includes": [[1, 1]]}),
            json!({"version": 4, "includes": {}}),
            json!(4),
            json!(null),
        ] {
            let derived = serde_json::from_value::<HeadRecord>(input.clone()).ok();
            assert_eq!(HeadRecord::from_json(input.clone()), derived, "{input}");
            if let Some(record) = derived {
                assert_eq!(
                    serde_json::to_string(&record.to_json()).unwrap(),
                    serde_json::to_string(&record).unwrap()
                );
            }
        }
    }

    #[test]
    fn a_long_includes_list_is_cut_to_the_limit() {
        let record = HeadRecord {
            version: 1,
            includes: (0..100).map(|i| (format!("{i:032x}"), i)).collect(),
        };
        assert_eq!(
            record.for_head(1).includes.len(),
            super::super::MAX_INCLUDES
        );
    }
}
