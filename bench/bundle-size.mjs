// Download sizes for bench/run.mjs: gzip -9 bytes of sessile's built package
// (js/dist/wasm/sessile_bg.wasm, js/dist/wasm/sessile.js, js/dist/**/*.js,
// minified by scripts/build) and the minified + gzipped size (esbuild) of the
// JS libraries a page picks today instead.
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
  // What the package ships (scripts/build): the module and its glue in
  // js/dist/wasm/, the TypeScript wrapper in the rest of js/dist/.
  const wasm = gzip9(file("js/dist/wasm/sessile_bg.wasm"));
  const glue = gzip9(file("js/dist/wasm/sessile.js"));
  // The wrapper as shipped: each .js of js/dist/ outside wasm/, gzip -9 on its
  // own (scripts/size-budget measures the same).
  const wrapper = readdirSync(path.join(root, "js/dist"), { recursive: true })
    .filter((p) => p.endsWith(".js") && !p.startsWith(`wasm${path.sep}`))
    .reduce((sum, p) => sum + gzip9(file(path.join("js/dist", p))), 0);
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
  // The wrapper and the glue as one minified bundle, as a page's bundler
  // would ship them (every module js/dist/index.js imports, store and link
  // included).
  const js = await minGzip(root, `export * from "./js/dist/index.js";`);
  return {
    wasm_gzip_bytes: wasm,
    glue_gzip_bytes: glue,
    wrapper_gzip_bytes: wrapper,
    // The budget of issue 16 and scripts/size-budget: the whole download as
    // npm pack ships it, file by file.
    budget_gzip_bytes: wasm + glue + wrapper,
    js_min_gzip_bytes: js,
    // Everything a page downloads for sessile, against the JS stack below.
    total_gzip_bytes: wasm + js,
    js_stack: stack,
  };
}
