//! The clients a session remembers, for exactly-once ops: per client id its
//! last processed op sequence, when that op came and the session's version
//! then. The book is bounded: a client silent for longer than the session's
//! TTL is forgotten when a new client arrives, and past
//! [`MAX_CLIENTS_PER_SESSION`] the least recently active one is. What was
//! forgotten leaves one number, the highest version a forgotten client had
//! seen: an op from a client the book does not know, based on that version
//! or an older one, may be one applied before and is refused. A client the
//! book takes in while that number is set keeps it as its floor, so none of
//! its ops based at or below it is applied, however many it re-sends.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sessile::core::error::SessileError;
use sessile::core::lifecycle::MIN_TTL_SECS;

/// Most clients one session remembers.
pub const MAX_CLIENTS_PER_SESSION: usize = 1024;

/// What the book remembers of one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientMark {
    /// The last op sequence processed.
    pub seq: u64,
    /// When it was processed, ms.
    pub at_ms: u64,
    /// The session's version when it was processed: every op of this client
    /// processed so far was based on this version or an older one.
    pub version: u64,
    /// `forgotten_up_to` when the book took this client in (0: nobody had
    /// been forgotten): its ops based on this version or an older one may
    /// have been applied before it was forgotten, and are refused.
    pub floor: u64,
}

/// Where an op stands against the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Processed before: acknowledge again, apply nothing.
    Duplicate,
    /// Skips ahead: refuse with `OP_OUT_OF_ORDER`, expecting this sequence.
    OutOfOrder {
        /// The next sequence expected.
        expected: u64,
    },
    /// From a client the book does not know, based on a version a forgotten
    /// client had seen: it may have been applied before its client was
    /// forgotten. Refuse it (it uses its sequence number).
    Forgotten,
    /// The next op: process it.
    Next,
}

/// The clients of one session (stored in the row's `clients` column).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientBook {
    marks: BTreeMap<String, ClientMark>,
    /// The highest version any forgotten client had seen (0: none forgotten).
    forgotten_up_to: u64,
}

/// The stored form: `{"forgottenUpTo": V, "clients": {id: [seq, atMs,
/// version, floor]}}`; the floor is left out when 0 (and rows written before
/// it existed have three numbers).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Stored {
    #[serde(default)]
    forgotten_up_to: u64,
    clients: BTreeMap<String, Vec<u64>>,
}

/// What a row may hold: the book, or the first format, `{id: seq}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum AnyFormat {
    Book(Stored),
    SeqOnly(BTreeMap<String, u64>),
}

impl ClientBook {
    /// The last op sequence of `client` processed (0: none, or forgotten).
    pub fn applied_seq(&self, client: &str) -> u64 {
        self.marks.get(client).map_or(0, |m| m.seq)
    }

    /// Each remembered client's id and last processed op sequence.
    pub fn seqs(&self) -> impl Iterator<Item = (&str, u64)> {
        self.marks.iter().map(|(id, m)| (id.as_str(), m.seq))
    }

    /// The floor of `client`: ops of it based on this version or an older
    /// one are refused (0: none, or not remembered).
    pub fn floor(&self, client: &str) -> u64 {
        self.marks.get(client).map_or(0, |m| m.floor)
    }

    /// How many clients are remembered.
    pub fn len(&self) -> usize {
        self.marks.len()
    }

    /// Whether no client is remembered.
    pub fn is_empty(&self) -> bool {
        self.marks.is_empty()
    }

    /// Where op `seq` of `client`, based on version `base`, stands.
    pub fn admit(&self, client: &str, seq: u64, base: u64) -> Admission {
        match self.marks.get(client) {
            Some(m) if seq <= m.seq => Admission::Duplicate,
            Some(m) if seq > m.seq.saturating_add(1) => Admission::OutOfOrder {
                expected: m.seq.saturating_add(1),
            },
            Some(m) if base <= m.floor => Admission::Forgotten,
            Some(_) => Admission::Next,
            // Nobody was ever forgotten: a new client starts at 1.
            None if self.forgotten_up_to == 0 && seq > 1 => Admission::OutOfOrder { expected: 1 },
            None if self.forgotten_up_to == 0 => Admission::Next,
            // A forgotten client's processed ops were all based on versions
            // up to `forgotten_up_to`; one based later was never processed.
            // (Its sequence cannot be checked: the book no longer knows it.)
            None if base <= self.forgotten_up_to => Admission::Forgotten,
            None => Admission::Next,
        }
    }

