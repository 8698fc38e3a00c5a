// The bench page's cases: for one generated checkout state, sessile's save and
// restore (localStorage and IndexedDB) beside the hand-written JS stack, and
// the parts of each timed alone (where the time goes). bench/run.mjs calls
// window.runBench(config) and checks what it returns.
import { loadSessile } from "/js/index.js";
import { get, set, clear } from "./vendor/idb-keyval.js";
import { deflateSync, inflateSync } from "./vendor/fflate.js";
import { generateState, jsonBytes } from "./generate-state.mjs";
import * as js from "./js-stack.js";
import { measure, timerResolution } from "./measure.js";

const te = new TextEncoder();
const td = new TextDecoder();

/** Cases and figures for one state of `targetBytes`. */
async function benchSize(sessile, targetBytes, cfg) {
  const state = generateState(targetBytes, cfg.seed);
  const rawBytes = jsonBytes(state);
  // compressAbove 0: sessile deflates the 10 KB state too, as the JS stack does
  // (its default threshold, 10,240 B, stores it as is: `sessile_default_threshold`).
  const opts = (level = 1) => ({ stateVersion: state.metadata.rev, schemaVersion: 1, compressAbove: 0, compressionLevel: level });
  const expected = () => JSON.stringify(state);

  // Fixed copies for the restore cases and the profile of single steps.
  state.metadata.rev = 1;
  sessile.saveSnapshot("restore", state, opts());
  const sessileBytes = sessile.encodeSnapshot(state, opts());
  await set("sessile-restore", sessileBytes);
  js.saveLocal("js-restore", state, 1);
  const jsBytes = js.encode(state, 1);
  await set("js-restore", jsBytes);
  const json = JSON.stringify(state);
  const same = (restored) => JSON.stringify(restored) === json; // the restore keys hold this state
  const raw = te.encode(json);
  const z1 = deflateSync(raw, { level: 1 });
  const plain = { stateVersion: 1, compressAbove: 1e9 }; // never deflated: isolates the wasm deflate / inflate
  const sessilePlain = sessile.encodeSnapshot(state, plain);
  const b64 = [js.toBase64(jsBytes), js.toBase64(js.encode({ ...state, other: true }, 1))];
  // openStore, as a page uses it: set() (the write waits for the debounce),
  // set() + flush() (lock, compare-and-set transaction, markers, tab
  // message), and opening a store that holds the state (read + restore).
  const storeOpts = (name) => ({ name: `${name}-${targetBytes}`, initial: null, compressAbove: 0, debounceMs: 60000, persist: false });
  const restoreStore = await sessile.openStore(storeOpts("bench-restore"));
  restoreStore.set(state);
  await restoreStore.flush();
  await restoreStore.close();
  const store = await sessile.openStore(storeOpts("bench-save"));
  const openAndRead = async () => {
    const s = await sessile.openStore(storeOpts("bench-restore"));
    const read = s.state;
    await s.close();
    return read;
  };

  // openSession (local), as a page uses it, without and with encryption
  // (AES-256-GCM through WebCrypto, docs/STORAGE.md "Encryption"):
  // update + flush, and opening a session that holds the state.
  const keyBytes = new Uint8Array(32).fill(7);
  const sessionOpts = (name, encrypted) => ({
    name: `${name}-${targetBytes}`, initial: null, compressAbove: 0, debounceMs: 60000, persist: false, storage: "indexeddb",
    ...(encrypted ? { encryption: { key: keyBytes } } : {}),
  });
  const sessions = {};
  for (const encrypted of [false, true]) {
    const tag = encrypted ? "enc" : "plain";
    const r = await sessile.openSession(sessionOpts(`bench-session-restore-${tag}`, encrypted));
    r.set(state);
    await r.flush();
    await r.close();
    sessions[tag] = await sessile.openSession(sessionOpts(`bench-session-save-${tag}`, encrypted));
  }
  const openSessionAndRead = (encrypted) => async () => {
    const s = await sessile.openSession(sessionOpts(`bench-session-restore-${encrypted ? "enc" : "plain"}`, encrypted));
    const read = s.state;
    await s.close();
    return read;
  };

  const save = [
    { name: "save.sessile", run: () => sessile.saveSnapshot("s1", state, opts()) },
    { name: "save.sessile_l6", run: () => sessile.saveSnapshot("s6", state, opts(6)) },
    { name: "save.sessile_default_threshold", run: () => sessile.saveSnapshot("s0", state, { stateVersion: state.metadata.rev }) },
    { name: "save.js_stack", run: () => js.saveLocal("j1", state, 1) },
    { name: "save.js_stack_l6", run: () => js.saveLocal("j6", state, 6) },
    { name: "save.sessile_idb", kind: "issue", run: () => set("s1", sessile.encodeSnapshot(state, opts())) },
    { name: "save.js_stack_idb", kind: "issue", run: () => js.saveIdb("j1", state, 1) },
    { name: "save.sessile_store_set", run: () => store.set(state) },
    { name: "save.sessile_store_flush", kind: "wall", run: async () => { store.set(state); await store.flush(); } },
    { name: "save.sessile_session_flush", kind: "wall", run: async () => { sessions.plain.set(state); await sessions.plain.flush(); } },
    { name: "save.sessile_session_flush_encrypted", kind: "wall", run: async () => { sessions.enc.set(state); await sessions.enc.flush(); } },
  ];
  const restore = [
    { name: "restore.sessile", run: () => sessile.loadSnapshot("restore").state, check: same },
    { name: "restore.js_stack", run: () => js.loadLocal("js-restore"), check: same },
    { name: "restore.sessile_idb", kind: "wall", run: async () => sessile.decodeSnapshot(await get("sessile-restore")).state, check: same },
    { name: "restore.js_stack_idb", kind: "wall", run: async () => js.decode(await get("js-restore")), check: same },
    { name: "restore.sessile_from_bytes", run: () => sessile.decodeSnapshot(sessileBytes).state, check: same },
    { name: "restore.js_stack_from_bytes", run: () => js.decode(jsBytes), check: same },
    { name: "restore.sessile_store_open", kind: "wall", run: openAndRead, check: same },
    { name: "restore.sessile_session_open", kind: "wall", run: openSessionAndRead(false), check: same },
    { name: "restore.sessile_session_open_encrypted", kind: "wall", run: openSessionAndRead(true), check: same },
  ];
  const profile = [
    { name: "profile.json_stringify", run: () => JSON.stringify(state) },
    { name: "profile.text_encode", run: () => te.encode(json) },
    { name: "profile.fflate_deflate_l1", run: () => deflateSync(raw, { level: 1 }) },
    { name: "profile.fflate_deflate_l6", run: () => deflateSync(raw, { level: 6 }) },
    { name: "profile.crc32_js_stored", run: () => js.crc32(z1) },
    { name: "profile.base64_encode", run: () => js.toBase64(jsBytes) },
    { name: "profile.set_item", run: (i) => localStorage.setItem("p", b64[i % 2]) },
    { name: "profile.sessile_encode", run: () => sessile.encodeSnapshot(state, opts()) },
    { name: "profile.sessile_encode_no_deflate", run: () => sessile.encodeSnapshot(state, plain) },
    { name: "profile.sessile_decode_no_inflate", run: () => sessile.decodeSnapshot(sessilePlain).state },
    { name: "profile.get_item", run: () => localStorage.getItem("js-restore") },
    { name: "profile.base64_decode", run: () => js.fromBase64(b64[0]) },
    { name: "profile.fflate_inflate", run: () => inflateSync(z1) },
    { name: "profile.text_decode", run: () => td.decode(raw) },
    { name: "profile.json_parse", run: () => JSON.parse(json) },
  ];
  // The restore keys hold rev 1; the save cases write rev i + 2 (always new bytes).
  const beforeEach = (i) => (state.metadata.rev = i + 2);
  // BENCH_ONLY (bench/run.mjs): only the cases whose name contains it.
  const chosen = [...save, ...restore, ...profile].filter((c) => !cfg.only || c.name.includes(cfg.only));
  const { medians, mismatches } = await measure(chosen, { ...cfg, beforeEach });

  // What the save cases stored last must restore to the last state written.
  state.metadata.rev = cfg.warmup + cfg.runs + 1;
  // Read back lazily: with BENCH_ONLY only the cases that ran.
  const readBack = {
    "save.sessile": () => sessile.loadSnapshot("s1").state,
    "save.sessile_l6": () => sessile.loadSnapshot("s6").state,
    "save.sessile_default_threshold": () => sessile.loadSnapshot("s0").state,
    "save.js_stack": () => js.loadLocal("j1"),
    "save.js_stack_l6": () => js.loadLocal("j6"),
    "save.sessile_idb": async () => sessile.decodeSnapshot(await get("s1")).state,
    "save.js_stack_idb": async () => js.decode(await get("j1")),
    "save.sessile_store_flush": async () => {
      const again = await sessile.openStore(storeOpts("bench-save"));
      const read = again.state;
      await again.close();
      return read;
    },
  };
  await store.close();
  for (const [tag, encrypted] of [["plain", false], ["enc", true]]) {
    await sessions[tag].close();
    readBack[`save.sessile_session_flush${encrypted ? "_encrypted" : ""}`] = async () => {
      const again = await sessile.openSession(sessionOpts(`bench-session-save-${tag}`, encrypted));
      const read = again.state;
      await again.close();
      return read;
    };
  }
  const restored = {};
  for (const [name, read] of Object.entries(readBack)) {
    if (!cfg.only || name.includes(cfg.only)) restored[name] = await read();
  }
  const info = (level) => sessile.decodeSnapshot(sessile.encodeSnapshot(state, opts(level)));
  const stored = {
    sessile_l1: info(1).storedBytes,
    sessile_l6: info(6).storedBytes,
    fflate_l1: deflateSync(te.encode(expected()), { level: 1 }).length,
    fflate_l6: deflateSync(te.encode(expected()), { level: 6 }).length,
    sessile_local_storage_chars: localStorage.getItem("sessile:s1")?.length ?? null,
    js_stack_local_storage_chars: localStorage.getItem("j1")?.length ?? null,
  };
  return { rawBytes, medians, mismatches, stored, saved: state, restored };
}

/** Runs every size; config { sizes: {label: bytes}, warmup, runs, seed }. */
window.runBench = async (cfg) => {
  localStorage.clear();
  await clear();
  const sessile = await loadSessile();
  const env = {
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    timerResolutionMs: timerResolution(),
    nativeBase64: js.NATIVE_BASE64,
    userAgent: navigator.userAgent,
    hardwareConcurrency: navigator.hardwareConcurrency,
  };
  const sizes = {};
  for (const [label, bytes] of Object.entries(cfg.sizes)) {
    sizes[label] = await benchSize(sessile, bytes, cfg);
    localStorage.clear();
    await clear();
  }
  return { env, sizes };
};
document.title = "sessile bench: ready";
