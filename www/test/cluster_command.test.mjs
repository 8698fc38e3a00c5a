// `make cluster`'s last part, scripts/cluster, as a new user runs it
// (without its build, which scripts/test has just run): it ends with a URL
// (HAProxy in front of two instances on one throwaway PostgreSQL database);
// the URL serves the demo, each instance answers /healthz; the demo page in
// Chromium adds a line, the instance holding its connection is killed with
// SIGKILL, and the page carries on: its next line reaches the database
// through the other instance, and the URL still serves the demo and a
// session made before. Ctrl-C (SIGINT) stops everything and removes the
// cluster's directory.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { launchBrowser } from "../../js/test/harness.mjs";
import { add, assertBuilt, ready, scenario, untilServer } from "./demo.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const env = { child: undefined, browser: undefined };
const ADMIN = "cluster-test-admin-token-0123456789";

after(async () => {
  await env.browser?.close();
  if (env.child && env.child.exitCode === null) {
    const exited = once(env.child, "exit");
    env.child.kill("SIGINT");
    await exited;
  }
});

/** The demo page's HTML at `url`, checked. */
async function page(url) {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  const html = await res.text();
  assert.match(html, /<title>sessile demo/);
}

/** Open WebSockets on the instance at `url` (its admin stats). */
async function wsOpen(url) {
  const res = await fetch(`${url}v1/admin/stats`, { headers: { authorization: `Bearer ${ADMIN}` } });
  assert.equal(res.status, 200);
  return (await res.json()).wsOpen;
}

test("scripts/cluster ends with a URL that keeps serving the demo when an instance is killed", async (t) => {
  assertBuilt();
  env.child = spawn(path.join(ROOT, "scripts/cluster"), [], {
    cwd: ROOT,
    env: { ...process.env, PORT: "0", SESSILE_CLUSTER_BUILD: "0", SESSILE_ADMIN_TOKEN: ADMIN },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  env.child.stdout.on("data", (d) => (output += d));
  env.child.stderr.on("data", (d) => (output += d));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL in 60 s:\n${output}`)), 60_000);
    const look = () => {
      const m = output.match(/\n(http:\/\/127\.0\.0\.1:\d+\/)\n$/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    env.child.stdout.on("data", look);
    env.child.on("exit", (code) => reject(new Error(`scripts/cluster exited with ${code}:\n${output}`)));
  });
  const instances = [...output.matchAll(/instance (\d): pid (\d+), (http:\/\/127\.0\.0\.1:\d+\/)/g)].map((m) => ({
    pid: Number(m[2]),
    url: m[3],
  }));
  assert.equal(instances.length, 2, output);
  const dir = output.match(/PostgreSQL in (\S+)\/pg /)[1];
  const kill = output.match(/kill -9 (\d+)/);
  assert.equal(Number(kill[1]), instances[0].pid, "the kill command names instance 1");

  await page(url);
  for (const i of instances) {
    assert.equal((await fetch(`${i.url}healthz`)).status, 200, i.url);
  }
  const created = await fetch(`${url}v1/sessions`, { method: "POST", body: "{}" });
  assert.equal(created.status, 201);
  const session = await created.json();
  const read = () =>
    fetch(`${url}v1/sessions/${session.id}`, { headers: { authorization: `Bearer ${session.token}` } });

  env.browser = await launchBrowser();
  let victim = instances[0];
  await scenario(t, env.browser, async ({ open }) => {
    const tab = await open(url);
    await ready(tab);
    await add(tab, "SK-122");
    const server = { url };
    await untilServer(server, tab, (b) => b.state.cart["SK-122"] === 1, "the first line through the proxy");
    // The instance holding the page's WebSocket (the link may still be
    // probing its upgrade: wait until exactly one instance holds it).
    let counts = [];
    for (const until = Date.now() + 15_000; Date.now() < until; await delay(200)) {
      counts = await Promise.all(instances.map((i) => wsOpen(i.url)));
      if (counts.filter((n) => n > 0).length === 1) break;
    }
    assert.equal(counts.filter((n) => n > 0).length, 1, `the page's WebSocket on one instance: ${counts}`);
    victim = instances[counts.findIndex((n) => n > 0)];
    t.diagnostic(`WebSockets open per instance: ${counts.join(", ")}; killed pid ${victim.pid}`);
    process.kill(victim.pid, "SIGKILL");
    await add(tab, "SK-122");
    await untilServer(server, tab, (b) => b.state.cart["SK-122"] === 2, "the line added after the kill");
  });
  // Round-robin would send every other request to the killed instance:
  // each one is answered all the same.
  for (let n = 0; n < 6; n++) {
    await page(url);
    const res = await read();
    assert.equal(res.status, 200);
    assert.equal((await res.json()).version, 1);
  }
  await assert.rejects(fetch(`${victim.url}healthz`));

  const exited = once(env.child, "exit");
  env.child.kill("SIGINT");
  await exited;
  assert.ok(!existsSync(dir), `${dir} is still there`);
  assert.match(output, /stopped; removed/);
});
