//! The browser side of the session simulation (`../session_sim.rs`): the
//! storage every tab of the origin shares (IndexedDB's slots and head,
//! localStorage, the link records, the BroadcastChannel) and one tab: a
//! session engine whose commands run on that storage the way the browser
//! drivers run them (synchronously here: a crash falls between inputs).

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Value};
use sessile::core::envelope::decode;
use sessile::core::session::engine::{
    CallId, Completion, Found, Scope, ServerCall, SessionCommand, SessionConfig, SessionEngine,
    SessionEvent,
};
use sessile::core::session::link::Transmit;
use sessile::core::session::store::{
    ClientId, Head, RescueCopy, StorageCommand, Stored, StoredRead, TabMessage, WriteResult,
};
use sessile::core::slots::SlotId;

/// The namespace every tab of the simulation opens.
pub const NS: &str = "sim";

/// What the tabs of the origin share.
#[derive(Debug, Default)]
pub struct Browser {
    pub a: Option<Vec<u8>>,
    pub b: Option<Vec<u8>>,
    pub head: Head,
    pub rescues: BTreeMap<String, (u64, Vec<u8>)>,
    pub marker: Option<String>,
    /// localStorage, keys without `sessile:`.
    pub local: BTreeMap<String, String>,
    /// The link records.
    pub records: BTreeMap<String, String>,
    /// Every BroadcastChannel message, in order.
    pub channel: Vec<TabMessage>,
}

impl Browser {
    /// The state of the newest stored slot.
    pub fn stored(&self) -> Option<Value> {
        let mut best: Option<(u64, Value)> = None;
        for bytes in [&self.a, &self.b].into_iter().flatten() {
            let snap = decode(bytes, &Default::default()).ok()?;
            let v: Value = serde_json::from_str(&snap.json).ok()?;
            if best.as_ref().is_none_or(|b| snap.meta.state_version > b.0) {
                best = Some((snap.meta.state_version, v));
            }
        }
        best.map(|b| b.1)
    }

    /// The other clients' register entries.
    fn register(&self, me: &ClientId) -> BTreeMap<String, String> {
        let prefix = [NS, ":pending:"].concat();
        self.local
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&prefix)?.to_string(), v.clone())))
            .filter(|(c, _)| *c != me.0)
            .collect()
    }
}

/// The options a page of the simulation opens its session with.
pub fn config(client: &ClientId, seed: u64) -> SessionConfig {
    let options = json!({
        "name": NS, "storage": "indexeddb", "initial": {}, "ttlSeconds": 86_400,
        "server": {"http": "http://sim"},
    });
    let mut c = SessionConfig::from_options(&options, client.clone(), seed).expect("options");
    // A small outbox: long offline spells compose ops.
    if let Some(sync) = c.sync.as_mut() {
        sync.link.outbox_limit = 16;
    }
    c
}

/// One tab of the page.
pub struct Tab {
    pub engine: SessionEngine,
    pub client: ClientId,
    /// BroadcastChannel messages heard so far.
    heard: usize,
    /// The other clients' register entries as this tab last heard them.
    seen: BTreeMap<String, String>,
    pub transmits: VecDeque<Transmit>,
    pub calls: VecDeque<(CallId, ServerCall)>,
    pub events: Vec<SessionEvent>,
    pub completions: Vec<Completion>,
}

impl Tab {
    /// Opens a tab of `client` at `now`, reading what the browser holds
    /// (`tab` is its sessionStorage).
    pub fn open(
        browser: &mut Browser,
        tab: &mut BTreeMap<String, String>,
        config: SessionConfig,
        offline: bool,
        now: u64,
    ) -> Tab {
        let client = config.store.client.clone();
        let seen = browser.register(&client);
        let found = Found {
            session: browser.local.get(&[NS, ":server"].concat()).cloned(),
            lifecycle: browser.local.get(&[NS, ":lifecycle"].concat()).cloned(),
            record: browser
                .records
                .get(&[NS, ":link:", client.0.as_str()].concat())
                .cloned(),
            fallback: browser.local.get(&[NS, ":fallback"].concat()).cloned(),
            offline,
            register: seen.clone().into_iter().collect(),
        };
        let engine = SessionEngine::new(config, found, now).expect("engine");
        let mut t = Tab {
            engine,
            client,
            heard: browser.channel.len(),
            seen,
            transmits: VecDeque::new(),
            calls: VecDeque::new(),
            events: Vec::new(),
            completions: Vec::new(),
        };
        t.run(browser, tab, now);
        t
    }

