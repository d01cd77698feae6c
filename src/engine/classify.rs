//! Page recognition: which page rule of a provider a snapshot (URL + HTML) is, which overlays sit on
//! it, and what it says. Pure and synchronous, so recorded pages and live pages go through the very
//! same code.
//!
//! Recognise, then weigh: the page rule says which page this is; the walls, the message surfaces
//! read by the lexicon, the spec's own signals, the HTTP status and the store list each may say
//! how the pairing ends. Where several speak, [`Outcome::precedence`] decides, most protective
//! first. An error message that nothing explains ends as `unrecognized_page` (the safe default).

use regex::Regex;
use scraper::ElementRef;
use serde::Serialize;

use super::reading::{self, Surface, SurfaceKind, WallHit};
pub use super::snapshot::Snapshot;
use super::snapshot::{element_text, ALL_IN_BODY};
use crate::outcome::{CodeRequest, Outcome, Store, StoreConfig, StoreState, Unavailable};
use crate::provider::lexicon::Concept;
use crate::provider::spec::{PageRule, ProviderSpec, Signal};
use crate::provider::PortalHosts;

/// What one page is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    pub page: String,
    pub overlays: Vec<String>,
    /// The outcome a pairing ends in on this page (a code page: `two_factor/code_required`, the
    /// end when nobody supplies a code); `None` while the engine still has something to do.
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_request: Option<CodeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<Store>,
}

impl Classification {
    /// The part of a classification that says whether the page moved on after we acted.
    pub fn state_key(&self) -> (String, Vec<String>, Option<Outcome>) {
        (self.page.clone(), self.overlays.clone(), self.outcome)
    }

    pub fn is_code_page(&self) -> bool {
        self.code_request.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClassifyError {
    #[error("no page rule of `{provider}` matches {url}")]
    NoMatch { provider: String, url: String },
    #[error(
        "page rules {rules:?} of `{provider}` all match {url}: a spec bug, make them exclusive"
    )]
    Ambiguous {
        provider: String,
        url: String,
        rules: Vec<String>,
    },
}

fn any_match(patterns: &[Regex], text: &str) -> bool {
    patterns.iter().any(|p| p.is_match(text))
}

/// Why an outcome was proposed for a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Reason {
    /// The page rule's own outcome.
    Rule,
    /// The spec's signal number `index` of the rule.
    Signal { index: usize },
    /// A concept the lexicon read in a message surface.
    Concept {
        concept: Concept,
        language: String,
        expression: String,
    },
    /// A vendor wall.
    Wall { vendor: String },
    /// An error message nothing explains (the safe default).
    Unexplained,
    /// The document was served with an HTTP error status.
    HttpStatus { status: u16 },
    /// The store list is empty.
    NoStores,
    /// Every listed store is inactive.
    InactiveStores,
    /// Every listed store shows a status and none of them is one the engine understands.
    UnreadStoreStates,
}

/// One outcome proposed for a page, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub outcome: Outcome,
    #[serde(flatten)]
    pub reason: Reason,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Candidate {
    /// A concept the lexicon read, proposing its outcome.
    fn concept(
        outcome: Outcome,
        hit: &crate::provider::lexicon::Hit,
        message: String,
    ) -> Candidate {
        Candidate {
            outcome,
            reason: Reason::Concept {
                concept: hit.concept,
                language: hit.language.clone(),
                expression: hit.expression.clone(),
            },
            message: Some(message),
        }
    }
}

/// Everything the classifier saw on a page, before the precedence order picks one outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    /// The page rules that match (exactly one for a recognised page).
    pub rules: Vec<String>,
    pub overlays: Vec<String>,
    pub walls: Vec<WallHit>,
    pub surfaces: Vec<Surface>,
    pub candidates: Vec<Candidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_request: Option<CodeRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stores: Vec<Store>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip)]
    base_message: Option<String>,
}

impl Assessment {
    /// The candidate that wins by precedence (the first of equals).
    pub fn winner(&self) -> Option<&Candidate> {
        // Unread store statuses only stand against `paired`: anything else the page says wins.
        let unread = |c: &Candidate| matches!(c.reason, Reason::UnreadStoreStates);
        let others_speak = self
            .candidates
            .iter()
            .any(|c| !unread(c) && c.outcome != Outcome::Paired);
        self.candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| !(others_speak && unread(c)))
            .min_by_key(|(i, c)| (c.outcome.precedence(), *i))
            .map(|(_, c)| c)
    }
}

