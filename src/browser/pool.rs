//! Fresh sessions started ahead of need: a new WebDriver session costs ≈ 0.5 s, so the next job
//! should not wait for one. Every session is used once (a fresh profile per account, nothing
//! carried over), then closed; the pool only moves the start-up off the job's path.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{Browser, BrowserError, Session};

pub struct SessionPool {
    browser: Browser,
    ready: Mutex<VecDeque<Session>>,
    /// How many started sessions to keep waiting (each holds an idle Chromium).
    size: usize,
    refilling: AtomicBool,
    closed: AtomicBool,
}

impl SessionPool {
    pub fn new(browser: Browser, size: usize) -> Arc<SessionPool> {
        let pool = Arc::new(SessionPool {
            browser,
            ready: Mutex::new(VecDeque::new()),
            size,
            refilling: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        pool.top_up();
        pool
    }

    /// A session nobody has used: a ready one if there is one, else a new one (and then the
    /// pool is topped up at once: a burst). Otherwise the caller tops it up with
    /// [`SessionPool::top_up`] once its job is done, so starting the next session does not
    /// compete with the job for the CPU.
    pub async fn take(self: &Arc<Self>) -> Result<Session, BrowserError> {
        // Sessions started on a chromedriver that has since been replaced died with it.
        let current = self.browser.driver_generation();
        let (ready, stale): (Vec<Session>, Vec<Session>) = {
            let mut waiting = self.ready.lock().expect("pool lock");
            waiting.drain(..).partition(|s| s.generation() == current)
        };
        for session in stale {
            tokio::spawn(async move {
                let _ = session.close().await;
            });
        }
        let mut ready: VecDeque<Session> = ready.into();
        let ready = {
            let next = ready.pop_front();
            self.ready.lock().expect("pool lock").extend(ready);
            next
        };
        match ready {
            Some(session) => Ok(session),
            None => {
                self.top_up();
                self.browser.session().await
            }
        }
    }

    pub fn browser(&self) -> &Browser {
        &self.browser
    }

    /// How many started sessions are waiting.
    pub fn ready(&self) -> usize {
        self.ready.lock().expect("pool lock").len()
    }

    /// Starts sessions in the background until `size` are waiting (one refill task at a time).
    pub fn top_up(self: &Arc<Self>) {
        if self.size == 0 || self.refilling.swap(true, Ordering::SeqCst) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.refilling.store(false, Ordering::SeqCst);
            return;
        };
        let pool = self.clone();
        runtime.spawn(async move {
            while !pool.closed.load(Ordering::SeqCst) && pool.ready() < pool.size {
                match pool.browser.session_if_free().await {
                    Ok(Some(session)) if !pool.closed.load(Ordering::SeqCst) => {
                        pool.ready.lock().expect("pool lock").push_back(session)
                    }
                    Ok(Some(session)) => {
                        let _ = session.close().await;
                    }
                    // Every endpoint is at its maximum: the places are the jobs'.
                    Ok(None) => break,
                    Err(error) => {
                        // Jobs open their own sessions meanwhile; the next take retries.
                        tracing::warn!(%error, "pre-starting a browser session failed");
                        break;
                    }
                }
            }
            pool.refilling.store(false, Ordering::SeqCst);
        });
    }

    /// Closes every waiting session and stops refilling.
    pub async fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let sessions: Vec<Session> = self.ready.lock().expect("pool lock").drain(..).collect();
        for session in sessions {
            let _ = session.close().await;
        }
    }
}
