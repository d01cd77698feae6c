//! Queue cost per job: submit, then claim + finish, on SQLite (a file) and on the local
//! PostgreSQL server (skipped when none answers). Setup (accounts, jobs) is not timed.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use secrecy::SecretString;

use pairing_worker::engine::pairing::PairingReport;
use pairing_worker::outcome::Outcome;
use pairing_worker::queue::{
    AccountSecrets, JobKind, Key, KeyRing, NewAccount, Queue, QueueConfig, RunResult,
};
use pairing_worker::secret::Credentials;

#[path = "../tests/support/databases.rs"]
mod databases;

const ORG: &str = "bench";

async fn accounts(queue: &Queue, n: u64) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        let account = queue
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
        ids.push(account.id);
    }
    ids
}

fn report() -> RunResult {
    RunResult::reported(PairingReport::of("deliveroo", Outcome::Paired))
}

fn bench_backend(c: &mut Criterion, name: &str, db: databases::TestDatabase) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let keys = KeyRing::parse(&Key::generate_line(), None).unwrap();
    let queue = runtime
        .block_on(Queue::open(&db.url, keys, QueueConfig::default()))
        .unwrap();
    let mut group = c.benchmark_group(format!("queue/{name}"));
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("submit", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let ids = accounts(&queue, iters).await;
                let started = Instant::now();
                for id in &ids {
                    queue
                        .submit(ORG, id, JobKind::Recheck, false)
                        .await
                        .unwrap();
                }
                let elapsed = started.elapsed();
                // Drain so the next batch starts from an empty queue.
                while let Some(claimed) = queue.claim("bench").await.unwrap() {
                    queue.finish(&claimed.lease, report()).await.unwrap();
                }
                elapsed
            })
        })
    });
    group.bench_function("claim_and_finish", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let ids = accounts(&queue, iters).await;
                for id in &ids {
                    queue.submit(ORG, id, JobKind::Pair, true).await.unwrap();
                }
                let started = Instant::now();
                for _ in 0..iters {
                    let claimed = queue.claim("bench").await.unwrap().expect("queued job");
                    queue.finish(&claimed.lease, report()).await.unwrap();
                }
                started.elapsed()
            })
        })
    });
    // What the lockout guard adds to a login: the durable record made before the password is
    // sent (an fsynced commit on SQLite), measured alone between a claim and its finish.
    group.bench_function("password_submitting", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let ids = accounts(&queue, iters).await;
                for id in &ids {
                    queue.submit(ORG, id, JobKind::Pair, true).await.unwrap();
                }
                let mut elapsed = Duration::ZERO;
                for _ in 0..iters {
                    let claimed = queue.claim("bench").await.unwrap().expect("queued job");
                    let started = Instant::now();
                    queue.password_submitting(&claimed.lease).await.unwrap();
                    elapsed += started.elapsed();
                    queue.finish(&claimed.lease, report()).await.unwrap();
                }
                elapsed
            })
        })
    });
    group.finish();
    runtime.block_on(queue.close());
    drop(db);
}

fn queue_costs(c: &mut Criterion) {
    bench_backend(c, "sqlite", databases::TestDatabase::sqlite());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    if let Some(db) = runtime.block_on(databases::TestDatabase::postgres()) {
        drop(runtime);
        bench_backend(c, "postgres", db);
    }
}

criterion_group!(benches, queue_costs);
criterion_main!(benches);
