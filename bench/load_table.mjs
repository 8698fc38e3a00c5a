// The scaling table of docs/PROTOCOL.md (`make load-table`): for each of
// SQLite×1, PostgreSQL×1 and PostgreSQL×2, runs the load client
// (server/examples/load.rs, built by scripts/load-table) at rising offered
// rates and keeps the highest rate whose acknowledged ops/s is at least 95%
// of what was offered with ack p99 under 50 ms. One configuration stops at
// its first rate that misses. Writes every run and the table to
// bench/out/scaling.json and prints the table as Markdown.
//
// SESSIONS (10000) sessions each send an op every SESSIONS/rate seconds;
// LOAD_RATES ("1000,2000,4000,6000,8000,10000") are the offered ops/s;
// OP_SECONDS (20) per run; LOAD_CONFIGS ("sqlite:1,postgres:1,postgres:2")
// picks the configurations.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

const P99_LIMIT_MS = 50;
const ACKED_SHARE = 0.95;

const sessions = Number(process.env.SESSIONS ?? 10000);
const seconds = Number(process.env.OP_SECONDS ?? 20);
const rates = (process.env.LOAD_RATES ?? "1000,2000,4000,6000,8000,10000")
  .split(",")
  .map(Number);
const configs = (process.env.LOAD_CONFIGS ?? "sqlite:1,postgres:1,postgres:2")
  .split(",")
  .map((c) => {
    const [backend, instances] = c.split(":");
    return { backend, instances: Number(instances ?? 1) };
  });
for (const n of [sessions, seconds, ...rates, ...configs.map((c) => c.instances)]) {
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`load-table: every count must be a positive integer (SESSIONS, OP_SECONDS, LOAD_RATES, LOAD_CONFIGS)`);
    process.exit(2);
  }
}

const out = "bench/out/scaling-run.json";
const runs = [];
const table = [];
for (const { backend, instances } of configs) {
  let best = null;
  for (const rate of rates) {
    const intervalMs = Math.round((sessions * 1000) / rate);
    const load = loadavg()[0].toFixed(1);
    console.error(`load-table: ${backend}×${instances}, ${rate} ops/s offered (op every ${intervalMs} ms), load average ${load}`);
    const run = spawnSync(
      "target/server/examples/load",
      [
        "--server", "target/server/sessile-server",
        "--backend", backend,
        "--instances", String(instances),
        "--sessions", String(sessions),
        "--interval-ms", String(intervalMs),
        "--seconds", String(seconds),
        "--max-seconds", "240",
        "--out", out,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    if (run.status !== 0) {
      console.error(`load-table: the load client failed (exit ${run.status}); stopping ${backend}×${instances} here`);
      break;
    }
    const r = JSON.parse(readFileSync(out, "utf8"));
    const ok = r.opsPerSecond >= rate * ACKED_SHARE && r.ackMs.p99 < P99_LIMIT_MS && r.errors === 0;
    runs.push({ offered: rate, ok, loadAverageBefore: Number(load), ...r });
    console.error(`load-table:   acked ${r.opsPerSecond} ops/s, p50 ${r.ackMs.p50} ms, p99 ${r.ackMs.p99} ms, errors ${r.errors}: ${ok ? "kept" : "missed"}`);
    if (!ok) break;
    best = { offered: rate, ...r };
  }
  table.push({ backend, instances, best });
}

const fmt = (n) => Math.round(n).toLocaleString("en-US");
const lines = [
  `| backend | instances | highest offered ops/s kept | acked ops/s | ack p50 | ack p99 | server RSS (peak, MB) |`,
  `|---|---|---|---|---|---|---|`,
  ...table.map(({ backend, instances, best }) =>
    best
      ? `| ${backend} | ${instances} | ${fmt(best.offered)} | ${fmt(best.opsPerSecond)} | ${best.ackMs.p50} ms | ${best.ackMs.p99} ms | ${best.serverRssMb.peak} |`
      : `| ${backend} | ${instances} | none of ${rates.join(", ")} | | | | |`,
  ),
];
mkdirSync("bench/out", { recursive: true });
writeFileSync(
  "bench/out/scaling.json",
  JSON.stringify(
    { sessions, opSeconds: seconds, rates, p99LimitMs: P99_LIMIT_MS, ackedShare: ACKED_SHARE, cpus: cpus().length, table, runs },
    null,
    2,
  ) + "\n",
);
console.log(lines.join("\n"));
console.error("load-table: wrote bench/out/scaling.json");
