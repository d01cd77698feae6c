//! Driving a scenario account through its fake portal in a real browser: straight through the
//! engine (the browser tests), or through the queue and a worker as the dashboard would (the
//! demo). Both talk to the same [`SimulatedMerchant`].

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use secrecy::SecretString;

use super::merchant::{MerchantAnswer, SimulatedMerchant};
use super::script::{Delivery, ScenarioCard};
use super::Sandbox;
use crate::browser::Browser;
use crate::codes::{merchant_codes, AccountCodes, OneCode, TotpSource};
use crate::engine::pairing::{pair_in_new_session, PairingError, PairingOptions, PairingReport};
use crate::outcome::Outcome;
use crate::provider::Registry;
use crate::queue::{AccountSecrets, JobKind, JobState, NewAccount, Queue};
use crate::secret::Credentials;

fn credentials(card: &ScenarioCard) -> Credentials {
    Credentials {
        username: card.username.clone(),
        password: SecretString::from(card.password.clone()),
    }
}

fn totp_secret(card: &ScenarioCard) -> Option<SecretString> {
    match (card.delivery, &card.totp_secret) {
        (Some(Delivery::Totp), Some(secret)) => Some(SecretString::from(secret.clone())),
        _ => None,
    }
}

/// Drives one scenario account through its portal in a fresh browser session, with the code
/// sources the scenario calls for: its TOTP secret, the merchant, or nothing at all. `sandbox_base`
/// is where `sandbox` is served (`http://HOST:PORT`).
pub async fn run_card(
    browser: &Browser,
    registry: &Registry,
    sandbox: &Arc<Sandbox>,
    card: &ScenarioCard,
    sandbox_base: &str,
) -> Result<PairingReport, PairingError> {
    let spec = registry
        .get(&card.provider)
        .expect("scenario of a supported provider");
    let credentials = credentials(card);
    let mut merchant = SimulatedMerchant::for_card(card, sandbox.clone());
    let mut options = PairingOptions {
        portal_hosts: sandbox.portal_hosts(sandbox_base),
        ..PairingOptions::default()
    };
    if merchant.never_answers() {
        options.code_wait = Duration::from_secs(2);
    }
    if card.delivery.is_none() {
        // No fresh codes: the one code the scenario was given, typed when asked.
        let code = match merchant.answer() {
            MerchantAnswer::Types(code) => Some(SecretString::from(code)),
            MerchantAnswer::NeverAnswers | MerchantAnswer::GivesUp => None,
        };
        return pair_in_new_session(browser, &spec, &credentials, &mut OneCode(code), &options)
            .await;
    }
    let mut codes = AccountCodes {
        totp: totp_secret(card).and_then(|secret| TotpSource::parse(&secret).ok()),
        ..AccountCodes::default()
    };
    if merchant.is_present() {
        let (channel, mut submitter) = merchant_codes();
        codes.merchant = Some(channel);
        tokio::spawn(async move {
            while submitter.wait_for_request().await.is_some() {
                match merchant.answer() {
                    // Present but never answering: the line stays open until the request expires.
                    MerchantAnswer::NeverAnswers => {}
                    MerchantAnswer::GivesUp => return,
                    MerchantAnswer::Types(code) => {
                        if submitter.submit(SecretString::from(code)).is_err() {
                            return;
                        }
                    }
                }
                submitter.wait_until_taken().await;
            }
        });
    }
    pair_in_new_session(browser, &spec, &credentials, &mut codes, &options).await
}

/// One scenario account through the queue, as the dashboard would: the account is created, a job
/// submitted, and the merchant answers the job's code requests through the queue. A merchant who
/// gives up cancels, and the portal's verdict on the last code is the result. Returns the outcome
/// and the pairing's time (the job's, from a worker's first hold to its end, when it reports none).
pub async fn run_card_through_queue(
    queue: &Queue,
    sandbox: &Arc<Sandbox>,
    card: &ScenarioCard,
) -> anyhow::Result<(Outcome, u64)> {
    const ORG: &str = "demo";
    let mut merchant = SimulatedMerchant::for_card(card, sandbox.clone());
    let account = queue
        .create_account(NewAccount {
            organisation: ORG.into(),
            provider: card.provider.clone(),
            secrets: AccountSecrets {
                credentials: credentials(card),
                totp: totp_secret(card),
                mailbox: None,
            },
            stores: Vec::new(),
        })
        .await?;
    let job = queue
        .submit(ORG, &account.id, JobKind::Pair, merchant.is_present())
        .await?
        .job;
    let mut answered = None;
    // When a worker first had the job: a job the merchant cancels reports no time of its own, and
    // the time it spent queued behind other scenarios is not the pairing's.
    let mut started: Option<std::time::Instant> = None;
    loop {
        let current = queue
            .job(ORG, &job.id)
            .await?
            .context("the scenario's job vanished")?;
        if current.state != JobState::Queued {
            started.get_or_insert_with(std::time::Instant::now);
        }
        let ms = current
            .result
            .as_ref()
            .and_then(|report| report.get("elapsed_ms"))
            .and_then(|ms| ms.as_u64())
            .unwrap_or_else(|| started.map_or(0, |at| at.elapsed().as_millis() as u64));
        if current.state.is_final() {
            let outcome = current.outcome.with_context(|| {
                current
                    .error
                    .clone()
                    .unwrap_or_else(|| format!("job {:?}", current.state))
            })?;
            return Ok((outcome, ms));
        }
        let fresh_ask =
            current.state == JobState::AwaitingCode && answered != Some(current.updated_at);
        if fresh_ask {
            match merchant.answer() {
                MerchantAnswer::NeverAnswers => {}
                MerchantAnswer::GivesUp => {
                    queue.cancel(ORG, &job.id).await?;
                    let verdict = current
                        .code_verdict
                        .context("asked for a code nobody has")?;
                    return Ok((verdict, ms));
                }
                MerchantAnswer::Types(code) => {
                    queue
                        .submit_code(ORG, &job.id, &SecretString::from(code))
                        .await?;
                }
            }
            answered = Some(current.updated_at);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
