//! A test harness for the store engine: an in-memory storage shared by
//! several tabs (slots and head per backend, localStorage's rescue copies
//! and marker, a broadcast channel) that executes the engine's commands the
//! way the browser drivers do, with knobs for the failures a browser shows
//! (a backend that does not open, a quota, a failed read, a closed
//! connection) and a way to hold a tab's writes, as a lock held by another
//! tab does.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::rc::Rc;

use serde_json::{json, Value};

use super::super::*;
use crate::core::envelope::{decode, encode, EnvelopeConfig, SnapshotMeta};
use crate::core::slots::SlotId;

/// One backend's slots and head.
#[derive(Debug, Clone)]
pub struct Slots {
    pub a: Stored,
    pub b: Stored,
    pub head: Head,
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            a: Stored::Missing,
            b: Stored::Missing,
            head: Head::default(),
        }
    }
}

/// What every tab of the test sees.
#[derive(Debug, Default)]
pub struct World {
    pub backends: HashMap<BackendKind, Slots>,
    /// Rescue copies in localStorage: key → (base, bytes).
    pub rescues: BTreeMap<String, (u64, Stored)>,
    pub marker: Option<String>,
    pub unavailable: HashSet<BackendKind>,
    /// Slot writes larger than this many bytes fail with QUOTA_EXCEEDED.
    pub quota: Option<usize>,
    /// The next read fails with this error.
    pub fail_read: Option<SessileError>,
    /// The next slot write fails as a closed connection.
    pub close_connection: bool,
    /// Every message any tab sent, in order.
    pub channel: Vec<TabMessage>,
    /// Every head version stored, in order (to check it only grows).
    pub heads: Vec<u64>,
    /// Every state stored by a slot write, in order; `None` for a clear.
    pub history: Vec<Option<Value>>,
    /// The last tombstone a clear left, 0 for none.
    pub tombstone: u64,
}

pub type Shared = Rc<RefCell<World>>;

pub fn world() -> Shared {
    Rc::new(RefCell::new(World::default()))
}

impl World {
    pub fn slots(&mut self, kind: BackendKind) -> &mut Slots {
        self.backends.entry(kind).or_default()
    }

    /// The state in `slot` of `kind`, decoded.
    pub fn state_in(&self, kind: BackendKind, slot: SlotId) -> Option<Value> {
        let slots = self.backends.get(&kind)?;
        let stored = if slot == SlotId::A {
            &slots.a
        } else {
            &slots.b
        };
        match stored {
            Stored::Bytes(bytes) => {
                let snap = decode(bytes, &EnvelopeConfig::default()).ok()?;
                serde_json::from_str(&snap.json).ok()
            }
            _ => None,
        }
    }

    /// Puts `state` in `slot` as version `version` and moves the head, as a write does.
    pub fn put(
        &mut self,
        kind: BackendKind,
        slot: SlotId,
        state: &Value,
        version: u64,
        generation: u16,
    ) {
        let bytes = snapshot(state, version, generation, 1);
        let slots = self.slots(kind);
        match slot {
            SlotId::A => slots.a = Stored::Bytes(bytes),
            _ => slots.b = Stored::Bytes(bytes),
        }
        slots.head = Head::at(version);
    }
}

/// A snapshot of `state` as a write stores it.
pub fn snapshot(state: &Value, version: u64, generation: u16, schema: u32) -> Vec<u8> {
    let meta = SnapshotMeta {
        generation,
        schema_version: schema,
        state_version: version,
        modified_at_ms: 1,
    };
    encode(&state.to_string(), &meta, &EnvelopeConfig::default()).unwrap()
}

pub fn client(n: u8) -> ClientId {
    ClientId(format!("{n:032x}"))
}

type Migrate = Box<dyn Fn(u32, Value) -> Result<Value, String>>;

/// One tab: a store engine and a driver that runs its commands on the world.
pub struct Tab {
    pub engine: StoreEngine,
    pub world: Shared,
    pub events: Vec<StoreEvent>,
    pub completions: HashMap<RequestId, Result<(), SessileError>>,
    /// Slot writes wait here while `hold` is set (another tab has the lock).
    pub hold: bool,
    pub held: VecDeque<StorageCommand>,
    pub migrate: Option<Migrate>,
    /// Leave migration requests here instead of answering them at once.
    pub defer_migrations: bool,
    pub deferred: VecDeque<MigrationRequest>,
    /// The channel messages this tab has been given.
    pub heard: usize,
    pub now: u64,
}

impl Tab {
    /// Opens a store with `config` at time `now` and runs it until it is open (or failed).
    pub fn open(world: &Shared, config: StoreConfig, now: u64) -> Tab {
        Self::open_with(world, config, now, None)
    }

