//! The classifier on inline pages of a test portal.
use super::*;
use crate::outcome::{CodeChannel, InvalidCredentials, StoreState};
use crate::provider::PortalHosts;
use proptest::prelude::*;

pub const TEST_SPEC: &str = r##"
id = "testportal"
name = "Test Portal"
languages = ["en", "fr"]
support_url = "https://help.example.test"
entry = "web:/login"
[hosts]
web = "https://portal.example.test"
[[overlays]]
name = "cookie_banner"
present = ["#cookies"]
dismiss = "#cookies button"
[[pages]]
name = "login"
url = "^/login"
present = ["input[name=email]"]
actions = [{ fill = "input[name=email]", with = "username" }, { click = "button[type=submit]" }]
[[pages.signals]]
outcome = "invalid_credentials/wrong_password"
selector = ".error"
text = ["(?i)incorrect", "(?i)incorrects"]
[[pages]]
name = "code"
url = "^/verify"
present = ["input.digit"]
[pages.code]
inputs = "input.digit"
submit = "button"
channel = "email"
destination = ".dest"
channels = [{ channel = "sms", text = ["(?i)text message"] }]
[[pages]]
name = "home"
url = "^/home"
present = ["#stores"]
outcome = "paired"
[pages.stores]
item = "#stores li"
id = { attr = "data-id" }
name = { selector = ".name" }
[external_steps.store_not_found]
steps.en = ["Add the store to this account."]
[external_steps.restaurant_inactive]
steps.en = ["Ask the portal to reactivate the store."]
[external_steps.insufficient_role]
steps.en = ["Give this login the admin role."]
[external_steps.terms_not_accepted]
steps.en = ["Accept the terms in the portal."]
[external_steps.non_traditional_login]
steps.en = ["Set a password for this login."]
[external_steps.account_locked]
steps.en = ["Unlock the account with the portal's support."]
[external_steps.method_unsupported]
steps.en = ["Switch verification to a code."]
"##;

fn spec() -> ProviderSpec {
    ProviderSpec::parse("testportal.toml", TEST_SPEC).expect("test spec loads")
}

#[test]
fn hidden_elements_do_not_count() {
    let spec = spec();
    let html = r#"<html><body><div id=cookies hidden><button>ok</button></div><form><input name=email><p class=error style="display: none">Incorrect</p><button type=submit>Go</button></form></body></html>"#;
    let found = classify(
        &spec,
        "https://portal.example.test/login",
        html,
        &PortalHosts::real(),
    )
    .unwrap();
    assert_eq!(found.page, "login");
    assert!(found.overlays.is_empty());
    assert_eq!(found.outcome, None);
}

#[test]
fn signals_carry_the_portals_words() {
    let spec = spec();
    let html = r#"<html><body><div id=cookies><button>ok</button></div><input name=email><p class=error> Identifiants   incorrects </p></body></html>"#;
    let found = classify(
        &spec,
        "https://portal.example.test/login?next=/home",
        html,
        &PortalHosts::real(),
    )
    .unwrap();
    assert_eq!(found.overlays, vec!["cookie_banner"]);
    assert_eq!(
        found.outcome,
        Some(Outcome::InvalidCredentials(
            InvalidCredentials::WrongPassword
        ))
    );
    assert_eq!(
        found.raw_message.as_deref(),
        Some("Identifiants incorrects")
    );
}

#[test]
fn split_code_boxes_give_length_and_channel() {
    let spec = spec();
    let html = r#"<html><body><p>We sent a text message to <span class=dest>+1 ••• 34</span></p>
        <input class=digit><input class=digit><input class=digit><input class=digit><button>Go</button></body></html>"#;
    let found = classify(
        &spec,
        "https://portal.example.test/verify",
        html,
        &PortalHosts::real(),
    )
    .unwrap();
    let request = found.code_request.unwrap();
    assert_eq!(request.channel, CodeChannel::Sms);
    assert_eq!(request.code_length, Some(4));
    assert_eq!(request.destination.as_deref(), Some("+1 ••• 34"));
    assert_eq!(
        found.outcome,
        Some(Outcome::TwoFactor(crate::outcome::TwoFactor::CodeRequired))
    );
}

