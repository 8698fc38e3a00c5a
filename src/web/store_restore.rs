//! What a store takes on open: the newest valid slot, or a rescue copy that
//! continues it (written by a tab that was closed with unsaved changes),
//! migrated to the page's schema; and what it tells the page: where the state
//! came from, which copies were skipped and why, rescue copies that lost to
//! a newer stored state, eviction.

use wasm_bindgen::JsValue;

use crate::core::envelope::{decode, Snapshot};
use crate::core::error::SessileError;
use crate::core::slots::{restore, Restore, SlotId, SlotProblem, SlotRead};

use super::convert::{error_summary, json_to_state, object};
use super::migrate::migrate;
use super::page;
use super::storage::local::{self, RescueCopy};
use super::storage::{BackendKind, SlotsRead};
use super::store::{marker_key, Store};

/// A slot's raw read as the core's restore takes it.
pub(crate) fn slot_read(read: &Result<Option<Vec<u8>>, SessileError>) -> SlotRead<'_> {
    match read {
        Ok(Some(bytes)) => SlotRead::Bytes(bytes),
        Ok(None) => SlotRead::Missing,
        Err(e) => SlotRead::Failed(e.clone()),
    }
}

fn skipped_list(problems: &[SlotProblem]) -> JsValue {
    let list = js_sys::Array::new();
    for p in problems {
        list.push(
            &object(&[
                ("slot", p.slot.name().into()),
                ("error", error_summary(&p.error)),
            ])
            .into(),
        );
    }
    list.into()
}

/// The rescue copies read at open, sorted out.
struct Rescues {
    /// The newest copy that continues the stored state, with its key.
    chosen: Option<(Snapshot, String)>,
    /// Valid copies that lost: based on an older head, or older than `chosen`.
    stale: Vec<Snapshot>,
    /// Copies that could not be decoded.
    broken: Vec<SlotProblem>,
}

/// Keeps the newest rescue copy based on `head` (any copy when nothing else
/// is stored: it is better than nothing); every other copy is removed.
fn sort_rescues(
    copies: Vec<RescueCopy>,
    head: u64,
    nothing_stored: bool,
    store: &Store,
) -> Rescues {
    let mut out = Rescues {
        chosen: None,
        stale: Vec::new(),
        broken: Vec::new(),
    };
    for copy in copies {
        let decoded = copy.bytes.and_then(|b| decode(&b, &store.options.envelope));
        let snap = match decoded {
            Ok(snap) => snap,
            Err(error) => {
                out.broken.push(SlotProblem {
                    slot: SlotId::Rescue,
                    error,
                });
                let _ = local::remove(&copy.key);
                continue;
            }
        };
        let continues = nothing_stored || (copy.base == head && snap.meta.state_version > head);
        let newer = out
            .chosen
            .as_ref()
            .is_none_or(|(c, _)| snap.meta.state_version > c.meta.state_version);
        if continues && newer {
            if let Some((old, key)) = out.chosen.replace((snap, copy.key)) {
                out.stale.push(old);
                let _ = local::remove(&key);
            }
        } else {
            out.stale.push(snap);
            let _ = local::remove(&copy.key);
        }
    }
    out
}

