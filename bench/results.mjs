// Shapes what the bench page measured into bench/out/results.json (the keys
// issue 4 names, ratios sessile / JS stack, the profile of single steps) and
// prints the readable table at the end of `make bench`.

const r2 = (x) => Math.round(x * 1000) / 1000;
const ratio = (a, b) => r2(a / b);

// Each section: results key -> measured case, then ratio key -> [sessile key, JS stack key].
const SAVE = {
  fields: {
    sessile_ms: "save.sessile", js_stack_ms: "save.js_stack",
    sessile_l6_ms: "save.sessile_l6", js_stack_l6_ms: "save.js_stack_l6",
    sessile_default_threshold_ms: "save.sessile_default_threshold",
    sessile_idb_ms: "save.sessile_idb", js_stack_idb_ms: "save.js_stack_idb",
    sessile_idb_wall_ms: "save.sessile_idb_wall", js_stack_idb_wall_ms: "save.js_stack_idb_wall",
    sessile_store_set_ms: "save.sessile_store_set", sessile_store_flush_wall_ms: "save.sessile_store_flush",
  },
  ratios: { ratio: ["sessile_ms", "js_stack_ms"], ratio_l6: ["sessile_l6_ms", "js_stack_l6_ms"], ratio_idb: ["sessile_idb_ms", "js_stack_idb_ms"] },
};
const RESTORE = {
  fields: {
    sessile_ms: "restore.sessile", js_stack_ms: "restore.js_stack",
    sessile_idb_wall_ms: "restore.sessile_idb", js_stack_idb_wall_ms: "restore.js_stack_idb",
    sessile_from_bytes_ms: "restore.sessile_from_bytes", js_stack_from_bytes_ms: "restore.js_stack_from_bytes",
    sessile_store_open_wall_ms: "restore.sessile_store_open",
  },
  ratios: { ratio: ["sessile_ms", "js_stack_ms"], ratio_idb_wall: ["sessile_idb_wall_ms", "js_stack_idb_wall_ms"] },
};

function section(m, { fields, ratios }) {
  const out = {};
  for (const [key, name] of Object.entries(fields)) out[key] = r2(m[name]);
  for (const [key, [a, b]] of Object.entries(ratios)) out[key] = ratio(m[fields[a]], m[fields[b]]);
  return out;
}

function sizeResults(s) {
  const m = s.medians;
  const save = section(m, SAVE);
  const restore = section(m, RESTORE);
  const profile = Object.fromEntries(
    Object.entries(m).filter(([k]) => k.startsWith("profile.")).map(([k, v]) => [`${k.slice(8)}_ms`, r2(v)]),
  );
  // Derived: what sessile spends beyond JSON.stringify / JSON.parse.
  profile.sessile_encode_minus_stringify_ms = r2(m["profile.sessile_encode"] - m["profile.json_stringify"]);
  profile.sessile_wasm_deflate_l1_ms = r2(m["profile.sessile_encode"] - m["profile.sessile_encode_no_deflate"]);
  profile.sessile_no_deflate_minus_stringify_ms = r2(m["profile.sessile_encode_no_deflate"] - m["profile.json_stringify"]);
  profile.sessile_wasm_inflate_ms = r2(m["restore.sessile_from_bytes"] - m["profile.sessile_decode_no_inflate"]);
  profile.sessile_no_inflate_minus_parse_ms = r2(m["profile.sessile_decode_no_inflate"] - m["profile.json_parse"]);
  profile.sessile_save_minus_encode_ms = r2(m["save.sessile"] - m["profile.sessile_encode"]);
  profile.sessile_decode_minus_parse_ms = r2(m["restore.sessile_from_bytes"] - m["profile.json_parse"]);
  profile.sessile_load_minus_decode_ms = r2(m["restore.sessile"] - m["restore.sessile_from_bytes"]);
  return { save, restore, profile };
}

/** The results object written to bench/out/results.json. */
export function shapeResults(page, bundle, meta) {
  const out = { meta: { ...meta, ...page.env } };
  const compression = {};
  for (const [label, s] of Object.entries(page.sizes)) {
    const { save, restore, profile } = sizeResults(s);
    out[`save_${label}`] = save;
    out[`restore_${label}`] = restore;
    out[`profile_${label}`] = profile;
    compression[`checkout_${label}_raw_bytes`] = s.rawBytes;
    compression[`checkout_${label}_ratio`] = r2(s.stored.sessile_l1 / s.rawBytes);
    compression[`checkout_${label}_ratio_l6`] = r2(s.stored.sessile_l6 / s.rawBytes);
    compression[`fflate_${label}_ratio_l1`] = r2(s.stored.fflate_l1 / s.rawBytes);
    compression[`fflate_${label}_ratio_l6`] = r2(s.stored.fflate_l6 / s.rawBytes);
    compression[`stored_${label}_bytes`] = s.stored;
  }
  out.compression = compression;
  out.bundle = bundle;
  out.targets = {
    save_100kb_ratio_max: 0.5,
    save_100kb_met: out.save_100kb.ratio <= 0.5,
    restore_100kb_max_ms: 5,
    restore_100kb_met: out.restore_100kb.sessile_ms < 5,
    budget_target_gzip_bytes: 80_000,
    budget_aim_gzip_bytes: 64_000,
    budget_limit_gzip_bytes: 96_000,
    budget_target_met: bundle.budget_gzip_bytes <= 80_000,
    smaller_than_js_stack: bundle.total_gzip_bytes < bundle.js_stack.all_four_min_gzip_bytes,
  };
  return out;
}

