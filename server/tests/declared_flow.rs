//! Flows a page declares, through the real server: the table is validated
//! by the core at creation (a bad one refused with `INVALID_OPTIONS`),
//! stored with the session, and enforced for transitions, expiry, ending,
//! validation and the per-key limit exactly as a built-in flow, also after a
//! restart; a database file of the first schema is migrated in place.

mod common;

use std::net::SocketAddr;

use common::*;
use serde_json::{json, Value};
use sessile::core::flow_table::DeclaredFlow;
use sessile_server::store::SqliteStore;

/// A pay desk: `paying` waits and never expires; its own expired and ended statuses.
fn desk() -> Value {
    json!({
        "name": "pay-desk", "initial": "open", "expired": "timed-out", "ended": "abandoned",
        "statuses": { "open": "active", "paying": "waiting", "paid": "closed",
                      "timed-out": "expired", "abandoned": "closed" },
        "transitions": { "open": ["paying", "timed-out", "abandoned"],
                         "paying": ["paid", "abandoned"] },
    })
}

/// Asks session `s` to move to `to` with op `seq` of client `c`; the answer.
async fn step(addr: SocketAddr, s: &Sess, c: &str, seq: u64, to: &str) -> Answer {
    let base = view(addr, s).await.json()["version"].as_u64().unwrap_or(1);
    http_op(addr, s, &op(c, seq, base, json!({ "at": to }), Some(to))).await
}

/// Asserts `a` is a refused transition from `from` to `to`.
fn assert_refused(a: &Answer, from: &str, to: &str) {
    assert_eq!((a.status, a.code()), (422, "INVALID_TRANSITION".into()));
    let msg = a.json()["message"].as_str().unwrap().to_string();
    assert_eq!(
        msg,
        format!("transition from `{from}` to `{to}` is not allowed")
    );
}

#[tokio::test]
async fn a_declared_flow_allows_its_rows_and_nothing_else() {
    let srv = start(|_| {}).await;
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        json!({ "flow": desk(), "state": { "n": 1 } })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(a.status, 201, "{}", String::from_utf8_lossy(&a.body));
    let created = a.json();
    assert_eq!(
        (&created["flow"], &created["status"]),
        (&json!("pay-desk"), &json!("open"))
    );
    let s = Sess {
        id: created["id"].as_str().unwrap().into(),
        token: created["token"].as_str().unwrap().into(),
    };
    let c = client_id(1);
    assert_refused(&step(srv.addr, &s, &c, 1, "paid").await, "open", "paid");
    // A built-in flow's status means nothing here.
    assert_refused(
        &step(srv.addr, &s, &c, 2, "checkout").await,
        "open",
        "checkout",
    );
    assert_eq!(step(srv.addr, &s, &c, 3, "paying").await.status, 200);
    let seen = view(srv.addr, &s).await.json();
    assert_eq!(
        (&seen["status"], &seen["flow"]),
        (&json!("paying"), &json!("pay-desk"))
    );
    let stored = DeclaredFlow::from_json(&desk()).unwrap().to_json();
    assert_eq!(seen["table"], stored, "GET shows the table as stored");
    assert_refused(&step(srv.addr, &s, &c, 4, "open").await, "paying", "open");
    assert_refused(
        &step(srv.addr, &s, &c, 5, "timed-out").await,
        "paying",
        "timed-out",
    );
    let now = view(srv.addr, &s).await.json();
    assert_eq!(
        (&now["status"], &now["version"]),
        (&json!("paying"), &json!(2)),
        "refused ops changed nothing"
    );
    assert_eq!(step(srv.addr, &s, &c, 6, "paid").await.status, 200);
    let a = view(srv.addr, &s).await;
    assert_eq!((a.status, a.code()), (410, "SESSION_CLOSED".into()));
    // Built-in sessions answer no table.
    let b = create(srv.addr, json!({ "flow": "table" })).await;
    let seen = view(srv.addr, &b).await.json();
    assert_eq!((&seen["flow"], seen.get("table")), (&json!("table"), None));
}

