//! Live alerts over the API: the organisation's contacts and their channels, its alert
//! preferences (threshold, cap, digest window, recovery notices, repair links), and the
//! delivery log.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{BodyErrors, CallerErrors, ErrorBody};
use super::{audit, Acting, ApiError, ApiState, Caller, JsonBody, QueryParams};
use crate::alerts::texts::Texts;
use crate::queue::{
    AlertDelivery, AlertLogFilter, AlertPreferences, Channel, Contact, ContactFields, Printer,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PrinterBody {
    /// A network receipt printer's public host (the same network policy as webhook hosts).
    #[schema(min_length = 1)]
    pub host: String,
    #[serde(default = "raw_print_port")]
    #[schema(default = 9100, minimum = 1, maximum = 65535)]
    pub port: u16,
    /// 42 for 80 mm paper, 32 for 58 mm.
    #[serde(default = "wide")]
    #[schema(default = 42)]
    pub columns: u8,
}

fn raw_print_port() -> u16 {
    9100
}

fn wide() -> u8 {
    42
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    /// en, fr, es, pt, de, nl, it, pl, ko, ar, ja, zh or th (a region such as `fr-CA` is kept
    /// as its language).
    pub language: String,
    /// The channels this contact hears on; each needs its address.
    #[schema(min_items = 1)]
    pub channels: Vec<Channel>,
    #[serde(default)]
    pub email: Option<String>,
    /// E.164, e.g. `+14155550100`.
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub printer: Option<PrinterBody>,
}

#[derive(Serialize, ToSchema)]
pub struct ContactList {
    pub contacts: Vec<Contact>,
}

fn looks_like_phone(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or_default();
    (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

async fn checked(state: &ApiState, body: ContactBody) -> Result<ContactFields, ApiError> {
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid("name", "1 to 100 characters"));
    }
    let language = body
        .language
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let texts = Texts::embedded();
    if !texts.has(&language) {
        let known: Vec<&str> = texts.languages().map(|l| l.language.as_str()).collect();
        return Err(ApiError::invalid(
            "language",
            format!("one of {}", known.join(", ")),
        ));
    }
    let mut channels = body.channels;
    channels.sort();
    channels.dedup();
    if channels.is_empty() {
        return Err(ApiError::invalid("channels", "at least one channel"));
    }
    let email = body.email.map(|e| e.trim().to_string());
    if let Some(email) = &email {
        if email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err(ApiError::invalid("email", "an email address"));
        }
    }
    if let Some(phone) = &body.phone {
        if !looks_like_phone(phone) {
            return Err(ApiError::invalid(
                "phone",
                "an E.164 number: + and 7 to 15 digits",
            ));
        }
    }
    let printer = match body.printer {
        Some(printer) => {
            let host = printer.host.trim().to_string();
            if host.is_empty() || host.contains(['/', ' ']) || printer.port == 0 {
                return Err(ApiError::invalid(
                    "printer.host",
                    "a host name and a port other than 0 (9100 by default)",
                ));
            }
            if !matches!(printer.columns, 32 | 42) {
                return Err(ApiError::invalid("printer.columns", "42 or 32"));
            }
            state.reach.vet(&host).await.map_err(|_| {
                ApiError::invalid(
                    "printer.host",
                    "a public host this worker may reach (as for webhooks)",
                )
            })?;
            Some(Printer {
                host,
                port: printer.port,
                columns: printer.columns,
            })
        }
        None => None,
    };
    for channel in &channels {
        let (present, field) = match channel {
            Channel::Email => (email.is_some(), "email"),
            Channel::Sms => (body.phone.is_some(), "phone"),
            Channel::Ticket => (printer.is_some(), "printer"),
        };
        if !present {
            return Err(ApiError::invalid(
                field,
                format!("required for the {} channel", channel.as_ref()),
            ));
        }
    }
    Ok(ContactFields {
        name,
        language,
        channels,
        email,
        phone: body.phone,
        printer,
    })
}

