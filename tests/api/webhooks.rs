//! Alert webhooks (docs/api.md, Webhooks): the payload, its signature, retries
//! on 5xx and refused connections, no retry on 4xx, order, and the durable
//! outbox across a restart. The receiver is a real HTTP server inside the test that
//! records what it gets and answers from a programmable list of statuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use triagem::clock::ManualClock;
use triagem::config::{Config, WebhookConfig};

use crate::helpers::{protocol, start_time, time, TestApp, PATIENCE, POLL, ROOM};
use crate::receivers::{free_port, Received, Receiver};

const SECRET: &str = "s3cret";
const FAILED: &str = "triagem_webhook_deliveries_total{result=\"failed\"}";
const OK: &str = "triagem_webhook_deliveries_total{result=\"ok\"}";
const PENDING: &str = "triagem_webhook_outbox_pending";

fn hooked(url: String) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.alerts.webhooks = vec![WebhookConfig {
            url: url.try_into().expect("an http URL"),
            secret: Some(SECRET.into()),
        }];
        c.alerts.retry_initial = Duration::from_millis(50);
        c.alerts.retry_max = Duration::from_millis(200);
        c.alerts.timeout = Duration::from_secs(2);
    }
}

async fn spawn_hooked(url: String) -> TestApp {
    TestApp::spawn_with(hooked(url), Arc::new(ManualClock::new(start_time()))).await
}

fn hmac_hex(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// `(event, alert.state, alert.level)` of each request, in arrival order.
fn trail(got: &[Received]) -> Vec<(String, String, u64)> {
    got.iter()
        .map(|r| {
            let v = r.json();
            (
                v["event"].as_str().expect("event").to_owned(),
                v["alert"]["state"].as_str().expect("state").to_owned(),
                v["alert"]["level"].as_u64().expect("level"),
            )
        })
        .collect()
}

fn entry(event: &str, state: &str, level: u64) -> (String, String, u64) {
    (event.to_owned(), state.to_owned(), level)
}

#[tokio::test]
async fn a_firing_alert_is_posted_as_signed_json_with_the_alert_fields() {
    let hook = Receiver::start(&[], 200).await;
    let app = spawn_hooked(hook.url()).await;
    let v = app.admit("Ana", Some("red")).await;
    let p = protocol(&v);
    let got = hook.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.path, "/hooks/triagem");
    assert_eq!(
        r.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
    let signature = r
        .headers
        .get("x-triagem-signature")
        .expect("a signature header when a secret is set");
    assert_eq!(*signature, format!("sha256={}", hmac_hex(SECRET, &r.body)));
    assert_ne!(
        *signature,
        format!("sha256={}", hmac_hex("other", &r.body)),
        "the signature depends on the secret"
    );

    let body = r.json();
    let mut keys: Vec<&str> = body
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["alert", "delivery_id", "event"]);
    assert_eq!(body["event"], "alert.firing");
    let delivery_id = r.delivery_id();
    assert!(!delivery_id.is_empty());
    assert_eq!(
        r.headers.get("x-triagem-delivery"),
        Some(&delivery_id),
        "the delivery id is also a header"
    );
    let a = &body["alert"];
    assert_eq!(a["id"], 1);
    assert_eq!(a["protocol"], p.as_str());
    assert_eq!(a["ticket"], "A001");
    assert_eq!(a["unit"], "pa");
    assert_eq!(a["colour"], "red");
    assert_eq!(a["kind"], "breach");
    assert_eq!(a["level"], 1);
    assert_eq!(a["level_name"], "nursing-coordinator");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["waited_seconds"], 0);
    assert_eq!(a["max_wait_seconds"], 0);
    assert_eq!(time(&a["arrived_at"]), time(&v["arrived_at"]));
    assert_eq!(time(&a["fired_at"]), start_time());
    for field in ["acknowledged_at", "acknowledged_by", "resolved_at"] {
        assert_eq!(a[field], Value::Null, "{field}");
    }
    // The same alert the API shows (the clock has not moved).
    assert_eq!(app.alerts("").await, vec![a.clone()]);
    assert_eq!(r.answered, 200);
    app.wait_for_metric(OK, 1.0).await;
    assert_eq!(app.metric(PENDING).await, 0.0);
}

