//! The queue conformance fixture, shared by the suites that run every case on SQLite and on the
//! real PostgreSQL server, on a fake clock, so both backends are held to the same behaviour.

#![allow(dead_code)]

use chrono::TimeZone;
use secrecy::SecretString;

use super::databases::TestDatabase;
use pairing_worker::browser::BrowserError;
pub use pairing_worker::engine::pairing::PairingReport;
use pairing_worker::outcome::{InvalidCredentials, Outcome, StoreConfig};
pub use pairing_worker::queue::RunError;
use pairing_worker::queue::{
    AccountSecrets, Change, Clock, JobKind, Key, KeyRing, NewAccount, Queue, QueueConfig,
    RunResult, StoreRef,
};
use pairing_worker::secret::Credentials;

pub const ORG: &str = "org-a";
pub const WRONG_PASSWORD: Outcome = Outcome::InvalidCredentials(InvalidCredentials::WrongPassword);
pub const INACTIVE: Outcome = Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive);

pub struct Fixture {
    /// Shared, so a test's background loops use this very handle (one SQLite writer).
    pub queue: std::sync::Arc<Queue>,
    pub clock: Clock,
    pub db: TestDatabase,
    pub key_line: String,
}

pub async fn fixture(db: TestDatabase) -> Fixture {
    let clock = Clock::fake(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 28, 12, 0, 0)
            .unwrap(),
    );
    let key_line = Key::generate_line();
    let queue = Queue::open_with_clock(
        &db.url,
        KeyRing::parse(&key_line, None).unwrap(),
        QueueConfig::default(),
        clock.clone(),
    )
    .await
    .expect("queue opens");
    Fixture {
        queue: std::sync::Arc::new(queue),
        clock,
        db,
        key_line,
    }
}

pub fn secrets(password: &str) -> AccountSecrets {
    AccountSecrets {
        credentials: Credentials {
            username: "owner@example.test".into(),
            password: SecretString::from(password.to_string()),
        },
        totp: Some(SecretString::from("JBSWY3DPEHPK3PXP".to_string())),
        mailbox: None,
    }
}

pub async fn account(queue: &Queue, organisation: &str) -> String {
    queue
        .create_account(NewAccount {
            organisation: organisation.into(),
            provider: "deliveroo".into(),
            secrets: secrets("Canary-Password-8c1f"),
            stores: vec![StoreRef {
                id: "st-1".into(),
                location: "Camden".into(),
                brand: "Burger Lab".into(),
            }],
        })
        .await
        .unwrap()
        .id
}

pub fn finished(outcome: Outcome) -> RunResult {
    RunResult::reported(PairingReport::of("deliveroo", outcome))
}

/// A run whose browser went away: no outcome, retried.
pub fn browser_lost(reason: &str) -> RunResult {
    RunResult::Failed(RunError::Browser(BrowserError::Unreachable {
        url: "http://127.0.0.1:9515".into(),
        reason: reason.into(),
    }))
}

/// The merchant enters a new password (after a rejected one, nothing logs in with the old).
pub async fn new_password(f: &Fixture, account: &str) {
    let update = pairing_worker::queue::AccountUpdate {
        credentials: Some(secrets("Canary-Password-2d9e").credentials),
        ..Default::default()
    };
    f.queue.update_account(ORG, account, update).await.unwrap();
}

/// Runs one job of `kind` for the account to the given outcome.
pub async fn run_to(f: &Fixture, account: &str, kind: JobKind, outcome: Outcome) -> Change {
    let job = f.queue.submit(ORG, account, kind, false).await.unwrap().job;
    let claimed = f.queue.claim("w1").await.unwrap().expect("ready job");
    assert_eq!(claimed.job.id, job.id);
    f.queue
        .finish(&claimed.lease, finished(outcome))
        .await
        .unwrap();
    f.queue.history(account, 1).await.unwrap()[0].change
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::fixture(super::TestDatabase::sqlite()).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(db) = super::TestDatabase::postgres().await else { return };
                    super::$case(super::fixture(db).await).await;
                }
            )*
        }
    };
}
