// The health page's script (served at /admin/admin.js, compiled into
// sessile-server). It only reads and shows: every figure comes from the
// token-protected admin endpoints (docs/PROTOCOL.md, Admin), every decision
// (what is stale, what a sweep removes) is the server's. The admin token is
// typed into the page, kept in this tab's sessionStorage (of the server's
// origin) and sent as `Authorization: Bearer`; never in a URL.
"use strict";

const TOKEN_KEY = "sessile-admin-token";
/** How often the health report and the sweeper's runs (a scan of every session) are read again, ms. */
const HEALTH_EVERY = 60_000;
/** How often the figures for the charts (counters only: GET /v1/admin/live) are read, ms. */
const LIVE_EVERY = 2_000;
/** Most session ids one sweep may name: the server's MAX_SWEEP_IDS (server/src/maintenance.rs). */
const MAX_SWEEP_IDS = 10_000;
/** Session ids shown per list of a dry run; the rest are counted. */
const SHOWN_IDS = 200;
/** Points kept per chart: two minutes. */
const POINTS = 60;
const COLORS = ["#2f6fdf", "#d0441c", "#1f9a6a", "#8a4fd6", "#c28a00", "#d0307a", "#4d8c99", "#6b6b6b"];

const $ = (id) => document.getElementById(id);
const timers = [];
let samples = [];
let plan = null;

/** A refused token: the page asks for it again. */
class TokenRefused extends Error {}

/** `n thing(s)`, with the plural when n is not 1 and thousands separated. */
function plural(n, one, many = `${one}s`) {
  return `${Number(n).toLocaleString("en-US")} ${n === 1 ? one : many}`;
}

/** A duration in seconds as `2 h 5 min`, `16 min 3 s` or `42 s`. */
function duration(secs) {
  const s = Math.floor(secs);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return plural(Math.floor(s / 86400), "day") + ` ${Math.floor((s % 86400) / 3600)} h`;
}

