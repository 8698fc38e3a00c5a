// The page's lifecycle rules (js/src/lifecycle/) against every verdict of the
// Rust core's (tests/fixtures/lifecycle_cases.json, written from
// src/core/lifecycle.rs by tests/lifecycle_tables.rs): each transition of each
// flow, validity and expiry around the TTL, TTL and extend bounds, tables a
// page declares (valid ones with their verdicts, each kind of invalid one),
// with the same codes and messages. Pure Node: the rules need no browser.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  Lifecycle,
  checkTransition,
  checkValidity,
  declareFlow,
  dueToExpire,
  flowOf,
  extendedExpiry,
  flowTable,
  ttlMs,
} from "../dist/lifecycle/lifecycle.js";
import { SessileError } from "../dist/errors.js";

const cases = JSON.parse(readFileSync(new URL("../../tests/fixtures/lifecycle_cases.json", import.meta.url), "utf8"));

/** The verdict of `run` in the fixture's shape: { ok } or { code, message }. */
function verdictOf(run) {
  try {
    return { ok: run() ?? true };
  } catch (e) {
    assert.ok(e instanceof SessileError, `threw ${e}`);
    return { code: e.code, message: e.message };
  }
}

test("every transition of every flow gets the core's verdict", () => {
  assert.ok(cases.transitions.length > 150);
  for (const c of cases.transitions) {
    const got = verdictOf(() => checkTransition(flowTable(c.flow), c.from, c.to));
    assert.deepEqual(got, c.verdict, `${c.flow}: ${c.from} -> ${c.to}`);
  }
});

test("validity and expiry around the TTL match the core", () => {
  for (const c of cases.validity) {
    const flow = flowTable(c.flow);
    assert.deepEqual(verdictOf(() => checkValidity(flow, c.status, c.expiresAt, c.now)), c.verdict, JSON.stringify(c));
    assert.equal(dueToExpire(flow, c.status, c.expiresAt, c.now), c.dueToExpire, JSON.stringify(c));
  }
});

test("TTL and extend bounds match the core", () => {
  for (const c of cases.ttl) {
    assert.deepEqual(verdictOf(() => ttlMs(c.ttlSeconds ?? undefined)), c.verdict, JSON.stringify(c));
  }
  for (const c of cases.extend) {
    assert.deepEqual(verdictOf(() => extendedExpiry(c.expiresAt, c.now, c.seconds)), c.verdict, JSON.stringify(c));
  }
  assert.deepEqual(verdictOf(() => flowTable("no-such-flow")), cases.unknownFlow);
  // Names inherited from Object.prototype are not flows or statuses.
  assert.equal(verdictOf(() => flowTable("toString")).code, "UNKNOWN_FLOW");
  assert.equal(verdictOf(() => checkTransition(flowTable("checkout"), "constructor", "cart")).code, "INVALID_TRANSITION");
});

test("a Lifecycle walks the checkout funnel, extends, expires and ends", () => {
  const t0 = 1_700_000_000_000;
  const life = new Lifecycle("checkout", 60, t0);
  assert.equal(life.status, "cart");
  assert.equal(life.expiresAt, t0 + 60_000);
  life.check("cart"); // staying put is allowed
  assert.equal(verdictOf(() => life.check("success")).code, "INVALID_TRANSITION");
  life.check("checkout");
  life.setStatus("checkout");
  assert.equal(life.kind("processing"), "waiting");
  assert.equal(life.kind("nope"), undefined);
  assert.equal(life.extend(120, t0 + 30_000), t0 + 180_000);
  assert.equal(verdictOf(() => life.extend(0, t0)).code, "INVALID_OPTIONS");
  life.validate(t0 + 179_999);
  assert.equal(life.dueToExpire(t0 + 179_999), false);
  assert.equal(life.dueToExpire(t0 + 180_000), true);
  assert.equal(verdictOf(() => life.validate(t0 + 180_000)).code, "SESSION_EXPIRED");
  assert.deepEqual(life.terminalStatuses(), ["expired", "terminated"]);
  life.setStatus("terminated");
  assert.equal(verdictOf(() => life.validate(t0)).code, "SESSION_CLOSED");
  assert.equal(verdictOf(() => new Lifecycle("checkout", 59, t0)).code, "INVALID_OPTIONS");
  assert.equal(verdictOf(() => new Lifecycle("nope", 60, t0)).code, "UNKNOWN_FLOW");
  assert.equal(new Lifecycle("table", undefined, t0).status, "PENDING");
});

