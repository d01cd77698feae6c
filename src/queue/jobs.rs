//! Jobs: starting one (the service the API, the CLI and the demo share), claiming, rescuing
//! and cancelling, and the reads the dashboard and metrics make.

use sqlx::{Any, Connection, Row};

use super::audit::AuditRow;
use super::lease::END_RUN;
use super::rows::{job_from_row, HELD_STATES, JOB_COLUMNS, LIVE_STATES};
use super::run::RunError;
use super::{
    new_id, AccountUpdate, Backend, Claimed, Job, JobKind, JobState, Lease, Queue, QueueError,
    RunResult, SubmitError, Submitted,
};
use crate::secret::Credentials;

/// What a caller asks of [`Queue::start`].
pub struct JobRequest {
    pub kind: JobKind,
    /// Someone is at the dashboard to type a code.
    pub interactive: bool,
    /// New credentials the merchant entered (a Reconnect), stored with the job.
    pub credentials: Option<Credentials>,
    /// Who asks, for the audit log (`None`: not audited, as for a scheduled re-check).
    pub actor: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The account already has a live job (one per account, across all workers).
    #[error("the account already has a job in progress")]
    Busy(Box<Job>),
    #[error(transparent)]
    Refused(#[from] SubmitError),
}

impl From<QueueError> for StartError {
    fn from(error: QueueError) -> StartError {
        StartError::Refused(error.into())
    }
}

impl Queue {
    /// Queues a job in one transaction that checks the account and its live job, stores new
    /// credentials, asks the lockout guards (a re-check with stored credentials) and writes the
    /// audit rows: nothing is half done, and each check runs once.
    pub async fn start(
        &self,
        organisation: &str,
        account_id: &str,
        request: &JobRequest,
    ) -> Result<Job, StartError> {
        loop {
            let mut conn = self.pool.acquire().await.map_err(QueueError::from)?;
            let mut tx = conn.begin().await.map_err(QueueError::from)?;
            match self
                .start_on(&mut tx, organisation, account_id, request)
                .await?
            {
                Some(job) => {
                    tx.commit().await.map_err(QueueError::from)?;
                    self.touch();
                    return Ok(job);
                }
                // Another start won the race between our check and our insert: look again.
                None => tx.rollback().await.map_err(QueueError::from)?,
            }
        }
    }

