//! Repair alerts: one per account needing attention, with everything the dashboard's repair
//! pop-up shows, and the prompt for the acting user decided in one table.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::CallerErrors;
use super::{ApiError, ApiState, Caller, QueryParams};

use crate::outcome::{self, Outcome, Resolution};
use crate::provider::ProviderSpec;
use crate::queue::{Account, Change, Health, Job, JobState, StoreRef};

/// What the dashboard shows the acting user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// The credential form (and, if asked, the code).
    Reconnect,
    /// Re-authentication would fix it, but this user may not update credentials.
    Unauthorized,
    /// The fix is in the provider's portal; this user may update credentials, so show the steps
    /// and "I have completed these steps" / "I'll do it later".
    ExternalSteps,
    /// The fix is in the provider's portal and this user may not act on it: explain only.
    LearnMore,
    /// The portal is down or rate-limiting: nothing to do but wait.
    RetryLater,
    /// Our adapter does not know the page: support has it.
    ContactSupport,
}

/// THE prompt table: the resolution the outcome table chose, crossed with the user's permission.
pub fn prompt(resolution: Resolution, may_update_credentials: bool) -> Option<Prompt> {
    Some(match (resolution, may_update_credentials) {
        (Resolution::None, _) => return None,
        (Resolution::Reconnect, true) => Prompt::Reconnect,
        (Resolution::Reconnect, false) => Prompt::Unauthorized,
        (Resolution::ExternalSteps, true) => Prompt::ExternalSteps,
        (Resolution::ExternalSteps, false) => Prompt::LearnMore,
        (Resolution::RetryLater, _) => Prompt::RetryLater,
        (Resolution::ContactSupport, _) => Prompt::ContactSupport,
    })
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Steps {
    pub language: String,
    pub steps: Vec<String>,
    pub support_url: String,
}

/// What the last re-check found, for the banner after "I have completed these steps".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecheckResult {
    /// The same error again: offer retry or contact support.
    Unchanged,
    /// A different error than before (its own resolution and prompt apply).
    Changed,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActiveJob {
    pub id: String,
    pub state: JobState,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Alert {
    pub account_id: String,
    pub provider: String,
    #[serde(with = "outcome::compact")]
    #[schema(schema_with = outcome::compact::schema)]
    pub error: Outcome,
    #[schema(value_type = String)]
    pub category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub since: DateTime<Utc>,
    /// The stores (location + brand) this connection feeds.
    pub impacted_stores: Vec<StoreRef>,
    pub resolution: Resolution,
    pub prompt: Prompt,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_steps: Option<Steps>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recheck: Option<RecheckResult>,
    /// A job already under way for this account (follow it instead of starting one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_job: Option<ActiveJob>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
}

/// The alert for one account, or `None` when it is healthy (or never checked).
pub fn alert_for(
    account: &Account,
    health: &Health,
    live: Option<&Job>,
    spec: Option<&ProviderSpec>,
    may_update_credentials: bool,
    lang: &str,
) -> Option<Alert> {
    let Health::NeedsAttention {
        error,
        resolution,
        since,
        last_change,
    } = health
    else {
        return None;
    };
    let external_steps = (*resolution == Resolution::ExternalSteps)
        .then(|| spec.and_then(|spec| steps_for(spec, *error, lang)))
        .flatten();
    let recheck = match last_change {
        Change::Unchanged => Some(RecheckResult::Unchanged),
        Change::Changed => Some(RecheckResult::Changed),
        _ => None,
    };
    Some(Alert {
        account_id: account.id.clone(),
        provider: account.provider.clone(),
        error: *error,
        category: error.category(),
        reason: error.reason().map(str::to_string),
        since: *since,
        impacted_stores: account.stores.clone(),
        resolution: *resolution,
        prompt: prompt(*resolution, may_update_credentials)?,
        external_steps,
        recheck,
        active_job: live.map(|job| ActiveJob {
            id: job.id.clone(),
            state: job.state,
        }),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsQuery {
    /// Language of the external steps (`en`, `fr`, `es`, `it`, ...); falls back to English.
    #[serde(default)]
    pub lang: Option<String>,
}

/// Every account needing attention, with the prompt for the acting user.
#[utoipa::path(
    get,
    path = "/v1/repair-alerts",
    tag = "alerts",
    params(AlertsQuery, super::Acting),
    responses(
        (status = 200, description = "The organisation's repair alerts", body = AlertList),
        CallerErrors,
    )
)]
pub(super) async fn repair_alerts(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    QueryParams(query): QueryParams<AlertsQuery>,
) -> Result<Json<AlertList>, ApiError> {
    let lang = query.lang.unwrap_or_else(|| "en".into());
    let mut list = Vec::new();
    let healths = state.queue.healths(&caller.organisation).await?;
    let live = state.queue.live_jobs(&caller.organisation).await?;
    for account in state.queue.accounts(&caller.organisation).await? {
        let Some(health) = healths.get(&account.id) else {
            continue; // never checked: nothing to repair yet
        };
        let spec = state.registry.get(&account.provider).ok();
        if let Some(alert) = alert_for(
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
    Ok(Json(AlertList { alerts: list }))
}

/// The provider's steps for this outcome in `lang`.
fn steps_for(spec: &ProviderSpec, error: Outcome, lang: &str) -> Option<Steps> {
    let steps = spec.external_steps.get(error.reason()?)?;
    let (language, list) = steps.in_language(lang)?;
    Some(Steps {
        language: language.to_string(),
        steps: list.to_vec(),
        support_url: steps.support_url.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_table_follows_permission_and_resolution() {
        use Prompt::*;
        let cases = [
            (Resolution::Reconnect, true, Some(Reconnect)),
            (Resolution::Reconnect, false, Some(Unauthorized)),
            (Resolution::ExternalSteps, true, Some(ExternalSteps)),
            (Resolution::ExternalSteps, false, Some(LearnMore)),
            (Resolution::RetryLater, false, Some(RetryLater)),
            (Resolution::ContactSupport, true, Some(ContactSupport)),
            (Resolution::None, true, None),
        ];
        for (resolution, may, expected) in cases {
            assert_eq!(prompt(resolution, may), expected, "{resolution:?} {may}");
        }
        // A user without the permission never gets the credential form.
        for outcome in Outcome::all() {
            assert_ne!(
                prompt(outcome.decision().resolution, false),
                Some(Reconnect)
            );
        }
    }
}
