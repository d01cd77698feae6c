//! One pairing: recognise the page, act, wait for it to change, until the portal says how it ends.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use zeroize::Zeroizing;

use super::artifacts::{self, ArtifactMeta};
use super::classify::{classify_snapshot, Classification, ClassifyError, Snapshot};
use super::guard::{PasswordGuard, Unguarded, Withheld};
use crate::browser::{BrowserError, Session};
use crate::codes::{CodeAnswer, CodeSource, CodeSourceError};
use crate::outcome::{
    CodeRequest, Decision, Outcome, Store, StoreConfig, StoreState, TwoFactor, Unavailable,
};
use crate::provider::spec::{Action, FillValue, PageRule};
use crate::provider::{PortalHosts, ProviderSpec};
use crate::secret::{redact_text, Credentials, Redactor};

mod acting;
mod ending;

use acting::{describe, Changed};
use ending::{Ending, Unrecognized};

#[derive(Debug, Clone)]
pub struct PairingOptions {
    /// Where the portal is reached (its real hosts unless the map points them elsewhere).
    pub portal_hosts: PortalHosts,
    /// Store ids that must be on the account.
    pub expected_stores: Vec<String>,
    /// The portal's share of the job's deadline; waiting for codes has its own budget on top
    /// (`code_wait` per code), so a slow merchant never turns into a portal timeout.
    pub deadline: Duration,
    /// How many pages the engine may act on before it calls the flow a loop.
    pub step_budget: usize,
    /// How many codes one job may type before giving up.
    pub code_attempts: usize,
    /// How long one code request stays open (the merchant reads the mail or SMS and types it).
    pub code_wait: Duration,
    /// Where unrecognised pages are saved; `None` keeps nothing.
    pub artifacts_dir: Option<PathBuf>,
}

impl Default for PairingOptions {
    fn default() -> Self {
        PairingOptions {
            portal_hosts: PortalHosts::real(),
            expected_stores: Vec::new(),
            deadline: Duration::from_secs(120),
            step_budget: 25,
            code_attempts: 3,
            code_wait: Duration::from_secs(300),
            artifacts_dir: None,
        }
    }
}

impl PairingOptions {
    /// The longest one pairing can keep its browser session: the portal's deadline plus every
    /// code's wait. A session older than that belongs to no running job.
    pub fn longest_run(&self) -> Duration {
        self.deadline + self.code_wait * self.code_attempts as u32
    }
}

/// One thing the engine did, for operators (never a value it typed).
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub page: String,
    pub did: String,
    pub ms: u64,
}

/// How a pairing ended: the outcome, what follows from it, and the evidence.
#[derive(Debug, Clone, Serialize)]
pub struct PairingReport {
    pub provider: String,
    #[serde(flatten)]
    pub outcome: Outcome,
    pub decision: Decision,
    /// The portal's own words, for operators; never shown as our wording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<Store>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_store_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_request: Option<CodeRequest>,
    /// The last page rule recognised.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifacts: Option<PathBuf>,
    pub steps: Vec<Step>,
    pub elapsed_ms: u64,
}

