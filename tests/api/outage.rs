//! Receivers down (issue 16, part 5): the alert webhook receiver refuses
//! connections, the SMS gateway answers 503 and the SMTP server 451 while
//! alerts escalate and admissions and calls queue messages; the service is
//! restarted in the middle; then the receivers come back. Every notification
//! arrives once, in outbox order per receiver and in level order per alert,
//! with the delivery ids it had before the restart, and the pending gauges
//! count exactly what waits. `benches/outage.py` is the same drill at 10 000
//! against the release binary.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use serde_json::{json, Value};
use triagem::clock::ManualClock;
use triagem::config::{Config, LevelConfig, WebhookConfig};

use crate::helpers::{protocol, start_time, TestApp, POLL, ROOM, UNIT};
use crate::receivers::{free_port, text_at, Mail, Received, Receiver, SmtpSink};

const RED: usize = 150;
const YELLOW: usize = 150;
/// Red patients called after the restart: each resolves an alert and queues a
/// `called` message per channel.
const CALLED: usize = 20;

const HOOK_PENDING: &str = "triagem_webhook_outbox_pending";
const HOOK_OK: &str = "triagem_webhook_deliveries_total{result=\"ok\"}";
const HOOK_FAILED: &str = "triagem_webhook_deliveries_total{result=\"failed\"}";
const EMAIL_PENDING: &str = "triagem_notifications_pending{channel=\"email\"}";
const SMS_PENDING: &str = "triagem_notifications_pending{channel=\"sms\"}";

fn sent(channel: &str, event: &str, result: &str) -> String {
    format!("triagem_notifications_total{{channel=\"{channel}\",event=\"{event}\",result=\"{result}\"}}")
}

fn configured(hook: String, smtp: String, sms: String) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.alerts.webhooks = vec![WebhookConfig {
            url: hook.try_into().expect("an http URL"),
            secret: None,
        }];
        c.alerts.retry_initial = Duration::from_millis(20);
        c.alerts.retry_max = Duration::from_millis(100);
        c.alerts.timeout = Duration::from_secs(2);
        let level = |name: &str, minutes: u64| LevelConfig {
            name: name.to_owned(),
            label: None,
            after: Duration::from_secs(minutes * 60),
        };
        c.escalation.levels = vec![
            level("nursing-coordinator", 0),
            level("physician-on-duty", 15),
            level("medical-director", 30),
        ];
        c.notifications = toml::from_str(&format!(
            "[email]\nsmtp_url = \"{smtp}\"\nfrom = \"Triagem <triagem@hospital.example>\"\n\
             [sms]\nurl = \"{sms}\"\n"
        ))
        .expect("notifications config");
        c.portal.public_url = Some(
            "https://triagem.hospital.example"
                .to_owned()
                .try_into()
                .expect("a URL"),
        );
    }
}

fn patient(i: usize, colour: &str) -> Value {
    json!({
        "name": format!("Paciente {i}"),
        "colour": colour,
        "contact": {
            "phone": format!("+55119{i:08}"),
            "email": format!("paciente{i}@example.com"),
            "consent": true,
        }
    })
}

/// The number after the last `-` (or `-m`) of a delivery id: the outbox row,
/// which grows with the order entries were queued in.
fn row(delivery_id: &str) -> u64 {
    let tail = delivery_id.rsplit('-').next().expect("a delivery id");
    tail.trim_start_matches('m')
        .parse()
        .unwrap_or_else(|e| panic!("delivery id {delivery_id}: {e}"))
}

async fn metrics(app: &TestApp) -> [f64; 3] {
    [
        app.metric(HOOK_PENDING).await,
        app.metric(EMAIL_PENDING).await,
        app.metric(SMS_PENDING).await,
    ]
}

/// Polls the three pending gauges until they read `want`; fails after
/// `patience` without any of them moving.
async fn wait_for_pending(app: &TestApp, want: [f64; 3], patience: Duration) {
    let mut last = metrics(app).await;
    let mut moved = Instant::now();
    while last != want {
        assert!(
            moved.elapsed() < patience,
            "pending (webhook, email, sms) stuck at {last:?}, expected {want:?}"
        );
        tokio::time::sleep(POLL * 5).await;
        let now = metrics(app).await;
        if now != last {
            moved = Instant::now();
            last = now;
        }
    }
}

/// The delivery ids of every message of the patients, by channel, and whether
/// any of them is not pending.
async fn message_ids(app: &TestApp, patients: &[String]) -> BTreeMap<String, Vec<String>> {
    let mut ids: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in patients {
        let got = app
            .get(&format!("/patients/{p}/messages"))
            .await
            .expect(200);
        for m in got.as_array().expect("an array") {
            assert_eq!(m["state"], "pending", "{p}: {m}");
            ids.entry(text_at(m, "/channel"))
                .or_default()
                .push(text_at(m, "/delivery_id"));
        }
    }
    for v in ids.values_mut() {
        v.sort_by_key(|id| row(id));
    }
    ids
}

