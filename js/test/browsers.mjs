// One small interface over the browsers the tests run in, so a test file
// runs the same scenario in each: headless Chromium driven by playwright-core
// (the flags of harness.mjs), headless Firefox ESR driven over W3C
// WebDriver by selenium-webdriver and geckodriver (playwright-core cannot
// drive a stock Firefox), and WebKit, Safari's engine: WebKitGTK's
// MiniBrowser driven over WebDriver by WebKitWebDriver, on the X display in
// DISPLAY or else an Xvfb display started for it (Playwright's own WebKit
// build is a download these machines cannot make).
//
//   const browser = await launch("webkit");
//   const tab = await browser.newTab(url);
//   await tab.evaluate(async (arg) => ..., arg);   // JSON in, JSON out
//   await tab.reload(); await tab.screenshot(file); await tab.close();
//   await browser.close();
//
// The tabs of one browser share one profile (localStorage, IndexedDB) and
// each has its own sessionStorage, like the tabs of a shopper's browser;
// each is a window of its own, so none is a hidden background tab.
// Over WebDriver a browser runs one command at a time: a tab's `evaluate`
// must not wait for something another tab of the same browser has to do
// (poll from the test with `waitFor` instead).
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Builder } from "selenium-webdriver";
import firefox from "selenium-webdriver/firefox.js";
import remote from "selenium-webdriver/remote/index.js";
import { launchBrowser } from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Where screenshots of failed scenarios go (gitignored). */
export const RESULTS_DIR = path.join(ROOT, "js/test-results");

/** The browsers every scenario runs in. `SESSILE_BROWSERS=firefox` picks some. */
export const KINDS = (process.env.SESSILE_BROWSERS ?? "chromium,firefox,webkit").split(",").filter(Boolean);

const CARGO_HOME = process.env.CARGO_HOME ?? path.join(os.homedir(), ".cargo");
const firstExisting = (paths) => paths.find((p) => p && existsSync(p));
const FIREFOX = firstExisting([process.env.SESSILE_FIREFOX, "/usr/bin/firefox-esr", "/usr/bin/firefox"]);
const GECKODRIVER = firstExisting([
  process.env.SESSILE_GECKODRIVER,
  path.join(CARGO_HOME, "bin/geckodriver"),
  "/usr/local/bin/geckodriver",
  "/usr/bin/geckodriver",
]);
const WEBKIT_DRIVER = firstExisting([process.env.SESSILE_WEBKIT_DRIVER, "/usr/bin/WebKitWebDriver"]);
const MINIBROWSER = firstExisting([
  process.env.SESSILE_MINIBROWSER,
  "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
  "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
]);

/**
 * Firefox preferences that stop its background traffic on this closed
 * network (updates, telemetry, safe browsing, captive portal and
 * connectivity checks, remote settings, prefetching, DNS over HTTPS) and keep
 * loopback off any proxy. geckodriver's own recommended preferences already
 * cover part of this; these do not depend on them.
 */
const FIREFOX_PREFS = {
  "app.update.auto": false,
  "app.update.disabledForTesting": true,
  "browser.discovery.enabled": false,
  "browser.newtabpage.enabled": false,
  "browser.ping-centre.telemetry": false,
  "browser.region.network.url": "",
  "browser.region.update.enabled": false,
  "browser.safebrowsing.blockedURIs.enabled": false,
  "browser.safebrowsing.downloads.enabled": false,
  "browser.safebrowsing.malware.enabled": false,
  "browser.safebrowsing.phishing.enabled": false,
  "browser.safebrowsing.provider.google4.updateURL": "",
  "browser.safebrowsing.provider.mozilla.updateURL": "",
  "browser.search.update": false,
  "browser.shell.checkDefaultBrowser": false,
  "browser.startup.homepage": "about:blank",
  "browser.startup.page": 0,
  "datareporting.healthreport.uploadEnabled": false,
  "datareporting.policy.dataSubmissionEnabled": false,
  "dom.push.connection.enabled": false,
  "extensions.blocklist.enabled": false,
  "extensions.getAddons.cache.enabled": false,
  "extensions.update.enabled": false,
  "media.gmp-manager.updateEnabled": false,
  "network.captive-portal-service.enabled": false,
  "network.connectivity-service.enabled": false,
  "network.dns.disablePrefetch": true,
  "network.http.speculative-parallel-limit": 0,
  "network.prefetch-next": false,
  "network.proxy.type": 0,
  "network.trr.mode": 5,
  "services.settings.server": "data:,#remote-settings-off",
  "toolkit.telemetry.enabled": false,
  "toolkit.telemetry.server": "data:,",
  "toolkit.telemetry.unified": false,
};

