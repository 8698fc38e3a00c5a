//! Frames through the link and the shared decoder
//! ([`protocol::decode`], the one the server uses): the cases of the
//! TypeScript client's frame tests ("frames" and "malformed frames"), with
//! the same assertions.

use serde_json::{json, Value};

use super::tests::{events, handshaking, welcome, CLIENT};
use super::*;
use crate::core::protocol::{
    self, Ack, Bye, CatchUp, Ended, ErrorFrame, LoggedPatch, Message, Op, OpId,
    DEFAULT_MAX_FRAME_BYTES,
};

fn code(frame: &str, max: usize) -> &'static str {
    protocol::decode(frame.as_bytes(), max).unwrap_err().code()
}

fn message(frame: &str, max: usize) -> String {
    protocol::decode(frame.as_bytes(), max)
        .unwrap_err()
        .to_string()
}

fn hello(v: u64) -> String {
    format!(
        r#"{{"type":"hello","protocol":{v},"session":"{CLIENT}","token":"t","client":"{CLIENT}"}}"#
    )
}

fn op_frame(seq: u64, client: &str) -> String {
    protocol::encode(&Message::Op(Op {
        id: OpId {
            client: client.into(),
            seq,
        },
        base: 3,
        patch: json!({"step": "checkout", "email": null}),
        to: Some("checkout".into()),
    }))
}

#[test]
fn malformed_frames_are_error_events_never_panics_and_the_link_carries_on() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let _ = events(&mut l);
    let good = [
        String::from_utf8(welcome(1, 0)).unwrap(),
        r#"{"type":"patch","version":2,"patch":{"a":{"b":[1,2]}},"status":"x"}"#.to_string(),
        op_frame(1, CLIENT),
    ];
    let mut rng = Rng::new(5);
    let mut n = 0;
    for i in 0..3_000u64 {
        let src = good[(i % 3) as usize].as_bytes();
        let cut = rng.up_to(src.len() as u64) as usize;
        let bad: Vec<u8> = match i % 3 {
            0 => src[..cut].to_vec(),
            1 => {
                let mut b = src[..cut].to_vec();
                b.push(rng.up_to(0x7f) as u8);
                b.extend_from_slice(src.get(cut + 1..).unwrap_or_default());
                b
            }
            _ => String::from_utf8_lossy(src)
                .replacen(|c: char| c.is_ascii_digit(), "-1", 1)
                .replacen('"', "'", 1)
                .into_bytes(),
        };
        l.handle_frame(&bad, 2 + i);
        n += events(&mut l)
            .iter()
            .filter(|e| matches!(e, LinkEvent::ErrorOccurred { .. }))
            .count();
    }
    assert!(n > 1_000, "errors reported: {n}");
    assert!(matches!(
        l.state(),
        LinkState::Connected { .. } | LinkState::Backoff { .. }
    ));
}