/// The organisation's alert contacts.
#[utoipa::path(
    get,
    path = "/v1/alert-contacts",
    tag = "live alerts",
    params(Acting),
    responses((status = 200, description = "Every contact", body = ContactList), CallerErrors)
)]
pub async fn list_contacts(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<ContactList>, ApiError> {
    let contacts = state.queue.contacts(&caller.organisation).await?;
    Ok(Json(ContactList { contacts }))
}

/// Adds a contact who hears of broken connections on the channels it names.
#[utoipa::path(
    post,
    path = "/v1/alert-contacts",
    tag = "live alerts",
    params(Acting),
    request_body = ContactBody,
    responses(
        (status = 201, description = "The contact", body = Contact),
        CallerErrors,
        BodyErrors,
    )
)]
pub async fn add_contact(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let fields = checked(&state, body).await?;
    let contact = state
        .queue
        .add_contact(&caller.organisation, &fields)
        .await?;
    audit(&state, &caller, None, None, "alert_contact.add", "ok").await;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// Replaces a contact.
#[utoipa::path(
    put,
    path = "/v1/alert-contacts/{id}",
    tag = "live alerts",
    params(("id" = String, Path, description = "The contact id."), Acting),
    request_body = ContactBody,
    responses(
        (status = 200, description = "The contact", body = Contact),
        CallerErrors,
        BodyErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub async fn update_contact(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ContactBody>,
) -> Result<Json<Contact>, ApiError> {
    let fields = checked(&state, body).await?;
    let contact = state
        .queue
        .update_contact(&caller.organisation, &id, &fields)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))?;
    audit(&state, &caller, None, None, "alert_contact.update", "ok").await;
    Ok(Json(contact))
}

/// Removes a contact; messages still owed to it are dropped.
#[utoipa::path(
    delete,
    path = "/v1/alert-contacts/{id}",
    tag = "live alerts",
    params(("id" = String, Path, description = "The contact id."), Acting),
    responses(
        (status = 204, description = "Removed"),
        CallerErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub async fn delete_contact(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state
        .queue
        .delete_contact(&caller.organisation, &id)
        .await?
    {
        return Err(ApiError::not_found("contact"));
    }
    audit(&state, &caller, None, None, "alert_contact.delete", "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

/// Alert preferences; every field left out keeps its value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesBody {
    /// Checks in a row that must find the same store-level failure before it is alerted (1 to
    /// 10). Refused passwords, locks, walls and code pages are alerted on the first.
    #[schema(minimum = 1, maximum = 10)]
    pub threshold: Option<u32>,
    /// Messages per contact and channel per 24 hours (1 to 100); the rest wait for one digest.
    #[schema(minimum = 1, maximum = 100)]
    pub cap_per_day: Option<u32>,
    /// Breaks within this many seconds of the first go out as one digest (0 to 3600).
    #[schema(minimum = 0, maximum = 3600)]
    pub digest_window_seconds: Option<u32>,
    /// Tell contacts when an alerted connection works again.
    pub recovery: Option<bool>,
    /// How long a repair link works (1 to 720 hours).
    #[schema(minimum = 1, maximum = 720)]
    pub link_ttl_hours: Option<u32>,
    /// The dashboard page repair links open (absolute https URL); the worker's default when
    /// left unset.
    pub repair_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PreferencesView {
    pub threshold: u32,
    pub cap_per_day: u32,
    pub digest_window_seconds: u64,
    pub recovery: bool,
    pub link_ttl_hours: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_url: Option<String>,
    /// Signs the repair links (see docs/alerts.md); shown only when it was just made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_secret: Option<String>,
}

fn view(preferences: AlertPreferences, link_secret: Option<String>) -> PreferencesView {
    PreferencesView {
        threshold: preferences.threshold,
        cap_per_day: preferences.cap_per_day,
        digest_window_seconds: preferences.digest_window.as_secs(),
        recovery: preferences.recovery,
        link_ttl_hours: preferences.link_ttl.as_secs() / 3600,
        repair_url: preferences.repair_url,
        link_secret,
    }
}

fn within(field: &str, value: Option<u32>, low: u32, high: u32) -> Result<Option<u32>, ApiError> {
    match value {
        Some(v) if !(low..=high).contains(&v) => {
            Err(ApiError::invalid(field, format!("{low} to {high}")))
        }
        other => Ok(other),
    }
}

/// The organisation's alert preferences.
#[utoipa::path(
    get,
    path = "/v1/alert-preferences",
    tag = "live alerts",
    params(Acting),
    responses((status = 200, description = "The preferences in force", body = PreferencesView), CallerErrors)
)]
pub async fn get_preferences(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<PreferencesView>, ApiError> {
    let preferences = state.queue.alert_preferences(&caller.organisation).await?;
    Ok(Json(view(preferences, None)))
}

/// Changes the alert preferences.
#[utoipa::path(
    put,
    path = "/v1/alert-preferences",
    tag = "live alerts",
    params(Acting),
    request_body = PreferencesBody,
    responses(
        (status = 200, description = "The preferences now in force", body = PreferencesView),
        CallerErrors,
        BodyErrors,
    )
)]
pub async fn set_preferences(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<PreferencesBody>,
) -> Result<Json<PreferencesView>, ApiError> {
    let mut preferences = state.queue.alert_preferences(&caller.organisation).await?;
    if let Some(v) = within("threshold", body.threshold, 1, 10)? {
        preferences.threshold = v;
    }
    if let Some(v) = within("cap_per_day", body.cap_per_day, 1, 100)? {
        preferences.cap_per_day = v;
    }
    if let Some(v) = within("digest_window_seconds", body.digest_window_seconds, 0, 3600)? {
        preferences.digest_window = Duration::from_secs(v.into());
    }
    if let Some(v) = within("link_ttl_hours", body.link_ttl_hours, 1, 720)? {
        preferences.link_ttl = Duration::from_secs(u64::from(v) * 3600);
    }
    if let Some(v) = body.recovery {
        preferences.recovery = v;
    }
    if let Some(url) = body.repair_url {
        let parsed = url::Url::parse(&url)
            .ok()
            .filter(|u| u.scheme() == "https" && u.host().is_some() && u.fragment().is_none())
            .ok_or_else(|| ApiError::invalid("repair_url", "an absolute https URL"))?;
        preferences.repair_url = Some(parsed.to_string());
    }
    let secret = state
        .queue
        .set_alert_preferences(&caller.organisation, &preferences, false)
        .await?;
    audit(&state, &caller, None, None, "alert_preferences.set", "ok").await;
    Ok(Json(view(preferences, secret)))
}