/**
 * Runs `fn(arg)` in the page and settles with a JSON envelope, so both
 * browsers hand back the same thing: the JSON value of the result, or the
 * error's name, message, `code` (SessileError) and stack.
 */
const IN_PAGE = `async (src, arg) => {
  try {
    const value = await (0, eval)("(" + src + ")")(arg);
    return JSON.stringify({ ok: true, value });
  } catch (e) {
    return JSON.stringify({ ok: false, name: e?.name, message: e?.message ?? String(e), code: e?.code, stack: e?.stack });
  }
}`;

/** The result of IN_PAGE, or its error thrown here with the page's code. */
function settle(kind, json) {
  const r = JSON.parse(json);
  if (r.ok) return r.value;
  const err = new Error(`in ${kind}: ${r.name}: ${r.message}`);
  err.code = r.code;
  err.pageStack = r.stack;
  throw err;
}

async function launchChromium() {
  const browser = await launchBrowser();
  const context = await browser.newContext();
  return {
    async newTab(url) {
      const page = await context.newPage();
      await page.goto(url);
      return {
        async evaluate(fn, arg) {
          const json = await page.evaluate(([inPage, src, a]) => (0, eval)(`(${inPage})`)(src, a), [IN_PAGE, fn.toString(), arg]);
          return settle("chromium", json);
        },
        async reload() {
          await page.reload();
        },
        async close() {
          await page.close();
        },
        async screenshot(file) {
          await page.screenshot({ path: file });
        },
      };
    },
    async close() {
      await browser.close();
    },
  };
}

async function launchFirefox() {
  if (!FIREFOX) throw new Error("no Firefox: install firefox-esr or set SESSILE_FIREFOX");
  if (!GECKODRIVER) throw new Error("no geckodriver: run scripts/setup or set SESSILE_GECKODRIVER");
  const options = new firefox.Options().setBinary(FIREFOX).addArguments("-headless");
  for (const [k, v] of Object.entries(FIREFOX_PREFS)) options.setPreference(k, v);
  const driver = await new Builder()
    .forBrowser("firefox")
    .setFirefoxOptions(options)
    .setFirefoxService(new firefox.ServiceBuilder(GECKODRIVER))
    .build();
  return overWebDriver("firefox", driver, () => driver.quit());
}

/**
 * An X display for WebKitGTK: DISPLAY when set, else a new Xvfb on a free
 * display number (Xvfb picks it: -displayfd). Resolves with { display, stop }.
 */
async function xDisplay() {
  if (process.env.DISPLAY) return { display: process.env.DISPLAY, stop: () => {} };
  const xvfb = spawn("Xvfb", ["-displayfd", "3", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"], {
    stdio: ["ignore", "ignore", "ignore", "pipe"],
  });
  const number = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error("Xvfb gave no display in 15 s")), 15_000);
    xvfb.on("error", (e) => reject(new Error(`no Xvfb (scripts/setup installs xvfb): ${e.message}`)));
    xvfb.on("exit", (code) => reject(new Error(`Xvfb exited with ${code}`)));
    xvfb.stdio[3].on("data", (d) => {
      out += d;
      if (out.includes("\n")) {
        clearTimeout(timer);
        resolve(out.trim());
      }
    });
  });
  xvfb.removeAllListeners("exit");
  const stop = () => xvfb.kill();
  process.once("exit", stop);
  return { display: `:${number}`, stop };
}

async function launchWebKit() {
  if (!WEBKIT_DRIVER) throw new Error("no WebKitWebDriver: run scripts/setup (webkit2gtk-driver) or set SESSILE_WEBKIT_DRIVER");
  if (!MINIBROWSER) throw new Error("no MiniBrowser: run scripts/setup (webkit2gtk-driver) or set SESSILE_MINIBROWSER");
  const x = await xDisplay();
  let service;
  try {
    service = new remote.DriverService.Builder(WEBKIT_DRIVER)
      .setLoopback(true)
      .setEnvironment({ ...process.env, DISPLAY: x.display })
      .build();
    const driver = await new Builder()
      .usingServer(await service.start())
      .withCapabilities({
        browserName: "MiniBrowser",
        "webkitgtk:browserOptions": { binary: MINIBROWSER, args: ["--automation"] },
      })
      .build();
    return overWebDriver("webkit", driver, async () => {
      await driver.quit().catch(() => {});
      await service.kill();
      x.stop();
    });
  } catch (e) {
    await service?.kill();
    x.stop();
    throw e;
  }
}

/**
 * The tab interface over a WebDriver session (Firefox, WebKit); `quit` ends
 * the session and whatever runs it.
 */
