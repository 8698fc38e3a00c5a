//! The link's outbox: every local change as an op (id, base version, merge
//! patch), kept in order until the server answers it, coalesced when over its
//! limit (never dropped), and written as a JSON record for the driver to
//! persist: format 1, the shape the TypeScript client wrote, so a page
//! upgraded from it resumes its outbox.

use std::collections::VecDeque;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::core::error::{Result, SessileError};
use crate::core::merge_patch;
use crate::core::protocol::{is_id, Op, OpId};

/// Format version written by [`Outbox::to_record`].
pub const OUTBOX_FORMAT: u64 = 1;

/// The highest op sequence number (2^52 − 1): a link refuses a server's
/// frame naming a higher one, and a record numbering past it does not
/// read. The numbers above it are the pending register's held changes
/// (`engine::register`), up to 2^53 − 1.
pub const MAX_SEQ: u64 = (1 << 52) - 1;

/// Ops not yet answered by the server, oldest first, numbered 1, 2, ... per
/// client without gaps. The client may be this tab's, or another tab's whose
/// outbox this one adopted: its ops keep their (client, seq) ids.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    format: u64,
    client: String,
    next_seq: u64,
    /// Highest sequence ever handed to a transport. Ops at or below it may
    /// have been applied, so they are never coalesced or renumbered.
    sent_upto: u64,
    ops: VecDeque<Op>,
}

impl Outbox {
    /// An empty outbox for `client` (32 lowercase hex digits, chosen at
    /// random by the caller); its first op gets sequence 1.
    /// `OUTBOX_CORRUPT` for any other id.
    pub fn new(client: &str) -> Result<Self> {
        if !is_id(client) {
            return Err(corrupt("client id must be 32 lowercase hex digits"));
        }
        Ok(Self {
            format: OUTBOX_FORMAT,
            client: client.into(),
            next_seq: 1,
            sent_upto: 0,
            ops: VecDeque::new(),
        })
    }

    /// The client id the ops are sent under.
    pub fn client(&self) -> &str {
        &self.client
    }