/// Outcomes a page no rule knows may still end in: they are the portal's (or its CDN's) whole
/// page saying it is down or walled off, and each is safe to act on (retried, or never retried).
fn decides_without_a_rule(outcome: Outcome) -> bool {
    use crate::outcome::Blocked;
    matches!(
        outcome,
        Outcome::ProviderUnavailable(_)
            | Outcome::BlockedByThirdParty(
                Blocked::AccountLocked
                    | Blocked::TooManyAttempts
                    | Blocked::BotProtection
                    | Blocked::Captcha
            )
    )
}

/// Classifies one page of `spec`, seen where `hosts` reaches its portal.
pub fn classify(
    spec: &ProviderSpec,
    url: &str,
    html: &str,
    hosts: &PortalHosts,
) -> Result<Classification, ClassifyError> {
    classify_snapshot(spec, &Snapshot::parse(url, html), hosts)
}

pub fn classify_snapshot(
    spec: &ProviderSpec,
    snapshot: &Snapshot,
    hosts: &PortalHosts,
) -> Result<Classification, ClassifyError> {
    let assessment = assess(spec, snapshot, hosts);
    conclude(spec, snapshot, assessment)
}

/// Turns an assessment into the page's classification (or why there is none).
pub fn conclude(
    spec: &ProviderSpec,
    snapshot: &Snapshot,
    assessment: Assessment,
) -> Result<Classification, ClassifyError> {
    let page = match assessment.rules.as_slice() {
        [rule] => rule.clone(),
        [] => {
            // No rule: only a wall, an outage or a lockout notice may still say how this ends.
            let winner = assessment
                .winner()
                .filter(|c| decides_without_a_rule(c.outcome))
                .ok_or_else(|| ClassifyError::NoMatch {
                    provider: spec.id.clone(),
                    url: snapshot.url.clone(),
                })?;
            let page = match &winner.reason {
                Reason::Wall { vendor } => format!("wall:{vendor}"),
                Reason::HttpStatus { status } => format!("http:{status}"),
                _ => format!("notice:{}", winner.outcome.reason().unwrap_or("page")),
            };
            return Ok(Classification {
                page,
                overlays: assessment.overlays.clone(),
                outcome: Some(winner.outcome),
                raw_message: winner.message.clone(),
                code_request: None,
                stores: Vec::new(),
            });
        }
        many => {
            return Err(ClassifyError::Ambiguous {
                provider: spec.id.clone(),
                url: snapshot.url.clone(),
                rules: many.to_vec(),
            })
        }
    };
    let winner = assessment.winner().cloned();
    Ok(Classification {
        page,
        overlays: assessment.overlays,
        outcome: winner.as_ref().map(|c| c.outcome),
        raw_message: winner.and_then(|c| c.message).or(assessment.base_message),
        code_request: assessment.code_request,
        stores: assessment.stores,
    })
}

