//! Target `declared_flow`: reading a flow table a page declares
//! (`src/core/flow_table.rs`, `DeclaredFlow::from_json`).
//!
//! Input: a mode byte; mode 0 mod 4 reads the rest as JSON text (seeds and
//! a dictionary steer it), any other mode builds a table from the bytes:
//! statuses from a small pool of good and bad names and kinds, `initial`,
//! `expired`, `ended` and `name` picked or left out, rows of transitions,
//! now and then an unknown field or a value of the wrong type.
//!
//! Asserts: reading never panics; a refusal is `INVALID_OPTIONS` whose
//! message stays short (a page's 4 MB name is not echoed); an accepted
//! table is valid (at most 64 statuses with good names, `initial` not
//! terminal, `expired` of kind expired, `ended` closed, no row from a
//! terminal status, rows only to known statuses, every other status able to
//! end), its canonical JSON is the input with the defaults filled in, reads
//! back to the same flow and is a fixed point; `SessionFlow::from_json`
//! agrees.

use serde_json::{Map, Value};
use sessile::core::flow_table::{
    DeclaredFlow, SessionFlow, DEFAULT_DECLARED_NAME, DEFAULT_ENDED, DEFAULT_EXPIRED,
    MAX_FLOW_STATUSES, MAX_STATUS_NAME_CHARS,
};
use sessile::core::lifecycle::{FlowRules, StatusKind};

use crate::input::Input;

/// Longest refusal message: two names of 64 characters of up to 4 bytes
/// each, and the sentence around them.
const MAX_MESSAGE_BYTES: usize = 1024;

/// Status names a built table picks from: the usual ones, the defaults,
/// edge lengths and characters, a built-in flow's name.
const NAMES: [&str; 12] = [
    "cart",
    "paying",
    "paid",
    "expired",
    "terminated",
    "a:b.c-d_e",
    "",
    "with space",
    "é",
    "checkout",
    "x64",
    "x65",
];

const KINDS: [&str; 5] = ["active", "waiting", "closed", "expired", "done"];

/// Runs the target on one input.
pub fn check(data: &[u8]) {
    let mut input = Input::new(data);
    let table = if input.byte() % 4 == 0 {
        match serde_json::from_slice::<Value>(input.rest()) {
            Ok(v) => v,
            Err(_) => return,
        }
    } else {
        build_table(&mut input)
    };
    check_table(&table);
}

fn name(input: &mut Input<'_>) -> String {
    match input.pick(&NAMES) {
        "x64" => "x".repeat(MAX_STATUS_NAME_CHARS),
        "x65" => "y".repeat(MAX_STATUS_NAME_CHARS + 1),
        n => n.to_string(),
    }
}

/// A value of the wrong type now and then, else a name.
fn name_value(input: &mut Input<'_>) -> Value {
    if input.one_in(16) {
        input.value(1)
    } else {
        Value::String(name(input))
    }
}

fn build_table(input: &mut Input<'_>) -> Value {
    let mut table = Map::new();
    let mut statuses = Map::new();
    let n = if input.one_in(32) {
        MAX_FLOW_STATUSES + input.below(2)
    } else {
        1 + input.below(7)
    };
    for i in 0..n {
        let status = if n > 12 { format!("s{i}") } else { name(input) };
        let kind = if input.one_in(16) {
            input.value(1)
        } else {
            Value::from(input.pick(&KINDS))
        };
        statuses.insert(status, kind);
    }
    let known: Vec<String> = statuses.keys().cloned().collect();
    let pick_known = |input: &mut Input<'_>| -> Value {
        if known.is_empty() || input.one_in(8) {
            name_value(input)
        } else {
            Value::String(known[input.below(known.len())].clone())
        }
    };
    let mut rows = Map::new();
    for from in &known {
        if input.one_in(4) {
            continue;
        }
        let row = if input.one_in(16) {
            input.value(1)
        } else {
            let len = input.below(5);
            Value::Array((0..len).map(|_| pick_known(input)).collect())
        };
        rows.insert(from.clone(), row);
    }
    if input.one_in(8) {
        rows.insert(name(input), Value::Array(vec![]));
    }
    let initial = pick_known(input);
    for (field, value) in [
        ("statuses", Value::Object(statuses)),
        ("transitions", Value::Object(rows)),
        ("initial", initial),
    ] {
        if !input.one_in(32) {
            table.insert(field.into(), value);
        }
    }
    for field in ["expired", "ended", "name"] {
        if input.one_in(2) {
            let value = pick_known(input);
            table.insert(field.into(), value);
        }
    }
    if input.one_in(32) {
        table.insert(input.string(), input.value(1));
    }
    Value::Object(table)
}

/// The assertions on one table.
pub fn check_table(table: &Value) {
    let read = DeclaredFlow::from_json(table);
    let session = SessionFlow::from_json(table);
    let flow = match read {
        Err(e) => {
            assert_eq!(e.code(), "INVALID_OPTIONS", "{e:?}");
            let message = e.to_string();
            assert!(
                message.len() <= MAX_MESSAGE_BYTES,
                "long message: {message}"
            );
            if !table.is_string() {
                let e2 = session.expect_err("SessionFlow accepts what DeclaredFlow refuses");
                assert_eq!(e2, e);
            }
            return;
        }
        Ok(flow) => flow,
    };
    let session = session.expect("SessionFlow refuses what DeclaredFlow accepts");
    assert_eq!(session.table(), Some(flow.to_json()));
    check_valid(&flow);
    let canonical = flow.to_json();
    let mut expected = table.as_object().expect("a table is an object").clone();
    for (field, default) in [
        ("name", DEFAULT_DECLARED_NAME),
        ("expired", DEFAULT_EXPIRED),
        ("ended", DEFAULT_ENDED),
    ] {
        expected
            .entry(field)
            .or_insert_with(|| Value::from(default));
    }
    assert_eq!(
        canonical,
        Value::Object(expected),
        "canonical JSON of {table}"
    );
    let again = DeclaredFlow::from_json(&canonical).expect("the canonical JSON reads back");
    assert_eq!(again, flow);
    assert_eq!(
        again.to_json(),
        canonical,
        "canonical JSON is a fixed point"
    );
}

fn check_valid(flow: &DeclaredFlow) {
    let statuses: Vec<(&str, StatusKind)> = flow.statuses().collect();
    assert!(!statuses.is_empty() && statuses.len() <= MAX_FLOW_STATUSES);
    let good = |n: &str| {
        (1..=MAX_STATUS_NAME_CHARS).contains(&n.chars().count())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
    };
    assert!(good(flow.name()), "flow name {:?}", flow.name());
    for (s, _) in &statuses {
        assert!(good(s), "status name {s:?}");
    }
    let kind = |s: &str| flow.kind(s);
    assert!(kind(flow.initial()).is_some_and(|k| !k.is_terminal()));
    assert_eq!(kind(flow.expired()), Some(StatusKind::Expired));
    assert_eq!(kind(flow.ended()), Some(StatusKind::Closed));
    for (from, tos) in flow.transitions() {
        assert!(kind(from).is_some_and(|k| !k.is_terminal()), "row {from}");
        for (i, to) in tos.iter().enumerate() {
            assert!(kind(to).is_some(), "row {from} to {to}");
            assert!(!tos[..i].contains(to), "row {from} lists {to} twice");
            assert!(flow.allows(from, to));
        }
    }
    for (s, k) in &statuses {
        if !k.is_terminal() {
            assert!(flow.allows(s, flow.ended()), "{s} cannot end");
        }
    }
}
