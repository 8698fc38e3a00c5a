//! The race of a slow or refused WebSocket against HTTP (happy eyeballs):
//! HTTP at once after a refusal, HTTP beside a WebSocket still opening
//! after `ws_race_ms`, the standby taking over only with nothing in flight
//! (each op sent under its one id), a standby that never opens, and what
//! the diagnostics say meanwhile.

use serde_json::{json, Value};

use super::tests::{drain, events, welcome, CLIENT};
use super::*;

const SESSION: &str = "fedcba9876543210fedcba9876543210";

fn link() -> Link {
    Link::new(
        LinkConfig::new(SESSION, "t", 1),
        Outbox::new(CLIENT).unwrap(),
        0,
        empty_state(),
    )
}

fn frames(ts: &[Transmit]) -> Vec<Value> {
    ts.iter()
        .filter_map(|t| match t {
            Transmit::Send(f) => serde_json::from_str(f).ok(),
            _ => None,
        })
        .collect()
}

fn kinds(ts: &[Transmit]) -> Vec<String> {
    ts.iter()
        .map(|t| match t {
            Transmit::Send(f) => {
                let v: Value = serde_json::from_str(f).unwrap();
                v["type"].as_str().unwrap().to_string()
            }
            other => format!("{other:?}"),
        })
        .collect()
}

fn ack(seq: u64, version: u64) -> Vec<u8> {
    json!({"type": "ack", "id": {"client": CLIENT, "seq": seq}, "version": version})
        .to_string()
        .into_bytes()
}

const HTTP: Transport = Transport::Http;
const WS: Transport = Transport::WebSocket;

/// A link whose WebSocket did not open within `ws_race_ms` and whose HTTP
/// is synced at version 1 (at 260 ms).
fn raced_and_on_http() -> Link {
    let mut l = link();
    l.handle_open(0);
    assert_eq!(drain(&mut l), vec![Transmit::Open(WS)]);
    assert_eq!(l.poll_timeout(), Some(250), "the race is due at ws_race_ms");
    l.handle_timeout(249);
    assert!(drain(&mut l).is_empty(), "not before");
    l.handle_timeout(250);
    assert_eq!(
        drain(&mut l),
        vec![Transmit::SetAside, Transmit::Open(HTTP)]
    );
    assert!(l.diagnostics().standby);
    assert!(
        !l.diagnostics().probing,
        "a first WebSocket slow to open is no probe"
    );
    l.handle_connected(HTTP, 251);
    assert_eq!(kinds(&drain(&mut l)), ["hello"]);
    l.handle_frame(&welcome(1, 0), 260);
    let _ = events(&mut l);
    l
}

#[test]
fn a_refused_websocket_starts_http_at_once_and_http_is_then_preferred() {
    let mut l = link();
    l.handle_open(0);
    assert_eq!(drain(&mut l), vec![Transmit::Open(WS)]);
    l.handle_closed(4);
    assert_eq!(drain(&mut l), vec![Transmit::Open(HTTP)], "no backoff");
    l.handle_connected(HTTP, 5);
    assert_eq!(kinds(&drain(&mut l)), ["hello"]);
    l.handle_frame(&welcome(1, 0), 9);
    assert_eq!(l.state(), &LinkState::Connected { transport: HTTP });
    let seen = events(&mut l);
    assert!(seen.contains(&LinkEvent::TransportPreferred {
        transport: HTTP,
        reason: TransportReason::WebSocketRefused
    }));
    assert!(seen.contains(&LinkEvent::ConnectionEstablished { transport: HTTP }));
    let d = l.diagnostics();
    assert_eq!(
        (d.preferred, d.transport, d.reason, d.standby),
        (HTTP, Some(HTTP), TransportReason::WebSocketRefused, false)
    );
    // The WebSocket is probed again after ws_probe_ms.
    assert!(l.poll_timeout().unwrap() <= 9 + 10_000, "pings meanwhile");
}

#[test]
fn a_websocket_and_http_both_failing_back_off_and_are_not_taken_as_a_refusal() {
    let mut l = link();
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_closed(1);
    assert_eq!(drain(&mut l), vec![Transmit::Open(HTTP)]);
    l.handle_closed(2);
    assert!(drain(&mut l).is_empty());
    assert!(
        matches!(l.state(), LinkState::Backoff { .. }),
        "the server is down"
    );
    // Back up: the next round tries the WebSocket first again.
    let at = l.poll_timeout().unwrap();
    l.handle_timeout(at);
    assert_eq!(drain(&mut l), vec![Transmit::Open(WS)]);
    l.handle_connected(WS, at + 1);
    let _ = drain(&mut l);
    l.handle_frame(&welcome(1, 0), at + 2);
    assert!(!events(&mut l)
        .iter()
        .any(|e| matches!(e, LinkEvent::TransportPreferred { .. })));
    assert_eq!(l.diagnostics().preferred, WS);
}

