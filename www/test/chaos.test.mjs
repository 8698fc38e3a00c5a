// `make test`'s share of the chaos runs (www/test/chaos.mjs): seeds 1 to 20
// (CHAOS_TEST_RUNS overrides), one test each, against the real demo page
// and server. Each asserts what `make chaos` counts: no click lost, none
// doubled, every tab in sync with the server, the audit log clean. A failed
// seed leaves www/test-results/chaos-<seed>.json; `make chaos SEED=n`
// replays it. A gate: seed 5 (a tab removes a product another tab added
// offline and crashed with, unsent) is docs/PROTOCOL.md's rule 3 exception.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runSeed, startChaos, summarize, table } from "./chaos.mjs";

const RUNS = Number(process.env.CHAOS_TEST_RUNS ?? 20);
const env = { chaos: undefined };
const results = [];

before(async () => {
  env.chaos = await startChaos();
});

after(async () => {
  await env.chaos?.close();
  if (results.length) console.log(`chaos (make test):\n${table(summarize(results))}`);
});

describe("chaos runs on the demo page: clicks, tabs, crashes, offline, blocked WebSocket, server SIGKILL, quota", () => {
  for (let seed = 1; seed <= RUNS; seed += 1) {
    test(`seed ${seed}: nothing lost, nothing doubled`, async () => {
      const r = await runSeed(env.chaos, seed);
      results.push(r);
      const where = r.saved ? `; the run is in ${r.saved}, replay: make chaos SEED=${seed}` : "";
      assert.deepEqual(
        { lost: r.lost, doubled: r.doubled, failures: r.failures },
        { lost: 0, doubled: 0, failures: [] },
        `seed ${seed}${where}`,
      );
    });
  }
});
