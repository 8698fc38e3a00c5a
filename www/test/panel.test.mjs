// The demo's side panel and its buttons, in Chromium against the real
// server (behind the fault proxy where the network must misbehave): every
// field says what it means, counts take the right noun, "Go offline" cuts
// the tab's session API for real (and navigator.onLine agrees), a WebSocket
// probe from HTTP is shown as a probe, and a step taken before the server
// session exists reaches the server once it is created.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { launchBrowser, startServer } from "../../js/test/harness.mjs";
import { startProxy } from "../../js/test/proxy.mjs";
import {
  ADMIN_TOKEN,
  WWW,
  add,
  assertBuilt,
  pageSession,
  ready,
  scenario,
  serverSession,
  until,
  untilPanel,
  untilServer,
} from "./demo.mjs";

const env = { server: undefined, browser: undefined };

before(async () => {
  assertBuilt();
  env.server = await startServer(["--www", WWW], { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } });
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
});

/** Records every text #id shows from now on (window.__seen[id]), starting with the current one. */
const watchText = (page, ids) =>
  page.evaluate((ids) => {
    window.__seen = {};
    for (const id of ids) {
      const el = document.getElementById(id);
      const seen = (window.__seen[id] = [el.textContent]);
      new MutationObserver(() => {
        if (seen[seen.length - 1] !== el.textContent) seen.push(el.textContent);
      }).observe(el, { childList: true, characterData: true, subtree: true });
    }
  }, ids);

