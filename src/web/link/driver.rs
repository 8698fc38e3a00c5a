//! The driver of one link: it owns what the sans-IO engine may not (the
//! clock, one timer armed at `poll_timeout`, the transport, the page's
//! `online`/`offline`/`visibilitychange`/`pageshow` listeners and the crash-safe
//! record), feeds every input to the engine with `now`, and carries out
//! what it polls, in order. Frames wait until a new op's record is stored.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use gloo_timers::callback::Timeout;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::spawn_local;
use web_sys::EventTarget;

use super::browser::{self, now};
use super::options::Endpoint;
use super::records::RecordStore;
use super::transport::{Connection, Connections, Report, Role, Sink, Target};
use crate::core::error::SessileError;
use crate::core::session::link::{stored, Link as Engine, LinkEvent, Transmit};

/// Unread events kept; past it the oldest go (the state stays queryable).
const MAX_QUEUED_EVENTS: usize = 1_024;

pub(super) type Shared = Rc<RefCell<Driver>>;
pub(super) type WeakDriver = Weak<RefCell<Driver>>;

/// A page event listener, removed on close.
struct Listener {
    target: EventTarget,
    kind: &'static str,
    callback: Closure<dyn FnMut(web_sys::Event)>,
}

/// What a transport of connection `generation` reports, handed to the
/// engine while that connection is the current one or the standby (the
/// WebSocket of the race, beside HTTP).
fn on_report(driver: &WeakDriver, generation: u64, report: Report) {
    let Some(rc) = driver.upgrade() else {
        return;
    };
    let Ok(mut d) = rc.try_borrow_mut() else {
        let driver = driver.clone();
        return spawn_local(async move { on_report(&driver, generation, report) });
    };
    let Some(role) = d.net.role(generation).filter(|_| !d.closed) else {
        return;
    };
    let t = now();
    match (report, role) {
        (Report::Connected(transport), _) => d.engine.handle_connected(transport, t),
        // The standby carries nothing until promoted.
        (Report::Frame(_), Role::Standby) => {}
        (Report::Frame(text), Role::Current) => d.engine.handle_frame(text.as_bytes(), t),
        (Report::Closed, role) => {
            d.net.ended(role);
            if role == Role::Standby {
                d.engine.handle_standby_closed(t);
            } else {
                d.engine.handle_closed(t);
            }
        }
    }
    drop(d);
    pump(&rc);
}

/// The state of one link's driver, shared with its callbacks (weakly).
pub(super) struct Driver {
    pub engine: Engine,
    session: String,
    token: String,
    client: String,
    endpoint: Endpoint,
    long_poll_ms: u64,
    remember_key: String,
    remember_ms: u64,
    net: Connections,
    timer: Option<(u64, Timeout)>,
    pub closed: bool,
    /// Ops were added since the record was last stored: frames wait.
    must_persist: bool,
    pub persisting: bool,
    /// The record changed (new version, conflict) and is stored again.
    record_stale: bool,
    /// The last write failed: tried again at the next input.
    persist_owed: bool,
    retry_held: bool,
    pub last_store_error: Option<SessileError>,
    pub records: Rc<dyn RecordStore>,
    pub events: VecDeque<LinkEvent>,
    ticks: u64,
    wakers: Vec<Waker>,
    listeners: Vec<Listener>,
    me: WeakDriver,
}

/// What a driver starts with.
pub(super) struct Start {
    pub engine: Engine,
    pub session: String,
    pub token: String,
    pub client: String,
    pub endpoint: Endpoint,
    pub long_poll_ms: u64,
    pub remember_key: String,
    pub remember_ms: u64,
    pub records: Rc<dyn RecordStore>,
    /// Events to report before the engine's (a record that did not read).
    pub events: Vec<LinkEvent>,
}