    /// Number of ops waiting for an answer.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether every op has been answered.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The ops, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Op> {
        self.ops.iter()
    }

    /// The sequence the next op will get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Adds an op made on server version `base`; when the outbox then holds
    /// more than `limit` ops, consecutive ops never sent are coalesced
    /// ([`merge_patch::compose`]) until it fits or nothing more composes (it
    /// then stays over the limit: nothing is dropped). Returns the new op's
    /// id as it stands after coalescing.
    pub fn push(&mut self, base: u64, patch: Value, to: Option<String>, limit: usize) -> OpId {
        let id = OpId {
            client: self.client.clone(),
            seq: self.next_seq,
        };
        self.next_seq = self.next_seq.saturating_add(1);
        self.ops.push_back(Op {
            id,
            base,
            patch,
            to,
        });
        while self.ops.len() > limit.max(1) && self.coalesce_one() {}
        OpId {
            client: self.client.clone(),
            seq: self.ops.back().map_or(0, |op| op.id.seq),
        }
    }

    /// Merges the first pair of consecutive unsent ops that compose into one
    /// op, renumbering the (unsent) ops after it. Whether a pair merged.
    fn coalesce_one(&mut self) -> bool {
        let first_unsent = self.ops.iter().position(|op| op.id.seq > self.sent_upto);
        let Some(start) = first_unsent else {
            return false;
        };
        for i in start..self.ops.len().saturating_sub(1) {
            let (a, b) = (&self.ops[i], &self.ops[i + 1]);
            if a.to.is_some() && b.to.is_some() {
                continue;
            }
            let Some(patch) = merge_patch::compose(&a.patch, &b.patch) else {
                continue;
            };
            let to = a.to.clone().or_else(|| b.to.clone());
            self.ops[i].patch = patch;
            self.ops[i].to = to;
            self.ops.remove(i + 1);
            for op in self.ops.iter_mut().skip(i + 1) {
                op.id.seq -= 1;
            }
            self.next_seq -= 1;
            return true;
        }
        false
    }

    /// Ops never handed to a transport, oldest first.
    pub fn unsent(&self) -> impl Iterator<Item = &Op> {
        let upto = self.sent_upto;
        self.ops.iter().filter(move |op| op.id.seq > upto)
    }

    /// Records that ops up to `seq` were handed to a transport.
    pub fn mark_sent(&mut self, seq: u64) {
        self.sent_upto = self.sent_upto.max(seq);
    }

    /// Whether ops up to `seq` were handed to a transport at some point.
    pub fn was_sent(&self, seq: u64) -> bool {
        seq <= self.sent_upto
    }

    /// Removes every op with a sequence up to `seq` (the server processed
    /// them); returns how many.
    pub fn remove_upto(&mut self, seq: u64) -> usize {
        let n = self.ops.iter().take_while(|op| op.id.seq <= seq).count();
        self.ops.drain(..n);
        // A server that processed more than this outbox ever numbered (an
        // outbox restored from an old copy): new ops must not reuse numbers
        // the server would take for repeats.
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        self.mark_sent(seq);
        n
    }

    /// The oldest op, if any.
    pub fn front(&self) -> Option<&Op> {
        self.ops.front()
    }

    /// Removes and returns the oldest op.
    pub fn pop_front(&mut self) -> Option<Op> {
        self.ops.pop_front()
    }

    /// The outbox as its JSON record (`{format, client, nextSeq, sentUpto,
    /// ops}`), for the driver's crash-safe slots.
    pub fn to_record(&self) -> Value {
        // Strings, integers and `Value`s with string keys: cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The record as JSON text, fields in the order the TypeScript client
    /// wrote them.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what [`encode`](Self::encode) wrote, or the record's value.
    /// Every op is treated as possibly sent (the copy may predate a send),
    /// so none of them is ever coalesced or renumbered. `OUTBOX_CORRUPT`
    /// when it is not a consistent outbox.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let v: Value =
            serde_json::from_slice(bytes).map_err(|e| corrupt(&format!("not an outbox ({e})")))?;
        Self::from_record(&v)
    }

    /// Reads a record [`to_record`](Self::to_record) gave (the checks of
    /// [`decode`](Self::decode)).
    pub fn from_record(v: &Value) -> Result<Self> {
        let Value::Object(o) = v else {
            return Err(corrupt("not an outbox (not an object)"));
        };
        let (Some(format), Some(Value::String(client)), Some(next_seq), Some(_)) = (
            u64_field(o, "format"),
            o.get("client"),
            u64_field(o, "nextSeq"),
            u64_field(o, "sentUpto"),
        ) else {
            return Err(corrupt(
                "not an outbox (a field is missing or of the wrong type)",
            ));
        };
        let Some(Value::Array(raw_ops)) = o.get("ops") else {
            return Err(corrupt(
                "not an outbox (a field is missing or of the wrong type)",
            ));
        };
        let ops = raw_ops
            .iter()
            .map(read_op)
            .collect::<Result<VecDeque<Op>>>()?;
        if format != OUTBOX_FORMAT {
            return Err(corrupt("unknown outbox format version"));
        }
        if !is_id(client) || next_seq == 0 || next_seq > MAX_SEQ {
            return Err(corrupt("bad client id or sequence"));
        }
        let mut expect = ops.front().map(|op| op.id.seq);
        for op in &ops {
            if op.id.client != *client || Some(op.id.seq) != expect || op.id.seq == 0 {
                return Err(corrupt("op ids are not consecutive ids of this client"));
            }
            expect = Some(op.id.seq + 1);
        }
        if expect.is_some_and(|e| e != next_seq) {
            return Err(corrupt("next sequence does not follow the last op"));
        }
        Ok(Outbox {
            format,
            client: client.clone(),
            next_seq,
            sent_upto: next_seq - 1,
            ops,
        })
    }
}

/// A whole number from 0 to 2^53 − 1 (what the TypeScript client could
/// write), or `None`.
fn u64_field(o: &Map<String, Value>, key: &str) -> Option<u64> {
    o.get(key).and_then(Value::as_u64).filter(|n| *n < 1 << 53)
}

