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
//! A change held before the link has a server version is listed under a
//! number of its own from [`HELD_BASE`] up (later ones higher, never used
//! twice by a client), above every op sequence, which stays below it.
//!
//! An entry also says which listed ops of other clients this client made a
//! change on top of (`over: [{client, seq, paths}]`: that client's ops up
//! to `seq` at `paths` are held in a change of this client). A mark over
//! ops (`seq` below [`HELD_BASE`]) covers that client's ops up to `seq`; a
//! mark over held changes covers its held changes up to `seq`, never an op
//! (a client lists both at times: two marks). The client that owns them
//! (or the tab that adopts its id after a crash) reads them: an op so
//! covered that is refused as a conflict is not submitted again over the
//! newer change (rule 3's exception), and a held change so covered is not
//! sent; either loses only its paths under the mark. A mark stays while
//! the other client still lists something of its kind it covers, so after
//! this tab closed too; a change listed later is never covered by it.

use serde_json::{json, Map, Value};

use crate::core::protocol::Op;
use crate::core::session::link::MAX_SEQ;
use crate::core::vec_map::VecMap;

/// The lowest number a held change is listed under: above every op
/// sequence ([`MAX_SEQ`]), so no other tab takes a held change for applied
/// before it is submitted.
pub const HELD_BASE: u64 = MAX_SEQ + 1;
/// The highest number a held change is listed under (2^53 − 1, the
/// largest integer a JavaScript number holds exactly).
pub const HELD_MAX: u64 = (1 << 53) - 1;

/// Whether a listed number is a held change's (else an op's sequence).
pub fn is_held(seq: u64) -> bool {
    seq >= HELD_BASE
}

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
    let mut short = json!({"session": session, "all": true, "last": newest.id.seq});
    // Held changes listed after ops: the newest op's sequence too, for marks.
    let newest_op = ops.iter().rev().find(|op| !is_held(op.id.seq));
    if let Some(op) = newest_op.filter(|_| is_held(newest.id.seq)) {
        short["lastOp"] = json!(op.id.seq);
    }
    let short = with_over(short);
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

/// What a change at `paths` made now was made on top of: the ops and held
/// changes the entries `others` list for session `session` at paths
/// overlapping `paths` that this tab has not seen applied
/// (`applied(client)`), by client and kind (an entry that says "anything",
/// up to its `last` and `lastOp`).
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
        // [ops, held changes]: the newest covered and where.
        let mut marks: [(u64, Vec<Path>); 2] = Default::default();
        if e.get("all") == Some(&Value::Bool(true)) {
            let last = e.get("last").and_then(Value::as_u64).unwrap_or(0);
            let last_op = e.get("lastOp").and_then(Value::as_u64).unwrap_or(0);
            for s in [last, last_op] {
                if s > seen {
                    marks[usize::from(is_held(s))] = (s, paths.to_vec());
                }
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
            let (seq, at) = &mut marks[usize::from(is_held(s))];
            for p in paths {
                if listed.iter().any(|q| overlaps(p, q)) {
                    *seq = (*seq).max(s);
                    if !at.contains(p) {
                        at.push(p.clone());
                    }
                }
            }
        }
        for (seq, paths) in marks {
            if seq > 0 {
                out.push(Over {
                    client: client.clone(),
                    seq,
                    paths,
                });
            }
        }
    }
    out
}

impl Over {
    /// Whether the mark covers the op or held change listed as `seq`: one
    /// of its kind, up to its own.
    pub fn covers_seq(&self, seq: u64) -> bool {
        is_held(seq) == is_held(self.seq) && seq <= self.seq
    }
}

