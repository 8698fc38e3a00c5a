//! This tab's own changes that are not yet safe: each `set` is kept as a
//! merge patch under its sequence number until it is both stored (a stored
//! copy includes it) and acknowledged by the server. When the tab takes
//! another tab's stored copy it puts the changes that copy lacks back on
//! top (rebase), so a change the server still has to receive is never
//! replaced. Also the per-client watermarks ("includes") a stored copy
//! carries, which say which changes are already in it.

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
    /// A `stored` copy also marks the changes it has as stored.
    pub fn rebase_onto(&mut self, state: &mut Value, includes: Includes, stored: bool) -> usize {
        let had = includes.of(&self.client);
        self.includes = includes;
        if stored {
            self.stored(had);
        }
        let mut replayed = 0;
        for change in self.changes.iter().filter(|c| c.seq > had) {
            merge_patch::apply(state, &change.patch);
            replayed += 1;
        }
        if replayed > 0 {
            self.includes.set(&self.client, self.last_seq);
        }
        replayed
    }

    /// Takes a copy that wins over this tab's changes: they are dropped
    /// (a store without a server, a cleared namespace, or the copy restored
    /// at open). A copy that includes more of this client's changes than it
    /// numbered (this client before a reload) moves the numbering past
    /// them, so no later change is taken for one the copy has.
    pub fn replace(&mut self, includes: Includes) {
        self.last_seq = self.last_seq.max(includes.of(&self.client));
        self.changes.clear();
        self.includes = includes;
        self.stored_through = self.last_seq;
    }
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
