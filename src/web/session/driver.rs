//! The driver of one session: owns the [`SessionEngine`] and everything it
//! runs on (the store's backend and its commands, one at a time in order;
//! the link record's writes, one at a time; the connection; the server's
//! HTTP API; localStorage and sessionStorage; the client id's Web Lock; one
//! timer from `poll_timeout`), feeds every input to the engine with `now`,
//! and drains every output after each one (`pump`): commands, network
//! actions, announcements for the other tabs, events for the page's
//! handlers, migrations for the page's functions, finished requests
//! (each output's work is in `outputs.rs`). It decides nothing: every
//! decision is the engine's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use gloo_timers::callback::Timeout;
use wasm_bindgen_futures::spawn_local;
use web_sys::CryptoKey;

use super::options::SessionHandler;
use super::outputs::RecordJob;
use super::page::relay_register;
use super::records::Records;
use crate::core::error_text::decimal;
use crate::core::session::engine::{
    EnginePhase, Failure, Outcome, RequestId, SessionCommand, SessionEngine, SessionEvent,
};
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{ClientId, MigrationRequest, StorageCommand};
use crate::core::vec_map::VecMap;
use crate::web::link::options::Endpoint;
use crate::web::link::transport::Connections;
use crate::web::store::backend::Backend;
use crate::web::store::commands;
use crate::web::store::locks::HeldLock;
use crate::web::store::page::{now, Listener};
use crate::web::store::signal::Sender;
use crate::web::store::tabs::TabChannel;
use crate::web::store::Migration;

/// Where a request of the page learns how it ended.
pub(crate) type Waiter = Sender<Result<Outcome, Failure>>;

/// A driver shared by the session's handles; callbacks and tasks hold it weakly.
pub(crate) type Shared = Rc<RefCell<Driver>>;
pub(crate) type WeakDriver = Weak<RefCell<Driver>>;

/// What a session starts with besides its engine.
pub(crate) struct Start {
    pub engine: SessionEngine,
    pub layout: Layout,
    pub client: ClientId,
    pub endpoint: Option<Endpoint>,
    pub long_poll_ms: u64,
    pub records: Option<Rc<Records>>,
    pub migrate: VecMap<u32, Migration>,
    pub client_lock: Option<HeldLock>,
    pub opened: Sender<()>,
    /// Events to give the page before the engine's.
    pub early: Vec<SessionEvent>,
    /// The page's key (`encryption`): seals what is stored.
    pub key: Option<CryptoKey>,
}

/// One session's engine and everything it runs on.
pub(crate) struct Driver {
    pub(super) engine: SessionEngine,
    pub(super) layout: Layout,
    pub(super) client: ClientId,
    pub(super) endpoint: Option<Endpoint>,
    pub(super) long_poll_ms: u64,
    pub(super) backend: Option<Rc<Backend>>,
    /// Store commands not started yet, in order.
    pub(super) queue: VecDeque<StorageCommand>,
    /// An answered store command is under way.
    pub(super) running: bool,
    pub(super) records: Option<Rc<Records>>,
    /// The page's key, in memory only (`rotateKey` replaces it).
    pub(super) key: Option<CryptoKey>,
    /// Copies the key does not open up to this version may be written over:
    /// the page dropped them (`discardLocal` at open or on the session) or
    /// they are under the key before `rotateKey` (`may_replace`).
    pub(super) replaces_up_to: u64,
    /// Register entries a sealed write stored since the last turn, for
    /// this page's other sessions of the namespace.
    pub(super) relayed: Vec<(String, Option<String>)>,
    pub(super) record_jobs: VecDeque<RecordJob>,
    pub(super) record_running: bool,
    /// The connection and the standby of the race.
    pub(super) net: Connections,
    pub(super) timer: Option<(u64, Timeout)>,
    pub(super) migrate: VecMap<u32, Migration>,
    pub(super) handlers: Vec<(u64, SessionHandler)>,
    pub(super) next_handler: u64,
    pub(super) waiters: Vec<(RequestId, Waiter)>,
    pub(super) opened: Option<Sender<()>>,
    pub(super) early: Vec<SessionEvent>,
    pub(super) channel: Option<TabChannel>,
    pub(super) hooks: Vec<Listener>,
    pub(super) client_lock: Option<HeldLock>,
    pub(super) durable: Option<bool>,
    pub(super) released: bool,
    pub(super) ticks: u64,
    pub(super) wakers: Vec<Waker>,
    pub(super) me: WeakDriver,
}

