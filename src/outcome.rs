//! The closed outcome taxonomy and the one table that decides what follows each outcome.
//!
//! Adapters only say what they saw (an [`Outcome`]); [`Outcome::decision`] alone decides what the
//! merchant is shown and what the queue does next.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use strum::IntoEnumIterator;

/// Every way a pairing can end: `{"category": ..., "reason": ...}` on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "category", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Paired,
    InvalidCredentials(InvalidCredentials),
    TwoFactor(TwoFactor),
    BlockedByThirdParty(Blocked),
    InvalidStoreConfig(StoreConfig),
    ProviderUnavailable(Unavailable),
    UnrecognizedPage,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum InvalidCredentials {
    WrongPassword,
    UnknownAccount,
    PasswordExpired,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum TwoFactor {
    CodeRequired,
    CodeInvalid,
    CodeExpired,
    CodeTimeout,
    /// Push approval or a hardware key: nothing we can type.
    MethodUnsupported,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Blocked {
    Captcha,
    /// Cloudflare / PerimeterX / Akamai walls.
    BotProtection,
    TooManyAttempts,
    AccountLocked,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StoreConfig {
    RestaurantInactive,
    /// The account signs in through Google/Apple/phone instead of email + password.
    NonTraditionalLogin,
    StoreNotFound,
    InsufficientRole,
    TermsNotAccepted,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumIter,
    strum::AsRefStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Unavailable {
    Maintenance,
    ServerError,
    Timeout,
}

/// How the portal delivers a verification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CodeChannel {
    Email,
    Sms,
    AuthenticatorApp,
}

/// What a code page told us: enough for the dashboard to say "enter the code we sent to j***@x.com".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CodeRequest {
    pub channel: CodeChannel,
    /// The masked destination exactly as the portal shows it.
    pub destination: Option<String>,
    pub code_length: Option<usize>,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A store found in the portal after login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Store {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub brand: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The status, understood: from the status text in any language, or the item's own words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<StoreState>,
}

/// A store's state on the platform, normalised from whatever the portal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::AsRefStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StoreState {
    /// Takes orders (or would, within its hours).
    Active,
    /// Deactivated, suspended, offboarded: never `paired` while the store is expected.
    Inactive,
    /// Paused by the merchant (busy, a break): a normal state of a working store.
    Paused,
    /// Outside opening hours or offline: a normal state of a working store.
    Closed,
    /// A status the lexicon does not know.
    Unknown,
}

/// What the dashboard offers the merchant.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::AsRefStr,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Resolution {
    /// Nothing to repair.
    None,
    /// Re-enter credentials and, if asked, the verification code.
    Reconnect,
    /// Change something in the provider's own portal or with its support, then re-check.
    ExternalSteps,
    RetryLater,
    ContactSupport,
}

/// What the queue does with the job next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::AsRefStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum QueueAction {
    Done,
    /// Keep the job (and its browser) waiting for the merchant.
    WaitForUser,
    /// Transient: retry automatically with capped exponential backoff.
    RetryWithBackoff,
    /// Final failure: no automatic attempt until something changes (credentials, the merchant's click).
    NeverRetry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub resolution: Resolution,
    pub queue: QueueAction,
    /// The portal refused this login: it counts against the account's failed-login budget, as it
    /// counts towards the platform's own lockout.
    pub failed_login: bool,
    /// What this outcome proves about a password the run sent. Until a verdict proves it accepted,
    /// a sent password counts as a possible failed login.
    pub password: PasswordVerdict,
}

/// What a run's outcome says about the password it sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::AsRefStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum PasswordVerdict {
    /// The portal counted it as a failed login.
    Failed,
    /// The portal got past the password (a code page, the store list, a store-level problem).
    Accepted,
    /// Nothing proves either (a wall, an outage, a page we do not know): it still counts.
    Unknown,
}

