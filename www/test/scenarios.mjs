// The demo's recovery scenarios that run the same in every browser, written
// once over a page (a Playwright page in Chromium, e2e.test.mjs; a WebDriver
// tab through webdriver_page.mjs in WebKit, e2e_webdriver.test.mjs) and the
// real server: what the page shows and what the server stored and applied.
// How a browser opens a second tab or reloads on a click is passed in.
import assert from "node:assert/strict";
import {
  add,
  appliedOps,
  logLines,
  pageSession,
  panel,
  ready,
  sameCart,
  until,
  untilPanel,
  untilServer,
  withoutQuote,
} from "./demo.mjs";

/** A reload in the middle of checkout: same step, cart, details and version; nothing sent twice. */
export async function reloadMidCheckout(server, page) {
  await add(page, "SK-102");
  await add(page, "SK-102");
  await add(page, "SK-125");
  await page.click("#to-checkout");
  await page.fill("#email", "grace@example.org");
  await page.fill("#name", "Grace Hopper");
  await page.press("#name", "Tab");
  const before = await untilServer(server, page, (b) => b.state.customer.name === "Grace Hopper", "the typed name");
  await untilPanel(page, (p) => Number(p["d-server-version"]) === before.version && p["d-outbox"] === "0", "the page holding the server's version");
  const mine = await pageSession(page);
  await page.reload();
  await ready(page);
  const again = await pageSession(page);
  assert.equal(again.id, mine.id, "the same server session");
  assert.equal(again.version, mine.version, "the same local version");
  assert.equal(again.status, "checkout");
  assert.deepEqual(again.state, mine.state);
  assert.equal(await page.getAttribute("#funnel", "data-step"), "checkout");
  assert.equal(await page.inputValue("#email"), "grace@example.org");
  assert.equal(await page.inputValue("#name"), "Grace Hopper");
  const restored = (await logLines(page)).find((l) => l.type === "state_restored");
  // From a slot, or from the copy written at pagehide when the last change was not stored yet.
  assert.match(restored.text, new RegExp(`restored v${mine.version} from slot (a|b|rescue)`));
  // Nothing was sent twice by the reload: the server is where it was.
  const after = await untilServer(server, page, () => true, "read");
  assert.equal(after.version, before.version);
  assert.equal(after.status, "checkout");
  assert.deepEqual(after.state, before.state);
  assert.deepEqual(withoutQuote(after.state).cart, { "SK-102": 2, "SK-125": 1 });
}

/**
 * Two tabs of one browser: a change in one appears in the other, and no
 * older version wins. `openSecond()` opens the second tab of the demo and
 * resolves with its page once it is ready.
 */
export async function twoTabs(server, a, openSecond) {
  await add(a, "SK-109");
  const b = await openSecond();
  await b.waitForFunction(() => document.querySelector('[data-qty="SK-109"]')?.textContent === "1");
  // What each tab holds, every 20 ms: the version and each line's count, none of which may go back.
  for (const tab of [a, b]) {
    await tab.evaluate(() => {
      window.seen = [];
      setInterval(() => window.seen.push({ version: window.demo.session.version, cart: { ...window.demo.session.state.cart } }), 20);
    });
  }
  await add(a, "SK-110");
  await b.waitForFunction(() => document.querySelector('[data-qty="SK-110"]')?.textContent === "1");
  await add(b, "SK-111");
  await a.waitForFunction(() => document.querySelector('[data-qty="SK-111"]')?.textContent === "1");
  // Both at once, on different lines: both kept.
  await Promise.all([a.click('[data-add="SK-112"]'), b.click('[data-add="SK-113"]')]);
  const want = { "SK-109": 1, "SK-110": 1, "SK-111": 1, "SK-112": 1, "SK-113": 1 };
  for (const tab of [a, b]) {
    await until(() => pageSession(tab), (s) => sameCart(s.state.cart, want), "both tabs with all five lines");
  }
  const stored = await untilServer(server, a, (s) => sameCart(s.state.cart, want), "all five lines");
  const [sa, sb] = [await pageSession(a), await pageSession(b)];
  assert.deepEqual(sa.state, stored.state);
  assert.deepEqual(sb.state, stored.state);
  assert.equal(sa.id, sb.id, "one server session");
  for (const tab of [a, b]) {
    const seen = await tab.evaluate(() => window.seen);
    assert.ok(seen.length > 10, `${seen.length} samples`);
    for (const [i, now] of seen.entries()) {
      if (i === 0) continue;
      const was = seen[i - 1];
      assert.ok(now.version >= was.version, `the version went back: ${was.version} → ${now.version} in tab ${tab === a ? "a" : "b"}: ${JSON.stringify(seen.slice(Math.max(0, i - 3), i + 3))}`);
      for (const [sku, qty] of Object.entries(was.cart)) {
        assert.ok((now.cart[sku] ?? 0) >= qty, `an older state won: ${sku} ${qty} → ${now.cart[sku] ?? 0} at v${now.version}`);
      }
    }
  }
  // Each tab is its own client, and the server applied each change once.
  const ops = await appliedOps(server, sa.id);
  assert.equal(ops.length, 5);
  assert.equal(new Set(ops.map((o) => o.split(":")[0])).size, 2, `two clients: ${ops.join(", ")}`);
}

