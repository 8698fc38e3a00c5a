// The npm package as published: `npm pack` lists only what a user needs,
// every relative import in it resolves inside it, and the installed package
// imports in Node (server-side rendering) without reading a browser global.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { JS_DIR, downloadSizes, installTarball, packListing, packTarball } from "./pack.mjs";

const manifest = JSON.parse(readFileSync(path.join(JS_DIR, "package.json"), "utf8"));

/** Every file a user needs: the manifest, the README, compiled JS and types, the wasm module. */
const ALLOWED = [/^package\.json$/, /^README\.md$/, /^LICENSE[^/]*$/, /^dist\/.+\.(js|d\.ts)$/, /^dist\/wasm\/sessile_bg\.wasm$/];

/** Targets of the exports map (and the legacy `types` / `module` fields), without "./". */
function exportTargets(exportsMap) {
  const targets = [];
  const walk = (v) => (typeof v === "string" ? targets.push(v) : Object.values(v).forEach(walk));
  walk(exportsMap);
  return [...targets, manifest.types, manifest.module].map((t) => t.replace(/^\.\//, ""));
}

/** Relative specifiers a JS or .d.ts file imports or re-exports. */
function relativeImports(source) {
  const found = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s*)["'](\.{1,2}\/[^"']+)["']/g;
  for (const m of source.matchAll(re)) found.push(m[1]);
  return found;
}

describe("npm pack of js/", () => {
  const listing = packListing();
  const paths = listing.files.map((f) => f.path).sort();

  test("lists only what a user needs: no sources, tests, maps or build leftovers", () => {
    assert.deepEqual(
      paths.filter((p) => !ALLOWED.some((re) => re.test(p))),
      [],
      `unexpected files in the package: ${paths.join(", ")}`,
    );
    for (const p of paths) {
      // (dist/wasm/snippets/<crate>/src/ is wasm-bindgen's layout of the glue's JS imports.)
      assert.doesNotMatch(p, /^src\/|(^|\/)(test|tests)\/|\.test\.|(?<!\.d)\.ts$/, `${p} is a source or test file`);
      assert.doesNotMatch(p, /\.map$|\.tsbuildinfo$|(^|\/)\.gitignore$/, `${p} is a build leftover`);
    }
  });

  test("holds the README, every target of the exports map, the glue and its types", () => {
    for (const needed of ["package.json", "README.md", "dist/wasm/sessile.js", "dist/wasm/sessile.d.ts"]) {
      assert.ok(paths.includes(needed), `${needed} is missing from ${paths.join(", ")}`);
    }
    for (const target of exportTargets(manifest.exports)) {
      assert.ok(paths.includes(target), `exports target ${target} is not in the package`);
    }
    for (const js of paths.filter((p) => p.endsWith(".js") && !p.startsWith("dist/wasm/snippets/"))) {
      assert.ok(paths.includes(js.replace(/\.js$/, ".d.ts")), `${js} has no .d.ts beside it`);
    }
  });

  test("every relative import of the packed JS and types resolves to a packed file", () => {
    const files = new Set(paths);
    const broken = [];
    for (const file of paths.filter((p) => p.endsWith(".js") || p.endsWith(".d.ts"))) {
      for (const spec of relativeImports(readFileSync(path.join(JS_DIR, file), "utf8"))) {
        const target = path.posix.join(path.posix.dirname(file), spec);
        const ok = file.endsWith(".d.ts")
          ? files.has(target) || files.has(target.replace(/\.js$/, ".d.ts"))
          : files.has(target);
        if (!ok) broken.push(`${file} imports ${spec} (${target})`);
      }
    }
    assert.deepEqual(broken, []);
  });

  test("download sizes (gzip -9) of the wasm module, its glue and the wrapper", (t) => {
    const sizes = downloadSizes(JS_DIR, paths);
    for (const [part, bytes] of Object.entries(sizes)) assert.ok(bytes > 0, `${part} is empty`);
    t.diagnostic(
      `wasm ${sizes.wasm} B + glue ${sizes.glue} B + wrapper ${sizes.wrapper} B = ` +
        `${sizes.wasm + sizes.glue + sizes.wrapper} B gzip -9; ` +
        `tarball ${listing.size} B, unpacked ${listing.unpackedSize} B, ${paths.length} files`,
    );
  });
});

// Run in a fresh Node process: it replaces browser-only globals with getters
// that record each read, imports the installed package, then calls
// openSession, which must fail as a SessileError (Node has no page to run in).
const NODE_PROBE = `
const names = ["window", "self", "document", "navigator", "location", "history", "localStorage",
  "sessionStorage", "indexedDB", "caches", "BroadcastChannel", "WebSocket", "EventSource",
  "XMLHttpRequest", "requestAnimationFrame", "addEventListener"];
const reads = [];
for (const name of names) {
  const original = Object.getOwnPropertyDescriptor(globalThis, name);
  Object.defineProperty(globalThis, name, {
    configurable: true,
    get() {
      reads.push(name);
      return original && ("value" in original ? original.value : original.get?.call(globalThis));
    },
  });
}
let sessile;
try {
  sessile = await import("sessile");
} catch (e) {
  console.log(JSON.stringify({ importError: String(e.stack ?? e) }));
  process.exit(0);
}
const readsOnImport = [...reads];
let failure = null;
try {
  await sessile.openSession({ name: "ssr", initial: {} });
} catch (e) {
  failure = { isSessileError: e instanceof sessile.SessileError, code: e.code, message: String(e.message) };
}
const resolved = ["sessile", "sessile/sessile_bg.wasm", "sessile/package.json"].map((s) => import.meta.resolve(s));
console.log(JSON.stringify({ importError: null, exports: Object.keys(sessile), readsOnImport, failure, resolved }));
`;

describe("the installed package in Node (server-side rendering)", () => {
  let probe;
  const made = [];
  before(() => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "sessile-node-"));
    const tarball = packTarball();
    made.push(dir, path.dirname(tarball));
    installTarball(dir, tarball, ["--offline"]);
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", NODE_PROBE], {
      cwd: dir,
      encoding: "utf8",
    });
    probe = JSON.parse(out.trim().split("\n").at(-1));
  });
  after(() => made.forEach((d) => rmSync(d, { recursive: true, force: true })));

  test("it imports, reading no browser global", () => {
    assert.equal(probe.importError, null);
    assert.deepEqual(probe.readsOnImport, []);
  });

  test("exports loadSessile, openSession and SessileError", () => {
    for (const name of ["loadSessile", "openSession", "SessileError"]) {
      assert.ok(probe.exports.includes(name), `${name} is not exported (exports: ${probe.exports.join(", ")})`);
    }
  });

  test("openSession outside a browser rejects with a SessileError, not a ReferenceError", () => {
    assert.ok(probe.failure, "openSession resolved in Node");
    assert.equal(probe.failure.isSessileError, true, JSON.stringify(probe.failure));
    assert.equal(probe.failure.code, "WASM_LOAD_FAILED");
  });

  test("the exports map resolves the entry, the wasm module and package.json to installed files", () => {
    const [entry, wasm, pkgJson] = probe.resolved.map((u) => fileURLToPath(u));
    assert.match(entry, /node_modules\/sessile\/dist\/index\.js$/);
    assert.match(wasm, /node_modules\/sessile\/dist\/wasm\/sessile_bg\.wasm$/);
    for (const file of [entry, wasm, pkgJson]) assert.ok(existsSync(file), `${file} does not exist`);
  });
});
