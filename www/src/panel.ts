// The side panel's figures, read from `session.diagnostics()`: versions,
// checksum, raw vs stored bytes, storage, link, status and time left, plus
// the connection's story (connected, lost, restored) told by its events.
import type { Session, SessionDiagnostics, SessionEvent } from "sessile";
import type { Checkout } from "./checkout";
import { byId, counted } from "./dom";

const set = (id: string, value: string) => {
  const el = byId(id);
  if (el.textContent !== value) el.textContent = value;
};
const bytes = (n: number) => `${n.toLocaleString("en")} B`;

type Link = NonNullable<SessionDiagnostics["link"]>;

/** Why the link uses its transport, and a WebSocket probe shown as a probe (not as a switch). */
function why(link: Link): string {
  const reason = {
    websocket: "first choice",
    websocket_slow: "WebSocket slow to open",
    websocket_refused: "WebSocket refused",
    websocket_flapping: "WebSocket kept dropping",
    remembered: "WebSocket refused on an earlier visit",
  }[link.reason];
  if (link.probing) return `${reason} · probing WebSocket (HTTP again if it does not open)`;
  return link.standby ? `${reason} · WebSocket opening beside HTTP` : reason;
}

/**
 * The transport: during a WebSocket probe from HTTP the link stays an HTTP
 * link trying the WebSocket (it is back on HTTP if the probe fails), so the
 * field says so instead of switching to websocket and back.
 */
function transportOf(link: Link | null): string {
  if (!link) return "none";
  if (link.probing) return "http (probing websocket)";
  return link.transport ?? "none";
}

/** Whether the server has this tab's changes: why the local version is ahead of it, when it is. */
function inStep(d: SessionDiagnostics): string {
  if (!d.link) return d.sessionId ? "–" : "local only: no server session yet";
  const waiting = d.link.outbox;
  if (waiting > 0) return `no: ${counted(waiting, "change")} of this tab not on the server yet`;
  return "yes";
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

  /**
   * Follows the connection's story: connected, lost (why), restored, and
   * offline while the page is. A connection left for a WebSocket probe or
   * a switch to the WebSocket (`upgrade`) was not lost: it says so, and
   * what follows is "connected".
   */
  event(e: SessionEvent): void {
    const switching = this.connection.state === "probing" || this.connection.state === "switching";
    if (e.type === "connection_established") this.connection = { state: "connected", text: `connected · ${e.transport}` };
    else if (e.type === "connection_restored") {
      this.connection = switching ? { state: "connected", text: `connected · ${e.transport}` } : { state: "restored", text: `restored · ${e.transport}` };
    } else if (e.type === "connection_lost" && e.reason === "upgrade") {
      this.connection = this.session.diagnostics().link?.probing
        ? { state: "probing", text: "probing websocket" }
        : { state: "switching", text: "switching to websocket" };
    } else if (e.type === "connection_lost") this.connection = { state: "lost", text: `lost · ${e.reason}` };
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
    set("d-in-step", inStep(d));
    set("d-checksum", w ? w.checksum : "–");
    set("d-raw", bytes(d.rawBytes));
    set("d-stored", w ? bytes(w.storedBytes) : "–");
    set("d-compressed", w ? (w.compressed ? `yes, ${Math.round((100 * w.storedBytes) / Math.max(1, d.rawBytes))} % of raw` : "no") : "–");
    set("d-slot", w ? `${w.slot} (generation ${w.generation})` : "–");
    set("d-backend", d.backend + (d.degraded.length ? ` (after ${d.degraded.map((x) => x.backend).join(", ")})` : ""));
    set("d-durable", d.durable === null ? "unknown" : d.durable ? "persistent" : "best effort (may be evicted)");
    set("d-transport", transportOf(d.link));
    set("d-transport-why", d.link ? why(d.link) : "–");
    set("d-link", d.link ? d.link.state : "–");
    set("d-rtt", d.link?.rttMs == null ? "–" : `${d.link.rttMs} ms`);
    set("d-outbox", d.link ? String(d.link.outbox) : "–");
    const offline = d.link?.state === "offline";
    const badge = byId("connection");
    const simulated = document.body.dataset.offline === "true" ? " (Go offline)" : "";
    const shown = offline ? { state: "lost", text: `offline${simulated} · changes wait in the outbox` } : this.connection;
    badge.dataset.state = shown.state;
    set("connection", shown.text);
    return d;
  }
}
