//! How one run of a job ended, as the worker hands it to the queue: the engine's typed report,
//! or a typed reason there is none. The queue decides from the types (never from an error's
//! text) whether the job is retried; the JSON is made once, where the result is stored.

use std::path::PathBuf;

use serde::Serialize;

use super::{QueueError, SubmitError};
use crate::browser::BrowserError;
use crate::codes::{CodeSourceError, MailboxError, TotpError};
use crate::engine::classify::ClassifyError;
use crate::engine::guard::Withheld;
use crate::engine::pairing::PairingReport;
use crate::outcome::{Outcome, QueueAction};
use crate::provider::RegistryError;

pub enum RunResult {
    /// The engine reached an outcome.
    Reported {
        report: Box<PairingReport>,
        /// Claim → a browser session ready to navigate (what the pre-started pool shortens).
        claim_to_navigation_ms: Option<u64>,
    },
    /// No report: see [`RunError::is_retryable`].
    Failed(RunError),
}

impl RunResult {
    pub fn reported(report: PairingReport) -> RunResult {
        RunResult::Reported {
            report: Box::new(report),
            claim_to_navigation_ms: None,
        }
    }

    /// The verdict the run reached, if any.
    pub fn outcome(&self) -> Option<Outcome> {
        match self {
            RunResult::Reported { report, .. } => Some(report.outcome),
            RunResult::Failed(error) => error.outcome(),
        }
    }

    /// Whether trying again can help: the outcome table decides for an outcome, the error's
    /// kind for a run without one.
    pub fn is_retryable(&self) -> bool {
        match (self.outcome(), self) {
            (Some(outcome), _) => outcome.decision().queue == QueueAction::RetryWithBackoff,
            (None, RunResult::Failed(error)) => error.is_retryable(),
            (None, RunResult::Reported { .. }) => false, // a report always has an outcome
        }
    }

    /// The stored `result` document: the report as the API shows it.
    pub(super) fn stored(&self) -> Option<String> {
        #[derive(Serialize)]
        struct Stored<'a> {
            #[serde(flatten)]
            report: &'a PairingReport,
            #[serde(skip_serializing_if = "Option::is_none")]
            claim_to_navigation_ms: Option<u64>,
        }
        let json = match self {
            RunResult::Reported {
                report,
                claim_to_navigation_ms,
            } => serde_json::to_string(&Stored {
                report,
                claim_to_navigation_ms: *claim_to_navigation_ms,
            }),
            RunResult::Failed(error @ RunError::AmbiguousPage { provider, .. }) => {
                serde_json::to_string(&serde_json::json!({
                    "provider": provider,
                    "category": "unrecognized_page",
                    "error": error.to_string(),
                }))
            }
            RunResult::Failed(_) => return None,
        };
        Some(json.expect("reports serialise"))
    }

    /// Why the run has no outcome (stored as the job's `error`).
    pub(super) fn error(&self) -> Option<String> {
        match self {
            RunResult::Failed(error) if error.outcome().is_none() => Some(error.to_string()),
            _ => None,
        }
    }
}

/// Why a run ended without a report. Each variant says whether trying again can help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The browser or WebDriver failed (died, hung, unreachable).
    #[error(transparent)]
    Browser(#[from] BrowserError),
    /// A code source (the merchant's mailbox) failed.
    #[error(transparent)]
    Codes(#[from] CodeSourceError),
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
    /// The database failed while the run read the account.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// Two page rules match one page: a defect of the provider's spec, reported as
    /// `unrecognized_page` with the page saved.
    #[error("{error} (page saved to {artifacts:?})")]
    AmbiguousPage {
        provider: String,
        error: ClassifyError,
        artifacts: Option<PathBuf>,
    },
    /// The lockout guard did not let the password go.
    #[error(transparent)]
    Withheld(#[from] Withheld),
    /// The guards refused an automatic login before it started.
    #[error(transparent)]
    Refused(#[from] SubmitError),
    #[error(transparent)]
    UnknownProvider(#[from] RegistryError),
    #[error("authenticator secret: {0}")]
    Authenticator(#[from] TotpError),
    #[error("the account was deleted")]
    AccountDeleted,
}

impl RunError {
    /// Trouble that may pass (a browser, a mailbox, the database, a guard that could not
    /// answer): the job is queued again with backoff. Everything else is final.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Browser(_) | RunError::Codes(_) | RunError::Mailbox(_) => true,
            RunError::Queue(_) => true,
            RunError::Withheld(withheld) => !withheld.final_refusal,
            RunError::AmbiguousPage { .. }
            | RunError::Refused(_)
            | RunError::UnknownProvider(_)
            | RunError::Authenticator(_)
            | RunError::AccountDeleted => false,
        }
    }

    /// The portal's page is not one the spec can read: a verdict (`unrecognized_page`), unlike
    /// every other error.
    pub fn is_spec_defect(&self) -> bool {
        matches!(self, RunError::AmbiguousPage { .. })
    }

    /// The outcome the error stands for: `unrecognized_page` for a spec defect.
    pub fn outcome(&self) -> Option<Outcome> {
        self.is_spec_defect().then_some(Outcome::UnrecognizedPage)
    }
}
