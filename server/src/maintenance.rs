//! Cleanup and health on the engine thread: the sweeper (expire past TTL,
//! remove ended sessions past a retention, delete the audit of sessions
//! removed past the audit retention, with a dry run), the health
//! report (counts by status, stale and orphaned sessions, problems,
//! recommendations) and statistics for `/metrics`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Deserializer, Serialize};
use sessile::core::error::SessileError;
use sessile::core::lifecycle::{FlowRules, Staleness};

use crate::engine::Metrics;
use crate::sessions::{audit, Sessions};
use crate::store::{Change, Summary};

type Result<T, E = SessileError> = std::result::Result<T, E>;

/// Options of one sweep (`POST /v1/admin/sweep`).
///
/// A plain sweep (no list) expires every session past its TTL and removes
/// every ended session past the cut-off. The health page's cleanup instead
/// sends back what its dry run listed: `expire` and `remove`, pinned to the
/// dry run's `cutoffMs` and `auditCutoffMs`, so a session approved for
/// expiry is only ever expired and one approved for removal is removed only
/// if it still qualifies under the cut-off that was shown.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepOptions {
    /// Remove ended sessions whose last change is older than this many
    /// seconds (default: the server's retention). Not with `cutoffMs`.
    pub older_than_secs: Option<u64>,
    /// Remove ended sessions last changed at or before this instant (ms since
    /// the Unix epoch; a dry run's `cutoffMs`) instead of `olderThanSecs`
    /// before now. Refused in the future.
    pub cutoff_ms: Option<u64>,
    /// Only remove sessions in these (terminal) statuses (default: all terminal).
    pub statuses: Option<Vec<String>>,
    /// Delete the audit of sessions removed more than this many seconds
    /// ago (default: the server's audit retention). Not with `auditCutoffMs`.
    pub audit_older_than_secs: Option<u64>,
    /// Delete the audit of sessions removed at or before this instant (ms; a
    /// dry run's `auditCutoffMs`) instead. Refused in the future. The audit
    /// is pruned by every run, listed or not: it is not per session listed.
    pub audit_cutoff_ms: Option<u64>,
    /// Report what would happen; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Act on these sessions only, whichever way each qualifies (expire or
    /// remove). A listed session that no longer qualifies is left alone and
    /// named in `skipped`. Not with `expire` or `remove`; `null` is refused
    /// (leave the field out to sweep every session).
    #[serde(default, deserialize_with = "some_ids")]
    pub ids: Option<Vec<String>>,
    /// Expire these sessions if they are (still) past their TTL; never
    /// removes them. With `expire` or `remove`, sessions in neither list are
    /// left alone. `null` is refused.
    #[serde(default, deserialize_with = "some_ids")]
    pub expire: Option<Vec<String>>,
    /// Remove these sessions if they are (still) ended, in `statuses` and
    /// last changed at or before the cut-off; never expires them. `null` is
    /// refused.
    #[serde(default, deserialize_with = "some_ids")]
    pub remove: Option<Vec<String>>,
}

/// A list of session ids, present: `null` is refused rather than read as
/// "every session".
fn some_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    match Option::<Vec<String>>::deserialize(d)? {
        Some(ids) => Ok(Some(ids)),
        None => Err(serde::de::Error::custom(
            "a list of session ids (ids, expire, remove) may not be null: leave the field out to sweep every session",
        )),
    }
}

/// Most session ids one sweep may name (`ids`, `expire` and `remove` together).
pub const MAX_SWEEP_IDS: usize = 10_000;

/// Which sessions a sweep may expire and remove.
enum Scope<'a> {
    /// Every session.
    All,
    /// The listed ones, whichever way they qualify.
    Ids(BTreeSet<&'a str>),
    /// Expire only the first, remove only the second.
    Split(BTreeSet<&'a str>, BTreeSet<&'a str>),
}

