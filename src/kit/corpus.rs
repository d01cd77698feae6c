//! The held-out corpus (`corpus/<provider>/`): pages the specs and the lexicon were not written
//! against, each with the outcome it means, plus variants generated from the recorded pages (the
//! message moved to a toast or a field hint, the page wrapped in another layout, noise added).
//! Judged three ways: exact, unrecognised (safe: the adapter developer gets the artifact), or
//! wrong (harm: a verdict the page does not mean). A developer-kit module: the product never
//! reads it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::classify::{classify_snapshot, Snapshot};
use crate::kit::fixtures::Fixture;
use crate::outcome::{self, Outcome};
use crate::provider::{FileTree, ProviderSpec};

/// What a corpus page means (`<case>.toml`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meaning {
    pub url: String,
    /// The outcome; absent for an ordinary page the engine should act on.
    #[serde(
        default,
        with = "outcome::compact::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub outcome: Option<Outcome>,
    pub language: String,
    #[serde(default = "ok_status")]
    pub status: u16,
    #[serde(default)]
    pub note: Option<String>,
    /// Where the wording comes from (a public page) or `[P]`.
    #[serde(default)]
    pub source: Option<String>,
}

fn ok_status() -> u16 {
    200
}

#[derive(Debug, Clone)]
pub struct Page {
    pub provider: String,
    pub case: String,
    pub html: String,
    pub meaning: Meaning,
    /// Made by the variant generator from a recorded page (not hand-written).
    pub generated: bool,
}

/// How a page was classified, against what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Verdict {
    Exact,
    /// Stopped as `unrecognized_page` (or no rule): safe, not exact.
    Unrecognized,
    /// A verdict the page does not mean.
    Wrong {
        got: String,
    },
}

/// Loads the hand-written pages of a provider.
pub fn load(files: &FileTree, provider: &str) -> Result<Vec<Page>, String> {
    let mut out = Vec::new();
    for name in files.list(provider) {
        let Some(case) = name.strip_suffix(".html") else {
            continue;
        };
        let html = files
            .read(&format!("{provider}/{name}"))
            .ok_or_else(|| format!("{}: unreadable", files.display(&name)))?;
        let meta = format!("{provider}/{case}.toml");
        let text = files
            .read(&meta)
            .ok_or_else(|| format!("{}: missing", files.display(&meta)))?;
        let meaning: Meaning =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", files.display(&meta)))?;
        out.push(Page {
            provider: provider.to_string(),
            case: case.to_string(),
            html,
            meaning,
            generated: false,
        });
    }
    Ok(out)
}

/// Classifies a page and judges the result.
pub fn judge(spec: &ProviderSpec, page: &Page) -> Verdict {
    let snapshot =
        Snapshot::parse(&page.meaning.url, &page.html).with_status(Some(page.meaning.status));
    let got = classify_snapshot(spec, &snapshot, &crate::provider::PortalHosts::real())
        .ok()
        .map_or(Some(Outcome::UnrecognizedPage), |c| c.outcome);
    let want = page.meaning.outcome;
    if got == want {
        Verdict::Exact
    } else if got == Some(Outcome::UnrecognizedPage) {
        Verdict::Unrecognized
    } else {
        Verdict::Wrong {
            got: got.map_or("none (an ordinary step)".to_string(), |o| o.to_string()),
        }
    }
}

/// Figures for one group of pages.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub pages: usize,
    pub exact: usize,
    pub unrecognized: usize,
    pub wrong: usize,
}

impl Score {
    pub fn add(&mut self, verdict: &Verdict) {
        self.pages += 1;
        match verdict {
            Verdict::Exact => self.exact += 1,
            Verdict::Unrecognized => self.unrecognized += 1,
            Verdict::Wrong { .. } => self.wrong += 1,
        }
    }

    pub fn exact_pct(&self) -> f64 {
        percent(self.exact, self.pages)
    }

