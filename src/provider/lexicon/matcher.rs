//! The compiled lexicon: every term of every language in one Aho-Corasick automaton, so a message
//! is scanned once whatever the number of languages, then each expression whose terms all occur
//! is checked for its window, its negations and its hedges.

use std::collections::BTreeMap;

use aho_corasick::AhoCorasick;
use serde::Serialize;

use super::normalize::{is_clause_break, is_word_char, needs_word_boundary, normalize};
use super::{Concept, LanguageFile};

/// The farthest apart (in characters, first term's start to last term's end) the terms of one
/// expression may be: a clause or two, not a paragraph.
const WINDOW: usize = 64;
/// How far before a term a negation may stand ("is not currently active").
const NEGATION_REACH: usize = 16;
/// How far after a term a trailing negation may stand (Korean "활성화되지 않", Japanese "有効ではありません").
const NEGATION_AFTER_REACH: usize = 8;
/// How far before a term a hedge may stand ("will be temporarily locked").
const HEDGE_REACH: usize = 40;

/// What a pattern in the automaton stands for (one string can stand for several).
#[derive(Debug, Clone, Copy)]
enum Role {
    /// An alternative of term `slot` of expression `expr`; `negated`: it must be negated.
    Term {
        expr: u32,
        slot: u8,
        negated: bool,
    },
    Negation {
        language: u16,
    },
    NegationAfter {
        language: u16,
    },
    Hedge {
        language: u16,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    boundary: bool,
    prefix: bool,
    roles: Vec<Role>,
}

#[derive(Debug, Clone)]
struct Expression {
    concept: Concept,
    language: u16,
    source: String,
    /// How many terms.
    slots: usize,
    /// Counts only when no other outcome concept is found in the same text.
    weak: bool,
}

/// A concept found in a text: which, in which language, by which expression, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hit {
    pub concept: Concept,
    pub language: String,
    pub expression: String,
    /// The normalised words the expression matched (first term to last).
    pub matched: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub weak: bool,
}

/// A compiled lexicon.
#[derive(Debug, Clone)]
pub struct Lexicon {
    automaton: AhoCorasick,
    patterns: Vec<Pattern>,
    expressions: Vec<Expression>,
    languages: Vec<String>,
}

/// A lexicon that does not compile: which language, which concept, what is wrong.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{at}: {message}")]
pub struct LexiconError {
    pub at: String,
    pub message: String,
}

