//! When to write: changes are coalesced (the latest state wins) and written
//! `delay` ms after the last change, but never later than four delays after
//! the first unsaved one, so a stream of updates cannot postpone the write
//! forever. After a failed write the next attempt waits a backoff that
//! doubles up to 30 s. Time is an argument (ms); the driver owns the timer.

/// Longest wait between two attempts after failed writes, in ms.
pub const MAX_BACKOFF_MS: u64 = 30_000;

/// Debounce timing of unsaved changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debouncer {
    delay_ms: u64,
    first_unsaved: Option<u64>,
    last_change: u64,
}

impl Debouncer {
    /// A debouncer writing `delay_ms` after the last change.
    pub fn new(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            first_unsaved: None,
            last_change: 0,
        }
    }

    /// Records a change at `now`.
    pub fn changed(&mut self, now: u64) {
        self.first_unsaved.get_or_insert(now);
        self.last_change = now;
    }

    /// When the pending write is due, if anything is unsaved.
    pub fn due_at(&self) -> Option<u64> {
        let first = self.first_unsaved?;
        let trailing = self.last_change.saturating_add(self.delay_ms);
        Some(trailing.min(first.saturating_add(self.delay_ms.saturating_mul(4))))
    }

    /// Whether there are changes not yet handed to a write.
    pub fn unsaved(&self) -> bool {
        self.first_unsaved.is_some()
    }

    /// The latest state is being written (or was replaced): nothing is
    /// unsaved until the next change or a failed write.
    pub fn taken(&mut self) {
        self.first_unsaved = None;
    }

    /// The wait after `failures` failed writes in a row (at least one):
    /// the delay (100 ms at least) doubled per failure, at most 30 s.
    pub fn backoff_ms(&self, failures: u32) -> u64 {
        let base = self.delay_ms.max(100);
        base.saturating_mul(1 << failures.min(8))
            .min(MAX_BACKOFF_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_delay_then_ceiling_of_four_delays() {
        let mut d = Debouncer::new(200);
        assert_eq!(d.due_at(), None);
        d.changed(1_000);
        assert_eq!(d.due_at(), Some(1_200));
        // A change every 50 ms: the trailing delay never elapses, the ceiling does.
        for t in (1_050..2_000).step_by(50) {
            d.changed(t);
        }
        assert_eq!(d.due_at(), Some(1_800));
        d.taken();
        assert!(!d.unsaved());
        assert_eq!(d.due_at(), None);
    }

    #[test]
    fn backoff_doubles_up_to_thirty_seconds() {
        let d = Debouncer::new(20);
        assert_eq!(d.backoff_ms(1), 200);
        assert_eq!(d.backoff_ms(2), 400);
        assert_eq!(d.backoff_ms(40), 25_600, "at most 2^8 delays");
        assert_eq!(Debouncer::new(200).backoff_ms(8), MAX_BACKOFF_MS);
    }
}
