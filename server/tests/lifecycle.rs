//! The session lifecycle through the real server: every allowed transition
//! of both built-in flows and a sample of forbidden ones, TTL expiry and
//! extend, and validation codes that leak no session data.

mod common;

use std::collections::{HashMap, VecDeque};

use common::*;
use serde_json::{json, Value};
use sessile::core::lifecycle::{Flow, CHECKOUT, TABLE};
use sessile::core::protocol::Message;

/// A shortest path of statuses from the flow's initial one to `target`.
fn path_to(flow: &Flow, target: &str) -> Vec<&'static str> {
    let mut prev: HashMap<&str, &str> = HashMap::new();
    let mut queue = VecDeque::from([flow.initial]);
    while let Some(s) = queue.pop_front() {
        for (from, tos) in flow.transitions {
            if *from == s {
                for t in *tos {
                    if *t != flow.initial && !prev.contains_key(t) {
                        prev.insert(t, s);
                        queue.push_back(t);
                    }
                }
            }
        }
    }
    let mut path = vec![];
    let mut at = target;
    while at != flow.initial {
        path.push(flow.statuses.iter().find(|(s, _)| *s == at).unwrap().0);
        at = prev[at];
    }
    path.reverse();
    path
}

/// Moves `s` through `steps` with ops of client `c`, from version `v`.
async fn walk(addr: std::net::SocketAddr, s: &Sess, c: &str, steps: &[&str]) -> u64 {
    let mut v = 1;
    for (i, to) in steps.iter().enumerate() {
        let a = http_op(addr, s, &op(c, i as u64 + 1, v, json!({}), Some(to))).await;
        assert_eq!(
            a.status,
            200,
            "to {to}: {}",
            String::from_utf8_lossy(&a.body)
        );
        v = a.json()["version"].as_u64().unwrap();
    }
    v
}

async fn every_transition(flow: &'static Flow) {
    let srv = start(|_| {}).await;
    let c = client_id(1);
    let mut checked = 0;
    for (from, tos) in flow.transitions {
        let steps = path_to(flow, from);
        for to in *tos {
            let s = create(srv.addr, json!({"flow": flow.name})).await;
            let v = walk(srv.addr, &s, &c, &steps).await;
            let seq = steps.len() as u64 + 1;
            let a = http_op(srv.addr, &s, &op(&c, seq, v, json!({"n": 1}), Some(to))).await;
            assert_eq!(
                a.status,
                200,
                "{from} -> {to}: {}",
                String::from_utf8_lossy(&a.body)
            );
            let view = view(srv.addr, &s).await;
            if flow.is_terminal(to) {
                assert_eq!(view.status, 410, "{from} -> {to} ends the session");
            } else {
                assert_eq!(view.json()["status"], *to);
            }
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        flow.transitions.iter().map(|(_, t)| t.len()).sum::<usize>()
    );
}

#[tokio::test]
async fn every_allowed_checkout_transition() {
    every_transition(&CHECKOUT).await;
}

#[tokio::test]
async fn every_allowed_table_transition() {
    every_transition(&TABLE).await;
}

#[tokio::test]
async fn forbidden_transitions_name_from_and_to_and_change_nothing() {
    let srv = start(|_| {}).await;
    let c = client_id(2);
    let samples: [(&Flow, &[&str], &str); 6] = [
        (&CHECKOUT, &[], "success"),
        (&CHECKOUT, &["checkout"], "cart"),
        (&CHECKOUT, &["checkout", "processing"], "upsell-2"),
        (&TABLE, &[], "ORDER_PLACED"),
        (
            &TABLE,
            &["BROWSING", "CART_ACTIVE", "ORDER_PLACED"],
            "EXPIRED",
        ),
        (
            &TABLE,
            &[
                "BROWSING",
                "CART_ACTIVE",
                "ORDER_PLACED",
                "PAYMENT_COMPLETED",
            ],
            "BROWSING",
        ),
    ];
    for (flow, steps, to) in samples {
        let s = create(srv.addr, json!({"flow": flow.name, "state": {"a": 1}})).await;
        let v = walk(srv.addr, &s, &c, steps).await;
        let seq = steps.len() as u64 + 1;
        let a = http_op(srv.addr, &s, &op(&c, seq, v, json!({"a": 2}), Some(to))).await;
        assert_eq!(a.status, 422);
        let r = a.json();
        assert_eq!(r["code"], "INVALID_TRANSITION");
        let from = steps.last().copied().unwrap_or(flow.initial);
        let msg = r["message"].as_str().unwrap();
        assert!(
            msg.contains(&format!("`{from}`")) && msg.contains(&format!("`{to}`")),
            "{msg}"
        );
        let view = view(srv.addr, &s).await.json();
        assert_eq!(
            (
                view["status"].as_str(),
                view["state"]["a"].as_i64(),
                view["version"].as_u64()
            ),
            (Some(from), Some(1), Some(v))
        );
    }
    // A closed session cannot move at all.
    let s = create(srv.addr, json!({"flow": "table"})).await;
    walk(srv.addr, &s, &c, &["CLOSED"]).await;
    let a = http_op(srv.addr, &s, &op(&c, 2, 2, json!({}), Some("BROWSING"))).await;
    assert_eq!((a.status, a.code()), (410, "SESSION_CLOSED".into()));
}

async fn validate(addr: std::net::SocketAddr, id: &str, token: &str) -> Value {
    let a = call(
        addr,
        "POST",
        &format!("/v1/sessions/{id}/validate"),
        &Sess {
            id: id.into(),
            token: token.into(),
        },
        &Value::Null,
    )
    .await;
    assert_eq!(a.status, 200);
    a.json()
}

#[tokio::test]
async fn validate_answers_codes_and_no_session_data() {
    let srv = start(|_| {}).await;
    let secret = "card-ending-4242";
    let s = create(srv.addr, json!({"state": {"note": secret}})).await;
    let ok = validate(srv.addr, &s.id, &s.token).await;
    assert_eq!(ok["valid"], true);
    let unknown = "0".repeat(32);
    let cases = [
        (
            validate(srv.addr, &unknown, &s.token).await,
            "SESSION_NOT_FOUND",
        ),
        (
            validate(srv.addr, &s.id, &"f".repeat(64)).await,
            "INVALID_TOKEN",
        ),
        (validate(srv.addr, &s.id, "").await, "INVALID_TOKEN"),
    ];
    let ended = create(srv.addr, json!({"state": {"note": secret}})).await;
    let a = end(srv.addr, &ended).await;
    assert_eq!(
        (a.status, a.json()["status"].as_str()),
        (200, Some("terminated"))
    );
    let expired = create(
        srv.addr,
        json!({"state": {"note": secret}, "ttlSeconds": 60}),
    )
    .await;
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET expires_at = 1 WHERE id = '{}'",
            expired.id
        ),
    );
    let after = srv.restart().await;
    let more = [
        (
            validate(after, &ended.id, &ended.token).await,
            "SESSION_CLOSED",
        ),
        (
            validate(after, &expired.id, &expired.token).await,
            "SESSION_EXPIRED",
        ),
    ];
    for (v, code) in cases.iter().chain(more.iter()) {
        assert_eq!(v["valid"], false);
        assert_eq!(v["code"], *code);
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["code", "valid"], "nothing but the code: {v}");
    }
    // Ending cleared the state in the store too.
    let n = sql_count(
        &srv.db,
        &format!(
            "SELECT count(*) FROM sessions WHERE id = '{}' AND state LIKE '%{secret}%'",
            ended.id
        ),
    );
    assert_eq!(n, 0);
}

