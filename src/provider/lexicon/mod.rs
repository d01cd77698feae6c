//! The shared, language-aware understanding every provider uses: a lexicon of concepts (what a
//! portal can say: "wrong password", "account locked", "maintenance", ...) in every language of
//! the portals' markets, the vendor walls (captchas, bot walls) and the places portals show their
//! messages. All three are data in `providers/lexicon/`; a spec only adds what is particular to
//! its portal.

pub mod matcher;
pub mod normalize;
pub mod walls;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::outcome::{Blocked, InvalidCredentials, Outcome, StoreConfig, TwoFactor, Unavailable};

pub use matcher::{Hit, Lexicon};

/// Everything a portal may say that the engine understands. Closed: a spec or lexicon file that
/// names another concept does not load.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::IntoStaticStr,
    strum::EnumString,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Concept {
    WrongCredentials,
    UnknownAccount,
    PasswordExpired,
    AccountLocked,
    TooManyAttempts,
    CodeInvalid,
    CodeExpired,
    MethodUnsupported,
    Captcha,
    BotProtection,
    Maintenance,
    ServerError,
    RestaurantInactive,
    InsufficientRole,
    TermsNotAccepted,
    NonTraditionalLogin,
    /// Store states, read from a store list's status column (and harmless on a banner). A
    /// banner that says a *store* is inactive is `restaurant_inactive`; a status cell that says
    /// "Inactive" alone is `store_inactive`.
    StoreInactive,
    StorePaused,
    StoreClosed,
    StoreActive,
    /// Neutral: what portals show on ordinary steps. They explain a message box, so the safe
    /// default does not stop on it, and decide nothing.
    CodeSent,
    SignInPrompt,
    /// "Loading…", "Please wait": a page on its way somewhere.
    Progress,
}

