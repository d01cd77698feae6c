//! A run's end: the job's new state, what the outcome proves about the passwords sent, the
//! account's guards and history, the login's audit row and the webhook events — all in one
//! transaction, so nobody sees a job final without the rest.

use rand::Rng as _;
use sqlx::{Connection, Row};

use super::audit::AuditRow;
use super::lease::END_RUN;
use super::{
    backoff, new_id, Change, HeartbeatError, Job, JobState, Lease, Queue, QueueError, RunResult,
};
use crate::engine::pairing::PairingReport;
use crate::outcome::{Outcome, QueueAction, TwoFactor};

impl Queue {
    /// Records how a worker's run ended; the outcome table (or, without an outcome, the error's
    /// kind) decides whether the job is final or retried. Rejected when the lease is no longer
    /// held: a rescued job's old worker cannot overwrite the new run.
    pub async fn finish(&self, lease: &Lease, result: RunResult) -> Result<Job, HeartbeatError> {
        self.finish_run(lease, result, Some("login")).await
    }

    /// [`Queue::finish`]; `audited` names the audit action of the run's login (`None`: the run
    /// never tried one, as when the guards refused it at claim time).
    pub(super) async fn finish_run(
        &self,
        lease: &Lease,
        result: RunResult,
        audited: Option<&str>,
    ) -> Result<Job, HeartbeatError> {
        let job = self
            .job_by_id(&lease.job)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(lease.job.clone()))?;
        let now = self.clock.now_ms();
        let outcome = result.outcome();
        let (state, run_at, finished_at) =
            if result.is_retryable() && job.attempts < self.config.max_attempts {
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
        let error = result.error();
        // A failed login (rejected credentials among them) must survive even a power cut: the
        // budget and the "no retry until the credentials change" rule are what keep merchants
        // from being locked out. SQLite fsyncs this one commit; PostgreSQL commits durably anyway.
        let guards_lockout = outcome.is_some_and(|o| o.decision().failed_login);
        let mut conn = if guards_lockout {
            self.durable().await?
        } else {
            self.pool.acquire().await.map_err(QueueError::from)?
        };
        let mut tx = conn.begin().await.map_err(QueueError::from)?;
        let written = self
            .write_held(
                &mut *tx,
                lease,
                &format!(
                    "state = $3, run_at = $4, finished_at = $5, outcome = $6, result = $7, \
                     error = $8, {END_RUN}, updated_at = $9"
                ),
                [
                    state.as_ref().into(),
                    run_at.into(),
                    finished_at.into(),
                    outcome.map(|o| o.to_string()).into(),
                    result.stored().into(),
                    error.clone().into(),
                    now.into(),
                ],
            )
            .await;
        match (written, outcome) {
            (Err(HeartbeatError::Lost(lost)), Some(outcome)) => {
                // Let go of the write lock first (SQLite has one writer).
                tx.rollback().await.map_err(QueueError::from)?;
                if guards_lockout {
                    self.end_durable(conn).await;
                } else {
                    drop(conn); // SQLite's pool may hold one connection
                }
                self.keep_late_verdict(&job, &lease.token, outcome).await?;
                return Err(lost.into());
            }
            (written, _) => written?,
        }
        let change = match outcome {
            Some(outcome) => {
                self.settle_submissions(&mut tx, &job, &lease.token, outcome, now)
                    .await?;
                let report = match &result {
                    RunResult::Reported { report, .. } => Some(report.as_ref()),
                    RunResult::Failed(_) => None,
                };
                self.record_outcome(&mut tx, &job, outcome, report, now)
                    .await?
            }
            None => None,
        };
        if let (Some(outcome), Some(change)) = (outcome, change) {
            // The alerts this verdict owes exist if and only if the verdict was committed.
            self.queue_alerts(&mut tx, &job, outcome, change, now)
                .await?;
        }
        if let Some(action) = audited {
            // Every login attempt is audited with how it ended (never with what was typed).
            let how = outcome.map(|o| o.to_string()).or(error).unwrap_or_default();
            let actor = format!("worker:{}", job.worker.as_deref().unwrap_or_default());
            let row = AuditRow {
                organisation: &job.organisation,
                actor: &actor,
                account_id: Some(&job.account_id),
                job_id: Some(&job.id),
                action,
                result: &how,
            };
            self.audit_on(&mut *tx, &row).await?;
        }
        let finished = self
            .job_by_id_on(&mut *tx, &lease.job)
            .await?
            .ok_or_else(|| QueueError::UnknownJob(lease.job.clone()))?;
        self.emit_on(
            &mut *tx,
            &job.organisation,
            "job.updated",
            job_event(&finished),
        )
        .await?;
        let health_event = match change {
            Some(Change::Broke | Change::Changed) => Some("account.unhealthy"),
            Some(Change::Resolved) => Some("account.healthy"),
            _ => None,
        };
        if let Some(event) = health_event {
            let health = self.health_on(&mut tx, &job.account_id).await?;
            let data = serde_json::json!({ "account_id": job.account_id, "health": health });
            self.emit_on(&mut *tx, &job.organisation, event, data)
                .await?;
        }
        tx.commit().await.map_err(QueueError::from)?;
        if guards_lockout {
            self.end_durable(conn).await;
        }
        self.touch();
        Ok(finished)
    }

    /// Queues a `job.updated` webhook event (best effort: the job's own write already happened).
    pub(super) async fn emit_job(&self, job: &Job) {
        self.touch();
        if let Err(error) = self
            .emit(&job.organisation, "job.updated", job_event(job))
            .await
        {
            tracing::warn!(%error, "webhook event not queued");
        }
    }

    /// What an outcome does to its account: lockout guards, the pending-code block, history.
    async fn record_outcome(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        outcome: Outcome,
        report: Option<&PairingReport>,
        now: i64,
    ) -> Result<Option<Change>, QueueError> {
        let decision = outcome.decision();
        let rejected = matches!(outcome, Outcome::InvalidCredentials(_));
        // A code the portal sent and nobody typed may still be valid: a new login now would make
        // the portal send another and void it.
        let code_pending = (outcome == Outcome::TwoFactor(TwoFactor::CodeRequired)).then(|| {
            let request = report.and_then(|r| r.code_request.as_ref());
            self.code_pending_until(request)
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
}

/// The `job.updated` event's data: the job as the dashboard follows it.
fn job_event(job: &Job) -> serde_json::Value {
    serde_json::json!({
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
    })
}
