//! The pending register: which parts of the state each client of this
//! browser still has to send to the server (docs/PROTOCOL.md, "Tabs of a
//! synced session", rule 1). Every tab lists its unanswered ops (sequence
//! and the paths each sets) in localStorage, `<name>:pending:<client>` =
//! `{session, ops: [{seq, paths}]}`, or over the limits only `{session,
//! all: true, last}`. A tab that takes the server's copy into the page
//! keeps the page's own value at every path another client still has to
//! send and this tab's link has not seen applied: the server's copy is
//! older there. This file builds this client's entry, reads the others'
//! and keeps those values; the engine writes and hears the entries.
//!
//! An entry also says which listed ops of other clients this client made a
//! change on top of (`over: [{client, seq, paths}]`: that client's ops up
//! to `seq` at `paths` are held in a change of this client). The client
//! that owns those ops (or the tab that adopts its id after a crash) reads
//! it when one of them is refused as a conflict: such an op is not
//! submitted again over the newer change (rule 3's exception), it loses
//! its conflict. A mark stays while the other client still lists an op it
//! covers, so after this tab closed too.

use serde_json::{json, Map, Value};

use crate::core::protocol::Op;
use crate::core::vec_map::VecMap;

/// A key chain from the root of the state.
pub type Path = Vec<String>;

/// Most paths one client lists before it says "anything" instead.
pub const MAX_PATHS: usize = 256;
/// Largest entry, in UTF-16 units of its JSON text, before it says
/// "anything" instead.
pub const MAX_ENTRY_CHARS: usize = 16 * 1024;
/// Deepest path listed; a deeper change lists its first keys (a prefix
/// covers it).
pub const MAX_DEPTH: usize = 16;

/// What the other clients still have to send: some paths, or anything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pending {
    /// Anything: keep the page's state whole.
    pub all: bool,
    /// The paths to keep.
    pub paths: Vec<Path>,
}

/// The paths a merge patch changes: each key down to a value that is not
/// a non-empty object (at most [`MAX_DEPTH`] keys deep).
pub fn paths_of(patch: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    collect(patch, &mut Vec::new(), &mut out);
    out
}

fn collect(patch: &Value, prefix: &mut Path, out: &mut Vec<Path>) {
    match patch {
        Value::Object(map) if prefix.len() < MAX_DEPTH => {
            for (k, v) in map {
                prefix.push(k.clone());
                match v {
                    Value::Object(inner) if !inner.is_empty() => collect(v, prefix, out),
                    _ => out.push(prefix.clone()),
                }
                prefix.pop();
            }
        }
        _ => out.push(prefix.clone()),
    }
}

/// Another client's listed ops that a change of this client was made on
/// top of: its ops up to `seq` at `paths` (the change's paths that overlap
/// theirs; the empty path, the whole state) are held in that change.
#[derive(Debug, Clone, PartialEq)]
pub struct Over {
    /// The other client.
    pub client: String,
    /// Its newest op covered.
    pub seq: u64,
    /// Where.
    pub paths: Vec<Path>,
}

/// This client's entry for `ops` (its unanswered ops, oldest first) and
/// `over` (what it changed on top of other clients' ops) in session
/// `session`: the full list, or the short form over the limits; `None` for
/// neither. Also the short form, for when the full one does not fit in
/// storage.
pub fn entry(session: &str, ops: &[&Op], over: &[Over]) -> Option<(String, String)> {
    let over_json: Vec<Value> = over
        .iter()
        .map(|o| json!({"client": o.client, "seq": o.seq, "paths": o.paths}))
        .collect();
    let with_over = |mut v: Value| {
        if !over_json.is_empty() {
            v["over"] = Value::Array(over_json.clone());
        }
        super::json_text(&v)
    };
    let Some(newest) = ops.last() else {
        let only = with_over(json!({"session": session, "ops": []}));
        return (!over.is_empty()).then(|| (only.clone(), only));
    };
    let short = with_over(json!({"session": session, "all": true, "last": newest.id.seq}));
    let mut count = 0;
    let listed: Vec<Value> = ops
        .iter()
        .map(|op| {
            let paths = paths_of(&op.patch);
            count += paths.len();
            json!({"seq": op.id.seq, "paths": paths})
        })
        .collect();
    if count > MAX_PATHS {
        return Some((short.clone(), short));
    }
    let full = with_over(json!({"session": session, "ops": listed}));
    if full.encode_utf16().count() > MAX_ENTRY_CHARS {
        return Some((short.clone(), short));
    }
    Some((full, short))
}

