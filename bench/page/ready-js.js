// The JS stack's side of bench/ready.mjs: from navigation start to the first
// state restored from IndexedDB (idb-keyval get, CRC-32, fflate inflate, parse).
import { generateState } from "./generate-state.mjs";
import { decode, loadIdbBytes, saveIdb } from "./js-stack.js";

try {
  if (new URLSearchParams(location.search).has("seed")) {
    await saveIdb("bench-ready", generateState(100 * 1024, 42), 1);
    window.readyResult = { seeded: true };
  } else {
    const state = decode(await loadIdbBytes("bench-ready"));
    const ms = performance.now();
    window.readyResult = { ms, bytes: JSON.stringify(state).length };
  }
} catch (e) {
  window.readyResult = { error: String(e) };
}
