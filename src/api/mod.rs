//! The HTTP API the dashboard backend uses: accounts, pairing jobs, codes, repair alerts with the
//! prompt for the acting user. Every route is scoped to the bearer token's organisation.

pub mod alerts;
pub mod error;
pub mod listener;
pub mod network;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::browser::Browser;
use crate::codes::TotpSource;
use crate::provider::Registry;
use crate::queue::{
    Account, AccountSecrets, AccountUpdate, Health, Job, JobKind, JobRequest, NewAccount, Queue,
    QueueError, StartError, StoreRef, SubmitError,
};
use crate::secret::Credentials;
pub use error::{ApiError, JsonBody, QueryParams};
pub use listener::{serve, serve_metrics, serve_with, ServeOptions};
pub use network::MailboxBody;

/// Bodies are small JSON documents; anything bigger is a mistake or an attack.
pub const BODY_LIMIT: usize = 32 * 1024;

pub struct ApiState {
    pub queue: Arc<Queue>,
    pub registry: Arc<Registry>,
    /// Checked by `/readyz` when set.
    pub browser: Option<Browser>,
    /// Where webhook endpoints and mailboxes may point.
    pub reach: crate::reach::Reach,
}

/// The API's routes, `/metrics` included.
pub fn router(state: Arc<ApiState>) -> Router {
    routes(state, true)
}

pub(crate) fn routes(state: Arc<ApiState>, with_metrics: bool) -> Router {
    let router = Router::new();
    let router = if with_metrics {
        router.route("/metrics", get(metrics))
    } else {
        router
    };
    router
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi))
        .route("/v1/accounts", get(list_accounts).post(create_account))
        .route(
            "/v1/accounts/{id}",
            get(get_account)
                .patch(update_account)
                .delete(delete_account),
        )
        .route("/v1/accounts/{id}/jobs", post(start_job))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/code", post(submit_code))
        .route("/v1/jobs/{id}/cancel", post(cancel_job))
        .route("/v1/repair-alerts", get(repair_alerts))
        .route(
            "/v1/webhook",
            get(network::get_webhook).put(network::set_webhook),
        )
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Who is calling: the token's organisation, and the dashboard user acting (headers
/// `X-Acting-User`, `X-Can-Update-Credentials: true`). Without the permission header the user
/// may not touch credentials.
pub struct Caller {
    pub organisation: String,
    pub actor: String,
    pub may_update_credentials: bool,
}

/// Query parameters that must never carry secrets: requests with them are refused.
const SECRET_PARAMS: &[&str] = &["password", "code", "secret", "totp", "token", "credentials"];

impl FromRequestParts<Arc<ApiState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, ApiError> {
        if let Some(query) = parts.uri.query() {
            let secret = url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| {
                let key = key.to_ascii_lowercase();
                SECRET_PARAMS.iter().any(|s| key.contains(s))
            });
            if let Some((key, _)) = secret {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "secret_in_query",
                    "secrets are accepted in request bodies only, never in the URL",
                )
                .field(key.into_owned()));
            }
        }
        let unauthenticated = |message: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                message.to_string(),
            )
        };
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| unauthenticated("send `Authorization: Bearer <token>` (create one with `pairing-worker tokens create`)"))?;
        let organisation = state
            .queue
            .organisation_for_token(token)
            .await?
            .ok_or_else(|| unauthenticated("unknown or revoked token"))?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        Ok(Caller {
            organisation,
            actor: header("x-acting-user")
                .unwrap_or("api")
                .chars()
                .take(200)
                .collect(),
            may_update_credentials: header("x-can-update-credentials")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }
}

impl Caller {
    fn require_credential_permission(&self) -> Result<(), ApiError> {
        if self.may_update_credentials {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "this user may not update credentials (X-Can-Update-Credentials is not true)",
            ))
        }
    }
}

async fn readyz(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let database = state.queue.ping().await.map_err(|e| e.to_string());
    let webdriver = match &state.browser {
        Some(browser) => browser.ready().await.map_err(|e| e.to_string()),
        None => Ok(()),
    };
    let ready = database.is_ok() && webdriver.is_ok();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let report = |r: &Result<(), String>| match r {
        Ok(()) => "ok".to_string(),
        Err(e) => e.clone(),
    };
    (
        status,
        Json(serde_json::json!({
            "ready": ready,
            "database": report(&database),
            "webdriver": report(&webdriver),
        })),
    )
}

