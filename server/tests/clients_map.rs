//! The per-session map of clients (last op sequence per client id) is
//! bounded and counted: 20,000 client ids leave at most 1,024 entries in the
//! row; a client silent for longer than the session's TTL is pruned; the
//! map's size shows in the stats. A forgotten client that comes back never
//! gets an op applied twice: its ops based on a version the forgotten
//! clients may have seen are refused (`VERSION_CONFLICT`, with the current
//! state), its new ops apply. Rows in the earlier format (`{id: seq}`) still
//! read.

mod common;

use common::*;
use serde_json::{json, Value};
use sessile::core::protocol::Message;
use sessile_server::engine::Engine;
use sessile_server::{app_and_engine, bind};

/// A server with a fresh database and the handle of its engine.
async fn start_with_engine() -> (Server, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessile.db");
    let cfg = config(&db);
    let (listener, addr) = bind(&cfg).await.unwrap();
    let (router, engine) = app_and_engine(&cfg).unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (
        Server {
            addr,
            db,
            dir,
            pg: None,
        },
        engine,
    )
}

/// Most clients one session remembers.
const CAP: usize = 1024;

fn clients_text(srv: &Server, s: &Sess) -> String {
    let c = rusqlite::Connection::open(&srv.db).unwrap();
    c.query_row("SELECT clients FROM sessions WHERE id = ?1", [&s.id], |r| {
        r.get(0)
    })
    .unwrap()
}

fn version_of(m: &Message) -> (&'static str, u64) {
    match m {
        Message::Ack(a) if a.duplicate => ("duplicate", a.version),
        Message::Ack(a) => ("ack", a.version),
        Message::Reject(r) if r.code == "VERSION_CONFLICT" => {
            ("conflict", r.current.as_ref().unwrap().version)
        }
        Message::Reject(r) if r.code == "OP_OUT_OF_ORDER" => ("out of order", 0),
        other => panic!("unexpected {other:?}"),
    }
}

async fn send_op(
    addr: std::net::SocketAddr,
    s: &Sess,
    client: &str,
    seq: u64,
    base: u64,
    patch: Value,
) -> Message {
    let a = http_op(addr, s, &op(client, seq, base, patch, None)).await;
    serde_json::from_slice::<Message>(&a.body)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&a.body)))
}

fn version(srv_view: &Value) -> u64 {
    srv_view["version"].as_u64().unwrap()
}

