//! Delivery from the journal's durable outboxes: the alert webhooks (one task
//! per receiver) and the messages to patients (one task per channel: e-mail
//! over SMTP, SMS through an HTTP gateway). Each task sends its entries in
//! order, retries with exponential backoff and jitter while the failure is
//! transient (HTTP 5xx, timeouts, refused connections, SMTP 4xx), and gives up
//! on a final one (HTTP 4xx, SMTP 5xx). Every attempt at an entry carries the
//! same `delivery_id`, also after a restart. A dead receiver only delays its
//! own queue, never admissions or calls.

pub mod messages;

use std::future::Future;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::json;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::config::WebhookConfig;
use crate::domain::{Change, DeliveryOutcome, Outbox};
use crate::journal::OutboxEntry;
use crate::service::{Service, ServiceError};

pub const SIGNATURE_HEADER: &str = "X-Triagem-Signature";

/// `sha256=<hex HMAC-SHA256 of body>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// How one attempt went.
pub(crate) enum Attempt {
    Delivered,
    /// Final: never tried again.
    Refused(String),
    /// Transient: tried again later.
    Retry(String),
}

/// The HTTP client of webhook and SMS deliveries. It does not follow
/// redirects: reqwest would by default, re-sending an alert to an address
/// nobody configured (or as a bodiless GET) and counting the answer there as
/// delivered. A 3xx is retried like any other answer that is not 2xx or 4xx.
pub(crate) fn delivery_client(timeout: std::time::Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
}

/// An HTTP answer (or its absence) as an attempt: 2xx delivered, 4xx final,
/// anything else transient. 408 and 429 are the 4xx that mean "later": a
/// receiver that throttles must not lose an alert or a patient's message.
pub(crate) fn http_attempt(result: Result<reqwest::Response, reqwest::Error>) -> Attempt {
    use reqwest::StatusCode;
    match result {
        Ok(res) if res.status().is_success() => Attempt::Delivered,
        Ok(res)
            if res.status().is_client_error()
                && !matches!(
                    res.status(),
                    StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS
                ) =>
        {
            Attempt::Refused(format!("HTTP {}", res.status()))
        }
        Ok(res) => Attempt::Retry(format!("HTTP {}", res.status())),
        // Without its URL: a gateway's key often rides in the query.
        Err(e) => Attempt::Retry(e.without_url().to_string()),
    }
}

/// One entry taken from an outbox.
pub(crate) struct Entry<T> {
    pub id: u64,
    pub delivery_id: String,
    pub attempts: u32,
    pub outbox: Outbox,
    pub item: T,
}

/// One outbox and how its entries are sent.
pub(crate) trait Sender: Send + Sync {
    type Item: Send + Sync;
    /// The oldest entry still to send.
    fn next(
        &self,
        service: &Service,
    ) -> impl Future<Output = Result<Option<Entry<Self::Item>>, ServiceError>> + Send;
    /// Resolves when a commit has queued something for this outbox.
    fn woken(&self, service: &Service) -> impl Future<Output = ()> + Send;
    fn attempt(&self, entry: &Entry<Self::Item>) -> impl Future<Output = Attempt> + Send;
    /// Why an entry is no longer worth sending, checked before each attempt.
    fn outdated(&self, _service: &Service, _entry: &Entry<Self::Item>) -> Option<String> {
        None
    }
}

/// Exponential backoff with ±50 % jitter, capped.
fn backoff(attempts: u32, initial: Duration, max: Duration) -> Duration {
    let exp = initial.saturating_mul(1u32 << attempts.min(16));
    let base = exp.min(max);
    base.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
        .min(max)
}

