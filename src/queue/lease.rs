//! Writes only the run holding a job's lease may make. Every one goes through
//! [`Queue::write_held`], so a run whose lease expired (its job rescued) or whose job was
//! cancelled cannot change the job any more.

use secrecy::{ExposeSecret, SecretString};
use sqlx::{Any, Row};

use super::rows::HELD_STATES;
use super::{
    code_context, CodeError, HeartbeatError, JobState, Lease, LeaseLost, Queue, QueueError,
};
use crate::outcome::{CodeRequest, Outcome};

/// What a job drops when its run ends (finished, released, rescued or cancelled).
pub(super) const END_RUN: &str = "lease_token = NULL, code_request = NULL, code_verdict = NULL";

/// A value bound into a lease-guarded write (owned: the statement is built inside the helper).
pub(super) enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<i64> for Value {
    fn from(value: i64) -> Value {
        Value::Int(Some(value))
    }
}

impl From<Option<i64>> for Value {
    fn from(value: Option<i64>) -> Value {
        Value::Int(value)
    }
}

impl From<String> for Value {
    fn from(value: String) -> Value {
        Value::Text(Some(value))
    }
}

impl From<Option<String>> for Value {
    fn from(value: Option<String>) -> Value {
        Value::Text(value)
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Value {
        Value::Text(Some(value.to_string()))
    }
}

pub(super) fn lease_held(lease: &Lease, rows: u64) -> Result<(), HeartbeatError> {
    if rows == 1 {
        Ok(())
    } else {
        Err(HeartbeatError::Lost(LeaseLost {
            job: lease.job.clone(),
        }))
    }
}

impl Queue {
    /// `UPDATE jobs SET {set}` for the lease holder only. In `set`, `$1` and `$2` are taken (the
    /// job and the lease token); `values` bind `$3` onwards.
    pub(super) async fn write_held<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        lease: &Lease,
        set: &str,
        values: impl IntoIterator<Item = Value>,
    ) -> Result<(), HeartbeatError> {
        let sql = format!(
            "UPDATE jobs SET {set} WHERE id = $1 AND lease_token = $2 AND state IN {HELD_STATES}"
        );
        let mut query = sqlx::query(&sql).bind(&lease.job).bind(&lease.token);
        for value in values {
            query = match value {
                Value::Text(text) => query.bind(text),
                Value::Int(int) => query.bind(int),
            };
        }
        let done = query.execute(executor).await.map_err(QueueError::from)?;
        lease_held(lease, done.rows_affected())
    }

    /// Extends the lease; fails once it is no longer ours.
    pub async fn heartbeat(&self, lease: &Lease) -> Result<(), HeartbeatError> {
        let until = self.clock.now_ms() + self.config.lease.as_millis() as i64;
        self.write_held(&self.pool, lease, "lease_expires = $3", [until.into()])
            .await
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
        let request = serde_json::to_string(request).expect("code request serialises");
        self.write_held(
            &self.pool,
            lease,
            "state = 'awaiting_code', code_request = $3, code_verdict = $4, updated_at = $5",
            [
                request.into(),
                previous.map(|o| o.to_string()).into(),
                now.into(),
            ],
        )
        .await?;
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

    pub(super) fn code_pending_until(&self, request: Option<&CodeRequest>) -> i64 {
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
        self.wake_code_waiter(job_id);
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
        let written = self
            .write_held(
                &self.pool,
                lease,
                "state = 'running', code_request = NULL, code_verdict = NULL, updated_at = $3",
                [self.clock.now_ms().into()],
            )
            .await;
        self.touch();
        written
    }

    /// Gives a claimed job back untouched (graceful shutdown): the attempt does not count.
    pub async fn release(&self, lease: &Lease) -> Result<(), HeartbeatError> {
        let now = self.clock.now_ms();
        let written = self
            .write_held(
                &self.pool,
                lease,
                &format!(
                    "state = 'queued', {END_RUN}, attempts = attempts - 1, run_at = $3, updated_at = $3"
                ),
                [now.into()],
            )
            .await;
        self.touch();
        written
    }
}
