//! A test driver for the session engine: an in-memory browser shared by
//! the tabs of a test (each backend's slots and head, localStorage,
//! the link records, the BroadcastChannel) that runs the engine's commands
//! as the browser drivers do, with knobs for failing writes; and helpers
//! that play the server's side of a connection with hand-made frames (the
//! real server engine plays it in `server/tests/session_sim.rs`).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use serde_json::{json, Value};

use super::super::*;
use crate::core::envelope::decode;
use crate::core::protocol::{
    self, Ack, CatchUp, Current, LoggedPatch, Message, OpId, Reject, Welcome, PROTOCOL_VERSION,
};
use crate::core::session::link::{Transmit, Transport};
use crate::core::session::store::{
    BackendKind, ClientId, Head, RescueCopy, StorageCommand, Stored, StoredRead, TabMessage,
    WriteResult,
};
use crate::core::slots::SlotId;

pub const SESSION: &str = "fedcba9876543210fedcba9876543210";
pub const TOKEN: &str = "secret";
pub const OTHER: &str = "00000000000000000000000000000009";

/// One backend's slots and head.
#[derive(Debug, Clone, Default)]
pub struct Slots {
    pub a: Option<Vec<u8>>,
    pub b: Option<Vec<u8>>,
    pub head: Head,
}

/// What every tab of a test sees.
#[derive(Debug, Default)]
pub struct Browser {
    pub slots: HashMap<BackendKind, Slots>,
    pub rescues: BTreeMap<String, (u64, Vec<u8>)>,
    pub marker: Option<String>,
    /// localStorage (keys without `sessile:`).
    pub local: BTreeMap<String, String>,
    /// The link records.
    pub records: BTreeMap<String, String>,
    pub channel: Vec<TabMessage>,
    /// The next record writes fail (one per count).
    pub fail_records: u32,
    /// The next register writes fail with these errors, in order.
    pub fail_register: VecDeque<SessileError>,
}

pub type Shared = Rc<RefCell<Browser>>;

pub fn browser() -> Shared {
    Rc::new(RefCell::new(Browser::default()))
}

impl Browser {
    /// The state stored in `kind`'s newest slot.
    pub fn stored(&self, kind: BackendKind) -> Option<Value> {
        let s = self.slots.get(&kind)?;
        let mut best: Option<(u64, Value)> = None;
        for bytes in [&s.a, &s.b].into_iter().flatten() {
            let snap = decode(bytes, &Default::default()).ok()?;
            let v: Value = serde_json::from_str(&snap.json).ok()?;
            if best.as_ref().is_none_or(|b| snap.meta.state_version > b.0) {
                best = Some((snap.meta.state_version, v));
            }
        }
        best.map(|b| b.1)
    }
}

pub fn client(n: u8) -> ClientId {
    ClientId(format!("{n:032x}"))
}

/// A session of namespace `name` on IndexedDB for client `n`, debounced by 10 ms.
pub fn local_config(name: &str, n: u8) -> SessionConfig {
    let mut c = SessionConfig::new(name, client(n), u64::from(n));
    c.store.storage = Some(BackendKind::IndexedDb);
    c.store.debounce_ms = 10;
    c.store.initial = json!({"cart": {}});
    c
}

/// The same, synced with a server.
pub fn synced_config(name: &str, n: u8) -> SessionConfig {
    let options = json!({"name": name, "server": {"http": "http://server"}});
    let mut c = local_config(name, n);
    c.sync = SessionConfig::from_options(&options, client(n), 0)
        .unwrap()
        .sync;
    c
}

/// One tab: a session engine and the driver running it on the browser.
pub struct Page {
    pub engine: SessionEngine,
    pub browser: Shared,
    pub now: u64,
    pub events: Vec<SessionEvent>,
    pub completions: HashMap<RequestId, Result<Outcome, Failure>>,
    /// Frames sent, parsed.
    pub sent: Vec<Value>,
    pub opened: Vec<Transport>,
    pub closes: usize,
    pub calls: Vec<(CallId, ServerCall)>,
    pub released: Vec<bool>,
    pub tab_storage: BTreeMap<String, String>,
    /// Record writes wait here while set (a slow disk).
    pub hold_records: bool,
    pub held_records: usize,
    /// Every command, in order, as a short name (for order checks).
    pub log: Vec<String>,
    pub heard: usize,
}

