//! Verification codes: where they come from (an authenticator secret, the merchant's mailbox, the
//! merchant typing it), tried in that order for the channel the portal used.

pub mod mailbox;
pub mod merchant;
pub mod totp;

use std::future::Future;

use secrecy::SecretString;

use crate::outcome::{CodeChannel, CodeRequest, Outcome};
pub use mailbox::{EmailCodeRule, MailboxConfig, MailboxError, MailboxWatch};
pub use merchant::{
    check_code_shape, merchant_codes, CodeSubmitter, MerchantCodes, PendingCode, SubmitError,
};
pub use totp::{TotpError, TotpSource};

/// What a source answers when the portal asks for a code.
pub enum CodeAnswer {
    Code(SecretString),
    /// Nobody and nothing can give one (a background re-check): end now, reporting the request.
    NoSource,
    /// A source was waiting and the code did not come before the request expired.
    TimedOut,
}

#[derive(Debug, thiserror::Error)]
pub enum CodeSourceError {
    #[error(transparent)]
    Mailbox(#[from] MailboxError),
}

/// Where verification codes come from for one pairing.
pub trait CodeSource: Send {
    /// `previous` is the portal's verdict on the last code (`code_invalid`, `code_expired`).
    fn code(
        &mut self,
        request: &CodeRequest,
        previous: Option<Outcome>,
    ) -> impl Future<Output = Result<CodeAnswer, CodeSourceError>> + Send;
}

/// No source at all: a code page ends the pairing at once.
pub struct NoCodes;

impl CodeSource for NoCodes {
    async fn code(
        &mut self,
        _: &CodeRequest,
        _: Option<Outcome>,
    ) -> Result<CodeAnswer, CodeSourceError> {
        Ok(CodeAnswer::NoSource)
    }
}

/// A code known before the pairing starts (a piped code, a scripted scenario): given once.
pub struct OneCode(pub Option<SecretString>);

impl CodeSource for OneCode {
    async fn code(
        &mut self,
        _: &CodeRequest,
        _: Option<Outcome>,
    ) -> Result<CodeAnswer, CodeSourceError> {
        Ok(self.0.take().map_or(CodeAnswer::NoSource, CodeAnswer::Code))
    }
}

/// An account's configured sources. Automatic sources answer only the channel they serve and only
/// the first request (after a rejected code a human decides); the merchant answers anything.
#[derive(Default)]
pub struct AccountCodes {
    pub totp: Option<TotpSource>,
    pub mailbox: Option<(MailboxWatch, EmailCodeRule)>,
    pub merchant: Option<MerchantCodes>,
}

impl AccountCodes {
    /// Closes the mailbox connection.
    pub async fn close(self) {
        if let Some((watch, _)) = self.mailbox {
            watch.close().await;
        }
    }
}

impl CodeSource for AccountCodes {
    async fn code(
        &mut self,
        request: &CodeRequest,
        previous: Option<Outcome>,
    ) -> Result<CodeAnswer, CodeSourceError> {
        let wait = request
            .expires_at
            .and_then(|at| (at - chrono::Utc::now()).to_std().ok())
            .unwrap_or(std::time::Duration::ZERO);
        if previous.is_none() {
            match (request.channel, &self.totp, &mut self.mailbox) {
                (CodeChannel::AuthenticatorApp, Some(totp), _) => {
                    return Ok(CodeAnswer::Code(totp.code().await))
                }
                (CodeChannel::Email, _, Some((watch, rule))) => {
                    return Ok(match watch.wait_for_code(rule, wait).await? {
                        Some(code) => CodeAnswer::Code(code),
                        None => CodeAnswer::TimedOut,
                    })
                }
                _ => {}
            }
        }
        match &mut self.merchant {
            Some(merchant) => Ok(merchant.wait(request, previous, wait).await),
            None => Ok(CodeAnswer::NoSource),
        }
    }
}
