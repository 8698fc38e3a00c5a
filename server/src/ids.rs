//! Secrets and clocks at the server's edge: session ids and tokens from the
//! operating system's CSPRNG, token hashing and comparison, and wall time in
//! milliseconds (the core never reads a clock; the server passes `now` in).

use sha2::{Digest, Sha256};

/// 128 random bits as 32 lowercase hex digits: a session id.
pub fn session_id() -> String {
    random_hex::<16>()
}

/// 64 random bits as 16 lowercase hex digits: this server's name among
/// the servers sharing one database (health, metrics, notifications).
pub fn instance_id() -> String {
    random_hex::<8>()
}

/// 256 random bits as 64 lowercase hex digits: a session or admin token.
pub fn token() -> String {
    random_hex::<32>()
}

fn random_hex<const N: usize>() -> String {
    let mut bytes = [0u8; N];
    // The OS generator failing means the machine cannot make secrets at
    // all; serving sessions with guessable tokens would be worse than stopping.
    getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
    hex(&bytes)
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// SHA-256 of a token, as stored: a leaked database does not leak tokens.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `token` hashes to `hash`, comparing in constant time.
pub fn token_matches(token: &str, hash: &[u8]) -> bool {
    let h = token_hash(token);
    h.len() == hash.len() && h.iter().zip(hash).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// Whether two secrets are equal, in time independent of where they differ.
pub fn secret_eq(a: &str, b: &str) -> bool {
    token_matches(a, &token_hash(b))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The clock the server reads: wall time plus an offset that only moves
/// forward (0 unless a test moves it, to expire sessions without waiting).
/// Clones share the offset.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    ahead_ms: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Clock {
    /// Milliseconds since the Unix epoch, as this clock reads them.
    pub fn now_ms(&self) -> u64 {
        let ahead = self.ahead_ms.load(std::sync::atomic::Ordering::Relaxed);
        now_ms().saturating_add(ahead)
    }

    /// Moves this clock (and its clones) `ms` forward.
    pub fn advance(&self, ms: u64) {
        self.ahead_ms
            .fetch_add(ms, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Clocks are equal when they are as far ahead of wall time.
impl PartialEq for Clock {
    fn eq(&self, other: &Self) -> bool {
        let ahead = |c: &Clock| c.ahead_ms.load(std::sync::atomic::Ordering::Relaxed);
        ahead(self) == ahead(other)
    }
}

impl Eq for Clock {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_tokens_are_long_distinct_and_hashed() {
        let (a, b) = (session_id(), session_id());
        assert_eq!(a.len(), 32);
        assert!(sessile::core::protocol::is_id(&a));
        assert_ne!(a, b);
        let t = token();
        assert_eq!(t.len(), 64);
        assert!(token_matches(&t, &token_hash(&t)));
        assert!(!token_matches(&token(), &token_hash(&t)));
        assert!(secret_eq("abc", "abc") && !secret_eq("abc", "abd"));
    }
}
