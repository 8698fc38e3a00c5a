//! Driving [`Sessions`] without the engine thread: calls queue their
//! changes, and [`Sessions::commit_batch`] commits them as the engine thread
//! does after each batch of jobs. For tests (the link simulation among them)
//! and the session engine's fuzz target, which run the engine's logic on one thread, without tokio.

use sessile::core::error::SessileError;

use crate::engine::Push;
use crate::sessions::Sessions;

impl Sessions {
    /// Commits every change queued since the last commit in one transaction
    /// of the store, as the engine thread does after a batch of jobs. On an
    /// error nothing of the batch is kept, in the store or in memory: the
    /// answers of the calls since the last commit must not be given.
    pub fn commit_batch(&mut self) -> Result<(), SessileError> {
        self.commit().0
    }

    /// [`commit_batch`](Self::commit_batch), and what the engine thread
    /// then pushes to the connections of each session (by session id): for
    /// in-process simulations that play the connections themselves.
    pub fn commit_batch_and_pushes(&mut self) -> (Result<(), SessileError>, Vec<(String, Push)>) {
        self.commit()
    }
}
