//! The driver of one store: owns the [`StoreEngine`], feeds it `now`, the
//! answers of its storage commands (run one at a time, in order), its
//! timer (gloo-timers, from `poll_timeout`), the other tabs' messages and
//! the page's `visibilitychange` / `pagehide`; drains every output after
//! each input (`pump`): commands, announcements, events for the page's
//! handlers, migrations for the page's functions, finished requests. It
//! decides nothing: every decision is the engine's.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use gloo_timers::callback::Timeout;
use wasm_bindgen_futures::spawn_local;

use super::backend::Backend;
use super::commands::{self, is_async};
use super::locks::HeldLock;
use super::options::{EventHandler, Migration};
use super::page::{document_hidden, now, Listener};
use super::signal::Sender;
use super::tabs::TabChannel;
use crate::core::error::SessileError;
use crate::core::error_text::decimal;
use crate::core::session::store::layout::Layout;
use crate::core::session::store::{
    ClientId, MigrationRequest, Phase, RequestId, StorageCommand, StoreEngine, StoreEvent,
};
use crate::core::vec_map::VecMap;

/// Where a `flush`, `clear` or `close` learns how it ended.
pub(crate) type Waiter = Sender<Result<(), SessileError>>;

/// A driver shared by the store's handles, its callbacks and its tasks.
pub(crate) type Shared = Rc<RefCell<Driver>>;

/// One store's engine and everything it runs on.
pub(crate) struct Driver {
    pub(crate) engine: StoreEngine,
    pub(crate) layout: Layout,
    pub(crate) client: ClientId,
    pub(crate) backend: Option<Rc<Backend>>,
    migrate: VecMap<u32, Migration>,
    pub(crate) handlers: Vec<(u64, EventHandler)>,
    pub(crate) next_handler: u64,
    /// Commands not started yet, in order.
    queue: VecDeque<StorageCommand>,
    /// An answered command is under way.
    running: bool,
    timer: Option<(u64, Timeout)>,
    waiters: Vec<(RequestId, Waiter)>,
    opened: Option<Sender<()>>,
    channel: Option<TabChannel>,
    hooks: Vec<Listener>,
    pub(crate) client_lock: Option<HeldLock>,
    pub(crate) durable: Option<bool>,
}

impl Driver {
    pub(crate) fn new(
        engine: StoreEngine,
        layout: Layout,
        client: ClientId,
        migrate: VecMap<u32, Migration>,
        client_lock: Option<HeldLock>,
        opened: Sender<()>,
    ) -> Self {
        Self {
            engine,
            layout,
            client,
            backend: None,
            migrate,
            handlers: Vec::new(),
            next_handler: 0,
            queue: VecDeque::new(),
            running: false,
            timer: None,
            waiters: Vec::new(),
            opened: Some(opened),
            channel: None,
            hooks: Vec::new(),
            client_lock,
            durable: None,
        }
    }

    /// Resolves `waiter` when request `id` finishes.
    pub(crate) fn wait_for(&mut self, id: RequestId, waiter: Waiter) {
        self.waiters.push((id, waiter));
    }

    /// Lets go of everything the browser holds for this store: listeners,
    /// the tab channel, the timer, the connection, the client id's lock.
    pub(crate) fn release(&mut self) {
        self.hooks.clear();
        self.channel = None;
        self.timer = None;
        self.backend = None;
        self.client_lock = None;
    }

    /// Starts the commands at the front of the queue: the ones without an
    /// answer at once, an answered one when none is under way. A rescue
    /// copy is written at once wherever it is (the page is going away).
    /// Returns whether anything was started.
    fn start_commands(&mut self, shared: &Shared) -> bool {
        let mut started = false;
        while let Some(command) = self.engine.poll_command() {
            if matches!(command, StorageCommand::WriteRescue { .. }) {
                let _ = commands::start(command, &self.layout, None, None, 0);
                started = true;
            } else {
                self.queue.push_back(command);
            }
        }
        while let Some(front) = self.queue.front() {
            if is_async(front) && self.running {
                break;
            }
            let Some(command) = self.queue.pop_front() else {
                break;
            };
            started = true;
            if let Some(pending) =
                commands::start(command, &self.layout, self.backend.clone(), None, 0)
            {
                self.running = true;
                let shared = shared.clone();
                spawn_local(async move {
                    let answer = pending.await;
                    {
                        let mut d = shared.borrow_mut();
                        let Driver {
                            engine, backend, ..
                        } = &mut *d;
                        answer.deliver(engine, backend, now());
                        d.running = false;
                    }
                    pump(&shared);
                });
            }
        }
        started
    }

