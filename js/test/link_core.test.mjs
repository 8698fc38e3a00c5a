// Unit tests of the client link core (js/src/link/core/, compiled into
// js/dist/link/core/): the link's transitions (ported from the Rust
// src/core/link/tests.rs), the outbox, the backoff, the frame decoder's
// codes, LinkCore's options and records (a record written by the wasm
// build still loads), and the merge-patch cases shared with the server's
// Rust code (tests/fixtures/merge_patch_cases.json). Pure Node. The seeded
// network simulation is link_sim.test.mjs.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { SessileError } from "../dist/errors.js";
import { Backoff, Rng } from "../dist/link/core/backoff.js";
import { DEFAULT_MAX_FRAME_BYTES, decode, encode, opFrame, utf8Length } from "../dist/link/core/frames.js";
import { Link } from "../dist/link/core/link.js";
import { LinkCore, RECORD_FORMAT } from "../dist/link/core/link-core.js";
import { apply, applyInPlace, applyMergePatch, compose, diff, sameJson } from "../dist/link/core/merge-patch.js";
import { Outbox } from "../dist/link/core/outbox.js";
import { linkConfig } from "../dist/link/core/types.js";

const CLIENT = "0123456789abcdef0123456789abcdef";
const SESSION = "fedcba9876543210fedcba9876543210";

const link = (tune = {}) => new Link({ ...linkConfig(SESSION, "t", 1), ...tune }, Outbox.create(CLIENT), 0, {});
const drain = (l) => [...(function* () { for (let t = l.pollTransmit(); t; t = l.pollTransmit()) yield t; })()];
const events = (l) => [...(function* () { for (let e = l.pollEvent(); e; e = l.pollEvent()) yield e; })()];

/** A link whose WebSocket opened at `at` and has not been welcomed yet. */
function handshaking(at) {
  const l = link();
  l.handleOpen(0);
  drain(l);
  l.handleConnected("websocket", at);
  return l;
}

const welcome = (version, appliedSeq, extra = {}) =>
  encode({
    type: "welcome",
    protocol: 1,
    version,
    status: "cart",
    expiresAt: 0,
    heartbeatMs: 5_000,
    appliedSeq,
    serverTime: 0,
    catchUp: { kind: "snapshot", state: {} },
    ...extra,
  });

const codeOf = (f) => {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SessileError, `a SessileError, not ${e}`);
    return e.code;
  }
  assert.fail("did not throw");
};

