// The demo's entry: opens the checkout session, draws the funnel and the
// side panel, and keeps both current. body[data-ready] says the page is up
// ("true") or failed ("false", with the reason in #fatal).
import { SessileError, type Session, type SessionEvent } from "sessile";
import { trackSockets, wireChaos } from "./chaos";
import { Chart } from "./chart";
import { openCheckout, type Checkout } from "./checkout";
import { byId } from "./dom";
import { Funnel } from "./funnel";
import { EventLog } from "./log";
import { Panel } from "./panel";

declare global {
  interface Window {
    /** The open session, for a look from the console (and the end-to-end tests). */
    demo?: { session: Session<Checkout> };
  }
}

const describeError = (e: unknown) => (e instanceof SessileError ? `${e.code}: ${e.message}` : String(e));

async function main(): Promise<void> {
  trackSockets();
  const log = new EventLog();
  log.add("page", "page loaded");
  // Events can arrive while the session opens, before the panel exists: they wait here.
  const early: SessionEvent[] = [];
  let onEvent: (e: SessionEvent) => void = (e) => {
    early.push(e);
  };
  const session = await openCheckout((e) => {
    log.event(e);
    onEvent(e);
  });
  window.demo = { session };

  const panel = new Panel(session);
  const chart = new Chart();
  const funnel = new Funnel(session, (e) => {
    log.add("refused", describeError(e));
    showOver(session);
  });
  onEvent = (e) => {
    panel.event(e);
    if (e.type === "session_expired") showOver(session);
    funnel.render();
    panel.draw();
  };
  early.forEach(onEvent);
  wireChaos(session, log);
  byId("restart").onclick = () => void restart(session, log);

  funnel.render();
  panel.draw();
  log.draw();
  // Another tab's or the server's changes, the RTT and the time left: checked four times a second.
  setInterval(() => {
    funnel.render();
    panel.draw();
  }, 250);
  setInterval(() => {
    const d = panel.draw();
    chart.sample(d.link?.rttMs ?? null, d.lastWrite?.storedBytes ?? null);
  }, 1_000);
  if (session.status === "expired") showOver(session);
  document.body.dataset.ready = "true";
}

/** The session expired (or was refused as over): say so and offer a new one. */
function showOver(session: Session<Checkout>): void {
  const over = session.status === "expired" || session.status === "terminated";
  if (!over) return;
  byId("over-reason").textContent = session.status === "expired" ? "Your checkout session expired." : "This checkout session was ended.";
  byId("over").hidden = false;
}

/** Ends the old session (erasing its local copy) and starts a new checkout. */
async function restart(session: Session<Checkout>, log: EventLog): Promise<void> {
  try {
    await session.end();
  } catch (e) {
    // The server already ended it (expired): its local copy is erased all the same below.
    log.add("restart", `ending the old session: ${describeError(e)}`);
  }
  log.add("restart", "starting a new checkout");
  location.reload();
}

if ("serviceWorker" in navigator) {
  // The page's files for offline reloads (src/sw.js); the session API never goes through it.
  navigator.serviceWorker.register("/sw.js").catch((e: unknown) => console.warn("demo: no service worker", e));
}

main().catch((e: unknown) => {
  byId("fatal").textContent = describeError(e);
  byId("fatal").hidden = false;
  document.body.dataset.ready = "false";
});