#[tokio::test]
async fn twenty_thousand_clients_leave_a_bounded_counted_map_and_nothing_applies_twice() {
    let (srv, engine) = start_with_engine().await;
    let s = create(srv.addr, json!({"state": {"n": 0}})).await;
    let early = client_id(1);
    for seq in 1..=3 {
        let m = send_op(srv.addr, &s, &early, seq, seq, json!({"n": seq})).await;
        assert_eq!(version_of(&m).0, "ack");
    }
    assert!(clients_text(&srv, &s).contains(&early));

    // 20,000 more client ids, one op each, in one job on the engine (as
    // the ops of many connections would arrive, without their pushes).
    let n = 20_000u64;
    let session = s.id.clone();
    let answers = engine
        .call(move |e| {
            (0..n)
                .map(|i| {
                    let c = format!("{:032x}", 0xabcd_0000_0000_u128 + u128::from(i));
                    let Message::Op(o) = op(&c, 1, 4 + i, json!({}), None) else {
                        unreachable!()
                    };
                    e.op(&session, o, sessile_server::ids::now_ms())
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    for (i, m) in answers.iter().enumerate() {
        assert_eq!(version_of(m), ("ack", 5 + i as u64), "op {i}");
    }
    let text = clients_text(&srv, &s);
    assert!(text.len() < 100 * CAP, "{} bytes", text.len());
    let book: Value = serde_json::from_str(&text).unwrap();
    let entries = book["clients"].as_object().unwrap().len();
    assert!(entries <= CAP, "{entries} clients kept");
    assert!(
        !text.contains(&early),
        "the least recently active went first"
    );

    let stats = admin(srv.addr, "GET", "/v1/admin/stats", &Value::Null)
        .await
        .json();
    assert_eq!(
        stats["clientsBytesMax"].as_u64(),
        Some(text.len() as u64),
        "{stats}"
    );
    assert_eq!(
        stats["clientsBytesTotal"].as_u64(),
        Some(text.len() as u64),
        "{stats}"
    );
    let metrics = admin(srv.addr, "GET", "/metrics", &Value::Null).await;
    assert!(String::from_utf8_lossy(&metrics.body).contains("\nsessile_clients_bytes "));

    // The forgotten early client re-sends its last two ops (their acks were
    // lost): both refused, neither applied again, though after the first
    // the second is the next sequence of a client the book knows again.
    let before = version(&view(srv.addr, &s).await.json());
    for seq in [2, 3] {
        let m = send_op(srv.addr, &s, &early, seq, seq, json!({"n": seq})).await;
        assert_eq!(version_of(&m), ("conflict", before), "op {seq}");
    }
    assert_eq!(
        version(&view(srv.addr, &s).await.json()),
        before,
        "nothing applied"
    );
    // Its next op, made on what the server now shows, applies.
    let m = send_op(srv.addr, &s, &early, 4, before, json!({"n": 4})).await;
    assert_eq!(version_of(&m), ("ack", before + 1));
    let m = send_op(srv.addr, &s, &early, 4, before, json!({"n": 4})).await;
    assert_eq!(version_of(&m).0, "duplicate", "remembered again");
    assert_eq!(view(srv.addr, &s).await.json()["state"], json!({"n": 4}));
}

#[tokio::test]
async fn a_client_silent_for_longer_than_the_ttl_is_pruned() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({"ttlSeconds": 600})).await;
    let (old, new) = (client_id(1), client_id(2));
    for seq in 1..=2 {
        let m = send_op(srv.addr, &s, &old, seq, seq, json!({"a": seq})).await;
        assert_eq!(version_of(&m), ("ack", seq + 1));
    }
    // Its last op was 11 minutes ago (the row is edited, then read again).
    let text = clients_text(&srv, &s);
    let mut book: Value = serde_json::from_str(&text).unwrap();
    let at = book["clients"][&old][1].as_u64().unwrap();
    book["clients"][&old][1] = json!(at - 11 * 60 * 1000);
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET clients = '{book}' WHERE id = '{}'",
            s.id
        ),
    );
    let addr = srv.restart().await;
    assert_eq!(
        version_of(&send_op(addr, &s, &new, 1, 3, json!({"b": 1})).await),
        ("ack", 4)
    );
    let text = clients_text(&srv, &s);
    assert!(!text.contains(&old), "pruned: {text}");
    assert!(text.contains(&new));
    // Coming back, it gets appliedSeq 0. It re-sends both of its ops (their
    // acks were lost): the first is refused, and so is the second, though
    // it is then the next sequence of a client the book knows again and
    // the patch log still reaches its base (it would be rebased over the
    // new client's disjoint change: applied twice).
    let (_ws, welcome) = Ws::hello(addr, &s, &old, 3).await;
    let Message::Welcome(w) = welcome else {
        panic!("{welcome:?}")
    };
    assert_eq!(w.applied_seq, 0);
    for seq in 1..=2 {
        let m = send_op(addr, &s, &old, seq, seq, json!({"a": seq})).await;
        assert_eq!(version_of(&m), ("conflict", 4), "op {seq}");
    }
    // An op made on what the server now shows applies.
    assert_eq!(
        version_of(&send_op(addr, &s, &old, 3, 4, json!({"a": 3})).await),
        ("ack", 5)
    );
    assert_eq!(
        view(addr, &s).await.json()["state"],
        json!({"a": 3, "b": 1})
    );
}

#[tokio::test]
async fn rows_of_the_earlier_format_still_read() {
    let srv = start(|_| {}).await;
    let s = create(srv.addr, json!({})).await;
    let c = client_id(1);
    // The row as an earlier server wrote it: {client id: last sequence}.
    sql(
        &srv.db,
        &format!(
            "UPDATE sessions SET clients = '{{\"{c}\":3}}' WHERE id = '{}'",
            s.id
        ),
    );
    let addr = srv.restart().await;
    assert_eq!(
        version_of(&send_op(addr, &s, &c, 3, 1, json!({"x": 1})).await).0,
        "duplicate"
    );
    assert_eq!(
        version_of(&send_op(addr, &s, &c, 5, 1, json!({"x": 1})).await).0,
        "out of order"
    );
    assert_eq!(
        version_of(&send_op(addr, &s, &c, 4, 1, json!({"x": 1})).await),
        ("ack", 2)
    );
    let (_ws, welcome) = Ws::hello(addr, &s, &c, 2).await;
    let Message::Welcome(w) = welcome else {
        panic!("{welcome:?}")
    };
    assert_eq!(w.applied_seq, 4);
    let book: Value = serde_json::from_str(&clients_text(&srv, &s)).unwrap();
    assert_eq!(
        book["clients"][&c][0], 4,
        "written in the new format: {book}"
    );
}
