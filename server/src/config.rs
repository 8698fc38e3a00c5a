//! Command-line options of `sessile-server` and their defaults.

use std::path::PathBuf;

use sessile::core::envelope::DEFAULT_MAX_RAW_BYTES;
use sessile::core::lifecycle::{DEFAULT_STALE_SECS, DEFAULT_STALE_WARNING_SECS};
use sessile::core::protocol::DEFAULT_MAX_FRAME_BYTES;

use crate::ids::Clock;

/// Where the server listens, what it serves, where it stores sessions and
/// the limits it enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Address to bind; loopback by default.
    pub host: String,
    /// Port to bind; 0 picks a free port. `PORT` in the environment overrides the default.
    pub port: u16,
    /// Directory served at `/` (the demo page).
    pub www: PathBuf,
    /// Directory served at `/pkg/` (wasm-pack output).
    pub pkg: PathBuf,
    /// Directory served at `/js/` (the compiled TypeScript wrapper).
    pub js: PathBuf,
    /// SQLite file holding the sessions (created with its directory).
    pub db: PathBuf,
    /// A PostgreSQL database to keep the sessions in instead of `db`
    /// (`postgres://user:password@host:port/db`, from `SESSILE_DATABASE_URL`,
    /// never the command line: it may hold a password).
    pub database_url: Option<String>,
    /// Token the admin endpoints require (`SESSILE_ADMIN_TOKEN`); none: they
    /// answer `INVALID_TOKEN` to everyone.
    pub admin_token: Option<String>,
    /// Origins (`https://shop.example`) browsers may call the session API
    /// from; empty: loopback pages only (`http(s)://localhost`, 127.0.0.0/8,
    /// `[::1]`, any port), and the server refuses to listen on another
    /// address. Requests without `Origin` (not from a browser page) are let
    /// through.
    pub allow_origins: Vec<String>,
    /// Let pages of every origin call the session API (`--allow-any-origin`):
    /// for a server behind a proxy that checks origins itself.
    pub allow_any_origin: bool,
    /// Largest protocol frame or API request body, in bytes.
    pub max_frame_bytes: usize,
    /// Largest session state (its JSON), in bytes.
    pub max_state_bytes: usize,
    /// Requests that may wait for the engine thread; more at once get
    /// `SERVER_BUSY` (503) instead of an ever longer wait.
    pub queue_jobs: usize,
    /// A batch that changes at least this many sessions appends their ops
    /// to the SQLite journal instead of writing their rows (0: never).
    pub journal_from: usize,
    /// Most live sessions one client key (a table, a shop) may hold.
    pub max_sessions_per_key: u64,
    /// Heartbeat interval told to clients, ms.
    pub heartbeat_ms: u64,
    /// The sweeper runs this often, seconds (0: never on its own).
    pub sweep_every_secs: u64,
    /// The sweeper removes ended sessions older than this, seconds.
    pub retention_secs: u64,
    /// The sweeper deletes the audit log of sessions it removed this long
    /// ago, seconds.
    pub audit_retention_secs: u64,
    /// A waiting session this long gets a warning in the health report, seconds.
    pub stale_warning_secs: u64,
    /// A waiting session this long is stale in the health report, seconds.
    pub stale_secs: u64,
    /// Sessions one address may create per minute (a bucket of this many,
    /// refilled at this rate); 0: no limit.
    pub creates_per_minute_per_ip: u32,
    /// Open WebSocket connections per address; 0: no cap.
    pub ws_per_ip: u32,
    /// WebSocket connections per address not welcomed yet; 0: no cap.
    pub ws_unauthenticated_per_ip: u32,
    /// WebSocket connections not welcomed yet, in all; 0: no cap.
    pub ws_unauthenticated: u32,
    /// How long a new WebSocket connection may take to send `hello`, ms.
    pub hello_timeout_ms: u64,
    /// Messages a WebSocket connection may send per second (more wait
    /// unread: backpressure, nothing refused); 0: no limit.
    pub ws_messages_per_sec: u32,
    /// Messages a WebSocket connection may send at once before the rate applies.
    pub ws_messages_burst: u32,
    /// Bytes the server sends one WebSocket connection per second, beyond a
    /// burst of twice `max_frame_bytes`; past it the server reads nothing
    /// more from that connection until the budget refills; 0: no limit.
    pub ws_send_bytes_per_sec: u64,
    /// The clock the server reads (wall time; tests move it forward).
    pub clock: Clock,
}

