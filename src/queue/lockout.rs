//! The lockout guard: every password a run sends is recorded durably *before* it is sent, and
//! counts against the account's failed-login budget until a verdict proves the portal accepted
//! it. A crash, a cancel, a lost browser or a lease that expired after the submit therefore
//! never hides a failed login, and an automatic attempt (a re-check, a retry, a rescue) is
//! refused once the budget is spent.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection, Row};

use super::lease::lease_held;
use super::rows::HELD_STATES;
use super::{
    time, Account, Backend, HeartbeatError, Job, JobKind, Lease, LeaseLost, Queue, QueueError,
    SubmitError,
};
use crate::outcome::{Outcome, PasswordVerdict};

/// Why a run may not send the password now.
#[derive(Debug, thiserror::Error)]
pub enum SubmissionRefused {
    /// The lease is gone: the run must stop (nothing was recorded, nothing may be sent).
    #[error(transparent)]
    Lost(#[from] HeartbeatError),
    #[error(transparent)]
    Guard(SubmitError),
}

impl Queue {
    /// Refuses an automatic login with stored credentials the portal rejected, or for an account
    /// whose failed-login budget is spent (sent passwords without a verdict count as failed).
    pub(super) async fn stored_credentials_allowed(
        &self,
        conn: &mut sqlx::AnyConnection,
        account: &Account,
    ) -> Result<(), SubmitError> {
        if account.credentials_rejected {
            return Err(SubmitError::CredentialsRejected);
        }
        self.budget_left(conn, &account.id).await
    }

    async fn budget_left(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
    ) -> Result<(), SubmitError> {
        let counted = self.counted_submissions(conn, account_id).await?;
        if counted.len() as i64 >= self.config.failed_login_budget {
            let window = self.config.failed_login_window.as_millis() as i64;
            let oldest = counted.first().copied().unwrap_or_default();
            return Err(SubmitError::LoginBudgetSpent {
                until: time(oldest + window),
            });
        }
        Ok(())
    }

