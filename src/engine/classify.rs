//! Page recognition: which page rule of a provider a snapshot (URL + HTML) is, which overlays sit on
//! it, and what it says. Pure and synchronous, so recorded pages and live pages go through the very
//! same code.

use regex::Regex;
use scraper::{ElementRef, Html, Node};
use serde::Serialize;

use crate::outcome::{CodeRequest, Outcome, Store, StoreConfig};
use crate::provider::spec::{Css, Field, PageRule, ProviderSpec, Signal};

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

/// A parsed page, with visibility resolved once.
pub struct Snapshot {
    html: Html,
    url: String,
}

impl Snapshot {
    pub fn parse(url: &str, html: &str) -> Snapshot {
        Snapshot {
            html: Html::parse_document(html),
            url: url.to_string(),
        }
    }

    fn visible<'a>(&'a self, css: &'a Css) -> impl Iterator<Item = ElementRef<'a>> + 'a {
        self.html.select(&css.selector).filter(|el| is_visible(*el))
    }

    fn has(&self, css: &Css) -> bool {
        self.visible(css).next().is_some()
    }

    fn page_text(&self) -> String {
        let mut out = String::new();
        if let Some(body) = self.html.select(&BODY).next() {
            visible_text(body, &mut out);
        }
        out
    }
}

static BODY: std::sync::LazyLock<scraper::Selector> =
    std::sync::LazyLock::new(|| scraper::Selector::parse("body").expect("static selector"));

static ALL_IN_BODY: std::sync::LazyLock<Css> = std::sync::LazyLock::new(|| Css {
    source: "body *".into(),
    selector: scraper::Selector::parse("body *").expect("static selector"),
});

/// What the browser would not show: scripts, templates, `hidden`, inline `display:none`.
fn hides(el: &scraper::node::Element) -> bool {
    matches!(
        el.name(),
        "script" | "style" | "template" | "noscript" | "head"
    ) || el.attr("hidden").is_some()
        || el.attr("style").is_some_and(|style| {
            let style: String = style
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_ascii_lowercase();
            style.contains("display:none") || style.contains("visibility:hidden")
        })
}

fn is_visible(el: ElementRef<'_>) -> bool {
    !std::iter::once(*el)
        .chain(el.ancestors())
        .any(|node| matches!(node.value(), Node::Element(e) if hides(e)))
}

fn visible_text(el: ElementRef<'_>, out: &mut String) {
    for child in el.children() {
        match child.value() {
            Node::Text(text) => {
                for word in text.split_whitespace() {
                    if !out.is_empty() {
                        out.push(' ');
                    }
                    out.push_str(word);
                }
            }
            Node::Element(e) if !hides(e) => {
                if let Some(child) = ElementRef::wrap(child) {
                    visible_text(child, out);
                }
            }
            _ => {}
        }
    }
}

fn element_text(el: ElementRef<'_>) -> String {
    let mut out = String::new();
    visible_text(el, &mut out);
    out
}

fn any_match(patterns: &[Regex], text: &str) -> bool {
    patterns.iter().any(|p| p.is_match(text))
}

/// Classifies one page of `spec`. `base_override` is the `--base-url` the portal is served from.
pub fn classify(
    spec: &ProviderSpec,
    url: &str,
    html: &str,
    base_override: Option<&str>,
) -> Result<Classification, ClassifyError> {
    classify_snapshot(spec, &Snapshot::parse(url, html), base_override)
}

