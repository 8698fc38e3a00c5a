//! Target `client_session`: the client session engine
//! (`src/core/session/engine`: the store, the link and the session's own
//! decisions) fed an arbitrary sequence of inputs as a browser driver
//! would give them: page calls (changes, status steps, flush, extend,
//! validate, close), storage results (slot writes stored, refused by a
//! newer head or failing; link record writes that fail; reads that fail),
//! transports opening, closing and failing (the race's standby WebSocket
//! too), timers firing (on time, late, early), online and offline,
//! visibility and `pagehide`, answers to its HTTP calls (or failures),
//! frames from a server, and page reloads (a crash: a new engine from what
//! the browser stored).
//!
//! The server is a model (`Server` below) so that what the engine is told
//! is consistent: each op it sends is answered in order (acked and applied,
//! refused as a conflict, acked again as a duplicate, or refused as out of
//! order), its `hello` gets a welcome with patches or a snapshot of the
//! model's state, other clients change keys of their own; beside those
//! come pings, pongs, errors, `bye`, `extended` and raw bytes.
//!
//! Input: one action per byte (and the bytes it reads for its choices).
//! Page change `i` sets the key `k<i>` under `c`, so every op names the
//! changes it carries.
//!
//! Page crashes are played at any point, right after a failed link record
//! write too: the engine sends ops whose record could not be stored (they
//! are in memory and in the page's state), and a page reloaded from the
//! older record holds its changes until the `welcome` says which ops the
//! server processed, then numbers them above (docs/FUZZING.md). Held
//! changes of such a record that the server already applied are not sent
//! again (found here; `tracking.rs` has the test).
//!
//! Asserts after every action: no op is sent under two ids (an id always
//! carries the same patch, and a change is sent again under a new id only
//! after the server refused the op that carried it; the ops a crashed page
//! sent that the server never processed died with it, their ids free); an
//! op the server answers again (a duplicate) carries the patch it processed
//! under that number (else its change is lost); nothing acknowledged
//! is lost (once synced, the page's state holds every change the server
//! applied); versions only grow (the page's version within one engine,
//! and the server version the link holds); nothing panics.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde_json::{json, Value};
use sessile::core::error::SessileError;
use sessile::core::merge_patch;
use sessile::core::protocol::{
    self, Ack, CatchUp, Current, ErrorFrame, LoggedPatch, Message, Op, OpId, Reject, Welcome,
    PROTOCOL_VERSION,
};
use sessile::core::session::engine::{
    EnginePhase, Failure, Found, Scope, ServerCall, SessionCommand, SessionConfig, SessionEngine,
};
use sessile::core::session::link::{Transmit, Transport};
use sessile::core::session::store::{
    ClientId, Head, RescueCopy, StorageCommand, Stored, StoredRead, WriteResult,
};
use sessile::core::slots::SlotId;

use crate::input::Input;

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "fedcba9876543210fedcba9876543210";
const TOKEN: &str = "secret-token";
const NS: &str = "fz";
/// The clock at the start: a date in 2023, in ms.
const START_MS: u64 = 1_700_000_000_000;
/// Versions of patches the model keeps for catch-ups (as the server's 64).
const LOG: usize = 64;

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let _ = run(data);
}

/// Whether to print each input and output (`SESSILE_FUZZ_TRACE=1`), to
/// read what a crashing input did.
fn tracing() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SESSILE_FUZZ_TRACE").is_some())
}

macro_rules! trace {
    ($($arg:tt)*) => {
        if tracing() {
            eprintln!($($arg)*);
        }
    };
}

fn run(data: &[u8]) -> Harness {
    let mut input = Input::new(data);
    let mut h = Harness::new();
    while !input.is_empty() {
        h.step(&mut input);
    }
    h
}

/// The server's side of the one session, as far as this client sees it.
#[derive(Debug)]
struct Server {
    version: u64,
    state: Value,
    status: String,
    /// Patches by version, the last `LOG`.
    log: VecDeque<LoggedPatch>,
    /// The highest sequence of this client answered (applied or refused).
    last_seq: u64,
    /// Each sequence answered: the version it was applied at, or `None`
    /// for refused.
    answered: BTreeMap<u64, Option<u64>>,
    /// The patch each answered sequence carried.
    patches: BTreeMap<u64, Value>,
    others: u64,
}

