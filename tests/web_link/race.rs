//! The race of a slow or refused WebSocket against HTTP, in the browser
//! against the real server: a refused WebSocket is usable over HTTP within
//! the budget (median of several opens, printed), a WebSocket slow to open
//! (the proxy holds the upgrade) lets HTTP carry the first ops and then
//! takes over, each op applied once. The refusal the origin remembers
//! starting the next page on HTTP: web_link.rs.

use serde_json::json;
use sessile::web::link::{Link, LinkEvent, LinkState, LossReason, Transport, TransportReason};
use wasm_bindgen_test::*;

use super::support::*;

const WS: Transport = Transport::WebSocket;
const HTTP: Transport = Transport::Http;

/// Issue 16's budget: usable over HTTP within a median of 300 ms.
const BUDGET_MS: f64 = 300.0;

fn established(e: &LinkEvent, t: Transport) -> bool {
    matches!(e, LinkEvent::ConnectionEstablished { transport } if *transport == t)
}

pub fn local_get(key: &str) -> Option<String> {
    web_sys::window()?
        .local_storage()
        .ok()??
        .get_item(key)
        .ok()?
}

#[wasm_bindgen_test]
async fn a_refused_websocket_is_usable_over_http_within_the_budget() {
    let proxy = Proxy::new().await;
    proxy.mode("block-websocket").await;
    let s = create_session(json!({"cart": []})).await;
    let mut times = Vec::new();
    for run in 0..5 {
        // A namespace of its own each time: nothing remembered.
        let ns = namespace(&format!("race-refused-{run}"));
        let client = client_id();
        let t0 = js_sys::Date::now();
        let link = Link::connect(options(&proxy, &s, &ns, &client))
            .await
            .unwrap();
        event(&link, 5_000, "on HTTP", |e| established(e, HTTP)).await;
        times.push(js_sys::Date::now() - t0);
        // Chrome reports the refusal at once: HTTP starts then. Firefox
        // holds back a WebSocket to a host whose last one failed
        // (network.websocket.delay-failed-reconnects): the race starts HTTP
        // after wsRaceMs, and the refusal comes later.
        let d = link.diagnostics();
        assert_eq!(d.transport, Some(HTTP));
        assert!(
            matches!(
                d.reason,
                TransportReason::WebSocketRefused | TransportReason::WebSocketSlow
            ),
            "{d:?}"
        );
        // Usable: a change lands.
        link.submit(json!({"run": run}), None).unwrap();
        assert!(within(5_000, "acknowledged", link.when_acknowledged()).await);
        assert_applied_once(&s, &client, &[1]).await;
        // Remembered once HTTP worked where the WebSocket did not open.
        let key = format!("sessile:{ns}:fallback");
        until(4_000, "the refusal remembered", || {
            local_get(&key).is_some()
        })
        .await;
        let d = link.diagnostics();
        assert_eq!(
            (d.preferred, d.reason),
            (HTTP, TransportReason::WebSocketRefused)
        );
        link.close().await.unwrap();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    web_sys::console::log_1(
        &format!("refused WebSocket to usable over HTTP: {times:?} ms, median {median} ms").into(),
    );
    // Firefox holds failed hosts' WebSockets back (above), so there HTTP
    // comes with the race, after wsRaceMs; measured here on a loaded
    // 2-core machine at 150 to 570 ms. The budget is Chromium's
    // (bench/link.mjs).
    let firefox = web_sys::window()
        .and_then(|w| w.navigator().user_agent().ok())
        .is_some_and(|ua| ua.contains("Firefox"));
    let budget = if firefox { 1_000.0 } else { BUDGET_MS };
    assert!(median <= budget, "median {median} ms: {times:?}");
    assert!(
        proxy.refused_upgrades().await >= 5,
        "WebSocket tried first each time"
    );
}

#[wasm_bindgen_test]
async fn a_slow_websocket_races_http_which_carries_the_ops_until_it_takes_over() {
    let proxy = Proxy::new().await;
    proxy.mode("slow-websocket").await;
    let s = create_session(json!({"cart": []})).await;
    let ns = namespace("race-slow");
    let client = client_id();
    let link = Link::connect(options(&proxy, &s, &ns, &client))
        .await
        .unwrap();
    // HTTP first: the proxy holds the WebSocket's upgrade for 1.2 s.
    event(&link, 3_000, "on HTTP", |e| established(e, HTTP)).await;
    let d = link.diagnostics();
    assert_eq!(
        (d.preferred, d.transport, d.reason, d.standby),
        (WS, Some(HTTP), TransportReason::WebSocketSlow, true)
    );
    // HTTP carries the first ops while the WebSocket opens.
    link.submit(json!({"a": 1}), None).unwrap();
    link.submit(json!({"b": 2}), None).unwrap();
    // The WebSocket opens (the proxy held it 1.2 s) and takes over.
    let seen = event(
        &link,
        5_000,
        "on the WebSocket",
        |e| matches!(e, LinkEvent::ConnectionRestored { transport } if *transport == WS),
    )
    .await;
    assert!(
        seen.contains(&LinkEvent::ConnectionLost {
            reason: LossReason::Upgrade
        }),
        "{seen:?}"
    );
    link.submit(json!({"c": 3}), None).unwrap();
    assert!(within(5_000, "acknowledged", link.when_acknowledged()).await);
    assert_eq!(link.state(), LinkState::Connected { transport: WS });
    let d = link.diagnostics();
    assert_eq!(
        (d.transport, d.reason, d.standby),
        (Some(WS), TransportReason::WebSocket, false)
    );
    // Every op applied once, under its one id.
    assert_applied_once(&s, &client, &[1, 2, 3]).await;
    assert_eq!(
        s.stored().await["state"],
        json!({"cart": [], "a": 1, "b": 2, "c": 3})
    );
    assert!(proxy.count("slowUpgrades").await >= 1);
    // A WebSocket merely slow is not remembered as refused.
    assert_eq!(local_get(&format!("sessile:{ns}:fallback")), None);
    link.close().await.unwrap();
}