describe("link transitions", () => {
  test("falls back to HTTP and probes WebSocket later", () => {
    const l = link();
    let now = 0;
    l.handleOpen(now);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(drain(l), [{ kind: "open", transport: "websocket" }]);
      l.handleClosed(now);
      now = l.pollTimeout();
      l.handleTimeout(now);
    }
    assert.deepEqual(drain(l), [{ kind: "open", transport: "http" }]);
    l.handleConnected("http", now);
    l.handleFrame(welcome(1, 0), now);
    assert.deepEqual(l.state, { kind: "connected", transport: "http" });
    // Keep the link alive with pongs until the probe is due.
    let opened;
    while (now < 200_000 && !opened) {
      now = l.pollTimeout();
      l.handleTimeout(now);
      for (const t of drain(l)) {
        if (t.kind === "send" && JSON.parse(t.frame).type === "ping") {
          l.handleFrame(JSON.stringify({ type: "pong", ts: JSON.parse(t.frame).ts, serverTs: 0 }), now);
        } else if (t.kind === "open") opened = { transport: t.transport, at: now };
      }
    }
    assert.equal(opened.transport, "websocket");
    assert.ok(opened.at >= 60_000 && opened.at < 70_000, `probe after about 60 s: ${opened.at}`);
    assert.notEqual(l.diagnostics().srttMs, undefined);
  });

  test("a remembered fallback starts on HTTP and probes later", () => {
    const l = link({ startOnHttp: true });
    l.handleOpen(1_000);
    assert.deepEqual(drain(l), [{ kind: "open", transport: "http" }]);
    l.handleConnected("http", 1_000);
    l.handleFrame(welcome(1, 0), 1_000);
    l.handleFrame('{"type":"pong","ts":0,"serverTs":0}', 60_000);
    l.handleTimeout(61_000);
    assert.deepEqual(drain(l), [{ kind: "close" }, { kind: "open", transport: "websocket" }]);
  });

  test("auth failure stops retries with an event", () => {
    const l = handshaking(5);
    l.handleFrame('{"type":"error","code":"INVALID_TOKEN","message":"no","retryable":false}', 10);
    assert.equal(l.pollEvent().type, "auth_failed");
    assert.deepEqual(l.state, { kind: "stopped", code: "INVALID_TOKEN" });
    assert.equal(l.pollTimeout(), undefined);
    assert.deepEqual(drain(l).at(-1), { kind: "close" });
  });

  test("terminal server errors and bye stop with error_occurred; retryable ones reconnect", () => {
    const l = handshaking(0);
    l.handleFrame('{"type":"error","code":"SESSION_EXPIRED","message":"gone"}', 1);
    assert.deepEqual(events(l), [{ type: "error_occurred", code: "SESSION_EXPIRED", message: "gone", terminal: true }]);
    assert.deepEqual(l.state, { kind: "stopped", code: "SESSION_EXPIRED" });
    const b = handshaking(0);
    b.handleFrame('{"type":"bye","reason":"ORIGIN_NOT_ALLOWED"}', 1);
    assert.deepEqual(b.state, { kind: "stopped", code: "ORIGIN_NOT_ALLOWED" });
    const r = handshaking(0);
    r.handleFrame('{"type":"error","code":"SERVER_BUSY","message":"later","retryable":true}', 1);
    assert.equal(r.state.kind, "backoff");
    const y = handshaking(0);
    y.handleFrame('{"type":"bye"}', 1);
    assert.equal(y.state.kind, "backoff");
  });

  test("silence of two heartbeats is dead and ops resend after welcome", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 100);
    const id = l.submit({ a: 1 }, undefined, 200);
    assert.equal(id.seq, 1);
    assert.equal(codeOf(() => l.submit(3, undefined, 200)), "PROTOCOL_ERROR");
    // Timers may fire late (a throttled tab): the deadline is a timestamp.
    assert.equal(l.pollTimeout(), 5_000, "first ping");
    l.handleTimeout(10_099);
    assert.equal(l.state.kind, "connected");
    l.handleTimeout(10_100);
    assert.equal(l.state.kind, "backoff");
    assert.ok(events(l).some((e) => e.type === "connection_lost" && e.reason === "dead"));
    const now = l.pollTimeout();
    l.handleTimeout(now);
    drain(l);
    l.handleConnected("websocket", now);
    l.handleFrame(welcome(1, 0), now);
    const sent = drain(l);
    assert.equal(sent[1].kind, "send");
    assert.equal(JSON.parse(sent[1].frame).type, "op");
    assert.deepEqual(l.view(), { a: 1 });
  });

  test("a conflict takes the server state and says so", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    l.submit({ email: "a@x" }, undefined, 2);
    l.submit({ step: 2 }, "checkout", 2);
    events(l);
    l.handleFrame(
      JSON.stringify({
        type: "reject",
        id: { client: CLIENT, seq: 1 },
        code: "VERSION_CONFLICT",
        message: "m",
        current: { version: 3, status: "cart", state: { email: "b@x" } },
      }),
      3,
    );
    const ev = l.pollEvent();
    assert.equal(ev.type, "conflict", JSON.stringify(ev));
    assert.deepEqual([ev.local, ev.server, ev.op, ev.winner], [{ email: "a@x" }, { email: "b@x" }, 1, "server"]);
    assert.deepEqual([l.version, l.outbox.length], [3, 1]);
    l.handleFrame(JSON.stringify({ type: "reject", id: { client: CLIENT, seq: 2 }, code: "INVALID_TRANSITION", message: "m" }), 4);
    const err = l.pollEvent();
    assert.deepEqual([err.type, err.code, err.terminal], ["error_occurred", "INVALID_TRANSITION", false]);
    assert.ok(l.outbox.isEmpty());
    assert.deepEqual(l.view(), { email: "b@x" });
  });

  test("a conflict without the state (the server sent it already on this connection) is against the confirmed state", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    for (const email of ["a@x", "c@x", "d@x"]) {
      l.submit({ email }, undefined, 2);
      drain(l); // sent: later ones are new ops, not coalesced
    }
    events(l);
    const reject = (seq, current) =>
      JSON.stringify({ type: "reject", id: { client: CLIENT, seq }, code: "VERSION_CONFLICT", message: "m", ...(current ? { current } : {}) });
    l.handleFrame(reject(1, { version: 3, status: "cart", state: { email: "b@x" } }), 3);
    assert.equal(l.pollEvent().type, "conflict");
    l.handleFrame(reject(2), 4);
    const ev = l.pollEvent();
    assert.deepEqual(
      [ev.type, ev.op, ev.local, ev.server, ev.winner],
      ["conflict", 2, { email: "c@x" }, { email: "b@x" }, "server"],
      JSON.stringify(ev),
    );
    // The event's state is a copy: changing it leaves the link's alone.
    ev.server.email = "changed";
    assert.deepEqual([l.version, l.confirmed, l.outbox.length], [3, { email: "b@x" }, 1]);
    assert.equal(l.pollEvent(), undefined, "no error event");
  });

  test("VERSION_AHEAD at hello: the link asks again from version 0 and takes the snapshot; an op rejected so is a conflict", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(5, 0, { catchUp: { kind: "snapshot", state: { n: 5 } } }), 1);
    l.submit({ n: 6 }, undefined, 2);
    drain(l);
    events(l);
    // The server answers for a version it no longer has.
    l.handleFrame(JSON.stringify({ type: "reject", id: { client: CLIENT, seq: 1 }, code: "VERSION_AHEAD", message: "m" }), 3);
    const ev = l.pollEvent();
    assert.deepEqual([ev.type, ev.op, ev.local, ev.server], ["conflict", 1, { n: 6 }, { n: 5 }], JSON.stringify(ev));
    // A reconnect whose hello says version 5 to a server at 3.
    l.handleClosed(4);
    events(l);
    l.handleTimeout(l.pollTimeout());
    drain(l);
    l.handleConnected("websocket", 10);
    assert.equal(JSON.parse(drain(l).find((t) => t.kind === "send").frame).haveVersion, 5);
    l.handleFrame(JSON.stringify({ type: "error", code: "VERSION_AHEAD", message: "m", retryable: false }), 11);
    assert.deepEqual(drain(l), [{ kind: "close" }], "this connection is given up");
    assert.equal(l.version, 0);
    l.handleTimeout(l.pollTimeout());
    drain(l);
    l.handleConnected("websocket", 20);
    assert.equal(JSON.parse(drain(l).find((t) => t.kind === "send").frame).haveVersion, 0, "asks for everything");
    l.handleFrame(welcome(3, 1, { catchUp: { kind: "snapshot", state: { n: 3 } } }), 21);
    assert.deepEqual([l.version, l.confirmed, l.state.kind], [3, { n: 3 }, "connected"]);
  });

  test("`ended` stops the link with its code, as a terminal `bye` does; `extended` moves the expiry", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    l.handleFrame('{"type":"extended","expiresAt":1234}', 2);
    assert.equal(l.expiresAt, 1234);
    events(l);
    drain(l);
    l.handleFrame('{"type":"patch","version":2,"patch":{"email":null},"status":"expired"}', 3);
    l.handleFrame('{"type":"ended","status":"expired","code":"SESSION_EXPIRED","version":2,"message":"session expired"}', 3);
    assert.deepEqual(l.state, { kind: "stopped", code: "SESSION_EXPIRED" });
    assert.deepEqual([l.version, l.status], [2, "expired"]);
    assert.deepEqual(drain(l), [{ kind: "close" }]);
    assert.equal(l.pollTimeout(), undefined, "no reconnect");
    // The `bye` and the close that follow change nothing.
    l.handleFrame('{"type":"bye","reason":"SESSION_EXPIRED"}', 4);
    l.handleClosed(4);
    assert.deepEqual(l.state, { kind: "stopped", code: "SESSION_EXPIRED" });
    const e = handshaking(0);
    e.handleFrame(welcome(1, 0), 1);
    e.handleFrame('{"type":"ended","status":"terminated","code":"SESSION_CLOSED","version":2,"message":"m"}', 2);
    assert.deepEqual(e.state, { kind: "stopped", code: "SESSION_CLOSED" });
  });

  test("follows the session status from welcome, patches and acks", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    const statuses = () => events(l).filter((e) => e.type === "status_changed").map((e) => e.status);
    assert.deepEqual(statuses(), ["cart"]);
    assert.equal(l.status, "cart");
    // Another client's change moves the status.
    l.handleFrame('{"type":"patch","version":2,"patch":{"step":"checkout"},"status":"checkout"}', 2);
    assert.deepEqual(statuses(), ["checkout"]);
    // This client's op with `to`, acknowledged.
    const id = l.submit({ paid: true }, "processing", 3);
    drain(l);
    l.handleFrame(JSON.stringify({ type: "ack", id: { client: CLIENT, seq: id.seq }, version: 3 }), 4);
    assert.deepEqual(statuses(), ["processing"]);
    assert.equal(l.status, "processing");
    // A patch without a status keeps it.
    l.handleFrame('{"type":"patch","version":4,"patch":{"x":1}}', 5);
    assert.deepEqual(statuses(), []);
    assert.deepEqual(l.view(), { step: "checkout", paid: true, x: 1 });
  });

  test("versions ahead of a gap wait for it; a gap that stays resyncs", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    events(l);
    l.handleFrame('{"type":"patch","version":3,"patch":{"b":2}}', 2);
    assert.equal(l.version, 1);
    assert.equal(l.diagnostics().bufferedVersions, 1);
    l.handleFrame('{"type":"patch","version":2,"patch":{"a":1}}', 3);
    assert.deepEqual([l.version, l.confirmed], [3, { a: 1, b: 2 }]);
    assert.deepEqual(events(l), [{ type: "state_synchronized", version: 3, confirmed: 0 }]);
    l.handleFrame('{"type":"patch","version":5,"patch":{"c":3}}', 1_000);
    assert.equal(l.pollTimeout(), 5_000, "the first ping is due before the gap's deadline (21 s)");
    // Pongs keep it alive; the missing version 4 never comes.
    for (let t = 5_000; t <= 21_000; t += 4_000) {
      l.handleFrame('{"type":"pong","ts":0,"serverTs":0}', t);
      l.handleTimeout(t);
    }
    assert.equal(l.state.kind, "backoff");
    assert.ok(events(l).some((e) => e.type === "connection_lost" && e.reason === "resync"));
  });

  test("a welcome with patches catches up; one that falls short resyncs", () => {
    const l = new Link(linkConfig(SESSION, "t", 1), Outbox.create(CLIENT), 2, { a: 1 });
    l.handleOpen(0);
    drain(l);
    l.handleConnected("websocket", 0);
    const hello = JSON.parse(drain(l)[0].frame);
    assert.deepEqual(hello, { type: "hello", protocol: 1, session: SESSION, token: "t", client: CLIENT, haveVersion: 2 });
    l.handleFrame(welcome(4, 0, { catchUp: { kind: "patches", patches: [{ version: 3, patch: { b: 1 } }, { version: 4, patch: { a: null } }] } }), 1);
    assert.deepEqual([l.state.kind, l.version, l.confirmed], ["connected", 4, { b: 1 }]);
    const s = new Link(linkConfig(SESSION, "t", 1), Outbox.create(CLIENT), 2, {});
    s.handleOpen(0);
    s.handleConnected("websocket", 0);
    s.handleFrame(welcome(9, 0, { catchUp: { kind: "patches", patches: [{ version: 3, patch: { b: 1 } }] } }), 1);
    assert.equal(s.state.kind, "backoff");
  });

  test("an answer that skips an op, a duplicate ack and OP_OUT_OF_ORDER reconnect", () => {
    for (const [answer, left] of [
      [{ type: "ack", id: { client: CLIENT, seq: 2 }, version: 2 }, 2],
      // The op was applied (it leaves the outbox), at a version the welcome will say.
      [{ type: "ack", id: { client: CLIENT, seq: 1 }, version: 2, duplicate: true }, 1],
      [{ type: "reject", id: { client: CLIENT, seq: 1 }, code: "OP_OUT_OF_ORDER", message: "m" }, 2],
    ]) {
      const l = handshaking(0);
      l.handleFrame(welcome(1, 0), 1);
      l.submit({ a: 1 }, undefined, 2);
      l.submit({ b: 1 }, undefined, 2);
      drain(l);
      l.handleFrame(JSON.stringify(answer), 3);
      assert.equal(l.state.kind, "backoff", JSON.stringify(answer));
      assert.equal(l.outbox.length, left, "nothing unanswered is dropped");
    }
  });

  test("offline stops attempts until online; visible retries a backoff at once", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    l.handleOnline(false, 2);
    assert.equal(l.state.kind, "offline");
    assert.deepEqual(drain(l), [{ kind: "close" }]);
    assert.equal(l.pollTimeout(), undefined);
    l.handleOnline(true, 3);
    assert.deepEqual(drain(l), [{ kind: "open", transport: "websocket" }]);
    l.handleClosed(4);
    assert.equal(l.state.kind, "backoff");
    l.handleVisible(false, 5);
    assert.equal(l.state.kind, "backoff");
    l.handleVisible(true, 5);
    assert.equal(l.state.kind, "connecting");
  });

  test("malformed frames are error events, never throws, and the link carries on", () => {
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    events(l);
    const good = [welcome(1, 0), '{"type":"patch","version":2,"patch":{"a":{"b":[1,2]}},"status":"x"}', opFrame({ id: { client: CLIENT, seq: 1 }, base: 1, patch: { a: 1 } })];
    const rng = new Rng(5);
    let n = 0;
    for (let i = 0; i < 3_000; i++) {
      const src = good[i % good.length];
      const cut = rng.upTo(src.length);
      const bad =
        i % 3 === 0
          ? src.slice(0, cut)
          : i % 3 === 1
            ? src.slice(0, cut) + String.fromCharCode(rng.upTo(0x7f)) + src.slice(cut + 1)
            : src.replace(/[0-9]/, "-1").replace('"', "'");
      assert.doesNotThrow(() => l.handleFrame(bad, 2 + i));
      n += events(l).filter((e) => e.type === "error_occurred").length;
    }
    assert.ok(n > 1_000, `errors reported: ${n}`);
    assert.ok(["connected", "backoff"].includes(l.state.kind));
  });
});

