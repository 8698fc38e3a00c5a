// What the demo's end-to-end tests share: the real server serving the built
// demo (www/dist), headless Chromium, a scenario wrapper that saves
// screenshots under www/test-results/ when a test fails, the panel's figures
// and the server's stored session through its HTTP API.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built demo (scripts/build). */
export const WWW = path.join(ROOT, "www/dist");
/** Where a failed test's screenshots go (gitignored). */
export const RESULTS_DIR = path.join(ROOT, "www/test-results");
/** The admin token the tests' server gets, for the audit log. */
export const ADMIN_TOKEN = "demo-e2e-admin-token";

/** Fails early, with the fix, when the demo was not built. */
export function assertBuilt() {
  if (!existsSync(path.join(WWW, "index.html")) || !existsSync(path.join(WWW, "sw.js"))) {
    throw new Error(`${WWW} is missing or incomplete: run scripts/build (it runs vite build in www/)`);
  }
}

/**
 * Runs `fn({ context, open })` in a fresh browser context (its own storage,
 * service worker and network switch), or in `given` (a context opened
 * earlier, closed here too). An uncaught exception in a page fails it. When
 * it fails, every page of the context is saved as
 * www/test-results/<test name>-<n>.png, and the failure message gets their
 * event logs and the console's errors.
 */
export async function scenario(t, browser, fn, given) {
  const context = given ?? (await browser.newContext());
  const errors = [];
  const uncaught = [];
  const watch = (page) => {
    page.on("pageerror", (e) => uncaught.push(`${page.url()}: ${e}`));
    // Console errors are expected here (a refused WebSocket, a request while offline): only shown.
    page.on("console", (m) => m.type() === "error" && errors.push(`${page.url()}: ${m.text()}`));
  };
  context.pages().forEach(watch);
  context.on("page", watch);
  /** Opens `url` in a new tab of this context and waits for the demo to be up. */
  const open = async (url) => {
    const page = await context.newPage();
    await page.goto(url);
    await ready(page);
    return page;
  };
  try {
    await fn({ context, open });
    assert.deepEqual(uncaught, [], "uncaught exceptions in the page");
  } catch (e) {
    mkdirSync(RESULTS_DIR, { recursive: true });
    const slug = t.name.replace(/[^\w]+/g, "-").replace(/^-|-$/g, "").slice(0, 80);
    const logs = [];
    for (const [i, page] of context.pages().entries()) {
      const file = path.join(RESULTS_DIR, `${slug}-${i + 1}.png`);
      await page.screenshot({ path: file, fullPage: true }).catch(() => {});
      logs.push(`tab ${i + 1} (${file}):\n${await page.textContent("#log").catch(() => "(no log)")}`);
    }
    e.message += `\nscreenshots and event logs:\n${logs.join("\n")}\nconsole errors: ${errors.join("\n") || "none"}`;
    throw e;
  } finally {
    await context.close();
  }
}

/** Waits until the demo page is up; fails with its error when it is not. */
export async function ready(page) {
  await page.waitForSelector("body[data-ready]", { timeout: 20_000 });
  assert.equal(await page.getAttribute("body", "data-ready"), "true", await page.textContent("#fatal"));
}

/** The side panel's figures by id (step, d-version, d-transport, …) and the connection badge. */
export function panel(page) {
  return page.evaluate(() => ({
    ...Object.fromEntries([...document.querySelectorAll("aside dd")].map((d) => [d.id, d.textContent])),
    connection: document.querySelector("#connection").textContent,
  }));
}

/** The event log's lines, newest first, as { type, text }. */
export function logLines(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll("#log li")].map((li) => ({ type: li.dataset.type, text: li.textContent })),
  );
}

/** The page's session as the page has it: id, token, version, status, state. */
export function pageSession(page) {
  return page.evaluate(() => {
    const s = window.demo.session;
    return { id: s.sessionId, token: s.token, version: s.version, status: s.status, state: s.state };
  });
}

/** GETs the session from the server's HTTP API with the page's token: { http, body }. */
export async function serverSession(server, { id, token }) {
  const res = await fetch(`${server.url}v1/sessions/${id}`, { headers: { authorization: `Bearer ${token}` } });
  return { http: res.status, body: await res.json() };
}

/** The server's audit log of a session (admin API), oldest first. */
export async function audit(server, id) {
  const res = await fetch(`${server.url}v1/admin/sessions/${id}/audit`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = await res.json();
  return Array.isArray(body) ? body : body.entries;
}

/** Each op the server applied for session `id`, as "client:seq"; fails when one was applied twice. */
export async function appliedOps(server, id) {
  const keys = (await audit(server, id)).filter((e) => e.action === "op").map((e) => `${e.actor}:${e.seq}`);
  assert.equal(new Set(keys).size, keys.length, `an op was applied twice: ${keys.join(", ")}`);
  return keys;
}

/** Whether two carts hold the same lines, whatever their order. */
export function sameCart(a, b) {
  const sorted = (o) => Object.fromEntries(Object.entries(o).sort(([x], [y]) => x.localeCompare(y)));
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}

/**
 * Reads with `read` until `check(value)` holds; resolves with that value, or
 * fails after `timeout` ms naming `what` and the last value read.
 */
export async function until(read, check, what, timeout = 15_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const last = await read();
    if (check(last)) return last;
    if (Date.now() > end) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last, hideQuote)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** JSON.stringify's replacer that shortens the quote (the long price list). */
const hideQuote = (key, value) => (key === "quote" ? "…" : value);

/** Waits until the server's copy of the page's session satisfies `check(body)`; returns the body. */
export async function untilServer(server, page, check, what) {
  const who = await pageSession(page);
  const last = await until(() => serverSession(server, who), (r) => r.http === 200 && check(r.body), `the server's copy: ${what}`);
  return last.body;
}

/** Clicks "Add" on `sku` and waits for the cart to show one more of it. */
export async function add(page, sku) {
  const before = Number(await page.textContent(`[data-qty="${sku}"]`));
  await page.click(`[data-add="${sku}"]`);
  await page.waitForFunction(
    ([s, n]) => Number(document.querySelector(`[data-qty="${s}"]`)?.textContent) === n,
    [sku, before + 1],
  );
}

/** Waits until the panel satisfies `check(figures)`; returns the figures. */
export const untilPanel = (page, check, what, timeout) => until(() => panel(page), check, `the panel: ${what}`, timeout);

/** The state without the quote (the long price list that never changes). */
export const withoutQuote = ({ quote: _quote, ...rest }) => rest;
