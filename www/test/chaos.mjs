// The chaos driver: plays seeded plans (chaos_plan.mjs) against the real
// demo page (www/dist) in headless Chromium and the real sessile-server on
// a loopback port (its own SQLite file, an admin token), then checks what a
// shopper would: after the run, with every tab back online and settled,
//   - each tab holds exactly the server's copy, with nothing left to send;
//   - the server's cart is what the shopper's clicks add up to (fewer is a
//     lost click, more a doubled one), with the fields as last typed and the
//     step as last taken;
//   - the audit log has every op once: no (client, seq) twice, versions that
//     only grow, no more ops than accepted clicks.
// A failed run leaves www/test-results/chaos-<seed>.json: the seed, the plan,
// what each action did, every tab's event log and console, the server's
// copy and its audit log. `make chaos SEED=n` plays that seed again.
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, startServer } from "../../js/test/harness.mjs";
import { FAULTS, SKUS, describe, hasTwoTabCase, planFor } from "./chaos_plan.mjs";
import { INIT_SCRIPT, QUOTA_COOKIE, WS_COOKIE, crashTab, setFaultCookie } from "./chaos_faults.mjs";
import { ADMIN_TOKEN, RESULTS_DIR, WWW, assertBuilt, audit, ready, serverSession, until, withoutQuote } from "./demo.mjs";

/** How long the tabs get to settle after the faults end, ms. */
const SETTLE_MS = 45_000;
/** How long one run may take in all, ms (then it fails as stuck). */
const RUN_MS = 120_000;
/** A pause after each action, ms: a shopper is not instantaneous. */
const PAUSE_MS = 150;
/** How long a click has to show its effect, ms. */
const CLICK_MS = 3_000;
/** How long a killed server stays down at least, ms. */
const MIN_DOWN_MS = 500;
/** Lines kept of each tab's console. */
const CONSOLE_LINES = 400;

/** Starts the server (serving www/dist) and Chromium; resolves with { server, browser, close() }. */
export async function startChaos() {
  assertBuilt();
  const server = await startServer(["--www", WWW], { env: { SESSILE_ADMIN_TOKEN: ADMIN_TOKEN } });
  const env = { server, browser: await launchBrowser() };
  env.close = async () => {
    await env.browser?.close().catch(() => {});
    await server.stop();
  };
  return env;
}