    async fn start_on(
        &self,
        tx: &mut sqlx::AnyConnection,
        organisation: &str,
        account_id: &str,
        request: &JobRequest,
    ) -> Result<Option<Job>, StartError> {
        let account = self
            .account_on(&mut *tx, organisation, account_id)
            .await?
            .ok_or_else(|| QueueError::UnknownAccount(account_id.to_string()))?;
        if let Some(live) = self.live_job_on(&mut *tx, account_id).await? {
            return Err(StartError::Busy(Box::new(live)));
        }
        if let Some(credentials) = &request.credentials {
            let update = AccountUpdate {
                credentials: Some(credentials.clone()),
                ..AccountUpdate::default()
            };
            self.update_account_on(tx, organisation, account_id, update)
                .await?;
            if let Some(actor) = &request.actor {
                let row = AuditRow {
                    organisation,
                    actor,
                    account_id: Some(account_id),
                    job_id: None,
                    action: "credentials.update",
                    result: "ok",
                };
                self.audit_on(&mut *tx, &row).await?;
            }
        }
        if request.kind == JobKind::Recheck {
            self.stored_credentials_allowed(tx, &account).await?;
        }
        let id = new_id();
        let now = self.clock.now_ms();
        // The job logs in with the credentials as they now stand (a Reconnect's new ones).
        let inserted = sqlx::query(
            "INSERT INTO jobs (id, account_id, kind, interactive, state, credentials_version, \
             run_at, created_at, updated_at) \
             SELECT $1, id, $2, $3, 'queued', credentials_version, $4, $4, $4 \
             FROM accounts WHERE id = $5 ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(request.kind.as_ref())
        .bind(i64::from(request.interactive))
        .bind(now)
        .bind(account_id)
        .execute(&mut *tx)
        .await
        .map_err(QueueError::from)?;
        if inserted.rows_affected() == 0 {
            return Ok(None);
        }
        let action = match request.kind {
            JobKind::Pair => "job.pair",
            JobKind::Recheck => "job.recheck",
        };
        if let Some(actor) = &request.actor {
            let row = AuditRow {
                organisation,
                actor,
                account_id: Some(account_id),
                job_id: Some(&id),
                action,
                result: "queued",
            };
            self.audit_on(&mut *tx, &row).await?;
        }
        let job = self
            .job_by_id_on(&mut *tx, &id)
            .await?
            .ok_or(QueueError::UnknownJob(id))?;
        Ok(Some(job))
    }

    /// Queues a job with the stored credentials, unless the account already has a live one
    /// (that one is returned: one job per account at a time, across all workers) or the lockout
    /// guards refuse it.
    pub async fn submit(
        &self,
        organisation: &str,
        account_id: &str,
        kind: JobKind,
        interactive: bool,
    ) -> Result<Submitted, SubmitError> {
        let request = JobRequest {
            kind,
            interactive,
            credentials: None,
            actor: None,
        };
        match self.start(organisation, account_id, &request).await {
            Ok(job) => Ok(Submitted { job, created: true }),
            Err(StartError::Busy(job)) => Ok(Submitted {
                job: *job,
                created: false,
            }),
            Err(StartError::Refused(refusal)) => Err(refusal),
        }
    }

    /// The account's queued, running or code-awaiting job, if any.
    pub async fn live_job(&self, account_id: &str) -> Result<Option<Job>, QueueError> {
        self.live_job_on(&self.pool, account_id).await
    }

    async fn live_job_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        account_id: &str,
    ) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.account_id = $1 AND j.state IN {LIVE_STATES}"
        ))
        .bind(account_id)
        .fetch_optional(executor)
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

    pub(super) async fn job_by_id(&self, id: &str) -> Result<Option<Job>, QueueError> {
        self.job_by_id_on(&self.pool, id).await
    }

    pub(super) async fn job_by_id_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        id: &str,
    ) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id WHERE j.id = $1"
        ))
        .bind(id)
        .fetch_optional(executor)
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
    /// automatic login the guards no longer allow fails at once.
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
            if let Some(refusal) = self.automatic_login_refused(&job).await? {
                // Not a login: no audit row, only the job's end.
                let refused = RunResult::Failed(RunError::Refused(refusal));
                self.finish_run(&lease, refused, None).await.ok();
                continue;
            }
            self.emit_job(&job).await;
            return Ok(Some(Claimed { job, lease }));
        }
    }

    /// Every automatic login is held to the guards: a re-check, and any run after the first (a
    /// retry or a rescue may follow a password whose verdict never came).
    async fn automatic_login_refused(&self, job: &Job) -> Result<Option<SubmitError>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        if !self
            .is_automatic(&mut conn, &job.id, job.kind, job.attempts)
            .await?
        {
            return Ok(None);
        }
        let Some(account) = self
            .account_on(&mut *conn, &job.organisation, &job.account_id)
            .await?
        else {
            return Ok(None);
        };
        match self.stored_credentials_allowed(&mut conn, &account).await {
            Ok(()) => Ok(None),
            Err(SubmitError::Queue(error)) => Err(error),
            Err(refusal) => Ok(Some(refusal)),
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
        let expired: i64 = sqlx::query(&format!(
            "SELECT COUNT(*) FROM jobs WHERE state IN {HELD_STATES} AND lease_expires < $1"
        ))
        .bind(now)
        .fetch_one(&self.pool)
        .await?
        .get(0);
        if expired == 0 {
            return Ok(0);
        }
        let failed = sqlx::query(&format!(
            "UPDATE jobs SET state = 'failed', {END_RUN}, \
             error = 'the worker running it stopped responding, too many times', \
             finished_at = $1, updated_at = $1 \
             WHERE state IN {HELD_STATES} AND lease_expires < $1 AND attempts >= $2"
        ))
        .bind(now)
        .bind(self.config.max_attempts)
        .execute(&self.pool)
        .await?;
        let requeued = sqlx::query(&format!(
            "UPDATE jobs SET state = 'queued', {END_RUN}, run_at = $1, updated_at = $1 \
             WHERE state IN {HELD_STATES} AND lease_expires < $1"
        ))
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

    /// Cancels a live job. A worker running it loses its lease and stops at its next heartbeat.
    pub async fn cancel(&self, organisation: &str, job_id: &str) -> Result<Job, QueueError> {
        let now = self.clock.now_ms();
        let cancelled = sqlx::query(&format!(
            "UPDATE jobs SET state = 'cancelled', {END_RUN}, finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND state IN {LIVE_STATES} \
             AND account_id IN (SELECT id FROM accounts WHERE organisation = $3)"
        ))
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
}
