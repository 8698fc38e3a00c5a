// Deterministic simulation of the client link (js/src/link/core/, the
// compiled js/dist/link/core/) against an in-memory model of the server,
// over a simulated network with latency, duplication, reordering of HTTP
// frames, half-open and silently dead connections, partitions, server
// restarts, page reloads (through the persisted record), blocked WebSockets
// and offline spells, on a virtual clock driven by a seed. Pure Node: no
// browser, no server. A failing run names its seed; `LINK_SIM_SEED=n`
// replays only it, `LINK_SIM_SEEDS=n` runs seeds 1 to n (1,000 by default,
// each with 300 simulated seconds of faults; `LINK_SIM_CHAOS_S` changes
// that), and `LINK_SIM_REPORT=path` writes the totals as JSON (`make bench`
// reads the worst dead-link detection from it; `make soak` runs 10,000
// seeds of 900 s).
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { test } from "node:test";
import { Rng } from "../dist/link/core/backoff.js";
import { decode, encode } from "../dist/link/core/frames.js";
import { Link } from "../dist/link/core/link.js";
import { readRecord, writeRecord } from "../dist/link/core/link-core.js";
import { applyInPlace, sameJson } from "../dist/link/core/merge-patch.js";
import { Outbox } from "../dist/link/core/outbox.js";
import { linkConfig } from "../dist/link/core/types.js";

const CLIENT = "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47";
const SESSION = "0123456789abcdef0123456789abcdef";
const HB = 5_000;
const CAP = 30_000;
const LOG_LEN = 64;

/** The simulation's own randomness (SplitMix64, like the link's jitter). */
class SimRng {
  constructor(seed) {
    this.rng = new Rng(BigInt(seed));
  }
  /** A full 64-bit output (seeds the link as the Rust simulation did, so runs of a seed match it). */
  next() {
    return this.rng.nextU64();
  }
  range(lo, hi) {
    return lo + this.rng.upTo(hi - lo);
  }
  chance(p) {
    return this.rng.next53() / 2 ** 53 > 1 - p;
  }
}

/** What a client holding `have` misses of a session at `version` whose log holds `log` (as the server's CatchUp::since). */
function catchUpSince(have, version, log, state) {
  if (have === version) return { kind: "upToDate" };
  const reaches = log.length > 0 && log[0].version <= have + 1;
  if (have > 0 && have < version && reaches) return { kind: "patches", patches: log.filter((p) => p.version > have) };
  return { kind: "snapshot", state: state() };
}

/** The server: durable across restarts (as SQLite is), exactly-once per (client, seq), a bounded patch log for catch-up. */
class Server {
  constructor() {
    this.up = true;
    this.version = 1;
    this.state = {};
    this.log = [];
    this.lastSeq = 0;
    /** The client's op patches in the order they were applied. */
    this.applied = [];
    this.other = 0;
  }

  commit(patch) {
    this.state = applyInPlace(this.state, patch);
    this.version += 1;
    const p = { version: this.version, patch };
    this.log.push(p);
    if (this.log.length > LOG_LEN) this.log.shift();
    return p;
  }

  /** A change by someone else (another client, the server itself). */
  writeOther() {
    this.other += 1;
    const n = this.other;
    return this.commit({ o: { last: n, [`k${n % 7}`]: n } });
  }

  /** Answers to one client frame on a connection. */
  handle(frame, conn, now) {
    const msg = decode(frame, 1 << 20); // throws (fails the run) on a frame the server could not read
    if (msg.type === "hello") {
      conn.helloDone = true;
      return [
        {
          type: "welcome",
          protocol: 1,
          version: this.version,
          status: "cart",
          expiresAt: 0,
          heartbeatMs: HB,
          appliedSeq: this.lastSeq,
          serverTime: now,
          catchUp: catchUpSince(msg.haveVersion, this.version, this.log, () => this.state),
        },
      ];
    }
    if (!conn.helloDone) return [{ type: "error", code: "PROTOCOL_ERROR", message: "hello first", retryable: false }];
    if (msg.type === "op") {
      const id = msg.id;
      if (id.seq <= this.lastSeq) return [{ type: "ack", id, version: this.version, duplicate: true }];
      if (id.seq === this.lastSeq + 1) {
        this.lastSeq += 1;
        this.applied.push(msg.patch);
        const p = this.commit(msg.patch);
        return [{ type: "ack", id, version: p.version, ...(msg.base < p.version - 1 ? { rebased: true } : {}) }];
      }
      return [
        {
          type: "reject",
          id,
          code: "OP_OUT_OF_ORDER",
          message: `op ${id.seq} is out of order: the server expects ${this.lastSeq + 1}`,
        },
      ];
    }
    if (msg.type === "ping") return [{ type: "pong", ts: msg.ts, serverTs: now }];
    return [];
  }
}

