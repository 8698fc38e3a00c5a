//! What a page keeps of its link between loads, sans-IO: the record in the
//! store `<name>:link:<client>` as the TypeScript client wrote it
//! (`{session, record}` in the crash-safe slots of docs/STORAGE.md: one
//! snapshot envelope per slot, the newest valid of `a` and `b` restored,
//! writes alternating), which record a new link resumes, and the refused
//! WebSocket an origin remembers for a while. The web driver reads and
//! writes the bytes.

use serde_json::Value;

use super::{LinkEvent, LinkRecord, Transport, TransportReason};
use crate::core::envelope::{self, EnvelopeConfig, SnapshotMeta};
use crate::core::error::{Result, SessileError};
use crate::core::slots::{self, Restore, SlotId, SlotRead};

/// The object store of the record's database (as every store's).
pub const SLOTS_STORE: &str = "slots";

/// A store's state limit (5 MiB): a record holds up to two states' worth.
const STATE_LIMIT: usize = envelope::DEFAULT_MAX_RAW_BYTES;

/// The store holding the link record of `client` in namespace `namespace`.
pub fn store_name(namespace: &str, client: &str) -> String {
    [namespace, ":link:", client].concat()
}

/// The IndexedDB database of that store (`sessile:<store>`).
pub fn database_name(namespace: &str, client: &str) -> String {
    ["sessile:", &store_name(namespace, client)].concat()
}

/// How the record is encoded: the store defaults (deflate above 10 KiB,
/// level 1) with the TypeScript client's limit for link records, the state
/// limit twice (the confirmed state and a full patch) plus 64 KiB.
pub fn envelope_config() -> EnvelopeConfig {
    envelope_config_up_to(2 * STATE_LIMIT + 64 * 1024)
}

/// [`envelope_config`] with records up to `max_raw_bytes` (a session's
/// record holds more than the link's: `SessionEngine::record_limit`).
pub fn envelope_config_up_to(max_raw_bytes: usize) -> EnvelopeConfig {
    EnvelopeConfig {
        max_raw_bytes,
        ..EnvelopeConfig::default()
    }
}

/// The store's state for `record` (a link's [`record`](super::Link::record)
/// text) of server session `session`: `{"session":…,"record":…}`.
pub fn stored_text(session: &str, record: &str) -> String {
    // serde_json's writer, not `Value`'s `Display`: no `core::fmt`.
    let session = serde_json::to_string(&Value::String(session.into())).unwrap_or_default();
    [r#"{"session":"#, &session, r#","record":"#, record, "}"].concat()
}

/// What a new link starts from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Resume {
    /// The record of this session and client: resume its outbox.
    Record(LinkRecord),
    /// Nothing stored for this session (or nothing at all): start afresh.
    Fresh,
    /// A record of this session that does not read (`OUTBOX_CORRUPT`):
    /// report it and start afresh.
    Corrupt(SessileError),
}

/// Which record the link of `client` for server session `session` resumes,
/// from the store's state (its JSON text, `None` when nothing is stored).
/// A record of another session is not this link's; the record is an object
/// (its JSON text does not read).
pub fn resume(stored: Option<&str>, session: &str, client: &str) -> Resume {
    let Some(text) = stored else {
        return Resume::Fresh;
    };
    let Ok(Value::Object(o)) = serde_json::from_slice::<Value>(text.as_bytes()) else {
        return Resume::Corrupt(super::outbox::corrupt("link record is not a JSON object"));
    };
    if o.get("session").and_then(Value::as_str) != Some(session) {
        return Resume::Fresh;
    }
    let read = match o.get("record") {
        Some(r) => LinkRecord::read(r, client),
        None => return Resume::Fresh,
    };
    match read {
        Ok(r) => Resume::Record(r),
        Err(e) => Resume::Corrupt(e),
    }
}

/// What restoring the slots found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Restored {
    /// The newest valid copy's JSON text, if any.
    pub text: Option<String>,
    /// That copy's state version.
    pub version: Option<u64>,
    /// Why stored bytes were passed over: each slot's error, newest first
    /// when nothing valid was left.
    pub skipped: Vec<SessileError>,
}

