//! Deterministic simulation of the client link (`src/core/link`) against an
//! in-memory model of the server, over a simulated network with latency,
//! duplication, half-open and silently dead connections, partitions, server
//! restarts, page reloads and offline spells, on a virtual clock driven by a
//! seed. A failing run names its seed; `LINK_SIM_SEED=n` replays only it,
//! `LINK_SIM_SEEDS=n` runs seeds 1 to n (1,000 by default, each with 300
//! simulated seconds of faults; `LINK_SIM_CHAOS_S` changes that), and
//! `LINK_SIM_REPORT=path` writes the totals as JSON (`make bench` reads the
//! worst dead-link detection from it; `make soak` runs 10,000 seeds of 900 s).

use std::collections::VecDeque;

use serde_json::{json, Value};
use sessile::core::link::{
    empty_state, Link, LinkConfig, LinkEvent, LinkState, LossReason, Outbox, Transmit, Transport,
};
use sessile::core::merge_patch;
use sessile::core::protocol::{
    self, Ack, CatchUp, ErrorFrame, LoggedPatch, Message, Pong, Reject, Welcome, PROTOCOL_VERSION,
};

const CLIENT: &str = "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47";
const SESSION: &str = "0123456789abcdef0123456789abcdef";
const HB: u64 = 5_000;
const CAP: u64 = 30_000;
const LOG_LEN: usize = 64;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 > 1.0 - p
    }
}

/// The server: durable across restarts (as SQLite is), exactly-once per
/// (client, seq), a bounded patch log for catch-up.
struct Server {
    up: bool,
    version: u64,
    state: Value,
    log: VecDeque<LoggedPatch>,
    last_seq: u64,
    /// The client's op patches in the order they were applied.
    applied: Vec<Value>,
    other: u64,
}

impl Server {
    fn new() -> Self {
        Server {
            up: true,
            version: 1,
            state: json!({}),
            log: VecDeque::new(),
            last_seq: 0,
            applied: Vec::new(),
            other: 0,
        }
    }

    fn commit(&mut self, patch: Value) -> LoggedPatch {
        merge_patch::apply(&mut self.state, &patch);
        self.version += 1;
        let p = LoggedPatch {
            version: self.version,
            patch,
            status: None,
            op: None,
        };
        self.log.push_back(p.clone());
        if self.log.len() > LOG_LEN {
            self.log.pop_front();
        }
        p
    }

    /// A change by someone else (another client, the server itself).
    fn write_other(&mut self) -> LoggedPatch {
        self.other += 1;
        let n = self.other;
        self.commit(json!({"o": {"last": n, format!("k{}", n % 7): n}}))
    }

    /// Answers to one client frame on a connection.
    fn handle(&mut self, frame: &str, hello_done: &mut bool, now: u64) -> Vec<Message> {
        let msg = protocol::decode(frame.as_bytes(), 1 << 20).expect("client frames decode");
        match msg {
            Message::Hello(h) => {
                *hello_done = true;
                let have = h.have_version;
                let catch_up = CatchUp::since(have, self.version, &self.log, || self.state.clone());
                vec![Message::Welcome(Welcome {
                    protocol: PROTOCOL_VERSION,
                    version: self.version,
                    status: "cart".into(),
                    expires_at: 0,
                    heartbeat_ms: HB,
                    applied_seq: self.last_seq,
                    server_time: now,
                    catch_up,
                })]
            }
            _ if !*hello_done => vec![Message::Error(ErrorFrame {
                code: "PROTOCOL_ERROR".into(),
                message: "hello first".into(),
                retryable: false,
            })],
            Message::Op(op) => {
                let id = op.id.clone();
                if op.id.seq <= self.last_seq {
                    vec![Message::Ack(Ack {
                        id,
                        version: self.version,
                        duplicate: true,
                        rebased: false,
                    })]
                } else if op.id.seq == self.last_seq + 1 {
                    self.last_seq += 1;
                    self.applied.push(op.patch.clone());
                    let p = self.commit(op.patch);
                    vec![Message::Ack(Ack {
                        id,
                        version: p.version,
                        duplicate: false,
                        rebased: op.base < p.version - 1,
                    })]
                } else {
                    let e = sessile::SessileError::OpOutOfOrder {
                        expected: self.last_seq + 1,
                        got: op.id.seq,
                    };
                    vec![Message::Reject(Reject::new(id, &e, None))]
                }
            }
            Message::Ping(p) => vec![Message::Pong(Pong {
                ts: p.ts,
                server_ts: now,
            })],
            _ => vec![],
        }
    }
}

