//! Admin endpoints and browser origins through the real server: the admin
//! token is required, the sweeper's dry run changes nothing and the real run
//! expires and removes what it reported, the health report's counts match
//! the SQLite file, stale sessions are found, `/metrics` speaks Prometheus.

mod common;

use common::*;
use serde_json::{json, Value};

#[tokio::test]
async fn admin_endpoints_need_the_admin_token() {
    let srv = start(|_| {}).await;
    for path in ["/v1/admin/health", "/v1/admin/stats", "/metrics"] {
        let a = request(srv.addr, "GET", path, &[], b"").await;
        assert_eq!(
            (a.status, a.code()),
            (401, "INVALID_TOKEN".into()),
            "{path}"
        );
        let a = request(
            srv.addr,
            "GET",
            path,
            &[("Authorization", "Bearer wrong")],
            b"",
        )
        .await;
        assert_eq!(a.status, 401, "{path}");
        assert_eq!(
            admin(srv.addr, "GET", path, &Value::Null).await.status,
            200,
            "{path}"
        );
    }
    let s = create(srv.addr, json!({})).await;
    // A session token is not an admin token.
    let a = call(
        srv.addr,
        "POST",
        "/v1/admin/sweep",
        &s,
        &json!({"dryRun": true}),
    )
    .await;
    assert_eq!(a.status, 401);
    // No admin token configured: nobody gets in.
    let closed = start(|c| c.admin_token = None).await;
    assert_eq!(
        admin(closed.addr, "GET", "/v1/admin/health", &Value::Null)
            .await
            .status,
        401
    );
}

fn dump(db: &std::path::Path) -> Vec<(String, String, i64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT id, status, version FROM sessions ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test]
async fn sweep_dry_run_changes_nothing_and_the_real_run_does_what_it_said() {
    let srv = start(|_| {}).await;
    let live = create(srv.addr, json!({})).await;
    let overdue = create(srv.addr, json!({})).await;
    let old_closed = create(srv.addr, json!({"flow": "table"})).await;
    let new_closed = create(srv.addr, json!({"flow": "table"})).await;
    for s in [&old_closed, &new_closed] {
        end(srv.addr, s).await;
    }
    sql(&srv.db, &format!("UPDATE sessions SET expires_at = 1000 WHERE id = '{}'; UPDATE sessions SET updated_at = 1000 WHERE id = '{}'", overdue.id, old_closed.id));
    let addr = srv.restart().await;
    let before = dump(&srv.db);
    let dry = admin(
        addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"dryRun": true, "olderThanSecs": 3600}),
    )
    .await
    .json();
    assert_eq!(
        (
            dry["dryRun"].clone(),
            dry["expired"].clone(),
            dry["removed"].clone()
        ),
        (json!(true), json!([overdue.id]), json!([old_closed.id]))
    );
    assert_eq!(dump(&srv.db), before, "a dry run changes nothing");
    // A status filter that does not match removes nothing.
    let none = admin(
        addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"dryRun": true, "olderThanSecs": 3600, "statuses": ["completed"]}),
    )
    .await
    .json();
    assert_eq!(none["removed"], json!([]));
    let real = admin(
        addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"olderThanSecs": 3600}),
    )
    .await
    .json();
    assert_eq!(
        (real["expired"].clone(), real["removed"].clone()),
        (dry["expired"].clone(), dry["removed"].clone())
    );
    let after = dump(&srv.db);
    assert_eq!(after.len(), 3);
    assert!(after
        .iter()
        .any(|(id, st, _)| *id == overdue.id && st == "expired"));
    assert!(after
        .iter()
        .any(|(id, st, _)| *id == live.id && st == "cart"));
    assert!(!after.iter().any(|(id, _, _)| *id == old_closed.id));
    assert_eq!(
        sql_count(
            &srv.db,
            &format!(
                "SELECT count(*) FROM audit WHERE session_id = '{}' AND action = 'remove'",
                old_closed.id
            )
        ),
        1
    );
    let bad = admin(addr, "POST", "/v1/admin/sweep", &json!({"dryrun": true})).await;
    assert_eq!(
        (bad.status, bad.code()),
        (400, "PROTOCOL_ERROR".into()),
        "a misspelt option is refused, not ignored"
    );
}