/// A write to carry out: these bytes into `slot`, and the head `version`
/// with them in the same transaction; then [`RecordSlots::written`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotWrite {
    /// The slot to overwrite (never the one holding the newest copy).
    pub slot: SlotId,
    /// The snapshot envelope.
    pub bytes: Vec<u8>,
    /// The head's version (`{version}` under the key `head`).
    pub version: u64,
    generation: u16,
}

/// The two crash-safe slots of one record store, as far as this page knows
/// them: where the newest copy is and the version of the last write.
#[derive(Debug, Clone, Default)]
pub struct RecordSlots {
    last_good: Option<(SlotId, u16)>,
    version: u64,
    /// Records above this many bytes of JSON are refused (`None`: the
    /// link's limit, [`envelope_config`]).
    limit: Option<usize>,
}

impl RecordSlots {
    /// Slots not read yet (the first write goes to `a`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Slots not read yet, for records of up to `max_raw_bytes`.
    pub fn up_to(max_raw_bytes: usize) -> Self {
        RecordSlots {
            limit: Some(max_raw_bytes),
            ..Self::default()
        }
    }

    fn config(&self) -> EnvelopeConfig {
        self.limit
            .map_or_else(envelope_config, envelope_config_up_to)
    }

    /// The version of the last write known (0: none).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Takes what reading slots `a`, `b` and the head's version found.
    pub fn restore(&mut self, a: SlotRead<'_>, b: SlotRead<'_>, head: u64) -> Restored {
        self.version = self.version.max(head);
        let reads = [(SlotId::A, a), (SlotId::B, b)];
        match slots::restore(&reads, &self.config()) {
            Restore::Restored {
                snapshot,
                slot,
                skipped,
            } => {
                self.last_good = Some((slot, snapshot.meta.generation));
                self.version = self.version.max(snapshot.meta.state_version);
                Restored {
                    text: Some(snapshot.json),
                    version: Some(snapshot.meta.state_version),
                    skipped: skipped.into_iter().map(|p| p.error).collect(),
                }
            }
            Restore::Unreadable { problems } => Restored {
                text: None,
                version: None,
                skipped: problems.into_iter().map(|p| p.error).collect(),
            },
            _ => Restored::default(),
        }
    }

    /// The write of `text` (the store's state) at `now` (ms since the
    /// epoch): the slot after the newest copy, one version later.
    /// `STATE_TOO_LARGE` over the record limit.
    pub fn plan(&self, text: &str, now: u64) -> Result<SlotWrite> {
        let plan = slots::next_write(self.last_good);
        let version = self.version.saturating_add(1);
        let meta = SnapshotMeta {
            generation: plan.generation,
            schema_version: 1,
            state_version: version,
            modified_at_ms: now,
        };
        let bytes = envelope::encode(text, &meta, &self.config())?;
        Ok(SlotWrite {
            slot: plan.slot,
            bytes,
            version,
            generation: plan.generation,
        })
    }

    /// `write` is stored: it holds the newest copy.
    pub fn written(&mut self, write: &SlotWrite) {
        self.last_good = Some((write.slot, write.generation));
        self.version = self.version.max(write.version);
    }
}

impl Restored {
    /// The key error that must stop the session's open (nothing of the
    /// record overwritten): `core::sealed::blocking_key_error`.
    pub fn key_error(&self) -> Option<SessileError> {
        crate::core::sealed::blocking_key_error(&self.skipped, self.version)
    }
}

/// The localStorage key under which the pages of `namespace` (every tab of
/// the origin) remember a refused WebSocket.
pub fn fallback_key(namespace: &str) -> String {
    ["sessile:", namespace, ":fallback"].concat()
}

/// Whether a link starts on HTTP, from what the origin remembers (the time,
/// ms since the epoch, until which it uses HTTP first).
pub fn starts_on_http(remembered: Option<&str>, now: u64) -> bool {
    remembered
        .and_then(|t| t.trim().parse::<u64>().ok())
        .is_some_and(|until| until > now)
}

