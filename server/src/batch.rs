//! Driving [`Sessions`] without the engine thread: calls queue their
//! changes, and [`Sessions::commit_batch`] commits them as the engine thread
//! does after each batch of jobs. For tests and the session engine's fuzz
//! target, which run the engine's logic on one thread, without tokio.

use sessile::core::error::SessileError;

use crate::sessions::Sessions;

impl Sessions {
    /// Commits every change queued since the last commit in one transaction
    /// of the store, as the engine thread does after a batch of jobs. On an
    /// error nothing of the batch is kept, in the store or in memory: the
    /// answers of the calls since the last commit must not be given.
    pub fn commit_batch(&mut self) -> Result<(), SessileError> {
        self.commit().0
    }
}
