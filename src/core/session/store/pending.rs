//! This tab's own changes that are not yet safe: each `set` is kept as a
//! merge patch under its sequence number until it is both stored (a stored
//! copy includes it) and acknowledged by the server. When the tab takes
//! another tab's stored copy it puts the changes that copy lacks back on
//! top (rebase), so a change the server still has to receive is never
//! replaced. Also the server states this tab took and has not stored yet
//! (each as the merge patch it made), put back on top of such a copy in
//! their place among the changes, so a tab never goes back to a state
//! older than the server's it already showed; and the per-client
//! watermarks ("includes") a stored copy carries, which say which changes
//! are already in it.

use std::collections::VecDeque;

use serde_json::Value;

use super::types::{ClientId, OpSeq};
use crate::core::merge_patch;

/// Most clients a head's `includes` names; the least recently changed
/// entry goes first.
pub const MAX_INCLUDES: usize = 32;

/// Most changes kept one by one; beyond that the two oldest are composed
/// into one (where a merge patch can say both), so the list stays bounded
/// while the link is offline.
pub const MAX_PENDING: usize = 1024;

/// One local change: the merge patch from the state before it to the state
/// after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Its sequence number (a composed change keeps the later one).
    pub seq: OpSeq,
    /// The merge patch.
    pub patch: Value,
}

/// A server state this tab took and has not stored yet: the merge patch
/// from the state before it, after this client's change `after`.
#[derive(Debug, Clone, PartialEq)]
struct Taken {
    after: OpSeq,
    version: u64,
    patch: Value,
}

/// Where other clients of this browser still have a change to send (rule
/// 1, told by the session): a server state put back on another tab's copy
/// leaves the copy's values there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listed {
    /// Anything: no server state is put back.
    pub all: bool,
    /// The key chains kept as the copy has them.
    pub paths: Vec<Vec<String>>,
}

/// The changes of one client that a state includes: `(client, last seq)`,
/// least recently moved first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Includes(pub Vec<(ClientId, OpSeq)>);

impl Includes {
    /// The last change of `client` included, 0 for none.
    pub fn of(&self, client: &ClientId) -> OpSeq {
        self.0
            .iter()
            .find(|(c, _)| c == client)
            .map_or(0, |(_, s)| *s)
    }

    /// Records that `client`'s changes up to `seq` are included.
    pub fn set(&mut self, client: &ClientId, seq: OpSeq) {
        self.0.retain(|(c, _)| c != client);
        self.0.push((client.clone(), seq));
        if self.0.len() > MAX_INCLUDES {
            self.0.remove(0);
        }
    }
}

/// This client's changes, their watermarks and the state's includes.
#[derive(Debug, Clone)]
pub struct Pending {
    client: ClientId,
    /// Keep each change's patch (a synced session); a store alone only
    /// counts them (the newest stored copy wins there).
    keep_patches: bool,
    changes: VecDeque<Change>,
    last_seq: OpSeq,
    acked: OpSeq,
    stored_through: OpSeq,
    includes: Includes,
    taken: VecDeque<Taken>,
    listed: Listed,
}

impl Pending {
    /// No change yet; the next one gets `first_seq`.
    pub fn new(client: ClientId, first_seq: OpSeq, keep_patches: bool) -> Self {
        Self {
            client,
            keep_patches,
            changes: VecDeque::new(),
            last_seq: first_seq.saturating_sub(1),
            acked: if keep_patches { 0 } else { OpSeq::MAX },
            stored_through: 0,
            includes: Includes::default(),
            taken: VecDeque::new(),
            listed: Listed::default(),
        }
    }

    /// This client.
    pub fn client(&self) -> &ClientId {
        &self.client
    }

    /// The sequence number of the newest change.
    pub fn last_seq(&self) -> OpSeq {
        self.last_seq
    }

    /// Changes kept.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// What the current state includes (stored with the next write).
    pub fn includes(&self) -> &Includes {
        &self.includes
    }

    /// Records the change from `old` to `new`; returns its sequence number.
    pub fn record(&mut self, old: &Value, new: &Value) -> OpSeq {
        self.last_seq += 1;
        let seq = self.last_seq;
        self.includes.set(&self.client, seq);
        if self.keep_patches {
            let patch = merge_patch::diff(old, new);
            self.changes.push_back(Change { seq, patch });
            self.bound();
        }
        seq
    }

