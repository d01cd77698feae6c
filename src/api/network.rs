//! Settings that make the worker connect somewhere on the caller's behalf: the webhook endpoint
//! and an account's code mailbox. Each host must pass the network policy ([`crate::reach`]) when
//! it is set; the connections check it again. The errors never echo the value.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;

use super::{audit, ApiError, ApiState, Caller, JsonBody};
use crate::codes::MailboxConfig;
use crate::reach::Reach;

const PUBLIC_HOST: &str = "a public host: a name that resolves, and only to public addresses, or a \
     public IP address (loopback, private, link-local, metadata and other reserved addresses are refused)";

/// IMAP over TLS with the system's trusted CAs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailboxBody {
    pub host: String,
    #[serde(default = "imaps_port")]
    pub port: u16,
    pub username: String,
    pub password: SecretString,
    #[serde(default = "inbox")]
    pub folder: String,
}

fn imaps_port() -> u16 {
    993
}

fn inbox() -> String {
    "INBOX".into()
}

impl MailboxBody {
    pub(crate) fn into_config(self) -> Result<crate::codes::MailboxConfig, ApiError> {
        use secrecy::ExposeSecret;
        let host_ok =
            !self.host.trim().is_empty() && !self.host.contains(['/', ' ', ':']) && self.port != 0;
        if !host_ok {
            return Err(ApiError::invalid(
                "mailbox.host",
                "a host name and a port other than 0 (993 by default)",
            ));
        }
        if self.username.trim().is_empty() || self.password.expose_secret().is_empty() {
            return Err(ApiError::invalid(
                "mailbox.username",
                "the mailbox username and password must not be empty",
            ));
        }
        Ok(crate::codes::MailboxConfig {
            host: self.host.trim().to_string(),
            port: self.port,
            username: self.username,
            password: self.password,
            ca_file: None,
            folder: self.folder,
        })
    }
}

/// The mailbox's host must be one the worker may reach.
pub async fn vet_mailbox(reach: &Reach, mailbox: Option<&MailboxConfig>) -> Result<(), ApiError> {
    let Some(mailbox) = mailbox else {
        return Ok(());
    };
    reach
        .vet(&mailbox.host)
        .await
        .map_err(|_| ApiError::invalid("mailbox.host", format!("must be {PUBLIC_HOST}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    pub url: String,
}

/// An absolute http(s) URL whose host may be reached. IP literals are checked as they are (a
/// client never resolves them); names by every address they resolve to now.
async fn vet_webhook(reach: &Reach, text: &str) -> Result<url::Url, ApiError> {
    let url = url::Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "https" | "http") && url.host().is_some())
        .ok_or_else(|| ApiError::invalid("url", "must be an absolute http(s) URL"))?;
    let allowed = match url.host() {
        Some(url::Host::Ipv4(ip)) => reach.check_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => reach.check_ip(ip.into()),
        Some(url::Host::Domain(name)) => reach.vet(name).await,
        None => Err(crate::reach::ReachError::Unresolved),
    };
    allowed.map_err(|_| {
        ApiError::invalid(
            "url",
            format!("must be an absolute http(s) URL on {PUBLIC_HOST}"),
        )
    })?;
    Ok(url)
}

/// Registers the organisation's endpoint and returns its signing secret (shown once).
pub async fn set_webhook(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let url = vet_webhook(&state.reach, &body.url).await?;
    let secret = state
        .queue
        .set_webhook(&caller.organisation, url.as_str())
        .await?;
    audit(&state, &caller, None, None, "webhook.set", "ok").await;
    Ok(Json(
        serde_json::json!({ "url": url.as_str(), "secret": secret }),
    ))
}

/// The endpoint and its latest deliveries.
pub async fn get_webhook(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let url = state
        .queue
        .webhook_url(&caller.organisation)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let deliveries = state.queue.deliveries(&caller.organisation, 50).await?;
    Ok(Json(
        serde_json::json!({ "url": url, "deliveries": deliveries }),
    ))
}
