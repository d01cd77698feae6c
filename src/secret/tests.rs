//! Each spelling written out by hand (not by the generator), the combinations, and a property
//! test with encoders written here independently of `spellings.rs`.

use super::*;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use proptest::prelude::*;

/// A password with every character serialisers disagree on.
const PASSWORD: &str = "Pa\"ss<w>&rd'\\/é";

/// Redacts `spelling` inside a sentence and says what is left of it, if anything.
fn survives(secrets: &[&str], spelling: &str) -> Option<String> {
    let text = format!("before {spelling} after");
    let out = redact_text(&text, secrets);
    (out != "before [REDACTED] after").then_some(out)
}

fn assert_all_redacted(secrets: &[&str], spellings: &[&str]) {
    for spelling in spellings {
        if let Some(out) = survives(secrets, spelling) {
            panic!("`{spelling}` survived: {out}");
        }
    }
}

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

#[test]
fn any_letter_case() {
    assert_all_redacted(
        &["Merchant@Example.com"],
        &[
            "merchant@example.com",
            "MERCHANT@EXAMPLE.COM",
            "mErChAnT@eXaMpLe.CoM",
        ],
    );
    // Non-ASCII letters change case too, beyond what an ASCII comparison covers.
    assert_all_redacted(&["Jérôme-Pass"], &["jérôme-pass", "JÉRÔME-PASS"]);
}

#[test]
fn base64_whole_and_inside_longer_strings() {
    assert_all_redacted(
        &["Hunter2!"],
        &["SHVudGVyMiE=", "SHVudGVyMiE", "shvudgvymie="],
    );
    assert_all_redacted(
        &["Jérôme-Pass"],
        &["SsOpcsO0bWUtUGFzcw==", "SsOJUsOUTUUtUEFTUw=="],
    );
    // `user:password` as a Basic auth header encodes it, at each of the three byte offsets.
    for (encoded, stable) in [
        (
            "bWVyY2hhbnRAZXhhbXBsZS5jb206SHVudGVyMiFIdW50ZXIy",
            "SHVudGVyMiFIdW50ZXIy",
        ),
        (
            "bWVyY2hhbnRAZXhhbXBsZS5jbzpIdW50ZXIyIUh1bnRlcjI=",
            "IdW50ZXIyIUh1bnRlcj",
        ),
        (
            "bWVyY2hhbnRAZXhhbXBsZS5jOkh1bnRlcjIhSHVudGVyMg==",
            "h1bnRlcjIhSHVudGVyM",
        ),
    ] {
        assert!(encoded.contains(stable));
        let out = redact_text(encoded, &["Hunter2!Hunter2"]);
        assert!(
            !out.contains(stable) && out.contains(REDACTED),
            "{encoded} -> {out}"
        );
    }
    // A JWT-like payload: the username JSON-quoted, then base64url without padding.
    let jwt = "eyJzdWIiOiJtZXJjaGFudEBleGFtcGxlLmNvbSIsImlhdCI6MX0";
    let out = redact_text(jwt, &["merchant@example.com"]);
    assert!(!out.contains("ZXJjaGFudEBleGFtcGxlLmNvb"), "{out}");
}

#[test]
fn json_and_javascript_string_escapes() {
    assert_all_redacted(
        &[PASSWORD],
        &[
            r#"Pa\"ss<w>&rd'\\/é"#,                               // JSON.stringify
            r#"Pa\"ss<w>&rd'\\/\u00e9"#,                          // Python json.dumps
            r#"Pa\"ss<w>&rd'\\\/\u00E9"#,                         // PHP json_encode
            r#"Pa\"ss\u003cw\u003e\u0026rd'\\/é"#,                // Go, Rails, Next.js
            r#"Pa\u0022ss\u003Cw\u003E\u0026rd\u0027\\\/\u00e9"#, // PHP with JSON_HEX_*
            r#"Pa"ss<w>&rd\'\\/é"#,                               // single-quoted JS
            r#"Pa\u0022ss\u003cw\u003e\u0026rd\u0027\\\/é"#,      // Go html/template
            r#"Pa\x22ss\x3cw\x3e\x26rd\x27\\\x2f\u00e9"#,         // \x escapes
        ],
    );
    assert_all_redacted(&["line\none"], &[r"line\none"]);
    // Astral characters become surrogate pairs.
    assert_all_redacted(&["pass😀word"], &[r"pass\ud83d\ude00word"]);
}

