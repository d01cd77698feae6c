//! What is sealed under which key: the start-up check that every stored secret can be opened,
//! key rotation, and opening one sealed text.

use secrecy::SecretString;
use sqlx::Row;

use super::{keys, KeyError, Queue, QueueError};

impl Queue {
    /// Every key id used in the database must be configured, and a configured key must be the
    /// same key that first sealed under its id. Only then is the current key recorded.
    pub(super) async fn check_keys(&self) -> Result<(), QueueError> {
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

    /// Opens a sealed text secret (a code, a webhook secret) straight into a `SecretString`.
    pub(super) fn open_text(
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

    /// Re-encrypts every secret not under the current key. Safe to re-run; each row is its own
    /// statement, guarded on the key id it read.
    pub async fn rotate_keys(&self) -> Result<u64, QueueError> {
        // (table, row key column, sealed column, associated-data prefix)
        const SEALED: [(&str, &str, &str, &str); 4] = [
            ("accounts", "id", "secrets", "account"),
            ("job_codes", "job_id", "code", "job-code"),
            ("webhooks", "organisation", "secret", "webhook"),
            (
                "alert_preferences",
                "organisation",
                "link_secret",
                "alert-link",
            ),
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
             UNION SELECT key_id FROM webhooks \
             UNION SELECT key_id FROM alert_preferences WHERE key_id IS NOT NULL ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
    }
}
