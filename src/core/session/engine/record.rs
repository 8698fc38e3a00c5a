//! What the engine writes for the link, and when: the link record (the
//! server version, its state and the outbox, crash-safe, written before
//! any frame carrying a new op leaves; one write at a time; a failed write
//! reported once and tried again at the next input, the op sent anyway),
//! and this client's entry of the pending register (written on every
//! change of its outbox, the short form when the full one does not fit,
//! reported once when neither can be stored).

use serde_json::Value;

use super::register;
use super::types::{Failure, SessionCommand, SessionEvent};
use super::SessionEngine;
use crate::core::error::{Result, SessileError};
use crate::core::session::link::stored::{self, Resume};
use crate::core::session::link::{LinkRecord, LinkState};
use crate::core::vec_map::VecMap;

/// The link record's writes.
#[derive(Debug, Default)]
pub struct Records {
    /// A write is under way, started at this gate count.
    writing: Option<u64>,
    /// The record changed since the last write started.
    dirty: bool,
    /// Frames wait until a write started after the last new op ends.
    hold_sends: bool,
    gates: u64,
    /// The last write failed (reported once per run of failures).
    failing: bool,
    /// Wait for the next input before trying again.
    retry_later: bool,
}

impl Records {
    /// Frames wait.
    pub fn holds_sends(&self) -> bool {
        self.hold_sends
    }

    /// The record changed; with `gate` it holds new ops, and frames wait
    /// until it is stored.
    pub fn changed(&mut self, gate: bool) {
        self.dirty = true;
        if gate {
            self.gates += 1;
            self.hold_sends = true;
        }
    }

    /// An input arrived: a failed write may be tried again.
    pub fn input(&mut self) {
        self.retry_later = false;
    }

    /// Starts a write when one is due and none is under way.
    fn start(&mut self) -> bool {
        if self.writing.is_some() || !self.dirty || self.retry_later {
            return false;
        }
        self.dirty = false;
        self.writing = Some(self.gates);
        true
    }

    /// Nothing more will be written (the link is dropped); frames of the
    /// dropped link are gone with it.
    pub fn stop(&mut self) {
        *self = Records::default();
    }
}

/// This client's entry of the pending register.
#[derive(Debug, Default)]
pub struct Entries {
    /// The text last stored ("" for none).
    published: String,
    /// The text being written and whether it is the short form.
    writing: Option<(String, bool)>,
    /// The short form of the entry being written.
    short: String,
    /// The entry changed while a write was under way.
    dirty: bool,
    /// The full form the storage last refused (its short form stands in
    /// for it until the ops change).
    refused: String,
    failing: bool,
    /// The other clients' entries: client → JSON text.
    pub others: VecMap<String, String>,
    /// What this client changed on top of other clients' listed ops.
    pub over: Vec<register::Over>,
}

impl Entries {
    /// The entries found at open: this client's own (as stored: it is
    /// rewritten or removed only when it differs) and the others'.
    pub fn found(register: &[(String, String)], client: &str) -> Self {
        let mut entries = Entries::default();
        for (c, text) in register {
            if c == client {
                entries.published.clone_from(text);
            } else {
                entries.others.insert(c.clone(), text.clone());
            }
        }
        entries
    }

    /// The link starts on session `session`: the marks this client's entry
    /// carries for it are taken up again (after a reload, or by the tab
    /// that adopts this id), others dropped.
    pub fn resume_over(&mut self, session: &str) {
        self.over = register::overs_of(Some(&self.published), session);
    }
}

/// The record as stored: `{"session": id, "record": {...}}` (the link
/// driver's [`stored_text`](stored::stored_text)) and the engine's own
/// fields beside it (`madeOn`, `held`: `Tracking::saved`).
pub fn wrap(session: &str, record: &str, extra: &[(&str, Value)]) -> String {
    let mut out = stored::stored_text(session, record);
    out.pop(); // its closing brace
    for (key, value) in extra {
        out.push_str(&[",\"", key, "\":", &super::json_text(value)].concat());
    }
    out.push('}');
    out
}

/// The link record of session `session` for `client` in the stored text
/// (which one a link resumes is the link driver's rule,
/// [`stored::resume`]), with the stored object (its other fields are the
/// engine's): `None` when there is none, or it is another session's;
/// `OUTBOX_CORRUPT` when it does not read.
pub fn unwrap(
    text: Option<&str>,
    session: &str,
    client: &str,
) -> Result<Option<(LinkRecord, Value)>> {
    let record = match stored::resume(text, session, client) {
        Resume::Record(record) => record,
        Resume::Corrupt(e) => return Err(e),
        _ => return Ok(None),
    };
    let saved = text.and_then(|t| serde_json::from_slice(t.as_bytes()).ok());
    Ok(Some((record, saved.unwrap_or(Value::Null))))
}

/// How large this tab's link record may be for a state limit of
/// `state_limit` bytes: the confirmed state, the unanswered ops' patches
/// and what each was made on (their patch and the page's values there),
/// four states' worth, plus 64 KiB; at most the envelope's limit. Above it
/// the record is not stored (reported once) and the ops are sent anyway.
pub fn record_limit(state_limit: usize) -> usize {
    state_limit
        .saturating_mul(4)
        .saturating_add(64 * 1024)
        .min(crate::core::envelope::MAX_RAW_BYTES_LIMIT)
}

impl SessionEngine {
    /// Writes the link record when it is due.
    pub(super) fn write_record(&mut self) {
        let key = self.key_of_record();
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let (Some(link), Some(server)) = (sync.link.as_ref(), sync.server.as_ref()) else {
            return;
        };
        if sync.records.start() {
            let text = wrap(&server.id, &link.record(), &sync.tracking.saved());
            sync.remember_record(&text);
            self.commands
                .push_back(SessionCommand::WriteRecord { key, text });
        }
    }

