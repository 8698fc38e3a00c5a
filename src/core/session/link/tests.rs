//! Unit tests of the link's transitions, its record and `submit_change`:
//! the cases the TypeScript client's link core was tested on, with the
//! same assertions. Frames through the link: `tests_frames.rs`. The
//! seeded network simulation against the server's own engine is
//! `server/tests/link_sim.rs`.

use serde_json::{json, Value};

use super::*;
use crate::core::protocol::{CatchUp, LoggedPatch, Welcome};

pub(super) const CLIENT: &str = "0123456789abcdef0123456789abcdef";
const SESSION: &str = "fedcba9876543210fedcba9876543210";

fn cfg() -> LinkConfig {
    LinkConfig::new(SESSION, "t", 1)
}

pub(super) fn link_with(cfg: LinkConfig) -> Link {
    Link::new(cfg, Outbox::new(CLIENT).unwrap(), 0, empty_state())
}

/// A link whose WebSocket opened at `at` and has not been welcomed yet.
pub(super) fn handshaking(at: u64) -> Link {
    let mut l = link_with(cfg());
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, at);
    l
}

pub(super) fn drain(l: &mut Link) -> Vec<Transmit> {
    std::iter::from_fn(|| l.poll_transmit()).collect()
}

pub(super) fn events(l: &mut Link) -> Vec<LinkEvent> {
    std::iter::from_fn(|| l.poll_event()).collect()
}

pub(super) fn welcome_with(
    version: u64,
    applied_seq: u64,
    catch_up: CatchUp,
    expires_at: u64,
) -> Vec<u8> {
    protocol::encode(&Message::Welcome(Welcome {
        protocol: PROTOCOL_VERSION,
        version,
        status: "cart".into(),
        expires_at,
        heartbeat_ms: 5_000,
        applied_seq,
        server_time: 0,
        catch_up,
    }))
    .into_bytes()
}

pub(super) fn welcome(version: u64, applied_seq: u64) -> Vec<u8> {
    welcome_with(
        version,
        applied_seq,
        CatchUp::Snapshot { state: json!({}) },
        0,
    )
}

fn snapshot(version: u64, applied_seq: u64, state: Value) -> Vec<u8> {
    welcome_with(version, applied_seq, CatchUp::Snapshot { state }, 0)
}

/// The frame a transmit sends, parsed.
fn sent(t: &Transmit) -> Value {
    match t {
        Transmit::Send(f) => serde_json::from_str(f).unwrap(),
        other => panic!("not a send: {other:?}"),
    }
}

fn kind(l: &Link) -> &'static str {
    match l.state() {
        LinkState::Idle => "idle",
        LinkState::Connecting { .. } => "connecting",
        LinkState::Handshaking { .. } => "handshaking",
        LinkState::Connected { .. } => "connected",
        LinkState::Backoff { .. } => "backoff",
        LinkState::Offline => "offline",
        LinkState::Stopped { .. } => "stopped",
    }
}

fn stopped(code: &str) -> LinkState {
    LinkState::Stopped { code: code.into() }
}

fn reject(seq: u64, code: &str, current: Option<Value>) -> Vec<u8> {
    let mut r = json!({"type": "reject", "id": {"client": CLIENT, "seq": seq}, "code": code, "message": "m"});
    if let Some(c) = current {
        r["current"] = c;
    }
    r.to_string().into_bytes()
}

fn id(seq: u64) -> OpId {
    OpId {
        client: CLIENT.into(),
        seq,
    }
}

