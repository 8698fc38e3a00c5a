// The npm package as a user receives it: `npm pack` of js/ (after
// scripts/build), its file listing, gzip sizes of what a page downloads, and
// the tarball installed into a directory with `npm install`.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const JS_DIR = path.join(ROOT, "js");

const NPM_QUIET = ["--no-audit", "--no-fund", "--loglevel=error"];

/** Runs npm with `args` in `cwd`; returns its stdout. */
export function npm(cwd, args) {
  return execFileSync("npm", args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** `npm pack --dry-run` of js/: { files: [{ path, size }], size (tarball bytes), unpackedSize }. */
export function packListing() {
  const [report] = JSON.parse(npm(JS_DIR, ["pack", "--dry-run", "--json"]));
  return report;
}

/** Packs js/ into a new temporary directory; returns the tarball's path. */
export function packTarball() {
  const dest = mkdtempSync(path.join(os.tmpdir(), "sessile-pack-"));
  const [report] = JSON.parse(npm(JS_DIR, ["pack", "--json", "--pack-destination", dest]));
  return path.join(dest, report.filename);
}

/**
 * Installs `tarball` with npm into `dir` (created with a bare package.json
 * when it has none); returns the installed package's directory.
 */
export function installTarball(dir, tarball, extraArgs = []) {
  mkdirSync(dir, { recursive: true });
  try {
    readFileSync(path.join(dir, "package.json"));
  } catch {
    writeFileSync(path.join(dir, "package.json"), JSON.stringify({ private: true, type: "module" }));
  }
  npm(dir, ["install", ...NPM_QUIET, ...extraArgs, tarball]);
  return path.join(dir, "node_modules", "sessile");
}

/** gzip -9 bytes of a file (the same measure as scripts/build and the benchmarks). */
export function gzipBytes(file) {
  return execFileSync("gzip", ["-9", "-n", "-c", file]).length;
}

/**
 * What a page downloads from the package at `dir`, by part, in gzip -9
 * bytes: the wasm module, the wasm-bindgen glue (with its snippets) and the
 * TypeScript wrapper. `paths` lists the package's files.
 */
export function downloadSizes(dir, paths) {
  const sum = (files) => files.reduce((total, f) => total + gzipBytes(path.join(dir, f)), 0);
  const js = paths.filter((p) => p.endsWith(".js"));
  return {
    wasm: sum(paths.filter((p) => p.endsWith(".wasm"))),
    glue: sum(js.filter((p) => p.startsWith("dist/wasm/"))),
    wrapper: sum(js.filter((p) => !p.startsWith("dist/wasm/"))),
  };
}
