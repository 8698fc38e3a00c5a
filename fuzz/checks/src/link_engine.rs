//! Target `link_engine`: the client link engine
//! (`src/core/session/link`) fed an arbitrary sequence of inputs as a
//! driver would give them: the page opening it, transports opening,
//! closing and failing (the race's standby WebSocket too), online and offline, visibility, timers firing (on
//! time, late, early), local changes (with and without a status move, and
//! patches that are not objects), frames from a server (welcomes with each
//! catch-up, acks and duplicate acks, rejects with and without the state,
//! patches near the held version, pings, pongs, errors, `bye`, `ended`,
//! `extended`, and raw bytes), and page reloads through the persisted
//! record.
//!
//! Input: one action per byte (and the bytes it reads for its choices).
//! Local change `i` sets the key `k<i>` under `c`, so every op's patch
//! names the changes it carries.
//!
//! Asserts after every action: nothing acknowledged is lost and nothing
//! else leaves the outbox (a change leaves it only with an answer for its
//! op: an `ack` or `reject` of that op, or a `welcome` whose `appliedSeq`
//! covers it); no op is sent under two ids (a change is always sent under
//! the id it was first sent under, and an id always with the same patch);
//! the version the link holds only grows (but for a server that says it
//! lost changes: a `VERSION_AHEAD` error at hello, or a welcome's
//! snapshot); every frame it sends decodes; the record reads back to the
//! same outbox, version and state; nothing panics.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};
use sessile::core::protocol::{
    self, Ack, CatchUp, Current, ErrorFrame, LoggedPatch, Message, OpId, Reject, Welcome,
    PROTOCOL_VERSION,
};
use sessile::core::session::link::{
    empty_state, Link, LinkConfig, LinkRecord, LinkState, Outbox, Transmit, Transport,
};

use crate::input::Input;

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "fedcba9876543210fedcba9876543210";
const CODES: [&str; 10] = [
    "VERSION_CONFLICT",
    "VERSION_AHEAD",
    "OP_OUT_OF_ORDER",
    "INVALID_TRANSITION",
    "INVALID_TOKEN",
    "SESSION_EXPIRED",
    "SESSION_CLOSED",
    "SERVER_BUSY",
    "PROTOCOL_ERROR",
    "SESSION_NOT_FOUND",
];

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut h = Harness::new(data.first().copied().unwrap_or(0));
    let mut input = Input::new(data.get(1..).unwrap_or_default());
    while !input.is_empty() {
        h.step(&mut input);
    }
}

/// What a handled frame allows to leave the outbox.
#[derive(Default)]
struct Allowed {
    /// Ops up to this sequence (a welcome's `appliedSeq`).
    upto: u64,
    /// This op (an `ack` or `reject` naming it).
    one: Option<u64>,
    /// The version may go back (the server lost changes).
    version_back: bool,
}

struct Harness {
    link: Link,
    seed: u64,
    now: u64,
    changes: u64,
    /// Each change sent so far, by index: the sequence it was sent under.
    sent_as: BTreeMap<u64, u64>,
    /// Each sequence sent so far: the patch it carried.
    sent_patch: BTreeMap<u64, Value>,
    /// Changes whose op was answered: they left the outbox.
    answered: BTreeSet<u64>,
}

fn config(seed: u64) -> LinkConfig {
    let mut cfg = LinkConfig::new(SESSION, "t", seed);
    cfg.outbox_limit = 4;
    cfg
}

/// Change index → the sequence of the op carrying it, over the outbox.
fn carried(link: &Link) -> BTreeMap<u64, u64> {
    let mut out = BTreeMap::new();
    for op in link.outbox().iter() {
        for i in indices(&op.patch) {
            out.insert(i, op.id.seq);
        }
    }
    out
}