    pub fn unrecognized_pct(&self) -> f64 {
        percent(self.unrecognized, self.pages)
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// One provider's figures: hand-written pages in its claimed languages, in other languages, and
/// generated variants.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Hand-written pages measured once, never tuned on (`blind_*`), all languages.
    pub blind: Score,
    pub claimed: Score,
    pub other: Score,
    pub generated: Score,
    /// Every page not judged exact, with its verdict.
    pub misses: Vec<(String, Verdict)>,
    pub by_language: BTreeMap<String, Score>,
}

pub fn report(spec: &ProviderSpec, pages: &[Page]) -> Report {
    let mut report = Report::default();
    for page in pages {
        let verdict = judge(spec, page);
        let primary = page
            .meaning
            .language
            .split(['-', '_'])
            .next()
            .unwrap_or_default();
        let group = if page.generated {
            &mut report.generated
        } else if page.case.starts_with("blind_") {
            &mut report.blind
        } else if spec.languages.iter().any(|l| l == primary) {
            &mut report.claimed
        } else {
            &mut report.other
        };
        group.add(&verdict);
        if !page.generated {
            report
                .by_language
                .entry(primary.to_string())
                .or_default()
                .add(&verdict);
        }
        if verdict != Verdict::Exact {
            report.misses.push((page.case.clone(), verdict));
        }
    }
    report
}

// ---------------------------------------------------------------- the variant generator

/// Variants of the recorded pages, each meaning what its page means: the portal's message moved
/// to a toast, moved to a field hint, the page inside another layout, and noise around it.
pub fn variants(spec: &ProviderSpec, fixtures: &[Fixture]) -> Vec<Page> {
    let mut out = Vec::new();
    for fixture in fixtures {
        let meaning = |note: &str| Meaning {
            url: fixture.expected.url.clone(),
            outcome: fixture.expected.outcome,
            language: fixture.expected.language.clone(),
            status: fixture.expected.status,
            note: Some(format!("generated from {}: {note}", fixture.case)),
            source: Some(format!(
                "fixtures/{}/{}.html",
                fixture.provider, fixture.case
            )),
        };
        let mut push = |kind: &str, html: String, note: &str| {
            out.push(Page {
                provider: fixture.provider.clone(),
                case: format!("{}~{kind}", fixture.case),
                html,
                meaning: meaning(note),
                generated: true,
            })
        };
        push(
            "layout",
            wrap_layout(&fixture.html),
            "the page inside another layout shell",
        );
        push(
            "noise",
            add_noise(&fixture.html),
            "a consent banner, comments, scripts, a promo strip",
        );
        // Moving the message only makes sense where it is one text node we can find.
        let Some(message) = movable_message(spec, fixture) else {
            continue;
        };
        let without = fixture.html.replacen(&message, "", 1);
        push(
            "toast",
            insert_before_body_end(
                &without,
                &format!(
                    r#"<div class="toast-container"><div class="toast" role="status" aria-live="polite"><span>{message}</span></div></div>"#
                ),
            ),
            "the message in a toast instead of its box",
        );
        if let Some(hinted) = field_hint(&without, &message) {
            push(
                "hint",
                hinted,
                "the message as the hint of an invalid field",
            );
        }
    }
    out
}

/// The portal's message as it stands in the HTML, when the page ends on it.
fn movable_message(spec: &ProviderSpec, fixture: &Fixture) -> Option<String> {
    let outcome = fixture.expected.outcome?;
    if matches!(outcome, Outcome::Paired | Outcome::UnrecognizedPage) {
        return None;
    }
    let found = crate::engine::classify::classify(
        spec,
        &fixture.expected.url,
        &fixture.html,
        &crate::provider::PortalHosts::real(),
    )
    .ok()?;
    let message = found.raw_message?;
    // Only a message that is its own text node (no markup inside), so removing it removes it.
    (message.len() > 8 && fixture.html.matches(message.as_str()).count() == 1).then_some(message)
}

fn insert_before_body_end(html: &str, fragment: &str) -> String {
    match html.rfind("</body>") {
        Some(at) => format!("{}{fragment}\n{}", &html[..at], &html[at..]),
        None => format!("{html}{fragment}"),
    }
}

/// The message as the hint of the first visible input, which points at it. The input's own
/// `aria-*` error links are replaced (a browser keeps the first of two equal attributes, so adding a
/// second would point at the portal's old hint, not this one).
fn field_hint(html: &str, message: &str) -> Option<String> {
    let links = regex::Regex::new(
        r#"\s(?i:aria-invalid|aria-describedby|aria-errormessage)\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)"#,
    )
    .expect("static regex");
    let mut from = 0;
    let (at, end) = loop {
        let at = from + html[from..].find("<input")?;
        let end = at + html[at..].find('>')?;
        let tag = &html[at..end];
        if !(tag.contains("type=\"hidden\"") || tag.contains("type=hidden")) {
            break (at, end);
        }
        from = end;
    };
    let tag = links.replace_all(&html[at..end], "");
    let (tag, closing) = match tag.strip_suffix('/') {
        Some(open) => (open.trim_end().to_string(), " /"),
        None => (tag.to_string(), ""),
    };
    Some(format!(
        "{}{tag} aria-invalid=\"true\" aria-describedby=\"generated-hint\"{closing}>\n<p id=\"generated-hint\" class=\"field-hint\">{message}</p>{}",
        &html[..at],
        &html[end + 1..]
    ))
}

fn wrap_layout(html: &str) -> String {
    let Some(open) = html.find("<body") else {
        return html.to_string();
    };
    let Some(open_end) = html[open..].find('>').map(|i| open + i + 1) else {
        return html.to_string();
    };
    let Some(close) = html.rfind("</body>") else {
        return html.to_string();
    };
    format!(
        "{}<div id=\"app-root\" class=\"app-shell\"><div class=\"layout layout--centered\"><section class=\"content\">{}</section></div></div>{}",
        &html[..open_end],
        &html[open_end..close],
        &html[close..]
    )
}

fn add_noise(html: &str) -> String {
    let banner = r#"<!-- consent manager v3 --><div id="consent-manager" class="consent-banner" role="dialog" aria-label="Cookie consent"><p>We use cookies to improve your experience. By clicking Accept you agree to our Terms and Privacy Policy.</p><button>Accept</button><button>Reject</button></div><script>window.dataLayer=window.dataLayer||[];dataLayer.push({event:"page_view"});</script><div class="promo-strip" data-generated="noise">Download the app to manage your store on the go.</div>"#;
    insert_before_body_end(html, banner)
}

#[cfg(test)]
mod tests {
    use super::field_hint;

    #[test]
    fn a_field_hint_replaces_the_inputs_own_error_links() {
        let html = r#"<form><input type="hidden" name="csrf"><input name="code" aria-invalid="false" aria-describedby="old-hint"/><p id="old-hint"></p></form>"#;
        let marked = field_hint(html, "That code is wrong").unwrap();
        assert!(
            marked.contains(
                r#"<input name="code" aria-invalid="true" aria-describedby="generated-hint" />"#
            ),
            "{marked}"
        );
        assert_eq!(marked.matches("aria-describedby").count(), 1, "{marked}");
        assert!(marked.contains(r#"<input type="hidden" name="csrf">"#));
    }
}
