//! Codes a portal emails to a mailbox the merchant configured for it, read over IMAP with TLS.
//!
//! The watch starts *before* the login (it remembers the mailbox's next UID), so only mail that
//! arrives after the code was requested counts; messages are read with `BODY.PEEK[]` and never
//! marked read; a code once used is never typed again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use regex::Regex;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use zeroize::Zeroizing;

use crate::reach::{Reach, ReachError};

/// Where the merchant's codes arrive. The password never prints.
#[derive(Clone)]
pub struct MailboxConfig {
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    /// PEM file of the CAs to trust (a self-signed server); default: the system's bundle.
    pub ca_file: Option<PathBuf>,
    pub folder: String,
}

impl std::fmt::Debug for MailboxConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailboxConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// How a provider's code emails look: who sends them and where the code is.
#[derive(Debug, Clone)]
pub struct EmailCodeRule {
    /// Matched against the From header (name and address).
    pub sender: Regex,
    /// The code: capture group 1, or the whole match.
    pub pattern: Regex,
}

/// Infrastructure failures of the mailbox: never `invalid_credentials` of the portal.
///
/// Everything before the server's IMAP greeting (refused, timed out, reset, not TLS, an untrusted
/// certificate) reads the same to the API caller: otherwise a mailbox setting would be a port
/// scanner telling open ports from closed ones. The detail is kept in `reason` and logged at
/// debug for operators.
#[derive(Debug, thiserror::Error)]
pub enum MailboxError {
    #[error("{}", UNREACHABLE)]
    Unreachable {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("{}", UNREACHABLE)]
    Tls { host: String, reason: String },
    #[error("the mailbox server's address is not one this worker may reach (a private, loopback or reserved network)")]
    Forbidden { host: String },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error(
        "the IMAP server refused the mailbox login for {username} (check the mailbox password)"
    )]
    Login { username: String },
    #[error("IMAP error: {0}")]
    Protocol(String),
}

const UNREACHABLE: &str = "could not connect to the mailbox server (check its host and port: IMAP over TLS, 993 by default)";

const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
/// How often a mailbox without IDLE is asked for new mail while a code is awaited.
const POLL: Duration = Duration::from_millis(300);

/// The longest one IDLE lasts before the folder is searched again anyway: a server may report a
/// change that happened just before IDLE began ahead of its continuation (where the client
/// library files it away), and that mail is then found on the next search.
const IDLE_LOOK_AGAIN: Duration = Duration::from_secs(5);

fn broken_idle() -> MailboxError {
    MailboxError::Protocol("the mailbox connection broke during IDLE".into())
}

type ImapSession = async_imap::Session<TlsStream<TcpStream>>;

pub struct MailboxWatch {
    /// `None` only while the session is IDLE (the handle owns it) or after an IDLE broke it.
    session: Option<ImapSession>,
    /// The server announces IDLE (RFC 2177): new mail is pushed, not polled for.
    idle: bool,
    /// How many waits IDLE ended because the server said something changed.
    idle_wakeups: u32,
    folder: String,
    next_uid: u32,
    /// Codes already handed out: a code is typed once at most.
    used: Vec<Zeroizing<String>>,
}

