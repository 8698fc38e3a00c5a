//! The lifecycle's verdicts, held as a golden fixture: every transition
//! of each flow, validity, expiry, TTL and extend bounds, with codes and
//! messages; tables a page may declare, valid ones with their verdicts and
//! each kind of invalid one with its code and message
//! (`tests/fixtures/lifecycle_cases.json`). A change to any of them shows
//! in review as a change to the fixture:
//! `UPDATE_LIFECYCLE_TABLES=1 cargo test --test lifecycle_tables` rewrites it.

use std::path::Path;

use serde_json::{json, Value};
use sessile::core::flow_table::{SessionFlow, MAX_FLOW_STATUSES, MAX_STATUS_NAME_CHARS};
use sessile::core::lifecycle::{self, Flow, FlowRules, FLOWS, MAX_TTL_SECS};
use sessile::SessileError;

/// A built-in flow in the shape of a declared table, every field given.
fn builtin_json(f: &Flow) -> Value {
    let statuses: serde_json::Map<String, Value> = f
        .statuses
        .iter()
        .map(|(s, k)| (s.to_string(), json!(k.as_str())))
        .collect();
    let transitions: serde_json::Map<String, Value> = f
        .transitions
        .iter()
        .map(|(from, tos)| (from.to_string(), json!(tos)))
        .collect();
    json!({ "name": f.name, "initial": f.initial, "expired": f.expired, "ended": f.ended,
            "statuses": statuses, "transitions": transitions })
}

fn verdict(result: Result<Value, SessileError>) -> Value {
    match result {
        Ok(v) => json!({ "ok": v }),
        Err(e) => json!({ "code": e.code(), "message": e.to_string() }),
    }
}

fn render_cases() -> String {
    let mut transitions = Vec::new();
    let mut validity = Vec::new();
    let exp: u64 = 1_000_000_000;
    for f in FLOWS {
        let mut names: Vec<&str> = f.statuses.iter().map(|(s, _)| *s).collect();
        names.push("no-such-status");
        for from in &names {
            for to in &names {
                let v = verdict(f.check(from, to).map(|()| json!(true)));
                transitions.push(json!({ "flow": f.name, "from": from, "to": to, "verdict": v }));
            }
            for now in [0, exp - 1, exp, exp + 1] {
                let v = verdict(f.validity(from, exp, now).map(|()| json!(true)));
                let due = f.due_to_expire(from, exp, now);
                validity.push(json!({ "flow": f.name, "status": from, "expiresAt": exp,
                                      "now": now, "verdict": v, "dueToExpire": due }));
            }
        }
    }
    let ttl: Vec<Value> = [None, Some(0), Some(59), Some(60), Some(1800), Some(86_400), Some(86_401)]
        .into_iter()
        .map(|s| json!({ "ttlSeconds": s, "verdict": verdict(lifecycle::ttl_ms(s).map(|ms| json!(ms))) }))
        .collect();
    let mut extend = Vec::new();
    for (expires_at, now) in [(exp, exp - 10), (exp, exp + 5_000), (exp, 0), (0, exp)] {
        for secs in [0, 1, 60, MAX_TTL_SECS, MAX_TTL_SECS + 1] {
            let v = verdict(lifecycle::extend(expires_at, now, secs).map(|ms| json!(ms)));
            extend.push(
                json!({ "expiresAt": expires_at, "now": now, "seconds": secs, "verdict": v }),
            );
        }
    }
    let unknown = verdict(lifecycle::flow("no-such-flow").map(|_| json!(true)));
    let mut cases = json!({ "transitions": transitions, "validity": validity, "ttl": ttl,
                        "extend": extend, "unknownFlow": unknown, "declared": declared_cases() });
    cases.sort_all_objects();
    serde_json::to_string_pretty(&cases).unwrap() + "\n"
}

fn check_current(relative: &str, rendered: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("UPDATE_LIFECYCLE_TABLES").is_some() {
        std::fs::write(&path, rendered).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == rendered,
        "{relative} is stale: run UPDATE_LIFECYCLE_TABLES=1 cargo test --test lifecycle_tables"
    );
}

#[test]
fn the_cores_verdicts_are_the_golden_fixture() {
    check_current("tests/fixtures/lifecycle_cases.json", &render_cases());
}