#[tokio::test]
async fn a_bad_table_is_refused_with_invalid_options_and_nothing_is_created() {
    let srv = start(|_| {}).await;
    let mut no_end = desk();
    no_end["transitions"]["paying"] = json!(["paid"]);
    let mut unknown = desk();
    unknown["transitions"]["open"] = json!(["paying", "shipped", "abandoned"]);
    let mut terminal_row = desk();
    terminal_row["transitions"]["paid"] = json!(["open"]);
    let mut no_initial = desk();
    no_initial.as_object_mut().unwrap().remove("initial");
    let mut too_many = desk();
    for i in 0..60 {
        too_many["statuses"][format!("s{i:02}")] = json!("closed");
    }
    let mut long_name = desk();
    long_name["statuses"]["x".repeat(65)] = json!("closed");
    let cases = [
        (
            no_end,
            "status `paying` cannot be ended: its row does not go to `abandoned`",
        ),
        (
            unknown,
            "row `open` goes to `shipped`, which is not in `statuses`",
        ),
        (
            terminal_row,
            "terminal status `paid` has a row; a terminal status goes nowhere",
        ),
        (no_initial, "`initial` is missing"),
        (too_many, "65 statuses; at most 64 are allowed"),
        (
            long_name,
            "a status name is 65 characters long; at most 64 are allowed",
        ),
        (
            json!(7),
            "expected a flow name or a table `{ initial, statuses, transitions }`",
        ),
    ];
    for (table, reason) in cases {
        let body = json!({ "flow": table }).to_string();
        let a = request(srv.addr, "POST", "/v1/sessions", &[], body.as_bytes()).await;
        assert_eq!(
            (a.status, a.code()),
            (400, "INVALID_OPTIONS".into()),
            "{reason}"
        );
        assert_eq!(
            a.json()["message"],
            format!("invalid option `flow`: {reason}")
        );
    }
    let a = request(srv.addr, "POST", "/v1/sessions", &[], br#"{"flow":"nope"}"#).await;
    assert_eq!((a.status, a.code()), (400, "UNKNOWN_FLOW".into()));
    assert_eq!(sql_count(&srv.db, "SELECT count(*) FROM sessions"), 0);
}

#[tokio::test]
async fn a_restart_keeps_the_table_for_transitions_expiry_and_ending() {
    let srv = start(|_| {}).await;
    let c = client_id(2);
    let (walked, waiting, fresh, ending) = (
        create(srv.addr, json!({ "flow": desk() })).await,
        create(srv.addr, json!({ "flow": desk() })).await,
        create(srv.addr, json!({ "flow": desk() })).await,
        create(srv.addr, json!({ "flow": desk() })).await,
    );
    assert_eq!(step(srv.addr, &walked, &c, 1, "paying").await.status, 200);
    assert_eq!(step(srv.addr, &waiting, &c, 1, "paying").await.status, 200);
    // Time passes for `waiting` and `fresh`; nothing is cached after the restart.
    for s in [&waiting, &fresh] {
        let update = format!(
            "UPDATE sessions SET expires_at = 1000 WHERE id = '{}'",
            s.id
        );
        sql(&srv.db, &update);
    }
    let after = srv.restart().await;
    assert_refused(&step(after, &walked, &c, 2, "open").await, "paying", "open");
    assert_eq!(
        view(after, &walked).await.json()["table"]["name"],
        "pay-desk"
    );
    assert_eq!(step(after, &walked, &c, 3, "paid").await.status, 200);
    // `open` may go to `timed-out`: past its TTL it expires there.
    let a = call(
        after,
        "POST",
        &format!("/v1/sessions/{}/validate", fresh.id),
        &fresh,
        &Value::Null,
    )
    .await;
    assert_eq!(
        a.json(),
        json!({ "valid": false, "code": "SESSION_EXPIRED" })
    );
    let status = format!(
        "SELECT count(*) FROM sessions WHERE id = '{}' AND status = 'timed-out'",
        fresh.id
    );
    assert_eq!(sql_count(&srv.db, &status), 1);
    // `paying` has no row to `timed-out`: it stays usable and is an orphan.
    let a = call(
        after,
        "POST",
        &format!("/v1/sessions/{}/validate", waiting.id),
        &waiting,
        &Value::Null,
    )
    .await;
    assert_eq!(a.json()["valid"], true);
    let health = admin(after, "GET", "/v1/admin/health", &Value::Null)
        .await
        .json();
    assert_eq!(health["orphans"], json!([waiting.id]));
    assert_eq!(health["byStatus"]["pay-desk"]["timed-out"], 1);
    // Ending moves to the table's `ended` status.
    let a = end(after, &ending).await;
    assert_eq!(
        (a.status, a.json()["status"].as_str()),
        (200, Some("abandoned"))
    );
}

#[tokio::test]
async fn the_per_key_limit_counts_sessions_live_by_their_own_flow() {
    let srv = start(|c| c.max_sessions_per_key = 2).await;
    let body = json!({ "flow": desk(), "key": "table-7" });
    let first = create(srv.addr, body.clone()).await;
    create(srv.addr, body.clone()).await;
    let a = request(
        srv.addr,
        "POST",
        "/v1/sessions",
        &[],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!((a.status, a.code()), (429, "SESSION_LIMIT_REACHED".into()));
    let c = client_id(3);
    assert_eq!(step(srv.addr, &first, &c, 1, "paying").await.status, 200);
    assert_eq!(step(srv.addr, &first, &c, 2, "paid").await.status, 200);
    // `paid` is closed in this table (no built-in flow has that status).
    create(srv.addr, body).await;
}

/// The schema before flows could be declared (`user_version` 0), as the
/// first release of the server wrote it.
const FIRST_SCHEMA: &str = "
CREATE TABLE sessions (
  id TEXT PRIMARY KEY, token_hash BLOB NOT NULL, flow TEXT NOT NULL,
  status TEXT NOT NULL, status_since INTEGER NOT NULL, key TEXT,
  state TEXT NOT NULL, version INTEGER NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  clients TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX sessions_key ON sessions(key);
CREATE TABLE patches (
  session_id TEXT NOT NULL, version INTEGER NOT NULL, patch TEXT NOT NULL,
  status TEXT, client TEXT, seq INTEGER,
  PRIMARY KEY (session_id, version)
) WITHOUT ROWID;
CREATE TABLE audit (
  id INTEGER PRIMARY KEY, session_id TEXT NOT NULL, at INTEGER NOT NULL,
  actor TEXT NOT NULL, action TEXT NOT NULL, keys TEXT NOT NULL,
  version INTEGER NOT NULL, seq INTEGER
);
CREATE INDEX audit_session ON audit(session_id, id);
";

#[tokio::test]
async fn a_database_of_the_first_schema_is_migrated_and_keeps_its_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    let (id, token) = ("ab".repeat(16), "old-token-0123456789");
    let hash = sessile_server::ids::hex(&sessile_server::ids::token_hash(token));
    let far = sessile_server::ids::now_ms() + 3_600_000;
    sql(
        &db,
        &format!(
            "{FIRST_SCHEMA}
             INSERT INTO sessions VALUES ('{id}', X'{hash}', 'checkout', 'cart', 1, NULL,
               '{{\"items\":[1]}}', 1, 1, 1, {far}, '{{}}');"
        ),
    );
    assert_eq!(sql_count(&db, "PRAGMA user_version"), 0);
    let addr = serve(config(&db)).await;
    let columns = "SELECT count(*) FROM pragma_table_info('sessions') WHERE name = 'flow_table'";
    assert_eq!(sql_count(&db, columns), 1);
    let audit = "SELECT count(*) FROM pragma_table_info('journal') WHERE name = 'audit'";
    assert_eq!(sql_count(&db, audit), 1);
    assert_eq!(sql_count(&db, "PRAGMA user_version"), 4);
    let old = Sess {
        id,
        token: token.into(),
    };
    let seen = view(addr, &old).await.json();
    assert_eq!(
        (&seen["flow"], &seen["state"]),
        (&json!("checkout"), &json!({ "items": [1] }))
    );
    let c = client_id(4);
    assert_refused(&step(addr, &old, &c, 1, "success").await, "cart", "success");
    assert_eq!(step(addr, &old, &c, 2, "checkout").await.status, 200);
    // A declared flow next to it; opening the migrated file again changes nothing.
    let new = create(addr, json!({ "flow": desk() })).await;
    let again = serve(config(&db)).await;
    assert_eq!(view(again, &old).await.json()["status"], "checkout");
    assert_eq!(view(again, &new).await.json()["table"]["initial"], "open");
    assert_eq!(sql_count(&db, "PRAGMA user_version"), 4);
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("newer.db");
    sql(
        &db,
        "CREATE TABLE sessions (id TEXT); PRAGMA user_version = 9;",
    );
    let Err(e) = SqliteStore::open(&db) else {
        panic!("a newer schema opened");
    };
    assert_eq!(e.code(), "SERVER_STORAGE_ERROR");
    assert!(e.to_string().contains("schema version 9"), "{e}");
    assert_eq!(sql_count(&db, "PRAGMA user_version"), 9, "left untouched");
}