#[test]
fn zero_stores_is_never_paired() {
    let spec = spec();
    let with = r#"<html><body><ul id=stores><li data-id="s1"><b class=name>Pasta Bar</b></li><li data-id="s2" hidden><b class=name>Gone</b></li></ul></body></html>"#;
    let found = classify(
        &spec,
        "https://portal.example.test/home",
        with,
        &PortalHosts::real(),
    )
    .unwrap();
    assert_eq!(found.outcome, Some(Outcome::Paired));
    assert_eq!(found.stores.len(), 1);
    assert_eq!(found.stores[0].name, "Pasta Bar");
    let without = r#"<html><body><ul id=stores></ul></body></html>"#;
    let found = classify(
        &spec,
        "https://portal.example.test/home",
        without,
        &PortalHosts::real(),
    )
    .unwrap();
    assert_eq!(
        found.outcome,
        Some(Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound))
    );
}

#[test]
fn a_host_map_moves_the_portal_and_nothing_else() {
    let spec = spec();
    let html = r#"<html><body><input name=email></body></html>"#;
    let moved = PortalHosts::from_entries([
        "https://portal.example.test=http://127.0.0.1:8090/testportal/web",
    ])
    .unwrap();
    let found = classify(
        &spec,
        "http://127.0.0.1:8090/testportal/web/login",
        html,
        &moved,
    )
    .unwrap();
    assert_eq!(found.page, "login");
    // A page beside the mapped one is not the portal, and neither is the real host once moved.
    for elsewhere in [
        "http://127.0.0.1:8090/other/web/login",
        "https://portal.example.test/login",
    ] {
        let err = classify(&spec, elsewhere, html, &moved).unwrap_err();
        assert!(matches!(err, ClassifyError::NoMatch { .. }), "{elsewhere}");
    }
    assert_eq!(
        spec.entry_url(&moved),
        format!("http://127.0.0.1:8090/testportal/web{}", spec.entry_path)
    );
}