/// Default port of the demo.
pub const DEFAULT_PORT: u16 = 8787;

impl Default for Config {
    fn default() -> Self {
        Config {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            www: "www/dist".into(),
            pkg: "pkg".into(),
            js: "js/dist".into(),
            db: "data/sessile.db".into(),
            database_url: None,
            admin_token: None,
            allow_origins: Vec::new(),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_state_bytes: DEFAULT_MAX_RAW_BYTES,
            queue_jobs: crate::engine::DEFAULT_QUEUE_JOBS,
            journal_from: crate::store::DEFAULT_JOURNAL_FROM,
            max_sessions_per_key: 20,
            heartbeat_ms: 5_000,
            sweep_every_secs: 60,
            retention_secs: 24 * 60 * 60,
            audit_retention_secs: 30 * 24 * 60 * 60,
            stale_warning_secs: DEFAULT_STALE_WARNING_SECS,
            stale_secs: DEFAULT_STALE_SECS,
            allow_any_origin: false,
            creates_per_minute_per_ip: 120,
            ws_per_ip: 256,
            ws_unauthenticated_per_ip: 32,
            ws_unauthenticated: 1024,
            hello_timeout_ms: 5_000,
            ws_messages_per_sec: 50,
            ws_messages_burst: 200,
            ws_send_bytes_per_sec: 8 * 1024 * 1024,
            clock: Clock::default(),
        }
    }
}

