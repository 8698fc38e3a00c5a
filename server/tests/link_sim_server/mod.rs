//! The server side of the link simulation (`../link_sim.rs`): the real
//! session engine ([`Sessions`] on the in-memory store) over a store that
//! outlives restarts, with the transport layer's part played here.

use std::collections::VecDeque;

use serde_json::{json, Value};
use sessile::core::protocol::{self, ErrorFrame, Message, Op, OpId, Pong, DEFAULT_MAX_FRAME_BYTES};
use sessile::core::session::link::Transport;
use sessile_server::engine::Push;
use sessile_server::sessions::{CreateRequest, Limits, Sessions};
use sessile_server::store::MemoryStore;

/// The page's client id.
pub const CLIENT: &str = "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47";
/// Another writer of the session (another device, the shop's back office).
const OTHER: &str = "00000000000000000000000000000001";
/// The heartbeat interval the server tells clients, ms.
pub const HB: u64 = 5_000;
/// The server's clock at the simulation's time 0: a date in 2023, in ms.
const START_MS: u64 = 1_700_000_000_000;

fn limits() -> Limits {
    Limits {
        max_state_bytes: sessile::core::envelope::DEFAULT_MAX_RAW_BYTES,
        max_sessions_per_key: 10,
        heartbeat_ms: HB,
        stale_warning_secs: 15 * 60,
        stale_secs: 20 * 60,
        retention_secs: 3_600,
        audit_retention_secs: 7_200,
    }
}

/// The server side: the real session engine over a store that outlives
/// restarts (as the SQLite file does), with the transport layer's part
/// played here (`hello` first on a WebSocket, pings answered, pushes
/// forwarded to every connection but the one whose op made them).
pub struct Server {
    pub store: MemoryStore,
    pub sessions: Sessions,
    pub up: bool,
    pub session: String,
    pub token: String,
    /// The client's op patches in the order the engine applied them.
    pub applied: Vec<Value>,
    pub other_seq: u64,
    pub other: u64,
}

impl Server {
    pub fn new() -> Self {
        let store = MemoryStore::default();
        let mut sessions = Sessions::new(Box::new(store.clone()), limits());
        // The longest TTL: a run's simulated hours must not expire it.
        let req = CreateRequest {
            ttl_seconds: Some(24 * 60 * 60),
            ..CreateRequest::default()
        };
        let created = sessions.create(req, START_MS).expect("create");
        sessions.commit_batch().expect("commit");
        Server {
            store,
            sessions,
            up: true,
            session: created.id,
            token: created.token,
            applied: Vec::new(),
            other_seq: 0,
            other: 0,
        }
    }

    /// A restart: a new engine over the same store (nothing uncommitted
    /// exists: every batch commits before it answers).
    pub fn restart(&mut self) {
        self.sessions = Sessions::new(Box::new(self.store.clone()), limits());
        self.up = true;
    }

    pub fn version_and_state(&mut self, now: u64) -> (u64, Value) {
        let view = self
            .sessions
            .get(&self.session, &self.token, START_MS + now)
            .expect("the session is readable");
        (view.version, view.state)
    }

    /// A change by someone else, made on the current version.
    pub fn write_other(&mut self, now: u64) {
        self.other += 1;
        self.other_seq += 1;
        let n = self.other;
        let (base, _) = self.version_and_state(now);
        let op = Op {
            id: OpId {
                client: OTHER.into(),
                seq: self.other_seq,
            },
            base,
            patch: json!({"o": {"last": n, format!("k{}", n % 7): n}}),
            to: None,
        };
        let answer = self.sessions.op(&self.session, op, START_MS + now);
        assert!(
            matches!(answer, Ok(Message::Ack(ref a)) if !a.duplicate),
            "other writer: {answer:?}"
        );
    }

    /// Answers to one client frame on a connection (before the commit).
    pub fn handle(&mut self, frame: &str, conn: &mut Conn, now: u64) -> Vec<Message> {
        // A frame the server could not read fails the run.
        let msg =
            protocol::decode(frame.as_bytes(), DEFAULT_MAX_FRAME_BYTES).expect("client frame");
        let at = START_MS + now;
        match msg {
            Message::Hello(h) => {
                conn.hello_done = true;
                vec![match self.sessions.hello(&h, at) {
                    Ok(w) => Message::Welcome(w),
                    Err(e) => Message::Error(ErrorFrame::from(&e)),
                }]
            }
            // The HTTP fallback authenticates every request: no hello needed.
            Message::Op(_) if !conn.hello_done && conn.transport == Transport::WebSocket => {
                vec![Message::Error(ErrorFrame {
                    code: "PROTOCOL_ERROR".into(),
                    message: "hello first".into(),
                    retryable: false,
                })]
            }
            Message::Op(op) => {
                let patch = op.patch.clone();
                let answer = match self.sessions.op(&self.session, op, at) {
                    Ok(m) => m,
                    Err(e) => Message::Error(ErrorFrame::from(&e)),
                };
                if let Message::Ack(a) = &answer {
                    if !a.duplicate && a.id.client == CLIENT {
                        self.applied.push(patch);
                    }
                }
                vec![answer]
            }
            Message::Ping(p) => vec![Message::Pong(Pong {
                ts: p.ts,
                server_ts: at,
            })],
            _ => Vec::new(),
        }
    }

    /// Commits the batch; what to push to the session's connections.
    pub fn commit(&mut self) -> Vec<Push> {
        let (result, pushes) = self.sessions.commit_batch_and_pushes();
        result.expect("the memory store commits");
        pushes.into_iter().map(|(_, p)| p).collect()
    }
}

pub struct Conn {
    pub id: u64,
    pub c2s: VecDeque<(u64, String)>,
    pub s2c: VecDeque<(u64, String)>,
    pub c2s_dead: bool,
    pub s2c_dead_since: Option<u64>,
    pub hello_done: bool,
    pub transport: Transport,
}
