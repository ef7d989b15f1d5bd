//! Messages to patients (docs/api.md, Messages to patients): e-mail to a real
//! SMTP conversation and SMS to an HTTP gateway, both run by the test; only
//! with consent; at least once across a restart, once per `delivery_id`.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use triagem::clock::ManualClock;
use triagem::config::Config;

use crate::helpers::{protocol, start_time, TestApp, ROOM, UNIT};
use crate::receivers::{free_port, text_at, Receiver, SmtpSink};

const SECRET: &str = "gateway secret";
const PUBLIC: &str = "https://triagem.hospital.example";

fn channels(smtp: Option<String>, sms: Option<String>) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        let toml = format!(
            "{}{}",
            smtp.map(|url| format!(
                "[email]\nsmtp_url = \"{url}\"\nfrom = \"Triagem <triagem@hospital.example>\"\n"
            ))
            .unwrap_or_default(),
            sms.map(|url| format!("[sms]\nurl = \"{url}\"\nsecret = \"{SECRET}\"\n"))
                .unwrap_or_default(),
        );
        c.notifications = toml::from_str(&toml).expect("notifications config");
        c.portal.public_url = Some(PUBLIC.to_owned().try_into().expect("a URL"));
        c.alerts.retry_initial = Duration::from_millis(50);
        c.alerts.retry_max = Duration::from_millis(200);
        c.alerts.timeout = Duration::from_secs(2);
    }
}

async fn spawn(smtp: Option<String>, sms: Option<String>) -> TestApp {
    TestApp::spawn_with(
        channels(smtp, sms),
        Arc::new(ManualClock::new(start_time())),
    )
    .await
}

fn maria(consent: bool) -> Value {
    json!({
        "name": "Maria Silva",
        "colour": "green",
        "contact": {"phone": "+5511987654321", "email": "maria@example.com", "consent": consent}
    })
}