/// Takes `new` into `marks`, one per client and kind (ops, held changes:
/// the newest, every path; over [`MAX_PATHS`], the whole state).
pub fn add_over(marks: &mut Vec<Over>, new: Vec<Over>) {
    for n in new {
        let same = |m: &&mut Over| m.client == n.client && is_held(m.seq) == is_held(n.seq);
        let Some(m) = marks.iter_mut().find(same) else {
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

/// Keeps the marks something still listed in `others` (session `session`)
/// is covered by: an op for a mark over ops, a held change for a mark over
/// held changes (once the other client sent or dropped them, the mark has
/// done its work). The rest is answered, nothing will refuse it.
pub fn prune_over(marks: &mut Vec<Over>, others: &VecMap<String, String>, session: &str) {
    marks.retain(|m| {
        let Some(e) = others.get(&m.client).and_then(|e| read_entry(e, session)) else {
            return false;
        };
        if e.get("all") == Some(&Value::Bool(true)) {
            // The oldest listed is not said: kept while something of its kind may be.
            let last = e.get("last").and_then(Value::as_u64).unwrap_or(0);
            return !is_held(m.seq) || is_held(last);
        }
        e.get("ops")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|op| {
                op.get("seq")
                    .and_then(Value::as_u64)
                    .is_some_and(|s| m.covers_seq(s))
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

/// Which of `paths` (those of op or held change `seq` of client `me`) are
/// held in a change another client (its entry in `others`, session
/// `session`) made on top of it: the paths overlapping a mark that covers
/// it. Empty when none.
pub fn covered(
    others: &VecMap<String, String>,
    session: &str,
    me: &str,
    seq: u64,
    paths: &[Path],
) -> Vec<Path> {
    let marks: Vec<Over> = others
        .iter()
        .flat_map(|(_, text)| overs_of(Some(text), session))
        .filter(|o| o.client == me && o.covers_seq(seq))
        .collect();
    paths
        .iter()
        .filter(|p| marks.iter().any(|o| o.paths.iter().any(|q| overlaps(p, q))))
        .cloned()
        .collect()
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

/// `patch` split at `paths` (some of its [`paths_of`]): the patch without
/// them (an object their removal leaves empty goes too) and the patch of
/// only them.
pub fn split(patch: &Value, paths: &[Path]) -> (Value, Value) {
    let mut rest = patch.clone();
    let mut taken = Value::Object(Map::new());
    for p in paths {
        if let Some(v) = get_at(patch, p) {
            set_at(&mut taken, p, Some(v));
        }
        remove_at(&mut rest, p);
    }
    (rest, taken)
}

/// Removes `path` from `v`; whether `v` is left an empty object by it.
fn remove_at(v: &mut Value, path: &[String]) -> bool {
    let Some((first, tail)) = path.split_first() else {
        *v = Value::Object(Map::new());
        return true;
    };
    let Some(map) = v.as_object_mut() else {
        return false;
    };
    let gone = match map.get_mut(first) {
        Some(child) => tail.is_empty() || remove_at(child, tail),
        None => false,
    };
    if !gone {
        return false;
    }
    map.remove(first);
    map.is_empty()
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
        let superseded =
            |who: &str, seq, paths: &[Path]| !covered(&mine, S, who, seq, paths).is_empty();
        assert!(superseded(&a, 3, &[p(&["cart", "X"])]));
        assert!(superseded(&a, 4, &[p(&["email"])]));
        assert!(!superseded(&a, 5, &[p(&["cart", "X"])]), "a later op");
        assert!(!superseded(&a, 3, &[p(&["note"])]), "elsewhere");
        assert!(!superseded("c", 3, &[p(&["cart"])]), "another client's");
        assert_eq!(
            covered(&mine, S, &a, 3, &[p(&["cart", "X"]), p(&["note"])]),
            [p(&["cart", "X"])],
            "only the paths under the mark"
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

    fn held(n: u64) -> u64 {
        HELD_BASE + n
    }

    /// Held changes are listed each under its own number: a mark over one
    /// covers it and the held changes listed before it, never a later one
    /// and never an op (a client listing both gets two marks); it goes once
    /// the other client lists no held change it covers.
    #[test]
    fn a_mark_over_held_changes_covers_only_those_listed_up_to_it() {
        let a = "a".repeat(32);
        let mut others = VecMap::new();
        others.insert(
            a.clone(),
            json!({"session": S, "ops": [
                {"seq": 3, "paths": [["cart", "X"]]},
                {"seq": held(7), "paths": [["cart", "X"]]},
                {"seq": held(9), "paths": [["email"]]}
            ]})
            .to_string(),
        );
        let over = built_over(&others, S, |_| 0, &[p(&["cart"])]);
        assert_eq!(
            over,
            [
                Over {
                    client: a.clone(),
                    seq: 3,
                    paths: vec![p(&["cart"])]
                },
                Over {
                    client: a.clone(),
                    seq: held(7),
                    paths: vec![p(&["cart"])]
                }
            ]
        );
        let mut marks = over.clone();
        add_over(&mut marks, built_over(&others, S, |_| 0, &[p(&["email"])]));
        assert_eq!(marks.len(), 2, "one per kind: {marks:?}");
        assert_eq!(
            (marks[1].seq, &marks[1].paths),
            (held(9), &vec![p(&["cart"]), p(&["email"])])
        );
        let (text, _) = entry(S, &[], &over).unwrap();
        let mut mine = VecMap::new();
        mine.insert("b".to_string(), text);
        let x = [p(&["cart", "X"])];
        assert_eq!(covered(&mine, S, &a, held(7), &x), x);
        assert_eq!(
            covered(&mine, S, &a, held(6), &x),
            x,
            "an older held change"
        );
        assert!(covered(&mine, S, &a, held(8), &x).is_empty(), "a later one");
        assert_eq!(covered(&mine, S, &a, 3, &x), x);
        assert!(covered(&mine, S, &a, 4, &x).is_empty(), "a later op");
        // The mark over held changes goes once a lists none it covers.
        let mut marks = over;
        others.insert(
            a.clone(),
            json!({"session": S, "ops": [
                {"seq": 3, "paths": [["cart", "X"]]},
                {"seq": held(8), "paths": [["cart", "X"]]}
            ]})
            .to_string(),
        );
        prune_over(&mut marks, &others, S);
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].seq, 3);
        // The short form names its newest op beside its newest held change.
        let listed = [
            Op {
                id: OpId {
                    client: a.clone(),
                    seq: 4,
                },
                base: 1,
                patch: json!({"k".repeat(17_000): 1}),
                to: None,
            },
            Op {
                id: OpId {
                    client: a.clone(),
                    seq: held(11),
                },
                base: 0,
                patch: json!({"y": 1}),
                to: None,
            },
        ];
        let (text, _) = entry(S, &listed.iter().collect::<Vec<_>>(), &[]).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            json!({"session": S, "all": true, "last": held(11), "lastOp": 4})
        );
        others.insert(a.clone(), text);
        let seqs: Vec<u64> = built_over(&others, S, |_| 0, &[p(&["z"])])
            .iter()
            .map(|o| o.seq)
            .collect();
        assert_eq!(seqs, [4, held(11)]);
    }

    #[test]
    fn a_patch_splits_at_some_of_its_paths() {
        let patch = json!({"cart": {"X": 1, "Y": null}, "email": "e", "gift": {}});
        let (rest, taken) = split(&patch, &[p(&["cart", "X"]), p(&["email"])]);
        assert_eq!(rest, json!({"cart": {"Y": null}, "gift": {}}));
        assert_eq!(taken, json!({"cart": {"X": 1}, "email": "e"}));
        let (rest, taken) = split(&patch, &[p(&["cart", "X"]), p(&["cart", "Y"])]);
        assert_eq!(
            rest,
            json!({"email": "e", "gift": {}}),
            "cart left empty goes"
        );
        assert_eq!(taken, json!({"cart": {"X": 1, "Y": null}}));
        assert_eq!(split(&patch, &[]), (patch.clone(), json!({})));
        assert_eq!(split(&patch, &[Path::new()]), (json!({}), patch));
    }
}
