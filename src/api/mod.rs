//! The HTTP API the dashboard backend uses: accounts, pairing jobs, codes, repair alerts with the
//! prompt for the acting user. Every route is scoped to the bearer token's organisation.
//!
//! The routes are registered from their handlers' `#[utoipa::path]` descriptions
//! ([`utoipa_axum::routes!`]), so the OpenAPI document ([`openapi`]) lists exactly the routes
//! there are.

pub mod accounts;
pub mod alerting;
pub mod alerts;
pub mod error;
pub mod health_checks;
pub mod jobs;
pub mod listener;
pub mod network;
pub mod openapi;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::browser::Browser;
use crate::provider::Registry;
use crate::queue::Queue;
use crate::secret::Credentials;
pub use error::{ApiError, ErrorCode, JsonBody, QueryParams};
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

/// Every route with its OpenAPI description; `/metrics` only when `with_metrics`.
pub(crate) fn described_routes(with_metrics: bool) -> OpenApiRouter<Arc<ApiState>> {
    let router = OpenApiRouter::with_openapi(openapi::base());
    let router = if with_metrics {
        router.routes(routes!(metrics))
    } else {
        router
    };
    router
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(openapi::openapi_json))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(
            accounts::get_account,
            accounts::update_account,
            accounts::delete_account
        ))
        .routes(routes!(jobs::start_job))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::submit_code))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(alerts::repair_alerts))
        .routes(routes!(network::get_webhook, network::set_webhook))
        .routes(routes!(
            health_checks::get_health_checks,
            health_checks::set_health_checks
        ))
        .routes(routes!(alerting::list_contacts, alerting::add_contact))
        .routes(routes!(alerting::update_contact, alerting::delete_contact))
        .routes(routes!(
            alerting::get_preferences,
            alerting::set_preferences
        ))
        .routes(routes!(alerting::rotate_link_secret))
        .routes(routes!(alerting::list_deliveries))
}

pub(crate) fn routes(state: Arc<ApiState>, with_metrics: bool) -> Router {
    let (router, _) = described_routes(with_metrics).split_for_parts();
    // The document served names the providers this worker has specs for.
    let document = openapi::Document::for_registry(&state.registry);
    router
        .fallback(|| async { ApiError::not_found("route") })
        .layer(axum::Extension(document))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// The headers that say who acts, on every route behind the bearer token.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by `Caller`; this type only describes them
pub struct Acting {
    /// The dashboard user acting, for the audit log (the first 200 characters are kept; `api`
    /// when absent).
    #[serde(rename = "X-Acting-User")]
    #[param(nullable = false)]
    pub acting_user: Option<String>,
    /// `true` when that user may update credentials (any other value means no). Without it
    /// credential changes and Reconnect jobs are refused (403) and alerts prompt `unauthorized` /
    /// `learn_more`.
    #[serde(rename = "X-Can-Update-Credentials")]
    #[param(nullable = false)]
    pub can_update_credentials: Option<String>,
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
                    ErrorCode::SecretInQuery,
                    "secrets are accepted in request bodies only, never in the URL",
                )
                .field(key.into_owned()));
            }
        }
        let unauthenticated = |message: &str| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthenticated,
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

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    security(()),
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}

/// What `/readyz` found.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    pub ready: bool,
    /// `ok`, or why the database did not answer.
    pub database: String,
    /// `ok`, or why the WebDriver did not answer (`ok` when this process runs no browser).
    pub webdriver: String,
}

/// Readiness: the database and the WebDriver are reachable.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready", body = Readiness),
    )
)]
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
        Json(Readiness {
            ready,
            database: report(&database),
            webdriver: report(&webdriver),
        }),
    )
}

/// Prometheus metrics (an operator endpoint).
///
/// Counts across every organisation and needs no token: serve it apart with
/// `serve --metrics-listen ADDR`, and the API listener answers 404 here.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(()),
    responses(
        (status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"),
        (status = 503, description = "`unavailable`: the job database is not answering", body = error::ErrorBody),
    )
)]
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
    Ok(([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text))
}

/// What the merchant typed into the portal's login form.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsBody {
    #[schema(min_length = 1)]
    pub username: String,
    #[schema(value_type = String, min_length = 1, write_only)]
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