async fn messages(app: &TestApp, p: &str) -> Vec<Value> {
    match app
        .get(&format!("/patients/{p}/messages"))
        .await
        .expect(200)
    {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

/// Polls the patient's messages until `ready` holds (5 s at most); returns them.
async fn messages_until(
    app: &TestApp,
    p: &str,
    what: &str,
    ready: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let sent = messages(app, p).await;
        if ready(&sent) {
            return sent;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {sent:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls the patient's messages until `n` of them are delivered; returns them all.
async fn delivered(app: &TestApp, p: &str, n: usize) -> Vec<Value> {
    messages_until(app, p, &format!("not {n} delivered"), |sent| {
        sent.iter().filter(|m| m["state"] == "delivered").count() >= n
    })
    .await
}

/// The desk asks for consent in words that match what the service can send:
/// `/protocol` names the configured channels and events.
#[tokio::test]
async fn the_protocol_says_which_channels_send_messages() {
    let only_sms = spawn(None, Some("http://127.0.0.1:9/sms".into())).await;
    let body = only_sms.get("/protocol").await.expect(200);
    assert_eq!(
        body["messages"],
        json!({"channels": ["sms"], "on": ["admitted", "called"]})
    );
    let both = spawn(
        Some("smtp://127.0.0.1:9".into()),
        Some("http://127.0.0.1:9/sms".into()),
    )
    .await;
    let body = both.get("/protocol").await.expect(200);
    assert_eq!(body["messages"]["channels"], json!(["email", "sms"]));
}

#[tokio::test]
async fn a_consenting_patient_gets_the_protocol_and_link_by_email_and_the_room_by_sms() {
    let sink = SmtpSink::start(&[]).await;
    let gateway = Receiver::start(&[], 200).await;
    let app = spawn(Some(sink.url()), Some(gateway.url())).await;
    let view = app.admit_raw(UNIT, &maria(true)).await.expect(201);
    let p = protocol(&view);
    let follow = view["follow_url"].as_str().unwrap().to_owned();
    assert!(follow.starts_with(&format!("{PUBLIC}/p/{p}#")), "{follow}");
    assert_eq!(view["contact"]["email"], "maria@example.com");

    let mail = sink.wait_for(1).await.remove(0);
    assert!(mail.to[0].contains("maria@example.com"), "{:?}", mail.to);
    assert!(
        mail.from.contains("triagem@hospital.example"),
        "{}",
        mail.from
    );
    assert!(
        mail.header("subject").unwrap().contains(&p),
        "{}",
        mail.data
    );
    assert!(
        mail.body().contains(&follow),
        "the follow link: {}",
        mail.body()
    );
    // RFC 2045: a body with a charset and a transfer encoding is MIME.
    assert_eq!(
        mail.header("mime-version").as_deref(),
        Some("1.0"),
        "{}",
        mail.data
    );

    let sms = gateway.wait_for(1).await.remove(0);
    let body = sms.json();
    assert_eq!(body["to"], "+5511987654321");
    assert_eq!(body["event"], "admitted");
    assert!(text_at(&body, "/text").contains(&p));
    assert!(text_at(&body, "/text").chars().count() <= 160);
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(&sms.body);
    assert_eq!(
        sms.headers["x-triagem-signature"],
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );

    app.call(ROOM).await.expect(200);
    let called = gateway.wait_for(2).await.remove(1).json();
    assert_eq!(called["event"], "called");
    assert_eq!(
        called["text"],
        format!("Senha A001: é a sua vez. Local: {ROOM}")
    );
    sink.wait_for(2).await;

    // Received by the peers; recorded a commit later.
    let sent = delivered(&app, &p, 4).await;
    let states: Vec<(String, String)> = sent
        .iter()
        .map(|m| (text_at(m, "/channel"), text_at(m, "/event")))
        .collect();
    for (channel, event) in [
        ("email", "admitted"),
        ("sms", "admitted"),
        ("email", "called"),
        ("sms", "called"),
    ] {
        let one = (channel.to_owned(), event.to_owned());
        assert!(states.contains(&one), "{channel} {event}: {states:?}");
    }
    assert!(
        !sent.iter().any(|m| m.to_string().contains("maria@")),
        "never the address"
    );
    let ok = "triagem_notifications_total{channel=\"sms\",event=\"called\",result=\"ok\"}";
    app.wait_for_metric(ok, 1.0).await;
}

#[tokio::test]
async fn without_consent_nothing_is_sent() {
    let sink = SmtpSink::start(&[]).await;
    let gateway = Receiver::start(&[], 200).await;
    let app = spawn(Some(sink.url()), Some(gateway.url())).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(false)).await.expect(201));
    app.call(ROOM).await.expect(200);
    // A consenting admission afterwards proves the channels work and are drained.
    app.admit_raw(UNIT, &maria(true)).await.expect(201);
    sink.wait_for(1).await;
    gateway.wait_for(1).await;
    assert!(messages(&app, &p).await.is_empty());
    assert_eq!(sink.mails().len(), 1);
    assert_eq!(gateway.received().len(), 1);
}

#[tokio::test]
async fn a_gateway_down_then_up_across_a_restart_gets_each_message_once() {
    let port = free_port();
    let app = spawn(None, Some(format!("http://127.0.0.1:{port}/sms"))).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(true)).await.expect(201));
    app.call(ROOM).await.expect(200);
    // Refused connections: the first is retried, the second waits behind it.
    let pending = messages_until(&app, &p, "never tried", |sent| {
        sent.len() == 2 && sent[0]["attempts"].as_u64() > Some(1)
    })
    .await;
    assert!(
        pending.iter().all(|m| m["state"] == "pending"),
        "{pending:?}"
    );
    assert!(pending.iter().any(|m| m["attempts"].as_u64() > Some(0)));
    let pending_ids: Vec<String> = pending.iter().map(|m| text_at(m, "/delivery_id")).collect();

    let app = app.restart().await;
    let gateway = Receiver::start_on(port, &[], 200).await;
    let got = gateway.wait_for(2).await;
    let ids: Vec<String> = got.iter().map(|r| r.delivery_id()).collect();
    assert_eq!(ids, pending_ids, "the same delivery ids, in order");
    let events: Vec<Value> = got.iter().map(|r| r.json()["event"].clone()).collect();
    assert_eq!(events, ["admitted", "called"]);
    // A quiet moment in which a duplicate would show.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gateway.received().len(), 2, "each once");
    delivered(&app, &p, 2).await;
}

/// 429 and 408 say "later": a gateway that throttles must not lose a
/// patient's message (another 4xx is final, as before).
#[tokio::test]
async fn a_gateway_that_throttles_gets_the_message_later() {
    let gateway = Receiver::start(&[429, 408], 200).await;
    let app = spawn(None, Some(gateway.url())).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(true)).await.expect(201));
    let sent = delivered(&app, &p, 1).await;
    assert_eq!(sent[0]["attempts"], 3, "{sent:?}");
    let ids: Vec<String> = gateway.received().iter().map(|r| r.delivery_id()).collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one delivery id: {ids:?}"
    );
}

/// A call to the triage room sends its notice too (it was taken for stale:
/// the patient is `in_triage` there, not `called`).
#[tokio::test]
async fn a_call_to_the_triage_room_is_sent() {
    let gateway = Receiver::start(&[], 200).await;
    let app = spawn(None, Some(gateway.url())).await;
    let mut untriaged = maria(true);
    untriaged.as_object_mut().unwrap().remove("colour");
    let p = protocol(&app.admit_raw(UNIT, &untriaged).await.expect(201));
    app.call_triage().await.expect(200);
    let sent = delivered(&app, &p, 2).await;
    assert!(sent.iter().all(|m| m["state"] == "delivered"), "{sent:?}");
    let called = gateway.wait_for(2).await.remove(1).json();
    assert_eq!(called["event"], "called");
    assert!(text_at(&called, "/text").contains("Triagem"), "{called}");
}

