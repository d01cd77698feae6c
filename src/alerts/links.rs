//! Signed, expiring repair links: `<repair_url>?r=<token>`, the token naming one account and
//! one alert, signed with the organisation's link secret. The dashboard backend checks it with
//! [`verify`] (or the same few lines in its own language, see docs/alerts.md) and opens the
//! repair for that account.
//!
//! Token (base64url, no padding): `version (1) | account | alert (6) | expires (u32 seconds,
//! big-endian) | HMAC-SHA256(secret, "pairing-worker-repair-link" | everything before)[..16]`.
//! Version 1 packs a 32-hex-digit account id into 16 bytes (the worker's own ids), version 2
//! carries any other id as a length byte and its UTF-8 bytes. Short enough for one SMS.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

const DOMAIN: &[u8] = b"pairing-worker-repair-link";
const MAC_LEN: usize = 16;
/// The query parameter that carries the token.
pub const PARAMETER: &str = "r";

/// What a valid link names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairLink {
    pub account_id: String,
    /// The alert it was sent with (hex): single-purpose, recorded in the delivery log.
    pub alert: String,
    /// Unix seconds.
    pub expires: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    BadSignature,
    #[error("the link has expired")]
    Expired,
}

fn mac(secret: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(DOMAIN);
    mac.update(body);
    mac
}

fn hex_bytes(text: &str) -> Option<Vec<u8>> {
    if text.len() != 32 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..32)
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token for `account_id` and `alert` (6 bytes), valid until `expires` (unix seconds).
pub fn sign(secret: &str, account_id: &str, alert: [u8; 6], expires: i64) -> String {
    let mut body = Vec::with_capacity(64);
    match hex_bytes(account_id).filter(|_| account_id == account_id.to_ascii_lowercase()) {
        Some(packed) => {
            body.push(1);
            body.extend_from_slice(&packed);
        }
        None => {
            let bytes = account_id.as_bytes();
            body.push(2);
            body.push(u8::try_from(bytes.len()).expect("account ids are short"));
            body.extend_from_slice(bytes);
        }
    }
    body.extend_from_slice(&alert);
    body.extend_from_slice(&(expires.clamp(0, u32::MAX.into()) as u32).to_be_bytes());
    let tag = mac(secret, &body).finalize().into_bytes();
    body.extend_from_slice(&tag[..MAC_LEN]);
    URL_SAFE_NO_PAD.encode(body)
}

/// The link a message carries: the repair page with the token added to its query.
pub fn link(repair_url: &str, token: &str) -> String {
    let joiner = if repair_url.contains('?') { '&' } else { '?' };
    format!("{repair_url}{joiner}{PARAMETER}={token}")
}

/// What the dashboard backend does with the `r` parameter: check the signature in constant
/// time, then the expiry (`now` in unix seconds).
pub fn verify(secret: &str, token: &str, now: i64) -> Result<RepairLink, LinkError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| LinkError::Malformed)?;
    let (account_id, rest) = match bytes.first() {
        Some(1) if bytes.len() > 17 => (hex(&bytes[1..17]), &bytes[17..]),
        Some(2) if bytes.len() > 2 => {
            let len = usize::from(bytes[1]);
            let id = bytes.get(2..2 + len).ok_or(LinkError::Malformed)?;
            let id = String::from_utf8(id.to_vec()).map_err(|_| LinkError::Malformed)?;
            (id, &bytes[2 + len..])
        }
        _ => return Err(LinkError::Malformed),
    };
    if rest.len() != 6 + 4 + MAC_LEN {
        return Err(LinkError::Malformed);
    }
    let signed = bytes.len() - MAC_LEN;
    mac(secret, &bytes[..signed])
        .verify_truncated_left(&bytes[signed..])
        .map_err(|_| LinkError::BadSignature)?;
    let expires = i64::from(u32::from_be_bytes(
        rest[6..10].try_into().expect("four bytes"),
    ));
    if now >= expires {
        return Err(LinkError::Expired);
    }
    Ok(RepairLink {
        account_id,
        alert: hex(&rest[..6]),
        expires,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "alsec_test";
    const ACCOUNT: &str = "0190f5a3c2d47e8b9a1b2c3d4e5f6071";

    #[test]
    fn a_link_names_its_account_and_alert_until_it_expires() {
        let token = sign(SECRET, ACCOUNT, [1, 2, 3, 4, 5, 6], 1_900_000_000);
        let link = verify(SECRET, &token, 1_899_999_999).expect("valid");
        assert_eq!(link.account_id, ACCOUNT);
        assert_eq!(link.alert, "010203040506");
        assert_eq!(
            verify(SECRET, &token, 1_900_000_000),
            Err(LinkError::Expired)
        );
        assert_eq!(
            verify("alsec_other", &token, 1_800_000_000),
            Err(LinkError::BadSignature)
        );
        // Short enough for an SMS: 58 characters for the worker's own ids.
        assert_eq!(token.len(), 58);
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let token = sign(SECRET, ACCOUNT, [9; 6], 1_900_000_000);
        let bytes = URL_SAFE_NO_PAD.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut changed = bytes.clone();
            changed[i] ^= 0x01;
            let forged = URL_SAFE_NO_PAD.encode(&changed);
            assert!(verify(SECRET, &forged, 1_800_000_000).is_err(), "byte {i}");
        }
        assert_eq!(verify(SECRET, "", 0), Err(LinkError::Malformed));
        assert_eq!(verify(SECRET, "!!", 0), Err(LinkError::Malformed));
    }

    #[test]
    fn other_account_ids_travel_as_they_are() {
        for id in ["acct-42", "0190F5A3C2D47E8B9A1B2C3D4E5F6071", "ünïcode"] {
            let token = sign(SECRET, id, [0; 6], 1_900_000_000);
            assert_eq!(verify(SECRET, &token, 0).unwrap().account_id, id);
        }
        assert_eq!(
            link("https://dash.example/repair?x=1", "abc"),
            "https://dash.example/repair?x=1&r=abc"
        );
    }
}
