//! Who hears of a broken connection: an organisation's alert contacts, the channels each chose,
//! and the organisation's alert settings (threshold, cap, digest window, recovery notices, the
//! repair link and the secret that signs it).

use std::time::Duration;

use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{new_id, time, Queue, QueueError};

/// How a contact hears of an alert.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
    strum::AsRefStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    /// A ticket printed on a network receipt printer at the store.
    Ticket,
}

/// A network receipt printer (raw TCP, port 9100 by default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Printer {
    pub host: String,
    pub port: u16,
    /// 42 (80 mm paper) or 32 (58 mm).
    pub columns: u8,
}

/// A printer a contact prints on, and whose it is (`doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterOf {
    pub organisation: String,
    pub contact: String,
    pub printer: Printer,
}

/// What a contact is, as stored (checked by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactFields {
    pub name: String,
    pub language: String,
    pub channels: Vec<Channel>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub printer: Option<Printer>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Contact {
    pub id: String,
    pub name: String,
    /// The language of this contact's alerts (`en`, `fr`, `ko`, ...).
    pub language: String,
    pub channels: Vec<Channel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub printer: Option<Printer>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// An organisation's alert settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPreferences {
    /// Consecutive verdicts of the same store-level failure before it is alerted (failures a
    /// second check could not safely confirm are alerted on the first).
    pub threshold: u32,
    /// Messages per contact and channel per 24 hours; the rest wait and go out as one digest.
    pub cap_per_day: u32,
    /// Transitions within this window of a contact's first pending one go out together.
    pub digest_window: Duration,
    /// Send a notice when an alerted account is connected again.
    pub recovery: bool,
    pub link_ttl: Duration,
    /// The dashboard page the signed repair links open; no links without one.
    pub repair_url: Option<String>,
}

impl Default for AlertPreferences {
    fn default() -> Self {
        AlertPreferences {
            threshold: 2,
            cap_per_day: 5,
            digest_window: Duration::from_secs(60),
            recovery: false,
            link_ttl: Duration::from_secs(72 * 3600),
            repair_url: None,
        }
    }
}

const CONTACT_COLUMNS: &str = "id, name, language, channels, email, phone, printer_host, \
     printer_port, printer_columns, created_at, updated_at";

fn link_context(organisation: &str) -> String {
    format!("alert-link:{organisation}")
}

fn contact_from_row(row: &AnyRow) -> Result<Contact, QueueError> {
    let channels: Vec<Channel> = serde_json::from_str(&row.get::<String, _>(3))
        .map_err(|_| QueueError::Corrupt("contact channels".into()))?;
    let printer = match (
        row.get::<Option<String>, _>(6),
        row.get::<Option<i64>, _>(7),
    ) {
        (Some(host), Some(port)) => Some(Printer {
            host,
            port: u16::try_from(port).map_err(|_| QueueError::Corrupt("printer port".into()))?,
            columns: u8::try_from(row.get::<Option<i64>, _>(8).unwrap_or(42))
                .map_err(|_| QueueError::Corrupt("printer columns".into()))?,
        }),
        _ => None,
    };
    Ok(Contact {
        id: row.get(0),
        name: row.get(1),
        language: row.get(2),
        channels,
        email: row.get(4),
        phone: row.get(5),
        printer,
        created_at: time(row.get(9)),
        updated_at: time(row.get(10)),
    })
}

impl Queue {
    pub async fn contacts(&self, organisation: &str) -> Result<Vec<Contact>, QueueError> {
        self.contacts_on(&self.pool, organisation).await
    }