    /// Runs every command and drains every output until the engine waits.
    pub fn run(&mut self, browser: &mut Browser, tab: &mut BTreeMap<String, String>, now: u64) {
        loop {
            let mut progressed = false;
            while let Some(c) = self.engine.poll_command() {
                progressed = true;
                self.execute(c, browser, tab, now);
            }
            while let Some(t) = self.engine.poll_transmit() {
                progressed = true;
                self.transmits.push_back(t);
            }
            while let Some(e) = self.engine.poll_event() {
                progressed = true;
                self.events.push(e);
            }
            while let Some(m) = self.engine.poll_announcement() {
                progressed = true;
                browser.channel.push(m);
            }
            while let Some(c) = self.engine.poll_completion() {
                progressed = true;
                self.completions.push(c);
            }
            if let Some(m) = self.engine.poll_migration() {
                panic!("no migration expected: {m:?}");
            }
            if !progressed {
                return;
            }
        }
    }

    /// Hears the other tabs: their register entries (the `storage` event)
    /// and their BroadcastChannel messages.
    pub fn hear(&mut self, browser: &mut Browser, tab: &mut BTreeMap<String, String>, now: u64) {
        let entries = browser.register(&self.client);
        let gone: Vec<String> = self
            .seen
            .keys()
            .filter(|c| !entries.contains_key(*c))
            .cloned()
            .collect();
        for c in gone {
            self.engine.handle_register_entry(&c, None, now);
        }
        for (c, text) in &entries {
            if self.seen.get(c) != Some(text) {
                self.engine.handle_register_entry(c, Some(text), now);
            }
        }
        self.seen = entries;
        let messages: Vec<TabMessage> = browser.channel[self.heard..].to_vec();
        self.heard = browser.channel.len();
        for m in messages {
            self.engine.handle_tab_message(m, now);
        }
        self.run(browser, tab, now);
    }

    fn execute(
        &mut self,
        command: SessionCommand,
        browser: &mut Browser,
        tab: &mut BTreeMap<String, String>,
        now: u64,
    ) {
        match command {
            SessionCommand::Store(c) => self.storage(c, browser, now),
            SessionCommand::WriteRecord { key, text } => {
                browser.records.insert(key, text);
                self.engine.handle_record_stored(Ok(()), now);
            }
            SessionCommand::RemoveRecord { key } => {
                browser.records.remove(&key);
            }
            SessionCommand::Remember { scope, key, value } => {
                let map = if scope == Scope::Local {
                    &mut browser.local
                } else {
                    tab
                };
                match value {
                    Some(v) => map.insert(key, v),
                    None => map.remove(&key),
                };
            }
            SessionCommand::WriteRegister { key, value } => {
                match value {
                    Some(v) => browser.local.insert(key, v),
                    None => browser.local.remove(&key),
                };
                self.engine.handle_register_written(Ok(()), now);
            }
            SessionCommand::Call { id, call } => self.calls.push_back((id, call)),
            SessionCommand::ReleaseClient { .. } => {}
            other => panic!("unknown command {other:?}"),
        }
    }

    fn storage(&mut self, command: StorageCommand, browser: &mut Browser, now: u64) {
        let stored = |x: &Option<Vec<u8>>| x.clone().map_or(Stored::Missing, Stored::Bytes);
        match command {
            StorageCommand::Open(_) => self.engine.handle_backend_opened(Ok(()), now),
            StorageCommand::Read { rescues } => {
                let read = StoredRead {
                    a: stored(&browser.a),
                    b: stored(&browser.b),
                    head: browser.head.clone(),
                    rescues: if rescues {
                        browser
                            .rescues
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
                    marker: if rescues {
                        browser.marker.clone()
                    } else {
                        None
                    },
                };
                self.engine.handle_read(Ok(read), now);
            }
            StorageCommand::WriteSlot {
                slot,
                base,
                head,
                bytes,
            } => {
                let result = if browser.head.version != base {
                    WriteResult::Refused {
                        head: browser.head.version,
                    }
                } else {
                    match slot {
                        SlotId::A => browser.a = Some(bytes),
                        _ => browser.b = Some(bytes),
                    }
                    browser.head = head;
                    WriteResult::Stored
                };
                self.engine.handle_write_result(result, now);
            }
            StorageCommand::WriteRescue { key, base, bytes } => {
                browser.rescues.insert(key, (base, bytes));
            }
            StorageCommand::ForgetRescue { key } => {
                browser.rescues.remove(&key);
            }
            StorageCommand::ForgetAllRescues => browser.rescues.clear(),
            StorageCommand::WriteMarker { version } => browser.marker = Some(version.to_string()),
            StorageCommand::ClearMarker => browser.marker = None,
            StorageCommand::Clear { at_least } => {
                let tombstone = at_least.max(browser.head.version + 1);
                browser.a = None;
                browser.b = None;
                browser.head = Head::at(tombstone);
                self.engine.handle_cleared(Ok(tombstone), now);
            }
            other => panic!("unknown storage command {other:?}"),
        }
    }
}

/// A failure at the network level, as the driver reports it.
pub fn unreachable() -> sessile::core::session::engine::Failure {
    sessile::core::session::engine::Failure::new(
        "SERVER_UNREACHABLE",
        "the sessile server could not be reached",
        true,
    )
}
