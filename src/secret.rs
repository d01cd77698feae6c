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
        f.debug_struct("Credentials")
            .field("username", &"[REDACTED]")
            .field("password", &"[REDACTED]")
            .finish()
    }
}

pub const REDACTED: &str = "[REDACTED]";

static INPUT_VALUE: LazyLock<Regex> = LazyLock::new(|| {
    // The `value` attribute of any input: typed credentials can be reflected there by the page.
    Regex::new(r#"(?is)(<input\b[^>]*?\svalue\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)"#)
        .expect("static regex")
});

/// Removes typed values and every known secret from a page before it is saved anywhere.
pub fn redact_html(html: &str, secrets: &[&str]) -> String {
    let without_values = INPUT_VALUE.replace_all(html, |caps: &regex::Captures| {
        format!("{}\"{REDACTED}\"", &caps[1])
    });
    redact_text(&without_values, secrets)
}

/// The forms a secret takes on a page or in a URL: as typed, form-encoded, percent-encoded and
/// HTML-escaped.
fn spellings(secret: &str) -> Vec<String> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let html = secret
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    let mut all = vec![secret.to_string(), form, percent, html];
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    all.dedup();
    all
}

/// Replaces every occurrence of each secret, in each of its spellings, with `[REDACTED]`. Secrets
/// under 3 characters are left alone so a one-letter value never shreds a page.
pub fn redact_text(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for secret in secrets.iter().filter(|s| s.len() >= 3) {
        for spelling in spellings(secret) {
            out = out.replace(&spelling, REDACTED);
        }
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
    fn encoded_spellings_are_removed_too() {
        let text = "email=merchant%40example.com&password=a+b%26c <b>a b&amp;c</b>";
        let out = redact_text(text, &["merchant@example.com", "a b&c"]);
        assert!(!out.contains("merchant"), "{out}");
        assert!(!out.contains("a+b") && !out.contains("a b&amp;c"), "{out}");
    }

    #[test]
    fn credentials_never_print() {
        let creds = Credentials {
            username: "a@b.c".into(),
            password: SecretString::from("canary-pass".to_string()),
        };
        let shown = format!("{creds:?}");
        assert!(!shown.contains("canary-pass") && !shown.contains("a@b.c"));
    }
}
