//! Secrets are a type: they never print, and every copy we make is zeroed on drop.

use std::sync::LazyLock;

use regex::Regex;
pub use secrecy::{ExposeSecret, SecretString};

/// Credentials for one login, held only for the length of a job.
#[derive(Clone)]
pub struct Credentials {
    pub username: String,
    pub password: SecretString,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &"[REDACTED]").field("password", &"[REDACTED]").finish()
    }
}

pub const REDACTED: &str = "[REDACTED]";

static INPUT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    // The `value` attribute of any input: typed credentials can be reflected there by the page.
    Regex::new(r#"(?is)(<input\b[^>]*?\svalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)"#).expect("static regex")
});

/// Removes typed values and every known secret from a page before it is saved anywhere.
pub fn redact_html(html: &str, secrets: &[&str]) -> String {
    let without_values = INPUT_VALUE.replace_all(html, |caps: &regex::Captures| format!("{}\"{REDACTED}\"", &caps[1]));
    redact_text(&without_values, secrets)
}

/// Replaces every occurrence of each secret (at least 3 characters, so we never shred a page over a
/// one-letter value) with `[REDACTED]`.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        out = out.replace(secret, REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_and_secrets_are_removed() {
        let html = r#"<form><input name=email value="merchant@example.com"><input type=password value='Hunter2!'><p>Hunter2! again</p><input value=123456></form>"#;
        let out = redact_html(html, &["Hunter2!", "merchant@example.com", "123456"]);
        for secret in ["Hunter2!", "merchant@example.com", "123456"] {
            assert!(!out.contains(secret), "{secret} leaked: {out}");
        }
        assert!(out.contains("<p>[REDACTED] again</p>"));
    }

    #[test]
    fn credentials_never_print() {
        let creds = Credentials { username: "a@b.c".into(), password: SecretString::from("canary-pass".to_string()) };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("canary-pass") && !shown.contains("a@b.c"));
    }
}
