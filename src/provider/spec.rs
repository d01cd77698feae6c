//! The declarative provider spec (`providers/<id>.toml`): the file format, and its compiled,
//! validated form. Validation happens once, at load, so the engine never meets a bad selector.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use scraper::Selector;
use serde::Deserialize;

use super::hosts::PortalHosts;
use super::lexicon::walls::{compile_surfaces, Compile, Surfaces, Wall};
use super::lexicon::{Concept, Lexicon, Shared};
use crate::outcome::{CodeChannel, Outcome, Resolution};

/// A spec that does not load: which file, which field, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct SpecError {
    pub file: String,
    pub field: String,
    pub message: String,
}

mod compile;
mod file;

use compile::Compiler;
use file::SpecFile;

// ---------------------------------------------------------------- compiled form

/// Which secret an action types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FillValue {
    Username,
    Password,
}

#[derive(Debug, Clone)]
pub struct Css {
    pub source: String,
    pub selector: Selector,
}

#[derive(Debug, Clone)]
pub struct ProviderSpec {
    pub id: String,
    pub name: String,
    pub portal: Option<String>,
    pub languages: Vec<String>,
    pub support_url: String,
    pub hosts: BTreeMap<String, String>,
    pub entry_host: String,
    pub entry_path: String,
    pub step_timeout_ms: u64,
    pub input: crate::browser::Input,
    pub overlays: Vec<OverlayRule>,
    pub pages: Vec<PageRule>,
    pub external_steps: BTreeMap<String, ExternalSteps>,
    pub email_code: Option<crate::codes::EmailCodeRule>,
    /// The shared lexicon plus this portal's own wording.
    pub lexicon: Arc<Lexicon>,
    /// Vendor walls, shared by every provider.
    pub walls: Arc<Vec<Wall>>,
    /// Where messages show: the shared surfaces plus the spec's.
    pub surfaces: Surfaces,
}

#[derive(Debug, Clone)]
pub struct OverlayRule {
    pub name: String,
    pub present: Vec<Css>,
    pub dismiss: Css,
}

#[derive(Debug, Clone)]
pub struct PageRule {
    pub name: String,
    pub host: Option<String>,
    pub url: Regex,
    pub present: Vec<Css>,
    pub absent: Vec<Css>,
    pub text: Vec<Regex>,
    pub signals: Vec<Signal>,
    pub actions: Vec<Action>,
    pub code: Option<CodePage>,
    pub outcome: Option<Outcome>,
    pub raw_message: Option<Css>,
    pub stores: Option<StoreList>,
}

#[derive(Debug, Clone)]
pub struct Signal {
    pub outcome: Outcome,
    pub selector: Option<Css>,
    pub text: Vec<Regex>,
    pub concept: Option<Concept>,
}

#[derive(Debug, Clone)]
pub enum Action {
    Fill { target: Css, value: FillValue },
    Click { target: Css },
}

#[derive(Debug, Clone)]
pub struct CodePage {
    pub inputs: Css,
    pub submit: Css,
    pub channel: CodeChannel,
    pub destination: Option<Css>,
    pub length: Option<usize>,
    pub channels: Vec<(CodeChannel, Vec<Regex>)>,
}

#[derive(Debug, Clone)]
pub struct StoreList {
    pub item: Css,
    pub id: Field,
    pub name: Field,
    pub brand: Option<Field>,
    pub status: Option<Field>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub selector: Option<Css>,
    pub attr: Option<String>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ExternalSteps {
    pub support_url: String,
    pub steps: BTreeMap<String, Vec<String>>,
}

impl ExternalSteps {
    /// The steps in `lang` (a region like `fr-CA` falls back to `fr`), else English, else
    /// whatever language the spec has: `(language, steps)`.
    pub fn in_language(&self, lang: &str) -> Option<(&str, &[String])> {
        let base = lang
            .split(['-', '_'])
            .next()
            .unwrap_or(lang)
            .to_ascii_lowercase();
        self.steps
            .get_key_value(&base)
            .or_else(|| self.steps.get_key_value("en"))
            .or_else(|| self.steps.iter().next())
            .map(|(language, steps)| (language.as_str(), steps.as_slice()))
    }
}

impl ProviderSpec {
    /// Parses and validates one spec file. `file` is only used to name it in errors.
    pub fn parse(file: &str, text: &str) -> Result<ProviderSpec, SpecError> {
        ProviderSpec::parse_with(file, text, Shared::embedded())
    }