function newLink(seed, outbox, version, state) {
  const cfg = linkConfig(SESSION, "token", seed);
  cfg.outboxLimit = 16;
  return new Link(cfg, outbox, version, state);
}

/** Inserts (at, frame) into a queue kept sorted by time (stable for equal times). */
function queueAt(q, at, frame) {
  let pos = q.length;
  while (pos > 0 && q[pos - 1][0] > at) pos--;
  q.splice(pos, 0, [at, frame]);
}

class Sim {
  constructor(seed, knobs) {
    this.seed = seed;
    this.rng = new SimRng(seed);
    this.now = 0;
    this.link = newLink(this.rng.next(), Outbox.create(CLIENT), 0, {});
    this.server = new Server();
    this.conns = [];
    this.nextConn = 1;
    this.current = undefined;
    this.pendingOpen = undefined;
    this.closeNotice = undefined;
    this.partitionUntil = 0;
    this.downUntil = 0;
    this.onlineAt = undefined;
    this.nextSubmit = 100;
    this.nextOther = 1_000;
    this.nextFault = 20_000;
    this.submitting = true;
    /** Other writers change the session. */
    this.writing = true;
    this.submitted = 0;
    this.lastInbound = 0;
    this.knobs = knobs;
    // What was observed.
    this.reconnects = 0;
    this.deadNoticed = 0;
    this.worstDeadMs = 0;
    this.backoffs = 0;
    this.maxBackoff = 0;
    this.reloads = 0;
    this.restarts = 0;
    this.fellBack = false;
  }

  fail(what) {
    assert.fail(`seed ${this.seed}: ${what}`);
  }

  lat() {
    return this.rng.range(this.knobs.latMin, this.knobs.latMax);
  }

  conn(id) {
    return this.conns.find((c) => c.id === id);
  }

  nextTime(end) {
    let t = end;
    const at = (x) => {
      if (x !== undefined && x < t) t = x;
    };
    at(this.link.pollTimeout());
    at(this.pendingOpen?.at);
    at(this.closeNotice?.at);
    at(this.onlineAt);
    for (const c of this.conns) {
      at(c.c2s[0]?.[0]);
      at(c.s2c[0]?.[0]);
    }
    if (this.submitting) at(this.nextSubmit);
    if (this.writing) at(this.nextOther);
    if (this.knobs.faults) at(this.nextFault);
    if (!this.server.up) at(this.downUntil);
    return Math.max(t, this.now);
  }

  run(until) {
    while (this.now < until) {
      this.now = this.nextTime(until);
      this.step();
    }
  }

  step() {
    const now = this.now;
    if (!this.server.up && now >= this.downUntil) this.server.up = true;
    if (this.onlineAt !== undefined && now >= this.onlineAt) {
      this.onlineAt = undefined;
      this.link.handleOnline(true, now);
      this.drain();
    }
    if (this.pendingOpen && now >= this.pendingOpen.at) {
      const { transport } = this.pendingOpen;
      this.pendingOpen = undefined;
      const ok =
        this.server.up &&
        now >= this.partitionUntil &&
        !(transport === "websocket" && this.knobs.wsBlocked) &&
        this.rng.chance(0.97);
      if (ok) {
        const id = this.nextConn++;
        this.conns.push({ id, c2s: [], s2c: [], c2sDead: false, s2cDeadSince: undefined, helloDone: false, transport });
        this.current = id;
        this.lastInbound = now;
        this.link.handleConnected(transport, now);
      } else {
        this.link.handleClosed(now);
      }
      this.drain();
    }
    if (this.closeNotice && now >= this.closeNotice.at) {
      const { id } = this.closeNotice;
      this.closeNotice = undefined;
      if (this.current === id) {
        this.current = undefined;
        this.link.handleClosed(now);
        this.drain();
      }
    }
    this.deliver();
    const timeout = this.link.pollTimeout();
    if (timeout !== undefined && now >= timeout) {
      this.link.handleTimeout(now);
      this.drain();
    }
    if (this.submitting && now >= this.nextSubmit) {
      const i = this.submitted++;
      this.link.submit({ c: { [`k${i}`]: i } }, undefined, now);
      this.drain();
      this.nextSubmit = now + this.rng.range(50, 4_000);
    }
    if (this.writing && now >= this.nextOther) {
      this.nextOther = now + this.rng.range(1_000, 15_000);
      if (this.server.up) this.pushToAll({ type: "patch", ...this.server.writeOther() });
    }
    if (this.knobs.faults && now >= this.nextFault) {
      this.nextFault = now + this.rng.range(5_000, 60_000);
      this.fault();
    }
    this.prune();
    this.check();
  }

