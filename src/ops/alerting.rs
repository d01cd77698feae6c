//! `serve`'s live-alert settings: the dashboard's repair page, the SMTP relay, the SMS gateway,
//! and an outbox folder for dry runs. Secrets (the SMTP URL's password, the gateway's) come
//! from the environment and are never shown.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use secrecy::SecretString;

use pairing_worker::alerts::transport::{EmailSender, SmsFormat, SmsGateway, Transports};
use pairing_worker::alerts::AlertsConfig;
use pairing_worker::reach::Reach;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmsKind {
    /// Twilio's Messages API (or a compatible one at --sms-url).
    Twilio,
    /// Any HTTP gateway: --sms-url, --sms-format and one --sms-field per field.
    Http,
}

#[derive(Args, Clone)]
pub struct AlertArgs {
    /// The dashboard's repair page that signed alert links open (an organisation may set its
    /// own); without one, alerts carry no link.
    #[arg(long, env = "PAIRING_WORKER_ALERT_REPAIR_URL")]
    alert_repair_url: Option<String>,
    /// The sender of alert email.
    #[arg(
        long,
        env = "PAIRING_WORKER_ALERT_FROM",
        default_value = "Store alerts <alerts@localhost>"
    )]
    alert_from: String,
    /// The SMTP relay: `smtps://user:password@host:465` (implicit TLS),
    /// `smtp://user:password@host:587?tls=required` (STARTTLS), `smtp://host:25` (plain, for a
    /// relay on this host).
    #[arg(long, env = "PAIRING_WORKER_SMTP_URL", hide_env_values = true)]
    smtp_url: Option<String>,
    #[arg(long, value_enum)]
    sms_gateway: Option<SmsKind>,
    /// The gateway's URL (for twilio: another base than https://api.twilio.com).
    #[arg(long, env = "PAIRING_WORKER_SMS_URL")]
    sms_url: Option<String>,
    /// Basic-auth user (for twilio: the account SID).
    #[arg(long, env = "PAIRING_WORKER_SMS_USER")]
    sms_user: Option<String>,
    /// Basic-auth password (for twilio: the auth token).
    #[arg(long, env = "PAIRING_WORKER_SMS_PASSWORD", hide_env_values = true)]
    sms_password: Option<String>,
    /// The sender number or id messages come from.
    #[arg(long, env = "PAIRING_WORKER_SMS_FROM", default_value = "")]
    sms_from: String,
    #[arg(long, value_enum, default_value = "form")]
    sms_format: SmsFormat,
    /// One field of an http gateway's request, `NAME=TEMPLATE` over `{{ to }}`, `{{ from }}`
    /// and `{{ body }}` (repeat for each field).
    #[arg(long = "sms-field")]
    sms_fields: Vec<String>,
    /// Write every alert to this folder (`.eml`, `.sms.json`, `.ticket.txt` and `.ticket.bin`)
    /// instead of sending it.
    #[arg(long)]
    alert_outbox: Option<PathBuf>,
}

impl AlertArgs {
    pub fn config(&self, reach: Reach) -> anyhow::Result<AlertsConfig> {
        let timeout = Duration::from_secs(15);
        let mut transports = Transports::none();
        transports.printers.reach = reach;
        transports.folder = self.alert_outbox.clone();
        if let Some(url) = &self.smtp_url {
            let url = SecretString::from(url.clone());
            transports.email = Some(
                EmailSender::new(&url, &self.alert_from, timeout)
                    .map_err(anyhow::Error::msg)
                    .context("--smtp-url")?,
            );
        }
        let password = self.sms_password.clone().map(SecretString::from);
        transports.sms = match self.sms_gateway {
            None => None,
            Some(SmsKind::Twilio) => {
                let account = self
                    .sms_user
                    .clone()
                    .context("--sms-gateway twilio needs --sms-user (the account SID)")?;
                let token =
                    password.context("--sms-gateway twilio needs PAIRING_WORKER_SMS_PASSWORD")?;
                let base = self.sms_url.as_deref().unwrap_or("https://api.twilio.com");
                Some(SmsGateway::twilio(
                    base,
                    &account,
                    token,
                    self.sms_from.clone(),
                    timeout,
                ))
            }
            Some(SmsKind::Http) => {
                let url = self
                    .sms_url
                    .clone()
                    .context("--sms-gateway http needs --sms-url")?;
                let mut fields = Vec::new();
                for field in &self.sms_fields {
                    let Some((name, template)) = field.split_once('=') else {
                        bail!("--sms-field {field:?}: expected NAME=TEMPLATE");
                    };
                    fields.push((name.to_string(), template.to_string()));
                }
                if fields.is_empty() {
                    bail!("--sms-gateway http needs --sms-field for each field it posts");
                }
                Some(SmsGateway::new(
                    url,
                    self.sms_format,
                    self.sms_user.clone(),
                    password,
                    self.sms_from.clone(),
                    fields,
                    timeout,
                ))
            }
        };
        if let Some(url) = &self.alert_repair_url {
            let ok = url::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
            if !ok {
                bail!("--alert-repair-url {url:?}: expected an absolute https URL");
            }
        }
        let mut config = AlertsConfig::new(transports);
        config.repair_url = self.alert_repair_url.clone();
        config.from = self.alert_from.clone();
        Ok(config)
    }
}
