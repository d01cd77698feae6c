//! The organisation's schedule of health checks: how often each healthy account is logged into
//! again in the background, so a broken connection is found before the orders stop.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error::{BodyErrors, CallerErrors};
use super::{audit, Acting, ApiError, ApiState, Caller, JsonBody};

/// Shortest and longest time between checks: a login every few minutes would look like an
/// attack to the platforms; a check a week apart finds nothing in time.
const FEWEST_MINUTES: u32 = 15;
const MOST_MINUTES: u32 = 7 * 24 * 60;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckBody {
    /// Minutes between two checks of one healthy account (15 to 10080), or 0 to turn scheduled
    /// checks off. Each account's checks are spread over the period.
    #[schema(minimum = 0, maximum = 10080)]
    pub every_minutes: u32,
}

/// The schedule in force.
#[derive(Serialize, ToSchema)]
pub struct HealthCheckSchedule {
    /// Minutes between two checks of one healthy account; 0 when checks are off.
    pub every_minutes: u64,
    pub enabled: bool,
}

fn schedule(period: Option<Duration>) -> HealthCheckSchedule {
    HealthCheckSchedule {
        every_minutes: period.map_or(0, |p| p.as_secs() / 60),
        enabled: period.is_some(),
    }
}

/// The organisation's health-check schedule (the worker's default until it sets one).
#[utoipa::path(
    get,
    path = "/v1/health-checks",
    tag = "health checks",
    params(Acting),
    responses(
        (status = 200, description = "The schedule in force", body = HealthCheckSchedule),
        CallerErrors,
    )
)]
pub async fn get_health_checks(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<HealthCheckSchedule>, ApiError> {
    let period = state.queue.check_period(&caller.organisation).await?;
    Ok(Json(schedule(period)))
}

/// Sets how often each healthy account is checked; its accounts are spread over the new period.
#[utoipa::path(
    put,
    path = "/v1/health-checks",
    tag = "health checks",
    params(Acting),
    request_body = HealthCheckBody,
    responses(
        (status = 200, description = "The schedule now in force", body = HealthCheckSchedule),
        CallerErrors,
        BodyErrors,
    )
)]
pub async fn set_health_checks(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    JsonBody(body): JsonBody<HealthCheckBody>,
) -> Result<Json<HealthCheckSchedule>, ApiError> {
    let minutes = body.every_minutes;
    if minutes != 0 && !(FEWEST_MINUTES..=MOST_MINUTES).contains(&minutes) {
        return Err(ApiError::invalid(
            "every_minutes",
            format!("0 (off) or {FEWEST_MINUTES} to {MOST_MINUTES} minutes"),
        ));
    }
    let period = (minutes > 0).then(|| Duration::from_secs(u64::from(minutes) * 60));
    state
        .queue
        .set_check_period(&caller.organisation, period)
        .await?;
    audit(&state, &caller, None, None, "health_checks.set", "ok").await;
    Ok(Json(schedule(period)))
}
