//! API tokens (stored hashed) and the audit log.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{new_id, time, Queue, QueueError};

/// One audited action: who, on what, how it ended. Never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub actor: String,
    pub account_id: Option<String>,
    pub job_id: Option<String>,
    pub action: String,
    pub result: String,
    pub at: chrono::DateTime<chrono::Utc>,
}

fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Queue {
    /// A new bearer token for `organisation`; only its hash is stored, so this is the one time
    /// it is seen.
    pub async fn create_token(
        &self,
        organisation: &str,
        label: &str,
    ) -> Result<String, QueueError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = format!(
            "pwk_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, organisation, label, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(&token))
        .bind(organisation)
        .bind(label)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(token)
    }

    /// The organisation a bearer token belongs to.
    pub async fn organisation_for_token(&self, token: &str) -> Result<Option<String>, QueueError> {
        Ok(
            sqlx::query("SELECT organisation FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash(token))
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.get(0)),
        )
    }

    pub async fn audit(
        &self,
        organisation: &str,
        actor: &str,
        account_id: Option<&str>,
        job_id: Option<&str>,
        action: &str,
        result: &str,
    ) -> Result<(), QueueError> {
        sqlx::query(
            "INSERT INTO audit_log (id, organisation, actor, account_id, job_id, action, result, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(organisation)
        .bind(actor)
        .bind(account_id)
        .bind(job_id)
        .bind(action)
        .bind(result)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
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
