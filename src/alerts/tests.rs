//! Every language's texts: complete, the same placeholders as English, and every outcome put in
//! words on every channel.

use std::collections::BTreeSet;

use super::compose::{self, News, Notice};
use super::texts::{Texts, FALLBACK};
use super::ticket;
use crate::outcome::Outcome;
use crate::queue::StoreRef;

const LANGUAGES: [&str; 13] = [
    "en", "fr", "es", "pt", "de", "nl", "it", "pl", "ko", "ar", "ja", "zh", "th",
];

fn placeholders(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(end) = rest[start..].find("}}") else {
            break;
        };
        found.insert(rest[start + 2..start + end].trim().to_string());
        rest = &rest[start + end + 2..];
    }
    found
}

/// Every text of a language, by key, through its TOML form (so a new key is checked too).
fn flattened(language: &str) -> Vec<(String, String)> {
    let source = std::fs::read_to_string(format!(
        "{}/alerts/texts/{language}.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let table: toml::Table = toml::from_str(&source).unwrap();
    let mut out = Vec::new();
    for (section, value) in table {
        match value {
            toml::Value::Table(inner) => {
                for (key, text) in inner {
                    out.push((
                        format!("{section}.{key}"),
                        text.as_str().unwrap().to_string(),
                    ));
                }
            }
            toml::Value::String(text) => out.push((section, text)),
            other => panic!("{language}: {section} = {other:?}"),
        }
    }
    out.sort();
    out
}

#[test]
fn every_language_has_every_text_with_the_same_placeholders() {
    let texts = Texts::embedded();
    let english = flattened(FALLBACK);
    for outcome in Outcome::all().into_iter().filter(|o| *o != Outcome::Paired) {
        assert!(
            english
                .iter()
                .any(|(k, _)| *k == format!("outcome.{outcome}")),
            "no English text for {outcome}"
        );
        assert!(
            english
                .iter()
                .any(|(k, _)| *k == format!("short.{}", outcome.category())),
            "no short English text for {outcome}"
        );
    }
    for language in LANGUAGES {
        assert!(texts.has(language), "{language} is missing");
        let theirs = flattened(language);
        let keys =
            |list: &[(String, String)]| list.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
        assert_eq!(
            keys(&theirs),
            keys(&english),
            "{language}: other keys than English"
        );
        for ((key, text), (_, source)) in theirs.iter().zip(&english) {
            if key == "language" || key == "direction" {
                continue;
            }
            assert_eq!(
                placeholders(text),
                placeholders(source),
                "{language}: {key} has other placeholders than English"
            );
            assert!(!text.trim().is_empty(), "{language}: {key} is empty");
        }
    }
    assert_eq!(texts.get("ar").direction, super::texts::Direction::Rtl);
    assert_eq!(
        texts.get("fr-CA").language,
        "fr",
        "a region falls back to its language"
    );
    assert_eq!(texts.get("xx").language, "en");
}

fn notice(outcome: Option<Outcome>, stores: usize) -> Notice {
    Notice {
        account_id: "0190f5a3c2d47e8b9a1b2c3d4e5f6071".into(),
        platform: "Uber Eats".into(),
        stores: (0..stores)
            .map(|i| StoreRef {
                id: format!("s{i}"),
                location: format!("Main St {i}"),
                brand: "Burger Co".into(),
            })
            .collect(),
        news: match outcome {
            Some(outcome) => News::Broken {
                outcome,
                steps: vec!["Open the portal.".into(), "Turn the store on.".into()],
            },
            None => News::Recovered,
        },
        link: Some(format!(
            "https://dash.example/repair?r={}",
            super::links::sign(
                "s",
                "0190f5a3c2d47e8b9a1b2c3d4e5f6071",
                [1; 6],
                1_900_000_000
            )
        )),
    }
}

#[test]
fn every_outcome_is_put_in_words_on_every_channel_in_every_language() {
    let texts = Texts::embedded();
    let outcomes: Vec<Option<Outcome>> = Outcome::all()
        .into_iter()
        .filter(|o| *o != Outcome::Paired)
        .map(Some)
        .chain([None])
        .collect();
    for language in LANGUAGES {
        for outcome in &outcomes {
            let one = [notice(*outcome, 1)];
            let email = compose::email(texts, language, &one, 72).unwrap();
            assert!(
                email.subject.contains("Uber Eats"),
                "{language}: {}",
                email.subject
            );
            assert!(email.text.contains("Main St 0 (Burger Co)"), "{language}");
            let dir = if language == "ar" { "rtl" } else { "ltr" };
            assert!(email.html.contains(&format!("dir=\"{dir}\"")), "{language}");
            if outcome.is_some() {
                assert!(
                    email.text.contains("https://dash.example/repair?r="),
                    "{language}"
                );
            }
            let sms = compose::sms(texts, language, &one, Some("https://dash.example")).unwrap();
            assert!(sms.contains("Uber Eats"), "{language}: {sms}");
            let printed = compose::ticket(texts, language, &one, "2026-12-03 18:00 UTC").unwrap();
            for width in [ticket::Width::Cols42, ticket::Width::Cols32] {
                let decoded = ticket::decode(&ticket::escpos(&printed, width)).unwrap();
                assert_eq!(decoded.qr, [one[0].link.clone().unwrap()], "{language}");
            }
        }
        // Several accounts: the digest, grouped by platform.
        let many: Vec<Notice> = (0..3).map(|_| notice(outcomes[0], 2)).collect();
        let digest = compose::email(texts, language, &many, 72).unwrap();
        assert!(
            digest.subject.contains('3'),
            "{language}: {}",
            digest.subject
        );
        assert_eq!(
            digest.html.matches("<h2").count(),
            1,
            "one platform, one group"
        );
    }
}

#[test]
fn html_escapes_what_it_inserts() {
    let texts = Texts::embedded();
    let mut evil = notice(Some(Outcome::UnrecognizedPage), 1);
    evil.stores[0].location = "<script>alert(1)</script>".into();
    let email = compose::email(texts, "en", &[evil], 72).unwrap();
    assert!(!email.html.contains("<script>"));
    assert!(email.text.contains("<script>"), "plain text stays as it is");
}

/// GSM-7 basic characters (one segment: 160 of them).
fn gsm7(text: &str) -> bool {
    const BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
    text.chars().all(|c| BASIC.contains(c))
}

#[test]
fn an_english_sms_for_one_store_fits_one_segment() {
    let texts = Texts::embedded();
    let one = [notice(
        Some(Outcome::InvalidCredentials(
            crate::outcome::InvalidCredentials::WrongPassword,
        )),
        1,
    )];
    let sms = compose::sms(texts, "en", &one, None).unwrap();
    assert!(gsm7(&sms), "{sms}");
    assert!(
        sms.chars().count() <= 160,
        "{} characters: {sms}",
        sms.chars().count()
    );
}