/// What the entries `others` (client id → JSON text) list for session
/// `session` and this tab has not seen applied (`applied(client)`: the
/// highest sequence of that client the server's copy holds). Entries of
/// other sessions, and ones that do not read, are left out.
pub fn pending_of(
    others: &VecMap<String, String>,
    session: &str,
    applied: impl Fn(&str) -> u64,
) -> Pending {
    let mut out = Pending::default();
    for (client, text) in others {
        let Some(e) = read_entry(text, session) else {
            continue;
        };
        let seen = applied(client);
        if e.get("all") == Some(&Value::Bool(true)) {
            let covered = e
                .get("last")
                .and_then(Value::as_u64)
                .is_some_and(|l| l <= seen);
            out.all |= !covered;
            continue;
        }
        let Some(Value::Array(ops)) = e.get("ops") else {
            continue;
        };
        for op in ops {
            let seq = op.get("seq").and_then(Value::as_u64);
            let Some(Value::Array(paths)) = op.get("paths") else {
                continue;
            };
            if seq.is_none_or(|s| s <= seen) {
                continue;
            }
            for p in paths {
                if let Some(path) = read_path(p) {
                    out.paths.push(path);
                }
            }
        }
    }
    out
}

/// What a change at `paths` made now was made on top of: the ops the
/// entries `others` list for session `session` at paths overlapping
/// `paths` that this tab has not seen applied (`applied(client)`), by
/// client (an entry that says "anything", up to its `last`).
pub fn built_over(
    others: &VecMap<String, String>,
    session: &str,
    applied: impl Fn(&str) -> u64,
    paths: &[Path],
) -> Vec<Over> {
    let mut out = Vec::new();
    for (client, e) in others {
        let Some(e) = read_entry(e, session) else {
            continue;
        };
        let seen = applied(client);
        let mut seq = 0;
        let mut at: Vec<Path> = Vec::new();
        if e.get("all") == Some(&Value::Bool(true)) {
            let last = e.get("last").and_then(Value::as_u64).unwrap_or(0);
            if last > seen {
                seq = last;
                at = paths.to_vec();
            }
        }
        for op in e.get("ops").and_then(Value::as_array).into_iter().flatten() {
            let Some(s) = op.get("seq").and_then(Value::as_u64).filter(|s| *s > seen) else {
                continue;
            };
            let listed: Vec<Path> = op
                .get("paths")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(read_path)
                .collect();
            for p in paths {
                if listed.iter().any(|q| overlaps(p, q)) {
                    seq = seq.max(s);
                    if !at.contains(p) {
                        at.push(p.clone());
                    }
                }
            }
        }
        if seq > 0 {
            out.push(Over {
                client: client.clone(),
                seq,
                paths: at,
            });
        }
    }
    out
}

/// Takes `new` into `marks`, one per client (its newest op, every path; over
/// [`MAX_PATHS`], the whole state).
pub fn add_over(marks: &mut Vec<Over>, new: Vec<Over>) {
    for n in new {
        let Some(m) = marks.iter_mut().find(|m| m.client == n.client) else {
            marks.push(n);
            continue;
        };
        m.seq = m.seq.max(n.seq);
        for p in n.paths {
            if !m.paths.contains(&p) {
                m.paths.push(p);
            }
        }
        if m.paths.len() > MAX_PATHS {
            m.paths = vec![Path::new()];
        }
    }
}