impl Concept {
    /// The outcome a page saying this ends in; `None` for neutral and store-state concepts.
    pub fn outcome(self) -> Option<Outcome> {
        use Concept::*;
        Some(match self {
            WrongCredentials => Outcome::InvalidCredentials(InvalidCredentials::WrongPassword),
            UnknownAccount => Outcome::InvalidCredentials(InvalidCredentials::UnknownAccount),
            PasswordExpired => Outcome::InvalidCredentials(InvalidCredentials::PasswordExpired),
            AccountLocked => Outcome::BlockedByThirdParty(Blocked::AccountLocked),
            TooManyAttempts => Outcome::BlockedByThirdParty(Blocked::TooManyAttempts),
            CodeInvalid => Outcome::TwoFactor(TwoFactor::CodeInvalid),
            CodeExpired => Outcome::TwoFactor(TwoFactor::CodeExpired),
            MethodUnsupported => Outcome::TwoFactor(TwoFactor::MethodUnsupported),
            Captcha => Outcome::BlockedByThirdParty(Blocked::Captcha),
            BotProtection => Outcome::BlockedByThirdParty(Blocked::BotProtection),
            Maintenance => Outcome::ProviderUnavailable(Unavailable::Maintenance),
            ServerError => Outcome::ProviderUnavailable(Unavailable::ServerError),
            RestaurantInactive => Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive),
            InsufficientRole => Outcome::InvalidStoreConfig(StoreConfig::InsufficientRole),
            TermsNotAccepted => Outcome::InvalidStoreConfig(StoreConfig::TermsNotAccepted),
            NonTraditionalLogin => Outcome::InvalidStoreConfig(StoreConfig::NonTraditionalLogin),
            StoreInactive | StorePaused | StoreClosed | StoreActive | CodeSent | SignInPrompt
            | Progress => return None,
        })
    }

    /// Concepts about the login itself: meaningless on a page behind the login (a store list
    /// shows the login worked), where "invalid code" is a promo code and "locked" a menu item.
    pub fn is_about_login(self) -> bool {
        use Concept::*;
        matches!(
            self,
            WrongCredentials
                | UnknownAccount
                | PasswordExpired
                | AccountLocked
                | TooManyAttempts
                | CodeInvalid
                | CodeExpired
                | MethodUnsupported
                | NonTraditionalLogin
                | CodeSent
                | SignInPrompt
        )
    }

    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One language file, `providers/lexicon/<lang>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanguageFile {
    pub language: String,
    /// Words that negate the term after them, in the same clause ("not", "non", "nicht", "غير").
    #[serde(default)]
    pub negations: Vec<String>,
    /// Negations written after the word they negate (Korean 않, Japanese ない / ません).
    #[serde(default)]
    pub negations_after: Vec<String>,
    /// Words that make what follows hypothetical ("will be locked", "before your account is
    /// locked"): a state the portal only warns about is not the state.
    #[serde(default)]
    pub hedges: Vec<String>,
    /// Concept -> expressions. An expression is terms joined by ` + `, all of which must occur
    /// within a short window, in any order; a term is alternatives joined by `|`; `word*` matches
    /// a prefix; a term starting with `~` must be negated ("~active" = "not active").
    #[serde(default)]
    pub concepts: BTreeMap<Concept, Vec<String>>,
}

/// The lexicon's own files, as loaded: every language of the shared lexicon.
#[derive(Debug, Clone, Default)]
pub struct LexiconSource {
    pub languages: Vec<LanguageFile>,
}

/// The languages the lexicon must cover, all of them, for every outcome concept.
pub const REQUIRED_LANGUAGES: &[&str] = &[
    "en", "fr", "es", "pt", "it", "nl", "de", "pl", "ko", "ja", "zh", "th", "ar",
];

impl LexiconSource {
    /// Reads `lexicon/*.toml` (except `walls.toml`, `surfaces.toml`) from a provider folder.
    pub fn load(
        files: &crate::provider::FileTree,
    ) -> Result<LexiconSource, crate::provider::SpecError> {
        let mut languages = Vec::new();
        for name in files.list("lexicon") {
            if !name.ends_with(".toml") || name == "walls.toml" || name == "surfaces.toml" {
                continue;
            }
            let path = format!("lexicon/{name}");
            let text = files.read(&path).unwrap_or_default();
            let file: LanguageFile =
                toml::from_str(&text).map_err(|e| crate::provider::SpecError {
                    file: files.display(&path),
                    field: e
                        .span()
                        .map(|s| format!("bytes {}..{}", s.start, s.end))
                        .unwrap_or_default(),
                    message: e.message().to_string(),
                })?;
            if format!("{}.toml", file.language) != name {
                return Err(crate::provider::SpecError {
                    file: files.display(&path),
                    field: "language".into(),
                    message: format!("`{}` does not match the file name", file.language),
                });
            }
            languages.push(file);
        }
        Ok(LexiconSource { languages })
    }

    /// How many expressions each language has, for the checklist and the closing figures.
    pub fn size(&self) -> BTreeMap<String, usize> {
        self.languages
            .iter()
            .map(|l| (l.language.clone(), l.concepts.values().map(Vec::len).sum()))
            .collect()
    }
}

/// The shared understanding, compiled once: the lexicon, the walls, the surfaces.
#[derive(Debug, Clone)]
pub struct Shared {
    pub source: LexiconSource,
    pub lexicon: std::sync::Arc<Lexicon>,
    pub walls: std::sync::Arc<Vec<walls::Wall>>,
    pub surfaces: walls::Surfaces,
}

struct Plain;

impl walls::Compile for Plain {
    fn css(&self, at: &str, source: &str) -> Result<crate::provider::spec::Css, String> {
        crate::provider::spec::parse_css(source).map_err(|e| format!("{at}: {e}"))
    }
    fn regex(&self, at: &str, source: &str) -> Result<regex::Regex, String> {
        regex::Regex::new(source).map_err(|e| format!("{at}: invalid regex `{source}`: {e}"))
    }
}

impl Shared {
    /// Loads `lexicon/` of a provider folder.
    pub fn load(files: &crate::provider::FileTree) -> Result<Shared, crate::provider::SpecError> {
        let source = LexiconSource::load(files)?;
        let fail = |path: &str, message: String| crate::provider::SpecError {
            file: files.display(path),
            field: String::new(),
            message,
        };
        let lexicon =
            Lexicon::compile(&source.languages).map_err(|e| fail("lexicon", e.to_string()))?;
        let read = |path: &str| {
            files
                .read(path)
                .ok_or_else(|| fail(path, "missing: the shared lexicon needs it".into()))
        };
        let walls = walls::parse_walls(&read("lexicon/walls.toml")?, &Plain)
            .map_err(|e| fail("lexicon/walls.toml", e))?;
        let surfaces = walls::parse_surfaces(&read("lexicon/surfaces.toml")?, &Plain)
            .map_err(|e| fail("lexicon/surfaces.toml", e))?;
        Ok(Shared {
            source,
            lexicon: std::sync::Arc::new(lexicon),
            walls: std::sync::Arc::new(walls),
            surfaces,
        })
    }

    /// The lexicon compiled into this binary.
    pub fn embedded() -> &'static Shared {
        static SHARED: std::sync::LazyLock<Shared> = std::sync::LazyLock::new(|| {
            Shared::load(&crate::provider::FileTree::embedded_providers())
                .unwrap_or_else(|e| panic!("the embedded lexicon must load: {e}"))
        });
        &SHARED
    }

    /// The shared lexicon with a spec's own wording added (language -> concept -> expressions).
    pub fn with_wording(
        &self,
        extra: &BTreeMap<String, BTreeMap<Concept, Vec<String>>>,
    ) -> Result<std::sync::Arc<Lexicon>, matcher::LexiconError> {
        if extra.is_empty() {
            return Ok(self.lexicon.clone());
        }
        let own: Vec<LanguageFile> = extra
            .iter()
            .map(|(language, concepts)| LanguageFile {
                language: language.clone(),
                negations: Vec::new(),
                negations_after: Vec::new(),
                hedges: Vec::new(),
                concepts: concepts.clone(),
            })
            .collect();
        Lexicon::compile(self.source.languages.iter().chain(&own)).map(std::sync::Arc::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    fn shared() -> Shared {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("providers");
        Shared::load(&crate::provider::FileTree::Disk(dir)).expect("the lexicon loads")
    }

    #[test]
    fn every_language_says_every_outcome_concept() {
        let shared = shared();
        for language in REQUIRED_LANGUAGES {
            let file = shared
                .source
                .languages
                .iter()
                .find(|l| l.language == *language)
                .unwrap_or_else(|| panic!("no lexicon/{language}.toml"));
            for concept in Concept::iter().filter(|c| c.outcome().is_some()) {
                assert!(
                    file.concepts.get(&concept).is_some_and(|e| !e.is_empty()),
                    "{language}: no expression for {}",
                    concept.name()
                );
            }
        }
    }

    #[test]
    fn the_embedded_lexicon_is_the_source_tree_one() {
        let embedded = Shared::embedded();
        assert_eq!(embedded.source.size(), shared().source.size());
        assert!(embedded.lexicon.expression_count() > 1000);
    }
}
