//! The wire protocol between a sessile client and a server (docs/PROTOCOL.md):
//! versioned JSON text frames, one message per frame, encoded and decoded here
//! by the server and by the client link engine (`src/core/session/link`).
//! Decoding checks the frame size before parsing, names an unknown protocol
//! version, and never panics on any input.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::error::{Result, SessileError};
use crate::core::protocol_read::read_message;

/// The protocol version this build speaks, sent in `hello` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default largest frame accepted: a state at the snapshot limit
/// ([`DEFAULT_MAX_RAW_BYTES`](crate::core::envelope::DEFAULT_MAX_RAW_BYTES),
/// 5 MiB) in a `welcome` or `reject`, plus 64 KiB for the message around it.
pub const DEFAULT_MAX_FRAME_BYTES: usize = crate::core::envelope::DEFAULT_MAX_RAW_BYTES + 64 * 1024;

/// Length of client and session ids in hex digits (128 bits).
pub const ID_HEX_LEN: usize = 32;

/// One protocol message. The JSON form is an object whose `type` names the
/// variant (`{"type":"op",...}`); fields are camelCase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Message {
    /// Client → server, first frame of a connection: who it is and what it
    /// holds. The server answers `welcome`, or `error` and closes.
    Hello(Hello),
    /// Server → client: the session's current version and what the client
    /// missed. The client may send ops from now on.
    Welcome(Welcome),
    /// Client → server: one change. Answered by `ack` or `reject`.
    Op(Op),
    /// Server → client: the op is applied (or was already) and durable.
    Ack(Ack),
    /// Server → client: the op was not applied; `code` says why. Drop it
    /// from the outbox (its sequence number is used up) unless the code is
    /// `OP_OUT_OF_ORDER`, which asks for the missing ops first.
    Reject(Reject),
    /// Server → client: a change made by another client (or the server).
    Patch(LoggedPatch),
    /// Either side: liveness probe carrying the sender's clock.
    Ping(Ping),
    /// Answer to `ping`: the probe's timestamp echoed, plus the answerer's clock.
    Pong(Pong),
    /// Client → server: push the session's expiry further.
    Extend(Extend),
    /// Server → client: the session's new expiry.
    Extended(Extended),
    /// Server → client: a frame or request failed; the stable `code` says why.
    Error(ErrorFrame),
    /// Either side: the connection is closing on purpose; do not reconnect
    /// for the same reason.
    Bye(Bye),
    /// Server → client: the session ended (`DELETE`) or expired. Comes after
    /// the last patch; the server then says `bye` with `code` as the reason
    /// and closes (4410). Stop; do not reconnect.
    Ended(Ended),
}

/// The first frame a client sends on a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Hello {
    /// Protocol version the client speaks ([`PROTOCOL_VERSION`]).
    pub protocol: u64,
    /// Session id (32 hex digits).
    pub session: String,
    /// The session's secret token (never sent in a URL).
    pub token: String,
    /// This client's id: 128 random bits as 32 lowercase hex digits.
    pub client: String,
    /// The last server version the client holds, 0 for none.
    #[serde(default)]
    pub have_version: u64,
}

/// The server's answer to `hello`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    /// Protocol version the server speaks.
    pub protocol: u32,
    /// The session's current version.
    pub version: u64,
    /// The session's current status.
    pub status: String,
    /// When the session expires, ms since the Unix epoch.
    pub expires_at: u64,
    /// Send a `ping` at least this often; the server closes a connection
    /// silent for three intervals.
    pub heartbeat_ms: u64,
    /// The last op sequence of this client the server has processed: drop
    /// outbox ops up to it, re-send the rest in order.
    pub applied_seq: u64,
    /// The server's clock when it answered, ms since the Unix epoch.
    pub server_time: u64,
    /// What the client missed since `haveVersion`.
    pub catch_up: CatchUp,
}

/// How a client gets from the version it holds to the current one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CatchUp {
    /// The client is current.
    UpToDate,
    /// Apply these patches in order.
    Patches {
        /// Each missed change, oldest first.
        patches: Vec<LoggedPatch>,
    },
    /// The patch log does not reach back that far: replace the state.
    Snapshot {
        /// The whole current state.
        state: Value,
    },
}

