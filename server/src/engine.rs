//! The engine thread: the one place that changes sessions. Requests arrive as
//! jobs on a bounded channel; the thread runs a batch of them against
//! [`Sessions`], commits the batch's changes in one store transaction (group
//! commit), and only then answers the jobs and pushes patches to listeners.
//! A job that panics (a bug) costs its batch, not the server: see [`run`].

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sessile::core::error::SessileError;
use sessile::core::protocol::{Ended, LoggedPatch};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::sessions::Sessions;

/// Most jobs run (and committed) together.
const MAX_BATCH: usize = 1024;
/// Jobs that may wait for the engine before callers get `SERVER_BUSY`
/// (the default of `--queue-jobs`).
pub const DEFAULT_QUEUE_JOBS: usize = 16 * 1024;
/// Pushes a slow WebSocket listener may fall behind before it is dropped.
const PUSH_BUFFER: usize = 256;

type Deliver = Box<dyn FnOnce(&Result<(), SessileError>) + Send>;
type Job = Box<dyn FnOnce(&mut Sessions) -> Deliver + Send>;

/// A job running `f`, whose result goes to `answer` once the batch's commit
/// is known: `f`'s own on a commit, the commit's error otherwise.
fn answering<T, F, A>(f: F, answer: A) -> Job
where
    T: Send + 'static,
    F: FnOnce(&mut Sessions) -> Result<T, SessileError> + Send + 'static,
    A: FnOnce(Result<T, SessileError>) + Send + 'static,
{
    Box::new(move |sessions| {
        let out = f(sessions);
        Box::new(move |committed| {
            answer(match committed {
                Ok(()) => out,
                Err(e) => Err(e.clone()),
            })
        })
    })
}

/// Counters for `/metrics` and the stats endpoint.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Ops applied.
    pub ops_applied: AtomicU64,
    /// Ops applied on top of newer disjoint changes.
    pub ops_rebased: AtomicU64,
    /// Repeated ops acknowledged again.
    pub ops_duplicate: AtomicU64,
    /// Ops rejected.
    pub ops_rejected: AtomicU64,
    /// Sessions created.
    pub sessions_created: AtomicU64,
    /// Sessions expired by TTL.
    pub sessions_expired: AtomicU64,
    /// Sessions removed by the sweeper.
    pub sessions_removed: AtomicU64,
    /// Batches committed.
    pub commits: AtomicU64,
    /// Batches whose commit failed.
    pub commit_errors: AtomicU64,
    /// Jobs (or commits) that panicked on the engine thread; each cost its
    /// batch, answered `INTERNAL_ERROR`.
    pub engine_panics: AtomicU64,
    /// Open WebSocket connections.
    pub ws_open: AtomicU64,
    /// Frames answered with an error code.
    pub frames_refused: AtomicU64,
    /// Session creations refused by the per-address rate (`RATE_LIMITED`).
    pub creates_rate_limited: AtomicU64,
    /// WebSocket upgrades refused by a connection cap (`RATE_LIMITED`).
    pub ws_refused: AtomicU64,
    /// Open WebSocket connections that have not been welcomed yet.
    pub ws_unauthenticated: AtomicU64,
    /// Connections closed because no `hello` came in time.
    pub ws_hello_timeouts: AtomicU64,
    /// Times a connection's reading paused for its message rate.
    pub ws_rate_paused: AtomicU64,
    /// Times a connection's reading paused for its outbound byte budget.
    pub ws_send_paused: AtomicU64,
    /// Open long-polls (`GET /v1/sessions/{id}/changes` waiting).
    pub long_polls_open: AtomicU64,
    /// How long ops took to be answered.
    pub ack_latency: crate::observe::AckLatency,
    /// Ops rejected, by code.
    pub rejects_by_code: crate::observe::RejectsByCode,
    /// The sweeper's last runs.
    pub sweeps: crate::observe::SweepLog,
    /// Batches retried because another server had changed one of their
    /// sessions in the database meanwhile (PostgreSQL).
    pub batches_moved: AtomicU64,
    /// Notifications of other servers' commits received (PostgreSQL).
    pub fanout_notifications: AtomicU64,
    /// Times the notification listener connected again after losing its
    /// connection, each followed by a catch-up by version.
    pub fanout_reconnects: AtomicU64,
    /// Attempts to connect and LISTEN that failed (at start or after a
    /// loss; the listener tries again, 50 ms to 2 s apart).
    pub fanout_listen_failures: AtomicU64,
    /// Sessions read again because another server changed them.
    pub fanout_refreshed: AtomicU64,
    /// Periodic sweeps this server ran.
    pub sweeps_run: AtomicU64,
    /// Periodic sweeps left to another server (it holds the sweeper's lock).
    pub sweeps_skipped: AtomicU64,
    /// Sessions someone on this server listens to (a gauge: the hub's
    /// channels).
    pub push_channels: AtomicU64,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a commit pushes to the connections of a session.
