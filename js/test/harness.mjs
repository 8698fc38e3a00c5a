// Test harness: starts the real sessile-server on a free loopback port (its
// own temporary SQLite file; it can be stopped and started again on the same
// port and file) and a headless Debian Chromium driven by playwright-core;
// both stop after the tests. browsers.mjs drives Chromium, Firefox and WebKit alike.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SERVER_BIN = process.env.SESSILE_SERVER_BIN ?? path.join(ROOT, "target/debug/sessile-server");
const CHROMIUM = process.env.SESSILE_CHROMIUM ?? "/usr/bin/chromium";

/** A fresh temporary directory, removed when the test process exits. */
export function tempDir(prefix = "sessile-test-") {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temporary directory holding one blank `index.html`, to serve with --www. */
export function blankWww() {
  const dir = tempDir("sessile-www-");
  writeFileSync(path.join(dir, "index.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>sessile test</title>\n');
  return dir;
}

/** Spawns the server on `port`; resolves with the child and the URL it printed. */
async function spawnServer(port, args, env) {
  const child = spawn(SERVER_BIN, ["--port", String(port), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const url = await new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`server did not start in 10 s: ${stderr}`)), 10_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return { child, url };
}

/**
 * Starts sessile-server on a free loopback port (plus `args`, e.g. --www DIR)
 * with its own SQLite file in a temporary directory (unless `args` names
 * --db). `env` adds environment variables (SESSILE_ADMIN_TOKEN). Resolves
 * with { url, origin, port, db, stop(signal), start(), restart(signal) }:
 * `stop` ends the process (SIGTERM, or SIGKILL like a crash; SIGKILL anyway
 * after 5 s), `start` runs it again on the same port and the same file, so
 * pages reconnect to the same address and find the same sessions.
 */
export async function startServer(args = [], { env = {} } = {}) {
  const db = args.includes("--db") ? args[args.indexOf("--db") + 1] : path.join(tempDir(), "sessile.db");
  const rest = args.includes("--db") ? args : [...args, "--db", db];
  let { child, url } = await spawnServer(0, rest, env);
  const port = Number(new URL(url).port);
  const server = {
    url,
    origin: new URL(url).origin,
    port,
    db,
    /** Whether the process is running. */
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, "exit");
      child.kill(signal);
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
    async start() {
      if (child.exitCode === null && child.signalCode === null) throw new Error("the server is running");
      ({ child } = await spawnServer(port, rest, env));
    },
    async restart(signal) {
      await server.stop(signal);
      await server.start();
    },
  };
  return server;
}

/** Flags of every headless Chromium the tests start: root, closed network. */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Launches headless Chromium with the flags this closed network needs. */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

/** Opens `url` in a new page; collects console errors and page errors. */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(url);
  return { page, errors };
}

/**
 * Starts the server and the browser before the file's tests and stops both
 * after them; returns an object whose `server` and `browser` are set by then.
 */
export function serverAndBrowser(hooks) {
  const env = {
    server: undefined,
    browser: undefined,
    /** A page of its own context (its own storage), on the server's origin. */
    async blankPage() {
      const context = await env.browser.newContext();
      const page = await context.newPage();
      await page.goto(`${env.server.url}healthz`);
      return page;
    },
  };
  hooks.before(async () => {
    env.server = await startServer();
    env.browser = await launchBrowser();
  });
  hooks.after(async () => {
    await env.browser?.close();
    await env.server?.stop();
  });
  return env;
}
