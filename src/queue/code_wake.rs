//! Waking a run the moment its merchant's code arrives, when the API and the worker share a
//! process. The code itself still goes through the database (the record, and the path between
//! processes); only the wake-up is direct, so a stale wake costs one empty read, never a wrong
//! code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use super::{Lease, Queue};

/// Job id → (the lease token of the run waiting, its bell).
type Bells = HashMap<String, (String, Arc<Notify>)>;

/// The runs of this process that may wait for a code.
#[derive(Default, Clone)]
pub(super) struct Waiters(Arc<Mutex<Bells>>);

impl Waiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Bells> {
        // A panic while holding this lock leaves a plain map behind: still usable.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Held by the run holding a job's lease for as long as it may ask for codes.
pub struct CodeWaiter {
    bell: Arc<Notify>,
    job: String,
    token: String,
    waiters: Waiters,
}

impl CodeWaiter {
    /// Returns once a code was submitted through this process since the last call (at once if
    /// one came meanwhile). Codes submitted by other processes are only seen by reading.
    pub async fn submitted(&self) {
        self.bell.notified().await;
    }
}

impl Drop for CodeWaiter {
    fn drop(&mut self) {
        let mut waiters = self.waiters.lock();
        // A rescued job's next run may have registered since: leave its bell alone.
        if waiters
            .get(&self.job)
            .is_some_and(|(token, _)| *token == self.token)
        {
            waiters.remove(&self.job);
        }
    }
}

impl Queue {
    /// Registers the lease's run to be woken by [`Queue::submit_code`] in this process.
    pub fn code_waiter(&self, lease: &Lease) -> CodeWaiter {
        let bell = Arc::new(Notify::new());
        self.code_waiters
            .lock()
            .insert(lease.job.clone(), (lease.token.clone(), bell.clone()));
        CodeWaiter {
            bell,
            job: lease.job.clone(),
            token: lease.token.clone(),
            waiters: self.code_waiters.clone(),
        }
    }

    pub(super) fn wake_code_waiter(&self, job_id: &str) {
        if let Some((_, bell)) = self.code_waiters.lock().get(job_id) {
            bell.notify_one();
        }
    }
}
