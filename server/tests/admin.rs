//! Admin endpoints and browser origins through the real server: the admin
//! token is required, the sweeper's dry run changes nothing and the real run
//! expires and removes what it reported, the health report's counts match
//! the SQLite file, stale sessions are found, `/metrics` speaks Prometheus,
//! a sweep given ids touches only those, the sweep log, the live figures
//! (rejects by code, ack latencies, long-polls), and the health page's headers.

mod common;

use std::net::SocketAddr;

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

/// A sweep's report (dry run or real, as `body` says).
async fn sweep(addr: SocketAddr, body: &Value) -> Value {
    admin(addr, "POST", "/v1/admin/sweep", body).await.json()
}

/// The ids of a report's list, sorted.
fn sorted_ids(list: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

/// Sessions `ids` sorted, as [`sorted_ids`] gives them.
fn sorted<'a>(ids: &[&'a Sess]) -> Vec<&'a str> {
    let mut ids: Vec<&str> = ids.iter().map(|s| s.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

/// Puts the expiry of sessions `of` in the past, in the database: a server
/// that reads them afresh (restarted) finds them overdue.
fn make_overdue(db: &std::path::Path, of: &[&Sess]) {
    let ids: Vec<String> = of.iter().map(|s| format!("'{}'", s.id)).collect();
    sql(
        db,
        &format!(
            "UPDATE sessions SET expires_at = 1000 WHERE id IN ({})",
            ids.join(", ")
        ),
    );
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
    let dry = sweep(addr, &json!({"dryRun": true, "olderThanSecs": 3600})).await;
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
    let none = sweep(
        addr,
        &json!({"dryRun": true, "olderThanSecs": 3600, "statuses": ["completed"]}),
    )
    .await;
    assert_eq!(none["removed"], json!([]));
    let real = sweep(addr, &json!({"olderThanSecs": 3600})).await;
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
    // Counts of one are singular.
    let stale_secs = common::config(&srv.db).stale_secs;
    assert!(
        h["problems"].as_array().unwrap().contains(&json!(format!(
            "1 session waiting longer than {stale_secs} s"
        ))),
        "{h}"
    );
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

#[tokio::test]
async fn a_sweep_given_ids_touches_only_those_and_names_the_listed_ones_left_alone() {
    let srv = start(|_| {}).await;
    let listed = create(srv.addr, json!({})).await;
    let unlisted = create(srv.addr, json!({})).await;
    let overdue = create(srv.addr, json!({})).await;
    let live = create(srv.addr, json!({})).await;
    for s in [&listed, &unlisted] {
        end(srv.addr, s).await;
    }
    make_overdue(&srv.db, &[&overdue]);
    let addr = srv.restart().await;
    let dry = sweep(
        addr,
        &json!({"dryRun": true, "olderThanSecs": 0, "ids": [listed.id, overdue.id]}),
    )
    .await;
    assert_eq!(
        (dry["expired"].clone(), dry["removed"].clone()),
        (json!([overdue.id]), json!([listed.id]))
    );
    assert!(dry["cutoffMs"].as_u64().unwrap() > 1000, "{dry}");
    // A live session named in the list does not qualify: left alone, named.
    let real = sweep(
        addr,
        &json!({"olderThanSecs": 0, "ids": [listed.id, overdue.id, live.id, live.id]}),
    )
    .await;
    assert_eq!(
        (
            real["expired"].clone(),
            real["removed"].clone(),
            real["skipped"].clone()
        ),
        (json!([overdue.id]), json!([listed.id]), json!([live.id]))
    );
    let rows = dump(&srv.db);
    let status = |id: &str| rows.iter().find(|r| r.0 == id).map(|r| r.1.clone());
    assert_eq!(status(&listed.id), None);
    assert_eq!(
        status(&unlisted.id).as_deref(),
        Some("terminated"),
        "an ended session not listed stays"
    );
    assert_eq!(status(&overdue.id).as_deref(), Some("expired"));
    assert_eq!(status(&live.id).as_deref(), Some("cart"));
    // Without ids the same sweep would have taken the unlisted one too.
    let all = sweep(addr, &json!({"dryRun": true, "olderThanSecs": 0})).await;
    assert_eq!(
        sorted_ids(&all["removed"]),
        sorted(&[&unlisted, &overdue]),
        "the unlisted one, and the one just expired"
    );
    assert_eq!(all["skipped"], json!([]));
    let many: Vec<String> = (0..10_001).map(|i| format!("s{i}")).collect();
    let refused = admin(addr, "POST", "/v1/admin/sweep", &json!({ "ids": many })).await;
    assert_eq!(
        (refused.status, refused.code()),
        (400, "PROTOCOL_ERROR".into())
    );
}

#[tokio::test]
async fn the_sweep_log_keeps_real_runs_newest_first_and_leaves_dry_runs_out() {
    let srv = start(|_| {}).await;
    let empty = admin(srv.addr, "GET", "/v1/admin/sweeps", &Value::Null).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["runs"], json!([]));
    let ended = create(srv.addr, json!({})).await;
    end(srv.addr, &ended).await;
    for body in [
        json!({"dryRun": true, "olderThanSecs": 0}),
        json!({"olderThanSecs": 0}),
        json!({"olderThanSecs": 0}),
    ] {
        assert_eq!(
            admin(srv.addr, "POST", "/v1/admin/sweep", &body)
                .await
                .status,
            200
        );
    }
    let log = admin(srv.addr, "GET", "/v1/admin/sweeps", &Value::Null)
        .await
        .json();
    let runs = log["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{log}");
    assert_eq!(
        (runs[0]["removed"].clone(), runs[1]["removed"].clone()),
        (json!(0), json!(1)),
        "newest first: {log}"
    );
    assert_eq!(runs[1]["trigger"], "admin");
    assert_eq!(runs[1]["error"], Value::Null);
    assert!(log["everySecs"].is_u64());
    assert_eq!(
        request(srv.addr, "GET", "/v1/admin/sweeps", &[], b"")
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn stats_count_rejects_by_code_ack_latencies_and_open_long_polls() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);
    let ok = http_op(srv.addr, &s, &op(&c, 1, 1, json!({"a": 1}), None)).await;
    assert_eq!(ok.status, 200);
    let bad = http_op(srv.addr, &s, &op(&c, 2, 2, json!({}), Some("completed"))).await;
    assert_eq!(bad.code(), "INVALID_TRANSITION");
    let gap = http_op(srv.addr, &s, &op(&c, 9, 2, json!({}), None)).await;
    assert_eq!(gap.code(), "OP_OUT_OF_ORDER");
    let addr = srv.addr;
    let (id, token) = (s.id.clone(), s.token.clone());
    let poll = tokio::spawn(async move {
        with_token(
            addr,
            "GET",
            &format!("/v1/sessions/{id}/changes?since=2&waitMs=3000"),
            &token,
            &Value::Null,
        )
        .await
    });
    let mut stats = Value::Null;
    for _ in 0..100 {
        stats = admin(addr, "GET", "/v1/admin/stats", &Value::Null)
            .await
            .json();
        if stats["longPollsOpen"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(stats["longPollsOpen"], 1, "{stats}");
    assert_eq!(
        stats["rejectsByCode"],
        json!({"INVALID_TRANSITION": 1, "OP_OUT_OF_ORDER": 1})
    );
    assert_eq!(stats["opsRejected"], 2);
    let ack = &stats["ackLatencyMs"];
    assert_eq!(ack["count"], 3, "{stats}");
    let counts = ack["counts"].as_array().unwrap();
    assert_eq!(counts.len(), ack["le"].as_array().unwrap().len() + 1);
    assert_eq!(counts.last().unwrap(), 3);
    let m = admin(addr, "GET", "/metrics", &Value::Null).await;
    let text = String::from_utf8(m.body).unwrap();
    for line in [
        "sessile_long_polls_open 1",
        "sessile_ops_rejected_by_code_total{code=\"INVALID_TRANSITION\"} 1",
        "sessile_ack_latency_seconds_bucket{le=\"+Inf\"} 3",
        "sessile_ack_latency_seconds_count 3",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    assert_eq!(poll.await.unwrap().status, 200);
    let after = admin(addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json();
    assert_eq!(after["longPollsOpen"], 0, "an answered long-poll is closed");
}

#[tokio::test]
async fn the_health_page_is_public_strict_and_uncached_and_its_data_needs_the_token() {
    let srv = start(|_| {}).await;
    let page = request(srv.addr, "GET", "/admin", &[], b"").await;
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; script-src 'self'; style-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe") && !csp.contains("http"), "{csp}");
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("/admin/admin.js") && html.contains("/admin/admin.css"));
    for (path, kind) in [
        ("/admin/admin.js", "text/javascript"),
        ("/admin/admin.css", "text/css"),
    ] {
        let a = request(srv.addr, "GET", path, &[], b"").await;
        assert_eq!(a.status, 200, "{path}");
        assert!(
            a.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        assert_eq!(a.header("cache-control"), Some("no-store"), "{path}");
    }
    let data = admin(srv.addr, "GET", "/v1/admin/health", &Value::Null).await;
    assert_eq!(data.header("cache-control"), Some("no-store"));
    let refused = request(srv.addr, "GET", "/v1/admin/health", &[], b"").await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.header("cache-control"), Some("no-store"));
}

/// The status of `id`'s row, or None once removed.
fn row_status(db: &std::path::Path, id: &str) -> Option<String> {
    dump(db).into_iter().find(|r| r.0 == id).map(|r| r.1)
}

#[tokio::test]
async fn a_session_listed_for_expiry_that_ends_before_the_confirmation_is_not_removed() {
    let srv = start(|_| {}).await;
    let overdue = create(srv.addr, json!({})).await;
    let overdue_too = create(srv.addr, json!({})).await;
    let ended = create(srv.addr, json!({"flow": "table"})).await;
    end(srv.addr, &ended).await;
    make_overdue(&srv.db, &[&overdue, &overdue_too]);
    let addr = srv.restart().await;
    let dry = sweep(addr, &json!({"dryRun": true, "olderThanSecs": 0})).await;
    assert_eq!(
        sorted_ids(&dry["expired"]),
        sorted(&[&overdue, &overdue_too]),
        "{dry}"
    );
    assert_eq!(dry["removed"], json!([ended.id]), "{dry}");
    let (cutoff, audit_cutoff) = (dry["cutoffMs"].clone(), dry["auditCutoffMs"].clone());
    assert!(audit_cutoff.as_u64().unwrap() <= cutoff.as_u64().unwrap());
    // Both end between the dry run and the confirmation: last changed now.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    for s in [&overdue, &overdue_too] {
        end(addr, s).await;
        let status = row_status(&srv.db, &s.id);
        assert!(
            matches!(status.as_deref(), Some("expired" | "terminated")),
            "{status:?}"
        );
    }
    // Without the dry run's cut-off they would qualify for removal now.
    let now = sweep(
        addr,
        &json!({"dryRun": true, "olderThanSecs": 0, "ids": [overdue.id]}),
    )
    .await;
    assert_eq!(now["removed"], json!([overdue.id]), "{now}");
    // Approved for expiry: only ever expired, never removed.
    let real = sweep(
        addr,
        &json!({"expire": [overdue.id], "remove": [ended.id], "cutoffMs": cutoff, "auditCutoffMs": audit_cutoff}),
    )
    .await;
    assert_eq!(
        (
            real["expired"].clone(),
            real["removed"].clone(),
            real["skipped"].clone(),
            real["cutoffMs"].clone()
        ),
        (
            json!([]),
            json!([ended.id]),
            json!([overdue.id]),
            cutoff.clone()
        ),
        "{real}"
    );
    assert!(row_status(&srv.db, &overdue.id).is_some(), "not removed");
    assert_eq!(row_status(&srv.db, &ended.id), None);
    // A plain list pinned to the dry run's cut-off: the late one is too new.
    let pinned = sweep(addr, &json!({"ids": [overdue_too.id], "cutoffMs": cutoff})).await;
    assert_eq!(pinned["removed"], json!([]), "{pinned}");
    assert_eq!(pinned["skipped"], json!([overdue_too.id]), "{pinned}");
    assert!(row_status(&srv.db, &overdue_too.id).is_some());
}

#[tokio::test]
async fn null_lists_mixed_lists_and_cutoffs_in_the_future_are_refused() {
    let srv = start(|_| {}).await;
    let ended = create(srv.addr, json!({})).await;
    end(srv.addr, &ended).await;
    let future = 4_000_000_000_000u64;
    for body in [
        json!({"ids": null}),
        json!({"expire": null}),
        json!({"remove": null, "dryRun": true}),
        json!({"ids": [ended.id], "remove": [ended.id]}),
        json!({"cutoffMs": future}),
        json!({"auditCutoffMs": future}),
        json!({"cutoffMs": 1000, "olderThanSecs": 0}),
        json!({"auditCutoffMs": 1000, "auditOlderThanSecs": 0}),
    ] {
        let a = admin(srv.addr, "POST", "/v1/admin/sweep", &body).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "PROTOCOL_ERROR".into()),
            "{body}"
        );
        let msg = a.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(!msg.is_empty(), "{body}");
    }
    let null = admin(srv.addr, "POST", "/v1/admin/sweep", &json!({"ids": null})).await;
    assert!(
        null.json()["message"]
            .as_str()
            .unwrap()
            .contains("may not be null"),
        "{}",
        null.json()
    );
    assert_eq!(
        row_status(&srv.db, &ended.id).as_deref(),
        Some("terminated")
    );
    // Split lists over the limit together are refused too.
    let half: Vec<String> = (0..5_001).map(|i| format!("s{i}")).collect();
    let a = admin(
        srv.addr,
        "POST",
        "/v1/admin/sweep",
        &json!({"expire": half, "remove": half}),
    )
    .await;
    assert_eq!((a.status, a.code()), (400, "PROTOCOL_ERROR".into()));
}

#[tokio::test]
async fn the_live_figures_need_the_token_and_are_the_counters() {
    let srv = start(|_| {}).await;
    for headers in [vec![], vec![("Authorization", "Bearer wrong")]] {
        let a = request(srv.addr, "GET", "/v1/admin/live", &headers, b"").await;
        assert_eq!((a.status, a.code()), (401, "INVALID_TOKEN".into()));
    }
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);
    assert_eq!(
        http_op(srv.addr, &s, &op(&c, 1, 1, json!({"a": 1}), None))
            .await
            .status,
        200
    );
    let bad = http_op(srv.addr, &s, &op(&c, 2, 2, json!({}), Some("completed"))).await;
    assert_eq!(bad.code(), "INVALID_TRANSITION");
    let live = admin(srv.addr, "GET", "/v1/admin/live", &Value::Null).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.header("cache-control"), Some("no-store"));
    let live = live.json();
    let stats = admin(srv.addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json();
    assert!(live["atMs"].as_u64().unwrap() > 0);
    for field in [
        "opsApplied",
        "opsRejected",
        "sessionsCreated",
        "wsOpen",
        "longPollsOpen",
        "rejectsByCode",
        "ackLatencyMs",
    ] {
        assert_eq!(live[field], stats[field], "{field}");
    }
    assert_eq!(live["opsApplied"], 1);
    assert_eq!(live["rejectsByCode"], json!({"INVALID_TRANSITION": 1}));
    // Nothing that needs a scan of the sessions.
    for field in ["sessions", "live", "stateBytesTotal", "clientsBytesMax"] {
        assert!(live.get(field).is_none(), "{field}: {live}");
        assert!(stats.get(field).is_some(), "{field}: {stats}");
    }
}