const clock = (ms) => new Date(ms).toLocaleTimeString("en-GB");
const ms = (v) => (v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v).toLocaleString("en-US")} ms`);

/** An element with text and attributes. */
function el(tag, text, attrs = {}) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, String(v));
  }
  return e;
}

/** Replaces a list's items; `none` when there are none. */
function fillList(ul, items, none, make = (x) => el("li", x)) {
  ul.replaceChildren(...(items.length ? items.map(make) : [el("li", none, { class: "empty" })]));
}

/** A request to an admin endpoint with the token; the JSON answer, or a clear error. */
async function api(path, body) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) throw new TokenRefused("no admin token");
  let res;
  try {
    res = await fetch(path, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (e) {
    throw new Error(`the server did not answer ${path} (${e.message}): is it running?`);
  }
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status === 401) throw new TokenRefused(json?.message ?? "invalid token");
  if (!res.ok) {
    throw new Error(`${path} answered ${res.status} ${json?.code ?? ""}: ${json?.message ?? text.slice(0, 200)}`);
  }
  return json;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

/** Runs `job`; a refused token sends the page back to the token form, any other failure is shown. */
async function guarded(job) {
  try {
    await job();
    if (!$("error").dataset.sticky) showError("");
  } catch (e) {
    if (e instanceof TokenRefused) {
      signOut();
      $("error").dataset.sticky = "";
      showError(
        `The admin token was refused (401 INVALID_TOKEN: ${e.message}). Enter the value of SESSILE_ADMIN_TOKEN ` +
          "the server was started with; a server started without one refuses every admin request.",
      );
    } else {
      showError(`Could not read the server: ${e.message}`);
    }
  }
}

/** Every `every` ms, `job` while the tab is visible: a hidden tab reads nothing. */
function every(ms, job) {
  timers.push(setInterval(() => document.hidden || guarded(job), ms));
}

/** Lists at most SHOWN_IDS ids, then how many more there are. */
function fillIds(ul, ids) {
  fillList(ul, ids.slice(0, SHOWN_IDS), "none", (id) => el("li", id, { "data-id": id }));
  if (ids.length > SHOWN_IDS) ul.append(el("li", `and ${plural(ids.length - SHOWN_IDS, "more", "more")}`, { class: "more" }));
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  while (timers.length) clearInterval(timers.pop());
  samples = [];
  plan = null;
  $("dashboard").hidden = true;
  $("refresh").hidden = true;
  $("forget").hidden = true;
  $("login").hidden = false;
  $("status").textContent = "–";
  $("status").className = "badge";
  $("updated").textContent = "not loaded";
  delete document.body.dataset.loaded;
  $("token").focus();
}

// ---- sessions, stale and orphaned --------------------------------------

function renderHealth(h) {
  const badge = $("status");
  badge.textContent = h.status;
  badge.className = `badge ${h.status}`;
  $("updated").textContent = `report of ${clock(h.generatedAt)}`;

  $("total").textContent = `${plural(h.total, "session")} stored`;
  $("total").dataset.count = h.total;
  const byStatus = new Map();
  const flowRows = [];
  for (const [flow, statuses] of Object.entries(h.byStatus)) {
    const n = Object.values(statuses).reduce((a, b) => a + b, 0);
    const head = el("tr", null, { "data-flow-total": flow, "data-count": n });
    head.append(el("td", flow, { class: "flow" }), el("td", "all", { class: "empty" }), el("td", plural(n, "session"), { class: "n" }));
    flowRows.push(head);
    for (const [status, count] of Object.entries(statuses)) {
      byStatus.set(status, (byStatus.get(status) ?? 0) + count);
      const tr = el("tr", null, { "data-flow": flow, "data-status": status, "data-count": count });
      tr.append(el("td", ""), el("td", status), el("td", plural(count, "session"), { class: "n" }));
      flowRows.push(tr);
    }
  }
  const statusRows = [...byStatus].sort(([a], [b]) => a.localeCompare(b)).map(([status, count]) => {
    const tr = el("tr", null, { "data-status": status, "data-count": count });
    tr.append(el("td", status), el("td", plural(count, "session"), { class: "n" }));
    return tr;
  });
  const none = (cols) => {
    const tr = el("tr");
    tr.append(el("td", "no sessions", { class: "empty", colspan: cols }));
    return [tr];
  };
  $("by-status").tBodies[0].replaceChildren(...(statusRows.length ? statusRows : none(2)));
  $("by-flow").tBodies[0].replaceChildren(...(flowRows.length ? flowRows : none(3)));

  const stale = h.stuck.filter((s) => s.level === "stale").length;
  const warning = h.stuck.length - stale;
  const summary = $("stuck-summary");
  summary.textContent =
    `${plural(stale, "stale session")}, ${plural(warning, "session")} waiting past the warning, ` +
    `${plural(h.orphans.length, "orphaned session")}`;
  Object.assign(summary.dataset, { stale, warning, orphans: h.orphans.length });
  const stuckRows = h.stuck.map((s) => {
    const tr = el("tr", null, { "data-id": s.id, "data-level": s.level, "data-waiting-secs": s.waitingSecs });
    tr.append(
      el("td", s.id, { class: "id" }),
      el("td", s.flow),
      el("td", s.status),
      el("td", duration(s.waitingSecs), { class: "n", title: plural(s.waitingSecs, "second") }),
      el("td", s.level, { class: `level-${s.level}` }),
    );
    return tr;
  });
  $("stuck-table").tBodies[0].replaceChildren(...(stuckRows.length ? stuckRows : none(5)));
  fillList($("orphans"), h.orphans, "none", (id) => el("li", id, { "data-id": id }));
  fillList($("problems"), h.problems, "none");
  fillList($("recommendations"), h.recommendations, "nothing to do");
  document.body.dataset.loaded = String(h.generatedAt);
}

// ---- the sweeper --------------------------------------------------------

function renderSweeps(s) {
  $("sweep-every").textContent =
    s.everySecs > 0
      ? `The server sweeps every ${plural(s.everySecs, "second")} (--sweep-every-secs).`
      : "The server's timer never sweeps (--sweep-every-secs 0): only cleanups by hand run.";
  const rows = s.runs.map((r) => {
    const tr = el("tr", null, { "data-trigger": r.trigger, "data-removed": r.removed, "data-expired": r.expired });
    tr.append(
      el("td", clock(r.atMs)),
      el("td", r.trigger),
      el("td", `${r.tookMs.toLocaleString("en-US")} ms`, { class: "n" }),
      el("td", plural(r.expired, "session"), { class: "n" }),
      el("td", plural(r.removed, "session"), { class: "n" }),
      el("td", plural(r.auditRemoved, "entry", "entries"), { class: "n" }),
      el("td", plural(r.problems, "session"), { class: "n", title: "Skipped: their stored flow does not read" }),
      el("td", r.error ?? "–", r.error ? { class: "level-stale" } : {}),
    );
    return tr;
  });
  if (!rows.length) {
    const tr = el("tr");
    tr.append(el("td", "No sweep has run since the server started.", { class: "empty", colspan: 8 }));
    rows.push(tr);
  }
  $("sweeps").tBodies[0].replaceChildren(...rows);
}

async function refreshReports() {
  const [health, sweeps] = await Promise.all([api("/v1/admin/health"), api("/v1/admin/sweeps")]);
  renderHealth(health);
  renderSweeps(sweeps);
}

// ---- cleanup: a dry run, then the real run on what it listed -------------

function olderThan() {
  const v = $("older-than").value.trim();
  return v === "" ? undefined : Number(v);
}

async function dryRun() {
  const olderThanSecs = olderThan();
  const report = await api("/v1/admin/sweep", { dryRun: true, olderThanSecs });
  plan = {
    expire: report.expired,
    remove: report.removed,
    cutoffMs: report.cutoffMs,
    auditCutoffMs: report.auditCutoffMs,
    auditRemoved: report.auditRemoved,
  };
  $("plan").hidden = false;
  $("confirm").hidden = true;
  $("cleanup-result").textContent = "";
  const nothing = !report.expired.length && !report.removed.length;
  $("plan-summary").textContent = nothing
    ? "Nothing to clean up now."
    : `A cleanup now would expire ${plural(report.expired.length, "session")} and remove ${plural(report.removed.length, "ended session")} ` +
      `(last changed at or before ${clock(report.cutoffMs)}).`;
  fillIds($("plan-expired"), report.expired);
  fillIds($("plan-removed"), report.removed);
  $("plan-audit").textContent =
    `Audit log: ${plural(report.auditRemoved, "entry", "entries")} of sessions removed at or before ` +
    `${new Date(report.auditCutoffMs).toLocaleString("en-GB")} would be deleted.`;
  if (report.problems.length) $("plan-audit").textContent += ` ${report.problems.join(" ")}`;
  $("run").hidden = nothing && report.auditRemoved === 0;
}

/** The plan cut into sweeps of at most MAX_SWEEP_IDS ids: [{expire, remove}]; one (empty) for the audit alone. */
function batches(p) {
  const named = [...p.expire.map((id) => ["expire", id]), ...p.remove.map((id) => ["remove", id])];
  const out = [];
  for (let i = 0; i < named.length || out.length === 0; i += MAX_SWEEP_IDS) {
    const batch = { expire: [], remove: [] };
    for (const [list, id] of named.slice(i, i + MAX_SWEEP_IDS)) batch[list].push(id);
    out.push(batch);
  }
  return out;
}

function askToRun() {
  if (!plan) return;
  const n = batches(plan).length;
  $("confirm-text").textContent =
    `Expire ${plural(plan.expire.length, "session")} and remove ${plural(plan.remove.length, "session")}, exactly those listed above? ` +
    "A listed session is only expired if it is still past its TTL, only removed if it is still ended and last changed " +
    `at or before ${clock(plan.cutoffMs)}; sessions not listed are left alone. ` +
    `Besides, the audit log of sessions removed at or before ${new Date(plan.auditCutoffMs).toLocaleString("en-GB")} is deleted ` +
    `(${plural(plan.auditRemoved, "entry", "entries")} at the dry run). A removed session's row and state are gone for good.` +
    (n > 1 ? ` The run goes in ${plural(n, "batch", "batches")} of at most ${plural(MAX_SWEEP_IDS, "session")}.` : "");
  $("confirm").hidden = false;
}