impl CatchUp {
    /// What a client holding version `have` misses of a session now at
    /// `version` whose patch log holds `recent` (oldest first): nothing,
    /// the patches after `have` when the log reaches back to it, else the
    /// whole state (`state` is called only then). A `have` ahead of
    /// `version` is `VERSION_AHEAD`: the server never produced it.
    pub fn since<'a, I>(
        have: u64,
        version: u64,
        recent: I,
        state: impl FnOnce() -> Value,
    ) -> Result<Self>
    where
        I: IntoIterator<Item = &'a LoggedPatch>,
    {
        if have > version {
            return Err(SessileError::VersionAhead {
                have,
                current: version,
            });
        }
        if have == version {
            return Ok(CatchUp::UpToDate);
        }
        let mut recent = recent.into_iter().peekable();
        // `have` < `version` here, so `have + 1` cannot overflow; saturate anyway.
        let reaches = recent
            .peek()
            .is_some_and(|p| p.version <= have.saturating_add(1));
        Ok(if have > 0 && reaches {
            CatchUp::Patches {
                patches: recent.filter(|p| p.version > have).cloned().collect(),
            }
        } else {
            CatchUp::Snapshot { state: state() }
        })
    }
}

/// An op's id: the client that made it and its sequence number (1, 2, ...).
/// A field it does not have is refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpId {
    /// The client id (32 lowercase hex digits).
    pub client: String,
    /// Grows by one with every op of this client, starting at 1.
    pub seq: u64,
}

/// One change from a client. A field it does not have is refused
/// (`PROTOCOL_ERROR`), as a misspelt `to` would otherwise be dropped unseen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Op {
    /// Unique id; a repeated id is acknowledged again, never applied twice.
    pub id: OpId,
    /// The server version the patch was made on.
    pub base: u64,
    /// JSON merge patch (RFC 7386) to the state; `{}` changes nothing.
    pub patch: Value,
    /// A status to move to, checked against the session's flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The op is durable at `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The op acknowledged.
    pub id: OpId,
    /// The version the op produced (for a repeat: the session's current one).
    pub version: u64,
    /// The op had already been processed; nothing was applied this time.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// The op was based on an older version and applied on top of newer,
    /// disjoint changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rebased: bool,
}

/// The op was not applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reject {
    /// The op refused.
    pub id: OpId,
    /// Stable error code (`VERSION_CONFLICT`, `INVALID_TRANSITION`, ...).
    pub code: String,
    /// A message a developer can act on.
    pub message: String,
    /// The session as it is now, with `VERSION_CONFLICT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<Current>,
}

/// A session's current version, status and state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Current {
    /// Current version.
    pub version: u64,
    /// Current status.
    pub status: String,
    /// Current state; shared, not copied, by the rejects that carry it.
    pub state: Arc<Value>,
}

/// One applied change as the server logs and pushes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoggedPatch {
    /// The version this change produced.
    pub version: u64,
    /// The merge patch applied.
    pub patch: Value,
    /// The status after the change, when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The op that made it, when a client did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<OpId>,
}

/// A liveness probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// The sender's clock, ms (any epoch; echoed back).
    pub ts: u64,
}

/// The answer to a ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pong {
    /// The ping's `ts`, echoed: RTT = now − ts on the pinging side.
    pub ts: u64,
    /// The answerer's clock, ms since the Unix epoch.
    pub server_ts: u64,
}

/// Ask for a later expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extend {
    /// Seconds to add (1 s to 24 h).
    pub seconds: u64,
}

/// The session's expiry after `extend`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extended {
    /// New expiry, ms since the Unix epoch.
    pub expires_at: u64,
}

/// The session is over: ended by its owner or expired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    /// Its final status (the flow's ended or expired status).
    pub status: String,
    /// `SESSION_CLOSED` (ended) or `SESSION_EXPIRED`.
    pub code: String,
    /// The version of its last change.
    pub version: u64,
    /// A message a developer can act on.
    pub message: String,
}

/// A failure that is not about one op.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    /// Stable error code.
    pub code: String,
    /// A message a developer can act on.
    pub message: String,
    /// Trying again later may work without any change.
    #[serde(default)]
    pub retryable: bool,
}