    /// Records that op `seq` of `client` was processed at `now_ms` with the
    /// session at `version`. A client new to the book first makes room:
    /// clients silent for `prune_after_ms` go, then, at the cap, the least
    /// recently active one.
    pub fn record(
        &mut self,
        client: &str,
        seq: u64,
        now_ms: u64,
        version: u64,
        prune_after_ms: u64,
    ) {
        if let Some(m) = self.marks.get_mut(client) {
            (m.seq, m.at_ms, m.version) = (seq, now_ms, version);
            return;
        }
        let mark = ClientMark {
            seq,
            at_ms: now_ms,
            version,
            floor: self.forgotten_up_to,
        };
        let horizon = now_ms.saturating_sub(prune_after_ms);
        let silent: Vec<String> = self
            .marks
            .iter()
            .filter(|(_, m)| m.at_ms <= horizon)
            .map(|(id, _)| id.clone())
            .collect();
        for id in silent {
            self.forget(&id);
        }
        while self.marks.len() >= MAX_CLIENTS_PER_SESSION {
            let oldest = self
                .marks
                .iter()
                .min_by_key(|(_, m)| (m.at_ms, m.version))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.forget(&id),
                None => break,
            }
        }
        self.marks.insert(client.to_string(), mark);
    }

    fn forget(&mut self, client: &str) {
        if let Some(m) = self.marks.remove(client) {
            self.forgotten_up_to = self.forgotten_up_to.max(m.version);
        }
    }

    /// The stored JSON text.
    pub fn to_json(&self) -> String {
        let stored = Stored {
            forgotten_up_to: self.forgotten_up_to,
            clients: self
                .marks
                .iter()
                .map(|(id, m)| {
                    let mut numbers = vec![m.seq, m.at_ms, m.version];
                    if m.floor > 0 {
                        numbers.push(m.floor);
                    }
                    (id.clone(), numbers)
                })
                .collect(),
        };
        // Strings and integers only: serialization cannot fail.
        serde_json::to_string(&stored).unwrap_or_else(|_| r#"{"clients":{}}"#.into())
    }

    /// The book stored as `text`. A row of the first format (`{id: seq}`)
    /// knows neither times nor versions: its clients count as active at
    /// `updated_at_ms` with the session at `version` (its version then).
    pub fn from_json(text: &str, version: u64, updated_at_ms: u64) -> Result<Self, SessileError> {
        let unreadable = |e: &dyn std::fmt::Display| SessileError::ServerStorage {
            reason: format!("stored clients of a session do not read: {e}"),
        };
        let parsed: AnyFormat = serde_json::from_str(text).map_err(|e| unreadable(&e))?;
        Ok(match parsed {
            AnyFormat::Book(s) => {
                let mut marks = BTreeMap::new();
                for (id, numbers) in s.clients {
                    let (seq, at_ms, version, floor) = match numbers[..] {
                        [seq, at_ms, version] => (seq, at_ms, version, 0),
                        [seq, at_ms, version, floor] => (seq, at_ms, version, floor),
                        _ => return Err(unreadable(&format!("client {id}: {numbers:?}"))),
                    };
                    let mark = ClientMark {
                        seq,
                        at_ms,
                        version,
                        floor,
                    };
                    marks.insert(id, mark);
                }
                ClientBook {
                    forgotten_up_to: s.forgotten_up_to,
                    marks,
                }
            }
            AnyFormat::SeqOnly(seqs) => ClientBook {
                forgotten_up_to: 0,
                marks: seqs
                    .into_iter()
                    .map(|(id, seq)| {
                        (
                            id,
                            ClientMark {
                                seq,
                                at_ms: updated_at_ms,
                                version,
                                floor: 0,
                            },
                        )
                    })
                    .collect(),
            },
        })
    }
}

