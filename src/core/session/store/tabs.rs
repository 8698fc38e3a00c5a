//! What a tab takes from elsewhere: another tab's announcement (a newer
//! stored head, or a clear), a stored copy found after a refused write, and
//! a copy from the server. A store alone lets the newer copy win and
//! reports this tab's unsaved change as a `conflict`. A synced store
//! (`rebase`) puts its own changes the copy lacks back on top and shows
//! them: a change that some client still has to send is never replaced;
//! so are the server states it took and has not stored yet, so it never
//! shows a state older than the server's it already had.

use serde_json::Value;

use super::pending::Includes;
use super::types::{OpSeq, Phase, StoreEvent, TabMessage, Winner};
use super::write::WriteEnd;
use super::{Awaiting, StoreEngine};
use crate::core::error::SessileError;
use crate::core::slots::SlotId;

/// Where a copy being taken came from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Another tab announced it.
    Tab,
    /// Found in storage after write `write` (of version `attempted`) was refused.
    Refused {
        /// The refused write's number.
        write: u64,
        /// The version it tried to store.
        attempted: u64,
    },
}

/// A stored copy to take, once its state is at the page's schema.
#[derive(Debug)]
pub struct Adoption {
    /// Its version (the stored head).
    pub version: u64,
    /// The slot holding it.
    pub slot: SlotId,
    /// The slot's generation.
    pub generation: u16,
    /// The changes it includes.
    pub includes: Includes,
    /// Where it came from.
    pub source: Source,
}

impl StoreEngine {
    /// Another tab's message (BroadcastChannel). Only a head newer than the
    /// one this tab knows is news. During this tab's own write it is left to
    /// the compare-and-set (which finds the newer copy), except a clear,
    /// which is applied once that write ended, so a write that got in first
    /// cannot hide it.
    pub fn handle_tab_message(&mut self, message: TabMessage, now: u64) {
        self.receive_tab(message, now);
        self.drive(now);
    }

    pub(super) fn receive_tab(&mut self, message: TabMessage, now: u64) {
        if self.phase != Phase::Ready {
            return;
        }
        let (from, version, cleared) = match &message {
            TabMessage::Stored { from, version, .. } => (from, *version, false),
            TabMessage::Cleared { from, version } => (from, *version, true),
        };
        if *from == self.config.client || version <= self.stored_version {
            return;
        }
        if self.awaiting != Awaiting::Nothing || self.in_flight.is_some() {
            if cleared {
                self.deferred_clear = Some(self.deferred_clear.unwrap_or(0).max(version));
            }
            return;
        }
        if self.migration.is_some() {
            let newer = match &self.queued_tab {
                Some(
                    TabMessage::Stored { version: v, .. } | TabMessage::Cleared { version: v, .. },
                ) => version > *v,
                _ => true,
            };
            if newer {
                self.queued_tab = Some(message);
            }
            return;
        }
        match message {
            TabMessage::Cleared { version, .. } => self.follow_clear(version),
            TabMessage::Stored {
                version,
                slot,
                generation,
                schema,
                state,
                includes,
                ..
            } => {
                let adoption = Adoption {
                    version,
                    slot,
                    generation,
                    includes: Includes(includes),
                    source: Source::Tab,
                };
                let goal = super::open::MigrationGoal::Adopt(Box::new(adoption));
                self.migrate(goal, state, schema, now);
            }
        }
    }

    /// Another tab cleared the namespace (tombstone head `tombstone`).
    pub(super) fn follow_clear(&mut self, tombstone: u64) {
        if tombstone <= self.stored_version {
            return;
        }
        self.reset_to_initial(tombstone);
        self.emit(StoreEvent::SessionUpdated {
            version: tombstone,
            cleared: true,
            rebased: 0,
        });
    }

