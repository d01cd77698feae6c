//! How a pairing ends: the outcome a page decides (checked against the stores the account must
//! have), or an unrecognised page saved, redacted, as the artifact an adapter developer needs.

use super::*;

pub(super) struct Ending {
    pub(super) outcome: Outcome,
    pub(super) page: Option<String>,
    pub(super) raw_message: Option<String>,
    pub(super) stores: Vec<Store>,
    pub(super) missing_store_ids: Vec<String>,
    pub(super) code_request: Option<CodeRequest>,
    pub(super) artifacts: Option<PathBuf>,
}

impl Ending {
    pub(super) fn new(outcome: Outcome, page: Option<&str>) -> Ending {
        Ending {
            outcome,
            page: page.map(str::to_string),
            raw_message: None,
            stores: Vec::new(),
            missing_store_ids: Vec::new(),
            code_request: None,
            artifacts: None,
        }
    }

    pub(super) fn message(mut self, message: impl Into<String>) -> Ending {
        self.raw_message = Some(message.into());
        self
    }

    pub(super) fn from_page(found: Classification, outcome: Outcome) -> Ending {
        Ending {
            outcome,
            page: Some(found.page),
            raw_message: found.raw_message,
            stores: found.stores,
            missing_store_ids: Vec::new(),
            code_request: found.code_request,
            artifacts: None,
        }
    }
}

impl Run<'_> {
    /// A selector of the spec that finds nothing on the page it was written for: the page is not
    /// what the spec thinks (a spec defect or a changed portal), so the pairing ends as
    /// `unrecognized_page` with the artifact — never as an infrastructure error the queue would
    /// retry (a retry may submit the password again). Other browser errors pass through.
    pub(super) async fn spec_mismatch(
        &self,
        error: BrowserError,
        page: &str,
    ) -> Result<Ending, PairingError> {
        let BrowserError::NoElement { command, css } = &error else {
            return Err(error.into());
        };
        let snapshot = self.session.snapshot().await?;
        let classify_error = ClassifyError::NoMatch {
            provider: self.spec.id.clone(),
            url: snapshot.url.clone(),
        };
        let mut ending = self
            .unrecognized(Unrecognized {
                error: classify_error,
                url: snapshot.url,
                html: snapshot.html,
                status: snapshot.status,
            })
            .await?;
        ending.page = Some(page.to_string());
        ending.raw_message = Some(format!(
            "on page `{page}`, `{command}` found no visible element for the spec's selector `{css}`"
        ));
        Ok(ending)
    }

    /// Ends on a code page, reporting the request the merchant must answer (with its expiry).
    pub(super) fn finish_asking(
        &self,
        found: Classification,
        outcome: Outcome,
        request: CodeRequest,
    ) -> Ending {
        let mut ending = self.finish(found, outcome);
        ending.code_request = Some(request);
        ending
    }

    pub(super) fn finish(&self, found: Classification, outcome: Outcome) -> Ending {
        let mut ending = Ending::from_page(found, outcome);
        if outcome == Outcome::Paired {
            let ids: Vec<&str> = ending.stores.iter().map(|s| s.id.as_str()).collect();
            ending.missing_store_ids = self
                .options
                .expected_stores
                .iter()
                .filter(|want| !ids.contains(&want.as_str()))
                .cloned()
                .collect();
            if !ending.missing_store_ids.is_empty() {
                ending.outcome = Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound);
            } else {
                // An expected store the platform shows as inactive is never `paired`.
                let inactive: Vec<&str> = ending
                    .stores
                    .iter()
                    .filter(|s| {
                        s.state == Some(StoreState::Inactive)
                            && self.options.expected_stores.contains(&s.id)
                    })
                    .map(|s| s.name.as_str())
                    .collect();
                if !inactive.is_empty() {
                    ending.raw_message = Some(format!("inactive: {}", inactive.join(", ")));
                    ending.outcome = Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive);
                }
            }
        }
        if !matches!(ending.outcome, Outcome::TwoFactor(_)) {
            ending.code_request = None;
        }
        ending
    }

    pub(super) async fn unrecognized(&self, page: Unrecognized) -> Result<Ending, PairingError> {
        let Unrecognized {
            error,
            url,
            html,
            status,
        } = page;
        // The portal's real URL, so a page saved from the sandbox becomes a fixture of the portal.
        let url = self.spec.real_url(&url, self.hosts());
        // Every spelling of every secret is built once for the page, its metadata and its picture.
        let redactor = Redactor::new(&self.secrets());
        let saved = match &self.options.artifacts_dir {
            Some(dir) => {
                let screenshot = self.session.scrubbed_screenshot(&redactor).await.ok();
                let meta = ArtifactMeta {
                    provider: self.spec.id.clone(),
                    url: redactor.redact(&url),
                    error: redactor.redact(&error.to_string()),
                    saved_at: chrono::Utc::now(),
                    status,
                };
                artifacts::save(
                    dir,
                    &meta,
                    &redactor.redact_html(&html),
                    screenshot.as_deref(),
                )
                .ok()
            }
            None => None,
        };
        if let ClassifyError::Ambiguous { .. } = error {
            return Err(PairingError::AmbiguousPage {
                error,
                artifacts: saved,
            });
        }
        let mut ending = Ending::new(Outcome::UnrecognizedPage, None)
            .message(redactor.redact(&error.to_string()));
        ending.artifacts = saved;
        Ok(ending)
    }
}

/// A page no rule (or more than one rule) matches, with its URL and HTML.
pub(super) struct Unrecognized {
    pub(super) error: ClassifyError,
    pub(super) url: String,
    pub(super) html: String,
    pub(super) status: Option<u16>,
}