#[test]
fn falls_back_to_http_and_probes_websocket_later() {
    let mut l = link_with(cfg());
    let mut now = 0;
    l.handle_open(now);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::WebSocket)]);
    // Refused: HTTP at once, no backoff (the race's other half).
    l.handle_closed(now);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::Http)]);
    l.handle_connected(Transport::Http, now);
    l.handle_frame(&welcome(1, 0), now);
    assert_eq!(
        l.state(),
        &LinkState::Connected {
            transport: Transport::Http
        }
    );
    // Keep the link alive with pongs until the probe is due.
    let mut opened = None;
    while now < 200_000 && opened.is_none() {
        now = l.poll_timeout().unwrap();
        l.handle_timeout(now);
        for t in drain(&mut l) {
            match &t {
                Transmit::Send(_) if sent(&t)["type"] == "ping" => {
                    let pong = json!({"type": "pong", "ts": sent(&t)["ts"], "serverTs": 0});
                    l.handle_frame(pong.to_string().as_bytes(), now);
                }
                Transmit::Open(transport) => opened = Some((*transport, now)),
                _ => {}
            }
        }
    }
    let (transport, at) = opened.unwrap();
    assert_eq!(transport, Transport::WebSocket);
    assert!(
        (60_000..70_000).contains(&at),
        "probe after about 60 s: {at}"
    );
    assert!(l.diagnostics().srtt_ms.is_some());
}

#[test]
fn a_remembered_fallback_starts_on_http_and_probes_later() {
    let mut c = cfg();
    c.start_on_http = true;
    let mut l = link_with(c);
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
    l.handle_frame(
        br#"{"type":"error","code":"INVALID_TOKEN","message":"no","retryable":false}"#,
        10,
    );
    assert!(matches!(l.poll_event(), Some(LinkEvent::AuthFailed { .. })));
    assert_eq!(l.state(), &stopped("INVALID_TOKEN"));
    assert_eq!(l.poll_timeout(), None);
    assert_eq!(drain(&mut l).last(), Some(&Transmit::Close));
}

#[test]
fn terminal_server_errors_and_bye_stop_with_error_occurred_retryable_ones_reconnect() {
    let mut l = handshaking(0);
    l.handle_frame(
        br#"{"type":"error","code":"SESSION_EXPIRED","message":"gone"}"#,
        1,
    );
    assert_eq!(
        events(&mut l),
        vec![LinkEvent::ErrorOccurred {
            code: "SESSION_EXPIRED".into(),
            message: "gone".into(),
            terminal: true
        }]
    );
    assert_eq!(l.state(), &stopped("SESSION_EXPIRED"));
    let mut b = handshaking(0);
    b.handle_frame(br#"{"type":"bye","reason":"ORIGIN_NOT_ALLOWED"}"#, 1);
    assert_eq!(b.state(), &stopped("ORIGIN_NOT_ALLOWED"));
    let mut r = handshaking(0);
    r.handle_frame(
        br#"{"type":"error","code":"SERVER_BUSY","message":"later","retryable":true}"#,
        1,
    );
    assert_eq!(kind(&r), "backoff");
    let mut y = handshaking(0);
    y.handle_frame(br#"{"type":"bye"}"#, 1);
    assert_eq!(kind(&y), "backoff");
}

#[test]
fn back_from_the_back_forward_cache_the_link_reconnects_at_once_and_resends() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 100);
    l.submit(json!({"a": 1}), None, 200).unwrap();
    let _ = drain(&mut l);
    // Frozen with the op unanswered; back well within the liveness window,
    // so only the resume tells the link its socket may be gone.
    l.handle_resumed(300);
    assert_eq!(
        drain(&mut l),
        vec![Transmit::Close, Transmit::Open(Transport::WebSocket)],
        "the old connection closed and a new one opened without a backoff"
    );
    assert!(events(&mut l).contains(&LinkEvent::ConnectionLost {
        reason: LossReason::Frozen
    }));
    l.handle_connected(Transport::WebSocket, 310);
    let hello = drain(&mut l);
    assert_eq!(sent(&hello[0])["type"], "hello");
    assert_eq!(sent(&hello[0])["haveVersion"], 1, "it resumes by version");
    l.handle_frame(&welcome(1, 0), 320);
    let out = drain(&mut l);
    let ops: Vec<Value> = out.iter().map(sent).filter(|f| f["type"] == "op").collect();
    assert_eq!(ops.len(), 1, "the unanswered op goes again, once: {out:?}");
    assert_eq!(ops[0]["id"]["seq"], 1);
    // A backoff ends at once too; an idle link stays idle.
    l.handle_closed(400);
    assert_eq!(kind(&l), "backoff");
    let _ = drain(&mut l);
    l.handle_resumed(401);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::WebSocket)]);
    let mut idle = link_with(cfg());
    idle.handle_resumed(0);
    assert_eq!(drain(&mut idle), vec![], "a link never opened stays idle");
}

