//! The durable job queue: accounts (secrets encrypted at rest), pairing jobs with leases, the
//! per-account lockout guards, and each account's history. One implementation over sqlx's `Any`
//! driver with one portable schema, so SQLite (embedded default) and PostgreSQL (many workers)
//! run the same SQL and pass the same conformance suite.
//!
//! Split along the tables and a job's life: `accounts`, `jobs` (submit, claim, rescue, cancel,
//! and the start service callers use), `lease` (every write a run holding a job makes),
//! `finish` (a run's end in one transaction), `lockout`, `health`, `audit`, `tokens`, `outbox`
//! (webhook deliveries), `contacts` and `alert_outbox` (who hears of a broken connection, and
//! the messages owed to them), `sealed` (keys in use), `rows` (SQL rows to types), `run` (how a run
//! ended, typed).

mod accounts;
mod alert_outbox;
mod audit;
mod checks;
mod code_wake;
mod contacts;
mod finish;
mod health;
mod inspect;
mod jobs;
pub mod keys;
mod lease;
mod lockout;
mod login_pace;
mod model;
mod outbox;
mod rows;
mod run;
mod sealed;
mod tokens;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Connection, Row};

pub use alert_outbox::{
    confirmable, AlertBatch, AlertDelivery, AlertItem, AlertKind, AlertLogFilter, BatchOutcome,
    CONFIRM_AFTER,
};
pub use audit::AuditEntry;
pub use checks::{CheckDecision, CheckSkipped, ScheduledCheck};
pub use code_wake::CodeWaiter;
pub use contacts::{AlertPreferences, Channel, Contact, ContactFields, Printer, PrinterOf};
pub use inspect::DatabaseState;
pub use jobs::{JobRequest, StartError};
pub use keys::{Key, KeyError, KeyRing};
pub use lockout::SubmissionRefused;
pub use model::*;
pub use outbox::{DeliveryRecord, DueDelivery};
pub use run::{RunError, RunResult};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Time as the queue sees it: the system clock, or a hand-moved one for tests.
#[derive(Clone, Default)]
pub enum Clock {
    #[default]
    System,
    Fake(Arc<AtomicI64>),
}

impl Clock {
    pub fn fake(start: DateTime<Utc>) -> Clock {
        Clock::Fake(Arc::new(AtomicI64::new(start.timestamp_millis())))
    }

    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => Utc::now().timestamp_millis(),
            Clock::Fake(now) => now.load(Ordering::SeqCst),
        }
    }

    /// Moves a fake clock forward (a no-op on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Clock::Fake(now) = self {
            now.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }
}

/// Queue policy. Defaults are chosen to stay under the 3–5 failed logins after which platforms
/// lock accounts, and to retry outages without hammering a portal.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// How long a claim holds without a heartbeat before the job is rescued.
    pub lease: Duration,
    /// Runs of one job (transient retries and rescues included) before it fails for good.
    pub max_attempts: i64,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Failed logins per account per window after which stored credentials are not tried again.
    pub failed_login_budget: i64,
    pub failed_login_window: Duration,
    /// How long a code request blocks new logins when the portal does not say when it expires.
    pub code_hold: Duration,
    /// Time between scheduled health checks of a healthy account, for organisations that set
    /// none of their own.
    pub health_check_every: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(30 * 60),
            failed_login_budget: 2,
            failed_login_window: Duration::from_secs(24 * 3600),
            code_hold: Duration::from_secs(10 * 60),
            health_check_every: Duration::from_secs(6 * 3600),
        }
    }
}