impl Lexicon {
    /// Compiles language files (the shared ones, then any a spec adds).
    pub fn compile<'a>(
        files: impl IntoIterator<Item = &'a LanguageFile>,
    ) -> Result<Lexicon, LexiconError> {
        let mut strings: Vec<String> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        let mut index: BTreeMap<(String, bool), usize> = BTreeMap::new();
        let mut expressions = Vec::new();
        let mut languages: Vec<String> = Vec::new();
        let mut add = |text: &str,
                       prefix: bool,
                       role: Role,
                       strings: &mut Vec<String>,
                       patterns: &mut Vec<Pattern>| {
            let key = (text.to_string(), prefix);
            let at = *index.entry(key).or_insert_with(|| {
                strings.push(text.to_string());
                patterns.push(Pattern {
                    boundary: needs_word_boundary(text),
                    prefix,
                    roles: Vec::new(),
                });
                patterns.len() - 1
            });
            patterns[at].roles.push(role);
        };
        for file in files {
            let language = match languages.iter().position(|l| *l == file.language) {
                Some(i) => i,
                None => {
                    languages.push(file.language.clone());
                    languages.len() - 1
                }
            } as u16;
            let lists = [
                (&file.negations, Role::Negation { language }),
                (&file.negations_after, Role::NegationAfter { language }),
                (&file.hedges, Role::Hedge { language }),
            ];
            for (words, role) in lists {
                for word in words {
                    let word = normalize(word);
                    if word.is_empty() {
                        return Err(LexiconError {
                            at: file.language.clone(),
                            message: "an empty negation or hedge word".into(),
                        });
                    }
                    add(&word, false, role, &mut strings, &mut patterns);
                }
            }
            for (concept, list) in &file.concepts {
                for (i, source) in list.iter().enumerate() {
                    let at = || format!("{}: {}[{i}] `{source}`", file.language, concept.name());
                    let expr = expressions.len() as u32;
                    let mut slots = 0;
                    let (weak, body) = match source.strip_prefix("? ") {
                        Some(rest) => (true, rest),
                        None => (false, source.as_str()),
                    };
                    for (slot, term) in body.split(" + ").enumerate() {
                        let term = term.trim();
                        if slot > 15 {
                            return Err(LexiconError {
                                at: at(),
                                message: "more than 16 terms".into(),
                            });
                        }
                        for alternative in term.split('|') {
                            let alternative = alternative.trim();
                            let (negated, alternative) = match alternative.strip_prefix('~') {
                                Some(rest) => (true, rest),
                                None => (false, alternative),
                            };
                            let (text, prefix) = match alternative.strip_suffix('*') {
                                Some(stem) => (stem, true),
                                None => (alternative, false),
                            };
                            let text = normalize(text);
                            if text.is_empty() || text.contains(['+', '~', '*']) {
                                return Err(LexiconError {
                                    at: at(),
                                    message: format!("term `{alternative}` is empty or malformed"),
                                });
                            }
                            add(
                                &text,
                                prefix,
                                Role::Term {
                                    expr,
                                    slot: slot as u8,
                                    negated,
                                },
                                &mut strings,
                                &mut patterns,
                            );
                        }
                        slots += 1;
                    }
                    expressions.push(Expression {
                        concept: *concept,
                        language,
                        source: source.clone(),
                        slots,
                        weak,
                    });
                }
            }
        }
        let automaton = AhoCorasick::builder()
            .build(&strings)
            .map_err(|e| LexiconError {
                at: "lexicon".into(),
                message: e.to_string(),
            })?;
        Ok(Lexicon {
            automaton,
            patterns,
            expressions,
            languages,
        })
    }

    pub fn expression_count(&self) -> usize {
        self.expressions.len()
    }

    /// Every concept `text` expresses, one hit per concept (the first expression that matched).
    pub fn scan(&self, text: &str) -> Vec<Hit> {
        let text = normalize(text);
        if text.is_empty() {
            return Vec::new();
        }
        let map = CharMap::new(&text);
        // Occurrences, by role, in char positions.
        let mut terms: BTreeMap<u32, Vec<Vec<Occurrence>>> = BTreeMap::new();
        let mut negations: Vec<(u16, usize, usize, bool)> = Vec::new();
        // Where terms of each language start and end: a negation negates only the nearest term.
        let mut term_spans: Vec<(u16, usize, usize)> = Vec::new();
        let mut hedges: Vec<(u16, usize)> = Vec::new();
        for m in self.automaton.find_overlapping_iter(text.as_str()) {
            let pattern = &self.patterns[m.pattern().as_usize()];
            if pattern.boundary {
                let before = text[..m.start()].chars().next_back();
                if before.is_some_and(is_word_char) {
                    continue;
                }
                let after = text[m.end()..].chars().next();
                if !pattern.prefix && after.is_some_and(is_word_char) {
                    continue;
                }
            } else if starts_inside_thai_syllable(&text, m.start()) {
                continue;
            }
            let (start, end) = (map.char_at(m.start()), map.char_at(m.end()));
            for role in &pattern.roles {
                match *role {
                    Role::Term {
                        expr,
                        slot,
                        negated,
                    } => {
                        let slots = terms.entry(expr).or_insert_with(|| {
                            vec![Vec::new(); self.expressions[expr as usize].slots]
                        });
                        slots[slot as usize].push((start, end, negated));
                        term_spans.push((self.expressions[expr as usize].language, start, end));
                    }
                    Role::Negation { language } => negations.push((language, start, end, false)),
                    Role::NegationAfter { language } => {
                        negations.push((language, start, end, true))
                    }
                    Role::Hedge { language } => hedges.push((language, end)),
                }
            }
        }
        let mut hits: Vec<Hit> = Vec::new();
        // Strong expressions first, so a concept's hit is its strongest.
        let mut found: Vec<(u32, Vec<Vec<Occurrence>>)> = terms.into_iter().collect();
        found.sort_by_key(|(expr, _)| (self.expressions[*expr as usize].weak, *expr));
        for (expr, slots) in found {
            let expression = &self.expressions[expr as usize];
            if hits.iter().any(|h| h.concept == expression.concept) {
                continue;
            }
            let language = expression.language;
            let qualifying: Vec<Vec<(usize, usize)>> = slots
                .iter()
                .map(|found| {
                    found
                        .iter()
                        .copied()
                        .filter(|&(s, e, must_negate)| {
                            // A negation negates the nearest term of its language: "could not
                            // find your account" negates "find", not "account".
                            let negated = negations.iter().any(|&(l, ns, ne, after)| {
                                // A negation that is part of one of this expression's own
                                // terms ("there's no" + "account") negates nothing.
                                let inside_a_term = slots
                                    .iter()
                                    .flatten()
                                    .any(|&(ts, te, _)| ts <= ns && ne <= te && te - ts > ne - ns);
                                l == language
                                    && !inside_a_term
                                    && if after {
                                        ns >= e
                                            && ns - e <= NEGATION_AFTER_REACH
                                            && map.same_clause(e, ns)
                                            && !term_spans.iter().any(|&(tl, ts, te)| {
                                                tl == l && ts >= e && te <= ns && ts < te
                                            })
                                    } else {
                                        ne <= s
                                            && s - ne <= NEGATION_REACH
                                            && map.same_clause(ne, s)
                                            && !term_spans.iter().any(|&(tl, ts, te)| {
                                                tl == l && ts >= ne && te <= s && ts < te
                                            })
                                    }
                            });
                            let hedged = hedges.iter().any(|&(l, he)| {
                                l == language
                                    && he <= s
                                    && s - he <= HEDGE_REACH
                                    && map.same_clause(he, s)
                            });
                            !hedged && negated == must_negate
                        })
                        .map(|(s, e, _)| (s, e))
                        .collect()
                })
                .collect();
            if let Some((from, to)) = within_window(&qualifying) {
                hits.push(Hit {
                    concept: expression.concept,
                    language: self.languages[language as usize].clone(),
                    expression: expression.source.clone(),
                    matched: map.slice(&text, from, to),
                    weak: expression.weak,
                });
            }
        }
        let strong_outcome = hits
            .iter()
            .any(|h| !h.weak && h.concept.outcome().is_some());
        hits.retain(|h| !(h.weak && strong_outcome));
        hits.sort_by_key(|h| h.concept);
        hits
    }

    /// Whether `text` expresses `concept`.
    pub fn says(&self, text: &str, concept: Concept) -> bool {
        self.scan(text).iter().any(|h| h.concept == concept)
    }
}