#[tokio::test]
async fn ttl_expiry_and_extend() {
    let srv = start(|_| {}).await;
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        br#"{"ttlSeconds":59}"#,
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "INVALID_OPTIONS".into()));
    let s = create(srv.addr, json!({"ttlSeconds": 60})).await;
    let before = validate(srv.addr, &s.id, &s.token).await["expiresAt"]
        .as_u64()
        .unwrap();
    let a = call(
        srv.addr,
        "POST",
        &format!("/v1/sessions/{}/extend", s.id),
        &s,
        &json!({"seconds": 600}),
    )
    .await;
    assert_eq!(a.status, 200);
    let extended = a.json()["expiresAt"].as_u64().unwrap();
    assert_eq!(extended, before + 600_000);
    assert_eq!(
        validate(srv.addr, &s.id, &s.token).await["expiresAt"].as_u64(),
        Some(extended)
    );
    let audit = admin(
        srv.addr,
        "GET",
        &format!("/v1/admin/sessions/{}/audit", s.id),
        &Value::Null,
    )
    .await
    .json();
    assert_eq!(audit[1]["action"], "extend");

    // Time passes (the stored expiry moves into the past); the restarted server expires it.
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET expires_at = 1000 WHERE id = '{}'",
            s.id
        ),
    );
    let after = srv.restart().await;
    let a = call(
        after,
        "POST",
        &format!("/v1/sessions/{}/extend", s.id),
        &s,
        &json!({"seconds": 600}),
    )
    .await;
    assert_eq!((a.status, a.code()), (410, "SESSION_EXPIRED".into()));
    let a = http_op(after, &s, &op(&client_id(1), 1, 1, json!({"x": 1}), None)).await;
    assert_eq!((a.status, a.code()), (410, "SESSION_EXPIRED".into()));
    let (mut ws, welcome) = Ws::hello(after, &s, &client_id(1), 0).await;
    assert!(
        matches!(welcome, Message::Error(ref e) if e.code == "SESSION_EXPIRED"),
        "{welcome:?}"
    );
    assert_eq!(ws.close_code().await, Some(1008));
    assert_eq!(
        sql_count(
            &srv.db,
            &format!(
                "SELECT count(*) FROM sessions WHERE id = '{}' AND status = 'expired'",
                s.id
            )
        ),
        1
    );

    // An order placed past its TTL does not expire: it is an orphan for the health report.
    let t = create(after, json!({"flow": "table"})).await;
    walk(
        after,
        &t,
        &client_id(3),
        &["BROWSING", "CART_ACTIVE", "ORDER_PLACED"],
    )
    .await;
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET expires_at = 1000 WHERE id = '{}'",
            t.id
        ),
    );
    let later = srv.restart().await;
    assert_eq!(validate(later, &t.id, &t.token).await["valid"], true);
    let health = admin(later, "GET", "/v1/admin/health", &Value::Null)
        .await
        .json();
    assert_eq!(health["orphans"], json!([t.id]));
}
