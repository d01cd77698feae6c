//! Scheduled health checks: every healthy account is re-checked on its organisation's schedule,
//! spread over the period so a thousand accounts never start at once, as background re-checks
//! that never ask for a code and never get past the lockout guards. What a check finds goes
//! through `finish` like any job's verdict: a disconnection turns the account unhealthy once.

use std::time::Duration;

use rand::Rng as _;
use sqlx::Row;

use super::alert_outbox::{confirmable, Streak};
use super::health::HISTORY_WINDOW;
use super::jobs::{JobRequest, StartError};
use super::{Health, HistoryEntry, JobKind, Queue, QueueError, SubmitError};
use crate::outcome::Outcome;

/// Why a due account was not checked this time (its next time is set all the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::AsRefStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum CheckSkipped {
    /// Not healthy (or never paired): the merchant has a repair to make, and logging in again
    /// would only repeat a known failure against the platform's lockout counter.
    NotHealthy,
    /// A verdict came in less than half a period ago: the account was just verified.
    RecentlyVerified,
    /// A verification code may still be pending: no new login until it is used or expires.
    CodePending,
    /// A job of the account's is live already.
    Busy,
    /// The portal rejected the stored credentials: nothing automatic until new ones.
    CredentialsRejected,
    /// The failed-login budget says no.
    LoginBudgetSpent,
}

/// What the scheduler did with one due account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckDecision {
    /// A background re-check was queued.
    Started {
        job: String,
    },
    Skipped(CheckSkipped),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledCheck {
    pub organisation: String,
    pub account: String,
    pub decision: CheckDecision,
}

/// A time `period × [low, high)` from `from`, at random: checks stay spread over the period.
fn spread(from: i64, period: i64, low: f64, high: f64) -> i64 {
    from + (period as f64 * rand::rng().random_range(low..high)) as i64
}

