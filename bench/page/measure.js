// Timing loop of the bench page: runs cases interleaved (each iteration runs
// every case once, in a rotating order, so machine drift hits all alike) and
// returns per-case medians of main-thread milliseconds after a warm-up.
//
// A case is { name, run, kind?, check? }:
//   kind "sync" (default): times run().
//   kind "issue": run() starts async work (idb-keyval set); times run() plus
//     the microtasks it queues (where idb-keyval issues its put), then awaits
//     the promise and also records the wall time until it settles (`_wall`).
//   kind "wall": times `await run()` (an IndexedDB read and what follows).
//   check(result) runs untimed after each run; a false return counts a mismatch.

const now = () => performance.now();
const drainMicrotasks = () => new Promise((r) => queueMicrotask(() => queueMicrotask(() => queueMicrotask(r))));

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Smallest step of performance.now() seen (5 µs when cross-origin isolated). */
export function timerResolution() {
  let best = Infinity;
  for (let i = 0; i < 200; i++) {
    const a = now();
    let b = now();
    while (b === a) b = now();
    best = Math.min(best, b - a);
  }
  return best;
}

/**
 * Runs `cases` warmup + runs times; `beforeEach(i)` runs untimed at the start
 * of each iteration. Returns { medians: {name: ms}, mismatches: {name: n} }.
 */
export async function measure(cases, { warmup, runs, beforeEach = () => {} }) {
  const samples = {};
  const mismatches = {};
  for (const c of cases) {
    samples[c.name] = [];
    if (c.kind === "issue") samples[`${c.name}_wall`] = [];
    mismatches[c.name] = 0;
  }
  for (let i = 0; i < warmup + runs; i++) {
    beforeEach(i);
    for (let j = 0; j < cases.length; j++) {
      const c = cases[(i + j) % cases.length];
      let out;
      let main;
      let wall;
      const t0 = now();
      if (c.kind === "issue") {
        const pending = c.run(i);
        await drainMicrotasks();
        main = now() - t0;
        out = await pending;
        wall = now() - t0;
      } else if (c.kind === "wall") {
        out = await c.run(i);
        main = now() - t0;
      } else {
        out = c.run(i);
        main = now() - t0;
      }
      if (c.check && !(await c.check(out, i))) mismatches[c.name]++;
      if (i < warmup) continue;
      samples[c.name].push(main);
      if (wall !== undefined) samples[`${c.name}_wall`].push(wall);
    }
  }
  const medians = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, median(v)]));
  return { medians, mismatches };
}
