//! Target `merge_patch`: JSON merge patches (`src/core/merge_patch.rs`) and
//! the rebase rule the server builds on them.
//!
//! Input: a state and two patches, each built by [`Input::value`] from a
//! few keys (mode byte: bit 0 and bit 1 make the patches objects, as ops'
//! patches are).
//!
//! Asserts, for state `s` and patches `p`, `q`:
//! - apply is idempotent: `apply(apply(s,p),p) == apply(s,p)`;
//! - compose is exact where it answers: `compose(p,q) == Some(c)` implies
//!   `apply(apply(s,p),q) == apply(s,c)`;
//! - rebase is safe: patches that do not overlap commute,
//!   `apply(apply(s,p),q) == apply(apply(s,q),p)`; `overlaps` is symmetric;
//! - `touched_keys` are the first keys of `touched_paths` (`*` and the root
//!   for a patch that is not an object, nothing for `{}`), and keys of an
//!   object state that a patch does not touch are left as they were;
//! - diff inverts apply: `apply(s, diff(s,t)) == t` for an object `t` with
//!   no `null` inside its objects (a merge patch cannot set `null`), and
//!   `diff(s,s) == {}`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use sessile::core::merge_patch::{apply, compose, diff, overlaps, touched_keys, touched_paths};

use crate::input::Input;

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let mode = input.byte();
    let s = input.value(3);
    let p = if mode & 1 == 0 {
        input.object(2)
    } else {
        input.value(3)
    };
    let q = if mode & 2 == 0 {
        input.object(2)
    } else {
        input.value(3)
    };
    check_values(&s, &p, &q);
}

/// The assertions on one state and two patches.
pub fn check_values(s: &Value, p: &Value, q: &Value) {
    let sp = applied(s, p);
    assert_eq!(applied(&sp, p), sp, "apply is not idempotent: s={s} p={p}");
    let spq = applied(&sp, q);
    if let Some(c) = compose(p, q) {
        assert_eq!(
            applied(s, &c),
            spq,
            "compose({p}, {q}) = {c} is not exact on {s}"
        );
    }
    let overlap = overlaps(p, q);
    assert_eq!(
        overlap,
        overlaps(q, p),
        "overlaps is not symmetric: {p} {q}"
    );
    if !overlap {
        let sqp = applied(&applied(s, q), p);
        assert_eq!(
            spq, sqp,
            "disjoint patches {p} and {q} do not commute on {s}"
        );
    }
    check_touched(s, p);
    check_touched(s, q);
    if sp.is_object() && !has_null_in_objects(&sp) {
        let d = diff(s, &sp);
        assert_eq!(
            applied(s, &d),
            sp,
            "diff({s}, {sp}) = {d} does not rebuild it"
        );
    }
    if s.is_object() {
        assert_eq!(
            diff(s, s),
            Value::Object(Map::new()),
            "diff of {s} with itself"
        );
    }
}

fn applied(s: &Value, p: &Value) -> Value {
    let mut out = s.clone();
    apply(&mut out, p);
    out
}

/// Whether an object reachable from `v` through objects holds a `null`.
fn has_null_in_objects(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().any(|x| x.is_null() || has_null_in_objects(x)),
        _ => false,
    }
}

fn check_touched(s: &Value, p: &Value) {
    let keys = touched_keys(p);
    let paths = touched_paths(p);
    match p {
        Value::Object(m) => {
            let from_paths: BTreeSet<&str> = paths
                .iter()
                .map(|path| path.first().expect("a key of an object patch").as_str())
                .collect();
            let key_set: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
            assert_eq!(key_set, from_paths, "touched keys and paths of {p}");
            assert_eq!(keys.len(), m.len(), "touched keys of {p}");
            if let Value::Object(before) = s {
                let after = applied(s, p);
                let after = after.as_object().expect("an object patch makes an object");
                for (k, v) in before {
                    if !key_set.contains(k.as_str()) {
                        assert_eq!(
                            after.get(k),
                            Some(v),
                            "{p} changed untouched key {k} of {s}"
                        );
                    }
                }
                for k in after.keys() {
                    assert!(
                        before.contains_key(k) || key_set.contains(k.as_str()),
                        "{p} added untouched key {k} to {s}"
                    );
                }
            }
        }
        _ => {
            assert_eq!(keys, vec!["*".to_string()]);
            assert_eq!(paths, vec![Vec::<String>::new()]);
        }
    }
}