fn indices(patch: &Value) -> Vec<u64> {
    patch["c"]
        .as_object()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.strip_prefix('k')?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Harness {
    fn new(seed: u8) -> Self {
        let seed = u64::from(seed);
        let outbox = Outbox::new(CLIENT).expect("a good client id");
        Harness {
            link: Link::new(config(seed), outbox, 0, empty_state()),
            seed,
            now: 0,
            changes: 0,
            sent_as: BTreeMap::new(),
            sent_patch: BTreeMap::new(),
            answered: BTreeSet::new(),
        }
    }

    fn id(&self, seq: u64) -> OpId {
        OpId {
            client: CLIENT.into(),
            seq,
        }
    }

    /// A sequence near the outbox's front: the usual answers and their
    /// neighbours.
    fn seq_near(&self, input: &mut Input) -> u64 {
        let front = self.link.outbox().front().map_or(1, |op| op.id.seq);
        match input.below(4) {
            0 => front,
            1 => front.saturating_sub(1),
            2 => front + 1,
            _ => u64::from(input.byte()),
        }
    }

    /// A version near the held one.
    fn version_near(&self, input: &mut Input) -> u64 {
        let v = self.link.version();
        match input.below(4) {
            0 => v + 1,
            1 => v,
            2 => v + 2 + u64::from(input.byte() % 8),
            _ => v.saturating_sub(u64::from(input.byte() % 4)),
        }
    }

    fn frame(&mut self, input: &mut Input) -> (Vec<u8>, Allowed) {
        let mut allowed = Allowed::default();
        let msg = match input.below(11) {
            0 => {
                let version = self.version_near(input);
                let applied_seq = self.seq_near(input);
                allowed.upto = applied_seq;
                let catch_up = match input.below(3) {
                    0 => CatchUp::UpToDate,
                    1 => {
                        let n = input.below(4) as u64;
                        let from = self.link.version() + 1;
                        let patches = (from..from + n)
                            .map(|v| LoggedPatch {
                                version: v,
                                patch: input.object(2),
                                status: None,
                                op: None,
                            })
                            .collect();
                        CatchUp::Patches { patches }
                    }
                    _ => {
                        allowed.version_back = true;
                        CatchUp::Snapshot {
                            state: input.object(2),
                        }
                    }
                };
                Message::Welcome(Welcome {
                    protocol: PROTOCOL_VERSION,
                    version,
                    status: input.string(),
                    expires_at: input.u64(),
                    heartbeat_ms: u64::from(input.u16()),
                    applied_seq,
                    server_time: 0,
                    catch_up,
                })
            }
            1 => {
                let seq = self.seq_near(input);
                allowed.one = Some(seq);
                Message::Ack(Ack {
                    id: self.id(seq),
                    version: self.version_near(input),
                    duplicate: input.one_in(4),
                    rebased: input.one_in(2),
                })
            }
            2 => {
                let seq = self.seq_near(input);
                allowed.one = Some(seq);
                let current = input.one_in(2).then(|| Current {
                    version: self.version_near(input),
                    status: input.string(),
                    state: input.object(2).into(),
                });
                let code = input.pick(&CODES);
                Message::Reject(Reject {
                    id: self.id(seq),
                    code: code.into(),
                    message: "m".into(),
                    current,
                })
            }
            3 => Message::Patch(LoggedPatch {
                version: self.version_near(input),
                patch: input.value(2),
                status: input.one_in(2).then(|| input.string()),
                op: None,
            }),
            4 => Message::Ping(protocol::Ping {
                ts: u64::from(input.u32()),
            }),
            5 => Message::Pong(protocol::Pong {
                ts: self.now.saturating_sub(u64::from(input.u16())),
                server_ts: 0,
            }),
            6 => {
                let code = input.pick(&CODES);
                allowed.version_back = code == "VERSION_AHEAD";
                Message::Error(ErrorFrame {
                    code: code.into(),
                    message: "m".into(),
                    retryable: input.one_in(2),
                })
            }
            7 => Message::Bye(protocol::Bye {
                reason: input.one_in(2).then(|| input.pick(&CODES).to_string()),
            }),
            8 => Message::Ended(protocol::Ended {
                status: input.string(),
                code: input.pick(&CODES).into(),
                version: self.version_near(input),
                message: "m".into(),
            }),
            9 => Message::Extended(protocol::Extended {
                expires_at: input.u64(),
            }),
            _ => {
                let n = input.below(64);
                return (input.bytes(n).to_vec(), allowed);
            }
        };
        (protocol::encode(&msg).into_bytes(), allowed)
    }

    fn step(&mut self, input: &mut Input) {
        let before = carried(&self.link);
        let version_before = self.link.version();
        let mut allowed = Allowed::default();
        let now = self.now;
        match input.below(12) {
            0 => self.link.handle_open(now),
            1 => {
                let t = input.pick(&[Transport::WebSocket, Transport::Http]);
                self.link.handle_connected(t, now);
            }
            // The transport, or the standby of the race, ends.
            2 if input.one_in(3) => self.link.handle_standby_closed(now),
            2 => self.link.handle_closed(now),
            3 => self.link.handle_online(input.one_in(2), now),
            4 => self.link.handle_visible(input.one_in(2), now),
            5 => {
                // A timer: at its deadline, late, or early.
                self.now = match (input.below(3), self.link.poll_timeout()) {
                    (0, Some(t)) => t.max(now),
                    (1, Some(t)) => t.max(now) + u64::from(input.u16()),
                    _ => now + u64::from(input.byte()),
                };
                self.link.handle_timeout(self.now);
            }
            6 | 7 => {
                let i = self.changes;
                self.changes += 1;
                let to = input.one_in(4).then(|| input.string());
                let patch = json!({"c": {format!("k{i}"): i}});
                self.link.submit(patch, to, now).expect("an object patch");
            }
            8 => {
                let mut patch = input.value(1);
                // `c` holds the tracked changes: a page's later change to
                // them would replace them, as merge patches do.
                if let Some(o) = patch.as_object_mut() {
                    o.remove("c");
                }
                let e = self.link.submit(patch, None, now);
                // Objects are ops (with no change index); the rest are refused.
                if let Err(e) = e {
                    assert_eq!(e.code(), "PROTOCOL_ERROR");
                }
            }
            9 | 10 => {
                let (frame, a) = self.frame(input);
                allowed = a;
                self.now += u64::from(input.byte());
                self.link.handle_frame(&frame, self.now);
            }
            _ => self.reload(),
        }
        self.drain();
        // Nothing leaves the outbox without an answer for its op.
        let after = carried(&self.link);
        for (i, seq) in &before {
            if !after.contains_key(i) {
                assert!(
                    *seq <= allowed.upto || allowed.one == Some(*seq),
                    "change {i} (op {seq}) left the outbox unanswered"
                );
                self.answered.insert(*i);
            }
        }
        for i in 0..self.changes {
            assert!(
                after.contains_key(&i) || self.answered.contains(&i),
                "change {i} is neither in the outbox nor answered"
            );
        }
        // The version only grows, but for a server that lost changes.
        assert!(
            self.link.version() >= version_before || allowed.version_back,
            "version went back from {version_before} to {}",
            self.link.version()
        );
    }

    /// A page reload: a new link from the record, as the driver stores it.
    fn reload(&mut self) {
        let text = self.link.record();
        let record = LinkRecord::decode(text.as_bytes(), CLIENT).expect("the record reads back");
        assert_eq!(record.version, self.link.version());
        assert_eq!(&record.confirmed, self.link.confirmed());
        assert!(record.outbox.iter().eq(self.link.outbox().iter()));
        self.seed = self.seed.wrapping_add(1);
        self.link = Link::resume(config(self.seed), record);
    }

    fn drain(&mut self) {
        while let Some(t) = self.link.poll_transmit() {
            let Transmit::Send(frame) = t else {
                continue;
            };
            let msg = protocol::decode(frame.as_bytes(), usize::MAX).expect("a sent frame decodes");
            let Message::Op(op) = msg else {
                continue;
            };
            assert_eq!(op.id.client, CLIENT);
            // No op under two ids: an id always carries the same patch, a
            // change is always sent under the same id.
            match self.sent_patch.get(&op.id.seq) {
                Some(p) => assert_eq!(p, &op.patch, "op {} sent with two patches", op.id.seq),
                None => {
                    self.sent_patch.insert(op.id.seq, op.patch.clone());
                }
            }
            for i in indices(&op.patch) {
                let seq = *self.sent_as.entry(i).or_insert(op.id.seq);
                assert_eq!(
                    seq, op.id.seq,
                    "change {i} sent as op {seq} and as op {}",
                    op.id.seq
                );
            }
        }
        while self.link.poll_event().is_some() {}
        if matches!(self.link.state(), LinkState::Stopped { .. }) {
            // A stopped link is dropped by its page; the next one resumes
            // from the record.
            self.reload();
        }
    }
}
