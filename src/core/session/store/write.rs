//! How the store writes: when (debounce, at once when hidden or flushed,
//! after a backoff when the last attempt failed), one write at a time,
//! compare-and-set on the head it is based on, what a refused write leads
//! to (take the newer copy, write over bytes that do not decode, wait on a
//! read that failed, follow a clear), the rescue copy, `flush`, `clear` and
//! `close`.

use super::open::{parse, MigrationGoal};
use super::pending::Includes;
use super::restore::{after_refusal, AfterRefusal};
use super::tabs::{Adoption, Source};
use super::types::{
    BackendKind, Completion, During, Head, LastWrite, Phase, RequestId, StorageCommand, StoreEvent,
    StoredRead, TabMessage, Winner, WriteResult,
};
use super::{Awaiting, StoreEngine};
use crate::core::envelope::{encode, read_header, SnapshotMeta};
use crate::core::error::SessileError;
use crate::core::slots::{next_write, SlotId};

/// Stale writes a flush retries before it gives up with `STALE_WRITE`.
const STALE_RETRIES: u32 = 4;

/// A `flush` (or the flush of a `close`) waiting.
#[derive(Debug, Clone)]
pub struct FlushWait {
    id: RequestId,
    close: bool,
    /// The write whose result it waits for; `None`: the next one.
    after: Option<u64>,
    stale_retries: u32,
}

impl FlushWait {
    /// A flush waiting for the next write.
    pub fn new(id: RequestId, close: bool) -> Self {
        Self {
            id,
            close,
            after: None,
            stale_retries: 0,
        }
    }
}

/// The write under way.
#[derive(Debug)]
pub struct InFlight {
    number: u64,
    slot: SlotId,
    generation: u16,
    base: u64,
    head: Head,
    bytes: Vec<u8>,
    schema: u32,
    state: serde_json::Value,
    retried: bool,
    refused_by: u64,
}

/// How a write ended, for the flushes and the timer.
#[derive(Debug, Clone)]
pub(super) enum WriteEnd {
    Stored,
    Stale { stored: u64, attempted: u64 },
    Failed(SessileError),
}

impl StoreEngine {
    /// Starts whatever is due: a clear, the writes flushes wait for, a
    /// write the page's hiding asked for or the timer's write.
    pub(super) fn drive(&mut self, now: u64) {
        if self.phase != Phase::Ready
            || self.awaiting != Awaiting::Nothing
            || self.migration.is_some()
        {
            return;
        }
        if let Some(tombstone) = self.deferred_clear.take() {
            self.follow_clear(tombstone);
        }
        if let Some(message) = self.queued_tab.take() {
            self.receive_tab(message, now);
            if self.migration.is_some() {
                return;
            }
        }
        if !self.clears.is_empty() {
            let at_least = self.version.max(self.stored_version) + 1;
            self.awaiting = Awaiting::Clear;
            self.commands.push_back(StorageCommand::Clear { at_least });
            return;
        }
        if self.flushes.iter().any(|f| f.after.is_none()) {
            if !self.debouncer.unsaved() {
                self.finish_flushes(|f| f.after.is_none(), Ok(()));
                return;
            }
            if let Some(blocked) = self.blocked.clone() {
                self.finish_flushes(|f| f.after.is_none(), Err(blocked));
                return;
            }
            match self.start_write() {
                Ok(number) => {
                    for f in self.flushes.iter_mut().filter(|f| f.after.is_none()) {
                        f.after = Some(number);
                    }
                }
                Err(error) => self.finish_flushes(|f| f.after.is_none(), Err(error)),
            }
            return;
        }
        let timer_due = self.debouncer.due_at().is_some_and(|at| at <= now)
            && self.backoff_until.is_none_or(|at| at <= now);
        if self.debouncer.unsaved() && self.blocked.is_none() && (self.write_soon || timer_due) {
            if let Err(error) = self.start_write() {
                self.write_failed(error, false, now);
            }
        }
    }

    /// Encodes the current state and asks for its compare-and-set write.
    fn start_write(&mut self) -> Result<u64, SessileError> {
        let plan = next_write(self.last_good);
        let meta = SnapshotMeta {
            generation: plan.generation,
            schema_version: self.config.schema_version,
            state_version: self.version,
            modified_at_ms: self.modified_at,
        };
        let bytes = encode(&self.json, &meta, &self.config.envelope)?;
        self.debouncer.taken();
        self.write_soon = false;
        self.writes += 1;
        let head = Head {
            version: self.version,
            includes: self.pending.includes().0.clone(),
        };
        let flight = InFlight {
            number: self.writes,
            slot: plan.slot,
            generation: plan.generation,
            base: self.stored_version,
            head,
            bytes,
            schema: self.config.schema_version,
            state: self.state.clone(),
            retried: false,
            refused_by: 0,
        };
        self.send_write(&flight);
        self.in_flight = Some(flight);
        Ok(self.writes)
    }

    fn send_write(&mut self, flight: &InFlight) {
        self.awaiting = Awaiting::Write;
        self.commands.push_back(StorageCommand::WriteSlot {
            slot: flight.slot,
            base: flight.base,
            head: flight.head.clone(),
            bytes: flight.bytes.clone(),
        });
    }

