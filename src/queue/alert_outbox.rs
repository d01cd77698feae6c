//! The alert outbox: a message row per health transition, contact and channel, written in the
//! transaction that records the transition; taken with a hold so several workers never send one
//! twice; rows of one recipient and channel due together go out as one message.

use std::time::Duration;

use serde::Serialize;
use sqlx::Row;

use super::contacts::{Channel, Contact};
use super::health::HISTORY_WINDOW;
use super::{new_id, time, Change, Job, Queue, QueueError};
use crate::outcome::{Outcome, PasswordVerdict, Resolution};

/// What a message announces.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    utoipa::ToSchema,
    strum::AsRefStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AlertKind {
    /// The connection broke (or broke differently).
    Broken,
    /// An alerted connection is healthy again.
    Recovered,
}

/// One transition owed to one recipient on one channel.
#[derive(Debug, Clone)]
pub struct AlertItem {
    pub id: String,
    pub account_id: String,
    pub kind: AlertKind,
    pub outcome: Option<Outcome>,
    pub created_at: i64,
    pub attempts: i64,
}

/// Everything due for one recipient on one channel, held for sending.
#[derive(Debug, Clone)]
pub struct AlertBatch {
    /// The hold: names the message if it is sent.
    pub hold: String,
    pub organisation: String,
    pub contact_id: String,
    /// `None` when the contact was removed since (its rows are dropped).
    pub contact: Option<Contact>,
    pub channel: Channel,
    pub items: Vec<AlertItem>,
}

/// How sending a batch went, as the dispatcher decided it.
#[derive(Debug, Clone)]
pub enum BatchOutcome {
    /// Sent as one message; `dropped` rows were left out, each with why.
    Sent { dropped: Vec<(String, String)> },
    /// Not sent; retried at `retry_at`, or failed for good without one.
    Failed {
        error: String,
        retry_at: Option<i64>,
    },
    /// Held back (the cap, or nothing left to say): the rows wait until `until`, or are dropped
    /// with `reason` when `until` is `None`.
    Held { until: Option<i64>, reason: String },
}

/// One row of the delivery log.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertDelivery {
    pub id: String,
    pub contact_id: String,
    pub channel: Channel,
    pub account_id: String,
    pub kind: AlertKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// `pending`, `sent`, `failed` or `skipped`.
    pub state: String,
    /// The message that carried it; several rows share one in a digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_size: Option<i64>,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Which delivery-log rows to list.
#[derive(Debug, Clone, Default)]
pub struct AlertLogFilter {
    pub channel: Option<Channel>,
    pub state: Option<String>,
    pub account_id: Option<String>,
    pub contact_id: Option<String>,
}

/// A failure a second check may safely confirm: the portal accepted the password and said the
/// store is misconfigured, so logging in again costs no failed login. Every other failure is
/// either the portal's explicit word (a refused password, a lock) or not safe to re-try soon (a
/// wall), and is alerted on its first verdict.
pub fn confirmable(outcome: Outcome) -> bool {
    matches!(outcome, Outcome::InvalidStoreConfig(_))
        && outcome.decision().password == PasswordVerdict::Accepted
}

/// A run of the same verdict at the head of an account's history, and whether the connection
/// worked before it: what both the alerts and the early re-checks decide on, so they read it from
/// the same window ([`HISTORY_WINDOW`]) with the same function.
pub(super) struct Streak {
    pub length: i64,
    pub has_worked: bool,
}

impl Streak {
    /// `newest_first`: the account's verdicts, latest first.
    pub fn of(newest_first: &[Outcome], outcome: Outcome) -> Streak {
        Streak {
            length: newest_first.iter().take_while(|o| **o == outcome).count() as i64,
            has_worked: newest_first.contains(&Outcome::Paired),
        }
    }
}

/// How soon a check confirms a confirmable failure.
pub const CONFIRM_AFTER: Duration = Duration::from_secs(15 * 60);