impl Scope<'_> {
    fn of(opts: &SweepOptions) -> Scope<'_> {
        fn set(l: &Option<Vec<String>>) -> BTreeSet<&str> {
            l.iter().flatten().map(String::as_str).collect()
        }
        match (&opts.ids, &opts.expire, &opts.remove) {
            (Some(_), _, _) => Scope::Ids(set(&opts.ids)),
            (None, None, None) => Scope::All,
            _ => Scope::Split(set(&opts.expire), set(&opts.remove)),
        }
    }

    /// May this run expire `id`, and may it remove it?
    fn allows(&self, id: &str) -> (bool, bool) {
        match self {
            Scope::All => (true, true),
            Scope::Ids(l) => (l.contains(id), l.contains(id)),
            Scope::Split(e, r) => (e.contains(id), r.contains(id)),
        }
    }
}

impl SweepOptions {
    /// Refuses (`PROTOCOL_ERROR`) more than [`MAX_SWEEP_IDS`] ids, `ids`
    /// with `expire` or `remove`, a cut-off in the future (after `now`) and
    /// a cut-off given both ways.
    pub fn check(&self, now: u64) -> Result<()> {
        let refuse = |reason: String| Err(SessileError::ProtocolError { reason });
        let len = |l: &Option<Vec<String>>| l.as_ref().map_or(0, Vec::len);
        let n = len(&self.ids) + len(&self.expire) + len(&self.remove);
        if n > MAX_SWEEP_IDS {
            return refuse(format!(
                "ids: {n} session ids, at most {MAX_SWEEP_IDS} per sweep"
            ));
        }
        if self.ids.is_some() && (self.expire.is_some() || self.remove.is_some()) {
            return refuse("ids: give either ids, or expire and remove, not both".into());
        }
        for (name, cutoff, secs) in [
            ("cutoffMs", self.cutoff_ms, self.older_than_secs),
            (
                "auditCutoffMs",
                self.audit_cutoff_ms,
                self.audit_older_than_secs,
            ),
        ] {
            let Some(at) = cutoff else { continue };
            if secs.is_some() {
                let both = "give the cut-off as an instant or as an age in seconds, not both";
                return refuse(format!("{name}: {both}"));
            }
            if at > now {
                let hint = "send back a dry run's cut-off";
                return refuse(format!(
                    "{name}: {at} is in the future (now is {now}): {hint}"
                ));
            }
        }
        Ok(())
    }
}

/// What a sweep did (or, in a dry run, would do).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// Sessions moved to their expired status.
    pub expired: Vec<String>,
    /// Ended sessions removed.
    pub removed: Vec<String>,
    /// Sessions skipped because their stored flow does not read, in sentences.
    pub problems: Vec<String>,
    /// Audit entries deleted (of sessions removed longer ago than the audit
    /// retention; at most 1,000 sessions' worth per sweep).
    pub audit_removed: u64,
    /// The cut-off used: ended sessions last changed at or before this
    /// instant (ms since the Unix epoch) qualify for removal.
    pub cutoff_ms: u64,
    /// The audit cut-off used: the audit of sessions removed at or before
    /// this instant (ms) is deleted.
    pub audit_cutoff_ms: u64,
    /// Sessions named in `ids`, `expire` or `remove` that were not there or
    /// did not qualify (any more) for what they were named for: untouched.
    pub skipped: Vec<String>,
}

/// A session stuck in a waiting status.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckSession {
    /// Session id.
    pub id: String,
    /// Flow.
    pub flow: String,
    /// The waiting status.
    pub status: String,
    /// Seconds in that status.
    pub waiting_secs: u64,
    /// `warning` (15 min by default) or `stale` (20 min).
    pub level: &'static str,
}

/// The health report (`GET /v1/admin/health`): the counts are of every
/// session in the store (with PostgreSQL, of every server sharing it).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// The server that made the report (random at its start).
    pub instance: String,
    /// `ok`, `degraded` (warnings) or `unhealthy` (stale or orphaned sessions,
    /// or a stored flow that does not read).
    pub status: &'static str,
    /// When, ms.
    pub generated_at: u64,
    /// Every session.
    pub total: u64,
    /// Count per flow and status.
    pub by_status: BTreeMap<String, BTreeMap<String, u64>>,
    /// Sessions waiting past the warning or stale threshold.
    pub stuck: Vec<StuckSession>,
    /// Past their TTL in a status that may not expire: nobody will end them.
    pub orphans: Vec<String>,
    /// What is wrong, in sentences.
    pub problems: Vec<String>,
    /// What to do about it, in sentences.
    pub recommendations: Vec<String>,
}