fn tls_config(config: &MailboxConfig) -> Result<tokio_rustls::rustls::ClientConfig, MailboxError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::CertificateDer;
    let path = config
        .ca_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(SYSTEM_CA_BUNDLE));
    let ca_error = |reason: String| MailboxError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&path).map_err(|e| ca_error(e.to_string()))? {
        roots
            .add(cert.map_err(|e| ca_error(e.to_string()))?)
            .map_err(|e| ca_error(e.to_string()))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    Ok(
        tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| MailboxError::Tls {
                host: config.host.clone(),
                reason: e.to_string(),
            })?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Connects over TLS and logs in; shared by the watch and the sandbox's mail delivery. The host
/// must pass the process's network policy ([`crate::reach::global`]).
pub async fn connect(
    config: &MailboxConfig,
    timeout: Duration,
) -> Result<ImapSession, MailboxError> {
    connect_with(config, timeout, &crate::reach::global()).await
}

/// [`connect`] under an explicit network policy. The host is resolved once, every address is
/// checked, and the connection goes to a checked address (TLS still names the host), so a
/// rebinding name cannot swap in another address between the check and the connect.
pub async fn connect_with(
    config: &MailboxConfig,
    timeout: Duration,
    reach: &Reach,
) -> Result<ImapSession, MailboxError> {
    let result = connect_checked(config, timeout, reach).await;
    if let Err(MailboxError::Unreachable { reason, .. } | MailboxError::Tls { reason, .. }) =
        &result
    {
        // For operators only: host, port and an I/O or TLS reason, never a password.
        tracing::debug!(host = %config.host, port = config.port, %reason, "mailbox connection failed");
    }
    result
}

async fn connect_checked(
    config: &MailboxConfig,
    timeout: Duration,
    reach: &Reach,
) -> Result<ImapSession, MailboxError> {
    let unreachable = |reason: String| MailboxError::Unreachable {
        host: config.host.clone(),
        port: config.port,
        reason,
    };
    let tls_failed = |reason: String| MailboxError::Tls {
        host: config.host.clone(),
        reason,
    };
    let tls = tokio_rustls::TlsConnector::from(Arc::new(tls_config(config)?));
    let name = rustls_pki_types::ServerName::try_from(config.host.clone())
        .map_err(|e| tls_failed(e.to_string()))?;
    let deadline = tokio::time::Instant::now() + timeout;
    let addresses = match tokio::time::timeout_at(deadline, reach.addresses(&config.host)).await {
        Err(_) => return Err(unreachable("name resolution timed out".into())),
        Ok(Err(ReachError::Unresolved)) => {
            return Err(unreachable("the name does not resolve".into()))
        }
        Ok(Err(ReachError::Blocked(_))) => {
            return Err(MailboxError::Forbidden {
                host: config.host.clone(),
            })
        }
        Ok(Ok(addresses)) => addresses,
    };
    let mut last = String::from("no address");
    let mut tcp = None;
    for ip in addresses {
        let address = std::net::SocketAddr::new(ip, config.port);
        match tokio::time::timeout_at(deadline, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                tcp = Some(stream);
                break;
            }
            Ok(Err(error)) => last = format!("{address}: {error}"),
            Err(_) => {
                last = format!("{address}: connection timed out");
                break;
            }
        }
    }
    let tcp = tcp.ok_or_else(|| unreachable(last))?;
    let stream = tokio::time::timeout_at(deadline, tls.connect(name, tcp))
        .await
        .map_err(|_| tls_failed("handshake timed out".into()))?
        .map_err(|e| tls_failed(e.to_string()))?;
    let mut client = async_imap::Client::new(stream);
    // Until the greeting, this may be any TLS server (an HTTPS port): it reads as unreachable.
    match tokio::time::timeout_at(deadline, client.read_response()).await {
        Err(_) => return Err(unreachable("no IMAP greeting".into())),
        Ok(Err(error)) => return Err(unreachable(format!("no IMAP greeting: {error}"))),
        Ok(Ok(None)) => return Err(unreachable("closed before the IMAP greeting".into())),
        Ok(Ok(Some(_))) => {}
    }
    let login = client.login(&config.username, config.password.expose_secret());
    match tokio::time::timeout(timeout, login).await {
        Ok(Ok(session)) => Ok(session),
        Ok(Err(_)) => Err(MailboxError::Login {
            username: config.username.clone(),
        }),
        Err(_) => Err(MailboxError::Protocol("the login did not answer".into())),
    }
}

pub(crate) fn protocol(e: async_imap::error::Error) -> MailboxError {
    MailboxError::Protocol(e.to_string())
}