describe("frames", () => {
  const hello = (v) => `{"type":"hello","protocol":${v},"session":"${CLIENT}","token":"t","client":"${CLIENT}"}`;
  const dec = (s, max = 256) => codeOf(() => decode(s, max));

  test("a frame nested deeper than 128 levels is a protocol error; a deep patch does not reach the link", () => {
    const nested = (levels) => "[".repeat(levels) + "]".repeat(levels);
    // The message object is level 1, `patch` level 2.
    const patch = (levels) => `{"type":"patch","version":2,"patch":{"a":${nested(levels - 2)}}}`;
    assert.equal(decode(patch(128), DEFAULT_MAX_FRAME_BYTES).type, "patch");
    assert.equal(codeOf(() => decode(patch(129), DEFAULT_MAX_FRAME_BYTES)), "PROTOCOL_ERROR");
    assert.match((() => { try { decode(patch(200_000), DEFAULT_MAX_FRAME_BYTES); } catch (e) { return e.message; } })(), /deeper than 128/);
    const objects = (levels) => '{"a":'.repeat(levels) + "1" + "}".repeat(levels);
    assert.equal(codeOf(() => decode(`{"type":"patch","version":2,"patch":${objects(128)}}`, DEFAULT_MAX_FRAME_BYTES)), "PROTOCOL_ERROR");
    // Through the link: a protocol error event, no RangeError out of handleFrame.
    const l = handshaking(0);
    l.handleFrame(welcome(1, 0), 1);
    events(l);
    l.handleFrame(patch(200_000), 2);
    const errors = events(l).filter((e) => e.type === "error_occurred");
    assert.deepEqual(errors.map((e) => e.code), ["PROTOCOL_ERROR"]);
    assert.deepEqual(l.view(), {});
  });

  test("bad frames have the decoder's codes", () => {
    assert.equal(dec(" ".repeat(257)), "FRAME_TOO_LARGE");
    assert.equal(dec("é".repeat(129)), "FRAME_TOO_LARGE", "the limit counts UTF-8 bytes");
    assert.equal(dec('{"type":"op","id":{'), "PROTOCOL_ERROR");
    const message = (f) => {
      try {
        decode(f, 256);
      } catch (e) {
        return e.message;
      }
    };
    assert.match(message('{"type":"op"'), /truncated/);
    assert.match(message('{"type":"op","id":{"client"'), /truncated/);
    assert.match(message('{"type":"op"]'), /malformed/);
    assert.equal(dec('{"type":"launch"}'), "PROTOCOL_ERROR");
    assert.equal(dec("[1,2]"), "PROTOCOL_ERROR");
    assert.equal(dec("null"), "PROTOCOL_ERROR");
    assert.equal(dec('{"version":1}'), "PROTOCOL_ERROR", "no type");
    assert.equal(decode(hello(1), 1024).type, "hello");
    assert.equal(dec(hello(2), 1024), "UNSUPPORTED_PROTOCOL_VERSION");
    assert.match((() => { try { decode(hello(2), 1024); } catch (e) { return e.message; } })(), /version 2/);
    // A future hello with fields this build does not know still gets the version error.
    assert.equal(dec('{"type":"hello","protocol":3,"resume":[1]}'), "UNSUPPORTED_PROTOCOL_VERSION");
    assert.equal(dec('{"type":"ack","protocol":2}'), "UNSUPPORTED_PROTOCOL_VERSION");
    assert.equal(dec(welcome(1, 0).replace('"protocol":1', '"protocol":7'), 1024), "UNSUPPORTED_PROTOCOL_VERSION");
    const op = (seq, client = CLIENT) => opFrame({ id: { client, seq }, base: 3, patch: { step: "checkout", email: null }, to: "checkout" });
    assert.equal(decode(op(7)).type, "op");
    assert.equal(dec(op(1, "XYZ")), "PROTOCOL_ERROR");
    assert.equal(dec(op(0)), "PROTOCOL_ERROR");
    for (const f of [
      '{"type":"ack","id":{"client":"c","seq":1}}',
      '{"type":"ack","id":{"client":"c","seq":-1},"version":1}',
      '{"type":"ack","id":{"client":"c","seq":1.5},"version":1}',
      '{"type":"ack","id":{"client":"c","seq":1},"version":1,"duplicate":null}',
      '{"type":"ping","ts":"1"}',
      '{"type":"patch","version":2}',
      '{"type":"error","code":5,"message":"m"}',
      '{"type":"welcome","protocol":1,"version":1,"status":"s","expiresAt":0,"heartbeatMs":1,"appliedSeq":0,"serverTime":0,"catchUp":{"kind":"later"}}',
      '{"type":"welcome","protocol":1,"version":1,"status":"s","expiresAt":0,"heartbeatMs":1,"appliedSeq":0,"serverTime":0}',
      '{"type":"reject","id":{"client":"c","seq":1},"code":"X","message":"m","current":{"version":1,"status":"s"}}',
    ]) {
      assert.equal(dec(f, 1024), "PROTOCOL_ERROR", f);
    }
  });

  test("optional fields may be missing or null; unknown fields are ignored", () => {
    assert.deepEqual(decode('{"type":"ack","id":{"client":"c","seq":1},"version":2,"extra":1}'), {
      type: "ack",
      id: { client: "c", seq: 1 },
      version: 2,
      duplicate: false,
      rebased: false,
    });
    assert.deepEqual(decode('{"type":"patch","version":2,"patch":null,"status":null,"op":null}'), { type: "patch", version: 2, patch: null });
    assert.deepEqual(decode('{"type":"bye","reason":null}'), { type: "bye" });
    assert.deepEqual(decode('{"type":"ended","status":"expired","code":"SESSION_EXPIRED","version":4,"message":"m","extra":1}'), {
      type: "ended",
      status: "expired",
      code: "SESSION_EXPIRED",
      version: 4,
      message: "m",
    });
    assert.deepEqual(decode('{"type":"error","code":"C","message":"m"}'), { type: "error", code: "C", message: "m", retryable: false });
  });

  test("the default limit and UTF-8 lengths", () => {
    assert.equal(DEFAULT_MAX_FRAME_BYTES, 5 * 1024 * 1024 + 64 * 1024);
    for (const s of ["", "abc", "é", "€", "😀", "a😀é€", "\ud800x"]) {
      assert.equal(utf8Length(s), Buffer.byteLength(s, "utf8"), JSON.stringify(s));
    }
  });
});

