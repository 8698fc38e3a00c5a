// The event log of the side panel: every sessile event in a line a person
// can read, newest first. It is kept in sessionStorage so a reload (or a
// corruption followed by a reload) shows what happened before and after.
import type { SessionEvent } from "sessile";
import { byId, counted, h } from "./dom";

const KEY = "demo-log";
const KEEP = 80;

/** One line of the log. */
export interface LogLine {
  at: number;
  type: string;
  text: string;
}

const code = (e: { code: string; message?: string }) => (e.message ? `${e.code}: ${e.message}` : e.code);

/** The line an event gets. */
export function eventLine(e: SessionEvent): string {
  switch (e.type) {
    case "state_restored":
      if (e.outcome === "restored") {
        const skipped = e.skipped.map((s) => `; skipped slot ${s.slot}: ${s.error.code}`).join("");
        return `restored v${e.version} from slot ${e.from}${skipped}${e.migrated ? " (migrated)" : ""}`;
      }
      if (e.outcome === "unreadable") return `no readable copy (${e.skipped.map((s) => `${s.slot}: ${s.error.code}`).join(", ")}): started fresh`;
      if (e.outcome === "evicted") return `the browser evicted the stored copy (was ${e.lastVersion}): ${e.reason}`;
      return "nothing stored yet: a fresh checkout";
    case "storage_degraded":
      return `${e.backend} unavailable (${e.error.code}), using ${e.using}`;
    case "error_occurred":
      return `${e.during}: ${code(e.error)}`;
    case "connection_established":
    case "connection_restored":
      return `over ${e.transport}`;
    case "connection_lost":
      return `reason: ${e.reason}`;
    case "state_synchronized":
      return `in sync with the server at v${e.version}` + (e.confirmed ? `, ${counted(e.confirmed, "change")} of this tab confirmed` : "");
    case "session_updated":
      return e.origin === "tab" ? `another tab wrote v${e.version}` : `server change: now v${e.version}`;
    case "session_created":
      return `server session ${e.id.slice(0, 8)}…`;
    case "session_expired":
      return `status ${e.status}: the checkout is over`;
    case "session_terminated":
      return `${e.reason} (status ${e.status})`;
    case "status_changed":
      return `→ ${e.status}`;
    case "conflict":
      return `a conflicting change; ${e.winner} wins`;
    case "auth_required":
    case "auth_failed":
      return code(e);
    case "auth_success":
      return `joined ${e.id.slice(0, 8)}…`;
  }
}

/** The log: appends, keeps the newest {@link KEEP} lines, draws them into #log. */
export class EventLog {
  private lines: LogLine[];

  constructor() {
    try {
      this.lines = JSON.parse(sessionStorage.getItem(KEY) ?? "[]") as LogLine[];
    } catch {
      this.lines = [];
    }
  }

  event(e: SessionEvent): void {
    this.add(e.type, eventLine(e));
  }

  add(type: string, text: string): void {
    this.lines.unshift({ at: Date.now(), type, text });
    this.lines.length = Math.min(this.lines.length, KEEP);
    try {
      sessionStorage.setItem(KEY, JSON.stringify(this.lines));
    } catch {
      // The log is a convenience: a full sessionStorage only shortens its memory.
    }
    this.draw();
  }

  draw(): void {
    const list = document.getElementById("log");
    if (!list) return;
    list.replaceChildren(
      ...this.lines.map((l) =>
        h("li", { "data-type": l.type },
          h("time", {}, new Date(l.at).toLocaleTimeString("en-GB")), " ", h("b", {}, l.type), " ", l.text)),
    );
    byId("log-count").textContent = String(this.lines.length);
  }
}