/// The connection is closing on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bye {
    /// Why, as a stable code or a few words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl From<&SessileError> for ErrorFrame {
    fn from(e: &SessileError) -> Self {
        ErrorFrame {
            code: e.code().into(),
            message: crate::core::error_text::message(e),
            retryable: e.is_retryable(),
        }
    }
}

impl Reject {
    /// A reject of op `id` for `error`, carrying `current` when given.
    pub fn new(id: OpId, error: &SessileError, current: Option<Current>) -> Self {
        Reject {
            id,
            code: error.code().into(),
            message: crate::core::error_text::message(error),
            current,
        }
    }
}

/// Encodes `msg` as one JSON text frame.
pub fn encode(msg: &Message) -> String {
    // Every field is a string, a number, a bool or a `Value` whose map keys
    // are strings, so serialization cannot fail; keep a frame either way.
    serde_json::to_string(msg).unwrap_or_else(|e| {
        format!(r#"{{"type":"error","code":"PROTOCOL_ERROR","message":"encode: {e}"}}"#)
    })
}

/// Decodes one frame of at most `max_frame_bytes`. Every failure is an error
/// with a code: `FRAME_TOO_LARGE`, `UNSUPPORTED_PROTOCOL_VERSION` or
/// `PROTOCOL_ERROR` (malformed, truncated, unknown type, bad id).
pub fn decode(bytes: &[u8], max_frame_bytes: usize) -> Result<Message> {
    if bytes.len() > max_frame_bytes {
        return Err(SessileError::FrameTooLarge {
            size: bytes.len() as u64,
            limit: max_frame_bytes as u64,
        });
    }
    // Parsed as a JSON value, then the message read from its object by
    // the `type` it names (core::protocol_read): serde's derive for an
    // internally tagged enum buffers every frame in its own content tree,
    // and with the derive for each message took about 40 KB of the wasm
    // module (docs/PERFORMANCE.md).
    let value: Value = serde_json::from_slice(bytes).map_err(|e| describe(&e))?;
    let Value::Object(mut object) = value else {
        return Err(protocol_error("malformed frame (not a JSON object)"));
    };
    let found = object.get("protocol").and_then(Value::as_u64);
    let read = match object.remove("type") {
        Some(Value::String(kind)) => read_message(&kind, object),
        Some(_) => Err(protocol_error("malformed frame (`type` is not a string)")),
        None => Err(protocol_error("malformed frame (missing field `type`)")),
    };
    let msg = match read {
        Ok(m) => m,
        // A frame that announces another protocol version (whose messages
        // may look different) gets the version error, not a parse one.
        Err(e) => {
            return Err(match found {
                Some(v) if v != u64::from(PROTOCOL_VERSION) => unsupported(v),
                _ => e,
            })
        }
    };
    match &msg {
        Message::Hello(h) if h.protocol != u64::from(PROTOCOL_VERSION) => {
            return Err(unsupported(h.protocol))
        }
        Message::Welcome(w) if w.protocol != PROTOCOL_VERSION => {
            return Err(unsupported(w.protocol.into()))
        }
        Message::Hello(h) => {
            check_id("session", &h.session)?;
            check_id("client", &h.client)?;
        }
        Message::Op(op) => {
            check_id("client", &op.id.client)?;
            if op.id.seq == 0 {
                return Err(protocol_error("op sequence numbers start at 1"));
            }
        }
        _ => {}
    }
    Ok(msg)
}

/// Whether `s` is a 128-bit id as sessile writes them: 32 lowercase hex digits.
pub fn is_id(s: &str) -> bool {
    s.len() == ID_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_id(what: &str, s: &str) -> Result<()> {
    if is_id(s) {
        Ok(())
    } else {
        Err(protocol_error(&format!(
            "{what} id must be {ID_HEX_LEN} lowercase hex digits"
        )))
    }
}

fn unsupported(found: u64) -> SessileError {
    SessileError::UnsupportedProtocolVersion {
        found,
        supported: PROTOCOL_VERSION,
    }
}

fn protocol_error(reason: &str) -> SessileError {
    SessileError::ProtocolError {
        reason: reason.into(),
    }
}

fn describe(e: &serde_json::Error) -> SessileError {
    let reason = if e.is_eof() {
        format!("truncated frame ({e})")
    } else {
        format!("malformed frame ({e})")
    };
    SessileError::ProtocolError { reason }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT: &str = "0123456789abcdef0123456789abcdef";

    fn op(seq: u64) -> Message {
        Message::Op(Op {
            id: OpId {
                client: CLIENT.into(),
                seq,
            },
            base: 3,
            patch: json!({"step":"checkout","email":null}),
            to: Some("checkout".into()),
        })
    }

    #[test]
    fn round_trips_and_wire_shape() {
        let m = op(7);
        let text = encode(&m);
        assert!(
            text.starts_with(r#"{"type":"op","id":{"client":""#),
            "{text}"
        );
        assert_eq!(decode(text.as_bytes(), 1 << 20).unwrap(), m);
        let w = Message::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            version: 4,
            status: "cart".into(),
            expires_at: 9,
            heartbeat_ms: 5000,
            applied_seq: 2,
            server_time: 1,
            catch_up: CatchUp::Patches {
                patches: vec![LoggedPatch {
                    version: 4,
                    patch: json!({"a":1}),
                    status: None,
                    op: None,
                }],
            },
        });
        let text = encode(&w);
        assert!(text.contains(r#""catchUp":{"kind":"patches""#), "{text}");
        assert_eq!(decode(text.as_bytes(), 1 << 20).unwrap(), w);
        let e = Message::Ended(Ended {
            status: "expired".into(),
            code: "SESSION_EXPIRED".into(),
            version: 7,
            message: "session expired".into(),
        });
        let text = encode(&e);
        assert_eq!(
            text,
            r#"{"type":"ended","status":"expired","code":"SESSION_EXPIRED","version":7,"message":"session expired"}"#
        );
        assert_eq!(decode(text.as_bytes(), 1 << 20).unwrap(), e);
    }

    #[test]
    fn bad_frames_have_codes() {
        let code = |b: &[u8]| decode(b, 256).unwrap_err().code();
        assert_eq!(code(&[b' '; 257]), "FRAME_TOO_LARGE");
        assert_eq!(code(b"{\"type\":\"op\",\"id\":{"), "PROTOCOL_ERROR");
        assert_eq!(code(b"\xff\xfe"), "PROTOCOL_ERROR");
        assert_eq!(code(br#"{"type":"launch"}"#), "PROTOCOL_ERROR");
        let hello = |v: u64| {
            format!(
                r#"{{"type":"hello","protocol":{v},"session":"{CLIENT}","token":"t","client":"{CLIENT}"}}"#
            )
        };
        assert!(decode(hello(1).as_bytes(), 1024).is_ok());
        let e = decode(hello(2).as_bytes(), 1024).unwrap_err();
        assert_eq!(e.code(), "UNSUPPORTED_PROTOCOL_VERSION");
        assert!(e.to_string().contains("version 2"));
        // A future hello with fields this build does not know still gets the version error.
        assert_eq!(
            code(br#"{"type":"hello","protocol":3,"resume":[1]}"#),
            "UNSUPPORTED_PROTOCOL_VERSION"
        );
        let bad_client = encode(&op(1)).replace(CLIENT, "XYZ");
        assert_eq!(code(bad_client.as_bytes()), "PROTOCOL_ERROR");
        assert_eq!(code(encode(&op(0)).as_bytes()), "PROTOCOL_ERROR");
        assert!(decode(b"{\"type\":\"op\"", 256)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }

    /// The hand reader (core::protocol_read) takes what serde's derive of
    /// the same types takes, and refuses what it refuses.
    #[test]
    fn decode_agrees_with_the_derived_reader() {
        let id = json!({"client": CLIENT, "seq": 2});
        let logged = json!({"version": 5, "patch": {"a": [1, 2.5]}, "status": "paid", "op": id});
        let good = [
            json!({"type": "hello", "protocol": 1, "session": CLIENT, "token": "t", "client": CLIENT}),
            json!({"type": "hello", "protocol": 1, "session": CLIENT, "token": "t", "client": CLIENT, "haveVersion": 4, "x": 1}),
            json!({"type": "welcome", "protocol": 1, "version": 4, "status": "cart", "expiresAt": 9, "heartbeatMs": 5000, "appliedSeq": 2, "serverTime": 1, "catchUp": {"kind": "upToDate"}}),
            json!({"type": "welcome", "protocol": 1, "version": 4, "status": "cart", "expiresAt": 9, "heartbeatMs": 5000, "appliedSeq": 2, "serverTime": 1, "catchUp": {"kind": "patches", "patches": [logged, {"version": 6, "patch": {}, "op": null}]}}),
            json!({"type": "welcome", "protocol": 1, "version": 4, "status": "cart", "expiresAt": 9, "heartbeatMs": 5000, "appliedSeq": 2, "serverTime": 1, "catchUp": {"kind": "snapshot", "state": {"b": null}}}),
            json!({"type": "op", "id": id, "base": 3, "patch": {"s": 1}}),
            json!({"type": "op", "id": id, "base": 3, "patch": {"s": 1}, "to": null}),
            json!({"type": "ack", "id": id, "version": 7}),
            json!({"type": "ack", "id": id, "version": 7, "duplicate": true, "rebased": false}),
            json!({"type": "reject", "id": id, "code": "VERSION_CONFLICT", "message": "m", "current": {"version": 3, "status": "cart", "state": {"a": 1}}}),
            json!({"type": "reject", "id": id, "code": "C", "message": "m", "current": null}),
            json!({"type": "patch", "version": 5, "patch": {"a": 1}}),
            json!({"type": "patch", "version": 5, "patch": {"a": 1}, "status": "paid", "op": id}),
            json!({"type": "ping", "ts": 1}),
            json!({"type": "pong", "ts": 1, "serverTs": 2}),
            json!({"type": "extend", "seconds": 60}),
            json!({"type": "extended", "expiresAt": 60}),
            json!({"type": "error", "code": "C", "message": "m"}),
            json!({"type": "error", "code": "C", "message": "m", "retryable": true}),
            json!({"type": "bye"}),
            json!({"type": "bye", "reason": "done"}),
            json!({"type": "ended", "status": "paid", "code": "SESSION_CLOSED", "version": 3, "message": "m"}),
        ];
        for frame in good {
            let text = frame.to_string();
            let derived: Message = serde_json::from_str(&text).unwrap();
            assert_eq!(decode(text.as_bytes(), 1 << 20).unwrap(), derived, "{text}");
            assert_eq!(
                decode(encode(&derived).as_bytes(), 1 << 20).unwrap(),
                derived
            );
        }
        let bad = [
            json!({"type": "ping"}),
            json!({"type": "ping", "ts": -1}),
            json!({"type": "ping", "ts": 1.5}),
            json!({"type": "ping", "ts": "1"}),
            json!({"type": "pong", "ts": 1, "serverTs": null}),
            json!({"type": "welcome", "protocol": 1, "version": 4, "status": "cart", "expiresAt": 9, "heartbeatMs": 5000, "appliedSeq": 2, "serverTime": 1, "catchUp": {"kind": "later"}}),
            json!({"type": "welcome", "protocol": 1, "version": 4, "status": "cart", "expiresAt": 9, "heartbeatMs": 5000, "appliedSeq": 2, "serverTime": 1, "catchUp": {"kind": "patches"}}),
            json!({"type": "op", "id": id, "base": 3, "patch": {}, "later": 1}),
            json!({"type": "op", "id": {"client": CLIENT, "seq": 1, "x": 0}, "base": 3, "patch": {}}),
            json!({"type": "op", "id": id, "base": 3}),
            json!({"type": "ack", "id": id, "version": 7, "duplicate": null}),
            json!({"type": "error", "code": 1, "message": "m"}),
            json!({"type": "bye", "reason": 5}),
            json!({"type": "reject", "id": id, "code": "C", "message": "m", "current": {"version": 3}}),
            json!({"type": 5}),
            json!({"kind": "ping", "ts": 1}),
            json!([1]),
        ];
        for frame in bad {
            let text = frame.to_string();
            assert!(serde_json::from_str::<Message>(&text).is_err(), "{text}");
            assert_eq!(
                decode(text.as_bytes(), 1 << 20).unwrap_err().code(),
                "PROTOCOL_ERROR",
                "{text}"
            );
        }
        let unknown = decode(
            br#"{"type":"op","id":{"client":"x","seq":1},"base":1,"patch":{},"tx":"a"}"#,
            256,
        );
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }
}
