//! Unit tests of the link's transitions; the seeded network simulation is
//! `tests/link_sim.rs`.

use serde_json::json;

use super::*;
use crate::core::protocol::{CatchUp, Welcome};

const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "fedcba9876543210fedcba9876543210";

fn link() -> Link {
    let cfg = LinkConfig::new(SESSION, "t", 1);
    Link::new(cfg, Outbox::new(CLIENT).unwrap(), 0, empty_state())
}

/// A link whose WebSocket opened at `at` and has not been welcomed yet.
fn handshaking(at: u64) -> Link {
    let mut l = link();
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, at);
    l
}

fn drain(l: &mut Link) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

fn welcome(version: u64, applied_seq: u64) -> Vec<u8> {
    protocol::encode(&Message::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        version,
        status: "cart".into(),
        expires_at: 0,
        heartbeat_ms: 5_000,
        applied_seq,
        server_time: 0,
        catch_up: CatchUp::Snapshot { state: json!({}) },
    }))
    .into_bytes()
}

#[test]
fn falls_back_to_http_and_probes_websocket_later() {
    let mut l = link();
    let mut now = 0;
    l.handle_open(now);
    for _ in 0..3 {
        assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::WebSocket)]);
        l.handle_closed(now);
        now = l.poll_timeout().unwrap();
        l.handle_timeout(now);
    }
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::Http)]);
    l.handle_connected(Transport::Http, now);
    l.handle_frame(&welcome(1, 0), now);
    assert!(matches!(
        l.state(),
        LinkState::Connected {
            transport: Transport::Http
        }
    ));
    // Keep the link alive with pongs until the probe is due.
    let mut opened = None;
    while now < 200_000 && opened.is_none() {
        now = l.poll_timeout().unwrap();
        l.handle_timeout(now);
        for t in drain(&mut l) {
            match t {
                Transmit::Send(f) if f.contains("\"ping\"") => {
                    let ts = f.split("\"ts\":").nth(1).unwrap().trim_end_matches('}');
                    let pong = format!(r#"{{"type":"pong","ts":{ts},"serverTs":0}}"#);
                    l.handle_frame(pong.as_bytes(), now);
                }
                Transmit::Open(t) => opened = Some((t, now)),
                _ => {}
            }
        }
    }
    let (t, at) = opened.unwrap();
    assert_eq!(t, Transport::WebSocket);
    assert!(
        (60_000..70_000).contains(&at),
        "probe after about 60 s: {at}"
    );
    assert!(l.diagnostics().srtt_ms.is_some());
}

#[test]
fn a_remembered_fallback_starts_on_http_and_probes_later() {
    let mut cfg = LinkConfig::new(SESSION, "t", 1);
    cfg.start_on_http = true;
    let mut l = Link::new(cfg, Outbox::new(CLIENT).unwrap(), 0, empty_state());
    l.handle_open(1_000);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::Http)]);
    l.handle_connected(Transport::Http, 1_000);
    l.handle_frame(&welcome(1, 0), 1_000);
    l.handle_frame(br#"{"type":"pong","ts":0,"serverTs":0}"#, 60_000);
    l.handle_timeout(61_000);
    assert_eq!(
        drain(&mut l),
        vec![Transmit::Close, Transmit::Open(Transport::WebSocket)]
    );
}

#[test]
fn auth_failure_stops_retries_with_an_event() {
    let mut l = handshaking(5);
    let err = r#"{"type":"error","code":"INVALID_TOKEN","message":"no","retryable":false}"#;
    l.handle_frame(err.as_bytes(), 10);
    assert!(matches!(l.poll_event(), Some(LinkEvent::AuthFailed { .. })));
    assert_eq!(
        l.state(),
        &LinkState::Stopped {
            code: "INVALID_TOKEN".into()
        }
    );
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(drain(&mut l).last(), Some(&Transmit::Close));
}

