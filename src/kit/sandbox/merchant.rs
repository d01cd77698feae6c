//! The merchant a scenario card describes: the one person at the dashboard (or their phone) every
//! simulated run talks to, whether the run goes straight through the engine or through the queue.

use std::sync::Arc;

use super::script::ScenarioCard;
use super::Sandbox;
use crate::outcome::{Outcome, TwoFactor};

/// What the merchant does when the portal asks for a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MerchantAnswer {
    /// Types this code.
    Types(String),
    /// Sees the request and never answers (the request expires).
    NeverAnswers,
    /// Has no code left to type: gives up on the pairing.
    GivesUp,
}

/// Types the scenario's codes in order (a wrong one first if it says so, or the one code it was
/// given), then the code the portal really sent (read from the sandbox, as from their phone) when
/// the scenario has them supply it; or never answers at all.
pub struct SimulatedMerchant {
    /// Codes still to type, the next one last.
    scripted: Vec<String>,
    /// At the dashboard, answering code requests (the job is interactive).
    present: bool,
    reads_sent_codes: bool,
    silent: bool,
    sandbox: Arc<Sandbox>,
    provider: String,
    username: String,
}

impl SimulatedMerchant {
    pub fn for_card(card: &ScenarioCard, sandbox: Arc<Sandbox>) -> SimulatedMerchant {
        let mut scripted: Vec<String> = card
            .wrong_code_first
            .iter()
            .chain(&card.code)
            .cloned()
            .collect();
        scripted.reverse();
        let silent = card.expected == Outcome::TwoFactor(TwoFactor::CodeTimeout);
        SimulatedMerchant {
            scripted,
            present: card.code.is_some() || card.supply_code || silent,
            reads_sent_codes: card.delivery.is_some() && card.supply_code,
            silent,
            sandbox,
            provider: card.provider.clone(),
            username: card.username.clone(),
        }
    }

    /// Whether the merchant is at the dashboard to answer code requests at all (the job is
    /// interactive); otherwise codes come from an authenticator secret or a mailbox, or not at all.
    pub fn is_present(&self) -> bool {
        self.present
    }

    /// Whether the merchant sees requests and lets them expire (the scenario's code timeout).
    pub fn never_answers(&self) -> bool {
        self.silent
    }

    /// The merchant's answer to the next code request.
    pub fn answer(&mut self) -> MerchantAnswer {
        if self.silent {
            return MerchantAnswer::NeverAnswers;
        }
        let sent = || {
            self.reads_sent_codes
                .then(|| self.sandbox.issued_code(&self.provider, &self.username))
                .flatten()
        };
        match self.scripted.pop().or_else(sent) {
            Some(code) => MerchantAnswer::Types(code),
            None => MerchantAnswer::GivesUp,
        }
    }
}
