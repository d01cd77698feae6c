//! Text as the lexicon compares it: Unicode NFKC, lower case, white space folded, Latin accents
//! and Arabic diacritics dropped, digits of every script in ASCII, apostrophes unified; English `n't` spelled out as ` not` so
//! negation is one word in every language that writes it as one.

use unicode_normalization::UnicodeNormalization;

/// Normalises `text` for matching. Terms and page text go through the same function.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.nfkc().flat_map(char::to_lowercase) {
        if c.is_whitespace() || c == '\u{200b}' || c == '\u{200c}' || c == '\u{feff}' {
            if !space {
                out.push(' ');
                space = true;
            }
            continue;
        }
        space = false;
        // "٥ محاولات" and "5 محاولات" say the same.
        let c = crate::digits::ascii_digit(c).unwrap_or(c);
        match c {
            '\u{2018}' | '\u{2019}' | '\u{02bc}' | '\u{2032}' | '`' | '\u{00b4}' => out.push('\''),
            '\u{2010}'..='\u{2015}' | '\u{2212}' => out.push('-'),
            // Arabic: diacritics (tashkeel) and the tatweel carry no meaning for matching;
            // the alef forms and final yeh are written interchangeably.
            '\u{064b}'..='\u{065f}' | '\u{0670}' | '\u{0640}' => {}
            '\u{0622}' | '\u{0623}' | '\u{0625}' | '\u{0671}' => out.push('\u{0627}'),
            '\u{0649}' => out.push('\u{064a}'),
            c if is_latin_with_marks(c) => {
                out.extend(std::iter::once(c).nfd().filter(|m| !is_combining_mark(*m)));
            }
            c => out.push(c),
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    // English contractions: "couldn't" -> "could not", "can't" -> "ca not" (the negation is
    // what matters).
    if out.contains("n't") {
        out = out.replace("n't", " not");
    }
    out
}

/// Latin letters whose accents are safe to drop (é -> e, ß stays, ł stays: no decomposition).
/// Hangul is never decomposed: NFD would split syllables into jamo.
fn is_latin_with_marks(c: char) -> bool {
    matches!(c, '\u{00c0}'..='\u{024f}' | '\u{1e00}'..='\u{1eff}')
}

fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036f}' | '\u{1ab0}'..='\u{1aff}' | '\u{1dc0}'..='\u{1dff}')
}

/// Whether words in this script are separated by spaces and a term must start at a word
/// boundary (Latin, Greek, Cyrillic). Arabic, Hangul, Han, kana and Thai attach particles and
/// articles to words, or write no spaces at all, so their terms match inside words.
pub fn needs_word_boundary(term: &str) -> bool {
    term.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| (c as u32) < 0x0590)
}

/// A character that continues a word (for boundary checks).
pub fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// Characters that end a clause: negation and hedges never reach across them.
pub fn is_clause_break(c: char) -> bool {
    matches!(
        c,
        '.' | '!'
            | '?'
            | ';'
            | ':'
            | ','
            | '\n'
            | '。'
            | '！'
            | '？'
            | '；'
            | '：'
            | '，'
            | '、'
            | '؟'
            | '،'
            | '؛'
            | '|'
            | '•'
            | '·'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_case_accents_width_and_space() {
        assert_eq!(
            normalize("  Mot de passe\u{00a0}ERRONÉ "),
            "mot de passe errone"
        );
        assert_eq!(normalize("Contraseña"), "contrasena");
        assert_eq!(normalize("ＡＢＣ１２３"), "abc123");
        assert_eq!(normalize("Straße"), "straße");
        assert_eq!(normalize("Couldn’t find"), "could not find");
    }

    #[test]
    fn keeps_hangul_syllables_and_folds_arabic() {
        assert_eq!(normalize("비활성 상태"), "비활성 상태");
        assert_eq!(normalize("أُغلق الحِساب"), "اغلق الحساب");
    }

    #[test]
    fn boundaries_by_script() {
        assert!(needs_word_boundary("password"));
        assert!(needs_word_boundary("hasło"));
        assert!(!needs_word_boundary("비밀번호"));
        assert!(!needs_word_boundary("パスワード"));
        assert!(!needs_word_boundary("الحساب"));
    }
}