impl Server {
    fn new() -> Self {
        Server {
            version: 1,
            state: json!({}),
            status: "active".into(),
            log: VecDeque::new(),
            last_seq: 0,
            answered: BTreeMap::new(),
            patches: BTreeMap::new(),
            others: 0,
        }
    }

    fn apply(&mut self, patch: Value, op: Option<OpId>) -> u64 {
        merge_patch::apply(&mut self.state, &patch);
        self.version += 1;
        self.log.push_back(LoggedPatch {
            version: self.version,
            patch,
            status: None,
            op,
        });
        if self.log.len() > LOG {
            self.log.pop_front();
        }
        self.version
    }

    fn welcome(&self, have: u64, patches: bool) -> Message {
        let since: Vec<LoggedPatch> = self
            .log
            .iter()
            .filter(|p| p.version > have)
            .cloned()
            .collect();
        let reaches = since.first().is_some_and(|p| p.version == have + 1);
        let catch_up = if have == self.version {
            CatchUp::UpToDate
        } else if patches && have < self.version && reaches {
            CatchUp::Patches { patches: since }
        } else {
            CatchUp::Snapshot {
                state: self.state.clone(),
            }
        };
        Message::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            version: self.version,
            status: self.status.clone(),
            expires_at: START_MS + 86_400_000,
            heartbeat_ms: 5_000,
            applied_seq: self.last_seq,
            server_time: 0,
            catch_up,
        })
    }

    fn current(&self) -> Current {
        Current {
            version: self.version,
            state: std::sync::Arc::new(self.state.clone()),
            status: self.status.clone(),
        }
    }
}

/// What the browser holds for the origin.
#[derive(Debug, Default)]
struct Browser {
    a: Option<Vec<u8>>,
    b: Option<Vec<u8>>,
    head: Head,
    rescues: BTreeMap<String, (u64, Vec<u8>)>,
    marker: Option<String>,
    /// localStorage and sessionStorage, keys without `sessile:`.
    local: BTreeMap<String, String>,
    tab: BTreeMap<String, String>,
    record: Option<String>,
}

struct Harness {
    engine: SessionEngine,
    browser: Browser,
    server: Server,
    now: u64,
    seed: u64,
    /// The transport opening or open, and the standby of the race.
    opening: Option<Transport>,
    open: Option<Transport>,
    standby_opening: bool,
    /// A `hello` sent on the open transport, not answered yet.
    hello: Option<u64>,
    /// Ops sent on the open transport, not answered yet.
    inflight: VecDeque<Op>,
    calls: VecDeque<(sessile::core::session::engine::CallId, ServerCall)>,
    /// Page changes made.
    changes: u64,
    /// Each change sent so far: the sequence it was last sent under.
    sent_as: BTreeMap<u64, u64>,
    /// Each sequence sent: the patch it carried.
    sent_patch: BTreeMap<u64, Value>,
    /// Sequences the server refused: their changes may go again.
    refused: BTreeSet<u64>,
    /// Changes the server applied.
    applied: BTreeSet<u64>,
    /// The page's version, and the server version the link held, last seen.
    page_version: u64,
    server_version: u64,
    /// A welcome was taken since this engine started.
    synced: bool,
    /// Storage results the input decides, one per command.
    fail_writes: bool,
    fail_records: bool,
    /// Races of a slow WebSocket, and standbys that took over.
    races: u64,
    promoted: u64,
}