impl Sessions {
    /// Every session's summary: the store's (of every server sharing it),
    /// memory overriding it for the sessions this batch changed.
    fn summaries(&mut self) -> Result<Vec<Summary>> {
        let mut all: BTreeMap<String, Summary> = self
            .store()
            .scan()?
            .into_iter()
            .map(|s| (s.id.clone(), s))
            .collect();
        for id in &self.dirty {
            if let Some(live) = self.cache.get(id) {
                all.insert(id.clone(), Summary::of(&live.rec));
            }
        }
        // Removed earlier in this batch: gone, though the store has them until the commit.
        all.retain(|id, _| !self.removed.contains(id));
        Ok(all.into_values().collect())
    }

    /// The periodic sweep: [`Sessions::sweep`] on the one server that holds
    /// the sweeper's lock (always, on SQLite); `None` on the others.
    pub fn periodic_sweep(&mut self, opts: &SweepOptions, now: u64) -> Result<Option<SweepReport>> {
        if !self.store().sweeper_lock()? {
            Metrics::inc(&self.metrics.sweeps_skipped);
            return Ok(None);
        }
        Metrics::inc(&self.metrics.sweeps_run);
        self.sweep(opts, now).map(Some)
    }

    /// Expires sessions past their TTL and removes ended ones past the
    /// cut-off (only those `opts` lists, if it lists any), then prunes the
    /// audit of long-removed sessions; in a dry run only reports them.
    /// `opts` must have passed [`SweepOptions::check`].
    pub fn sweep(&mut self, opts: &SweepOptions, now: u64) -> Result<SweepReport> {
        let cutoff = opts.cutoff_ms.unwrap_or_else(|| {
            let older_than = opts.older_than_secs.unwrap_or(self.limits.retention_secs);
            now.saturating_sub(older_than.saturating_mul(1000))
        });
        let audit_cutoff = opts.audit_cutoff_ms.unwrap_or_else(|| {
            let secs = opts
                .audit_older_than_secs
                .unwrap_or(self.limits.audit_retention_secs);
            now.saturating_sub(secs.saturating_mul(1000))
        });
        let mut report = SweepReport {
            dry_run: opts.dry_run,
            expired: Vec::new(),
            removed: Vec::new(),
            problems: Vec::new(),
            audit_removed: 0,
            cutoff_ms: cutoff,
            audit_cutoff_ms: audit_cutoff,
            skipped: Vec::new(),
        };
        let scope = Scope::of(opts);
        let mut acted = BTreeSet::new();
        for s in self.summaries()? {
            let (may_expire, may_remove) = scope.allows(&s.id);
            if !may_expire && !may_remove {
                continue;
            }
            // One session whose flow does not read is skipped, not every sweep failed.
            let flow = match self.flow_of(&s.flow, s.flow_table.as_deref()) {
                Ok(flow) => flow,
                Err(e) => {
                    report.problems.push(unreadable_flow(&s.id, &e));
                    continue;
                }
            };
            if flow.due_to_expire(&s.status, s.expires_at_ms, now) {
                if may_expire && (opts.dry_run || self.expire_if_due(&s.id, now, "sweeper")?) {
                    acted.insert(s.id.clone());
                    report.expired.push(s.id);
                }
                continue;
            }
            let wanted = match &opts.statuses {
                Some(list) => list.contains(&s.status),
                None => true,
            };
            if may_remove && flow.is_terminal(&s.status) && wanted && s.updated_at_ms <= cutoff {
                if !opts.dry_run {
                    if let Ok(live) = self.live(&s.id) {
                        let entry = audit(&live.rec, now, "sweeper", "remove", Vec::new(), None);
                        self.queue(Change::Audit(entry));
                    }
                    self.cache.remove(&s.id);
                    self.removed.insert(s.id.clone());
                    self.queue(Change::Remove(s.id.clone()));
                    self.metrics
                        .sessions_removed
                        .fetch_add(1, Ordering::Relaxed);
                }
                acted.insert(s.id.clone());
                report.removed.push(s.id);
            }
        }
        let named = [&opts.ids, &opts.expire, &opts.remove];
        let mut seen = BTreeSet::new();
        report.skipped = named
            .into_iter()
            .flatten()
            .flatten()
            .filter(|id| !acted.contains(*id) && seen.insert(*id))
            .cloned()
            .collect();
        report.audit_removed = self.store().prune_audit(audit_cutoff, opts.dry_run)?;
        Ok(report)
    }