/// Where a term occurs (char positions) and whether its alternative must be negated.
type Occurrence = (usize, usize, bool);

/// The span of one occurrence per slot that fits in the window, if any.
fn within_window(slots: &[Vec<(usize, usize)>]) -> Option<(usize, usize)> {
    let (first, rest) = slots.split_first()?;
    for &(s, e) in first {
        let (mut from, mut to) = (s, e);
        let mut fits = true;
        for slot in rest {
            let nearest = slot.iter().min_by_key(|&&(os, oe)| {
                let (f, t) = (from.min(os), to.max(oe));
                t - f
            });
            match nearest {
                Some(&(os, oe)) if to.max(oe) - from.min(os) <= WINDOW => {
                    from = from.min(os);
                    to = to.max(oe);
                }
                _ => {
                    fits = false;
                    break;
                }
            }
        }
        if fits {
            return Some((from, to));
        }
    }
    None
}

/// Byte offsets to char positions, and the clause each char is in.
struct CharMap {
    /// Char position of each byte offset (length = bytes + 1).
    chars: Vec<u32>,
    /// Clause number of each char position.
    clauses: Vec<u32>,
    /// Byte offset of each char position.
    bytes: Vec<u32>,
}

impl CharMap {
    fn new(text: &str) -> CharMap {
        let mut chars = vec![0u32; text.len() + 1];
        let mut clauses = Vec::with_capacity(text.len() + 1);
        let mut bytes = Vec::with_capacity(text.len() + 1);
        let mut clause = 0u32;
        for (n, (i, c)) in text.char_indices().enumerate() {
            for slot in &mut chars[i..i + c.len_utf8()] {
                *slot = n as u32;
            }
            if is_clause_break(c) {
                clause += 1;
            }
            clauses.push(clause);
            bytes.push(i as u32);
        }
        let total = bytes.len() as u32;
        chars[text.len()] = total;
        clauses.push(clause);
        bytes.push(text.len() as u32);
        CharMap {
            chars,
            clauses,
            bytes,
        }
    }

    fn char_at(&self, byte: usize) -> usize {
        self.chars[byte] as usize
    }

    /// Whether no clause break stands between char positions `a` and `b` (a ≤ b).
    fn same_clause(&self, a: usize, b: usize) -> bool {
        let last = self.clauses.len() - 1;
        self.clauses[a.min(last)] == self.clauses[b.saturating_sub(1).max(a).min(last)]
    }

    fn slice(&self, text: &str, from: usize, to: usize) -> String {
        text[self.bytes[from] as usize..self.bytes[to] as usize].to_string()
    }
}

