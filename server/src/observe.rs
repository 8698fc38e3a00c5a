//! What the health page (`/admin`) and `/metrics` read besides the plain
//! counters: the ack latency histogram of ops, ops rejected by code, the
//! open long-polls, the sweeper's last runs, and the live figures read
//! from the counters alone. Each is bounded: fixed
//! buckets, one entry per error code, the last [`SWEEP_RUNS`] runs.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};
use sessile::core::error::SessileError;

use crate::engine::Metrics;
use crate::maintenance::SweepReport;

/// Upper bounds (ms, inclusive) of the ack latency buckets; one more
/// bucket counts everything slower.
pub const ACK_BUCKETS_MS: [u64; 14] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 30_000,
];

/// How long the server took to answer ops (from handing an op to the engine
/// to its `ack` or `reject`, the commit included), as a histogram.
#[derive(Debug, Default)]
pub struct AckLatency {
    /// Per bucket of [`ACK_BUCKETS_MS`] plus the overflow bucket (not cumulative).
    buckets: [AtomicU64; ACK_BUCKETS_MS.len() + 1],
    /// Sum of every latency, µs.
    sum_us: AtomicU64,
}

impl AckLatency {
    /// Counts `n` ops answered after `took`.
    pub fn record(&self, took: Duration, n: u64) {
        // In µs: 1.9 ms is not within 1 ms.
        let us = took.as_micros();
        let i = ACK_BUCKETS_MS
            .iter()
            .position(|&b| us <= u128::from(b) * 1_000)
            .unwrap_or(ACK_BUCKETS_MS.len());
        self.buckets[i].fetch_add(n, Ordering::Relaxed);
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_us
            .fetch_add(us.saturating_mul(n), Ordering::Relaxed);
    }

    /// `{le: [ms…], counts: [cumulative…, total], sumMs, count}`; `counts`
    /// has one more entry than `le` (the last is every op, like `+Inf`).
    pub fn json(&self) -> Value {
        let mut running = 0u64;
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        json!({
            "le": ACK_BUCKETS_MS,
            "counts": counts,
            "sumMs": self.sum_us.load(Ordering::Relaxed) as f64 / 1000.0,
            "count": running,
        })
    }
}