impl Queue {
    /// The organisation's time between checks: its own, or the default; `None` when it turned
    /// checks off.
    pub async fn check_period(&self, organisation: &str) -> Result<Option<Duration>, QueueError> {
        let own: Option<i64> =
            sqlx::query("SELECT every_ms FROM health_check_schedules WHERE organisation = $1")
                .bind(organisation)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.get(0));
        let every = own.unwrap_or(self.default_check_ms());
        Ok((every > 0).then(|| Duration::from_millis(every as u64)))
    }

    /// Sets the organisation's time between checks (`None` turns checks off). Its accounts are
    /// spread over the new period again.
    pub async fn set_check_period(
        &self,
        organisation: &str,
        period: Option<Duration>,
    ) -> Result<(), QueueError> {
        let every = period.map_or(0, |p| p.as_millis() as i64);
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO health_check_schedules (organisation, every_ms, updated_at) \
             VALUES ($1, $2, $3) ON CONFLICT (organisation) \
             DO UPDATE SET every_ms = excluded.every_ms, updated_at = excluded.updated_at",
        )
        .bind(organisation)
        .bind(every)
        .bind(self.clock.now_ms())
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE accounts SET next_check_at = NULL WHERE organisation = $1")
            .bind(organisation)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    fn default_check_ms(&self) -> i64 {
        self.config.health_check_every.as_millis() as i64
    }

    /// Queues the checks that are due (at most `limit`), each taken by exactly one caller across
    /// every worker: accounts not yet placed get a first time within their period, due healthy
    /// accounts a background re-check, and every account it looked at its next time.
    pub async fn schedule_due_checks(&self, limit: i64) -> Result<Vec<ScheduledCheck>, QueueError> {
        let now = self.clock.now_ms();
        let default = self.default_check_ms();
        // First placement: in the second half of the period, so a new account (just paired) or
        // a fresh schedule never starts a wave of logins at once.
        let unplaced = sqlx::query(
            "SELECT a.id, COALESCE(s.every_ms, $1) FROM accounts a \
             LEFT JOIN health_check_schedules s ON s.organisation = a.organisation \
             WHERE a.next_check_at IS NULL AND COALESCE(s.every_ms, $1) > 0 LIMIT $2",
        )
        .bind(default)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        for row in &unplaced {
            let (id, every): (String, i64) = (row.get(0), row.get(1));
            sqlx::query(
                "UPDATE accounts SET next_check_at = $1 WHERE id = $2 AND next_check_at IS NULL",
            )
            .bind(spread(now, every, 0.5, 1.0))
            .bind(&id)
            .execute(&self.pool)
            .await?;
        }
        let due = sqlx::query(
            "SELECT a.id, a.organisation, a.next_check_at, COALESCE(s.every_ms, $1) \
             FROM accounts a LEFT JOIN health_check_schedules s ON s.organisation = a.organisation \
             WHERE a.next_check_at <= $2 AND COALESCE(s.every_ms, $1) > 0 \
             ORDER BY a.next_check_at LIMIT $3",
        )
        .bind(default)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut checks = Vec::new();
        for row in &due {
            let (id, organisation, was, every): (String, String, i64, i64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            // Taken by whoever moves its time first: another worker's scheduler skips it.
            let taken = sqlx::query(
                "UPDATE accounts SET next_check_at = $1 WHERE id = $2 AND next_check_at = $3",
            )
            .bind(spread(now, every, 0.95, 1.05))
            .bind(&id)
            .bind(was)
            .execute(&self.pool)
            .await?
            .rows_affected()
                == 1;
            if !taken {
                continue;
            }
            let decision = self.check_one(&organisation, &id, now, every).await?;
            checks.push(ScheduledCheck {
                organisation,
                account: id,
                decision,
            });
        }
        Ok(checks)
    }

    /// A store-level failure seen fewer times in a row than the organisation's alert threshold:
    /// a second look confirms it (or not) before anyone is alerted, and costs no failed login.
    async fn awaiting_confirmation(
        &self,
        organisation: &str,
        history: &[HistoryEntry],
    ) -> Result<bool, QueueError> {
        let Some(latest) = history.last() else {
            return Ok(false);
        };
        let newest_first: Vec<Outcome> = history.iter().rev().map(|e| e.outcome).collect();
        let streak = Streak::of(&newest_first, latest.outcome);
        // Only a connection that worked is confirmed early: one that never paired is the
        // dashboard's to show, and nobody's orders stopped.
        if !confirmable(latest.outcome) || !streak.has_worked {
            return Ok(false);
        }
        let threshold = self.alert_preferences(organisation).await?.threshold;
        Ok(streak.length < i64::from(threshold.max(1)))
    }

    async fn check_one(
        &self,
        organisation: &str,
        id: &str,
        now: i64,
        every: i64,
    ) -> Result<CheckDecision, QueueError> {
        let Some(account) = self.account(organisation, id).await? else {
            return Err(QueueError::UnknownAccount(id.to_string()));
        };
        let history = self.history(id, HISTORY_WINDOW).await?;
        let confirming = self.awaiting_confirmation(organisation, &history).await?;
        if !confirming && !matches!(Health::from_history(&history), Health::Healthy { .. }) {
            return Ok(CheckDecision::Skipped(CheckSkipped::NotHealthy));
        }
        let last = history.last().map(|entry| entry.at.timestamp_millis());
        if let Some(last) = last.filter(|at| !confirming && now - at < every / 2) {
            // Just verified: the next check counts from that verdict, not from now.
            sqlx::query("UPDATE accounts SET next_check_at = $1 WHERE id = $2")
                .bind(spread(last, every, 0.95, 1.05))
                .bind(id)
                .execute(&self.pool)
                .await?;
            return Ok(CheckDecision::Skipped(CheckSkipped::RecentlyVerified));
        }
        if account
            .code_pending_until
            .is_some_and(|until| until.timestamp_millis() > now)
        {
            return Ok(CheckDecision::Skipped(CheckSkipped::CodePending));
        }
        let request = JobRequest {
            kind: JobKind::Recheck,
            // Nobody is at the dashboard: a code page ends the check as `code_required`.
            interactive: false,
            credentials: None,
            actor: None,
        };
        Ok(match self.start(organisation, id, &request).await {
            Ok(job) => CheckDecision::Started { job: job.id },
            Err(StartError::Busy(_)) => CheckDecision::Skipped(CheckSkipped::Busy),
            Err(StartError::Refused(SubmitError::CredentialsRejected)) => {
                CheckDecision::Skipped(CheckSkipped::CredentialsRejected)
            }
            Err(StartError::Refused(SubmitError::LoginBudgetSpent { .. })) => {
                CheckDecision::Skipped(CheckSkipped::LoginBudgetSpent)
            }
            Err(StartError::Refused(SubmitError::Queue(error))) => return Err(error),
        })
    }
}