impl PairingReport {
    /// A report of an outcome alone: no page, no steps (the queue's tests and benchmarks).
    pub fn of(provider: &str, outcome: Outcome) -> PairingReport {
        PairingReport {
            provider: provider.to_string(),
            outcome,
            decision: outcome.decision(),
            raw_message: None,
            stores: Vec::new(),
            missing_store_ids: Vec::new(),
            code_request: None,
            page: None,
            artifacts: None,
            steps: Vec::new(),
            elapsed_ms: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PairingError {
    #[error(transparent)]
    Browser(#[from] BrowserError),
    #[error(transparent)]
    Codes(#[from] CodeSourceError),
    #[error(transparent)]
    Withheld(#[from] Withheld),
    /// Two page rules match one page: a spec bug, surfaced loudly.
    #[error("{error} (page saved to {artifacts:?})")]
    AmbiguousPage {
        error: ClassifyError,
        artifacts: Option<PathBuf>,
    },
}

/// Runs one pairing in `session`, which the caller owns and closes. `guard` is asked before each
/// password is sent.
pub async fn pair<C: CodeSource, G: PasswordGuard>(
    session: &Session,
    spec: &ProviderSpec,
    credentials: &Credentials,
    codes: &mut C,
    guard: &mut G,
    options: &PairingOptions,
) -> Result<PairingReport, PairingError> {
    let started = Instant::now();
    let mut run = Run {
        session,
        spec,
        credentials,
        options,
        steps: Vec::new(),
        typed_codes: Vec::new(),
        started,
    };
    let deadline = options.deadline + options.code_wait * options.code_attempts as u32;
    let result = match tokio::time::timeout(deadline, run.drive(codes, guard)).await {
        Ok(result) => result,
        Err(_) => Ok(
            Ending::new(Outcome::ProviderUnavailable(Unavailable::Timeout), None)
                .message(format!("the job deadline of {:?} passed", options.deadline)),
        ),
    };
    let ending = result?;
    let outcome = ending.outcome;
    Ok(PairingReport {
        provider: spec.id.clone(),
        outcome,
        decision: outcome.decision(),
        raw_message: ending.raw_message.map(|m| redact_text(&m, &run.secrets())),
        stores: ending.stores,
        missing_store_ids: ending.missing_store_ids,
        code_request: ending.code_request,
        page: ending.page,
        artifacts: ending.artifacts,
        steps: run.steps,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

struct Run<'a> {
    session: &'a Session,
    spec: &'a ProviderSpec,
    credentials: &'a Credentials,
    options: &'a PairingOptions,
    steps: Vec<Step>,
    typed_codes: Vec<Zeroizing<String>>,
    started: Instant,
}

/// How often the wait re-reads the page when nothing mutates (a URL change without a mutation).
const MUTATION_POLL: Duration = Duration::from_millis(250);
/// How long a page no rule knows must stay unchanged before it is taken as it is.
const SETTLED: Duration = Duration::from_millis(1000);

impl Run<'_> {
    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![
            self.credentials.username.as_str(),
            self.credentials.password.expose_secret(),
        ];
        secrets.extend(self.typed_codes.iter().map(|c| c.as_str()));
        secrets
    }

    fn hosts(&self) -> &PortalHosts {
        &self.options.portal_hosts
    }

    fn record(&mut self, page: &str, did: impl Into<String>) {
        self.steps.push(Step {
            page: page.to_string(),
            did: did.into(),
            ms: self.started.elapsed().as_millis() as u64,
        });
    }

    /// The page now: its classification and which document it is (a reload is a new document).
    async fn look(&self) -> Result<(Result<Classification, Unrecognized>, String), PairingError> {
        let page = self.session.snapshot().await?;
        let snapshot = Snapshot::parse(&page.url, &page.html).with_status(page.status);
        let found = classify_snapshot(self.spec, &snapshot, self.hosts());
        let status = page.status;
        Ok((
            found.map_err(|error| Unrecognized {
                error,
                url: page.url,
                html: page.html,
                status,
            }),
            page.document,
        ))
    }

    async fn drive<C: CodeSource, G: PasswordGuard>(
        &mut self,
        codes: &mut C,
        guard: &mut G,
    ) -> Result<Ending, PairingError> {
        self.session
            .goto(&self.spec.entry_url(self.hosts()))
            .await?;
        let mut codes_typed = 0usize;
        let mut password_pages = std::collections::HashSet::new();
        let (mut found, mut document) = match self.look().await? {
            (Ok(found), document) => (found, document),
            (Err(unrecognized), _) => return self.unrecognized(unrecognized).await,
        };
        for _ in 0..self.options.step_budget {
            // 1. The portal has said how this ends (a code page's "code required" is ours to answer).
            if found.outcome == Some(Outcome::UnrecognizedPage) {
                // A spec's catch-all ("an alert we have no words for"): keep the page for the developer.
                let page = self.session.snapshot().await?;
                let error = ClassifyError::NoMatch {
                    provider: self.spec.id.clone(),
                    url: page.url.clone(),
                };
                let mut ending = self
                    .unrecognized(Unrecognized {
                        error,
                        url: page.url,
                        html: page.html,
                        status: page.status,
                    })
                    .await?;
                ending.page = Some(found.page.clone());
                ending.raw_message = found.raw_message.clone().or(ending.raw_message);
                return Ok(ending);
            }
            let Some(rule) = self.spec.page(&found.page) else {
                // A page the engine itself recognised (a vendor wall, an outage): it always says
                // how the pairing ends.
                let outcome = found.outcome.unwrap_or(Outcome::UnrecognizedPage);
                return Ok(self.finish(found, outcome));
            };
            if let Some(outcome) = found.outcome {
                let code_page_asks = rule.code.is_some()
                    && matches!(
                        outcome,
                        Outcome::TwoFactor(
                            TwoFactor::CodeRequired
                                | TwoFactor::CodeInvalid
                                | TwoFactor::CodeExpired
                        )
                    );
                if !code_page_asks {
                    return Ok(self.finish(found, outcome));
                }
            }
            // 2. Noise first: one overlay at a time.
            if let Some(overlay) = found
                .overlays
                .first()
                .and_then(|name| self.spec.overlays.iter().find(|o| &o.name == name))
            {
                if let Err(e) = self
                    .session
                    .click(&overlay.dismiss.source, self.spec.input)
                    .await
                {
                    return self.spec_mismatch(e, &found.page).await;
                }
                self.record(&found.page, format!("dismissed {}", overlay.name));
            } else if let Some(code_page) = &rule.code {
                // 3. A code page: type a code if a source has one, else end with what was asked.
                let previous = found
                    .outcome
                    .filter(|o| *o != Outcome::TwoFactor(TwoFactor::CodeRequired));
                let mut request = found.code_request.clone().unwrap_or(CodeRequest {
                    channel: code_page.channel,
                    destination: None,
                    code_length: code_page.length,
                    expires_at: None,
                });
                request.expires_at = chrono::Duration::from_std(self.options.code_wait)
                    .ok()
                    .map(|wait| chrono::Utc::now() + wait);
                if codes_typed >= self.options.code_attempts {
                    return Ok(self.finish(
                        found,
                        previous.unwrap_or(Outcome::TwoFactor(TwoFactor::CodeInvalid)),
                    ));
                }
                let code = match codes.code(&request, previous).await? {
                    CodeAnswer::Code(code) => code,
                    CodeAnswer::NoSource => {
                        let outcome =
                            previous.unwrap_or(Outcome::TwoFactor(TwoFactor::CodeRequired));
                        return Ok(self.finish_asking(found, outcome, request));
                    }
                    CodeAnswer::TimedOut => {
                        let outcome = Outcome::TwoFactor(TwoFactor::CodeTimeout);
                        return Ok(self.finish_asking(found, outcome, request));
                    }
                };
                codes_typed += 1;
                let typed = match self.type_code(rule, code).await {
                    Ok(typed) => typed,
                    Err(PairingError::Browser(e)) => {
                        return self.spec_mismatch(e, &found.page).await
                    }
                    Err(e) => return Err(e),
                };
                if !typed {
                    let mut ending = self.finish(found, Outcome::TwoFactor(TwoFactor::CodeInvalid));
                    ending.raw_message =
                        Some("the code does not have the length the portal asks for".into());
                    return Ok(ending);
                }
                self.record(&found.page, format!("typed code {codes_typed}"));
            } else {
                // 4. An ordinary page: do what the spec says. A password is submitted once per job:
                // a login page that comes back without a message we know is not retried.
                let submits_password = rule.actions.iter().any(|a| {
                    matches!(
                        a,
                        Action::Fill {
                            value: FillValue::Password,
                            ..
                        }
                    )
                });
                if submits_password && !password_pages.insert(rule.name.clone()) {
                    return Ok(Ending::new(Outcome::UnrecognizedPage, Some(&found.page)).message(format!(
                        "page `{}` came back with no message the spec recognises; not submitting the password twice",
                        found.page
                    )));
                }
                if submits_password {
                    guard.before_sending().await?;
                }
                if let Err(e) = self.act(rule).await {
                    return match e {
                        PairingError::Browser(e) => self.spec_mismatch(e, &found.page).await,
                        e => Err(e),
                    };
                }
                let did = rule
                    .actions
                    .iter()
                    .map(describe)
                    .collect::<Vec<_>>()
                    .join(", ");
                self.record(&found.page, did);
            }
            (found, document) = match self.wait_for_change(&found, &document).await? {
                Changed::To(next, next_document) => (next, next_document),
                Changed::Unrecognized(unrecognized) => {
                    return self.unrecognized(unrecognized).await
                }
                Changed::Stuck => {
                    return Ok(Ending::new(
                        Outcome::ProviderUnavailable(Unavailable::Timeout),
                        Some(&found.page),
                    )
                    .message(format!(
                        "page `{}` did not change within {} ms after we acted",
                        found.page, self.spec.step_timeout_ms
                    )))
                }
            };
        }
        Ok(
            Ending::new(Outcome::UnrecognizedPage, Some(&found.page)).message(format!(
                "the flow did not end within {} pages: the spec loops",
                self.options.step_budget
            )),
        )
    }
}

/// Opens a fresh session, pairs, and always deletes the session, whatever happened.
pub async fn pair_in_new_session<C: CodeSource>(
    browser: &crate::browser::Browser,
    spec: &ProviderSpec,
    credentials: &Credentials,
    codes: &mut C,
    options: &PairingOptions,
) -> Result<PairingReport, PairingError> {
    let session = browser.session().await?;
    pair_once(session, spec, credentials, codes, options).await
}

/// Pairs in `session` (fresh, never used before) and always deletes it, whatever happened.
pub async fn pair_once<C: CodeSource>(
    session: Session,
    spec: &ProviderSpec,
    credentials: &Credentials,
    codes: &mut C,
    options: &PairingOptions,
) -> Result<PairingReport, PairingError> {
    let result = pair(&session, spec, credentials, codes, &mut Unguarded, options).await;
    let closed = session.close().await;
    let report = result?;
    closed?;
    Ok(report)
}