impl Driver {
    /// Starts the driver: listeners, the engine opened, its first actions.
    pub fn start(start: Start) -> Shared {
        let rc = Rc::new_cyclic(|me: &WeakDriver| {
            RefCell::new(Driver {
                engine: start.engine,
                session: start.session,
                token: start.token,
                client: start.client,
                endpoint: start.endpoint,
                long_poll_ms: start.long_poll_ms,
                remember_key: start.remember_key,
                remember_ms: start.remember_ms,
                net: Connections::new(),
                timer: None,
                closed: false,
                must_persist: false,
                persisting: false,
                record_stale: false,
                persist_owed: false,
                retry_held: false,
                last_store_error: None,
                records: start.records,
                events: start.events.into(),
                ticks: 0,
                wakers: Vec::new(),
                listeners: Vec::new(),
                me: me.clone(),
            })
        });
        {
            let mut d = rc.borrow_mut();
            d.listen();
            let t = now();
            if !browser::is_online() {
                d.engine.handle_online(false, t);
            }
            d.engine.handle_open(t);
        }
        pump(&rc);
        rc
    }

    fn listen(&mut self) {
        let Some(window) = web_sys::window() else {
            return;
        };
        let me = self.me.clone();
        let online = move |on: bool| {
            let me = me.clone();
            move || input(&me, move |e, now| e.handle_online(on, now))
        };
        let me = self.me.clone();
        let visibility = move || input(&me, |e, now| e.handle_visible(browser::is_visible(), now));
        let me = self.me.clone();
        // Back from the back/forward cache: its socket may have died meanwhile.
        let pageshow = move |e: web_sys::Event| {
            if e.dyn_ref::<web_sys::PageTransitionEvent>()
                .is_some_and(web_sys::PageTransitionEvent::persisted)
            {
                input(&me, |e, now| e.handle_resumed(now));
            }
        };
        let mut add =
            |target: EventTarget, kind: &'static str, f: Box<dyn FnMut(web_sys::Event)>| {
                let callback = Closure::wrap(f);
                let ok = target
                    .add_event_listener_with_callback(kind, callback.as_ref().unchecked_ref())
                    .is_ok();
                if ok {
                    self.listeners.push(Listener {
                        target,
                        kind,
                        callback,
                    });
                }
            };
        let (up, down) = (online(true), online(false));
        add(window.clone().into(), "online", Box::new(move |_| up()));
        add(window.clone().into(), "offline", Box::new(move |_| down()));
        add(window.clone().into(), "pageshow", Box::new(pageshow));
        if let Some(doc) = window.document() {
            add(
                doc.into(),
                "visibilitychange",
                Box::new(move |_| visibility()),
            );
        }
    }

    /// Stops everything at once (no record written: `Link::close` does
    /// that, a dropped link leaves what was stored, as a crash would).
    pub fn shut(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        for l in self.listeners.drain(..) {
            let f = l.callback.as_ref().unchecked_ref();
            let _ = l.target.remove_event_listener_with_callback(l.kind, f);
        }
        self.timer = None;
        self.net.close_all();
        self.notify();
    }

    /// Wakes everything waiting for a change.
    pub fn notify(&mut self) {
        self.ticks = self.ticks.wrapping_add(1);
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Whether the record is stored as it stands (nothing owed or under way).
    pub fn record_settled(&self) -> bool {
        !(self.must_persist || self.persisting || self.record_stale || self.persist_owed)
    }

    /// The store's state to write now.
    pub fn stored_text(&self) -> String {
        stored::stored_text(&self.session, &self.engine.record())
    }

    /// A local change was submitted: store the record before it leaves.
    pub fn submitted(&mut self) {
        self.must_persist = true;
    }

    fn transmit(&mut self, t: Transmit) {
        let Transmit::Open(kind) = t else {
            return self.net.act(t);
        };
        let generation = self.net.next_generation();
        let driver = self.me.clone();
        let sink = Sink::new(move |report| on_report(&driver, generation, report));
        let target = Target {
            ws: &self.endpoint.ws,
            http: &self.endpoint.http,
            session: &self.session,
            token: &self.token,
            client: &self.client,
            long_poll_ms: self.long_poll_ms,
        };
        let opened = Connection::open(kind, &target, sink);
        self.net.opened(generation, opened);
    }

    fn event(&mut self, e: LinkEvent) {
        if matches!(
            e,
            LinkEvent::StateSynchronized { .. } | LinkEvent::Conflict { .. }
        ) {
            self.record_stale = true;
        }
        if let Some(remember) = stored::remember_after(&e, now(), self.remember_ms) {
            browser::local_put(&self.remember_key, remember.as_deref());
        }
        self.queue(e);
    }

    /// Queues an event for the page.
    pub fn queue(&mut self, e: LinkEvent) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn arm_timer(&mut self) {
        let at = self.engine.poll_timeout();
        if self.timer.as_ref().map(|(t, _)| *t) == at {
            return;
        }
        self.timer = at.map(|at| {
            // setTimeout takes a signed 32-bit delay; longer ones fire at once.
            let delay = at.saturating_sub(now()).min(i32::MAX as u64) as u32;
            let me = self.me.clone();
            (at, Timeout::new(delay, move || fire_timer(&me)))
        });
    }
}

