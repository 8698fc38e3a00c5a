//! What the engine keeps about this tab's unanswered ops: which of the
//! store's changes each carries (so the store learns which changes the
//! server has answered, `StoreEngine::handle_acknowledged`), and what each
//! was made on (rule 3 of "Tabs of a synced session": an op refused as a
//! conflict with a change this tab had already taken from another tab is
//! submitted again, not lost).
//!
//! What each op was made on is written beside the link record (`madeOn`),
//! so rule 3 still holds after a reload: an op made before the tab's first
//! `welcome` (on version 0, which the server can never show disjoint from
//! what came since) is refused as a conflict, and submitted again.
//!
//! Ops are kept by position in the link's outbox. When the outbox composes
//! unsent ops into one (over its limit), positions from the first merged
//! one keep their older, lower store number: the store may then hear of an
//! answer later than it came, never before (it keeps a change a little
//! longer, it never drops one the server has not answered). What the
//! composed ops were made on is forgotten: they lose a conflict as any
//! client's would.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{json, Map, Value};

use super::register::{get_at, overlaps, paths_of, Path};
use crate::core::error_text::decimal;
use crate::core::merge_patch;
use crate::core::session::link::Outbox;

/// What an op of this tab was made on: its patch, the paths it sets and
/// the page's values there before it.
#[derive(Debug, Clone, PartialEq)]
pub struct MadeOn {
    patch: Value,
    paths: Vec<Path>,
    values: Vec<Option<Value>>,
}

/// One op of the outbox, by position.
#[derive(Debug, Clone, Copy)]
struct Tracked {
    /// Its sequence in the outbox.
    seq: u64,
    /// The newest store change it carries (0: none of this page's).
    store_seq: u64,
}

/// The unanswered ops of this tab, as the engine knows them.
#[derive(Debug, Default)]
pub struct Tracking {
    ops: VecDeque<Tracked>,
    made_on: BTreeMap<u64, MadeOn>,
    /// The newest store change the server has answered.
    answered: u64,
}

impl Tracking {
    /// Ops resumed from a record: they carry none of this page's changes;
    /// what they were made on comes from `made_on` (as
    /// [`made_on_json`](Self::made_on_json) wrote it), for the ops still in
    /// the outbox.
    pub fn resumed(outbox: &Outbox, answered: u64, made_on: Option<&Value>) -> Self {
        let mut kept = BTreeMap::new();
        if let Some(Value::Object(m)) = made_on {
            for op in outbox.iter() {
                let made = m.get(&decimal(op.id.seq)).and_then(read_made_on);
                if let Some(made) = made.filter(|made| made.patch == op.patch) {
                    kept.insert(op.id.seq, made);
                }
            }
        }
        Tracking {
            ops: outbox
                .iter()
                .map(|op| Tracked {
                    seq: op.id.seq,
                    store_seq: 0,
                })
                .collect(),
            made_on: kept,
            answered,
        }
    }

    /// What the unanswered ops were made on, as JSON (`{seq: {patch, paths,
    /// values}}`, each value `{"v": value}` or `{}` for none), for the record.
    pub fn made_on_json(&self) -> Option<Value> {
        if self.made_on.is_empty() {
            return None;
        }
        let m: Map<String, Value> = self
            .made_on
            .iter()
            .map(|(seq, made)| {
                let values: Vec<Value> = made
                    .values
                    .iter()
                    .map(|v| v.as_ref().map_or_else(|| json!({}), |v| json!({"v": v})))
                    .collect();
                let entry = json!({"patch": made.patch, "paths": made.paths, "values": values});
                (decimal(*seq), entry)
            })
            .collect();
        Some(Value::Object(m))
    }

