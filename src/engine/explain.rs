//! `classify --explain`: for an adapter developer fixing a broken portal, everything the classifier
//! saw on a page — each rule's match or the first predicate that failed, the walls, the message
//! surfaces with their text and the concepts read in them, every candidate outcome in precedence
//! order, and the one that won.

use std::fmt;

use serde::Serialize;

use super::classify::{assess, conclude, rule_mismatch, Assessment, Classification, Snapshot};
use crate::provider::{PortalHosts, ProviderSpec};

#[derive(Debug, Serialize)]
pub struct RuleCheck {
    pub rule: String,
    pub matches: bool,
    /// The first predicate that failed (a near miss names what to fix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub url: String,
    pub rules: Vec<RuleCheck>,
    pub assessment: Assessment,
    /// The classification, or why there is none.
    pub result: Result<Classification, String>,
}

pub fn explain(spec: &ProviderSpec, snapshot: &Snapshot, hosts: &PortalHosts) -> Explanation {
    let (host, path) = spec.locate(snapshot.url(), hosts);
    let text = snapshot.page_text();
    let rules = spec
        .pages
        .iter()
        .map(|rule| {
            let failed = rule_mismatch(rule, snapshot, host.as_deref(), &path, &text);
            RuleCheck {
                rule: rule.name.clone(),
                matches: failed.is_none(),
                failed,
            }
        })
        .collect();
    let assessment = assess(spec, snapshot, hosts);
    let result = conclude(spec, snapshot, assessment.clone()).map_err(|e| e.to_string());
    Explanation {
        url: snapshot.url().to_string(),
        rules,
        assessment,
        result,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "page {}", self.url)?;
        if let Some(status) = self.assessment.status {
            writeln!(f, "HTTP status {status}")?;
        }
        writeln!(f, "\npage rules:")?;
        for rule in &self.rules {
            match &rule.failed {
                None => writeln!(f, "  MATCH  {}", rule.rule)?,
                Some(why) => writeln!(f, "  -      {:<28} {why}", rule.rule)?,
            }
        }
        if !self.assessment.overlays.is_empty() {
            writeln!(f, "\noverlays: {}", self.assessment.overlays.join(", "))?;
        }
        writeln!(f, "\nvendor walls:")?;
        if self.assessment.walls.is_empty() {
            writeln!(f, "  none")?;
        }
        for wall in &self.assessment.walls {
            writeln!(f, "  {} -> {}", wall.vendor, wall.outcome)?;
        }
        writeln!(f, "\nmessage surfaces:")?;
        if self.assessment.surfaces.is_empty() {
            writeln!(f, "  none")?;
        }
        for surface in &self.assessment.surfaces {
            let kind = serde_json::to_value(surface.kind).unwrap_or_default();
            writeln!(
                f,
                "  [{}] {}: {:?}",
                kind.as_str().unwrap_or_default(),
                surface.found_by,
                surface.text
            )?;
            if surface.hits.is_empty() {
                writeln!(f, "      nothing the lexicon knows")?;
            }
            for hit in &surface.hits {
                writeln!(
                    f,
                    "      {}{} ({}: `{}`) on {:?}",
                    hit.concept.name(),
                    if hit.weak { " (weak)" } else { "" },
                    hit.language,
                    hit.expression,
                    hit.matched
                )?;
            }
        }
        let mut candidates: Vec<_> = self.assessment.candidates.iter().enumerate().collect();
        candidates.sort_by_key(|(i, c)| (c.outcome.precedence(), *i));
        writeln!(f, "\ncandidate outcomes, most protective first:")?;
        if candidates.is_empty() {
            writeln!(f, "  none (an ordinary page: the engine acts on it)")?;
        }
        for (n, (_, c)) in candidates.iter().enumerate() {
            let by = serde_json::to_value(&c.reason).unwrap_or_default();
            writeln!(
                f,
                "  {}{} by {}{}",
                c.outcome,
                if n == 0 { "  <- wins" } else { "" },
                by,
                c.message
                    .as_ref()
                    .map(|m| format!(" {m:?}"))
                    .unwrap_or_default()
            )?;
        }
        writeln!(f)?;
        match &self.result {
            Ok(found) => writeln!(
                f,
                "result: page `{}`, outcome {}",
                found.page,
                found
                    .outcome
                    .map_or("none (act on the page)".to_string(), |o| o.to_string())
            ),
            Err(e) => writeln!(f, "result: unrecognized_page ({e})"),
        }
    }
}
