//! Recorded pages: `fixtures/<provider>/<case>.html` beside `<case>.toml`, the classification the
//! page must produce. Every recorded page is a test, and the sandbox portal serves the same pages.

use serde::{Deserialize, Serialize};

use crate::engine::classify::{classify, Classification, Snapshot};
use crate::outcome::{self, CodeChannel, Outcome};
use crate::provider::spec::{Action, Css};
use crate::provider::{FileTree, ProviderSpec};

/// What a recorded page must classify to (`<case>.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The real portal URL the page was recorded at.
    pub url: String,
    /// The page rule that must match.
    pub page: String,
    #[serde(default)]
    pub overlays: Vec<String>,
    /// The outcome a pairing ends in here; absent for pages the engine acts on.
    #[serde(
        default,
        with = "outcome::compact::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub outcome: Option<Outcome>,
    /// A part of the portal's own message that must be captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_message: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub store_ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_channel: Option<CodeChannel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// The page's language (BCP 47), for the provider checklist.
    #[serde(default = "default_language")]
    pub language: String,
    /// The HTTP status the sandbox serves the page with.
    #[serde(default = "default_status")]
    pub status: u16,
    /// Free text for the adapter developer (where the page came from, what is odd about it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where the page or its wording comes from (a public page), or `[P]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn default_language() -> String {
    "en".into()
}

fn default_status() -> u16 {
    200
}

#[derive(Debug, Clone)]
pub struct Fixture {
    pub provider: String,
    pub case: String,
    pub html: String,
    pub expected: Expected,
}

/// Loads every recorded page of a provider, sorted by case name.
pub fn load(files: &FileTree, provider: &str) -> Result<Vec<Fixture>, String> {
    let mut out = Vec::new();
    for name in files.list(provider) {
        let Some(case) = name.strip_suffix(".html") else {
            continue;
        };
        let html = files
            .read(&format!("{provider}/{name}"))
            .ok_or_else(|| format!("{}: unreadable", files.display(&name)))?;
        let toml_path = format!("{provider}/{case}.toml");
        let text = files.read(&toml_path).ok_or_else(|| {
            format!(
                "{}: missing (every page needs its expected classification)",
                files.display(&toml_path)
            )
        })?;
        let expected: Expected =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", files.display(&toml_path)))?;
        out.push(Fixture {
            provider: provider.to_string(),
            case: case.to_string(),
            html,
            expected,
        });
    }
    Ok(out)
}

impl Fixture {
    /// Classifies the page and compares with what it must be; `Err` says every difference.
    pub fn check(&self, spec: &ProviderSpec) -> Result<Classification, String> {
        let got = classify(
            spec,
            &self.expected.url,
            &self.html,
            &crate::provider::PortalHosts::real(),
        )
        .map_err(|e| e.to_string())?;
        let want = &self.expected;
        let mut problems = Vec::new();
        if got.page != want.page {
            problems.push(format!(
                "page: expected `{}`, got `{}`",
                want.page, got.page
            ));
        }
        if got.overlays != want.overlays {
            problems.push(format!(
                "overlays: expected {:?}, got {:?}",
                want.overlays, got.overlays
            ));
        }
        if got.outcome != want.outcome {
            let show = |o: Option<Outcome>| {
                o.map_or("none (an intermediate page)".to_string(), |o| o.to_string())
            };
            problems.push(format!(
                "outcome: expected {}, got {}",
                show(want.outcome),
                show(got.outcome)
            ));
        }
        if let Some(part) = &want.raw_message {
            if !got
                .raw_message
                .as_deref()
                .unwrap_or_default()
                .contains(part.as_str())
            {
                problems.push(format!(
                    "raw_message: expected to contain {part:?}, got {:?}",
                    got.raw_message
                ));
            }
        }
        let ids: Vec<&str> = got.stores.iter().map(|s| s.id.as_str()).collect();
        if !want.store_ids.is_empty() && ids != want.store_ids {
            problems.push(format!(
                "store_ids: expected {:?}, got {ids:?}",
                want.store_ids
            ));
        }
        if let Some(channel) = want.code_channel {
            let got_channel = got.code_request.as_ref().map(|c| c.channel);
            if got_channel != Some(channel) {
                problems.push(format!(
                    "code_channel: expected {channel:?}, got {got_channel:?}"
                ));
            }
        }
        if let Some(destination) = &want.destination {
            let got_destination = got
                .code_request
                .as_ref()
                .and_then(|c| c.destination.clone());
            if got_destination.as_deref() != Some(destination.as_str()) {
                problems.push(format!(
                    "destination: expected {destination:?}, got {got_destination:?}"
                ));
            }
        }
        problems.extend(self.lint(spec));
        if problems.is_empty() {
            Ok(got)
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Offline lint: every selector the engine acts with on this page (its rule's actions on an
    /// ordinary step, its code inputs and submit on a code page, its overlays' dismiss buttons)
    /// finds a visible element here. A selector that matches nothing is a spec defect: live, it
    /// would end the pairing as `unrecognized_page`.
    pub fn lint(&self, spec: &ProviderSpec) -> Vec<String> {
        let snapshot = Snapshot::parse(&self.expected.url, &self.html);
        let mut targets: Vec<(&str, &Css)> = Vec::new();
        for name in &self.expected.overlays {
            if let Some(overlay) = spec.overlays.iter().find(|o| &o.name == name) {
                targets.push(("overlay dismiss", &overlay.dismiss));
            }
        }
        if let Some(rule) = spec.page(&self.expected.page) {
            if self.expected.outcome.is_none() {
                for action in &rule.actions {
                    match action {
                        Action::Fill { target, .. } => targets.push(("fill", target)),
                        Action::Click { target } => targets.push(("click", target)),
                    }
                }
            }
            if let (Some(code), Some(Outcome::TwoFactor(_))) = (&rule.code, self.expected.outcome) {
                targets.push(("code input", &code.inputs));
                targets.push(("code submit", &code.submit));
            }
        }
        targets
            .into_iter()
            .filter(|(_, css)| !snapshot.has(css))
            .map(|(what, css)| {
                format!(
                    "lint: {what} selector `{}` of page rule `{}` finds no visible element on this page",
                    css.source, self.expected.page
                )
            })
            .collect()
    }
}

static EMBEDDED: include_dir::Dir<'static> =
    include_dir::include_dir!("$CARGO_MANIFEST_DIR/fixtures");

/// The recorded pages compiled into this binary.
pub fn embedded() -> FileTree {
    FileTree::Embedded(&EMBEDDED)
}

/// This crate's own `fixtures/` folder on disk (tests, developers).
pub fn source_tree() -> FileTree {
    FileTree::Disk(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures"))
}

/// How many pages are recorded for `provider`.
pub fn count(files: &FileTree, provider: &str) -> usize {
    files
        .list(provider)
        .iter()
        .filter(|f| f.ends_with(".html"))
        .count()
}