/// Keeps the marks some op still listed in `others` (session `session`)
/// is covered by: the others are answered, nothing will refuse them.
pub fn prune_over(marks: &mut Vec<Over>, others: &VecMap<String, String>, session: &str) {
    marks.retain(|m| {
        let Some(e) = others.get(&m.client).and_then(|e| read_entry(e, session)) else {
            return false;
        };
        if e.get("all") == Some(&Value::Bool(true)) {
            return true;
        }
        e.get("ops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|op| {
                op.get("seq")
                    .and_then(Value::as_u64)
                    .is_some_and(|s| s <= m.seq)
            })
    });
}

/// The marks an entry's text of session `session` carries (this client's
/// own, found at open).
pub fn overs_of(text: Option<&str>, session: &str) -> Vec<Over> {
    let Some(e) = text.and_then(|t| read_entry(t, session)) else {
        return Vec::new();
    };
    e.get("over")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|o| {
            Some(Over {
                client: o.get("client")?.as_str()?.to_string(),
                seq: o.get("seq")?.as_u64()?,
                paths: o
                    .get("paths")?
                    .as_array()?
                    .iter()
                    .map(read_path)
                    .collect::<Option<_>>()?,
            })
        })
        .collect()
}

/// Whether op `seq` of client `me`, at `paths`, is held in a change another
/// client (its entry in `others`, session `session`) made on top of it.
pub fn superseded(
    others: &VecMap<String, String>,
    session: &str,
    me: &str,
    seq: u64,
    paths: &[Path],
) -> bool {
    others.iter().any(|(_, text)| {
        overs_of(Some(text), session).iter().any(|o| {
            o.client == me
                && o.seq >= seq
                && o.paths.iter().any(|p| paths.iter().any(|q| overlaps(p, q)))
        })
    })
}

/// An entry's object, when it reads and is of session `session`.
fn read_entry(text: &str, session: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(text.as_bytes()) {
        Ok(Value::Object(e)) if e.get("session").and_then(Value::as_str) == Some(session) => {
            Some(e)
        }
        _ => None,
    }
}

fn read_path(p: &Value) -> Option<Path> {
    let Value::Array(keys) = p else { return None };
    keys.iter().map(|k| k.as_str().map(String::from)).collect()
}

/// `view` (the server's copy plus this tab's unanswered ops) with `page`'s
/// values at every path in `pending` (`page` itself when anything is
/// pending). A path absent from `page` is removed from the result.
pub fn keep_pending(view: Value, page: &Value, pending: &Pending) -> Value {
    if pending.all {
        return page.clone();
    }
    let mut out = view;
    for path in &pending.paths {
        set_at(&mut out, path, get_at(page, path));
    }
    out
}

/// Whether one path is a prefix of the other (a change at one touches the
/// other).
pub fn overlaps(a: &[String], b: &[String]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The value at `path` in `v`, `None` when absent.
pub fn get_at<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.as_object()?.get(k))
}

