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
//! A change made while the link holds no server version (a new tab before
//! its first `welcome`, or after the server lost versions) is held here,
//! not submitted: an op made on version 0 is one the server can never show
//! disjoint from what came since, so it would be refused as a conflict. It
//! is written with the record, listed in the register under a number of
//! its own (from `register::HELD_BASE` up, later ones higher, kept in the
//! record so a reload never lists a new change under an older number), and
//! submitted on the server's version once the link has one, less the paths
//! another client of this browser changed on top of it.
//!
//! Ops are kept by position in the link's outbox. When the outbox composes
//! unsent ops into one (over its limit), the positions are found again by
//! composing the patches the same way: the composed op carries the store
//! changes of the ops it took, and was made on the values its parts were
//! made on, path by path, when their paths say so exactly (else it is
//! forgotten, and the op loses a conflict as any client's would). When the
//! patches cannot be matched, positions keep their older, lower store
//! numbers: the store may then hear of an answer later than it came, never
//! before.

use std::collections::VecDeque;

use serde_json::{json, Map, Value};

use super::register::{self, get_at, overlaps, paths_of, Path, HELD_BASE, HELD_MAX};
use crate::core::error_text::decimal;
use crate::core::merge_patch;
use crate::core::protocol::{Op, OpId};
use crate::core::session::link::{Link, Outbox};

/// What an op of this tab was made on: its patch, the paths it sets and
/// the page's values there before it.
#[derive(Debug, Clone, PartialEq)]
pub struct MadeOn {
    patch: Value,
    paths: Vec<Path>,
    values: Vec<Option<Value>>,
}

/// One op of the outbox, by position.
#[derive(Debug, Clone)]
struct Tracked {
    /// Its sequence in the outbox.
    seq: u64,
    /// Its patch, as the outbox holds it.
    patch: Value,
    /// Its status move (kept for a held change).
    to: Option<String>,
    /// The newest store change it carries (0: none of this page's).
    store_seq: u64,
    /// What it was made on, when known.
    made: Option<MadeOn>,
    /// The number a held change is listed under (0 for an op).
    listed: u64,
}

/// The unanswered ops of this tab, as the engine knows them.
#[derive(Debug, Default)]
pub struct Tracking {
    ops: VecDeque<Tracked>,
    /// Ops that left the outbox, kept until their answers were handled.
    departed: Vec<Tracked>,
    /// Changes not submitted yet: the link holds no server version.
    held: VecDeque<Tracked>,
    /// The newest store change the server has answered.
    answered: u64,
    /// The last number a held change was listed under (0: none yet).
    held_last: u64,
}

impl Tracking {
    /// Ops resumed from a record: they carry none of this page's changes;
    /// what they were made on comes from `made_on` (as
    /// [`made_on_json`](Self::made_on_json) wrote it).
    pub fn resumed(outbox: &Outbox, answered: u64, saved: Option<&Value>) -> Self {
        let held: VecDeque<Tracked> = saved
            .and_then(|s| s.get("held"))
            .and_then(Value::as_array)
            .map(|h| h.iter().filter_map(read_held).collect())
            .unwrap_or_default();
        let mut held_last = saved
            .and_then(|s| s.get("heldLast"))
            .and_then(Value::as_u64)
            .filter(|n| register::is_held(*n) && *n <= HELD_MAX)
            .unwrap_or(0);
        held_last = held.iter().map(|t| t.listed).fold(held_last, u64::max);
        // Numbers out of order (or none, as an older record wrote them): new ones.
        let ordered = held
            .iter()
            .zip(held.iter().skip(1))
            .all(|(a, b)| a.listed < b.listed);
        let mut held = held;
        if !ordered || held.iter().any(|t| t.listed == 0) {
            for t in &mut held {
                held_last = next_held(held_last, 0);
                t.listed = held_last;
            }
        }
        let saved = saved
            .and_then(|s| s.get("madeOn"))
            .and_then(Value::as_object);
        let ops = outbox
            .iter()
            .map(|op| {
                let made = saved
                    .and_then(|m| m.get(&decimal(op.id.seq)))
                    .and_then(read_made_on)
                    .filter(|made| made.patch == op.patch);
                Tracked {
                    seq: op.id.seq,
                    patch: op.patch.clone(),
                    to: None,
                    store_seq: 0,
                    made,
                    listed: 0,
                }
            })
            .collect();
        Tracking {
            ops,
            departed: Vec::new(),
            held,
            answered,
            held_last,
        }
    }