#[test]
fn a_slow_websocket_races_http_which_carries_the_ops_until_it_opens() {
    let mut l = raced_and_on_http();
    let d = l.diagnostics();
    assert_eq!(
        (d.preferred, d.transport, d.reason, d.standby),
        (WS, Some(HTTP), TransportReason::WebSocketSlow, true)
    );
    // Op 1 goes over HTTP at once; the WebSocket opens while it is in flight.
    let _ = l.submit(json!({"a": 1}), None, 300).unwrap();
    let sent = frames(&drain(&mut l));
    assert_eq!(
        (sent[0]["type"].as_str(), sent[0]["id"]["seq"].as_u64()),
        (Some("op"), Some(1))
    );
    l.handle_connected(WS, 400);
    assert!(
        drain(&mut l).is_empty(),
        "op 1 is in flight on HTTP: no switch yet"
    );
    // Op 2 waits for the WebSocket.
    let _ = l.submit(json!({"b": 2}), None, 410).unwrap();
    assert!(drain(&mut l).is_empty(), "op 2 waits for the switch");
    // Op 1's answer on HTTP: nothing in flight, the WebSocket takes over.
    l.handle_frame(&ack(1, 2), 420);
    let ts = drain(&mut l);
    assert_eq!(ts[0], Transmit::Promote);
    assert_eq!(kinds(&ts[1..]), ["hello"]);
    assert_eq!(frames(&ts)[0]["haveVersion"], 2);
    assert!(events(&mut l).contains(&LinkEvent::ConnectionLost {
        reason: LossReason::Upgrade
    }));
    assert_eq!(l.state(), &LinkState::Handshaking { transport: WS });
    // The WebSocket's welcome: op 2 goes under its one id, op 1 never again.
    l.handle_frame(&welcome(2, 1), 430);
    let sent = frames(&drain(&mut l));
    let ids: Vec<u64> = sent
        .iter()
        .filter_map(|f| f["id"]["seq"].as_u64())
        .collect();
    assert_eq!(ids, [2]);
    assert!(events(&mut l).contains(&LinkEvent::ConnectionRestored { transport: WS }));
    let d = l.diagnostics();
    assert_eq!(
        (d.preferred, d.transport, d.reason, d.standby),
        (WS, Some(WS), TransportReason::WebSocket, false)
    );
    l.handle_frame(&ack(2, 3), 440);
    assert!(l.outbox().is_empty());
    assert_eq!(l.view(), json!({"b": 2}), "the snapshot welcome holds a");
}

#[test]
fn the_standby_opening_before_http_is_synced_takes_over_at_once() {
    let mut l = link();
    l.handle_open(0);
    let _ = drain(&mut l);
    let _ = l.submit(json!({"a": 1}), None, 10).unwrap();
    l.handle_timeout(250);
    let _ = drain(&mut l);
    l.handle_connected(HTTP, 251);
    assert_eq!(kinds(&drain(&mut l)), ["hello"], "no op before the welcome");
    l.handle_connected(WS, 300);
    let ts = drain(&mut l);
    assert_eq!(ts[0], Transmit::Promote);
    assert_eq!(kinds(&ts[1..]), ["hello"]);
    assert!(events(&mut l).is_empty(), "nothing was established yet");
    l.handle_frame(&welcome(1, 0), 310);
    let sent = frames(&drain(&mut l));
    assert_eq!(
        sent[0]["id"]["seq"], 1,
        "op 1 goes once, over the WebSocket"
    );
    assert!(events(&mut l).contains(&LinkEvent::ConnectionEstablished { transport: WS }));
}

