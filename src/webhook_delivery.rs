//! Signed webhook delivery: each event is POSTed to the organisation's endpoint with
//! `Pairing-Worker-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, retried
//! with backoff until a 2xx, and recorded.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;
use tokio::sync::watch;

use crate::queue::{backoff, Queue};
use crate::reach::{Reach, ReachError};

pub const SIGNATURE_HEADER: &str = "Pairing-Worker-Signature";
pub const EVENT_HEADER: &str = "Pairing-Worker-Event";
pub const DELIVERY_HEADER: &str = "Pairing-Worker-Delivery";

/// The signature header value for `body` sent at `timestamp` (unix seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={timestamp},v1={hex}")
}

/// What a receiver does: recompute the HMAC over `"<t>.<body>"`, compare in constant time, and
/// refuse timestamps older than `tolerance` (replays).
pub fn verify(secret: &str, header: &str, body: &[u8], now: i64, tolerance: Duration) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => signature = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    if (now - timestamp).unsigned_abs() > tolerance.as_secs() {
        return false;
    }
    let Some(expected) = hex_decode(&signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub poll_interval: Duration,
    pub timeout: Duration,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts before a delivery is recorded as failed.
    pub max_attempts: i64,
    /// Which addresses endpoints may resolve to (checked on every connection).
    pub reach: Reach,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            poll_interval: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(10),
            backoff_cap: Duration::from_secs(3600),
            max_attempts: 12,
            reach: crate::reach::global(),
        }
    }
}

/// Delivers due events until `stop` turns true.
pub async fn deliver(queue: Arc<Queue>, config: DeliveryConfig, mut stop: watch::Receiver<bool>) {
    // No redirects and no proxy: either would connect somewhere the guard did not check.
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(Arc::new(config.reach.clone()))
        .build()
        .expect("HTTP client");
    loop {
        if *stop.borrow() {
            return;
        }
        let due = queue.take_due_delivery(config.timeout * 2).await;
        let delivery = match due {
            Ok(Some(delivery)) => delivery,
            Ok(None) => {
                tokio::select! {
                    _ = tokio::time::sleep(config.poll_interval) => {}
                    // A dropped sender is a stop too (else this loop would spin).
                    changed = stop.changed() => if changed.is_err() { return; }
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "reading webhook deliveries failed");
                tokio::time::sleep(config.poll_interval * 4).await;
                continue;
            }
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = sign(
            delivery.secret.expose_secret(),
            timestamp,
            delivery.payload.as_bytes(),
        );
        let sent = match literal_allowed(&config.reach, &delivery.url) {
            Ok(()) => client
                .post(&delivery.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature)
                .header(EVENT_HEADER, &delivery.event)
                .header(DELIVERY_HEADER, &delivery.id)
                .body(delivery.payload.clone())
                .send()
                .await
                .map_err(|error| failure_text(&error)),
            Err(_) => Err(REFUSED),
        };
        let (delivered, status, error) = match sent {
            Ok(response) if response.status().is_success() => {
                (true, Some(response.status().as_u16()), None)
            }
            Ok(response) => (
                false,
                Some(response.status().as_u16()),
                Some(format!("HTTP {}", response.status())),
            ),
            Err(text) => (false, None, Some(text.to_string())),
        };
        let retry_at = (!delivered && delivery.attempts < config.max_attempts).then(|| {
            let delay = backoff(
                delivery.attempts,
                config.backoff_base,
                config.backoff_cap,
                rand::random(),
            );
            queue.clock().now_ms() + delay.as_millis() as i64
        });
        tracing::info!(
            delivery = %delivery.id,
            event = %delivery.event,
            delivered,
            status,
            attempt = delivery.attempts,
            "webhook delivery"
        );
        if let Err(error) = queue
            .delivery_finished(&delivery.id, delivered, status, error.as_deref(), retry_at)
            .await
        {
            tracing::warn!(%error, "recording a webhook delivery failed");
        }
    }
}

/// What `GET /v1/webhook` shows when no HTTP answer came: one text for refused, timed out, reset
/// and TLS failures alike, so an endpoint setting cannot tell open ports from closed ones.
pub const NO_ANSWER: &str = "no HTTP answer from the webhook endpoint";
/// The endpoint's address is one the worker may not reach (checked again on every delivery).
pub const REFUSED: &str = "the webhook host resolves to an address this worker may not reach";

/// reqwest does not resolve IP-literal hosts, so the resolver's check never sees them: check here.
fn literal_allowed(reach: &Reach, url: &str) -> Result<(), ReachError> {
    match url::Url::parse(url).ok().as_ref().and_then(url::Url::host) {
        Some(url::Host::Ipv4(ip)) => reach.check_ip(ip.into()),
        Some(url::Host::Ipv6(ip)) => reach.check_ip(ip.into()),
        Some(url::Host::Domain(_)) => Ok(()),
        None => Err(ReachError::Unresolved),
    }
}

fn failure_text(error: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.downcast_ref::<ReachError>().is_some() {
            return REFUSED;
        }
        source = current.source();
    }
    // For operators only: the causes (the I/O or TLS error), not the URL, which may carry a token.
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(current) = source {
        causes.push(current.to_string());
        source = current.source();
    }
    tracing::debug!(causes = %causes.join(": "), "webhook delivery got no answer");
    NO_ANSWER
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let body = br#"{"type":"job.updated"}"#;
        let header = sign("whsec_test", 1_800_000_000, body);
        let ok = |h: &str, b: &[u8], now| verify("whsec_test", h, b, now, Duration::from_secs(300));
        assert!(ok(&header, body, 1_800_000_010));
        assert!(
            !ok(&header, br#"{"type":"job.updatex"}"#, 1_800_000_010),
            "body changed"
        );
        assert!(!ok(&header, body, 1_800_000_400), "too old: a replay");
        assert!(!verify(
            "whsec_other",
            &header,
            body,
            1_800_000_010,
            Duration::from_secs(300)
        ));
        assert!(!ok("t=1800000000", body, 1_800_000_010));
        assert!(!ok("garbage", body, 1_800_000_010));
        let forged = header.replace("t=1800000000", "t=1800000005");
        assert!(!ok(&forged, body, 1_800_000_010), "timestamp is signed");
    }
}