#[test]
fn silence_of_two_heartbeats_is_dead_and_ops_resend_after_welcome() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 100);
    let id = l.submit(json!({"a":1}), None, 200).unwrap();
    assert_eq!(id.seq, 1);
    assert!(l.submit(json!(3), None, 200).is_err());
    // Timers may fire late (a throttled tab): the deadline is a timestamp.
    assert_eq!(l.poll_timeout(), Some(5_000), "first ping");
    l.handle_timeout(10_099);
    assert!(matches!(l.state(), LinkState::Connected { .. }));
    l.handle_timeout(10_100);
    assert!(matches!(l.state(), LinkState::Backoff { .. }));
    let events: Vec<_> = std::iter::from_fn(|| l.poll_event()).collect();
    assert!(events.contains(&LinkEvent::ConnectionLost {
        reason: LossReason::Dead
    }));
    let now = l.poll_timeout().unwrap();
    l.handle_timeout(now);
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, now);
    l.handle_frame(&welcome(1, 0), now);
    let sent = drain(&mut l);
    assert!(matches!(&sent[1], Transmit::Send(f) if f.contains("\"op\"")));
    assert_eq!(l.view(), json!({"a":1}));
}

#[test]
fn a_conflict_takes_the_server_state_and_says_so() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let _ = l.submit(json!({"email":"a@x"}), None, 2).unwrap();
    let _ = l
        .submit(json!({"step":2}), Some("checkout".into()), 2)
        .unwrap();
    let _ = std::iter::from_fn(|| l.poll_event()).count();
    let reject = format!(
        r#"{{"type":"reject","id":{{"client":"{CLIENT}","seq":1}},"code":"VERSION_CONFLICT","message":"m","current":{{"version":3,"status":"cart","state":{{"email":"b@x"}}}}}}"#
    );
    l.handle_frame(reject.as_bytes(), 3);
    let ev = l.poll_event().unwrap();
    assert!(
        matches!(&ev, LinkEvent::Conflict { local, server, .. }
            if local == &json!({"email":"a@x"}) && server == &json!({"email":"b@x"})),
        "{ev:?}"
    );
    assert_eq!((l.version(), l.outbox().len()), (3, 1));
    let reject = format!(
        r#"{{"type":"reject","id":{{"client":"{CLIENT}","seq":2}},"code":"INVALID_TRANSITION","message":"m"}}"#
    );
    l.handle_frame(reject.as_bytes(), 4);
    assert!(matches!(
        l.poll_event(),
        Some(LinkEvent::ErrorOccurred {
            terminal: false,
            ..
        })
    ));
    assert!(l.outbox().is_empty());
    assert_eq!(l.view(), json!({"email":"b@x"}));
}

#[test]
fn follows_the_session_status_from_welcome_patches_and_acks() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let statuses = |l: &mut Link| -> Vec<String> {
        std::iter::from_fn(|| l.poll_event())
            .filter_map(|e| match e {
                LinkEvent::StatusChanged { status } => Some(status),
                _ => None,
            })
            .collect()
    };
    assert_eq!(statuses(&mut l), vec!["cart".to_string()]);
    assert_eq!(l.status(), "cart");
    // Another client's change moves the status.
    let patch = r#"{"type":"patch","version":2,"patch":{"step":"checkout"},"status":"checkout"}"#;
    l.handle_frame(patch.as_bytes(), 2);
    assert_eq!(statuses(&mut l), vec!["checkout".to_string()]);
    // This client's op with `to`, acknowledged.
    let id = l
        .submit(json!({"paid": true}), Some("processing".into()), 3)
        .unwrap();
    let _ = drain(&mut l);
    let ack = format!(
        r#"{{"type":"ack","id":{{"client":"{CLIENT}","seq":{}}},"version":3}}"#,
        id.seq
    );
    l.handle_frame(ack.as_bytes(), 4);
    assert_eq!(statuses(&mut l), vec!["processing".to_string()]);
    assert_eq!(l.status(), "processing");
    // A patch without a status keeps it.
    l.handle_frame(br#"{"type":"patch","version":4,"patch":{"x":1}}"#, 5);
    assert!(statuses(&mut l).is_empty());
    assert_eq!(l.view(), json!({"step": "checkout", "paid": true, "x": 1}));
}