/// The usage text: `--help` prints it to stdout; a wrong argument, to stderr
/// after what was wrong.
pub const USAGE: &str = "usage: sessile-server [OPTIONS]
  --host ADDR                address to bind (default 127.0.0.1)
  --port N                   port to bind, 0 for any free port (default $PORT or 8787)
  --www DIR                  demo page served at / (default www/dist, built by scripts/build)
  --pkg DIR                  wasm-pack output served at /pkg/ (default pkg)
  --js DIR                   compiled TypeScript wrapper served at /js/ (default js/dist)
  --db PATH                  SQLite file of the sessions (default data/sessile.db; unused when
                             $SESSILE_DATABASE_URL names a postgres:// database)
  --allow-origin URL         origin allowed to call the session API (repeatable; default: loopback
                             pages only, and --host must then be a loopback address)
  --allow-any-origin         let pages of every origin call the session API (behind a proxy that checks)
  --max-frame-bytes N        largest frame or request body (default 5308416)
  --max-state-bytes N        largest session state (default 5242880)
  --queue-jobs N             requests waiting for the engine before SERVER_BUSY (default 16384)
  --journal-from N           a batch changing N sessions or more journals their ops in SQLite,
                             rows written every few versions (default 32; 0: never)
  --max-sessions-per-key N   live sessions per client key (default 20)
  --heartbeat-ms N           heartbeat interval told to clients (default 5000)
  --sweep-every-secs N       sweeper period, 0 for never (default 60)
  --retention-secs N         ended sessions are removed after this (default 86400)
  --audit-retention-secs N   audit of removed sessions is deleted after this (default 2592000)
  --stale-warning-secs N     waiting this long is a warning (default 900)
  --stale-secs N             waiting this long is stale (default 1200)
Limits per client address (IPv4, or IPv6 /64; 0 for none):
  --creates-per-minute-per-ip N   sessions created per minute (default 120)
  --ws-per-ip N                   open WebSocket connections (default 256)
  --ws-unauthenticated-per-ip N   WebSocket connections without hello yet (default 32)
  --ws-unauthenticated N          ... in all, from every address (default 1024)
  --hello-timeout-ms N            time a connection has to send hello (default 5000)
Pace of one WebSocket connection (0 for none; the server reads more only when within it):
  --ws-messages-per-sec N    messages read per second (default 50)
  --ws-messages-burst N      messages read at once before the rate applies (default 200)
  --ws-send-bytes-per-sec N  bytes sent per second beyond 2 x max-frame-bytes (default 8388608)
The admin endpoints need the token in $SESSILE_ADMIN_TOKEN (never on the command line).
Sessions go to PostgreSQL instead of SQLite when $SESSILE_DATABASE_URL is set
(postgres://user:password@host:port/db).";

impl Config {
    /// Parses arguments (without the program name); `env_port` is `$PORT`.
    /// `Err` carries the message to print, usage included.
    pub fn from_args<I: IntoIterator<Item = String>>(
        args: I,
        env_port: Option<String>,
    ) -> Result<Self, String> {
        fn num<T: std::str::FromStr>(flag: &str, s: &str) -> Result<T, String> {
            s.parse::<T>()
                .map_err(|_| format!("invalid value `{s}` for {flag}\n{USAGE}"))
        }
        let parse_port = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid port `{s}`: expected 0-65535\n{USAGE}"))
        };
        let mut cfg = Config::default();
        if let Some(p) = env_port.as_deref().filter(|p| !p.is_empty()) {
            cfg.port = parse_port(p)?;
        }
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            if flag == "--help" || flag == "-h" {
                return Err(USAGE.into());
            }
            if flag == "--allow-any-origin" {
                cfg.allow_any_origin = true;
                continue;
            }
            let value = args
                .next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
            let f = flag.as_str();
            match f {
                "--host" => cfg.host = value,
                "--port" => cfg.port = parse_port(&value)?,
                "--www" => cfg.www = value.into(),
                "--pkg" => cfg.pkg = value.into(),
                "--js" => cfg.js = value.into(),
                "--db" => cfg.db = value.into(),
                "--allow-origin" => cfg.allow_origins.push(value),
                "--max-frame-bytes" => cfg.max_frame_bytes = num(f, &value)?,
                "--max-state-bytes" => cfg.max_state_bytes = num(f, &value)?,
                "--queue-jobs" => cfg.queue_jobs = num(f, &value)?,
                "--journal-from" => cfg.journal_from = num(f, &value)?,
                "--max-sessions-per-key" => cfg.max_sessions_per_key = num(f, &value)?,
                "--heartbeat-ms" => cfg.heartbeat_ms = num(f, &value)?,
                "--sweep-every-secs" => cfg.sweep_every_secs = num(f, &value)?,
                "--retention-secs" => cfg.retention_secs = num(f, &value)?,
                "--audit-retention-secs" => cfg.audit_retention_secs = num(f, &value)?,
                "--stale-warning-secs" => cfg.stale_warning_secs = num(f, &value)?,
                "--stale-secs" => cfg.stale_secs = num(f, &value)?,
                "--creates-per-minute-per-ip" => cfg.creates_per_minute_per_ip = num(f, &value)?,
                "--ws-per-ip" => cfg.ws_per_ip = num(f, &value)?,
                "--ws-unauthenticated-per-ip" => cfg.ws_unauthenticated_per_ip = num(f, &value)?,
                "--ws-unauthenticated" => cfg.ws_unauthenticated = num(f, &value)?,
                "--hello-timeout-ms" => cfg.hello_timeout_ms = num(f, &value)?,
                "--ws-messages-per-sec" => cfg.ws_messages_per_sec = num(f, &value)?,
                "--ws-messages-burst" => cfg.ws_messages_burst = num(f, &value)?,
                "--ws-send-bytes-per-sec" => cfg.ws_send_bytes_per_sec = num(f, &value)?,
                _ => return Err(format!("unknown option `{flag}`\n{USAGE}")),
            }
        }
        Ok(cfg)
    }

    /// Where the sessions are kept, to be printed: the PostgreSQL URL with
    /// its password hidden, or the SQLite file.
    pub fn store_name(&self) -> String {
        match &self.database_url {
            Some(url) => crate::store::redact_url(url),
            None => self.db.display().to_string(),
        }
    }

    /// Why `url` (`$SESSILE_DATABASE_URL`) cannot name the sessions' store,
    /// if it cannot: only PostgreSQL URLs are understood.
    pub fn database_url_error(url: &str) -> Option<String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return None;
        }
        Some(format!(
            "SESSILE_DATABASE_URL must be a postgres:// or postgresql:// URL, not `{}`",
            crate::store::redact_url(url)
        ))
    }

    /// Why this configuration must not be served, if it must not: listening
    /// on a non-loopback address with no origin allow-list would let any
    /// page whose name resolves there (DNS rebinding) call the session API
    /// only loopback pages may call by default.
    pub fn origin_policy_error(&self) -> Option<String> {
        if !self.allow_origins.is_empty() || self.allow_any_origin || is_loopback_host(&self.host) {
            return None;
        }
        Some(format!(
            "refusing to listen on {} without an origin allow-list: pass --allow-origin URL (the shop's page origin, repeatable), or --allow-any-origin when a proxy in front checks origins; without either only loopback pages may call the API, so bind a loopback address (127.0.0.1, ::1, localhost)",
            self.host
        ))
    }
}

