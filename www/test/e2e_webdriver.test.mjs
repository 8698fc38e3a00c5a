// The demo's recovery scenarios in WebKit, Safari's engine (WebKitGTK's
// MiniBrowser over WebDriver: js/test/browsers.mjs), which Playwright cannot
// drive here: a reload mid-checkout, the session API unreachable across a
// reload, two tabs, a corrupted stored copy and a blocked WebSocket. The
// checks are scenarios.mjs's, as in Chromium (e2e.test.mjs), against the
// real server's stored copy and audit log. Each scenario loads the demo
// through a proxy of its own (js/test/proxy.mjs): an origin of its own, so
// storage of its own, and a network the test switches.
// `SESSILE_E2E_BROWSERS=webkit,firefox` picks the browsers (WebKit alone by
// default: e2e.test.mjs runs the whole funnel in Chromium). A failed scenario
// leaves screenshots of its tabs in js/test-results/.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { closeEach, launch, scenario } from "../../js/test/browsers.mjs";
import { startServer } from "../../js/test/harness.mjs";
import { startProxy } from "../../js/test/proxy.mjs";
import { ADMIN_TOKEN, WWW, add, appliedOps, assertBuilt, pageSession, panel, ready, serverSession, until, untilPanel, untilServer } from "./demo.mjs";
import { corruptedCopy, reloadMidCheckout, twoTabs, webSocketBlocked } from "./scenarios.mjs";
import { asPage, untilNewDocument } from "./webdriver_page.mjs";

const KINDS = (process.env.SESSILE_E2E_BROWSERS ?? "webkit").split(",").filter(Boolean);

const env = { server: undefined, launching: new Map() };

before(async () => {
  assertBuilt();
  env.server = await startServer(["--www", WWW], { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } });
  for (const kind of KINDS) {
    const started = launch(kind);
    started.catch(() => {});
    env.launching.set(kind, started);
  }
});

after(async () => {
  await closeEach(env.launching);
  await env.server?.stop();
});

/**
 * Runs `fn({ proxy, open })` in `kind`'s browser with a proxy of its own in
 * front of the server; `open()` loads the demo from it in a new tab.
 */
async function withProxy(t, kind, fn) {
  const browser = await env.launching.get(kind);
  const proxy = await startProxy(env.server.url);
  try {
    await scenario(t, browser, () =>
      fn({
        proxy,
        async open() {
          const page = asPage(await browser.newTab(proxy.url));
          await ready(page);
          return page;
        },
      }),
    );
  } finally {
    await proxy.close();
  }
}

for (const kind of KINDS) {
  describe(`the demo in ${kind}, over WebDriver`, () => {
    test("a reload in the middle of checkout: same step, same cart, same details, same version", (t) =>
      withProxy(t, kind, async ({ open }) => reloadMidCheckout(env.server, await open())));

    // No WebDriver command takes the browser offline: the proxy drops the
    // session API instead (the page's files still load, as from a shop's
    // own server), the way a server out of reach looks to the page.
    test("the session API unreachable: changes, a reload while it still is, more changes; back, each reaches the server once", (t) =>
      withProxy(t, kind, async ({ proxy, open }) => {
        const page = await open();
        await untilPanel(page, (p) => p["d-link"] === "connected", "connected");
        await add(page, "SK-103");
        const start = await untilServer(env.server, page, (b) => b.state.cart["SK-103"] === 1, "the first line");
        // The page must have heard the first line's ack too: cut before it
        // arrives and the line is rightly still waiting (4 after the reload,
        // sent again and applied once), which is another scenario.
        await untilPanel(page, (p) => p["d-outbox"] === "0", "the first line acknowledged");
        proxy.setMode("down");
        await add(page, "SK-104");
        await add(page, "SK-104");
        await page.click('[data-remove="SK-103"]');
        await untilPanel(page, (p) => p["d-outbox"] === "3", "three changes waiting");
        // Stored: nothing unsaved and no write under way (a synced session's
        // write starts at once, so `unsaved` alone is false while it runs).
        await until(
          () => page.evaluate(() => { const d = window.demo.session.diagnostics(); return !d.unsaved && !d.writing; }),
          (stored) => stored === true,
          "the changes stored",
        );
        await page.reload();
        await ready(page);
        assert.equal((await panel(page))["d-outbox"], "3", "the outbox survived the reload");
        assert.equal(await page.textContent('[data-qty="SK-104"]'), "2");
        await add(page, "SK-105");
        await untilPanel(page, (p) => p["d-outbox"] === "4", "four changes waiting");
        const meanwhile = await serverSession(env.server, await pageSession(page));
        assert.equal(meanwhile.body.version, start.version, "nothing reached the server while it was out of reach");
        proxy.setMode("pass");
        const synced = await untilServer(env.server, page, (b) => b.version === start.version + 4, "four more versions", 30_000);
        assert.deepEqual(synced.state.cart, { "SK-104": 2, "SK-105": 1 });
        await untilPanel(page, (p) => p["d-outbox"] === "0" && p["d-link"] === "connected", "outbox empty, connected", 30_000);
        assert.deepEqual(synced.state, (await pageSession(page)).state);
        await new Promise((r) => setTimeout(r, 1_000));
        assert.equal((await serverSession(env.server, await pageSession(page))).body.version, start.version + 4, "no change arrived twice");
        assert.equal((await appliedOps(env.server, synced.id)).length, 5, "one op per change");
      }));

    // A second tab of the same browser, as a shopper opens one (the demo's
    // button opens it with window.open, a window WebDriver would have to find).
    test("two tabs: a change in one appears in the other, and no older version wins", (t) =>
      withProxy(t, kind, async ({ open }) => twoTabs(env.server, await open(), open)));

    test("the stored copy corrupted: restored from the other slot, the log says so, nothing lost", (t) =>
      withProxy(t, kind, async ({ open }) => {
        const page = await open();
        await corruptedCopy(env.server, page, (selector) => untilNewDocument(page, () => page.click(selector)));
      }));

    test("the WebSocket blocked by a proxy mid-session: the page keeps syncing over HTTP", (t) =>
      withProxy(t, kind, async ({ proxy, open }) => webSocketBlocked(env.server, proxy, await open())));
  });
}