describe("outbox", () => {
  test("coalesces only unsent ops and keeps numbers dense", () => {
    const o = Outbox.create(CLIENT);
    o.push(1, { a: 1 }, undefined, 2);
    o.markSent(1);
    o.push(1, { b: 1 }, undefined, 2);
    o.push(1, { c: 1 }, undefined, 2);
    assert.equal(o.length, 2, "b and c merged, a (sent) untouched");
    assert.deepEqual(o.all().map((op) => op.id.seq), [1, 2]);
    assert.deepEqual(o.all()[1].patch, { b: 1, c: 1 });
    assert.equal(o.nextSeq, 3);
    // Ops that do not compose stay apart: over the limit, never dropped.
    o.push(1, { d: null }, undefined, 2);
    o.push(1, { d: { x: 1 } }, undefined, 2);
    assert.equal(o.length, 3);
  });

  test("encode/decode round trip and corruption", () => {
    const o = Outbox.create(CLIENT);
    o.push(4, { a: 1 }, "checkout", 8);
    o.push(4, { b: 2 }, undefined, 8);
    const back = Outbox.decode(JSON.stringify(o.encode()));
    assert.deepEqual(back.all(), o.all());
    assert.ok(back.wasSent(2), "a restored op may have been sent");
    assert.equal(back.removeUpto(1), 1);
    const bad = JSON.stringify(o.encode()).replace('"seq":2', '"seq":5');
    assert.equal(codeOf(() => Outbox.decode(bad)), "OUTBOX_CORRUPT");
    assert.equal(codeOf(() => Outbox.decode("{")), "OUTBOX_CORRUPT");
    assert.equal(codeOf(() => Outbox.create("nope")), "OUTBOX_CORRUPT");
    for (const change of [{ format: 2 }, { nextSeq: 0, ops: [] }, { client: "x" }, { ops: "no" }, { sentUpto: -1 }, { nextSeq: 9 }]) {
      assert.equal(codeOf(() => Outbox.decode({ ...o.encode(), ...change })), "OUTBOX_CORRUPT", JSON.stringify(change));
    }
    assert.equal(codeOf(() => Outbox.decode({ ...o.encode(), ops: [{ id: { client: CLIENT, seq: 1 }, base: 4 }, o.encode().ops[1]] })), "OUTBOX_CORRUPT");
  });

  test("a server that processed more than the outbox numbered moves the next sequence on", () => {
    const o = Outbox.create(CLIENT);
    o.push(1, { a: 1 }, undefined, 8);
    assert.equal(o.removeUpto(5), 1);
    assert.equal(o.push(1, { b: 1 }, undefined, 8).seq, 6);
  });
});