    /// Parses and validates one spec file against a shared lexicon (a folder being edited).
    pub fn parse_with(file: &str, text: &str, shared: &Shared) -> Result<ProviderSpec, SpecError> {
        let raw: SpecFile = toml::from_str(text).map_err(|e| SpecError {
            file: file.to_string(),
            field: e
                .span()
                .map(|s| format!("bytes {}..{}", s.start, s.end))
                .unwrap_or_default(),
            message: e.message().to_string(),
        })?;
        Compiler { file }.spec(raw, shared)
    }

    pub fn page(&self, name: &str) -> Option<&PageRule> {
        self.pages.iter().find(|p| p.name == name)
    }

    /// Where a host key is reached: its real origin, or where the host map points it.
    pub fn host_origin(&self, host: &str, hosts: &PortalHosts) -> Option<String> {
        self.hosts.get(host).map(|origin| hosts.reach(origin))
    }

    pub fn entry_url(&self, hosts: &PortalHosts) -> String {
        let origin = self
            .host_origin(&self.entry_host, hosts)
            .expect("entry host validated at load");
        format!("{origin}{}", self.entry_path)
    }

    /// Splits an absolute URL into (host key, path-and-query) against this provider's hosts as
    /// `hosts` reaches them.
    pub fn locate(&self, url: &str, hosts: &PortalHosts) -> (Option<String>, String) {
        for host in self.hosts.keys() {
            let origin = self.host_origin(host, hosts).unwrap_or_default();
            if let Some(rest) = url.strip_prefix(origin.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
                    let rest = if rest.is_empty() { "/" } else { rest };
                    return (Some(host.clone()), rest.to_string());
                }
            }
        }
        (None, url.to_string())
    }

    /// The portal's real URL for a URL seen where `hosts` reaches the portal; a URL of no known
    /// host is returned as it is.
    pub fn real_url(&self, url: &str, hosts: &PortalHosts) -> String {
        match self.locate(url, hosts) {
            (Some(host), path) => format!("{}{path}", self.hosts[&host]),
            (None, _) => url.to_string(),
        }
    }

    /// Every outcome the spec can produce, for checklists and validation.
    pub fn reachable_outcomes(&self) -> Vec<Outcome> {
        let mut out = Vec::new();
        for page in &self.pages {
            out.extend(page.outcome);
            out.extend(page.signals.iter().map(|s| s.outcome));
            if page.code.is_some() {
                out.push(Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired));
            }
            if page.stores.is_some() {
                // Zero stores, or an expected store missing, is never `paired`.
                out.push(Outcome::InvalidStoreConfig(
                    crate::outcome::StoreConfig::StoreNotFound,
                ));
            }
        }
        // The shared lexicon and walls can end any page of any provider in their outcomes.
        out.extend(<Concept as strum::IntoEnumIterator>::iter().filter_map(Concept::outcome));
        out.extend(
            self.walls
                .iter()
                .flat_map(|w| [Some(w.outcome), w.in_page])
                .flatten(),
        );
        out.sort_by_key(|o| o.to_string());
        out.dedup();
        out
    }
}

/// Parses a CSS selector strictly: the CSS parser closes an unclosed `[`, `(` or quote at the end
/// of input, so `[name=email` would load as `[name=email]`; a spec that says that is a typo.
pub fn parse_css(source: &str) -> Result<Css, String> {
    let invalid = |why: String| format!("invalid CSS selector `{source}`: {why}");
    let mut open: Vec<char> = Vec::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in source.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (_, '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '[' | '(') => open.push(c),
            (None, ']' | ')') => {
                let want = if c == ']' { '[' } else { '(' };
                if open.pop() != Some(want) {
                    return Err(invalid(format!("unbalanced `{c}`")));
                }
            }
            _ => {}
        }
    }
    if let Some(q) = quote {
        return Err(invalid(format!("unclosed {q}")));
    }
    if let Some(c) = open.pop() {
        return Err(invalid(format!("unclosed `{c}`")));
    }
    let selector = Selector::parse(source).map_err(|e| invalid(e.to_string()))?;
    Ok(Css {
        source: source.to_string(),
        selector,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_css;

    #[test]
    fn selectors_with_unclosed_brackets_or_quotes_are_refused() {
        for bad in [
            "[name=email",
            "input[name='email]",
            "div:not(.x",
            "a]",
            "[data-x=\"y]",
        ] {
            let err = parse_css(bad).unwrap_err();
            assert!(err.contains("invalid CSS selector"), "{bad}: {err}");
        }
        for good in ["[name=email]", "input[name='a]b']", "div:not(.x)", "a\\[b"] {
            assert!(parse_css(good).is_ok(), "{good}");
        }
    }
}