  pushToAll(msg) {
    const frame = encode(msg);
    for (const c of this.conns.filter((c) => c.helloDone)) this.sendOn(c.id, frame, false);
  }

  /** Queues a frame with latency, sometimes twice. A WebSocket keeps order; HTTP requests and responses overtake each other when the seed says so. */
  sendOn(id, frame, toServer) {
    const at = this.now + this.lat();
    const dup = this.rng.chance(this.knobs.dup);
    const dupAt = this.now + this.lat();
    const c = this.conn(id);
    const fifo = !(this.knobs.reorder && c.transport === "http");
    const q = toServer ? c.c2s : c.s2c;
    const put = (t, f) => queueAt(q, fifo ? Math.max(t, q.length ? q[q.length - 1][0] : 0) : t, f);
    if (dup) put(dupAt, frame);
    put(at, frame);
  }

  deliver() {
    const now = this.now;
    // Client to server, connection by connection, in order.
    const answers = [];
    for (const c of this.conns) {
      while (c.c2s.length && c.c2s[0][0] <= now) {
        const [, frame] = c.c2s.shift();
        if (c.c2sDead || !this.server.up) continue;
        for (const m of this.server.handle(frame, c, now)) answers.push([c.id, m]);
      }
    }
    for (const [id, m] of answers) {
      if (this.knobs.dropAfterWelcome && m.type === "welcome") {
        this.closeNotice = { at: this.now + 2 * this.knobs.latMax + 1, id };
      }
      this.sendOn(id, encode(m), false);
    }
    // Server to client: only the link's current transport is listened to.
    const inbound = [];
    for (const c of this.conns) {
      while (c.s2c.length && c.s2c[0][0] <= now) {
        const [, frame] = c.s2c.shift();
        if (c.id === this.current && c.s2cDeadSince === undefined) inbound.push(frame);
      }
    }
    for (const frame of inbound) {
      this.lastInbound = now;
      this.link.handleFrame(frame, now);
      this.drain();
    }
  }

  /** Carries out the link's actions and checks its events. */
  drain() {
    for (let t = this.link.pollTransmit(); t; t = this.link.pollTransmit()) {
      if (t.kind === "open") {
        if (this.current !== undefined) this.fail("open while open");
        if (t.transport === "http") this.fellBack = true;
        this.pendingOpen = { at: this.now + this.lat(), transport: t.transport };
      } else if (t.kind === "send") {
        if (this.current === undefined) this.fail("send with nothing open");
        this.sendOn(this.current, t.frame, true);
      } else if (t.kind === "close") {
        this.pendingOpen = undefined;
        this.closeNotice = undefined;
        this.current = undefined;
      } else {
        this.fail(`unknown action ${JSON.stringify(t)}`);
      }
    }
    for (let e = this.link.pollEvent(); e; e = this.link.pollEvent()) {
      if (e.type === "connection_lost" && e.reason === "dead") {
        const silent = this.now - this.lastInbound;
        if (silent > 2 * HB) this.fail(`dead noticed after ${silent} ms of silence`);
        this.deadNoticed += 1;
        this.worstDeadMs = Math.max(this.worstDeadMs, silent);
      } else if (e.type === "connection_restored") {
        this.reconnects += 1;
      } else if (e.type === "auth_failed" || e.type === "conflict") {
        this.fail(`unexpected ${JSON.stringify(e)}`);
      } else if (e.type === "error_occurred" && e.terminal) {
        this.fail(JSON.stringify(e));
      }
    }
  }

  check() {
    const now = this.now;
    const s = this.link.state;
    if (s.kind === "backoff") {
      if (s.until > now + CAP) this.fail("backoff past the cap");
      this.backoffs += 1;
      this.maxBackoff = Math.max(this.maxBackoff, s.until - now);
      if (this.link.pollTimeout() !== s.until) this.fail("backoff timeout is not its end");
    } else if (s.kind === "handshaking" || s.kind === "connected") {
      const since = this.current === undefined ? undefined : this.conn(this.current)?.s2cDeadSince;
      if (since !== undefined && now > since + 2 * HB) this.fail(`dead link (since ${since}) not noticed at ${now}`);
    } else if (s.kind === "stopped" || s.kind === "idle") {
      this.fail(`link gave up: ${JSON.stringify(s)}`);
    }
  }

