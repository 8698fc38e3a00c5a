//! What the session driver does with each output of the engine: a
//! command run (storage of the store, the link record, remembered values,
//! the pending register, a call of the server's HTTP API, the client id's
//! lock), a network action carried out on the connection, the timer armed;
//! and what a transport reports, given back to the engine. Nothing is
//! decided here.

use gloo_timers::callback::Timeout;
use wasm_bindgen_futures::spawn_local;

use super::calls;
use super::driver::{input, pump, Driver, WeakDriver};
use super::identity::forget_client;
use crate::core::session::engine::{Failure, Scope, SessionCommand};
use crate::core::session::link::Transmit;
use crate::core::session::store::layout::KEY_PREFIX;
use crate::core::session::store::StorageCommand;
use crate::web::crypt;
use crate::web::link::browser::session_put;
use crate::web::link::transport::{Connection, Report, Role, Sink, Target};
use crate::web::store::commands::{self, is_async};
use crate::web::store::local;
use crate::web::store::page::now;

/// Work on the link record, one at a time.
pub(super) enum RecordJob {
    Write(String),
    Remove,
}

impl Driver {
    /// Runs one command of the engine: the synchronous ones now (their
    /// answer, if any, given at once), the others queued or started.
    /// Register entries written are added to `written` for this page's
    /// other sessions of the namespace.
    pub(super) fn run(
        &mut self,
        command: SessionCommand,
        written: &mut Vec<(String, Option<String>)>,
    ) {
        match command {
            SessionCommand::Store(c @ StorageCommand::WriteRescue { .. }) => {
                // The page is going away: written at once, wherever it is.
                let _ = commands::start(c, &self.layout, None, self.key.as_ref(), 0);
            }
            SessionCommand::Store(c) => self.queue.push_back(c),
            // The record store is this client's (`<name>:link:<client>`).
            SessionCommand::WriteRecord { text, .. } => {
                self.record_jobs.push_back(RecordJob::Write(text))
            }
            SessionCommand::RemoveRecord { .. } => self.record_jobs.push_back(RecordJob::Remove),
            SessionCommand::Remember { scope, key, value } => match scope {
                Scope::Tab => session_put(&[KEY_PREFIX, &key].concat(), value.as_deref()),
                _ => match value {
                    // A failure is ignored: the value only saves a round trip.
                    Some(text) => {
                        let _ = local::write_text(&key, &text);
                    }
                    None => local::forget(&key),
                },
            },
            SessionCommand::WriteRegister {
                key,
                value: Some(text),
            } if self.key.is_some() => self.write_sealed_entry(key, text),
            SessionCommand::WriteRegister { key, value } => {
                let result = match &value {
                    Some(text) => local::write_text(&key, text),
                    None => {
                        local::forget(&key);
                        Ok(())
                    }
                };
                if result.is_ok() {
                    written.push((key, value));
                }
                self.engine.handle_register_written(result, now());
            }
            SessionCommand::Call { id, call } => {
                let base = self.endpoint.as_ref().map(|e| e.http.clone());
                let weak = self.me.clone();
                spawn_local(async move {
                    let result = match base {
                        Some(base) => calls::make(&base, &call).await,
                        None => Err(Failure::new(
                            "INVALID_OPTIONS",
                            "the session has no server to call",
                            false,
                        )),
                    };
                    input(&weak, move |d, now| {
                        d.engine.handle_call_result(id, result, now)
                    });
                });
            }
            SessionCommand::ReleaseClient { forget } => {
                self.client_lock = None;
                if forget {
                    forget_client(&self.layout, &self.client);
                }
            }
        }
    }

    /// Writes this client's register entry sealed with the page's key
    /// (docs/STORAGE.md, "Encryption"): WebCrypto answers later, so the
    /// engine hears how it went then, and this page's other sessions of
    /// the namespace get the plain entry at the next turn.
    fn write_sealed_entry(&mut self, key: String, text: String) {
        let Some(cipher) = self.key.clone() else {
            return;
        };
        let weak = self.me.clone();
        spawn_local(async move {
            let sealed = crypt::seal_text(&cipher, &text).await;
            input(&weak, move |d, now| {
                if !d.engine.register_write_awaited() {
                    return;
                }
                let result = sealed.and_then(|stored| local::write_text(&key, &stored));
                if result.is_ok() {
                    d.relayed.push((key, Some(text)));
                }
                d.engine.handle_register_written(result, now);
            });
        });
    }