impl Outcome {
    /// THE decision table. Exhaustive by construction: a new variant does not compile until it is
    /// placed here.
    pub fn decision(self) -> Decision {
        use QueueAction::*;
        use Resolution::*;
        let (resolution, queue) = match self {
            Outcome::Paired => (None, Done),
            // Retrying a wrong password is how accounts get locked: only new credentials unlock it.
            Outcome::InvalidCredentials(_) => (Reconnect, NeverRetry),
            Outcome::TwoFactor(TwoFactor::CodeRequired | TwoFactor::CodeInvalid) => {
                (Reconnect, WaitForUser)
            }
            Outcome::TwoFactor(TwoFactor::CodeExpired | TwoFactor::CodeTimeout) => {
                (Reconnect, NeverRetry)
            }
            Outcome::TwoFactor(TwoFactor::MethodUnsupported) => (ExternalSteps, NeverRetry),
            // A wall is lifted by a fresh, human-paced login, not by hammering it.
            Outcome::BlockedByThirdParty(Blocked::Captcha | Blocked::BotProtection) => {
                (Reconnect, NeverRetry)
            }
            Outcome::BlockedByThirdParty(Blocked::TooManyAttempts) => (RetryLater, NeverRetry),
            Outcome::BlockedByThirdParty(Blocked::AccountLocked) => (ExternalSteps, NeverRetry),
            Outcome::InvalidStoreConfig(_) => (ExternalSteps, NeverRetry),
            Outcome::ProviderUnavailable(_) => (RetryLater, RetryWithBackoff),
            // Our adapter is out of date: nothing the merchant can do.
            Outcome::UnrecognizedPage => (ContactSupport, NeverRetry),
        };
        let failed_login = matches!(
            self,
            Outcome::InvalidCredentials(_)
                | Outcome::BlockedByThirdParty(Blocked::TooManyAttempts | Blocked::AccountLocked)
        );
        // Only pages a portal shows past the password check prove the password was accepted; a
        // wall or an outage after the submit may or may not have counted it.
        let password = match self {
            _ if failed_login => PasswordVerdict::Failed,
            Outcome::Paired
            | Outcome::TwoFactor(_)
            | Outcome::InvalidStoreConfig(
                StoreConfig::RestaurantInactive
                | StoreConfig::StoreNotFound
                | StoreConfig::InsufficientRole
                | StoreConfig::TermsNotAccepted,
            ) => PasswordVerdict::Accepted,
            Outcome::InvalidStoreConfig(StoreConfig::NonTraditionalLogin)
            | Outcome::BlockedByThirdParty(_)
            | Outcome::ProviderUnavailable(_)
            | Outcome::UnrecognizedPage
            | Outcome::InvalidCredentials(_) => PasswordVerdict::Unknown,
        };
        Decision {
            resolution,
            queue,
            failed_login,
            password,
        }
    }

    /// Where this outcome stands when a page says several things at once: lower wins. THE
    /// precedence order, most protective first ([`PRECEDENCE`]).
    pub fn precedence(self) -> usize {
        PRECEDENCE
            .iter()
            .position(|tier| tier.contains(&self))
            .expect("PRECEDENCE lists every outcome (tested)")
    }

    /// Whether re-entering credentials (and a code) can repair this outcome.
    pub fn is_reauth_repairable(self) -> bool {
        self.decision().resolution == Resolution::Reconnect
    }

    pub fn category(self) -> &'static str {
        match self {
            Outcome::Paired => "paired",
            Outcome::InvalidCredentials(_) => "invalid_credentials",
            Outcome::TwoFactor(_) => "two_factor",
            Outcome::BlockedByThirdParty(_) => "blocked_by_third_party",
            Outcome::InvalidStoreConfig(_) => "invalid_store_config",
            Outcome::ProviderUnavailable(_) => "provider_unavailable",
            Outcome::UnrecognizedPage => "unrecognized_page",
        }
    }

    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Paired | Outcome::UnrecognizedPage => Option::None,
            Outcome::InvalidCredentials(r) => Some(r.as_ref()),
            Outcome::TwoFactor(r) => Some(r.as_ref()),
            Outcome::BlockedByThirdParty(r) => Some(r.as_ref()),
            Outcome::InvalidStoreConfig(r) => Some(r.as_ref()),
            Outcome::ProviderUnavailable(r) => Some(r.as_ref()),
        }
    }

    /// Every outcome there is, for tests, docs and the sandbox checklist.
    pub fn all() -> Vec<Outcome> {
        let mut all = vec![Outcome::Paired, Outcome::UnrecognizedPage];
        all.extend(InvalidCredentials::iter().map(Outcome::InvalidCredentials));
        all.extend(TwoFactor::iter().map(Outcome::TwoFactor));
        all.extend(Blocked::iter().map(Outcome::BlockedByThirdParty));
        all.extend(StoreConfig::iter().map(Outcome::InvalidStoreConfig));
        all.extend(Unavailable::iter().map(Outcome::ProviderUnavailable));
        all
    }
}

