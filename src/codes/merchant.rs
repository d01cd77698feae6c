//! The merchant types the code: the pairing waits, with its browser open, until a code is submitted
//! through the [`CodeSubmitter`] or the request expires.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{mpsc, watch};

use super::CodeAnswer;
use crate::outcome::{CodeRequest, Outcome};

/// What the pairing is waiting on: the portal's request, and its verdict on the previous code
/// (`code_invalid`, `code_expired`) when this is a second ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCode {
    pub request: CodeRequest,
    pub previous: Option<Outcome>,
}

/// The waiting side, owned by the pairing.
pub struct MerchantCodes {
    codes: mpsc::Receiver<SecretString>,
    awaiting: watch::Sender<Option<PendingCode>>,
}

/// The submitting side (the CLI prompt, the HTTP API).
#[derive(Clone)]
pub struct CodeSubmitter {
    codes: mpsc::Sender<SecretString>,
    awaiting: watch::Receiver<Option<PendingCode>>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubmitError {
    #[error("the pairing is not waiting for a code")]
    NotAwaiting,
    #[error("the code must be {expected} digits")]
    WrongShape { expected: String },
    #[error("the pairing has ended")]
    Ended,
}

pub fn merchant_codes() -> (MerchantCodes, CodeSubmitter) {
    let (tx, rx) = mpsc::channel(1);
    let (state_tx, state_rx) = watch::channel(None);
    (
        MerchantCodes {
            codes: rx,
            awaiting: state_tx,
        },
        CodeSubmitter {
            codes: tx,
            awaiting: state_rx,
        },
    )
}

impl MerchantCodes {
    pub(super) async fn wait(
        &mut self,
        request: &CodeRequest,
        previous: Option<Outcome>,
        wait: Duration,
    ) -> CodeAnswer {
        // A code typed before this request belongs to an older one: drop it.
        while self.codes.try_recv().is_ok() {}
        self.awaiting.send_replace(Some(PendingCode {
            request: request.clone(),
            previous,
        }));
        let answer = match tokio::time::timeout(wait, self.codes.recv()).await {
            Ok(Some(code)) => CodeAnswer::Code(code),
            Ok(None) => CodeAnswer::NoSource,
            Err(_) => CodeAnswer::TimedOut,
        };
        self.awaiting.send_replace(None);
        answer
    }
}

impl CodeSubmitter {
    /// The request the pairing is waiting on, if any.
    pub fn awaiting(&self) -> Option<CodeRequest> {
        self.pending().map(|pending| pending.request)
    }

    /// The request and the verdict on the previous code, if the pairing is waiting.
    pub fn pending(&self) -> Option<PendingCode> {
        self.awaiting.borrow().clone()
    }

    /// Waits until the pairing asks for a code (or ends).
    pub async fn wait_for_request(&mut self) -> Option<CodeRequest> {
        let state = self.awaiting.wait_for(|state| state.is_some()).await.ok()?;
        state.as_ref().map(|pending| pending.request.clone())
    }

    /// Waits until the open request is answered (or the pairing ends).
    pub async fn wait_until_taken(&mut self) {
        let _ = self.awaiting.wait_for(|state| state.is_none()).await;
    }

    /// Hands a code to the waiting pairing; refuses one of the wrong shape before it reaches the
    /// portal (a typo must not cost an attempt).
    pub fn submit(&self, code: SecretString) -> Result<(), SubmitError> {
        let request = self.awaiting().ok_or(SubmitError::NotAwaiting)?;
        let code = check_code_shape(&request, &code)?;
        self.codes.try_send(code).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SubmitError::NotAwaiting,
            mpsc::error::TrySendError::Closed(_) => SubmitError::Ended,
        })
    }
}

/// The code as the portal wants it (trimmed), or why it cannot be: the right length when the page
/// says one, letters and digits only.
pub fn check_code_shape(
    request: &CodeRequest,
    code: &SecretString,
) -> Result<SecretString, SubmitError> {
    let text = crate::digits::to_ascii_digits(code.expose_secret().trim());
    let text = text.as_str();
    let digits_ok = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric());
    let length_ok = request
        .code_length
        .is_none_or(|n| text.chars().count() == n);
    if !digits_ok || !length_ok {
        let expected = request
            .code_length
            .map_or("letters or".to_string(), |n| n.to_string());
        return Err(SubmitError::WrongShape { expected });
    }
    Ok(SecretString::from(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::CodeChannel;

    fn request(length: Option<usize>) -> CodeRequest {
        CodeRequest {
            channel: CodeChannel::Sms,
            destination: None,
            code_length: length,
            expires_at: None,
        }
    }

    #[tokio::test]
    async fn submit_reaches_the_waiting_pairing_and_shape_is_checked() {
        let (mut codes, mut submitter) = merchant_codes();
        assert_eq!(
            submitter.submit(SecretString::from("1234".to_string())),
            Err(SubmitError::NotAwaiting)
        );
        let waiting = tokio::spawn(async move {
            let answer = codes
                .wait(&request(Some(4)), None, Duration::from_secs(5))
                .await;
            matches!(answer, CodeAnswer::Code(c) if c.expose_secret() == "4821")
        });
        assert_eq!(
            submitter.wait_for_request().await.unwrap().code_length,
            Some(4)
        );
        assert!(matches!(
            submitter.submit(SecretString::from("48210".to_string())),
            Err(SubmitError::WrongShape { .. })
        ));
        submitter
            .submit(SecretString::from(" 4821 ".to_string()))
            .unwrap();
        assert!(waiting.await.unwrap());
        assert_eq!(submitter.awaiting(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn no_code_before_expiry_times_out() {
        let (mut codes, _submitter) = merchant_codes();
        assert!(matches!(
            codes
                .wait(&request(None), None, Duration::from_secs(300))
                .await,
            CodeAnswer::TimedOut
        ));
    }
}