    /// The newest store change the server has answered.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// What is written beside the link record: `madeOn` (what the
    /// unanswered ops were made on), `held` (the changes not submitted
    /// yet, each with the number `n` it is listed under) and `heldLast`
    /// (the last such number given), the fields present only when not
    /// empty.
    pub fn saved(&self) -> Vec<(&'static str, Value)> {
        let mut out = Vec::new();
        if let Some(m) = self.made_on_json() {
            out.push(("madeOn", m));
        }
        if !self.held.is_empty() {
            let held: Vec<Value> = self
                .held
                .iter()
                .map(|t| {
                    let mut h = json!({"patch": t.patch, "n": t.listed});
                    if let Some(to) = &t.to {
                        h["to"] = json!(to);
                    }
                    if let Some(m) = &t.made {
                        h["made"] = made_json(m);
                    }
                    h
                })
                .collect();
            out.push(("held", Value::Array(held)));
        }
        if self.held_last > 0 {
            out.push(("heldLast", json!(self.held_last)));
        }
        out
    }

    /// What the unanswered ops were made on, as JSON (`{seq: {patch, paths,
    /// values}}`, each value `{"v": value}` or `{}` for none).
    fn made_on_json(&self) -> Option<Value> {
        let m: Map<String, Value> = self
            .ops
            .iter()
            .filter_map(|t| Some((t.seq, t.made.as_ref()?)))
            .map(|(seq, made)| (decimal(seq), made_json(made)))
            .collect();
        (!m.is_empty()).then_some(Value::Object(m))
    }

    /// An op was just submitted for store change `store_seq`, the outbox
    /// holding `had` ops before: the change from `before` (the page's state
    /// it was made on) to `after`, with `to` its status move.
    pub fn submitted(
        &mut self,
        outbox: &Outbox,
        had: usize,
        store_seq: u64,
        before: &Value,
        after: &Value,
        to: Option<&str>,
    ) {
        // The outbox's newest op is the change, unless the outbox composed
        // ops to take it (over its limit): only then is it worked out again.
        let newest = outbox.iter().last().filter(|_| outbox.len() == had + 1);
        let diffed;
        let patch = match newest {
            Some(op) => &op.patch,
            None => {
                diffed = merge_patch::diff(before, after);
                &diffed
            }
        };
        let made = to.is_none().then(|| made_on(patch, before));
        let tracked = Tracked {
            seq: 0,
            patch: patch.clone(),
            to: None,
            store_seq,
            made,
            listed: 0,
        };
        self.add(outbox, tracked);
    }

    /// A change made at `now` while the link holds no server version: kept
    /// until [`release`](Self::release), listed under a number above every
    /// one given before.
    pub fn hold(
        &mut self,
        patch: Value,
        to: Option<String>,
        store_seq: u64,
        before: &Value,
        now: u64,
    ) {
        let made = to.is_none().then(|| made_on(&patch, before));
        self.held_last = next_held(self.held_last, now);
        self.held.push_back(Tracked {
            seq: 0,
            patch,
            to,
            store_seq,
            made,
            listed: self.held_last,
        });
    }

    /// The held changes as the register lists them, each under its number.
    pub fn held_ops(&self, client: &str) -> Vec<Op> {
        self.held
            .iter()
            .map(|t| Op {
                id: OpId {
                    client: client.into(),
                    seq: t.listed,
                },
                base: 0,
                patch: t.patch.clone(),
                to: t.to.clone(),
            })
            .collect()
    }