#[test]
fn html_text_attribute_and_character_references() {
    assert_all_redacted(
        &[PASSWORD],
        &[
            r#"Pa"ss&lt;w&gt;&amp;rd'\/é"#,                // Chromium: text node
            r#"Pa&quot;ss<w>&amp;rd'\/é"#,                 // attribute value before 2025
            r#"Pa&quot;ss&lt;w&gt;&amp;rd'\/é"#,           // Chromium 156: attribute value
            r#"Pa&quot;ss&lt;w&gt;&amp;rd&#39;\/é"#,       // Rails, lodash
            r#"Pa&quot;ss&lt;w&gt;&amp;rd&#x27;\/é"#,      // Python html.escape
            r#"Pa&quot;ss&lt;w&gt;&amp;rd&#039;\/é"#,      // PHP htmlspecialchars
            r#"Pa&#34;ss&lt;w&gt;&amp;rd&#39;\/é"#,        // Go
            r#"Pa&#34;ss&#60;w&#62;&#38;rd&#39;\/&#233;"#, // decimal references
            r#"Pa&#x22;ss&#x3C;w&#x3e;&#x26;rd&#x27;\/&#xe9;"#, // hexadecimal references
        ],
    );
    assert_all_redacted(&["no\u{a0}break"], &["no&nbsp;break"]);
}

#[test]
fn url_encodings_in_either_hex_case() {
    assert_all_redacted(
        &[PASSWORD, "Canary User+1@Sandbox.test"],
        &[
            "Pa%22ss%3Cw%3E%26rd'%5C%2F%C3%A9",   // encodeURIComponent
            "pa%22ss%3cw%3e%26rd'%5c%2f%c3%a9",   // lower hex, lower case
            "Pa%22ss%3Cw%3E%26rd%27%5C%2F%C3%A9", // RFC 3986 unreserved only
            "Pa%22ss%3Cw%3E&rd'%5C/%C3%A9",       // encodeURI
            "Canary+User%2B1%40Sandbox.test",     // a form post
            "Canary%20User%2B1%40Sandbox.test",
            "Canary%20User+1@Sandbox.test", // encodeURI
        ],
    );
}

#[test]
fn combinations() {
    assert_all_redacted(
        &[PASSWORD],
        &[
            // JSON in a query string.
            "Pa%5C%22ss%3Cw%3E%26rd'%5C%5C%2F%C3%A9",
            // JSON in an attribute (Chromium writes `&quot;`).
            r#"Pa\&quot;ss<w>&amp;rd'\\/é"#,
            // JSON shown as page text.
            r#"Pa\"ss&lt;w&gt;&amp;rd'\\/é"#,
            // An escaped HTML fragment inside a script string.
            r#"Pa&quot;ss&lt;w&gt;&amp;rd&#39;\\/é"#,
            // A page that escaped twice.
            r#"Pa&amp;quot;ss&amp;lt;w&amp;gt;&amp;amp;rd&amp;#39;\/é"#,
        ],
    );
    assert_all_redacted(
        &["https://x.test/a b"],
        &[r"https:\/\/x.test\/a%20b", "https%3A%2F%2Fx.test%2Fa%20b"],
    );
}

#[test]
fn short_secrets_and_other_text_are_left_alone() {
    assert_eq!(redact_text("ab abc AB", &["ab"]), "ab abc AB");
    let page = "<p>Log in with your password</p><img src=\"data:image/png;base64,iVBORw0KGgo=\">";
    assert_eq!(
        redact_text(page, &["Hunter2!Hunter2", "merchant@example.com"]),
        page
    );
    assert_eq!(
        redact_text("MERCHANT@EXAMPLE.COM", &["merchant@example.com"]),
        REDACTED
    );
}

#[test]
fn longest_spelling_wins() {
    // The padded form is taken whole, `=` included.
    assert_eq!(
        redact_text("x SHVudGVyMiE= y", &["Hunter2!"]),
        "x [REDACTED] y"
    );
    // The password holds the username: one replacement, not two halves.
    assert_eq!(
        redact_text("merchant-secret-9", &["merchant", "merchant-secret-9"]),
        REDACTED
    );
}

// ---------------------------------------------------------------------------------- property

fn json_std(s: &str) -> String {
    let quoted = serde_json::to_string(s).expect("a string serialises");
    quoted[1..quoted.len() - 1].to_string()
}

