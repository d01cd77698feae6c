//! Webhook endpoints and the deliveries owed to them, stored with the queue so events survive
//! restarts and several workers never deliver one twice.

use rand::RngCore;
use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;

use super::{new_id, time, Queue, QueueError};

/// A delivery taken for sending, with what is needed to send it.
pub struct DueDelivery {
    pub id: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub url: String,
    pub secret: SecretString,
}

/// One webhook delivery as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeliveryRecord {
    pub id: String,
    pub event: String,
    pub state: String,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

fn webhook_context(organisation: &str) -> String {
    format!("webhook:{organisation}")
}

impl Queue {
    /// Registers (or replaces) the organisation's endpoint; returns the new signing secret,
    /// shown this once.
    pub async fn set_webhook(&self, organisation: &str, url: &str) -> Result<String, QueueError> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let secret = format!(
            "whsec_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let sealed = self
            .keys
            .current
            .seal(secret.as_bytes(), &webhook_context(organisation));
        sqlx::query("DELETE FROM webhooks WHERE organisation = $1")
            .bind(organisation)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO webhooks (organisation, url, secret, key_id, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(organisation)
        .bind(url)
        .bind(sealed)
        .bind(&self.keys.current.id)
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(secret)
    }

    pub async fn webhook_url(&self, organisation: &str) -> Result<Option<String>, QueueError> {
        Ok(
            sqlx::query("SELECT url FROM webhooks WHERE organisation = $1")
                .bind(organisation)
                .fetch_optional(&self.pool)
                .await?
                .map(|row| row.get(0)),
        )
    }

    /// Queues an event for the organisation's endpoint; nothing when none is registered.
    pub async fn emit(
        &self,
        organisation: &str,
        event: &str,
        data: serde_json::Value,
    ) -> Result<(), QueueError> {
        self.emit_on(&self.pool, organisation, event, data).await
    }

    /// [`Queue::emit`] on `executor`: inside a transaction, the event exists if and only if the
    /// change it announces was committed.
    pub(super) async fn emit_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
        organisation: &str,
        event: &str,
        data: serde_json::Value,
    ) -> Result<(), QueueError> {
        let id = new_id();
        let now = self.clock.now_ms();
        let payload = serde_json::json!({
            "id": id,
            "type": event,
            "created_at": time(now),
            "data": data,
        });
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, organisation, event, payload, state, next_at, created_at) \
             SELECT $1, organisation, $2, $3, 'pending', $4, $4 FROM webhooks WHERE organisation = $5",
        )
        .bind(&id)
        .bind(event)
        .bind(payload.to_string())
        .bind(now)
        .bind(organisation)
        .execute(executor)
        .await?;
        Ok(())
    }

    /// Takes the oldest due delivery for `hold` (another deliverer skips it meanwhile).
    pub async fn take_due_delivery(
        &self,
        hold: std::time::Duration,
    ) -> Result<Option<DueDelivery>, QueueError> {
        let now = self.clock.now_ms();
        let row = sqlx::query(
            "UPDATE webhook_deliveries SET next_at = $1, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_at <= $2 \
               ORDER BY next_at, id LIMIT 1) AND state = 'pending' AND next_at <= $2 \
             RETURNING id, organisation, event, payload, attempts",
        )
        .bind(now + hold.as_millis() as i64)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let organisation: String = row.get(1);
        let endpoint =
            sqlx::query("SELECT url, secret, key_id FROM webhooks WHERE organisation = $1")
                .bind(&organisation)
                .fetch_optional(&self.pool)
                .await?;
        let id: String = row.get(0);
        let Some(endpoint) = endpoint else {
            // The endpoint was removed: nothing to deliver to.
            self.delivery_finished(&id, false, None, Some("webhook removed"), None)
                .await?;
            return Ok(None);
        };
        let secret = self.open_text(
            &endpoint.get::<String, _>(2),
            &endpoint.get::<String, _>(1),
            &webhook_context(&organisation),
            "webhook secret",
        )?;
        Ok(Some(DueDelivery {
            id,
            event: row.get(2),
            payload: row.get(3),
            attempts: row.get(4),
            url: endpoint.get(0),
            secret,
        }))
    }

    /// Records an attempt: delivered, retry at `retry_at`, or (no retry time) failed for good.
    pub async fn delivery_finished(
        &self,
        id: &str,
        delivered: bool,
        status: Option<u16>,
        error: Option<&str>,
        retry_at: Option<i64>,
    ) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let state = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, last_status = $2, last_error = $3, \
             next_at = COALESCE($4, next_at), delivered_at = $5 WHERE id = $6",
        )
        .bind(state)
        .bind(status.map(i64::from))
        .bind(error)
        .bind(retry_at)
        .bind(delivered.then_some(now))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn deliveries(
        &self,
        organisation: &str,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, QueueError> {
        Ok(sqlx::query(
            "SELECT id, event, state, attempts, last_status, last_error, created_at, delivered_at \
             FROM webhook_deliveries WHERE organisation = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(organisation)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| DeliveryRecord {
            id: row.get(0),
            event: row.get(1),
            state: row.get(2),
            attempts: row.get(3),
            last_status: row.get(4),
            last_error: row.get(5),
            created_at: time(row.get(6)),
            delivered_at: row.get::<Option<i64>, _>(7).map(time),
        })
        .collect())
    }
}