    pub(super) async fn contacts_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
        organisation: &str,
    ) -> Result<Vec<Contact>, QueueError> {
        sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM alert_contacts WHERE organisation = $1 ORDER BY id"
        ))
        .bind(organisation)
        .fetch_all(executor)
        .await?
        .iter()
        .map(contact_from_row)
        .collect()
    }

    pub async fn contact(
        &self,
        organisation: &str,
        id: &str,
    ) -> Result<Option<Contact>, QueueError> {
        sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM alert_contacts WHERE organisation = $1 AND id = $2"
        ))
        .bind(organisation)
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(contact_from_row)
        .transpose()
    }

    pub async fn add_contact(
        &self,
        organisation: &str,
        fields: &ContactFields,
    ) -> Result<Contact, QueueError> {
        let id = new_id();
        let now = self.clock.now_ms();
        let insert = sqlx::query(
            "INSERT INTO alert_contacts (name, language, channels, email, phone, printer_host, \
             printer_port, printer_columns, id, organisation, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
        );
        bind_fields(insert, fields)
            .bind(&id)
            .bind(organisation)
            .bind(now)
            .execute(&self.pool)
            .await?;
        self.contact(organisation, &id)
            .await?
            .ok_or_else(|| QueueError::Corrupt("contact just written".into()))
    }

    /// Replaces a contact's fields; `None` when there is no such contact.
    pub async fn update_contact(
        &self,
        organisation: &str,
        id: &str,
        fields: &ContactFields,
    ) -> Result<Option<Contact>, QueueError> {
        let update = sqlx::query(
            "UPDATE alert_contacts SET name = $1, language = $2, channels = $3, email = $4, \
             phone = $5, printer_host = $6, printer_port = $7, printer_columns = $8, \
             updated_at = $9 WHERE organisation = $10 AND id = $11",
        );
        let done = bind_fields(update, fields)
            .bind(self.clock.now_ms())
            .bind(organisation)
            .bind(id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.contact(organisation, id).await
    }

    /// Every contact's printer, in every organisation.
    pub async fn printers(&self) -> Result<Vec<PrinterOf>, QueueError> {
        let rows = sqlx::query(
            "SELECT organisation, name, printer_host, printer_port, printer_columns \
             FROM alert_contacts WHERE printer_host IS NOT NULL ORDER BY organisation, name",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| PrinterOf {
                organisation: row.get(0),
                contact: row.get(1),
                printer: Printer {
                    host: row.get(2),
                    port: u16::try_from(row.get::<i64, _>(3)).unwrap_or(9100),
                    columns: u8::try_from(row.get::<i64, _>(4)).unwrap_or(42),
                },
            })
            .collect())
    }

    /// Removes a contact; messages still owed to it are dropped when their turn comes.
    pub async fn delete_contact(&self, organisation: &str, id: &str) -> Result<bool, QueueError> {
        let done = sqlx::query("DELETE FROM alert_contacts WHERE organisation = $1 AND id = $2")
            .bind(organisation)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn alert_preferences(
        &self,
        organisation: &str,
    ) -> Result<AlertPreferences, QueueError> {
        self.alert_preferences_on(&self.pool, organisation).await
    }

    pub(super) async fn alert_preferences_on<'c>(
        &self,
        executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
        organisation: &str,
    ) -> Result<AlertPreferences, QueueError> {
        let row = sqlx::query(
            "SELECT threshold, cap_per_day, digest_window_ms, recovery, link_ttl_ms, repair_url \
             FROM alert_preferences WHERE organisation = $1",
        )
        .bind(organisation)
        .fetch_optional(executor)
        .await?;
        let Some(row) = row else {
            return Ok(AlertPreferences::default());
        };
        let count = |i: usize| u32::try_from(row.get::<i64, _>(i)).unwrap_or(u32::MAX);
        let span = |i: usize| Duration::from_millis(row.get::<i64, _>(i).max(0) as u64);
        Ok(AlertPreferences {
            threshold: count(0),
            cap_per_day: count(1),
            digest_window: span(2),
            recovery: row.get::<i64, _>(3) != 0,
            link_ttl: span(4),
            repair_url: row.get(5),
        })
    }

    /// Stores the organisation's settings. Returns the link-signing secret when one was made
    /// (the first time a repair URL is set, or on `rotate_link_secret`): shown this once.
    pub async fn set_alert_preferences(
        &self,
        organisation: &str,
        preferences: &AlertPreferences,
        rotate_link_secret: bool,
    ) -> Result<Option<String>, QueueError> {
        let has_secret = sqlx::query(
            "SELECT 1 FROM alert_preferences WHERE organisation = $1 AND link_secret IS NOT NULL",
        )
        .bind(organisation)
        .fetch_optional(&self.pool)
        .await?
        .is_some();
        let new_secret = (rotate_link_secret || (!has_secret && preferences.repair_url.is_some()))
            .then(new_link_secret);
        let sealed = new_secret.as_ref().map(|secret| {
            self.keys
                .current
                .seal(secret.as_bytes(), &link_context(organisation))
        });
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO alert_preferences (organisation, threshold, cap_per_day, digest_window_ms, \
             recovery, link_ttl_ms, repair_url, link_secret, key_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (organisation) DO UPDATE SET threshold = excluded.threshold, \
             cap_per_day = excluded.cap_per_day, digest_window_ms = excluded.digest_window_ms, \
             recovery = excluded.recovery, link_ttl_ms = excluded.link_ttl_ms, \
             repair_url = excluded.repair_url, \
             link_secret = COALESCE(excluded.link_secret, alert_preferences.link_secret), \
             key_id = COALESCE(excluded.key_id, alert_preferences.key_id), \
             updated_at = excluded.updated_at",
        )
        .bind(organisation)
        .bind(i64::from(preferences.threshold))
        .bind(i64::from(preferences.cap_per_day))
        .bind(millis(preferences.digest_window))
        .bind(i64::from(preferences.recovery))
        .bind(millis(preferences.link_ttl))
        .bind(&preferences.repair_url)
        .bind(sealed)
        .bind(new_secret.as_ref().map(|_| self.keys.current.id.clone()))
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        Ok(new_secret)
    }

    /// The organisation's link secret, made now if it has none (the dashboard reads it with
    /// `POST /v1/alert-preferences/link-secret`, which rotates it). Two workers making one at
    /// once agree: only the first write lands.
    pub async fn ensure_link_secret(&self, organisation: &str) -> Result<SecretString, QueueError> {
        if let Some(secret) = self.link_secret(organisation).await? {
            return Ok(secret);
        }
        let defaults = AlertPreferences::default();
        let millis = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "INSERT INTO alert_preferences (organisation, threshold, cap_per_day, digest_window_ms, \
             recovery, link_ttl_ms, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (organisation) DO NOTHING",
        )
        .bind(organisation)
        .bind(i64::from(defaults.threshold))
        .bind(i64::from(defaults.cap_per_day))
        .bind(millis(defaults.digest_window))
        .bind(i64::from(defaults.recovery))
        .bind(millis(defaults.link_ttl))
        .bind(self.clock.now_ms())
        .execute(&self.pool)
        .await?;
        let secret = new_link_secret();
        sqlx::query(
            "UPDATE alert_preferences SET link_secret = $1, key_id = $2 \
             WHERE organisation = $3 AND link_secret IS NULL",
        )
        .bind(
            self.keys
                .current
                .seal(secret.as_bytes(), &link_context(organisation)),
        )
        .bind(&self.keys.current.id)
        .bind(organisation)
        .execute(&self.pool)
        .await?;
        self.link_secret(organisation)
            .await?
            .ok_or_else(|| QueueError::Corrupt("alert link secret just written".into()))
    }

    /// The secret that signs this organisation's repair links, if it has one.
    pub async fn link_secret(
        &self,
        organisation: &str,
    ) -> Result<Option<SecretString>, QueueError> {
        let row = sqlx::query(
            "SELECT link_secret, key_id FROM alert_preferences \
             WHERE organisation = $1 AND link_secret IS NOT NULL",
        )
        .bind(organisation)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            self.open_text(
                &row.get::<String, _>(1),
                &row.get::<String, _>(0),
                &link_context(organisation),
                "alert link secret",
            )
        })
        .transpose()
    }
}

/// Binds a contact's fields as `$1`–`$8` (name … printer columns), for insert and update alike.
fn bind_fields<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    fields: &'q ContactFields,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let printer = fields.printer.as_ref();
    query
        .bind(&fields.name)
        .bind(&fields.language)
        .bind(channels_json(&fields.channels))
        .bind(&fields.email)
        .bind(&fields.phone)
        .bind(printer.map(|p| p.host.clone()))
        .bind(printer.map(|p| i64::from(p.port)))
        .bind(printer.map(|p| i64::from(p.columns)))
}

fn channels_json(channels: &[Channel]) -> String {
    serde_json::to_string(channels).expect("channels serialise")
}

fn new_link_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("alsec_{hex}")
}