impl Driver {
    /// A driver for `start`; nothing runs until the first [`pump`].
    pub(crate) fn new(start: Start) -> Shared {
        Rc::new_cyclic(|me: &WeakDriver| {
            RefCell::new(Driver {
                engine: start.engine,
                layout: start.layout,
                client: start.client,
                endpoint: start.endpoint,
                long_poll_ms: start.long_poll_ms,
                backend: None,
                queue: VecDeque::new(),
                running: false,
                records: start.records,
                key: start.key,
                replaces_up_to: 0,
                relayed: Vec::new(),
                record_jobs: VecDeque::new(),
                record_running: false,
                net: Connections::new(),
                timer: None,
                migrate: start.migrate,
                handlers: Vec::new(),
                next_handler: 0,
                waiters: Vec::new(),
                opened: Some(start.opened),
                early: start.early,
                channel: None,
                hooks: Vec::new(),
                client_lock: start.client_lock,
                durable: None,
                released: false,
                ticks: 0,
                wakers: Vec::new(),
                me: me.clone(),
            })
        })
    }

    /// Resolves `waiter` when request `id` finishes.
    pub(crate) fn wait_for(&mut self, id: RequestId, waiter: Waiter) {
        self.waiters.push((id, waiter));
    }

    /// Whether a write or removal of the link record is queued or under way.
    pub(crate) fn records_busy(&self) -> bool {
        self.record_running || !self.record_jobs.is_empty()
    }

    /// Lets go of everything the browser holds for this session: listeners,
    /// the tab channel, the timer, the connection, the backend, the client
    /// id's lock. Inputs are ignored after this.
    pub(crate) fn release(&mut self) {
        self.released = true;
        self.hooks.clear();
        self.channel = None;
        self.timer = None;
        self.backend = None;
        self.client_lock = None;
        self.net.close_all();
        self.notify();
    }