/// Thai writes the vowels เ แ โ ใ ไ before the consonant they follow in speech: a term that starts
/// right after one starts inside a syllable ("ปิด", closed, inside "เปิด", open).
fn starts_inside_thai_syllable(text: &str, start: usize) -> bool {
    text[..start]
        .chars()
        .next_back()
        .is_some_and(|c| ('\u{0e40}'..='\u{0e44}').contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexicon() -> Lexicon {
        let en: LanguageFile = toml::from_str(
            r#"
language = "en"
negations = ["not", "no", "never"]
hedges = ["will", "before", "if"]
[concepts]
account_locked = ["account|login + locked|suspended", "locked out"]
wrong_credentials = ["incorrect|wrong|invalid + password", "password + ~correct|valid"]
restaurant_inactive = ["store|site + inactive|deactivated", "store|site + ~active"]
store_active = ["active"]
"#,
        )
        .unwrap();
        let ko: LanguageFile = toml::from_str(
            r#"
language = "ko"
negations_after = ["않", "없"]
[concepts]
restaurant_inactive = ["비활성", "~활성화"]
account_locked = ["계정 + 잠금|잠겼|잠김"]
"#,
        )
        .unwrap();
        Lexicon::compile([&en, &ko]).unwrap()
    }

    fn concepts(text: &str) -> Vec<Concept> {
        lexicon()
            .scan(text)
            .into_iter()
            .map(|h| h.concept)
            .collect()
    }

    #[test]
    fn terms_match_in_any_order_within_a_window() {
        assert_eq!(
            concepts("Incorrect password"),
            vec![Concept::WrongCredentials]
        );
        assert_eq!(
            concepts("The password you typed is wrong"),
            vec![Concept::WrongCredentials]
        );
        assert_eq!(
            concepts("Your account has been temporarily LOCKED."),
            vec![Concept::AccountLocked]
        );
        let far = format!("password {} wrong", "lorem ipsum ".repeat(10));
        assert!(concepts(&far).is_empty());
    }

    #[test]
    fn negation_flips_and_blocks() {
        assert_eq!(
            concepts("This site is not active"),
            vec![Concept::RestaurantInactive]
        );
        assert_eq!(
            concepts("This site isn't currently active"),
            vec![Concept::RestaurantInactive]
        );
        assert_eq!(concepts("This site is active"), vec![Concept::StoreActive]);
        assert_eq!(
            concepts("The password is not correct"),
            vec![Concept::WrongCredentials]
        );
        // Negation does not reach across a clause.
        assert_eq!(concepts("Not you? Site active"), vec![Concept::StoreActive]);
        assert_eq!(
            concepts("가게가 활성화되지 않았습니다"),
            vec![Concept::RestaurantInactive]
        );
        assert_eq!(
            concepts("매장이 비활성 상태입니다"),
            vec![Concept::RestaurantInactive]
        );
        assert_eq!(concepts("계정이 잠겼습니다"), vec![Concept::AccountLocked]);
    }

    #[test]
    fn hedged_states_are_warnings_not_states() {
        assert_eq!(
            concepts("Wrong password. Your account will be locked after 2 more attempts"),
            vec![Concept::WrongCredentials]
        );
        assert_eq!(
            concepts("Incorrect password, 1 attempt left before your account is locked"),
            vec![Concept::WrongCredentials]
        );
    }

    #[test]
    fn words_are_whole_unless_a_prefix() {
        assert!(concepts("the storefront is inactivex").is_empty());
        assert!(!concepts("Password incorrect").contains(&Concept::AccountLocked));
    }

    #[test]
    fn malformed_terms_are_refused() {
        let bad: LanguageFile = toml::from_str(
            "language = \"en\"\n[concepts]\naccount_locked = [\"account +  + locked\"]\n",
        )
        .unwrap();
        let err = Lexicon::compile([&bad]).unwrap_err();
        assert!(err.to_string().contains("account_locked"), "{err}");
    }

    #[test]
    fn a_thai_term_never_starts_inside_a_syllable() {
        let th: LanguageFile = toml::from_str(
            r#"
language = "th"
[concepts]
store_closed = ["ปิด"]
"#,
        )
        .unwrap();
        let lexicon = Lexicon::compile([&th]).unwrap();
        let found = |text: &str| {
            lexicon
                .scan(text)
                .iter()
                .map(|h| h.concept)
                .collect::<Vec<_>>()
        };
        assert_eq!(found("ร้านปิดชั่วคราว"), vec![Concept::StoreClosed]);
        // เปิด (open) holds ปิด after its leading vowel.
        assert!(found("ร้านเปิดอยู่").is_empty());
    }
}
