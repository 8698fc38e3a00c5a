// Download sizes for bench/run.mjs: gzip -9 bytes of sessile's built package
// (pkg/sessile_bg.wasm, pkg/sessile.js, js/dist/*.js) and the minified +
// gzipped size (esbuild) of the JS libraries a page picks today instead.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { build } from "esbuild";

const gzip9 = (bytes) => execFileSync("gzip", ["-9", "-c"], { input: bytes }).length;

/** Minified ESM bundle of `source` (resolved from `root`), gzip -9 bytes. */
async function minGzip(root, source) {
  const out = await build({
    stdin: { contents: source, resolveDir: root, loader: "js" },
    bundle: true, minify: true, format: "esm", platform: "browser", write: false, logLevel: "error",
  });
  return gzip9(out.outputFiles[0].contents);
}

/** Every figure in bytes; keys end in `_gzip_bytes` or `_min_gzip_bytes`. */
export async function bundleSizes(root) {
  const file = (p) => readFileSync(path.join(root, p));
  const dist = readdirSync(path.join(root, "js/dist")).filter((f) => f.endsWith(".js")).map((f) => `js/dist/${f}`);
  const jsFiles = ["pkg/sessile.js", ...dist];
  const wasm = gzip9(file("pkg/sessile_bg.wasm"));
  const js = jsFiles.reduce((sum, f) => sum + gzip9(file(f)), 0);
  const stack = {
    fflate_deflate_inflate_min_gzip_bytes: await minGzip(root, 'export { deflateSync, inflateSync } from "fflate";'),
    idb_keyval_get_set_min_gzip_bytes: await minGzip(root, 'export { get, set } from "idb-keyval";'),
    localforage_min_gzip_bytes: await minGzip(root, 'export { default } from "localforage";'),
    socket_io_client_min_gzip_bytes: await minGzip(root, 'export { io } from "socket.io-client";'),
  };
  stack.all_four_min_gzip_bytes = await minGzip(
    root,
    'export { deflateSync, inflateSync } from "fflate"; export { get, set } from "idb-keyval";' +
      'export { default as localforage } from "localforage"; export { io } from "socket.io-client";',
  );
  return {
    wasm_gzip_bytes: wasm,
    js_gzip_bytes: js,
    js_files: jsFiles,
    total_gzip_bytes: wasm + js,
    // The same JS as one minified bundle, as a page's bundler would ship it.
    js_min_gzip_bytes: await minGzip(root, `export * from "./js/dist/index.js";`),
    js_stack: stack,
  };
}
