// `make demo`'s last part, scripts/demo, as a new user runs it (without
// its build, which scripts/test has just run): it ends with a URL, and that
// URL serves the checkout funnel, which keeps its session in the SQLite file
// data/sessile.db on the server.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { launchBrowser } from "../../js/test/harness.mjs";
import { add, assertBuilt, pageSession, ready, scenario, untilServer } from "./demo.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const env = { child: undefined, browser: undefined };

after(async () => {
  await env.browser?.close();
  if (env.child && env.child.exitCode === null) {
    const exited = once(env.child, "exit");
    env.child.kill("SIGTERM");
    await exited;
  }
});

test("scripts/demo ends with a URL that serves the funnel, its sessions in data/sessile.db", async (t) => {
  assertBuilt();
  env.child = spawn(path.join(ROOT, "scripts/demo"), [], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", SESSILE_DEMO_BUILD: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  env.child.stdout.on("data", (d) => (output += d));
  env.child.stderr.on("data", (d) => (output += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL in 20 s:\n${output}`)), 20_000);
    const look = () => {
      const m = output.match(/listening on (http:\/\/127\.0\.0\.1:\d+\/)\n$/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    env.child.stdout.on("data", look);
    env.child.on("exit", (code) => reject(new Error(`scripts/demo exited with ${code}:\n${output}`)));
  });
  assert.doesNotMatch(output, /warning/, output);
  const html = await (await fetch(url)).text();
  assert.match(html, /<title>sessile demo/);
  const worker = await fetch(`${url}sw.js`);
  assert.equal(worker.status, 200);
  env.browser = await launchBrowser();
  await scenario(t, env.browser, async ({ open }) => {
    const page = await open(url);
    await ready(page);
    await add(page, "SK-122");
    const server = { url };
    const stored = await untilServer(server, page, (b) => b.state.cart["SK-122"] === 1, "the line on the demo's server");
    assert.equal(stored.id, (await pageSession(page)).id);
    // This run's session is a row of data/sessile.db (read by the sqlite3 CLI beside the running server).
    const db = path.join(ROOT, "data/sessile.db");
    assert.ok(existsSync(db), `${db} is missing`);
    const row = spawnSync("sqlite3", [db, `SELECT count(*) FROM sessions WHERE id = '${stored.id}'`], { encoding: "utf8" });
    assert.equal(row.status, 0, row.stderr);
    assert.equal(row.stdout.trim(), "1");
  });
});