struct Conn {
    id: u64,
    c2s: VecDeque<(u64, String)>,
    s2c: VecDeque<(u64, String)>,
    c2s_dead: bool,
    /// Since when nothing reaches the client (a silently dead link).
    s2c_dead_since: Option<u64>,
    hello_done: bool,
    transport: Transport,
}

#[derive(Clone, Copy)]
struct Knobs {
    lat_min: u64,
    lat_max: u64,
    dup: f64,
    ws_blocked: bool,
    /// HTTP frames may overtake each other.
    reorder: bool,
    faults: bool,
    /// Close every connection right after its welcome (the reconnect loop).
    drop_after_welcome: bool,
}

struct Sim {
    seed: u64,
    rng: Rng,
    now: u64,
    link: Link,
    server: Server,
    conns: Vec<Conn>,
    next_conn: u64,
    current: Option<u64>,
    pending_open: Option<(u64, Transport)>,
    close_notice: Option<(u64, u64)>,
    partition_until: u64,
    down_until: u64,
    online_at: Option<u64>,
    next_submit: u64,
    next_other: u64,
    next_fault: u64,
    submitting: bool,
    /// Other writers change the session.
    writing: bool,
    submitted: u64,
    last_inbound: u64,
    knobs: Knobs,
    // What was observed.
    reconnects: u64,
    dead_noticed: u64,
    worst_dead_ms: u64,
    backoffs: u64,
    max_backoff: u64,
    reloads: u64,
    restarts: u64,
    fell_back: bool,
}

impl Sim {
    fn new(seed: u64, knobs: Knobs) -> Self {
        let mut rng = Rng(seed);
        let link = new_link(rng.next(), Outbox::new(CLIENT).unwrap(), 0, empty_state());
        Sim {
            seed,
            rng,
            now: 0,
            link,
            server: Server::new(),
            conns: Vec::new(),
            next_conn: 1,
            current: None,
            pending_open: None,
            close_notice: None,
            partition_until: 0,
            down_until: 0,
            online_at: None,
            next_submit: 100,
            next_other: 1_000,
            next_fault: 20_000,
            submitting: true,
            writing: true,
            submitted: 0,
            last_inbound: 0,
            knobs,
            reconnects: 0,
            dead_noticed: 0,
            worst_dead_ms: 0,
            backoffs: 0,
            max_backoff: 0,
            reloads: 0,
            restarts: 0,
            fell_back: false,
        }
    }

    fn lat(&mut self) -> u64 {
        self.rng.range(self.knobs.lat_min, self.knobs.lat_max)
    }

    fn conn(&mut self, id: u64) -> Option<&mut Conn> {
        self.conns.iter_mut().find(|c| c.id == id)
    }

    fn next_time(&self, end: u64) -> u64 {
        let mut t = end;
        let mut at = |x: Option<u64>| {
            if let Some(x) = x {
                t = t.min(x);
            }
        };
        at(self.link.poll_timeout());
        at(self.pending_open.map(|p| p.0));
        at(self.close_notice.map(|p| p.0));
        at(self.online_at);
        for c in &self.conns {
            at(c.c2s.front().map(|f| f.0));
            at(c.s2c.front().map(|f| f.0));
        }
        if self.submitting {
            at(Some(self.next_submit));
        }
        if self.writing {
            at(Some(self.next_other));
        }
        if self.knobs.faults {
            at(Some(self.next_fault));
        }
        if !self.server.up {
            at(Some(self.down_until));
        }
        t.max(self.now)
    }

    fn run(&mut self, until: u64) {
        while self.now < until {
            self.now = self.next_time(until);
            self.step();
        }
    }