/// The OpenAPI document (`docs/openapi.json`, generated by `scripts/gen-openapi.py`).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

pub(crate) async fn metrics(
    State(state): State<Arc<ApiState>>,
) -> Result<impl IntoResponse, ApiError> {
    let database = crate::metrics::DatabaseCounts {
        jobs_by_state: (state.queue.count_by_state().await?)
            .into_iter()
            .map(|(job_state, count)| (job_state.as_ref().to_string(), count))
            .collect(),
        finished: state.queue.outcome_counts().await?,
    };
    let text = crate::metrics::render(&database);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    pub username: String,
    pub password: SecretString,
}

impl CredentialsBody {
    fn into_credentials(self) -> Result<Credentials, ApiError> {
        use secrecy::ExposeSecret;
        if self.username.trim().is_empty() {
            return Err(ApiError::invalid(
                "credentials.username",
                "must not be empty",
            ));
        }
        if self.password.expose_secret().is_empty() {
            return Err(ApiError::invalid(
                "credentials.password",
                "must not be empty",
            ));
        }
        Ok(Credentials {
            username: self.username,
            password: self.password,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateAccountBody {
    pub provider: String,
    pub credentials: CredentialsBody,
    /// Base32 secret or `otpauth://` URL of the portal's authenticator-app 2FA.
    #[serde(default)]
    pub totp_secret: Option<SecretString>,
    /// The mailbox the platform's codes are sent to, read over IMAPS.
    #[serde(default)]
    pub mailbox: Option<MailboxBody>,
    #[serde(default)]
    pub stores: Vec<StoreRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccountBody {
    #[serde(default)]
    pub credentials: Option<CredentialsBody>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub totp_secret: Option<Option<SecretString>>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    pub mailbox: Option<Option<MailboxBody>>,
    #[serde(default)]
    pub stores: Option<Vec<StoreRef>>,
}

/// Absent → `None` (unchanged); `null` → `Some(None)` (removed); a value → `Some(Some(..))`.
fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn check_totp(secret: &Option<SecretString>) -> Result<(), ApiError> {
    if let Some(secret) = secret {
        TotpSource::parse(secret).map_err(|e| ApiError::invalid("totp_secret", e.to_string()))?;
    }
    Ok(())
}

fn check_stores(stores: &[StoreRef]) -> Result<(), ApiError> {
    for (i, store) in stores.iter().enumerate() {
        if store.id.trim().is_empty() {
            return Err(ApiError::invalid(
                &format!("stores[{i}].id"),
                "must not be empty",
            ));
        }
    }
    Ok(())
}

/// An account as the API shows it: never a secret, always its health.
#[derive(Serialize)]
pub struct AccountView {
    #[serde(flatten)]
    pub account: Account,
    pub health: Health,
}

async fn view(queue: &Queue, account: Account) -> Result<AccountView, ApiError> {
    let health = queue.health(&account.id).await?;
    Ok(AccountView { account, health })
}

async fn list_accounts(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<Vec<AccountView>>, ApiError> {
    let mut healths = state.queue.healths(&caller.organisation).await?;
    let accounts = state.queue.accounts(&caller.organisation).await?;
    Ok(Json(
        accounts
            .into_iter()
            .map(|account| AccountView {
                health: healths.remove(&account.id).unwrap_or(Health::Unknown),
                account,
            })
            .collect(),
    ))
}

async fn create_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateAccountBody>,
) -> Result<(StatusCode, Json<AccountView>), ApiError> {
    caller.require_credential_permission()?;
    state.registry.get(&body.provider).map_err(|_| {
        let mut supported: Vec<&str> = state.registry.supported().map(|s| s.id.as_str()).collect();
        supported.sort_unstable();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_provider",
            format!(
                "not a supported provider: expected one of {}",
                supported.join(", ")
            ),
        )
        .field("provider")
    })?;
    check_totp(&body.totp_secret)?;
    check_stores(&body.stores)?;
    let mailbox = body.mailbox.map(MailboxBody::into_config).transpose()?;
    network::vet_mailbox(&state.reach, mailbox.as_ref()).await?;
    let account = state
        .queue
        .create_account(NewAccount {
            organisation: caller.organisation.clone(),
            provider: body.provider,
            secrets: AccountSecrets {
                credentials: body.credentials.into_credentials()?,
                totp: body.totp_secret,
                mailbox,
            },
            stores: body.stores,
        })
        .await?;
    audit(
        &state,
        &caller,
        Some(&account.id),
        None,
        "credentials.create",
        "ok",
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(view(&state.queue, account).await?),
    ))
}

async fn get_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<AccountView>, ApiError> {
    let account = state
        .queue
        .account(&caller.organisation, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("account"))?;
    Ok(Json(view(&state.queue, account).await?))
}

async fn update_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateAccountBody>,
) -> Result<Json<AccountView>, ApiError> {
    let touches_secrets =
        body.credentials.is_some() || body.totp_secret.is_some() || body.mailbox.is_some();
    if touches_secrets {
        caller.require_credential_permission()?;
    }
    if let Some(secret) = &body.totp_secret {
        check_totp(secret)?;
    }
    if let Some(stores) = &body.stores {
        check_stores(stores)?;
    }
    let update = AccountUpdate {
        credentials: body
            .credentials
            .map(CredentialsBody::into_credentials)
            .transpose()?,
        totp: body.totp_secret,
        mailbox: body
            .mailbox
            .map(|mailbox| mailbox.map(MailboxBody::into_config).transpose())
            .transpose()?,
        stores: body.stores,
    };
    let mailbox = update.mailbox.as_ref().and_then(Option::as_ref);
    network::vet_mailbox(&state.reach, mailbox).await?;
    let account = state
        .queue
        .update_account(&caller.organisation, &id, update)
        .await?;
    if touches_secrets {
        audit(&state, &caller, Some(&id), None, "credentials.update", "ok").await;
    }
    Ok(Json(view(&state.queue, account).await?))
}

async fn delete_account(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_credential_permission()?;
    if !state
        .queue
        .delete_account(&caller.organisation, &id)
        .await?
    {
        return Err(ApiError::not_found("account"));
    }
    audit(&state, &caller, Some(&id), None, "credentials.delete", "ok").await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartJobBody {
    pub kind: JobKind,
    /// Required for `pair` (the Reconnect form); not accepted for `recheck`.
    #[serde(default)]
    pub credentials: Option<CredentialsBody>,
    /// The merchant is at the dashboard and can type a code (default true).
    #[serde(default = "yes")]
    pub interactive: bool,
}

/// `?after=` (empty) means no value, as form encoders send it.
fn empty_as_none<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, D::Error> {
    let text = Option::<String>::deserialize(d)?.unwrap_or_default();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

fn yes() -> bool {
    true
}

async fn start_job(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<StartJobBody>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    // What the request asks is checked before the account's state: a request that can never
    // be accepted is refused for what it is.
    let credentials = match (body.kind, body.credentials) {
        (JobKind::Pair, Some(credentials)) => {
            caller.require_credential_permission()?;
            Some(credentials.into_credentials()?)
        }
        (JobKind::Pair, None) => {
            return Err(ApiError::invalid(
                "credentials",
                "a pair job (Reconnect) needs the credentials the merchant entered",
            ))
        }
        (JobKind::Recheck, Some(_)) => {
            return Err(ApiError::invalid(
                "credentials",
                "a recheck uses the stored credentials; send new ones with a pair job",
            ))
        }
        (JobKind::Recheck, None) => None,
    };
    let request = JobRequest {
        kind: body.kind,
        interactive: body.interactive,
        credentials,
        actor: Some(caller.actor.clone()),
    };
    match state.queue.start(&caller.organisation, &id, &request).await {
        Ok(job) => Ok((StatusCode::ACCEPTED, Json(job))),
        Err(StartError::Busy(live)) => {
            let mut error = ApiError::new(
                StatusCode::CONFLICT,
                "account_busy",
                "this account already has a job in progress: follow it instead",
            );
            error.job = Some(live);
            Err(error)
        }
        Err(StartError::Refused(SubmitError::Queue(QueueError::UnknownAccount(_)))) => {
            Err(ApiError::not_found("account"))
        }
        Err(StartError::Refused(refusal)) => {
            let error = ApiError::from(refusal);
            let action = format!("job.{}", body.kind.as_ref());
            audit(&state, &caller, Some(&id), None, &action, error.code).await;
            Err(error)
        }
    }
}

#[derive(Deserialize)]
pub struct WaitQuery {
    /// Long-poll: wait up to this many seconds (max 30) for the job to change.
    #[serde(default)]
    pub wait: Option<u64>,
    /// The `updated_at` the caller already has; the wait ends when the job's differs.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub after: Option<chrono::DateTime<chrono::Utc>>,
}

async fn get_job(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    QueryParams(query): QueryParams<WaitQuery>,
) -> Result<Json<Job>, ApiError> {
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(query.wait.unwrap_or(0).min(30));
    let mut changes = state.queue.changes();
    loop {
        let job = state
            .queue
            .job(&caller.organisation, &id)
            .await?
            .ok_or_else(|| ApiError::not_found("job"))?;
        let changed = query.after.is_none_or(|after| job.updated_at != after);
        if changed || job.state.is_final() || tokio::time::Instant::now() >= deadline {
            return Ok(Json(job));
        }
        // Woken by a change this process makes; a change by another process shows on the poll.
        let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: SecretString,
}

async fn submit_code(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CodeBody>,
) -> Result<(StatusCode, Json<Job>), ApiError> {
    let result = state
        .queue
        .submit_code(&caller.organisation, &id, &body.code)
        .await;
    let job = state.queue.job(&caller.organisation, &id).await?;
    let account = job.as_ref().map(|j| j.account_id.clone());
    match result {
        Ok(()) => {
            audit(
                &state,
                &caller,
                account.as_deref(),
                Some(&id),
                "code.submit",
                "accepted",
            )
            .await;
            let job = job.ok_or_else(|| ApiError::not_found("job"))?;
            Ok((StatusCode::ACCEPTED, Json(job)))
        }
        Err(error) => {
            let error = ApiError::from(error);
            if account.is_some() {
                audit(
                    &state,
                    &caller,
                    account.as_deref(),
                    Some(&id),
                    "code.submit",
                    error.code,
                )
                .await;
            }
            Err(error)
        }
    }
}

async fn cancel_job(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    let job = state.queue.cancel(&caller.organisation, &id).await?;
    audit(
        &state,
        &caller,
        Some(&job.account_id),
        Some(&id),
        "job.cancel",
        job.state.as_ref(),
    )
    .await;
    Ok(Json(job))
}

#[derive(Deserialize)]
pub struct AlertsQuery {
    /// Language of the external steps (`en`, `fr`, `es`, `it`, ...); falls back to English.
    #[serde(default)]
    pub lang: Option<String>,
}

async fn repair_alerts(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(query): QueryParams<AlertsQuery>,
) -> Result<Json<alerts::AlertList>, ApiError> {
    let lang = query.lang.unwrap_or_else(|| "en".into());
    let mut list = Vec::new();
    let healths = state.queue.healths(&caller.organisation).await?;
    let live = state.queue.live_jobs(&caller.organisation).await?;
    for account in state.queue.accounts(&caller.organisation).await? {
        let Some(health) = healths.get(&account.id) else {
            continue; // never checked: nothing to repair yet
        };
        let spec = state.registry.get(&account.provider).ok();
        if let Some(alert) = alerts::alert_for(
            &account,
            health,
            live.get(&account.id),
            spec.as_deref(),
            caller.may_update_credentials,
            &lang,
        ) {
            list.push(alert);
        }
    }
    Ok(Json(alerts::AlertList { alerts: list }))
}

/// Audit rows are best effort: a failed audit write is logged, never a failed request.
pub(crate) async fn audit(
    state: &ApiState,
    caller: &Caller,
    account: Option<&str>,
    job: Option<&str>,
    action: &str,
    result: &str,
) {
    if let Err(error) = state
        .queue
        .audit(
            &caller.organisation,
            &caller.actor,
            account,
            job,
            action,
            result,
        )
        .await
    {
        tracing::warn!(%error, action, "audit row not written");
    }
}
