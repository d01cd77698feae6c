//! Every spelling a secret can take in a page, a URL, a script or a log line, so the redactor
//! finds it whichever serialiser wrote it.
//!
//! A spelling is the secret (as typed, lower-cased or upper-cased) passed through a short chain
//! of encoders, innermost first: JSON/JavaScript string escapes ([`JS`]), HTML escapes
//! ([`HTML`]) and URL encodings ([`URL`]), in the orders portals really nest them ([`CHAINS`]:
//! JSON in an attribute, an HTML fragment in a script string, JSON in a query string, ...), plus
//! base64 (`base64_spellings`). Each encoder is one real serialiser's rule set (Chromium's DOM
//! serialiser, `JSON.stringify`, PHP's `json_encode`, Go's `html/template`, ...), so a page
//! written by one serialiser is matched by one spelling, not by a mix.
//!
//! Letter case is not enumerated: the matcher compares ASCII case-insensitively, which covers a
//! lower- or upper-cased echo and both hex cases of `%2f`, `\u003C` and `&#X22;`. Only
//! non-ASCII letters get their own lower- and upper-cased forms.
//!
//! Not covered (say so before relying on it): hex, base32, hashes, encoders nested deeper than
//! [`CHAINS`] lists, one string mixing two serialisers' rules (decimal and hexadecimal
//! references side by side), and mixed-case forms of non-ASCII letters.

use std::collections::HashSet;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;

/// How one serialiser writes a character; `None` leaves it as it is.
type Escape = fn(char) -> Option<String>;

/// The control characters every JSON and JavaScript serialiser escapes.
fn control(c: char) -> Option<String> {
    Some(match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\u{8}' => "\\b".into(),
        '\u{c}' => "\\f".into(),
        c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32),
        _ => return None,
    })
}

/// `\uXXXX`, in UTF-16 units (an astral character is a surrogate pair).
fn unicode(c: char) -> String {
    let mut units = [0u16; 2];
    c.encode_utf16(&mut units)
        .iter()
        .map(|u| format!("\\u{u:04x}"))
        .collect()
}

/// `JSON.stringify`, serde_json.
fn json(c: char) -> Option<String> {
    match c {
        '"' => Some("\\\"".into()),
        '\\' => Some("\\\\".into()),
        c => control(c),
    }
}

/// Python's `json.dumps` (ASCII only by default).
fn json_ascii(c: char) -> Option<String> {
    json(c).or_else(|| (!c.is_ascii()).then(|| unicode(c)))
}

/// PHP's `json_encode` defaults: `\/` and ASCII only.
fn json_php(c: char) -> Option<String> {
    match c {
        '/' => Some("\\/".into()),
        c => json_ascii(c),
    }
}

/// Go's `encoding/json`, Rails, Next.js: safe to inline in a `<script>`.
fn json_html_safe(c: char) -> Option<String> {
    match c {
        '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => Some(unicode(c)),
        c => json(c),
    }
}

/// PHP with `JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT`.
fn json_hex_all(c: char) -> Option<String> {
    match c {
        '<' | '>' | '&' | '\'' | '"' => Some(unicode(c)),
        c => json_php(c),
    }
}

/// A single-quoted JavaScript literal written by a template.
fn js_single(c: char) -> Option<String> {
    match c {
        '\'' => Some("\\'".into()),
        '\\' => Some("\\\\".into()),
        c => control(c),
    }
}

/// Go's `html/template` in a script string.
fn js_go_template(c: char) -> Option<String> {
    match c {
        '"' | '\'' | '&' | '+' | '<' | '>' | '`' => Some(unicode(c)),
        '/' => Some("\\/".into()),
        '\\' => Some("\\\\".into()),
        c => control(c),
    }
}

/// Encoders that write `\xHH` for markup characters (Closure templates, OWASP's encoder).
fn js_hex(c: char) -> Option<String> {
    match c {
        '"' | '\'' | '&' | '<' | '>' | '/' | '=' | '`' => Some(format!("\\x{:02x}", c as u32)),
        '\\' => Some("\\\\".into()),
        c if !c.is_ascii() => Some(unicode(c)),
        c => control(c),
    }
}

/// Encoders that write every character but letters and digits as `\uXXXX`.
fn js_all_unicode(c: char) -> Option<String> {
    (!c.is_ascii_alphanumeric()).then(|| unicode(c))
}