/// Asserts the ids arrived once each, in outbox order, and are `expected`.
#[track_caller]
fn once_in_order(what: &str, arrived: &[String], expected: &[String]) {
    let distinct: HashSet<&String> = arrived.iter().collect();
    assert_eq!(
        distinct.len(),
        arrived.len(),
        "{what}: a delivery id arrived twice"
    );
    let rows: Vec<u64> = arrived.iter().map(|id| row(id)).collect();
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "{what}: not in outbox order: {rows:?}"
    );
    assert_eq!(arrived.len(), expected.len(), "{what}: how many arrived");
    assert_eq!(arrived, expected, "{what}: the delivery ids queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_outage_everything_queued_arrives_once_in_order_after_a_restart() {
    let hook_port = free_port();
    let hook = Receiver::start_on(hook_port, &[400], 200).await;
    let gateway = Receiver::start(&[400], 200).await;
    let sink = SmtpSink::start(&[550]).await;
    let mut app = TestApp::spawn_with(
        configured(
            hook.url(),
            sink.url(),
            format!("http://{}/sms", gateway.addr),
        ),
        Arc::new(ManualClock::new(start_time())),
    )
    .await;

    // Before the outage: one notification of each outbox refused for good
    // (4xx, SMTP 5xx), then delivered ones. Neither kind counts as pending.
    let p0 = protocol(&app.admit_raw(UNIT, &patient(0, "red")).await.expect(201));
    app.wait_for_metric(HOOK_FAILED, 1.0).await;
    app.wait_for_metric(&sent("sms", "admitted", "failed"), 1.0)
        .await;
    app.wait_for_metric(&sent("email", "admitted", "failed"), 1.0)
        .await;
    let p1 = protocol(&app.admit_raw(UNIT, &patient(1, "red")).await.expect(201));
    app.call(ROOM).await.expect(200);
    app.call(ROOM).await.expect(200);
    app.wait_for_metric(HOOK_OK, 3.0).await; // p1 firing, both resolved
    app.wait_for_metric(&sent("sms", "called", "ok"), 2.0).await;
    app.wait_for_metric(&sent("email", "called", "ok"), 2.0)
        .await;
    app.wait_for_metric(&sent("sms", "admitted", "ok"), 1.0)
        .await;
    app.wait_for_metric(&sent("email", "admitted", "ok"), 1.0)
        .await;
    assert_eq!(metrics(&app).await, [0.0; 3]);
    let before = (hook.received().len(), gateway.received().len());
    assert_eq!(before, (4, 4), "{p0} and {p1}");
    assert_eq!(sink.mails().len(), 4);

    // The outage: nothing listens for the webhook, the gateway answers 503,
    // the SMTP server 451.
    drop(hook);
    gateway.answer_from_now_on(503);
    sink.answer_from_now_on(451);

    let mut red = Vec::new();
    let mut yellow = Vec::new();
    for i in 0..RED + YELLOW {
        let colour = if i % 2 == 0 { "red" } else { "yellow" };
        let p = protocol(
            &app.admit_raw(UNIT, &patient(i + 2, colour))
                .await
                .expect(201),
        );
        if colour == "red" {
            red.push(p);
        } else {
            yellow.push(p);
        }
    }
    let admitted = (RED + YELLOW) as f64;
    let mut hooks = RED as f64; // the reds' level 1, at once
    let patience = Duration::from_secs(20);
    wait_for_pending(&app, [hooks, admitted, admitted], patience).await;
    // 12:15 the reds' level 2; 12:24 the yellows' warning (80 % of 30 min);
    // 12:30 the reds' level 3 and the yellows' breach (level 1).
    for (minutes, more) in [(15, RED), (9, YELLOW), (6, RED + YELLOW)] {
        app.advance_and_wake(TimeDelta::minutes(minutes));
        hooks += more as f64;
        wait_for_pending(&app, [hooks, admitted, admitted], patience).await;
    }

    // Only the oldest entry of each outbox is tried, again and again, with
    // the same delivery id; nothing is accepted.
    let head = app
        .journal()
        .outbox_next(0)
        .expect("read the outbox")
        .expect("a pending notification");
    assert!(head.attempts > 0, "tried during the outage");
    let ids = message_ids(&app, &[red.clone(), yellow.clone()].concat()).await;
    let tried = gateway.wait_for(before.1 + 2).await;
    assert!(tried[before.1..]
        .iter()
        .all(|r| r.answered == 503 && r.delivery_id() == ids["sms"][0]));
    let mails = sink.mails();
    assert!(
        mails.len() > 5,
        "the SMTP server was tried: {}",
        mails.len()
    );
    assert!(mails[4..]
        .iter()
        .all(|m| m.answered == 451 && m.delivery_id() == ids["email"][0]));
    assert_eq!(ids["sms"].len(), RED + YELLOW);
    assert_eq!(ids["email"].len(), RED + YELLOW);

    // A restart in the middle changes nothing: the same count, the same head,
    // the same delivery ids, still nothing delivered.
    let app_metrics = metrics(&app).await;
    app = app.restart().await;
    assert_eq!(metrics(&app).await, app_metrics);
    assert_eq!(metrics(&app).await, [hooks, admitted, admitted]);
    let head_after = app
        .journal()
        .outbox_next(0)
        .expect("read the outbox")
        .expect("a pending notification");
    assert_eq!(head_after.delivery_id, head.delivery_id);
    assert!(head_after.attempts >= head.attempts);
    assert_eq!(
        message_ids(&app, &[red.clone(), yellow.clone()].concat()).await,
        ids
    );
    let n = gateway.received().len();
    let retried = gateway.wait_for(n + 1).await;
    assert_eq!(retried[n].delivery_id(), ids["sms"][0], "the same head");
    assert_eq!(app.metric(HOOK_OK).await, 0.0, "counters restart at 0");

    // More queues after the restart: the yellows' levels 2 and 3, and calls
    // (each resolves a red's alert and sends a `called` message per channel).
    for _ in 0..2 {
        app.advance_and_wake(TimeDelta::minutes(15));
        hooks += YELLOW as f64;
        wait_for_pending(&app, [hooks, admitted, admitted], patience).await;
    }
    for p in &red[..CALLED] {
        let called = app.call(ROOM).await.expect(200);
        assert_eq!(called["protocol"], p.as_str(), "most urgent first");
    }
    hooks += CALLED as f64;
    let messages = admitted + CALLED as f64;
    wait_for_pending(&app, [hooks, messages, messages], patience).await;
    let all_ids = message_ids(&app, &red[..CALLED]).await;
    assert_eq!(metrics(&app).await, [hooks, messages, messages]);

    // The receivers are back.
    let outage_end = gateway.received().len();
    let mails_end = sink.mails().len();
    let hook = Receiver::start_on(hook_port, &[], 200).await;
    gateway.answer_from_now_on(200);
    sink.answer_from_now_on(250);
    let started = Instant::now();
    wait_for_pending(&app, [0.0; 3], Duration::from_secs(20)).await;
    let drained = started.elapsed();
    // A quiet moment in which a repeat would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    eprintln!(
        "drained {hooks} webhook notifications and {messages} messages per channel in {drained:?}"
    );

    // Webhook: every notification once, in outbox order from the old head.
    let got = hook.received();
    assert!(got.iter().all(|r| r.answered == 200));
    let arrived: Vec<String> = got.iter().map(Received::delivery_id).collect();
    assert_eq!(arrived[0], head.delivery_id, "the head first");
    let distinct: HashSet<&String> = arrived.iter().collect();
    assert_eq!(distinct.len(), arrived.len(), "a webhook delivered twice");
    assert_eq!(arrived.len() as f64, hooks, "every webhook notification");
    let rows: Vec<u64> = arrived.iter().map(|id| row(id)).collect();
    assert!(rows.windows(2).all(|w| w[0] < w[1]), "outbox order");
    // Per alert: the levels in order, the resolution last.
    let mut per_alert: HashMap<(String, u64), Vec<String>> = HashMap::new();
    for r in &got {
        let v = r.json();
        let a = &v["alert"];
        let step = match v["event"].as_str().expect("event") {
            "alert.firing" => format!("{}{}", a["kind"].as_str().unwrap(), a["level"]),
            other => other.to_owned(),
        };
        per_alert
            .entry((text_at(a, "/protocol"), a["id"].as_u64().unwrap()))
            .or_default()
            .push(step);
    }
    assert_eq!(per_alert.len(), RED + YELLOW, "one alert per patient");
    for ((p, id), steps) in &per_alert {
        let expected: &[&str] = if yellow.contains(p) {
            &["warning0", "breach1", "breach2", "breach3"]
        } else if red[..CALLED].contains(p) {
            &["breach1", "breach2", "breach3", "alert.resolved"]
        } else {
            &["breach1", "breach2", "breach3"]
        };
        assert_eq!(steps, expected, "alert {id} of {p}");
    }

    // Messages: once each, in outbox order, with the ids they had before the
    // restart (then the `called` ones queued after it).
    let mut expected: BTreeMap<String, Vec<String>> = ids;
    for (channel, more) in all_ids {
        let list = expected.entry(channel).or_default();
        list.extend(more);
        list.sort_by_key(|id| row(id));
        list.dedup();
    }
    let sms: Vec<String> = gateway.received()[outage_end..]
        .iter()
        .inspect(|r| assert_eq!(r.answered, 200))
        .map(Received::delivery_id)
        .collect();
    once_in_order("sms", &sms, &expected["sms"]);
    let email: Vec<String> = sink.mails()[mails_end..]
        .iter()
        .inspect(|m| assert_eq!(m.answered, 250))
        .map(Mail::delivery_id)
        .collect();
    once_in_order("email", &email, &expected["email"]);
    for p in red[..CALLED].iter().chain(&yellow[..3]) {
        let states = app
            .get(&format!("/patients/{p}/messages"))
            .await
            .expect(200);
        assert!(
            states
                .as_array()
                .unwrap()
                .iter()
                .all(|m| m["state"] == "delivered"),
            "{p}: {states}"
        );
    }

    // The counters since the restart: everything delivered, nothing failed.
    assert_eq!(metrics(&app).await, [0.0; 3]);
    assert_eq!(app.metric(HOOK_OK).await, hooks);
    assert_eq!(app.metric(HOOK_FAILED).await, 0.0);
    for channel in ["sms", "email"] {
        assert_eq!(app.metric(&sent(channel, "admitted", "ok")).await, admitted);
        assert_eq!(
            app.metric(&sent(channel, "called", "ok")).await,
            CALLED as f64
        );
        assert_eq!(app.metric(&sent(channel, "admitted", "failed")).await, 0.0);
    }
}

