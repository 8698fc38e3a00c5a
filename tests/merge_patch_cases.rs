//! The merge-patch cases (`tests/fixtures/merge_patch_cases.json`): apply,
//! compose and diff must give what the fixture says. The server and the
//! page's module run this one implementation.

use serde_json::Value;
use sessile::core::merge_patch::{apply, compose, diff};

fn cases() -> Value {
    let text = include_str!("fixtures/merge_patch_cases.json");
    serde_json::from_str(text).expect("the fixture is JSON")
}

fn list<'a>(all: &'a Value, key: &str) -> &'a Vec<Value> {
    let list = all[key].as_array().expect("a list of cases");
    assert!(list.len() >= 10, "{key}: the fixture lost its cases");
    list
}

#[test]
fn apply_gives_the_fixture_results() {
    for case in list(&cases(), "apply") {
        let mut doc = case["target"].clone();
        apply(&mut doc, &case["patch"]);
        assert_eq!(doc, case["result"], "{case}");
    }
}

#[test]
fn compose_gives_the_fixture_results_or_none() {
    for case in list(&cases(), "compose") {
        let got = compose(&case["first"], &case["second"]);
        if case["none"] == Value::Bool(true) {
            assert_eq!(got, None, "{case}");
            continue;
        }
        assert_eq!(got.as_ref(), Some(&case["result"]), "{case}");
        // The composed patch does what the two did one after the other, on
        // a target that has every key either touches and on an empty one.
        for target in [serde_json::json!({}), case["first"].clone()] {
            let (mut one, mut two) = (target.clone(), target);
            apply(&mut one, got.as_ref().unwrap());
            apply(&mut two, &case["first"]);
            apply(&mut two, &case["second"]);
            assert_eq!(one, two, "{case}");
        }
    }
}

#[test]
fn diff_gives_the_fixture_patch_and_leads_to_the_new_value() {
    for case in list(&cases(), "diff") {
        let patch = diff(&case["old"], &case["new"]);
        assert_eq!(patch, case["diff"], "{case}");
        let mut doc = case["old"].clone();
        apply(&mut doc, &patch);
        let want = case.get("applied").unwrap_or(&case["new"]);
        assert_eq!(&doc, want, "{case}");
    }
}
