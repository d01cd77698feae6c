//! The demo's live-alert scene: a store pairs, its password changes at the portal, the next
//! health check finds the connection broken, and the email, SMS and ticket that follow are
//! written to a folder the demo names (nothing leaves this machine).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use secrecy::SecretString;

use super::sandbox::script::ScenarioCard;
use crate::alerts::transport::Transports;
use crate::alerts::AlertsConfig;
use crate::outcome::Outcome;
use crate::provider::Registry;
use crate::queue::{
    AccountSecrets, AccountUpdate, AlertLogFilter, AlertPreferences, Channel, ContactFields,
    JobKind, JobRequest, NewAccount, Printer, Queue, StoreRef,
};
use crate::secret::Credentials;

const ORG: &str = "demo-alerts";

/// What the scene showed: the check's verdict and the files its alerts became.
pub struct AlertScene {
    pub check: Outcome,
    pub files: Vec<PathBuf>,
}

/// A card that pairs with nothing but its password (no code to wait for).
pub fn pairing_card(cards: &[ScenarioCard]) -> Option<&ScenarioCard> {
    cards.iter().find(|card| {
        card.expected == Outcome::Paired
            && card.code.is_none()
            && card.delivery.is_none()
            && !card.supply_code
    })
}

async fn verdict(queue: &Queue, job: &str) -> anyhow::Result<Outcome> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let current = queue.job(ORG, job).await?.context("the scene's job")?;
        if current.state.is_final() {
            return current.outcome.context("the job ended without an outcome");
        }
        if Instant::now() > deadline {
            bail!("the scene's job did not finish in 90 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the scene with the worker already serving `queue`.
pub async fn run(
    queue: Arc<Queue>,
    registry: Arc<Registry>,
    card: &ScenarioCard,
    folder: &Path,
) -> anyhow::Result<AlertScene> {
    let preferences = AlertPreferences {
        digest_window: Duration::ZERO,
        repair_url: Some("https://dashboard.example/repair".into()),
        ..AlertPreferences::default()
    };
    queue
        .set_alert_preferences(ORG, &preferences, false)
        .await?;
    queue
        .add_contact(
            ORG,
            &ContactFields {
                name: "Store manager".into(),
                language: "en".into(),
                channels: vec![Channel::Email, Channel::Sms, Channel::Ticket],
                email: Some("manager@restaurant.example".into()),
                phone: Some("+14155550100".into()),
                printer: Some(Printer {
                    host: "192.0.2.10".into(),
                    port: 9100,
                    columns: 42,
                }),
            },
        )
        .await?;
    let platform = registry.get(&card.provider)?.name.clone();
    let account = queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: card.provider.clone(),
            secrets: AccountSecrets {
                credentials: Credentials {
                    username: card.username.clone(),
                    password: SecretString::from(card.password.clone()),
                },
                totp: None,
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await?;
    let paired = queue.submit(ORG, &account.id, JobKind::Pair, false).await?;
    let first = verdict(&queue, &paired.job.id).await?;
    if first != Outcome::Paired {
        bail!("the scene's account did not pair: {first}");
    }
    // The dashboard links the stores the portal listed to this connection.
    let job = queue
        .job(ORG, &paired.job.id)
        .await?
        .context("the pairing")?;
    let listed: Vec<crate::outcome::Store> = job
        .result
        .and_then(|result| serde_json::from_value(result["stores"].clone()).ok())
        .unwrap_or_default();
    let stores: Vec<StoreRef> = listed
        .into_iter()
        .take(2)
        .map(|store| StoreRef {
            id: store.id,
            location: store.name,
            brand: store.brand.unwrap_or_else(|| platform.clone()),
        })
        .collect();
    // The merchant changes the password on the portal: what the worker holds is now stale.
    let stale = AccountUpdate {
        credentials: Some(Credentials {
            username: card.username.clone(),
            password: SecretString::from("the-password-before-it-changed".to_string()),
        }),
        stores: Some(stores),
        ..AccountUpdate::default()
    };
    queue.update_account(ORG, &account.id, stale).await?;
    // The health check, started as the scheduler starts it: in the background, no code asked.
    let request = JobRequest {
        kind: JobKind::Recheck,
        interactive: false,
        credentials: None,
        actor: None,
    };
    let check = queue
        .start(ORG, &account.id, &request)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let found = verdict(&queue, &check.id).await?;
    let mut transports = Transports::none();
    transports.folder = Some(folder.to_path_buf());
    let mut config = AlertsConfig::new(transports);
    config.poll_interval = Duration::from_millis(50);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let delivering = tokio::spawn(crate::alerts::deliver_alerts(
        queue.clone(),
        registry,
        config,
        stopped,
    ));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = queue.alert_log(ORG, &AlertLogFilter::default(), 10).await?;
        if !log.is_empty() && log.iter().all(|row| row.state != "pending") {
            break;
        }
        if Instant::now() > deadline {
            bail!("the alerts were not written in 20 s: {log:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = delivering.await;
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(AlertScene {
        check: found,
        files,
    })
}
