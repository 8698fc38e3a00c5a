// Builds the demo into dist/ (served by sessile-server: make demo). One
// plugin writes the service worker with the list of the built files.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { defineConfig } from "vite";

/** Emits sw.js: src/sw.js with the built files' paths and a version made of them. */
function serviceWorker() {
  return {
    name: "sessile-demo-service-worker",
    apply: "build",
    enforce: "post",
    generateBundle(_options, bundle) {
      const files = ["/", ...Object.keys(bundle).filter((f) => f !== "index.html").map((f) => `/${f}`)].sort();
      const version = createHash("sha256").update(files.join("\n")).digest("hex").slice(0, 12);
      const source = readFileSync(new URL("./src/sw.js", import.meta.url), "utf8");
      this.emitFile({
        type: "asset",
        fileName: "sw.js",
        source: `const FILES = ${JSON.stringify(files)};\nconst VERSION = "${version}";\n${source}`,
      });
    },
  };
}

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, target: "es2022" },
  plugins: [serviceWorker()],
});
