//! Load test of `sessile-server` on loopback (`make load`): starts the
//! `server`-profile binary on a temporary SQLite file (`--backend sqlite`, the
//! default), or `--instances N` of it on one throwaway PostgreSQL cluster
//! (`--backend postgres`: `initdb` in a temporary directory, as the tests'
//! `server/tests/common/pg.rs` does), creates N sessions over HTTP, holds N
//! WebSocket connections open (session `i` on instance `i mod N`, for its
//! creation too), has each send an op every interval for a fixed time, and
//! writes `bench/out/server.json`: backend, instances, sessions held, ops/s,
//! ack latency p50/p99, server RSS (summed over the instances). Bounded: at
//! most 20,000 sessions and `--max-seconds` in all; traffic only to
//! 127.0.0.1. SQLite is one file in one process: more than one instance
//! on it is refused.
//!
//! Each session is the client's real link engine
//! ([`sessile::core::session::link::Link`], sans-IO) driven over
//! tokio-tungstenite: the engine writes `hello`, the ops and the pongs,
//! reads every frame, and decides when to reconnect; this file only moves
//! its frames to and from a socket, gives it the clock and the changes, and
//! counts its events.
//!
//! `cargo run --profile server -p sessile-server --example load -- --server target/server/sessile-server`

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use sessile::core::session::link::{
    empty_state, Link, LinkConfig, LinkEvent, LinkState, Outbox, Transmit, Transport,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

#[allow(dead_code)] // The tests' helpers this client does not need.
#[path = "../tests/common/pg.rs"]
mod pg;

const MAX_SESSIONS: usize = 20_000;
/// Most server instances.
const MAX_INSTANCES: usize = 8;
/// The heartbeat interval the server tells its clients (and the links use):
/// long, so that pings do not add to the ops being measured.
const HEARTBEAT_MS: u64 = 60_000;

/// Where the sessions are kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

struct Args {
    server: PathBuf,
    backend: Backend,
    instances: usize,
    sessions: usize,
    interval_ms: u64,
    seconds: u64,
    max_seconds: u64,
    out: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        server: "target/server/sessile-server".into(),
        backend: Backend::Sqlite,
        instances: 1,
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
            "--backend" => {
                a.backend = match v.as_str() {
                    "sqlite" => Backend::Sqlite,
                    "postgres" => Backend::Postgres,
                    _ => fail(&format!("--backend must be sqlite or postgres, not `{v}`")),
                }
            }
            "--instances" => {
                a.instances = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_INSTANCES).contains(n))
                    .unwrap_or_else(|| {
                        fail(&format!(
                            "--instances must be 1 to {MAX_INSTANCES}, not `{v}`"
                        ))
                    })
            }
            "--sessions" => a.sessions = v.parse().expect("--sessions N"),
            "--interval-ms" => a.interval_ms = v.parse().expect("--interval-ms N"),
            "--seconds" => a.seconds = v.parse().expect("--seconds N"),
            "--max-seconds" => a.max_seconds = v.parse().expect("--max-seconds N"),
            "--out" => a.out = v.into(),
            _ => panic!("unknown option {k}"),
        }
    }
    a.sessions = a.sessions.min(MAX_SESSIONS);
    if a.backend == Backend::Sqlite && a.instances > 1 {
        fail(
            "--instances above 1 needs --backend postgres: SQLite is one file that one \
             server process owns",
        );
    }
    a
}

/// Says why the arguments are refused, and exits 2.
fn fail(why: &str) -> ! {
    eprintln!("load: {why}");
    std::process::exit(2)
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
    /// The instances; session `n` uses `addrs[n % len]`.
    addrs: Vec<SocketAddr>,
    /// The links' clock: ms since this instant.
    epoch: Instant,
    /// The server's heartbeat interval, which the links use too.
    heartbeat_ms: u64,
    interval: Duration,
    start_ops: Instant,
    until: Instant,
    tally: Tally,
}

