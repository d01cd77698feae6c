//! Live alerts: the merchant hears of a broken connection by email, SMS and a printed ticket,
//! each with a signed link straight into the repair. The queue writes the messages owed in the
//! transaction that records the health change ([`crate::queue::Queue::take_due_alerts`]); this
//! module takes them, puts them in the contact's words, and hands them over.
//!
//! One batch is everything owed to one contact on one channel: several transitions go out as
//! one digest. A contact's messages per channel and day are capped; the rest wait and go out
//! together when the cap allows. News that is stale when its turn comes (the account healed,
//! or broke again) is dropped, so nobody is told of a break that is over.

pub mod compose;
pub mod links;
pub mod texts;
pub mod ticket;
pub mod transport;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::sync::watch;

use crate::provider::Registry;
use crate::queue::{
    backoff, AlertBatch, AlertItem, AlertKind, BatchOutcome, Channel, Contact, Health, Queue,
    QueueError,
};
use compose::{News, Notice};
use texts::Texts;
use transport::{SendError, Transports};

pub struct AlertsConfig {
    pub poll_interval: Duration,
    /// How long a taken batch is held against other workers (longer than any send).
    pub hold: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts before a message is recorded as failed (with the defaults: about a day).
    pub max_attempts: i64,
    /// The dashboard's repair page, for organisations that set none of their own.
    pub repair_url: Option<String>,
    /// The sender of alert email.
    pub from: String,
    pub transports: Transports,
}

impl AlertsConfig {
    pub fn new(transports: Transports) -> AlertsConfig {
        AlertsConfig {
            poll_interval: Duration::from_millis(500),
            hold: Duration::from_secs(120),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(30 * 60),
            max_attempts: 60,
            repair_url: None,
            from: "Store alerts <alerts@localhost>".into(),
            transports,
        }
    }
}

/// Delivers due alerts until `stop` turns true.
pub async fn deliver_alerts(
    queue: Arc<Queue>,
    registry: Arc<Registry>,
    config: AlertsConfig,
    mut stop: watch::Receiver<bool>,
) {
    // A verdict finished in this process may owe a message now (no digest window): wake on it
    // rather than wait out the poll; the poll covers other processes and windows that close.
    let mut changes = queue.changes();
    loop {
        if *stop.borrow() {
            return;
        }
        match queue.take_due_alerts(config.hold).await {
            Ok(Some(batch)) => {
                let outcome = match send_batch(&queue, &registry, &config, &batch).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        tracing::warn!(%error, "preparing an alert failed");
                        retry(&queue, &config, &batch, "the worker could not prepare it")
                    }
                };
                tracing::info!(
                    channel = batch.channel.as_ref(),
                    contact = %batch.contact_id,
                    items = batch.items.len(),
                    outcome = ?outcome_name(&outcome),
                    "alert"
                );
                if let Err(error) = queue.alert_batch_finished(&batch, &outcome).await {
                    tracing::warn!(%error, "recording an alert failed");
                }
            }
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    _ = changes.changed() => {}
                    // A dropped sender is a stop too (else this loop would spin).
                    changed = stop.changed() => if changed.is_err() { return; }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading due alerts failed");
                tokio::time::sleep(config.poll_interval * 4).await;
            }
        }
    }
}

fn outcome_name(outcome: &BatchOutcome) -> &'static str {
    match outcome {
        BatchOutcome::Sent { .. } => "sent",
        BatchOutcome::Failed {
            retry_at: Some(_), ..
        } => "retry",
        BatchOutcome::Failed { .. } => "failed",
        BatchOutcome::Held { .. } => "held",
    }
}

fn retry(queue: &Queue, config: &AlertsConfig, batch: &AlertBatch, error: &str) -> BatchOutcome {
    let attempts = batch.items.iter().map(|i| i.attempts).max().unwrap_or(1);
    let retry_at = (attempts < config.max_attempts).then(|| {
        let delay = backoff(
            attempts,
            config.backoff_base,
            config.backoff_cap,
            rand::random(),
        );
        queue.clock().now_ms() + delay.as_millis() as i64
    });
    BatchOutcome::Failed {
        error: error.to_string(),
        retry_at,
    }
}