    /// Wakes everything waiting for a change.
    pub(super) fn notify(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// One turn of the pump under the driver's borrow.
    fn turn(&mut self) -> Turn {
        let mut written = std::mem::take(&mut self.relayed);
        let mut progressed = !written.is_empty();
        while let Some(command) = self.engine.poll_command() {
            progressed = true;
            self.run(command, &mut written);
        }
        progressed |= self.start_store_commands();
        progressed |= self.start_record_job();
        while let Some(t) = self.engine.poll_transmit() {
            progressed = true;
            self.transmit(t);
        }
        while let Some(message) = self.engine.poll_announcement() {
            progressed = true;
            if let Some(channel) = &self.channel {
                channel.post(&message);
            }
        }
        let mut events = std::mem::take(&mut self.early);
        while let Some(event) = self.engine.poll_event() {
            events.push(event);
        }
        let mut finished = Vec::new();
        while let Some(done) = self.engine.poll_completion() {
            let (waiting, rest): (Vec<_>, Vec<_>) =
                self.waiters.drain(..).partition(|(id, _)| *id == done.id);
            self.waiters = rest;
            finished.extend(waiting.into_iter().map(|(_, w)| (w, done.result.clone())));
        }
        let migration = self.engine.poll_migration().map(|request| {
            let migrate = self.migrate.get(&request.from).cloned();
            (request, migrate)
        });
        progressed |= !events.is_empty() || !finished.is_empty() || migration.is_some();
        let opened = match self.engine.phase() {
            EnginePhase::Opening => None,
            _ => self.opened.take(),
        };
        if *self.engine.phase() == EnginePhase::Closed && !self.records_busy() && !self.released {
            self.release();
        }
        if !self.released {
            self.arm_timer();
        }
        if progressed {
            self.notify();
        }
        Turn {
            events,
            handlers: self.handlers.iter().map(|(_, h)| h.clone()).collect(),
            finished,
            migration,
            opened,
            written,
            progressed,
        }
    }
}

/// What one turn of the pump leaves to do outside the driver's borrow.
struct Turn {
    events: Vec<SessionEvent>,
    handlers: Vec<SessionHandler>,
    finished: Vec<(Waiter, Result<Outcome, Failure>)>,
    migration: Option<(MigrationRequest, Option<Migration>)>,
    opened: Option<Sender<()>>,
    written: Vec<(String, Option<String>)>,
    progressed: bool,
}

/// Drains every output of the engine and runs it, until nothing is left.
/// Handlers, migrations and waiters run outside the driver's borrow (they
/// may call the session). Deferred when the driver is busy.
pub(crate) fn pump(shared: &Shared) {
    loop {
        let turn = match shared.try_borrow_mut() {
            Ok(mut d) => d.turn(),
            Err(_) => {
                let weak = Rc::downgrade(shared);
                return spawn_local(async move {
                    if let Some(shared) = weak.upgrade() {
                        pump(&shared);
                    }
                });
            }
        };
        for event in &turn.events {
            for handler in &turn.handlers {
                handler(event);
            }
        }
        for (waiter, result) in turn.finished {
            waiter.send(result);
        }
        if let Some(opened) = turn.opened {
            opened.send(());
        }
        if !turn.written.is_empty() {
            relay_register(shared, turn.written);
        }
        if let Some((request, migrate)) = turn.migration {
            let from = request.from;
            let result = match migrate {
                Some(migrate) => migrate(request.state),
                None => Err([
                    "no migration function migrate[",
                    &decimal(u64::from(from)),
                    "]",
                ]
                .concat()),
            };
            shared
                .borrow_mut()
                .engine
                .handle_migrated(from, result, now());
        }
        if !turn.progressed {
            return;
        }
    }
}

/// Runs one input on the driver at `now`, then [`pump`]. Deferred when the
/// driver is busy (never re-entered); ignored once it is released or gone.
pub(crate) fn input<F>(driver: &WeakDriver, f: F)
where
    F: FnOnce(&mut Driver, u64) + 'static,
{
    input_boxed(driver, Box::new(f));
}

/// One input to the driver, boxed.
type Input = Box<dyn FnOnce(&mut Driver, u64)>;

/// [`input`]'s work, once for every input: a generic body would be copied
/// into the wasm module for each of them, with its `spawn_local` and pump.
fn input_boxed(driver: &WeakDriver, f: Input) {
    let Some(rc) = driver.upgrade() else {
        return;
    };
    let Ok(mut d) = rc.try_borrow_mut() else {
        let driver = driver.clone();
        return spawn_local(async move { input_boxed(&driver, f) });
    };
    if d.released {
        return;
    }
    f(&mut d, now());
    drop(d);
    pump(&rc);
}

impl Drop for Driver {
    /// A session dropped without `close()` goes as a page that is closed
    /// does: what is unsaved is left as a rescue copy (the next open
    /// restores it), the connection is cut, and the link record and the
    /// pending register stay as last stored.
    fn drop(&mut self) {
        if *self.engine.phase() == EnginePhase::Ready {
            self.engine.handle_pagehide(now());
            while let Some(command) = self.engine.poll_command() {
                if let SessionCommand::Store(c @ StorageCommand::WriteRescue { .. }) = command {
                    let _ = commands::start(c, &self.layout, None, self.key.as_ref(), 0);
                }
            }
        }
        self.net.close_all();
    }
}

/// Resolves at the next change of the driver (an output handled, a record
/// job ended, release), or at once when the driver is gone. Callers look
/// at what they wait for before waiting.
pub(crate) struct Changed {
    driver: WeakDriver,
    seen: Option<u64>,
}

impl Changed {
    pub(crate) fn new(driver: &Shared) -> Self {
        Changed {
            driver: Rc::downgrade(driver),
            seen: None,
        }
    }
}

impl Future for Changed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(rc) = self.driver.upgrade() else {
            return Poll::Ready(());
        };
        let Ok(mut d) = rc.try_borrow_mut() else {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        };
        if self.seen.is_some_and(|seen| seen != d.ticks) {
            return Poll::Ready(());
        }
        self.seen = Some(d.ticks);
        d.wakers.push(cx.waker().clone());
        Poll::Pending
    }
}
