//! Reading a decoded frame's JSON object into its [`Message`], by hand:
//! the `type` picks the message, each field is taken from the object with
//! serde's rules for the derived types (a missing field is refused unless
//! it has a default, `null` is absent only for an `Option`, a number must
//! be a whole number that fits, fields a message does not know are ignored
//! except by `op` and its id, which refuse them). serde's derive through
//! serde_json's value deserializer costs the wasm module about 20 KB for
//! the thirteen messages (docs/PERFORMANCE.md); this is a few.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::core::error::{Result, SessileError};
use crate::core::protocol::{
    Ack, Bye, CatchUp, Current, Ended, ErrorFrame, Extend, Extended, Hello, LoggedPatch, Message,
    Op, OpId, Ping, Pong, Reject, Welcome,
};

type Object = Map<String, Value>;

fn malformed(what: &str, field: &str, detail: &str) -> SessileError {
    SessileError::ProtocolError {
        reason: ["malformed frame (", what, " `", field, "`", detail, ")"].concat(),
    }
}

fn missing(field: &str) -> SessileError {
    malformed("missing field", field, "")
}

fn wrong(field: &str, expected: &str) -> SessileError {
    malformed("invalid type of", field, expected)
}

/// `o[field]`, `None` when absent.
fn opt(o: &mut Object, field: &str) -> Option<Value> {
    o.remove(field)
}

fn value(o: &mut Object, field: &str) -> Result<Value> {
    opt(o, field).ok_or_else(|| missing(field))
}

fn whole(field: &str, v: Value) -> Result<u64> {
    v.as_u64()
        .ok_or_else(|| wrong(field, ": expected a whole number"))
}

fn u64_of(o: &mut Object, field: &str) -> Result<u64> {
    whole(field, value(o, field)?)
}

/// A number with `#[serde(default)]`: 0 when absent.
fn u64_or_0(o: &mut Object, field: &str) -> Result<u64> {
    opt(o, field).map_or(Ok(0), |v| whole(field, v))
}

fn string_of(field: &str, v: Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(s),
        _ => Err(wrong(field, ": expected a string")),
    }
}

fn string(o: &mut Object, field: &str) -> Result<String> {
    string_of(field, value(o, field)?)
}

/// An `Option<String>`: absent or `null` is `None`.
fn opt_string(o: &mut Object, field: &str) -> Result<Option<String>> {
    match opt(o, field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => string_of(field, v).map(Some),
    }
}

/// A `bool` with `#[serde(default)]`: false when absent.
fn flag(o: &mut Object, field: &str) -> Result<bool> {
    match opt(o, field) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(b),
        Some(_) => Err(wrong(field, ": expected a boolean")),
    }
}

fn object_of(field: &str, v: Value) -> Result<Object> {
    match v {
        Value::Object(o) => Ok(o),
        _ => Err(wrong(field, ": expected an object")),
    }
}

/// Refuses a field left in `o` (for the messages that deny unknown fields).
fn no_more(o: &Object) -> Result<()> {
    match o.keys().next() {
        Some(field) => Err(malformed("unknown field", field, "")),
        None => Ok(()),
    }
}

fn op_id_of(field: &str, v: Value) -> Result<OpId> {
    let mut o = object_of(field, v)?;
    let id = OpId {
        client: string(&mut o, "client")?,
        seq: u64_of(&mut o, "seq")?,
    };
    no_more(&o)?;
    Ok(id)
}

fn op_id(o: &mut Object, field: &str) -> Result<OpId> {
    op_id_of(field, value(o, field)?)
}

fn logged_patch(v: Value) -> Result<LoggedPatch> {
    let mut o = object_of("patches", v)?;
    Ok(LoggedPatch {
        version: u64_of(&mut o, "version")?,
        patch: value(&mut o, "patch")?,
        status: opt_string(&mut o, "status")?,
        op: match opt(&mut o, "op") {
            None | Some(Value::Null) => None,
            Some(v) => Some(op_id_of("op", v)?),
        },
    })
}