#[tokio::test]
async fn a_delivery_answered_503_is_retried_with_the_same_id_and_body_until_delivered() {
    let hook = Receiver::start(&[503, 503], 200).await;
    let app = spawn_hooked(hook.url()).await;
    app.admit("Ana", Some("red")).await;
    let got = hook.wait_for(3).await;
    app.wait_for_metric(OK, 1.0).await;
    app.wait_for_metric(PENDING, 0.0).await;
    let got_after = hook.received();
    assert_eq!(
        got_after.len(),
        3,
        "nothing after the delivery: {got_after:?}"
    );
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [503, 503, 200]);
    for r in &got[1..] {
        assert_eq!(r.delivery_id(), got[0].delivery_id());
        assert_eq!(r.body, got[0].body, "the same body on every retry");
        assert_eq!(
            r.headers.get("x-triagem-signature"),
            got[0].headers.get("x-triagem-signature")
        );
    }
    assert_eq!(app.metric(FAILED).await, 0.0);
}

#[tokio::test]
async fn a_redirect_is_retried_at_the_configured_address_never_followed() {
    let hook = Receiver::start(&[301, 307, 308], 200).await;
    let app = spawn_hooked(hook.url()).await;
    app.admit("Ana", Some("red")).await;
    let got = hook.wait_for(4).await;
    app.wait_for_metric(OK, 1.0).await;
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert!(
        !paths.contains(&"/elsewhere"),
        "a redirect was followed: {paths:?}"
    );
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [301, 307, 308, 200]);
    assert!(got.iter().all(|r| r.body == got[0].body));
    assert_eq!(app.metric(FAILED).await, 0.0);
}

#[tokio::test]
async fn a_delivery_answered_400_is_not_retried_and_counts_as_failed() {
    let hook = Receiver::start(&[], 400).await;
    let app = spawn_hooked(hook.url()).await;
    assert_eq!(app.metric(FAILED).await, 0.0);
    let p = protocol(&app.admit("Ana", Some("red")).await);
    hook.wait_for(1).await;
    app.wait_for_metric(FAILED, 1.0).await;
    assert_eq!(app.metric(PENDING).await, 0.0);
    // Longer than a few retry_max (200 ms): a retry would have come by now.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = hook.received();
    assert_eq!(got.len(), 1, "a 4xx is final: {got:?}");
    assert_eq!(got[0].answered, 400);
    assert_eq!(app.metric(OK).await, 0.0);
    assert_eq!(app.metric(FAILED).await, 1.0);

    // The failed delivery does not block the next notification.
    hook.answer_from_now_on(200);
    assert_eq!(app.alerts("").await[0]["protocol"], p.as_str());
    app.call(ROOM).await.expect(200);
    let got = hook.wait_for(2).await;
    assert_eq!(
        trail(&got),
        [
            entry("alert.firing", "firing", 1),
            entry("alert.resolved", "resolved", 1)
        ]
    );
    app.wait_for_metric(OK, 1.0).await;
}

#[tokio::test]
async fn the_notifications_of_one_alert_arrive_in_order_even_through_retries() {
    // The first notification is refused twice; the others queue behind it.
    let hook = Receiver::start(&[503, 503], 200).await;
    let app = spawn_hooked(hook.url()).await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    app.advance(TimeDelta::minutes(1));
    app.post_json(
        &format!("/alerts/{}/ack", a["id"]),
        &json!({"by": "Enf. Ana"}),
    )
    .await
    .expect(200);
    app.advance(TimeDelta::minutes(1));
    app.call(ROOM).await.expect(200);

    hook.wait_for(5).await;
    app.wait_for_metric(PENDING, 0.0).await;
    let got = hook.received();
    let delivered: Vec<Received> = got.iter().filter(|r| r.answered == 200).cloned().collect();
    assert_eq!(
        trail(&delivered),
        [
            entry("alert.firing", "firing", 1),
            entry("alert.acknowledged", "acknowledged", 1),
            entry("alert.resolved", "resolved", 1),
        ]
    );
    assert_eq!(
        trail(&got)[..3],
        [
            entry("alert.firing", "firing", 1),
            entry("alert.firing", "firing", 1),
            entry("alert.firing", "firing", 1),
        ],
        "nothing overtakes the notification being retried"
    );
    let ids: Vec<String> = delivered.iter().map(Received::delivery_id).collect();
    assert_eq!(
        ids.iter().collect::<std::collections::HashSet<_>>().len(),
        3,
        "one delivery id per notification: {ids:?}"
    );
    let acked = delivered[1].json();
    assert_eq!(acked["alert"]["acknowledged_by"], "Enf. Ana");
    assert_eq!(
        time(&acked["alert"]["acknowledged_at"]),
        time(&json!("2026-11-28T12:01:00Z"))
    );
    let resolved = delivered[2].json();
    assert_eq!(
        time(&resolved["alert"]["resolved_at"]),
        time(&json!("2026-11-28T12:02:00Z"))
    );
    for r in &delivered {
        assert_eq!(r.json()["alert"]["id"], a["id"]);
        assert_eq!(
            r.headers["x-triagem-signature"],
            format!("sha256={}", hmac_hex(SECRET, &r.body))
        );
    }
    assert_eq!(app.metric(OK).await, 3.0);
}