    /// The link has a server version: the held changes become ops, in
    /// order, each less the paths another client of this browser made a
    /// change on top of (`covered(number, paths)`, by the number it is
    /// listed under: that change holds them, and sending the older value on
    /// the current version would undo it); one left with nothing (and no
    /// status move) is not sent. Returns whether there were any, and the
    /// parts left out (a patch each). When the server has processed ops
    /// this outbox never numbered (it was restored from an older record,
    /// whose last writes failed before a crash), a held change the
    /// server's state already holds (and that moves no status) went out
    /// then: it is not sent again under a second id.
    ///
    /// Every held change is then answered for the store: it is in the
    /// link's view (an op), in the server's state, or left out, and the
    /// store must not put it back on top of the server's copy
    /// ([`answered`](Self::answered) moves past them).
    pub fn release(
        &mut self,
        link: &mut Link,
        covered: impl Fn(u64, &[Path]) -> Vec<Path>,
        now: u64,
    ) -> (bool, Vec<Value>) {
        let held = std::mem::take(&mut self.held);
        let any = !held.is_empty();
        let mut dropped = Vec::new();
        for mut t in held {
            self.answered = self.answered.max(t.store_seq);
            let paths = paths_of(&t.patch);
            let marked = covered(t.listed, &paths);
            if !marked.is_empty() {
                let (rest, lost) = register::split(&t.patch, &marked);
                dropped.push(lost);
                t.made = t.made.and_then(|m| m.without(&marked, &rest));
                t.patch = rest;
                if t.to.is_none() && t.patch.as_object().is_some_and(|p| p.is_empty()) {
                    continue;
                }
            }
            let held_by_server = *link.confirmed() == patched(link.confirmed(), &t.patch);
            if link.outnumbered() && t.to.is_none() && held_by_server {
                continue;
            }
            if link.submit(t.patch.clone(), t.to.clone(), now).is_ok() {
                self.add(link.outbox(), t);
            }
        }
        (any, dropped)
    }

    /// Takes one more op of the outbox (its seq set from it).
    fn add(&mut self, outbox: &Outbox, tracked: Tracked) {
        self.ops.push_back(tracked);
        if self.ops.len() == outbox.len() {
            // Nothing composed: the new op is the outbox's newest.
            if let (Some(t), Some(op)) = (self.ops.back_mut(), outbox.iter().last()) {
                t.seq = op.id.seq;
            }
        } else if !self.realign(outbox) {
            self.fall_back(outbox);
        }
    }

    /// Matches the ops kept to the outbox's, composing consecutive ones
    /// the way the outbox did. Whether every op matched.
    fn realign(&mut self, outbox: &Outbox) -> bool {
        let old: Vec<Tracked> = self.ops.drain(..).collect();
        let mut next = old.iter().peekable();
        let mut ops = VecDeque::new();
        for op in outbox.iter() {
            let Some(first) = next.next() else {
                self.ops = old.iter().cloned().collect();
                return false;
            };
            let mut parts = vec![first];
            let mut patch = first.patch.clone();
            while patch != op.patch {
                let composed = next
                    .next_if(|_| true)
                    .and_then(|t| Some((t, merge_patch::compose(&patch, &t.patch)?)));
                let Some((t, composed)) = composed else {
                    self.ops = old.iter().cloned().collect();
                    return false;
                };
                parts.push(t);
                patch = composed;
            }
            ops.push_back(Tracked {
                seq: op.id.seq,
                patch: op.patch.clone(),
                to: None,
                store_seq: parts.iter().map(|t| t.store_seq).max().unwrap_or(0),
                made: merged(&parts, &op.patch),
                listed: 0,
            });
        }
        if next.next().is_some() {
            self.ops = old.into_iter().collect();
            return false;
        }
        self.ops = ops;
        true
    }

