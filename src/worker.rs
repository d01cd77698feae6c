//! The worker loop behind `serve`: N pairing slots over one WebDriver endpoint, each claiming a
//! job, holding its lease with heartbeats, pairing in a fresh browser session, and recording the
//! result. A job whose lease is lost (cancelled, or rescued after a stall) is dropped at once,
//! closing its session.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;

use crate::browser::{Browser, Session, SessionPool};
use crate::codes::{merchant_codes, AccountCodes, CodeSubmitter, MailboxWatch, TotpSource};
use crate::engine::guard::{PasswordGuard, Withheld};
use crate::engine::pairing::{pair, PairingError, PairingOptions};
use crate::outcome::Outcome;
use crate::provider::{PortalHosts, Registry};
use crate::queue::{
    Claimed, HeartbeatError, Job, Lease, Queue, RunError, RunResult, SubmissionRefused,
};

/// How long a run whose lease was lost after it sent a password keeps going for the portal's
/// verdict: a failed login seen then is still recorded (the job is no longer the run's to
/// finish). Past it the run is dropped and the submission stays counted as a failed login.
const LATE_VERDICT_WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Jobs in flight (claimed, each with its own browser session): jobs waiting for a
    /// merchant's code hold a slot for minutes, so this may be well above the CPU count.
    pub slots: usize,
    /// How many of those drive the browser at the same time; the others wait for a turn (their
    /// lease kept alive), and a job waiting for a code gives its turn up, so many slots can wait
    /// for merchants without crowding the browser. Twice the CPU count by default: on two cores
    /// flows per minute are flat from one to eight at once (BENCHMARKS.md), and a page load
    /// leaves the CPU to another flow, but every flow beyond that is slower and holds memory.
    pub active_pairings: usize,
    /// Names this worker in job rows and logs.
    pub worker_id: String,
    /// How often an idle slot looks for work.
    pub poll_interval: Duration,
    /// How long running jobs may take to finish after a stop before they are released.
    pub grace: Duration,
    /// Logins per minute per provider, across every worker on the database (portals flag bursts).
    pub logins_per_minute: NonZeroU32,
    /// Fresh browser sessions kept started ahead of need, so a claimed job does not wait ≈ 0.5 s
    /// for one (each is used once; each idle one holds a Chromium).
    pub prestarted_sessions: usize,
    /// Where the portals are reached: their real hosts unless the map points them elsewhere.
    pub portal_hosts: PortalHosts,
    /// Deadlines, budgets and the artifacts folder for every pairing.
    pub pairing: PairingOptions,
    /// How often this worker looks for accounts due a scheduled health check (`None`: it
    /// schedules none; every worker may, each due account is taken by one).
    pub health_check_tick: Option<Duration>,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            slots: 2,
            active_pairings: 2 * std::thread::available_parallelism().map_or(2, |n| n.get()),
            worker_id: format!(
                "{}-{}",
                std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
                std::process::id()
            ),
            poll_interval: Duration::from_millis(250),
            grace: Duration::from_secs(30),
            logins_per_minute: NonZeroU32::new(10).expect("non-zero"),
            prestarted_sessions: 2,
            portal_hosts: PortalHosts::real(),
            pairing: PairingOptions::default(),
            health_check_tick: None,
        }
    }
}

