// sessile as a user gets it: the tarball from `npm pack` of js/ installed
// into a Vite + TypeScript app (this directory). The app type-checks against
// the package's .d.ts files, a deliberate type error is caught, `vite build`
// bundles the wasm module as an asset, and the built page keeps a typed
// checkout across a reload in headless Chromium, served by the real
// sessile-server. The same page without a bundler (import map) does too.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { launchBrowser, startServer } from "../../js/test/harness.mjs";
import { installTarball, packTarball } from "../../js/test/pack.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const INSTALLED = path.join(HERE, "node_modules", "sessile");

/** Runs a tool of this app's node_modules/.bin; returns { status, output }. */
function tool(name, args) {
  const r = spawnSync(path.join(HERE, "node_modules", ".bin", name), args, { cwd: HERE, encoding: "utf8" });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const env = { www: "", server: undefined, browser: undefined, vite: { status: -1, output: "" } };

before(async () => {
  if (!existsSync(path.join(HERE, "node_modules", ".bin", "vite"))) {
    throw new Error("tests/consumer has no node_modules: run scripts/setup (npm ci there)");
  }
  // --no-save: the app's package.json and lock stay as committed.
  const tarball = packTarball();
  installTarball(HERE, tarball, ["--no-save", "--offline"]);
  rmSync(path.dirname(tarball), { recursive: true, force: true });
  env.www = mkdtempSync(path.join(os.tmpdir(), "sessile-consumer-"));
  env.vite = tool("vite", ["build", "--outDir", env.www, "--emptyOutDir", "--logLevel", "warn"]);
  cpSync(path.join(HERE, "no-bundler"), path.join(env.www, "no-bundler"), { recursive: true });
  cpSync(INSTALLED, path.join(env.www, "no-bundler", "sessile"), { recursive: true });
  env.server = await startServer(["--www", env.www]);
  env.browser = await launchBrowser();
});

after(async () => {
  await env.browser?.close();
  await env.server?.stop();
  if (env.www) rmSync(env.www, { recursive: true, force: true });
});

describe("a Vite + TypeScript app with the packed sessile installed", () => {
  test("tsc: the app type-checks and the deliberate error in type-errors/ is TS2322", () => {
    const app = tool("tsc", ["-p", "tsconfig.json"]);
    assert.equal(app.status, 0, `the app does not type-check:\n${app.output}`);
    const withErrors = tool("tsc", ["-p", "tsconfig.type-errors.json"]);
    assert.notEqual(withErrors.status, 0, "tsc accepted type-errors/wrong-item.ts");
    const errors = withErrors.output.split("\n").filter((line) => /error TS\d+/.test(line));
    assert.equal(errors.length, 1, withErrors.output);
    assert.match(errors[0], /^type-errors\/wrong-item\.ts\(7,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  });

  test("vite build bundles the wasm module as a hashed asset of its own", () => {
    assert.equal(env.vite.status, 0, env.vite.output);
    const assets = readdirSync(path.join(env.www, "assets"));
    const wasm = assets.filter((f) => /^sessile_bg-[\w-]+\.wasm$/.test(f));
    assert.equal(wasm.length, 1, `assets: ${assets.join(", ")}`);
    assert.deepEqual(
      readFileSync(path.join(env.www, "assets", wasm[0])),
      readFileSync(path.join(INSTALLED, "dist", "wasm", "sessile_bg.wasm")),
    );
    const bundles = assets.filter((f) => f.endsWith(".js"));
    assert.ok(bundles.some((f) => readFileSync(path.join(env.www, "assets", f), "utf8").includes(`/assets/${wasm[0]}`)));
  });

  test("the built page keeps a typed checkout across a reload in Chromium", async () => {
    const wasm = await checkoutAcrossReload(env.server.url);
    assert.match(wasm, /^\/assets\/sessile_bg-[\w-]+\.wasm$/);
  });
});

describe("the packed sessile without a bundler", () => {
  test("a page importing it through an import map keeps the checkout across a reload", async () => {
    const wasm = await checkoutAcrossReload(`${env.server.url}no-bundler/`);
    assert.equal(wasm, "/no-bundler/sessile/dist/wasm/sessile_bg.wasm");
  });
});

/**
 * Opens `url` in a fresh browser context, adds two items, reloads, and
 * checks the checkout came back from IndexedDB. Returns the path the wasm
 * module was fetched from (it must be fetched once per load, as application/wasm).
 */
async function checkoutAcrossReload(url) {
  const context = await env.browser.newContext();
  const page = await context.newPage();
  const errors = [];
  const fetched = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("response", (r) => fetched.push({ path: new URL(r.url()).pathname, type: r.headers()["content-type"] }));
  const ready = async () => {
    await page.waitForSelector("body[data-ready]");
    assert.equal(await page.getAttribute("body", "data-ready"), "true", await page.textContent("#status"));
    return JSON.parse(await page.textContent("#state"));
  };
  try {
    await page.goto(url);
    assert.deepEqual(await ready(), { step: "cart", items: [] });
    await page.click("#add");
    await page.waitForFunction(() => JSON.parse(document.querySelector("#state").textContent).items.length === 1);
    await page.click("#add");
    await page.waitForFunction(() => JSON.parse(document.querySelector("#state").textContent).items.length === 2);
    await page.reload();
    assert.deepEqual(await ready(), {
      step: "address",
      items: [
        { sku: "SKU-1", qty: 1 },
        { sku: "SKU-2", qty: 1 },
      ],
    });
    assert.equal(await page.textContent("#status"), "stored in indexeddb");
    assert.deepEqual(errors, []);
    const wasm = fetched.filter((f) => f.path.endsWith(".wasm"));
    assert.equal(wasm.length, 2, `one wasm fetch per load: ${JSON.stringify(wasm)}`);
    assert.equal(wasm[0].path, wasm[1].path);
    assert.equal(wasm[0].type, "application/wasm");
    const fromRepo = fetched.filter((f) => /^\/(js|pkg)\//.test(f.path));
    assert.deepEqual(fromRepo, [], "the page loaded the repository's build instead of the package");
    return wasm[0].path;
  } finally {
    await context.close();
  }
}