    /// How the last [`StorageCommand::WriteSlot`] went.
    pub fn handle_write_result(&mut self, result: WriteResult, now: u64) {
        if self.awaiting != Awaiting::Write {
            return;
        }
        let Some(mut flight) = self.in_flight.take() else {
            return;
        };
        match result {
            WriteResult::Stored => {
                self.stored(&flight, now);
                self.end_write(flight.number, WriteEnd::Stored, now);
            }
            WriteResult::Refused { head } => {
                // Still in flight until the stored state is taken: a write
                // planned meanwhile would start from this tab's stale slot.
                flight.refused_by = head;
                self.in_flight = Some(flight);
                self.awaiting = Awaiting::RefusalRead;
                self.commands
                    .push_back(StorageCommand::Read { rescues: false });
            }
            WriteResult::Failed {
                connection_closed: true,
                ..
            } if !flight.retried => {
                flight.retried = true;
                self.send_write(&flight);
                self.in_flight = Some(flight);
            }
            WriteResult::Failed { error, .. } => {
                self.debouncer.changed(now);
                self.last_error = Some(error.clone());
                self.end_write(flight.number, WriteEnd::Failed(error), now);
            }
        }
    }

    /// After a stored write: the new head, the rescue copies it replaces,
    /// the eviction marker, and the other tabs told.
    fn stored(&mut self, flight: &InFlight, now: u64) {
        self.last_good = Some((flight.slot, flight.generation));
        self.stored_version = self.stored_version.max(flight.head.version);
        self.last_error = None;
        let (checksum, compressed) = match read_header(&flight.bytes) {
            Ok(h) => (h.checksum, h.flags & 1 != 0),
            Err(_) => (0, false),
        };
        self.last_write = Some(LastWrite {
            slot: flight.slot,
            generation: flight.generation,
            checksum,
            stored_bytes: flight.bytes.len(),
            compressed,
            at: now,
        });
        let mine = Includes(flight.head.includes.clone()).of(self.pending.client());
        self.pending.stored(mine);
        self.pending.taken_stored(flight.head.version);
        // This tab's rescue copy, and one restored at open, are older than
        // what is stored now. Other tabs' rescue copies are theirs.
        let key = self.rescue_key();
        self.commands
            .push_back(StorageCommand::ForgetRescue { key });
        if let Some(key) = self.restored_rescue.take() {
            self.commands
                .push_back(StorageCommand::ForgetRescue { key });
        }
        if self.backend != Some(BackendKind::Memory) {
            self.commands.push_back(StorageCommand::WriteMarker {
                version: flight.head.version,
            });
        }
        self.announcements.push_back(TabMessage::Stored {
            from: self.config.client.clone(),
            version: flight.head.version,
            slot: flight.slot,
            generation: flight.generation,
            schema: flight.schema,
            state: flight.state.clone(),
            includes: flight.head.includes.clone(),
        });
    }

    /// A fresh read after a refused write: take the newer copy, follow a
    /// clear, write over what does not decode, or wait (a failed read).
    pub(super) fn after_refusal(&mut self, read: Result<StoredRead, SessileError>, now: u64) {
        let Some(flight) = self.in_flight.take() else {
            return;
        };
        let refused_by = flight.refused_by;
        let attempted = flight.head.version;
        let number = flight.number;
        let cfg = self.config.envelope;
        let decision = match &read {
            Ok(read) => after_refusal(read, refused_by, &cfg),
            Err(error) => AfterRefusal::Unread(error.clone()),
        };
        let local = self.state.clone();
        match decision {
            AfterRefusal::Unread(error) => {
                // The head this tab knows stays; the state stays unsaved.
                self.debouncer.changed(now);
                self.last_error = Some(error.clone());
                self.end_write(number, WriteEnd::Failed(error), now);
            }
            AfterRefusal::Cleared { tombstone } => {
                // The session ended; this tab's state is not written back.
                self.reset_to_initial(tombstone);
                let remote = self.state.clone();
                self.conflict(local, remote, Winner::Remote, attempted, tombstone);
                self.emit(StoreEvent::SessionUpdated {
                    version: tombstone,
                    cleared: true,
                    rebased: 0,
                });
                let stale = WriteEnd::Stale {
                    stored: tombstone,
                    attempted,
                };
                self.end_write(number, stale, now);
            }
            AfterRefusal::WriteOver { head } => {
                // Written over: the next write is based on the head that
                // refused this one, and is newer than it (the stored head
                // only grows, even over a copy nobody can read).
                self.stored_version = head;
                self.version = self.version.max(head + 1);
                self.debouncer.changed(now);
                self.conflict(
                    local,
                    serde_json::Value::Null,
                    Winner::Local,
                    attempted,
                    head,
                );
                let stale = WriteEnd::Stale {
                    stored: head,
                    attempted,
                };
                self.end_write(number, stale, now);
            }
            AfterRefusal::Take(slot, snapshot) => {
                let head = read.map(|r| r.head).unwrap_or_default();
                let includes = if head.version == snapshot.meta.state_version {
                    head.includes
                } else {
                    Vec::new()
                };
                let adoption = Adoption {
                    version: snapshot.meta.state_version,
                    slot,
                    generation: snapshot.meta.generation,
                    includes: Includes(includes),
                    source: Source::Refused {
                        write: number,
                        attempted,
                    },
                };
                // Still in flight while it migrates.
                self.in_flight = Some(flight);
                match parse(&snapshot.json) {
                    Ok(state) => {
                        let schema = snapshot.meta.schema_version;
                        self.migrate(MigrationGoal::Adopt(Box::new(adoption)), state, schema, now);
                    }
                    Err(error) => {
                        self.in_flight = None;
                        self.debouncer.changed(now);
                        self.end_write(number, WriteEnd::Failed(error), now);
                    }
                }
            }
        }
    }