/// Capped exponential backoff with equal jitter: half fixed, half random, so retries spread out
/// but never come sooner than half the nominal delay. `attempt` counts from 1.
pub fn backoff(attempt: i64, base: Duration, cap: Duration, jitter: f64) -> Duration {
    let exponent = attempt.clamp(1, 32) as u32 - 1;
    let nominal = base.saturating_mul(2u32.saturating_pow(exponent)).min(cap);
    nominal / 2 + nominal.mul_f64(jitter.clamp(0.0, 1.0) / 2.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

pub struct Queue {
    pool: AnyPool,
    backend: Backend,
    keys: Arc<KeyRing>,
    clock: Clock,
    config: QueueConfig,
    /// Bumped on every job change this process makes, so its own waiters (idle slots, the code
    /// bridge, API long-polls) wake at once; changes by other processes are seen by polling.
    changes: tokio::sync::watch::Sender<u64>,
    /// Runs of this process waiting for a merchant's code, by job: a code submitted here is
    /// handed to them at once (the database stays the record, and the path across processes).
    code_waiters: code_wake::Waiters,
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the database {url}: {reason}")]
    Open { url: String, reason: String },
    #[error("{url} is not a pairing-worker database (it has other tables: {tables}); refusing to touch it")]
    Foreign { url: String, tables: String },
    #[error("cannot migrate the database {url}: {reason}")]
    Migrate { url: String, reason: String },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("unknown account {0}")]
    UnknownAccount(String),
    #[error("unknown job {0}")]
    UnknownJob(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
}

/// Why a job's holder may no longer write it: the lease expired and the job was rescued, or the
/// job was cancelled.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the lease on job {job} is no longer held (expired, rescued or cancelled)")]
pub struct LeaseLost {
    pub job: String,
}

impl Queue {
    /// Opens (creating a SQLite file if needed) and migrates the database, then checks that the
    /// key ring can read every secret in it, before anything is written.
    pub async fn open(url: &str, keys: KeyRing, config: QueueConfig) -> Result<Queue, QueueError> {
        Queue::open_with_clock(url, keys, config, Clock::System).await
    }

    pub async fn open_with_clock(
        url: &str,
        keys: KeyRing,
        config: QueueConfig,
        clock: Clock,
    ) -> Result<Queue, QueueError> {
        sqlx::any::install_default_drivers();
        let shown = redact_url(url);
        let (backend, connect_url) = connect_url(url)?;
        let open_error = |e: sqlx::Error| QueueError::Open {
            url: shown.clone(),
            reason: e.to_string(),
        };
        // One direct connection first: a corrupt file or a refused login fails here, clearly,
        // instead of as a pool timeout.
        {
            let mut probe = sqlx::AnyConnection::connect(&connect_url)
                .await
                .map_err(open_error)?;
            let check = match backend {
                Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master",
                Backend::Postgres => "SELECT 1",
            };
            sqlx::query(check)
                .execute(&mut probe)
                .await
                .map_err(open_error)?;
            probe.close().await.map_err(open_error)?;
        }
        // SQLite allows one writer: one connection serialises this process's writes, and the
        // busy timeout (sqlx's default 5 s) covers other processes on the same file.
        let max = if backend == Backend::Sqlite { 1 } else { 8 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        sqlx::query("PRAGMA journal_mode = WAL")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                        // In WAL mode NORMAL never corrupts the file and survives a process
                        // crash; only an OS crash or power cut may roll back the last commits,
                        // which re-runs a job at worst. The commits that guard merchants from
                        // lockout are made durable one by one (see `finish`). FULL on every
                        // commit was most of a job's queue cost.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&connect_url)
            .await
            .map_err(open_error)?;
        let queue = Queue {
            pool,
            backend,
            keys: Arc::new(keys),
            clock,
            config,
            changes: tokio::sync::watch::Sender::new(0),
            code_waiters: code_wake::Waiters::default(),
        };
        queue.refuse_foreign(&shown).await?;
        MIGRATOR
            .run(&queue.pool)
            .await
            .map_err(|e| QueueError::Migrate {
                url: shown.clone(),
                reason: e.to_string(),
            })?;
        queue.check_keys().await?;
        Ok(queue)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn config(&self) -> &QueueConfig {
        &self.config
    }

    /// Changes whenever this process changes a job: wait on it (with a poll interval as the
    /// timeout) instead of sleeping.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn touch(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// One round trip to the database (readiness checks).
    pub async fn ping(&self) -> Result<(), QueueError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// A database with tables but no migration history is someone else's: never migrate into it.
    async fn refuse_foreign(&self, url: &str) -> Result<(), QueueError> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            Backend::Postgres => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()"
            }
        };
        let tables: Vec<String> = sqlx::query(sql)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| QueueError::Open {
                url: url.to_string(),
                reason: e.to_string(),
            })?
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect();
        if !tables.is_empty() && !tables.iter().any(|t| t == "_sqlx_migrations") {
            return Err(QueueError::Foreign {
                url: url.to_string(),
                tables: tables.join(", "),
            });
        }
        Ok(())
    }
}

/// The backend a database URL names and the URL sqlx connects with (a SQLite file is created
/// when missing).
fn connect_url(url: &str) -> Result<(Backend, String), QueueError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok((Backend::Postgres, url.to_string()));
    }
    let Some(path) = url.strip_prefix("sqlite:") else {
        return Err(QueueError::Open {
            url: redact_url(url),
            reason: "expected sqlite:PATH or postgres://...".into(),
        });
    };
    let path = path.trim_start_matches("//");
    let joiner = if path.contains('?') { '&' } else { '?' };
    let mode = if path.contains("mode=") {
        ""
    } else {
        "mode=rwc"
    };
    Ok((Backend::Sqlite, format!("sqlite://{path}{joiner}{mode}")))
}

/// Time-ordered (UUIDv7, monotonic within a process): rows written in the same millisecond still
/// sort in the order they were written, which the history's "latest" relies on.
fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn secrets_context(account_id: &str) -> String {
    format!("account:{account_id}")
}

fn code_context(job_id: &str) -> String {
    format!("job-code:{job_id}")
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The URL without its password, for errors and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("REDACTED"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
