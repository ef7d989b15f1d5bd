//! Webhook delivery from the journal's durable outbox: one task per receiver
//! sends that receiver's notifications in order (so an alert's notifications
//! arrive in order), signing each body, retrying with exponential backoff and
//! jitter on 5xx, timeouts and refused connections, and giving up on a 4xx.
//! A dead receiver only delays its own queue, never admissions or calls.

use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::json;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::domain::{Change, DeliveryOutcome};
use crate::journal::OutboxEntry;
use crate::service::Service;

pub const SIGNATURE_HEADER: &str = "X-Triagem-Signature";

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The body POSTed for one outbox entry; identical on every retry.
pub fn body(entry: &OutboxEntry) -> Vec<u8> {
    let payload = json!({
        "event": entry.event,
        "delivery_id": entry.delivery_id,
        "alert": entry.alert,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

enum Attempt {
    Delivered,
    Refused(String),
    Retry(String),
}

async fn attempt(client: &reqwest::Client, hook: &WebhookConfig, entry: &OutboxEntry) -> Attempt {
    let body = body(entry);
    let mut req = client
        .post(hook.url.as_url().clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("X-Triagem-Delivery", &entry.delivery_id);
    if let Some(secret) = &hook.secret {
        req = req.header(SIGNATURE_HEADER, signature(secret, &body));
    }
    match req.body(body).send().await {
        Ok(res) if res.status().is_success() => Attempt::Delivered,
        Ok(res) if res.status().is_client_error() => {
            Attempt::Refused(format!("HTTP {}", res.status()))
        }
        Ok(res) => Attempt::Retry(format!("HTTP {}", res.status())),
        Err(e) => Attempt::Retry(e.to_string()),
    }
}

/// Exponential backoff with ±50 % jitter, capped.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempts.min(16));
    let base = exp.min(max);
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
        .min(max)
}

/// Delivers one receiver's notifications until stopped. An attempt cut short
/// by the stop is sent again after the restart, with the same `delivery_id`.
pub async fn run(service: Service, receiver: usize, stop: CancellationToken) {
    let Some(hook) = service.config().alerts.webhooks.get(receiver).cloned() else {
        return;
    };
    let cfg = service.config().alerts.clone();
    let client = match reqwest::Client::builder().timeout(cfg.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot build the webhook client");
            return;
        }
    };
    // Sleeps `d`; false when stopped meanwhile.
    let pause = |d: Duration| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                _ = tokio::time::sleep(d) => true,
                _ = stop.cancelled() => false,
            }
        }
    };
    loop {
        let entry = match service.outbox_next(receiver).await {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                // Nothing pending: wait for a commit that queues something.
                tokio::select! {
                    _ = service.outbox_woken(receiver) => continue,
                    _ = stop.cancelled() => return,
                }
            }
            Err(_) if pause(cfg.retry_initial).await => continue,
            Err(_) => return,
        };
        let mut attempts = entry.attempts;
        loop {
            let result = tokio::select! {
                r = attempt(&client, &hook, &entry) => r,
                _ = stop.cancelled() => return,
            };
            attempts += 1;
            let (outcome, error) = match result {
                Attempt::Delivered => (DeliveryOutcome::Delivered, None),
                Attempt::Refused(e) => (DeliveryOutcome::Failed, Some(e)),
                Attempt::Retry(e) => (DeliveryOutcome::Pending, Some(e)),
            };
            if let Some(e) = &error {
                tracing::warn!(delivery_id = %entry.delivery_id, attempts, error = %e, "webhook delivery not accepted");
            }
            let change = Change::Delivery {
                id: entry.id,
                outcome,
                attempts,
                error,
            };
            // A lost record only means the entry is sent again: at least once.
            let _ = service.record_delivery(change).await;
            if outcome != DeliveryOutcome::Pending {
                break;
            }
            if !pause(backoff(attempts, cfg.retry_initial, cfg.retry_max)).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hex_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        let sig = signature("Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn backoff_grows_and_stays_capped() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_secs(5);
        assert!(backoff(0, initial, max) <= Duration::from_millis(150));
        assert!(backoff(3, initial, max) >= Duration::from_millis(400));
        assert!(backoff(30, initial, max) <= max);
    }
}