/// Receivers that accept the connection and then say nothing (a hung process,
/// a firewall that lets the handshake through): each attempt ends after
/// `alerts.timeout` and is made again, the entries behind it wait, and all go
/// out in order once the receivers answer.
#[tokio::test]
async fn hung_receivers_cost_one_timeout_per_attempt_and_are_tried_again() {
    let hook = Receiver::start(&[], 200).await;
    let sink = SmtpSink::start(&[]).await;
    hook.hang(true);
    sink.hang(true);
    let (hook_url, smtp_url) = (hook.url(), sink.url());
    let app = TestApp::spawn_with(
        move |c: &mut Config| {
            c.alerts.webhooks = vec![WebhookConfig {
                url: hook_url.try_into().expect("an http URL"),
                secret: None,
            }];
            c.alerts.retry_initial = Duration::from_millis(20);
            c.alerts.retry_max = Duration::from_millis(100);
            c.alerts.timeout = Duration::from_millis(300);
            c.notifications = toml::from_str(&format!(
                "[email]\nsmtp_url = \"{smtp_url}\"\nfrom = \"triagem@hospital.example\"\n"
            ))
            .expect("notifications config");
        },
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let first = protocol(&app.admit_raw(UNIT, &patient(1, "red")).await.expect(201));
    let second = protocol(&app.admit_raw(UNIT, &patient(2, "red")).await.expect(201));

    // Each attempt at the oldest entry ends at the timeout and is made again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let hook_attempts = app
            .journal()
            .outbox_next(0)
            .expect("read the outbox")
            .map_or(0, |e| e.attempts);
        let mail = app
            .get(&format!("/patients/{first}/messages"))
            .await
            .expect(200);
        let mail_attempts = mail[0]["attempts"].as_u64().unwrap_or(0);
        if hook_attempts >= 2 && mail_attempts >= 2 {
            assert_eq!(mail[0]["state"], "pending");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "attempts at hung receivers never ended: webhook {hook_attempts}, e-mail {mail_attempts}"
        );
        tokio::time::sleep(POLL * 5).await;
    }
    assert!(
        hook.held() >= 2 && sink.held() >= 2,
        "new connections each time"
    );
    assert!(hook.received().is_empty() && sink.mails().is_empty());
    assert_eq!(app.metric(HOOK_PENDING).await, 2.0);
    assert_eq!(app.metric(EMAIL_PENDING).await, 2.0);

    hook.hang(false);
    sink.hang(false);
    let got = hook.wait_for(2).await;
    let protocols: Vec<String> = got
        .iter()
        .map(|r| text_at(&r.json(), "/alert/protocol"))
        .collect();
    assert_eq!(protocols, [first.clone(), second.clone()], "in order");
    let mails = sink.wait_for(2).await;
    assert!(mails[0].to[0].contains("paciente1@"), "{:?}", mails[0].to);
    assert!(mails[1].to[0].contains("paciente2@"), "{:?}", mails[1].to);
    app.wait_for_metric(HOOK_PENDING, 0.0).await;
    app.wait_for_metric(EMAIL_PENDING, 0.0).await;
    assert_eq!(app.metric(HOOK_FAILED).await, 0.0);
}
