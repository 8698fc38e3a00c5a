//! Per-address limits and caps (sessions created per minute, WebSocket
//! connections, connections not yet welcomed, per address and in total) and
//! the token bucket that paces one connection (messages read, bytes sent).
//! An address is an IPv4 address or an IPv6 /64 (one subscriber's prefix).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use sessile::core::error::SessileError;

use crate::engine::Metrics;
use crate::Config;

/// Addresses tracked for the creation rate before full buckets are dropped.
const MAX_TRACKED: usize = 100_000;
/// What a client refused by a connection cap is told to wait, seconds.
const CONNECTION_RETRY_SECS: u64 = 5;

/// A token bucket: holds up to `capacity` tokens, refilled at `per_sec`.
/// `per_sec` 0 means no limit. Spending may go below zero (a debt), for
/// costs known only after the fact (bytes already sent).
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `capacity` refilled at `per_sec` (0: unlimited).
    pub fn new(capacity: f64, per_sec: f64, now: Instant) -> Self {
        TokenBucket {
            capacity: capacity.max(1.0),
            per_sec,
            tokens: capacity.max(1.0),
            at: now,
        }
    }

    fn unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.per_sec).min(self.capacity);
        self.at = now;
    }

    /// Takes `n` tokens if there are that many.
    pub fn try_take(&mut self, n: f64, now: Instant) -> bool {
        if self.unlimited() {
            return true;
        }
        self.refill(now);
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Takes `n` tokens, into debt if need be.
    pub fn spend(&mut self, n: f64, now: Instant) {
        if !self.unlimited() {
            self.refill(now);
            self.tokens -= n;
        }
    }

    /// How long until `n` tokens are there (zero: now).
    pub fn wait_for(&mut self, n: f64, now: Instant) -> Duration {
        if self.unlimited() {
            return Duration::ZERO;
        }
        self.refill(now);
        let missing = n.min(self.capacity) - self.tokens;
        if missing <= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(missing / self.per_sec)
        }
    }

    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }
}

/// The address a limit counts against: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64 prefix.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// The peer's IP address, from the connection (`axum::serve` with
/// `into_make_service_with_connect_info::<SocketAddr>()`). Served without
/// it, every request counts as one unspecified address (a warning says so
/// once): the limits then apply to all clients together.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(Peer(addr.ip()));
        }
        static WARN: Once = Once::new();
        WARN.call_once(|| {
            eprintln!(
                "sessile-server: warning: served without the peer's address (use into_make_service_with_connect_info::<SocketAddr>()); per-address limits count all clients as one"
            );
        });
        Ok(Peer(IpAddr::from([0, 0, 0, 0])))
    }
}

/// The configured caps, 0 meaning none.
#[derive(Debug, Clone, Copy)]
struct Caps {
    creates_per_minute: u32,
    ws_per_address: u32,
    unauthenticated_per_address: u32,
    unauthenticated: u32,
}

#[derive(Default)]
struct Connections {
    /// Open and not-yet-welcomed connections per address.
    per_address: HashMap<IpAddr, (u32, u32)>,
    unauthenticated: u32,
}

/// The per-address limits the whole server shares.
pub struct Limits {
    caps: Caps,
    metrics: Arc<Metrics>,
    creates: Mutex<HashMap<IpAddr, TokenBucket>>,
    connections: Mutex<Connections>,
}

fn over(cap: u32, count: u32) -> bool {
    cap > 0 && count >= cap
}

