//! Which other clients' changes the confirmed state holds
//! ([`Link::applied_seq`]): taken from the patches that name their op, in
//! version order (a patch held ahead of a gap counts once it is applied),
//! from a `welcome`'s catch-up patches, and never from a snapshot.

use serde_json::json;

use super::tests::{events, handshaking, welcome, welcome_with};
use super::*;
use crate::core::protocol::{CatchUp, LoggedPatch};

const OTHER: &str = "00000000000000000000000000000009";

fn patch(version: u64, seq: Option<u64>) -> Vec<u8> {
    protocol::encode(&Message::Patch(LoggedPatch {
        version,
        patch: json!({ "k": version }),
        status: None,
        op: seq.map(|seq| OpId {
            client: OTHER.into(),
            seq,
        }),
    }))
    .into_bytes()
}

#[test]
fn a_patch_held_ahead_of_a_gap_counts_once_applied() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    assert_eq!(l.applied_seq(OTHER), 0);
    l.handle_frame(&patch(3, Some(7)), 2);
    assert_eq!(l.applied_seq(OTHER), 0, "version 3 waits for 2");
    l.handle_frame(&patch(2, Some(6)), 3);
    assert_eq!((l.version(), l.applied_seq(OTHER)), (3, 7));
    // A patch without an op (the server's own change) names nobody.
    l.handle_frame(&patch(4, None), 4);
    assert_eq!((l.version(), l.applied_seq(OTHER)), (4, 7));
    // An old version again changes nothing.
    l.handle_frame(&patch(2, Some(99)), 5);
    assert_eq!(l.applied_seq(OTHER), 7);
    let _ = events(&mut l);
}

#[test]
fn catch_up_patches_count_and_a_snapshot_names_nobody() {
    let mut l = Link::new(
        LinkConfig::new("fedcba9876543210fedcba9876543210", "t", 1),
        Outbox::new(super::tests::CLIENT).unwrap(),
        1,
        empty_state(),
    );
    l.handle_open(0);
    l.handle_connected(Transport::WebSocket, 0);
    let patches = vec![
        LoggedPatch {
            version: 2,
            patch: json!({"a": 1}),
            status: None,
            op: Some(OpId {
                client: OTHER.into(),
                seq: 4,
            }),
        },
        LoggedPatch {
            version: 3,
            patch: json!({"b": 1}),
            status: None,
            op: None,
        },
    ];
    l.handle_frame(&welcome_with(3, 0, CatchUp::Patches { patches }, 0), 1);
    assert_eq!((l.version(), l.applied_seq(OTHER)), (3, 4));
    let mut s = handshaking(0);
    s.handle_frame(&welcome(9, 0), 1);
    assert_eq!(s.applied_seq(OTHER), 0);
}