#[tokio::test]
async fn a_receiver_that_was_down_gets_every_notification_once_it_is_up() {
    let port = free_port();
    let app = spawn_hooked(format!("http://127.0.0.1:{port}/hooks/triagem")).await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    app.post_json(&format!("/alerts/{}/ack", a["id"]), &json!({}))
        .await
        .expect(200);
    app.call(ROOM).await.expect(200);
    // A few refused attempts happen meanwhile; none counts as delivered or failed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.metric(PENDING).await, 3.0);
    assert_eq!(app.metric(OK).await, 0.0);
    assert_eq!(app.metric(FAILED).await, 0.0);

    let hook = Receiver::start_on(port, &[], 200).await;
    hook.wait_for(3).await;
    app.wait_for_metric(PENDING, 0.0).await;
    let got = hook.received();
    assert_eq!(
        trail(&got),
        [
            entry("alert.firing", "firing", 1),
            entry("alert.acknowledged", "acknowledged", 1),
            entry("alert.resolved", "resolved", 1),
        ]
    );
    assert_eq!(app.metric(OK).await, 3.0);
}

#[tokio::test]
async fn pending_deliveries_survive_a_restart_and_are_delivered_after_it() {
    let hook = Receiver::start(&[], 503).await;
    let mut app = spawn_hooked(hook.url()).await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let first = hook.wait_for(1).await[0].clone();
    app.stop().await;
    // Still 503: the restarted service must retry on its own before it may deliver.
    let before = hook.received().len();
    let app = app.restart().await;
    hook.wait_for(before + 1).await;
    hook.answer_from_now_on(200);
    let deadline = Instant::now() + PATIENCE;
    let delivered = loop {
        if let Some(r) = hook.received().into_iter().find(|r| r.answered == 200) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered: {:?}",
            hook.received()
        );
        tokio::time::sleep(POLL).await;
    };
    assert_eq!(
        delivered.delivery_id(),
        first.delivery_id(),
        "the same delivery"
    );
    assert_eq!(delivered.body, first.body, "the same body");
    assert!(hook
        .received()
        .iter()
        .all(|r| r.delivery_id() == first.delivery_id()));
    app.wait_for_metric(PENDING, 0.0).await;

    // Level 1 is not notified again; level 2, due later, is.
    app.advance_and_wake(TimeDelta::minutes(15));
    app.wait_for_alert(&p, |a| a["level"] == 2).await;
    app.wait_for_metric(OK, 2.0).await;
    app.wait_for_metric(PENDING, 0.0).await;
    let ok: Vec<Received> = hook
        .received()
        .into_iter()
        .filter(|r| r.answered == 200)
        .collect();
    assert_eq!(
        trail(&ok),
        [
            entry("alert.firing", "firing", 1),
            entry("alert.firing", "firing", 2),
        ]
    );
    assert_ne!(ok[1].delivery_id(), first.delivery_id());
}

#[tokio::test]
async fn a_delivery_whose_result_cannot_be_recorded_waits_for_the_journal_not_a_tight_loop() {
    // The first attempt is answered 503 (recorded: pending), the next ones 200.
    let hook = Receiver::start(&[503], 200).await;
    let url = hook.url();
    let slow_retries = move |c: &mut Config| {
        hooked(url)(c);
        c.alerts.retry_initial = Duration::from_millis(500);
        c.alerts.retry_max = Duration::from_secs(1);
    };
    let app = TestApp::spawn_with(slow_retries, Arc::new(ManualClock::new(start_time()))).await;
    app.admit("Ana", Some("red")).await;
    hook.wait_for(1).await;
    // Within the retry's pause (at least 500 ms), the journal stops taking
    // writes: the retry is accepted, but its result cannot be recorded, so
    // the entry stays pending.
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.journal().inject_commit_failures(true);
    hook.wait_for(2).await;
    // It waits for the journal instead of reading the entry and sending it
    // again at once (a tight loop sent it hundreds of times meanwhile).
    tokio::time::sleep(Duration::from_millis(700)).await;
    let sent = hook.received().len();
    assert_eq!(sent, 2, "sent again while its result was not recorded");

    // The journal is back: sent again (at least once, the same id), recorded.
    app.journal().inject_commit_failures(false);
    app.wait_for_metric(OK, 1.0).await;
    app.wait_for_metric(PENDING, 0.0).await;
    let got = hook.received();
    let answered: Vec<u16> = got.iter().map(|r| r.answered).collect();
    assert_eq!(answered, [503, 200, 200]);
    assert!(got.iter().all(|r| r.delivery_id() == got[0].delivery_id()));
}