impl Page {
    /// Opens a tab with `config` at `now`, reading what the browser holds.
    pub fn open(browser: &Shared, config: SessionConfig, now: u64) -> Page {
        Self::open_with(browser, config, now, |_| {})
    }

    /// [`open`](Self::open), with what was found changed by `edit`.
    pub fn open_with(
        browser: &Shared,
        config: SessionConfig,
        now: u64,
        edit: impl FnOnce(&mut Found),
    ) -> Page {
        let name = config.store.name.clone();
        let me = config.store.client.0.clone();
        let found = {
            let b = browser.borrow();
            let prefix = [name.as_str(), ":pending:"].concat();
            Found {
                session: b.local.get(&[name.as_str(), ":server"].concat()).cloned(),
                lifecycle: b
                    .local
                    .get(&[name.as_str(), ":lifecycle"].concat())
                    .cloned(),
                record: b
                    .records
                    .get(&[name.as_str(), ":link:", me.as_str()].concat())
                    .cloned(),
                fallback: b.local.get(&[name.as_str(), ":fallback"].concat()).cloned(),
                offline: false,
                register: b
                    .local
                    .iter()
                    .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
                    .collect(),
            }
        };
        let mut found = found;
        edit(&mut found);
        let heard = browser.borrow().channel.len();
        let engine = SessionEngine::new(config, found, now).expect("valid config");
        let mut page = Page {
            engine,
            browser: browser.clone(),
            now,
            events: Vec::new(),
            completions: HashMap::new(),
            sent: Vec::new(),
            opened: Vec::new(),
            closes: 0,
            calls: Vec::new(),
            released: Vec::new(),
            tab_storage: BTreeMap::new(),
            hold_records: false,
            held_records: 0,
            log: Vec::new(),
            heard,
        };
        page.run();
        page
    }

