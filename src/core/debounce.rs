//! When to write: changes are coalesced (the latest state wins) and written
//! `delay` after the last change, but never later than `max_wait` after the
//! first unsaved one, so a stream of updates cannot postpone the write
//! forever. Time is an argument (ms); the driver owns the timer.

/// Debounce timing of unsaved changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debouncer {
    delay_ms: u64,
    max_wait_ms: u64,
    first_unsaved: Option<u64>,
    last_change: u64,
}

impl Debouncer {
    /// A debouncer with `delay_ms` after the last change and a ceiling of
    /// four delays after the first unsaved change.
    pub fn new(delay_ms: u64) -> Self {
        Self {
            delay_ms,
            max_wait_ms: delay_ms.saturating_mul(4),
            first_unsaved: None,
            last_change: 0,
        }
    }

    /// Records a change at `now`; returns when the write is due.
    #[must_use]
    pub fn changed(&mut self, now: u64) -> u64 {
        self.first_unsaved.get_or_insert(now);
        self.last_change = now;
        self.due_at().unwrap_or(now)
    }

    /// When the pending write is due, if there are unsaved changes.
    pub fn due_at(&self) -> Option<u64> {
        let first = self.first_unsaved?;
        let trailing = self.last_change.saturating_add(self.delay_ms);
        Some(trailing.min(first.saturating_add(self.max_wait_ms)))
    }

    /// Whether a write is due at `now`.
    pub fn is_due(&self, now: u64) -> bool {
        self.due_at().is_some_and(|at| now >= at)
    }

    /// Whether there are changes not yet handed to a write.
    pub fn has_unsaved(&self) -> bool {
        self.first_unsaved.is_some()
    }

    /// The latest state is being written: nothing is unsaved until the next
    /// change. (If that write fails, call [`changed`](Self::changed) again.)
    pub fn taken(&mut self) {
        self.first_unsaved = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_written_once_delay_after_the_last_change() {
        let mut d = Debouncer::new(250);
        assert_eq!(d.changed(1000), 1250);
        assert_eq!(d.changed(1100), 1350);
        assert!(!d.is_due(1349));
        assert!(d.is_due(1350));
        d.taken();
        assert!(!d.has_unsaved());
        assert_eq!(d.due_at(), None);
    }

    #[test]
    fn a_stream_of_changes_is_written_within_max_wait() {
        let mut d = Debouncer::new(250);
        let mut due = 0;
        for t in (0..5000).step_by(100) {
            due = d.changed(t);
            if d.is_due(t) {
                break;
            }
        }
        assert_eq!(due, 1000, "first change at 0, ceiling 4 x 250 ms");
    }

    #[test]
    fn zero_delay_is_due_at_once() {
        let mut d = Debouncer::new(0);
        assert_eq!(d.changed(42), 42);
        assert!(d.is_due(42));
    }
}