/// Reads everything on the page: matching rules, walls, surfaces, signals, stores, status.
pub fn assess(spec: &ProviderSpec, snapshot: &Snapshot, hosts: &PortalHosts) -> Assessment {
    let (host, path) = spec.locate(&snapshot.url, hosts);
    let text = snapshot.page_text();
    let matching: Vec<&PageRule> = spec
        .pages
        .iter()
        .filter(|rule| rule_matches(rule, snapshot, host.as_deref(), &path, &text))
        .collect();
    let rule = match matching.as_slice() {
        [rule] => Some(*rule),
        _ => None,
    };
    // Behind the login: a page that lists stores, or whose rule ends in a store-configuration
    // outcome that proves the password was accepted (no permission, terms). Login words there
    // ("Acesso restrito") speak about the store's access, not about the sign-in.
    let logged_in = rule.is_some_and(|r| {
        r.stores.is_some()
            || r.outcome.is_some_and(|o| {
                matches!(o, Outcome::InvalidStoreConfig(_))
                    && o.decision().password == crate::outcome::PasswordVerdict::Accepted
            })
    });
    let overlays = spec
        .overlays
        .iter()
        .filter(|o| o.present.iter().all(|css| snapshot.has(css)))
        .map(|o| o.name.clone())
        .collect();
    let walls = reading::walls(&spec.walls, snapshot, rule.is_some());
    let mut surfaces = reading::surfaces(spec, snapshot, &spec.lexicon, logged_in);
    let mut candidates = Vec::new();
    let mut base_message = None;

    if let Some(rule) = rule {
        base_message = rule
            .raw_message
            .as_ref()
            .and_then(|css| snapshot.visible(css).next())
            .map(element_text);
        if let Some(outcome) = rule.outcome {
            candidates.push(Candidate {
                outcome,
                reason: Reason::Rule,
                message: base_message.clone(),
            });
        }
        for (index, s) in rule.signals.iter().enumerate() {
            if let Some(message) = signal(spec, s, snapshot, &text) {
                // The message a signal reads is explained by it.
                if let Some(m) = &message {
                    for surface in &mut surfaces {
                        if surface.text.contains(m.as_str()) || m.contains(surface.text.as_str()) {
                            surface.explained = true;
                            surface.hits.push(crate::provider::lexicon::Hit {
                                concept: s.concept.unwrap_or(Concept::SignInPrompt),
                                language: String::new(),
                                expression: format!("signal {index}"),
                                matched: m.clone(),
                                weak: true,
                            });
                        }
                    }
                }
                candidates.push(Candidate {
                    outcome: s.outcome,
                    reason: Reason::Signal { index },
                    message,
                });
            }
        }
    }
    for wall in &walls {
        candidates.push(Candidate {
            outcome: wall.outcome,
            reason: Reason::Wall {
                vendor: wall.vendor.clone(),
            },
            message: wall.message.clone(),
        });
    }
    for surface in &surfaces {
        for (outcome, hit) in reading::decided(surface, logged_in) {
            if !hit.weak {
                candidates.push(Candidate::concept(outcome, hit, surface.text.clone()));
            }
        }
        if surface.kind == SurfaceKind::Error && !surface.explained {
            candidates.push(Candidate {
                outcome: Outcome::UnrecognizedPage,
                reason: Reason::Unexplained,
                message: Some(surface.text.clone()),
            });
        }
    }
    // A weak concept ("something went wrong") decides only where nothing stronger speaks.
    if !candidates.iter().any(|c| c.reason != Reason::Rule) {
        for surface in &surfaces {
            for (outcome, hit) in reading::decided(surface, logged_in) {
                if hit.weak {
                    candidates.push(Candidate::concept(outcome, hit, surface.text.clone()));
                }
            }
        }
    }
    if let Some(status) = snapshot.status.filter(|s| *s >= 500) {
        let outcome = if status == 503
            && surfaces
                .iter()
                .any(|s| s.hits.iter().any(|h| h.concept == Concept::Maintenance))
        {
            Outcome::ProviderUnavailable(Unavailable::Maintenance)
        } else {
            Outcome::ProviderUnavailable(Unavailable::ServerError)
        };
        candidates.push(Candidate {
            outcome,
            reason: Reason::HttpStatus { status },
            message: Some(snapshot.title()).filter(|t| !t.is_empty()),
        });
    }
    if rule.is_none() && text.chars().count() < crate::provider::lexicon::walls::SMALL_PAGE {
        // A small page no rule knows: its whole text may still say it is down or walled off.
        for hit in spec.lexicon.scan(&text) {
            if let Some(outcome) = hit.concept.outcome().filter(|o| decides_without_a_rule(*o)) {
                candidates.push(Candidate::concept(outcome, &hit, hit.matched.clone()));
            }
        }
    }

    let mut code_request = None;
    let mut stores = Vec::new();
    if let Some(rule) = rule {
        if let Some(code) = &rule.code {
            // Kept whatever the page says: a second ask after a wrong code needs its channel.
            let channel = code
                .channels
                .iter()
                .find(|(_, patterns)| any_match(patterns, &text))
                .map_or(code.channel, |(channel, _)| *channel);
            let inputs: Vec<ElementRef> = snapshot.visible(&code.inputs).collect();
            let code_length = code.length.or(match inputs.as_slice() {
                [single] => single.attr("maxlength").and_then(|m| m.parse().ok()),
                boxes => Some(boxes.len()).filter(|n| *n > 1),
            });
            code_request = Some(CodeRequest {
                channel,
                destination: code
                    .destination
                    .as_ref()
                    .and_then(|css| snapshot.visible(css).next())
                    .map(element_text),
                code_length,
                expires_at: None,
            });
            candidates.push(Candidate {
                outcome: Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired),
                reason: Reason::Rule,
                message: None,
            });
        }
        if let Some(list) = &rule.stores {
            stores = stores::read_stores(spec, snapshot, list);
            stores::banners_about_listed_stores(&mut candidates, &mut stores);
            if stores.is_empty() {
                // A login that shows no store is not a success (zero records is a failure, not
                // "paired") — unless the page says why: an outage in the logged-in layout.
                candidates.push(Candidate {
                    outcome: Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound),
                    reason: Reason::NoStores,
                    message: None,
                });
                for hit in spec.lexicon.scan(&text) {
                    if let Some(outcome @ Outcome::ProviderUnavailable(_)) = hit.concept.outcome() {
                        if !hit.weak {
                            candidates.push(Candidate::concept(outcome, &hit, hit.matched.clone()));
                        }
                    }
                }
            } else if stores.iter().all(|s| s.state == Some(StoreState::Inactive)) {
                let names: Vec<&str> = stores.iter().map(|s| s.name.as_str()).collect();
                candidates.push(Candidate {
                    outcome: Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive),
                    reason: Reason::InactiveStores,
                    message: Some(format!("inactive: {}", names.join(", "))),
                });
            } else if list.status.is_some()
                && stores
                    .iter()
                    .all(|s| matches!(s.state, Some(StoreState::Unknown | StoreState::Inactive)))
            {
                // No store read as working (some unread, the rest inactive): "paired" could be
                // saying yes to stores under review.
                let statuses: Vec<&str> =
                    stores.iter().filter_map(|s| s.status.as_deref()).collect();
                candidates.push(Candidate {
                    outcome: Outcome::UnrecognizedPage,
                    reason: Reason::UnreadStoreStates,
                    message: Some(format!(
                        "no store status understood: {}",
                        statuses.join(", ")
                    )),
                });
            }
        }
    }
    Assessment {
        rules: matching.iter().map(|r| r.name.clone()).collect(),
        overlays,
        walls,
        surfaces,
        candidates,
        code_request,
        stores,
        status: snapshot.status,
        base_message,
    }
}

