//! API tokens, stored hashed.

use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{time, Queue, QueueError};

/// A token as an operator lists it: never the token itself.
#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    /// The first 16 hex digits of the token's SHA-256: names it for `tokens revoke`.
    pub id: String,
    pub organisation: String,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

const TOKEN_ID_LEN: usize = 16;

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

    /// How `tokens list` names a token (the hash cannot be turned back into the token).
    pub fn token_id(token: &str) -> String {
        token_hash(token)[..TOKEN_ID_LEN].to_string()
    }

    /// Every token, or one organisation's, oldest first.
    pub async fn tokens(&self, organisation: Option<&str>) -> Result<Vec<TokenInfo>, QueueError> {
        let select = "SELECT token_hash, organisation, label, created_at FROM api_tokens";
        let order = "ORDER BY created_at, token_hash";
        let rows = match organisation {
            Some(organisation) => {
                sqlx::query(&format!("{select} WHERE organisation = $1 {order}"))
                    .bind(organisation)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(&format!("{select} {order}"))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(|row| TokenInfo {
                id: row.get::<String, _>(0)[..TOKEN_ID_LEN].to_string(),
                organisation: row.get(1),
                label: row.get(2),
                created_at: time(row.get(3)),
            })
            .collect())
    }

    /// Revokes a token, named by its id (`tokens list`) or by the token itself: it is deleted, so
    /// the next request with it gets 401 (tokens are looked up on every request, never cached).
    /// Returns whether one was revoked.
    pub async fn revoke_token(&self, id_or_token: &str) -> Result<bool, QueueError> {
        let text = id_or_token.trim();
        let id = if text.len() == TOKEN_ID_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            text.to_ascii_lowercase()
        } else {
            Queue::token_id(text)
        };
        // The id is 16 hex digits: no LIKE wildcard in it.
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE token_hash LIKE $1")
            .bind(format!("{id}%"))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }
}