impl Plan {
    /// The links' clock now, in ms.
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The instant of the links' clock reading `ms` (never past `until`).
    fn instant(&self, ms: u64) -> Instant {
        self.epoch
            .checked_add(Duration::from_millis(ms))
            .map_or(self.until, |t| t.min(self.until))
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The sockets' buffers: 4 KiB, as the server's. tungstenite zero-fills its
/// read buffer up to `read_buffer_size` before every read; at the default
/// 128 KiB that memset alone took a third of a core at 10,000 ops/s, CPU
/// the client then took from the server it measures.
fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
}

/// The next message of the open socket; never, when none is open.
async fn next_message(
    socket: &mut Option<Socket>,
) -> Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>> {
    match socket {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

/// One session, driven by the link engine: it connects (holding a
/// handshake permit until its first attempt ends), then submits a change
/// every interval until the end; ack latencies in microseconds, from the
/// change to the engine's `StateSynchronized` that confirms it, each with
/// the second of the run its change was made in.
async fn session(
    plan: Arc<Plan>,
    id: String,
    token: String,
    n: u64,
    permit: OwnedSemaphorePermit,
) -> Vec<(u32, u32)> {
    let (interval, tally) = (plan.interval, &plan.tally);
    let (start_ops, until) = (plan.start_ops, plan.until);
    let addr = plan.addrs[n as usize % plan.addrs.len()];
    let url = format!("ws://{addr}/v1/ws");
    let mut lat = Vec::new();
    let client = format!("{:032x}", 0x5e55_1e00_0000_0000_u128 + n as u128);
    let Ok(outbox) = Outbox::new(&client) else {
        tally.errors.fetch_add(1, Ordering::Relaxed);
        return lat;
    };
    let mut cfg = LinkConfig::new(&id, &token, n);
    cfg.heartbeat_ms = plan.heartbeat_ms;
    // WebSocket only, opened inline: no race against HTTP.
    cfg.ws_race_ms = cfg.connect_timeout_ms;
    let mut link = Link::new(cfg, outbox, 0, empty_state());
    let mut socket: Option<Socket> = None;
    let mut permit = Some(permit);
    // When each change not yet confirmed was submitted, oldest first.
    let mut unconfirmed: VecDeque<Instant> = VecDeque::new();
    // Spread the sessions' first ops over one interval.
    let offset = interval
        .mul_f64((n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64);
    let mut next_op = start_ops + offset;
    let mut seq = 0u64;
    link.handle_open(plan.now());
    loop {
        while let Some(t) = link.poll_transmit() {
            match t {
                Transmit::Open(Transport::WebSocket) => {
                    match tokio_tungstenite::connect_async_with_config(
                        url.as_str(),
                        Some(small_buffers()),
                        false,
                    )
                    .await
                    {
                        Ok((ws, _)) => {
                            socket = Some(ws);
                            link.handle_connected(Transport::WebSocket, plan.now());
                        }
                        Err(_) => {
                            tally.errors.fetch_add(1, Ordering::Relaxed);
                            link.handle_closed(plan.now());
                        }
                    }
                }
                // This client has WebSocket only: an HTTP attempt fails at once.
                Transmit::Open(_) => link.handle_closed(plan.now()),
                Transmit::Send(frame) => {
                    let sent = match socket.as_mut() {
                        Some(ws) => ws.send(WsMessage::Text(frame.into())).await.is_ok(),
                        None => false,
                    };
                    if !sent && socket.take().is_some() {
                        link.handle_closed(plan.now());
                    }
                }
                Transmit::Close => {
                    if let Some(mut ws) = socket.take() {
                        let _ = ws.close(None).await;
                    }
                }
                _ => {}
            }
        }
        while let Some(event) = link.poll_event() {
            match event {
                LinkEvent::ConnectionEstablished { .. } => {
                    tally.held.fetch_add(1, Ordering::Relaxed);
                }
                LinkEvent::StateSynchronized { confirmed, .. } => {
                    for t0 in unconfirmed.drain(..confirmed.min(unconfirmed.len())) {
                        let second = t0.saturating_duration_since(start_ops).as_secs() as u32;
                        lat.push((
                            second,
                            t0.elapsed().as_micros().min(u32::MAX as u128) as u32,
                        ));
                        tally.acked.fetch_add(1, Ordering::Relaxed);
                        let at = start_ops.elapsed().as_millis() as u64;
                        tally.last_ack_ms.fetch_max(at, Ordering::Relaxed);
                    }
                }
                LinkEvent::ConnectionLost { .. }
                | LinkEvent::AuthFailed { .. }
                | LinkEvent::Conflict { .. }
                | LinkEvent::ErrorOccurred { .. } => {
                    tally.errors.fetch_add(1, Ordering::Relaxed);
                }
                _ => {}
            }
        }
        match link.state() {
            LinkState::Connecting { .. } | LinkState::Handshaking { .. } => {}
            // The first attempt is over: let the next session's handshake start.
            LinkState::Stopped { .. } => break,
            _ => drop(permit.take()),
        }
        let wake = link.poll_timeout().map_or(until, |ms| plan.instant(ms));
        tokio::select! {
            message = next_message(&mut socket) => match message {
                Some(Ok(WsMessage::Text(text))) => link.handle_frame(text.as_bytes(), plan.now()),
                Some(Ok(WsMessage::Close(_)) | Err(_)) | None => {
                    socket = None;
                    link.handle_closed(plan.now());
                }
                Some(Ok(_)) => {}
            },
            _ = tokio::time::sleep_until(wake.into()) => link.handle_timeout(plan.now()),
            _ = tokio::time::sleep_until(next_op.into()), if next_op < until => {
                seq += 1;
                let patch = json!({ "step": seq, "cart": { "sku": "A-1", "qty": seq % 5 + 1 } });
                match link.submit(patch, None, plan.now()) {
                    Ok(_) => {
                        unconfirmed.push_back(Instant::now());
                        tally.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        tally.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                next_op += interval;
            }
            // Stay connected until everyone is done, so "held" means held at once.
            _ = tokio::time::sleep_until(until.into()) => break,
        }
    }
    if let Some(mut ws) = socket.take() {
        let _ = ws.close(None).await;
    }
    lat
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// The acks of the ops sent in each second of the run (by when they were
/// sent): how many, and their p50, p99 and max in ms. Shows whether the
/// slowest acks are spread out or come from a few stalls.
fn by_second(timed: &mut [(u32, u32)]) -> Vec<Value> {
    timed.sort_unstable();
    timed
        .chunk_by(|a, b| a.0 == b.0)
        .map(|chunk| {
            let lat: Vec<u32> = chunk.iter().map(|&(_, us)| us).collect();
            json!({
                "second": chunk[0].0,
                "acks": lat.len(),
                "p50": pct(&lat, 0.5),
                "p99": pct(&lat, 0.99),
                "max": pct(&lat, 1.0),
            })
        })
        .collect()
}

/// Starts instance `i` of the server: on `url`'s PostgreSQL database, or on
/// a SQLite file in `dir`; the child and the address it listens on.
async fn spawn_server(
    a: &Args,
    dir: &std::path::Path,
    url: Option<&str>,
    i: usize,
) -> (tokio::process::Child, SocketAddr) {
    let mut cmd = tokio::process::Command::new(&a.server);
    cmd.args([
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--heartbeat-ms",
        &HEARTBEAT_MS.to_string(),
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
    .arg(dir.join(format!("load-{i}.db")))
    .stdout(Stdio::piped())
    .kill_on_drop(true);
    match url {
        Some(url) => cmd.env("SESSILE_DATABASE_URL", url),
        None => cmd.env_remove("SESSILE_DATABASE_URL"),
    };
    let mut server = cmd
        .spawn()
        .expect("cannot start the server (build it first)");
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let addr: SocketAddr = loop {
        let line = lines.next_line().await.unwrap().expect("server exited");
        if let Some(rest) = line.strip_prefix("sessile-server listening on http://") {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    assert!(addr.ip().is_loopback(), "load only ever goes to loopback");
    // Keep reading its output, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (server, addr)
}

#[tokio::main]
async fn main() {
    let a = args();
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds);
    let dir = std::env::temp_dir().join(format!("sessile-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // PostgreSQL: one throwaway cluster (dropped, so stopped and deleted,
    // at the end) and one database that every instance shares.
    let cluster = (a.backend == Backend::Postgres).then(pg::Cluster::start);
    let url = cluster.as_ref().map(|c| c.url(&c.create_db()));
    let mut servers = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..a.instances {
        let (server, addr) = spawn_server(&a, &dir, url.as_deref(), i).await;
        servers.push(server);
        addrs.push(addr);
    }
    let pids: Vec<u32> = servers.iter().filter_map(|s| s.id()).collect();
    let rss = |field: &str| pids.iter().map(|pid| proc_kb(*pid, field)).sum::<u64>();
    let rss_idle = rss("VmRSS:");

    // Create the sessions, 64 requests at a time.
    let t0 = Instant::now();
    let gate = Arc::new(Semaphore::new(64));
    let mut creates = Vec::new();
    for i in 0..a.sessions {
        let gate = gate.clone();
        let addr = addrs[i % addrs.len()];
        creates.push(tokio::spawn(async move {
            let _p = gate.acquire().await.unwrap();
            let body = post(
                addr,
                "/v1/sessions",
                &format!(r#"{{"key":"load-{i}","state":{{"step":0}}}}"#),
            )
            .await
            .ok()?;
            let v: Value = serde_json::from_str(&body).ok()?;
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
        addrs,
        epoch: Instant::now(),
        heartbeat_ms: HEARTBEAT_MS,
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
    let rss_loaded = rss("VmRSS:");
    let mut timed: Vec<(u32, u32)> = Vec::new();
    for t in tasks {
        if let Ok(Ok(l)) = tokio::time::timeout_at(deadline.into(), t).await {
            timed.extend(l);
        }
    }
    let by_second = by_second(&mut timed);
    let mut lat: Vec<u32> = timed.iter().map(|&(_, us)| us).collect();
    lat.sort_unstable();
    let ops_s =
        tally.acked.load(Ordering::Relaxed) as f64 / until.duration_since(start_ops).as_secs_f64();
    let note = match a.backend {
        Backend::Sqlite => "client and server share the machine's cores; loopback only; \
             SQLite, WAL with synchronous=FULL (an fsync per group commit)"
            .to_string(),
        Backend::Postgres => format!(
            "client, {} server instance(s) and PostgreSQL share the machine's cores; \
             loopback only; PostgreSQL with fsync=on and synchronous_commit=on; \
             server RSS summed over the instances",
            a.instances
        ),
    };
    let report = json!({
        "backend": a.backend.name(),
        "instances": a.instances,
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
        "ackMsBySecond": by_second,
        "errors": tally.errors.load(Ordering::Relaxed),
        "serverRssMb": { "idle": rss_idle / 1024, "loaded": rss_loaded / 1024, "peak": rss("VmHWM:") / 1024 },
        "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "note": note,
    });
    for mut server in servers {
        let _ = server.start_kill();
        let _ = server.wait().await;
    }
    drop(cluster);
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
