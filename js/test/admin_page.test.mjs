// The health page (`/admin`, served by sessile-server) in headless Chromium
// against the real server with a real SQLite file: the page shows the same
// numbers as the JSON endpoints, a dry run then the confirmed cleanup
// removes exactly the sessions the dry run listed (checked through the JSON
// API), in batches the server takes when it lists more than one sweep may
// name, the live charts read the light endpoint only, and a wrong token gets
// a clear error, not a blank page.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import { blankWww, launchBrowser, startServer } from "./harness.mjs";

const TOKEN = "admin-page-test-token";
const env = { server: undefined, browser: undefined };

before(async () => {
  env.server = await startServer(["--www", blankWww(), "--sweep-every-secs", "0"], {
    env: { SESSILE_ADMIN_TOKEN: TOKEN },
  });
  env.browser = await launchBrowser();
});
after(async () => {
  await env.browser?.close();
  await env.server?.stop();
});

/** A JSON request to the server: { status, body }. */
async function call(method, path, { token, body } = {}) {
  const res = await fetch(new URL(path, env.server.url), {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null, headers: res.headers };
}

const adminGet = async (path) => {
  const r = await call("GET", path, { token: TOKEN });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
};

const CLIENT = "ad".repeat(16);

/** Creates a session of `flow` and takes it through `steps` (statuses) by ops; `end` ends it. */
async function session(flow, steps = [], { end = false } = {}) {
  const c = await call("POST", "/v1/sessions", { body: { flow } });
  assert.equal(c.status, 201, JSON.stringify(c.body));
  const s = { id: c.body.id, token: c.body.token, version: 1, seq: 0 };
  for (const to of steps) {
    const op = { type: "op", id: { client: CLIENT, seq: ++s.seq }, base: s.version, patch: { at: to }, to };
    const a = await call("POST", `/v1/sessions/${s.id}/ops`, { token: s.token, body: op });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    s.version = a.body.version;
  }
  if (end) assert.equal((await call("DELETE", `/v1/sessions/${s.id}`, { token: s.token })).status, 200);
  return s;
}

/** Runs SQL on the server's file while it is stopped, then starts it again (same port, same file). */
async function withServerStopped(sql) {
  await env.server.stop();
  const r = spawnSync("sqlite3", [env.server.db, sql], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  await env.server.start();
}

/** Opens /admin in a fresh context; with `token`, types it into the page. */
async function openAdmin(token) {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && /Content.Security|Refused/i.test(m.text()) && problems.push(m.text()));
  await page.goto(new URL("admin", env.server.url).href);
  if (token !== undefined) {
    await page.fill("#token", token);
    await page.click("#login button[type=submit]");
  }
  return { context, page, problems };
}

/** What the page shows, read from its DOM. */
function shown(page) {
  return page.evaluate(() => {
    const rows = (sel) => [...document.querySelectorAll(sel)];
    const text = (id) => document.getElementById(id).textContent;
    return {
      status: text("status"),
      total: Number(document.getElementById("total").dataset.count),
      totalText: text("total"),
      byFlow: Object.fromEntries(rows("#by-flow tr[data-status]").map((r) => [`${r.dataset.flow}/${r.dataset.status}`, Number(r.dataset.count)])),
      byFlowText: rows("#by-flow tr[data-status]").map((r) => r.lastElementChild.textContent),
      byStatus: Object.fromEntries(rows("#by-status tr[data-status]").map((r) => [r.dataset.status, Number(r.dataset.count)])),
      stuck: Object.fromEntries(rows("#stuck-table tr[data-id]").map((r) => [r.dataset.id, r.dataset.level])),
      stuckSummary: text("stuck-summary"),
      orphans: rows("#orphans li[data-id]").map((li) => li.dataset.id),
      problems: rows("#problems li:not(.empty)").map((li) => li.textContent),
      recommendations: rows("#recommendations li:not(.empty)").map((li) => li.textContent),
      sweeps: rows("#sweeps tr[data-trigger]").map((r) => ({ trigger: r.dataset.trigger, removed: Number(r.dataset.removed), expired: Number(r.dataset.expired) })),
      ws: Number(document.getElementById("v-clients").dataset.ws),
      longPolls: Number(document.getElementById("v-clients").dataset.longPolls),
      rejects: Number(document.getElementById("v-rejects").dataset.total),
      rejectsLegend: rows("#l-rejects li").map((li) => li.textContent),
      untitled: rows("th, h2, h3, figcaption, label").filter((e) => !e.title).map((e) => e.textContent),
    };
  });
}

/** Clicks Refresh and waits for a health report made after `since`. */
async function refreshed(page, since = 0) {
  await page.click("#refresh");
  await page.waitForFunction((t) => Number(document.body.dataset.loaded) > t, since, { timeout: 10_000 });
}

test("the health page shows the numbers of the JSON endpoints", async () => {
  // Sessions in several flows and statuses.
  await session("checkout");
  await session("checkout", ["checkout"]);
  const paying = await session("checkout", ["checkout", "processing"]);
  await session("checkout", [], { end: true });
  await session("table");
  const ordered = await session("table", ["BROWSING", "CART_ACTIVE", "ORDER_PLACED"]);
  const awaiting = await session("table", ["BROWSING", "CART_ACTIVE", "ORDER_PLACED", "AWAITING_PAYMENT"]);
  await session("table", [], { end: true });
  // Rejected ops: a transition the flow forbids, a sequence number out of order.
  const bad = await session("checkout");
  const reject = async (op) => assert.equal((await call("POST", `/v1/sessions/${bad.id}/ops`, { token: bad.token, body: op })).status, 422);
  await reject({ type: "op", id: { client: CLIENT, seq: 1 }, base: 1, patch: {}, to: "completed" });
  await reject({ type: "op", id: { client: CLIENT, seq: 5 }, base: 1, patch: {} });
  // Waiting 16 min (a warning), 25 min (stale), and an order past its TTL (orphaned).
  const now = Date.now();
  await withServerStopped(
    `UPDATE sessions SET status_since = ${now - 16 * 60_000} WHERE id = '${paying.id}';` +
      `UPDATE sessions SET status_since = ${now - 25 * 60_000} WHERE id = '${awaiting.id}';` +
      `UPDATE sessions SET expires_at = 1000 WHERE id = '${ordered.id}';`,
  );
  // Fresh counters after the restart: make the rejects again, and hold a long-poll open.
  await reject({ type: "op", id: { client: CLIENT, seq: 2 }, base: 1, patch: {}, to: "completed" });
  await reject({ type: "op", id: { client: CLIENT, seq: 7 }, base: 1, patch: {} });
  await reject({ type: "op", id: { client: CLIENT, seq: 8 }, base: 1, patch: {} });
  const poll = new AbortController();
  const polling = fetch(new URL(`/v1/sessions/${bad.id}/changes?since=1&waitMs=30000`, env.server.url), {
    headers: { authorization: `Bearer ${bad.token}` },
    signal: poll.signal,
  }).catch(() => {});

  const page0 = await fetch(new URL("admin", env.server.url));
  assert.equal(page0.status, 200);
  assert.match(page0.headers.get("content-security-policy"), /default-src 'none'; script-src 'self'/);
  assert.equal(page0.headers.get("cache-control"), "no-store");
  assert.ok(!(await page0.text()).includes(TOKEN));

  const { context, page, problems } = await openAdmin(TOKEN);
  const asked = [];
  page.on("request", (r) => asked.push(new URL(r.url()).pathname));
  try {
    await page.waitForFunction(() => document.body.dataset.loaded && document.getElementById("v-clients").dataset.ws !== undefined);
    await refreshed(page, Number(await page.evaluate(() => document.body.dataset.loaded)));
    const seen = await shown(page);
    const health = await adminGet("/v1/admin/health");
    const stats = await adminGet("/v1/admin/stats");
    assert.equal(seen.status, health.status);
    assert.equal(health.status, "unhealthy");
    assert.equal(seen.total, health.total);
    assert.equal(health.total, 9);
    assert.equal(seen.totalText, "9 sessions stored");
    const byFlow = {};
    const byStatus = {};
    for (const [flow, statuses] of Object.entries(health.byStatus)) {
      for (const [status, n] of Object.entries(statuses)) {
        byFlow[`${flow}/${status}`] = n;
        byStatus[status] = (byStatus[status] ?? 0) + n;
      }
    }
    assert.deepEqual(seen.byFlow, byFlow);
    assert.deepEqual(seen.byStatus, byStatus);
    assert.equal(byFlow["checkout/cart"], 2);
    // Counts with their plurals: "1 session", "2 sessions".
    assert.ok(seen.byFlowText.includes("1 session") && seen.byFlowText.includes("2 sessions"), seen.byFlowText.join("|"));
    assert.deepEqual(seen.stuck, Object.fromEntries(health.stuck.map((s) => [s.id, s.level])));
    assert.deepEqual(seen.stuck, { [paying.id]: "warning", [awaiting.id]: "stale" });
    assert.equal(seen.stuckSummary, "1 stale session, 1 session waiting past the warning, 1 orphaned session");
    assert.deepEqual(seen.orphans, health.orphans);
    assert.deepEqual(seen.orphans, [ordered.id]);
    assert.deepEqual(seen.problems, health.problems);
    assert.ok(seen.problems.includes("1 session is past its TTL in a status that cannot expire"), seen.problems.join("|"));
    assert.deepEqual(seen.recommendations, health.recommendations);
    assert.ok(seen.recommendations.length >= 2);
    // The live figures.
    assert.equal(stats.longPollsOpen, 1);
    assert.equal(seen.longPolls, stats.longPollsOpen);
    assert.equal(seen.ws, stats.wsOpen);
    assert.deepEqual(stats.rejectsByCode, { INVALID_TRANSITION: 1, OP_OUT_OF_ORDER: 2 });
    assert.equal(seen.rejects, 3);
    assert.deepEqual(seen.rejectsLegend, ["INVALID_TRANSITION: 1 reject", "OP_OUT_OF_ORDER: 2 rejects"]);
    assert.deepEqual(seen.sweeps, []);
    // The charts read the counters (GET /v1/admin/live), never the statistics' scan of every session.
    await page.waitForFunction(() => document.querySelectorAll("#l-ops li").length > 0);
    assert.ok(asked.includes("/v1/admin/live"), asked.join(" "));
    assert.ok(!asked.includes("/v1/admin/stats"), asked.join(" "));
    // They name the instance they come from (the one in the stats).
    assert.equal(await page.textContent("#live-instance"), `instance ${stats.instance}`);
    // The token form posts nowhere by itself and names no field.
    assert.equal(await page.getAttribute("#login", "method"), "post");
    assert.equal(await page.getAttribute("#token", "name"), null);
    // Every heading, column and label says what it means.
    assert.deepEqual(seen.untitled, []);
    assert.deepEqual(problems, []);
  } finally {
    poll.abort();
    await polling;
    await context.close();
  }
});

test("a dry run, then the confirmed cleanup, removes exactly the sessions the dry run listed", async () => {
  const ended = [];
  for (let i = 0; i < 3; i++) ended.push(await session("checkout", [], { end: true }));
  const overdue = await session("checkout");
  const keeps = await session("table");
  await withServerStopped(`UPDATE sessions SET expires_at = 1000 WHERE id = '${overdue.id}';`);
  const { context, page, problems } = await openAdmin(TOKEN);
  try {
    await page.waitForFunction(() => document.body.dataset.loaded);
    await page.fill("#older-than", "0");
    await page.click("#dry-run");
    await page.waitForSelector("#plan:not([hidden])");
    const listed = await page.evaluate(() => ({
      expired: [...document.querySelectorAll("#plan-expired li[data-id]")].map((li) => li.dataset.id),
      removed: [...document.querySelectorAll("#plan-removed li[data-id]")].map((li) => li.dataset.id),
      summary: document.getElementById("plan-summary").textContent,
    }));
    assert.ok(listed.expired.includes(overdue.id), JSON.stringify(listed));
    for (const s of ended) assert.ok(listed.removed.includes(s.id), JSON.stringify(listed));
    assert.ok(!listed.removed.includes(keeps.id) && !listed.expired.includes(keeps.id));
    assert.match(listed.summary, new RegExp(`would expire ${listed.expired.length} sessions? and remove ${listed.removed.length} ended sessions?`));
    // The dry run changed nothing.
    for (const s of ended) assert.equal((await call("GET", `/v1/sessions/${s.id}`, { token: s.token })).body.code, "SESSION_CLOSED");
    // A session that ends after the dry run qualifies now, but was not listed: it must stay.
    const late = await session("checkout", [], { end: true });
    const wouldNow = await call("POST", "/v1/admin/sweep", { token: TOKEN, body: { dryRun: true, olderThanSecs: 0 } });
    assert.ok(wouldNow.body.removed.includes(late.id), "without the list, the late one would go too");
    await page.click("#run");
    await page.waitForSelector("#confirm:not([hidden])");
    assert.match(await page.textContent("#confirm-text"), /exactly those listed above/);
    const before = await adminGet("/v1/admin/health");
    await page.click("#confirm-yes");
    await page.waitForFunction(() => document.getElementById("cleanup-result").textContent.startsWith("Done"));
    // Through the JSON API: the listed ended sessions are gone, the listed
    // overdue one expired, everything else is where it was.
    for (const id of listed.removed) {
      const s = [...ended].find((e) => e.id === id);
      if (s) assert.equal((await call("GET", `/v1/sessions/${id}`, { token: s.token })).body.code, "SESSION_NOT_FOUND", id);
    }
    assert.equal((await call("GET", `/v1/sessions/${overdue.id}`, { token: overdue.token })).body.code, "SESSION_EXPIRED");
    assert.equal((await call("GET", `/v1/sessions/${late.id}`, { token: late.token })).body.code, "SESSION_CLOSED");
    assert.equal((await call("GET", `/v1/sessions/${keeps.id}`, { token: keeps.token })).status, 200);
    const afterRun = await adminGet("/v1/admin/health");
    assert.equal(afterRun.total, before.total - listed.removed.length);
    const again = await call("POST", "/v1/admin/sweep", { token: TOKEN, body: { dryRun: true, olderThanSecs: 0 } });
    assert.deepEqual(again.body.removed.filter((id) => listed.removed.includes(id)), []);
    assert.ok(again.body.removed.includes(late.id));
    // The run is in the sweeper's log, on the page and in the JSON.
    const log = await adminGet("/v1/admin/sweeps");
    assert.equal(log.runs[0].trigger, "admin");
    assert.equal(log.runs[0].removed, listed.removed.length);
    assert.equal(log.runs[0].expired, listed.expired.length);
    const seen = await shown(page);
    assert.deepEqual(seen.sweeps[0], { trigger: "admin", removed: listed.removed.length, expired: listed.expired.length });
    assert.equal(seen.total, afterRun.total);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a cleanup listing more sessions than one sweep may name runs in batches the server takes", async () => {
  const template = await session("checkout", [], { end: true });
  const BULK = 10_050;
  const cols = "token_hash, flow, status, status_since, state, version, created_at, updated_at, expires_at, clients, flow_table";
  await withServerStopped(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${BULK}) ` +
      `INSERT INTO sessions (id, ${cols}) SELECT printf('bulk%028d', i), ${cols.replace("updated_at", "1000")} ` +
      `FROM n, sessions WHERE sessions.id = '${template.id}';`,
  );
  const { context, page, problems } = await openAdmin(TOKEN);
  try {
    await page.waitForFunction(() => document.body.dataset.loaded);
    await page.fill("#older-than", "0");
    await page.click("#dry-run");
    await page.waitForSelector("#plan:not([hidden])");
    const dry = await call("POST", "/v1/admin/sweep", { token: TOKEN, body: { dryRun: true, olderThanSecs: 0 } });
    const listed = await page.evaluate(() => ({
      ids: document.querySelectorAll("#plan-removed li[data-id]").length,
      more: document.querySelector("#plan-removed li.more")?.textContent,
      summary: document.getElementById("plan-summary").textContent,
    }));
    assert.ok(dry.body.removed.length > BULK, String(dry.body.removed.length));
    // The page lists the first 200 and counts the rest.
    assert.equal(listed.ids, 200);
    assert.equal(listed.more, `and ${(dry.body.removed.length - 200).toLocaleString("en-US")} more`);
    assert.match(listed.summary, new RegExp(`remove ${dry.body.removed.length.toLocaleString("en-US")} ended sessions`));
    // One listed session goes before the confirmation: it is named, not an error.
    await withServerStopped("DELETE FROM sessions WHERE id = 'bulk0000000000000000000000000007';");
    await page.click("#run");
    await page.waitForSelector("#confirm:not([hidden])");
    const confirmText = await page.textContent("#confirm-text");
    assert.match(confirmText, /exactly those listed above/);
    assert.match(confirmText, /audit log of sessions removed at or before/);
    assert.match(confirmText, /in 2 batches of at most 10,000 sessions/);
    // Each batch's progress, and whether the confirm button was disabled meanwhile.
    await page.evaluate(() => {
      window.progress = [];
      const result = document.getElementById("cleanup-result");
      new MutationObserver(() =>
        window.progress.push({ text: result.textContent, disabled: document.getElementById("confirm-yes").disabled }),
      ).observe(result, { childList: true, characterData: true, subtree: true });
    });
    await page.click("#confirm-yes");
    await page.waitForFunction(() => document.getElementById("cleanup-result").textContent.startsWith("Done"), null, { timeout: 60_000 });
    const progress = await page.evaluate(() => window.progress);
    const running = progress.filter((p) => p.text.startsWith("Cleaning up"));
    assert.deepEqual(
      running.map((p) => p.text),
      ["Cleaning up: batch 1 of 2…", "Cleaning up: batch 2 of 2…"],
    );
    assert.ok(running.every((p) => p.disabled), JSON.stringify(running));
    assert.equal(await page.isDisabled("#confirm-yes"), false);
    const result = await page.textContent("#cleanup-result");
    assert.match(result, new RegExp(`^Done in 2 batches: expired \\d+ sessions?, removed ${(dry.body.removed.length - 1).toLocaleString("en-US")} sessions`));
    assert.match(result, /1 listed session was no longer there or no longer qualified and was left alone: bulk0000000000000000000000000007\./);
    const health = await adminGet("/v1/admin/health");
    const left = Object.values(health.byStatus).flatMap((s) => Object.entries(s)).filter(([st]) => st === "terminated");
    assert.deepEqual(left, [], JSON.stringify(health.byStatus));
    const log = await adminGet("/v1/admin/sweeps");
    assert.equal(log.runs[0].removed + log.runs[1].removed, dry.body.removed.length - 1);
    assert.deepEqual(problems, []);
  } finally {
    await context.close();
  }
});

test("a wrong admin token gets a clear error and the token form again", async () => {
  const { context, page } = await openAdmin("not-the-token");
  try {
    await page.waitForSelector("#error:not([hidden])");
    assert.match(await page.textContent("#error"), /admin token was refused \(401 INVALID_TOKEN/);
    assert.equal(await page.isVisible("#login"), true);
    assert.equal(await page.isVisible("#dashboard"), false);
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    // The right one opens it, in the same tab.
    await page.fill("#token", TOKEN);
    await page.click("#login button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.loaded);
    assert.equal(await page.isVisible("#error"), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("sessile-admin-token")), TOKEN);
    assert.ok(!page.url().includes(TOKEN));
  } finally {
    await context.close();
  }
});