  /** The server forgets connections the client left once their frames have drained: the driver keeps nothing for them either. */
  prune() {
    const current = this.current;
    this.conns = this.conns.filter((c) => c.id === current || c.c2s.length > 0 || c.s2c.length > 0);
  }

  blackholeCurrent(both) {
    const c = this.current === undefined ? undefined : this.conn(this.current);
    if (c) {
      c.s2cDeadSince ??= this.now;
      c.c2sDead ||= both;
    }
  }

  fault() {
    const now = this.now;
    switch (this.rng.range(0, 5)) {
      case 0:
        this.blackholeCurrent(this.rng.chance(0.5));
        break;
      case 1:
        // Restart: every connection dies, some with a close the client sees, the rest silently; the data is durable.
        this.restarts += 1;
        this.server.up = false;
        this.downUntil = now + this.rng.range(200, 15_000);
        for (const c of this.conns) {
          c.c2sDead = true;
          c.s2cDeadSince ??= now;
        }
        if (this.current !== undefined && this.rng.chance(0.5)) this.closeNotice = { at: now + this.lat(), id: this.current };
        break;
      case 2:
        this.partitionUntil = now + this.rng.range(1_000, 90_000);
        this.blackholeCurrent(true);
        break;
      case 3: {
        // Reload: the link comes back from its persisted record (as JSON
        // text, as the driver stores it); the old connection is half-open
        // (its frames still reach the server, nobody reads its answers).
        this.reloads += 1;
        const text = JSON.stringify(writeRecord(this.link));
        const { outbox, version, confirmed } = readRecord(JSON.parse(text), CLIENT);
        this.link = newLink(this.rng.next(), outbox, version, confirmed);
        if (this.current !== undefined) {
          this.conn(this.current).s2cDeadSince ??= now;
          this.current = undefined;
        }
        this.pendingOpen = undefined;
        this.closeNotice = undefined;
        this.link.handleOpen(now);
        this.drain();
        break;
      }
      case 4:
        this.link.handleOnline(false, now);
        this.drain();
        this.onlineAt = now + this.rng.range(500, 40_000);
        break;
      default:
        this.link.handleVisible(true, now);
        this.drain();
    }
  }
}

/** Change indices an op carries (`{"c":{"k7":7,...}}`), ascending. */
function indices(patch) {
  return Object.values(patch?.c ?? {})
    .filter((v) => Number.isInteger(v))
    .sort((a, b) => a - b);
}

/** Whether `applied` is exactly 0, 1, ..., n-1. */
function inOrderOnce(applied, n) {
  return applied.length === n && applied.every((v, i) => v === i);
}

/** One seeded run: chaos for `chaosMs`, then a healed network until quiet. */
function runSeed(seed, chaosMs) {
  const r = new SimRng(seed ^ 0xa5a5);
  const latMax = r.range(5, 400);
  const knobs = {
    latMin: r.range(1, latMax),
    latMax,
    dup: r.chance(0.5) ? 0.02 : 0,
    wsBlocked: r.chance(0.2),
    reorder: r.chance(0.5),
    faults: true,
    dropAfterWelcome: false,
  };
  const sim = new Sim(seed, knobs);
  sim.link.handleOpen(0);
  sim.drain();
  sim.run(chaosMs);
  sim.knobs.faults = false;
  sim.submitting = false;
  sim.run(chaosMs + 150_000);
  sim.writing = false;
  sim.run(chaosMs + 300_000);
  // A WebSocket probe from HTTP may be under way at this instant (it drops
  // the HTTP connection first); it must be connected again within the
  // connect timeout plus one backoff cap.
  const settle = sim.now + 40_000;
  while (sim.link.state.kind !== "connected" && sim.now < settle) sim.run(sim.now + 100);
  // Every change reached the server exactly once and in order.
  const applied = sim.server.applied.flatMap(indices);
  if (!inOrderOnce(applied, sim.submitted)) {
    assert.deepEqual(applied, [...Array(sim.submitted).keys()], `seed ${seed}: changes lost, doubled or reordered`);
  }
  // The client converged to the server.
  assert.ok(sim.link.outbox.isEmpty(), `seed ${seed}: outbox not flushed`);
  assert.equal(sim.link.version, sim.server.version, `seed ${seed}: version`);
  assert.ok(sameJson(sim.link.confirmed, sim.server.state), `seed ${seed}: state`);
  assert.ok(sameJson(sim.link.view(), sim.server.state), `seed ${seed}: view`);
  assert.equal(sim.link.state.kind, "connected", `seed ${seed}: ${JSON.stringify(sim.link.state)}`);
  return sim;
}

