// The README's picture of the health page (docs/admin.png), taken by
// `make screenshot` after the demo's: sessions in both built-in flows and
// several statuses on the real server, two of them waiting too long and one
// order past its TTL (set in its SQLite file while the server is stopped),
// the timer's first sweep, a cleanup's dry run listed and waiting for its
// confirmation, and half a minute of the live charts while a few clients
// send ops (some refused) and one long-polls.
import { spawnSync } from "node:child_process";

const CLIENT = "5c".repeat(16);

/** A JSON request to `server`: the parsed answer. */
async function call(server, method, path, { token, body } = {}) {
  const res = await fetch(new URL(path, server.url), {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return text ? JSON.parse(text) : null;
}

/** A session of `flow` taken through `steps`; ended when `end`. */
async function session(server, flow, steps = [], end = false) {
  const c = await call(server, "POST", "/v1/sessions", { body: { flow, ttlSeconds: 3600 } });
  const s = { id: c.id, token: c.token, version: 1, seq: 0 };
  for (const to of steps) await op(server, s, { step: to }, to);
  if (end) await call(server, "DELETE", `/v1/sessions/${s.id}`, { token: s.token });
  return s;
}

/** One op on `s` (a status change when `to`); keeps its version. */
async function op(server, s, patch, to) {
  const body = { type: "op", id: { client: CLIENT, seq: ++s.seq }, base: s.version, patch, ...(to ? { to } : {}) };
  const a = await call(server, "POST", `/v1/sessions/${s.id}/ops`, { token: s.token, body });
  if (a?.type === "ack") s.version = a.version;
  else s.seq -= a?.code === "OP_OUT_OF_ORDER" ? 1 : 0;
  return a;
}

/**
 * Fills the server with sessions, restarts it with some made stale, then
 * opens /admin in `browser`, signs in with `token`, runs a dry run and
 * writes the picture to `out`.
 */
export async function adminScreenshot(server, browser, token, out) {
  const carts = [];
  for (let i = 0; i < 4; i++) carts.push(await session(server, "checkout"));
  for (let i = 0; i < 2; i++) await session(server, "checkout", ["checkout"]);
  const paying = await session(server, "checkout", ["checkout", "processing"]);
  for (let i = 0; i < 3; i++) await session(server, "checkout", [], true);
  await session(server, "table", ["BROWSING"]);
  await session(server, "table", ["BROWSING", "CART_ACTIVE"]);
  const ordered = await session(server, "table", ["BROWSING", "CART_ACTIVE", "ORDER_PLACED"]);
  const awaiting = await session(server, "table", ["BROWSING", "CART_ACTIVE", "ORDER_PLACED", "AWAITING_PAYMENT"]);
  await session(server, "table", [], true);
  const now = Date.now();
  await server.stop();
  const sql =
    `UPDATE sessions SET status_since = ${now - 17 * 60_000} WHERE id = '${paying.id}';` +
    `UPDATE sessions SET status_since = ${now - 42 * 60_000} WHERE id = '${awaiting.id}';` +
    `UPDATE sessions SET expires_at = ${now - 5 * 60_000} WHERE id = '${ordered.id}';` +
    `UPDATE sessions SET updated_at = ${now - 2 * 86_400_000} WHERE status = 'CLOSED';`;
  const r = spawnSync("sqlite3", [server.db, sql], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`sqlite3: ${r.stderr}`);
  await server.start();

  // Traffic for the charts: ops on the carts, now and then one refused, one long-poll.
  let running = true;
  const traffic = (async () => {
    for (let n = 0; running; n++) {
      const s = carts[n % carts.length];
      await op(server, s, { items: n });
      if (n % 9 === 4) await op(server, s, {}, "completed");
      if (n % 23 === 11) {
        s.seq += 3;
        await op(server, s, {});
        s.seq -= 3;
      }
      await new Promise((res) => setTimeout(res, 40 + ((n * 37) % 90)));
    }
  })();
  // One client of an idle session long-polls all along.
  const idle = await session(server, "checkout");
  const poll = new AbortController();
  const polling = (async () => {
    while (running) {
      await fetch(new URL(`/v1/sessions/${idle.id}/changes?since=1&waitMs=30000`, server.url), {
        headers: { authorization: `Bearer ${idle.token}` },
        signal: poll.signal,
      })
        .then((res) => res.text())
        .catch(() => {});
    }
  })();

  try {
    const context = await browser.newContext({ viewport: { width: 1440, height: 1100 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(new URL("admin", server.url).href);
    await page.fill("#token", token);
    await page.click("#login button[type=submit]");
    await page.waitForFunction(() => document.body.dataset.loaded);
    // The ended sessions past the retention went at the timer's first sweep;
    // a cleanup of every ended one, however recent, lists the others.
    await page.fill("#older-than", "0");
    await page.click("#dry-run");
    await page.waitForSelector("#plan:not([hidden])");
    await page.click("#run");
    await page.waitForSelector("#confirm:not([hidden])");
    await page.waitForTimeout(30_000);
    // The health report refreshes by itself every minute only: read it now.
    const loaded = Number(await page.evaluate(() => document.body.dataset.loaded));
    await page.click("#refresh");
    await page.waitForFunction((t) => Number(document.body.dataset.loaded) > t, loaded);
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: out, fullPage: true });
    await context.close();
  } finally {
    running = false;
    poll.abort();
    await traffic;
    await polling;
  }
}