/** JSON with every object's keys sorted: equal for equal values, whatever the key order. */
const canonical = (value) =>
  JSON.stringify(value, (_key, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v,
  );
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const since = (t0) => Date.now() - t0;

/** The page's event log, newest first (the demo's #log panel). */
const readLog = (page) =>
  page.evaluate(() => [...document.querySelectorAll("#log li")].map((li) => li.textContent)).catch(() => undefined);

/**
 * Counts the shopper's changes the page's session accepted: its update and
 * step calls that returned (a refused one throws, and the demo logs it).
 */
const countAccepted = (page) =>
  page.evaluate(() => {
    const s = window.demo.session;
    window.__chaos.accepted = 0;
    for (const m of ["update", "step"]) {
      const f = s[m];
      s[m] = function (...args) {
        const v = f.apply(this, args);
        window.__chaos.accepted += 1;
        return v;
      };
    }
  });
const accepted = (page) => page.evaluate(() => window.__chaos.accepted);

/** The page's session: id, token, version, status, state, and the panel's outbox and link. */
const tabSession = (page) =>
  page.evaluate(() => {
    const s = window.demo.session;
    const d = s.diagnostics();
    return {
      id: s.sessionId,
      token: s.token,
      version: s.version,
      status: s.status,
      state: s.state,
      link: d.link && { state: d.link.state, transport: d.link.transport, outbox: d.link.outbox, serverVersion: d.link.serverVersion },
    };
  });

/** Plays seed `seed` in a fresh browser context; resolves with the run's result (never rejects). */
export async function runSeed(env, seed) {
  const started = Date.now();
  const run = new Run(env, seed);
  let timer;
  try {
    await Promise.race([
      run.play(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the run took more than ${RUN_MS / 1000} s`)), RUN_MS);
      }),
    ]);
  } catch (e) {
    run.failures.push(`error: ${e?.stack ?? e}`);
  } finally {
    clearTimeout(timer);
  }
  const result = run.result(since(started));
  if (!result.ok || process.env.CHAOS_SAVE) await run.save(result).catch((e) => result.failures.push(`could not save the run: ${e}`));
  await run.context?.close().catch(() => {});
  // The next run needs a server that runs and a browser that answers.
  if (!env.server.running) await env.server.start();
  if (!env.browser.isConnected()) env.browser = await launchBrowser();
  return result;
}

/** One run: the plan, the tabs, the faults in force, the shopper's model and what happened. */
class Run {
  constructor(env, seed) {
    this.env = env;
    this.seed = seed;
    this.plan = planFor(seed);
    this.tabs = [];
    this.closedTabs = [];
    this.active = 0;
    this.faults = { offline: false, blocked: false, quota: false, down: false };
    this.model = {
      cart: Object.fromEntries(SKUS.map((k) => [k, 0])),
      clicks: Object.fromEntries(SKUS.map((k) => [k, { adds: 0, removes: 0 }])),
      customer: {},
      step: "cart",
    };
    this.record = [];
    this.failures = [];
    this.notes = [];
    this.ops = 0;
    this.faultsSeen = new Set();
    this.end = undefined;
    this.tabCount = 0;
  }

  get origin() {
    return this.env.server.origin;
  }

  async play() {
    this.context = await this.env.browser.newContext();
    await this.context.addInitScript(INIT_SCRIPT);
    const first = await this.openTab("url");
    // The service worker must hold the page's files before the network or the server goes.
    await first.page.evaluate(() => navigator.serviceWorker.ready);
    await until(() => first.page.evaluate(() => !!navigator.serviceWorker.controller), Boolean, "the service worker controlling the page");
    for (const [i, action] of this.plan.actions.entries()) {
      const t0 = Date.now();
      let outcome;
      try {
        outcome = await this.act(action);
      } catch (e) {
        outcome = `error: ${String(e?.message ?? e).split("\n")[0]}`;
        this.failures.push(`action ${i} (${describe(action)}): ${e?.stack ?? e}`);
      }
      this.record.push({ i, action: describe(action), tab: this.tabs[this.active]?.name ?? null, outcome, ms: since(t0) });
      if (FAULTS.has(action.kind)) this.faultsSeen.add(action.kind);
      await this.snapshotLogs();
      if (this.failures.length) return;
      await sleep(PAUSE_MS);
    }
    await this.settle();
    await this.check();
  }

  /** Opens a tab, by the demo's "Open a second tab" button or by URL, and makes it the active one. */
  async openTab(via) {
    const opener = this.tabs[this.active];
    let page;
    if (via === "button" && opener) {
      [page] = await Promise.all([this.context.waitForEvent("page"), opener.page.click("#second-tab")]);
    } else {
      page = await this.context.newPage();
      await page.goto(this.env.server.url);
    }
    this.tabCount += 1;
    const tab = { name: `tab${this.tabCount}`, page, offline: false, console: [], errors: [], log: [] };
    const stamp = () => new Date().toISOString().slice(11, 23);
    page.on("console", (m) => tab.console.length < CONSOLE_LINES && tab.console.push(`${stamp()} ${m.type()}: ${m.text()}`));
    page.on("pageerror", (e) => tab.errors.push(`${stamp()} ${e}`));
    await ready(page);
    await countAccepted(page);
    this.tabs.push(tab);
    this.active = this.tabs.length - 1;
    return tab;
  }

  /** Keeps each tab's latest event log, so a crashed tab's is not lost with it. */
  async snapshotLogs() {
    for (const tab of this.tabs) tab.log = (await readLog(tab.page)) ?? tab.log;
  }

  /** Does one action; resolves with what happened, in words. */
  async act(a) {
    if (this.tabs.length === 0 && a.kind !== "open") await this.openTab("url");
    const tab = this.tabs[this.active];
    const page = tab?.page;
    switch (a.kind) {
      case "add":
      case "remove": {
        const button = `[data-${a.kind}="${a.sku}"]`;
        if (!(await page.waitForSelector(button, { timeout: 1_500 }).catch(() => null))) return "skipped: no cart on this tab";
        const shown = Number(await page.textContent(`[data-qty="${a.sku}"]`));
        if (a.kind === "remove" && (shown === 0 || this.model.cart[a.sku] === 0)) return `skipped: ${a.sku} shows ${shown}`;
        return this.click(page, button, () => {
          this.model.cart[a.sku] += a.kind === "add" ? 1 : -1;
          this.model.clicks[a.sku][a.kind === "add" ? "adds" : "removes"] += 1;
        }, shown);
      }
      case "checkout": {
        if (!(await page.$("#to-checkout:not([disabled])"))) return "skipped: no enabled checkout button";
        return this.click(page, "#to-checkout", () => (this.model.step = "checkout"));
      }
      case "type": {
        const field = `#customer #${a.field}`;
        if (!(await page.waitForSelector(field, { timeout: 1_500 }).catch(() => null))) return "skipped: no form on this tab";
        const before = await accepted(page);
        await page.fill(field, a.value);
        await page.press(field, "Tab");
        if ((await accepted(page)) === before) return `refused: ${await this.lastRefusal(page)}`;
        this.model.customer[a.field] = a.value;
        this.ops += 1;
        return "accepted";
      }
      case "open":
        await this.openTab(a.via);
        return `opened ${this.tabs[this.active].name}`;
      case "switch": {
        this.active = a.to % this.tabs.length;
        await this.tabs[this.active].page.bringToFront();
        // A shopper takes a moment to move to the other tab.
        await sleep(300);
        return `now on ${this.tabs[this.active].name}`;
      }
      case "reload":
        await page.reload();
        await ready(page);
        await countAccepted(page);
        tab.offline = false;
        return "reloaded";
      case "crash": {
        tab.log = (await readLog(page)) ?? tab.log;
        const crashed = await crashTab(this.context, page);
        for (const p of crashed) {
          const i = this.tabs.findIndex((t) => t.page === p);
          if (i < 0) continue;
          const [gone] = this.tabs.splice(i, 1);
          this.closedTabs.push({ ...gone, closed: "crashed" });
          await p.close().catch(() => {});
        }
        this.active = Math.max(0, Math.min(this.active, this.tabs.length - 1));
        return `crashed ${crashed.length} tab(s)`;
      }
      case "page-offline":
        await page.click("#go-offline");
        tab.offline = !tab.offline;
        return tab.offline ? "page offline" : "page online";
      case "offline":
        await this.context.setOffline(a.on);
        this.faults.offline = a.on;
        return a.on ? "browser offline" : "browser online";
      case "block-ws": {
        await setFaultCookie(this.context, this.origin, WS_COOKIE, "blocked", a.on);
        this.faults.blocked = a.on;
        if (!a.on) return "WebSocket allowed";
        let closed = 0;
        for (const t of this.tabs) closed += await t.page.evaluate(() => window.__chaos.closeSockets());
        return `WebSocket blocked, ${closed} closed`;
      }
      case "kill-ws":
        await page.click("#kill");
        return "killed the WebSocket (demo button)";
      case "server-kill":
        await this.env.server.stop("SIGKILL");
        this.faults.down = true;
        this.downSince = Date.now();
        return "server SIGKILLed";
      case "server-start":
        // A restart takes a moment: down for half a second at least.
        await sleep(Math.max(0, MIN_DOWN_MS - since(this.downSince)));
        await this.env.server.start();
        this.faults.down = false;
        return "server started";
      case "quota":
        await setFaultCookie(this.context, this.origin, QUOTA_COOKIE, "1", a.on);
        this.faults.quota = a.on;
        return a.on ? "storage quota exceeded" : "storage quota back";
      case "wait":
        await sleep(a.ms);
        return "waited";
    }
    throw new Error(`unknown action ${a.kind}`);
  }

  /** Clicks `selector`; when the session accepted the change, `apply` it to the model. */
  async click(page, selector, apply, shown) {
    const before = await accepted(page);
    await page.click(selector);
    if ((await accepted(page)) === before) return `refused: ${await this.lastRefusal(page)}`;
    apply();
    this.ops += 1;
    return shown === undefined ? "accepted" : `accepted (was ${shown})`;
  }

  async lastRefusal(page) {
    const log = (await readLog(page)) ?? [];
    return log.find((l) => / refused /.test(l)) ?? "no change, no refusal logged";
  }

  /** Ends every fault, brings a tab back if none is left, and waits until each tab is in sync with the server. */
  async settle() {
    if (this.faults.down) await this.env.server.start();
    await setFaultCookie(this.context, this.origin, QUOTA_COOKIE, "1", false);
    await setFaultCookie(this.context, this.origin, WS_COOKIE, "blocked", false);
    await this.context.setOffline(false);
    this.faults = { offline: false, blocked: false, quota: false, down: false };
    for (const tab of this.tabs) {
      if (tab.offline) {
        await tab.page.click("#go-offline");
        tab.offline = false;
      }
    }
    if (this.tabs.length === 0) await this.openTab("url");
    // All tabs at once: one that settled first can still take a stale copy from another later.
    const t0 = Date.now();
    const inSync = async (tab) => {
      const mine = await tabSession(tab.page);
      const server = mine.id ? await serverSession(this.env.server, mine) : undefined;
      const ok =
        mine.link?.state === "connected" &&
        mine.link.outbox === 0 &&
        server?.http === 200 &&
        server.body.version === mine.link.serverVersion &&
        canonical(server.body.state) === canonical(mine.state);
      return { tab: tab.name, ok, mine: { ...mine, token: undefined }, server: server?.body ?? server };
    };
    try {
      await until(
        () => Promise.all(this.tabs.map(inSync)),
        (all) => all.every((t) => t.ok),
        "every tab in sync with the server",
        SETTLE_MS,
      );
    } catch (e) {
      this.failures.push(`unsettled: ${String(e.message).slice(0, 3_000)}`);
    }
    this.settleMs = since(t0);
    await this.snapshotLogs();
  }

  /** The end state against the shopper's model and the audit log. */
  async check() {
    const sessions = [];
    for (const tab of this.tabs) sessions.push(await tabSession(tab.page));
    const ids = new Set(sessions.map((s) => s.id));
    if (ids.size !== 1) this.failures.push(`split: the tabs are on ${ids.size} server sessions (${[...ids].join(", ")})`);
    const who = sessions[0];
    const server = await serverSession(this.env.server, who);
    if (server.http !== 200) {
      this.failures.push(`the server answered ${server.http}: ${JSON.stringify(server.body)}`);
      return;
    }
    const state = server.body.state;
    this.end = { id: who.id, version: server.body.version, status: server.body.status, state: withoutQuote(state) };
    for (const [i, s] of sessions.entries()) {
      try {
        assert.deepEqual(s.state, state);
      } catch {
        this.failures.push(`${this.tabs[i].name} holds another state than the server: ${JSON.stringify(withoutQuote(s.state))}`);
      }
    }
    // The clicks against the server's cart, line by line. A line short of
    // its clicks lost adds; one over them lost removes (as many as there
    // were), and what is over beyond that was doubled.
    this.lost = 0;
    this.doubled = 0;
    for (const sku of SKUS) {
      const { adds, removes } = this.model.clicks[sku];
      const want = adds - removes;
      const have = state.cart?.[sku] ?? 0;
      if (have === want) continue;
      const over = Math.max(0, have - want);
      this.lost += Math.max(0, want - have) + Math.min(over, removes);
      this.doubled += over - Math.min(over, removes);
      this.failures.push(`${sku}: ${adds} adds and ${removes} removes make ${want}, the server has ${have}`);
    }
    for (const [field, value] of Object.entries(this.model.customer)) {
      if (state.customer?.[field] !== value) {
        this.lost += 1;
        this.failures.push(`${field}: typed last "${value}", the server has "${state.customer?.[field]}"`);
      }
    }
    if (state.step !== this.model.step) this.failures.push(`step: taken "${this.model.step}", the server has "${state.step}"`);
    // Every op once, in order, and no more than were accepted.
    this.audit = await audit(this.env.server, who.id);
    const ops = this.audit.filter((e) => e.action === "op");
    const keys = ops.map((e) => `${e.actor}:${e.seq}`);
    const twice = keys.filter((k, i) => keys.indexOf(k) !== i);
    if (twice.length) {
      this.doubled += twice.length;
      this.failures.push(`ops applied twice: ${twice.join(", ")}`);
    }
    const versions = this.audit.map((e) => e.version);
    if (versions.some((v, i) => i > 0 && v < versions[i - 1])) this.failures.push(`audit versions go back: ${versions.join(", ")}`);
    const opVersions = ops.map((e) => e.version);
    if (new Set(opVersions).size !== opVersions.length) this.failures.push(`two ops made the same version: ${opVersions.join(", ")}`);
    if (ops.length > this.ops) this.failures.push(`${ops.length} ops applied for ${this.ops} accepted changes`);
    if (versions.length && versions[versions.length - 1] !== server.body.version) {
      this.failures.push(`the audit ends at v${versions[versions.length - 1]}, the server is at v${server.body.version}`);
    }
    this.appliedOps = ops.length;
  }

  result(ms) {
    const faults = [...this.faultsSeen];
    const ok = this.failures.length === 0;
    return {
      seed: this.seed,
      ok,
      ms,
      actions: this.plan.actions.length,
      ops: this.ops,
      appliedOps: this.appliedOps ?? null,
      faults,
      twoTabCase: hasTwoTabCase(this.plan),
      lost: this.lost ?? 0,
      doubled: this.doubled ?? 0,
      recovered: ok && faults.length > 0,
      settleMs: this.settleMs ?? null,
      failures: this.failures,
      notes: [...this.tabs, ...this.closedTabs].flatMap((t) => t.errors.map((e) => `${t.name} page error: ${e}`)),
    };
  }

  /** Writes www/test-results/chaos-<seed>.json: everything needed to see what happened. */
  async save(result) {
    await this.snapshotLogs();
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `chaos-${this.seed}.json`);
    const tabs = [...this.tabs.map((t) => ({ ...t, closed: null })), ...this.closedTabs].map((t) => ({
      name: t.name,
      closed: t.closed,
      eventLog: t.log,
      console: t.console,
      pageErrors: t.errors,
    }));
    const replay = `make chaos SEED=${this.seed}`;
    writeFileSync(
      file,
      JSON.stringify({ replay, result, plan: this.plan.actions.map(describe), record: this.record, model: this.model, server: this.end ?? null, audit: this.audit ?? null, tabs }, null, 2),
    );
    result.saved = path.relative(path.resolve(RESULTS_DIR, "../.."), file);
  }
}

/** Totals over runs: { runs, ops, lost, doubled, recovered, failed, failing: [seeds], twoTabCase }. */
export function summarize(results) {
  const sum = (f) => results.reduce((s, r) => s + f(r), 0);
  return {
    runs: results.length,
    ops: sum((r) => r.ops),
    faults: sum((r) => r.faults.length),
    lost: sum((r) => r.lost),
    doubled: sum((r) => r.doubled),
    recovered: sum((r) => (r.recovered ? 1 : 0)),
    failed: sum((r) => (r.ok ? 0 : 1)),
    twoTabPlans: sum((r) => (r.twoTabCase ? 1 : 0)),
    failing: results.filter((r) => !r.ok).map((r) => r.seed),
    lostIn: results.filter((r) => r.lost > 0).map((r) => r.seed),
    doubledIn: results.filter((r) => r.doubled > 0).map((r) => r.seed),
    seconds: Math.round(sum((r) => r.ms) / 1000),
  };
}

/** The summary as the table `make chaos` prints. */
export function table(s) {
  const head = ["runs", "ops", "lost", "doubled", "recovered", "failed", "seconds"];
  const row = [s.runs, s.ops, s.lost, s.doubled, s.recovered, s.failed, s.seconds].map(String);
  const width = head.map((h, i) => Math.max(h.length, row[i].length));
  const line = (cells) => cells.map((c, i) => c.padStart(width[i])).join("  ");
  const lines = [line(head), line(row)];
  if (s.lostIn.length) lines.push(`lost clicks in seeds: ${s.lostIn.join(" ")}`);
  if (s.doubledIn.length) lines.push(`doubled in seeds: ${s.doubledIn.join(" ")}`);
  const other = s.failing.filter((x) => !s.lostIn.includes(x) && !s.doubledIn.includes(x));
  if (other.length) lines.push(`other failures in seeds: ${other.join(" ")}`);
  return lines.join("\n");
}