impl Limits {
    /// The limits of `config`, counting into `metrics`.
    pub fn new(config: &Config, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Limits {
            caps: Caps {
                creates_per_minute: config.creates_per_minute_per_ip,
                ws_per_address: config.ws_per_ip,
                unauthenticated_per_address: config.ws_unauthenticated_per_ip,
                unauthenticated: config.ws_unauthenticated,
            },
            metrics,
            creates: Mutex::new(HashMap::new()),
            connections: Mutex::new(Connections::default()),
        })
    }

    /// Counts one session creation from `ip`: `RATE_LIMITED` past the rate
    /// (a bucket of `creates_per_minute` refilled at that many per minute).
    pub fn create(&self, ip: IpAddr) -> Result<(), SessileError> {
        let per_minute = self.caps.creates_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.creates.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED {
            map.retain(|_, b| !b.is_full(now));
            if map.len() >= MAX_TRACKED {
                map.clear();
            }
        }
        let cap = f64::from(per_minute);
        let bucket = map
            .entry(address_key(ip))
            .or_insert_with(|| TokenBucket::new(cap, cap / 60.0, now));
        if bucket.try_take(1.0, now) {
            return Ok(());
        }
        let wait = bucket.wait_for(1.0, now);
        Metrics::inc(&self.metrics.creates_rate_limited);
        Err(SessileError::RateLimited {
            what: format!("{per_minute} sessions per minute from one address"),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        })
    }

    /// Admits a WebSocket connection from `ip`, not yet welcomed:
    /// `RATE_LIMITED` when it would pass the connections per address, or
    /// the unauthenticated ones per address or in total.
    pub fn open_ws(self: &Arc<Self>, ip: IpAddr) -> Result<WsPermit, SessileError> {
        let key = address_key(ip);
        let caps = self.caps;
        let mut c = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        let (open, unauth) = c.per_address.get(&key).copied().unwrap_or((0, 0));
        let refused = if over(caps.ws_per_address, open) {
            Some(format!(
                "{} WebSocket connections from one address",
                caps.ws_per_address
            ))
        } else if over(caps.unauthenticated_per_address, unauth) {
            Some(format!(
                "{} connections without `hello` from one address",
                caps.unauthenticated_per_address
            ))
        } else if over(caps.unauthenticated, c.unauthenticated) {
            Some(format!(
                "{} connections without `hello` in all",
                caps.unauthenticated
            ))
        } else {
            None
        };
        if let Some(what) = refused {
            Metrics::inc(&self.metrics.ws_refused);
            return Err(SessileError::RateLimited {
                what,
                retry_after_secs: CONNECTION_RETRY_SECS,
            });
        }
        c.per_address.insert(key, (open + 1, unauth + 1));
        c.unauthenticated += 1;
        Metrics::inc(&self.metrics.ws_unauthenticated);
        Ok(WsPermit {
            limits: self.clone(),
            key,
            unauthenticated: true,
        })
    }

    fn release(&self, key: IpAddr, unauthenticated: bool, close: bool) {
        let mut c = self.connections.lock().unwrap_or_else(|p| p.into_inner());
        if unauthenticated {
            c.unauthenticated = c.unauthenticated.saturating_sub(1);
            self.metrics
                .ws_unauthenticated
                .fetch_sub(1, Ordering::Relaxed);
        }
        if let Some((open, unauth)) = c.per_address.get_mut(&key) {
            if unauthenticated {
                *unauth = unauth.saturating_sub(1);
            }
            if close {
                *open = open.saturating_sub(1);
            }
            if *open == 0 {
                c.per_address.remove(&key);
            }
        }
    }
}

/// One admitted WebSocket connection: counted until dropped, and as
/// unauthenticated until [`WsPermit::welcomed`].
pub struct WsPermit {
    limits: Arc<Limits>,
    key: IpAddr,
    unauthenticated: bool,
}

impl WsPermit {
    /// The connection said `hello` and was welcomed.
    pub fn welcomed(&mut self) {
        if std::mem::take(&mut self.unauthenticated) {
            self.limits.release(self.key, true, false);
        }
    }
}

impl Drop for WsPermit {
    fn drop(&mut self) {
        self.limits.release(self.key, self.unauthenticated, true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_and_may_go_into_debt() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2.0, 4.0, t0);
        assert!(b.try_take(1.0, t0) && b.try_take(1.0, t0));
        assert!(!b.try_take(1.0, t0));
        assert_eq!(b.wait_for(1.0, t0), Duration::from_millis(250));
        let later = t0 + Duration::from_millis(250);
        assert!(b.try_take(1.0, later));
        b.spend(10.0, later);
        assert_eq!(b.wait_for(0.0, later), Duration::from_millis(2500));
        // Never more than its capacity, however long it waits.
        let much_later = later + Duration::from_secs(3600);
        assert!(b.try_take(2.0, much_later) && !b.try_take(1.0, much_later));
        let mut free = TokenBucket::new(1.0, 0.0, t0);
        free.spend(1e9, t0);
        assert!(free.try_take(1e9, t0));
        assert_eq!(free.wait_for(1.0, t0), Duration::ZERO);
    }

    #[test]
    fn ipv6_counts_by_its_64_prefix_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(address_key(mapped), "10.1.2.3".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn connection_caps_count_open_and_unwelcomed_connections() {
        let config = Config {
            ws_per_ip: 3,
            ws_unauthenticated_per_ip: 2,
            ws_unauthenticated: 100,
            ..Config::default()
        };
        let limits = Limits::new(&config, Arc::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let mut first = limits.open_ws(ip).unwrap();
        let second = limits.open_ws(ip).unwrap();
        let code = |r: Result<WsPermit, SessileError>| r.err().map(|e| e.code());
        assert_eq!(code(limits.open_ws(ip)), Some("RATE_LIMITED"));
        // Another address is not affected.
        drop(limits.open_ws("192.0.2.2".parse().unwrap()).unwrap());
        first.welcomed();
        let third = limits.open_ws(ip).unwrap();
        assert_eq!(code(limits.open_ws(ip)), Some("RATE_LIMITED"), "3 open");
        drop((second, third));
        assert!(limits.open_ws(ip).is_ok());
        assert_eq!(limits.metrics.ws_refused.load(Ordering::Relaxed), 2);
    }
}