    fn step(&mut self) {
        let now = self.now;
        if !self.server.up && now >= self.down_until {
            self.server.up = true;
        }
        if self.online_at.is_some_and(|t| now >= t) {
            self.online_at = None;
            self.link.handle_online(true, now);
            self.drain();
        }
        if let Some((at, transport)) = self.pending_open {
            if now >= at {
                self.pending_open = None;
                let ok = self.server.up
                    && now >= self.partition_until
                    && !(transport == Transport::WebSocket && self.knobs.ws_blocked)
                    && self.rng.chance(0.97);
                if ok {
                    let id = self.next_conn;
                    self.next_conn += 1;
                    self.conns.push(Conn {
                        id,
                        c2s: VecDeque::new(),
                        s2c: VecDeque::new(),
                        c2s_dead: false,
                        s2c_dead_since: None,
                        hello_done: false,
                        transport,
                    });
                    self.current = Some(id);
                    self.last_inbound = now;
                    self.link.handle_connected(transport, now);
                } else {
                    self.link.handle_closed(now);
                }
                self.drain();
            }
        }
        if let Some((at, id)) = self.close_notice {
            if now >= at {
                self.close_notice = None;
                if self.current == Some(id) {
                    self.current = None;
                    self.link.handle_closed(now);
                    self.drain();
                }
            }
        }
        self.deliver();
        if self.link.poll_timeout().is_some_and(|t| now >= t) {
            self.link.handle_timeout(now);
            self.drain();
        }
        if self.submitting && now >= self.next_submit {
            let i = self.submitted;
            self.submitted += 1;
            let patch = json!({"c": {format!("k{i}"): i}});
            self.link.submit(patch, None, now).unwrap();
            self.drain();
            self.next_submit = now + self.rng.range(50, 4_000);
        }
        if self.writing && now >= self.next_other {
            self.next_other = now + self.rng.range(1_000, 15_000);
            if self.server.up {
                let p = self.server.write_other();
                self.push_to_all(Message::Patch(p));
            }
        }
        if self.knobs.faults && now >= self.next_fault {
            self.next_fault = now + self.rng.range(5_000, 60_000);
            self.fault();
        }
        self.prune();
        self.check();
    }

    fn push_to_all(&mut self, msg: Message) {
        let frame = protocol::encode(&msg);
        let ids: Vec<u64> = self
            .conns
            .iter()
            .filter(|c| c.hello_done)
            .map(|c| c.id)
            .collect();
        for id in ids {
            self.send_s2c(id, frame.clone());
        }
    }

    fn send_s2c(&mut self, id: u64, frame: String) {
        self.send_on(id, frame, false);
    }

    /// Queues a frame with latency, sometimes twice. A WebSocket keeps
    /// order; HTTP requests and responses overtake each other when the
    /// seed says so.
    fn send_on(&mut self, id: u64, frame: String, to_server: bool) {
        let at = self.now + self.lat();
        let dup = self.rng.chance(self.knobs.dup);
        let dup_at = self.now + self.lat();
        let reorder = self.knobs.reorder;
        let c = self.conn(id).unwrap();
        let fifo = !(reorder && c.transport == Transport::Http);
        let q = if to_server { &mut c.c2s } else { &mut c.s2c };
        let queue_at = |q: &mut VecDeque<(u64, String)>, at: u64, f: String| {
            let at = if fifo {
                at.max(q.back().map_or(0, |f| f.0))
            } else {
                at
            };
            let pos = q.iter().position(|x| x.0 > at).unwrap_or(q.len());
            q.insert(pos, (at, f));
        };
        if dup {
            queue_at(q, dup_at, frame.clone());
        }
        queue_at(q, at, frame);
    }

