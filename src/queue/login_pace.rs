//! Logins per provider per minute, held in aggregate across every worker on the database: the
//! same GCRA the `governor` crate runs in one process (a burst of the quota, then one login per
//! period/quota), kept in one row per provider and advanced by a single conditional `UPDATE`,
//! which concurrent workers serialise on (PostgreSQL re-checks the condition against the row it
//! waited for; SQLite has one writer).

use std::num::NonZeroU32;
use std::time::Duration;

use sqlx::Row;

use super::{Queue, QueueError};

const PERIOD_MS: i64 = 60_000;

impl Queue {
    /// Takes a login turn for `provider` under `per_minute` across all workers: `None` when
    /// taken, else how long until one may be.
    pub async fn take_login_turn(
        &self,
        provider: &str,
        per_minute: NonZeroU32,
    ) -> Result<Option<Duration>, QueueError> {
        let now = self.clock.now_ms();
        let interval = (PERIOD_MS / i64::from(per_minute.get())).max(1);
        sqlx::query(
            "INSERT INTO provider_login_pace (provider, tat) VALUES ($1, $2) \
             ON CONFLICT (provider) DO NOTHING",
        )
        .bind(provider)
        .bind(now)
        .execute(&self.pool)
        .await?;
        // tat' = max(tat, now) + interval, allowed while tat' - now <= period (the burst).
        let taken = sqlx::query(
            "UPDATE provider_login_pace \
             SET tat = (CASE WHEN tat > $2 THEN tat ELSE $2 END) + $3 \
             WHERE provider = $1 AND (CASE WHEN tat > $2 THEN tat ELSE $2 END) + $3 - $2 <= $4",
        )
        .bind(provider)
        .bind(now)
        .bind(interval)
        .bind(PERIOD_MS)
        .execute(&self.pool)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(None);
        }
        let tat: i64 = sqlx::query("SELECT tat FROM provider_login_pace WHERE provider = $1")
            .bind(provider)
            .fetch_one(&self.pool)
            .await?
            .get(0);
        // The next turn comes when tat + interval - now falls to the period.
        let wait = (tat + interval - PERIOD_MS - now).max(1);
        Ok(Some(Duration::from_millis(wait as u64)))
    }
}