/// Decides what the batch becomes and sends it.
async fn send_batch(
    queue: &Queue,
    registry: &Registry,
    config: &AlertsConfig,
    batch: &AlertBatch,
) -> Result<BatchOutcome, QueueError> {
    let Some(contact) = &batch.contact else {
        return Ok(BatchOutcome::Held {
            until: None,
            reason: "the contact was removed".into(),
        });
    };
    let preferences = queue.alert_preferences(&batch.organisation).await?;
    let now = queue.clock().now_ms();
    let sent = queue
        .alerts_sent_within_day(&contact.id, batch.channel, now)
        .await?;
    let cap = preferences.cap_per_day.max(1) as usize;
    if sent.len() >= cap {
        // Wait for the oldest message that keeps the cap full to leave the 24-hour window;
        // everything pending then goes out as one digest.
        let until = sent[sent.len() - cap] + 24 * 3600 * 1000 + 1;
        return Ok(BatchOutcome::Held {
            until: Some(until),
            reason: format!("{cap} messages in 24 hours: held for one digest"),
        });
    }
    let (notices, dropped) = notices(queue, registry, config, batch, contact).await?;
    if notices.is_empty() {
        return Ok(BatchOutcome::Sent { dropped });
    }
    Ok(
        match deliver(config, batch, contact, &notices, &preferences).await {
            Ok(()) => BatchOutcome::Sent { dropped },
            Err(error @ (SendError::NoAddress(_) | SendError::BadAddress)) => BatchOutcome::Held {
                until: None,
                reason: error.to_string(),
            },
            Err(error) => retry(queue, config, batch, &error.to_string()),
        },
    )
}

/// The batch's news, with the stale and superseded rows left out (each with why).
async fn notices(
    queue: &Queue,
    registry: &Registry,
    config: &AlertsConfig,
    batch: &AlertBatch,
    contact: &Contact,
) -> Result<(Vec<Notice>, Vec<(String, String)>), QueueError> {
    let preferences = queue.alert_preferences(&batch.organisation).await?;
    let repair_url = preferences.repair_url.or_else(|| config.repair_url.clone());
    let mut dropped = Vec::new();
    let mut notices: Vec<Notice> = Vec::new();
    let mut kept: Vec<&AlertItem> = Vec::new();
    // Latest first: one notice per account, the newest news.
    for item in batch.items.iter().rev() {
        if kept.iter().any(|k| k.account_id == item.account_id) {
            dropped.push((item.id.clone(), "superseded by a later alert".into()));
            continue;
        }
        let Some(account) = queue.account(&batch.organisation, &item.account_id).await? else {
            dropped.push((item.id.clone(), "the account was removed".into()));
            continue;
        };
        let healthy = matches!(queue.health(&account.id).await?, Health::Healthy { .. });
        let news = match (item.kind, item.outcome) {
            (AlertKind::Broken, _) if healthy => {
                dropped.push((item.id.clone(), "connected again before it was sent".into()));
                continue;
            }
            (AlertKind::Recovered, _) if !healthy => {
                dropped.push((item.id.clone(), "broke again before it was sent".into()));
                continue;
            }
            (AlertKind::Broken, Some(outcome)) => News::Broken {
                outcome,
                steps: steps(registry, &account.provider, outcome, &contact.language),
            },
            (AlertKind::Broken, None) => {
                dropped.push((item.id.clone(), "no outcome recorded".into()));
                continue;
            }
            (AlertKind::Recovered, _) => News::Recovered,
        };
        let link = match (&repair_url, &news) {
            (Some(url), News::Broken { .. }) => {
                let secret = queue.ensure_link_secret(&batch.organisation).await?;
                let expires = (now_secs(queue) + preferences.link_ttl.as_secs() as i64).max(0);
                let token = links::sign(
                    secret.expose_secret(),
                    &account.id,
                    alert_id(&batch.hold),
                    expires,
                );
                Some(links::link(url, &token))
            }
            _ => None,
        };
        let platform = registry
            .get(&account.provider)
            .map(|spec| spec.name.clone())
            .unwrap_or_else(|_| account.provider.clone());
        kept.push(item);
        notices.push(Notice {
            account_id: account.id.clone(),
            platform,
            stores: account.stores.clone(),
            news,
            link,
        });
    }
    notices.reverse();
    Ok((notices, dropped))
}