test("declared tables get the core's verdict: the same table, or the same code and message", () => {
  const declared = cases.declared;
  assert.ok(declared.filter((c) => c.verdict.code).length >= 35, "each kind of invalid table");
  assert.ok(declared.filter((c) => c.transitions).length >= 3, "valid tables with their transitions");
  for (const c of declared) {
    const input = structuredClone(c.flow);
    const got = verdictOf(() => flowOf(c.flow));
    assert.deepEqual(got, c.verdict, JSON.stringify(c.flow).slice(0, 300));
    assert.deepEqual(c.flow, input, "the declaration is not changed");
    for (const t of c.transitions ?? []) {
      const v = verdictOf(() => checkTransition(flowOf(c.flow), t.from, t.to));
      assert.deepEqual(v, t.verdict, `${c.verdict.ok.name}: ${t.from} -> ${t.to}`);
    }
    for (const t of c.validity ?? []) {
      const flow = flowOf(c.flow);
      assert.deepEqual(verdictOf(() => checkValidity(flow, t.status, t.expiresAt, t.now)), t.verdict, JSON.stringify(t));
      assert.equal(dueToExpire(flow, t.status, t.expiresAt, t.now), t.dueToExpire, JSON.stringify(t));
    }
  }
});

test("a declaration is read as the server reads its JSON: undefined fields left out, the rest checked", () => {
  const desk = cases.declared[0].flow;
  assert.equal(declareFlow({ ...desk, name: undefined }).name, "custom");
  assert.equal(verdictOf(() => declareFlow({ ...desk, expired: undefined })).message, "invalid option `flow`: `expired` is `expired`, which is not in `statuses`");
  assert.equal(verdictOf(() => declareFlow(() => desk)).code, "INVALID_OPTIONS");
  assert.equal(verdictOf(() => declareFlow({ ...desk, initial: 10n })).code, "INVALID_OPTIONS");
  // A status named like a prototype member is an own status, not an inherited one.
  assert.equal(verdictOf(() => checkTransition(declareFlow(desk), "constructor", "open")).code, "INVALID_TRANSITION");
});

test("a Lifecycle follows a declared flow: its initial status, rows and terminal statuses", () => {
  const t0 = 1_700_000_000_000;
  const desk = cases.declared[0].flow;
  const life = new Lifecycle(desk, 60, t0);
  assert.equal(life.status, "open");
  assert.deepEqual(life.table, cases.declared[0].verdict.ok);
  assert.deepEqual(life.terminalStatuses(), ["timed-out", "abandoned"]);
  assert.equal(verdictOf(() => life.check("paid")).code, "INVALID_TRANSITION");
  life.check("paying");
  life.setStatus("paying");
  assert.equal(life.kind("paying"), "waiting");
  assert.equal(life.dueToExpire(t0 + 60_000), false, "paying has no row to timed-out");
  life.validate(t0 + 60_000);
  life.setStatus("paid");
  assert.equal(verdictOf(() => life.validate(t0)).code, "SESSION_CLOSED");
  const bad = verdictOf(() => new Lifecycle({ ...desk, initial: "paid" }, 60, t0));
  assert.deepEqual(bad, { code: "INVALID_OPTIONS", message: "invalid option `flow`: `initial` is `paid`, a terminal status" });
});