describe("the demo's panel and buttons", () => {
  test("every panel field, the badge, the chart and each button says what it means", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      const missing = await page.evaluate(() => {
        const without = [];
        const explained = (el) => (el?.getAttribute("title") ?? el?.querySelector(":scope > title")?.textContent ?? "").trim().length >= 20;
        for (const dd of document.querySelectorAll("aside dd")) {
          const dt = dd.previousElementSibling;
          if (dt?.tagName !== "DT" || !explained(dt)) without.push(`#${dd.id}`);
        }
        for (const el of document.querySelectorAll("#connection, aside button, #chart, figcaption > span, aside h3")) {
          if (!explained(el)) without.push(el.id ? `#${el.id}` : el.outerHTML.slice(0, 40));
        }
        return without;
      });
      assert.deepEqual(missing, [], "fields without a tooltip");
      assert.ok((await page.$$("aside dd")).length >= 18, "the panel's fields are there");
      // Why the local and the server versions differ is said where they are shown.
      const local = await page.evaluate(() => document.getElementById("d-version").previousElementSibling.title);
      assert.match(local, /not the server version/);
      assert.equal(await page.textContent("#d-in-step"), "yes");
      await page.click("#go-offline");
      await add(page, "SK-114");
      await untilPanel(page, (p) => p["d-in-step"] === "no: 1 change of this tab not on the server yet", "one change waiting, said");
      await add(page, "SK-114");
      await untilPanel(page, (p) => p["d-in-step"] === "no: 2 changes of this tab not on the server yet", "two changes waiting, said");
      await page.click("#go-offline");
      await untilPanel(page, (p) => p["d-in-step"] === "yes", "in step again");
      assert.match(await page.textContent("#offline-note"), /navigator\.onLine/);
    }));

  test("counts take the right noun: 0 items, 1 item, 2 items", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      const bar = () => page.textContent("#funnel .bar p");
      assert.match(await bar(), /^0 items · /);
      await add(page, "SK-109");
      assert.match(await bar(), /^1 item · /);
      await add(page, "SK-109");
      assert.match(await bar(), /^2 items · /);
      await untilPanel(page, (p) => p["d-outbox"] === "0", "both clicks confirmed");
      const lines = await page.$$eval("#log li", (li) => li.map((l) => l.textContent));
      for (const line of lines) assert.doesNotMatch(line, /\b1 (changes|items|events)\b|\b([02-9]|\d\d+) (change|item|event)\b(?!s)/, line);
    }));

  test("Go offline cuts the tab's session API: navigator.onLine reads false, nothing reaches the server, even when an online event says otherwise", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const page = await open(env.server.url);
      await add(page, "SK-110");
      const start = await untilServer(env.server, page, (b) => b.state.cart["SK-110"] === 1, "the first line");
      await page.click("#go-offline");
      await untilPanel(page, (p) => p["d-link"] === "offline" && p.connection.startsWith("offline (Go offline)"), "offline");
      assert.equal(await page.evaluate(() => navigator.onLine), false, "the page and sessile agree: offline");
      // The session API is gone for this tab: a request fails as with no network, a WebSocket does not open.
      const probe = await page.evaluate(async () => {
        const request = await fetch("/v1/sessions/x").then(() => "answered", (e) => e.name);
        const socket = await new Promise((resolve) => {
          const ws = new WebSocket(`${location.origin.replace("http", "ws")}/v1/ws`);
          ws.onopen = () => resolve("open");
          ws.onclose = (e) => resolve(`closed ${e.code}`);
        });
        return { request, socket };
      });
      assert.deepEqual(probe, { request: "TypeError", socket: "closed 1006" });
      await add(page, "SK-111");
      // A stray online event (the page and the browser disagreeing) cannot get the change through.
      await page.evaluate(() => dispatchEvent(new Event("online")));
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal((await serverSession(env.server, await pageSession(page))).body.version, start.version, "nothing reached the server");
      assert.notEqual((await untilPanel(page, () => true, "read"))["d-outbox"], "0");
      await page.click("#go-offline");
      assert.equal(await page.evaluate(() => navigator.onLine), true);
      // The link may be waiting out its backoff after the attempts the cut refused.
      const who = await pageSession(page);
      const synced = await until(() => serverSession(env.server, who), (r) => r.body.state?.cart["SK-111"] === 1, "the offline change on the server", 40_000);
      assert.equal(synced.body.version, start.version + 1);
    }));

  test("a WebSocket probe from HTTP is shown as a probe: the transport never switches back and forth", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const proxy = await startProxy(env.server.url);
      try {
        proxy.setMode("block-websocket");
        const page = await open(`${proxy.url}?wsProbeMs=1000`);
        await untilPanel(page, (p) => p["d-transport"] === "http" && p["d-link"] === "connected", "on HTTP", 20_000);
        await watchText(page, ["d-transport", "connection", "d-transport-why"]);
        const refused = proxy.counts.refusedUpgrades;
        // Probes at 1 s, then 2 s, 4 s (doubling while refused): at least two in the window.
        await until(() => proxy.counts.refusedUpgrades, (n) => n >= refused + 2, "two WebSocket probes", 20_000);
        await untilPanel(page, (p) => p["d-link"] === "connected", "back on HTTP");
        const seen = await page.evaluate(() => window.__seen);
        for (const text of seen["d-transport"]) assert.match(text, /^http\b/, `transport: ${seen["d-transport"].join(" → ")}`);
        assert.ok(seen["d-transport"].some((x) => x.includes("probing")), `the probe shown: ${seen["d-transport"].join(" → ")}`);
        for (const text of seen.connection) assert.doesNotMatch(text, /lost|restored/, `badge: ${seen.connection.join(" → ")}`);
        assert.ok(seen.connection.includes("probing websocket"), `badge: ${seen.connection.join(" → ")}`);
        // And the link still carries changes.
        await add(page, "SK-112");
        await untilServer(env.server, page, (b) => b.state.cart["SK-112"] === 1, "a change over HTTP");
      } finally {
        await proxy.close();
      }
    }));

  test("a step taken before the server session exists (the API unreachable, then a reload) reaches the server once it is created", (t) =>
    scenario(t, env.browser, async ({ open }) => {
      const proxy = await startProxy(env.server.url);
      try {
        proxy.setMode("down");
        const page = await open(proxy.url);
        await untilPanel(page, (p) => p["d-session"] === "not on the server yet", "no server session");
        await add(page, "SK-113");
        await page.click("#to-checkout");
        await page.waitForSelector("#funnel[data-step='checkout']");
        assert.equal(await page.textContent("#d-status"), "checkout");
        // A reload while the server still cannot be reached keeps the step.
        await page.reload();
        await ready(page);
        assert.equal(await page.textContent("#d-status"), "checkout");
        proxy.setMode("pass");
        const who = await until(() => pageSession(page), (s) => !!s.id, "the server session created", 30_000);
        const server = await until(
          () => serverSession(env.server, who),
          (r) => r.http === 200 && r.body.status === "checkout",
          "the server at checkout",
        );
        assert.equal(server.body.state.step, "checkout");
        assert.equal(server.body.state.cart["SK-113"], 1);
        assert.equal((await pageSession(page)).status, "checkout", "the page's step stands");
      } finally {
        await proxy.close();
      }
    }));
});