/// Rust's `{:?}` of a string, as a log line or an error message prints it.
fn rust_debug(c: char) -> Option<String> {
    if c == '\'' {
        return None;
    }
    let escaped: String = c.escape_debug().collect();
    (escaped.len() != c.len_utf8()).then_some(escaped)
}

/// JSON and JavaScript string serialisers (and Rust's `Debug`, which escapes much the same).
const JS: &[Escape] = &[
    json,
    json_ascii,
    json_php,
    json_html_safe,
    json_hex_all,
    js_single,
    js_go_template,
    js_hex,
    js_all_unicode,
    rust_debug,
];

/// Chromium's serialisation of a text node: `"` stays as it is.
fn dom_text(c: char) -> Option<String> {
    Some(
        match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '\u{a0}' => "&nbsp;",
            _ => return None,
        }
        .into(),
    )
}

/// An attribute value as the HTML standard serialised it until 2025 (and older browsers
/// still do): `<` and `>` stay as they are.
fn dom_attribute(c: char) -> Option<String> {
    Some(
        match c {
            '&' => "&amp;",
            '"' => "&quot;",
            '\u{a0}' => "&nbsp;",
            _ => return None,
        }
        .into(),
    )
}

/// An attribute value as Chromium serialises it now (156 here; the standard since 2025): `<`
/// and `>` escaped too, `'` not.
fn dom_attribute_escaped(c: char) -> Option<String> {
    match c {
        '<' => Some("&lt;".into()),
        '>' => Some("&gt;".into()),
        c => dom_attribute(c),
    }
}

/// `& < > "` by name, and `'` as `apostrophe`.
fn named_with(c: char, apostrophe: &str) -> Option<String> {
    Some(
        match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => apostrophe,
            _ => return None,
        }
        .into(),
    )
}

/// Rails, lodash, Jinja2.
fn html_named(c: char) -> Option<String> {
    named_with(c, "&#39;")
}

/// Python's `html.escape`.
fn html_python(c: char) -> Option<String> {
    named_with(c, "&#x27;")
}

/// PHP's `htmlspecialchars` with `ENT_QUOTES`.
fn html_php(c: char) -> Option<String> {
    named_with(c, "&#039;")
}

/// XML serialisers.
fn html_xml(c: char) -> Option<String> {
    named_with(c, "&apos;")
}

/// Go's `html.EscapeString` and `html/template` (which also writes `+` as `&#43;`).
fn html_go(c: char) -> Option<String> {
    match c {
        '"' => Some("&#34;".into()),
        '\'' => Some("&#39;".into()),
        '+' => Some("&#43;".into()),
        c => named_with(c, "&#39;"),
    }
}

/// Whether an ASCII-only serialiser writes `c` as a character reference.
fn markup_special(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '+' | '=' | '`' | '\u{a0}') || !c.is_ascii()
}

/// Numeric character references, decimal (`&#34;`).
fn html_decimal(c: char) -> Option<String> {
    markup_special(c).then(|| format!("&#{};", c as u32))
}

/// Numeric character references, hexadecimal (`&#x22;`).
fn html_hex(c: char) -> Option<String> {
    markup_special(c).then(|| format!("&#x{:x};", c as u32))
}

/// HTML serialisers.
const HTML: &[Escape] = &[
    dom_text,
    dom_attribute,
    dom_attribute_escaped,
    html_named,
    html_python,
    html_php,
    html_xml,
    html_go,
    html_decimal,
    html_hex,
];

/// What a browser writes: what a saved page holds when a page escaped a value twice.
const DOM: &[Escape] = &[dom_text, dom_attribute, dom_attribute_escaped];

/// Percent-encodes every UTF-8 byte of `c` unless `keep(c)`; a space becomes `space`.
fn percent(c: char, keep: fn(char) -> bool, space: &str) -> Option<String> {
    if keep(c) {
        return None;
    }
    if c == ' ' {
        return Some(space.into());
    }
    let mut bytes = [0u8; 4];
    Some(
        c.encode_utf8(&mut bytes)
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect(),
    )
}

/// `encodeURIComponent`.
fn url_component(c: char) -> Option<String> {
    percent(
        c,
        |c| c.is_ascii_alphanumeric() || "-_.!~*'()".contains(c),
        "%20",
    )
}

/// RFC 3986 unreserved characters only.
fn url_strict(c: char) -> Option<String> {
    percent(
        c,
        |c| c.is_ascii_alphanumeric() || "-_.~".contains(c),
        "%20",
    )
}

