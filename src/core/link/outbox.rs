//! The link's outbox: every local change as an op (id, base version, merge
//! patch), kept in order until the server answers it, coalesced when over its
//! limit (never dropped), and encoded as JSON for the web layer to persist.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::core::error::{Result, SessileError};
use crate::core::merge_patch;
use crate::core::protocol::{is_id, Op, OpId};

/// Format version written by [`Outbox::encode`].
const OUTBOX_FORMAT: u32 = 1;

/// Ops not yet answered by the server, oldest first, numbered 1, 2, ... per
/// client without gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outbox {
    format: u32,
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
    /// then stays over the limit: nothing is dropped). Returns the new op's id
    /// as it stands after coalescing.
    pub fn push(&mut self, base: u64, patch: Value, to: Option<String>, limit: usize) -> OpId {
        let id = OpId {
            client: self.client.clone(),
            seq: self.next_seq,
        };
        self.next_seq += 1;
        self.ops.push_back(Op {
            id,
            base,
            patch,
            to,
        });
        while self.ops.len() > limit.max(1) && self.coalesce_one() {}
        self.ops.back().map(|op| op.id.clone()).unwrap_or(OpId {
            client: self.client.clone(),
            seq: 0,
        })
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

    /// The outbox as JSON text, for the web layer's crash-safe slots.
    pub fn encode(&self) -> String {
        // Strings, integers and `Value`s with string keys: cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Reads what [`encode`](Self::encode) wrote. Every op is treated as
    /// possibly sent (the copy may predate a send), so none of them is ever
    /// coalesced or renumbered. `OUTBOX_CORRUPT` when the text is not a
    /// consistent outbox.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut out: Outbox =
            serde_json::from_slice(bytes).map_err(|e| corrupt(&format!("not an outbox ({e})")))?;
        if out.format != OUTBOX_FORMAT {
            return Err(corrupt("unknown outbox format version"));
        }
        if !is_id(&out.client) || out.next_seq == 0 {
            return Err(corrupt("bad client id or sequence"));
        }
        let mut expect = out.ops.front().map(|op| op.id.seq);
        for op in &out.ops {
            if op.id.client != out.client || Some(op.id.seq) != expect || op.id.seq == 0 {
                return Err(corrupt("op ids are not consecutive ids of this client"));
            }
            expect = Some(op.id.seq + 1);
        }
        if expect.is_some_and(|e| e != out.next_seq) {
            return Err(corrupt("next sequence does not follow the last op"));
        }
        out.sent_upto = out.next_seq - 1;
        Ok(out)
    }
}

fn corrupt(reason: &str) -> SessileError {
    SessileError::CorruptOutbox {
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CLIENT: &str = "0123456789abcdef0123456789abcdef";

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
        let e = Outbox::decode(bad.as_bytes()).unwrap_err();
        assert_eq!(e.code(), "OUTBOX_CORRUPT");
        assert!(Outbox::decode(b"{").is_err());
        assert!(Outbox::new("nope").is_err());
    }
}