/**
 * The stored copy corrupted: restored from the other slot, the log says
 * so, nothing lost. `clickAndReload(selector)` clicks the demo's button
 * (it flips a byte of the newest slot, then reloads the page) and resolves
 * once the new page has loaded.
 */
export async function corruptedCopy(server, page, clickAndReload) {
  await add(page, "SK-114");
  await untilPanel(page, (p) => p["d-slot"].startsWith("a") || p["d-slot"].startsWith("b"), "a first write");
  const first = (await panel(page))["d-slot"][0];
  await add(page, "SK-115");
  const second = await untilPanel(page, (p) => p["d-slot"][0] !== first && p["d-slot"] !== "–", "the second write in the other slot");
  const want = (await pageSession(page)).state;
  await untilServer(server, page, (b) => b.state.cart["SK-115"] === 1, "both lines");
  await clickAndReload("#corrupt");
  await ready(page);
  const lines = await logLines(page);
  const corrupted = lines.find((l) => l.type === "demo" && l.text.includes("flipped"));
  assert.match(corrupted.text, new RegExp(`slot ${second["d-slot"][0]} in IndexedDB`));
  const restored = lines.find((l) => l.type === "state_restored");
  assert.match(restored.text, new RegExp(`from slot ${first}; skipped slot ${second["d-slot"][0]}: CHECKSUM_MISMATCH`));
  // The older slot lacked the last line; the server's copy brings it back.
  const back = await until(() => pageSession(page), (s) => s.state.cart["SK-115"] === 1, "the last line back");
  assert.deepEqual(back.state, want);
  const stored = await untilServer(server, page, () => true, "read");
  assert.deepEqual(stored.state, want);
}

/**
 * The WebSocket blocked mid-session by `proxy` (js/test/proxy.mjs), which
 * `page` loaded the demo through: the page keeps syncing over HTTP.
 */
export async function webSocketBlocked(server, proxy, page) {
  await untilPanel(page, (p) => p["d-transport"] === "websocket" && p["d-link"] === "connected", "connected over WebSocket");
  await add(page, "SK-116");
  await untilServer(server, page, (b) => b.state.cart["SK-116"] === 1, "the first line");
  // From now on the proxy refuses every upgrade, and the open socket is cut.
  proxy.setMode("block-websocket");
  proxy.killWebSockets();
  await add(page, "SK-118");
  await untilPanel(page, (p) => p["d-transport"] === "http" && p["d-link"] === "connected", "connected over HTTP", 30_000);
  await add(page, "SK-123");
  const synced = await untilServer(server, page, (b) => b.state.cart["SK-123"] === 1, "the lines sent over HTTP");
  assert.deepEqual(synced.state.cart, { "SK-116": 1, "SK-118": 1, "SK-123": 1 });
  await untilPanel(page, (p) => p["d-outbox"] === "0" && p["d-rtt"] !== "–", "outbox empty, an RTT over HTTP", 15_000);
  assert.equal(proxy.counts.upgrades, 1, "the first connection only");
  assert.ok(proxy.counts.refusedUpgrades >= 1, JSON.stringify(proxy.counts));
  assert.equal((await panel(page))["d-transport"], "http");
  assert.equal((await appliedOps(server, synced.id)).length, 3);
}