/// When one page says several things (a lockout notice that also mentions wrong passwords, a
/// code dialog that blocks after too many codes, a maintenance notice inside the logged-in
/// layout), the most protective reading wins: the one whose decision does the least harm if the
/// others were true. A lock beats a rate limit (neither is retried, the lock needs the merchant);
/// a rate limit beats a wall; a wall beats an outage (an outage is retried, a wall must not be
/// hammered); an outage beats code and credential errors (a transient failure is not the
/// merchant's fault, and is never sent to Reconnect); an unreadable error beats code and credential
/// errors (we do not know it is only that); code errors beat credential errors (a code page is past
/// the password); credentials beat store configuration; everything beats `paired`.
pub const PRECEDENCE: &[&[Outcome]] = &[
    &[Outcome::BlockedByThirdParty(Blocked::AccountLocked)],
    &[Outcome::BlockedByThirdParty(Blocked::TooManyAttempts)],
    // One tier: a wall and a captcha lead to the same decision; within it the strongest evidence
    // names it (a vendor's widget or page before a sentence about "unusual activity").
    &[
        Outcome::BlockedByThirdParty(Blocked::BotProtection),
        Outcome::BlockedByThirdParty(Blocked::Captcha),
    ],
    &[Outcome::ProviderUnavailable(Unavailable::Maintenance)],
    &[Outcome::ProviderUnavailable(Unavailable::ServerError)],
    &[Outcome::ProviderUnavailable(Unavailable::Timeout)],
    &[Outcome::UnrecognizedPage],
    &[Outcome::TwoFactor(TwoFactor::CodeExpired)],
    &[Outcome::TwoFactor(TwoFactor::CodeInvalid)],
    &[Outcome::TwoFactor(TwoFactor::CodeTimeout)],
    &[Outcome::TwoFactor(TwoFactor::CodeRequired)],
    &[Outcome::TwoFactor(TwoFactor::MethodUnsupported)],
    &[Outcome::InvalidStoreConfig(
        StoreConfig::NonTraditionalLogin,
    )],
    &[Outcome::InvalidCredentials(
        InvalidCredentials::PasswordExpired,
    )],
    &[Outcome::InvalidCredentials(
        InvalidCredentials::UnknownAccount,
    )],
    &[Outcome::InvalidCredentials(
        InvalidCredentials::WrongPassword,
    )],
    &[Outcome::InvalidStoreConfig(StoreConfig::TermsNotAccepted)],
    &[Outcome::InvalidStoreConfig(StoreConfig::InsufficientRole)],
    &[Outcome::InvalidStoreConfig(StoreConfig::RestaurantInactive)],
    &[Outcome::InvalidStoreConfig(StoreConfig::StoreNotFound)],
    &[Outcome::Paired],
];

/// The decision table as Markdown (the README embeds it; a test keeps them equal).
pub fn decision_table_markdown() -> String {
    let mut out = String::from(
        "| outcome | merchant is offered | queue | failed login | a sent password |\n|---|---|---|---|---|\n",
    );
    for outcome in Outcome::all() {
        let d = outcome.decision();
        out.push_str(&format!(
            "| `{outcome}` | {} | {} | {} | {} |\n",
            d.resolution.as_ref(),
            d.queue.as_ref(),
            if d.failed_login { "yes" } else { "no" },
            d.password.as_ref()
        ));
    }
    out
}

/// `category/reason`, the compact form used in provider specs and fixtures.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reason() {
            Some(reason) => write!(f, "{}/{}", self.category(), reason),
            None => f.write_str(self.category()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown outcome `{0}`: expected `category/reason`, e.g. `invalid_credentials/wrong_password` (see `pairing-worker outcomes`)")]
pub struct UnknownOutcome(pub String);

impl FromStr for Outcome {
    type Err = UnknownOutcome;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Outcome::all()
            .into_iter()
            .find(|outcome| outcome.to_string() == text)
            .ok_or_else(|| UnknownOutcome(text.to_string()))
    }
}

/// Lets specs and fixtures write outcomes as `"category/reason"` strings.
pub mod compact {
    use super::Outcome;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(outcome: &Outcome, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(outcome)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Outcome, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }

