//! Opening a store: the backend chain (the one the page named, or with
//! `auto` IndexedDB, then localStorage, then memory, each one passed over
//! reported as `storage_degraded`), the first read, what is restored (and
//! what the page is told), and the migrations a stored state needs, asked
//! of the page one schema step at a time, in order.

use serde_json::Value;

use super::pending::Includes;
use super::restore::{choose_slot, sort_rescues, Skipped};
use super::tabs::Adoption;
use super::types::{
    BackendKind, During, LastWrite, MigrationRequest, Phase, RestoreOutcome, StorageCommand,
    StoreEvent, StoredRead, Winner,
};
use super::{Awaiting, StoreEngine};
use crate::core::envelope::Snapshot;
use crate::core::error::SessileError;
use crate::core::sealed::blocking_key_error;
use crate::core::slots::SlotId;

/// A restore waiting for its migrations.
#[derive(Debug)]
pub struct RestoreJob {
    from: SlotId,
    snapshot: Snapshot,
    /// The slot copy (slot and snapshot) when one was valid.
    stored: Option<(SlotId, Snapshot)>,
    rescue_key: Option<String>,
    head: u64,
    includes: Includes,
    skipped: Vec<Skipped>,
    stale: Vec<Snapshot>,
}

/// What a finished migration goes on with.
#[derive(Debug)]
pub enum MigrationGoal {
    /// Opening the store.
    Restore(Box<RestoreJob>),
    /// Taking another tab's (or the stored) copy.
    Adopt(Box<Adoption>),
}

/// Migrations under way: the state at schema `at`, to reach `target`.
#[derive(Debug)]
pub struct MigrationJob {
    goal: MigrationGoal,
    at: u32,
    target: u32,
}

impl StoreEngine {
    /// Asks for the next backend of the chain, or fails when none is left.
    pub(super) fn open_next_backend(&mut self) {
        match self.chain.first() {
            Some(&kind) => {
                self.awaiting = Awaiting::Open;
                self.commands.push_back(StorageCommand::Open(kind));
            }
            None => {
                self.phase = Phase::Failed(SessileError::StorageUnavailable {
                    reason: "no storage backend could be opened".into(),
                });
            }
        }
    }

    /// How the last [`StorageCommand::Open`] went. A backend the page named
    /// that fails ends the open with its error; with `auto` the next one is
    /// tried.
    pub fn handle_backend_opened(&mut self, result: Result<(), SessileError>, _now: u64) {
        if self.awaiting != Awaiting::Open {
            return;
        }
        let kind = self.chain.remove(0);
        match result {
            Ok(()) => {
                self.backend = Some(kind);
                self.awaiting = Awaiting::OpenRead;
                let rescues = kind != BackendKind::Memory;
                self.commands.push_back(StorageCommand::Read { rescues });
            }
            Err(error) if self.config.storage.is_some() => {
                self.awaiting = Awaiting::Nothing;
                self.phase = Phase::Failed(error);
            }
            Err(error) => {
                self.degraded.push((kind, error));
                self.open_next_backend();
            }
        }
    }

    /// What the last [`StorageCommand::Read`] found (or why it failed).
    pub fn handle_read(&mut self, read: Result<StoredRead, SessileError>, now: u64) {
        match self.awaiting {
            Awaiting::OpenRead => {
                self.awaiting = Awaiting::Nothing;
                match read {
                    Ok(read) => self.restore(read, now),
                    Err(error) => self.phase = Phase::Failed(error),
                }
            }
            Awaiting::RefusalRead => self.after_refusal(read, now),
            _ => {}
        }
    }

    fn restore(&mut self, read: StoredRead, now: u64) {
        let using = self.backend.unwrap_or(BackendKind::Memory);
        for (backend, error) in self.degraded.clone() {
            self.emit(StoreEvent::StorageDegraded {
                backend,
                using,
                error,
            });
        }
        let cfg = self.config.envelope;
        let head = read.head.version;
        let (stored, mut skipped) = choose_slot(&read, &cfg);
        let unreadable = stored.is_none() && !skipped.is_empty();
        let rescues = if using == BackendKind::Memory {
            Default::default()
        } else {
            sort_rescues(&read.rescues, head, stored.is_none(), &cfg)
        };
        if !self.config.discard_local {
            let errors = skipped.iter().chain(&rescues.broken).map(|(_, e)| e);
            let restored = stored.as_ref().map(|(_, s)| s.meta.state_version);
            if let Some(error) = blocking_key_error(errors, restored) {
                // Nothing is written or forgotten: the page decides.
                self.phase = Phase::Failed(error);
                return;
            }
        }
        for key in rescues.forget {
            self.commands
                .push_back(StorageCommand::ForgetRescue { key });
        }
        skipped.extend(rescues.broken);
        let (from, snapshot, rescue_key) = match (rescues.chosen, &stored) {
            (Some((key, snap)), _) => (SlotId::Rescue, snap, Some(key)),
            (None, Some((slot, snap))) => (*slot, snap.clone(), None),
            (None, None) => {
                self.start_without_state(head, unreadable, skipped, read.marker);
                self.report_stale(rescues.stale);
                return;
            }
        };
        let includes = match &stored {
            Some((_, s)) if s.meta.state_version == head => Includes(read.head.includes),
            _ => Includes::default(),
        };
        let job = RestoreJob {
            from,
            snapshot,
            stored,
            rescue_key,
            head,
            includes,
            skipped,
            stale: rescues.stale,
        };
        let schema = job.snapshot.meta.schema_version;
        match parse(&job.snapshot.json) {
            Ok(state) => self.migrate(MigrationGoal::Restore(Box::new(job)), state, schema, now),
            Err(error) => self.phase = Phase::Failed(error),
        }
    }

