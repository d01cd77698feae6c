//! Settings that make the worker connect somewhere on the caller's behalf: the webhook endpoint
//! and an account's code mailbox. Each host must pass the network policy ([`crate::reach`]) when
//! it is set; the connections check it again. The errors never echo the value.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{BodyErrors, CallerErrors, ErrorBody};
use super::{audit, Acting, ApiError, ApiState, Caller, JsonBody};
use crate::codes::MailboxConfig;
use crate::queue::DeliveryRecord;
use crate::reach::Reach;

const PUBLIC_HOST: &str = "a public host: a name that resolves, and only to public addresses, or a \
     public IP address (loopback, private, link-local, metadata and other reserved addresses are refused)";

/// The mailbox the platform's verification codes are sent to: IMAP over TLS with the system's
/// trusted CAs.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailboxBody {
    /// A public host: a name that resolves only to public addresses, or a public IP address.
    /// Loopback, private, link-local, shared (CGNAT), cloud metadata and other reserved
    /// addresses are refused (422), unless the operator allows them (`serve
    /// --allow-private-hosts`); the check runs again on every connection.
    #[schema(min_length = 1)]
    pub host: String,
    #[serde(default = "imaps_port", deserialize_with = "port")]
    #[schema(default = 993, minimum = 1, maximum = 65535)]
    pub port: u16,
    #[schema(min_length = 1)]
    pub username: String,
    #[schema(value_type = String, min_length = 1, write_only)]
    pub password: SecretString,
    #[serde(default = "inbox")]
    #[schema(default = "INBOX")]
    pub folder: String,
}

fn imaps_port() -> u16 {
    993
}

/// A port number. JSON Schema (and so the OpenAPI document) counts `993.0` as an integer too, so
/// an integral number is accepted however it is written.
fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    use serde::de::{Error, Unexpected};
    let number = serde_json::Number::deserialize(d)?;
    let integral = number.as_u64().or_else(|| {
        number
            .as_f64()
            .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u16::MAX)).contains(f))
            .map(|f| f as u64)
    });
    integral
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| Error::invalid_value(Unexpected::Other("number"), &"u16"))
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// An absolute http(s) URL on a public host: a name that resolves only to public addresses,
    /// or a public IP address. Loopback, private, link-local, shared (CGNAT), cloud metadata and
    /// other reserved addresses are refused (422), unless the operator allows them (`serve
    /// --allow-private-hosts`); the check runs again on every connection.
    pub url: String,
}

/// A registered endpoint and its signing secret, shown this once.
#[derive(Serialize, ToSchema)]
pub struct WebhookSecret {
    pub url: String,
    /// Signs every delivery: `Pairing-Worker-Signature: t=<unix seconds>,v1=<hex
    /// HMAC-SHA256(secret, "<t>.<body>")>`.
    pub secret: String,
}

/// The endpoint and its latest deliveries (newest first, at most 50).
#[derive(Serialize, ToSchema)]
pub struct WebhookView {
    pub url: String,
    pub deliveries: Vec<DeliveryRecord>,
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

/// Register the webhook endpoint; returns its signing secret, shown once.
#[utoipa::path(
    put,
    path = "/v1/webhook",
    tag = "webhook",
    params(Acting),
    request_body = WebhookBody,
    responses(
        (status = 200, description = "Registered", body = WebhookSecret),
        CallerErrors,
        BodyErrors,
        (status = 422, description = "`invalid_field`: not an absolute http(s) URL, or a host this worker may not reach", body = ErrorBody),
    )
)]
pub async fn set_webhook(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<WebhookBody>,
) -> Result<Json<WebhookSecret>, ApiError> {
    let url = vet_webhook(&state.reach, &body.url).await?;
    let secret = state
        .queue
        .set_webhook(&caller.organisation, url.as_str())
        .await?;
    audit(&state, &caller, None, None, "webhook.set", "ok").await;
    Ok(Json(WebhookSecret {
        url: url.to_string(),
        secret,
    }))
}

/// The webhook endpoint and its latest deliveries.
#[utoipa::path(
    get,
    path = "/v1/webhook",
    tag = "webhook",
    params(Acting),
    responses(
        (status = 200, description = "The endpoint and its latest deliveries", body = WebhookView),
        CallerErrors,
        (status = 404, description = "`not_found`: no webhook registered", body = ErrorBody),
    )
)]
pub async fn get_webhook(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<WebhookView>, ApiError> {
    let url = state
        .queue
        .webhook_url(&caller.organisation)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook"))?;
    let deliveries = state.queue.deliveries(&caller.organisation, 50).await?;
    Ok(Json(WebhookView { url, deliveries }))
}