pub fn classify_snapshot(
    spec: &ProviderSpec,
    snapshot: &Snapshot,
    base_override: Option<&str>,
) -> Result<Classification, ClassifyError> {
    let (host, path) = spec.locate(&snapshot.url, base_override);
    let text = snapshot.page_text();
    let matching: Vec<&PageRule> = spec
        .pages
        .iter()
        .filter(|rule| rule_matches(rule, snapshot, host.as_deref(), &path, &text))
        .collect();
    let rule = match matching.as_slice() {
        [rule] => *rule,
        [] => {
            return Err(ClassifyError::NoMatch {
                provider: spec.id.clone(),
                url: snapshot.url.clone(),
            })
        }
        many => {
            return Err(ClassifyError::Ambiguous {
                provider: spec.id.clone(),
                url: snapshot.url.clone(),
                rules: many.iter().map(|r| r.name.clone()).collect(),
            })
        }
    };
    let overlays = spec
        .overlays
        .iter()
        .filter(|o| o.present.iter().all(|css| snapshot.has(css)))
        .map(|o| o.name.clone())
        .collect();
    let mut found = Classification {
        page: rule.name.clone(),
        overlays,
        outcome: rule.outcome,
        raw_message: rule
            .raw_message
            .as_ref()
            .and_then(|css| snapshot.visible(css).next())
            .map(element_text),
        code_request: None,
        stores: Vec::new(),
    };
    if let Some((outcome, message)) = rule.signals.iter().find_map(|s| signal(s, snapshot, &text)) {
        found.outcome = Some(outcome);
        found.raw_message = message.or(found.raw_message);
        return Ok(found);
    }
    if let Some(code) = &rule.code {
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
        found.code_request = Some(CodeRequest {
            channel,
            destination: code
                .destination
                .as_ref()
                .and_then(|css| snapshot.visible(css).next())
                .map(element_text),
            code_length,
            expires_at: None,
        });
        found.outcome = Some(Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired));
    }
    if let Some(list) = &rule.stores {
        found.stores = snapshot
            .visible(&list.item)
            .filter_map(|item| {
                let id = field(item, &list.id)?;
                Some(Store {
                    id,
                    name: field(item, &list.name).unwrap_or_default(),
                    brand: list.brand.as_ref().and_then(|f| field(item, f)),
                    status: list.status.as_ref().and_then(|f| field(item, f)),
                })
            })
            .collect();
        // A login that shows no store is not a success (zero records is a failure, not "paired").
        if found.stores.is_empty() {
            found.outcome = Some(Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound));
        }
    }
    Ok(found)
}

fn rule_matches(
    rule: &PageRule,
    snapshot: &Snapshot,
    host: Option<&str>,
    path: &str,
    text: &str,
) -> bool {
    if rule.host.is_some() && rule.host.as_deref() != host {
        return false;
    }
    let target = if host.is_some() {
        path
    } else {
        snapshot.url.as_str()
    };
    rule.url.is_match(target)
        && rule.present.iter().all(|css| snapshot.has(css))
        && !rule.absent.iter().any(|css| snapshot.has(css))
        && (rule.text.is_empty() || any_match(&rule.text, text))
}

/// Whether a signal fires, with the portal's own words when it does.
fn signal(
    signal: &Signal,
    snapshot: &Snapshot,
    page_text: &str,
) -> Option<(Outcome, Option<String>)> {
    match &signal.selector {
        Some(css) => snapshot.visible(css).find_map(|el| {
            let text = element_text(el);
            (signal.text.is_empty() || any_match(&signal.text, &text))
                .then(|| (signal.outcome, Some(text).filter(|t| !t.is_empty())))
        }),
        None => {
            if !any_match(&signal.text, page_text) {
                return None;
            }
            // The smallest visible element that says it is the portal's message.
            let message = snapshot
                .visible(&ALL_IN_BODY)
                .map(element_text)
                .filter(|t| any_match(&signal.text, t))
                .min_by_key(|t| t.len());
            Some((signal.outcome, message))
        }
    }
}