#[derive(Debug, Clone, PartialEq)]
pub enum Push {
    /// A change: sent as `patch` to every client but the one whose op made it.
    Patch(LoggedPatch),
    /// A new expiry: sent as `extended` to every client but the one that
    /// asked (`by`: its client id, or `http` for the HTTP API).
    Extended {
        /// The new expiry, ms since the Unix epoch.
        expires_at: u64,
        /// Who asked.
        by: String,
    },
    /// The session ended or expired: sent as `ended` to every client after
    /// the last patch; their connections then close (4410).
    Ended(Ended),
}

/// One session's listeners on this server, the newest version pushed to
/// them, and the newest expiry they were told (0: none yet).
struct Channel {
    tx: broadcast::Sender<Arc<Push>>,
    pushed: u64,
    expires_at: u64,
}

/// Pushes to the WebSocket connections (and long-polls) of each session.
/// A session's channel lives while someone listens: the last
/// [`Subscription`] dropped removes it, so connections refused at `hello`
/// (any session id, known or not) leave nothing behind.
#[derive(Clone, Default)]
pub struct Hub {
    channels: Arc<Mutex<HashMap<String, Channel>>>,
    /// Where the count of channels is kept (`pushChannels`).
    metrics: Arc<Metrics>,
}

/// A listener of one session's pushes; dropping it leaves the channel
/// (and removes the channel when it was the last listener).
pub struct Subscription {
    /// `None` only while being dropped.
    rx: Option<broadcast::Receiver<Arc<Push>>>,
    hub: Hub,
    session: String,
}

impl Subscription {
    /// The next push (see [`broadcast::Receiver::recv`]).
    pub async fn recv(&mut self) -> Result<Arc<Push>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }

    /// A push already waiting (see [`broadcast::Receiver::try_recv`]).
    pub fn try_recv(&mut self) -> Result<Arc<Push>, broadcast::error::TryRecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.try_recv(),
            None => Err(broadcast::error::TryRecvError::Closed),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut map = self.hub.lock();
        // Under the lock: no one subscribes between this receiver's going
        // and the count.
        drop(self.rx.take());
        if map
            .get(&self.session)
            .is_some_and(|c| c.tx.receiver_count() == 0)
        {
            map.remove(&self.session);
            self.hub.count(&map);
        }
    }
}