/// Ops rejected, by error code (one entry per code: bounded by the codes).
#[derive(Debug, Default)]
pub struct RejectsByCode(Mutex<BTreeMap<&'static str, u64>>);

impl RejectsByCode {
    /// Counts one reject with `e`'s code.
    pub fn count(&self, e: &SessileError) {
        self.count_code(e.code());
    }

    /// Counts one reject with the stable code `code`.
    pub fn count_code(&self, code: &'static str) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(code).or_default() += 1;
    }

    /// `{CODE: n}`.
    pub fn json(&self) -> Value {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        json!(*map)
    }
}

/// Counts a long-poll as open while it lives.
pub struct LongPoll(Arc<Metrics>);

impl LongPoll {
    /// Counts one more open long-poll until the guard is dropped (answered
    /// or abandoned by its client).
    pub fn open(metrics: &Arc<Metrics>) -> LongPoll {
        metrics.long_polls_open.fetch_add(1, Ordering::Relaxed);
        LongPoll(metrics.clone())
    }
}

impl Drop for LongPoll {
    fn drop(&mut self) {
        self.0.long_polls_open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The figures kept in counters: ops, sessions created, expired and
/// removed, commits, connections, long-polls, ack latencies and rejects by
/// code. Read without the engine and without a scan of the sessions (the
/// health page's live charts poll them, `GET /v1/admin/live`); bounded: a
/// fixed set of counters, one entry per error code.
pub fn live_figures(m: &Metrics) -> serde_json::Map<String, Value> {
    let get = |c: &AtomicU64| Value::from(c.load(Ordering::Relaxed));
    let mut out = serde_json::Map::new();
    for (name, counter) in [
        ("opsApplied", &m.ops_applied),
        ("opsRebased", &m.ops_rebased),
        ("opsDuplicate", &m.ops_duplicate),
        ("opsRejected", &m.ops_rejected),
        ("sessionsCreated", &m.sessions_created),
        ("sessionsExpired", &m.sessions_expired),
        ("sessionsRemoved", &m.sessions_removed),
        ("commits", &m.commits),
        ("commitErrors", &m.commit_errors),
        ("enginePanics", &m.engine_panics),
        ("wsOpen", &m.ws_open),
        ("framesRefused", &m.frames_refused),
        ("createsRateLimited", &m.creates_rate_limited),
        ("wsRefused", &m.ws_refused),
        ("wsUnauthenticated", &m.ws_unauthenticated),
        ("wsHelloTimeouts", &m.ws_hello_timeouts),
        ("wsRatePaused", &m.ws_rate_paused),
        ("wsSendPaused", &m.ws_send_paused),
        ("longPollsOpen", &m.long_polls_open),
        ("batchesMoved", &m.batches_moved),
        ("fanoutNotifications", &m.fanout_notifications),
        ("fanoutReconnects", &m.fanout_reconnects),
        ("fanoutListenFailures", &m.fanout_listen_failures),
        ("fanoutRefreshed", &m.fanout_refreshed),
        ("sweeps", &m.sweeps_run),
        ("sweepsSkipped", &m.sweeps_skipped),
        ("pushChannels", &m.push_channels),
    ] {
        out.insert(name.into(), get(counter));
    }
    out.insert("ackLatencyMs".into(), m.ack_latency.json());
    out.insert("rejectsByCode".into(), m.rejects_by_code.json());
    out
}

/// Runs of the sweep kept for the health page.
pub const SWEEP_RUNS: usize = 20;

/// One sweep that could change something (dry runs are not kept).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepRun {
    /// When it started, ms since the Unix epoch.
    pub at_ms: u64,
    /// `timer` (every `--sweep-every-secs`) or `admin` (`POST /v1/admin/sweep`).
    pub trigger: &'static str,
    /// How long it took, the commit included, ms.
    pub took_ms: u64,
    /// Sessions it expired.
    pub expired: u64,
    /// Ended sessions it removed.
    pub removed: u64,
    /// Audit entries it deleted.
    pub audit_removed: u64,
    /// Sessions it skipped because their stored flow does not read.
    pub problems: u64,
    /// Its error code when it failed (nothing of it was stored), else null.
    pub error: Option<&'static str>,
}

/// The last [`SWEEP_RUNS`] sweeps, newest first.
#[derive(Debug, Default)]
pub struct SweepLog(Mutex<VecDeque<SweepRun>>);

impl SweepLog {
    /// Keeps the outcome of a sweep that started at `at_ms` and took `took`.
    pub fn record(
        &self,
        trigger: &'static str,
        at_ms: u64,
        took: Duration,
        outcome: &Result<SweepReport, SessileError>,
    ) {
        let count = |v: &Vec<String>| v.len() as u64;
        let run = match outcome {
            Ok(r) => SweepRun {
                at_ms,
                trigger,
                took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                expired: count(&r.expired),
                removed: count(&r.removed),
                audit_removed: r.audit_removed,
                problems: count(&r.problems),
                error: None,
            },
            Err(e) => SweepRun {
                at_ms,
                trigger,
                took_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
                expired: 0,
                removed: 0,
                audit_removed: 0,
                problems: 0,
                error: Some(e.code()),
            },
        };
        let mut log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.push_front(run);
        log.truncate(SWEEP_RUNS);
    }

    /// The runs kept, newest first.
    pub fn runs(&self) -> Vec<SweepRun> {
        let log = self.0.lock().unwrap_or_else(|p| p.into_inner());
        log.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_land_in_their_bucket_and_counts_are_cumulative() {
        let h = AckLatency::default();
        h.record(Duration::from_micros(400), 2);
        h.record(Duration::from_millis(7), 1);
        h.record(Duration::from_secs(60), 1);
        let j = h.json();
        let counts: Vec<u64> = serde_json::from_value(j["counts"].clone()).unwrap();
        assert_eq!(counts.len(), ACK_BUCKETS_MS.len() + 1);
        assert_eq!(&counts[..4], &[2, 2, 2, 3]);
        assert_eq!(counts[ACK_BUCKETS_MS.len() - 1], 3);
        assert_eq!(counts[ACK_BUCKETS_MS.len()], 4);
        assert_eq!(j["count"], 4);
    }

    #[test]
    fn a_latency_is_counted_in_the_first_bucket_that_holds_it_whole() {
        let h = AckLatency::default();
        h.record(Duration::from_micros(1_000), 1);
        h.record(Duration::from_micros(1_900), 2);
        let counts: Vec<u64> = serde_json::from_value(h.json()["counts"].clone()).unwrap();
        // le 1 ms: only the op at exactly 1 ms; le 2 ms: the 1.9 ms ones too.
        assert_eq!(&counts[..2], &[1, 3]);
    }

    #[test]
    fn the_sweep_log_keeps_the_newest_runs_only() {
        let log = SweepLog::default();
        for i in 0..(SWEEP_RUNS as u64 + 5) {
            let report = Err(SessileError::ServerBusy);
            log.record("timer", i, Duration::ZERO, &report);
        }
        let runs = log.runs();
        assert_eq!(runs.len(), SWEEP_RUNS);
        assert_eq!(runs[0].at_ms, SWEEP_RUNS as u64 + 4);
        assert_eq!(runs[0].error, Some("SERVER_BUSY"));
    }
}
