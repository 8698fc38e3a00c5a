// The page's lifecycle rules (js/src/lifecycle/) against every verdict of the
// Rust core's (tests/fixtures/lifecycle_cases.json, written from
// src/core/lifecycle.rs by tests/lifecycle_tables.rs): each transition of each
// flow, validity and expiry around the TTL, TTL and extend bounds, with the
// same codes and messages. Pure Node: the rules need no browser.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import {
  Lifecycle,
  checkTransition,
  checkValidity,
  dueToExpire,
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