fn json_ascii(s: &str) -> String {
    json_std(s)
        .chars()
        .flat_map(|c| {
            if c.is_ascii() {
                vec![c.to_string()]
            } else {
                let mut units = [0u16; 2];
                c.encode_utf16(&mut units)
                    .iter()
                    .map(|u| format!("\\u{u:04X}"))
                    .collect()
            }
        })
        .collect()
}

fn percent_except(s: &str, keep: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || keep.as_bytes().contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

fn text_node(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

fn attribute(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\u{a0}', "&nbsp;")
}

fn references(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' | '<' | '>' | '"' | '\'' | '+' | '=' | '`' => format!("&#x{:X};", c as u32),
            c if !c.is_ascii() => format!("&#x{:X};", c as u32),
            c => c.to_string(),
        })
        .collect()
}

/// Independent encoders, each as a page, a script or a URL would hold the secret.
fn encoded_forms(secret: &str) -> Vec<(&'static str, String)> {
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![
        ("raw", secret.to_string()),
        ("lower", secret.to_lowercase()),
        ("upper", secret.to_uppercase()),
        ("json", json_std(secret)),
        ("json ascii", json_ascii(secret)),
        (
            "json html-safe",
            json_std(secret)
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026"),
        ),
        ("json php", json_ascii(secret).replace('/', "\\/")),
        ("dom text", text_node(secret)),
        ("dom attribute", attribute(secret)),
        ("references", references(secret)),
        ("percent", percent_except(secret, "-_.!~*'()")),
        ("form", form),
        ("base64", STANDARD.encode(secret)),
        ("base64 no pad", STANDARD_NO_PAD.encode(secret)),
        ("base64url", URL_SAFE.encode(secret)),
        ("base64url no pad", URL_SAFE_NO_PAD.encode(secret)),
        ("base64 upper", STANDARD.encode(secret.to_uppercase())),
        (
            "percent json",
            percent_except(&json_std(secret), "-_.!~*'()"),
        ),
        ("attribute json", attribute(&json_std(secret))),
        ("text json", text_node(&json_std(secret))),
        ("json of references", json_std(&references(secret))),
    ]
}

fn secret_chars() -> impl Strategy<Value = String> {
    let chars = prop_oneof![
        4 => proptest::char::range('a', 'z'),
        2 => proptest::char::range('A', 'Z'),
        1 => proptest::char::range('0', '9'),
        3 => proptest::sample::select(vec!['"', '<', '>', '&', '\'', '\\', '/', ' ', '+', '=', '%', '@']),
        1 => proptest::sample::select(vec!['é', 'Ü', 'ß', '中', '😀', '\u{a0}']),
    ];
    proptest::collection::vec(chars, 3..14).prop_map(|v| v.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// No independently encoded form of a random secret survives redaction.
    #[test]
    fn no_encoded_form_survives(secret in secret_chars()) {
        let redactor = Redactor::new(&[&secret]);
        for (name, encoded) in encoded_forms(&secret) {
            let out = redactor
                .redact(&format!("<p>x{encoded}y</p>"))
                .replace(REDACTED, "\u{1}");
            prop_assert!(!out.contains(&encoded), "{name} of {secret:?} survived: {out}");
        }
    }

    /// Base64 of a secret inside a longer base64 string, at any offset: the characters that
    /// come only from the secret never survive.
    #[test]
    fn no_base64_middle_survives(
        secret in secret_chars(),
        before in proptest::collection::vec(any::<u8>(), 0..8),
        after in proptest::collection::vec(any::<u8>(), 0..8),
        url_safe in any::<bool>(),
    ) {
        prop_assume!(secret.len() >= 6);
        let mut bytes = before.clone();
        bytes.extend_from_slice(secret.as_bytes());
        bytes.extend_from_slice(&after);
        let encoded = if url_safe { URL_SAFE.encode(&bytes) } else { STANDARD.encode(&bytes) };
        let first = (8 * before.len()).div_ceil(6);
        let end = 8 * (before.len() + secret.len()) / 6;
        let middle = &encoded[first..end];
        let out = redact_text(&encoded, &[&secret]).replace(REDACTED, "\u{1}");
        prop_assert!(!out.contains(middle), "{secret:?} at {}: {encoded} -> {out}", before.len());
    }
}