async function runCleanup() {
  if (!plan) return;
  const p = plan;
  const list = batches(p);
  const done = { expired: [], removed: [], skipped: [], auditRemoved: 0 };
  const result = $("cleanup-result");
  const say = () => {
    let text =
      `expired ${plural(done.expired.length, "session")}, removed ${plural(done.removed.length, "session")}, ` +
      `deleted ${plural(done.auditRemoved, "audit entry", "audit entries")}.`;
    if (done.skipped.length) {
      const few = done.skipped.slice(0, SHOWN_IDS).join(", ");
      const more = done.skipped.length > SHOWN_IDS ? ` and ${plural(done.skipped.length - SHOWN_IDS, "more", "more")}` : "";
      text +=
        ` ${plural(done.skipped.length, "listed session")} ${done.skipped.length === 1 ? "was" : "were"} no longer there ` +
        `or no longer qualified and ${done.skipped.length === 1 ? "was" : "were"} left alone: ${few}${more}.`;
    }
    return text;
  };
  $("confirm-yes").disabled = true;
  $("run").disabled = true;
  $("dry-run").disabled = true;
  try {
    for (const [i, batch] of list.entries()) {
      result.textContent = `Cleaning up: batch ${i + 1} of ${list.length}…`;
      result.dataset.batch = `${i + 1}/${list.length}`;
      let report;
      try {
        report = await api("/v1/admin/sweep", { ...batch, cutoffMs: p.cutoffMs, auditCutoffMs: p.auditCutoffMs });
      } catch (e) {
        if (i > 0) e.message += ` (batch ${i + 1} of ${list.length}; the batches before it ran: ${say()})`;
        throw e;
      }
      done.expired.push(...report.expired);
      done.removed.push(...report.removed);
      done.skipped.push(...report.skipped);
      done.auditRemoved += report.auditRemoved;
    }
    plan = null;
    $("plan").hidden = true;
    // "Done" once the panels above show the state after the run.
    try {
      await refreshReports();
    } finally {
      result.textContent = `Done${list.length > 1 ? ` in ${plural(list.length, "batch", "batches")}` : ""}: ${say()}`;
    }
  } finally {
    $("confirm-yes").disabled = false;
    $("run").disabled = false;
    $("dry-run").disabled = false;
  }
}