    /// Nothing valid is stored: a fresh session, an evicted one, or an
    /// unreadable one.
    fn start_without_state(
        &mut self,
        head: u64,
        unreadable: bool,
        skipped: Vec<Skipped>,
        marker: Option<String>,
    ) {
        self.version = head;
        self.stored_version = head;
        self.phase = Phase::Ready;
        if unreadable {
            let first = skipped.first().map(|(_, e)| e.clone());
            self.emit(StoreEvent::StateRestored(RestoreOutcome::Unreadable {
                skipped,
            }));
            if let Some(error) = first {
                self.emit(StoreEvent::ErrorOccurred {
                    error,
                    during: During::Restore,
                });
            }
            return;
        }
        let outcome = match marker {
            Some(last_version) if self.backend != Some(BackendKind::Memory) => {
                RestoreOutcome::Evicted { last_version }
            }
            _ => RestoreOutcome::Fresh,
        };
        self.emit(StoreEvent::StateRestored(outcome));
    }

    /// A rescue copy that lost to a newer stored state is a conflict.
    fn report_stale(&mut self, stale: Vec<Snapshot>) {
        for snap in stale {
            if let Ok(local) = parse(&snap.json) {
                let current = self.state.clone();
                self.conflict(
                    local,
                    current,
                    Winner::Remote,
                    snap.meta.state_version,
                    self.version,
                );
            }
        }
    }

    /// Runs the migrations from `schema` to the page's, then goes on with
    /// `goal`. A newer schema is `SCHEMA_TOO_NEW`.
    pub(super) fn migrate(&mut self, goal: MigrationGoal, state: Value, schema: u32, now: u64) {
        let target = self.config.schema_version;
        if schema > target {
            let error = SessileError::SchemaTooNew {
                stored: schema,
                current: target,
            };
            self.migration_failed(goal, error, now);
        } else if schema == target {
            self.migrated(goal, state, false, now);
        } else {
            self.migrations.push_back(MigrationRequest {
                from: schema,
                state,
            });
            self.migration = Some(MigrationJob {
                goal,
                at: schema,
                target,
            });
        }
    }

    /// The page's migration `migrate[from]` gave `result` (its message when
    /// it threw, returned nothing or is missing).
    pub fn handle_migrated(&mut self, from: u32, result: Result<Value, String>, now: u64) {
        let Some(job) = self.migration.take_if(|j| j.at == from) else {
            return;
        };
        match result {
            Err(reason) => {
                let error = SessileError::MigrationFailed { from, reason };
                self.migration_failed(job.goal, error, now);
            }
            Ok(state) if from + 1 == job.target => self.migrated(job.goal, state, true, now),
            Ok(state) => {
                self.migrations.push_back(MigrationRequest {
                    from: from + 1,
                    state,
                });
                self.migration = Some(MigrationJob {
                    at: from + 1,
                    ..job
                });
            }
        }
        self.drive(now);
    }

    fn migration_failed(&mut self, goal: MigrationGoal, error: SessileError, now: u64) {
        match goal {
            MigrationGoal::Restore(_) => self.phase = Phase::Failed(error),
            MigrationGoal::Adopt(adoption) => {
                self.block(error);
                self.adopt_failed(*adoption, now);
            }
        }
    }

    fn migrated(&mut self, goal: MigrationGoal, state: Value, migrated: bool, now: u64) {
        match goal {
            MigrationGoal::Restore(job) => self.restored(*job, state, migrated, now),
            MigrationGoal::Adopt(adoption) => self.adopt(*adoption, state, now),
        }
    }

    fn restored(&mut self, job: RestoreJob, state: Value, migrated: bool, now: u64) {
        let snap = &job.snapshot;
        self.json = super::to_json(&state);
        self.state = state;
        self.modified_at = snap.meta.modified_at_ms;
        self.last_good = job
            .stored
            .as_ref()
            .map(|(slot, s)| (*slot, s.meta.generation));
        // The copy restored from a slot is the last write known, by an earlier page.
        self.last_write = match (&job.stored, job.from) {
            (Some((slot, s)), from) if from != SlotId::Rescue => Some(LastWrite {
                slot: *slot,
                generation: s.meta.generation,
                checksum: s.checksum,
                stored_bytes: s.stored_len,
                compressed: s.compressed,
                at: s.meta.modified_at_ms,
            }),
            _ => None,
        };
        self.stored_version = job.head;
        self.pending.replace(job.includes);
        let version = snap.meta.state_version;
        if job.from == SlotId::Rescue {
            // Continues the stored head: written back as it is.
            self.version = version.max(job.head + 1);
            self.restored_rescue = job.rescue_key;
            self.debouncer.changed(now);
        } else {
            // Never below the head: a newer copy may have been written and
            // then corrupted, and the next write must still win.
            self.version = version.max(job.head);
        }
        if migrated {
            self.version += 1;
            self.debouncer.changed(now);
        }
        self.phase = Phase::Ready;
        self.emit(StoreEvent::StateRestored(RestoreOutcome::Restored {
            from: job.from,
            version: self.version,
            schema_version: snap.meta.schema_version,
            migrated,
            skipped: job.skipped,
        }));
        self.report_stale(job.stale);
    }
}

/// The state in a snapshot's JSON text.
pub(super) fn parse(json: &str) -> Result<Value, SessileError> {
    serde_json::from_slice(json.as_bytes()).map_err(|_| SessileError::InvalidState {
        reason: "the stored JSON text does not parse".into(),
    })
}