fn field(item: ElementRef<'_>, field: &Field) -> Option<String> {
    let el = match &field.selector {
        Some(css) => item.select(&css.selector).find(|el| is_visible(*el))?,
        None => item,
    };
    let value = match &field.attr {
        Some(attr) => el.attr(attr)?.trim().to_string(),
        None => element_text(el),
    };
    Some(value).filter(|v| !v.is_empty())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::outcome::{CodeChannel, InvalidCredentials};
    use proptest::prelude::*;

    pub const TEST_SPEC: &str = r##"
id = "testportal"
name = "Test Portal"
languages = ["en", "fr"]
support_url = "https://help.example.test"
entry = "web:/login"
[hosts]
web = "https://portal.example.test"
[[overlays]]
name = "cookie_banner"
present = ["#cookies"]
dismiss = "#cookies button"
[[pages]]
name = "login"
url = "^/login"
present = ["input[name=email]"]
actions = [{ fill = "input[name=email]", with = "username" }, { click = "button[type=submit]" }]
[[pages.signals]]
outcome = "invalid_credentials/wrong_password"
selector = ".error"
text = ["(?i)incorrect", "(?i)incorrects"]
[[pages]]
name = "code"
url = "^/verify"
present = ["input.digit"]
[pages.code]
inputs = "input.digit"
submit = "button"
channel = "email"
destination = ".dest"
channels = [{ channel = "sms", text = ["(?i)text message"] }]
[[pages]]
name = "home"
url = "^/home"
present = ["#stores"]
outcome = "paired"
[pages.stores]
item = "#stores li"
id = { attr = "data-id" }
name = { selector = ".name" }
[external_steps.store_not_found]
steps.en = ["Add the store to this account."]
"##;

    fn spec() -> ProviderSpec {
        ProviderSpec::parse("testportal.toml", TEST_SPEC).expect("test spec loads")
    }

    #[test]
    fn hidden_elements_do_not_count() {
        let spec = spec();
        let html = r#"<html><body><div id=cookies hidden><button>ok</button></div><form><input name=email><p class=error style="display: none">Incorrect</p><button type=submit>Go</button></form></body></html>"#;
        let found = classify(&spec, "https://portal.example.test/login", html, None).unwrap();
        assert_eq!(found.page, "login");
        assert!(found.overlays.is_empty());
        assert_eq!(found.outcome, None);
    }

    #[test]
    fn signals_carry_the_portals_words() {
        let spec = spec();
        let html = r#"<html><body><div id=cookies><button>ok</button></div><input name=email><p class=error> Identifiants   incorrects </p></body></html>"#;
        let found = classify(
            &spec,
            "https://portal.example.test/login?next=/home",
            html,
            None,
        )
        .unwrap();
        assert_eq!(found.overlays, vec!["cookie_banner"]);
        assert_eq!(
            found.outcome,
            Some(Outcome::InvalidCredentials(
                InvalidCredentials::WrongPassword
            ))
        );
        assert_eq!(
            found.raw_message.as_deref(),
            Some("Identifiants incorrects")
        );
    }

    #[test]
    fn split_code_boxes_give_length_and_channel() {
        let spec = spec();
        let html = r#"<html><body><p>We sent a text message to <span class=dest>+1 ••• 34</span></p>
            <input class=digit><input class=digit><input class=digit><input class=digit><button>Go</button></body></html>"#;
        let found = classify(&spec, "https://portal.example.test/verify", html, None).unwrap();
        let request = found.code_request.unwrap();
        assert_eq!(request.channel, CodeChannel::Sms);
        assert_eq!(request.code_length, Some(4));
        assert_eq!(request.destination.as_deref(), Some("+1 ••• 34"));
        assert_eq!(
            found.outcome,
            Some(Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired))
        );
    }

    #[test]
    fn zero_stores_is_never_paired() {
        let spec = spec();
        let with = r#"<html><body><ul id=stores><li data-id="s1"><b class=name>Pasta Bar</b></li><li data-id="s2" hidden><b class=name>Gone</b></li></ul></body></html>"#;
        let found = classify(&spec, "https://portal.example.test/home", with, None).unwrap();
        assert_eq!(found.outcome, Some(Outcome::Paired));
        assert_eq!(found.stores.len(), 1);
        assert_eq!(found.stores[0].name, "Pasta Bar");
        let without = r#"<html><body><ul id=stores></ul></body></html>"#;
        let found = classify(&spec, "https://portal.example.test/home", without, None).unwrap();
        assert_eq!(
            found.outcome,
            Some(Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound))
        );
    }

    #[test]
    fn base_override_maps_sandbox_urls_to_hosts() {
        let spec = spec();
        let html = r#"<html><body><input name=email></body></html>"#;
        let found = classify(
            &spec,
            "http://127.0.0.1:8090/testportal/web/login",
            html,
            Some("http://127.0.0.1:8090/testportal"),
        )
        .unwrap();
        assert_eq!(found.page, "login");
        let err = classify(
            &spec,
            "http://127.0.0.1:8090/other/web/login",
            html,
            Some("http://127.0.0.1:8090/testportal"),
        )
        .unwrap_err();
        assert!(matches!(err, ClassifyError::NoMatch { .. }));
    }

    #[test]
    fn two_matching_rules_are_an_error_not_a_guess() {
        let text = TEST_SPEC
            .replace(
                r##"present = ["#stores"]"##,
                r#"present = ["input[name=email]"]"#,
            )
            .replace(r#"url = "^/home""#, r#"url = "^/login""#);
        let spec = ProviderSpec::parse("testportal.toml", &text).unwrap();
        let html = r#"<html><body><input name=email></body></html>"#;
        let err = classify(&spec, "https://portal.example.test/login", html, None).unwrap_err();
        assert!(
            matches!(err, ClassifyError::Ambiguous { ref rules, .. } if rules.len() == 2),
            "{err}"
        );
    }

    #[test]
    fn bad_specs_name_file_field_and_problem() {
        let cases = [
            (
                TEST_SPEC.replace(
                    r##"present = ["#cookies"]"##,
                    r##"present = ["#cookies[["]"##,
                ),
                "overlays[0].present[0]",
                "invalid CSS selector",
            ),
            (
                TEST_SPEC.replace(r#""(?i)incorrects""#, r#""(?i)incorrects(""#),
                "pages[0] (login).signals[0].text[1]",
                "invalid regex",
            ),
            (
                TEST_SPEC.replace(
                    "invalid_credentials/wrong_password",
                    "invalid_credentials/wrong_pw",
                ),
                "",
                "unknown outcome",
            ),
            (
                TEST_SPEC.replace(
                    r#"outcome = "paired""#,
                    r#"outcome = "invalid_store_config/restaurant_inactive""#,
                ),
                "",
                "only a page that ends `paired` reads stores",
            ),
            (
                TEST_SPEC.replace(r#"entry = "web:/login""#, r#"entry = "nowhere:/login""#),
                "entry",
                "host_key",
            ),
        ];
        for (text, field, message) in cases {
            let err = ProviderSpec::parse("providers/testportal.toml", &text).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("providers/testportal.toml: "), "{shown}");
            assert!(shown.contains(field) && shown.contains(message), "{shown}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Garbage in: an error or a classification, never a panic.
        #[test]
        fn garbage_html_never_panics(html in ".{0,400}", url in "[a-z:/.?=#]{0,40}") {
            let _ = classify(&spec(), &url, &html, None);
        }

        #[test]
        fn tag_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
            Just("<input name=email>".to_string()), Just("<div hidden>".to_string()), Just("</div>".to_string()),
            Just("<ul id=stores>".to_string()), Just("<li data-id=x>".to_string()), Just("<p class=error>incorrect".to_string()),
            Just("<script>".to_string()), Just("<!--".to_string()), Just("<input class=digit maxlength=999999999999999999999>".to_string()),
            "[^<>]{0,20}",
        ], 0..40)) {
            let html = parts.concat();
            for url in ["https://portal.example.test/login", "https://portal.example.test/home", "https://portal.example.test/verify"] {
                let _ = classify(&spec(), url, &html, None);
            }
        }
    }
}
