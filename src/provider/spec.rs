//! The declarative provider spec (`providers/<id>.toml`): the file format, and its compiled,
//! validated form. Validation happens once, at load, so the engine never meets a bad selector.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use scraper::Selector;
use serde::Deserialize;

use super::lexicon::walls::{compile_surfaces, Compile, Surfaces, SurfacesFile, Wall};
use super::lexicon::{Concept, Lexicon, Shared};
use crate::outcome::{self, CodeChannel, Outcome, Resolution};

/// A spec that does not load: which file, which field, what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct SpecError {
    pub file: String,
    pub field: String,
    pub message: String,
}

// ---------------------------------------------------------------- file format

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecFile {
    id: String,
    name: String,
    #[serde(default)]
    portal: Option<String>,
    languages: Vec<String>,
    support_url: String,
    /// Host key -> origin, e.g. `hub = "https://partner-hub.deliveroo.com"`.
    hosts: BTreeMap<String, String>,
    /// Where the login starts: `host_key:/path`.
    entry: String,
    /// The longest the engine waits for a page to change after acting.
    #[serde(default = "default_step_timeout_ms")]
    step_timeout_ms: u64,
    /// How fields are filled and buttons clicked: `script` (default, one call each) or `native`
    /// (key events and pointer clicks, for a portal that only reacts to trusted input).
    #[serde(default)]
    input: crate::browser::Input,
    #[serde(default)]
    overlays: Vec<OverlayFile>,
    pages: Vec<PageFile>,
    #[serde(default)]
    external_steps: BTreeMap<String, ExternalStepsFile>,
    /// How the portal's code emails look, for reading codes from the merchant's mailbox.
    #[serde(default)]
    email_code: Option<EmailCodeFile>,
    /// The portal's own wording, on top of the shared lexicon: language -> concept -> expressions.
    #[serde(default)]
    lexicon: BTreeMap<String, BTreeMap<Concept, Vec<String>>>,
    /// Where this portal shows messages, on top of the shared surfaces.
    #[serde(default)]
    surfaces: Option<SurfacesFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailCodeFile {
    sender: String,
    pattern: String,
}

fn default_step_timeout_ms() -> u64 {
    15_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OverlayFile {
    name: String,
    present: Vec<String>,
    dismiss: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageFile {
    name: String,
    #[serde(default)]
    host: Option<String>,
    url: String,
    #[serde(default)]
    present: Vec<String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    text: Vec<String>,
    #[serde(default)]
    signals: Vec<SignalFile>,
    #[serde(default)]
    actions: Vec<ActionFile>,
    #[serde(default)]
    code: Option<CodeFile>,
    #[serde(default, with = "outcome::compact::option")]
    outcome: Option<Outcome>,
    /// Selector whose text is the portal's own message, kept for operators.
    #[serde(default)]
    raw_message: Option<String>,
    #[serde(default)]
    stores: Option<StoresFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignalFile {
    /// The outcome; defaults to the concept's.
    #[serde(default, with = "outcome::compact::option")]
    outcome: Option<Outcome>,
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    text: Vec<String>,
    /// A lexicon concept the element's text must express (in any language).
    #[serde(default)]
    concept: Option<Concept>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionFile {
    #[serde(default)]
    fill: Option<String>,
    #[serde(default)]
    with: Option<FillValue>,
    #[serde(default)]
    click: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CodeFile {
    inputs: String,
    submit: String,
    channel: CodeChannel,
    #[serde(default)]
    destination: Option<String>,
    #[serde(default)]
    length: Option<usize>,
    #[serde(default)]
    channels: Vec<ChannelFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelFile {
    channel: CodeChannel,
    text: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoresFile {
    item: String,
    id: FieldFile,
    name: FieldFile,
    #[serde(default)]
    brand: Option<FieldFile>,
    #[serde(default)]
    status: Option<FieldFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    #[serde(default)]
    selector: Option<String>,
    #[serde(default)]
    attr: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExternalStepsFile {
    #[serde(default)]
    support_url: Option<String>,
    /// Language -> ordered steps shown to the merchant.
    steps: BTreeMap<String, Vec<String>>,
}

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

    /// The origin a host key stands for, given an optional base-URL override.
    /// With an override `B`, host `K` lives at `B/K` (that is how the sandbox serves portals).
    pub fn host_origin(&self, host: &str, base_override: Option<&str>) -> Option<String> {
        match base_override {
            Some(base) => Some(format!("{}/{}", base.trim_end_matches('/'), host)),
            None => self.hosts.get(host).cloned(),
        }
    }

    pub fn entry_url(&self, base_override: Option<&str>) -> String {
        let origin = self
            .host_origin(&self.entry_host, base_override)
            .expect("entry host validated at load");
        format!("{origin}{}", self.entry_path)
    }

    /// Splits an absolute URL into (host key, path-and-query) against this provider's hosts.
    pub fn locate(&self, url: &str, base_override: Option<&str>) -> (Option<String>, String) {
        for host in self.hosts.keys() {
            let origin = self.host_origin(host, base_override).unwrap_or_default();
            if let Some(rest) = url.strip_prefix(origin.as_str()) {
                if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
                    let rest = if rest.is_empty() { "/" } else { rest };
                    return (Some(host.clone()), rest.to_string());
                }
            }
        }
        (None, url.to_string())
    }

    /// The portal's real URL for a URL seen under `base_override` (the sandbox serves host `K` at
    /// `B/K`); a URL of no known host is returned as it is.
    pub fn real_url(&self, url: &str, base_override: Option<&str>) -> String {
        match self.locate(url, base_override) {
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

struct Compiler<'a> {
    file: &'a str,
}

impl Compile for Compiler<'_> {
    fn css(&self, at: &str, source: &str) -> Result<Css, String> {
        parse_css(source).map_err(|e| format!("{at}: {e}"))
    }
    fn regex(&self, at: &str, source: &str) -> Result<Regex, String> {
        Regex::new(source).map_err(|e| format!("{at}: invalid regex `{source}`: {e}"))
    }
}

impl Compiler<'_> {
    fn err(&self, field: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            file: self.file.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }

    fn css(&self, field: &str, source: &str) -> Result<Css, SpecError> {
        parse_css(source).map_err(|e| self.err(field, e))
    }

    fn css_list(&self, field: &str, sources: &[String]) -> Result<Vec<Css>, SpecError> {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.css(&format!("{field}[{i}]"), s))
            .collect()
    }

    fn regex(&self, field: &str, source: &str) -> Result<Regex, SpecError> {
        Regex::new(source).map_err(|e| self.err(field, format!("invalid regex `{source}`: {e}")))
    }

    fn regex_list(&self, field: &str, sources: &[String]) -> Result<Vec<Regex>, SpecError> {
        sources
            .iter()
            .enumerate()
            .map(|(i, s)| self.regex(&format!("{field}[{i}]"), s))
            .collect()
    }

    fn field(&self, at: &str, raw: FieldFile) -> Result<Field, SpecError> {
        let selector = raw
            .selector
            .as_deref()
            .map(|s| self.css(&format!("{at}.selector"), s))
            .transpose()?;
        Ok(Field {
            selector,
            attr: raw.attr,
        })
    }

    fn spec(&self, raw: SpecFile, shared: &Shared) -> Result<ProviderSpec, SpecError> {
        let expected_id = std::path::Path::new(self.file)
            .file_stem()
            .and_then(|s| s.to_str());
        if let Some(stem) = expected_id {
            if stem != raw.id {
                return Err(self.err(
                    "id",
                    format!("`{}` does not match the file name `{stem}`", raw.id),
                ));
            }
        }
        url::Url::parse(&raw.support_url).map_err(|e| {
            self.err(
                "support_url",
                format!("`{}` is not a URL: {e}", raw.support_url),
            )
        })?;
        if raw.hosts.is_empty() {
            return Err(self.err("hosts", "at least one host is needed"));
        }
        for (key, origin) in &raw.hosts {
            let parsed = url::Url::parse(origin).map_err(|e| {
                self.err(
                    format!("hosts.{key}"),
                    format!("`{origin}` is not a URL: {e}"),
                )
            })?;
            if parsed.path() != "/" || origin.ends_with('/') {
                return Err(self.err(
                    format!("hosts.{key}"),
                    "give the origin only, without a path or trailing slash",
                ));
            }
        }
        let (entry_host, entry_path) = raw
            .entry
            .split_once(':')
            .filter(|(host, path)| raw.hosts.contains_key(*host) && path.starts_with('/'))
            .ok_or_else(|| {
                self.err(
                    "entry",
                    format!(
                        "`{}` must be `host_key:/path` with a host from [hosts]",
                        raw.entry
                    ),
                )
            })?;
        if raw.pages.is_empty() {
            return Err(self.err("pages", "a provider needs at least one page rule"));
        }

        let overlays = raw
            .overlays
            .into_iter()
            .enumerate()
            .map(|(i, o)| {
                let at = format!("overlays[{i}]");
                if o.present.is_empty() {
                    return Err(self.err(
                        format!("{at}.present"),
                        "an overlay needs at least one selector",
                    ));
                }
                Ok(OverlayRule {
                    present: self.css_list(&format!("{at}.present"), &o.present)?,
                    dismiss: self.css(&format!("{at}.dismiss"), &o.dismiss)?,
                    name: o.name,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut pages = Vec::new();
        for (i, p) in raw.pages.into_iter().enumerate() {
            let at = format!("pages[{i}] ({})", p.name);
            pages.push(self.page(&at, p, &raw.hosts)?);
        }
        let mut names: Vec<&str> = pages.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(self.err("pages", format!("two page rules are named `{}`", dup[0])));
        }

        let mut external_steps = BTreeMap::new();
        for (reason, steps) in raw.external_steps {
            let at = format!("external_steps.{reason}");
            if !steps.steps.contains_key("en") {
                return Err(self.err(&at, "steps need at least an `en` text"));
            }
            external_steps.insert(
                reason,
                ExternalSteps {
                    support_url: steps.support_url.unwrap_or_else(|| raw.support_url.clone()),
                    steps: steps.steps,
                },
            );
        }

        let email_code = raw
            .email_code
            .map(|e| {
                Ok::<_, SpecError>(crate::codes::EmailCodeRule {
                    sender: self.regex("email_code.sender", &e.sender)?,
                    pattern: self.regex("email_code.pattern", &e.pattern)?,
                })
            })
            .transpose()?;
        let lexicon = shared
            .with_wording(&raw.lexicon)
            .map_err(|e| self.err("lexicon", e.to_string()))?;
        let own_surfaces = match &raw.surfaces {
            Some(file) => compile_surfaces(file, "surfaces", self).map_err(|e| self.err("", e))?,
            None => Surfaces::default(),
        };
        let spec = ProviderSpec {
            id: raw.id,
            name: raw.name,
            portal: raw.portal,
            languages: raw.languages,
            support_url: raw.support_url,
            hosts: raw.hosts,
            entry_host: entry_host.to_string(),
            entry_path: entry_path.to_string(),
            step_timeout_ms: raw.step_timeout_ms,
            input: raw.input,
            overlays,
            pages,
            external_steps,
            email_code,
            lexicon,
            walls: shared.walls.clone(),
            surfaces: shared.surfaces.with(&own_surfaces),
        };
        // Every outcome the merchant must fix outside our product needs steps to show.
        for outcome in spec.reachable_outcomes() {
            if outcome.decision().resolution == Resolution::ExternalSteps {
                let reason = outcome.reason().unwrap_or_default();
                if !spec.external_steps.contains_key(reason) {
                    return Err(self.err(
                        format!("external_steps.{reason}"),
                        format!("the spec can end in `{outcome}`, which needs external steps for the merchant"),
                    ));
                }
            }
        }
        // A paired page with no store list would be a success we cannot check.
        Ok(spec)
    }

    fn page(
        &self,
        at: &str,
        p: PageFile,
        hosts: &BTreeMap<String, String>,
    ) -> Result<PageRule, SpecError> {
        if let Some(host) = &p.host {
            if !hosts.contains_key(host) {
                return Err(self.err(format!("{at}.host"), format!("`{host}` is not in [hosts]")));
            }
        }
        if p.present.is_empty() && p.text.is_empty() {
            return Err(self.err(
                at,
                "a page rule needs `present` selectors or `text` patterns, not only a URL",
            ));
        }
        let ends = p.outcome.is_some();
        let kinds = [ends, p.code.is_some(), !p.actions.is_empty()]
            .iter()
            .filter(|b| **b)
            .count();
        if kinds != 1 {
            return Err(self.err(
                at,
                "a page rule needs exactly one of `outcome`, `code` or `actions`",
            ));
        }
        if p.outcome == Some(Outcome::Paired) && p.stores.is_none() {
            return Err(self.err(
                format!("{at}.stores"),
                "a page that ends `paired` must say how to read the store list",
            ));
        }
        if p.stores.is_some() && p.outcome != Some(Outcome::Paired) {
            return Err(self.err(
                format!("{at}.stores"),
                "only a page that ends `paired` reads stores",
            ));
        }
        let signals = p
            .signals
            .into_iter()
            .enumerate()
            .map(|(j, s)| {
                let sat = format!("{at}.signals[{j}]");
                if s.selector.is_none() && s.text.is_empty() && s.concept.is_none() {
                    return Err(self.err(
                        &sat,
                        "a signal needs a `selector`, `text` patterns, a `concept`, or a selector with either",
                    ));
                }
                let outcome = s
                    .outcome
                    .or_else(|| s.concept.and_then(Concept::outcome))
                    .ok_or_else(|| {
                        self.err(
                            &sat,
                            "a signal needs an `outcome` (its concept decides none)",
                        )
                    })?;
                Ok(Signal {
                    outcome,
                    concept: s.concept,
                    selector: s
                        .selector
                        .as_deref()
                        .map(|c| self.css(&format!("{sat}.selector"), c))
                        .transpose()?,
                    text: self.regex_list(&format!("{sat}.text"), &s.text)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let actions = p
            .actions
            .into_iter()
            .enumerate()
            .map(|(j, a)| {
                let aat = format!("{at}.actions[{j}]");
                match (a.fill, a.with, a.click) {
                    (Some(fill), Some(value), None) => {
                        Ok(Action::Fill { target: self.css(&format!("{aat}.fill"), &fill)?, value })
                    }
                    (None, None, Some(click)) => Ok(Action::Click { target: self.css(&format!("{aat}.click"), &click)? }),
                    _ => Err(self.err(aat, "an action is either `{ fill = CSS, with = \"username\"|\"password\" }` or `{ click = CSS }`")),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let code = p
            .code
            .map(|c| {
                let cat = format!("{at}.code");
                Ok::<_, SpecError>(CodePage {
                    inputs: self.css(&format!("{cat}.inputs"), &c.inputs)?,
                    submit: self.css(&format!("{cat}.submit"), &c.submit)?,
                    channel: c.channel,
                    destination: c
                        .destination
                        .as_deref()
                        .map(|d| self.css(&format!("{cat}.destination"), d))
                        .transpose()?,
                    length: c.length,
                    channels: c
                        .channels
                        .into_iter()
                        .enumerate()
                        .map(|(k, ch)| {
                            Ok((
                                ch.channel,
                                self.regex_list(&format!("{cat}.channels[{k}].text"), &ch.text)?,
                            ))
                        })
                        .collect::<Result<Vec<_>, SpecError>>()?,
                })
            })
            .transpose()?;
        let stores = p
            .stores
            .map(|s| {
                let sat = format!("{at}.stores");
                Ok::<_, SpecError>(StoreList {
                    item: self.css(&format!("{sat}.item"), &s.item)?,
                    id: self.field(&format!("{sat}.id"), s.id)?,
                    name: self.field(&format!("{sat}.name"), s.name)?,
                    brand: s
                        .brand
                        .map(|f| self.field(&format!("{sat}.brand"), f))
                        .transpose()?,
                    status: s
                        .status
                        .map(|f| self.field(&format!("{sat}.status"), f))
                        .transpose()?,
                })
            })
            .transpose()?;
        Ok(PageRule {
            host: p.host,
            url: self.regex(&format!("{at}.url"), &p.url)?,
            present: self.css_list(&format!("{at}.present"), &p.present)?,
            absent: self.css_list(&format!("{at}.absent"), &p.absent)?,
            text: self.regex_list(&format!("{at}.text"), &p.text)?,
            raw_message: p
                .raw_message
                .as_deref()
                .map(|r| self.css(&format!("{at}.raw_message"), r))
                .transpose()?,
            name: p.name,
            signals,
            actions,
            code,
            outcome: p.outcome,
            stores,
        })
    }
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