    /// Starts the store commands at the front of the queue: the ones
    /// without an answer at once, an answered one when none is under way.
    pub(super) fn start_store_commands(&mut self) -> bool {
        let mut started = false;
        while let Some(front) = self.queue.front() {
            if is_async(front) && self.running {
                break;
            }
            let Some(command) = self.queue.pop_front() else {
                break;
            };
            started = true;
            let Some(pending) = commands::start(
                command,
                &self.layout,
                self.backend.clone(),
                self.key.as_ref(),
                self.replaces_up_to,
            ) else {
                continue;
            };
            self.running = true;
            let weak = self.me.clone();
            spawn_local(async move {
                let answer = pending.await;
                let Some(shared) = weak.upgrade() else { return };
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
        started
    }

    /// Starts the next record job when none is under way.
    pub(super) fn start_record_job(&mut self) -> bool {
        if self.record_running {
            return false;
        }
        let Some(job) = self.record_jobs.pop_front() else {
            return false;
        };
        let Some(records) = self.records.clone() else {
            return true;
        };
        self.record_running = true;
        let weak = self.me.clone();
        spawn_local(async move {
            let stored = match job {
                RecordJob::Write(text) => Some(records.save(&text).await),
                RecordJob::Remove => {
                    // The session is over: a record left behind names a
                    // session nobody resumes.
                    let _ = records.remove().await;
                    None
                }
            };
            let Some(shared) = weak.upgrade() else { return };
            {
                let mut d = shared.borrow_mut();
                d.record_running = false;
                if let Some(result) = stored {
                    d.engine.handle_record_stored(result, now());
                }
                d.notify();
            }
            pump(&shared);
        });
        true
    }

    /// Carries out one network action of the engine.
    pub(super) fn transmit(&mut self, t: Transmit) {
        let Transmit::Open(kind) = t else {
            return self.net.act(t);
        };
        let generation = self.net.next_generation();
        let (Some(server), Some(endpoint)) = (self.engine.server_session(), self.endpoint.as_ref())
        else {
            return;
        };
        let driver = self.me.clone();
        let sink = Sink::new(move |report| on_report(&driver, generation, report));
        let target = Target {
            ws: &endpoint.ws,
            http: &endpoint.http,
            session: &server.id,
            token: &server.token,
            client: &self.client.0,
            long_poll_ms: self.long_poll_ms,
        };
        let opened = Connection::open(kind, &target, sink);
        self.net.opened(generation, opened);
    }

    /// Arms the timer for the engine's next deadline (or disarms it).
    pub(super) fn arm_timer(&mut self) {
        let due = self.engine.poll_timeout();
        if self.timer.as_ref().map(|(at, _)| *at) == due {
            return;
        }
        self.timer = due.map(|at| {
            // setTimeout takes a signed 32-bit delay; longer ones fire at once.
            let delay = at.saturating_sub(now()).min(i32::MAX as u64) as u32;
            let weak = self.me.clone();
            let fire = move || {
                if let Some(rc) = weak.upgrade() {
                    if let Ok(mut d) = rc.try_borrow_mut() {
                        d.timer = None;
                    }
                }
                input(&weak, |d, now| d.engine.handle_timeout(now));
            };
            (at, Timeout::new(delay, fire))
        });
    }
}

/// What a transport of connection `generation` reports, given to the
/// engine while that connection is the current one or the standby (the
/// WebSocket of the race, beside HTTP).
fn on_report(driver: &WeakDriver, generation: u64, report: Report) {
    input(driver, move |d, now| {
        let Some(role) = d.net.role(generation) else {
            return;
        };
        match (report, role) {
            (Report::Connected(transport), _) => d.engine.handle_connected(transport, now),
            // The standby carries nothing until promoted.
            (Report::Frame(_), Role::Standby) => {}
            (Report::Frame(text), Role::Current) => d.engine.handle_frame(text.as_bytes(), now),
            (Report::Closed, role) => {
                d.net.ended(role);
                if role == Role::Standby {
                    d.engine.handle_standby_closed(now);
                } else {
                    d.engine.handle_closed(now);
                }
            }
        }
    });
}
