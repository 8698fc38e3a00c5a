// The pending register of a synced session (js/src/link/pending.ts), pure
// Node on the compiled js/dist: the paths an op's patch sets, the entry a tab
// lists and its limits, what another tab reads from it (ops its link has
// seen applied, other sessions and unreadable entries left out), the page's
// values kept at those paths; and the link core naming the ops it took from
// `patch` frames. The browser half (two tabs, one offline) is in
// session.test.mjs and www/test/e2e.test.mjs.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { encode } from "../dist/link/core/frames.js";
import { Link } from "../dist/link/core/link.js";
import { Outbox } from "../dist/link/core/outbox.js";
import { linkConfig } from "../dist/link/core/types.js";
import { forgetPending, getAt, keepPending, overlaps, pathsOf, pendingOf, publishPending } from "../dist/link/pending.js";

const A = "a".repeat(32);
const B = "b".repeat(32);
const SESSION = "5".repeat(32);

/** A localStorage of a Map, counting writes; a write over `limit` characters throws as a full quota does. */
function fakeStorage(limit = Infinity) {
  const m = new Map();
  const s = {
    writes: 0,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => {
      if (String(v).length > limit) throw Object.assign(new Error("quota"), { name: "QuotaExceededError" });
      s.writes++;
      m.set(k, String(v));
    },
    removeItem: (k) => void m.delete(k),
    keys: () => [...m.keys()],
  };
  globalThis.localStorage = s;
  return s;
}

const none = () => 0;