/// A pay desk: custom name, expired and ended statuses; `paying` waits and never expires.
fn desk() -> Value {
    json!({
        "name": "pay-desk", "initial": "open", "expired": "timed-out", "ended": "abandoned",
        "statuses": { "open": "active", "paying": "waiting", "paid": "closed",
                      "timed-out": "expired", "abandoned": "closed" },
        "transitions": { "open": ["paying", "timed-out", "abandoned"],
                         "paying": ["paid", "abandoned"] },
    })
}

/// `desk()` with `path` (`/`-separated) set to `value`, or removed when `None`.
fn desk_with(path: &str, value: Option<Value>) -> Value {
    let mut table = desk();
    let (parent, last) = path.rsplit_once('/').unwrap_or(("", path));
    let mut at = &mut table;
    for key in parent.split('/').filter(|k| !k.is_empty()) {
        at = &mut at[key];
    }
    match value {
        Some(v) => at[last] = v,
        None => {
            at.as_object_mut().unwrap().remove(last);
        }
    }
    table
}

/// Tables a page may pass as `flow`, with the core's verdict on each: the
/// flow as JSON when it is valid (and, for small ones, every transition and
/// validity verdict), else the code and message.
fn declared_cases() -> Vec<Value> {
    let many: serde_json::Map<String, Value> = (0..MAX_FLOW_STATUSES - 2)
        .map(|i| (format!("s{i:02}"), json!("closed")))
        .chain([
            ("expired".into(), json!("expired")),
            ("terminated".into(), json!("closed")),
        ])
        .collect();
    let mut at_limit = json!({ "initial": "s00", "statuses": many, "transitions": {} });
    at_limit["statuses"]["s00"] = json!("active");
    at_limit["statuses"].as_object_mut().unwrap().remove("s01");
    at_limit["statuses"]["n".repeat(MAX_STATUS_NAME_CHARS)] = json!("closed");
    at_limit["transitions"]["s00"] = json!(["terminated"]);
    let mut over_limit = at_limit.clone();
    over_limit["statuses"]["s01"] = json!("closed");
    let valid = [
        desk(),
        // The defaults: name `custom`, `expired`, `terminated`.
        json!({ "initial": "a", "statuses": { "a": "active", "expired": "expired",
                "terminated": "closed" }, "transitions": { "a": ["terminated"] } }),
        // Names JavaScript orders its own way (integer-like keys first), loops,
        // and a name an object literal would take for its prototype.
        json!({ "initial": "2", "statuses": { "b": "waiting", "10": "active", "2": "active",
                "__proto__": "active", "expired": "expired", "terminated": "closed" },
                "transitions": { "b": ["10", "terminated"], "2": ["b", "terminated", "expired"],
                                 "10": ["2", "__proto__", "terminated"],
                                 "__proto__": ["terminated"] } }),
        at_limit,
        json!("checkout"),
        json!("table"),
    ];
    let mut invalid = vec![
        json!("no-such-flow"),
        json!(7),
        json!(["open"]),
        json!(true),
        desk_with("steps", Some(json!({}))),
        // Two problems: the first in the fixed order is named.
        json!({ "initial": "x", "statuses": {}, "transitions": {}, "zeta": 1, "alpha": 2 }),
        desk_with("name", Some(json!(5))),
        desk_with("name", Some(json!("table"))),
        desk_with("name", Some(json!(""))),
        desk_with("name", Some(json!("pay desk"))),
        desk_with("statuses", None),
        desk_with("statuses", Some(json!(["open"]))),
        over_limit,
        desk_with(
            &format!("statuses/{}", "n".repeat(MAX_STATUS_NAME_CHARS + 1)),
            Some(json!("closed")),
        ),
        // Characters, not UTF-16 units or bytes: 65 of them, each two units long.
        desk_with(
            &format!("statuses/{}", "\u{1F6D2}".repeat(65)),
            Some(json!("closed")),
        ),
        desk_with("statuses/caf\u{e9}", Some(json!("closed"))),
        desk_with("statuses/", Some(json!("closed"))),
        // Sorted by code point: U+FF5A before U+1F600 (UTF-16 order would differ).
        json!({ "initial": "a", "statuses": { "\u{1F600}": "closed", "\u{FF5A}": "closed" },
                "transitions": {} }),
        desk_with("statuses/paid", Some(json!("done"))),
        desk_with("statuses/paid", Some(json!(null))),
        desk_with("initial", None),
        desk_with("initial", Some(json!(5))),
        desk_with("initial", Some(json!("start"))),
        desk_with("initial", Some(json!("paid"))),
        desk_with("expired", None),
        desk_with("expired", Some(json!(null))),
        desk_with("expired", Some(json!("paid"))),
        desk_with("ended", Some(json!("gone"))),
        desk_with("ended", Some(json!("timed-out"))),
        desk_with("transitions", None),
        desk_with("transitions", Some(json!([]))),
        desk_with("transitions/shipped", Some(json!([]))),
        desk_with("transitions/paid", Some(json!(["open"]))),
        desk_with("transitions/open", Some(json!("paying"))),
        desk_with("transitions/open", Some(json!(["paying", 3]))),
        desk_with(
            "transitions/open",
            Some(json!(["paying", "checkout", "abandoned"])),
        ),
        desk_with(
            "transitions/open",
            Some(json!(["paying", "paying", "abandoned"])),
        ),
        desk_with("transitions/paying", Some(json!(["paid"]))),
        desk_with("transitions/paying", None),
        // Over-long page-supplied names come back cut to 64 characters and `…`.
        json!({ "initial": "s", "statuses": { "s": "active" }, "transitions": {},
                "k".repeat(10_000): 1 }),
        desk_with("initial", Some(json!("i".repeat(100)))),
        desk_with("initial", Some(json!("\u{1F6D2}".repeat(65)))),
        desk_with("initial", Some(json!("\u{1F6D2}".repeat(64)))),
        desk_with("expired", Some(json!("e".repeat(65)))),
        desk_with(&format!("transitions/{}", "r".repeat(200)), Some(json!([]))),
        desk_with("transitions/open", Some(json!(["t".repeat(300)]))),
    ];
    // Both a bad row and a status that cannot end: the row is named.
    let mut both = desk_with("transitions/paying", Some(json!(["paid"])));
    both["transitions"]["open"] = json!(["nowhere"]);
    invalid.push(both);
    let exp: u64 = 1_000_000_000;
    let mut cases = Vec::new();
    for flow in valid.iter().chain(invalid.iter()) {
        let parsed = SessionFlow::from_json(flow);
        let mut case = json!({ "flow": flow, "verdict": verdict(parsed.clone().map(|f| {
            f.table().unwrap_or_else(|| match &f {
                SessionFlow::Builtin(b) => builtin_json(b),
                SessionFlow::Declared(_) => unreachable!("a declared flow has a table"),
            })
        })) });
        let small = match &parsed {
            Ok(SessionFlow::Declared(d)) if d.statuses().count() <= 8 => Some(d.clone()),
            _ => None,
        };
        if let Some(f) = small {
            let mut names: Vec<&str> = f.statuses().map(|(s, _)| s).collect();
            names.push("no-such-status");
            let mut transitions = Vec::new();
            let mut validity = Vec::new();
            for from in &names {
                for to in &names {
                    let v = verdict(f.check(from, to).map(|()| json!(true)));
                    transitions.push(json!({ "from": from, "to": to, "verdict": v }));
                }
                for now in [exp - 1, exp] {
                    let v = verdict(f.validity(from, exp, now).map(|()| json!(true)));
                    validity.push(json!({ "status": from, "expiresAt": exp, "now": now,
                                          "verdict": v, "dueToExpire": f.due_to_expire(from, exp, now) }));
                }
            }
            case["transitions"] = json!(transitions);
            case["validity"] = json!(validity);
        }
        cases.push(case);
    }
    cases
}

#[test]
fn every_invalid_declared_case_is_refused_and_every_valid_one_reads() {
    let cases = declared_cases();
    let refused = cases
        .iter()
        .filter(|c| c["verdict"].get("code").is_some())
        .count();
    assert!(refused >= 35, "{refused} invalid cases");
    for c in &cases {
        let code = c["verdict"]["code"].as_str();
        assert!(
            matches!(code, None | Some("INVALID_OPTIONS") | Some("UNKNOWN_FLOW")),
            "{c}"
        );
    }
}