/// Puts `value` at `path` in `v` (`None`: the key removed), making objects
/// on the way as a merge patch would.
fn set_at(v: &mut Value, path: &[String], value: Option<&Value>) {
    let Some((last, parents)) = path.split_last() else {
        *v = value.cloned().unwrap_or_else(|| Value::Object(Map::new()));
        return;
    };
    let mut cur = v;
    for k in parents {
        if !cur.is_object() {
            if value.is_none() {
                return;
            }
            *cur = Value::Object(Map::new());
        }
        let map = cur.as_object_mut().expect("made an object above");
        cur = map
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !cur.is_object() {
        if value.is_none() {
            return;
        }
        *cur = Value::Object(Map::new());
    }
    let map = cur.as_object_mut().expect("made an object above");
    match value {
        Some(x) => {
            map.insert(last.clone(), x.clone());
        }
        None => {
            map.remove(last);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::protocol::OpId;

    const S: &str = "fedcba9876543210fedcba9876543210";

    fn op(seq: u64, patch: Value) -> Op {
        Op {
            id: OpId {
                client: "a".repeat(32),
                seq,
            },
            base: 1,
            patch,
            to: None,
        }
    }

    fn p(keys: &[&str]) -> Path {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn paths_go_down_to_values_and_stop_at_empty_objects_and_depth() {
        let patch = json!({"cart": {"X": 1, "Y": null}, "email": "a", "gift": {}});
        assert_eq!(
            paths_of(&patch),
            [
                p(&["cart", "X"]),
                p(&["cart", "Y"]),
                p(&["email"]),
                p(&["gift"])
            ]
        );
        let mut deep = json!(1);
        for _ in 0..20 {
            deep = json!({ "k": deep });
        }
        assert_eq!(paths_of(&deep), [vec!["k".to_string(); MAX_DEPTH]]);
        assert_eq!(
            paths_of(&json!("replaced")),
            [Path::new()],
            "the whole state"
        );
        assert_eq!(paths_of(&json!({"tags": ["a"]})), [p(&["tags"])]);
    }

    #[test]
    fn an_entry_lists_paths_or_says_anything_over_the_limits() {
        assert_eq!(entry(S, &[], &[]), None);
        let ops = [
            op(3, json!({"cart": {"X": 1}})),
            op(4, json!({"email": "e"})),
        ];
        let (full, short) = entry(S, &ops.iter().collect::<Vec<_>>(), &[]).unwrap();
        let v: Value = serde_json::from_str(&full).unwrap();
        assert_eq!(
            v,
            json!({"session": S, "ops": [{"seq": 3, "paths": [["cart", "X"]]}, {"seq": 4, "paths": [["email"]]}]})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&short).unwrap(),
            json!({"session": S, "all": true, "last": 4})
        );
        let many: serde_json::Map<String, Value> =
            (0..300).map(|i| (i.to_string(), json!(i))).collect();
        let big = [op(1, Value::Object(many))];
        let (text, _) = entry(S, &big.iter().collect::<Vec<_>>(), &[]).unwrap();
        assert!(text.contains("\"all\":true"), "over 256 paths");
        let long = [op(1, json!({"k".repeat(17_000): 1}))];
        let (text, _) = entry(S, &long.iter().collect::<Vec<_>>(), &[]).unwrap();
        assert!(text.contains("\"all\":true"), "over 16 KiB");
    }

    #[test]
    fn only_listed_ops_not_seen_applied_of_this_session_count() {
        let mut others = VecMap::new();
        others.insert("b".into(), json!({"session": S, "ops": [{"seq": 1, "paths": [["x"]]}, {"seq": 2, "paths": [["y", "z"]]}]}).to_string());
        others.insert(
            "c".into(),
            json!({"session": "other", "ops": [{"seq": 1, "paths": [["w"]]}]}).to_string(),
        );
        others.insert("d".into(), "{not json".into());
        others.insert(
            "e".into(),
            json!({"session": S, "ops": [{"seq": 1, "paths": [[1]]}]}).to_string(),
        );
        let applied = |c: &str| u64::from(c == "b");
        let pending = pending_of(&others, S, applied);
        assert_eq!(
            pending,
            Pending {
                all: false,
                paths: vec![p(&["y", "z"])]
            }
        );
        others.insert(
            "f".into(),
            json!({"session": S, "all": true, "last": 5}).to_string(),
        );
        assert!(pending_of(&others, S, |_| 4).all);
        assert!(!pending_of(&others, S, |_| 5).all, "its last op is applied");
    }

    #[test]
    fn the_pages_values_are_kept_at_pending_paths() {
        let view = json!({"cart": {"X": 1, "Y": 1}, "email": "server"});
        let page = json!({"cart": {"X": 2}, "email": "page", "note": {"a": 1}});
        let pending = Pending {
            all: false,
            paths: vec![p(&["cart", "X"]), p(&["cart", "Y"]), p(&["note", "a"])],
        };
        assert_eq!(
            keep_pending(view.clone(), &page, &pending),
            json!({"cart": {"X": 2}, "email": "server", "note": {"a": 1}})
        );
        let all = Pending {
            all: true,
            paths: vec![],
        };
        assert_eq!(keep_pending(view.clone(), &page, &all), page);
        assert_eq!(keep_pending(view.clone(), &page, &Pending::default()), view);
    }

    #[test]
    fn overlapping_paths_share_a_prefix() {
        assert!(overlaps(&p(&["a"]), &p(&["a", "b"])));
        assert!(
            overlaps(&p(&[]), &p(&["x"])),
            "the whole state overlaps everything"
        );
        assert!(overlaps(&p(&["a", "b"]), &p(&["a", "b"])));
        assert!(!overlaps(&p(&["a", "b"]), &p(&["a", "c"])));
        assert_eq!(
            get_at(&json!({"a": {"b": 1}}), &p(&["a", "b"])),
            Some(&json!(1))
        );
        assert_eq!(get_at(&json!({"a": 1}), &p(&["a", "b"])), None);
    }

    #[test]
    fn a_change_on_top_of_listed_ops_is_marked_and_the_mark_says_which_ops_it_holds() {
        let a = "a".repeat(32);
        let mut others = VecMap::new();
        others.insert(
            a.clone(),
            json!({"session": S, "ops": [{"seq": 3, "paths": [["cart", "X"]]}, {"seq": 4, "paths": [["email"]]}]})
                .to_string(),
        );
        others.insert(
            "c".into(),
            json!({"session": S, "all": true, "last": 7}).to_string(),
        );
        let change = [p(&["cart"]), p(&["note"])];
        let over = built_over(&others, S, |c| if c == "c" { 7 } else { 0 }, &change);
        assert_eq!(
            over,
            [Over {
                client: a.clone(),
                seq: 3,
                paths: vec![p(&["cart"])]
            }],
            "only the listed ops it touches, and not c's, all applied"
        );
        assert!(
            built_over(&others, S, |c| if c == "c" { 7 } else { 3 }, &change).is_empty(),
            "op 3 seen applied"
        );
        assert_eq!(
            built_over(&others, S, |_| 0, &[p(&["note"])])[0].client,
            "c"
        );
        let mut marks = over.clone();
        add_over(
            &mut marks,
            vec![Over {
                client: a.clone(),
                seq: 4,
                paths: vec![p(&["email"])],
            }],
        );
        assert_eq!(
            marks,
            [Over {
                client: a.clone(),
                seq: 4,
                paths: vec![p(&["cart"]), p(&["email"])]
            }]
        );
        // In this client's entry, read by the owner of the ops.
        let (text, short) = entry(S, &[], &marks).unwrap();
        assert_eq!(text, short);
        assert_eq!(overs_of(Some(&text), S), marks);
        assert!(overs_of(Some(&text), "other").is_empty());
        let mut mine = VecMap::new();
        mine.insert("b".to_string(), text);
        assert!(superseded(&mine, S, &a, 3, &[p(&["cart", "X"])]));
        assert!(superseded(&mine, S, &a, 4, &[p(&["email"])]));
        assert!(
            !superseded(&mine, S, &a, 5, &[p(&["cart", "X"])]),
            "a later op"
        );
        assert!(!superseded(&mine, S, &a, 3, &[p(&["note"])]), "elsewhere");
        assert!(
            !superseded(&mine, S, "c", 3, &[p(&["cart"])]),
            "another client's"
        );
        // Kept while the owner lists an op it covers.
        prune_over(&mut marks, &others, S);
        assert_eq!(marks.len(), 1);
        others.insert(
            a.clone(),
            json!({"session": S, "ops": [{"seq": 5, "paths": [["x"]]}]}).to_string(),
        );
        prune_over(&mut marks, &others, S);
        assert!(marks.is_empty());
    }
}
