//! Codes from an authenticator-app secret (TOTP, RFC 6238) stored with the account.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::{ExposeSecret, SecretString};
use totp_rs::{Builder, Secret, Totp};
use zeroize::Zeroizing;

/// A secret that does not make a TOTP generator. Never contains the secret itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    #[error("the TOTP secret is not valid base32 (letters A–Z and digits 2–7)")]
    NotBase32,
    #[error("the TOTP secret is too short ({bits} bits; at least 80 are needed)")]
    TooShort { bits: usize },
    #[error("the otpauth:// URL is not valid: {0}")]
    BadUrl(String),
}

/// Refuses codes this close to the end of their 30 s window: by the time the portal checks it, the
/// window may have turned.
pub const MIN_VALIDITY: Duration = Duration::from_secs(3);

pub struct TotpSource {
    totp: Totp,
}

impl std::fmt::Debug for TotpSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSource([REDACTED])")
    }
}

/// Uppercase, no spaces, dashes or `=` padding: how people paste secrets is not how base32 is spelt.
fn normalise(secret: &str) -> Zeroizing<String> {
    Zeroizing::new(
        secret
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-' && *c != '=')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    )
}

impl TotpSource {
    /// From a base32 secret or an `otpauth://totp/...` URL.
    pub fn parse(secret: &SecretString) -> Result<TotpSource, TotpError> {
        let text = secret.expose_secret().trim();
        if text.starts_with("otpauth://") {
            // The URL's own secret parameter gets the same forgiving normalisation.
            let mut url = url::Url::parse(text).map_err(|e| TotpError::BadUrl(e.to_string()))?;
            let pairs: Vec<(String, String)> = url
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.eq_ignore_ascii_case("secret") {
                        normalise(&v).to_string()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            // The unchecked parser takes any length, an empty secret included.
            let bits = pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("secret"))
                .map(|(_, v)| v.len() * 5)
                .ok_or_else(|| TotpError::BadUrl("it has no secret parameter".into()))?;
            if bits < 80 {
                return Err(TotpError::TooShort { bits });
            }
            url.query_pairs_mut().clear().extend_pairs(pairs);
            let url = Zeroizing::new(url.to_string());
            let totp = Totp::from_url_unchecked(url.as_str()).map_err(|e| {
                // The error text can quote the URL: keep only its kind.
                let kind = format!("{e:?}");
                TotpError::BadUrl(
                    kind.split(['(', '{'])
                        .next()
                        .unwrap_or("invalid")
                        .trim()
                        .to_string(),
                )
            })?;
            return Ok(TotpSource { totp });
        }
        let normalised = normalise(text);
        let parsed =
            Secret::try_from_base32(normalised.as_str()).map_err(|_| TotpError::NotBase32)?;
        let bits = normalised.len() * 5;
        if bits < 80 {
            return Err(TotpError::TooShort { bits });
        }
        // 80-bit secrets are common on portals and rejected by the strict builder.
        Ok(TotpSource {
            totp: Builder::new().with_secret(parsed).build_noncompliant(),
        })
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    }

    /// The code for `time` and how long it stays valid.
    pub fn code_at(&self, time: u64) -> (SecretString, Duration) {
        let code = self.totp.generate(time).to_string();
        let left = self.totp.next_step(time).saturating_sub(time);
        (SecretString::from(code), Duration::from_secs(left))
    }

    /// The current code, waiting for the next window when this one is about to end.
    pub async fn code(&self) -> SecretString {
        let (code, left) = self.code_at(Self::now());
        if left >= MIN_VALIDITY {
            return code;
        }
        tokio::time::sleep(left + Duration::from_millis(50)).await;
        self.code_at(Self::now()).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B: the ASCII secret "12345678901234567890", SHA-1, 8 digits.
    const RFC_SECRET: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn rfc_vector_through_an_otpauth_url() {
        let url = format!(
            "otpauth://totp/Portal:me?secret={RFC_SECRET}&digits=8&period=30&issuer=Portal"
        );
        let source = TotpSource::parse(&SecretString::from(url)).unwrap();
        assert_eq!(source.code_at(59).0.expose_secret(), "94287082");
        assert_eq!(source.code_at(1111111109).0.expose_secret(), "07081804");
    }

    #[test]
    fn pasted_secrets_are_normalised() {
        let pasted = "gezd gnbv gy3t qojq gezd gnbv gy3t qojq==";
        let a = TotpSource::parse(&SecretString::from(pasted.to_string())).unwrap();
        let b = TotpSource::parse(&SecretString::from(RFC_SECRET.to_string())).unwrap();
        assert_eq!(
            a.code_at(1234567890).0.expose_secret(),
            b.code_at(1234567890).0.expose_secret()
        );
        assert_eq!(a.code_at(1234567890).0.expose_secret().len(), 6);
    }

    #[test]
    fn eighty_bit_secrets_are_accepted() {
        let source =
            TotpSource::parse(&SecretString::from("JBSWY3DPEHPK3PXP".to_string())).unwrap();
        let (code, left) = source.code_at(1_700_000_005);
        assert_eq!(code.expose_secret().len(), 6);
        assert_eq!(left, Duration::from_secs(5)); // 1_700_000_005 is 25 s into its window
    }

    #[test]
    fn bad_secrets_are_clear_errors_without_the_secret() {
        let canary = "NOT!BASE32-CANARY";
        let err = TotpSource::parse(&SecretString::from(canary.to_string())).unwrap_err();
        assert_eq!(err, TotpError::NotBase32);
        assert!(!err.to_string().contains("CANARY"));
        assert!(matches!(
            TotpSource::parse(&SecretString::from("JBSWY3DP".to_string())),
            Err(TotpError::TooShort { bits: 40 })
        ));
        let err = TotpSource::parse(&SecretString::from(
            "otpauth://totp/x?secret=CANARY!!CANARY!!CANARY&digits=6".to_string(),
        ))
        .unwrap_err();
        assert!(
            matches!(err, TotpError::BadUrl(_)) && !err.to_string().contains("CANARY"),
            "{err}"
        );
        assert!(matches!(
            TotpSource::parse(&SecretString::from("otpauth://totp/x?secret=".to_string())),
            Err(TotpError::TooShort { bits: 0 })
        ));
        let err = TotpSource::parse(&SecretString::from("otpauth://".to_string())).unwrap_err();
        assert!(matches!(err, TotpError::BadUrl(_)));
    }
}
