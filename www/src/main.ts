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
    if (e.type === "session_expired" || e.type === "session_terminated" || e.type === "auth_required") showOver(session, e);
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
  showOver(session);
  document.body.dataset.ready = "true";
}

/**
 * The session cannot go on: it expired, was ended elsewhere, or the server
 * no longer knows it (auth_required). Say so and offer a new one; a session
 * completed here shows its own end instead.
 */
function showOver(session: Session<Checkout>, e?: SessionEvent): void {
  let reason: string;
  if (session.status === "expired") reason = "Your checkout session expired.";
  else if (e?.type === "auth_required") reason = `The server no longer has this checkout (${e.code}).`;
  else if (session.status === "terminated") reason = "This checkout session was ended.";
  else return;
  byId("over-reason").textContent = reason;
  byId("over-error").textContent = "";
  byId("over").hidden = false;
}

/** Ends the old session, which erases its local copy, then starts a new checkout. */
async function restart(session: Session<Checkout>, log: EventLog): Promise<void> {
  const button = byId<HTMLButtonElement>("restart");
  button.disabled = true;
  try {
    await session.end();
  } catch (e) {
    // Offline, say: the old session is kept (nothing erased) until it can be ended.
    log.add("restart", `could not end the old session: ${describeError(e)}`);
    byId("over-error").textContent = `Could not end the old session (${describeError(e)}). Try again when online.`;
    button.disabled = false;
    return;
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