/// `application/x-www-form-urlencoded` (a form post, `URLSearchParams`).
fn url_form(c: char) -> Option<String> {
    percent(c, |c| c.is_ascii_alphanumeric() || "*-._".contains(c), "+")
}

/// `encodeURI`: a whole URL, its delimiters kept.
fn url_uri(c: char) -> Option<String> {
    percent(
        c,
        |c| c.is_ascii_alphanumeric() || "-_.!~*'();,/?:@&=+$#".contains(c),
        "%20",
    )
}

/// URL encoders.
const URL: &[Escape] = &[url_component, url_strict, url_form, url_uri];

/// Encoder chains, innermost first, as portals nest them.
const CHAINS: &[&[&[Escape]]] = &[
    &[JS],            // a JSON body, a script string
    &[HTML],          // page text, an attribute
    &[URL],           // a link, a form body
    &[JS, HTML],      // JSON in a data attribute or shown as text
    &[HTML, JS],      // an HTML fragment inside a script string
    &[HTML, DOM],     // a page that escaped twice
    &[JS, URL],       // JSON in a query string
    &[URL, JS],       // a URL inside JSON (`https:\/\/...` from PHP)
    &[URL, HTML],     // a link in an attribute
    &[HTML, URL],     // an escaped value put in a URL
    &[JS, URL, HTML], // JSON in a query string in an href
];

fn escape(text: &str, escape: Escape) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        match escape(c) {
            Some(escaped) => out.push_str(&escaped),
            None => out.push(c),
        }
    }
    out
}

/// Base64 of `bytes` in both alphabets, whole (padded and unpadded) and as it appears inside a
/// longer base64 string.
///
/// Inside a longer string the secret starts at byte offset 0, 1 or 2 modulo 3, and each offset
/// gives different characters. For each offset we encode the secret behind that many filler
/// bytes and keep only the characters all six of whose bits come from the secret: those do not
/// depend on the bytes around it. Up to two characters at each end (at most 10 bits of the
/// secret) stay beside `[REDACTED]`. Below 6 bytes the stable middle is too short to match
/// without redacting random base64, so a short secret is matched only whole.
fn base64_spellings(bytes: &[u8]) -> Vec<String> {
    let mut out = vec![
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    if bytes.len() >= 6 {
        for offset in 0..3usize {
            let mut shifted = vec![0u8; offset];
            shifted.extend_from_slice(bytes);
            let encoded = STANDARD_NO_PAD.encode(&shifted);
            // Character j holds bits 6j..6j+6; the secret's bits are 8*offset..8*(offset+len).
            let first = (8 * offset).div_ceil(6);
            let end = (8 * (offset + bytes.len())) / 6;
            let stable = &encoded[first..end];
            out.push(stable.to_string());
            out.push(stable.replace('+', "-").replace('/', "_"));
        }
    }
    out
}

/// Adds `item` unless an ASCII-case-insensitive equal is there already.
fn insert(out: &mut Vec<String>, seen: &mut HashSet<String>, item: String) {
    if seen.insert(item.to_ascii_lowercase()) {
        out.push(item);
    }
}

/// Every spelling of `secret` (itself included), without ASCII-case duplicates.
pub fn spellings(secret: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    // Case forms: the matcher ignores ASCII case, so these differ only for non-ASCII letters.
    let mut cases = Vec::new();
    for form in [
        secret.to_string(),
        secret.to_lowercase(),
        secret.to_uppercase(),
    ] {
        insert(&mut cases, &mut seen, form);
    }
    out.extend(cases.iter().cloned());
    for chain in CHAINS {
        let mut current = cases.clone();
        for layer in *chain {
            current = current
                .iter()
                .flat_map(|text| layer.iter().map(|e| escape(text, *e)))
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
        }
        for item in current {
            insert(&mut out, &mut seen, item);
        }
    }
    // Base64 is case-sensitive: encode each case form exactly, and each as `JSON.stringify`
    // writes it (a JWT payload, a state blob); then as a URL or a JSON string carries it.
    let mut sources: Vec<String> = Vec::new();
    for form in [
        secret.to_string(),
        secret.to_lowercase(),
        secret.to_uppercase(),
    ] {
        for source in [escape(&form, json), form] {
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
    }
    for source in sources {
        for encoded in base64_spellings(source.as_bytes()) {
            for item in URL
                .iter()
                .chain(JS)
                .map(|e| escape(&encoded, *e))
                .collect::<Vec<_>>()
            {
                insert(&mut out, &mut seen, item);
            }
            insert(&mut out, &mut seen, encoded);
        }
    }
    out
}