/// One op of a record: `{id: {client, seq}, base, patch, to?}`.
fn read_op(raw: &Value) -> Result<Op> {
    let bad = || corrupt("not an outbox (an op is missing a field or has one of the wrong type)");
    let Value::Object(o) = raw else {
        return Err(bad());
    };
    let Some(Value::Object(id)) = o.get("id") else {
        return Err(bad());
    };
    let (Some(Value::String(client)), Some(seq), Some(base), Some(patch)) = (
        id.get("client"),
        u64_field(id, "seq"),
        u64_field(o, "base"),
        o.get("patch"),
    ) else {
        return Err(bad());
    };
    let to = match o.get("to") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(corrupt("not an outbox (an op's `to` is not a string)")),
    };
    Ok(Op {
        id: OpId {
            client: client.clone(),
            seq,
        },
        base,
        patch: patch.clone(),
        to,
    })
}

/// An `OUTBOX_CORRUPT` error.
pub(crate) fn corrupt(reason: &str) -> SessileError {
    SessileError::OutboxCorrupt {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT: &str = "0123456789abcdef0123456789abcdef";

    fn code(r: Result<Outbox>) -> &'static str {
        r.map(|_| ()).unwrap_err().code()
    }

    #[test]
    fn coalesces_only_unsent_ops_and_keeps_numbers_dense() {
        let mut o = Outbox::new(CLIENT).unwrap();
        let _ = o.push(1, json!({"a":1}), None, 2);
        o.mark_sent(1);
        let _ = o.push(1, json!({"b":1}), None, 2);
        let _ = o.push(1, json!({"c":1}), None, 2);
        assert_eq!(o.len(), 2, "b and c merged, a (sent) untouched");
        let seqs: Vec<u64> = o.iter().map(|op| op.id.seq).collect();
        assert_eq!(seqs, vec![1, 2]);
        assert_eq!(o.iter().nth(1).unwrap().patch, json!({"b":1,"c":1}));
        assert_eq!(o.next_seq(), 3);
        // Ops that do not compose stay apart: over the limit, never dropped.
        let _ = o.push(1, json!({"d":null}), None, 2);
        let _ = o.push(1, json!({"d":{"x":1}}), None, 2);
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn encode_decode_round_trip_and_corruption() {
        let mut o = Outbox::new(CLIENT).unwrap();
        let _ = o.push(4, json!({"a":1}), Some("checkout".into()), 8);
        let _ = o.push(4, json!({"b":2}), None, 8);
        let mut back = Outbox::decode(o.encode().as_bytes()).unwrap();
        assert_eq!(
            back.iter().collect::<Vec<_>>(),
            o.iter().collect::<Vec<_>>()
        );
        assert!(back.was_sent(2), "a restored op may have been sent");
        assert_eq!(back.remove_upto(1), 1);
        let bad = o.encode().replace("\"seq\":2", "\"seq\":5");
        assert_eq!(code(Outbox::decode(bad.as_bytes())), "OUTBOX_CORRUPT");
        assert_eq!(code(Outbox::decode(b"{")), "OUTBOX_CORRUPT");
        assert_eq!(code(Outbox::new("nope")), "OUTBOX_CORRUPT");
        let changes = [
            json!({"format": 2}),
            json!({"nextSeq": 0, "ops": []}),
            json!({"nextSeq": MAX_SEQ + 1, "ops": []}),
            json!({"client": "x"}),
            json!({"ops": "no"}),
            json!({"sentUpto": -1}),
            json!({"nextSeq": 9}),
        ];
        for change in changes {
            let mut r = o.to_record();
            for (k, v) in change.as_object().unwrap() {
                r[k] = v.clone();
            }
            assert_eq!(code(Outbox::from_record(&r)), "OUTBOX_CORRUPT", "{change}");
        }
        let mut r = o.to_record();
        r["ops"][0] = json!({"id": {"client": CLIENT, "seq": 1}, "base": 4});
        assert_eq!(code(Outbox::from_record(&r)), "OUTBOX_CORRUPT", "no patch");
    }

    #[test]
    fn a_server_that_processed_more_than_the_outbox_numbered_moves_the_next_sequence_on() {
        let mut o = Outbox::new(CLIENT).unwrap();
        let _ = o.push(1, json!({"a":1}), None, 8);
        assert_eq!(o.remove_upto(5), 1);
        assert_eq!(o.push(1, json!({"b":1}), None, 8).seq, 6);
    }
}