#[tokio::test]
async fn health_counts_match_the_data_and_find_stale_sessions() {
    let srv = start(|_| {}).await;
    let c = client_id(1);
    let mut waiting = Vec::new();
    for i in 0..7u64 {
        let flow = if i % 2 == 0 { "checkout" } else { "table" };
        let s = create(srv.addr, json!({"flow": flow})).await;
        let steps: &[&str] = match (flow, i) {
            ("checkout", 0) => &[],
            ("checkout", 2) => &["checkout", "processing"],
            ("checkout", _) => &["checkout"],
            (_, 1) => &[
                "BROWSING",
                "CART_ACTIVE",
                "ORDER_PLACED",
                "AWAITING_PAYMENT",
            ],
            (_, 3) => &["BROWSING", "CART_ACTIVE", "ORDER_PLACED"],
            _ => &["CLOSED"],
        };
        for (n, to) in steps.iter().enumerate() {
            let a = http_op(
                srv.addr,
                &s,
                &op(&c, n as u64 + 1, n as u64 + 1, json!({}), Some(to)),
            )
            .await;
            assert_eq!(a.status, 200);
        }
        if [1, 2, 3].contains(&i) {
            waiting.push(s.id.clone());
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // Two waiting sessions have waited 16 and 25 minutes; one only just started.
    sql(&srv.db, &format!(
        "UPDATE sessions SET status_since = {} WHERE id = '{}'; UPDATE sessions SET status_since = {} WHERE id = '{}'",
        now - 16 * 60_000, waiting[0], now - 25 * 60_000, waiting[1]
    ));
    let addr = srv.restart().await;
    let h = admin(addr, "GET", "/v1/admin/health", &Value::Null)
        .await
        .json();
    let conn = rusqlite::Connection::open(&srv.db).unwrap();
    let mut st = conn
        .prepare("SELECT flow, status, count(*) FROM sessions GROUP BY flow, status")
        .unwrap();
    let rows: Vec<(String, String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(h["total"], 7);
    for (flow, status, n) in &rows {
        assert_eq!(
            h["byStatus"][flow][status].as_i64(),
            Some(*n),
            "{flow}/{status}"
        );
    }
    let counted: u64 = h["byStatus"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|m| m.as_object().unwrap().values())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(counted, 7);
    let stuck = h["stuck"].as_array().unwrap();
    assert_eq!(stuck.len(), 2, "{h}");
    let level = |id: &str| {
        stuck
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["level"].clone())
    };
    assert_eq!(level(&waiting[0]), Some(json!("warning")));
    assert_eq!(level(&waiting[1]), Some(json!("stale")));
    assert_eq!(h["status"], "unhealthy");
    assert!(
        !h["problems"].as_array().unwrap().is_empty()
            && !h["recommendations"].as_array().unwrap().is_empty()
    );

    let stats = admin(addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json();
    assert_eq!(
        (stats["sessions"].as_u64(), stats["live"].as_u64()),
        (Some(7), Some(6))
    );
    let m = admin(addr, "GET", "/metrics", &Value::Null).await;
    let text = String::from_utf8(m.body).unwrap();
    assert!(m.head.contains("content-type: text/plain"));
    assert!(
        text.contains("sessile_sessions{flow=\"table\",status=\"CLOSED\"} 1"),
        "{text}"
    );
    assert!(text.contains("sessile_sessions_stale 1"), "{text}");
}

#[tokio::test]
async fn browser_origins_are_checked() {
    let srv = start(|c| c.allow_origins = vec!["https://shop.example".into()]).await;
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[("Origin", "https://evil.example")],
        b"{}",
    )
    .await;
    assert_eq!((a.status, a.code()), (403, "ORIGIN_NOT_ALLOWED".into()));
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[("Origin", "https://shop.example")],
        b"{}",
    )
    .await;
    assert_eq!(a.status, 201);
    assert!(a
        .head
        .contains("access-control-allow-origin: https://shop.example"));
    let a = request(
        srv.addr,
        "OPTIONS",
        "/v1/sessions",
        &[("Origin", "https://shop.example")],
        b"",
    )
    .await;
    assert_eq!(a.status, 204);
    assert!(a
        .head
        .contains("access-control-allow-headers: authorization, content-type"));
    // WebSocket upgrades from a foreign page are refused before any frame.
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
        format!("ws://{}/v1/ws", srv.addr),
    )
    .unwrap();
    req.headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(req).await.is_err());
    // With no list, only loopback pages are let in.
    let same = start(|_| {}).await;
    let own = format!("http://{}", same.addr);
    assert_eq!(
        request(
            same.addr,
            "POST",
            "/v1/sessions",
            &[("Origin", &own)],
            b"{}"
        )
        .await
        .status,
        201
    );
    assert_eq!(
        request(
            same.addr,
            "POST",
            "/v1/sessions",
            &[("Origin", "http://other:1")],
            b"{}"
        )
        .await
        .status,
        403
    );
}

#[tokio::test]
async fn a_stored_flow_that_does_not_read_is_skipped_and_reported_not_failing_sweep_and_health() {
    let srv = start(|_| {}).await;
    let broken = create(srv.addr, json!({})).await;
    let ended = create(srv.addr, json!({})).await;
    assert_eq!(end(srv.addr, &ended).await.status, 200);
    // The row's flow table written over with garbage, straight into the file.
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET flow = 'mine', flow_table = '{{not a table' WHERE id = '{}'",
            broken.id
        ),
    );
    let addr = srv.restart().await;

    let h = admin(addr, "GET", "/v1/admin/health", &Value::Null).await;
    assert_eq!(h.status, 200, "{}", h.json());
    let h = h.json();
    assert_eq!(h["total"], 2);
    assert_eq!(h["status"], "unhealthy");
    let problems = h["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p.as_str().unwrap().contains(&broken.id)),
        "{h}"
    );

    // The other session is still swept.
    let r = admin(
        addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"olderThanSecs": 0}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.json());
    let r = r.json();
    assert_eq!(r["removed"], json!([ended.id]), "{r}");
    let problems = r["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{r}");
    assert!(problems[0].as_str().unwrap().contains(&broken.id), "{r}");
    assert_eq!(
        sql_count(
            &srv.db,
            &format!("SELECT count(*) FROM sessions WHERE id = '{}'", broken.id)
        ),
        1
    );
}
