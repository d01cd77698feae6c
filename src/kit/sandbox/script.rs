//! `fixtures/<provider>/sandbox.toml`: which recorded page the fake portal shows when, and the
//! scenario accounts that drive it.

use serde::{Deserialize, Serialize};

use crate::kit::fixtures::Fixture;
use crate::outcome::{self, Outcome};
use crate::provider::FileTree;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxScript {
    pub username_field: String,
    pub password_field: String,
    #[serde(default = "default_code_field")]
    pub code_field: String,
    pub entry: String,
    pub wrong_password: String,
    #[serde(default)]
    pub wrong_code: Option<String>,
    #[serde(default)]
    pub email: Option<EmailTemplate>,
    /// GETs the portal answers with a redirect (an app that sends the browser to its sign-in host).
    #[serde(default)]
    pub redirects: Vec<Redirect>,
    /// Hops between hosts after a POST (the sign-in host handing back to the app).
    #[serde(default)]
    pub handoffs: Vec<Handoff>,
    pub scenarios: Vec<Scenario>,
}

/// `GET from` answers `302 to`. Both are `host_key:/path`; `to` is a template (see [`Handoff`]).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    pub from: String,
    pub to: String,
}

/// After a POST whose next page is on `to_host` while the session was on `from_host`, the browser
/// goes through `via` first (an OIDC or Keycloak callback), which then redirects to that page.
/// In `to` and `via`, `{random}` is a fresh nonce and `{query.NAME}` the query parameter `NAME` the
/// session arrived with on the entry page (the `state` an OIDC login must hand back unchanged).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handoff {
    pub from_host: String,
    pub to_host: String,
    pub via: String,
}

/// `host_key:/path?query` → (`host_key`, `/path?query`).
pub fn split_host_path(target: &str) -> Option<(&str, &str)> {
    let (host, path) = target.split_once(':')?;
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (valid_host && path.starts_with('/')).then_some((host, path))
}

fn default_code_field() -> String {
    "code".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub typed_password: Option<String>,
    /// The page this account gets for a wrong password, when it is not the portal's usual one
    /// (the last warning before a lockout, another language).
    #[serde(default)]
    pub wrong_password: Option<String>,
    #[serde(default)]
    pub typed_code: Option<String>,
    #[serde(default)]
    pub supply_code: bool,
    #[serde(default)]
    pub unknown: bool,
    pub steps: Vec<String>,
    #[serde(with = "outcome::compact")]
    pub expected: Outcome,
    /// How the portal sends its code: a fresh one per login attempt by email (appended to a real
    /// IMAP mailbox when the sandbox has one) or SMS (shown to the test), or a TOTP secret. Without
    /// it, `code` is the one fixed code.
    #[serde(default)]
    pub delivery: Option<Delivery>,
    /// Base32 secret for `delivery = "totp"`.
    #[serde(default)]
    pub totp_secret: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    Email,
    Sms,
    Totp,
}

/// The code email a provider sends (`[email]` in sandbox.toml); `{code}` is replaced.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailTemplate {
    pub from: String,
    pub subject: String,
    pub html: String,
}

/// One line of `sandbox --scenarios --json`: everything a client needs to drive the scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioCard {
    pub provider: String,
    pub scenario: String,
    pub description: String,
    pub username: String,
    pub password: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Fresh codes: where the client finds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub totp_secret: Option<String>,
    /// With a delivery: a wrong code typed first (then the right one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wrong_code_first: Option<String>,
    pub supply_code: bool,
    pub expected: Outcome,
}

impl Scenario {
    pub fn card(&self, provider: &str) -> ScenarioCard {
        ScenarioCard {
            provider: provider.to_string(),
            scenario: self.name.clone(),
            description: self.description.clone(),
            username: self.username.clone(),
            password: self
                .typed_password
                .clone()
                .unwrap_or_else(|| self.password.clone()),
            code: match (self.supply_code, self.delivery) {
                (true, None) => self.typed_code.clone().or_else(|| self.code.clone()),
                _ => None,
            },
            delivery: self.delivery,
            totp_secret: self.totp_secret.clone(),
            wrong_code_first: self.delivery.and(self.typed_code.clone()),
            supply_code: self.supply_code,
            expected: self.expected,
        }
    }
}

impl SandboxScript {
    /// Loads and cross-checks a provider's script against its recorded pages.
    pub fn load(
        files: &FileTree,
        provider: &str,
        pages: &[Fixture],
    ) -> Result<Option<SandboxScript>, String> {
        let path = format!("{provider}/sandbox.toml");
        let Some(text) = files.read(&path) else {
            return Ok(None);
        };
        let script: SandboxScript =
            toml::from_str(&text).map_err(|e| format!("{}: {e}", files.display(&path)))?;
        let known = |case: &str| pages.iter().any(|p| p.case == case);
        let mut referenced = vec![
            ("entry", &script.entry),
            ("wrong_password", &script.wrong_password),
        ];
        if let Some(wrong_code) = &script.wrong_code {
            referenced.push(("wrong_code", wrong_code));
        }
        for scenario in &script.scenarios {
            for step in &scenario.steps {
                referenced.push(("steps", step));
            }
            if let Some(page) = &scenario.wrong_password {
                referenced.push(("wrong_password", page));
            }
        }
        for (field, case) in referenced {
            if !known(case) {
                return Err(format!(
                    "{}: {field}: no recorded page `{case}` in {provider}/",
                    files.display(&path)
                ));
            }
        }
        for scenario in &script.scenarios {
            if scenario.delivery == Some(Delivery::Totp) && scenario.totp_secret.is_none() {
                return Err(format!(
                    "{}: scenario `{}` delivers by TOTP but has no totp_secret",
                    files.display(&path),
                    scenario.name
                ));
            }
            if scenario.delivery == Some(Delivery::Email) && script.email.is_none() {
                return Err(format!(
                    "{}: scenario `{}` delivers by email but there is no [email] template",
                    files.display(&path),
                    scenario.name
                ));
            }
        }
        let targets = script
            .redirects
            .iter()
            .flat_map(|r| [("redirects", &r.from), ("redirects", &r.to)])
            .chain(script.handoffs.iter().map(|h| ("handoffs", &h.via)));
        for (field, target) in targets {
            if split_host_path(target).is_none() {
                return Err(format!(
                    "{}: {field}: `{target}` must be `host_key:/path`",
                    files.display(&path)
                ));
            }
        }
        // The sandbox counts what locks accounts: a wrong-password scenario must type one.
        let wrong_password =
            Outcome::InvalidCredentials(outcome::InvalidCredentials::WrongPassword);
        if let Some(scenario) = script.scenarios.iter().find(|s| {
            s.expected == wrong_password
                && s.typed_password
                    .as_ref()
                    .is_none_or(|typed| *typed == s.password)
        }) {
            return Err(format!(
                "{}: scenario `{}` expects a wrong password but types the right one (set typed_password)",
                files.display(&path),
                scenario.name
            ));
        }
        if script.scenarios.iter().filter(|s| s.unknown).count() > 1 {
            return Err(format!(
                "{}: only one scenario may be `unknown = true`",
                files.display(&path)
            ));
        }
        let mut names: Vec<&str> = script
            .scenarios
            .iter()
            .map(|s| s.username.as_str())
            .collect();
        names.sort_unstable();
        if let Some(dup) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!(
                "{}: two scenarios use the username `{}`",
                files.display(&path),
                dup[0]
            ));
        }
        Ok(Some(script))
    }
}
