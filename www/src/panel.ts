// The side panel's figures, read from `session.diagnostics()`: versions,
// checksum, raw vs stored bytes, storage, link, status and time left, plus
// the connection's story (connected, lost, restored) told by its events.
import type { Session, SessionDiagnostics, SessionEvent } from "sessile";
import type { Checkout } from "./checkout";
import { byId } from "./dom";

const set = (id: string, value: string) => {
  const el = byId(id);
  if (el.textContent !== value) el.textContent = value;
};
const bytes = (n: number) => `${n.toLocaleString("en")} B`;

/** Why the link uses its transport, and a WebSocket probe shown as a probe (not as a switch). */
function why(link: NonNullable<SessionDiagnostics["link"]>): string {
  const reason = {
    websocket: "first choice",
    websocket_slow: "WebSocket slow to open",
    websocket_refused: "WebSocket refused",
    websocket_flapping: "WebSocket kept dropping",
    remembered: "WebSocket refused on an earlier visit",
  }[link.reason];
  return link.standby ? `${reason} · probing WebSocket` : reason;
}

/** How long until `at`, as m:ss (0:00 once past). */
export function timeLeft(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.ceil((at - now) / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The panel: `connection` follows the link's events, `draw` the diagnostics. */
export class Panel {
  private connection: { state: string; text: string } = { state: "connecting", text: "connecting" };

  constructor(private readonly session: Session<Checkout>) {}

  /** Follows the connection's story: connected, lost (why), restored, and offline while the page is. */
  event(e: SessionEvent): void {
    if (e.type === "connection_established") this.connection = { state: "connected", text: `connected · ${e.transport}` };
    else if (e.type === "connection_restored") this.connection = { state: "restored", text: `restored · ${e.transport}` };
    else if (e.type === "connection_lost") this.connection = { state: "lost", text: `lost · ${e.reason}` };
    else if (e.type === "session_expired" || e.type === "session_terminated") this.connection = { state: "over", text: "session over" };
  }

  /** Draws the current figures; returns them for the chart. */
  draw(): SessionDiagnostics {
    const d = this.session.diagnostics();
    const w = d.lastWrite;
    set("d-session", d.sessionId ? `${d.sessionId.slice(0, 8)}…` : "not on the server yet");
    set("d-status", d.status);
    set("d-time-left", timeLeft(d.expiresAt));
    set("d-version", String(d.version));
    set("d-server-version", d.link ? String(d.link.serverVersion) : "–");
    set("d-checksum", w ? w.checksum : "–");
    set("d-raw", bytes(d.rawBytes));
    set("d-stored", w ? bytes(w.storedBytes) : "–");
    set("d-compressed", w ? (w.compressed ? `yes, ${Math.round((100 * w.storedBytes) / Math.max(1, d.rawBytes))} % of raw` : "no") : "–");
    set("d-slot", w ? `${w.slot} (generation ${w.generation})` : "–");
    set("d-backend", d.backend + (d.degraded.length ? ` (after ${d.degraded.map((x) => x.backend).join(", ")})` : ""));
    set("d-durable", d.durable === null ? "unknown" : d.durable ? "persistent" : "best effort (may be evicted)");
    set("d-transport", d.link?.transport ?? "none");
    set("d-transport-why", d.link ? why(d.link) : "–");
    set("d-link", d.link ? d.link.state : "–");
    set("d-rtt", d.link?.rttMs == null ? "–" : `${d.link.rttMs} ms`);
    set("d-outbox", d.link ? String(d.link.outbox) : "–");
    const offline = d.link?.state === "offline";
    const badge = byId("connection");
    const shown = offline ? { state: "lost", text: "offline · changes wait in the outbox" } : this.connection;
    badge.dataset.state = shown.state;
    set("connection", shown.text);
    return d;
  }
}