    /// The health report at `now`.
    pub fn health(&mut self, now: u64) -> Result<HealthReport> {
        let all = self.summaries()?;
        let (warn, stale) = (self.limits.stale_warning_secs, self.limits.stale_secs);
        let mut by_status: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        let (mut stuck, mut orphans) = (Vec::new(), Vec::new());
        let (mut overdue, mut retained) = (0u64, 0u64);
        let retention_cutoff = now.saturating_sub(self.limits.retention_secs.saturating_mul(1000));
        let mut unreadable = Vec::new();
        for s in &all {
            *by_status
                .entry(s.flow.clone())
                .or_default()
                .entry(s.status.clone())
                .or_default() += 1;
            let flow = match self.flow_of(&s.flow, s.flow_table.as_deref()) {
                Ok(flow) => flow,
                Err(e) => {
                    unreadable.push(unreadable_flow(&s.id, &e));
                    continue;
                }
            };
            let level = match flow.staleness(&s.status, s.status_since_ms, now, warn, stale) {
                Staleness::Fresh => None,
                Staleness::Warning => Some("warning"),
                Staleness::Stale => Some("stale"),
            };
            if let Some(level) = level {
                stuck.push(StuckSession {
                    id: s.id.clone(),
                    flow: s.flow.clone(),
                    status: s.status.clone(),
                    waiting_secs: now.saturating_sub(s.status_since_ms) / 1000,
                    level,
                });
            }
            let terminal = flow.is_terminal(&s.status);
            if flow.due_to_expire(&s.status, s.expires_at_ms, now) {
                overdue += 1;
            } else if !terminal && now >= s.expires_at_ms {
                orphans.push(s.id.clone());
            }
            if terminal && s.updated_at_ms <= retention_cutoff {
                retained += 1;
            }
        }
        let n_stale = stuck.iter().filter(|s| s.level == "stale").count();
        let n_warn = stuck.len() - n_stale;
        let mut recommendations = Vec::new();
        if !unreadable.is_empty() {
            recommendations.push(
                "Sessions whose stored flow does not read are neither swept nor checked: repair or remove their rows.".into(),
            );
        }
        let n_unreadable = unreadable.len();
        let mut problems = unreadable;
        if n_stale > 0 {
            problems.push(format!(
                "{} waiting longer than {stale} s",
                sessions(n_stale as u64)
            ));
            recommendations.push("Check the payment provider and order webhooks: waiting sessions are not moving on; close them or complete them.".into());
        }
        if n_warn > 0 {
            problems.push(format!(
                "{} waiting longer than {warn} s",
                sessions(n_warn as u64)
            ));
        }
        if !orphans.is_empty() {
            let n = orphans.len() as u64;
            problems.push(format!(
                "{} past {} TTL in a status that cannot expire",
                are(n),
                their(n)
            ));
            recommendations.push(
                "Resolve orphaned orders (pay or close them); the sweeper will not end them."
                    .into(),
            );
        }
        if overdue > 0 {
            problems.push(format!(
                "{} past {} TTL but not yet expired",
                are(overdue),
                their(overdue)
            ));
            recommendations.push(
                "Run the sweeper (POST /v1/admin/sweep) or shorten --sweep-every-secs.".into(),
            );
        }
        if retained > 0 {
            let (them, verb) = if retained == 1 {
                ("it", "session is")
            } else {
                ("them", "sessions are")
            };
            recommendations.push(format!(
                "{retained} ended {verb} past the retention: run the sweeper to remove {them}."
            ));
        }
        let status = if n_stale > 0 || !orphans.is_empty() || n_unreadable > 0 {
            "unhealthy"
        } else if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        };
        Ok(HealthReport {
            instance: self.instance.clone(),
            status,
            generated_at: now,
            total: all.len() as u64,
            by_status,
            stuck,
            orphans,
            problems,
            recommendations,
        })
    }

    /// Statistics: the session counts and state sizes (a scan of every
    /// session) plus [`crate::observe::live_figures`], as JSON.
    pub fn stats(&mut self, now: u64) -> Result<serde_json::Value> {
        let all = self.summaries()?;
        let mut live = 0u64;
        for s in &all {
            let flow = self.flow_of(&s.flow, s.flow_table.as_deref());
            live +=
                u64::from(flow.is_ok_and(|f| f.validity(&s.status, s.expires_at_ms, now).is_ok()));
        }
        let bytes: u64 = all.iter().map(|s| s.state_bytes).sum();
        let max = all.iter().map(|s| s.state_bytes).max().unwrap_or(0);
        let clients_bytes: u64 = all.iter().map(|s| s.clients_bytes).sum();
        let clients_max = all.iter().map(|s| s.clients_bytes).max().unwrap_or(0);
        let mut figures = crate::observe::live_figures(&self.metrics);
        figures.insert("instance".into(), self.instance.clone().into());
        for (k, v) in [
            ("sessions", all.len() as u64),
            ("live", live),
            ("stateBytesTotal", bytes),
            ("stateBytesMax", max),
            ("clientsBytesTotal", clients_bytes),
            ("clientsBytesMax", clients_max),
        ] {
            figures.insert(k.into(), v.into());
        }
        Ok(serde_json::Value::Object(figures))
    }
}