    fn deliver(&mut self) {
        let now = self.now;
        // Client to server, connection by connection, in order.
        let mut answers: Vec<(u64, Message)> = Vec::new();
        for c in &mut self.conns {
            while c.c2s.front().is_some_and(|f| f.0 <= now) {
                let (_, frame) = c.c2s.pop_front().unwrap();
                if c.c2s_dead || !self.server.up {
                    continue;
                }
                for m in self.server.handle(&frame, &mut c.hello_done, now) {
                    answers.push((c.id, m));
                }
            }
        }
        for (id, m) in answers {
            if self.knobs.drop_after_welcome && matches!(m, Message::Welcome(_)) {
                let at = self.now + 2 * self.knobs.lat_max + 1;
                self.close_notice = Some((at, id));
            }
            self.send_s2c(id, protocol::encode(&m));
        }
        // Server to client: only the link's current transport is listened to.
        let mut inbound = Vec::new();
        for c in &mut self.conns {
            while c.s2c.front().is_some_and(|f| f.0 <= now) {
                let (_, frame) = c.s2c.pop_front().unwrap();
                if Some(c.id) == self.current && c.s2c_dead_since.is_none() {
                    inbound.push(frame);
                }
            }
        }
        for frame in inbound {
            self.last_inbound = now;
            self.link.handle_frame(frame.as_bytes(), now);
            self.drain();
        }
    }

    /// Carries out the link's actions and checks its events.
    fn drain(&mut self) {
        while let Some(t) = self.link.poll_transmit() {
            match t {
                Transmit::Open(transport) => {
                    assert!(
                        self.current.is_none(),
                        "seed {}: open while open",
                        self.seed
                    );
                    if transport == Transport::Http {
                        self.fell_back = true;
                    }
                    let at = self.now + self.lat();
                    self.pending_open = Some((at, transport));
                }
                Transmit::Send(frame) => {
                    let Some(id) = self.current else {
                        panic!("seed {}: send with nothing open", self.seed)
                    };
                    self.send_on(id, frame, true);
                }
                Transmit::Close => {
                    self.pending_open = None;
                    self.close_notice = None;
                    self.current = None;
                }
                other => panic!("seed {}: unknown action {other:?}", self.seed),
            }
        }
        while let Some(e) = self.link.poll_event() {
            match e {
                LinkEvent::ConnectionLost {
                    reason: LossReason::Dead,
                } => {
                    let silent = self.now - self.last_inbound;
                    assert!(
                        silent <= 2 * HB,
                        "seed {}: dead noticed after {silent} ms of silence",
                        self.seed
                    );
                    self.dead_noticed += 1;
                    self.worst_dead_ms = self.worst_dead_ms.max(silent);
                }
                LinkEvent::ConnectionRestored { .. } => self.reconnects += 1,
                LinkEvent::AuthFailed { .. } | LinkEvent::Conflict { .. } => {
                    panic!("seed {}: unexpected {e:?}", self.seed)
                }
                LinkEvent::ErrorOccurred { terminal, .. } => {
                    assert!(!terminal, "seed {}: {e:?}", self.seed)
                }
                _ => {}
            }
        }
    }

    fn check(&mut self) {
        let now = self.now;
        match self.link.state() {
            LinkState::Backoff { until } => {
                assert!(
                    *until <= now + CAP,
                    "seed {}: backoff past the cap",
                    self.seed
                );
                self.backoffs += 1;
                self.max_backoff = self.max_backoff.max(until - now);
                assert_eq!(self.link.poll_timeout(), Some(*until));
            }
            LinkState::Handshaking { .. } | LinkState::Connected { .. } => {
                let c = self
                    .current
                    .and_then(|id| self.conns.iter().find(|c| c.id == id));
                if let Some(since) = c.and_then(|c| c.s2c_dead_since) {
                    assert!(
                        now <= since + 2 * HB,
                        "seed {}: dead link (since {since}) not noticed at {now}",
                        self.seed
                    );
                }
            }
            LinkState::Stopped { .. } | LinkState::Idle => {
                panic!("seed {}: link gave up: {:?}", self.seed, self.link.state())
            }
            _ => {}
        }
    }

    /// The server forgets connections the client left once their frames
    /// have drained: the driver keeps nothing for them either.
    fn prune(&mut self) {
        let current = self.current;
        self.conns
            .retain(|c| Some(c.id) == current || !(c.c2s.is_empty() && c.s2c.is_empty()));
    }

    fn blackhole_current(&mut self, both: bool) {
        let now = self.now;
        if let Some(id) = self.current {
            let c = self.conn(id).unwrap();
            c.s2c_dead_since.get_or_insert(now);
            c.c2s_dead |= both;
        }
    }