pub struct Worker {
    queue: Arc<Queue>,
    registry: Arc<Registry>,
    sessions: Arc<SessionPool>,
    config: WorkerConfig,
    /// Turns to drive the browser (see [`WorkerConfig::active_pairings`]).
    turns: Arc<tokio::sync::Semaphore>,
    /// Used sessions being deleted in the background (awaited before `run` returns).
    closing: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Worker {
    pub fn new(
        queue: Arc<Queue>,
        registry: Arc<Registry>,
        browser: Browser,
        config: WorkerConfig,
    ) -> Arc<Worker> {
        let sessions = SessionPool::new(browser, config.prestarted_sessions);
        let turns = Arc::new(tokio::sync::Semaphore::new(config.active_pairings.max(1)));
        Arc::new(Worker {
            queue,
            registry,
            sessions,
            config,
            turns,
            closing: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// Runs every slot until `stop` turns true; then running jobs get the grace period to finish
    /// and are released (put back, attempt not counted) if they do not.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        let slots: Vec<_> = (0..self.config.slots.max(1))
            .map(|slot| {
                let worker = self.clone();
                let stop = stop.clone();
                tokio::spawn(async move { worker.slot(slot, stop).await })
            })
            .collect();
        let scheduler = self.config.health_check_tick.map(|tick| {
            let (queue, stop) = (self.queue.clone(), stop.clone());
            tokio::spawn(schedule_health_checks(queue, tick, stop))
        });
        let reaper = self.sessions.browser().has_endpoints().then(|| {
            // Sessions on the endpoints older than any pairing can run were left by a worker
            // that died (or a close that never arrived).
            let max_age = self.config.pairing.longest_run() + Duration::from_secs(60);
            let (browser, stop) = (self.sessions.browser().clone(), stop.clone());
            tokio::spawn(reap_stale_sessions(browser, max_age, stop))
        });
        for slot in slots {
            let _ = slot.await;
        }
        if let Some(reaper) = reaper {
            reaper.abort();
        }
        if let Some(scheduler) = scheduler {
            let _ = scheduler.await;
        }
        let closing: Vec<_> = self
            .closing
            .lock()
            .expect("closing lock")
            .drain(..)
            .collect();
        for close in closing {
            let _ = close.await;
        }
        self.sessions.close().await;
    }

    /// Deletes a used session off the job's path: the outcome is recorded while Chromium exits
    /// (≈ 50–100 ms the merchant does not wait for).
    fn close_later(&self, session: Session) {
        let pool = self.sessions.clone();
        let close = tokio::spawn(async move {
            if let Err(error) = session.close().await {
                tracing::warn!(%error, "deleting a used browser session failed");
            }
            pool.top_up(); // the next session starts once this job no longer needs the CPU
        });
        let mut closing = self.closing.lock().expect("closing lock");
        closing.retain(|close| !close.is_finished());
        closing.push(close);
    }

    async fn slot(&self, slot: usize, mut stop: watch::Receiver<bool>) {
        let mut changes = self.queue.changes();
        loop {
            let stopped = *stop.borrow();
            if stopped {
                break;
            }
            match self.queue.claim(&self.config.worker_id).await {
                Ok(Some(claimed)) => {
                    let span = tracing::info_span!(
                        "job",
                        job = %claimed.job.id,
                        account = %claimed.job.account_id,
                        provider = %claimed.job.provider,
                        kind = claimed.job.kind.as_ref(),
                        slot,
                    );
                    self.run_claimed(claimed, stop.clone())
                        .instrument(span)
                        .await;
                }
                Ok(None) => {
                    // A job submitted by this process wakes the slot at once; one from another
                    // process is seen on the next poll.
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval) => {}
                        _ = changes.changed() => {}
                        // A dropped sender is a stop too (else this loop would spin).
                        changed = stop.changed() => if changed.is_err() { break; }
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "claiming a job failed");
                    tokio::time::sleep(self.config.poll_interval * 4).await;
                }
            }
        }
    }

    async fn run_claimed(&self, claimed: Claimed, stop: watch::Receiver<bool>) {
        let claimed_at = std::time::Instant::now();
        let Claimed { job, lease } = claimed;
        tracing::info!(attempt = job.attempts, "job claimed");
        let (lost_tx, mut lost) = watch::channel(false);
        let heartbeat = {
            let queue = self.queue.clone();
            let lease = lease.clone();
            let every = queue.config().lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match queue.heartbeat(&lease).await {
                        Ok(()) => {}
                        Err(HeartbeatError::Lost(_)) => {
                            let _ = lost_tx.send(true);
                            return;
                        }
                        Err(error) => tracing::warn!(%error, "heartbeat failed; retrying"),
                    }
                }
            })
        };
        let grace = self.config.grace;
        let mut stop_for_grace = stop.clone();
        let stopped_too_long = async move {
            let _ = stop_for_grace.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        let lost = async move {
            let _ = lost.wait_for(|lost| *lost).await;
        };
        let password_sent = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let attempt = self.attempt(&job, &lease, claimed_at, password_sent.clone());
        tokio::pin!(attempt);
        let result = tokio::select! {
            result = &mut attempt => Some(result),
            _ = lost => {
                if password_sent.load(std::sync::atomic::Ordering::SeqCst) {
                    tracing::info!("lease lost (cancelled or rescued) after the password was sent: waiting for the portal's verdict");
                    match tokio::time::timeout(LATE_VERDICT_WAIT, &mut attempt).await {
                        Ok(result) => Some(result),
                        Err(_) => {
                            tracing::info!("no verdict in time: dropping the job (its submission counts as a failed login)");
                            None
                        }
                    }
                } else {
                    tracing::info!("lease lost (cancelled or rescued): dropping the job");
                    None
                }
            }
            _ = stopped_too_long => {
                tracing::warn!("stopping: job did not finish within the grace period, released");
                if let Err(error) = self.queue.release(&lease).await {
                    tracing::warn!(%error, "releasing the job failed; its lease will expire");
                }
                None
            }
        };
        heartbeat.abort();
        let Some(result) = result else { return };
        match self.queue.finish(&lease, result).await {
            Ok(finished) => {
                tracing::info!(
                    state = finished.state.as_ref(),
                    outcome = finished.outcome.map(|o| o.to_string()),
                    "job finished"
                );
            }
            // The verdict's lockout effects (a failed login, rejected credentials) were kept.
            Err(HeartbeatError::Lost(_)) => tracing::info!(
                "the job was cancelled or rescued before its result: only the verdict's lockout effects were recorded"
            ),
            Err(error) => tracing::warn!(%error, "result not recorded"),
        }
    }

    /// One run of a job, start to result. Secrets live only inside this call.
    async fn attempt(
        &self,
        job: &Job,
        lease: &Lease,
        claimed_at: std::time::Instant,
        password_sent: Arc<std::sync::atomic::AtomicBool>,
    ) -> RunResult {
        let spec = match self.registry.get(&job.provider) {
            Ok(spec) => spec,
            Err(error) => return RunResult::Failed(error.into()),
        };
        let (account, secrets) = match (
            self.queue.account(&job.organisation, &job.account_id).await,
            self.queue.account_secrets(&job.account_id).await,
        ) {
            (Ok(Some(account)), Ok(Some(secrets))) => (account, secrets),
            (Err(error), _) | (_, Err(error)) => return RunResult::Failed(error.into()),
            _ => return RunResult::Failed(RunError::AccountDeleted),
        };
        let mut codes = AccountCodes::default();
        if let Some(secret) = &secrets.totp {
            match TotpSource::parse(secret) {
                Ok(totp) => codes.totp = Some(totp),
                Err(error) => return RunResult::Failed(error.into()),
            }
        }
        let mut bridge = None;
        if job.interactive {
            let (merchant, submitter) = merchant_codes();
            codes.merchant = Some(merchant);
            bridge = Some(tokio::spawn(bridge_codes(
                self.queue.clone(),
                lease.clone(),
                submitter,
            )));
        }
        let waited = std::time::Instant::now();
        // The provider's pace is the fleet's: every worker on this database takes turns from it.
        loop {
            let turn = self
                .queue
                .take_login_turn(&job.provider, self.config.logins_per_minute)
                .await;
            match turn {
                Ok(None) => break,
                Ok(Some(wait)) => tokio::time::sleep(wait.min(Duration::from_secs(1))).await,
                Err(error) => return RunResult::Failed(error.into()),
            }
        }
        let rate_wait = waited.elapsed();
        if rate_wait > Duration::from_millis(5) {
            crate::metrics::METRICS.rate_limit_waited(rate_wait);
            tracing::info!(
                ms = rate_wait.as_millis() as u64,
                "waited for the provider's login rate limit"
            );
        }
        // The mailbox's next UID is taken before the login, so only mail sent for it counts.
        if let (Some(mailbox), Some(rule)) = (&secrets.mailbox, &spec.email_code) {
            match MailboxWatch::start(mailbox).await {
                Ok(watch) => codes.mailbox = Some((watch, rule.clone())),
                Err(error) => return RunResult::Failed(error.into()),
            }
        }
        let options = PairingOptions {
            portal_hosts: self.config.portal_hosts.clone(),
            expected_stores: account.stores.iter().map(|s| s.id.clone()).collect(),
            ..self.config.pairing.clone()
        };
        let started = std::time::Instant::now();
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let mut codes = CodesReleasingTurn {
            inner: codes,
            turns: self.turns.clone(),
            turn: Some(turn),
        };
        let session = match self.sessions.take().await {
            Ok(session) => session,
            Err(error) => {
                codes.inner.close().await;
                return RunResult::Failed(error.into());
            }
        };
        // Claim → a session ready to navigate (the pairing's first command is the navigation):
        // what the pre-started pool exists to make small.
        let claim_to_navigation_ms = claimed_at.elapsed().as_millis() as u64;
        tracing::info!(
            since_claim_ms = claim_to_navigation_ms,
            waited_ms = started.elapsed().as_millis() as u64,
            "browser session ready"
        );
        crate::metrics::METRICS.session_opened();
        let mut guard = QueueGuard {
            queue: &self.queue,
            lease,
            sent: password_sent,
        };
        let result = pair(
            &session,
            &spec,
            &secrets.credentials,
            &mut codes,
            &mut guard,
            &options,
        )
        .await;
        let CodesReleasingTurn { inner: codes, .. } = codes; // the turn ends with the pairing
        self.close_later(session);
        crate::metrics::METRICS.session_closed();
        crate::metrics::METRICS.pairing_finished(started.elapsed());
        codes.close().await;
        if let Some(bridge) = bridge {
            bridge.abort();
        }
        drop(secrets);
        match result {
            Ok(report) => RunResult::Reported {
                report: Box::new(report),
                claim_to_navigation_ms: Some(claim_to_navigation_ms),
            },
            Err(PairingError::AmbiguousPage { error, artifacts }) => {
                RunResult::Failed(RunError::AmbiguousPage {
                    provider: job.provider.clone(),
                    error,
                    artifacts,
                })
            }
            Err(PairingError::Withheld(withheld)) => RunResult::Failed(withheld.into()),
            Err(PairingError::Browser(error)) => RunResult::Failed(error.into()),
            Err(PairingError::Codes(error)) => RunResult::Failed(error.into()),
        }
    }
}