#[test]
fn silence_of_two_heartbeats_is_dead_and_ops_resend_after_welcome() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 100);
    let op = l.submit(json!({"a": 1}), None, 200).unwrap();
    assert_eq!(op.seq, 1);
    let e = l.submit(json!(3), None, 200).unwrap_err();
    assert_eq!(e.code(), "PROTOCOL_ERROR");
    // Timers may fire late (a throttled tab): the deadline is a timestamp.
    assert_eq!(l.poll_timeout(), Some(5_000), "first ping");
    l.handle_timeout(10_099);
    assert_eq!(kind(&l), "connected");
    l.handle_timeout(10_100);
    assert_eq!(kind(&l), "backoff");
    assert!(events(&mut l).contains(&LinkEvent::ConnectionLost {
        reason: LossReason::Dead
    }));
    let now = l.poll_timeout().unwrap();
    l.handle_timeout(now);
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, now);
    l.handle_frame(&welcome(1, 0), now);
    let out = drain(&mut l);
    assert_eq!(sent(&out[1])["type"], "op");
    assert_eq!(l.view(), json!({"a": 1}));
}

#[test]
fn a_conflict_takes_the_server_state_and_says_so() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    l.submit(json!({"email": "a@x"}), None, 2).unwrap();
    l.submit(json!({"step": 2}), Some("checkout".into()), 2)
        .unwrap();
    let _ = events(&mut l);
    let current = json!({"version": 3, "status": "cart", "state": {"email": "b@x"}});
    l.handle_frame(&reject(1, "VERSION_CONFLICT", Some(current)), 3);
    assert_eq!(
        l.poll_event(),
        Some(LinkEvent::Conflict {
            op: id(1),
            local: json!({"email": "a@x"}),
            server: json!({"email": "b@x"}),
            winner: ConflictWinner::Server
        })
    );
    assert_eq!((l.version(), l.outbox().len()), (3, 1));
    l.handle_frame(&reject(2, "INVALID_TRANSITION", None), 4);
    // The status "cart" is unchanged: no status event before the error.
    assert!(matches!(
        l.poll_event(),
        Some(LinkEvent::ErrorOccurred { code, terminal: false, .. }) if code == "INVALID_TRANSITION"
    ));
    assert!(l.outbox().is_empty());
    assert_eq!(l.view(), json!({"email": "b@x"}));
}

#[test]
fn a_conflict_without_the_state_is_against_the_confirmed_state() {
    // The server sent the state already on this connection.
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    for email in ["a@x", "c@x", "d@x"] {
        l.submit(json!({ "email": email }), None, 2).unwrap();
        let _ = drain(&mut l); // sent: later ones are new ops, not coalesced
    }
    let _ = events(&mut l);
    let current = json!({"version": 3, "status": "cart", "state": {"email": "b@x"}});
    l.handle_frame(&reject(1, "VERSION_CONFLICT", Some(current)), 3);
    assert!(matches!(l.poll_event(), Some(LinkEvent::Conflict { .. })));
    l.handle_frame(&reject(2, "VERSION_CONFLICT", None), 4);
    let ev = l.poll_event();
    assert_eq!(
        ev,
        Some(LinkEvent::Conflict {
            op: id(2),
            local: json!({"email": "c@x"}),
            server: json!({"email": "b@x"}),
            winner: ConflictWinner::Server
        })
    );
    // The event's state is a copy: changing it leaves the link's alone.
    if let Some(LinkEvent::Conflict { mut server, .. }) = ev {
        server["email"] = json!("changed");
    }
    assert_eq!(
        (l.version(), l.confirmed().clone(), l.outbox().len()),
        (3, json!({"email": "b@x"}), 1)
    );
    assert_eq!(l.poll_event(), None, "no error event");
}