const pad = (cells, widths) => cells.map((c, i) => String(c)[i ? "padStart" : "padEnd"](widths[i])).join("  ");

/** The table printed at the end of the run (and pasted into docs/BENCHMARKS.md). */
export function printTable(res) {
  const w = [44, 10, 10, 8];
  const rows = [["main-thread ms (median)", "sessile", "JS stack", "ratio"]];
  for (const label of ["100kb", "10kb"]) {
    const s = res[`save_${label}`];
    const r = res[`restore_${label}`];
    rows.push(
      [`save ${label}, localStorage, deflate L1`, s.sessile_ms, s.js_stack_ms, s.ratio],
      [`save ${label}, localStorage, deflate L6`, s.sessile_l6_ms, s.js_stack_l6_ms, s.ratio_l6],
      [`save ${label}, IndexedDB (encode + set call)`, s.sessile_idb_ms, s.js_stack_idb_ms, s.ratio_idb],
      [`restore ${label}, localStorage`, r.sessile_ms, r.js_stack_ms, r.ratio],
      [`restore ${label}, IndexedDB (wall, get + decode)`, r.sessile_idb_wall_ms, r.js_stack_idb_wall_ms, r.ratio_idb_wall],
      [`openStore ${label}: set() / set+flush (wall)`, `${s.sessile_store_set_ms} / ${s.sessile_store_flush_wall_ms}`, "", ""],
      [`openStore ${label}: open + read state (wall)`, r.sessile_store_open_wall_ms, "", ""],
    );
  }
  const c = res.compression;
  rows.push(["stored / raw, 100kb (L1 / L6)", `${c.checkout_100kb_ratio} / ${c.checkout_100kb_ratio_l6}`, `${c.fflate_100kb_ratio_l1} / ${c.fflate_100kb_ratio_l6}`, ""]);
  const b = res.bundle;
  rows.push(["gzip -9 bytes: download as packed (budget 80,000)", b.budget_gzip_bytes, "", ""]);
  rows.push(["gzip -9 bytes: wasm + min JS (min+gz stack)", `${b.wasm_gzip_bytes}+${b.js_min_gzip_bytes}`, b.js_stack.all_four_min_gzip_bytes, ratio(b.total_gzip_bytes, b.js_stack.all_four_min_gzip_bytes)]);
  console.log(rows.map((row) => pad(row, w)).join("\n"));
  const t = res.targets;
  console.log(`targets: save 100kb <= 0.5x JS stack: ${t.save_100kb_met ? "met" : "NOT met"} (${res.save_100kb.ratio}); ` +
    `restore 100kb < 5 ms: ${t.restore_100kb_met ? "met" : "NOT met"} (${res.restore_100kb.sessile_ms} ms)`);
  if (res.link) {
    const l = res.link;
    const f = (x) => `median ${x.median_ms} ms, p95 ${x.p95_ms} ms (${x.runs} runs)`;
    console.log(`link: ws_connect ${f(l.ws_connect_ms)}; http_fallback ${f(l.http_fallback_ms)}`);
    console.log(`link: reconnect_after_restart ${f(l.reconnect_after_restart_ms)}: ${t.reconnect_after_restart_met ? "met" : "NOT met"} (median <= 1500 ms)`);
    if (l.dead_detect_intervals) {
      console.log(`link: dead_detect_intervals worst ${l.dead_detect_intervals.worst} over ${l.dead_detect_intervals.seeds} simulated seeds: ${t.dead_detect_met ? "met" : "NOT met"} (<= 2)`);
    }
  }
  if (res.ready) {
    const r = res.ready;
    console.log(`openSession to ready, 100 KB from IndexedDB (median ms from navigation start, ${r.sessile.runs} loads each): ` +
      `cold ${r.sessile.cold_ms} vs JS stack ${r.js_stack.cold_ms} (ratio ${r.ratio_cold}); warm ${r.sessile.warm_ms} vs ${r.js_stack.warm_ms} (ratio ${r.ratio_warm})`);
  }
  console.log(`(${res.meta.runs} runs after ${res.meta.warmup} warm-up, ${res.meta.chromium}, cross-origin isolated: ${res.meta.crossOriginIsolated}, timer step ${res.meta.timerResolutionMs} ms)`);
}