#[test]
fn two_matching_rules_are_an_error_not_a_guess() {
    let text = TEST_SPEC
        .replace(
            r##"present = ["#stores"]"##,
            r#"present = ["input[name=email]"]"#,
        )
        .replace(r#"url = "^/home""#, r#"url = "^/login""#);
    let spec = ProviderSpec::parse("testportal.toml", &text).unwrap();
    let html = r#"<html><body><input name=email></body></html>"#;
    let err = classify(
        &spec,
        "https://portal.example.test/login",
        html,
        &PortalHosts::real(),
    )
    .unwrap_err();
    assert!(
        matches!(err, ClassifyError::Ambiguous { ref rules, .. } if rules.len() == 2),
        "{err}"
    );
}

#[test]
fn bad_specs_name_file_field_and_problem() {
    let cases = [
        (
            TEST_SPEC.replace(
                r##"present = ["#cookies"]"##,
                r##"present = ["#cookies[["]"##,
            ),
            "overlays[0].present[0]",
            "invalid CSS selector",
        ),
        (
            TEST_SPEC.replace(r#""(?i)incorrects""#, r#""(?i)incorrects(""#),
            "pages[0] (login).signals[0].text[1]",
            "invalid regex",
        ),
        (
            TEST_SPEC.replace(
                "invalid_credentials/wrong_password",
                "invalid_credentials/wrong_pw",
            ),
            "",
            "unknown outcome",
        ),
        (
            TEST_SPEC.replace(
                r#"outcome = "paired""#,
                r#"outcome = "invalid_store_config/restaurant_inactive""#,
            ),
            "",
            "only a page that ends `paired` reads stores",
        ),
        (
            TEST_SPEC.replace(r#"entry = "web:/login""#, r#"entry = "nowhere:/login""#),
            "entry",
            "host_key",
        ),
    ];
    for (text, field, message) in cases {
        let err = ProviderSpec::parse("providers/testportal.toml", &text).unwrap_err();
        let shown = err.to_string();
        assert!(shown.starts_with("providers/testportal.toml: "), "{shown}");
        assert!(shown.contains(field) && shown.contains(message), "{shown}");
    }
}

/// A page of the test portal: `body` inside a login card, at `path`, served with `status`.
fn page(path: &str, body: &str) -> Classification {
    page_with_status(path, body, None)
}

fn page_with_status(path: &str, body: &str, status: Option<u16>) -> Classification {
    let snapshot = Snapshot::parse(
        &format!("https://portal.example.test{path}"),
        &format!("<html><head><title>Portal</title></head><body>{body}</body></html>"),
    )
    .with_status(status);
    classify_snapshot(&spec(), &snapshot, &PortalHosts::real())
        .expect("a rule or the engine recognises it")
}

const LOGIN: &str = r#"<form><input name=email><button type=submit>Go</button></form>"#;

fn outcome(text: &str) -> Option<Outcome> {
    text.parse().ok()
}

#[test]
fn precedence_most_protective_reading_wins() {
    // A lockout notice that also mentions repeated incorrect passwords is a lock.
    let found = page(
        "/login",
        &format!(
            r#"<div role=alert>After several incorrect password attempts your account has been locked.</div>{LOGIN}"#
        ),
    );
    assert_eq!(
        found.outcome,
        outcome("blocked_by_third_party/account_locked")
    );
    // A warning that it *will* be locked is still the wrong password.
    let found = page(
        "/login",
        &format!(
            r#"<div role=alert>Wrong password. Your account will be locked after 2 more attempts.</div>{LOGIN}"#
        ),
    );
    assert_eq!(found.outcome, outcome("invalid_credentials/wrong_password"));
    // A code dialog that refuses more codes, without the words "too many attempts", is a
    // rate limit, and keeps its code request.
    let found = page(
        "/verify",
        r#"<p>We sent a text message to <span class=dest>+1 ••• 34</span></p><div role=alert>You've reached the limit for verification codes. Try again in 30 minutes.</div><input class=digit><input class=digit><input class=digit><input class=digit><button>Go</button>"#,
    );
    assert_eq!(
        found.outcome,
        outcome("blocked_by_third_party/too_many_attempts")
    );
    assert_eq!(
        found.code_request.as_ref().map(|r| r.channel),
        Some(CodeChannel::Sms)
    );
}

#[test]
fn a_wrong_code_keeps_the_code_request() {
    let found = page(
        "/verify",
        r#"<p>We sent a text message to <span class=dest>+1 ••• 34</span></p><div class=toast role=status>That code isn't valid. Check it and try again.</div><input class=digit><input class=digit><input class=digit><input class=digit><button>Go</button>"#,
    );
    assert_eq!(found.outcome, outcome("two_factor/code_invalid"));
    let request = found
        .code_request
        .expect("the second ask needs its channel");
    assert_eq!(request.channel, CodeChannel::Sms);
    assert_eq!(request.destination.as_deref(), Some("+1 ••• 34"));
}

#[test]
fn messages_are_read_wherever_and_in_whatever_language_they_show() {
    let cases = [
        // A toast, a field hint, an aria-live region, other languages.
        (
            r#"<div class="toast-container"><div class=toast>Onjuist wachtwoord. Probeer het opnieuw.</div></div>"#,
            "invalid_credentials/wrong_password",
        ),
        (
            r#"<form><input name=email aria-invalid=true aria-describedby=h><p id=h>Kein Konto mit dieser E-Mail-Adresse gefunden.</p></form>"#,
            "invalid_credentials/unknown_account",
        ),
        (
            r#"<p aria-live=polite>Demasiados intentos. Inténtalo de nuevo más tarde.</p>"#,
            "blocked_by_third_party/too_many_attempts",
        ),
        (
            r#"<div role=alert>비밀번호가 일치하지 않습니다.</div>"#,
            "invalid_credentials/wrong_password",
        ),
        (
            r#"<div role=alert>كلمة المرور غير صحيحة</div>"#,
            "invalid_credentials/wrong_password",
        ),
    ];
    for (message, want) in cases {
        let found = page("/login", &format!("{message}{LOGIN}"));
        assert_eq!(found.outcome, outcome(want), "{message}");
    }
}

#[test]
fn an_error_nothing_explains_stops_the_pairing() {
    let found = page(
        "/login",
        &format!(
            r#"<div role=alert>Please confirm your identity with the device you used last time.</div>{LOGIN}"#
        ),
    );
    assert_eq!(found.outcome, Some(Outcome::UnrecognizedPage));
    assert!(found.raw_message.unwrap().contains("confirm your identity"));
    // An empty alert region, or a neutral message, is an ordinary step.
    assert_eq!(
        page("/login", &format!("<div role=alert></div>{LOGIN}")).outcome,
        None
    );
    assert_eq!(
        page(
            "/login",
            &format!("<div role=status>Please log in to continue.</div>{LOGIN}")
        )
        .outcome,
        None
    );
}

#[test]
fn vendor_walls_on_any_step() {
    let widgets = [
        r#"<iframe title="reCAPTCHA" src="https://www.google.com/recaptcha/api2/anchor?k=x"></iframe>"#,
        r#"<div class="h-captcha" data-sitekey="x"><iframe src="https://newassets.hcaptcha.com/captcha/v1/x/static/hcaptcha.html#frame=checkbox"></iframe></div>"#,
        r#"<div class="cf-turnstile" data-sitekey="x"></div>"#,
        r#"<div id="px-captcha"></div>"#,
    ];
    for widget in widgets {
        let found = page("/login", &format!("{LOGIN}{widget}"));
        assert_eq!(
            found.outcome,
            outcome("blocked_by_third_party/captcha"),
            "{widget}"
        );
    }
    // An invisible score-only reCAPTCHA is not a wall.
    let found = page(
        "/login",
        &format!(
            r#"{LOGIN}<script src="https://www.google.com/recaptcha/api.js?render=x"></script><div class="grecaptcha-badge"></div>"#
        ),
    );
    assert_eq!(found.outcome, None);
    // A bot-wall page no rule knows.
    let found = page_with_status(
        "/anything",
        r#"<div id="cf-wrapper"><div id="cf-error-details"><h1>Sorry, you have been blocked</h1></div></div>"#,
        Some(403),
    );
    assert_eq!(found.page, "wall:cloudflare_block");
    assert_eq!(
        found.outcome,
        outcome("blocked_by_third_party/bot_protection")
    );
}

#[test]
fn outages_from_any_layout_and_from_http_status() {
    // Inside the logged-in layout: no stores, a maintenance notice — not store_not_found.
    let found = page(
        "/home",
        r#"<nav>Home</nav><ul id=stores></ul><p>We're performing scheduled maintenance. Please check back soon.</p>"#,
    );
    assert_eq!(found.outcome, outcome("provider_unavailable/maintenance"));
    // A standalone page in Italian, and a bare 5xx.
    let found = page(
        "/oops",
        "<h1>Sito in manutenzione</h1><p>Torneremo presto.</p>",
    );
    assert_eq!(found.outcome, outcome("provider_unavailable/maintenance"));
    let found = page_with_status("/login", LOGIN, Some(502));
    assert_eq!(found.outcome, outcome("provider_unavailable/server_error"));
}

#[test]
fn store_state_from_structure() {
    let list = |a: &str, b: &str| {
        format!(
            r#"<ul id=stores><li data-id=s1><b class=name>Pasta Bar</b> <i>{a}</i></li><li data-id=s2><b class=name>Pizza Bar</b> <i>{b}</i></li></ul>"#
        )
    };
    let found = page("/home", &list("Inactive", "Deactivated"));
    assert_eq!(
        found.outcome,
        outcome("invalid_store_config/restaurant_inactive")
    );
    assert!(found.raw_message.unwrap().contains("Pasta Bar"));
    let found = page("/home", &list("Paused", "Open"));
    assert_eq!(found.outcome, Some(Outcome::Paired));
    let states: Vec<_> = found.stores.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        vec![Some(StoreState::Paused), Some(StoreState::Active)]
    );
    // A banner saying a store is inactive, with a negation, in Italian.
    let found = page(
        "/home",
        &format!(
            r#"<div class=banner>Il tuo sito non è attivo al momento.</div>{}"#,
            list("", "")
        ),
    );
    assert_eq!(
        found.outcome,
        outcome("invalid_store_config/restaurant_inactive")
    );
}

#[test]
fn consent_banners_and_noise_decide_nothing() {
    let found = page(
        "/login",
        &format!(
            r#"<div id=onetrust-banner-sdk class=banner><p>By clicking Accept you agree to our updated Terms and Conditions.</p></div><!-- build 42 --><script>var terms="accept";</script>{LOGIN}"#
        ),
    );
    assert_eq!(found.outcome, None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Garbage in: an error or a classification, never a panic.
    #[test]
    fn garbage_html_never_panics(html in ".{0,400}", url in "[a-z:/.?=#]{0,40}") {
        let _ = classify(&spec(), &url, &html, &PortalHosts::real());
    }

    #[test]
    fn tag_soup_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("<input name=email>".to_string()), Just("<div hidden>".to_string()), Just("</div>".to_string()),
        Just("<ul id=stores>".to_string()), Just("<li data-id=x>".to_string()), Just("<p class=error>incorrect".to_string()),
        Just("<script>".to_string()), Just("<!--".to_string()), Just("<input class=digit maxlength=999999999999999999999>".to_string()),
        "[^<>]{0,20}",
    ], 0..40)) {
        let html = parts.concat();
        for url in ["https://portal.example.test/login", "https://portal.example.test/home", "https://portal.example.test/verify"] {
            let _ = classify(&spec(), url, &html, &PortalHosts::real());
        }
    }
}