impl Queue {
    /// Inside a run's finish transaction: the messages its verdict owes, one per contact and
    /// channel, and (for a failure awaiting confirmation) an early re-check.
    pub(super) async fn queue_alerts(
        &self,
        conn: &mut sqlx::AnyConnection,
        job: &Job,
        outcome: Outcome,
        change: Change,
        now: i64,
    ) -> Result<(), QueueError> {
        let preferences = self
            .alert_preferences_on(&mut *conn, &job.organisation)
            .await?;
        let kind = if outcome == Outcome::Paired {
            let alerted = self.last_alert_kind(&mut *conn, &job.account_id).await?;
            (change == Change::Resolved
                && preferences.recovery
                && alerted == Some(AlertKind::Broken))
            .then_some(AlertKind::Recovered)
        } else if outcome.decision().resolution == Resolution::None {
            None
        } else {
            // Only a connection that worked can break: a first pairing that fails is shown on
            // the dashboard to whoever tried it, and no orders were flowing to stop.
            let streak = self.streak(&mut *conn, &job.account_id, outcome).await?;
            let needed = if confirmable(outcome) {
                i64::from(preferences.threshold.max(1))
            } else {
                1
            };
            if streak.has_worked && streak.length < needed {
                // Not confirmed yet: the scheduler checks again soon instead of in hours.
                sqlx::query("UPDATE accounts SET next_check_at = $1 WHERE id = $2")
                    .bind(now + CONFIRM_AFTER.as_millis() as i64)
                    .bind(&job.account_id)
                    .execute(&mut *conn)
                    .await?;
            }
            (streak.has_worked && streak.length == needed).then_some(AlertKind::Broken)
        };
        let Some(kind) = kind else { return Ok(()) };
        let due = now + preferences.digest_window.as_millis() as i64;
        for contact in self.contacts_on(&mut *conn, &job.organisation).await? {
            for channel in &contact.channels {
                sqlx::query(
                    "INSERT INTO alert_messages (id, organisation, contact_id, channel, account_id, \
                     kind, outcome, state, next_at, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $9)",
                )
                .bind(new_id())
                .bind(&job.organisation)
                .bind(&contact.id)
                .bind(channel.as_ref())
                .bind(&job.account_id)
                .bind(kind.as_ref())
                .bind((kind == AlertKind::Broken).then(|| outcome.to_string()))
                .bind(due)
                .bind(now)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }

    /// How many of the account's latest verdicts in a row are `outcome` (the new one included),
    /// and whether the connection worked before them.
    async fn streak(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
        outcome: Outcome,
    ) -> Result<Streak, QueueError> {
        let rows = sqlx::query(
            "SELECT outcome FROM account_history WHERE account_id = $1 \
             ORDER BY at DESC, id DESC LIMIT $2",
        )
        .bind(account_id)
        .bind(HISTORY_WINDOW)
        .fetch_all(&mut *conn)
        .await?;
        let outcomes = rows
            .iter()
            .map(|row| row.get::<String, _>(0).parse::<Outcome>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| QueueError::Corrupt("history outcome".into()))?;
        Ok(Streak::of(&outcomes, outcome))
    }

    async fn last_alert_kind(
        &self,
        conn: &mut sqlx::AnyConnection,
        account_id: &str,
    ) -> Result<Option<AlertKind>, QueueError> {
        sqlx::query(
            "SELECT kind FROM alert_messages WHERE account_id = $1 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(account_id)
        .fetch_optional(&mut *conn)
        .await?
        .map(|row| row.get::<String, _>(0).parse())
        .transpose()
        .map_err(|_| QueueError::Corrupt("alert kind".into()))
    }

    /// Takes everything owed to the recipient and channel whose oldest row is due, for `hold`
    /// (no other worker takes those rows meanwhile; after it they are taken again).
    pub async fn take_due_alerts(&self, hold: Duration) -> Result<Option<AlertBatch>, QueueError> {
        let now = self.clock.now_ms();
        let token = new_id();
        // Rows not yet due join the batch (a digest); rows another worker holds do not.
        let rows = sqlx::query(
            "UPDATE alert_messages SET hold = $1, next_at = $2, attempts = attempts + 1 \
             WHERE state = 'pending' AND (hold IS NULL OR next_at <= $3) \
             AND contact_id || '|' || channel = (SELECT contact_id || '|' || channel \
               FROM alert_messages WHERE state = 'pending' AND next_at <= $3 \
               ORDER BY next_at, id LIMIT 1) \
             RETURNING id, organisation, contact_id, channel, account_id, kind, outcome, \
               created_at, attempts",
        )
        .bind(&token)
        .bind(now + hold.as_millis() as i64)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let organisation: String = first.get(1);
        let contact_id: String = first.get(2);
        let channel: Channel = first
            .get::<String, _>(3)
            .parse()
            .map_err(|_| QueueError::Corrupt("alert channel".into()))?;
        let mut items = rows
            .iter()
            .map(|row| {
                let outcome = row
                    .get::<Option<String>, _>(6)
                    .map(|text| text.parse::<Outcome>())
                    .transpose()
                    .map_err(|_| QueueError::Corrupt("alert outcome".into()))?;
                Ok(AlertItem {
                    id: row.get(0),
                    account_id: row.get(4),
                    kind: row
                        .get::<String, _>(5)
                        .parse()
                        .map_err(|_| QueueError::Corrupt("alert kind".into()))?,
                    outcome,
                    created_at: row.get(7),
                    attempts: row.get(8),
                })
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        items.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        let contact = self.contact(&organisation, &contact_id).await?;
        Ok(Some(AlertBatch {
            hold: token,
            organisation,
            contact_id,
            contact,
            channel,
            items,
        }))
    }

    /// Records how a batch went, for every row it held (a row whose hold expired and was taken
    /// again is left to its new holder).
    pub async fn alert_batch_finished(
        &self,
        batch: &AlertBatch,
        outcome: &BatchOutcome,
    ) -> Result<(), QueueError> {
        let now = self.clock.now_ms();
        let dropped: &[(String, String)] = match outcome {
            BatchOutcome::Sent { dropped } => dropped,
            _ => &[],
        };
        for (id, reason) in dropped {
            self.set_alert_row(id, &batch.hold, "skipped", None, Some(reason), None, None)
                .await?;
        }
        let kept: Vec<&AlertItem> = batch
            .items
            .iter()
            .filter(|item| !dropped.iter().any(|(id, _)| *id == item.id))
            .collect();
        let size = kept.len() as i64;
        for item in kept {
            let (state, next_at, error, sent) = match outcome {
                BatchOutcome::Sent { .. } => ("sent", None, None, Some(now)),
                BatchOutcome::Failed { error, retry_at } => match retry_at {
                    Some(at) => ("pending", Some(*at), Some(error.as_str()), None),
                    None => ("failed", None, Some(error.as_str()), None),
                },
                BatchOutcome::Held { until, reason } => match until {
                    Some(at) => ("pending", Some(*at), Some(reason.as_str()), None),
                    None => ("skipped", None, Some(reason.as_str()), None),
                },
            };
            let batch_size = (state == "sent").then_some(size);
            self.set_alert_row(
                &item.id,
                &batch.hold,
                state,
                next_at,
                error,
                sent,
                batch_size,
            )
            .await?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn set_alert_row(
        &self,
        id: &str,
        hold: &str,
        state: &str,
        next_at: Option<i64>,
        error: Option<&str>,
        sent_at: Option<i64>,
        batch_size: Option<i64>,
    ) -> Result<(), QueueError> {
        // A row waiting again lets go of its hold, so the next batch of its recipient takes it.
        sqlx::query(
            "UPDATE alert_messages SET state = $1, next_at = COALESCE($2, next_at), \
             last_error = $3, sent_at = $4, batch = CASE WHEN $4 IS NULL THEN NULL ELSE hold END, \
             batch_size = $5, hold = CASE WHEN $1 = 'pending' THEN NULL ELSE hold END \
             WHERE id = $6 AND hold = $7",
        )
        .bind(state)
        .bind(next_at)
        .bind(error)
        .bind(sent_at)
        .bind(batch_size)
        .bind(id)
        .bind(hold)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// When the messages sent to a recipient on a channel in the 24 hours before `now` were
    /// sent, oldest first (one time per message, however many rows it carried).
    pub async fn alerts_sent_within_day(
        &self,
        contact_id: &str,
        channel: Channel,
        now: i64,
    ) -> Result<Vec<i64>, QueueError> {
        Ok(sqlx::query(
            "SELECT MIN(sent_at) FROM alert_messages WHERE contact_id = $1 AND channel = $2 \
             AND state = 'sent' AND sent_at > $3 GROUP BY batch ORDER BY 1",
        )
        .bind(contact_id)
        .bind(channel.as_ref())
        .bind(now - 24 * 3600 * 1000)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
    }

    /// The delivery log, newest first.
    pub async fn alert_log(
        &self,
        organisation: &str,
        filter: &AlertLogFilter,
        limit: i64,
    ) -> Result<Vec<AlertDelivery>, QueueError> {
        let rows = sqlx::query(
            "SELECT id, contact_id, channel, account_id, kind, outcome, state, batch, batch_size, \
             attempts, last_error, created_at, sent_at FROM alert_messages \
             WHERE organisation = $1 AND ($2 IS NULL OR channel = $2) \
             AND ($3 IS NULL OR state = $3) AND ($4 IS NULL OR account_id = $4) \
             AND ($5 IS NULL OR contact_id = $5) ORDER BY created_at DESC, id DESC LIMIT $6",
        )
        .bind(organisation)
        .bind(filter.channel.map(|c| c.as_ref().to_string()))
        .bind(filter.state.clone())
        .bind(filter.account_id.clone())
        .bind(filter.contact_id.clone())
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AlertDelivery {
                    id: row.get(0),
                    contact_id: row.get(1),
                    channel: row
                        .get::<String, _>(2)
                        .parse()
                        .map_err(|_| QueueError::Corrupt("alert channel".into()))?,
                    account_id: row.get(3),
                    kind: row
                        .get::<String, _>(4)
                        .parse()
                        .map_err(|_| QueueError::Corrupt("alert kind".into()))?,
                    outcome: row.get(5),
                    state: row.get(6),
                    message: row.get(7),
                    message_size: row.get(8),
                    attempts: row.get(9),
                    last_error: row.get(10),
                    created_at: time(row.get(11)),
                    sent_at: row.get::<Option<i64>, _>(12).map(time),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod streak_tests {
    use super::*;
    use crate::outcome::InvalidCredentials;

    #[test]
    fn a_streak_counts_the_same_verdict_at_the_head_and_remembers_a_pairing() {
        let wrong = Outcome::InvalidCredentials(InvalidCredentials::WrongPassword);
        let history = [wrong, wrong, Outcome::Paired, wrong];
        let streak = Streak::of(&history, wrong);
        assert_eq!((streak.length, streak.has_worked), (2, true));
        let never = Streak::of(&[wrong], wrong);
        assert_eq!((never.length, never.has_worked), (1, false));
        assert_eq!(Streak::of(&history, Outcome::Paired).length, 0);
    }
}