    /// Runs every command and drains every output until the engine waits.
    pub fn run(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(c) = self.engine.poll_command() {
                progressed = true;
                self.execute(c);
            }
            while let Some(t) = self.engine.poll_transmit() {
                progressed = true;
                match t {
                    Transmit::Open(kind) => {
                        self.log.push("open".into());
                        self.opened.push(kind);
                    }
                    Transmit::Send(frame) => {
                        self.log.push("send".into());
                        self.sent.push(serde_json::from_str(&frame).unwrap());
                    }
                    Transmit::Close => self.closes += 1,
                    other => self.log.push(format!("{other:?}")),
                }
            }
            while let Some(e) = self.engine.poll_event() {
                progressed = true;
                self.events.push(e);
            }
            while let Some(m) = self.engine.poll_announcement() {
                progressed = true;
                self.browser.borrow_mut().channel.push(m);
            }
            while let Some(done) = self.engine.poll_completion() {
                progressed = true;
                self.completions.insert(done.id, done.result);
            }
            if !progressed {
                return;
            }
        }
    }

    fn execute(&mut self, command: SessionCommand) {
        let now = self.now;
        match command {
            SessionCommand::Store(c) => self.storage(c),
            SessionCommand::WriteRecord { key, text } => {
                self.log.push("record".into());
                if self.hold_records {
                    self.held_records += 1;
                    self.browser.borrow_mut().records.insert(key, text);
                    return;
                }
                let fail = {
                    let mut b = self.browser.borrow_mut();
                    if b.fail_records > 0 {
                        b.fail_records -= 1;
                        true
                    } else {
                        b.records.insert(key, text);
                        false
                    }
                };
                let result = if fail {
                    Err(SessileError::QuotaExceeded { bytes: 1 })
                } else {
                    Ok(())
                };
                self.engine.handle_record_stored(result, now);
            }
            SessionCommand::RemoveRecord { key } => {
                self.browser.borrow_mut().records.remove(&key);
            }
            SessionCommand::Remember { scope, key, value } => {
                let mut b = self.browser.borrow_mut();
                let map = match scope {
                    Scope::Local => &mut b.local,
                    _ => &mut self.tab_storage,
                };
                match value {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
            SessionCommand::WriteRegister { key, value } => {
                self.log.push("register".into());
                let failure = self.browser.borrow_mut().fail_register.pop_front();
                let result = match failure {
                    Some(e) => Err(e),
                    None => {
                        let mut b = self.browser.borrow_mut();
                        match value {
                            Some(v) => b.local.insert(key, v),
                            None => b.local.remove(&key),
                        };
                        Ok(())
                    }
                };
                self.engine.handle_register_written(result, now);
            }
            SessionCommand::Call { id, call } => {
                self.log.push("call".into());
                self.calls.push((id, call));
            }
            SessionCommand::ReleaseClient { forget } => self.released.push(forget),
        }
    }

    fn storage(&mut self, command: StorageCommand) {
        let now = self.now;
        let kind = self.engine.diagnostics().store.backend;
        let mut b = self.browser.borrow_mut();
        match command {
            StorageCommand::Open(_) => {
                drop(b);
                self.engine.handle_backend_opened(Ok(()), now);
            }
            StorageCommand::Read { rescues } => {
                let s = b.slots.entry(kind.unwrap()).or_default().clone();
                let stored = |x: Option<Vec<u8>>| x.map_or(Stored::Missing, Stored::Bytes);
                let read = StoredRead {
                    a: stored(s.a),
                    b: stored(s.b),
                    head: s.head,
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
                drop(b);
                self.engine.handle_read(Ok(read), now);
            }
            StorageCommand::WriteSlot {
                slot,
                base,
                head,
                bytes,
            } => {
                let s = b.slots.entry(kind.unwrap()).or_default();
                let result = if s.head.version != base {
                    WriteResult::Refused {
                        head: s.head.version,
                    }
                } else {
                    match slot {
                        SlotId::A => s.a = Some(bytes),
                        _ => s.b = Some(bytes),
                    }
                    s.head = head;
                    WriteResult::Stored
                };
                drop(b);
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
                let s = b.slots.entry(kind.unwrap()).or_default();
                let tombstone = at_least.max(s.head.version + 1);
                *s = Slots {
                    head: Head::at(tombstone),
                    ..Slots::default()
                };
                drop(b);
                self.engine.handle_cleared(Ok(tombstone), now);
            }
        }
    }

    /// The tab hears the other tabs' messages and register entries.
    pub fn hear(&mut self) {
        let me = self.engine.client().clone();
        let messages: Vec<TabMessage> = self.browser.borrow().channel[self.heard..].to_vec();
        self.heard += messages.len();
        for m in messages {
            let from = match &m {
                TabMessage::Stored { from, .. } | TabMessage::Cleared { from, .. } => from.clone(),
            };
            if from != me {
                self.engine.handle_tab_message(m, self.now);
                self.run();
            }
        }
    }

    /// The tab hears another client's register entry as it is now.
    pub fn hear_register(&mut self, name: &str, client: &str) {
        let key = [name, ":pending:", client].concat();
        let text = self.browser.borrow().local.get(&key).cloned();
        self.engine
            .handle_register_entry(client, text.as_deref(), self.now);
        self.run();
    }

    /// Moves the clock to `now`, firing the timer as often as it comes due.
    pub fn advance(&mut self, now: u64) {
        self.now = now;
        for _ in 0..1000 {
            match self.engine.poll_timeout() {
                Some(at) if at <= now => {
                    self.engine.handle_timeout(now);
                    self.run();
                }
                _ => break,
            }
        }
    }

    /// The connection drops and the link opens the next one (after its
    /// backoff); returns the transport it opens.
    pub fn reconnect(&mut self) -> Transport {
        let opened = self.opened.len();
        self.engine.handle_closed(self.now);
        self.run();
        while self.opened.len() == opened {
            let at = self.engine.poll_timeout().expect("a retry is due");
            self.advance(at);
        }
        *self.opened.last().unwrap()
    }

    /// The events of one kind, as their debug text's first word.
    pub fn kinds(&self) -> Vec<String> {
        self.events
            .iter()
            .map(|e| {
                let t = format!("{e:?}");
                t.split([' ', '(', '{']).next().unwrap().to_string()
            })
            .collect()
    }

    pub fn update(&mut self, patch: Value) -> u64 {
        let v = self.engine.update(&patch, None, self.now).expect("update");
        self.run();
        v
    }

    pub fn result(&self, id: RequestId) -> Option<Result<Outcome, Failure>> {
        self.completions.get(&id).cloned()
    }

    /// The open transport connected.
    pub fn connected(&mut self, transport: Transport) {
        self.engine.handle_connected(transport, self.now);
        self.run();
    }

    pub fn frame(&mut self, msg: Message) {
        let text = protocol::encode(&msg);
        self.engine.handle_frame(text.as_bytes(), self.now);
        self.run();
    }

    /// Answers the creation request with session [`SESSION`].
    pub fn created(&mut self, expires_at: u64) {
        let (id, _) = self.take_call(|c| matches!(c, ServerCall::Create { .. }));
        let answer = json!({"id": SESSION, "token": TOKEN, "status": "cart", "expiresAt": expires_at, "version": 1});
        self.engine.handle_call_result(id, Ok(answer), self.now);
        self.run();
    }

    /// Removes and returns the first call matching `which`.
    pub fn take_call(&mut self, which: impl Fn(&ServerCall) -> bool) -> (CallId, ServerCall) {
        let at = self
            .calls
            .iter()
            .position(|(_, c)| which(c))
            .expect("the call was made");
        self.calls.remove(at)
    }

    /// The ops sent so far, parsed.
    pub fn ops(&self) -> Vec<Value> {
        self.sent
            .iter()
            .filter(|f| f["type"] == "op")
            .cloned()
            .collect()
    }
}

pub fn welcome(version: u64, applied_seq: u64, catch_up: CatchUp) -> Message {
    Message::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        version,
        status: "cart".into(),
        expires_at: 9_000_000,
        heartbeat_ms: 5_000,
        applied_seq,
        server_time: 0,
        catch_up,
    })
}