// ---- live charts ----------------------------------------------------------

/** The q-quantile (0..1) of the ops answered between two cumulative histograms, ms; null without ops. */
function quantile(q, le, before, after) {
  const d = after.map((c, i) => c - (before?.[i] ?? 0));
  const total = d[d.length - 1];
  if (!(total > 0)) return null;
  const target = q * total;
  for (let i = 0; i < d.length; i++) {
    if (d[i] >= target) {
      const lo = i === 0 ? 0 : le[i - 1];
      const hi = le[i] ?? le[le.length - 1];
      const below = i === 0 ? 0 : d[i - 1];
      const inBucket = d[i] - below;
      return inBucket > 0 ? lo + ((hi - lo) * (target - below)) / inBucket : hi;
    }
  }
  return le[le.length - 1];
}

/** Draws `series` ([{name, color, values}], one value per sample, null for none) on a canvas. */
function draw(canvas, series, format) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || canvas.width;
  const h = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pad = { l: 52, r: 8, t: 8, b: 18 };
  const max = Math.max(1e-9, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const top = niceCeil(max);
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#5b6573";
  g.strokeStyle = "#e3e7ed";
  g.lineWidth = 1;
  for (const f of [0, 0.5, 1]) {
    const y = pad.t + (h - pad.t - pad.b) * (1 - f);
    g.beginPath();
    g.moveTo(pad.l, y);
    g.lineTo(w - pad.r, y);
    g.stroke();
    g.textAlign = "right";
    g.fillText(format(top * f), pad.l - 4, y + 4);
  }
  g.textAlign = "left";
  g.fillText(`last ${duration(((POINTS - 1) * LIVE_EVERY) / 1000)}`, pad.l, h - 4);
  g.textAlign = "right";
  g.fillText("now", w - pad.r, h - 4);
  const x = (i) => pad.l + ((w - pad.l - pad.r) * (i + POINTS - samples.length)) / (POINTS - 1);
  const y = (v) => pad.t + (h - pad.t - pad.b) * (1 - v / top);
  g.lineWidth = 2;
  for (const s of series) {
    g.strokeStyle = s.color;
    g.beginPath();
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null) {
        pen = false;
        return;
      }
      if (pen) g.lineTo(x(i), y(v));
      else g.moveTo(x(i), y(v));
      pen = true;
    });
    g.stroke();
  }
}