describe("the pending register", () => {
  test("the paths of a merge patch: each key down to a value that is not a non-empty object", () => {
    assert.deepEqual(pathsOf({ cart: { "SK-1": 2, "SK-2": null }, step: "checkout", customer: {}, tags: ["a"] }), [
      ["cart", "SK-1"],
      ["cart", "SK-2"],
      ["step"],
      ["customer"],
      ["tags"],
    ]);
    assert.deepEqual(pathsOf("replaced"), [[]]);
    let deep = 1;
    for (let i = 0; i < 40; i++) deep = { k: deep };
    const [only] = pathsOf(deep);
    assert.equal(only.length, 16, "a deeper change lists its first 16 keys");
    assert.ok(overlaps(["cart"], ["cart", "SK-1"]) && overlaps(["cart", "SK-1"], ["cart"]) && overlaps([], ["x"]));
    assert.ok(!overlaps(["cart", "SK-1"], ["cart", "SK-2"]));
  });

  test("an entry lists each op's sequence and paths, is not written again unchanged, and goes when the outbox is empty", () => {
    const storage = fakeStorage();
    let last = publishPending("ns", A, SESSION, [{ seq: 3, patch: { cart: { x: 1 } } }, { seq: 4, patch: { step: "checkout" } }], "");
    assert.deepEqual(JSON.parse(last), { session: SESSION, ops: [{ seq: 3, paths: [["cart", "x"]] }, { seq: 4, paths: [["step"]] }] });
    assert.equal(storage.writes, 1);
    last = publishPending("ns", A, SESSION, [{ seq: 3, patch: { cart: { x: 1 } } }, { seq: 4, patch: { step: "checkout" } }], last);
    assert.equal(storage.writes, 1, "unchanged: not written");
    assert.deepEqual(pendingOf("ns", [A], SESSION, none), { all: false, paths: [["cart", "x"], ["step"]] });
    // Op 3 seen applied (a patch named it): only op 4 is still to come.
    assert.deepEqual(pendingOf("ns", [A], SESSION, () => 3), { all: false, paths: [["step"]] });
    assert.deepEqual(pendingOf("ns", [A], "6".repeat(32), none), { all: false, paths: [] }, "another server session's entry");
    assert.deepEqual(pendingOf("ns", [B], SESSION, none), { all: false, paths: [] }, "a client with no entry");
    assert.equal(publishPending("ns", A, SESSION, [], last), "");
    assert.deepEqual(storage.keys(), []);
    publishPending("ns", A, SESSION, [{ seq: 5, patch: { x: 1 } }], "");
    forgetPending("ns", A);
    assert.deepEqual(storage.keys(), []);
  });

  test("over 256 paths, over 16 KiB or over the quota an entry says anything, until its last op is seen applied", () => {
    fakeStorage();
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]));
    const text = publishPending("ns", A, SESSION, [{ seq: 1, patch: { a: 1 } }, { seq: 2, patch: many }], "");
    assert.deepEqual(JSON.parse(text), { session: SESSION, all: true, last: 2 });
    assert.deepEqual(pendingOf("ns", [A], SESSION, () => 1), { all: true, paths: [] });
    assert.deepEqual(pendingOf("ns", [A], SESSION, () => 2), { all: false, paths: [] });
    const long = { ["x".repeat(20_000)]: 1 };
    assert.equal(JSON.parse(publishPending("ns", B, SESSION, [{ seq: 7, patch: long }], "")).all, true);
    // A quota that refuses the full list takes the short form.
    fakeStorage(200);
    const wide = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`key-${i}`, i]));
    assert.deepEqual(JSON.parse(publishPending("ns", A, SESSION, [{ seq: 9, patch: wide }], "")), { session: SESSION, all: true, last: 9 });
    // A quota that refuses even that throws (the session reports it).
    fakeStorage(10);
    assert.throws(() => publishPending("ns", A, SESSION, [{ seq: 9, patch: { a: 1 } }], ""), /quota/);
  });

  test("entries that do not read are left out", () => {
    const storage = fakeStorage();
    storage.setItem(`sessile:ns:pending:${A}`, "{not json");
    storage.setItem(`sessile:ns:pending:${B}`, JSON.stringify({ session: SESSION, ops: [{ seq: "1", paths: [["x"]] }, { seq: 2, paths: [["y"], [3]] }] }));
    assert.deepEqual(pendingOf("ns", [A, B], SESSION, none), { all: false, paths: [["y"]] });
  });

  test("the page's values stay at the listed paths, the server's everywhere else", () => {
    const view = { cart: { x: 1, y: 1 }, step: "cart", old: true };
    const page = { cart: { x: 2 }, step: "checkout", extra: { a: 1 } };
    assert.deepEqual(keepPending(view, page, { all: false, paths: [["cart", "x"], ["cart", "y"], ["extra", "a"], ["old"]] }), {
      cart: { x: 2 },
      step: "cart",
      extra: { a: 1 },
    });
    assert.deepEqual(view, { cart: { x: 1, y: 1 }, step: "cart", old: true }, "the view is not changed");
    assert.equal(keepPending(view, page, { all: true, paths: [] }), page);
    assert.equal(keepPending(view, page, { all: false, paths: [] }), view);
    assert.equal(getAt(page, ["cart", "x"]), 2);
    assert.equal(getAt(page, ["cart", "x", "deeper"]), undefined);
  });

  test("the link notes the op a patch names, per client, and only once it is applied in order", () => {
    const l = new Link(linkConfig(SESSION, "t", 1), Outbox.create(A), 0, {});
    l.handleOpen(0);
    l.handleConnected("websocket", 10);
    const welcome = {
      type: "welcome", protocol: 1, version: 2, status: "cart", expiresAt: 0, heartbeatMs: 5_000, appliedSeq: 0, serverTime: 0,
      catchUp: { kind: "patches", patches: [
        { version: 1, patch: { a: 1 }, op: { client: B, seq: 4 } },
        { version: 2, patch: { b: 1 } },
      ] },
    };
    l.handleFrame(encode(welcome), 20);
    assert.equal(l.appliedSeq(B), 4);
    // Version 4 ahead of a gap is held, not applied: its op is not noted yet.
    l.handleFrame(encode({ type: "patch", version: 4, patch: { c: 1 }, op: { client: B, seq: 6 } }), 30);
    assert.equal(l.appliedSeq(B), 4);
    l.handleFrame(encode({ type: "patch", version: 3, patch: { d: 1 }, op: { client: B, seq: 5 } }), 40);
    assert.equal(l.appliedSeq(B), 6);
    assert.equal(l.appliedSeq(A), 0);
    assert.deepEqual(l.confirmed, { a: 1, b: 1, c: 1, d: 1 });
  });
});
