//! The per-provider login pace, on SQLite and the real PostgreSQL server with a fake clock: a
//! burst of the quota, then one login per interval; providers apart; and several workers (queue
//! handles with their own connections) taking turns at the same instant never exceed the quota
//! together.

#[path = "support/databases.rs"]
mod databases;
#[macro_use]
#[path = "support/conformance.rs"]
mod conformance;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use conformance::*;
use databases::TestDatabase;
use pairing_worker::queue::{KeyRing, Queue, QueueConfig};

conformance!(
    a_burst_of_the_quota_then_one_login_per_interval,
    providers_are_paced_apart,
    workers_on_one_database_share_the_quota,
);

fn per_minute(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// One login turn of `provider` at `n` a minute: `None` when taken, else the wait.
async fn turn(f: &Fixture, provider: &str, n: u32) -> Option<Duration> {
    f.queue
        .take_login_turn(provider, per_minute(n))
        .await
        .unwrap()
}

async fn a_burst_of_the_quota_then_one_login_per_interval(f: Fixture) {
    for _ in 0..6 {
        assert_eq!(turn(&f, "deliveroo", 6).await, None);
    }
    let wait = turn(&f, "deliveroo", 6).await;
    assert_eq!(
        wait,
        Some(Duration::from_secs(10)),
        "one per 10 s after the burst"
    );
    f.clock.advance(Duration::from_secs(9));
    assert_eq!(turn(&f, "deliveroo", 6).await, Some(Duration::from_secs(1)));
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(turn(&f, "deliveroo", 6).await, None);
    assert!(turn(&f, "deliveroo", 6).await.is_some());
    // A quiet minute refills the burst, no more.
    f.clock.advance(Duration::from_secs(120));
    for _ in 0..6 {
        assert_eq!(turn(&f, "deliveroo", 6).await, None);
    }
    assert!(turn(&f, "deliveroo", 6).await.is_some());
}

async fn providers_are_paced_apart(f: Fixture) {
    for _ in 0..3 {
        assert_eq!(turn(&f, "doordash", 3).await, None);
    }
    assert!(turn(&f, "doordash", 3).await.is_some());
    assert_eq!(turn(&f, "grubhub", 3).await, None);
}

async fn workers_on_one_database_share_the_quota(f: Fixture) {
    const QUOTA: u32 = 7;
    let mut workers = vec![f.queue.clone()];
    for _ in 0..2 {
        let other = Queue::open_with_clock(
            &f.db.url,
            KeyRing::parse(&f.key_line, None).unwrap(),
            QueueConfig::default(),
            f.clock.clone(),
        )
        .await
        .unwrap();
        workers.push(Arc::new(other));
    }
    // Thirty logins wanted at one instant, ten from each worker, all at once.
    let mut attempts = Vec::new();
    for worker in &workers {
        for _ in 0..10 {
            let worker = worker.clone();
            attempts.push(tokio::spawn(async move {
                worker
                    .take_login_turn("ubereats", per_minute(QUOTA))
                    .await
                    .unwrap()
            }));
        }
    }
    let mut granted = 0;
    for attempt in attempts {
        if attempt.await.unwrap().is_none() {
            granted += 1;
        }
    }
    assert_eq!(
        granted, QUOTA,
        "the quota is the fleet's, not each worker's"
    );
    for worker in &workers[1..] {
        worker.close().await;
    }
}