async function overWebDriver(kind, driver, quit) {
  await driver.manage().setTimeouts({ script: 30_000, pageLoad: 30_000 });
  // The first window stays on about:blank, so closing every tab never ends
  // the WebDriver session.
  const home = await driver.getWindowHandle();
  // One WebDriver command sequence at a time: each tab switches to its
  // window first.
  let queue = Promise.resolve();
  let evalCount = 0;
  const serial = (fn) => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
  return {
    async newTab(url) {
      const handle = await serial(async () => {
        await driver.switchTo().newWindow("window");
        await driver.get(url);
        return driver.getWindowHandle();
      });
      const inTab = (fn) =>
        serial(async () => {
          await driver.switchTo().window(handle);
          return fn();
        });
      return {
        async evaluate(fn, arg) {
          // WebDriver runs scripts in a sandbox of its own; objects made
          // there are foreign to the page (its IndexedDB reads, for one, fail
          // the package's checks), so the function runs from a <script> of
          // the page and hands its JSON back through a one-time callback.
          const key = `__sessileEval${(evalCount += 1)}`;
          const code = `(${IN_PAGE})(${JSON.stringify(fn.toString())}, ${JSON.stringify(arg)}).then((json) => window.${key}(json));`;
          const json = await inTab(() =>
            driver.executeAsyncScript(
              `const [code, key, done] = arguments;
               window[key] = (json) => { delete window[key]; done(json); };
               const script = document.createElement("script");
               script.textContent = code;
               document.documentElement.append(script);
               script.remove();`,
              code,
              key,
            ),
          );
          return settle(kind, json);
        },
        async reload() {
          await inTab(() => driver.navigate().refresh());
        },
        async close() {
          await inTab(async () => {
            await driver.close();
            await driver.switchTo().window(home);
          });
        },
        async screenshot(file) {
          const png = await inTab(() => driver.takeScreenshot());
          await writeFile(file, png, "base64");
        },
      };
    },
    close: quit,
  };
}

/**
 * Launches `kind` ("chromium", "firefox" or "webkit"). The browser returned
 * remembers its open tabs (`tabs`), so a failed scenario can photograph them.
 */
export async function launch(kind) {
  const launcher = { chromium: launchChromium, firefox: launchFirefox, webkit: launchWebKit }[kind];
  if (!launcher) throw new Error(`unknown browser ${kind}`);
  const inner = await launcher();
  const tabs = new Set();
  return {
    kind,
    tabs,
    async newTab(url) {
      const tab = await inner.newTab(url);
      const close = tab.close;
      tab.close = async () => {
        tabs.delete(tab);
        await close();
      };
      tabs.add(tab);
      return tab;
    },
    close: () => inner.close(),
  };
}

/**
 * Starts every browser of KINDS at once, for a test file's `before`: the map
 * from kind to its launch. A failed launch is reported by the `describe`
 * that awaits it, not here.
 */
export function launchEach() {
  const launching = new Map();
  for (const kind of KINDS) {
    const started = launch(kind);
    started.catch(() => {});
    launching.set(kind, started);
  }
  return launching;
}

/** Closes every browser `launchEach` started (for a test file's `after`). */
export async function closeEach(launching) {
  for (const started of launching.values()) await started.then((browser) => browser.close()).catch(() => {});
}

/**
 * Calls `check` (async, run in the test) until it returns something truthy;
 * resolves with that, or fails after `timeout` ms naming `what` and the last
 * value seen. Polling from the test works for every tab of either browser.
 */
export async function waitFor(check, { timeout = 10_000, every = 100, what = "a condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/**
 * Runs one scenario in `browser`: on failure saves a screenshot of each tab
 * it left open under js/test-results/ (named after the browser and the
 * test), then closes those tabs whatever happened.
 */
export async function scenario(t, browser, fn) {
  const before = new Set(browser.tabs);
  try {
    await fn();
  } catch (e) {
    await mkdir(RESULTS_DIR, { recursive: true });
    const slug = `${browser.kind}-${t.name}`.replace(/[^a-z0-9]+/gi, "-").slice(0, 100);
    let i = 0;
    for (const tab of browser.tabs) {
      if (before.has(tab)) continue;
      const file = path.join(RESULTS_DIR, `${slug}-${(i += 1)}.png`);
      await tab.screenshot(file).then(
        () => t.diagnostic(`screenshot: ${path.relative(ROOT, file)}`),
        (err) => t.diagnostic(`no screenshot: ${err.message}`),
      );
    }
    throw e;
  } finally {
    for (const tab of [...browser.tabs]) if (!before.has(tab)) await tab.close().catch(() => {});
  }
}
