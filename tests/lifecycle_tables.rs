//! The page checks a session's status and expiry in TypeScript
//! (`js/src/lifecycle/`) with the core's rules. This test keeps the two
//! one: it renders the core's flow tables as `js/src/lifecycle/flows.ts` and
//! every verdict of the core's functions (each transition of each flow,
//! validity, expiry, TTL and extend bounds, with codes and messages) as
//! `tests/fixtures/lifecycle_cases.json`, which `js/test/lifecycle.test.mjs`
//! replays against the TypeScript. Both files must be current:
//! `UPDATE_LIFECYCLE_TABLES=1 cargo test --test lifecycle_tables` rewrites them.

use std::path::Path;

use serde_json::{json, Value};
use sessile::core::lifecycle::{
    self, StatusKind, DEFAULT_TTL_SECS, FLOWS, MAX_TTL_SECS, MIN_TTL_SECS,
};
use sessile::SessileError;

fn kind_name(kind: StatusKind) -> &'static str {
    match kind {
        StatusKind::Active => "active",
        StatusKind::Waiting => "waiting",
        StatusKind::Closed => "closed",
        StatusKind::Expired => "expired",
    }
}

fn render_flows_ts() -> String {
    let mut flows = serde_json::Map::new();
    for f in FLOWS {
        let statuses: serde_json::Map<String, Value> = f
            .statuses
            .iter()
            .map(|(s, k)| (s.to_string(), json!(kind_name(*k))))
            .collect();
        let transitions: serde_json::Map<String, Value> = f
            .transitions
            .iter()
            .map(|(from, tos)| (from.to_string(), json!(tos)))
            .collect();
        flows.insert(
            f.name.into(),
            json!({ "initial": f.initial, "expired": f.expired, "ended": f.ended,
                    "statuses": statuses, "transitions": transitions }),
        );
    }
    format!(
        "// Generated from src/core/lifecycle.rs by tests/lifecycle_tables.rs\n\
         // (UPDATE_LIFECYCLE_TABLES=1 cargo test --test lifecycle_tables). Do not edit.\n\
         /** What a status means for the session holding it. */\n\
         export type StatusKind = \"active\" | \"waiting\" | \"closed\" | \"expired\";\n\
         /** Default time to live of a session, seconds. */\n\
         export const DEFAULT_TTL_SECS = {DEFAULT_TTL_SECS};\n\
         /** Shortest TTL accepted, seconds. */\n\
         export const MIN_TTL_SECS = {MIN_TTL_SECS};\n\
         /** Longest TTL (and longest extension from now) accepted, seconds. */\n\
         export const MAX_TTL_SECS = {MAX_TTL_SECS};\n\
         /** The built-in flows: statuses with their kinds, allowed transitions. */\n\
         export const FLOWS = {} as const;\n",
        serde_json::to_string_pretty(&Value::Object(flows)).unwrap()
    )
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
    let cases = json!({ "transitions": transitions, "validity": validity, "ttl": ttl,
                        "extend": extend, "unknownFlow": unknown });
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
fn typescript_flow_tables_are_generated_from_the_core() {
    check_current("js/src/lifecycle/flows.ts", &render_flows_ts());
}

#[test]
fn typescript_verdict_cases_are_generated_from_the_core() {
    check_current("tests/fixtures/lifecycle_cases.json", &render_cases());
}
