//! An account's history of verdicts and the health read from it (the repair alerts).

use std::collections::HashMap;

use sqlx::{Any, Row};

use super::rows::{history_from_row, job_from_row, JOB_COLUMNS, LIVE_STATES};
use super::{Health, HistoryEntry, Job, Queue, QueueError};

/// How many of an account's latest verdicts its health, its alerts and its early re-checks read.
pub(super) const HISTORY_WINDOW: i64 = 200;

impl Queue {
    /// The account's latest `limit` verdicts, oldest first.
    pub async fn history(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, QueueError> {
        self.history_on(&self.pool, account_id, limit).await
    }

    async fn history_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, QueueError> {
        let mut rows = sqlx::query(
            "SELECT job_id, kind, at, outcome, previous, change FROM account_history \
             WHERE account_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(executor)
        .await?
        .iter()
        .map(history_from_row)
        .collect::<Result<Vec<_>, _>>()?;
        rows.reverse();
        Ok(rows)
    }

    /// Every account's health in one organisation, from one query (the alerts page).
    pub async fn healths(&self, organisation: &str) -> Result<HashMap<String, Health>, QueueError> {
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
        let mut histories: HashMap<String, Vec<HistoryEntry>> = HashMap::new();
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
    pub async fn live_jobs(&self, organisation: &str) -> Result<HashMap<String, Job>, QueueError> {
        sqlx::query(&format!(
            "SELECT {JOB_COLUMNS} FROM jobs j JOIN accounts a ON a.id = j.account_id \
             WHERE a.organisation = $1 AND j.state IN {LIVE_STATES}"
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
        Ok(Health::from_history(
            &self.history(account_id, HISTORY_WINDOW).await?,
        ))
    }

    /// [`Queue::health`] inside the caller's transaction.
    pub(super) async fn health_on(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
    ) -> Result<Health, QueueError> {
        Ok(Health::from_history(
            &self.history_on(conn, account_id, 200).await?,
        ))
    }
}