    fn fault(&mut self) {
        let now = self.now;
        match self.rng.range(0, 5) {
            0 => {
                let both = self.rng.chance(0.5);
                self.blackhole_current(both);
            }
            1 => {
                // Restart: every connection dies, some with a close the
                // client sees, the rest silently; the data is durable.
                self.restarts += 1;
                self.server.up = false;
                self.down_until = now + self.rng.range(200, 15_000);
                for c in &mut self.conns {
                    c.c2s_dead = true;
                    c.s2c_dead_since.get_or_insert(now);
                }
                if let Some(id) = self.current {
                    if self.rng.chance(0.5) {
                        let at = now + self.lat();
                        self.close_notice = Some((at, id));
                    }
                }
            }
            2 => {
                self.partition_until = now + self.rng.range(1_000, 90_000);
                self.blackhole_current(true);
            }
            3 => {
                // Reload: the outbox comes back from its persisted copy; the
                // old connection is half-open (its frames still reach the
                // server, nobody reads its answers).
                self.reloads += 1;
                let text = self.link.outbox().encode();
                let outbox = Outbox::decode(text.as_bytes()).unwrap();
                let (v, s) = (self.link.version(), self.link.confirmed().clone());
                self.link = new_link(self.rng.next(), outbox, v, s);
                if let Some(id) = self.current.take() {
                    self.conn(id).unwrap().s2c_dead_since.get_or_insert(now);
                }
                self.pending_open = None;
                self.close_notice = None;
                self.link.handle_open(now);
                self.drain();
            }
            4 => {
                self.link.handle_online(false, now);
                self.drain();
                let back = now + self.rng.range(500, 40_000);
                self.online_at = Some(back);
            }
            _ => {
                self.link.handle_visible(true, now);
                self.drain();
            }
        }
    }
}

fn new_link(seed: u64, outbox: Outbox, version: u64, state: Value) -> Link {
    let mut cfg = LinkConfig::new(SESSION, "token", seed);
    cfg.outbox_limit = 16;
    Link::new(cfg, outbox, version, state)
}