/// The code in one raw message, if it is from the provider and carries one.
pub fn extract_code(raw: &[u8], rule: &EmailCodeRule) -> Option<Zeroizing<String>> {
    let message = mail_parser::MessageParser::default().parse(raw)?;
    let from = message
        .from()
        .map(|addrs| {
            addrs
                .iter()
                .map(|a| {
                    format!(
                        "{} <{}>",
                        a.name().unwrap_or_default(),
                        a.address().unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    if !rule.sender.is_match(&from) {
        return None;
    }
    let mut texts: Vec<String> = vec![message.subject().unwrap_or_default().to_string()];
    texts.extend(message.body_text(0).map(|t| t.into_owned()));
    texts.iter().find_map(|text| {
        let caps = rule.pattern.captures(text)?;
        let code = caps.get(1).or_else(|| caps.get(0))?;
        // `\d` is any script's digit: the portal's input takes ASCII.
        Some(Zeroizing::new(crate::digits::to_ascii_digits(
            code.as_str(),
        )))
    })
}

impl MailboxWatch {
    /// Logs in and remembers where new mail will start. Call before the code is requested.
    pub async fn start(config: &MailboxConfig) -> Result<MailboxWatch, MailboxError> {
        MailboxWatch::start_with(config, &crate::reach::global()).await
    }

    /// [`MailboxWatch::start`] under an explicit network policy.
    pub async fn start_with(
        config: &MailboxConfig,
        reach: &Reach,
    ) -> Result<MailboxWatch, MailboxError> {
        let mut session = connect_with(config, Duration::from_secs(10), reach).await?;
        let mailbox = session.select(&config.folder).await.map_err(protocol)?;
        let next_uid = mailbox.uid_next.unwrap_or(1);
        let idle = session
            .capabilities()
            .await
            .is_ok_and(|capabilities| capabilities.has_str("IDLE"));
        Ok(MailboxWatch {
            session: Some(session),
            idle,
            idle_wakeups: 0,
            folder: config.folder.clone(),
            next_uid,
            used: Vec::new(),
        })
    }

    /// Waits until a new message from the provider carries an unused code, or `wait` passes.
    pub async fn wait_for_code(
        &mut self,
        rule: &EmailCodeRule,
        wait: Duration,
    ) -> Result<Option<SecretString>, MailboxError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let session = self.session.as_mut().ok_or_else(broken_idle)?;
            // `UID n:*` always returns the newest message even when n is past it: filter.
            let uids = session
                .uid_search(format!("UID {}:*", self.next_uid))
                .await
                .map_err(protocol)?;
            let mut fresh: Vec<u32> = uids
                .into_iter()
                .filter(|uid| *uid >= self.next_uid)
                .collect();
            fresh.sort_unstable();
            for uid in fresh {
                let messages: Vec<_> = session
                    .uid_fetch(uid.to_string(), "BODY.PEEK[]")
                    .await
                    .map_err(protocol)?
                    .try_collect()
                    .await
                    .map_err(protocol)?;
                self.next_uid = uid + 1;
                for message in messages {
                    let Some(code) = message.body().and_then(|raw| extract_code(raw, rule)) else {
                        continue;
                    };
                    if !self.used.contains(&code) {
                        self.used.push(code.clone());
                        return Ok(Some(SecretString::from(code.to_string())));
                    }
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            if self.idle {
                self.idle_until_news(left.min(IDLE_LOOK_AGAIN)).await?;
            } else {
                tokio::time::sleep(POLL.min(left)).await;
                // SELECT again so the server reports mail that arrived meanwhile.
                let session = self.session.as_mut().ok_or_else(broken_idle)?;
                session.select(&self.folder).await.map_err(protocol)?;
            }
        }
    }

    /// Whether the server pushes new mail (IDLE) rather than being polled.
    pub fn uses_idle(&self) -> bool {
        self.idle
    }

    /// How many waits so far ended because the server announced a change.
    pub fn idle_wakeups(&self) -> u32 {
        self.idle_wakeups
    }

    /// IDLE until the server reports a change (new mail: `EXISTS`) or `at_most` passes, then
    /// DONE: the selected folder's state is current for the next search.
    async fn idle_until_news(&mut self, at_most: Duration) -> Result<(), MailboxError> {
        let session = self.session.take().ok_or_else(broken_idle)?;
        let mut handle = session.idle();
        handle.init().await.map_err(protocol)?;
        let response = {
            let (news, _interrupt) = handle.wait_with_timeout(at_most);
            news.await.map_err(protocol)?
        };
        if matches!(
            response,
            async_imap::extensions::idle::IdleResponse::NewData(_)
        ) {
            self.idle_wakeups += 1;
        }
        self.session = Some(handle.done().await.map_err(protocol)?);
        Ok(())
    }

    pub async fn close(mut self) {
        if let Some(mut session) = self.session.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), session.logout()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> EmailCodeRule {
        EmailCodeRule {
            sender: Regex::new(r"(?i)@uber\.com").unwrap(),
            pattern: Regex::new(r"\b(\d{4})\b").unwrap(),
        }
    }

    #[test]
    fn code_from_the_providers_mail_only() {
        let mail = b"From: Uber <noreply@uber.com>\r\nTo: o@sandbox.test\r\nSubject: Your Uber verification code\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Your code is <b>4821</b>. It expires in 10 minutes.</p></body></html>\r\n";
        assert_eq!(extract_code(mail, &rule()).unwrap().as_str(), "4821");
        let other =
            b"From: Phisher <x@evil.test>\r\nSubject: code 1234\r\n\r\nYour code is 1234\r\n";
        assert!(extract_code(other, &rule()).is_none());
    }

    #[test]
    fn mail_without_a_code_gives_none() {
        let mail = b"From: Uber <noreply@uber.com>\r\nSubject: Welcome to Uber Eats Manager\r\n\r\nThanks for joining.\r\n";
        assert!(extract_code(mail, &rule()).is_none());
        assert!(extract_code(b"\x00\xff garbage", &rule()).is_none());
    }
}