fn config(seed: u64) -> SessionConfig {
    let options = json!({
        "name": NS, "storage": "indexeddb", "initial": {}, "ttlSeconds": 86_400,
        "server": {"http": "http://fuzz.example", "session": {"id": SESSION, "token": TOKEN}},
    });
    let mut c =
        SessionConfig::from_options(&options, ClientId(CLIENT.into()), seed).expect("good options");
    if let Some(sync) = c.sync.as_mut() {
        sync.link.outbox_limit = 4;
    }
    c
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
    fn new() -> Self {
        let browser = Browser::default();
        let engine = Self::open(&browser, 0, START_MS);
        let mut h = Harness {
            engine,
            browser,
            server: Server::new(),
            now: START_MS,
            seed: 0,
            opening: None,
            open: None,
            standby_opening: false,
            hello: None,
            inflight: VecDeque::new(),
            calls: VecDeque::new(),
            changes: 0,
            sent_as: BTreeMap::new(),
            sent_patch: BTreeMap::new(),
            refused: BTreeSet::new(),
            applied: BTreeSet::new(),
            page_version: 0,
            server_version: 0,
            synced: false,
            fail_writes: false,
            fail_records: false,
            races: 0,
            promoted: 0,
        };
        h.drain();
        h
    }

    fn open(browser: &Browser, seed: u64, now: u64) -> SessionEngine {
        let found = Found {
            session: browser.local.get(&[NS, ":server"].concat()).cloned(),
            lifecycle: browser.local.get(&[NS, ":lifecycle"].concat()).cloned(),
            record: browser.record.clone(),
            fallback: browser.local.get(&[NS, ":fallback"].concat()).cloned(),
            offline: false,
            register: Vec::new(),
        };
        SessionEngine::new(config(seed), found, now).expect("the engine opens")
    }

    /// A crash and a new page load from what the browser stored.
    fn reload(&mut self) {
        trace!("  reload; record {:?}", self.browser.record);
        self.seed += 1;
        self.engine = Self::open(&self.browser, self.seed, self.now);
        self.opening = None;
        self.open = None;
        self.standby_opening = false;
        self.hello = None;
        self.inflight.clear();
        // The ops the crashed page sent that the server never processed
        // died with it: their numbers may carry other changes now.
        let done = self.server.last_seq;
        self.sent_patch.retain(|seq, _| *seq <= done);
        self.sent_as.retain(|_, seq| *seq <= done);
        self.calls.clear();
        self.page_version = 0;
        self.server_version = 0;
        self.synced = false;
    }

    fn send_frame(&mut self, msg: &Message) {
        let frame = protocol::encode(msg);
        trace!("  frame in {frame}");
        self.engine.handle_frame(frame.as_bytes(), self.now);
    }

    fn step(&mut self, input: &mut Input) {
        let now = self.now;
        let action = input.below(16);
        trace!("@{} action {action}", now - START_MS);
        match action {
            0 | 1 => {
                let i = self.changes;
                let patch = json!({"c": {format!("k{i}"): i}});
                let to = input.one_in(8).then_some("done");
                if self.engine.update(&patch, to, now).is_ok() {
                    self.changes += 1;
                }
            }
            2 => {
                // A transport opens, or fails to: the one opening, or the
                // standby of the race.
                if self.standby_opening && (self.opening.is_none() || input.one_in(2)) {
                    self.standby_opening = false;
                    if input.one_in(3) {
                        self.engine.handle_standby_closed(now);
                    } else {
                        self.engine.handle_connected(Transport::WebSocket, now);
                    }
                } else if let Some(t) = self.opening.take() {
                    if input.one_in(3) {
                        self.engine.handle_closed(now);
                    } else {
                        self.open = Some(t);
                        self.engine.handle_connected(t, now);
                    }
                }
            }
            3 => {
                // The open transport drops.
                if self.open.take().is_some() {
                    self.hello = None;
                    self.inflight.clear();
                    self.engine.handle_closed(now);
                }
            }
            4 | 5 => self.answer(input),
            6 => {
                // Another client changes the session.
                self.server.others += 1;
                let n = self.server.others;
                let patch = json!({"o": {format!("x{n}"): n}});
                let version = self.server.apply(patch.clone(), None);
                if self.open.is_some() && self.hello.is_none() && input.one_in(2) {
                    let op = Some(OpId {
                        client: "fedcba9876543210fedcba9876543210".into(),
                        seq: n,
                    });
                    self.send_frame(&Message::Patch(LoggedPatch {
                        version,
                        patch,
                        status: None,
                        op,
                    }));
                }
            }
            7 => {
                // A timer: at its deadline, late, or early.
                self.now = match (input.below(3), self.engine.poll_timeout()) {
                    (0, Some(t)) => t.max(now),
                    (1, Some(t)) => t.max(now) + u64::from(input.u16()),
                    _ => now + u64::from(input.byte()),
                };
                self.engine.handle_timeout(self.now);
            }
            8 => self.engine.handle_online(input.one_in(2), now),
            9 => match input.below(3) {
                0 => self.engine.handle_visible(input.one_in(2), now),
                1 => self.engine.handle_hidden(now),
                _ => self.engine.handle_pagehide(now),
            },
            10 => {
                let _ = match input.below(4) {
                    0 => self.engine.flush(now).map(|_| ()),
                    1 => self.engine.extend(u64::from(input.u16()), now).map(|_| ()),
                    2 => {
                        let _ = self.engine.validate(now);
                        Ok(())
                    }
                    _ => self.engine.close(now).map(|_| ()),
                };
            }
            11 => self.answer_call(input),
            12 => {
                // Storage starts or stops failing.
                self.fail_writes = input.one_in(2);
                self.fail_records = input.one_in(2);
            }
            13 => {
                // Frames no model would send.
                let msg = match input.below(6) {
                    0 => Message::Ping(protocol::Ping { ts: self.now }),
                    1 => Message::Pong(protocol::Pong {
                        ts: now.saturating_sub(u64::from(input.byte())),
                        server_ts: now,
                    }),
                    2 => Message::Error(ErrorFrame {
                        code: "SERVER_BUSY".into(),
                        message: "busy".into(),
                        retryable: true,
                    }),
                    3 => Message::Bye(protocol::Bye { reason: None }),
                    4 => Message::Extended(protocol::Extended {
                        expires_at: START_MS + u64::from(input.u32()),
                    }),
                    _ => {
                        let n = input.below(48);
                        let bytes = input.bytes(n).to_vec();
                        self.engine.handle_frame(&bytes, self.now);
                        return self.after();
                    }
                };
                if matches!(msg, Message::Bye(_) | Message::Error(_)) {
                    self.hello = None;
                    self.inflight.clear();
                }
                self.send_frame(&msg);
            }
            14 => self.now += u64::from(input.u16()),
            _ => self.reload(),
        }
        self.after();
    }

    /// The model answers the oldest thing waiting on the open transport.
    fn answer(&mut self, input: &mut Input) {
        if self.open.is_none() {
            return;
        }
        if let Some(have) = self.hello.take() {
            if have > self.server.version {
                // The model never loses changes: a client ahead of it is a bug.
                panic!(
                    "hello at version {have}, ahead of the server's {}",
                    self.server.version
                );
            }
            let w = self.server.welcome(have, input.one_in(2));
            return self.send_frame(&w);
        }
        let Some(op) = self.inflight.pop_front() else {
            return;
        };
        let seq = op.id.seq;
        let msg = if let Some(done) = self.server.answered.get(&seq) {
            // Answered again as the op processed under that number: another
            // change carried by it would be lost.
            assert_eq!(
                self.server.patches.get(&seq),
                Some(&op.patch),
                "op {seq} repeats a number the server processed with another patch"
            );
            match done {
                Some(version) => Message::Ack(Ack {
                    id: op.id,
                    version: *version,
                    duplicate: true,
                    rebased: false,
                }),
                None => Message::Reject(Reject {
                    id: op.id,
                    code: "VERSION_CONFLICT".into(),
                    message: "refused before".into(),
                    current: Some(self.server.current()),
                }),
            }
        } else if seq != self.server.last_seq + 1 {
            Message::Reject(Reject {
                id: op.id,
                code: "OP_OUT_OF_ORDER".into(),
                message: "out of order".into(),
                current: None,
            })
        } else if input.one_in(5) {
            self.server.last_seq = seq;
            self.server.patches.insert(seq, op.patch.clone());
            self.server.answered.insert(seq, None);
            Message::Reject(Reject {
                id: op.id,
                code: "VERSION_CONFLICT".into(),
                message: "conflict".into(),
                current: Some(self.server.current()),
            })
        } else {
            self.server.last_seq = seq;
            self.server.patches.insert(seq, op.patch.clone());
            let version = self.server.apply(op.patch.clone(), Some(op.id.clone()));
            self.server.answered.insert(seq, Some(version));
            self.applied.extend(indices(&op.patch));
            if let Some(to) = &op.to {
                self.server.status.clone_from(to);
            }
            Message::Ack(Ack {
                id: op.id,
                version,
                duplicate: false,
                rebased: false,
            })
        };
        if let Message::Reject(r) = &msg {
            if r.code == "VERSION_CONFLICT" {
                self.refused.insert(seq);
            }
        }
        self.send_frame(&msg);
    }

    fn answer_call(&mut self, input: &mut Input) {
        let Some((id, call)) = self.calls.pop_front() else {
            return;
        };
        let result = if input.one_in(3) {
            Err(Failure::new(
                "SERVER_UNREACHABLE",
                "the sessile server could not be reached",
                true,
            ))
        } else {
            Ok(match call {
                ServerCall::Extend { .. } => json!({"expiresAt": START_MS + 90_000_000}),
                ServerCall::Validate { .. } => {
                    json!({"valid": true, "expiresAt": START_MS + 86_400_000})
                }
                ServerCall::End { .. } => json!({"status": "ended"}),
                _ => {
                    json!({"id": SESSION, "token": TOKEN, "status": "active", "expiresAt": START_MS + 86_400_000, "version": 1})
                }
            })
        };
        self.engine.handle_call_result(id, result, self.now);
    }

    /// Runs every output, then checks the invariants.
    fn after(&mut self) {
        self.drain();
        let v = self.engine.version();
        assert!(
            v >= self.page_version,
            "page version went back from {} to {v}",
            self.page_version
        );
        self.page_version = v;
        let link = self.engine.diagnostics().link;
        if let Some(d) = &link {
            if d.connections > 0 {
                self.synced = true;
            }
        }
        let connected = link.as_ref().is_some_and(|d| d.transport.is_some());
        let ready = *self.engine.phase() == EnginePhase::Ready;
        if connected && ready && self.synced {
            let state = self.engine.state();
            for i in &self.applied {
                assert_eq!(
                    state["c"][format!("k{i}")],
                    json!(i),
                    "change {i}, applied by the server, is not in the synced state {state}"
                );
            }
        }
    }

    fn drain(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(c) = self.engine.poll_command() {
                progressed = true;
                self.execute(c);
            }
            while let Some(t) = self.engine.poll_transmit() {
                progressed = true;
                self.transmit(t);
            }
            while let Some(e) = self.engine.poll_event() {
                trace!("  event {e:?}");
                progressed = true;
            }
            while self.engine.poll_announcement().is_some() {
                progressed = true;
            }
            while self.engine.poll_completion().is_some() {
                progressed = true;
            }
            if self.engine.poll_migration().is_some() {
                panic!("no migration expected");
            }
            if !progressed {
                return;
            }
        }
    }

    fn transmit(&mut self, t: Transmit) {
        trace!("  transmit {t:?}");
        match t {
            Transmit::Open(kind) => {
                self.open = None;
                self.hello = None;
                self.inflight.clear();
                self.opening = Some(kind);
            }
            Transmit::Send(frame) => self.sent(&frame),
            Transmit::Close => {
                self.opening = None;
                self.open = None;
                self.standby_opening = false;
                self.hello = None;
                self.inflight.clear();
            }
            Transmit::SetAside => {
                assert_eq!(self.opening.take(), Some(Transport::WebSocket), "set aside");
                self.standby_opening = true;
                self.races += 1;
            }
            Transmit::Promote => {
                // The HTTP connection closes; ops in flight on it were
                // answered (the engine waits for that) or never sent.
                self.promoted += 1;
                self.open = Some(Transport::WebSocket);
                self.opening = None;
                self.hello = None;
                self.inflight.clear();
            }
            Transmit::DropStandby => self.standby_opening = false,
            other => panic!("unknown action {other:?}"),
        }
    }

    fn sent(&mut self, frame: &str) {
        let msg = protocol::decode(frame.as_bytes(), usize::MAX).expect("a sent frame decodes");
        if self.open.is_none() {
            return;
        }
        match msg {
            Message::Hello(h) => {
                assert!(
                    h.have_version >= self.server_version,
                    "hello at version {} after {}",
                    h.have_version,
                    self.server_version
                );
                self.server_version = h.have_version;
                self.hello = Some(h.have_version);
                self.inflight.clear();
            }
            Message::Op(op) => {
                assert_eq!(op.id.client, CLIENT);
                let seq = op.id.seq;
                match self.sent_patch.get(&seq) {
                    Some(p) => assert_eq!(p, &op.patch, "op {seq} sent with two patches"),
                    None => {
                        self.sent_patch.insert(seq, op.patch.clone());
                    }
                }
                for i in indices(&op.patch) {
                    match self.sent_as.get(&i) {
                        Some(&s) if s != seq => assert!(
                            self.refused.contains(&s),
                            "change {i} sent as op {s} and again as op {seq}"
                        ),
                        _ => {}
                    }
                    self.sent_as.insert(i, seq);
                }
                self.inflight.push_back(op);
            }
            _ => {}
        }
    }

    fn execute(&mut self, command: SessionCommand) {
        let now = self.now;
        if !matches!(command, SessionCommand::Store(_)) {
            trace!("  command {command:?}");
        }
        match command {
            SessionCommand::Store(c) => self.storage(c),
            SessionCommand::WriteRecord { text, .. } => {
                let result = if self.fail_records {
                    Err(SessileError::QuotaExceeded {
                        bytes: text.len() as u64,
                    })
                } else {
                    self.browser.record = Some(text);
                    Ok(())
                };
                self.engine.handle_record_stored(result, now);
            }
            SessionCommand::RemoveRecord { .. } => self.browser.record = None,
            SessionCommand::Remember { scope, key, value } => {
                let map = if scope == Scope::Local {
                    &mut self.browser.local
                } else {
                    &mut self.browser.tab
                };
                match value {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
            SessionCommand::WriteRegister { key, value } => {
                match value {
                    Some(v) => self.browser.local.insert(key, v),
                    None => self.browser.local.remove(&key),
                };
                self.engine.handle_register_written(Ok(()), now);
            }
            SessionCommand::Call { id, call } => self.calls.push_back((id, call)),
            _ => {}
        }
    }

    fn storage(&mut self, command: StorageCommand) {
        let now = self.now;
        let b = &mut self.browser;
        let stored = |x: &Option<Vec<u8>>| x.clone().map_or(Stored::Missing, Stored::Bytes);
        match command {
            StorageCommand::Open(_) => self.engine.handle_backend_opened(Ok(()), now),
            StorageCommand::Read { rescues } => {
                let read = StoredRead {
                    a: stored(&b.a),
                    b: stored(&b.b),
                    head: b.head.clone(),
                    rescues: if rescues {
                        b.rescues
                            .iter()
                            .map(|(key, (base, bytes))| RescueCopy {
                                key: key.clone(),
                                base: *base,
                                bytes: Stored::Bytes(bytes.clone()),
                            })
                            .collect()
                    } else {
                        Vec::new()
                    },
                    marker: if rescues { b.marker.clone() } else { None },
                };
                self.engine.handle_read(Ok(read), now);
            }
            StorageCommand::WriteSlot {
                slot,
                base,
                head,
                bytes,
            } => {
                let result = if self.fail_writes {
                    WriteResult::Failed {
                        error: SessileError::QuotaExceeded {
                            bytes: bytes.len() as u64,
                        },
                        connection_closed: false,
                    }
                } else if b.head.version != base {
                    WriteResult::Refused {
                        head: b.head.version,
                    }
                } else {
                    match slot {
                        SlotId::A => b.a = Some(bytes),
                        _ => b.b = Some(bytes),
                    }
                    b.head = head;
                    WriteResult::Stored
                };
                self.engine.handle_write_result(result, now);
            }
            StorageCommand::WriteRescue { key, base, bytes } => {
                b.rescues.insert(key, (base, bytes));
            }
            StorageCommand::ForgetRescue { key } => {
                b.rescues.remove(&key);
            }
            StorageCommand::ForgetAllRescues => b.rescues.clear(),
            StorageCommand::WriteMarker { version } => b.marker = Some(version.to_string()),
            StorageCommand::ClearMarker => b.marker = None,
            StorageCommand::Clear { at_least } => {
                let tombstone = at_least.max(b.head.version + 1);
                b.a = None;
                b.b = None;
                b.head = Head::at(tombstone);
                self.engine.handle_cleared(Ok(tombstone), now);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random inputs reach what the target is for: ops the server applied,
    /// conflicts, races and standbys taking over, reloads.
    #[test]
    fn random_inputs_reach_applied_ops_and_the_race() {
        let mut x: u64 = 16;
        let (mut applied, mut refused, mut races, mut promoted) = (0, 0, 0, 0);
        for _ in 0..200 {
            let data: Vec<u8> = (0..600)
                .map(|_| {
                    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
                    let z = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                    (z >> 56) as u8
                })
                .collect();
            if std::env::var_os("SESSILE_FUZZ_DUMP").is_some() {
                std::fs::write("/tmp/client_session.input", &data).unwrap();
            }
            let h = run(&data);
            applied += h.applied.len();
            refused += h.refused.len();
            races += h.races;
            promoted += h.promoted;
        }
        eprintln!("{applied} applied, {refused} refused, {races} races, {promoted} taken over");
        assert!(
            applied > 25 && refused > 5,
            "{applied} applied, {refused} refused"
        );
        assert!(
            races > 10 && promoted > 0,
            "{races} races, {promoted} taken over"
        );
    }
}
