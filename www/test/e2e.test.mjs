// The demo checkout funnel (www/dist, built by scripts/build) end to end:
// the real sessile-server on a free loopback port with its own SQLite file,
// headless Chromium through playwright-core, and every recovery promise
// checked on the page and in the server's stored copy (HTTP API, audit log):
// a reload mid-checkout, offline changes across an offline reload, a killed
// and restarted server, two tabs, a corrupted stored copy, a blocked
// WebSocket and an expired session. The whole funnel runs to "completed".
// The scenarios WebKit runs too (e2e_webdriver.test.mjs) are scenarios.mjs's.
// A failed test leaves screenshots in www/test-results/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, startServer } from "../../js/test/harness.mjs";
import { startProxy } from "../../js/test/proxy.mjs";
import {
  ADMIN_TOKEN,
  WWW,
  add,
  appliedOps,
  assertBuilt,
  audit,
  logLines,
  pageSession,
  panel,
  ready,
  scenario,
  serverSession,
  until,
  untilPanel,
  untilServer,
  withoutQuote,
} from "./demo.mjs";
import { corruptedCopy, reloadMidCheckout, twoTabs, webSocketBlocked } from "./scenarios.mjs";

/** The shortest TTL sessile takes, seconds: the expiry test waits it out. */
const SHORT_TTL = 60;

const env = { server: undefined, browser: undefined, expiring: undefined };

before(async () => {
  assertBuilt();
  // The sweeper every second, so the short-TTL session is expired on the server as soon as it is due.
  env.server = await startServer(["--www", WWW, "--sweep-every-secs", "1"], { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } });
  env.browser = await launchBrowser();
  // The expiry test's session starts now, so its minute passes while the other tests run.
  env.expiringContext = await env.browser.newContext();
  env.expiring = startExpiring(env.expiringContext);
  env.expiring.catch(() => {});
});

after(async () => {
  await env.expiringContext?.close().catch(() => {});
  await env.browser?.close();
  await env.server?.stop();
});

/** Opens the demo with a one-minute session in `context` and puts a line in its cart. */
async function startExpiring(context) {
  const page = await context.newPage();
  await page.goto(`${env.server.url}?ttl=${SHORT_TTL}`);
  await ready(page);
  await add(page, "SK-130");
  await untilServer(env.server, page, (b) => b.state.cart["SK-130"] === 1, "the cart line of the short session");
  return { page, session: await pageSession(page) };
}