impl Store {
    /// Takes over what is stored and tells the page how it went. Fails (and
    /// writes nothing) on SCHEMA_TOO_NEW or MIGRATION_FAILED.
    pub(crate) fn apply_restore(
        &self,
        read: SlotsRead,
        rescues: Vec<RescueCopy>,
    ) -> Result<(), SessileError> {
        let head = read.head;
        let slots = [
            (SlotId::A, slot_read(&read.a)),
            (SlotId::B, slot_read(&read.b)),
        ];
        let (stored, mut skipped, unreadable) = match restore(&slots, &self.options.envelope) {
            Restore::Restored {
                snapshot,
                slot,
                skipped,
            } => (Some((snapshot, slot)), skipped, false),
            Restore::Unreadable { problems } => (None, problems, true),
            _ => (None, Vec::new(), false),
        };
        let rescues = sort_rescues(rescues, head, stored.is_none(), self);
        skipped.extend(rescues.broken);
        let last_good = stored.as_ref().map(|(s, slot)| (*slot, s.meta.generation));
        let chosen = match (&rescues.chosen, &stored) {
            (Some((snap, _)), _) => Some((snap, SlotId::Rescue)),
            (None, Some((snap, slot))) => Some((snap, *slot)),
            (None, None) => None,
        };
        let Some((snapshot, from)) = chosen else {
            self.start_without_state(head, unreadable, &skipped);
            self.report_stale_rescues(&rescues.stale);
            return Ok(());
        };
        let (json, migrated) = migrate(
            &snapshot.json,
            snapshot.meta.schema_version,
            self.options.schema_version,
            &self.options.migrate,
        )?;
        let state = json_to_state(&json)?;
        let version = {
            let mut s = self.inner.borrow_mut();
            s.state = state;
            s.json = json;
            s.modified_at = snapshot.meta.modified_at_ms;
            s.last_good = last_good;
            if from == SlotId::Rescue {
                // Continues the stored head: written back as it is.
                s.version = snapshot.meta.state_version.max(head + 1);
                s.stored_version = head;
                s.restored_rescue = rescues.chosen.as_ref().map(|(_, key)| key.clone());
                let _ = s.debouncer.changed(page::now_ms());
            } else {
                // Never below the head: a newer copy may have been written
                // and then corrupted, and the next write must still win. The
                // next write is based on the head as stored.
                s.version = snapshot.meta.state_version.max(head);
                s.stored_version = head;
            }
            if migrated {
                s.version += 1;
                let _ = s.debouncer.changed(page::now_ms());
            }
            s.version
        };
        self.emit(
            "state_restored",
            &[
                ("outcome", "restored".into()),
                ("from", from.name().into()),
                ("version", (version as f64).into()),
                ("schemaVersion", snapshot.meta.schema_version.into()),
                ("migrated", migrated.into()),
                ("skipped", skipped_list(&skipped)),
            ],
        );
        self.report_stale_rescues(&rescues.stale);
        Ok(())
    }

    /// Nothing valid is stored: a fresh session, an evicted one, or an
    /// unreadable one (each reported as such).
    fn start_without_state(&self, head: u64, unreadable: bool, skipped: &[SlotProblem]) {
        {
            let mut s = self.inner.borrow_mut();
            s.version = head;
            s.stored_version = head;
        }
        if unreadable {
            self.emit(
                "state_restored",
                &[
                    ("outcome", "unreadable".into()),
                    ("skipped", skipped_list(skipped)),
                ],
            );
            if let Some(first) = skipped.first() {
                self.emit(
                    "error_occurred",
                    &[
                        ("error", error_summary(&first.error)),
                        ("during", "restore".into()),
                    ],
                );
            }
            return;
        }
        let ns = &self.options.name;
        let durable = self.backend.borrow().kind() != BackendKind::Memory;
        let marker = local::read_text(&marker_key(ns))
            .ok()
            .flatten()
            .or_else(|| page::read_marker_cookie(ns))
            .filter(|_| durable);
        match marker {
            Some(last_version) => self.emit(
                "state_restored",
                &[
                    ("outcome", "evicted".into()),
                    ("lastVersion", last_version.into()),
                    (
                        "reason",
                        "storage that held this session is empty: the browser evicted it or site data was cleared"
                            .into(),
                    ),
                ],
            ),
            None => self.emit("state_restored", &[("outcome", "fresh".into())]),
        }
    }

    /// A rescue copy that lost to a newer stored state is a conflict.
    fn report_stale_rescues(&self, stale: &[Snapshot]) {
        for snap in stale {
            let Ok(local_state) = json_to_state(&snap.json) else {
                continue;
            };
            let (remote, remote_version) = {
                let s = self.inner.borrow();
                (s.state.clone(), s.version)
            };
            self.report_conflict(
                local_state,
                remote,
                "remote",
                snap.meta.state_version,
                remote_version,
            );
        }
    }
}
