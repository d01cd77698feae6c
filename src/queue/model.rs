//! What the queue stores and returns: accounts without secrets, jobs and their state machine, and
//! each account's history.

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::{LeaseLost, QueueError};
use crate::codes::{MailboxConfig, SubmitError as ShapeError};
use crate::outcome::{self, CodeRequest, Outcome, Resolution};
use crate::secret::Credentials;

/// A store the connection feeds: what the repair alert lists as impacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StoreRef {
    /// The provider's own store id (what the portal's store list shows).
    #[schema(min_length = 1)]
    pub id: String,
    pub location: String,
    pub brand: String,
}

/// An account as anyone may read it: never a secret.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Account {
    pub id: String,
    pub organisation: String,
    pub provider: String,
    pub stores: Vec<StoreRef>,
    pub credentials_version: i64,
    /// The portal rejected the current credentials: nothing logs in with them again.
    pub credentials_rejected: bool,
    /// A verification code is outstanding until then: no new login before.
    pub code_pending_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What only the job that logs in may see.
#[derive(Clone)]
pub struct AccountSecrets {
    pub credentials: Credentials,
    /// Base32 secret or `otpauth://` URL.
    pub totp: Option<SecretString>,
    pub mailbox: Option<MailboxConfig>,
}

pub struct NewAccount {
    pub organisation: String,
    pub provider: String,
    pub secrets: AccountSecrets,
    pub stores: Vec<StoreRef>,
}

/// Fields left `None` stay as they are; `Some(None)` removes an optional secret.
#[derive(Default)]
pub struct AccountUpdate {
    pub credentials: Option<Credentials>,
    pub totp: Option<Option<SecretString>>,
    pub mailbox: Option<Option<MailboxConfig>>,
    pub stores: Option<Vec<StoreRef>>,
}

/// `pair`: the merchant entered credentials (Reconnect). `recheck`: stored credentials, after
/// "I have completed these steps" or a scheduled health check.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobKind {
    Pair,
    Recheck,
}

/// ```text
/// queued ──claim──▶ running ──code page──▶ awaiting_code ──code typed──▶ running
///   ▲                 │  └─ lease expired (worker died) ─▶ queued (rescued)
///   └── transient ────┤
///       outcome       ├──▶ succeeded (paired)
///                     └──▶ failed (any other final outcome, refusal, attempts spent)
/// queued / running / awaiting_code ──cancel──▶ cancelled
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    strum::EnumString,
    strum::EnumIter,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    AwaitingCode,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub account_id: String,
    #[serde(skip)]
    pub organisation: String,
    /// The worker that last claimed it (the audit log's actor for its logins).
    #[serde(skip)]
    pub worker: Option<String>,
    pub provider: String,
    pub kind: JobKind,
    pub interactive: bool,
    pub state: JobState,
    /// The credentials this job logs in with (a rejection blocks exactly this version).
    pub credentials_version: i64,
    /// Runs so far (transient retries and rescues included).
    pub attempts: i64,
    /// When a queued job becomes ready (a retry's backoff).
    pub run_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_request: Option<CodeRequest>,
    /// While awaiting a second code: the portal's verdict on the one before.
    #[serde(
        with = "outcome::compact::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = outcome::compact::schema)]
    pub code_verdict: Option<Outcome>,
    #[serde(
        with = "outcome::compact::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(schema_with = outcome::compact::schema)]
    pub outcome: Option<Outcome>,
    /// The pairing report: outcome, decision, the portal's words, stores found, steps (no
    /// secrets: the engine never records a typed value).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// Why a job failed without an outcome (infrastructure, refusal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the latest run was claimed by a worker.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct Submitted {
    pub job: Job,
    /// `false`: the account already had a live job, returned instead.
    pub created: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the portal rejected the stored credentials: they are not tried again until the merchant enters new ones (Reconnect)")]
    CredentialsRejected,
    #[error("this account's failed-login budget is spent: stored credentials are not tried again before {until} (a Reconnect with new credentials is still possible)")]
    LoginBudgetSpent { until: DateTime<Utc> },
}

/// Proof of holding a job: every write names the token, and a stale token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub job: String,
    pub token: String,
}

pub struct Claimed {
    pub job: Job,
    pub lease: Lease,
}

