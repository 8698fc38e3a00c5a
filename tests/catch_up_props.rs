//! Property tests of `CatchUp::since` (native only), at the edges of u64:
//! it never panics, a version ahead of the session's is `VERSION_AHEAD`,
//! and otherwise the client ends up at the session's version, by patches
//! when the log reaches back far enough, else by the whole state.
#![cfg(not(target_arch = "wasm32"))]

use proptest::prelude::*;
use serde_json::{json, Value};
use sessile::core::protocol::{CatchUp, LoggedPatch};

/// The patch log of a session at `version` holding its last `len` changes.
fn log(version: u64, len: u64) -> Vec<LoggedPatch> {
    let len = len.min(version.saturating_sub(1));
    (version - len..version)
        .map(|v| v + 1)
        .map(|v| LoggedPatch {
            version: v,
            patch: json!({ "v": v }),
            status: None,
            op: None,
        })
        .collect()
}

/// Versions near 0, near u64::MAX and anywhere between.
fn edgy() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..4,
        (0u64..4).prop_map(|d| u64::MAX - d),
        (0u64..4).prop_map(|d| (1 << 63) - d),
        any::<u64>(),
    ]
}

fn state() -> Value {
    json!({ "whole": true })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn since_never_panics_and_is_right(have in edgy(), version in edgy(), len in 0u64..70) {
        let recent = log(version.max(1), len);
        let version = version.max(1);
        match CatchUp::since(have, version, &recent, state) {
            Err(e) => {
                prop_assert!(have > version, "only a version ahead is refused");
                prop_assert_eq!(e.code(), "VERSION_AHEAD");
                prop_assert!(e.to_string().contains(&have.to_string()));
            }
            Ok(CatchUp::UpToDate) => prop_assert_eq!(have, version),
            Ok(CatchUp::Patches { patches }) => {
                prop_assert!(have > 0 && have < version);
                let versions: Vec<u64> = patches.iter().map(|p| p.version).collect();
                let want: Vec<u64> = (have + 1..=version).collect();
                prop_assert_eq!(versions, want, "contiguous from have + 1 to version");
            }
            Ok(CatchUp::Snapshot { state: s }) => {
                prop_assert!(have < version);
                prop_assert_eq!(s, state());
                let reaches = recent.first().is_some_and(|p| p.version <= have + 1);
                prop_assert!(have == 0 || !reaches, "patches were possible");
            }
        }
    }
}

#[test]
fn the_edges_of_u64() {
    let at_max = log(u64::MAX, 3);
    assert_eq!(
        CatchUp::since(u64::MAX, u64::MAX, &at_max, state).unwrap(),
        CatchUp::UpToDate
    );
    match CatchUp::since(u64::MAX - 2, u64::MAX, &at_max, state).unwrap() {
        CatchUp::Patches { patches } => assert_eq!(patches.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        CatchUp::since(0, u64::MAX, &[], state).unwrap(),
        CatchUp::Snapshot { state: state() }
    );
    let small = log(5, 3);
    let e = CatchUp::since(u64::MAX, 5, &small, state).unwrap_err();
    assert_eq!(e.code(), "VERSION_AHEAD");
    assert_eq!(
        e.to_string(),
        "version 18446744073709551615 is ahead of the session's version 5; ask for version 0 to get the whole state"
    );
    assert_eq!(
        CatchUp::since(6, 5, &small, state).unwrap_err().code(),
        "VERSION_AHEAD"
    );
    assert_eq!(
        CatchUp::since(0, 5, &small, state).unwrap(),
        CatchUp::Snapshot { state: state() }
    );
}
