//! The worker's side of the whole-run benchmark (`scripts/bench-flows.sh`): the sandbox flow of
//! `benches/peers/flow.json` through this crate, answering the same stdin protocol as the peers
//! (`benches/peers/playwright/flow.mjs` documents it).
//!
//!   warm        one flow with `pair` in a session reused across flows
//!   isolated    one job through the product path: queued (SQLite), claimed by the worker,
//!               paired in a fresh pre-started session, the code typed by the "merchant" through
//!               the queue; MS = claim -> outcome, plus submit -> outcome and claim -> first
//!               navigation
//!   batch C N   N such jobs through a worker with C slots; MS = wall time of the batch
//!   pid         this process (its chromedriver's descendants are its browsers)
//!
//! `cargo run --release --example flow_bench -- http://127.0.0.1:PORT` (a running sandbox).
//! Environment: `BENCH_PRESTARTED` pre-started sessions per worker (default: the product's);
//! `BENCH_ISOLATION=browser` a new Chromium per session instead of a browser context;
//! `BENCH_ACTIVE` pairings driving the browser at once (default: the product's, twice the CPUs).

use std::collections::HashSet;
use std::io::BufRead;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use pairing_worker::browser::{Browser, BrowserConfig, Isolation, Session};
use pairing_worker::codes::OneCode;
use pairing_worker::engine::pairing::{pair, PairingOptions};
use pairing_worker::kit::sandbox::portal_hosts;
use pairing_worker::outcome::Outcome;
use pairing_worker::provider::Registry;
use pairing_worker::queue::{
    AccountSecrets, Job, JobKind, JobState, Key, KeyRing, NewAccount, Queue, QueueConfig,
};
use pairing_worker::secret::{Credentials, SecretString};
use pairing_worker::worker::{Worker, WorkerConfig};
use serde::Deserialize;
use tokio::sync::watch;

const ORG: &str = "bench";

#[derive(Deserialize)]
struct Flow {
    provider: String,
    username: String,
    password: String,
    code: String,
    stores: Vec<String>,
}

struct Bench {
    flow: Flow,
    base: String,
    registry: Arc<Registry>,
    browser: Browser,
    warm: Option<Session>,
    /// One worker with one slot, kept across `isolated` commands (its pool stays warm).
    single: Option<Running>,
    scratch: tempfile::TempDir,
    queues: usize,
}

/// A worker on its own SQLite queue.
struct Running {
    queue: Arc<Queue>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// What one job measured, from the queue's own timestamps and the worker's report.
struct JobTimes {
    claim_to_outcome_ms: i64,
    submit_to_outcome_ms: i64,
    claim_to_navigation_ms: i64,
}

impl Bench {
    fn credentials(&self) -> Credentials {
        Credentials {
            username: self.flow.username.clone(),
            password: SecretString::from(self.flow.password.clone()),
        }
    }

    async fn warm(&mut self) -> anyhow::Result<String> {
        if self.warm.is_none() {
            self.warm = Some(self.browser.session().await?);
        }
        let spec = self.registry.get(&self.flow.provider)?;
        let options = PairingOptions {
            portal_hosts: portal_hosts(&self.registry, &self.base)?,
            expected_stores: self.flow.stores.clone(),
            ..PairingOptions::default()
        };
        let mut code = OneCode(Some(SecretString::from(self.flow.code.clone())));
        let started = Instant::now();
        let session = self.warm.as_ref().expect("opened above");
        let report = pair(
            session,
            &spec,
            &self.credentials(),
            &mut code,
            &mut pairing_worker::engine::guard::Unguarded,
            &options,
        )
        .await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        ensure!(
            report.outcome == Outcome::Paired,
            "ended {}",
            report.outcome
        );
        Ok(format!("{ms:.1}"))
    }

    async fn start_worker(&mut self, slots: usize) -> anyhow::Result<Running> {
        self.queues += 1;
        let db = self
            .scratch
            .path()
            .join(format!("queue-{}.db", self.queues));
        let keys = KeyRing::parse(&Key::generate_line(), None)?;
        let url = format!("sqlite:{}", db.display());
        let queue = Arc::new(Queue::open(&url, keys, QueueConfig::default()).await?);
        let prestarted = match std::env::var("BENCH_PRESTARTED") {
            Ok(n) => n.parse().context("BENCH_PRESTARTED")?,
            Err(_) => WorkerConfig::default().prestarted_sessions,
        };
        let active = match std::env::var("BENCH_ACTIVE") {
            Ok(n) => n.parse().context("BENCH_ACTIVE")?,
            Err(_) => WorkerConfig::default().active_pairings,
        };
        let config = WorkerConfig {
            slots,
            active_pairings: active,
            prestarted_sessions: prestarted,
            // The sandbox has no rate limit; the product default (10/min per provider) would
            // measure the limiter, not the machine.
            logins_per_minute: NonZeroU32::new(100_000).expect("non-zero"),
            portal_hosts: portal_hosts(&self.registry, &self.base)?,
            ..WorkerConfig::default()
        };
        let worker = Worker::new(
            queue.clone(),
            self.registry.clone(),
            self.browser.clone(),
            config,
        );
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker.run(stopped));
        Ok(Running { queue, stop, task })
    }