#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error(transparent)]
    Lost(#[from] LeaseLost),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("job is {state:?}, not waiting for a code")]
    NotAwaiting { state: JobState },
    #[error(transparent)]
    Shape(#[from] ShapeError),
    #[error("a code was already submitted for this request and is being checked")]
    AlreadySubmitted,
}

/// One finished job's verdict on its account, compared with the verdict before it.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryEntry {
    pub job_id: String,
    pub kind: JobKind,
    pub at: DateTime<Utc>,
    #[serde(with = "outcome::compact")]
    pub outcome: Outcome,
    #[serde(
        with = "outcome::compact::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous: Option<Outcome>,
    pub change: Change,
}

/// What a run changed, the re-check result the dashboard shows.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    strum::EnumString,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Change {
    /// Healthy before, healthy now.
    Healthy,
    /// Healthy before (or never checked), broken now.
    Broke,
    /// Broken before, paired now.
    Resolved,
    /// The same error again: offer retry or contact support.
    Unchanged,
    /// A different error: its own resolution applies (Reconnect when re-auth repairable).
    Changed,
}

impl Change {
    pub fn between(previous: Option<Outcome>, now: Outcome) -> Change {
        let was_broken = previous.is_some_and(|p| p != Outcome::Paired);
        match (was_broken, now == Outcome::Paired) {
            (false, true) => Change::Healthy,
            (false, false) => Change::Broke,
            (true, true) => Change::Resolved,
            (true, false) if previous == Some(now) => Change::Unchanged,
            (true, false) => Change::Changed,
        }
    }
}

/// An account's health, derived from its history.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Health {
    /// Never checked yet.
    Unknown,
    Healthy {
        since: DateTime<Utc>,
    },
    NeedsAttention {
        #[serde(with = "outcome::compact")]
        #[schema(schema_with = outcome::compact::schema)]
        error: Outcome,
        resolution: Resolution,
        /// When the account stopped working (the first failure after the last success).
        since: DateTime<Utc>,
        /// The latest run's comparison with the one before (the re-check result).
        last_change: Change,
    },
}

impl Health {
    pub fn from_history(history: &[HistoryEntry]) -> Health {
        let Some(latest) = history.last() else {
            return Health::Unknown;
        };
        // The run of entries with the same health as the latest one.
        let healthy = |e: &HistoryEntry| e.outcome == Outcome::Paired;
        let streak_start = history
            .iter()
            .rposition(|e| healthy(e) != healthy(latest))
            .map_or(0, |i| i + 1);
        let since = history[streak_start].at;
        if healthy(latest) {
            Health::Healthy { since }
        } else {
            Health::NeedsAttention {
                error: latest.outcome,
                resolution: latest.outcome.decision().resolution,
                since,
                last_change: latest.change,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{InvalidCredentials, StoreConfig};

    const INACTIVE: Outcome = Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive);
    const WRONG: Outcome = Outcome::InvalidCredentials(InvalidCredentials::WrongPassword);

    #[test]
    fn recheck_results_compare_with_the_previous_error() {
        assert_eq!(Change::between(None, Outcome::Paired), Change::Healthy);
        assert_eq!(Change::between(None, INACTIVE), Change::Broke);
        assert_eq!(
            Change::between(Some(Outcome::Paired), INACTIVE),
            Change::Broke
        );
        assert_eq!(
            Change::between(Some(INACTIVE), Outcome::Paired),
            Change::Resolved
        );
        assert_eq!(Change::between(Some(INACTIVE), INACTIVE), Change::Unchanged);
        assert_eq!(Change::between(Some(INACTIVE), WRONG), Change::Changed);
    }

    #[test]
    fn health_is_the_latest_verdict_since_the_streak_began() {
        let entry = |minute: i64, outcome, change| HistoryEntry {
            job_id: format!("j{minute}"),
            kind: JobKind::Recheck,
            at: super::super::time(minute * 60_000),
            outcome,
            previous: None,
            change,
        };
        assert_eq!(Health::from_history(&[]), Health::Unknown);
        let history = [
            entry(1, Outcome::Paired, Change::Healthy),
            entry(2, INACTIVE, Change::Broke),
            entry(3, WRONG, Change::Changed),
        ];
        let Health::NeedsAttention {
            error,
            since,
            last_change,
            resolution,
        } = Health::from_history(&history)
        else {
            panic!("needs attention")
        };
        assert_eq!((error, last_change), (WRONG, Change::Changed));
        assert_eq!(resolution, Resolution::Reconnect);
        assert_eq!(since, super::super::time(2 * 60_000));
        let mut healed = history.to_vec();
        healed.push(entry(4, Outcome::Paired, Change::Resolved));
        assert_eq!(
            Health::from_history(&healed),
            Health::Healthy {
                since: super::super::time(4 * 60_000)
            }
        );
    }
}