impl Hub {
    /// A hub that keeps the count of its channels in `metrics`.
    pub fn with_metrics(metrics: Arc<Metrics>) -> Self {
        Hub {
            channels: Arc::default(),
            metrics,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Channel>> {
        self.channels.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, map: &HashMap<String, Channel>) {
        let n = map.len() as u64;
        self.metrics.push_channels.store(n, Ordering::Relaxed);
    }

    /// Listens to the pushes of `session`.
    pub fn subscribe(&self, session: &str) -> Subscription {
        let mut map = self.lock();
        let rx = map
            .entry(session.to_string())
            .or_insert_with(|| Channel {
                tx: broadcast::channel(PUSH_BUFFER).0,
                pushed: 0,
                expires_at: 0,
            })
            .tx
            .subscribe();
        self.count(&map);
        Subscription {
            rx: Some(rx),
            hub: self.clone(),
            session: session.to_string(),
        }
    }

    /// How many sessions have channels here (someone listens to each).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session has a channel here.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest version pushed to the listeners of `session` on this
    /// server (0: none yet); `None` when nobody here listens to it.
    pub fn pushed(&self, session: &str) -> Option<u64> {
        let map = self.lock();
        map.get(session)
            .filter(|c| c.tx.receiver_count() > 0)
            .map(|c| c.pushed)
    }

    /// The newest expiry the listeners of `session` here were told (by a
    /// welcome or an `extended`); `None` when nobody listens or none yet.
    pub fn told_expiry(&self, session: &str) -> Option<u64> {
        let map = self.lock();
        map.get(session)
            .filter(|c| c.tx.receiver_count() > 0 && c.expires_at > 0)
            .map(|c| c.expires_at)
    }

    /// Notes that a listener of `session` was told expiry `expires_at`
    /// (its welcome).
    pub fn tell_expiry(&self, session: &str, expires_at: u64) {
        if let Some(c) = self.lock().get_mut(session) {
            c.expires_at = c.expires_at.max(expires_at);
        }
    }

    /// The sessions someone on this server listens to.
    pub fn listened(&self) -> Vec<String> {
        let map = self.lock();
        map.iter()
            .filter(|(_, c)| c.tx.receiver_count() > 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn publish(&self, session: &str, push: Push) {
        let mut map = self.lock();
        if let Some(c) = map.get_mut(session) {
            match &push {
                Push::Patch(p) => c.pushed = c.pushed.max(p.version),
                Push::Extended { expires_at, .. } => c.expires_at = *expires_at,
                Push::Ended(_) => {}
            }
            if c.tx.send(Arc::new(push)).is_err() {
                map.remove(session);
                self.count(&map);
            }
        }
    }
}

/// A handle to the engine thread; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    jobs: mpsc::Sender<Job>,
    /// Where applied changes are pushed.
    pub hub: Hub,
    /// Shared counters.
    pub metrics: Arc<Metrics>,
}

impl Engine {
    /// Starts the engine thread over `sessions`; at most `queue_jobs` jobs
    /// (at least 1) wait for it, later callers get `SERVER_BUSY`.
    pub fn start(mut sessions: Sessions, queue_jobs: usize) -> Engine {
        let (jobs, rx) = mpsc::channel(queue_jobs.max(1));
        let hub = Hub::with_metrics(sessions.metrics.clone());
        sessions.hub = hub.clone();
        let metrics = sessions.metrics.clone();
        let thread_hub = hub.clone();
        std::thread::Builder::new()
            .name("sessile-engine".into())
            .spawn(move || run(sessions, rx, thread_hub))
            .expect("cannot start the engine thread");
        Engine { jobs, hub, metrics }
    }

    /// Runs `f` on the engine thread and answers once the changes it made
    /// are committed (or the commit's error if that failed). A batch that
    /// failed because another server had changed one of its sessions in the
    /// database (PostgreSQL) stored nothing, and memory forgot it: `f` runs
    /// again on the sessions read afresh, for up to [`MOVED_RETRY_FOR`].
    pub async fn call<T, F>(&self, f: F) -> Result<T, SessileError>
    where
        T: Send + 'static,
        F: Fn(&mut Sessions) -> Result<T, SessileError> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        let until = tokio::time::Instant::now() + MOVED_RETRY_FOR;
        let mut tries = 0u32;
        loop {
            let f = f.clone();
            match self.call_once(move |s| f(s)).await {
                Err(e) if crate::store::is_moved(&e) && tokio::time::Instant::now() < until => {
                    Metrics::inc(&self.metrics.batches_moved);
                    tries = (tries + 1).min(10);
                    // A few ms, drawn: two servers retrying in step would
                    // keep moving each other's sessions.
                    let ms = 1 + u64::from(getrandom::u32().unwrap_or(0) % (2 * tries));
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                out => return out,
            }
        }
    }

    /// Runs `f` on the engine thread from a thread outside the async
    /// runtime, waiting for room in the queue (never `SERVER_BUSY`) and
    /// then for the commit; `None` when the engine has stopped.
    pub fn call_blocking<T, F>(&self, f: F) -> Option<Result<T, SessileError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Sessions) -> Result<T, SessileError> + Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let job = answering(f, move |out| {
            let _ = tx.send(out);
        });
        self.jobs.blocking_send(job).ok()?;
        // A job that panicked is dropped unanswered.
        Some(rx.recv().unwrap_or_else(|_| Err(internal_error(PANICKED))))
    }

    /// [`Engine::call`] without the retry.
    async fn call_once<T, F>(&self, f: F) -> Result<T, SessileError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Sessions) -> Result<T, SessileError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job = answering(f, move |out| {
            let _ = tx.send(out);
        });
        self.jobs.try_send(job).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SessileError::ServerBusy,
            mpsc::error::TrySendError::Closed(_) => internal_error("the engine thread stopped"),
        })?;
        // The engine drops a job unanswered only when the job panicked.
        rx.await.map_err(|_| internal_error(PANICKED))?
    }
}