    pub fn open_with(
        world: &Shared,
        config: StoreConfig,
        now: u64,
        migrate: Option<Migrate>,
    ) -> Tab {
        let engine = StoreEngine::new(config, now).expect("valid config");
        let heard = world.borrow().channel.len();
        let mut tab = Tab {
            engine,
            world: world.clone(),
            events: Vec::new(),
            completions: HashMap::new(),
            hold: false,
            held: VecDeque::new(),
            migrate,
            defer_migrations: false,
            deferred: VecDeque::new(),
            heard,
            now,
        };
        tab.run();
        tab
    }

    /// Runs every command, migration and output until the engine waits.
    pub fn run(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(command) = self.engine.poll_command() {
                progressed = true;
                if self.hold
                    && matches!(
                        command,
                        StorageCommand::WriteSlot { .. } | StorageCommand::Clear { .. }
                    )
                {
                    self.held.push_back(command);
                } else {
                    self.execute(command);
                }
            }
            while let Some(request) = self.engine.poll_migration() {
                progressed = true;
                if self.defer_migrations {
                    self.deferred.push_back(request);
                    continue;
                }
                let result = match &self.migrate {
                    Some(f) => f(request.from, request.state),
                    None => Err(format!("no migration function migrate[{}]", request.from)),
                };
                self.engine.handle_migrated(request.from, result, self.now);
            }
            while let Some(event) = self.engine.poll_event() {
                progressed = true;
                self.events.push(event);
            }
            while let Some(done) = self.engine.poll_completion() {
                progressed = true;
                self.completions.insert(done.id, done.result);
            }
            while let Some(message) = self.engine.poll_announcement() {
                progressed = true;
                self.world.borrow_mut().channel.push(message);
            }
            if !progressed {
                return;
            }
        }
    }

    /// Answers the migration requests left waiting.
    pub fn answer_migrations(&mut self) {
        self.defer_migrations = false;
        while let Some(request) = self.deferred.pop_front() {
            let f = self.migrate.as_ref().expect("a migrate function");
            let result = f(request.from, request.state);
            self.engine.handle_migrated(request.from, result, self.now);
            self.run();
        }
    }

    /// Runs the slot writes held while another tab had the lock.
    pub fn release(&mut self) {
        self.hold = false;
        while let Some(command) = self.held.pop_front() {
            self.execute(command);
            self.run();
        }
    }

    fn execute(&mut self, command: StorageCommand) {
        let now = self.now;
        let kind = self.engine.backend();
        let mut w = self.world.borrow_mut();
        let ls = !w.unavailable.contains(&BackendKind::LocalStorage);
        match command {
            StorageCommand::Open(kind) => {
                let result = if w.unavailable.contains(&kind) {
                    Err(SessileError::StorageUnavailable {
                        reason: "SecurityError: the operation is insecure".into(),
                    })
                } else {
                    Ok(())
                };
                drop(w);
                self.engine.handle_backend_opened(result, now);
            }
            StorageCommand::Read { rescues } => {
                let result = match w.fail_read.take() {
                    Some(error) => Err(error),
                    None => {
                        let slots = w.slots(kind.unwrap()).clone();
                        let copies = if rescues && ls {
                            w.rescues
                                .iter()
                                .map(|(key, (base, bytes))| RescueCopy {
                                    key: key.clone(),
                                    base: *base,
                                    bytes: bytes.clone(),
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        Ok(StoredRead {
                            a: slots.a,
                            b: slots.b,
                            head: slots.head,
                            rescues: copies,
                            marker: if rescues && ls {
                                w.marker.clone()
                            } else {
                                None
                            },
                        })
                    }
                };
                drop(w);
                self.engine.handle_read(result, now);
            }
            StorageCommand::WriteSlot {
                slot,
                base,
                head,
                bytes,
            } => {
                let quota = w.quota;
                let closed = std::mem::take(&mut w.close_connection);
                let slots = w.slots(kind.unwrap());
                let result = if closed {
                    WriteResult::Failed {
                        error: SessileError::StorageUnavailable {
                            reason: "InvalidStateError: the database connection is closing".into(),
                        },
                        connection_closed: true,
                    }
                } else if slots.head.version != base {
                    WriteResult::Refused {
                        head: slots.head.version,
                    }
                } else if quota.is_some_and(|q| bytes.len() > q) {
                    WriteResult::Failed {
                        error: SessileError::QuotaExceeded {
                            bytes: bytes.len() as u64,
                        },
                        connection_closed: false,
                    }
                } else {
                    let version = head.version;
                    let snap = decode(&bytes, &EnvelopeConfig::default()).unwrap();
                    let state = serde_json::from_str(&snap.json).unwrap();
                    match slot {
                        SlotId::A => slots.a = Stored::Bytes(bytes),
                        _ => slots.b = Stored::Bytes(bytes),
                    }
                    slots.head = head;
                    w.heads.push(version);
                    w.history.push(Some(state));
                    WriteResult::Stored
                };
                drop(w);
                self.engine.handle_write_result(result, now);
            }
            StorageCommand::WriteRescue { key, base, bytes } => {
                if ls {
                    w.rescues.insert(key, (base, Stored::Bytes(bytes)));
                }
            }
            StorageCommand::ForgetRescue { key } => {
                w.rescues.remove(&key);
            }
            StorageCommand::ForgetAllRescues => w.rescues.clear(),
            StorageCommand::WriteMarker { version } => {
                if ls {
                    w.marker = Some(version.to_string());
                }
            }
            StorageCommand::ClearMarker => w.marker = None,
            StorageCommand::Clear { at_least } => {
                let slots = w.slots(kind.unwrap());
                let tombstone = at_least.max(slots.head.version + 1);
                *slots = Slots {
                    head: Head::at(tombstone),
                    ..Slots::default()
                };
                w.heads.push(tombstone);
                w.history.push(None);
                w.tombstone = tombstone;
                drop(w);
                self.engine.handle_cleared(Ok(tombstone), now);
            }
        }
    }

    /// Gives this tab the other tabs' messages sent since it last heard.
    pub fn hear(&mut self) {
        let me = self.engine.config.client.clone();
        let messages: Vec<TabMessage> = self.world.borrow().channel[self.heard..].to_vec();
        self.heard += messages.len();
        for message in messages {
            let from = match &message {
                TabMessage::Stored { from, .. } | TabMessage::Cleared { from, .. } => from,
            };
            if *from != me {
                self.engine.handle_tab_message(message, self.now);
                self.run();
            }
        }
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

    pub fn set(&mut self, state: Value) -> u64 {
        let v = self.engine.set(state, self.now).expect("set");
        self.run();
        v
    }

    /// Starts a flush; `result(id)` says how it ended.
    pub fn start_flush(&mut self) -> RequestId {
        let id = self.engine.flush(self.now).expect("flush");
        self.run();
        id
    }

    /// A flush, run to its end.
    pub fn flush(&mut self) -> Result<(), SessileError> {
        let id = self.start_flush();
        self.result(id).expect("flush finished")
    }

    pub fn result(&self, id: RequestId) -> Option<Result<(), SessileError>> {
        self.completions.get(&id).cloned()
    }

    pub fn clear(&mut self) -> Result<(), SessileError> {
        let id = self.engine.clear(self.now).expect("clear");
        self.run();
        self.result(id).expect("clear finished")
    }

    pub fn close(&mut self) -> Result<(), SessileError> {
        let id = self.engine.close(self.now).expect("close");
        self.run();
        self.result(id).expect("close finished")
    }

    pub fn hide(&mut self) {
        self.engine.handle_hidden(self.now);
        self.run();
    }

    pub fn pagehide(&mut self) {
        self.engine.handle_pagehide(self.now);
        self.run();
    }

    pub fn state(&self) -> Value {
        self.engine.state().clone()
    }

    pub fn restored(&self) -> RestoreOutcome {
        self.events
            .iter()
            .find_map(|e| match e {
                StoreEvent::StateRestored(outcome) => Some(outcome.clone()),
                _ => None,
            })
            .expect("a state_restored event")
    }

    pub fn conflicts(&self) -> Vec<(Value, Value, Winner)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StoreEvent::Conflict {
                    local,
                    remote,
                    winner,
                    ..
                } => Some((local.clone(), remote.clone(), *winner)),
                _ => None,
            })
            .collect()
    }

    pub fn errors(&self) -> Vec<(String, During)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StoreEvent::ErrorOccurred { error, during } => {
                    Some((error.code().to_string(), *during))
                }
                _ => None,
            })
            .collect()
    }

    pub fn updates(&self) -> Vec<(u64, bool, usize)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                StoreEvent::SessionUpdated {
                    version,
                    cleared,
                    rebased,
                } => Some((*version, *cleared, *rebased)),
                _ => None,
            })
            .collect()
    }
}

/// A store alone of namespace `name` for client `n`, on IndexedDB.
pub fn config(name: &str, n: u8) -> StoreConfig {
    StoreConfig {
        storage: Some(BackendKind::IndexedDb),
        initial: json!({ "step": "cart" }),
        debounce_ms: 60_000,
        ..StoreConfig::new(name, client(n))
    }
}

/// Two writes of client 9 (slot a generation 1 version 1, slot b generation 2 version 2).
pub fn saved_twice(world: &Shared) -> (Value, Value) {
    let first = json!({ "step": "cart", "items": [1] });
    let second = json!({ "step": "checkout", "items": [1, 2] });
    let mut w = world.borrow_mut();
    w.put(BackendKind::IndexedDb, SlotId::A, &first, 1, 1);
    w.put(BackendKind::IndexedDb, SlotId::B, &second, 2, 2);
    (first, second)
}