describe("backoff", () => {
  test("SplitMix64 gives the reference sequence", () => {
    const r = new Rng(1234567);
    assert.deepEqual([r.nextU64(), r.nextU64(), r.nextU64()], [6457827717110365317n, 3203168211198807973n, 9817491932198370423n]);
    assert.equal(new Rng(0).nextU64(), 0xe220a8397b1dcdafn);
    const big = new Rng(2n ** 64n - 1n);
    const same = new Rng(-1n);
    assert.equal(big.nextU64(), same.nextU64());
    // upTo is the output modulo max + 1, as in Rust.
    const a = new Rng(99);
    const b = new Rng(99);
    for (const max of [0, 1, 250, 29_999, 86_400_000, 2 ** 36]) assert.equal(BigInt(a.upTo(max)), b.nextU64() % BigInt(max + 1));
  });

  test("full jitter grows to the cap and resets", () => {
    const rng = new Rng(7);
    const b = new Backoff(250, 30_000);
    let maxSeen = 0;
    for (let n = 0; n < 200; n++) {
      const d = b.nextDelay(rng);
      assert.ok(d <= 30_000 && d <= 250 * 2 ** Math.min(n, 20), `${n}: ${d}`);
      maxSeen = Math.max(maxSeen, d);
    }
    assert.ok(maxSeen > 20_000, `jitter reaches near the cap: ${maxSeen}`);
    b.reset();
    assert.ok(b.nextDelay(rng) <= 250);
  });
});

