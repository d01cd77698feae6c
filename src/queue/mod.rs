//! The durable job queue: accounts (secrets encrypted at rest), pairing jobs with leases, the
//! per-account lockout guards, and each account's history. One implementation over sqlx's `Any`
//! driver with one portable schema, so SQLite (embedded default) and PostgreSQL (many workers)
//! run the same SQL and pass the same conformance suite.

pub mod keys;
mod lockout;
mod model;
mod outbox;
mod tokens;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Connection, Row};
use zeroize::Zeroizing;

pub use keys::{Key, KeyError, KeyRing};
pub use lockout::SubmissionRefused;
pub use model::*;
pub use outbox::{DeliveryRecord, DueDelivery};
pub use tokens::AuditEntry;

use crate::codes::MailboxConfig;
use crate::outcome::{CodeRequest, Outcome, QueueAction, TwoFactor};
use crate::secret::Credentials;

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
        let (backend, connect_url) =
            if url.starts_with("postgres://") || url.starts_with("postgresql://") {
                (Backend::Postgres, url.to_string())
            } else if let Some(path) = url.strip_prefix("sqlite:") {
                let path = path.trim_start_matches("//");
                let joiner = if path.contains('?') { '&' } else { '?' };
                let mode = if path.contains("mode=") {
                    ""
                } else {
                    "mode=rwc"
                };
                (Backend::Sqlite, format!("sqlite://{path}{joiner}{mode}"))
            } else {
                return Err(QueueError::Open {
                    url: shown,
                    reason: "expected sqlite:PATH or postgres://...".into(),
                });
            };
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

    /// Every key id used in the database must be configured, and a configured key must be the
    /// same key that first sealed under its id. Only then is the current key recorded.
    async fn check_keys(&self) -> Result<(), QueueError> {
        let rows = sqlx::query("SELECT key_id, key_check FROM encryption_keys")
            .fetch_all(&self.pool)
            .await?;
        for row in &rows {
            let id: String = row.get(0);
            if let Some(key) = self.keys.get(&id) {
                key.open(&row.get::<String, _>(1), "key-check")
                    .map_err(|_| KeyError::WrongKey(id.clone()))?;
            }
        }
        let unknown: Vec<String> = self
            .key_ids_in_use()
            .await?
            .into_iter()
            .filter(|id| self.keys.get(id).is_none())
            .collect();
        if !unknown.is_empty() {
            return Err(KeyError::UnknownKeyIds(unknown.join(", ")).into());
        }
        let current = &self.keys.current;
        sqlx::query(
            "INSERT INTO encryption_keys (key_id, key_check, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(&current.id)
        .bind(current.seal(keys::KEY_CHECK, "key-check"))
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ---- accounts ----

    pub async fn create_account(&self, new: NewAccount) -> Result<Account, QueueError> {
        let id = new_id();
        let now = self.clock.now_ms();
        let secrets = self.seal_secrets(&id, &new.secrets);
        sqlx::query(
            "INSERT INTO accounts (id, organisation, provider, secrets, key_id, credentials_version, \
             stores, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&new.organisation)
        .bind(&new.provider)
        .bind(secrets)
        .bind(&self.keys.current.id)
        .bind(serde_json::to_string(&new.stores).expect("stores serialise"))
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.account(&new.organisation, &id)
            .await?
            .ok_or(QueueError::UnknownAccount(id))
    }

    /// Applies an update; new credentials bump the credentials version, which lifts the block a
    /// rejected password put on automatic logins.
    pub async fn update_account(
        &self,
        organisation: &str,
        id: &str,
        update: AccountUpdate,
    ) -> Result<Account, QueueError> {
        let unknown = || QueueError::UnknownAccount(id.to_string());
        self.account(organisation, id).await?.ok_or_else(unknown)?;
        let mut secrets = self.account_secrets(id).await?.ok_or_else(unknown)?;
        let new_credentials = update.credentials.is_some();
        if let Some(credentials) = update.credentials {
            secrets.credentials = credentials;
        }
        if let Some(totp) = update.totp {
            secrets.totp = totp;
        }
        if let Some(mailbox) = update.mailbox {
            secrets.mailbox = mailbox;
        }
        let stores = update
            .stores
            .map(|stores| serde_json::to_string(&stores).expect("stores serialise"));
        let done = sqlx::query(
            "UPDATE accounts SET secrets = $1, key_id = $2, \
             credentials_version = credentials_version + $3, \
             stores = COALESCE($4, stores), updated_at = $5 \
             WHERE id = $6 AND organisation = $7",
        )
        .bind(self.seal_secrets(id, &secrets))
        .bind(&self.keys.current.id)
        .bind(i64::from(new_credentials))
        .bind(stores)
        .bind(self.clock.now_ms())
        .bind(id)
        .bind(organisation)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(unknown());
        }
        self.account(organisation, id).await?.ok_or_else(unknown)
    }

    /// Deletes the account, its jobs, codes and history: the ciphertext is gone with the row.
    pub async fn delete_account(&self, organisation: &str, id: &str) -> Result<bool, QueueError> {
        let done = sqlx::query("DELETE FROM accounts WHERE id = $1 AND organisation = $2")
            .bind(id)
            .bind(organisation)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn account(
        &self,
        organisation: &str,
        id: &str,
    ) -> Result<Option<Account>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1 AND organisation = $2"
        ))
        .bind(id)
        .bind(organisation)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| self.account_from_row(&row)).transpose()
    }

    pub async fn accounts(&self, organisation: &str) -> Result<Vec<Account>, QueueError> {
        sqlx::query(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE organisation = $1 ORDER BY created_at, id"
        ))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| self.account_from_row(row))
        .collect()
    }

    fn account_from_row(&self, row: &AnyRow) -> Result<Account, QueueError> {
        let stores: String = row.get("stores");
        let now = self.clock.now_ms();
        Ok(Account {
            id: row.get("id"),
            organisation: row.get("organisation"),
            provider: row.get("provider"),
            stores: serde_json::from_str(&stores)
                .map_err(|e| QueueError::Corrupt(format!("account stores: {e}")))?,
            credentials_version: row.get("credentials_version"),
            credentials_rejected: row.get::<Option<i64>, _>("rejected_version")
                == Some(row.get("credentials_version")),
            code_pending_until: row
                .get::<Option<i64>, _>("code_pending_until")
                .filter(|until| *until > now)
                .map(time),
            created_at: time(row.get("created_at")),
            updated_at: time(row.get("updated_at")),
        })
    }

    /// Decrypts an account's secrets for the one job that needs them.
    pub async fn account_secrets(&self, id: &str) -> Result<Option<AccountSecrets>, QueueError> {
        let Some(row) = sqlx::query("SELECT secrets, key_id FROM accounts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let plain = self.keys.open(
            &row.get::<String, _>(1),
            &row.get::<String, _>(0),
            &secrets_context(id),
        )?;
        let stored: StoredSecrets = serde_json::from_slice(&plain)
            .map_err(|e| QueueError::Corrupt(format!("account secrets: {e}")))?;
        Ok(Some(stored.into_secrets()))
    }

    /// Opens a sealed text secret (a code, a webhook secret) straight into a `SecretString`.
    fn open_text(
        &self,
        key_id: &str,
        sealed: &str,
        context: &str,
        what: &str,
    ) -> Result<SecretString, QueueError> {
        let plain = self.keys.open(key_id, sealed, context)?;
        let text =
            String::from_utf8(plain.to_vec()).map_err(|_| QueueError::Corrupt(what.to_string()))?;
        Ok(SecretString::from(text))
    }

    fn seal_secrets(&self, id: &str, secrets: &AccountSecrets) -> String {
        let stored = StoredSecrets::from_secrets(secrets);
        let plain = Zeroizing::new(serde_json::to_vec(&stored).expect("secrets serialise"));
        self.keys.current.seal(&plain, &secrets_context(id))
    }

    // ---- jobs ----

    /// Queues a job, unless the account already has a live one (that one is returned: one job
    /// per account at a time, across all workers) or the lockout guards refuse it.
    pub async fn submit(
        &self,
        organisation: &str,
        account_id: &str,
        kind: JobKind,
        interactive: bool,
    ) -> Result<Submitted, SubmitError> {
        loop {
            let account = self
                .account(organisation, account_id)
                .await?
                .ok_or_else(|| QueueError::UnknownAccount(account_id.to_string()))?;
            if let Some(live) = self.live_job(account_id).await? {
                return Ok(Submitted {
                    job: live,
                    created: false,
                });
            }
            if kind == JobKind::Recheck {
                self.stored_credentials_allowed(&account).await?;
            }
            let id = new_id();
            let now = self.clock.now_ms();
            let inserted = sqlx::query(
                "INSERT INTO jobs (id, account_id, kind, interactive, state, credentials_version, \
                 run_at, created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', $5, $6, $6, $6) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&id)
            .bind(account_id)
            .bind(kind.as_ref())
            .bind(i64::from(interactive))
            .bind(account.credentials_version)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(QueueError::from)?;
            if inserted.rows_affected() == 1 {
                let job = self
                    .job_by_id(&id)
                    .await?
                    .ok_or(QueueError::UnknownJob(id))?;
                self.touch();
                return Ok(Submitted { job, created: true });
            }
            // Another submit won the race: loop to return its job (or, if it already finished,
            // to queue ours).
        }
    }

    /// The account's queued, running or code-awaiting job, if any.
    pub async fn live_job(&self, account_id: &str) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.account_id = $1 AND j.state IN ('queued', 'running', 'awaiting_code')"
        ))
        .bind(account_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    /// A job of the organisation (`None` for another organisation's job, as for a missing one).
    pub async fn job(&self, organisation: &str, id: &str) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.id = $1 AND a.organisation = $2"
        ))
        .bind(id)
        .bind(organisation)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    async fn job_by_id(&self, id: &str) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id WHERE j.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| job_from_row(&row)).transpose()
    }

    pub async fn jobs_of_account(
        &self,
        organisation: &str,
        account_id: &str,
    ) -> Result<Vec<Job>, QueueError> {
        sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.account_id = $1 AND a.organisation = $2 ORDER BY j.created_at, j.id"
        ))
        .bind(account_id)
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(job_from_row)
        .collect()
    }

    /// Counts jobs per state (for metrics and the crash test).
    pub async fn count_by_state(&self) -> Result<Vec<(JobState, i64)>, QueueError> {
        sqlx::query("SELECT state, COUNT(*) FROM jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let state: String = row.get(0);
                let state = state
                    .parse()
                    .map_err(|_| QueueError::Corrupt(format!("job state `{state}`")))?;
                Ok((state, row.get(1)))
            })
            .collect()
    }

    /// Finished runs by provider and outcome (`error` for runs that ended without one).
    pub async fn outcome_counts(&self) -> Result<Vec<(String, String, i64)>, QueueError> {
        Ok(sqlx::query(
            "SELECT a.provider, COALESCE(j.outcome, 'error'), COUNT(*) FROM jobs j \
             JOIN accounts a ON a.id = j.account_id WHERE j.finished_at IS NOT NULL \
             GROUP BY a.provider, COALESCE(j.outcome, 'error') ORDER BY 1, 2",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect())
    }

    /// Takes the next ready job under a fresh lease. Expired leases are rescued first; a claimed
    /// re-check whose account may no longer be logged into automatically fails at once.
    pub async fn claim(&self, worker: &str) -> Result<Option<Claimed>, QueueError> {
        loop {
            self.rescue_expired().await?;
            let now = self.clock.now_ms();
            let token = uuid::Uuid::new_v4().simple().to_string(); // unguessable, unlike ids
            let skip_locked = match self.backend {
                Backend::Postgres => "FOR UPDATE OF j SKIP LOCKED",
                Backend::Sqlite => "",
            };
            let row = sqlx::query(&format!(
                "UPDATE jobs SET state = 'running', lease_token = $1, lease_expires = $2, \
                 worker = $3, attempts = attempts + 1, updated_at = $4, started_at = $4 \
                 WHERE id = (SELECT j.id FROM jobs j JOIN accounts a ON a.id = j.account_id \
                   WHERE j.state = 'queued' AND j.run_at <= $4 \
                   AND (a.code_pending_until IS NULL OR a.code_pending_until <= $4) \
                   ORDER BY j.run_at, j.created_at LIMIT 1 {skip_locked}) \
                 AND state = 'queued' RETURNING id"
            ))
            .bind(&token)
            .bind(now + self.config.lease.as_millis() as i64)
            .bind(worker)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
            let Some(row) = row else {
                if self.any_ready().await? {
                    continue; // lost a race for the same row: try the next one
                }
                return Ok(None);
            };
            let id: String = row.get(0);
            let job = self
                .job_by_id(&id)
                .await?
                .ok_or_else(|| QueueError::UnknownJob(id.clone()))?;
            let lease = Lease { job: id, token };
            // A code submitted to an earlier run belongs to that run's login: typing it into this
            // one would spend one of the portal's code attempts for nothing.
            sqlx::query("DELETE FROM job_codes WHERE job_id = $1")
                .bind(&lease.job)
                .execute(&self.pool)
                .await?;
            // Every automatic login is held to the guards: a re-check, and any run after the
            // first (a retry or a rescue may follow a password whose verdict never came).
            if self.is_automatic(&job.id, job.kind, job.attempts).await? {
                let account = self.account(&job.organisation, &job.account_id).await?;
                let refusal = match account {
                    Some(account) => self.stored_credentials_allowed(&account).await.err(),
                    None => None,
                };
                if let Some(refusal) = refusal {
                    self.finish(&lease, RunResult::Refused(refusal.to_string()))
                        .await
                        .ok();
                    continue;
                }
            }
            self.emit_job(&job).await;
            return Ok(Some(Claimed { job, lease }));
        }
    }

    async fn any_ready(&self) -> Result<bool, QueueError> {
        let now = self.clock.now_ms();
        let count: i64 = sqlx::query(
            "SELECT COUNT(*) FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.state = 'queued' AND j.run_at <= $1 \
             AND (a.code_pending_until IS NULL OR a.code_pending_until <= $1)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        Ok(count > 0)
    }

    /// Puts jobs whose worker stopped heartbeating back in the queue (or fails them once they
    /// have used all their attempts). Returns how many were rescued.
    pub async fn rescue_expired(&self) -> Result<u64, QueueError> {
        let now = self.clock.now_ms();
        // Every idle slot calls this on every poll: a read answers "nothing to rescue" without
        // a write transaction (and its fsync) almost every time.
        let expired: i64 = sqlx::query(
            "SELECT COUNT(*) FROM jobs \
             WHERE state IN ('running', 'awaiting_code') AND lease_expires < $1",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        if expired == 0 {
            return Ok(0);
        }
        let failed = sqlx::query(
            "UPDATE jobs SET state = 'failed', lease_token = NULL, code_request = NULL, code_verdict = NULL, \
             error = 'the worker running it stopped responding, too many times', \
             finished_at = $1, updated_at = $1 \
             WHERE state IN ('running', 'awaiting_code') AND lease_expires < $1 AND attempts >= $2",
        )
        .bind(now)
        .bind(self.config.max_attempts)
        .execute(&self.pool)
        .await?;
        let requeued = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_token = NULL, code_request = NULL, code_verdict = NULL, \
             run_at = $1, updated_at = $1 \
             WHERE state IN ('running', 'awaiting_code') AND lease_expires < $1",
        )
        .bind(now)
        .execute(&self.pool)
        .await?;
        let rescued = failed.rows_affected() + requeued.rows_affected();
        if rescued > 0 {
            self.touch();
            tracing::warn!(rescued, "rescued jobs whose worker stopped heartbeating");
        }
        Ok(rescued)
    }

    /// Extends the lease; fails once it is no longer ours.
    pub async fn heartbeat(&self, lease: &Lease) -> Result<(), HeartbeatError> {
        let now = self.clock.now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires = $1 WHERE id = $2 AND lease_token = $3 \
             AND state IN ('running', 'awaiting_code')",
        )
        .bind(now + self.config.lease.as_millis() as i64)
        .bind(&lease.job)
        .bind(&lease.token)
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        lease_held(lease, done.rows_affected())
    }

    /// The job now waits for a code: visible to the dashboard, and no login for this account
    /// starts until the code is used or expires.
    pub async fn await_code(
        &self,
        lease: &Lease,
        request: &CodeRequest,
        previous: Option<Outcome>,
    ) -> Result<(), HeartbeatError> {
        let now = self.clock.now_ms();
        let until = self.code_pending_until(Some(request));
        let done = sqlx::query(
            "UPDATE jobs SET state = 'awaiting_code', code_request = $1, code_verdict = $5, \
             updated_at = $2 \
             WHERE id = $3 AND lease_token = $4 AND state IN ('running', 'awaiting_code')",
        )
        .bind(serde_json::to_string(request).expect("code request serialises"))
        .bind(now)
        .bind(&lease.job)
        .bind(&lease.token)
        .bind(previous.map(|o| o.to_string()))
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        lease_held(lease, done.rows_affected())?;
        sqlx::query(
            "UPDATE accounts SET code_pending_until = $1 \
             WHERE id = (SELECT account_id FROM jobs WHERE id = $2)",
        )
        .bind(until)
        .bind(&lease.job)
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        if let Some(job) = self.job_by_id(&lease.job).await? {
            self.emit_job(&job).await;
        }
        Ok(())
    }

    fn code_pending_until(&self, request: Option<&CodeRequest>) -> i64 {
        request
            .and_then(|r| r.expires_at)
            .map(|at| at.timestamp_millis())
            .unwrap_or_else(|| self.clock.now_ms() + self.config.code_hold.as_millis() as i64)
    }

    /// The merchant's code for a job awaiting one. Checked against the request's shape before
    /// it is stored (encrypted) for the worker: a typo must not cost a portal attempt.
    pub async fn submit_code(
        &self,
        organisation: &str,
        job_id: &str,
        code: &SecretString,
    ) -> Result<(), CodeError> {
        let job = self
            .job(organisation, job_id)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(job_id.to_string()))?;
        let request = match (&job.state, &job.code_request) {
            (JobState::AwaitingCode, Some(request)) => request,
            _ => return Err(CodeError::NotAwaiting { state: job.state }),
        };
        let code = crate::codes::check_code_shape(request, code)?;
        let sealed = self
            .keys
            .current
            .seal(code.expose_secret().as_bytes(), &code_context(job_id));
        let inserted = sqlx::query(
            "INSERT INTO job_codes (job_id, code, key_id, submitted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT DO NOTHING",
        )
        .bind(job_id)
        .bind(sealed)
        .bind(&self.keys.current.id)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        if inserted.rows_affected() == 0 {
            return Err(CodeError::AlreadySubmitted);
        }
        self.touch();
        Ok(())
    }

    /// Takes (and deletes) the submitted code, if any, for the lease holder.
    pub async fn take_code(&self, lease: &Lease) -> Result<Option<SecretString>, HeartbeatError> {
        self.heartbeat(lease).await?;
        let row = sqlx::query("DELETE FROM job_codes WHERE job_id = $1 RETURNING code, key_id")
            .bind(&lease.job)
            .fetch_optional(&self.pool)
            .await
            .map_err(QueueError::from)?;
        let Some(row) = row else { return Ok(None) };
        let code = self.open_text(
            &row.get::<String, _>(1),
            &row.get::<String, _>(0),
            &code_context(&lease.job),
            "submitted code",
        )?;
        Ok(Some(code))
    }

    /// The code was typed: the job is running again.
    pub async fn code_taken(&self, lease: &Lease) -> Result<(), HeartbeatError> {
        let done = sqlx::query(
            "UPDATE jobs SET state = 'running', code_request = NULL, code_verdict = NULL, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND state IN ('running', 'awaiting_code')",
        )
        .bind(self.clock.now_ms())
        .bind(&lease.job)
        .bind(&lease.token)
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        self.touch();
        lease_held(lease, done.rows_affected())
    }

    /// Gives a claimed job back untouched (graceful shutdown): the attempt does not count.
    pub async fn release(&self, lease: &Lease) -> Result<(), HeartbeatError> {
        let now = self.clock.now_ms();
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', lease_token = NULL, code_request = NULL, code_verdict = NULL, \
             attempts = attempts - 1, run_at = $1, updated_at = $1 \
             WHERE id = $2 AND lease_token = $3 AND state IN ('running', 'awaiting_code')",
        )
        .bind(now)
        .bind(&lease.job)
        .bind(&lease.token)
        .execute(&self.pool)
        .await
        .map_err(QueueError::from)?;
        self.touch();
        lease_held(lease, done.rows_affected())
    }

    /// Cancels a live job. A worker running it loses its lease and stops at its next heartbeat.
    pub async fn cancel(&self, organisation: &str, job_id: &str) -> Result<Job, QueueError> {
        let now = self.clock.now_ms();
        let cancelled = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_token = NULL, code_request = NULL, code_verdict = NULL, \
             finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND state IN ('queued', 'running', 'awaiting_code') \
             AND account_id IN (SELECT id FROM accounts WHERE organisation = $3)",
        )
        .bind(now)
        .bind(job_id)
        .bind(organisation)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        // Another organisation's cancel must not touch this job's code either.
        sqlx::query(
            "DELETE FROM job_codes WHERE job_id = $1 AND job_id IN (SELECT j.id FROM jobs j \
             JOIN accounts a ON a.id = j.account_id WHERE a.organisation = $2)",
        )
        .bind(job_id)
        .bind(organisation)
        .execute(&self.pool)
        .await?;
        let job = self
            .job(organisation, job_id)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(job_id.to_string()))?;
        if cancelled {
            self.emit_job(&job).await;
        }
        Ok(job)
    }

    /// Records how a run ended; the outcome table decides whether the job is final or retried.
    /// Rejected when the lease is no longer held: a rescued job's old worker cannot overwrite
    /// the new run.
    pub async fn finish(&self, lease: &Lease, result: RunResult) -> Result<Job, HeartbeatError> {
        let job = self
            .job_by_id(&lease.job)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(lease.job.clone()))?;
        let now = self.clock.now_ms();
        let (outcome, report, error) = match &result {
            RunResult::Finished { outcome, report } => (Some(*outcome), Some(report), None),
            RunResult::Infrastructure(e) | RunResult::Refused(e) => (None, None, Some(e.clone())),
        };
        let retry = match &result {
            RunResult::Finished { outcome, .. } => {
                outcome.decision().queue == QueueAction::RetryWithBackoff
            }
            RunResult::Infrastructure(_) => true,
            RunResult::Refused(_) => false,
        } && job.attempts < self.config.max_attempts;
        let (state, run_at, finished_at) = if retry {
            let delay = backoff(
                job.attempts,
                self.config.backoff_base,
                self.config.backoff_cap,
                rand::rng().random(),
            );
            (JobState::Queued, now + delay.as_millis() as i64, None)
        } else if outcome == Some(Outcome::Paired) {
            (JobState::Succeeded, now, Some(now))
        } else {
            (JobState::Failed, now, Some(now))
        };
        // A failed login (rejected credentials among them) must survive even a power cut: the
        // budget and the "no retry until the credentials change" rule are what keep merchants
        // from being locked out. SQLite fsyncs this one commit; PostgreSQL commits durably anyway.
        let guards_lockout = outcome.is_some_and(|o| o.decision().failed_login);
        let mut conn = if guards_lockout {
            self.durable().await?
        } else {
            self.pool.acquire().await.map_err(QueueError::from)?
        };
        // One transaction: nobody sees the job final without its history and account effects.
        let mut tx = conn.begin().await.map_err(QueueError::from)?;
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, finished_at = $3, outcome = $4, result = $5, \
             error = $6, lease_token = NULL, code_request = NULL, code_verdict = NULL, updated_at = $7 \
             WHERE id = $8 AND lease_token = $9 AND state IN ('running', 'awaiting_code')",
        )
        .bind(state.as_ref())
        .bind(run_at)
        .bind(finished_at)
        .bind(outcome.map(|o| o.to_string()))
        .bind(report.map(|r| r.to_string()))
        .bind(error)
        .bind(now)
        .bind(&lease.job)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await
        .map_err(QueueError::from)?;
        if let (Err(lost), Some(outcome)) = (lease_held(lease, done.rows_affected()), outcome) {
            // Let go of the write lock first (SQLite has one writer).
            tx.rollback().await.map_err(QueueError::from)?;
            if guards_lockout {
                self.end_durable(conn).await;
            } else {
                drop(conn); // SQLite's pool may hold one connection
            }
            self.keep_late_verdict(&job, &lease.token, outcome).await?;
            return Err(lost);
        }
        lease_held(lease, done.rows_affected())?;
        let change = match outcome {
            Some(outcome) => {
                self.settle_submissions(&mut tx, &job, &lease.token, outcome, now)
                    .await?;
                self.record_outcome(&mut tx, &job, outcome, report, now)
                    .await?
            }
            None => None,
        };
        tx.commit().await.map_err(QueueError::from)?;
        if guards_lockout {
            self.end_durable(conn).await;
        } else {
            drop(conn);
        }
        let finished = self
            .job_by_id(&lease.job)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(lease.job.clone()))?;
        self.emit_job(&finished).await;
        let health_event = match change {
            Some(Change::Broke | Change::Changed) => Some("account.unhealthy"),
            Some(Change::Resolved) => Some("account.healthy"),
            _ => None,
        };
        if let Some(event) = health_event {
            let health = self.health(&job.account_id).await?;
            let data = serde_json::json!({ "account_id": job.account_id, "health": health });
            if let Err(error) = self.emit(&job.organisation, event, data).await {
                tracing::warn!(%error, "webhook event not queued");
            }
        }
        Ok(finished)
    }

    /// Queues a `job.updated` webhook event (best effort: the job's own write already happened).
    async fn emit_job(&self, job: &Job) {
        self.touch();
        let data = serde_json::json!({
            "job": {
                "id": job.id,
                "account_id": job.account_id,
                "provider": job.provider,
                "kind": job.kind,
                "state": job.state,
                "outcome": job.outcome.map(|o| o.to_string()),
                "code_request": job.code_request,
                "code_verdict": job.code_verdict.map(|o| o.to_string()),
                "updated_at": job.updated_at,
            }
        });
        if let Err(error) = self.emit(&job.organisation, "job.updated", data).await {
            tracing::warn!(%error, "webhook event not queued");
        }
    }

    /// What an outcome does to its account: lockout guards, the pending-code block, history.
    async fn record_outcome(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        outcome: Outcome,
        report: Option<&serde_json::Value>,
        now: i64,
    ) -> Result<Option<Change>, QueueError> {
        let decision = outcome.decision();
        let rejected = matches!(outcome, Outcome::InvalidCredentials(_));
        // A code the portal sent and nobody typed may still be valid: a new login now would make
        // the portal send another and void it.
        let code_pending = (outcome == Outcome::TwoFactor(TwoFactor::CodeRequired)).then(|| {
            let request = report
                .and_then(|r| r.get("code_request"))
                .and_then(|r| serde_json::from_value::<CodeRequest>(r.clone()).ok());
            self.code_pending_until(request.as_ref())
        });
        sqlx::query(
            "UPDATE accounts SET code_pending_until = $1, \
             rejected_version = CASE WHEN $2 = 1 THEN $3 ELSE rejected_version END \
             WHERE id = $4",
        )
        .bind(code_pending)
        .bind(i64::from(rejected))
        .bind(job.credentials_version)
        .bind(&job.account_id)
        .execute(&mut *conn)
        .await?;
        if decision.queue == QueueAction::RetryWithBackoff {
            return Ok(None); // not a verdict on the account yet
        }
        let previous: Option<Outcome> = sqlx::query(
            "SELECT outcome FROM account_history WHERE account_id = $1 \
             ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(&job.account_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.get::<String, _>(0).parse())
        .transpose()
        .map_err(|_| QueueError::Corrupt("history outcome".into()))?;
        let change = Change::between(previous, outcome);
        sqlx::query(
            "INSERT INTO account_history (id, account_id, job_id, kind, at, outcome, previous, change) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(&job.account_id)
        .bind(&job.id)
        .bind(job.kind.as_ref())
        .bind(now)
        .bind(outcome.to_string())
        .bind(previous.map(|o| o.to_string()))
        .bind(change.as_ref())
        .execute(&mut *conn)
        .await?;
        Ok(Some(change))
    }

    /// The account's latest `limit` verdicts, oldest first.
    pub async fn history(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, QueueError> {
        let mut rows = sqlx::query(
            "SELECT job_id, kind, at, outcome, previous, change FROM account_history \
             WHERE account_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(history_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Every account's health in one organisation, from one query (the alerts page).
    pub async fn healths(
        &self,
        organisation: &str,
    ) -> Result<std::collections::HashMap<String, Health>, QueueError> {
        let rows = sqlx::query(
            "SELECT account_id, job_id, kind, at, outcome, previous, change FROM ( \
               SELECT h.*, ROW_NUMBER() OVER ( \
                 PARTITION BY h.account_id ORDER BY h.at DESC, h.id DESC) AS recent \
               FROM account_history h JOIN accounts a ON a.id = h.account_id \
               WHERE a.organisation = $1) latest \
             WHERE recent <= 200 ORDER BY account_id, at, id",
        )
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?;
        let mut histories: std::collections::HashMap<String, Vec<HistoryEntry>> =
            std::collections::HashMap::new();
        for row in &rows {
            histories
                .entry(row.get("account_id"))
                .or_default()
                .push(history_from_row(row)?);
        }
        Ok(histories
            .into_iter()
            .map(|(account, history)| (account, Health::from_history(&history)))
            .collect())
    }

    /// Every live job of one organisation, by account.
    pub async fn live_jobs(
        &self,
        organisation: &str,
    ) -> Result<std::collections::HashMap<String, Job>, QueueError> {
        sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE a.organisation = $1 AND j.state IN ('queued', 'running', 'awaiting_code')"
        ))
        .bind(organisation)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| job_from_row(row).map(|job| (job.account_id.clone(), job)))
        .collect()
    }

    /// Healthy, or needing attention since the first failure after the last success.
    pub async fn health(&self, account_id: &str) -> Result<Health, QueueError> {
        Ok(Health::from_history(&self.history(account_id, 200).await?))
    }

    /// Re-encrypts every secret not under the current key. Safe to re-run; each row is its own
    /// statement, guarded on the key id it read.
    pub async fn rotate_keys(&self) -> Result<u64, QueueError> {
        // (table, row key column, sealed column, associated-data prefix)
        const SEALED: [(&str, &str, &str, &str); 3] = [
            ("accounts", "id", "secrets", "account"),
            ("job_codes", "job_id", "code", "job-code"),
            ("webhooks", "organisation", "secret", "webhook"),
        ];
        let current = &self.keys.current;
        let mut rotated = 0;
        for (table, key, sealed_column, prefix) in SEALED {
            let rows = sqlx::query(&format!(
                "SELECT {key}, {sealed_column}, key_id FROM {table} WHERE key_id <> $1"
            ))
            .bind(&current.id)
            .fetch_all(&self.pool)
            .await?;
            for row in rows {
                let (id, sealed, key_id): (String, String, String) =
                    (row.get(0), row.get(1), row.get(2));
                let context = format!("{prefix}:{id}");
                let plain = self.keys.open(&key_id, &sealed, &context)?;
                let done = sqlx::query(&format!(
                    "UPDATE {table} SET {sealed_column} = $1, key_id = $2 \
                     WHERE {key} = $3 AND key_id = $4"
                ))
                .bind(current.seal(&plain, &context))
                .bind(&current.id)
                .bind(&id)
                .bind(&key_id)
                .execute(&self.pool)
                .await?;
                rotated += done.rows_affected();
            }
        }
        Ok(rotated)
    }

    /// Key ids still referenced by stored secrets.
    pub async fn key_ids_in_use(&self) -> Result<Vec<String>, QueueError> {
        Ok(sqlx::query(
            "SELECT key_id FROM accounts UNION SELECT key_id FROM job_codes \
             UNION SELECT key_id FROM webhooks ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
    }
}

fn lease_held(lease: &Lease, rows: u64) -> Result<(), HeartbeatError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(HeartbeatError::Lost(LeaseLost {
            job: lease.job.clone(),
        }))
    }
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

const ACCOUNT_COLUMNS: &str = "id, organisation, provider, stores, credentials_version, \
    rejected_version, code_pending_until, created_at, updated_at";

const JOB_COLUMNS: &str = "j.id, j.account_id, a.organisation, a.provider, j.kind, j.interactive, \
    j.state, j.credentials_version, j.attempts, j.run_at, j.code_request, j.code_verdict, j.outcome, j.result, j.error, j.created_at, \
    j.updated_at, j.started_at, j.finished_at";

fn job_from_row(row: &AnyRow) -> Result<Job, QueueError> {
    let corrupt = |what: &str| QueueError::Corrupt(format!("job {what}"));
    let kind: String = row.get("kind");
    let state: String = row.get("state");
    Ok(Job {
        id: row.get("id"),
        account_id: row.get("account_id"),
        organisation: row.get("organisation"),
        provider: row.get("provider"),
        kind: kind.parse().map_err(|_| corrupt("kind"))?,
        interactive: row.get::<i64, _>("interactive") != 0,
        state: state.parse().map_err(|_| corrupt("state"))?,
        credentials_version: row.get("credentials_version"),
        attempts: row.get("attempts"),
        run_at: time(row.get("run_at")),
        code_request: row
            .get::<Option<String>, _>("code_request")
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|_| corrupt("code request"))?,
        code_verdict: row
            .get::<Option<String>, _>("code_verdict")
            .map(|text| text.parse())
            .transpose()
            .map_err(|_| corrupt("code verdict"))?,
        outcome: row
            .get::<Option<String>, _>("outcome")
            .map(|text| text.parse())
            .transpose()
            .map_err(|_| corrupt("outcome"))?,
        result: row
            .get::<Option<String>, _>("result")
            .map(|text| serde_json::from_str(&text))
            .transpose()
            .map_err(|_| corrupt("result"))?,
        error: row.get("error"),
        created_at: time(row.get("created_at")),
        updated_at: time(row.get("updated_at")),
        started_at: row.get::<Option<i64>, _>("started_at").map(time),
        finished_at: row.get::<Option<i64>, _>("finished_at").map(time),
    })
}

fn history_from_row(row: &AnyRow) -> Result<HistoryEntry, QueueError> {
    let corrupt = |what: &str| QueueError::Corrupt(format!("history {what}"));
    let kind: String = row.get("kind");
    let outcome: String = row.get("outcome");
    let change: String = row.get("change");
    Ok(HistoryEntry {
        job_id: row.get("job_id"),
        kind: kind.parse().map_err(|_| corrupt("kind"))?,
        at: time(row.get("at")),
        outcome: outcome.parse().map_err(|_| corrupt("outcome"))?,
        previous: row
            .get::<Option<String>, _>("previous")
            .map(|text| text.parse())
            .transpose()
            .map_err(|_| corrupt("previous"))?,
        change: change.parse().map_err(|_| corrupt("change"))?,
    })
}

/// The secrets as sealed: a plain serde shape, zeroed when dropped.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredSecrets {
    username: String,
    password: String,
    #[serde(default)]
    totp: Option<String>,
    #[serde(default)]
    mailbox: Option<StoredMailbox>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredMailbox {
    host: String,
    port: u16,
    username: String,
    password: String,
    ca_file: Option<std::path::PathBuf>,
    folder: String,
}

impl Drop for StoredSecrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.username.zeroize();
        self.password.zeroize();
        self.totp.zeroize();
        if let Some(mailbox) = &mut self.mailbox {
            mailbox.username.zeroize();
            mailbox.password.zeroize();
        }
    }
}

impl StoredSecrets {
    fn from_secrets(secrets: &AccountSecrets) -> StoredSecrets {
        StoredSecrets {
            username: secrets.credentials.username.clone(),
            password: secrets.credentials.password.expose_secret().to_string(),
            totp: secrets.totp.as_ref().map(|t| t.expose_secret().to_string()),
            mailbox: secrets.mailbox.as_ref().map(|m| StoredMailbox {
                host: m.host.clone(),
                port: m.port,
                username: m.username.clone(),
                password: m.password.expose_secret().to_string(),
                ca_file: m.ca_file.clone(),
                folder: m.folder.clone(),
            }),
        }
    }

    fn into_secrets(self) -> AccountSecrets {
        AccountSecrets {
            credentials: Credentials {
                username: self.username.clone(),
                password: SecretString::from(self.password.clone()),
            },
            totp: self.totp.clone().map(SecretString::from),
            mailbox: self.mailbox.as_ref().map(|m| MailboxConfig {
                host: m.host.clone(),
                port: m.port,
                username: m.username.clone(),
                password: SecretString::from(m.password.clone()),
                ca_file: m.ca_file.clone(),
                folder: m.folder.clone(),
            }),
        }
    }
}