#[test]
fn version_ahead_at_hello_asks_again_from_version_0_and_an_op_rejected_so_is_a_conflict() {
    let mut l = handshaking(0);
    l.handle_frame(&snapshot(5, 0, json!({"n": 5})), 1);
    l.submit(json!({"n": 6}), None, 2).unwrap();
    let _ = drain(&mut l);
    let _ = events(&mut l);
    // The server answers for a version it no longer has.
    l.handle_frame(&reject(1, "VERSION_AHEAD", None), 3);
    assert_eq!(
        l.poll_event(),
        Some(LinkEvent::Conflict {
            op: id(1),
            local: json!({"n": 6}),
            server: json!({"n": 5}),
            winner: ConflictWinner::Server
        })
    );
    // A reconnect whose hello says version 5 to a server at 3.
    l.handle_closed(4);
    let _ = events(&mut l);
    l.handle_timeout(l.poll_timeout().unwrap());
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, 10);
    let hello = drain(&mut l);
    assert_eq!(sent(&hello[0])["haveVersion"], 5);
    l.handle_frame(
        br#"{"type":"error","code":"VERSION_AHEAD","message":"m","retryable":false}"#,
        11,
    );
    assert_eq!(
        drain(&mut l),
        vec![Transmit::Close],
        "this connection is given up"
    );
    assert_eq!(l.version(), 0);
    l.handle_timeout(l.poll_timeout().unwrap());
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, 20);
    let hello = drain(&mut l);
    assert_eq!(sent(&hello[0])["haveVersion"], 0, "asks for everything");
    l.handle_frame(&snapshot(3, 1, json!({"n": 3})), 21);
    assert_eq!(
        (l.version(), l.confirmed().clone(), kind(&l)),
        (3, json!({"n": 3}), "connected")
    );
}

