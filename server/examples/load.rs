//! Load test of `sessile-server` on loopback (`make load`): starts the
//! release binary on a temporary SQLite file, creates N sessions over HTTP,
//! holds N WebSocket connections open, has each send an op every interval
//! for a fixed time, and writes `bench/out/server.json`: sessions held, ops/s,
//! ack latency p50/p99, server RSS. Bounded: at most 20,000 sessions and
//! `--max-seconds` in all; traffic only to 127.0.0.1.
//!
//! `cargo run --release -p sessile-server --example load -- --server target/release/sessile-server`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use sessile::core::protocol::{decode, encode, Hello, Message, Op, OpId, PROTOCOL_VERSION};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::Message as WsMessage;

const MAX_SESSIONS: usize = 20_000;

struct Args {
    server: PathBuf,
    sessions: usize,
    interval_ms: u64,
    seconds: u64,
    max_seconds: u64,
    out: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        server: "target/release/sessile-server".into(),
        sessions: 10_000,
        interval_ms: 5_000,
        seconds: 30,
        max_seconds: 240,
        out: "bench/out/server.json".into(),
    };
    let mut it = std::env::args().skip(1);
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        match k.as_str() {
            "--server" => a.server = v.into(),
            "--sessions" => a.sessions = v.parse().expect("--sessions N"),
            "--interval-ms" => a.interval_ms = v.parse().expect("--interval-ms N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds N"),
            "--max-seconds" => a.max_seconds = v.parse().expect("--max-seconds N"),
            "--out" => a.out = v.into(),
            _ => panic!("unknown option {k}"),
        }
    }
    a.sessions = a.sessions.min(MAX_SESSIONS);
    a
}

/// One HTTP/1.1 request on a fresh connection; the body of the answer.
async fn post(addr: SocketAddr, path: &str, body: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr).await?;
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).await?;
    Ok(resp
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string())
}

/// Kilobytes of a `/proc/PID/status` field (VmRSS, VmHWM).
fn proc_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    held: AtomicU64,
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    /// When the last ack came, ms after the op window opened.
    last_ack_ms: AtomicU64,
}

/// What every session task shares.
struct Plan {
    addr: SocketAddr,
    interval: Duration,
    start_ops: Instant,
    until: Instant,
    tally: Tally,
}

