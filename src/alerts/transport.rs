//! Where messages go: an SMTP server (lettre), an HTTP SMS gateway (one generic implementation,
//! a Twilio-compatible preset), network receipt printers over raw TCP (port 9100), or a folder
//! (the demo, dry runs). The SMTP server and the gateway are the operator's; printer hosts are
//! the organisation's, so they pass the network guard like webhook hosts.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::{ExposeSecret, SecretString};
use tokio::io::AsyncWriteExt;

use super::compose::Email;
use crate::queue::Printer;
use crate::reach::Reach;

/// Why a message was not handed over: operators' words, never an address's secret part.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("no {0} transport is configured")]
    NotConfigured(&'static str),
    #[error("the contact has no {0}")]
    NoAddress(&'static str),
    #[error("the email address is not valid")]
    BadAddress,
    #[error("the SMTP server refused or failed: {0}")]
    Smtp(String),
    #[error("the SMS gateway answered HTTP {0}")]
    GatewayStatus(u16),
    #[error("no answer from the SMS gateway")]
    GatewayUnreachable,
    #[error("the printer's host resolves to an address this worker may not reach")]
    PrinterRefused,
    #[error("the printer did not take the ticket: {0}")]
    Printer(String),
    #[error("writing to the outbox folder failed: {0}")]
    Folder(String),
    #[error("an alert text did not render (a defect in alerts/texts)")]
    Texts,
}

/// The SMTP relay: `smtp://host:25` (plain, loopback relays), `smtp://host:587?tls=required`
/// (STARTTLS), `smtps://host:465` (implicit TLS); credentials in the URL's user and password.
pub struct EmailSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl EmailSender {
    pub fn new(url: &SecretString, from: &str, timeout: Duration) -> Result<EmailSender, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose_secret())
            .map_err(|_| {
                "the SMTP URL is not valid (smtp://, smtps://, ?tls=required)".to_string()
            })?
            .timeout(Some(timeout))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("the alert sender {from:?} is not a mailbox: {e}"))?;
        Ok(EmailSender { transport, from })
    }

    /// Connects and greets the relay (and authenticates, when the URL carries credentials),
    /// sending nothing: `doctor`'s check.
    pub async fn check(&self) -> Result<(), SendError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::Smtp("the server ended the greeting".into())),
            Err(error) => Err(SendError::Smtp(smtp_failure(&error))),
        }
    }

    pub async fn send(&self, to: &str, email: &Email) -> Result<(), SendError> {
        let message = build_message(&self.from, to, email)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| SendError::Smtp(smtp_failure(&e)))
    }
}

/// lettre's error names the server's reply (no credentials); keep its first line only.
fn smtp_failure(error: &lettre::transport::smtp::Error) -> String {
    if error.is_transient() {
        "a temporary failure (4xx)".into()
    } else if error.is_permanent() {
        "a permanent failure (5xx)".into()
    } else if error.is_client() {
        "it offers no login this client can use (an authentication mechanism, or TLS first)".into()
    } else if error.is_tls() {
        "the TLS handshake failed".into()
    } else if error.is_timeout() {
        "it timed out".into()
    } else {
        "no answer from the SMTP server".into()
    }
}