#[test]
fn ended_stops_the_link_with_its_code_and_extended_moves_the_expiry() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    l.handle_frame(br#"{"type":"extended","expiresAt":1234}"#, 2);
    assert_eq!(l.expires_at(), 1234);
    let _ = events(&mut l);
    let _ = drain(&mut l);
    l.handle_frame(
        br#"{"type":"patch","version":2,"patch":{"email":null},"status":"expired"}"#,
        3,
    );
    l.handle_frame(
        br#"{"type":"ended","status":"expired","code":"SESSION_EXPIRED","version":2,"message":"session expired"}"#,
        3,
    );
    assert_eq!(l.state(), &stopped("SESSION_EXPIRED"));
    assert_eq!((l.version(), l.status()), (2, "expired"));
    assert_eq!(drain(&mut l), vec![Transmit::Close]);
    assert_eq!(l.poll_timeout(), None, "no reconnect");
    // The `bye` and the close that follow change nothing.
    l.handle_frame(br#"{"type":"bye","reason":"SESSION_EXPIRED"}"#, 4);
    l.handle_closed(4);
    assert_eq!(l.state(), &stopped("SESSION_EXPIRED"));
    let mut e = handshaking(0);
    e.handle_frame(&welcome(1, 0), 1);
    e.handle_frame(
        br#"{"type":"ended","status":"terminated","code":"SESSION_CLOSED","version":2,"message":"m"}"#,
        2,
    );
    assert_eq!(e.state(), &stopped("SESSION_CLOSED"));
}

#[test]
fn follows_the_session_status_from_welcome_patches_and_acks() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let statuses = |l: &mut Link| -> Vec<String> {
        events(l)
            .into_iter()
            .filter_map(|e| match e {
                LinkEvent::StatusChanged { status } => Some(status),
                _ => None,
            })
            .collect()
    };
    assert_eq!(statuses(&mut l), ["cart"]);
    assert_eq!(l.status(), "cart");
    // Another client's change moves the status.
    l.handle_frame(
        br#"{"type":"patch","version":2,"patch":{"step":"checkout"},"status":"checkout"}"#,
        2,
    );
    assert_eq!(statuses(&mut l), ["checkout"]);
    // This client's op with `to`, acknowledged.
    let op = l
        .submit(json!({"paid": true}), Some("processing".into()), 3)
        .unwrap();
    let _ = drain(&mut l);
    let ack = json!({"type": "ack", "id": {"client": CLIENT, "seq": op.seq}, "version": 3});
    l.handle_frame(ack.to_string().as_bytes(), 4);
    assert_eq!(statuses(&mut l), ["processing"]);
    assert_eq!(l.status(), "processing");
    // A patch without a status keeps it.
    l.handle_frame(br#"{"type":"patch","version":4,"patch":{"x":1}}"#, 5);
    assert!(statuses(&mut l).is_empty());
    assert_eq!(l.view(), json!({"step": "checkout", "paid": true, "x": 1}));
}

#[test]
fn versions_ahead_of_a_gap_wait_for_it_and_a_gap_that_stays_resyncs() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    let _ = events(&mut l);
    l.handle_frame(br#"{"type":"patch","version":3,"patch":{"b":2}}"#, 2);
    assert_eq!(l.version(), 1);
    assert_eq!(l.diagnostics().buffered_versions, 1);
    l.handle_frame(br#"{"type":"patch","version":2,"patch":{"a":1}}"#, 3);
    assert_eq!(
        (l.version(), l.confirmed().clone()),
        (3, json!({"a": 1, "b": 2}))
    );
    assert_eq!(
        events(&mut l),
        vec![LinkEvent::StateSynchronized {
            version: 3,
            confirmed: 0
        }]
    );
    l.handle_frame(br#"{"type":"patch","version":5,"patch":{"c":3}}"#, 1_000);
    assert_eq!(
        l.poll_timeout(),
        Some(5_000),
        "the first ping is due before the gap's deadline (21 s)"
    );
    // Pongs keep it alive; the missing version 4 never comes.
    for t in (5_000..=21_000).step_by(4_000) {
        l.handle_frame(br#"{"type":"pong","ts":0,"serverTs":0}"#, t);
        l.handle_timeout(t);
    }
    assert_eq!(kind(&l), "backoff");
    assert!(events(&mut l).contains(&LinkEvent::ConnectionLost {
        reason: LossReason::Resync
    }));
}

#[test]
fn a_welcome_with_patches_catches_up_and_one_that_falls_short_resyncs() {
    let mut l = Link::new(cfg(), Outbox::new(CLIENT).unwrap(), 2, json!({"a": 1}));
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_connected(Transport::WebSocket, 0);
    let hello = drain(&mut l);
    assert_eq!(
        sent(&hello[0]),
        json!({"type": "hello", "protocol": 1, "session": SESSION, "token": "t", "client": CLIENT, "haveVersion": 2})
    );
    let patch = |version, patch| LoggedPatch {
        version,
        patch,
        status: None,
        op: None,
    };
    let patches = vec![patch(3, json!({"b": 1})), patch(4, json!({"a": null}))];
    l.handle_frame(&welcome_with(4, 0, CatchUp::Patches { patches }, 0), 1);
    assert_eq!(
        (kind(&l), l.version(), l.confirmed().clone()),
        ("connected", 4, json!({"b": 1}))
    );
    let mut s = Link::new(cfg(), Outbox::new(CLIENT).unwrap(), 2, json!({}));
    s.handle_open(0);
    s.handle_connected(Transport::WebSocket, 0);
    let patches = vec![patch(3, json!({"b": 1}))];
    s.handle_frame(&welcome_with(9, 0, CatchUp::Patches { patches }, 0), 1);
    assert_eq!(kind(&s), "backoff");
}

#[test]
fn an_answer_that_skips_an_op_a_duplicate_ack_and_op_out_of_order_reconnect() {
    let answers = [
        (
            json!({"type": "ack", "id": {"client": CLIENT, "seq": 2}, "version": 2}),
            2,
        ),
        // The op was applied (it leaves the outbox), at a version the welcome will say.
        (
            json!({"type": "ack", "id": {"client": CLIENT, "seq": 1}, "version": 2, "duplicate": true}),
            1,
        ),
        (
            json!({"type": "reject", "id": {"client": CLIENT, "seq": 1}, "code": "OP_OUT_OF_ORDER", "message": "m"}),
            2,
        ),
    ];
    for (answer, left) in answers {
        let mut l = handshaking(0);
        l.handle_frame(&welcome(1, 0), 1);
        l.submit(json!({"a": 1}), None, 2).unwrap();
        l.submit(json!({"b": 1}), None, 2).unwrap();
        let _ = drain(&mut l);
        l.handle_frame(answer.to_string().as_bytes(), 3);
        assert_eq!(kind(&l), "backoff", "{answer}");
        assert_eq!(l.outbox().len(), left, "nothing unanswered is dropped");
    }
}

#[test]
fn offline_stops_attempts_until_online_and_visible_retries_a_backoff_at_once() {
    let mut l = handshaking(0);
    l.handle_frame(&welcome(1, 0), 1);
    l.handle_online(false, 2);
    assert_eq!(kind(&l), "offline");
    assert_eq!(drain(&mut l), vec![Transmit::Close]);
    assert_eq!(l.poll_timeout(), None);
    l.handle_online(true, 3);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::WebSocket)]);
    l.handle_closed(4);
    assert_eq!(drain(&mut l), vec![Transmit::Open(Transport::Http)]);
    l.handle_closed(4);
    assert_eq!(kind(&l), "backoff");
    l.handle_visible(false, 5);
    assert_eq!(kind(&l), "backoff");
    l.handle_visible(true, 5);
    assert_eq!(kind(&l), "connecting");
}

// --- The record and `submit_change` (the TypeScript `LinkCore`'s cases) ---

const RECORD_CLIENT: &str = "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47";
/// The exact text the TypeScript client's (and before it the wasm
/// build's) `record()` wrote.
const TS_RECORD: &str = r#"{"format":1,"version":4,"confirmed":{"cart":{"items":[1]},"email":"a@b.c","step":"cart"},"outbox":{"format":1,"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","nextSeq":3,"sentUpto":1,"ops":[{"id":{"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","seq":1},"base":4,"patch":{"cart":{"items":[1,2]},"email":null},"to":"checkout"},{"id":{"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","seq":2},"base":4,"patch":{"step":"checkout"}}]}}"#;

fn resumed(record: &[u8]) -> Result<Link> {
    Ok(Link::resume(
        cfg(),
        LinkRecord::decode(record, RECORD_CLIENT)?,
    ))
}

#[test]
fn a_record_the_typescript_client_wrote_loads_and_the_new_record_has_its_shape() {
    let l = resumed(TS_RECORD.as_bytes()).unwrap();
    assert_eq!(l.version(), 4);
    assert_eq!(l.outbox().len(), 2);
    assert_eq!(
        l.view(),
        json!({"cart": {"items": [1, 2]}, "step": "checkout"})
    );
    assert_eq!(RECORD_FORMAT, 1);
    let rec = l.record();
    assert_eq!(
        rec,
        TS_RECORD.replace(r#""sentUpto":1"#, r#""sentUpto":2"#),
        "same shape; every restored op counts as sent"
    );
    // The value form loads too.
    let value: Value = serde_json::from_str(&rec).unwrap();
    let mut again = Link::resume(cfg(), LinkRecord::read(&value, RECORD_CLIENT).unwrap());
    assert_eq!(
        again.confirmed(),
        &json!({"cart": {"items": [1]}, "email": "a@b.c", "step": "cart"})
    );
    // Ops restored from a record resend after the welcome.
    again.handle_open(1);
    let _ = again.poll_transmit();
    again.handle_connected(Transport::WebSocket, 2);
    let _ = again.poll_transmit();
    again.handle_frame(&welcome(4, 0), 3);
    let out: Vec<Value> = drain(&mut again).iter().map(sent).collect();
    let ops: Vec<(Value, Value, Value)> = out
        .iter()
        .map(|m| (m["type"].clone(), m["id"]["seq"].clone(), m["to"].clone()))
        .collect();
    assert_eq!(
        ops,
        vec![
            (json!("op"), json!(1), json!("checkout")),
            (json!("op"), json!(2), Value::Null)
        ]
    );
}

#[test]
fn records_that_do_not_read_are_outbox_corrupt() {
    let good: Value = serde_json::from_str(TS_RECORD).unwrap();
    let with = |k: &str, v: Value| {
        let mut r = good.clone();
        r[k] = v;
        r.to_string()
    };
    let mut next_seq = good.clone();
    next_seq["outbox"]["nextSeq"] = json!(7);
    let records = [
        "{".to_string(),
        "[]".to_string(),
        with("format", json!(2)),
        with("version", json!(-1)),
        with("confirmed", json!(5)),
        next_seq.to_string(),
    ];
    for record in records {
        let e = resumed(record.as_bytes()).map(|_| ()).unwrap_err();
        assert_eq!(e.code(), "OUTBOX_CORRUPT", "{record}");
    }
    let e = LinkRecord::decode(TS_RECORD.as_bytes(), CLIENT).unwrap_err();
    assert_eq!(e.code(), "OUTBOX_CORRUPT", "another client's");
    assert_eq!(Outbox::new("short").unwrap_err().code(), "OUTBOX_CORRUPT");
}

#[test]
fn submit_change_sends_the_difference_0_for_no_change_invalid_state_for_a_non_object() {
    let out = Outbox::new(RECORD_CLIENT).unwrap();
    let mut l = Link::new(cfg(), out, 1, json!({"a": 1, "b": {"c": 1}}));
    let before = json!({"a": 1, "b": {"c": 1}});
    assert_eq!(
        l.submit_change(&json!({"a": 1}), &json!({"a": 1}), None, 5)
            .unwrap(),
        0
    );
    let after = json!({"a": 2, "b": {"c": 1}});
    assert_eq!(l.submit_change(&before, &after, None, 5).unwrap(), 1);
    let same = json!({"a": 2});
    assert_eq!(
        l.submit_change(&same, &same, Some("checkout".into()), 5)
            .unwrap(),
        2,
        "a status change alone is an op"
    );
    let patches: Vec<Value> = l.outbox().iter().map(|o| o.patch.clone()).collect();
    assert_eq!(patches, vec![json!({"a": 2}), json!({})]);
    let e = l
        .submit_change(&json!({}), &json!([1]), None, 5)
        .unwrap_err();
    assert_eq!(e.code(), "INVALID_STATE");
    assert_eq!(l.view(), json!({"a": 2, "b": {"c": 1}}));
}

#[test]
fn diagnostics_after_the_first_welcome() {
    let out = Outbox::new(RECORD_CLIENT).unwrap();
    let mut c = cfg();
    c.seed = 3;
    let mut l = Link::new(c, out, 0, empty_state());
    l.handle_open(0);
    assert_eq!(
        l.poll_transmit(),
        Some(Transmit::Open(Transport::WebSocket))
    );
    assert_eq!(l.poll_timeout(), Some(250), "the race against HTTP");
    l.handle_connected(Transport::WebSocket, 1);
    assert_eq!(l.poll_timeout(), Some(10_000));
    let _ = l.poll_transmit();
    l.handle_frame(
        &welcome_with(1, 0, CatchUp::Snapshot { state: json!({}) }, 99),
        2,
    );
    let d = l.diagnostics();
    assert_eq!(
        (d.srtt_ms, d.connections, d.preferred, d.outbox_len),
        (None, 1, Transport::WebSocket, 0)
    );
    // The page's `diagnostics().link` shows where the link stands and the version held.
    assert_eq!(
        (&d.state, d.version),
        (
            &LinkState::Connected {
                transport: Transport::WebSocket
            },
            1
        )
    );
    assert_eq!(
        l.state(),
        &LinkState::Connected {
            transport: Transport::WebSocket
        }
    );
    assert_eq!((l.version(), l.outbox().client()), (1, RECORD_CLIENT));
    assert_eq!((l.status(), l.expires_at()), ("cart", 99));
    assert_eq!(
        l.poll_event(),
        Some(LinkEvent::StatusChanged {
            status: "cart".into()
        })
    );
    assert_eq!(
        l.poll_event(),
        Some(LinkEvent::ConnectionEstablished {
            transport: Transport::WebSocket
        })
    );
}