#[test]
fn a_standby_that_never_opens_is_dropped_and_http_is_then_preferred() {
    let mut l = raced_and_on_http();
    // Pings keep HTTP alive; the standby's connect timeout is 10 s from
    // the WebSocket's start.
    let mut now = 260;
    let mut dropped = None;
    while now < 11_000 && dropped.is_none() {
        now = l.poll_timeout().unwrap();
        l.handle_timeout(now);
        for t in drain(&mut l) {
            if t == Transmit::DropStandby {
                dropped = Some(now);
            }
            if frames(std::slice::from_ref(&t))
                .first()
                .is_some_and(|f| f["type"] == "ping")
            {
                l.handle_frame(br#"{"type":"pong","ts":0,"serverTs":0}"#, now);
            }
        }
    }
    assert_eq!(dropped, Some(10_000));
    assert!(events(&mut l).contains(&LinkEvent::TransportPreferred {
        transport: HTTP,
        reason: TransportReason::WebSocketRefused
    }));
    let d = l.diagnostics();
    assert_eq!((d.preferred, d.standby), (HTTP, false));
    assert_eq!(l.state(), &LinkState::Connected { transport: HTTP });
}

#[test]
fn a_standby_closing_before_the_http_welcome_makes_http_preferred_at_it() {
    let mut l = link();
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_timeout(250);
    let _ = drain(&mut l);
    l.handle_standby_closed(260);
    l.handle_standby_closed(261);
    assert!(drain(&mut l).is_empty());
    l.handle_connected(HTTP, 270);
    let _ = drain(&mut l);
    l.handle_frame(&welcome(1, 0), 280);
    let seen = events(&mut l);
    let preferred: Vec<_> = seen
        .iter()
        .filter(|e| matches!(e, LinkEvent::TransportPreferred { .. }))
        .collect();
    assert_eq!(preferred.len(), 1, "{seen:?}");
    assert_eq!(l.diagnostics().reason, TransportReason::WebSocketRefused);
}

#[test]
fn http_failing_during_the_race_drops_the_standby_and_backs_off() {
    let mut l = link();
    l.handle_open(0);
    let _ = drain(&mut l);
    l.handle_timeout(250);
    let _ = drain(&mut l);
    l.handle_closed(255);
    assert_eq!(drain(&mut l), vec![Transmit::DropStandby]);
    assert!(matches!(l.state(), LinkState::Backoff { .. }));
    assert!(!l.diagnostics().standby);
    // A late open of the dropped standby is not a connection.
    l.handle_connected(WS, 300);
    assert!(drain(&mut l).is_empty());
    assert!(matches!(l.state(), LinkState::Backoff { .. }));
}

#[test]
fn a_probe_from_http_races_too_and_its_failure_probes_later() {
    let mut c = LinkConfig::new(SESSION, "t", 1);
    c.start_on_http = true;
    let mut l = Link::new(c, Outbox::new(CLIENT).unwrap(), 0, empty_state());
    assert_eq!(l.diagnostics().reason, TransportReason::Remembered);
    l.handle_open(0);
    assert_eq!(drain(&mut l), vec![Transmit::Open(HTTP)]);
    l.handle_connected(HTTP, 1);
    l.handle_frame(&welcome(1, 0), 2);
    l.handle_frame(br#"{"type":"pong","ts":0,"serverTs":0}"#, 59_000);
    assert!(!l.diagnostics().probing, "on HTTP, no probe yet");
    l.handle_timeout(60_000);
    assert_eq!(drain(&mut l), vec![Transmit::Close, Transmit::Open(WS)]);
    // The page is told a probe, not a loss: the diagnostics say so.
    assert!(l.diagnostics().probing, "the WebSocket tried from HTTP");
    // The probe hangs: HTTP again beside it after ws_race_ms.
    l.handle_timeout(60_250);
    assert_eq!(
        drain(&mut l),
        vec![Transmit::SetAside, Transmit::Open(HTTP)]
    );
    l.handle_connected(HTTP, 60_251);
    let _ = drain(&mut l);
    l.handle_frame(&welcome(1, 0), 60_260);
    assert_eq!(l.diagnostics().reason, TransportReason::Remembered);
    assert!(l.diagnostics().probing, "HTTP carries it, the probe beside");
    l.handle_standby_closed(61_000);
    assert!(!l.diagnostics().probing, "the probe failed: over");
    // Probed again twice as late; HTTP stays.
    assert_eq!(l.state(), &LinkState::Connected { transport: HTTP });
    assert!(!events(&mut l)
        .iter()
        .any(|e| matches!(e, LinkEvent::TransportPreferred { .. })));
}

#[test]
fn the_race_can_be_turned_off_by_a_long_ws_race_ms() {
    let mut c = LinkConfig::new(SESSION, "t", 1);
    c.ws_race_ms = c.connect_timeout_ms;
    let mut l = Link::new(c, Outbox::new(CLIENT).unwrap(), 0, empty_state());
    l.handle_open(0);
    let _ = drain(&mut l);
    assert_eq!(l.poll_timeout(), Some(10_000));
    l.handle_timeout(10_000);
    // Timed out without opening: HTTP at once.
    assert_eq!(drain(&mut l), vec![Transmit::Close, Transmit::Open(HTTP)]);
}