#[derive(Serialize, ToSchema)]
pub struct LinkSecret {
    /// Signs the repair links from now on; links signed before stop verifying.
    pub link_secret: String,
}

/// Makes a new link-signing secret and shows it (this once).
#[utoipa::path(
    post,
    path = "/v1/alert-preferences/link-secret",
    tag = "live alerts",
    params(Acting),
    responses((status = 200, description = "The new secret", body = LinkSecret), CallerErrors)
)]
pub async fn rotate_link_secret(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<LinkSecret>, ApiError> {
    let preferences = state.queue.alert_preferences(&caller.organisation).await?;
    let secret = state
        .queue
        .set_alert_preferences(&caller.organisation, &preferences, true)
        .await?
        .ok_or_else(|| crate::queue::QueueError::Corrupt("no link secret was made".into()))?;
    audit(
        &state,
        &caller,
        None,
        None,
        "alert_link_secret.rotate",
        "ok",
    )
    .await;
    Ok(Json(LinkSecret {
        link_secret: secret,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    pub channel: Option<Channel>,
    /// `pending`, `sent`, `failed` or `skipped`.
    pub state: Option<String>,
    pub account_id: Option<String>,
    pub contact_id: Option<String>,
    /// At most this many, newest first (1 to 500, 100 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryList {
    pub deliveries: Vec<AlertDelivery>,
}

/// The delivery log: every message owed, per recipient and channel, and how it went.
#[utoipa::path(
    get,
    path = "/v1/alert-deliveries",
    tag = "live alerts",
    params(DeliveriesQuery, Acting),
    responses(
        (status = 200, description = "Newest first", body = DeliveryList),
        CallerErrors,
        (status = 422, description = "`invalid_field`: a filter out of range", body = ErrorBody),
    )
)]
pub async fn list_deliveries(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(query): QueryParams<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = within("limit", query.limit, 1, 500)?.unwrap_or(100);
    if let Some(state) = &query.state {
        if !matches!(state.as_str(), "pending" | "sent" | "failed" | "skipped") {
            return Err(ApiError::invalid(
                "state",
                "pending, sent, failed or skipped",
            ));
        }
    }
    let filter = AlertLogFilter {
        channel: query.channel,
        state: query.state,
        account_id: query.account_id,
        contact_id: query.contact_id,
    };
    let deliveries = state
        .queue
        .alert_log(&caller.organisation, &filter, i64::from(limit))
        .await?;
    Ok(Json(DeliveryList { deliveries }))
}