/** The smallest 1, 2 or 5 × 10^k at or above `v`. */
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  return [1, 2, 5, 10].map((m) => m * p).find((c) => c >= v - 1e-12);
}

function legend(ul, items) {
  ul.replaceChildren(
    ...items.map(({ name, color, text, title }) => {
      const li = el("li", null, { title });
      const sw = el("span", null, { class: "swatch" });
      sw.style.background = color;
      li.append(sw, `${name}: ${text}`);
      return li;
    }),
  );
}

/** Per-second rate of `pick(stats)` between consecutive samples (null for the first). */
function rates(pick) {
  return samples.map((s, i) => {
    const secs = i === 0 ? 0 : (s.t - samples[i - 1].t) / 1000;
    return secs > 0 ? Math.max(0, pick(s.stats) - pick(samples[i - 1].stats)) / secs : null;
  });
}

function renderLive() {
  const last = samples[samples.length - 1].stats;
  const fmtRate = (v) => (v >= 10 ? Math.round(v).toLocaleString("en-US") : v.toFixed(1));

  const ops = rates((s) => s.opsApplied);
  const opsNow = ops[ops.length - 1];
  $("v-ops").textContent = opsNow === null ? "–" : `${fmtRate(opsNow)} ops/s`;
  draw($("c-ops"), [{ color: COLORS[0], values: ops }], fmtRate);
  legend($("l-ops"), [
    { name: "applied", color: COLORS[0], text: `${plural(last.opsApplied, "op")} since start`, title: "Ops applied since the server started (opsApplied)" },
  ]);

  const le = last.ackLatencyMs.le;
  const p50 = samples.map((s, i) => (i === 0 ? null : quantile(0.5, le, samples[i - 1].stats.ackLatencyMs.counts, s.stats.ackLatencyMs.counts)));
  const p99 = samples.map((s, i) => (i === 0 ? null : quantile(0.99, le, samples[i - 1].stats.ackLatencyMs.counts, s.stats.ackLatencyMs.counts)));
  const [a, b] = [p50[p50.length - 1], p99[p99.length - 1]];
  $("v-ack").textContent = a === null ? "no ops answered" : `p50 ${ms(a)} · p99 ${ms(b)}`;
  draw($("c-ack"), [{ color: COLORS[0], values: p50 }, { color: COLORS[1], values: p99 }], (v) => ms(v));
  legend($("l-ack"), [
    { name: "p50", color: COLORS[0], text: a === null ? "–" : ms(a), title: "Half the ops answered between two reads took at most this" },
    { name: "p99", color: COLORS[1], text: b === null ? "–" : ms(b), title: "99 in 100 ops answered between two reads took at most this" },
    { name: "answered", color: "#c5ccd6", text: `${plural(last.ackLatencyMs.count, "op")} since start`, title: "Ops acknowledged or rejected since the server started, over WebSocket and HTTP" },
  ]);

  const ws = samples.map((s) => s.stats.wsOpen);
  const polls = samples.map((s) => s.stats.longPollsOpen);
  $("v-clients").textContent = `${plural(last.wsOpen + last.longPollsOpen, "client")}`;
  $("v-clients").dataset.ws = last.wsOpen;
  $("v-clients").dataset.longPolls = last.longPollsOpen;
  draw($("c-clients"), [{ color: COLORS[0], values: ws }, { color: COLORS[2], values: polls }], (v) => (Number.isInteger(v) ? String(v) : v.toFixed(1)));
  legend($("l-clients"), [
    { name: "WebSocket", color: COLORS[0], text: plural(last.wsOpen, "connection"), title: "Open WebSocket connections (wsOpen)" },
    { name: "long-poll", color: COLORS[2], text: plural(last.longPollsOpen, "request"), title: "HTTP long-polls waiting for a change (longPollsOpen)" },
  ]);

  const codes = [...new Set(samples.flatMap((s) => Object.keys(s.stats.rejectsByCode)))].sort();
  const series = codes.map((code, i) => ({ code, color: COLORS[i % COLORS.length], values: rates((s) => s.rejectsByCode[code] ?? 0) }));
  const totalRejects = Object.values(last.rejectsByCode).reduce((x, y) => x + y, 0);
  $("v-rejects").textContent = `${plural(totalRejects, "reject")} since start`;
  $("v-rejects").dataset.total = totalRejects;
  draw($("c-rejects"), series, fmtRate);
  if (codes.length) {
    legend(
      $("l-rejects"),
      series.map((s) => ({
        name: s.code,
        color: s.color,
        text: plural(last.rejectsByCode[s.code] ?? 0, "reject"),
        title: `Ops rejected with ${s.code} since the server started; the line is per second`,
      })),
    );
  } else {
    fillList($("l-rejects"), [], "no op rejected since the server started");
  }
}