    /// The newest store change the server has answered.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// An op was just submitted for store change `store_seq`, the outbox
    /// holding `had` ops before; `before` is the page's state it was made
    /// on, `to` its status move. Keeps what rule 3 needs of it unless the
    /// outbox composed ops to take it.
    pub fn submitted(
        &mut self,
        outbox: &Outbox,
        had: usize,
        store_seq: u64,
        before: &Value,
        to: Option<&str>,
    ) {
        self.ops.push_back(Tracked { seq: 0, store_seq });
        let n = outbox.len();
        if self.ops.len() > n {
            self.ops.truncate(n);
            if let Some(last) = self.ops.back_mut() {
                last.store_seq = store_seq;
            }
        }
        for (t, op) in self.ops.iter_mut().zip(outbox.iter()) {
            t.seq = op.id.seq;
        }
        let newest = outbox.iter().last();
        match newest {
            Some(op) if n == had + 1 => {
                if to.is_none() {
                    let paths = paths_of(&op.patch);
                    let values = paths.iter().map(|p| get_at(before, p).cloned()).collect();
                    let made = MadeOn {
                        patch: op.patch.clone(),
                        paths,
                        values,
                    };
                    self.made_on.insert(op.id.seq, made);
                }
            }
            // Composed: sequences moved.
            _ => self.made_on.clear(),
        }
    }

    /// Ops that left the outbox (answered: applied or refused): the newest
    /// store change they carried, when that is news. With the outbox empty
    /// every change up to `last_store_seq` is answered.
    pub fn settle(&mut self, outbox: &Outbox, last_store_seq: u64) -> Option<u64> {
        let front = outbox.front().map(|op| op.id.seq);
        let mut newest = 0;
        while let Some(t) = self.ops.front().filter(|t| front.is_none_or(|f| t.seq < f)) {
            newest = newest.max(t.store_seq);
            self.ops.pop_front();
        }
        if outbox.is_empty() {
            newest = newest.max(last_store_seq);
        }
        (newest > self.answered).then(|| {
            self.answered = newest;
            newest
        })
    }

    /// Forgets what answered ops were made on (after their answers were
    /// handled: a conflict needs it).
    pub fn forget_answered(&mut self) {
        let live: Vec<u64> = self.ops.iter().map(|t| t.seq).collect();
        self.made_on.retain(|seq, _| live.contains(seq));
    }

    /// Rule 3: op `seq`, refused as a conflict with `local` its patch and
    /// `server` the state that won, is to be submitted again when the
    /// server's values at its paths are the ones it was made on and no
    /// later op of this tab (in `outbox`) touches those paths. Returns its
    /// patch then.
    pub fn resubmittable(
        &self,
        seq: u64,
        local: &Value,
        server: &Value,
        outbox: &Outbox,
    ) -> Option<Value> {
        let made = self.made_on.get(&seq)?;
        if made.patch != *local {
            return None;
        }
        let unchanged = made
            .paths
            .iter()
            .zip(&made.values)
            .all(|(p, v)| get_at(server, p) == v.as_ref());
        let touched_later = outbox.iter().filter(|op| op.id.seq > seq).any(|op| {
            paths_of(&op.patch)
                .iter()
                .any(|p| made.paths.iter().any(|q| overlaps(p, q)))
        });
        (unchanged && !touched_later).then(|| made.patch.clone())
    }

    /// Forgets what op `seq` was made on.
    pub fn forget(&mut self, seq: u64) {
        self.made_on.remove(&seq);
    }

