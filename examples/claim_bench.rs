//! Claims per second with several workers on one PostgreSQL queue and no browser: each "worker"
//! is its own `Queue` (its own connection pool, as a `serve` process has) with N slots, each slot
//! claiming a job, holding it for a no-op pairing and finishing it as paired, until the queue is
//! empty. Then every job is checked: finished once, claimed once (attempts = 1), none left.
//!
//! `cargo run --release --example claim_bench -- [WORKERS] [SLOTS] [JOBS]` (defaults 3 50 3000);
//! `PAIRING_WORKER_TEST_PG` points at another server than 127.0.0.1:5432.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use pairing_worker::engine::pairing::PairingReport;
use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{
    AccountSecrets, JobKind, JobState, Key, KeyRing, NewAccount, Queue, QueueConfig, RunResult,
};
use pairing_worker::secret::Credentials;

#[path = "../tests/support/databases.rs"]
mod databases;

const ORG: &str = "claim-bench";

fn arg(n: usize, default: usize) -> usize {
    std::env::args()
        .nth(n)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let (workers, slots, jobs) = (arg(1, 3), arg(2, 50), arg(3, 3000));
    let db = databases::TestDatabase::postgres()
        .await
        .expect("PostgreSQL on 127.0.0.1:5432 (or PAIRING_WORKER_TEST_PG)");
    let key = Key::generate_line();
    let open = || async {
        Queue::open(
            &db.url,
            KeyRing::parse(&key, None).unwrap(),
            QueueConfig::default(),
        )
        .await
        .unwrap()
    };
    let setup = open().await;
    let mut ids = Vec::with_capacity(jobs);
    for i in 0..jobs {
        let account = setup
            .create_account(NewAccount {
                organisation: ORG.into(),
                provider: "deliveroo".into(),
                secrets: AccountSecrets {
                    credentials: Credentials {
                        username: format!("owner{i}@example.test"),
                        password: SecretString::from("Bench-Password-1".to_string()),
                    },
                    totp: None,
                    mailbox: None,
                },
                stores: Vec::new(),
            })
            .await
            .unwrap();
        let job = setup
            .submit(ORG, &account.id, JobKind::Pair, false)
            .await
            .unwrap();
        ids.push(job.job.id);
    }
    let mut queues = Vec::new();
    for _ in 0..workers {
        queues.push(Arc::new(open().await));
    }
    let finished = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (w, queue) in queues.iter().enumerate() {
        for slot in 0..slots {
            let (queue, finished) = (queue.clone(), finished.clone());
            tasks.push(tokio::spawn(async move {
                let name = format!("worker-{w}-{slot}");
                let mut latencies = Vec::new();
                loop {
                    let claim_started = Instant::now();
                    let Some(claimed) = queue.claim(&name).await.unwrap() else {
                        return latencies;
                    };
                    let report = PairingReport::of("deliveroo", Outcome::Paired);
                    queue
                        .finish(&claimed.lease, RunResult::reported(report))
                        .await
                        .unwrap();
                    latencies.push(claim_started.elapsed());
                    finished.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let mut not_once = 0;
    for id in &ids {
        let job = setup.job(ORG, id).await.unwrap().unwrap();
        if job.state != JobState::Succeeded || job.attempts != 1 {
            not_once += 1;
        }
    }
    let done = finished.load(Ordering::Relaxed);
    println!(
        "{workers} workers × {slots} slots, {jobs} jobs on PostgreSQL, no browser: {done} finished in {:.2} s = {:.0} claims/s; claim+finish p50 {:.1} ms p90 {:.1} ms p99 {:.1} ms; jobs not run exactly once: {not_once}",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.9).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
    );
    assert_eq!(done, jobs, "every job finished");
    assert_eq!(not_once, 0, "double or missed claims");
    for queue in queues {
        queue.close().await;
    }
    setup.close().await;
}