    /// The outbox could not be matched: each position keeps an older,
    /// lower store number (the newest exact), what was made on is dropped.
    fn fall_back(&mut self, outbox: &Outbox) {
        let newest = self.ops.back().map_or(0, |t| t.store_seq);
        self.ops.truncate(outbox.len());
        for (t, op) in self.ops.iter_mut().zip(outbox.iter()) {
            t.seq = op.id.seq;
            t.patch = op.patch.clone();
            t.made = None;
        }
        if let Some(last) = self.ops.back_mut() {
            last.store_seq = newest;
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
            if let Some(t) = self.ops.pop_front() {
                self.departed.push(t);
            }
        }
        if outbox.is_empty() && self.held.is_empty() {
            newest = newest.max(last_store_seq);
        }
        (newest > self.answered).then(|| {
            self.answered = newest;
            newest
        })
    }

    /// Forgets the ops whose answers were handled (a conflict needs what
    /// its op was made on).
    pub fn forget_answered(&mut self) {
        self.departed.clear();
    }

    /// Rule 3: op `seq`, refused as a conflict with `local` its patch and
    /// `server` the state that won, less its paths in `lost` (another
    /// client of this browser changed them on top of it), is to be
    /// submitted again when the server's values at its other paths are the
    /// ones it was made on and no later op of this tab (in `outbox`)
    /// touches those paths. Returns that part of its patch then (never an
    /// empty one).
    pub fn resubmittable(
        &self,
        seq: u64,
        local: &Value,
        server: &Value,
        outbox: &Outbox,
        lost: &[Path],
    ) -> Option<Value> {
        let tracked = self
            .departed
            .iter()
            .chain(&self.ops)
            .find(|t| t.seq == seq)?;
        let made = tracked.made.as_ref()?;
        if made.patch != *local {
            return None;
        }
        let (rest, _) = register::split(&made.patch, lost);
        let made = made.without(lost, &rest)?;
        if made.paths.is_empty() {
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
        (unchanged && !touched_later).then_some(made.patch)
    }

    /// Forgets what op `seq` was made on.
    pub fn forget(&mut self, seq: u64) {
        for t in self.departed.iter_mut().chain(self.ops.iter_mut()) {
            if t.seq == seq {
                t.made = None;
            }
        }
    }

    /// Changes not answered yet: ops in the outbox and changes held.
    pub fn unanswered(&self, outbox: &Outbox) -> usize {
        outbox.len() + self.held.len()
    }

    /// Ops tracked.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

/// What an op composed of `parts` was made on: at each path of its patch,
/// the value the first part that sets exactly that path was made on.
/// `None` when a part's is unknown (a status move) or a part sets a path
/// above or below one of the composed op's (the values would not say).
fn merged(parts: &[&Tracked], patch: &Value) -> Option<MadeOn> {
    if let [one] = parts {
        return one.made.clone().filter(|m| m.patch == *patch);
    }
    let made: Vec<&MadeOn> = parts
        .iter()
        .map(|t| t.made.as_ref())
        .collect::<Option<_>>()?;
    let paths = paths_of(patch);
    let mut values = Vec::with_capacity(paths.len());
    for p in &paths {
        let mut found = None;
        for m in &made {
            for (q, v) in m.paths.iter().zip(&m.values) {
                if !overlaps(p, q) {
                    continue;
                }
                if q != p {
                    return None;
                }
                found.get_or_insert(v);
            }
        }
        values.push(found?.clone());
    }
    Some(MadeOn {
        patch: patch.clone(),
        paths,
        values,
    })
}

impl MadeOn {
    /// What `rest`, this patch less `lost` (some of its paths), was made on:
    /// `None` when its paths are not those left.
    fn without(&self, lost: &[Path], rest: &Value) -> Option<MadeOn> {
        let (paths, values): (Vec<Path>, Vec<Option<Value>>) = self
            .paths
            .iter()
            .zip(&self.values)
            .filter(|(p, _)| !lost.contains(p))
            .map(|(p, v)| (p.clone(), v.clone()))
            .unzip();
        (paths_of(rest) == paths).then(|| MadeOn {
            patch: rest.clone(),
            paths,
            values,
        })
    }
}

/// The number the next held change is listed under, the last being `last`,
/// made at `now` (ms since the epoch): above `last`, and above every number
/// given at an earlier time (a client whose record was lost starts past
/// them); at most [`HELD_MAX`].
fn next_held(last: u64, now: u64) -> u64 {
    last.saturating_add(1)
        .max(HELD_BASE.saturating_add(now))
        .min(HELD_MAX)
}

/// What a change of `patch` made on `before` was made on.
fn made_on(patch: &Value, before: &Value) -> MadeOn {
    let paths = paths_of(patch);
    let values = paths.iter().map(|p| get_at(before, p).cloned()).collect();
    MadeOn {
        patch: patch.clone(),
        paths,
        values,
    }
}

/// A [`MadeOn`] as JSON: `{patch, paths, values}`, each value `{"v":
/// value}` or `{}` for none.
fn made_json(made: &MadeOn) -> Value {
    let values: Vec<Value> = made
        .values
        .iter()
        .map(|v| v.as_ref().map_or_else(|| json!({}), |v| json!({"v": v})))
        .collect();
    json!({"patch": made.patch, "paths": made.paths, "values": values})
}

/// A held change as [`Tracking::saved`] wrote it.
fn read_held(v: &Value) -> Option<Tracked> {
    let patch = v.get("patch").filter(|p| p.is_object())?.clone();
    let to = match v.get("to") {
        None => None,
        Some(t) => Some(t.as_str()?.to_string()),
    };
    let made = v
        .get("made")
        .and_then(read_made_on)
        .filter(|m| m.patch == patch);
    let listed = v
        .get("n")
        .and_then(Value::as_u64)
        .filter(|n| register::is_held(*n) && *n <= HELD_MAX)
        .unwrap_or(0);
    Some(Tracked {
        seq: 0,
        patch,
        to,
        store_seq: 0,
        made,
        listed,
    })
}

/// One op's [`MadeOn`] as [`made_json`] wrote it.
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

    /// Pushes each change (a patch on `{}`) as the engine does, with its store number.
    fn push(o: &mut Outbox, t: &mut Tracking, patch: Value, store: u64, limit: usize) {
        let had = o.len();
        let _ = o.push(1, patch.clone(), None, limit);
        let mut after = json!({});
        merge_patch::apply(&mut after, &patch);
        t.submitted(o, had, store, &json!({}), &after, None);
    }

    #[test]
    fn answered_ops_tell_the_store_their_newest_change() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        for (i, k) in ["a", "b", "c"].iter().enumerate() {
            push(&mut o, &mut t, json!({ *k: 1 }), 5 + i as u64, 64);
        }
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
    fn composed_ops_carry_their_parts_changes_and_what_they_were_made_on() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            push(&mut o, &mut t, json!({"c": { *k: 1 }}), 10 + i as u64, 2);
        }
        // Ops: 1 = a+b+c (changes 10..12), 2 = d (13).
        assert_eq!(o.len(), 2);
        let local = o.front().unwrap().patch.clone();
        assert_eq!(local, json!({"c": {"a": 1, "b": 1, "c": 1}}));
        let server = json!({"c": {"x": 1}});
        assert_eq!(
            t.resubmittable(1, &local, &server, &o, &[]),
            Some(local.clone())
        );
        assert_eq!(
            t.resubmittable(1, &local, &json!({"c": {"b": 9}}), &o, &[]),
            None
        );
        let _ = o.pop_front();
        assert_eq!(t.settle(&o, 13), Some(12), "exactly what op 1 carries");
        let _ = o.pop_front();
        assert_eq!(t.settle(&o, 13), Some(13));
    }

    #[test]
    fn a_composed_op_whose_parts_set_a_path_above_another_is_not_resubmitted() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        push(&mut o, &mut t, json!({"c": {"a": 1}}), 1, 1);
        push(&mut o, &mut t, json!({"c": 5}), 2, 1);
        assert_eq!(o.len(), 1);
        let local = o.front().unwrap().patch.clone();
        assert_eq!(t.resubmittable(1, &local, &json!({}), &o, &[]), None);
        let _ = o.pop_front();
        assert_eq!(t.settle(&o, 2), Some(2));
    }

    #[test]
    fn what_ops_were_made_on_survives_a_reload_for_the_ops_still_unanswered() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        let before = json!({"cart": {"X": 1}, "gone": null});
        let first = json!({"cart": {"X": 2}, "gone": 1, "new": 1});
        let mut after = before.clone();
        merge_patch::apply(&mut after, &first);
        let _ = o.push(1, first.clone(), None, 64);
        t.submitted(&o, 0, 1, &before, &after, None);
        let _ = o.push(1, json!({"y": 1}), None, 64);
        let mut after2 = after.clone();
        merge_patch::apply(&mut after2, &json!({"y": 1}));
        t.submitted(&o, 1, 2, &after, &after2, None);
        let saved = json!({"madeOn": t.made_on_json().unwrap()});
        let mut o1 = Outbox::new(ME).unwrap();
        let _ = o1.push(1, first.clone(), None, 64);
        let again = Tracking::resumed(&o1, 0, Some(&saved));
        assert_eq!(
            again.ops[0].made, t.ops[0].made,
            "null and absent kept apart"
        );
        let _ = o.pop_front();
        let resumed = Tracking::resumed(&o, 0, Some(&saved));
        assert_eq!(resumed.ops[0].made, t.ops[1].made);
        let broken = Tracking::resumed(&o, 0, Some(&json!({"madeOn": {"2": {"paths": 1}}})));
        assert_eq!(broken.ops[0].made, None);
    }

    #[test]
    fn held_changes_are_saved_listed_and_released_in_order_on_the_links_version() {
        use crate::core::session::link::{empty_state, LinkConfig};
        let mut t = Tracking::default();
        t.hold(json!({"a": 1}), None, 4, &json!({}), 0);
        t.hold(
            json!({"b": 1}),
            Some("checkout".into()),
            5,
            &json!({"a": 1}),
            0,
        );
        let listed: Vec<u64> = t.held_ops(ME).iter().map(|o| o.id.seq).collect();
        assert_eq!(listed, [HELD_BASE, HELD_BASE + 1], "each its own number");
        let empty = Outbox::new(ME).unwrap();
        assert_eq!(t.settle(&empty, 5), None, "held changes are not answered");
        assert_eq!(t.unanswered(&empty), 2);
        let saved: Map<String, Value> = t
            .saved()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut again = Tracking::resumed(&empty, 0, Some(&Value::Object(saved)));
        assert_eq!(again.held.len(), 2);
        assert_eq!(
            (again.held[1].listed, again.held_last),
            (HELD_BASE + 1, HELD_BASE + 1)
        );
        assert_eq!(again.held[1].to.as_deref(), Some("checkout"));
        assert_eq!(again.held[0].made, t.held[0].made);
        let cfg = LinkConfig::new("fedcba9876543210fedcba9876543210", "t", 1);
        let mut link = Link::new(cfg, Outbox::new(ME).unwrap(), 7, empty_state());
        assert!(again.release(&mut link, |_, _| Vec::new(), 0).0);
        let ops: Vec<_> = link
            .outbox()
            .iter()
            .map(|o| (o.id.seq, o.base, o.to.clone()))
            .collect();
        assert_eq!(ops, [(1, 7, None), (2, 7, Some("checkout".into()))]);
        assert_eq!(again.unanswered(link.outbox()), 2);
        assert!(
            !again.release(&mut link, |_, _| Vec::new(), 0).0,
            "nothing left"
        );
        // Numbers go on from the last, after a reload too, and never below the time's.
        let saved: Map<String, Value> = again
            .saved()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let mut later = Tracking::resumed(&empty, 0, Some(&Value::Object(saved)));
        later.hold(json!({"c": 1}), None, 6, &json!({}), 0);
        later.hold(json!({"d": 1}), None, 7, &json!({}), 1_000);
        let listed: Vec<u64> = later.held_ops(ME).iter().map(|o| o.id.seq).collect();
        assert_eq!(listed, [HELD_BASE + 2, HELD_BASE + 1_000]);
    }

    /// Found by the `client_session` fuzz target: a record whose last
    /// writes failed before a crash still lists changes as held, though
    /// the page had sent them (as ops 1 and 2) and the server applied them.
    /// The welcome says the server processed ops this outbox never
    /// numbered: held changes its state already holds are not sent again
    /// under new ids; one it does not hold, or a status move, still goes.
    #[test]
    fn held_changes_of_a_record_the_server_outnumbers_go_only_when_not_applied() {
        use crate::core::protocol::{self, CatchUp, Message, Welcome, PROTOCOL_VERSION};
        use crate::core::session::link::{empty_state, LinkConfig, Transport};
        let held = || {
            let mut t = Tracking::default();
            t.hold(json!({"c": {"k0": 0}}), None, 1, &json!({}), 0);
            t.hold(json!({"c": {"k1": 1}}), None, 2, &json!({}), 0);
            t.hold(json!({"c": {"k9": 9}}), None, 3, &json!({}), 0);
            t.hold(json!({}), Some("checkout".into()), 4, &json!({}), 0);
            t
        };
        let welcome = |applied_seq| {
            let state = json!({"c": {"k0": 0, "k1": 1}});
            protocol::encode(&Message::Welcome(Welcome {
                protocol: PROTOCOL_VERSION,
                version: 9,
                status: "cart".into(),
                expires_at: 0,
                heartbeat_ms: 5_000,
                applied_seq,
                server_time: 0,
                catch_up: CatchUp::Snapshot { state },
            }))
        };
        let synced = |applied_seq| {
            let cfg = LinkConfig::new("fedcba9876543210fedcba9876543210", "t", 1);
            let mut link = Link::new(cfg, Outbox::new(ME).unwrap(), 0, empty_state());
            link.handle_open(0);
            link.handle_connected(Transport::WebSocket, 1);
            link.handle_frame(welcome(applied_seq).as_bytes(), 2);
            link
        };
        let mut link = synced(2);
        assert!(link.outnumbered());
        assert!(held().release(&mut link, |_, _| Vec::new(), 3).0);
        let sent: Vec<_> = link
            .outbox()
            .iter()
            .map(|o| (o.id.seq, o.patch.clone()))
            .collect();
        assert_eq!(
            sent,
            [(3, json!({"c": {"k9": 9}})), (4, json!({}))],
            "k0 and k1 are the server's already; k9 and the move go, after 2"
        );
        // A server that processed nothing of this client: every held change goes.
        let mut fresh = synced(0);
        assert!(!fresh.outnumbered());
        assert!(held().release(&mut fresh, |_, _| Vec::new(), 3).0);
        assert_eq!(fresh.outbox().len(), 4);
    }

    #[test]
    fn a_conflicting_op_is_resubmittable_only_on_the_values_it_was_made_on() {
        let mut t = Tracking::default();
        let mut o = Outbox::new(ME).unwrap();
        let before = json!({"cart": {"X": 1}});
        let local = json!({"cart": {"X": 2}});
        let _ = o.push(1, local.clone(), None, 64);
        t.submitted(&o, 0, 1, &before, &local, None);
        assert_eq!(
            t.resubmittable(1, &local, &json!({"cart": {"X": 1}, "y": 1}), &o, &[]),
            Some(local.clone())
        );
        assert_eq!(
            t.resubmittable(1, &local, &json!({"cart": {"X": 5}}), &o, &[]),
            None
        );
        assert_eq!(
            t.resubmittable(1, &json!({"other": 1}), &before, &o, &[]),
            None
        );
        // A later op on the same path holds the newer value already.
        let _ = o.push(1, json!({"cart": {"X": 3}}), None, 64);
        t.submitted(&o, 1, 2, &local, &json!({"cart": {"X": 3}}), None);
        assert_eq!(t.resubmittable(1, &local, &before, &o, &[]), None);
        // A status move is never resubmitted.
        let _ = o.push(1, json!({"z": 1}), Some("checkout".into()), 64);
        t.submitted(
            &o,
            2,
            3,
            &local,
            &json!({"cart": {"X": 3}, "z": 1}),
            Some("checkout"),
        );
        assert_eq!(t.resubmittable(3, &json!({"z": 1}), &before, &o, &[]), None);
        // Answered and handled: forgotten.
        let _ = o.pop_front();
        let _ = t.settle(&o, 3);
        t.forget_answered();
        assert_eq!(
            t.resubmittable(1, &local, &json!({"cart": {"X": 1}}), &o, &[]),
            None
        );
        assert_eq!(patched(&before, &local), json!({"cart": {"X": 2}}));
    }

    /// Another client's change on top of a held change holds the paths it
    /// covers: they are left out (and returned), the rest goes (a status
    /// move even with nothing left), and what each op was made on follows
    /// its patch.
    #[test]
    fn a_held_change_goes_without_its_covered_paths() {
        use crate::core::session::link::{empty_state, LinkConfig};
        let mut t = Tracking::default();
        let both = json!({"cart": {"X": 1}, "email": "e"});
        t.hold(both.clone(), None, 1, &json!({"cart": {}}), 0);
        t.hold(
            json!({"cart": {"X": 3}}),
            None,
            2,
            &json!({"cart": {"X": 2}}),
            0,
        );
        t.hold(
            json!({"cart": {"X": 4}}),
            Some("checkout".into()),
            3,
            &json!({}),
            0,
        );
        t.hold(json!({"cart": {"X": 5}}), None, 4, &json!({}), 0);
        let x: Path = vec!["cart".into(), "X".into()];
        let covered = |n: u64, paths: &[Path]| -> Vec<Path> {
            if n == HELD_BASE + 1 {
                return Vec::new(); // made after the mark
            }
            paths.iter().filter(|p| **p == x).cloned().collect()
        };
        let cfg = LinkConfig::new("fedcba9876543210fedcba9876543210", "t", 1);
        let mut link = Link::new(cfg, Outbox::new(ME).unwrap(), 7, empty_state());
        let (any, dropped) = t.release(&mut link, covered, 0);
        assert!(any);
        let lost = json!({"cart": {"X": 1}});
        assert_eq!(
            dropped,
            [
                lost.clone(),
                json!({"cart": {"X": 4}}),
                json!({"cart": {"X": 5}})
            ]
        );
        let ops: Vec<_> = link
            .outbox()
            .iter()
            .map(|o| (o.id.seq, o.patch.clone(), o.to.clone()))
            .collect();
        assert_eq!(
            ops,
            [
                (1, json!({"email": "e"}), None),
                (2, json!({"cart": {"X": 3}}), None),
                (3, json!({}), Some("checkout".into()))
            ]
        );
        assert_eq!(t.answered(), 4, "the store puts none of them back");
        let server = json!({"cart": {"X": 9}});
        let email = json!({"email": "e"});
        assert_eq!(
            t.resubmittable(1, &email, &server, link.outbox(), &[]),
            Some(email.clone())
        );
        // An op refused with some of its paths covered: the rest, if resubmittable.
        let mut o = Outbox::new(ME).unwrap();
        let mut r = Tracking::default();
        let _ = o.push(1, both.clone(), None, 64);
        r.submitted(
            &o,
            0,
            1,
            &json!({"cart": {}}),
            &json!({"cart": {"X": 1}, "email": "e"}),
            None,
        );
        let x = [x];
        assert_eq!(r.resubmittable(1, &both, &server, &o, &x), Some(email));
        assert_eq!(
            r.resubmittable(1, &both, &server, &o, &[]),
            None,
            "X changed"
        );
        let moved = json!({"cart": {"X": 9}, "email": "f"});
        assert_eq!(r.resubmittable(1, &both, &moved, &o, &x), None);
        let all = [x[0].clone(), vec!["email".into()]];
        assert_eq!(
            r.resubmittable(1, &both, &server, &o, &all),
            None,
            "nothing left"
        );
    }
}