fn build_message(from: &Mailbox, to: &str, email: &Email) -> Result<Message, SendError> {
    let to = to.parse::<Mailbox>().map_err(|_| SendError::BadAddress)?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(&email.subject)
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .map_err(|_| SendError::BadAddress)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SmsFormat {
    Form,
    Json,
}

/// An HTTP SMS gateway: a POST of form or JSON fields, each a MiniJinja snippet over `to`,
/// `from` and `body`, with basic authentication.
pub struct SmsGateway {
    pub url: String,
    pub format: SmsFormat,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    pub from: String,
    pub fields: Vec<(String, String)>,
    client: reqwest::Client,
}

impl SmsGateway {
    pub fn new(
        url: String,
        format: SmsFormat,
        user: Option<String>,
        password: Option<SecretString>,
        from: String,
        fields: Vec<(String, String)>,
        timeout: Duration,
    ) -> SmsGateway {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        SmsGateway {
            url,
            format,
            user,
            password,
            from,
            fields,
            client,
        }
    }

    /// Twilio's Messages API (and the many gateways that copy it): `base` is
    /// `https://api.twilio.com` unless a compatible one is named.
    pub fn twilio(
        base: &str,
        account: &str,
        token: SecretString,
        from: String,
        timeout: Duration,
    ) -> SmsGateway {
        let fields = [
            ("To", "{{ to }}"),
            ("From", "{{ from }}"),
            ("Body", "{{ body }}"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec();
        let url = format!(
            "{}/2010-04-01/Accounts/{account}/Messages.json",
            base.trim_end_matches('/')
        );
        SmsGateway::new(
            url,
            SmsFormat::Form,
            Some(account.to_string()),
            Some(token),
            from,
            fields,
            timeout,
        )
    }

    /// Whether the gateway answers HTTP at all (any status: a GET is not how it takes a
    /// message), sending nothing: `doctor`'s check.
    pub async fn check(&self) -> Result<u16, SendError> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .map_err(|_| SendError::GatewayUnreachable)?;
        Ok(response.status().as_u16())
    }

    pub async fn send(&self, to: &str, body: &str) -> Result<(), SendError> {
        let env = minijinja::Environment::new();
        let values = minijinja::context! { to, body, from => &self.from };
        let fields: Vec<(String, String)> = self
            .fields
            .iter()
            .map(|(name, template)| {
                let value = env.render_str(template, &values).unwrap_or_default();
                (name.clone(), value)
            })
            .collect();
        let mut request = self.client.post(&self.url);
        request = match self.format {
            SmsFormat::Form => request.form(&fields),
            SmsFormat::Json => request.json(
                &fields
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect::<serde_json::Map<_, _>>(),
            ),
        };
        if let Some(user) = &self.user {
            request = request.basic_auth(user, self.password.as_ref().map(|p| p.expose_secret()));
        }
        let response = request
            .send()
            .await
            .map_err(|_| SendError::GatewayUnreachable)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(SendError::GatewayStatus(response.status().as_u16()))
        }
    }
}

/// Network receipt printers: the ticket's bytes over raw TCP, as such printers expect.
pub struct PrinterSender {
    pub reach: Reach,
    pub timeout: Duration,
}

impl PrinterSender {
    pub async fn send(&self, printer: &Printer, bytes: &[u8]) -> Result<(), SendError> {
        let addresses = self
            .reach
            .addresses(&printer.host)
            .await
            .map_err(|_| SendError::PrinterRefused)?;
        let printing = async {
            let mut last = None;
            for ip in addresses {
                match tokio::net::TcpStream::connect((ip, printer.port)).await {
                    Ok(mut stream) => {
                        stream.write_all(bytes).await?;
                        stream.flush().await?;
                        stream.shutdown().await?;
                        return Ok(());
                    }
                    Err(error) => last = Some(error),
                }
            }
            Err(last.unwrap_or_else(|| std::io::Error::other("no address")))
        };
        match tokio::time::timeout(self.timeout, printing).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(SendError::Printer(error.kind().to_string())),
            Err(_) => Err(SendError::Printer("timed out".into())),
        }
    }
}

/// Every channel's transport; a folder, when set, takes every message instead (nothing leaves).
pub struct Transports {
    pub email: Option<EmailSender>,
    pub sms: Option<SmsGateway>,
    pub printers: PrinterSender,
    pub folder: Option<PathBuf>,
}

impl Transports {
    /// No transport but printers behind the public-only guard: email and SMS refuse until set.
    pub fn none() -> Transports {
        Transports {
            email: None,
            sms: None,
            printers: PrinterSender {
                reach: crate::reach::global(),
                timeout: Duration::from_secs(10),
            },
            folder: None,
        }
    }

    /// Writes a message to the folder as `<message>.<suffix>`.
    pub async fn to_folder(
        &self,
        folder: &std::path::Path,
        message: &str,
        suffix: &str,
        bytes: &[u8],
    ) -> Result<PathBuf, SendError> {
        tokio::fs::create_dir_all(folder)
            .await
            .map_err(|e| SendError::Folder(e.kind().to_string()))?;
        let path = folder.join(format!("{message}.{suffix}"));
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| SendError::Folder(e.kind().to_string()))?;
        Ok(path)
    }

    /// The email as the SMTP server would receive it (for the folder).
    pub fn email_bytes(&self, from: &str, to: &str, email: &Email) -> Result<Vec<u8>, SendError> {
        let from = match &self.email {
            Some(sender) => sender.from.clone(),
            None => from.parse::<Mailbox>().map_err(|_| SendError::BadAddress)?,
        };
        Ok(build_message(&from, to, email)?.formatted())
    }
}