/// `/metrics` in the Prometheus text format, from [`Sessions::stats`] and
/// the counts by status of [`Sessions::health`].
pub fn prometheus(stats: &serde_json::Value, health: &HealthReport) -> String {
    let mut out = String::new();
    let counters = [
        ("opsApplied", "sessile_ops_applied_total", "counter"),
        ("opsRebased", "sessile_ops_rebased_total", "counter"),
        ("opsDuplicate", "sessile_ops_duplicate_total", "counter"),
        ("opsRejected", "sessile_ops_rejected_total", "counter"),
        (
            "sessionsCreated",
            "sessile_sessions_created_total",
            "counter",
        ),
        (
            "sessionsExpired",
            "sessile_sessions_expired_total",
            "counter",
        ),
        (
            "sessionsRemoved",
            "sessile_sessions_removed_total",
            "counter",
        ),
        ("commits", "sessile_commits_total", "counter"),
        ("commitErrors", "sessile_commit_errors_total", "counter"),
        ("enginePanics", "sessile_engine_panics_total", "counter"),
        ("framesRefused", "sessile_frames_refused_total", "counter"),
        (
            "createsRateLimited",
            "sessile_creates_rate_limited_total",
            "counter",
        ),
        ("wsRefused", "sessile_websocket_refused_total", "counter"),
        (
            "wsHelloTimeouts",
            "sessile_websocket_hello_timeouts_total",
            "counter",
        ),
        (
            "wsRatePaused",
            "sessile_websocket_rate_paused_total",
            "counter",
        ),
        (
            "wsSendPaused",
            "sessile_websocket_send_paused_total",
            "counter",
        ),
        ("batchesMoved", "sessile_batches_moved_total", "counter"),
        (
            "fanoutNotifications",
            "sessile_fanout_notifications_total",
            "counter",
        ),
        (
            "fanoutReconnects",
            "sessile_fanout_reconnects_total",
            "counter",
        ),
        (
            "fanoutListenFailures",
            "sessile_fanout_listen_failures_total",
            "counter",
        ),
        (
            "fanoutRefreshed",
            "sessile_fanout_refreshed_total",
            "counter",
        ),
        ("sweeps", "sessile_sweeps_total", "counter"),
        ("sweepsSkipped", "sessile_sweeps_skipped_total", "counter"),
        ("wsOpen", "sessile_websocket_connections", "gauge"),
        ("longPollsOpen", "sessile_long_polls_open", "gauge"),
        ("pushChannels", "sessile_push_channels", "gauge"),
        (
            "wsUnauthenticated",
            "sessile_websocket_unauthenticated",
            "gauge",
        ),
        ("live", "sessile_sessions_live", "gauge"),
        ("stateBytesTotal", "sessile_state_bytes", "gauge"),
        ("clientsBytesTotal", "sessile_clients_bytes", "gauge"),
    ];
    for (field, name, kind) in counters {
        let v = stats[field].as_u64().unwrap_or(0);
        out.push_str(&format!("# TYPE {name} {kind}\n{name} {v}\n"));
    }
    out.push_str("# TYPE sessile_ops_rejected_by_code_total counter\n");
    if let Some(codes) = stats["rejectsByCode"].as_object() {
        for (code, n) in codes {
            let n = n.as_u64().unwrap_or(0);
            out.push_str(&format!(
                "sessile_ops_rejected_by_code_total{{code=\"{code}\"}} {n}\n"
            ));
        }
    }
    let ack = &stats["ackLatencyMs"];
    out.push_str("# TYPE sessile_ack_latency_seconds histogram\n");
    let counts: Vec<u64> = ack["counts"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_u64().unwrap_or(0)).collect())
        .unwrap_or_default();
    for (i, n) in counts.iter().enumerate() {
        let le = crate::observe::ACK_BUCKETS_MS
            .get(i)
            .map_or("+Inf".to_string(), |ms| format!("{}", *ms as f64 / 1000.0));
        out.push_str(&format!(
            "sessile_ack_latency_seconds_bucket{{le=\"{le}\"}} {n}\n"
        ));
    }
    out.push_str(&format!(
        "sessile_ack_latency_seconds_sum {}\nsessile_ack_latency_seconds_count {}\n",
        ack["sumMs"].as_f64().unwrap_or(0.0) / 1000.0,
        ack["count"].as_u64().unwrap_or(0)
    ));
    out.push_str(&format!(
        "# TYPE sessile_instance_info gauge\nsessile_instance_info{{instance=\"{}\"}} 1\n",
        health.instance
    ));
    out.push_str("# TYPE sessile_sessions gauge\n");
    for (flow, statuses) in &health.by_status {
        for (status, n) in statuses {
            out.push_str(&format!(
                "sessile_sessions{{flow=\"{flow}\",status=\"{status}\"}} {n}\n"
            ));
        }
    }
    let stale = health.stuck.iter().filter(|s| s.level == "stale").count();
    out.push_str(&format!(
        "# TYPE sessile_sessions_stale gauge\nsessile_sessions_stale {stale}\n# TYPE sessile_sessions_orphaned gauge\nsessile_sessions_orphaned {}\n",
        health.orphans.len()
    ));
    out
}

/// `1 session`, `2 sessions`: the report's counts with their plural.
fn sessions(n: u64) -> String {
    if n == 1 {
        "1 session".into()
    } else {
        format!("{n} sessions")
    }
}

/// `1 session is`, `2 sessions are`.
fn are(n: u64) -> String {
    format!("{} {}", sessions(n), if n == 1 { "is" } else { "are" })
}

/// `its` for one session, `their` for more.
fn their(n: u64) -> &'static str {
    if n == 1 {
        "its"
    } else {
        "their"
    }
}

/// The report's sentence for a session skipped because its flow does not read.
fn unreadable_flow(id: &str, e: &SessileError) -> String {
    format!("session {id}: its stored flow does not read ({e})")
}

#[cfg(test)]
mod tests {
    use super::{are, sessions};

    #[test]
    fn counts_in_the_report_take_their_plural() {
        assert_eq!(sessions(1), "1 session");
        assert_eq!(sessions(0), "0 sessions");
        assert_eq!(sessions(2), "2 sessions");
        assert_eq!(are(1), "1 session is");
        assert_eq!(are(3), "3 sessions are");
    }
}
