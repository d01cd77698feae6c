//! The words of every alert, as data: one file per language under `alerts/texts/`, compiled in,
//! and the email templates under `alerts/templates/`. Texts are MiniJinja snippets
//! (`{{ platform }}`); undefined placeholders are errors, so a broken translation fails its
//! test instead of printing a blank.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use include_dir::{include_dir, Dir};
use minijinja::{Environment, UndefinedBehavior};
use serde::Deserialize;

static ALERTS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/alerts");

/// The language every other one falls back to.
pub const FALLBACK: &str = "en";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Ltr,
    Rtl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fix {
    pub reconnect: String,
    pub external_steps: String,
    pub retry_later: String,
    pub contact_support: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTexts {
    pub single_subject: String,
    pub digest_subject: String,
    pub recovered_subject: String,
    pub single_intro: String,
    pub digest_intro: String,
    pub recovered_intro: String,
    pub what_happened: String,
    pub how_to_fix: String,
    pub stores: String,
    pub button: String,
    pub link_note: String,
    pub footer: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsTexts {
    pub broken: String,
    pub digest: String,
    pub recovered: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketTexts {
    pub title: String,
    pub recovered_title: String,
    pub platform: String,
    pub store: String,
    pub problem: String,
    pub fix: String,
    pub scan: String,
}

/// One language's texts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Language {
    pub language: String,
    pub direction: Direction,
    /// By outcome (`invalid_credentials/wrong_password`, ...).
    pub outcome: BTreeMap<String, String>,
    /// By outcome category, for SMS and tickets.
    pub short: BTreeMap<String, String>,
    pub fix: Fix,
    pub email: EmailTexts,
    pub sms: SmsTexts,
    pub ticket: TicketTexts,
}

#[derive(Debug, thiserror::Error)]
pub enum TextsError {
    #[error("alerts/texts/{file}: {reason}")]
    File { file: String, reason: String },
    #[error("alerts/templates/{0} is missing")]
    Template(String),
    #[error("alert text {key:?} in {language}: {reason}")]
    Render {
        language: String,
        key: String,
        reason: String,
    },
}

pub struct Texts {
    languages: BTreeMap<String, Language>,
    templates: Environment<'static>,
}

impl Texts {
    /// The compiled-in texts (checked by the tests, so a failure here is a build defect).
    pub fn embedded() -> &'static Texts {
        static TEXTS: OnceLock<Texts> = OnceLock::new();
        TEXTS.get_or_init(|| Texts::load().expect("the compiled-in alert texts are valid (tested)"))
    }

    pub fn load() -> Result<Texts, TextsError> {
        let mut languages = BTreeMap::new();
        let folder = ALERTS.get_dir("texts").ok_or(TextsError::File {
            file: String::new(),
            reason: "the folder is missing".into(),
        })?;
        for file in folder.files() {
            let name = file
                .path()
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            let Some(code) = name.strip_suffix(".toml") else {
                continue;
            };
            let fail = |reason: String| TextsError::File {
                file: name.to_string(),
                reason,
            };
            let text = file
                .contents_utf8()
                .ok_or_else(|| fail("not UTF-8".into()))?;
            let language: Language = toml::from_str(text).map_err(|e| fail(e.to_string()))?;
            if language.language != code {
                return Err(fail(format!("says language = {:?}", language.language)));
            }
            languages.insert(code.to_string(), language);
        }
        let mut templates = Environment::new();
        templates.set_undefined_behavior(UndefinedBehavior::Strict);
        for name in ["email.html", "email.txt"] {
            let source = ALERTS
                .get_file(format!("templates/{name}"))
                .and_then(|file| file.contents_utf8())
                .ok_or_else(|| TextsError::Template(name.into()))?;
            templates
                .add_template(name, source)
                .map_err(|e| TextsError::Render {
                    language: String::new(),
                    key: name.into(),
                    reason: e.to_string(),
                })?;
        }
        if !languages.contains_key(FALLBACK) {
            return Err(TextsError::File {
                file: format!("{FALLBACK}.toml"),
                reason: "the fallback language is missing".into(),
            });
        }
        Ok(Texts {
            languages,
            templates,
        })
    }

    /// The texts for `lang` (`fr-CA` falls back to `fr`), else English.
    pub fn get(&self, lang: &str) -> &Language {
        let base = lang
            .split(['-', '_'])
            .next()
            .unwrap_or(lang)
            .to_ascii_lowercase();
        self.languages
            .get(&base)
            .or_else(|| self.languages.get(FALLBACK))
            .expect("the fallback language is loaded")
    }

    pub fn has(&self, lang: &str) -> bool {
        self.languages.contains_key(lang)
    }

    pub fn languages(&self) -> impl Iterator<Item = &Language> {
        self.languages.values()
    }

    /// Fills one text's placeholders.
    pub fn fill(
        &self,
        language: &Language,
        key: &str,
        text: &str,
        context: &minijinja::Value,
    ) -> Result<String, TextsError> {
        self.templates
            .render_str(text, context)
            .map_err(|e| TextsError::Render {
                language: language.language.clone(),
                key: key.into(),
                reason: e.to_string(),
            })
    }

    /// Renders an email template (`email.html` escapes every value it inserts).
    pub fn render(&self, template: &str, context: &minijinja::Value) -> Result<String, TextsError> {
        self.templates
            .get_template(template)
            .and_then(|t| t.render(context))
            .map_err(|e| TextsError::Render {
                language: String::new(),
                key: template.into(),
                reason: e.to_string(),
            })
    }
}