    /// Composes the two oldest changes while there are too many.
    fn bound(&mut self) {
        while self.changes.len() > MAX_PENDING {
            let composed = merge_patch::compose(&self.changes[0].patch, &self.changes[1].patch);
            let Some(patch) = composed else { return };
            self.changes.pop_front();
            self.changes[0].patch = patch;
        }
    }

    /// Records a server state taken as version `version` (from `old` to
    /// `new`), kept until a copy this tab stores at that version or later
    /// holds it. Only in a synced session (one that keeps patches).
    pub fn took(&mut self, old: &Value, new: &Value, version: u64) {
        if !self.keep_patches {
            return;
        }
        let patch = merge_patch::diff(old, new);
        if patch.as_object().is_some_and(|o| o.is_empty()) {
            return;
        }
        let after = self.last_seq;
        if let Some(last) = self.taken.back_mut().filter(|t| t.after == after) {
            if let Some(both) = merge_patch::compose(&last.patch, &patch) {
                last.patch = both;
                last.version = version;
                return;
            }
        }
        self.taken.push_back(Taken {
            after,
            version,
            patch,
        });
        // Bounded as the changes are: the two oldest composed (put back
        // after the later one's change).
        while self.taken.len() > MAX_PENDING {
            let Some(patch) = merge_patch::compose(&self.taken[0].patch, &self.taken[1].patch)
            else {
                return;
            };
            self.taken.pop_front();
            self.taken[0].patch = patch;
        }
    }

    /// This tab stored a copy at `version`: the server states taken up to
    /// it are in every copy from now on.
    pub fn taken_stored(&mut self, version: u64) {
        while self.taken.front().is_some_and(|t| t.version <= version) {
            self.taken.pop_front();
        }
    }

    /// Where other clients of this browser still have a change to send.
    pub fn set_listed(&mut self, listed: Listed) {
        self.listed = listed;
    }

    /// Whether a server state taken is not stored yet.
    pub fn has_taken(&self) -> bool {
        !self.taken.is_empty()
    }

    /// The server acknowledged this client's changes up to `seq`.
    pub fn acknowledged(&mut self, seq: OpSeq) {
        self.acked = self.acked.max(seq);
        self.prune();
    }

    /// A stored copy (written here, or taken) includes the changes up to `seq`.
    pub fn stored(&mut self, seq: OpSeq) {
        self.stored_through = self.stored_through.max(seq);
        self.prune();
    }

    fn prune(&mut self) {
        let safe = self.acked.min(self.stored_through);
        while self.changes.front().is_some_and(|c| c.seq <= safe) {
            self.changes.pop_front();
        }
    }

    /// Takes a copy with `includes` as the base of `state`: puts back on
    /// top every kept change the copy lacks, in order; returns how many.
    /// A `stored` copy (another tab's) also marks the changes it has as
    /// stored, and gets the server states this tab took and has not stored
    /// put back too, each in its place among the changes (a server state
    /// given now is the newest: those before it are in it).
    pub fn rebase_onto(&mut self, state: &mut Value, includes: Includes, stored: bool) -> usize {
        let had = includes.of(&self.client);
        self.includes = includes;
        if stored {
            self.stored(had);
        }
        if stored {
            self.keep_taken_for(state);
        }
        let none = VecDeque::new();
        let mut taken = if stored { &self.taken } else { &none }.iter().peekable();
        let mut replayed = 0;
        for change in &self.changes {
            while let Some(t) = taken.next_if(|t| t.after < change.seq) {
                merge_patch::apply(state, &t.patch);
            }
            if change.seq > had {
                merge_patch::apply(state, &change.patch);
                replayed += 1;
            }
        }
        for t in taken {
            merge_patch::apply(state, &t.patch);
        }
        if replayed > 0 {
            self.includes.set(&self.client, self.last_seq);
        }
        replayed
    }