    /// Arms the timer for the engine's next deadline (or disarms it).
    fn arm_timer(&mut self, weak: Weak<RefCell<Driver>>) {
        let due = self.engine.poll_timeout();
        match (due, &self.timer) {
            (Some(at), Some((armed, _))) if *armed == at => {}
            (Some(at), _) => {
                let delay = at.saturating_sub(now()).min(i32::MAX as u64) as u32;
                let fire = move || {
                    let Some(shared) = weak.upgrade() else { return };
                    let spent = {
                        let mut d = shared.borrow_mut();
                        d.engine.handle_timeout(now());
                        d.timer.take()
                    };
                    drop(spent);
                    pump(&shared);
                };
                self.timer = Some((at, Timeout::new(delay, fire)));
            }
            (None, _) => self.timer = None,
        }
    }
}

/// What one turn of the pump leaves to do outside the driver's borrow.
struct Turn {
    events: Vec<StoreEvent>,
    handlers: Vec<EventHandler>,
    finished: Vec<(Waiter, Result<(), SessileError>)>,
    migration: Option<(MigrationRequest, Option<Migration>)>,
    opened: Option<Sender<()>>,
    progressed: bool,
}

/// Drains every output of the engine and runs it, until nothing is left.
/// Handlers, migrations and waiters run outside the driver's borrow (they
/// may call the store).
pub(crate) fn pump(shared: &Shared) {
    loop {
        let turn = one_turn(shared);
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

fn one_turn(shared: &Shared) -> Turn {
    let mut d = shared.borrow_mut();
    let mut progressed = d.start_commands(shared);
    while let Some(message) = d.engine.poll_announcement() {
        progressed = true;
        if let Some(channel) = &d.channel {
            channel.post(&message);
        }
    }
    let mut events = Vec::new();
    while let Some(event) = d.engine.poll_event() {
        events.push(event);
    }
    let mut finished = Vec::new();
    while let Some(done) = d.engine.poll_completion() {
        let (waiting, rest): (Vec<_>, Vec<_>) =
            d.waiters.drain(..).partition(|(id, _)| *id == done.id);
        d.waiters = rest;
        finished.extend(waiting.into_iter().map(|(_, w)| (w, done.result.clone())));
    }
    let migration = d.engine.poll_migration().map(|request| {
        let migrate = d.migrate.get(&request.from).cloned();
        (request, migrate)
    });
    progressed |= !events.is_empty() || !finished.is_empty() || migration.is_some();
    d.arm_timer(Rc::downgrade(shared));
    let opened = match d.engine.phase() {
        Phase::Opening => None,
        _ => d.opened.take(),
    };
    if matches!(d.engine.phase(), Phase::Closed) {
        d.release();
    }
    Turn {
        events,
        handlers: d.handlers.iter().map(|(_, h)| h.clone()).collect(),
        finished,
        migration,
        opened,
        progressed,
    }
}

/// Listens to the page (`visibilitychange` to hidden: write now;
/// `pagehide`: rescue copy, then write) and to the other tabs.
pub(crate) fn install_hooks(shared: &Shared) {
    let weak = Rc::downgrade(shared);
    let on_input = move |input: &dyn Fn(&mut StoreEngine, u64)| {
        if let Some(shared) = weak.upgrade() {
            input(&mut shared.borrow_mut().engine, now());
            pump(&shared);
        }
    };
    let mut hooks = Vec::new();
    if let Some(window) = web_sys::window() {
        if let Some(document) = window.document() {
            let input = on_input.clone();
            hooks.extend(Listener::new(&document, "visibilitychange", move |_| {
                if document_hidden() {
                    input(&|engine, now| engine.handle_hidden(now));
                }
            }));
        }
        let input = on_input.clone();
        hooks.extend(Listener::new(&window, "pagehide", move |_| {
            input(&|engine, now| engine.handle_pagehide(now));
        }));
    }
    let name = shared.borrow().layout.shared_name();
    let channel = TabChannel::open(&name, move |message| {
        let message = RefCell::new(Some(message));
        on_input(&|engine, now| {
            if let Some(message) = message.borrow_mut().take() {
                engine.handle_tab_message(message, now);
            }
        });
    });
    let mut d = shared.borrow_mut();
    d.hooks = hooks;
    d.channel = channel;
}

impl Drop for Driver {
    /// A store dropped without `close()`: what is unsaved is left as a
    /// rescue copy, as on `pagehide`, so the next open restores it.
    fn drop(&mut self) {
        if matches!(self.engine.phase(), Phase::Ready) {
            self.engine.handle_pagehide(now());
            while let Some(command) = self.engine.poll_command() {
                if matches!(command, StorageCommand::WriteRescue { .. }) {
                    let _ = commands::start(command, &self.layout, None, None, 0);
                }
            }
        }
    }
}
