// openSession in real Chromium pages against the real server: the events of
// authentication, the lifecycle (flow checks, extend, validate, expiry on a
// fast-forwarded clock, end), a flow the page declares (enforced alike by
// the page and the server), offline reopening and ending, two synced tabs
// racing for the store, and that closing releases every listener, timer and
// socket. The transport scenarios (restart, fallback, reload) are
// in link.test.mjs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { serverAndBrowser } from "./harness.mjs";

const env = serverAndBrowser({ before, after });

/** Server state of session `id` through its HTTP API. */
async function serverSession(id, token) {
  const res = await fetch(`${env.server.url}v1/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

describe("openSession against the real server", () => {
  test("a refused token gives auth_failed and auth_required; authenticate() recovers", async () => {
    const page = await env.blankPage();
    const out = await page.evaluate(async () => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const events = [];
      const session = await sessile.openSession({
        name: "auth",
        initial: { step: "cart" },
        server: { http: location.origin, session: { id: "0".repeat(32), token: "wrong" } },
        onEvent: (e) => events.push(e),
      });
      await new Promise((resolve) => session.on("auth_required", resolve));
      const refused = events.map((e) => e.type + (e.code ? `:${e.code}` : ""));
      const stopped = session.diagnostics().link;
      session.update({ step: "checkout" }); // kept locally while unauthenticated
      const success = new Promise((resolve) => session.on("auth_success", resolve));
      await session.authenticate(); // a new server session holding the current state
      await success;
      await session.flush();
      const result = { refused, stopped, id: session.sessionId, token: session.token, state: session.state };
      await session.close();
      return result;
    });
    assert.ok(out.refused.includes("auth_failed:SESSION_NOT_FOUND"), out.refused.join());
    assert.ok(out.refused.includes("auth_required:SESSION_NOT_FOUND"), out.refused.join());
    assert.equal(out.stopped.state, "stopped");
    assert.equal(out.stopped.stoppedBy, "SESSION_NOT_FOUND");
    const stored = await serverSession(out.id, out.token);
    assert.equal(stored.status, 200);
    assert.deepEqual(stored.body.state, { step: "checkout" });
  });

  test("flow checks, extend, validate and end run on the core's rules and reach the server", async () => {
    const page = await env.blankPage();
    const out = await page.evaluate(async () => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const events = [];
      const session = await sessile.openSession({
        name: "life",
        initial: { items: [] },
        server: { http: location.origin },
        ttlSeconds: 120,
        onEvent: (e) => events.push(e.type),
      });
      await new Promise((resolve) => session.on("connection_established", resolve));
      const r = { first: session.status };
      try {
        session.step("success");
      } catch (e) {
        r.refused = e.code;
      }
      session.step("checkout", { email: "shopper@example.com" });
      await session.flush();
      r.id = session.sessionId;
      r.token = session.token;
      const before = session.expiresAt;
      r.added = (await session.extend(600)) - before;
      r.valid = await session.validate();
      try {
        await session.extend(0);
      } catch (e) {
        r.badExtend = e.code;
      }
      await session.end("terminated");
      r.events = events;
      r.remembered = localStorage.getItem("sessile:life:server");
      return r;
    });
    assert.equal(out.first, "cart");
    assert.equal(out.refused, "INVALID_TRANSITION");
    assert.ok(out.added >= 599_000, `extended by ${out.added} ms`);
    assert.equal(out.valid.valid, true);
    assert.ok(["INVALID_OPTIONS", "PROTOCOL_ERROR"].includes(out.badExtend), out.badExtend);
    assert.ok(out.events.includes("session_terminated"));
    assert.equal(out.remembered, null, "the ended session is forgotten");
    const stored = await serverSession(out.id, out.token);
    assert.equal(stored.status, 410, JSON.stringify(stored.body));
    assert.equal(stored.body.code, "SESSION_CLOSED");
  });

  test("a declared flow: the page steps through it, refuses what it forbids, and the server holds and enforces the same table", async () => {
    const flow = {
      name: "pay-desk",
      initial: "open",
      ended: "abandoned",
      expired: "timed-out",
      statuses: { open: "active", paying: "waiting", paid: "closed", "timed-out": "expired", abandoned: "closed" },
      transitions: { open: ["paying", "timed-out", "abandoned"], paying: ["paid", "abandoned"] },
    };
    const page = await env.blankPage();
    const out = await page.evaluate(async (flow) => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const attempt = (run) => {
        try {
          run();
          return "allowed";
        } catch (e) {
          return { code: e.code, message: e.message };
        }
      };
      const session = await sessile.openSession({ name: "declared", initial: { n: 0 }, server: { http: location.origin }, flow });
      await new Promise((resolve) => session.on("connection_established", resolve));
      const r = { first: session.status, skip: attempt(() => session.step("paid")), unknown: attempt(() => session.step("cart")) };
      r.forward = attempt(() => session.step("paying", { n: 1 }));
      await session.flush();
      r.back = attempt(() => session.step("open"));
      r.status = session.status;
      r.id = session.sessionId;
      r.token = session.token;
      await session.close();
      try {
        await sessile.openSession({ name: "bad", initial: {}, server: { http: location.origin }, flow: { ...flow, initial: "paid" } });
        r.bad = "opened";
      } catch (e) {
        r.bad = { code: e.code, message: e.message };
      }
      // A function anywhere in an option's data is refused, not left out.
      for (const [key, options] of [
        ["nested", { name: "bad", flow: { ...flow, check: () => true } }],
        ["top", { name: "bad", ttlSeconds: () => 60 }],
      ]) {
        try {
          await sessile.openSession(options);
          r[key] = "opened";
        } catch (e) {
          r[key] = { code: e.code, message: e.message };
        }
      }
      return r;
    }, flow);
    assert.equal(out.first, "open");
    const refusal = (from, to) => ({ code: "INVALID_TRANSITION", message: `transition from \`${from}\` to \`${to}\` is not allowed` });
    assert.deepEqual(out.skip, refusal("open", "paid"));
    assert.deepEqual(out.unknown, refusal("open", "cart"), "a built-in flow's status means nothing here");
    assert.equal(out.forward, "allowed");
    assert.deepEqual(out.back, refusal("paying", "open"));
    assert.equal(out.status, "paying");
    assert.deepEqual(out.bad, { code: "INVALID_OPTIONS", message: "invalid option `flow`: `initial` is `paid`, a terminal status" });
    const notData = (option) => ({ code: "INVALID_OPTIONS", message: `invalid option \`options\`: \`${option}\` must be JSON data, not a function` });
    assert.deepEqual(out.nested, notData("flow"));
    assert.deepEqual(out.top, notData("ttlSeconds"));

    // The server holds the same status and table, and refuses the same step with the same message.
    const stored = await serverSession(out.id, out.token);
    assert.equal(stored.status, 200, JSON.stringify(stored.body));
    assert.equal(stored.body.status, "paying");
    assert.equal(stored.body.flow, "pay-desk");
    assert.deepEqual(stored.body.state, { n: 1 });
    assert.deepEqual(stored.body.table, flow);
    const send = (seq, to) =>
      fetch(`${env.server.url}v1/sessions/${out.id}/ops`, {
        method: "POST",
        headers: { authorization: `Bearer ${out.token}`, "content-type": "application/json" },
        body: JSON.stringify({ type: "op", id: { client: "ab".repeat(16), seq }, base: stored.body.version, patch: {}, to }),
      }).then(async (res) => ({ status: res.status, body: await res.json() }));
    const back = await send(1, "open");
    assert.equal(back.status, 422, JSON.stringify(back.body));
    assert.deepEqual({ code: back.body.code, message: back.body.message }, out.back);
    assert.equal((await send(2, "paid")).status, 200);
    const closed = await serverSession(out.id, out.token);
    assert.deepEqual([closed.status, closed.body.code], [410, "SESSION_CLOSED"]);
    // A table the page refuses never reaches the server as a session; the server refuses it alike.
    const res = await fetch(`${env.server.url}v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ flow: { ...flow, initial: "paid" } }),
    });
    assert.equal(res.status, 400);
    const refused = await res.json();
    assert.deepEqual({ code: refused.code, message: refused.message }, out.bad);
  });

  test("a session past its TTL is expired by timestamp (clock fast-forwarded) and refuses changes", async () => {
    const page = await env.blankPage();
    await page.clock.install();
    const out = await page.evaluate(async () => {
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const session = await sessile.openSession({ name: "ttl", initial: { step: "cart" }, ttlSeconds: 60 });
      window.expired = new Promise((resolve) => session.on("session_expired", resolve));
      window.ttlSession = session;
      return { valid: await session.validate() };
    });
    assert.equal(out.valid.valid, true);
    await page.clock.fastForward("01:05");
    const after = await page.evaluate(async () => {
      const e = await window.expired;
      const r = { status: e.status, validate: await window.ttlSession.validate() };
      try {
        window.ttlSession.update({ step: "checkout" });
      } catch (err) {
        r.update = err.code;
      }
      return r;
    });
    assert.equal(after.status, "expired");
    assert.deepEqual(after.validate, { valid: false, code: "SESSION_EXPIRED" });
    assert.equal(after.update, "SESSION_EXPIRED");
  });

  test("offline: the status survives a reopen, end(reason) waits for the server, a failed terminate clears nothing", async () => {
    // flush() waits for the ack while the link is still connecting, and the
    // welcome's older status never replaces the status an unanswered op moves
    // to: the step to "checkout" is on the server, and remembered, before close.
    const context = await env.browser.newContext();
    const page = await context.newPage();
    await page.goto(`${env.server.url}healthz`);
    const first = await page.evaluate(async () => {
      const { loadSessile } = await import("/js/index.js");
      window.sessile = await loadSessile();
      window.openIt = (name) => window.sessile.openSession({ name, initial: { items: [] }, server: { http: location.origin } });
      const s = await window.openIt("offline-end");
      s.step("checkout", { items: ["SK-1"] });
      await s.flush();
      const t = await window.openIt("offline-term");
      t.update({ items: ["SK-2"] });
      await t.flush();
      window.term = t;
      const r = { id: s.sessionId, token: s.token, termId: t.sessionId, termToken: t.token };
      await s.close();
      return r;
    });
    await context.setOffline(true);
    const offline = await page.evaluate(async () => {
      // A reload while offline: a new session object, and no server to say where it was.
      const s = await window.openIt("offline-end");
      window.ending = s;
      const r = { status: s.status, state: s.state, link: s.diagnostics().link.state };
      for (const to of ["processing", "upsell-1", "upsell-2", "success"]) s.step(to);
      r.stepped = s.status;
      let settled = "pending";
      window.ended = s.end("completed").then(() => (settled = "resolved"), (e) => (settled = `rejected ${e.code}`));
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      r.settled = settled;
      r.outbox = s.diagnostics().link.outbox;
      try {
        await window.term.end();
        r.terminate = "resolved";
      } catch (e) {
        r.terminate = e.code;
      }
      r.termState = window.term.state;
      r.termStatus = window.term.status;
      return r;
    });
    assert.equal(offline.link, "offline");
    assert.equal(offline.status, "checkout", "the status as last known, not the flow's initial one");
    assert.deepEqual(offline.state, { items: ["SK-1"] });
    assert.equal(offline.stepped, "success");
    assert.equal(offline.settled, "pending", "end() waits for the server while offline");
    assert.equal(offline.outbox, 5, "the four steps and the end wait in the outbox");
    assert.equal(offline.terminate, "SERVER_UNREACHABLE");
    assert.deepEqual(offline.termState, { items: ["SK-2"] }, "a failed terminate keeps the session");
    assert.equal(offline.termStatus, "cart");
    const before = await serverSession(first.id, first.token);
    assert.equal(before.body.status, "checkout", "nothing reached the server while offline");
    await context.setOffline(false);
    const online = await page.evaluate(async () => {
      await window.ended;
      await window.term.end();
      const again = await window.openIt("offline-end");
      const r = { state: again.state, id: again.sessionId };
      await again.close();
      return r;
    });
    const ended = await serverSession(first.id, first.token);
    assert.equal(ended.status, 410);
    assert.match(ended.body.message, /status `completed`/);
    const terminated = await serverSession(first.termId, first.termToken);
    assert.equal(terminated.status, 410);
    assert.match(terminated.body.message, /status `terminated`/);
    assert.deepEqual(online.state, { items: [] }, "the local copy was cleared once the server had the end");
    assert.notEqual(online.id, first.id);
    await context.close();
  });

  test("two synced tabs: when another tab's stored copy wins a write, this tab's newest change stays", async () => {
    const context = await env.browser.newContext();
    const tabs = [];
    for (let i = 0; i < 3; i++) {
      const p = await context.newPage();
      await p.goto(`${env.server.url}healthz`);
      tabs.push(p);
    }
    const [a, b, locker] = tabs;
    const open = (p) =>
      p.evaluate(async () => {
        const { loadSessile } = await import("/js/index.js");
        const sessile = await loadSessile();
        const s = await sessile.openSession({ name: "tab-race", initial: { lines: {} }, server: { http: location.origin } });
        window.s = s;
        window.seen = [];
        s.on("*", (e) => window.seen.push({ type: e.type, winner: e.winner, lines: { ...s.state.lines } }));
        await new Promise((resolve) => (s.diagnostics().link?.state === "connected" ? resolve() : s.once("connection_established", resolve)));
        s.update({ lines: { ...s.state.lines, [`first-${Math.random()}`]: 1 } });
        await s.flush();
      });
    await open(a);
    await open(b);
    // The third tab holds the namespace's write lock: A's and B's writes queue behind it, A's first.
    await locker.evaluate(
      () => new Promise((held) => navigator.locks.request("sessile:tab-race", () => (held(), new Promise((r) => (window.release = r))))),
    );
    await a.evaluate(() => window.s.update({ lines: { ...window.s.state.lines, fromA: 1 } }));
    // B gets A's change from the server: unsaved in B, its write queued behind A's.
    await b.waitForFunction(() => window.s.state.lines.fromA === 1);
    await a.waitForFunction(() => window.s.diagnostics().writing);
    await b.waitForFunction(() => window.s.diagnostics().writing);
    // B's own change while the server is down, so A's stored copy cannot have it.
    await env.server.stop();
    let seen;
    try {
      await b.evaluate(() => window.s.update({ lines: { ...window.s.state.lines, fromB: 1 } }));
      await locker.evaluate(() => window.release());
      // A stores first; B's write is refused and B's store takes A's copy, which lacks fromB.
      await b.waitForFunction(() => window.seen.some((e) => e.type === "conflict"));
      await new Promise((r) => setTimeout(r, 300));
      seen = await b.evaluate(() => ({ events: window.seen, lines: window.s.state.lines }));
    } finally {
      await env.server.start();
    }
    const conflict = seen.events.find((e) => e.type === "conflict");
    assert.equal(conflict.winner, "remote");
    assert.equal(conflict.lines.fromB, 1, "this tab's change is still there when the page hears of the conflict");
    assert.ok(seen.events.slice(seen.events.indexOf(conflict)).every((e) => e.lines.fromB === 1), JSON.stringify(seen.events));
    assert.equal(seen.lines.fromB, 1, "and after it, with the server still down");
    const final = await b.evaluate(async () => {
      await new Promise((resolve) => (window.s.diagnostics().link.outbox === 0 ? resolve() : window.s.once("state_synchronized", resolve)));
      await window.s.flush();
      return { lines: window.s.state.lines, id: window.s.sessionId, token: window.s.token };
    });
    assert.equal(final.lines.fromA, 1);
    assert.equal(final.lines.fromB, 1);
    const server = await serverSession(final.id, final.token);
    assert.deepEqual(server.body.state.lines, final.lines);
    await context.close();
  });

  /** Two tabs of one browser (one context: shared storage) with `openTab(page, name, options)` opening a synced session as `window.s`. */
  async function twoTabs() {
    const context = await env.browser.newContext();
    const pages = [];
    for (let i = 0; i < 2; i++) {
      const p = await context.newPage();
      await p.goto(`${env.server.url}healthz`);
      pages.push(p);
    }
    return { context, pages };
  }
  const openTab = (page, name, extra = {}) =>
    page.evaluate(
      async ([name, extra]) => {
        const { loadSessile } = await import("/js/index.js");
        const sessile = await loadSessile();
        const s = await sessile.openSession({ name, initial: { lines: {} }, server: { http: location.origin }, ...extra });
        window.s = s;
        window.seen = [];
        s.on("*", (e) => window.seen.push({ type: e.type, origin: e.origin, lines: { ...s.state.lines } }));
        await new Promise((resolve) => (s.diagnostics().link?.state === "connected" ? resolve() : s.once("connection_established", resolve)));
        await s.flush();
      },
      [name, extra],
    );
  /** The page's link goes down as the browser's `offline` event says (the other tab stays online). */
  const linkDown = (page) =>
    page.evaluate(async () => {
      dispatchEvent(new Event("offline"));
      await new Promise((resolve) => {
        const check = () => (window.s.diagnostics().link.state === "offline" ? resolve() : setTimeout(check, 10));
        check();
      });
    });

  test("two tabs: a tab that opens while another tab's change is unsent keeps it; the server's older copy never replaces it", async () => {
    const { context, pages: [a, b] } = await twoTabs();
    await openTab(a, "pending-keep");
    await a.evaluate(() => window.s.update({ lines: { x: 1 } }));
    await a.evaluate(() => window.s.flush());
    await linkDown(a);
    // Unsent (A's link is down), stored in the copy both tabs share.
    await a.evaluate(() => window.s.update({ lines: { ...window.s.state.lines, y: 1 } }));
    await a.evaluate(() => window.s.flush());
    assert.equal(await a.evaluate(() => window.s.diagnostics().link.outbox), 1);
    // B restores that copy, then connects: the server's copy lacks y.
    await openTab(b, "pending-keep");
    const opened = await b.evaluate(() => ({ lines: window.s.state.lines, events: window.seen }));
    assert.deepEqual(opened.lines, { x: 1, y: 1 }, `B shows A's unsent change: ${JSON.stringify(opened.events)}`);
    assert.ok(opened.events.every((e) => e.lines.y === 1), JSON.stringify(opened.events));
    // B changes the same line, on top of A's value; then A's link comes back.
    await b.evaluate(() => window.s.update({ lines: { ...window.s.state.lines, y: window.s.state.lines.y + 1 } }));
    await b.evaluate(() => window.s.flush());
    // A takes B's copy (nothing of A's is unsaved, so nothing goes back on top).
    await a.waitForFunction(() => window.s.state.lines.y === 2);
    await a.evaluate(async () => {
      dispatchEvent(new Event("online"));
      await new Promise((resolve) => {
        const check = () => (window.s.diagnostics().link.outbox === 0 && window.s.diagnostics().link.state === "connected" ? resolve() : setTimeout(check, 20));
        check();
      });
      await window.s.flush();
    });
    const final = await b.evaluate(() => ({ id: window.s.sessionId, token: window.s.token }));
    const server = await serverSession(final.id, final.token);
    assert.deepEqual(server.body.state.lines, { x: 1, y: 2 });
    for (const tab of [a, b]) {
      await tab.waitForFunction(() => window.s.state.lines.y === 2 && window.s.state.lines.x === 1);
    }
    await context.close();
  });

  test("two tabs: a tab that takes another tab's stored copy puts its own unsaved change back on top, and stores it", async () => {
    const { context, pages: [a, b] } = await twoTabs();
    await openTab(a, "rebase");
    await linkDown(a);
    // A synced change is written at once: A's IndexedDB refuses it (the quota,
    // as the browser says it), so it stays unstored while B's copy arrives.
    await a.evaluate(() => {
      const put = IDBObjectStore.prototype.put;
      window.refuseWrites = true;
      IDBObjectStore.prototype.put = function (...args) {
        if (!window.refuseWrites) return put.apply(this, args);
        const tx = this.transaction;
        Object.defineProperty(tx, "error", { value: new DOMException("over the quota", "QuotaExceededError"), configurable: true });
        tx.abort();
        return {};
      };
    });
    // The write starts in update() and is refused later, when IndexedDB
    // answers: until then `unsaved` is false and `writing` true, so the
    // refusal is waited for (lastError stays until a write is stored).
    // Events from the update on carry A's change (the events are marked in
    // the same turn as the update: the link's own error for going down may
    // still arrive just before it).
    const { mark, ...before } = await a.evaluate(() => {
      const mark = window.seen.length;
      window.s.update({ lines: { fromA: 1 } });
      const d = window.s.diagnostics();
      return { mark, unsaved: d.unsaved, writing: d.writing };
    });
    assert.deepEqual(before, { unsaved: false, writing: true }, "handed to a write at once");
    await a.waitForFunction(() => window.s.diagnostics().lastError?.code === "QUOTA_EXCEEDED");
    const refused = await a.evaluate(() => {
      const d = window.s.diagnostics();
      return { version: d.version, storedVersion: d.storedVersion, reported: window.seen.some((e) => e.type === "error_occurred") };
    });
    assert.ok(refused.storedVersion < refused.version, `not stored: ${JSON.stringify(refused)}`);
    assert.ok(refused.reported, "the refused write is an error_occurred event");
    await openTab(b, "rebase");
    await b.evaluate(() => window.s.update({ lines: { ...window.s.state.lines, fromB: 1 } }));
    await b.evaluate(() => window.s.flush());
    // B also stored at open (the server's copy): A has taken B's copy once it shows fromB.
    await a.waitForFunction(() => window.s.state.lines.fromB === 1);
    assert.ok(await a.evaluate(() => window.seen.some((e) => e.type === "session_updated" && e.origin === "tab")));
    const taken = await a.evaluate(() => ({ lines: window.s.state.lines, events: window.seen }));
    assert.deepEqual(taken.lines, { fromA: 1, fromB: 1 }, `A keeps its change on B's copy: ${JSON.stringify(taken.events)}`);
    assert.ok(taken.events.slice(mark).every((e) => e.lines.fromA === 1), JSON.stringify(taken.events));
    // Stored once the quota is back: B (and a reload) sees both.
    await a.evaluate(() => (window.refuseWrites = false));
    await a.evaluate(() => window.s.flush());
    await b.waitForFunction(() => window.s.state.lines.fromA === 1 && window.s.state.lines.fromB === 1);
    await a.evaluate(async () => {
      dispatchEvent(new Event("online"));
      await new Promise((resolve) => {
        const check = () => (window.s.diagnostics().link.outbox === 0 && window.s.diagnostics().link.state === "connected" ? resolve() : setTimeout(check, 20));
        check();
      });
    });
    const final = await b.evaluate(() => ({ id: window.s.sessionId, token: window.s.token }));
    const server = await serverSession(final.id, final.token);
    assert.deepEqual(server.body.state.lines, { fromA: 1, fromB: 1 });
    await context.close();
  });

  test("two tabs, both links down: a change made on top of the other tab's unsent one wins, whichever tab reconnects first", async () => {
    const { context, pages: [a, b] } = await twoTabs();
    await openTab(a, "order");
    await openTab(b, "order");
    await linkDown(a);
    await linkDown(b);
    // A's click, then B's on top of it (B took A's stored copy): the shopper's order is y = 1, then y = 2.
    await a.evaluate(() => window.s.update({ lines: { y: 1 } }));
    await a.evaluate(() => window.s.flush());
    await b.waitForFunction(() => window.s.state.lines.y === 1);
    await b.evaluate(() => window.s.update({ lines: { y: window.s.state.lines.y + 1 } }));
    await b.evaluate(() => window.s.flush());
    await a.waitForFunction(() => window.s.state.lines.y === 2);
    const online = (page) =>
      page.evaluate(async () => {
        dispatchEvent(new Event("online"));
        await new Promise((resolve) => {
          const check = () => (window.s.diagnostics().link.outbox === 0 && window.s.diagnostics().link.state === "connected" ? resolve() : setTimeout(check, 20));
          check();
        });
        await window.s.flush();
      });
    // The older change reaches the server first; the newer one, made on it, arrives second with an older base.
    await online(a);
    const who = await a.evaluate(() => ({ id: window.s.sessionId, token: window.s.token }));
    assert.deepEqual((await serverSession(who.id, who.token)).body.state.lines, { y: 1 });
    assert.equal(await a.evaluate(() => window.s.state.lines.y), 2, "A still shows B's unsent change");
    await online(b);
    const server = await serverSession(who.id, who.token);
    assert.deepEqual(server.body.state.lines, { y: 2 }, "the newer change stands");
    for (const tab of [a, b]) {
      await tab.waitForFunction(() => window.s.state.lines.y === 2);
      const conflicts = await tab.evaluate(() => window.seen.filter((e) => e.type === "conflict"));
      assert.deepEqual(conflicts, [], "nothing of the shopper's was lost");
    }
    await context.close();
  });

  test("open and close 30 times: no listener, timer or socket is left behind", async () => {
    const page = await env.blankPage();
    const out = await page.evaluate(async () => {
      const live = { listeners: 0, sockets: 0 };
      for (const target of [window, document]) {
        const add = target.addEventListener.bind(target);
        const remove = target.removeEventListener.bind(target);
        const seen = new Set();
        target.addEventListener = (type, fn, o) => {
          const key = `${type}`;
          if (!seen.has(fn)) live.listeners++;
          seen.add(fn);
          return add(type, fn, o);
        };
        target.removeEventListener = (type, fn, o) => {
          if (seen.delete(fn)) live.listeners--;
          return remove(type, fn, o);
        };
      }
      const Native = window.WebSocket;
      window.WebSocket = class extends Native {
        constructor(...args) {
          super(...args);
          live.sockets++;
          this.addEventListener("close", () => live.sockets--);
        }
      };
      const { loadSessile } = await import("/js/index.js");
      const sessile = await loadSessile();
      const baseline = { ...live };
      let version = 0;
      for (let i = 0; i < 30; i++) {
        const s = await sessile.openSession({ name: "leak", initial: { n: 0 }, server: { http: location.origin } });
        await new Promise((resolve) => (s.diagnostics().link?.state === "connected" ? resolve() : s.on("state_synchronized", resolve)));
        s.update((st) => ({ n: st.n + 1 }));
        await s.flush();
        version = s.diagnostics().link.serverVersion;
        await s.close();
      }
      await new Promise((r) => setTimeout(r, 300));
      return { baseline, after: { ...live }, version };
    });
    assert.deepEqual(out.after, out.baseline, `listeners/sockets before ${JSON.stringify(out.baseline)}, after ${JSON.stringify(out.after)}`);
    assert.equal(out.version, 31, "30 reopenings of one remembered session, one op each, each applied once");
  });

  test("without working Web Locks a tab never takes a live tab's client id: both tabs' changes are stored", async () => {
    const context = await env.browser.newContext();
    const open = async (page) =>
      page.evaluate(async () => {
        const { loadSessile } = await import("/js/index.js");
        const sessile = await loadSessile();
        window.events = [];
        window.session = await sessile.openSession({
          name: "tabs",
          initial: { a: 0, b: 0 },
          server: { http: location.origin },
          onEvent: (e) => window.events.push(e),
        });
        await new Promise((resolve) => (window.session.diagnostics().link?.state === "connected" ? resolve() : window.session.on("connection_established", resolve)));
        return window.session.diagnostics().link.clientId;
      });
    const first = await context.newPage();
    await first.goto(`${env.server.url}healthz`);
    const firstId = await open(first);
    // Second tab: no Web Locks at all. Third: a lock request that fails for another reason than a refusal.
    const noLocks = await context.newPage();
    await noLocks.addInitScript(() => Object.defineProperty(Navigator.prototype, "locks", { get: () => undefined, configurable: true }));
    await noLocks.goto(`${env.server.url}healthz`);
    const noLocksId = await open(noLocks);
    const broken = await context.newPage();
    await broken.addInitScript(() => {
      const request = LockManager.prototype.request;
      // Only the client id's lock fails (the store's write lock still works).
      LockManager.prototype.request = function (name, ...rest) {
        return name.includes(":client:") ? Promise.reject(new TypeError("lock manager broken")) : request.call(this, name, ...rest);
      };
    });
    await broken.goto(`${env.server.url}healthz`);
    const brokenId = await open(broken);
    assert.equal(new Set([firstId, noLocksId, brokenId]).size, 3, `client ids ${firstId} ${noLocksId} ${brokenId}`);
    const reported = await broken.evaluate(() => window.events.filter((e) => e.type === "error_occurred").map((e) => e.error.message));
    assert.ok(reported.some((m) => /Web Lock.*lock manager broken/.test(m)), reported.join());
    // A reload of the tab without locks keeps its own id.
    await noLocks.reload();
    assert.equal(await open(noLocks), noLocksId);

    // Each tab's first op (seq 1 under its own id) is applied: none deduped away.
    const edit = (page, key) =>
      page.evaluate(async (k) => {
        window.session.update({ [k]: 1 });
        await window.session.flush();
        return { id: window.session.sessionId, token: window.session.token };
      }, key);
    await edit(first, "a");
    const s = await edit(noLocks, "b");
    await edit(broken, "c");
    const stored = await serverSession(s.id, s.token);
    assert.deepEqual(stored.body.state, { a: 1, b: 1, c: 1 });
    await context.close();
  });
});
