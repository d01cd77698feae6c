//! Secrets are a type: they never print, and every copy we make is zeroed on drop. Before a page,
//! a URL or a message is kept anywhere, every spelling of every secret in it is replaced
//! ([`Redactor`]); the logs never carry the crates that would print page content ([`logs`]).

pub mod logs;
mod spellings;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;
pub use secrecy::{ExposeSecret, SecretString};
pub use spellings::spellings;

/// Credentials for one login, held only for the length of a job.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &"[REDACTED]")
            .field("password", &"[REDACTED]")
            .finish()
    }
}

pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this (in characters) are left alone, so a one-letter value never
/// shreds a page.
pub const MIN_SECRET_CHARS: usize = 3;

static INPUT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    // The `value` attribute of any input: typed credentials can be reflected there by the page.
    Regex::new(r#"(?is)(<input\b[^>]*?\svalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)"#)
        .expect("static regex")
});

/// Finds every spelling ([`spellings`]) of a set of secrets in one pass: leftmost-longest,
/// ASCII case-insensitive. Build one per set of secrets and reuse it for every text.
pub struct Redactor {
    /// Longest first, so an alternation tried in order (the page-side scrub) also takes the
    /// longest match.
    spellings: Vec<String>,
    matcher: Option<AhoCorasick>,
}

impl Redactor {
    pub fn new(secrets: &[&str]) -> Redactor {
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        for secret in secrets
            .iter()
            .filter(|s| s.chars().count() >= MIN_SECRET_CHARS)
        {
            for spelling in spellings(secret) {
                if seen.insert(spelling.to_ascii_lowercase()) {
                    all.push(spelling);
                }
            }
        }
        all.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let matcher = (!all.is_empty()).then(|| {
            AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&all)
                // Only fails past the automaton's size limits, far above a few thousand
                // patterns of a few hundred bytes.
                .expect("spellings fit an automaton")
        });
        Redactor {
            spellings: all,
            matcher,
        }
    }

    /// Every spelling searched for, longest first.
    pub fn spellings(&self) -> &[String] {
        &self.spellings
    }

    /// `text` with every spelling replaced by `[REDACTED]`.
    pub fn redact(&self, text: &str) -> String {
        let Some(matcher) = &self.matcher else {
            return text.to_string();
        };
        let mut out = String::with_capacity(text.len());
        matcher.replace_all_with(text, &mut out, |_, _, out| {
            out.push_str(REDACTED);
            true
        });
        out
    }

    /// The first spelling found in `text` as written there, if any (for checks and tests).
    pub fn find<'t>(&self, text: &'t str) -> Option<&'t str> {
        let found = self.matcher.as_ref()?.find(text)?;
        Some(&text[found.range()])
    }

    /// How many spellings occur in `text`.
    /// [`Redactor::redact`] after clearing the `value` of every input (typed values can be
    /// reflected there by the page).
    pub fn redact_html(&self, html: &str) -> String {
        let without_values = INPUT_VALUE.replace_all(html, |caps: &regex::Captures| {
            format!("{}\"{REDACTED}\"", &caps[1])
        });
        self.redact(&without_values)
    }

    pub fn count(&self, text: &str) -> usize {
        self.matcher
            .as_ref()
            .map_or(0, |m| m.find_iter(text).count())
    }
}

/// Removes typed values and every known secret from a page before it is saved anywhere.
pub fn redact_html(html: &str, secrets: &[&str]) -> String {
    Redactor::new(secrets).redact_html(html)
}

/// Replaces every occurrence of each secret, in each of its spellings, with `[REDACTED]`.
/// Secrets under [`MIN_SECRET_CHARS`] characters are left alone.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    Redactor::new(secrets).redact(text)
}