pub(crate) fn rule_matches(
    rule: &PageRule,
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
    text: &str,
) -> bool {
    rule_mismatch(rule, snapshot, host, path, text).is_none()
}

/// Why a rule does not match the page (the first predicate that fails), for `classify --explain`.
pub(crate) fn rule_mismatch(
    rule: &PageRule,
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
    text: &str,
) -> Option<String> {
    if rule.host.is_some() && rule.host.as_deref() != host {
        return Some(format!(
            "host: wants `{}`, the page is on {}",
            rule.host.as_deref().unwrap_or_default(),
            host.map_or("no known host".to_string(), |h| format!("`{h}`"))
        ));
    }
    let target = if host.is_some() {
        path
    } else {
        snapshot.url.as_str()
    };
    if !rule.url.is_match(target) {
        return Some(format!(
            "url: `{}` does not match `{target}`",
            rule.url.as_str()
        ));
    }
    if let Some(css) = rule.present.iter().find(|css| !snapshot.has(css)) {
        return Some(format!("present: nothing visible matches `{}`", css.source));
    }
    if let Some(css) = rule.absent.iter().find(|css| snapshot.has(css)) {
        return Some(format!(
            "absent: a visible element matches `{}`",
            css.source
        ));
    }
    if !rule.text.is_empty() && !any_match(&rule.text, text) {
        return Some("text: no pattern matches the visible text".into());
    }
    None
}

/// Whether a signal fires, with the portal's own words when it does.
fn signal(
    spec: &ProviderSpec,
    signal: &Signal,
    snapshot: &Snapshot,
    page_text: &str,
) -> Option<Option<String>> {
    let says = |text: &str| {
        (signal.text.is_empty() && signal.concept.is_none())
            || any_match(&signal.text, text)
            || signal.concept.is_some_and(|c| spec.lexicon.says(text, c))
    };
    match &signal.selector {
        Some(css) => snapshot.visible(css).find_map(|el| {
            let text = element_text(el);
            says(&text).then(|| Some(text).filter(|t| !t.is_empty()))
        }),
        None => {
            if !says(page_text) {
                return None;
            }
            // The smallest visible element that says it is the portal's message.
            let message = snapshot
                .visible(&ALL_IN_BODY)
                .map(element_text)
                .filter(|t| !t.is_empty() && says(t))
                .min_by_key(|t| t.len());
            Some(message)
        }
    }
}

mod stores;

#[cfg(test)]
pub(crate) mod tests;