/// How long a client may stay silent before it is forgotten: the session's
/// TTL as it stands (creation to expiry, extensions included), at least the
/// shortest TTL.
pub fn prune_after_ms(created_at_ms: u64, expires_at_ms: u64) -> u64 {
    expires_at_ms
        .saturating_sub(created_at_ms)
        .max(MIN_TTL_SECS * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> String {
        format!("{n:032x}")
    }

    #[test]
    fn a_new_client_starts_at_one_until_someone_is_forgotten() {
        let mut b = ClientBook::default();
        assert_eq!(b.admit(&id(1), 2, 1), Admission::OutOfOrder { expected: 1 });
        assert_eq!(b.admit(&id(1), 1, 1), Admission::Next);
        b.record(&id(1), 1, 10, 1, 1_000_000);
        assert_eq!(b.admit(&id(1), 1, 1), Admission::Duplicate);
        assert_eq!(b.admit(&id(1), 3, 1), Admission::OutOfOrder { expected: 2 });
        assert_eq!(
            b.admit(&id(1), u64::MAX, 1),
            Admission::OutOfOrder { expected: 2 }
        );
        assert_eq!(b.admit(&id(1), 2, 1), Admission::Next);
    }

    #[test]
    fn forgotten_clients_leave_a_version_below_which_unknown_ops_are_refused() {
        let mut b = ClientBook::default();
        let ttl = 60_000;
        b.record(&id(1), 7, 1_000, 40, ttl);
        b.record(&id(2), 1, 1_000 + ttl, 50, ttl); // id(1) is silent for the TTL: forgotten
        assert_eq!(b.applied_seq(&id(1)), 0);
        assert_eq!(b.len(), 1);
        // Any op of id(1) processed before was based on version 40 at most.
        assert_eq!(b.admit(&id(1), 7, 40), Admission::Forgotten);
        assert_eq!(b.admit(&id(1), 3, 12), Admission::Forgotten);
        assert_eq!(b.admit(&id(1), 8, 41), Admission::Next);
        assert_eq!(b.admit(&id(3), 1, 41), Admission::Next);
    }

    #[test]
    fn a_forgotten_client_that_comes_back_has_none_of_its_old_ops_applied() {
        let mut b = ClientBook::default();
        let ttl = 60_000;
        // id(1)'s ops 2 and 3 were processed (based on versions up to 3), then
        // it was forgotten.
        b.record(&id(1), 3, 1_000, 3, ttl);
        b.record(&id(2), 1, 1_000 + ttl, 4, ttl);
        assert_eq!(b.admit(&id(1), 2, 2), Admission::Forgotten);
        b.record(&id(1), 2, 2_000 + ttl, 4, ttl);
        // Its re-sent op 3 is the next sequence now, but it too is old.
        assert_eq!(b.admit(&id(1), 3, 3), Admission::Forgotten);
        b.record(&id(1), 3, 2_000 + ttl, 4, ttl);
        // Ops made after it caught up are applied; the floor survives storage.
        assert_eq!(b.admit(&id(1), 4, 4), Admission::Next);
        let stored = ClientBook::from_json(&b.to_json(), 0, 0).unwrap();
        assert_eq!(stored, b);
        assert_eq!(stored.admit(&id(1), 4, 3), Admission::Forgotten);
        // A client admitted while nobody was forgotten has no floor.
        assert_eq!(b.admit(&id(2), 2, 1), Admission::Next);
    }

    #[test]
    fn the_cap_forgets_the_least_recently_active() {
        let mut b = ClientBook::default();
        for n in 0..MAX_CLIENTS_PER_SESSION + 10 {
            b.record(&id(n), 1, 1_000 + n as u64, n as u64, u64::MAX);
        }
        assert_eq!(b.len(), MAX_CLIENTS_PER_SESSION);
        assert_eq!(b.applied_seq(&id(9)), 0);
        assert_eq!(b.applied_seq(&id(10)), 1);
        assert_eq!(b.admit(&id(0), 1, 9), Admission::Forgotten);
        // A known client's op refreshes it and forgets nobody.
        b.record(&id(10), 2, 5_000, 2_000, u64::MAX);
        assert_eq!(b.len(), MAX_CLIENTS_PER_SESSION);
    }

    #[test]
    fn both_stored_formats_read() {
        let mut b = ClientBook::default();
        b.record(&id(1), 3, 100, 9, 60_000);
        let text = b.to_json();
        assert_eq!(
            text,
            format!(
                r#"{{"forgottenUpTo":0,"clients":{{"{}":[3,100,9]}}}}"#,
                id(1)
            )
        );
        assert_eq!(ClientBook::from_json(&text, 0, 0).unwrap(), b);
        let old = ClientBook::from_json(&format!(r#"{{"{}":3}}"#, id(1)), 9, 100).unwrap();
        assert_eq!(old, b);
        assert!(ClientBook::from_json("{}", 1, 1).unwrap().is_empty());
        let e = ClientBook::from_json("[1]", 1, 1).unwrap_err();
        assert_eq!(e.code(), "SERVER_STORAGE_ERROR");
        let short = format!(r#"{{"clients":{{"{}":[3,100]}}}}"#, id(1));
        let e = ClientBook::from_json(&short, 1, 1).unwrap_err();
        assert_eq!(e.code(), "SERVER_STORAGE_ERROR");
    }

    #[test]
    fn prune_age_is_the_ttl_as_it_stands() {
        assert_eq!(prune_after_ms(1_000, 1_801_000), 1_800_000);
        assert_eq!(prune_after_ms(1_000, 1_000), 60_000);
        assert_eq!(prune_after_ms(u64::MAX, 0), 60_000);
    }
}
