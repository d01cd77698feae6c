//! What the engine asks before it sends a password: the product records the submission durably
//! (it counts as a possible failed login from that moment) and may refuse it. Developer paths —
//! the `pair` command, sandbox scenario runs — send unguarded.

use std::future::Future;

/// Why a password was not sent.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the password was not sent: {reason}")]
pub struct Withheld {
    /// Said to the caller; never a secret.
    pub reason: String,
    /// `true`: nothing will change by retrying (the budget is spent, the credentials were
    /// rejected); `false`: the guard could not answer (its database), so a retry may.
    pub final_refusal: bool,
}

pub trait PasswordGuard: Send {
    /// Called once per password, just before the page carrying it is submitted. `Ok` means the
    /// submission is on record and the password may go.
    fn before_sending(&mut self) -> impl Future<Output = Result<(), Withheld>> + Send;
}

/// Sends every password: for tools a developer runs by hand.
pub struct Unguarded;

impl PasswordGuard for Unguarded {
    async fn before_sending(&mut self) -> Result<(), Withheld> {
        Ok(())
    }
}
