//! What a database holds — its migrations, the keys that sealed in it — read without applying
//! or writing anything (`doctor`).

use sqlx::{Connection, Row};

use super::{connect_url, redact_url, Queue, QueueError, MIGRATOR};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseState {
    /// Migrations of this binary's that the database has.
    pub applied: usize,
    /// Versions this binary would apply on start.
    pub pending: Vec<i64>,
    /// The newest version the database has that this binary does not know: a newer release
    /// migrated it.
    pub newer: Option<i64>,
    /// The ids of the keys that have sealed in it (the current one, and older ones).
    pub key_ids: Vec<String>,
}

impl Queue {
    /// Connects and reads the migration history only: nothing is created or changed (beyond a
    /// SQLite file that did not exist, which the caller checks first).
    pub async fn database_state(url: &str) -> Result<DatabaseState, QueueError> {
        sqlx::any::install_default_drivers();
        let (_, connect) = connect_url(url)?;
        let open_error = |e: sqlx::Error| QueueError::Open {
            url: redact_url(url),
            reason: e.to_string(),
        };
        let mut conn = sqlx::AnyConnection::connect(&connect)
            .await
            .map_err(open_error)?;
        let history = sqlx::query("SELECT version FROM _sqlx_migrations")
            .fetch_all(&mut conn)
            .await;
        let versions: Vec<i64> = match history {
            Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
            // No history table: a new, empty database.
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(error) => return Err(open_error(error)),
        };
        let key_ids = match sqlx::query("SELECT key_id FROM encryption_keys ORDER BY created_at")
            .fetch_all(&mut conn)
            .await
        {
            Ok(rows) => rows.iter().map(|row| row.get(0)).collect(),
            Err(sqlx::Error::Database(_)) => Vec::new(),
            Err(error) => return Err(open_error(error)),
        };
        let _ = conn.close().await;
        let known: Vec<i64> = MIGRATOR
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| m.version)
            .collect();
        Ok(DatabaseState {
            applied: known.iter().filter(|v| versions.contains(v)).count(),
            pending: known
                .iter()
                .copied()
                .filter(|v| !versions.contains(v))
                .collect(),
            newer: versions
                .iter()
                .copied()
                .filter(|v| !known.contains(v))
                .max(),
            key_ids,
        })
    }
}
