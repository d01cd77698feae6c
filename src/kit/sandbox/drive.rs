//! Driving a scenario account through its fake portal in a real browser session.

use std::sync::Arc;

use super::script::{Delivery, ScenarioCard};
use super::Sandbox;
use crate::outcome::Outcome;
use crate::provider::Registry;

/// Drives one scenario account through its portal in a fresh browser session, with the code
/// sources the scenario calls for: its TOTP secret; the merchant typing the code the portal sent
/// (read from the sandbox, as from their phone), after a wrong one first if the scenario says so;
/// a merchant who never answers (`code_timeout`); or nothing at all.
pub async fn run_card(
    browser: &crate::browser::Browser,
    registry: &Registry,
    sandbox: &Arc<Sandbox>,
    card: &ScenarioCard,
    base_url: &str,
) -> Result<crate::engine::pairing::PairingReport, crate::engine::pairing::PairingError> {
    use crate::codes::{merchant_codes, AccountCodes, OneCode, TotpSource};
    use crate::engine::pairing::{pair_in_new_session, PairingOptions};
    use crate::outcome::TwoFactor;
    let spec = registry
        .get(&card.provider)
        .expect("scenario of a supported provider");
    let credentials = crate::secret::Credentials {
        username: card.username.clone(),
        password: secrecy::SecretString::from(card.password.clone()),
    };
    let mut options = PairingOptions {
        base_url: Some(base_url.to_string()),
        ..PairingOptions::default()
    };
    let silent_merchant = card.expected == Outcome::TwoFactor(TwoFactor::CodeTimeout);
    if silent_merchant {
        options.code_wait = std::time::Duration::from_secs(2);
    }
    let Some(delivery) = card.delivery else {
        let mut codes = OneCode(card.code.clone().map(secrecy::SecretString::from));
        return pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await;
    };
    let mut codes = AccountCodes::default();
    if let (Delivery::Totp, Some(secret)) = (delivery, &card.totp_secret) {
        codes.totp = TotpSource::parse(&secrecy::SecretString::from(secret.clone())).ok();
    }
    if card.supply_code || silent_merchant {
        let (merchant, mut submitter) = merchant_codes();
        codes.merchant = Some(merchant);
        let (sandbox, provider, username) = (
            sandbox.clone(),
            card.provider.clone(),
            card.username.clone(),
        );
        let mut first_wrong = card.wrong_code_first.clone();
        tokio::spawn(async move {
            while submitter.wait_for_request().await.is_some() {
                if silent_merchant {
                    // Present but never answering: keep the line open until the request expires.
                    submitter.wait_until_taken().await;
                    continue;
                }
                let code = first_wrong
                    .take()
                    .or_else(|| sandbox.issued_code(&provider, &username));
                let Some(code) = code else { return };
                if submitter.submit(secrecy::SecretString::from(code)).is_err() {
                    return;
                }
                submitter.wait_until_taken().await;
            }
        });
    }
    pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await
}
