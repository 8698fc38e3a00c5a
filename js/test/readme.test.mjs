// The code samples of README.md and js/README.md against the package as
// built (js/dist's types): every ```ts block type-checks as a module of a
// page that imports "sessile", so a sample naming an option, event field or
// export the package does not have fails here. What a sample leaves to the
// page (its own state type, its own UI functions) is declared once, below.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TYPES = path.join(ROOT, "js/dist/index.d.ts");
const TSC = path.join(ROOT, "node_modules/typescript/bin/tsc");

/** What the samples leave to the page. */
const PAGE = `
declare global {
  type Checkout = { step?: "cart" | "checkout" | "success"; items: { sku: string; qty: number }[]; email?: string };
  function showNotice(text: string): void;
  function showBanner(text: string): void;
}
export {};
`;

/** The ```ts blocks of `file`, each with the line it starts on. */
function samples(file) {
  const text = readFileSync(path.join(ROOT, file), "utf8");
  const found = [];
  const re = /^```ts\n([\s\S]*?)^```$/gm;
  for (const m of text.matchAll(re)) found.push({ line: text.slice(0, m.index).split("\n").length, code: m[1] });
  return found;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "sessile-readme-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("the READMEs' TypeScript samples", () => {
  for (const file of ["README.md", "js/README.md"]) {
    test(`${file}: every sample type-checks against the built package`, () => {
      assert.ok(existsSync(TYPES), `${TYPES} is missing: run scripts/build`);
      const blocks = samples(file);
      assert.ok(blocks.length >= 1, `${file} has TypeScript samples`);
      const files = ["page.d.ts"];
      writeFileSync(path.join(dir, "page.d.ts"), PAGE);
      for (const [i, b] of blocks.entries()) {
        const name = `${file.replace(/\W/g, "_")}_${i}_line_${b.line}.ts`;
        // A sample that imports nothing is a module too (top-level await, its own names).
        writeFileSync(path.join(dir, name), `${b.code}\nexport {};\n`);
        files.push(name);
      }
      writeFileSync(
        path.join(dir, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "es2022",
            module: "es2022",
            moduleResolution: "bundler",
            lib: ["es2022", "dom"],
            strict: true,
            noEmit: true,
            skipLibCheck: true,
            // A sample that uses `loadSessile` without importing it says so: it fails.
            paths: { sessile: [TYPES] },
          },
          files,
        }),
      );
      try {
        execFileSync(process.execPath, [TSC, "-p", dir], { encoding: "utf8", stdio: "pipe" });
      } catch (e) {
        assert.fail(`${file}'s samples do not type-check:\n${e.stdout}${e.stderr}`);
      }
    });
  }
});