pub fn ack(client: &ClientId, seq: u64, version: u64) -> Message {
    Message::Ack(Ack {
        id: OpId {
            client: client.0.clone(),
            seq,
        },
        version,
        duplicate: false,
        rebased: false,
    })
}

pub fn patch(version: u64, patch: Value, op: Option<(&str, u64)>) -> Message {
    Message::Patch(LoggedPatch {
        version,
        patch,
        status: None,
        op: op.map(|(client, seq)| OpId {
            client: client.into(),
            seq,
        }),
    })
}

pub fn conflict(client: &ClientId, seq: u64, version: u64, state: Value) -> Message {
    Message::Reject(Reject {
        id: OpId {
            client: client.0.clone(),
            seq,
        },
        code: "VERSION_CONFLICT".into(),
        message: "changed meanwhile".into(),
        current: Some(Current {
            version,
            status: "cart".into(),
            state: std::sync::Arc::new(state),
        }),
    })
}

/// A synced tab whose session was created (holding `{"cart": {}}`) and
/// whose WebSocket is connected and welcomed at version 1.
pub fn synced_page(browser: &Shared, name: &str, n: u8) -> Page {
    let mut p = Page::open(browser, synced_config(name, n), 1_000);
    p.created(9_000_000);
    p.connected(Transport::WebSocket);
    p.frame(welcome(1, 0, CatchUp::UpToDate));
    p
}