const num = (name, dflt) => {
  const v = process.env[name];
  if (v === undefined || v === "") return dflt;
  const n = Number(v);
  assert.ok(Number.isSafeInteger(n) && n >= 0, `${name} is a number`);
  return n;
};

test("seeded runs lose nothing, double nothing and converge", () => {
  const one = process.env.LINK_SIM_SEED;
  const seeds = one ? [num("LINK_SIM_SEED", 0)] : Array.from({ length: num("LINK_SIM_SEEDS", 1_000) }, (_, i) => i + 1);
  const chaosMs = num("LINK_SIM_CHAOS_S", 300) * 1000;
  const started = process.hrtime.bigint();
  const t = { changes: 0, reconnects: 0, dead: 0, worst: 0, restarts: 0, reloads: 0, fellBack: 0, maxBackoff: 0 };
  for (const seed of seeds) {
    const s = runSeed(seed, chaosMs);
    t.changes += s.submitted;
    t.reconnects += s.reconnects;
    t.dead += s.deadNoticed;
    t.worst = Math.max(t.worst, s.worstDeadMs);
    t.restarts += s.restarts;
    t.reloads += s.reloads;
    t.fellBack += s.fellBack ? 1 : 0;
    t.maxBackoff = Math.max(t.maxBackoff, s.maxBackoff);
  }
  const elapsedS = Number(process.hrtime.bigint() - started) / 1e9;
  const simulatedSeconds = (seeds.length * (chaosMs + 300_000)) / 1000;
  console.log(
    `link_sim: ${seeds.length} seeds, ${simulatedSeconds} simulated s in ${elapsedS.toFixed(1)} s: ${t.changes} changes, ` +
      `${t.reconnects} reconnects, ${t.restarts} restarts, ${t.reloads} reloads, ` +
      `${t.dead} dead links noticed (worst ${t.worst} ms of silence), ${t.fellBack} runs on HTTP, longest backoff ${t.maxBackoff} ms`,
  );
  if (process.env.LINK_SIM_REPORT) {
    const report = {
      seeds: seeds.length,
      simulatedSeconds,
      changes: t.changes,
      reconnects: t.reconnects,
      restarts: t.restarts,
      reloads: t.reloads,
      deadNoticed: t.dead,
      heartbeatMs: HB,
      worstDeadMs: t.worst,
      deadDetectIntervals: Math.round((t.worst / HB) * 1000) / 1000,
      longestBackoffMs: t.maxBackoff,
    };
    writeFileSync(process.env.LINK_SIM_REPORT, JSON.stringify(report) + "\n");
  }
  assert.ok(t.worst <= 2 * HB && t.maxBackoff <= CAP);
  if (seeds.length > 1) {
    assert.ok(t.restarts > 0 && t.reloads > 0 && t.dead > 0 && t.fellBack > 0, "faults ran");
  }
});

test("a thousand reconnects leave nothing behind", () => {
  const knobs = { latMin: 5, latMax: 40, dup: 0, wsBlocked: false, reorder: false, faults: false, dropAfterWelcome: true };
  const sim = new Sim(99, knobs);
  sim.link.handleOpen(0);
  sim.drain();
  while (sim.reconnects < 1_000) {
    sim.run(sim.now + 60_000);
    const d = sim.link.diagnostics();
    assert.deepEqual([d.queuedTransmits, d.queuedEvents], [0, 0]);
    // Unsent changes coalesce down to the limit (16); ops already sent on
    // the last connection wait for its successor's welcome.
    assert.ok(d.bufferedVersions === 0 && d.outboxLen <= 32, JSON.stringify(d));
    assert.ok(sim.conns.length <= 3, "driver connections pile up");
  }
  sim.submitting = false;
  sim.knobs.dropAfterWelcome = false;
  sim.run(sim.now + 120_000);
  const applied = sim.server.applied.flatMap(indices);
  assert.deepEqual(applied, [...Array(sim.submitted).keys()]);
  assert.ok(sameJson(sim.link.confirmed, sim.server.state));
});
