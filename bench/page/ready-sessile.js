// sessile's side of bench/ready.mjs: from navigation start (performance.now())
// to the first state of a session whose stored copy holds 100 KB.
import { loadSessile } from "/js/index.js";
import { generateState } from "./generate-state.mjs";

const options = { name: "bench-ready", initial: {}, compressAbove: 0, persist: false };
try {
  const sessile = await loadSessile();
  const session = await sessile.openSession(options);
  if (new URLSearchParams(location.search).has("seed")) {
    session.set(generateState(100 * 1024, 42));
    await session.flush();
    await session.close();
    window.readyResult = { seeded: true };
  } else {
    const state = session.state;
    const ms = performance.now();
    window.readyResult = { ms, bytes: JSON.stringify(state).length };
    await session.close();
  }
} catch (e) {
  window.readyResult = { error: String(e?.code ?? e) };
}