    /// Ops tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// One op's [`MadeOn`] as [`Tracking::made_on_json`] wrote it.
fn read_made_on(v: &Value) -> Option<MadeOn> {
    let paths: Vec<Path> = v
        .get("paths")?
        .as_array()?
        .iter()
        .map(|p| {
            p.as_array()?
                .iter()
                .map(|k| k.as_str().map(String::from))
                .collect()
        })
        .collect::<Option<_>>()?;
    let values: Vec<Option<Value>> = v
        .get("values")?
        .as_array()?
        .iter()
        .map(|x| x.as_object().map(|o| o.get("v").cloned()))
        .collect::<Option<_>>()?;
    (paths.len() == values.len()).then(|| MadeOn {
        patch: v.get("patch").cloned().unwrap_or(Value::Null),
        paths,
        values,
    })
}

/// `view` with `patch` applied: what a resubmitted op moves the view to.
pub fn patched(view: &Value, patch: &Value) -> Value {
    let mut next = view.clone();
    merge_patch::apply(&mut next, patch);
    next
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ME: &str = "0123456789abcdef0123456789abcdef";

    fn outbox_with(
        patches: &[Value],
        limit: usize,
        tracking: &mut Tracking,
        first_store: u64,
    ) -> Outbox {
        let mut o = Outbox::new(ME).unwrap();
        for (i, p) in patches.iter().enumerate() {
            let had = o.len();
            let _ = o.push(1, p.clone(), None, limit);
            tracking.submitted(&o, had, first_store + i as u64, &json!({}), None);
        }
        o
    }

    #[test]
    fn answered_ops_tell_the_store_their_newest_change() {
        let mut t = Tracking::default();
        let mut o = outbox_with(
            &[json!({"a": 1}), json!({"b": 1}), json!({"c": 1})],
            64,
            &mut t,
            5,
        );
        assert_eq!(t.settle(&o, 7), None, "nothing answered yet");
        let _ = o.pop_front();
        assert_eq!(t.settle(&o, 7), Some(5));
        let _ = o.pop_front();
        let _ = o.pop_front();
        assert_eq!(
            t.settle(&o, 9),
            Some(9),
            "empty: every change up to the newest"
        );
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn composed_ops_never_tell_an_answer_early() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            let had = o.len();
            let _ = o.push(1, json!({ *k: 1 }), None, 2);
            t.submitted(&o, had, 10 + i as u64, &json!({}), None);
        }
        // Ops: 1 = a+b+c (changes 10..12), 2 = d (13). Tracked: 1 → 10 (lower), 2 → 13.
        assert_eq!(o.len(), 2);
        let _ = o.pop_front();
        let told = t.settle(&o, 13).unwrap();
        assert!(told <= 12, "at most what op 1 carries: {told}");
        let _ = o.pop_front();
        assert_eq!(t.settle(&o, 13), Some(13));
    }

    #[test]
    fn what_ops_were_made_on_survives_a_reload_for_the_ops_still_unanswered() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        let before = json!({"cart": {"X": 1}, "gone": null});
        let _ = o.push(1, json!({"cart": {"X": 2}, "gone": 1, "new": 1}), None, 64);
        t.submitted(&o, 0, 1, &before, None);
        let _ = o.push(1, json!({"y": 1}), None, 64);
        t.submitted(&o, 1, 2, &before, None);
        let saved = t.made_on_json().unwrap();
        let _ = o.pop_front();
        let resumed = Tracking::resumed(&o, 0, Some(&saved));
        assert_eq!(resumed.made_on.len(), 1, "op 1 was answered");
        assert_eq!(resumed.made_on.get(&2), t.made_on.get(&2));
        let original = &t.made_on[&1];
        let mut o1 = Outbox::new(ME).unwrap();
        let _ = o1.push(1, original.patch.clone(), None, 64);
        let again = Tracking::resumed(&o1, 0, Some(&saved));
        assert_eq!(
            again.made_on.get(&1),
            Some(original),
            "null and absent kept apart"
        );
        assert!(Tracking::resumed(&o, 0, Some(&json!({"2": {"paths": 1}})))
            .made_on
            .is_empty());
    }

    #[test]
    fn a_conflicting_op_is_resubmittable_only_on_the_values_it_was_made_on() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        let before = json!({"cart": {"X": 1}});
        let _ = o.push(1, json!({"cart": {"X": 2}}), None, 64);
        t.submitted(&o, 0, 1, &before, None);
        let local = json!({"cart": {"X": 2}});
        assert_eq!(
            t.resubmittable(1, &local, &json!({"cart": {"X": 1}, "y": 1}), &o),
            Some(local.clone())
        );
        assert_eq!(
            t.resubmittable(1, &local, &json!({"cart": {"X": 5}}), &o),
            None
        );
        assert_eq!(t.resubmittable(1, &json!({"other": 1}), &before, &o), None);
        // A later op on the same path holds the newer value already.
        let _ = o.push(1, json!({"cart": {"X": 3}}), None, 64);
        t.submitted(&o, 1, 2, &local, None);
        assert_eq!(t.resubmittable(1, &local, &before, &o), None);
        // A status move is never resubmitted.
        let _ = o.push(1, json!({"z": 1}), Some("checkout".into()), 64);
        t.submitted(&o, 2, 3, &local, Some("checkout"));
        assert_eq!(t.resubmittable(3, &json!({"z": 1}), &before, &o), None);
        assert_eq!(patched(&before, &local), json!({"cart": {"X": 2}}));
    }
}