fn now_secs(queue: &Queue) -> i64 {
    queue.clock().now_ms() / 1000
}

/// The alert a link belongs to: the random half of the message id (its hold).
fn alert_id(hold: &str) -> [u8; 6] {
    let tail = &hold[hold.len().saturating_sub(12)..];
    let mut id = [0u8; 6];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = tail
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    id
}

fn steps(
    registry: &Registry,
    provider: &str,
    outcome: crate::outcome::Outcome,
    lang: &str,
) -> Vec<String> {
    if outcome.decision().resolution != crate::outcome::Resolution::ExternalSteps {
        return Vec::new();
    }
    let Ok(spec) = registry.get(provider) else {
        return Vec::new();
    };
    outcome
        .reason()
        .and_then(|reason| spec.external_steps.get(reason))
        .and_then(|steps| steps.in_language(lang))
        .map(|(_, steps)| steps.to_vec())
        .unwrap_or_default()
}

/// Hands the composed message to the channel's transport (or the folder).
async fn deliver(
    config: &AlertsConfig,
    batch: &AlertBatch,
    contact: &Contact,
    notices: &[Notice],
    preferences: &crate::queue::AlertPreferences,
) -> Result<(), SendError> {
    let texts = Texts::embedded();
    let transports = &config.transports;
    let lang = &contact.language;
    let words = |e: texts::TextsError| {
        tracing::error!(error = %e, "an alert text did not render");
        SendError::Texts
    };
    match batch.channel {
        Channel::Email => {
            let to = contact
                .email
                .as_deref()
                .ok_or(SendError::NoAddress("email"))?;
            let hours = preferences.link_ttl.as_secs() / 3600;
            let email = compose::email(texts, lang, notices, hours).map_err(words)?;
            if let Some(folder) = &transports.folder {
                let bytes = transports.email_bytes(&config.from, to, &email)?;
                transports
                    .to_folder(folder, &batch.hold, "eml", &bytes)
                    .await?;
                return Ok(());
            }
            let sender = transports
                .email
                .as_ref()
                .ok_or(SendError::NotConfigured("email"))?;
            sender.send(to, &email).await
        }
        Channel::Sms => {
            let to = contact
                .phone
                .as_deref()
                .ok_or(SendError::NoAddress("phone"))?;
            let dashboard = preferences
                .repair_url
                .as_deref()
                .or(config.repair_url.as_deref());
            let body = compose::sms(texts, lang, notices, dashboard).map_err(words)?;
            if let Some(folder) = &transports.folder {
                let record = serde_json::json!({ "to": to, "body": body });
                transports
                    .to_folder(
                        folder,
                        &batch.hold,
                        "sms.json",
                        record.to_string().as_bytes(),
                    )
                    .await?;
                return Ok(());
            }
            let gateway = transports
                .sms
                .as_ref()
                .ok_or(SendError::NotConfigured("SMS"))?;
            gateway.send(to, &body).await
        }
        Channel::Ticket => {
            let printer = contact
                .printer
                .as_ref()
                .ok_or(SendError::NoAddress("printer"))?;
            let printed_at = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string();
            let ticket = compose::ticket(texts, lang, notices, &printed_at).map_err(words)?;
            let width = if printer.columns <= 32 {
                ticket::Width::Cols32
            } else {
                ticket::Width::Cols42
            };
            let bytes = ticket::escpos(&ticket, width);
            if let Some(folder) = &transports.folder {
                let text = ticket::plain_text(&ticket, width);
                transports
                    .to_folder(folder, &batch.hold, "ticket.txt", text.as_bytes())
                    .await?;
                transports
                    .to_folder(folder, &batch.hold, "ticket.bin", &bytes)
                    .await?;
                return Ok(());
            }
            transports.printers.send(printer, &bytes).await
        }
    }
}
