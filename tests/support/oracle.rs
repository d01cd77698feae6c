//! An oracle for leaks, written independently of the product's spelling generator: undo every
//! encoding we know of, in any order, and look for the secret itself.

use std::collections::HashSet;
use std::sync::LazyLock;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;

static ENTITY: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z]+);").unwrap());
static BASE64_RUN: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"[A-Za-z0-9+/_-]{8,}").unwrap());

fn html_unescape(text: &str) -> String {
    ENTITY
        .replace_all(text, |c: &regex::Captures| {
            let name = &c[1];
            let code = if let Some(hex) = name.strip_prefix("#x").or(name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse().ok()
            } else {
                match name {
                    "amp" => Some(38),
                    "lt" => Some(60),
                    "gt" => Some(62),
                    "quot" => Some(34),
                    "apos" => Some(39),
                    "nbsp" => Some(160),
                    _ => None,
                }
            };
            code.and_then(char::from_u32)
                .map_or_else(|| c[0].to_string(), String::from)
        })
        .to_string()
}

fn percent_decode(text: &str, plus_is_space: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) if plus_is_space => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

fn js_unescape(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut units: Vec<u16> = Vec::with_capacity(chars.len());
    let hex = |from: usize, n: usize| -> Option<u16> {
        let s: String = chars.get(from..from + n)?.iter().collect();
        u16::from_str_radix(&s, 16).ok()
    };
    let mut i = 0;
    while i < chars.len() {
        let (unit, skip) = match (chars[i], chars.get(i + 1)) {
            ('\\', Some('u')) if hex(i + 2, 4).is_some() => (hex(i + 2, 4), 6),
            ('\\', Some('x')) if hex(i + 2, 2).is_some() => (hex(i + 2, 2), 4),
            ('\\', Some('n')) => (Some(10), 2),
            ('\\', Some(c @ ('"' | '\'' | '/' | '\\'))) => (Some(*c as u16), 2),
            _ => (None, 1),
        };
        match unit {
            Some(u) => units.push(u),
            None => {
                let mut buf = [0u16; 2];
                units.extend_from_slice(chars[i].encode_utf16(&mut buf));
            }
        }
        i += skip;
    }
    String::from_utf16_lossy(&units)
}

/// Every base64 run of `text`, decoded from each of its first four characters.
fn base64_decodings(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for found in BASE64_RUN.find_iter(text) {
        let std: String = found
            .as_str()
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                c => c,
            })
            .collect();
        for start in 0..4.min(std.len()) {
            let part = &std[start..];
            let part = &part[..part.len() / 4 * 4];
            if let Ok(bytes) = STANDARD_NO_PAD.decode(part) {
                out.push(String::from_utf8_lossy(&bytes).to_string());
            }
        }
    }
    out
}

/// Which secret `text` still holds once every encoding we know of is undone, in any order,
/// up to three deep (and base64 runs decoded), ignoring letter case.
pub fn still_holds(text: &str, secrets: &[&str]) -> Option<String> {
    let mut seen: HashSet<String> = HashSet::from([text.to_string()]);
    let mut frontier = vec![text.to_string()];
    for _ in 0..3 {
        let mut next = Vec::new();
        for t in &frontier {
            for decoded in [
                html_unescape(t),
                percent_decode(t, false),
                percent_decode(t, true),
                js_unescape(t),
            ] {
                if seen.insert(decoded.clone()) {
                    next.push(decoded);
                }
            }
        }
        frontier = next;
    }
    let mut all: Vec<String> = seen.into_iter().collect();
    let decoded: Vec<String> = all.iter().flat_map(|t| base64_decodings(t)).collect();
    all.extend(decoded.iter().map(|t| js_unescape(t)));
    all.extend(decoded);
    for secret in secrets {
        let needle = secret.to_lowercase();
        if let Some(t) = all.iter().find(|t| t.to_lowercase().contains(&needle)) {
            let lower = t.to_lowercase();
            let at = lower.find(&needle).unwrap_or(0);
            let context: String = lower[at..].chars().take(120).collect();
            return Some(format!("{secret:?} in …{context}…"));
        }
    }
    None
}
