//! The audit log: who did what to which account, and how it ended. Never a secret.

use serde::Serialize;
use sqlx::{Any, Row};

use super::{new_id, time, Queue, QueueError};

/// One audited action: who, on what, how it ended.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub account_id: Option<String>,
    pub job_id: Option<String>,
    pub action: String,
    pub result: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// An entry to write, borrowed from its caller.
pub(super) struct AuditRow<'a> {
    pub organisation: &'a str,
    pub actor: &'a str,
    pub account_id: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub action: &'a str,
    pub result: &'a str,
}

impl Queue {
    pub async fn audit(
        &self,
        organisation: &str,
        actor: &str,
        account_id: Option<&str>,
        job_id: Option<&str>,
        action: &str,
        result: &str,
    ) -> Result<(), QueueError> {
        let row = AuditRow {
            organisation,
            actor,
            account_id,
            job_id,
            action,
            result,
        };
        self.audit_on(&self.pool, &row).await
    }

    /// Writes one entry on `executor` (inside the caller's transaction).
    pub(super) async fn audit_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = Any>,
        row: &AuditRow<'_>,
    ) -> Result<(), QueueError> {
        sqlx::query(
            "INSERT INTO audit_log (id, organisation, actor, account_id, job_id, action, result, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(row.organisation)
        .bind(row.actor)
        .bind(row.account_id)
        .bind(row.job_id)
        .bind(row.action)
        .bind(row.result)
        .bind(self.clock.now_ms())
        .execute(executor)
        .await?;
        Ok(())
    }

    /// The organisation's latest audit entries, newest first.
    pub async fn audit_log(
        &self,
        organisation: &str,
        limit: i64,
    ) -> Result<Vec<AuditEntry>, QueueError> {
        Ok(sqlx::query(
            "SELECT actor, account_id, job_id, action, result, at FROM audit_log \
             WHERE organisation = $1 ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(organisation)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| AuditEntry {
            actor: row.get(0),
            account_id: row.get(1),
            job_id: row.get(2),
            action: row.get(3),
            result: row.get(4),
            at: time(row.get(5)),
        })
        .collect())
    }
}