    /// Takes `remote` (at the page's schema) as current and stored.
    pub(super) fn adopt(&mut self, adoption: Adoption, remote: Value, now: u64) {
        let local = std::mem::take(&mut self.state);
        let local_version = self.version;
        let unsaved = self.debouncer.unsaved();
        let mut state = remote.clone();
        self.version = adoption.version;
        self.stored_version = self.stored_version.max(adoption.version);
        self.last_good = Some((adoption.slot, adoption.generation));
        self.debouncer.taken();
        let rebase = self.config.rebase;
        let rebased = if rebase {
            self.pending
                .rebase_onto(&mut state, adoption.includes, true)
        } else {
            self.pending.replace(adoption.includes);
            0
        };
        // A server state put back is stored as any change is (and is then
        // in every copy after it). In a synced store, so is a copy at or
        // below the version this tab already shows (its versions not
        // stored yet, such as server states equal to its own, which leave
        // nothing to put back): the version shown never goes back, nor
        // names two states. (A store alone lets the newer copy win.)
        let below = rebase && adoption.version <= local_version;
        if rebased > 0 || self.pending.has_taken() || below {
            self.version = local_version.max(adoption.version) + 1;
            self.modified_at = now;
            self.debouncer.changed(now);
        }
        self.json = super::to_json(&state);
        self.state = state;
        let updated = StoreEvent::SessionUpdated {
            version: self.version,
            cleared: false,
            rebased,
        };
        match adoption.source {
            // Unsaved changes met another tab's copy: the page is told,
            // also when they were put back on top of it (a synced session;
            // the event's `local` is this tab's state before, `remote` the
            // copy taken, the state now both).
            Source::Tab => {
                if unsaved {
                    self.conflict(
                        local,
                        remote,
                        Winner::Remote,
                        local_version,
                        adoption.version,
                    );
                }
                self.emit(updated);
            }
            Source::Refused { write, attempted } => {
                self.conflict(local, remote, Winner::Remote, attempted, adoption.version);
                if rebase {
                    self.emit(updated);
                }
                let stale = WriteEnd::Stale {
                    stored: adoption.version,
                    attempted,
                };
                self.end_write(write, stale, now);
            }
        }
    }

    /// A copy that could not be taken (its schema is newer, or a migration
    /// failed; writing is blocked): a refused write still ends as stale.
    pub(super) fn adopt_failed(&mut self, adoption: Adoption, now: u64) {
        if let Source::Refused { write, attempted } = adoption.source {
            let stale = WriteEnd::Stale {
                stored: adoption.version,
                attempted,
            };
            self.end_write(write, stale, now);
        }
    }

    /// A state from the server (on resume, or after a refused op) that
    /// includes this client's changes up to `acknowledged`: taken as the
    /// current state, with this tab's later changes put back on top, and
    /// stored as a new version. Changes of other tabs that the server does
    /// not have yet are not known here, so the stored copy names no other
    /// client as included: each tab that takes it puts its own kept changes
    /// back on top. Until this tab stores it, the state taken is kept (as
    /// the merge patch it made) to be put back on a copy taken from another
    /// tab. A store alone (no `rebase`) takes the state as it is.
    /// Returns the new version; refused as `set` is.
    pub fn handle_server_state(
        &mut self,
        state: Value,
        acknowledged: OpSeq,
        now: u64,
    ) -> Result<u64, SessileError> {
        let json = super::to_json(&state);
        let limit = self.config.envelope.max_raw_bytes;
        if json.len() > limit {
            return Err(SessileError::StateTooLarge {
                size: json.len() as u64,
                limit: limit as u64,
            });
        }
        if self.phase != Phase::Ready || self.closing {
            return Err(SessileError::StoreClosed);
        }
        if let Some(blocked) = &self.blocked {
            return Err(blocked.clone());
        }
        self.pending.acknowledged(acknowledged);
        let mut includes = Includes::default();
        includes.set(self.pending.client(), acknowledged);
        let mut state = state;
        let rebased = if self.config.rebase {
            self.pending.rebase_onto(&mut state, includes, false)
        } else {
            self.pending.replace(includes);
            0
        };
        self.json = if rebased > 0 {
            super::to_json(&state)
        } else {
            json
        };
        let version = self.version.max(self.stored_version) + 1;
        if self.config.rebase {
            self.pending.took(&self.state, &state, version);
        }
        self.state = state;
        self.version = version;
        self.modified_at = now;
        self.debouncer.changed(now);
        self.drive(now);
        Ok(self.version)
    }
}