/// How often a run waiting for a code reads the database for one submitted by another process.
const CODE_POLL: Duration = Duration::from_millis(100);

/// Puts each password on record in the queue before it is sent, and refuses it when the
/// account's guards say no (see `Queue::password_submitting`).
struct QueueGuard<'a> {
    queue: &'a Queue,
    lease: &'a Lease,
    /// Set once a password went out: a run that loses its lease after that waits for the verdict.
    sent: Arc<std::sync::atomic::AtomicBool>,
}

impl PasswordGuard for QueueGuard<'_> {
    async fn before_sending(&mut self) -> Result<(), Withheld> {
        match self.queue.password_submitting(self.lease).await {
            Ok(()) => {
                self.sent.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
            Err(SubmissionRefused::Guard(refusal)) => Err(Withheld {
                reason: refusal.to_string(),
                final_refusal: true,
            }),
            Err(SubmissionRefused::Lost(error)) => Err(Withheld {
                reason: error.to_string(),
                final_refusal: false,
            }),
        }
    }
}

/// A job's code sources, giving the job's turn at the browser up while it waits for a code (a
/// merchant may take minutes) and taking a turn again before the code is typed.
struct CodesReleasingTurn<C> {
    inner: C,
    turns: Arc<tokio::sync::Semaphore>,
    turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<C: crate::codes::CodeSource> crate::codes::CodeSource for CodesReleasingTurn<C> {
    async fn code(
        &mut self,
        request: &crate::outcome::CodeRequest,
        previous: Option<Outcome>,
    ) -> Result<crate::codes::CodeAnswer, crate::codes::CodeSourceError> {
        drop(self.turn.take());
        let answer = self.inner.code(request, previous).await;
        self.turn = Some(
            self.turns
                .clone()
                .acquire_owned()
                .await
                .expect("never closed"),
        );
        answer
    }
}

/// Carries codes between the queue and the pairing: publishes each request (the job shows
/// `awaiting_code`), then hands over the code the merchant submits through the queue.
async fn bridge_codes(queue: Arc<Queue>, lease: Lease, mut submitter: CodeSubmitter) {
    // A code typed into this process's API rings at once; one from another process is read on
    // the poll.
    let waiter = queue.code_waiter(&lease);
    while submitter.wait_for_request().await.is_some() {
        let Some(pending) = submitter.pending() else {
            continue;
        };
        let asked = queue.await_code(&lease, &pending.request, pending.previous);
        if asked.await.is_err() {
            return;
        }
        while submitter.awaiting().is_some() {
            match queue.take_code(&lease).await {
                Ok(Some(code)) => {
                    if let Err(error) = submitter.submit(code) {
                        tracing::warn!(%error, "a submitted code was not handed over");
                    }
                    if queue.code_taken(&lease).await.is_err() {
                        return;
                    }
                    break;
                }
                Ok(None) => {
                    let _ = tokio::time::timeout(CODE_POLL, waiter.submitted()).await;
                }
                Err(HeartbeatError::Lost(_)) => return,
                Err(error) => {
                    tracing::warn!(%error, "reading submitted codes failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        submitter.wait_until_taken().await;
    }
}

/// Deletes sessions older than any job on the WebDriver endpoints, every quarter of that age
/// (at most every minute), until the worker stops.
async fn reap_stale_sessions(browser: Browser, max_age: Duration, mut stop: watch::Receiver<bool>) {
    let every = (max_age / 4).clamp(Duration::from_millis(200), Duration::from_secs(60));
    loop {
        let reaped = browser.reap_sessions_older_than(max_age).await;
        if reaped > 0 {
            crate::metrics::METRICS.sessions_reaped(reaped);
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
    }
}

/// Queues the scheduled health checks that are due, every `tick`, until the worker stops.
async fn schedule_health_checks(
    queue: Arc<Queue>,
    tick: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match queue.schedule_due_checks(100).await {
            Ok(checks) => {
                for check in &checks {
                    tracing::info!(
                        account = %check.account,
                        decision = ?check.decision,
                        "scheduled health check"
                    );
                }
                if checks.len() == 100 {
                    continue; // more are due: no wait
                }
            }
            Err(error) => tracing::warn!(%error, "scheduling health checks failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(tick) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