    async fn accounts(&self, queue: &Queue, n: usize) -> anyhow::Result<Vec<String>> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let account = queue
                .create_account(NewAccount {
                    organisation: ORG.into(),
                    provider: self.flow.provider.clone(),
                    secrets: AccountSecrets {
                        credentials: self.credentials(),
                        totp: None,
                        mailbox: None,
                    },
                    stores: Vec::new(),
                })
                .await?;
            ids.push(account.id);
        }
        Ok(ids)
    }

    /// Submits a Reconnect job per account and plays the merchant: types the code as soon as a
    /// job asks for it. Returns every finished job.
    async fn run_jobs(&self, queue: &Queue, accounts: &[String]) -> anyhow::Result<Vec<Job>> {
        let mut changes = queue.changes();
        let mut live = HashSet::new();
        for account in accounts {
            let submitted = queue.submit(ORG, account, JobKind::Pair, true).await?;
            live.insert(submitted.job.id);
        }
        let mut finished = Vec::new();
        let mut coded = HashSet::new();
        let deadline = Instant::now() + Duration::from_secs(600);
        while !live.is_empty() {
            for id in live.clone() {
                let job = queue.job(ORG, &id).await?.context("job vanished")?;
                if job.state == JobState::AwaitingCode && coded.insert(id.clone()) {
                    let code = SecretString::from(self.flow.code.clone());
                    queue.submit_code(ORG, &id, &code).await?;
                } else if job.state.is_final() {
                    live.remove(&id);
                    finished.push(job);
                }
            }
            ensure!(
                Instant::now() < deadline,
                "jobs did not finish in 10 minutes"
            );
            let _ = tokio::time::timeout(Duration::from_millis(50), changes.changed()).await;
        }
        Ok(finished)
    }

    fn times(&self, job: &Job) -> anyhow::Result<JobTimes> {
        ensure!(
            job.outcome == Some(Outcome::Paired),
            "job ended {:?} {:?}",
            job.outcome,
            job.error
        );
        let ms = |at: Option<chrono::DateTime<chrono::Utc>>| {
            at.map(|t| t.timestamp_millis()).context("timestamp")
        };
        let finished = ms(job.finished_at)?;
        let navigation = job
            .result
            .as_ref()
            .and_then(|r| r["claim_to_navigation_ms"].as_i64())
            .context("no claim_to_navigation_ms in the report")?;
        Ok(JobTimes {
            claim_to_outcome_ms: finished - ms(job.started_at)?,
            submit_to_outcome_ms: finished - job.created_at.timestamp_millis(),
            claim_to_navigation_ms: navigation,
        })
    }

    async fn isolated(&mut self) -> anyhow::Result<String> {
        if self.single.is_none() {
            self.single = Some(self.start_worker(1).await?);
        }
        let queue = self.single.as_ref().expect("started above").queue.clone();
        let accounts = self.accounts(&queue, 1).await?;
        let jobs = self.run_jobs(&queue, &accounts).await?;
        let times = self.times(&jobs[0])?;
        Ok(format!(
            "{} submit_to_outcome={} claim_to_navigation={}",
            times.claim_to_outcome_ms, times.submit_to_outcome_ms, times.claim_to_navigation_ms
        ))
    }

    async fn batch(&mut self, slots: usize, total: usize) -> anyhow::Result<String> {
        let running = self.start_worker(slots).await?;
        let accounts = self.accounts(&running.queue, total).await?;
        // Let the pre-started sessions come up, as on a worker that has been running a while.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let started = Instant::now();
        let jobs = self.run_jobs(&running.queue, &accounts).await;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        running.stop.send(true)?;
        running.task.await?;
        for job in jobs? {
            self.times(&job)?;
        }
        Ok(format!("{ms:.1}"))
    }

    async fn close(mut self) {
        if let Some(session) = self.warm.take() {
            let _ = session.close().await;
        }
        if let Some(running) = self.single.take() {
            let _ = running.stop.send(true);
            let _ = running.task.await;
        }
        self.browser.stop_shared().await;
        self.browser.shutdown();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // RUST_LOG=pairing_worker=trace shows every WebDriver command with its time (on stderr).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let base = std::env::args()
        .nth(1)
        .context("usage: flow_bench SANDBOX_URL")?
        .trim_end_matches('/')
        .to_string();
    let flow_file = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/flow.json");
    let flow: Flow = serde_json::from_str(&std::fs::read_to_string(flow_file)?)?;
    let mut bench = Bench {
        flow,
        base,
        registry: Arc::new(Registry::from_source_tree()?),
        browser: Browser::launch(BrowserConfig {
            isolation: match std::env::var("BENCH_ISOLATION").as_deref() {
                Ok("browser") => Some(Isolation::Browser),
                Ok("context") | Err(_) => Some(Isolation::Context),
                Ok(other) => anyhow::bail!("BENCH_ISOLATION={other}: context or browser"),
            },
            ..BrowserConfig::default()
        })
        .await?,
        warm: None,
        single: None,
        scratch: tempfile::tempdir()?,
        queues: 0,
    };
    // Commands arrive on a thread: stdin blocks, the runtime must not.
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(1);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let words: Vec<&str> = line.split_whitespace().collect();
        let answer = match words.as_slice() {
            ["warm"] => bench.warm().await,
            ["isolated"] => bench.isolated().await,
            ["batch", slots, total] => match (slots.parse(), total.parse()) {
                (Ok(slots), Ok(total)) => bench.batch(slots, total).await,
                _ => Err(anyhow::anyhow!("batch takes two numbers")),
            },
            ["pid"] => Ok(std::process::id().to_string()),
            ["quit"] => break,
            other => Err(anyhow::anyhow!("unknown command {other:?}")),
        };
        match answer {
            Ok(text) => println!("ok {text}"),
            Err(error) => println!("err {}", format!("{error:#}").replace('\n', " ")),
        }
    }
    bench.close().await;
    Ok(())
}