/// Runs one input on the engine at `now`, then [`pump`]. Deferred when the
/// driver is busy (never re-entered).
pub(super) fn input<F>(driver: &WeakDriver, f: F)
where
    F: FnOnce(&mut Engine, u64) + 'static,
{
    let Some(rc) = driver.upgrade() else {
        return;
    };
    let Ok(mut d) = rc.try_borrow_mut() else {
        let driver = driver.clone();
        return spawn_local(async move { input(&driver, f) });
    };
    if d.closed {
        return;
    }
    f(&mut d.engine, now());
    drop(d);
    pump(&rc);
}

fn fire_timer(driver: &WeakDriver) {
    if let Some(rc) = driver.upgrade() {
        if let Ok(mut d) = rc.try_borrow_mut() {
            d.timer = None;
        }
    }
    input(driver, |e, now| e.handle_timeout(now));
}

/// Carries out what the engine asks, in order; frames wait while a new op's
/// record is being stored.
pub(super) fn pump(rc: &Shared) {
    let Ok(mut d) = rc.try_borrow_mut() else {
        let weak = Rc::downgrade(rc);
        return spawn_local(async move {
            if let Some(rc) = weak.upgrade() {
                pump(&rc);
            }
        });
    };
    if d.closed {
        return;
    }
    if !d.must_persist {
        while let Some(t) = d.engine.poll_transmit() {
            d.transmit(t);
        }
        while let Some(e) = d.engine.poll_event() {
            d.event(e);
        }
        d.arm_timer();
        d.notify();
    }
    let persist = d.must_persist || d.record_stale || (d.persist_owed && !d.retry_held);
    drop(d);
    if persist {
        persist_now(rc);
    }
}

/// Stores the record (one write at a time); when it is stored, or failed,
/// pumps again. A failure is reported once per run of failures, the op is
/// sent anyway (it is in memory), and the write is owed to the next input.
fn persist_now(rc: &Shared) {
    let Ok(mut d) = rc.try_borrow_mut() else {
        return;
    };
    if d.persisting || d.closed {
        return;
    }
    let had_ops = d.must_persist;
    let failing = d.persist_owed;
    d.must_persist = false;
    d.record_stale = false;
    d.persist_owed = false;
    d.persisting = true;
    let text = d.stored_text();
    let store = d.records.clone();
    let me = d.me.clone();
    drop(d);
    spawn_local(async move {
        let result = store.save(text).await;
        let Some(rc) = me.upgrade() else {
            return;
        };
        let mut d = rc.borrow_mut();
        d.persisting = false;
        let failed = result.is_err();
        match result {
            Ok(()) => d.last_store_error = None,
            Err(e) => {
                d.persist_owed = true;
                if !failing {
                    let mut message = String::from("the outbox could not be stored: ");
                    message.push_str(&crate::core::error_text::message(&e));
                    d.queue(LinkEvent::ErrorOccurred {
                        code: e.code().into(),
                        message,
                        terminal: false,
                    });
                }
                d.last_store_error = Some(e);
            }
        }
        d.notify();
        if d.closed || !(had_ops || d.must_persist || d.record_stale || failed) {
            return;
        }
        d.retry_held = failed;
        drop(d);
        pump(&rc);
        if let Ok(mut d) = rc.try_borrow_mut() {
            d.retry_held = false;
        };
    });
}

/// Resolves at the next change of the driver (an input handled, an event,
/// a write ended, close), or at once when the driver is gone. Callers look
/// at what they wait for (closed included) before waiting.
pub(super) struct Changed {
    driver: WeakDriver,
    seen: Option<u64>,
}

impl Changed {
    pub fn new(driver: &Shared) -> Self {
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