/// Change indices an op carries (`{"c":{"k7":7,...}}`), ascending.
fn indices(patch: &Value) -> Vec<u64> {
    let mut v: Vec<u64> = patch["c"]
        .as_object()
        .map(|m| m.values().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// One seeded run: chaos for `chaos_ms`, then a healed network until quiet.
fn run_seed(seed: u64, chaos_ms: u64) -> Sim {
    let mut r = Rng(seed ^ 0xA5A5);
    let lat_max = r.range(5, 400);
    let knobs = Knobs {
        lat_min: r.range(1, lat_max),
        lat_max,
        dup: if r.chance(0.5) { 0.02 } else { 0.0 },
        ws_blocked: r.chance(0.2),
        reorder: r.chance(0.5),
        faults: true,
        drop_after_welcome: false,
    };
    let mut sim = Sim::new(seed, knobs);
    sim.link.handle_open(0);
    sim.drain();
    sim.run(chaos_ms);
    sim.knobs.faults = false;
    sim.submitting = false;
    sim.run(chaos_ms + 150_000);
    sim.writing = false;
    sim.run(chaos_ms + 300_000);
    // A WebSocket probe from HTTP may be under way at this instant (it drops
    // the HTTP connection first); it must be connected again within the
    // connect timeout plus one backoff cap.
    let settle = sim.now + 40_000;
    while !matches!(sim.link.state(), LinkState::Connected { .. }) && sim.now < settle {
        let next = sim.now + 100;
        sim.run(next);
    }
    let s = &sim;
    // Every change reached the server exactly once and in order.
    let applied: Vec<u64> = s.server.applied.iter().flat_map(indices).collect();
    let want: Vec<u64> = (0..s.submitted).collect();
    assert_eq!(
        applied, want,
        "seed {seed}: changes lost, doubled or reordered"
    );
    // The client converged to the server.
    assert!(
        s.link.outbox().is_empty(),
        "seed {seed}: outbox not flushed"
    );
    assert_eq!(s.link.version(), s.server.version, "seed {seed}: version");
    assert_eq!(s.link.confirmed(), &s.server.state, "seed {seed}: state");
    assert_eq!(s.link.view(), s.server.state, "seed {seed}: view");
    assert!(
        matches!(s.link.state(), LinkState::Connected { .. }),
        "seed {seed}: {:?}",
        s.link.state()
    );
    sim
}

#[test]
fn seeded_runs_lose_nothing_double_nothing_and_converge() {
    let seeds: Vec<u64> = match std::env::var("LINK_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("LINK_SIM_SEED is a number")],
        // `LINK_SIM_SEEDS=n` runs more (a soak).
        Err(_) => {
            let n = std::env::var("LINK_SIM_SEEDS").map_or(1_000, |n| n.parse().unwrap());
            (1..=n).collect()
        }
    };
    let chaos_ms = std::env::var("LINK_SIM_CHAOS_S").map_or(300_000, |s| {
        s.parse::<u64>().expect("LINK_SIM_CHAOS_S is a number") * 1000
    });
    let started = std::time::Instant::now();
    let (mut changes, mut reconnects, mut dead, mut worst, mut restarts, mut reloads) =
        (0, 0, 0, 0, 0, 0);
    let (mut fell_back, mut max_backoff) = (0, 0);
    for &seed in &seeds {
        let s = run_seed(seed, chaos_ms);
        changes += s.submitted;
        reconnects += s.reconnects;
        dead += s.dead_noticed;
        worst = worst.max(s.worst_dead_ms);
        restarts += s.restarts;
        reloads += s.reloads;
        fell_back += u64::from(s.fell_back);
        max_backoff = max_backoff.max(s.max_backoff);
    }
    let simulated_s = seeds.len() as u64 * (chaos_ms + 300_000) / 1000;
    eprintln!(
        "link_sim: {} seeds, {simulated_s} simulated s in {:?}: {changes} changes, \
         {reconnects} reconnects, {restarts} restarts, {reloads} reloads, \
         {dead} dead links noticed (worst {worst} ms of silence), \
         {fell_back} runs on HTTP, longest backoff {max_backoff} ms",
        seeds.len(),
        started.elapsed()
    );
    if let Ok(path) = std::env::var("LINK_SIM_REPORT") {
        let report = format!(
            "{{\"seeds\":{},\"simulatedSeconds\":{simulated_s},\"changes\":{changes},\
             \"reconnects\":{reconnects},\
             \"restarts\":{restarts},\"reloads\":{reloads},\"deadNoticed\":{dead},\
             \"heartbeatMs\":{HB},\"worstDeadMs\":{worst},\
             \"deadDetectIntervals\":{:.3},\"longestBackoffMs\":{max_backoff}}}\n",
            seeds.len(),
            worst as f64 / HB as f64
        );
        std::fs::write(&path, report).expect("LINK_SIM_REPORT is writable");
    }
    assert!(worst <= 2 * HB && max_backoff <= CAP);
    if seeds.len() > 1 {
        assert!(
            restarts > 0 && reloads > 0 && dead > 0 && fell_back > 0,
            "faults ran"
        );
    }
}

#[test]
fn a_thousand_reconnects_leave_nothing_behind() {
    let knobs = Knobs {
        lat_min: 5,
        lat_max: 40,
        dup: 0.0,
        ws_blocked: false,
        reorder: false,
        faults: false,
        drop_after_welcome: true,
    };
    let mut sim = Sim::new(99, knobs);
    sim.link.handle_open(0);
    sim.drain();
    while sim.reconnects < 1_000 {
        let until = sim.now + 60_000;
        sim.run(until);
        let d = sim.link.diagnostics();
        assert_eq!((d.queued_transmits, d.queued_events), (0, 0));
        // Unsent changes coalesce down to the limit (16); ops already sent
        // on the last connection wait for its successor's welcome.
        assert!(d.buffered_versions == 0 && d.outbox_len <= 32, "{d:?}");
        assert!(sim.conns.len() <= 3, "driver connections pile up");
    }
    sim.submitting = false;
    sim.knobs.drop_after_welcome = false;
    let until = sim.now + 120_000;
    sim.run(until);
    let applied: Vec<u64> = sim.server.applied.iter().flat_map(indices).collect();
    assert_eq!(applied, (0..sim.submitted).collect::<Vec<_>>());
    assert_eq!(sim.link.confirmed(), &sim.server.state);
}
