//! Cross-instance fan-out, PostgreSQL only: a thread of its own LISTENs on
//! the channel every commit notifies (`store/postgres.rs`: session id,
//! version and expiry, never a state), and hands what other servers
//! committed to the engine, which reads those sessions again and pushes
//! to this server's WebSocket and long-poll clients what they lack, in
//! order ([`Sessions::refresh`]). After every LISTEN that succeeds (the
//! first too: the server takes requests before it listens, and may fail to
//! listen for a while) everything this server holds or has listeners for is
//! compared with the database by version ([`Sessions::catch_up`]): a
//! notification missed meanwhile costs a delay, never a change.
//!
//! Why NOTIFY rather than Redis pub/sub or NATS: it needs no other package
//! nor process, and it is transactional: a notification is delivered after
//! (and only if) the commit that sent it, so a listener never hears of a
//! version it cannot read yet.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, NoTls};
use sessile::core::error::SessileError;

use crate::engine::{Engine, Metrics};
use crate::sessions::Sessions;
use crate::store::{is_moved, parse_notification, storage_error, CHANNEL};

/// The `application_name` of the listening connection (in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "sessile-fanout";
/// The first wait before connecting again.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// Longest wait between attempts to connect again.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// How long the listener waits for a notification before it looks at its
/// connection (and, every [`PROBE_EVERY`], asks the database).
const WAIT: Duration = Duration::from_millis(500);
/// A silent connection is probed this often: a dead peer is found even
/// when the operating system has not said so.
const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Most notifications handed to the engine in one job.
const MAX_NOTES: usize = 4096;

/// Starts the listener of the database at `url` for the server named
/// `origin` (its own notifications are skipped).
pub fn start(url: &str, origin: String, engine: Engine) -> Result<(), SessileError> {
    let mut config = postgres::Config::from_str(url)
        .map_err(|e| storage_error(format!("not a PostgreSQL URL: {e}")))?;
    config.application_name(APPLICATION_NAME);
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    std::thread::Builder::new()
        .name("sessile-fanout".into())
        .spawn(move || run(config, origin, engine))
        .map_err(|e| storage_error(format!("cannot start the fan-out thread: {e}")))?;
    Ok(())
}

/// Connects, listens, catches up, passes notifications on; again after a
/// loss. Ends when the engine stops.
fn run(config: postgres::Config, origin: String, engine: Engine) {
    let mut backoff = FIRST_BACKOFF;
    let mut connected_before = false;
    // Until a catch-up succeeds after a LISTEN (or a refresh failed), the
    // sessions of this server may be behind the database.
    let mut behind;
    loop {
        let mut client = match config
            .connect(NoTls)
            .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|_| c))
        {
            Ok(c) => c,
            Err(e) => {
                Metrics::inc(&engine.metrics.fanout_listen_failures);
                // Said once per outage (the first, at start, too), not at
                // every attempt.
                if backoff == FIRST_BACKOFF {
                    let again = if connected_before { " again" } else { "" };
                    let why = e
                        .as_db_error()
                        .map_or(e.to_string(), |d| d.message().into());
                    eprintln!("sessile-server: fan-out: cannot listen{again}: {why}; retrying");
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        if connected_before {
            Metrics::inc(&engine.metrics.fanout_reconnects);
        }
        // Listening now: what was committed before is read by version.
        behind = true;
        connected_before = true;
        match listen(&mut client, &origin, &engine, &mut behind) {
            Lost::Connection(why) => {
                eprintln!("sessile-server: fan-out: lost the listening connection ({why}); listening again, then catching up by version");
            }
            Lost::Engine => return,
        }
    }
}

/// Why listening stopped.
enum Lost {
    /// The connection went; connect again.
    Connection(String),
    /// The engine stopped: so does the listener.
    Engine,
}

/// Passes notifications to the engine until the connection is lost;
/// `behind` asks for a catch-up first (it stays set until one succeeds).
fn listen(client: &mut Client, origin: &str, engine: &Engine, behind: &mut bool) -> Lost {
    let mut last_heard = Instant::now();
    loop {
        if *behind {
            // Listening already: what commits from now on is notified, and
            // what was committed before is read by version.
            match engine.call_blocking(|s: &mut Sessions| s.catch_up()) {
                None => return Lost::Engine,
                Some(Ok(())) => *behind = false,
                Some(Err(e)) => {
                    eprintln!("sessile-server: fan-out: catch-up failed ({e}); trying again");
                    std::thread::sleep(WAIT);
                }
            }
        }
        let mut notes = Vec::new();
        {
            let mut n = client.notifications();
            match n.timeout_iter(WAIT).next() {
                Ok(Some(note)) => notes.push(note),
                Ok(None) => {}
                Err(e) => return Lost::Connection(e.to_string()),
            }
            let mut ready = n.iter();
            while notes.len() < MAX_NOTES {
                match ready.next() {
                    Ok(Some(note)) => notes.push(note),
                    Ok(None) => break,
                    Err(e) => return Lost::Connection(e.to_string()),
                }
            }
        }
        if client.is_closed() {
            return Lost::Connection("closed".into());
        }
        if notes.is_empty() {
            if last_heard.elapsed() >= PROBE_EVERY {
                if let Err(e) = client.simple_query("") {
                    return Lost::Connection(e.to_string());
                }
                last_heard = Instant::now();
            }
            continue;
        }
        last_heard = Instant::now();
        // The newest word per session (notifications come in commit order).
        let mut latest: HashMap<String, (u64, u64)> = HashMap::new();
        let mut order = Vec::new();
        for note in &notes {
            let Some((from, id, version, expires)) = parse_notification(note.payload()) else {
                continue;
            };
            if from == origin {
                continue;
            }
            Metrics::inc(&engine.metrics.fanout_notifications);
            if latest.insert(id.to_string(), (version, expires)).is_none() {
                order.push(id.to_string());
            }
        }
        if order.is_empty() {
            continue;
        }
        // Whether a session could not be read, apart from the batch's
        // commit (which may fail for other jobs' changes).
        let unread = Arc::new(AtomicBool::new(false));
        let failed = unread.clone();
        let refreshed = engine.call_blocking(move |s: &mut Sessions| {
            for id in &order {
                let (version, expires) = latest[id];
                if s.refresh(id, version, expires).is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
            }
            Ok(())
        });
        match refreshed {
            None => return Lost::Engine,
            // A session could not be read: the catch-up reads it again.
            _ if unread.load(Ordering::Relaxed) => *behind = true,
            Some(Ok(())) => {}
            // Another job's session was written by another server: the
            // refresh itself (which writes nothing) was done, and that
            // job runs again on the session read afresh.
            Some(Err(e)) if is_moved(&e) => {}
            // The commit failed otherwise (the database unreachable): what
            // was read may be incomplete; the catch-up reads it again.
            Some(Err(_)) => *behind = true,
        }
    }
}
