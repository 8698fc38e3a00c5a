// Runs before `npm pack` / `npm publish` in js/: refuses to pack a package
// whose dist/ was not built (scripts/build writes the wrapper and the wasm
// module with its glue), which would install but fail to load.
import { existsSync } from "node:fs";

const needed = ["dist/index.js", "dist/index.d.ts", "dist/wasm/sessile.js", "dist/wasm/sessile_bg.wasm"];
const missing = needed.filter((f) => !existsSync(new URL(`../${f}`, import.meta.url)));
if (missing.length > 0) {
  console.error(`sessile: cannot pack, missing ${missing.join(", ")}; run \`make build\` (scripts/build) first`);
  process.exit(1);
}