/// Whether `host` (as given to `--host`) is a loopback address or `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_and_port_from_env() {
        let c = Config::from_args(args(&[]), None).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", DEFAULT_PORT));
        assert_eq!(c.db, PathBuf::from("data/sessile.db"));
        assert_eq!(
            Config::from_args(args(&[]), Some("9000".into()))
                .unwrap()
                .port,
            9000
        );
        let c =
            Config::from_args(args(&["--port", "0", "--www", "x"]), Some("9000".into())).unwrap();
        assert_eq!((c.port, c.www), (0, PathBuf::from("x")));
        let c = Config::from_args(
            args(&[
                "--db",
                "/tmp/s.db",
                "--allow-origin",
                "https://a",
                "--allow-origin",
                "https://b",
                "--max-sessions-per-key",
                "4",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(c.allow_origins, vec!["https://a", "https://b"]);
        assert_eq!((c.max_sessions_per_key, c.db), (4, "/tmp/s.db".into()));
    }

    #[test]
    fn the_usage_text_states_the_default_limits() {
        let c = Config::default();
        for (flag, value) in [
            ("--max-frame-bytes N", c.max_frame_bytes),
            ("--max-state-bytes N", c.max_state_bytes),
        ] {
            let line = USAGE.lines().find(|l| l.contains(flag)).unwrap();
            assert!(line.ends_with(&format!("(default {value})")), "{line}");
        }
    }

    #[test]
    fn bad_arguments_say_why() {
        assert!(Config::from_args(args(&["--port", "70000"]), None)
            .unwrap_err()
            .contains("invalid port"));
        assert!(Config::from_args(args(&["--nope", "1"]), None)
            .unwrap_err()
            .contains("unknown option"));
        assert!(Config::from_args(args(&["--www"]), None)
            .unwrap_err()
            .contains("needs a value"));
        assert!(Config::from_args(args(&["--stale-secs", "-1"]), None)
            .unwrap_err()
            .contains("invalid value"));
        assert!(Config::from_args(args(&[]), Some("http".into())).is_err());
    }

    #[test]
    fn the_journal_threshold_takes_any_count_and_refuses_the_rest() {
        let from = |v: &str| Config::from_args(args(&["--journal-from", v]), None);
        assert_eq!(from("0").unwrap().journal_from, 0, "0: never journals");
        assert_eq!(from("1").unwrap().journal_from, 1);
        // The largest count: no batch is that large, none journals.
        assert_eq!(
            from(&usize::MAX.to_string()).unwrap().journal_from,
            usize::MAX
        );
        for bad in ["-1", "1e3", "", "99999999999999999999999"] {
            let err = from(bad).unwrap_err();
            assert!(
                err.starts_with(&format!("invalid value `{bad}` for --journal-from")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn limits_and_the_origin_policy() {
        let c = Config::from_args(
            args(&[
                "--allow-any-origin",
                "--ws-per-ip",
                "0",
                "--creates-per-minute-per-ip",
                "7",
                "--ws-send-bytes-per-sec",
                "1000",
            ]),
            None,
        )
        .unwrap();
        assert!(c.allow_any_origin);
        assert_eq!(
            (
                c.ws_per_ip,
                c.creates_per_minute_per_ip,
                c.ws_send_bytes_per_sec
            ),
            (0, 7, 1000)
        );
        let on = |host: &str, f: fn(&mut Config)| {
            let mut c = Config {
                host: host.into(),
                ..Config::default()
            };
            f(&mut c);
            c.origin_policy_error()
        };
        for host in ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"] {
            assert_eq!(on(host, |_| {}), None, "{host}");
        }
        let refused = on("0.0.0.0", |_| {}).unwrap();
        assert!(refused.contains("--allow-origin") && refused.contains("--allow-any-origin"));
        assert!(on("192.0.2.7", |_| {}).is_some());
        assert_eq!(on("0.0.0.0", |c| c.allow_any_origin = true), None);
        assert_eq!(
            on("::", |c| c.allow_origins =
                vec!["https://shop.example".into()]),
            None
        );
    }
}
