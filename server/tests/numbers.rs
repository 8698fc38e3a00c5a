//! Numbers come back bit for bit: thousands of doubles from a deterministic
//! generator (every exponent, subnormals, the extremes, -0.0, amounts in
//! cents, and 190.62609999999998, which a parser without `float_roundtrip`
//! turns into 190.6261) go in through create and an op, and come out of GET,
//! a WebSocket push, the SQLite file's text and a restart with the same
//! bits (`f64::to_bits`). The answers are read with the standard library's
//! float parser, not serde_json's, so the check does not lean on the
//! parser under test.

mod common;

use common::*;
use serde_json::{json, Value};
use sessile::core::protocol::Message;

/// SplitMix64: the same doubles on every run.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `n` doubles: the hard cases first, then random bit patterns (all
/// exponents), random subnormals and random amounts in cents.
fn doubles(seed: u64, n: usize) -> Vec<f64> {
    let mut out = vec![
        190.62609999999998,
        5e-324,
        -5e-324,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        2.2250738585072014e-308,
        2.225073858507201e-308,
        -0.0,
        0.0,
        0.1,
        0.30000000000000004,
        9007199254740993.0,
        1e23,
        8.41e21,
        5.0e-310,
    ];
    let mut rng = SplitMix(seed);
    while out.len() < n {
        let bits = rng.next();
        let d = match out.len() % 4 {
            0 | 1 => f64::from_bits(bits),
            2 => f64::from_bits(bits & 0x800F_FFFF_FFFF_FFFF), // subnormal
            _ => (bits % 10_000_000) as f64 / 100.0 * 1.1,     // amounts, with rounding error
        };
        if d.is_finite() {
            out.push(d);
        }
    }
    out
}

/// The numbers of the array at `"key":[` in JSON `text`, parsed by the
/// standard library.
fn numbers_at(text: &str, key: &str) -> Vec<f64> {
    let start = text
        .find(&format!("\"{key}\":["))
        .unwrap_or_else(|| panic!("no {key} in {}", &text[..text.len().min(200)]))
        + key.len()
        + 4;
    let end = start + text[start..].find(']').unwrap();
    text[start..end]
        .split(',')
        .map(|n| {
            n.trim()
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("not a number: {n}"))
        })
        .collect()
}

fn same_bits(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{what}: count");
    let changed: Vec<String> = got
        .iter()
        .zip(want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .take(5)
        .map(|(g, w)| format!("{w:?} came back as {g:?}"))
        .collect();
    let n = got
        .iter()
        .zip(want)
        .filter(|(g, w)| g.to_bits() != w.to_bits())
        .count();
    assert!(
        changed.is_empty(),
        "{what}: {n} of {} doubles changed, e.g. {changed:?}",
        want.len()
    );
}

fn sql_text(db: &std::path::Path, sql: &str) -> String {
    let c = rusqlite::Connection::open(db).unwrap();
    c.query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn doubles_come_back_bit_for_bit() {
    let srv = start(|_| {}).await;
    let created = doubles(1, 3000);
    let patched = doubles(2, 3000);
    let s = create(srv.addr, json!({"state": {"created": created}})).await;

    // A second client listens, to see the op's patch pushed.
    let (mut listener, _) = Ws::hello(srv.addr, &s, &client_id(2), 1).await;
    let a = http_op(
        srv.addr,
        &s,
        &op(&client_id(1), 1, 1, json!({"patched": patched}), None),
    )
    .await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let pushed = match listener.recv().await.unwrap() {
        Message::Patch(p) => serde_json::to_string(&p.patch).unwrap(),
        other => panic!("expected the patch, got {other:?}"),
    };
    same_bits("push", &numbers_at(&pushed, "patched"), &patched);

    let check = |what: &str, text: &str| {
        same_bits(
            &format!("{what}, created"),
            &numbers_at(text, "created"),
            &created,
        );
        same_bits(
            &format!("{what}, patched"),
            &numbers_at(text, "patched"),
            &patched,
        );
    };
    let got = view(srv.addr, &s).await;
    assert_eq!(got.status, 200);
    check("GET", &String::from_utf8_lossy(&got.body));

    // The store's JSON text, read straight from the file.
    let row = sql_text(
        &srv.db,
        &format!("SELECT state FROM sessions WHERE id = '{}'", s.id),
    );
    check("SQLite state", &row);
    let logged = sql_text(
        &srv.db,
        &format!(
            "SELECT patch FROM patches WHERE session_id = '{}' AND version = 2",
            s.id
        ),
    );
    same_bits(
        "SQLite patch log",
        &numbers_at(&logged, "patched"),
        &patched,
    );

    // A restart reads everything back from the file.
    let after = srv.restart().await;
    let got = view(after, &s).await;
    assert_eq!(got.status, 200);
    check("GET after a restart", &String::from_utf8_lossy(&got.body));
    // So does a catch-up after the restart (the patch log, then the state).
    let path = format!("/v1/sessions/{}/changes?since=1", s.id);
    let caught_up = call(after, "GET", &path, &s, &Value::Null).await;
    same_bits(
        "catch-up after a restart",
        &numbers_at(&String::from_utf8_lossy(&caught_up.body), "patched"),
        &patched,
    );
}