    /// Keeps of the server states taken only what goes back on `copy`:
    /// never where another client of this browser still has a change to
    /// send (the copy's value there holds it; once the server applies it,
    /// the server's next version brings it), and not what the copy holds
    /// already (it is then in every copy after it: put back later, it
    /// would undo a change made on top of it).
    fn keep_taken_for(&mut self, copy: &Value) {
        if self.listed.all {
            self.taken.clear();
            return;
        }
        let paths = &self.listed.paths;
        self.taken.retain_mut(|t| {
            t.patch = without(&t.patch, paths);
            let mut with = copy.clone();
            merge_patch::apply(&mut with, &t.patch);
            with != *copy
        });
    }

    /// Takes a copy that wins over this tab's changes: they are dropped
    /// (a store without a server, a cleared namespace, or the copy restored
    /// at open). A copy that includes more of this client's changes than it
    /// numbered (this client before a reload) moves the numbering past
    /// them, so no later change is taken for one the copy has.
    pub fn replace(&mut self, includes: Includes) {
        self.last_seq = self.last_seq.max(includes.of(&self.client));
        self.changes.clear();
        self.taken.clear();
        self.includes = includes;
        self.stored_through = self.last_seq;
    }
}

/// `patch` less every part at or under a path of `paths`, or above one
/// (a value that would replace what is kept there).
fn without(patch: &Value, paths: &[Vec<String>]) -> Value {
    fn walk(patch: &mut Value, at: &mut Vec<String>, paths: &[Vec<String>]) {
        let Value::Object(map) = patch else { return };
        map.retain(|key, value| {
            at.push(key.clone());
            let keep = if paths.iter().any(|p| at.starts_with(p)) {
                false
            } else if value.as_object().is_some_and(|o| !o.is_empty()) {
                walk(value, at, paths);
                value.as_object().is_some_and(|o| !o.is_empty())
            } else {
                !paths.iter().any(|p| p.starts_with(at))
            };
            at.pop();
            keep
        });
    }
    let mut out = patch.clone();
    if !paths.is_empty() {
        walk(&mut out, &mut Vec::new(), paths);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn me() -> ClientId {
        ClientId("a".repeat(32))
    }

    #[test]
    fn a_change_is_kept_until_stored_and_acknowledged() {
        let mut p = Pending::new(me(), 1, true);
        assert_eq!(p.record(&json!({}), &json!({"x": 1})), 1);
        assert_eq!(p.record(&json!({"x": 1}), &json!({"x": 2})), 2);
        p.stored(2);
        assert_eq!(p.len(), 2, "stored but not acknowledged");
        p.acknowledged(1);
        assert_eq!(p.len(), 1);
        p.acknowledged(2);
        assert_eq!(p.len(), 0);
    }

    #[test]
    fn rebase_replays_only_what_the_copy_lacks() {
        let mut p = Pending::new(me(), 1, true);
        p.record(&json!({}), &json!({"x": 1}));
        p.record(&json!({"x": 1}), &json!({"x": 1, "y": 1}));
        // The other tab's copy has change 1 (and its own x = 5 on top of it).
        let mut theirs = Includes::default();
        theirs.set(&me(), 1);
        let mut state = json!({"x": 5});
        assert_eq!(p.rebase_onto(&mut state, theirs, true), 1);
        assert_eq!(state, json!({"x": 5, "y": 1}));
        assert_eq!(p.includes().of(&me()), 2);
    }

    #[test]
    fn a_server_state_taken_goes_back_in_its_place_until_stored() {
        let mut p = Pending::new(me(), 1, true);
        p.record(&json!({}), &json!({"x": 1}));
        // The server's y = 2 taken after change 1, then y = 3 set here.
        p.took(&json!({"x": 1}), &json!({"x": 1, "y": 2, "z": 2}), 5);
        p.record(
            &json!({"x": 1, "y": 2, "z": 2}),
            &json!({"x": 1, "y": 3, "z": 2}),
        );
        let mut state = json!({"w": 1});
        assert_eq!(p.rebase_onto(&mut state, Includes::default(), true), 2);
        assert_eq!(state, json!({"w": 1, "x": 1, "y": 3, "z": 2}));
        // A newer server state given now is not overwritten by an older one.
        let mut server = json!({"z": 4});
        p.rebase_onto(&mut server, Includes::default(), false);
        assert_eq!(server, json!({"x": 1, "y": 3, "z": 4}));
        p.taken_stored(4);
        assert!(p.has_taken(), "stored before it was taken");
        p.taken_stored(5);
        assert!(!p.has_taken());
        let mut state = json!({"w": 1});
        p.rebase_onto(&mut state, Includes::default(), true);
        assert_eq!(state, json!({"w": 1, "x": 1, "y": 3}));
    }

    #[test]
    fn a_server_state_put_back_leaves_what_another_client_has_to_send() {
        let mut p = Pending::new(me(), 1, true);
        p.took(
            &json!({"cart": {"X": 1}}),
            &json!({"cart": {"X": 2, "Y": 2}, "email": "o@x"}),
            3,
        );
        let path = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect();
        p.set_listed(Listed {
            all: false,
            paths: vec![path(&["cart", "X"])],
        });
        let mut state = json!({"cart": {"X": 5}});
        p.rebase_onto(&mut state, Includes::default(), true);
        assert_eq!(state, json!({"cart": {"X": 5, "Y": 2}, "email": "o@x"}));
        // What was left out is not put back once the path is no longer
        // listed (the server's next version brings that client's change).
        p.set_listed(Listed::default());
        let mut state = json!({"cart": {"X": 6}});
        p.rebase_onto(&mut state, Includes::default(), true);
        assert_eq!(state, json!({"cart": {"X": 6, "Y": 2}, "email": "o@x"}));
        // A copy that holds it already: it is not put back again later.
        let mut state = json!({"cart": {"X": 7, "Y": 2}, "email": "o@x"});
        p.rebase_onto(&mut state, Includes::default(), true);
        assert!(!p.has_taken());
        // Anything listed: nothing is put back.
        p.took(&json!({}), &json!({"email": "p@x"}), 4);
        p.set_listed(Listed {
            all: true,
            paths: Vec::new(),
        });
        let mut state = json!({"cart": {"X": 5}});
        p.rebase_onto(&mut state, Includes::default(), true);
        assert_eq!(state, json!({"cart": {"X": 5}}));
        assert!(!p.has_taken());
    }

    #[test]
    fn without_leaves_out_paths_under_and_above_those_kept() {
        let path = |keys: &[&str]| keys.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        let patch = json!({"a": {"b": 1, "c": 2}, "d": null, "e": 3});
        let kept = [path(&["a", "b"]), path(&["d", "x"])];
        assert_eq!(without(&patch, &kept), json!({"a": {"c": 2}, "e": 3}));
        assert_eq!(without(&patch, &[path(&["a"])]), json!({"d": null, "e": 3}));
    }

    #[test]
    fn a_restored_copy_moves_the_numbering_past_its_changes() {
        let mut p = Pending::new(me(), 1, true);
        let mut restored = Includes::default();
        restored.set(&me(), 57);
        p.replace(restored);
        assert_eq!(p.record(&json!({}), &json!({"x": 1})), 58);
        // Another tab's copy made from the old one does not hide it.
        let mut old = Includes::default();
        old.set(&me(), 57);
        let mut state = json!({});
        assert_eq!(p.rebase_onto(&mut state, old, true), 1);
        assert_eq!(state, json!({"x": 1}));
    }

    #[test]
    fn includes_are_bounded() {
        let mut i = Includes::default();
        for n in 0..100 {
            i.set(&ClientId(n.to_string()), n);
        }
        assert_eq!(i.0.len(), MAX_INCLUDES);
        assert_eq!(i.of(&ClientId("99".into())), 99);
        assert_eq!(i.of(&ClientId("0".into())), 0);
    }

    #[test]
    fn many_changes_are_composed_not_dropped() {
        let mut p = Pending::new(me(), 1, true);
        let mut state = json!({});
        for n in 0..(MAX_PENDING as u64 + 10) {
            let next = json!({ "k": { n.to_string(): n } });
            let mut merged = state.clone();
            merge_patch::apply(&mut merged, &next);
            p.record(&state, &merged);
            state = merged;
        }
        assert_eq!(p.len(), MAX_PENDING);
        let mut base = json!({});
        p.rebase_onto(&mut base, Includes::default(), true);
        assert_eq!(base, state);
    }
}