    /// The key of this client's link record.
    pub(super) fn key_of_record(&self) -> String {
        self.key(&[":link:", self.client.0.as_str()].concat())
    }

    /// How the last [`SessionCommand::WriteRecord`] went. A failure is
    /// reported once (`error_occurred`, with the storage's code) and the
    /// ops are sent anyway: they are in memory and in the page's state.
    pub fn handle_record_stored(
        &mut self,
        result: std::result::Result<(), SessileError>,
        now: u64,
    ) {
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let Some(gate) = sync.records.writing.take() else {
            return;
        };
        if gate >= sync.records.gates {
            sync.records.hold_sends = false;
        }
        match result {
            Ok(()) => sync.records.failing = false,
            Err(error) => {
                sync.records.dirty = true;
                sync.records.retry_later = true;
                if !sync.records.failing {
                    sync.records.failing = true;
                    let message = [
                        "the outbox could not be stored: ",
                        &Failure::from(&error).message,
                    ]
                    .concat();
                    let failure = Failure::new(error.code(), &message, false);
                    self.events.push_back(SessionEvent::error(&failure, false));
                }
            }
        }
        self.after(now);
    }

    /// Lists this client's unanswered ops in the pending register when
    /// they changed (with `closing`, also after the link stopped: a tab
    /// that closes with ops unsent leaves them listed for the tab that
    /// adopts its id).
    pub(super) fn publish(&mut self) {
        let key = self.key(&[":pending:", self.client.0.as_str()].concat());
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let (Some(link), Some(server)) = (sync.link.as_ref(), sync.server.as_ref()) else {
            return;
        };
        let held = sync.tracking.held_ops(&self.client.0);
        let ops: Vec<_> = link.outbox().iter().chain(&held).collect();
        let entries = &mut sync.entries;
        register::prune_over(&mut entries.over, &entries.others, &server.id);
        let (text, short) = register::entry(&server.id, &ops, &entries.over).unwrap_or_default();
        if entries.writing.is_some() {
            entries.dirty = true;
            return;
        }
        if text == entries.published || (!text.is_empty() && text == entries.refused) {
            return;
        }
        entries.short = short;
        entries.writing = Some((text.clone(), false));
        let value = (!text.is_empty()).then_some(text);
        self.commands
            .push_back(SessionCommand::WriteRegister { key, value });
    }

    /// Whether a [`SessionCommand::WriteRegister`] is still to be answered
    /// and the session still runs: a driver that seals the entry first
    /// (a page with a key) writes it only then, so that an entry `end`
    /// removed meanwhile is not written back.
    pub fn register_write_awaited(&self) -> bool {
        self.sync
            .as_ref()
            .is_some_and(|s| !s.stopped && s.entries.writing.is_some())
    }

    /// How the last [`SessionCommand::WriteRegister`] went. A full entry
    /// the storage refused is written again in its short form ("anything",
    /// until its last op is applied); when that fails too the page is told
    /// once (`QUOTA_EXCEEDED` or `STORAGE_UNAVAILABLE`).
    pub fn handle_register_written(
        &mut self,
        result: std::result::Result<(), SessileError>,
        now: u64,
    ) {
        let key = self.key(&[":pending:", self.client.0.as_str()].concat());
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let entries = &mut sync.entries;
        let Some((text, short)) = entries.writing.take() else {
            return;
        };
        match result {
            Ok(()) => {
                entries.published = text;
                entries.failing = false;
            }
            Err(_) if !short && !text.is_empty() && !entries.short.is_empty() => {
                entries.refused = text;
                let short = std::mem::take(&mut entries.short);
                entries.writing = Some((short.clone(), true));
                self.commands.push_back(SessionCommand::WriteRegister {
                    key,
                    value: Some(short),
                });
                return;
            }
            Err(error) => {
                if !entries.failing {
                    entries.failing = true;
                    let code = if error.code() == "QUOTA_EXCEEDED" {
                        "QUOTA_EXCEEDED"
                    } else {
                        "STORAGE_UNAVAILABLE"
                    };
                    let message = [
                        "the list of this tab's unsent changes could not be stored for the other tabs: ",
                        &Failure::from(&error).message,
                    ]
                    .concat();
                    let failure = Failure::new(code, &message, false);
                    self.events.push_back(SessionEvent::error(&failure, false));
                }
            }
        }
        if std::mem::take(&mut entries.dirty) {
            self.publish();
        }
        self.after(now);
    }

    /// Another client's entry of the pending register, as the `storage`
    /// event (or the read at open) gives it; `None` when it was removed.
    /// This tab's own entry is ignored. The page's state is looked at again
    /// at once: a change the server's copy has may be shown now.
    pub fn handle_register_entry(&mut self, client: &str, text: Option<&str>, now: u64) {
        self.input(now);
        if client == self.client.0 {
            return;
        }
        let Some(sync) = self.sync.as_mut() else {
            return;
        };
        let others = &mut sync.entries.others;
        let changed = match text {
            Some(t) => others.insert(client.into(), t.into()).as_deref() != Some(t),
            None => others.remove(client).is_some(),
        };
        // Only a connected link's copy is current: one that is down holds
        // the server as it was, older than what this tab may have taken
        // from another tab since (its next connection reconciles).
        let current = sync
            .link
            .as_ref()
            .is_some_and(|l| matches!(l.state(), LinkState::Connected { .. }));
        if changed && current && self.phase == super::EnginePhase::Ready {
            self.reconcile(true, now);
        }
        self.after(now);
    }
}