async function refreshLive() {
  const stats = await api("/v1/admin/live");
  // Behind a proxy, reads may reach different instances: rates between two
  // instances' counters mean nothing, so the charts start again.
  const last = samples[samples.length - 1];
  const moved = last !== undefined && last.stats.instance !== stats.instance;
  if (moved) samples = [];
  $("live-instance").textContent = moved
    ? `instance ${stats.instance} (the last read reached another: the charts started again; behind a proxy, open each instance's own address)`
    : `instance ${stats.instance}`;
  samples.push({ t: stats.atMs, stats });
  if (samples.length > POINTS) samples.shift();
  renderLive();
}

// ---- start ----------------------------------------------------------------

async function open() {
  $("login").hidden = true;
  $("dashboard").hidden = false;
  $("refresh").hidden = false;
  $("forget").hidden = false;
  // A new token: the error about the last one no longer holds.
  delete $("error").dataset.sticky;
  showError("");
  await guarded(async () => {
    await refreshReports();
    await refreshLive();
  });
  if ($("dashboard").hidden) return;
  every(HEALTH_EVERY, refreshReports);
  every(LIVE_EVERY, refreshLive);
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    if (!token) return;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("token").value = "";
    open();
  });
  $("forget").addEventListener("click", () => {
    signOut();
    showError("");
  });
  $("refresh").addEventListener("click", () => guarded(async () => {
    await refreshReports();
    await refreshLive();
  }));
  $("cleanup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    guarded(dryRun);
  });
  $("run").addEventListener("click", askToRun);
  $("confirm-no").addEventListener("click", () => ($("confirm").hidden = true));
  $("confirm-yes").addEventListener("click", () => guarded(runCleanup));
  // Back in a hidden tab: the figures are read at once, not at the next tick.
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timers.length) guarded(refreshLive);
  });
  if (sessionStorage.getItem(TOKEN_KEY)) open();
  else signOut();
});