describe("LinkCore", () => {
  const base = { session: SESSION, token: "t", client: "5f0c2a9be4d14c7a8e0b3f6d9a1c2e47" };
  // A record as JSON text (the Rust engine reads the same record:
  // TS_RECORD in src/core/session/link/tests.rs).
  const RECORD_TEXT =
    '{"format":1,"version":4,"confirmed":{"cart":{"items":[1]},"email":"a@b.c","step":"cart"},"outbox":{"format":1,"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","nextSeq":3,"sentUpto":1,"ops":[{"id":{"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","seq":1},"base":4,"patch":{"cart":{"items":[1,2]},"email":null},"to":"checkout"},{"id":{"client":"5f0c2a9be4d14c7a8e0b3f6d9a1c2e47","seq":2},"base":4,"patch":{"step":"checkout"}}]}}';

  test("a record loads, and the new record has its shape", () => {
    const core = new LinkCore({ ...base, record: JSON.parse(RECORD_TEXT) });
    assert.equal(core.version, 4);
    assert.equal(core.outboxLength, 2);
    assert.deepEqual(core.view(), { cart: { items: [1, 2] }, step: "checkout" });
    assert.equal(RECORD_FORMAT, 1);
    const rec = core.record();
    assert.equal(JSON.stringify(rec), RECORD_TEXT.replace('"sentUpto":1', '"sentUpto":2'), "same shape; every restored op counts as sent");
    // The object record() gives (what the driver stores) loads, and is a copy.
    const again = new LinkCore({ ...base, record: rec });
    rec.confirmed.cart.items.push(99);
    assert.deepEqual(again.inner.confirmed, { cart: { items: [1] }, email: "a@b.c", step: "cart" });
    // Ops restored from a record resend after the welcome.
    again.handleOpen(1);
    again.pollTransmit();
    again.handleConnected("websocket", 2);
    again.pollTransmit();
    again.handleFrame(welcome(4, 0), 3);
    const sent = [again.pollTransmit(), again.pollTransmit()].map((t) => JSON.parse(t.frame));
    assert.deepEqual(sent.map((m) => [m.type, m.id.seq, m.to]), [["op", 1, "checkout"], ["op", 2, undefined]]);
  });

  test("records that do not read are OUTBOX_CORRUPT", () => {
    const good = JSON.parse(RECORD_TEXT);
    // JSON text is not a record: the driver stores the object.
    for (const record of ["{", "[]", RECORD_TEXT, { ...good, format: 2 }, { ...good, version: -1 }, { ...good, confirmed: 5 }, { ...good, outbox: { ...good.outbox, nextSeq: 7 } }]) {
      assert.equal(codeOf(() => new LinkCore({ ...base, record })), "OUTBOX_CORRUPT", JSON.stringify(record));
    }
    assert.equal(codeOf(() => new LinkCore({ ...base, client: CLIENT, record: good })), "OUTBOX_CORRUPT", "another client's");
  });

  test("options are checked", () => {
    assert.equal(codeOf(() => new LinkCore({ ...base, token: undefined })), "INVALID_OPTIONS");
    assert.equal(codeOf(() => new LinkCore({ ...base, heartbeatMs: -1 })), "INVALID_OPTIONS");
    assert.equal(codeOf(() => new LinkCore({ ...base, backoffCapMs: 1.5 })), "INVALID_OPTIONS");
    assert.equal(codeOf(() => new LinkCore({ ...base, seed: "7" })), "INVALID_OPTIONS");
    // The confirmed state is a JSON object, not its text.
    for (const confirmed of ["{nope", '{"a":1}', [1], 5]) {
      assert.equal(codeOf(() => new LinkCore({ ...base, confirmed })), "INVALID_OPTIONS", JSON.stringify(confirmed));
    }
    assert.equal(codeOf(() => new LinkCore({ ...base, client: "short" })), "OUTBOX_CORRUPT");
    const core = new LinkCore({ ...base, version: 3, confirmed: { a: 1 }, heartbeatMs: 0, seed: 2 ** 52 });
    assert.deepEqual([core.version, core.view()], [3, { a: 1 }]);
    assert.equal(new LinkCore({ ...base, confirmed: { b: 2 } }).view().b, 2);
  });

  test("submit sends the difference, 0 for no change, INVALID_STATE for a non-object", () => {
    const core = new LinkCore({ ...base, version: 1, confirmed: { a: 1, b: { c: 1 } } });
    assert.equal(core.submit({ a: 1 }, { a: 1, when: undefined }, undefined, 5), 0, "undefined is not JSON");
    assert.equal(core.submit({ a: 1, b: { c: 1 } }, { a: 2, b: { c: 1 } }, undefined, 5), 1);
    assert.equal(core.submit({ a: 2 }, { a: 2 }, "checkout", 5), 2, "a status change alone is an op");
    assert.deepEqual(core.record().outbox.ops.map((o) => o.patch), [{ a: 2 }, {}]);
    assert.equal(codeOf(() => core.submit({}, [1], undefined, 5)), "INVALID_STATE");
    const cyclic = {};
    cyclic.self = cyclic;
    assert.equal(codeOf(() => core.submit({}, cyclic, undefined, 5)), "INVALID_STATE");
    assert.deepEqual(core.view(), { a: 2, b: { c: 1 } });
  });

  test("diagnostics and the clock are plain values", () => {
    const core = new LinkCore({ ...base, seed: 3 });
    core.handleOpen(Number.NaN);
    assert.deepEqual(core.pollTransmit(), { kind: "open", transport: "websocket" });
    assert.equal(core.pollTimeout(), 10_000, "NaN is time 0");
    core.handleConnected("websocket", 1.7);
    core.pollTransmit();
    core.handleFrame(welcome(1, 0, { expiresAt: 99 }), 2);
    assert.deepEqual(core.diagnostics(), {
      state: "connected",
      stoppedBy: null,
      transport: "websocket",
      preferred: "websocket",
      rttMs: null,
      outbox: 0,
      connections: 1,
      serverVersion: 1,
      clientId: base.client,
    });
    assert.deepEqual([core.status, core.expiresAt], ["cart", 99]);
    assert.deepEqual(core.pollEvent(), { type: "status_changed", status: "cart" });
    assert.deepEqual(core.pollEvent(), { type: "connection_established", transport: "websocket" });
  });
});