    /// A write ended: the flushes waiting for it, the timer's backoff, then
    /// whatever is due next.
    pub(super) fn end_write(&mut self, number: u64, end: WriteEnd, now: u64) {
        self.in_flight = None;
        self.awaiting = Awaiting::Nothing;
        let flushed = self.flushes.iter().any(|f| f.after == Some(number));
        match &end {
            WriteEnd::Stored | WriteEnd::Stale { .. } => {
                self.failures = 0;
                self.backoff_until = None;
            }
            WriteEnd::Failed(error) if !flushed => self.write_failed(error.clone(), true, now),
            WriteEnd::Failed(_) => {}
        }
        let unsaved = self.debouncer.unsaved();
        let mut done = Vec::new();
        for f in self.flushes.iter_mut().filter(|f| f.after == Some(number)) {
            match &end {
                WriteEnd::Stored => f.after = None,
                WriteEnd::Stale { .. } if unsaved && f.stale_retries < STALE_RETRIES => {
                    f.stale_retries += 1;
                    f.after = None;
                }
                &WriteEnd::Stale { stored, attempted } => {
                    done.push((f.id, Err(SessileError::StaleWrite { stored, attempted })))
                }
                WriteEnd::Failed(error) => done.push((f.id, Err(error.clone()))),
            }
        }
        for (id, result) in done {
            self.finish_flushes(|f| f.id == id, result);
        }
        self.drive(now);
    }

    /// A write the timer (or hiding the page) started failed: report the
    /// first failure of a run, and wait longer before each next attempt.
    fn write_failed(&mut self, error: SessileError, already_unsaved: bool, now: u64) {
        if !already_unsaved {
            self.last_error = Some(error.clone());
        }
        if self.failures == 0 {
            self.emit(StoreEvent::ErrorOccurred {
                error,
                during: During::Write,
            });
        }
        self.failures += 1;
        self.backoff_until = Some(now.saturating_add(self.debouncer.backoff_ms(self.failures)));
    }

    /// Completes the flushes `which` with `result`; a close's flush closes.
    fn finish_flushes(
        &mut self,
        which: impl Fn(&FlushWait) -> bool,
        result: Result<(), SessileError>,
    ) {
        let (done, kept): (Vec<_>, Vec<_>) = self.flushes.drain(..).partition(|f| which(f));
        self.flushes = kept;
        for f in done {
            if f.close {
                if result.is_err() {
                    self.write_rescue();
                }
                self.phase = Phase::Closed;
            }
            self.completions.push_back(Completion {
                id: f.id,
                result: result.clone(),
            });
        }
    }

    /// This tab's rescue copy, if anything is unsaved or being written.
    pub(super) fn write_rescue(&mut self) {
        if !self.debouncer.unsaved() && self.in_flight.is_none() {
            return;
        }
        if self.backend == Some(BackendKind::Memory) || self.blocked.is_some() {
            return;
        }
        let plan = next_write(self.last_good);
        let meta = SnapshotMeta {
            generation: plan.generation,
            schema_version: self.config.schema_version,
            state_version: self.version,
            modified_at_ms: self.modified_at,
        };
        if let Ok(bytes) = encode(&self.json, &meta, &self.config.envelope) {
            self.commands.push_back(StorageCommand::WriteRescue {
                key: self.rescue_key(),
                base: self.stored_version,
                bytes,
            });
        }
    }

    /// How the last [`StorageCommand::Clear`] went: the tombstone head it
    /// left, or why it failed (nothing was removed).
    pub fn handle_cleared(&mut self, result: Result<u64, SessileError>, now: u64) {
        if self.awaiting != Awaiting::Clear {
            return;
        }
        self.awaiting = Awaiting::Nothing;
        if let Ok(tombstone) = result {
            // Every tab's rescue copy: one left before the clear must not
            // bring the session back.
            self.commands.push_back(StorageCommand::ForgetAllRescues);
            self.commands.push_back(StorageCommand::ClearMarker);
            self.reset_to_initial(tombstone);
            self.announcements.push_back(TabMessage::Cleared {
                from: self.config.client.clone(),
                version: tombstone,
            });
        }
        // Every clear() asked so far is done by this one (or failed with it).
        for id in std::mem::take(&mut self.clears) {
            let result = result.clone().map(|_| ());
            self.completions.push_back(Completion { id, result });
        }
        self.drive(now);
    }
}
