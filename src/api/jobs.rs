//! Job routes: start a Reconnect or a re-check, follow it (long-poll), hand it the verification
//! code it waits for, cancel it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::error::{BodyErrors, CallerErrors, ErrorBody, ErrorCode};
use super::{audit, Acting, ApiError, ApiState, Caller, CredentialsBody, JsonBody, QueryParams};
use crate::queue::{Job, JobKind, JobRequest, QueueError, StartError, SubmitError};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartJobBody {
    /// `pair`: Reconnect with new credentials. `recheck`: "I have completed these steps" with
    /// the stored ones.
    pub kind: JobKind,
    /// Required for `pair` (the Reconnect form); not accepted for `recheck`.
    #[serde(default)]
    pub credentials: Option<CredentialsBody>,
    /// The merchant is at the dashboard and can type a code (default true).
    #[serde(default = "yes")]
    #[schema(default = true)]
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

/// Any whole number of seconds: one past `u64` waits as long as `u64::MAX` (both mean "30").
fn seconds<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text = String::deserialize(d)?;
    match text.parse::<u64>() {
        Ok(seconds) => Ok(Some(seconds)),
        Err(_) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(Some(u64::MAX))
        }
        Err(error) => Err(serde::de::Error::custom(error)),
    }
}

/// An integer of no particular width, as [`seconds`] reads it (a schema of its own loses the
/// field's doc comment: it is repeated here).
fn seconds_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::Integer)
        .minimum(Some(0))
        .description(Some(
            "Long-poll: wait up to this many seconds (at most 30; more waits 30) for the job to change.",
        ))
        .build()
}

/// A date-time, or empty as [`empty_as_none`] reads it.
fn after_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    utoipa::openapi::schema::OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .description(Some(
            "The `updated_at` the caller already has; the wait ends when the job's differs. Empty \
             means none.",
        ))
        .build()
        .into()
}

fn yes() -> bool {
    true
}

/// Start a Reconnect (`pair`, needs credential permission) or a re-check (`recheck`).
#[utoipa::path(
    post,
    path = "/v1/accounts/{id}/jobs",
    tag = "jobs",
    params(("id" = String, Path, description = "The account id."), Acting),
    request_body = StartJobBody,
    responses(
        (status = 202, description = "Queued", body = Job),
        CallerErrors,
        (status = 403, description = "`forbidden`: this user may not update credentials", body = ErrorBody),
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
        (status = 409, description = "`account_busy` (the live job is in `job`), `credentials_rejected` or `login_budget_spent`", body = ErrorBody),
        BodyErrors,
    )
)]
pub(super) async fn start_job(
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
                ErrorCode::AccountBusy,
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
            audit(
                &state,
                &caller,
                Some(&id),
                None,
                &action,
                error.code.as_ref(),
            )
            .await;
            Err(error)
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WaitQuery {
    /// Long-poll: wait up to this many seconds (at most 30; more waits 30) for the job to change.
    #[serde(default, deserialize_with = "seconds")]
    #[param(schema_with = seconds_schema)]
    pub wait: Option<u64>,
    /// The `updated_at` the caller already has; the wait ends when the job's differs.
    #[serde(default, deserialize_with = "empty_as_none")]
    #[param(schema_with = after_schema)]
    pub after: Option<chrono::DateTime<chrono::Utc>>,
}

/// Read a job; long-poll with `wait` and `after`.
#[utoipa::path(
    get,
    path = "/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job id."), WaitQuery, Acting),
    responses(
        (status = 200, description = "The job", body = Job),
        CallerErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub(super) async fn get_job(
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The verification code the merchant typed.
    #[schema(value_type = String, write_only)]
    pub code: SecretString,
}

/// Submit the verification code a job awaits.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/code",
    tag = "jobs",
    params(("id" = String, Path, description = "The job id."), Acting),
    request_body = CodeBody,
    responses(
        (status = 202, description = "The code was handed to the job", body = Job),
        CallerErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
        (status = 409, description = "`not_awaiting_code` or `code_already_submitted`", body = ErrorBody),
        BodyErrors,
        (status = 422, description = "`invalid_field`: a body of the wrong shape, or a code of the wrong shape", body = ErrorBody),
    )
)]
pub(super) async fn submit_code(
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
                    error.code.as_ref(),
                )
                .await;
            }
            Err(error)
        }
    }
}

/// Cancel a job.
#[utoipa::path(
    post,
    path = "/v1/jobs/{id}/cancel",
    tag = "jobs",
    params(("id" = String, Path, description = "The job id."), Acting),
    responses(
        (status = 200, description = "The job, cancelled (or already final)", body = Job),
        CallerErrors,
        (status = 404, description = "`not_found`: unknown or foreign id", body = ErrorBody),
    )
)]
pub(super) async fn cancel_job(
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