describe("merge patches", () => {
  const cases = JSON.parse(readFileSync(new URL("../../tests/fixtures/merge_patch_cases.json", import.meta.url), "utf8"));

  test("apply agrees with the Rust cases, in place or not", () => {
    assert.ok(cases.apply.length >= 10);
    for (const c of cases.apply) {
      const target = JSON.stringify(c.target);
      assert.ok(sameJson(apply(c.target, c.patch), c.result), JSON.stringify(c));
      assert.equal(JSON.stringify(c.target), target, "apply leaves its target alone");
      assert.ok(sameJson(applyMergePatch(c.target, c.patch), c.result));
      const mine = JSON.parse(target);
      const patch = JSON.parse(JSON.stringify(c.patch));
      const out = applyInPlace(mine, patch);
      assert.ok(sameJson(out, c.result), JSON.stringify(c));
      // Nothing of the patch is shared with the result.
      if (out !== null && typeof out === "object") {
        const before = JSON.stringify(patch);
        const touch = (v) => {
          if (v && typeof v === "object") for (const k of Object.keys(v)) (typeof v[k] === "object" && v[k] ? touch(v[k]) : (v[k] = "changed"));
        };
        touch(out);
        assert.equal(JSON.stringify(patch), before);
      }
    }
  });

  test("compose agrees with the Rust cases", () => {
    for (const c of cases.compose) {
      const got = compose(c.first, c.second);
      if (c.none) assert.equal(got, undefined, JSON.stringify(c));
      else assert.ok(sameJson(got, c.result), JSON.stringify(c));
    }
  });

  test("diff agrees with the Rust cases and leads to the new value", () => {
    for (const c of cases.diff) {
      const patch = diff(c.old, c.new);
      assert.ok(sameJson(patch, c.diff), `${JSON.stringify(c)} gave ${JSON.stringify(patch)}`);
      assert.ok(sameJson(apply(c.old, patch), c.applied ?? c.new), JSON.stringify(c));
    }
  });

  test("__proto__ keys are plain keys", () => {
    const out = apply({}, JSON.parse('{"__proto__":{"polluted":1}}'));
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.equal(({}).polluted, undefined);
    assert.deepEqual(Object.keys(out), ["__proto__"]);
  });
});