fn catch_up(v: Value) -> Result<CatchUp> {
    let mut o = object_of("catchUp", v)?;
    match string(&mut o, "kind")?.as_str() {
        "upToDate" => Ok(CatchUp::UpToDate),
        "patches" => match value(&mut o, "patches")? {
            Value::Array(items) => Ok(CatchUp::Patches {
                patches: items.into_iter().map(logged_patch).collect::<Result<_>>()?,
            }),
            _ => Err(wrong("patches", ": expected an array")),
        },
        "snapshot" => Ok(CatchUp::Snapshot {
            state: value(&mut o, "state")?,
        }),
        other => Err(malformed("unknown catchUp kind", other, "")),
    }
}

fn current(v: Value) -> Result<Option<Current>> {
    if v.is_null() {
        return Ok(None);
    }
    let mut o = object_of("current", v)?;
    Ok(Some(Current {
        version: u64_of(&mut o, "version")?,
        status: string(&mut o, "status")?,
        state: Arc::new(value(&mut o, "state")?),
    }))
}

/// The message a frame's object (its `type` removed) holds, by `kind`.
pub(crate) fn read_message(kind: &str, mut object: Object) -> Result<Message> {
    let o = &mut object;
    Ok(match kind {
        "hello" => Message::Hello(Hello {
            protocol: u64_of(o, "protocol")?,
            session: string(o, "session")?,
            token: string(o, "token")?,
            client: string(o, "client")?,
            have_version: u64_or_0(o, "haveVersion")?,
        }),
        "welcome" => Message::Welcome(Welcome {
            protocol: u32::try_from(u64_of(o, "protocol")?)
                .map_err(|_| wrong("protocol", ": expected a u32"))?,
            version: u64_of(o, "version")?,
            status: string(o, "status")?,
            expires_at: u64_of(o, "expiresAt")?,
            heartbeat_ms: u64_of(o, "heartbeatMs")?,
            applied_seq: u64_of(o, "appliedSeq")?,
            server_time: u64_of(o, "serverTime")?,
            catch_up: catch_up(value(o, "catchUp")?)?,
        }),
        "op" => {
            let op = Op {
                id: op_id(o, "id")?,
                base: u64_of(o, "base")?,
                patch: value(o, "patch")?,
                to: opt_string(o, "to")?,
            };
            no_more(o)?;
            Message::Op(op)
        }
        "ack" => Message::Ack(Ack {
            id: op_id(o, "id")?,
            version: u64_of(o, "version")?,
            duplicate: flag(o, "duplicate")?,
            rebased: flag(o, "rebased")?,
        }),
        "reject" => Message::Reject(Reject {
            id: op_id(o, "id")?,
            code: string(o, "code")?,
            message: string(o, "message")?,
            current: opt(o, "current").map_or(Ok(None), current)?,
        }),
        "patch" => Message::Patch(logged_patch(Value::Object(std::mem::take(o)))?),
        "ping" => Message::Ping(Ping {
            ts: u64_of(o, "ts")?,
        }),
        "pong" => Message::Pong(Pong {
            ts: u64_of(o, "ts")?,
            server_ts: u64_of(o, "serverTs")?,
        }),
        "extend" => Message::Extend(Extend {
            seconds: u64_of(o, "seconds")?,
        }),
        "extended" => Message::Extended(Extended {
            expires_at: u64_of(o, "expiresAt")?,
        }),
        "error" => Message::Error(ErrorFrame {
            code: string(o, "code")?,
            message: string(o, "message")?,
            retryable: flag(o, "retryable")?,
        }),
        "bye" => Message::Bye(Bye {
            reason: opt_string(o, "reason")?,
        }),
        "ended" => Message::Ended(Ended {
            status: string(o, "status")?,
            code: string(o, "code")?,
            version: u64_of(o, "version")?,
            message: string(o, "message")?,
        }),
        _ => return Err(malformed("unknown type", kind, "")),
    })
}