/// How long [`Engine::call`] keeps running a job again whose batch another
/// server's change to one of its sessions failed (a busy session on two
/// servers of a loaded machine may take many tries).
pub const MOVED_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// Why the jobs of a batch in which something panicked are refused.
const PANICKED: &str =
    "a request failed inside the server; nothing of its batch was stored, try again";

fn internal_error(reason: &str) -> SessileError {
    SessileError::InternalError {
        reason: reason.into(),
    }
}

/// Runs one job; `None` when it panicked.
fn run_job(job: Job, sessions: &mut Sessions) -> Option<Deliver> {
    catch_unwind(AssertUnwindSafe(|| job(sessions))).ok()
}

/// After a panic on the engine thread: memory forgets every change of the
/// batch (none was committed), the panic is counted, and the batch's jobs
/// get `INTERNAL_ERROR`.
fn after_panic(sessions: &mut Sessions, jobs: usize) -> Result<(), SessileError> {
    sessions.discard_uncommitted();
    Metrics::inc(&sessions.metrics.engine_panics);
    eprintln!(
        "sessile-server: a job panicked on the engine thread; its batch ({jobs} jobs) was dropped and answered INTERNAL_ERROR"
    );
    Err(internal_error(PANICKED))
}

/// The engine loop: a batch of jobs, one commit, then the answers and pushes.
/// A job or commit that panics (debug builds unwind; the release profile
/// aborts the process, for its supervisor to restart) ends the batch: the
/// batch's uncommitted changes are dropped from memory and every job of it
/// is answered `INTERNAL_ERROR` (retryable: nothing was stored). Jobs still
/// queued run in the next batch.
fn run(mut sessions: Sessions, mut rx: mpsc::Receiver<Job>, hub: Hub) {
    while let Some(job) = rx.blocking_recv() {
        let mut delivers = Vec::new();
        let mut next = Some(job);
        let mut panicked = false;
        while let Some(job) = next.take() {
            match run_job(job, &mut sessions) {
                Some(deliver) => delivers.push(deliver),
                None => {
                    panicked = true;
                    break;
                }
            }
            if delivers.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        // What other servers committed, read from the database during the
        // batch: pushed whatever becomes of the batch's own commit, and
        // before its changes (a session is read before it is changed).
        for (session, push) in sessions.take_facts() {
            hub.publish(&session, push);
        }
        let (committed, pushes) = if panicked {
            (after_panic(&mut sessions, delivers.len() + 1), Vec::new())
        } else {
            catch_unwind(AssertUnwindSafe(|| sessions.commit()))
                .unwrap_or_else(|_| (after_panic(&mut sessions, delivers.len()), Vec::new()))
        };
        if committed.is_ok() {
            for (session, patch) in pushes {
                hub.publish(&session, patch);
            }
        }
        for deliver in delivers {
            deliver(&committed);
        }
    }
}