/// Sends an outbox's entries until stopped. An attempt cut short by the stop
/// is made again after the restart, with the same `delivery_id`.
pub(crate) async fn run<S: Sender>(
    service: Service,
    sender: S,
    name: &str,
    stop: CancellationToken,
) {
    let cfg = service.config().alerts.clone();
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
    // The attempts of an entry whose last result could not be recorded.
    let mut unrecorded = None;
    loop {
        // Only while this instance leads and its journal takes writes: a
        // former leader must not send (the new one does), and a result that
        // cannot be recorded would have the entry read and sent again at once.
        if !service.is_ready() {
            if pause(cfg.retry_initial).await {
                continue;
            }
            return;
        }
        if let Some(attempts) = unrecorded.take() {
            // The journal is back: the usual pause before the entry's retry.
            if pause(backoff(attempts, cfg.retry_initial, cfg.retry_max)).await {
                continue;
            }
            return;
        }
        let entry = match sender.next(&service).await {
            Ok(Some(entry)) => entry,
            Ok(None) => {
                // Nothing pending: wait for a commit that queues something.
                tokio::select! {
                    _ = sender.woken(&service) => continue,
                    _ = stop.cancelled() => return,
                }
            }
            Err(_) if pause(cfg.retry_initial).await => continue,
            Err(_) => return,
        };
        let mut attempts = entry.attempts;
        loop {
            // Checked before each send, by the lease's own deadline.
            if !service.is_ready() {
                break;
            }
            let (outcome, error) = if let Some(why) = sender.outdated(&service, &entry) {
                (DeliveryOutcome::Failed, Some(why))
            } else {
                let result = tokio::select! {
                    r = sender.attempt(&entry) => r,
                    _ = stop.cancelled() => return,
                };
                attempts += 1;
                match result {
                    Attempt::Delivered => (DeliveryOutcome::Delivered, None),
                    Attempt::Refused(e) => (DeliveryOutcome::Failed, Some(e)),
                    Attempt::Retry(e) => (DeliveryOutcome::Pending, Some(e)),
                }
            };
            if let Some(e) = &error {
                tracing::warn!(outbox = name, delivery_id = %entry.delivery_id, attempts, error = %e, "delivery not accepted");
            }
            let change = Change::Delivery {
                outbox: entry.outbox,
                id: entry.id,
                outcome,
                attempts,
                error,
            };
            // A lost record only means the entry is sent again (at least
            // once), but not before the journal is back, after a pause.
            if service.record_delivery(change).await.is_err() {
                unrecorded = Some(attempts);
                break;
            }
            if outcome != DeliveryOutcome::Pending {
                break;
            }
            if !pause(backoff(attempts, cfg.retry_initial, cfg.retry_max)).await {
                return;
            }
        }
    }
}

/// One alert webhook receiver.
pub(crate) struct Webhook {
    receiver: usize,
    hook: WebhookConfig,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(service: &Service, receiver: usize) -> Option<Self> {
        let hook = service.config().alerts.webhooks.get(receiver)?.clone();
        let client = delivery_client(service.config().alerts.timeout)
            .map_err(|e| tracing::error!(error = %e, "cannot build the webhook client"))
            .ok()?;
        Some(Self {
            receiver,
            hook,
            client,
        })
    }
}

/// The body POSTed for one alert notification; identical on every retry.
pub fn body(entry: &OutboxEntry) -> Vec<u8> {
    let payload = json!({
        "event": entry.event,
        "delivery_id": entry.delivery_id,
        "alert": entry.alert,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

impl Sender for Webhook {
    type Item = OutboxEntry;

    async fn next(&self, service: &Service) -> Result<Option<Entry<OutboxEntry>>, ServiceError> {
        Ok(service.outbox_next(self.receiver).await?.map(|e| Entry {
            id: e.id,
            delivery_id: e.delivery_id.clone(),
            attempts: e.attempts,
            outbox: Outbox::Webhook,
            item: e,
        }))
    }

    async fn woken(&self, service: &Service) {
        service.outbox_woken(self.receiver).await;
    }

    async fn attempt(&self, entry: &Entry<OutboxEntry>) -> Attempt {
        let body = body(&entry.item);
        let mut req = self
            .client
            .post(self.hook.url.as_url().clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Triagem-Delivery", &entry.delivery_id);
        if let Some(secret) = &self.hook.secret {
            req = req.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        http_attempt(req.body(body).send().await)
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