#[test]
fn a_frame_nested_128_levels_deep_is_a_protocol_error_and_does_not_reach_the_link() {
    let nested = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
    // The message object is level 1, `patch` level 2. serde_json (the one
    // decoder, the server's) stops at 128 levels: 127 is the deepest frame
    // read (the TypeScript decoder took 128).
    let patch = |levels: usize| {
        format!(
            r#"{{"type":"patch","version":2,"patch":{{"a":{}}}}}"#,
            nested(levels - 2)
        )
    };
    assert!(matches!(
        protocol::decode(patch(127).as_bytes(), DEFAULT_MAX_FRAME_BYTES),
        Ok(Message::Patch(_))
    ));
    assert_eq!(code(&patch(128), DEFAULT_MAX_FRAME_BYTES), "PROTOCOL_ERROR");
    assert_eq!(
        code(&patch(200_000), DEFAULT_MAX_FRAME_BYTES),
        "PROTOCOL_ERROR"
    );
    let objects = |levels: usize| r#"{"a":"#.repeat(levels) + "1" + &"}".repeat(levels);
    let deep = format!(r#"{{"type":"patch","version":2,"patch":{}}}"#, objects(128));
    assert_eq!(code(&deep, DEFAULT_MAX_FRAME_BYTES), "PROTOCOL_ERROR");
    // Through the link: a protocol error event, no stack overflow.
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let _ = events(&mut l);
    l.handle_frame(patch(200_000).as_bytes(), 2);
    let errors: Vec<LinkEvent> = events(&mut l)
        .into_iter()
        .filter(|e| matches!(e, LinkEvent::ErrorOccurred { .. }))
        .collect();
    assert!(
        matches!(&errors[..], [LinkEvent::ErrorOccurred { code, .. }] if code == "PROTOCOL_ERROR")
    );
    assert_eq!(l.view(), json!({}));
}

#[test]
fn bad_frames_have_the_decoders_codes() {
    assert_eq!(code(&" ".repeat(257), 256), "FRAME_TOO_LARGE");
    assert_eq!(
        code(&"é".repeat(129), 256),
        "FRAME_TOO_LARGE",
        "the limit counts UTF-8 bytes"
    );
    assert_eq!(code(r#"{"type":"op","id":{"#, 256), "PROTOCOL_ERROR");
    assert!(message(r#"{"type":"op""#, 256).contains("truncated"));
    assert!(message(r#"{"type":"op","id":{"client""#, 256).contains("truncated"));
    assert!(message(r#"{"type":"op"]"#, 256).contains("malformed"));
    assert_eq!(code(r#"{"type":"launch"}"#, 256), "PROTOCOL_ERROR");
    assert_eq!(code("[1,2]", 256), "PROTOCOL_ERROR");
    assert_eq!(code("null", 256), "PROTOCOL_ERROR");
    assert_eq!(code(r#"{"version":1}"#, 256), "PROTOCOL_ERROR", "no type");
    assert!(matches!(
        protocol::decode(hello(1).as_bytes(), 1024),
        Ok(Message::Hello(_))
    ));
    assert_eq!(code(&hello(2), 1024), "UNSUPPORTED_PROTOCOL_VERSION");
    assert!(message(&hello(2), 1024).contains("version 2"));
    // A future hello with fields this build does not know still gets the version error.
    assert_eq!(
        code(r#"{"type":"hello","protocol":3,"resume":[1]}"#, 256),
        "UNSUPPORTED_PROTOCOL_VERSION"
    );
    assert_eq!(
        code(r#"{"type":"ack","protocol":2}"#, 256),
        "UNSUPPORTED_PROTOCOL_VERSION"
    );
    let welcome7 = String::from_utf8(welcome(1, 0))
        .unwrap()
        .replace(r#""protocol":1"#, r#""protocol":7"#);
    assert_eq!(code(&welcome7, 1024), "UNSUPPORTED_PROTOCOL_VERSION");
    assert!(matches!(
        protocol::decode(op_frame(7, CLIENT).as_bytes(), DEFAULT_MAX_FRAME_BYTES),
        Ok(Message::Op(_))
    ));
    assert_eq!(code(&op_frame(1, "XYZ"), 1024), "PROTOCOL_ERROR");
    assert_eq!(code(&op_frame(0, CLIENT), 1024), "PROTOCOL_ERROR");
    for f in [
        r#"{"type":"ack","id":{"client":"c","seq":1}}"#,
        r#"{"type":"ack","id":{"client":"c","seq":-1},"version":1}"#,
        r#"{"type":"ack","id":{"client":"c","seq":1.5},"version":1}"#,
        r#"{"type":"ack","id":{"client":"c","seq":1},"version":1,"duplicate":null}"#,
        r#"{"type":"ping","ts":"1"}"#,
        r#"{"type":"patch","version":2}"#,
        r#"{"type":"error","code":5,"message":"m"}"#,
        r#"{"type":"welcome","protocol":1,"version":1,"status":"s","expiresAt":0,"heartbeatMs":1,"appliedSeq":0,"serverTime":0,"catchUp":{"kind":"later"}}"#,
        r#"{"type":"welcome","protocol":1,"version":1,"status":"s","expiresAt":0,"heartbeatMs":1,"appliedSeq":0,"serverTime":0}"#,
        r#"{"type":"reject","id":{"client":"c","seq":1},"code":"X","message":"m","current":{"version":1,"status":"s"}}"#,
    ] {
        assert_eq!(code(f, 1024), "PROTOCOL_ERROR", "{f}");
    }
}

#[test]
fn optional_fields_may_be_missing_or_null_and_unknown_fields_are_ignored() {
    let dec = |f: &str| protocol::decode(f.as_bytes(), DEFAULT_MAX_FRAME_BYTES).unwrap();
    assert_eq!(
        dec(r#"{"type":"ack","id":{"client":"c","seq":1},"version":2,"extra":1}"#),
        Message::Ack(Ack {
            id: OpId {
                client: "c".into(),
                seq: 1
            },
            version: 2,
            duplicate: false,
            rebased: false
        })
    );
    assert_eq!(
        dec(r#"{"type":"patch","version":2,"patch":null,"status":null,"op":null}"#),
        Message::Patch(LoggedPatch {
            version: 2,
            patch: Value::Null,
            status: None,
            op: None
        })
    );
    assert_eq!(
        dec(r#"{"type":"bye","reason":null}"#),
        Message::Bye(Bye { reason: None })
    );
    assert_eq!(
        dec(
            r#"{"type":"ended","status":"expired","code":"SESSION_EXPIRED","version":4,"message":"m","extra":1}"#
        ),
        Message::Ended(Ended {
            status: "expired".into(),
            code: "SESSION_EXPIRED".into(),
            version: 4,
            message: "m".into()
        })
    );
    assert_eq!(
        dec(r#"{"type":"error","code":"C","message":"m"}"#),
        Message::Error(ErrorFrame {
            code: "C".into(),
            message: "m".into(),
            retryable: false
        })
    );
}

#[test]
fn the_default_limit() {
    assert_eq!(DEFAULT_MAX_FRAME_BYTES, 5 * 1024 * 1024 + 64 * 1024);
}

#[test]
fn a_state_or_patch_that_is_not_an_object_is_refused_and_the_record_still_reads() {
    // Found by the link_engine fuzz target: a `patch` frame whose patch is
    // not an object replaced the confirmed state with it, and the record
    // then did not read back (its `confirmed` must be an object): a reload
    // lost the outbox.
    let frames = [
        r#"{"type":"patch","version":2,"patch":5}"#.to_string(),
        r#"{"type":"patch","version":2,"patch":[1]}"#.to_string(),
        r#"{"type":"reject","id":{"client":"0123456789abcdef0123456789abcdef","seq":1},"code":"VERSION_CONFLICT","message":"m","current":{"version":3,"status":"cart","state":"x"}}"#.to_string(),
    ];
    for frame in frames {
        let mut l = handshaking(0);
        l.handle_frame(&welcome(1, 0), 1);
        l.submit(json!({"a": 1}), None, 2).unwrap();
        let _ = events(&mut l);
        l.handle_frame(frame.as_bytes(), 3);
        let errors: Vec<LinkEvent> = events(&mut l)
            .into_iter()
            .filter(|e| matches!(e, LinkEvent::ErrorOccurred { .. }))
            .collect();
        assert!(
            matches!(&errors[..], [LinkEvent::ErrorOccurred { code, .. }] if code == "PROTOCOL_ERROR"),
            "{frame}: {errors:?}"
        );
        assert_eq!((l.version(), l.confirmed()), (1, &json!({})), "{frame}");
        let back = LinkRecord::decode(l.record().as_bytes(), CLIENT).unwrap();
        assert_eq!(back.outbox.len(), 1, "{frame}");
    }
    // A welcome whose catch-up is not an object is refused the same way.
    for catch_up in [
        CatchUp::Snapshot { state: json!(7) },
        CatchUp::Patches {
            patches: vec![LoggedPatch {
                version: 1,
                patch: json!(null),
                status: None,
                op: None,
            }],
        },
    ] {
        let mut l = handshaking(0);
        l.handle_frame(&super::tests::welcome_with(1, 0, catch_up, 0), 1);
        assert!(matches!(l.state(), LinkState::Handshaking { .. }));
        assert!(events(&mut l).iter().any(
            |e| matches!(e, LinkEvent::ErrorOccurred { code, .. } if code == "PROTOCOL_ERROR")
        ));
        assert_eq!(l.confirmed(), &json!({}));
    }
}

/// A server naming an op sequence above 2^52 − 1 is refused: near u64::MAX
/// the outbox's numbering would overflow, and above it are the pending
/// register's held changes (another client's taken for applied would no
/// longer be kept).
#[test]
fn a_sequence_past_the_highest_is_refused_and_the_link_carries_on() {
    let mut l = handshaking(0);
    for applied in [u64::MAX, 1 << 53, MAX_SEQ + 1] {
        l.handle_frame(&welcome(1, applied), 1);
        assert!(matches!(l.state(), LinkState::Handshaking { .. }));
        let errors = events(&mut l);
        assert!(
            matches!(&errors[..], [LinkEvent::ErrorOccurred { code, message, .. }]
                if code == "PROTOCOL_ERROR" && message.contains("appliedSeq")),
            "{errors:?}"
        );
    }
    l.handle_frame(&welcome(1, MAX_SEQ - 1), 1);
    assert!(matches!(l.state(), LinkState::Connected { .. }));
    l.submit(json!({"a": 1}), None, 2).unwrap();
    assert_eq!(l.outbox().front().map(|op| op.id.seq), Some(MAX_SEQ));
    let _ = events(&mut l);
    let other = "fedcba9876543210fedcba9876543210";
    let past = LoggedPatch {
        version: 2,
        patch: json!({"b": 1}),
        status: None,
        op: Some(OpId {
            client: other.into(),
            seq: MAX_SEQ + 1,
        }),
    };
    l.handle_frame(protocol::encode(&Message::Patch(past)).as_bytes(), 3);
    assert!(events(&mut l)
        .iter()
        .any(|e| matches!(e, LinkEvent::ErrorOccurred { code, .. } if code == "PROTOCOL_ERROR")));
    assert_eq!((l.version(), l.applied_seq(other)), (1, 0));
}