/// One session: hello (holding a handshake permit until welcomed), then an
/// op every interval until the end; ack latencies in microseconds.
async fn session(
    plan: Arc<Plan>,
    id: String,
    token: String,
    n: u64,
    permit: OwnedSemaphorePermit,
) -> Vec<u32> {
    let (addr, interval, tally) = (plan.addr, plan.interval, &plan.tally);
    let (start_ops, until) = (plan.start_ops, plan.until);
    let mut lat = Vec::new();
    let Ok((ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/v1/ws")).await else {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return lat;
    };
    let (mut tx, mut rx) = ws.split();
    let client = format!("{:032x}", 0x5e55_1e00_0000_0000_u128 + n as u128);
    let hello = Message::Hello(Hello {
        protocol: PROTOCOL_VERSION.into(),
        session: id.clone(),
        token,
        client: client.clone(),
        have_version: 1,
    });
    if tx
        .send(WsMessage::Text(encode(&hello).into()))
        .await
        .is_err()
    {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return lat;
    }
    match rx.next().await {
        Some(Ok(WsMessage::Text(t))) if t.contains("\"welcome\"") => {}
        _ => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            return lat;
        }
    }
    tally.held.fetch_add(1, Ordering::Relaxed);
    drop(permit);
    // Spread the sessions' first ops over one interval.
    let offset = interval
        .mul_f64((n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64);
    let mut next = start_ops + offset;
    let mut seq = 0u64;
    while next < until {
        tokio::time::sleep_until(next.into()).await;
        seq += 1;
        let op = Message::Op(Op {
            id: OpId {
                client: client.clone(),
                seq,
            },
            base: seq,
            patch: json!({ "step": seq, "cart": { "sku": "A-1", "qty": seq % 5 + 1 } }),
            to: None,
        });
        let t0 = Instant::now();
        tally.sent.fetch_add(1, Ordering::Relaxed);
        if tx.send(WsMessage::Text(encode(&op).into())).await.is_err() {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            break;
        }
        loop {
            match rx.next().await {
                Some(Ok(WsMessage::Text(t))) => match decode(t.as_bytes(), usize::MAX) {
                    Ok(Message::Ack(_)) => {
                        lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                        tally.acked.fetch_add(1, Ordering::Relaxed);
                        let at = start_ops.elapsed().as_millis() as u64;
                        tally.last_ack_ms.fetch_max(at, Ordering::Relaxed);
                        break;
                    }
                    Ok(Message::Patch(_) | Message::Pong(_)) => continue,
                    _ => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                },
                Some(Ok(_)) => continue,
                _ => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                    return lat;
                }
            }
        }
        next += interval;
    }
    // Stay connected until everyone is done, so "held" means held at once.
    tokio::time::sleep_until(until.into()).await;
    let _ = tx.send(WsMessage::Close(None)).await;
    lat
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let a = args();
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let dir = std::env::temp_dir().join(format!("sessile-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut server = tokio::process::Command::new(&a.server)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--heartbeat-ms",
            "60000",
        ])
        .args([
            "--max-sessions-per-key",
            "100000",
            "--sweep-every-secs",
            "0",
        ])
        // Every session and connection comes from 127.0.0.1, all at once:
        // lift the per-address limits (docs/PROTOCOL.md, "Limits").
        .args([
            "--creates-per-minute-per-ip",
            "0",
            "--ws-per-ip",
            "0",
            "--ws-unauthenticated-per-ip",
            "0",
            "--ws-unauthenticated",
            "0",
        ])
        .arg("--db")
        .arg(dir.join("load.db"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start the server (build it first)");
    let pid = server.id().unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next_line().await.unwrap().expect("server exited");
        if let Some(rest) = line.strip_prefix("sessile-server listening on http://") {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    assert!(addr.ip().is_loopback(), "load only ever goes to loopback");
    let rss_idle = proc_kb(pid, "VmRSS:");

    // Create the sessions, 64 requests at a time.
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let mut creates = Vec::new();
    for i in 0..a.sessions {
        let gate = gate.clone();
        creates.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let body = post(
                addr,
                "/v1/sessions",
                &format!(r#"{{"key":"load-{i}","state":{{"step":0}}}}"#),
            )
            .await
            .ok()?;
            let v: serde_json::Value = serde_json::from_str(&body).ok()?;
            Some((
                v["id"].as_str()?.to_string(),
                v["token"].as_str()?.to_string(),
            ))
        }));
    }
    let mut made = Vec::new();
    for c in creates {
        if let Ok(Some(s)) = c.await {
            made.push(s);
        }
    }
    let create_s = t0.elapsed().as_secs_f64();
    let created = made.len();
    eprintln!("created {} sessions in {create_s:.1} s", made.len());

    // Connect them all (200 handshakes at a time), then run ops for `seconds`.
    let interval = Duration::from_millis(a.interval_ms);
    let connect_budget = Duration::from_secs((a.sessions as u64 / 250).max(20));
    let start_ops = Instant::now() + connect_budget;
    let until = (start_ops + Duration::from_secs(a.seconds)).min(deadline);
    let plan = Arc::new(Plan {
        addr,
        interval,
        start_ops,
        until,
        tally: Tally::default(),
    });
    let tally = &plan.tally;
    let gate = Arc::new(Semaphore::new(200));
    let mut tasks = Vec::new();
    for (n, (id, token)) in made.into_iter().enumerate() {
        let permit = gate.clone().acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(session(
            plan.clone(),
            id,
            token,
            n as u64,
            permit,
        )));
    }
    tokio::time::sleep_until(start_ops.into()).await;
    let held_at_start = tally.held.load(Ordering::Relaxed);
    eprintln!(
        "{held_at_start} WebSocket sessions held; sending ops for {} s",
        a.seconds
    );
    tokio::time::sleep_until(until.into()).await;
    let rss_loaded = proc_kb(pid, "VmRSS:");
    let mut lat: Vec<u32> = Vec::new();
    for t in tasks {
        if let Ok(Ok(l)) = tokio::time::timeout_at(deadline.into(), t).await {
            lat.extend(l);
        }
    }
    lat.sort_unstable();
    let ops_s =
        tally.acked.load(Ordering::Relaxed) as f64 / until.duration_since(start_ops).as_secs_f64();
    let report = json!({
        "sessionsTarget": a.sessions,
        "sessionsCreated": created,
        "sessionsConnected": tally.held.load(Ordering::Relaxed),
        "sessionsHeld": held_at_start,
        "createSeconds": (create_s * 10.0).round() / 10.0,
        "opIntervalMs": a.interval_ms,
        "opSeconds": a.seconds,
        "opsSent": tally.sent.load(Ordering::Relaxed),
        "opsAcked": tally.acked.load(Ordering::Relaxed),
        "opsPerSecond": ops_s.round(),
        "ackMs": { "p50": pct(&lat, 0.5), "p90": pct(&lat, 0.9), "p99": pct(&lat, 0.99), "max": pct(&lat, 1.0) },
        "errors": tally.errors.load(Ordering::Relaxed),
        "serverRssMb": { "idle": rss_idle / 1024, "loaded": rss_loaded / 1024, "peak": proc_kb(pid, "VmHWM:") / 1024 },
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "note": "client and server share the machine's cores; loopback only; SQLite synchronous=FULL",
    });
    let _ = server.start_kill();
    let _ = std::fs::remove_dir_all(&dir);
    if let Some(parent) = a.out.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(
        &a.out,
        serde_json::to_string_pretty(&report).unwrap() + "\n",
    )
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
