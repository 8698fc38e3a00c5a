// `make chaos`: seeded chaos runs of the demo page against the real server
// (www/test/chaos.mjs). CHAOS_RUNS runs (default 1,000) from seed
// CHAOS_FIRST_SEED (default 1), or only seed SEED to replay a failed run.
// Prints a line per failed run and the table (runs, ops, lost, doubled,
// recovered, failed), writes bench/out/chaos.json (a replay:
// chaos-seed-<n>.json), and exits 1 when a run failed (its record is in
// www/test-results/chaos-<seed>.json).
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { runSeed, startChaos, summarize, table } from "../test/chaos.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const number = (name, fallback) => {
  const text = process.env[name];
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${text}: a whole number, please`);
  return n;
};

const replay = number("SEED", undefined);
const runs = replay === undefined ? number("CHAOS_RUNS", 1000) : 1;
const first = replay ?? number("CHAOS_FIRST_SEED", 1);
const started = new Date();
console.log(replay === undefined ? `chaos: ${runs} runs, seeds ${first}..${first + runs - 1}` : `chaos: replaying seed ${replay}`);

const env = await startChaos();
const results = [];
// Ctrl-C (or SIGTERM) ends the current run, then reports the runs done.
let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    if (stopping) process.exit(130);
    stopping = true;
    console.log(`chaos: ${signal}, stopping after this run`);
  });
}
try {
  for (let seed = first; seed < first + runs && !stopping; seed += 1) {
    const r = await runSeed(env, seed);
    results.push(r);
    const tag = r.ok ? (r.recovered ? "recovered" : "ok") : `FAILED (${r.saved ?? "not saved"})`;
    if (!r.ok || replay !== undefined || seed % 25 === 0) {
      console.log(`seed ${seed}: ${tag}, ${r.ops} ops, lost ${r.lost}, doubled ${r.doubled}, ${(r.ms / 1000).toFixed(1)} s`);
      for (const f of r.failures) console.log(`  ${f.split("\n")[0]}`);
    }
  }
} finally {
  await env.close();
}

const summary = summarize(results);
console.log();
console.log(table(summary));
const out = path.join(ROOT, "bench/out");
mkdirSync(out, { recursive: true });
// A replay keeps the figures of the last full run: it writes its own file.
const file = replay === undefined ? "chaos.json" : `chaos-seed-${replay}.json`;
writeFileSync(
  path.join(out, file),
  JSON.stringify({ started: started.toISOString(), firstSeed: first, ...summary, results }, null, 2),
);
console.log(`wrote bench/out/${file}`);
process.exitCode = summary.failed ? 1 : 0;
