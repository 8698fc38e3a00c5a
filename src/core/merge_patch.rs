//! JSON merge patches (RFC 7386): apply one to a value, compose two into one
//! where the result is exact, and list the paths a patch touches so the server
//! can tell whether two concurrent patches are disjoint (rebase) or not. The
//! TypeScript store keeps a copy of these rules while it lasts
//! (`js/src/link/core/merge-patch.ts`); `tests/merge_patch_cases.rs` and
//! `js/test/merge_patch.test.mjs` share their cases.

use serde_json::{Map, Value};

/// Applies `patch` to `target` in place, as RFC 7386 section 2 defines: an
/// object patch merges key by key (`null` removes a key), anything else
/// replaces the target.
pub fn apply(target: &mut Value, patch: &Value) {
    let Value::Object(fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(doc) = target else {
        return;
    };
    for (key, value) in fields {
        if value.is_null() {
            doc.remove(key);
        } else {
            apply(doc.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// One patch with the effect of applying `first` and then `second`, or
/// `None` where no single merge patch has that effect (a key replaced by a
/// scalar or removed, then patched with an object: a merge patch cannot say
/// "replace with exactly this object"). Callers then keep both patches.
pub fn compose(first: &Value, second: &Value) -> Option<Value> {
    let Value::Object(b) = second else {
        return Some(second.clone());
    };
    let Value::Object(a) = first else {
        return None;
    };
    let mut out = a.clone();
    for (key, vb) in b {
        let composed = match (a.get(key), vb) {
            (Some(va), Value::Object(_)) => compose(va, vb)?,
            _ => vb.clone(),
        };
        out.insert(key.clone(), composed);
    }
    Some(Value::Object(out))
}

/// The merge patch that turns `old` into `new`: keys removed become `null`,
/// changed values are set, nested objects are diffed key by key, equal keys
/// are left out (an empty object: nothing changed). A merge patch cannot set
/// a value to `null` (RFC 7386: `null` removes), so a key whose new value is
/// `null` is removed by the patch. Two non-objects: `new` itself.
pub fn diff(old: &Value, new: &Value) -> Value {
    let (Value::Object(a), Value::Object(b)) = (old, new) else {
        return new.clone();
    };
    let mut out = Map::new();
    for key in a.keys() {
        if !b.contains_key(key) {
            out.insert(key.clone(), Value::Null);
        }
    }
    for (key, vb) in b {
        match a.get(key) {
            Some(va) if va == vb => {}
            Some(va) if va.is_object() && vb.is_object() => {
                out.insert(key.clone(), diff(va, vb));
            }
            _ => {
                out.insert(key.clone(), vb.clone());
            }
        }
    }
    Value::Object(out)
}

/// The paths (keys from the root) that `patch` sets or removes. A patch that
/// is not an object touches the root, the empty path.
pub fn touched_paths(patch: &Value) -> Vec<Vec<String>> {
    fn walk(v: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, child) in m {
                    prefix.push(k.clone());
                    walk(child, prefix, out);
                    prefix.pop();
                }
            }
            // An empty object patch changes nothing below its path, but it
            // creates the path when missing: count the path itself.
            _ => out.push(prefix.clone()),
        }
    }
    let mut out = Vec::new();
    if let Value::Object(m) = patch {
        if m.is_empty() {
            return out;
        }
    }
    walk(patch, &mut Vec::new(), &mut out);
    out
}

/// Whether two patches touch a common path (one path equal to or a prefix of
/// the other). Disjoint patches commute, so either can be applied first.
/// A patch that is not an object replaces the root, and overlaps every
/// patch, `{}` included: `{}` turns a root that is not an object into `{}`.
pub fn overlaps(a: &Value, b: &Value) -> bool {
    if !a.is_object() || !b.is_object() {
        return true;
    }
    let pa = touched_paths(a);
    let pb = touched_paths(b);
    pa.iter()
        .any(|x| pb.iter().any(|y| x.starts_with(y) || y.starts_with(x)))
}

/// The top-level keys a patch touches, `*` for a whole-document replacement;
/// what the audit log records.
pub fn touched_keys(patch: &Value) -> Vec<String> {
    match patch {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => vec!["*".into()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The examples of RFC 7386, appendix A.
    #[test]
    fn rfc7386_appendix_a() {
        let cases = [
            (json!({"a":"b"}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"b"}), json!({"b":"c"}), json!({"a":"b","b":"c"})),
            (json!({"a":"b"}), json!({"a":null}), json!({})),
            (
                json!({"a":"b","b":"c"}),
                json!({"a":null}),
                json!({"b":"c"}),
            ),
            (json!({"a":["b"]}), json!({"a":"c"}), json!({"a":"c"})),
            (json!({"a":"c"}), json!({"a":["b"]}), json!({"a":["b"]})),
            (
                json!({"a":{"b":"c"}}),
                json!({"a":{"b":"d","c":null}}),
                json!({"a":{"b":"d"}}),
            ),
            (json!({"a":[{"b":"c"}]}), json!({"a":[1]}), json!({"a":[1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a":"b"}), json!(["c"]), json!(["c"])),
            (json!({"a":"foo"}), json!(null), json!(null)),
            (json!({"a":"foo"}), json!("bar"), json!("bar")),
            (json!({"e":null}), json!({"a":1}), json!({"e":null,"a":1})),
            (json!([1, 2]), json!({"a":"b","c":null}), json!({"a":"b"})),
            (
                json!({}),
                json!({"a":{"bb":{"ccc":null}}}),
                json!({"a":{"bb":{}}}),
            ),
        ];
        for (target, patch, want) in cases {
            let mut doc = target.clone();
            apply(&mut doc, &patch);
            assert_eq!(doc, want, "{target} + {patch}");
        }
    }

    #[test]
    fn compose_refuses_what_one_patch_cannot_say() {
        assert_eq!(
            compose(&json!({"a":1,"b":{"x":1}}), &json!({"b":{"y":2},"c":null})),
            Some(json!({"a":1,"b":{"x":1,"y":2},"c":null}))
        );
        assert_eq!(compose(&json!({"a":null}), &json!({"a":{"x":1}})), None);
        assert_eq!(compose(&json!({"a":5}), &json!({"a":{"x":1}})), None);
        assert_eq!(compose(&json!(3), &json!({"a":1})), None);
        assert_eq!(compose(&json!({"a":1}), &json!(7)), Some(json!(7)));
    }

    #[test]
    fn paths_and_overlap() {
        let p = json!({"cart":{"items":[1]},"email":null});
        let mut paths = touched_paths(&p);
        paths.sort();
        assert_eq!(paths, vec![vec!["cart", "items"], vec!["email"]]);
        assert!(overlaps(&json!({"cart":{"items":[]}}), &json!({"cart":1})));
        assert!(!overlaps(
            &json!({"cart":{"a":1}}),
            &json!({"cart":{"b":1}})
        ));
        assert!(overlaps(&json!([1]), &json!({"x":1})), "root touches all");
        assert!(
            !overlaps(&json!({}), &json!({"x":1})),
            "an empty patch touches no key"
        );
        assert_eq!(touched_keys(&p), vec!["cart", "email"]);
    }

    /// Found by the `merge_patch` fuzz target (fuzz/corpus/merge_patch/
    /// regression-empty-object-vs-root): `{}` turns a target that is not an
    /// object into `{}`, so it does not commute with a patch that replaces
    /// the root, and the two overlap.
    #[test]
    fn an_empty_patch_overlaps_a_root_replacement() {
        for root in [json!(null), json!("b"), json!([1]), json!(7)] {
            let empty = json!({});
            assert!(overlaps(&empty, &root), "{{}} and {root}");
            assert!(overlaps(&root, &empty), "{root} and {{}}");
            let mut a = json!(null);
            apply(&mut a, &empty);
            apply(&mut a, &root);
            let mut b = json!(null);
            apply(&mut b, &root);
            apply(&mut b, &empty);
            assert_ne!(a, b, "they do not commute on null: {a} vs {b}");
        }
        assert!(overlaps(&json!(1), &json!(2)), "two roots");
    }

    #[test]
    fn diff_then_apply_gives_the_new_value() {
        let cases = [
            (json!({}), json!({})),
            (json!({"a":1}), json!({"a":1})),
            (json!({"a":1,"b":2}), json!({"b":3,"c":[1,2]})),
            (
                json!({"cart":{"items":[1],"total":5},"step":"cart"}),
                json!({"cart":{"items":[1,2],"total":9},"step":"checkout"}),
            ),
            (json!({"a":{"b":1}}), json!({"a":"flat"})),
            (json!({"a":"flat"}), json!({"a":{"b":{"c":1}}})),
            (json!({"a":{"b":1,"c":2}}), json!({"a":{}})),
        ];
        for (old, new) in cases {
            let patch = diff(&old, &new);
            let mut doc = old.clone();
            apply(&mut doc, &patch);
            assert_eq!(doc, new, "{old} -> {new} via {patch}");
        }
        assert_eq!(diff(&json!({"a":1}), &json!({"a":1})), json!({}));
        assert_eq!(
            diff(&json!({"a":{"x":1,"y":2}}), &json!({"a":{"x":1,"y":3}})),
            json!({"a":{"y":3}})
        );
    }

    #[test]
    fn diff_cannot_carry_null_values() {
        let mut doc = json!({"email":"a@b.c"});
        let patch = diff(&doc, &json!({"email":null}));
        apply(&mut doc, &patch);
        assert_eq!(doc, json!({}));
    }
}