describe("the demo checkout funnel, end to end", () => {
  test("the whole funnel: cart, details, payment (a reload while it runs), offers, success, completed (finished offline)", (t) =>
    scenario(t, env.browser, async ({ context, open }) => {
      const page = await open(env.server.url);
      const figures = await untilPanel(page, (p) => p.connection.startsWith("connected"), "connected");
      assert.equal(figures["d-transport"], "websocket");
      assert.equal(figures["d-backend"], "indexeddb");
      await add(page, "SK-101");
      await add(page, "SK-117");
      // The quote takes the state past the 10 KB threshold: stored compressed.
      const stored = await untilPanel(page, (p) => p["d-compressed"].startsWith("yes"), "compressed");
      assert.ok(Number(stored["d-raw"].replace(/\D/g, "")) > 10 * 1024, stored["d-raw"]);
      assert.ok(Number(stored["d-stored"].replace(/\D/g, "")) < Number(stored["d-raw"].replace(/\D/g, "")) / 3);
      assert.match(stored["d-checksum"], /^[0-9a-f]{8}$/);
      await page.click("#to-checkout");
      await page.click("#pay");
      assert.match(await page.textContent("#form-error"), /Please fill in: email, full name/);
      for (const [id, value] of Object.entries({ email: "ada@example.org", name: "Ada Lovelace", address: "12 St James's Square", city: "London", postcode: "SW1Y 4JH" })) {
        await page.fill(`#${id}`, value);
      }
      await page.click("#pay");
      // A reload while the payment runs: it runs again, and the order is taken once.
      await page.waitForSelector("#funnel[data-step='processing']");
      await page.reload();
      await ready(page);
      await page.waitForSelector("#funnel[data-step='upsell-1']");
      await page.click("#accept");
      await page.waitForSelector("#funnel[data-step='upsell-2']");
      await page.click("#decline");
      await page.waitForSelector("#funnel[data-step='success']");
      const orderId = await page.textContent("#order-id");
      assert.match(orderId, /^ORD-/);
      const success = await untilServer(env.server, page, (b) => b.status === "success", "status success");
      const price = (sku) => success.state.quote.products.find((p) => p.sku === sku).price;
      assert.deepEqual(withoutQuote(success.state), {
        step: "success",
        cart: { "SK-101": 1, "SK-117": 1 },
        customer: { email: "ada@example.org", name: "Ada Lovelace", address: "12 St James's Square", city: "London", postcode: "SW1Y 4JH" },
        upsells: { "upsell-1": "accepted", "upsell-2": "declined" },
        // Paid before the offers: the two lines' quoted prices.
        order: { id: orderId, total: price("SK-101") + price("SK-117"), paidAt: success.state.order.paidAt },
      });
      assert.ok(success.state.order.paidAt > Date.now() - 60_000 && success.state.order.paidAt <= Date.now());
      const steps = (await audit(env.server, success.id)).filter((e) => e.action === "op" && e.keys.includes("order"));
      assert.equal(steps.length, 1, "one op took the order");
      const who = await pageSession(page);
      // Finish while offline: it waits for the server, which must get it before the local copy goes.
      await context.setOffline(true);
      await page.click("#finish");
      await page.waitForSelector("#finish[disabled]");
      assert.match(await page.textContent("#finish"), /waiting for the server/);
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal((await serverSession(env.server, who)).body.status, "success", "still success on the server");
      assert.equal((await panel(page))["d-outbox"], "1");
      await context.setOffline(false);
      await page.waitForSelector("#new-checkout");
      assert.match(await page.textContent("#funnel"), new RegExp(`Order ${orderId} is closed`));
      // A closed session is no longer served: the server answers why, with its status.
      const closed = await until(() => serverSession(env.server, who), (r) => r.http !== 200, "the server closing the session");
      assert.equal(closed.http, 410);
      assert.equal(closed.body.code, "SESSION_CLOSED");
      assert.match(closed.body.message, /status `completed`/);
      assert.equal(await page.textContent("#d-status"), "completed");
    }));

  test("a reload in the middle of checkout: same step, same cart, same details, same version", (t) =>
    scenario(t, env.browser, async ({ open }) => reloadMidCheckout(env.server, await open(env.server.url))));

  test("offline: changes, a reload while still offline, more changes; back online each reaches the server once", (t) =>
    scenario(t, env.browser, async ({ context, open }) => {
      const page = await open(env.server.url);
      await add(page, "SK-103");
      const start = await untilServer(env.server, page, (b) => b.state.cart["SK-103"] === 1, "the first line");
      // Heard by the page too: a line whose ack the cut loses is sent again.
      await untilPanel(page, (p) => p["d-outbox"] === "0", "the first line acknowledged");
      // The service worker must hold the page's files before the network goes.
      await page.evaluate(() => navigator.serviceWorker.ready);
      await until(() => page.evaluate(() => !!navigator.serviceWorker.controller), Boolean, "the service worker controlling the page");
      await context.setOffline(true);
      await untilPanel(page, (p) => p["d-link"] === "offline", "the link offline");
      await add(page, "SK-104");
      await add(page, "SK-104");
      await page.click('[data-remove="SK-103"]');
      await untilPanel(page, (p) => p["d-outbox"] === "3", "three changes waiting");
      await page.reload();
      await ready(page);
      let figures = await panel(page);
      assert.equal(figures["d-link"], "offline");
      assert.equal(figures["d-outbox"], "3", "the outbox survived the reload");
      assert.equal(await page.textContent('[data-qty="SK-104"]'), "2");
      await add(page, "SK-105");
      figures = await untilPanel(page, (p) => p["d-outbox"] === "4", "four changes waiting");
      const offlineServer = await serverSession(env.server, await pageSession(page));
      assert.equal(offlineServer.body.version, start.version, "nothing reached the server while offline");
      await context.setOffline(false);
      const synced = await untilServer(env.server, page, (b) => b.version === start.version + 4, "four more versions");
      assert.deepEqual(synced.state.cart, { "SK-104": 2, "SK-105": 1 });
      assert.deepEqual(synced.state, (await pageSession(page)).state);
      // This page load's first connection: "connected" (a reconnect within one load says "restored").
      await untilPanel(page, (p) => p["d-outbox"] === "0" && p.connection.startsWith("connected"), "outbox empty, connected");
      // Still four after the link settled: no change arrived twice.
      await new Promise((r) => setTimeout(r, 1_000));
      const settled = await serverSession(env.server, await pageSession(page));
      assert.equal(settled.body.version, start.version + 4);
      const ops = await appliedOps(env.server, synced.id);
      assert.equal(ops.length, 5, `one op per change: ${ops.join(", ")}`);
    }));

  test("the server killed and restarted: lost, then restored, and the edits made meanwhile arrive", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      await add(page, "SK-106");
      const start = await untilServer(env.server, page, (b) => b.state.cart["SK-106"] === 1, "the first line");
      await env.server.stop("SIGKILL");
      try {
        await untilPanel(page, (p) => p.connection.startsWith("lost"), "lost");
        await add(page, "SK-107");
        await add(page, "SK-108");
        await untilPanel(page, (p) => p["d-outbox"] === "2", "two changes waiting");
      } finally {
        await env.server.start();
      }
      await untilPanel(page, (p) => p.connection.startsWith("restored"), "restored", 40_000);
      const synced = await untilServer(env.server, page, (b) => b.version === start.version + 2, "two more versions");
      assert.deepEqual(synced.state.cart, { "SK-106": 1, "SK-107": 1, "SK-108": 1 });
      const types = (await logLines(page)).map((l) => l.type).reverse();
      const lost = types.indexOf("connection_lost");
      assert.ok(lost >= 0 && types.indexOf("connection_restored", lost) > lost, types.join(", "));
      await untilPanel(page, (p) => p["d-outbox"] === "0", "outbox empty");
      assert.equal((await appliedOps(env.server, synced.id)).length, 3);
    }));

  test("the panel's buttons: offline and online again, then the WebSocket killed; nothing lost", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      await add(page, "SK-119");
      const start = await untilServer(env.server, page, (b) => b.state.cart["SK-119"] === 1, "the first line");
      await page.click("#go-offline");
      await untilPanel(page, (p) => p["d-link"] === "offline" && p.connection.startsWith("offline"), "offline");
      await add(page, "SK-120");
      await untilPanel(page, (p) => p["d-outbox"] === "1", "one change waiting");
      assert.equal((await serverSession(env.server, await pageSession(page))).body.version, start.version);
      await page.click("#go-offline");
      await untilServer(env.server, page, (b) => b.version === start.version + 1 && b.state.cart["SK-120"] === 1, "the offline change");
      await untilPanel(page, (p) => p.connection.startsWith("restored"), "restored after going online");
      await page.click("#kill");
      const killed = (await logLines(page)).find((l) => l.type === "demo" && l.text.includes("killed"));
      assert.match(killed?.text ?? "no line", /killed the WebSocket \(1 open\)/);
      // The panel says "restored" from before the kill until the page hears of the close: wait for that first.
      await until(() => logLines(page), (lines) => lines.filter((l) => l.type === "connection_lost").length >= 2, "the kill noticed");
      await untilPanel(page, (p) => p.connection.startsWith("restored") && p["d-link"] === "connected", "reconnected after the kill");
      const lost = (await logLines(page)).filter((l) => l.type === "connection_lost").map((l) => l.text);
      assert.ok(lost.some((t) => /offline/.test(t)) && lost.length >= 2, lost.join(" | "));
      await add(page, "SK-121");
      const end = await untilServer(env.server, page, (b) => b.state.cart["SK-121"] === 1, "the change after the kill");
      assert.equal(end.version, start.version + 2);
      assert.equal((await appliedOps(env.server, end.id)).length, 3);
    }));

  test("two tabs: a change in one appears in the other, and no older version wins", (t) =>
    scenario(t, env.browser, async ({ context, open }) => {
      const a = await open(env.server.url);
      await twoTabs(env.server, a, async () => {
        const [b] = await Promise.all([context.waitForEvent("page"), a.click("#second-tab")]);
        await ready(b);
        return b;
      });
    }));

  test("two tabs, one offline: its unsent click survives a second tab that opens and adds the same line", (t) =>
    scenario(t, env.browser, async ({ context }) => {
      const sku = "SK-124";
      const a = await context.newPage();
      await a.goto(env.server.url);
      await ready(a);
      await untilPanel(a, (p) => p["d-link"] === "connected", "tab 1 connected");
      // Tab 1's link goes down; its click waits in its outbox and is stored in the copy both tabs share.
      await a.click("#go-offline");
      await untilPanel(a, (p) => p["d-link"] === "offline", "tab 1 offline");
      await add(a, sku);
      await untilPanel(a, (p) => p["d-outbox"] === "1", "tab 1's click waiting");
      await until(() => a.evaluate(() => window.demo.session.diagnostics().unsaved), (u) => u === false, "tab 1's click stored");
      const who = await pageSession(a);
      const start = (await serverSession(env.server, who)).body;
      assert.equal(start.state.cart[sku], undefined, "the server has not heard of the click");
      // A second tab restores the stored copy and connects: the server's copy is older than what it restored.
      const [b] = await Promise.all([context.waitForEvent("page"), a.click("#second-tab")]);
      await ready(b);
      await untilPanel(b, (p) => p["d-link"] === "connected", "tab 2 connected");
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(await b.textContent(`[data-qty="${sku}"]`), "1", "tab 2 shows tab 1's unsent click");
      assert.equal(await a.textContent(`[data-qty="${sku}"]`), "1", "tab 1 still shows its unsent click");
      // The shopper adds the same line in tab 2; the server applies it.
      await add(b, sku);
      await untilServer(env.server, b, (s) => s.version > start.version, "tab 2's click");
      // Tab 1 comes back online: both clicks count.
      await a.click("#go-offline");
      await untilPanel(a, (p) => p["d-outbox"] === "0" && p["d-link"] === "connected", "tab 1 synced");
      const server = await untilServer(env.server, a, (s) => s.state.cart[sku] === 2, `${sku} = 2`);
      for (const [name, tab] of [["tab 1", a], ["tab 2", b]]) {
        await until(() => pageSession(tab), (s) => s.state.cart[sku] === 2, `${name} showing ${sku} = 2`);
        assert.deepEqual((await pageSession(tab)).state, server.state, name);
      }
      await new Promise((r) => setTimeout(r, 1_000));
      assert.equal((await serverSession(env.server, who)).body.version, server.version, "nothing arrived later");
      // Tab 2's op carries both clicks (made on tab 1's); tab 1's older op, refused, applied nothing.
      const ops = await appliedOps(env.server, server.id);
      assert.equal(ops.length, 1, `one op applied, none twice: ${ops.join(", ")}`);
    }));

  test("the stored copy corrupted: restored from the other slot, the log says so, nothing lost", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      await corruptedCopy(env.server, page, (selector) => Promise.all([page.waitForEvent("load"), page.click(selector)]));
    }));

  test("the WebSocket blocked by a proxy mid-session: the page keeps syncing over HTTP", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const proxy = await startProxy(env.server.url);
      try {
        await webSocketBlocked(env.server, proxy, await open(proxy.url));
      } finally {
        await proxy.close();
      }
    }));

  test("the session expires (one-minute TTL): the page says so, offers to restart, and starts a new one", (t) =>
    scenario(t, env.browser, async () => {
      // A failure while it was set up (before the other tests) is reported here, with its screenshot.
      const { page, session } = await env.expiring;
      await page.waitForSelector("#over:not([hidden])", { timeout: (SHORT_TTL + 30) * 1000 });
      assert.match(await page.textContent("#over-reason"), /expired/);
      assert.equal((await panel(page))["d-status"], "expired");
      const gone = await until(() => serverSession(env.server, session), (r) => r.http !== 200, "the server refusing the expired session");
      assert.equal(gone.body.code, "SESSION_EXPIRED");
      await Promise.all([page.waitForEvent("load"), page.click("#restart")]);
      await ready(page);
      const fresh = await pageSession(page);
      assert.notEqual(fresh.id, session.id);
      assert.equal(fresh.status, "cart");
      assert.deepEqual(fresh.state.cart, {});
      const server = await untilServer(env.server, page, () => true, "the new session");
      assert.equal(server.status, "cart");
      assert.equal(await page.isHidden("#over"), true);
    }, env.expiringContext));
});