    /// The OpenAPI schema of the compact form: one of every outcome there is.
    pub fn schema() -> utoipa::openapi::Object {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .description(Some(
                "`category/reason` from the outcome taxonomy (`pairing-worker outcomes`)",
            ))
            .enum_values(Some(Outcome::all().iter().map(|o| o.to_string())))
            .examples([serde_json::json!("two_factor/code_required")])
            .build()
    }

    pub mod option {
        use super::Outcome;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(
            outcome: &Option<Outcome>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match outcome {
                Some(outcome) => s.collect_str(outcome),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Outcome>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| text.parse().map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn precedence_lists_every_outcome_once_most_protective_first() {
        let listed: Vec<Outcome> = PRECEDENCE.iter().flat_map(|t| t.iter().copied()).collect();
        let mut all = Outcome::all();
        assert_eq!(listed.len(), all.len(), "every outcome once");
        all.retain(|o| !listed.contains(o));
        assert!(all.is_empty(), "missing from PRECEDENCE: {all:?}");
        let rank = |o: &str| o.parse::<Outcome>().unwrap().precedence();
        // The order the issue asks for: lock > rate limit > wall > outage > code > credentials.
        let chain = [
            "blocked_by_third_party/account_locked",
            "blocked_by_third_party/too_many_attempts",
            "blocked_by_third_party/captcha",
            "provider_unavailable/maintenance",
            "provider_unavailable/server_error",
            "two_factor/code_expired",
            "two_factor/code_invalid",
            "invalid_credentials/wrong_password",
            "invalid_store_config/restaurant_inactive",
            "paired",
        ];
        for pair in chain.windows(2) {
            assert!(
                rank(pair[0]) < rank(pair[1]),
                "{} must beat {}",
                pair[0],
                pair[1]
            );
        }
        assert_eq!(
            rank("blocked_by_third_party/captcha"),
            rank("blocked_by_third_party/bot_protection")
        );
    }

    #[test]
    fn decision_table_is_total_and_consistent() {
        let all = Outcome::all();
        // 20 named reasons in five categories, plus `paired` and `unrecognized_page`.
        assert_eq!(all.len(), 22);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len());
        for outcome in all {
            let decision = outcome.decision();
            match outcome {
                Outcome::Paired => {
                    assert_eq!(decision.queue, QueueAction::Done);
                    assert_eq!(decision.resolution, Resolution::None);
                }
                Outcome::InvalidCredentials(_) => {
                    assert_eq!(decision.resolution, Resolution::Reconnect);
                    assert_eq!(decision.queue, QueueAction::NeverRetry, "{outcome}");
                }
                Outcome::InvalidStoreConfig(_) => {
                    assert_eq!(decision.resolution, Resolution::ExternalSteps)
                }
                Outcome::ProviderUnavailable(_) => {
                    assert_eq!(decision.queue, QueueAction::RetryWithBackoff)
                }
                _ => assert_ne!(decision.resolution, Resolution::None, "{outcome}"),
            }
            // Only transient outcomes may ever be retried without a human.
            if decision.queue == QueueAction::RetryWithBackoff {
                assert!(
                    matches!(outcome, Outcome::ProviderUnavailable(_)),
                    "{outcome}"
                );
            }
            // A failed login is exactly a `failed` password verdict; a retried outcome never
            // proves a sent password was accepted (the retry would then not count it).
            assert_eq!(
                decision.failed_login,
                decision.password == PasswordVerdict::Failed,
                "{outcome}"
            );
            if decision.queue == QueueAction::RetryWithBackoff {
                assert_eq!(decision.password, PasswordVerdict::Unknown, "{outcome}");
            }
        }
    }

    #[test]
    fn wire_form_is_category_and_reason() {
        let outcome = Outcome::TwoFactor(TwoFactor::CodeRequired);
        let json = serde_json::to_value(outcome).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"category": "two_factor", "reason": "code_required"})
        );
        assert_eq!(
            serde_json::to_value(Outcome::Paired).unwrap(),
            serde_json::json!({"category": "paired"})
        );
        for outcome in Outcome::all() {
            let back: Outcome =
                serde_json::from_value(serde_json::to_value(outcome).unwrap()).unwrap();
            assert_eq!(back, outcome);
            assert_eq!(outcome.to_string().parse::<Outcome>().unwrap(), outcome);
        }
    }

    #[test]
    fn unknown_compact_outcome_is_a_clear_error() {
        let err = "invalid_credentials/wrong_pasword"
            .parse::<Outcome>()
            .unwrap_err();
        assert!(err.to_string().contains("wrong_pasword"));
    }
}