/// A call notice held up by an outage is not sent once the patient has been
/// seen: "go to room 1" would reach someone already there (or gone home).
#[tokio::test]
async fn a_call_notice_is_dropped_once_the_patient_is_no_longer_called() {
    let port = free_port();
    let app = spawn(None, Some(format!("http://127.0.0.1:{port}/sms"))).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(true)).await.expect(201));
    app.call(ROOM).await.expect(200);
    app.post_empty(&format!("/patients/{p}/start"))
        .await
        .expect(200);
    let gateway = Receiver::start_on(port, &[], 200).await;
    let sent = messages_until(&app, &p, "still pending", |sent| {
        sent.iter().all(|m| m["state"] != "pending")
    })
    .await;
    let states: Vec<(String, String)> = sent
        .iter()
        .map(|m| (text_at(m, "/event"), text_at(m, "/state")))
        .collect();
    assert_eq!(
        states,
        [
            ("admitted".to_owned(), "delivered".to_owned()),
            ("called".to_owned(), "failed".to_owned())
        ]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events: Vec<Value> = gateway
        .received()
        .iter()
        .map(|r| r.json()["event"].clone())
        .collect();
    assert_eq!(events, ["admitted"], "the stale call never went out");
}

#[tokio::test]
async fn an_sms_gateway_redirect_is_tried_again_never_followed() {
    let gateway = Receiver::start(&[302], 200).await;
    let app = spawn(None, Some(gateway.url())).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(true)).await.expect(201));
    let sent = delivered(&app, &p, 1).await;
    assert_eq!(sent[0]["attempts"], 2, "{sent:?}");
    let paths: Vec<String> = gateway.received().iter().map(|r| r.path.clone()).collect();
    assert!(
        !paths.iter().any(|p| p == "/elsewhere"),
        "a redirect was followed: {paths:?}"
    );
}

#[tokio::test]
async fn an_smtp_4xx_is_tried_again_and_a_5xx_is_final() {
    let sink = SmtpSink::start(&[451, 550]).await;
    let app = spawn(Some(sink.url()), None).await;
    let p = protocol(&app.admit_raw(UNIT, &maria(true)).await.expect(201));
    let failed =
        "triagem_notifications_total{channel=\"email\",event=\"admitted\",result=\"failed\"}";
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while app.metric(failed).await != 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "never failed: {:?}",
            sink.mails()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let tried: Vec<u16> = sink.mails().iter().map(|m| m.answered).collect();
    assert_eq!(
        tried,
        [451, 550],
        "once more after the 451, never after the 550"
    );
    let ids: Vec<Option<String>> = sink
        .mails()
        .iter()
        .map(|m| m.header("message-id"))
        .collect();
    assert_eq!(ids[0], ids[1], "the same Message-ID on every attempt");
    let sent = messages(&app, &p).await;
    assert_eq!(sent[0]["state"], "failed");
    assert_eq!(sent[0]["attempts"], 2);
    // The server's refusal named the patient's address; what is kept of it
    // (and logged) is its code alone.
    let db = rusqlite::Connection::open(app.data_dir().join("triagem.sqlite3")).expect("journal");
    let kept: String = db
        .query_row("SELECT last_error FROM messages", [], |r| r.get(0))
        .expect("the delivery's error");
    assert_eq!(kept, "SMTP 550 (permanent)");
    assert_eq!(
        app.metric("triagem_notifications_pending{channel=\"email\"}")
            .await,
        0.0
    );
}

#[tokio::test]
async fn a_bad_phone_or_email_is_422_naming_the_field() {
    let app = TestApp::spawn().await;
    for (contact, field) in [
        (
            json!({"phone": "11987654321", "consent": true}),
            "contact.phone",
        ),
        (
            json!({"phone": "+55 11 9876", "consent": true}),
            "contact.phone",
        ),
        (
            json!({"email": "maria.example.com", "consent": true}),
            "contact.email",
        ),
        (
            json!({"email": "maria@localhost", "consent": true}),
            "contact.email",
        ),
    ]
    .into_iter()
    // Accepted before, then never sendable: a server without SMTPUTF8
    // refuses non-ASCII (and the retries held every later e-mail), the
    // sender's parser refuses the dots.
    .chain(
        [
            "josé@exemplo.com.br",
            "maria@conceição.com.br",
            "maria\u{200b}@example.com",
            ".maria@example.com",
            "maria.@example.com",
            "ma..ria@example.com",
            "maria@example..com",
            "maria@-example.com",
            "\"maria\"@example.com",
            "maria@[192.0.2.1]",
        ]
        .map(|e| (json!({"email": e, "consent": true}), "contact.email")),
    ) {
        let p = app
            .admit_raw(UNIT, &json!({"name": "Ana", "contact": contact}))
            .await
            .expect_problem(422, "invalid");
        assert_eq!(p["field"], field, "{contact}");
    }
    for email in [
        "maria.silva+ps@exemplo.com.br",
        "o'neil@example.ie",
        "A_B-c@sub.example.org",
    ] {
        app.admit_raw(
            UNIT,
            &json!({"name": "Ana", "contact": {"email": email, "consent": true}}),
        )
        .await
        .expect(201);
    }
    let ok = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "contact": {"email": " ", "consent": false}}),
        )
        .await
        .expect(201);
    assert_eq!(
        ok["contact"],
        json!({"consent": false}),
        "blank is left out"
    );
}