/// What the origin remembers after `event`, at `now`: `Some(Some(text))`
/// to store (a refused WebSocket while HTTP worked: start on HTTP for
/// `remember_ms`, as Phoenix does), `Some(None)` to forget (a WebSocket
/// carries the link again), `None` to leave as it is (a WebSocket merely
/// slow to open, or failing with HTTP failing too, is not remembered).
pub fn remember_after(event: &LinkEvent, now: u64, remember_ms: u64) -> Option<Option<String>> {
    match event {
        LinkEvent::TransportPreferred {
            transport: Transport::Http,
            reason: TransportReason::WebSocketRefused,
        } => Some(Some(crate::core::error_text::decimal(
            now.saturating_add(remember_ms),
        ))),
        LinkEvent::TransportPreferred {
            transport: Transport::WebSocket,
            ..
        }
        | LinkEvent::ConnectionEstablished {
            transport: Transport::WebSocket,
        }
        | LinkEvent::ConnectionRestored {
            transport: Transport::WebSocket,
        } => Some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::{Link, LinkConfig, Outbox};
    use super::*;

    const SESSION: &str = "fedcba9876543210fedcba9876543210";
    const CLIENT: &str = "0123456789abcdef0123456789abcdef";

    fn record_with_one_op() -> String {
        let cfg = LinkConfig::new(SESSION, "t", 1);
        let mut l = Link::new(cfg, Outbox::new(CLIENT).unwrap(), 3, json!({"a": 0}));
        let _ = l.submit(json!({"a": 1}), None, 0).unwrap();
        l.record()
    }

    #[test]
    fn names_are_the_typescript_stores() {
        assert_eq!(store_name("shop", CLIENT), ["shop:link:", CLIENT].concat());
        assert_eq!(
            database_name("shop", CLIENT),
            ["sessile:shop:link:", CLIENT].concat()
        );
        assert_eq!(fallback_key("shop"), "sessile:shop:fallback");
    }

    #[test]
    fn the_record_of_this_session_resumes_as_an_object_not_as_text() {
        let record = record_with_one_op();
        let text = stored_text(SESSION, &record);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["session"], SESSION);
        assert_eq!(v["record"]["format"], 1);
        let Resume::Record(r) = resume(Some(&text), SESSION, CLIENT) else {
            panic!("resumes");
        };
        assert_eq!((r.version, r.outbox.len()), (3, 1));
        // The record as JSON text is not a record.
        let text_record = json!({"session": SESSION, "record": record}).to_string();
        assert_eq!(
            resume(Some(&text_record), SESSION, CLIENT).code(),
            "OUTBOX_CORRUPT"
        );
    }

    #[test]
    fn another_sessions_record_or_none_starts_afresh_and_a_bad_one_is_corrupt() {
        let text = stored_text(SESSION, &record_with_one_op());
        let other = "00000000000000000000000000000000";
        assert_eq!(resume(Some(&text), other, CLIENT), Resume::Fresh);
        assert_eq!(resume(None, SESSION, CLIENT), Resume::Fresh);
        assert_eq!(
            resume(Some("null"), SESSION, CLIENT).code(),
            "OUTBOX_CORRUPT"
        );
        assert_eq!(resume(Some("{"), SESSION, CLIENT).code(), "OUTBOX_CORRUPT");
        let bad = json!({"session": SESSION, "record": {"format": 9}}).to_string();
        assert_eq!(resume(Some(&bad), SESSION, CLIENT).code(), "OUTBOX_CORRUPT");
        // Another client's record under this name does not read as ours.
        let theirs = resume(Some(&text), SESSION, "11111111111111111111111111111111");
        assert_eq!(theirs.code(), "OUTBOX_CORRUPT");
    }

    impl Resume {
        fn code(&self) -> &'static str {
            match self {
                Resume::Corrupt(e) => e.code(),
                _ => "",
            }
        }
    }

    #[test]
    fn writes_alternate_slots_and_a_restore_takes_the_newest_valid_copy() {
        let mut slots = RecordSlots::new();
        let first = slots.plan(r#"{"n":1}"#, 10).unwrap();
        assert_eq!((first.slot, first.version), (SlotId::A, 1));
        slots.written(&first);
        let second = slots.plan(r#"{"n":2}"#, 11).unwrap();
        assert_eq!((second.slot, second.version), (SlotId::B, 2));
        slots.written(&second);
        let decoded = envelope::decode(&second.bytes, &envelope_config()).unwrap();
        assert_eq!(decoded.meta.schema_version, 1);
        assert_eq!(decoded.meta.modified_at_ms, 11);

        // A new page reads both: the newer copy wins, the next write goes
        // to the other slot, one version on.
        let mut again = RecordSlots::new();
        let found = again.restore(
            SlotRead::Bytes(&first.bytes),
            SlotRead::Bytes(&second.bytes),
            2,
        );
        assert_eq!(found.text.as_deref(), Some(r#"{"n":2}"#));
        let third = again.plan("{}", 12).unwrap();
        assert_eq!((third.slot, third.version), (SlotId::A, 3));

        // The newer copy corrupted: the older one is restored, the error kept.
        let mut torn = second.bytes.clone();
        let last = torn.len() - 1;
        torn[last] ^= 0xff;
        let mut after_crash = RecordSlots::new();
        let found = after_crash.restore(SlotRead::Bytes(&first.bytes), SlotRead::Bytes(&torn), 2);
        assert_eq!(found.text.as_deref(), Some(r#"{"n":1}"#));
        assert_eq!(found.skipped.len(), 1);
        // The next write must not destroy the copy restored.
        assert_eq!(after_crash.plan("{}", 13).unwrap().slot, SlotId::B);
        assert_eq!(after_crash.version(), 2, "the head's version counts");
    }

    #[test]
    fn nothing_valid_reports_every_slot_and_nothing_stored_is_fresh() {
        let mut slots = RecordSlots::new();
        let found = slots.restore(SlotRead::Bytes(b"junk"), SlotRead::Missing, 0);
        assert_eq!(found.text, None);
        assert_eq!(found.skipped.len(), 1);
        assert_eq!(
            RecordSlots::new().restore(SlotRead::Missing, SlotRead::Missing, 0),
            Restored::default()
        );
    }

    #[test]
    fn a_record_over_the_limit_is_refused_before_anything_is_written() {
        let big = "x".repeat(envelope_config().max_raw_bytes + 1);
        let err = RecordSlots::new().plan(&big, 0).unwrap_err();
        assert_eq!(err.code(), "STATE_TOO_LARGE");
        // A session's record has its own limit, both ways.
        let mut small = RecordSlots::up_to(100);
        assert_eq!(
            small.plan(&"x".repeat(101), 0).unwrap_err().code(),
            "STATE_TOO_LARGE"
        );
        let fits = RecordSlots::up_to(1000).plan(&["\"", &"x".repeat(500), "\""].concat(), 0);
        let bytes = fits.unwrap().bytes;
        let found = small.restore(SlotRead::Bytes(&bytes), SlotRead::Missing, 0);
        assert_eq!(
            (found.text, found.skipped.len()),
            (None, 1),
            "over the limit: skipped"
        );
        let big_enough = RecordSlots::up_to(4 * STATE_LIMIT).plan(&big, 0);
        assert!(big_enough.is_ok());
    }

    #[test]
    fn a_refused_websocket_is_remembered_for_a_while_and_forgotten_on_a_websocket() {
        let refused = LinkEvent::TransportPreferred {
            transport: Transport::Http,
            reason: TransportReason::WebSocketRefused,
        };
        assert_eq!(
            remember_after(&refused, 1_000, 600),
            Some(Some("1600".into()))
        );
        // Falling back after flaps (the server down, say) is not remembered.
        let flapping = LinkEvent::TransportPreferred {
            transport: Transport::Http,
            reason: TransportReason::WebSocketFlapping,
        };
        assert_eq!(remember_after(&flapping, 1_000, 600), None);
        let http = LinkEvent::ConnectionEstablished {
            transport: Transport::Http,
        };
        assert_eq!(
            remember_after(&http, 1_000, 600),
            None,
            "HTTP alone says nothing"
        );
        let ws = LinkEvent::ConnectionRestored {
            transport: Transport::WebSocket,
        };
        assert_eq!(remember_after(&ws, 1_000, 600), Some(None));
        let back = LinkEvent::TransportPreferred {
            transport: Transport::WebSocket,
            reason: TransportReason::WebSocket,
        };
        assert_eq!(remember_after(&back, 1_000, 600), Some(None));
        let lost = LinkEvent::ConnectionLost {
            reason: super::super::LossReason::Closed,
        };
        assert_eq!(remember_after(&lost, 1_000, 600), None);
        assert!(starts_on_http(Some("1600"), 1_599));
        assert!(!starts_on_http(Some("1600"), 1_600));
        assert!(!starts_on_http(Some("soon"), 0));
        assert!(!starts_on_http(None, 0));
    }
}