    /// When each password submission of the window that counts as a failed login was made
    /// (refused by the portal, or with no verdict yet), oldest first.
    async fn counted_submissions(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
    ) -> Result<Vec<i64>, QueueError> {
        let since = self.clock.now_ms() - self.config.failed_login_window.as_millis() as i64;
        Ok(sqlx::query(
            "SELECT at FROM password_submissions WHERE account_id = $1 AND at > $2 \
             AND (verdict IS NULL OR verdict = 'failed') ORDER BY at",
        )
        .bind(account_id)
        .bind(since)
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
    }

    /// Whether a login for this job is automatic: a re-check, or any run of a job after one that
    /// may have sent a password (a retry or a rescue, whatever the kind; a graceful release
    /// gives the attempt back, so the submissions themselves are asked too). Only the first run
    /// of a Reconnect is the merchant's own doing.
    pub(super) async fn is_automatic(
        &self,
        conn: &mut sqlx::AnyConnection,
        job_id: &str,
        kind: JobKind,
        attempts: i64,
    ) -> Result<bool, QueueError> {
        if kind == JobKind::Recheck || attempts > 1 {
            return Ok(true);
        }
        let sent: i64 = sqlx::query("SELECT COUNT(*) FROM password_submissions WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(conn)
            .await?
            .get(0);
        Ok(sent > 0)
    }

    /// Called by the run holding `lease` just before it sends the password: records the
    /// submission durably (it counts as a failed login until a verdict proves otherwise), or
    /// refuses when the lease is gone, the credentials were rejected, or this is an automatic
    /// attempt (a re-check, or any retried or rescued run) and the budget is spent.
    pub async fn password_submitting(&self, lease: &Lease) -> Result<(), SubmissionRefused> {
        let queue_error = |e: sqlx::Error| SubmissionRefused::Lost(QueueError::from(e).into());
        let held = format!(
            "SELECT j.account_id, j.kind, j.attempts, j.credentials_version, a.rejected_version \
             FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE j.id = $1 AND j.lease_token = $2 AND j.state IN {HELD_STATES}"
        );
        let row = sqlx::query(&held)
            .bind(&lease.job)
            .bind(&lease.token)
            .fetch_optional(&self.pool)
            .await
            .map_err(queue_error)?;
        let Some(row) = row else {
            let lost = LeaseLost {
                job: lease.job.clone(),
            };
            return Err(SubmissionRefused::Lost(lost.into()));
        };
        let account_id: String = row.get(0);
        let kind: String = row.get(1);
        let attempts: i64 = row.get(2);
        let version: i64 = row.get(3);
        let rejected: Option<i64> = row.get(4);
        if rejected == Some(version) {
            return Err(SubmissionRefused::Guard(SubmitError::CredentialsRejected));
        }
        let kind: JobKind = kind.parse().map_err(|_| {
            SubmissionRefused::Lost(QueueError::Corrupt(format!("job kind `{kind}`")).into())
        })?;
        let mut conn = self.pool.acquire().await.map_err(queue_error)?;
        if self
            .is_automatic(&mut conn, &lease.job, kind, attempts)
            .await
            .map_err(|e| SubmissionRefused::Lost(e.into()))?
        {
            self.budget_left(&mut conn, &account_id)
                .await
                .map_err(SubmissionRefused::Guard)?;
        }
        drop(conn); // SQLite's pool holds one connection
        let mut conn = self.durable().await.map_err(|e| match e {
            QueueError::Database(e) => queue_error(e),
            e => SubmissionRefused::Lost(e.into()),
        })?;
        // Only a run still holding its lease records (and then sends) a password.
        let record = format!(
            "INSERT INTO password_submissions (account_id, job_id, at, run_token) \
             SELECT account_id, id, $1, lease_token FROM jobs \
             WHERE id = $2 AND lease_token = $3 AND state IN {HELD_STATES}"
        );
        let inserted = sqlx::query(&record)
            .bind(self.clock.now_ms())
            .bind(&lease.job)
            .bind(&lease.token)
            .execute(&mut *conn)
            .await
            .map_err(queue_error)?;
        self.end_durable(conn).await;
        lease_held(lease, inserted.rows_affected())?;
        Ok(())
    }

    /// Inside a finishing transaction: what the run's outcome proves about the passwords it sent.
    /// A failed login with no recorded submission (a lockout page before any password) is
    /// recorded as one, as the portal counts it.
    pub(super) async fn settle_submissions(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        run_token: &str,
        outcome: Outcome,
        now: i64,
    ) -> Result<(), QueueError> {
        let verdict = match outcome.decision().password {
            PasswordVerdict::Unknown => return Ok(()), // still counted
            PasswordVerdict::Failed => "failed",
            PasswordVerdict::Accepted => "accepted",
        };
        let settled = sqlx::query(
            "UPDATE password_submissions SET verdict = $1 \
             WHERE job_id = $2 AND run_token = $3 AND verdict IS NULL",
        )
        .bind(verdict)
        .bind(&job.id)
        .bind(run_token)
        .execute(&mut *conn)
        .await?;
        if verdict == "failed" && settled.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO password_submissions (account_id, job_id, at, run_token, verdict) \
                 VALUES ($1, $2, $3, $4, 'failed')",
            )
            .bind(&job.account_id)
            .bind(&job.id)
            .bind(now)
            .bind(run_token)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    /// A verdict that arrived after its run lost the lease (cancelled, or rescued while the page
    /// answered): the job is no longer this run's to finish, but what the portal said about the
    /// password still guards the account — a failed login stays counted and rejected
    /// credentials are not tried again.
    pub(super) async fn keep_late_verdict(
        &self,
        job: &Job,
        run_token: &str,
        outcome: Outcome,
    ) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let mut conn = self.durable().await?;
        let mut tx = conn.begin().await?;
        self.settle_submissions(&mut tx, job, run_token, outcome, now)
            .await?;
        if matches!(outcome, Outcome::InvalidCredentials(_)) {
            sqlx::query("UPDATE accounts SET rejected_version = $1 WHERE id = $2")
                .bind(job.credentials_version)
                .bind(&job.account_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.end_durable(conn).await;
        Ok(())
    }

    /// A connection whose next commit is fsynced even on SQLite (WAL with `synchronous =
    /// NORMAL` otherwise): what guards a merchant from lockout must survive a power cut.
    /// PostgreSQL commits durably anyway.
    pub(super) async fn durable(&self) -> Result<PoolConnection<Any>, QueueError> {
        let mut conn = self.pool.acquire().await?;
        if self.backend == Backend::Sqlite {
            sqlx::query("PRAGMA synchronous = FULL")
                .execute(&mut *conn)
                .await?;
        }
        Ok(conn)
    }

    /// Gives a [`Queue::durable`] connection back with the pool's usual setting.
    pub(super) async fn end_durable(&self, mut conn: PoolConnection<Any>) {
        if self.backend == Backend::Sqlite {
            if let Err(error) = sqlx::query("PRAGMA synchronous = NORMAL")
                .execute(&mut *conn)
                .await
            {
                // Harmless beyond speed (that connection keeps fsyncing every commit).
                tracing::warn!(%error, "resetting a connection's synchronous setting failed");
            }
        }
    }
}
