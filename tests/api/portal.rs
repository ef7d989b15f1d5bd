//! The patient's follow-up (docs/api.md, Patient follow-up): the holder of the
//! receipt sees their case and nothing else; without the code nobody learns
//! anything, not even whether a number exists; guessing is rate-limited.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::{json, Value};
use triagem::clock::ManualClock;
use triagem::config::Config;

use crate::helpers::{protocol, start_time, Resp, TestApp, ROOM, UNIT};

async fn track(app: &TestApp, p: &str, code: Option<&str>, forwarded: Option<&str>) -> Resp {
    let mut req = app.client.get(app.url(&format!("/track/{p}")));
    if let Some(c) = code {
        req = req.header("Triagem-Check-Code", c);
    }
    if let Some(f) = forwarded {
        req = req.header("X-Forwarded-For", f);
    }
    Resp::from(req.send().await.expect("GET")).await
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("an object").keys().cloned().collect()
}

#[tokio::test]
async fn the_holder_of_the_receipt_follows_the_case_and_sees_nothing_else() {
    let app = TestApp::spawn().await;
    let body = json!({
        "name": "Maria Silva", "colour": "green", "complaint": "dor no peito",
        "document": "123", "birth_date": "1980-01-02",
        "contact": {"email": "maria@example.com", "consent": true}
    });
    let view = app.admit_raw(UNIT, &body).await.expect(201);
    let p = protocol(&view);
    let code = view["check_code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(view["follow_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/p/{p}#{code}")));

    let v = track(&app, &p, Some(&code.to_lowercase()), None)
        .await
        .expect(200);
    let expected: BTreeSet<String> = [
        "protocol",
        "ticket",
        "unit",
        "unit_name",
        "status",
        "colour",
        "colour_label",
        "position",
        "ahead",
        "estimated_wait",
        "room",
        "called_at",
        "arrived_at",
        "triaged_at",
        "closed_at",
        "updated_at",
        "timezone",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(keys(&v), expected, "nothing beyond the follow-up view");
    for secret in ["Maria", "dor no peito", "123", "1980", "maria@"] {
        assert!(!v.to_string().contains(secret), "{secret} leaked: {v}");
    }
    assert_eq!(v["unit_name"], "Pronto Atendimento");
    assert_eq!(v["colour_label"], "Verde");
    assert_eq!(
        v["timezone"], "America/Sao_Paulo",
        "the page shows the receipt's times"
    );
    assert_eq!(
        (v["position"].clone(), v["ahead"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(v["estimated_wait"], Value::Null, "no history yet");
    assert_eq!(v["room"], Value::Null);

    app.advance(TimeDelta::minutes(3));
    app.call(ROOM).await.expect(200);
    let v = track(&app, &p, Some(&code), None).await.expect(200);
    assert_eq!(v["status"], "called");
    assert_eq!(v["room"], ROOM);
    assert_eq!(v["position"], Value::Null);
    app.action(&p, "start").await.expect(200);
    app.finish(&p, "discharged").await.expect(200);
    let v = track(&app, &p, Some(&code), None).await.expect(200);
    assert_eq!(v["status"], "finished");
    assert!(v["closed_at"].is_string(), "proof of attendance: {v}");
    assert_eq!(v["room"], Value::Null);
    let lookups = app
        .history(&p)
        .await
        .iter()
        .filter(|e| e["event"].as_str().is_some_and(|n| n.contains("track")))
        .count();
    assert_eq!(lookups, 0, "lookups are not written to the history");
}

#[tokio::test]
async fn an_unknown_protocol_a_missing_code_and_a_wrong_one_get_the_same_answer() {
    let app = TestApp::spawn().await;
    let view = app.admit("Maria Silva", Some("green")).await;
    let p = protocol(&view);
    let code = view["check_code"].as_str().unwrap();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let answers = [
        track(&app, &p, Some(wrong), None).await,
        track(&app, &p, None, None).await,
        track(&app, &p, Some("not a code"), None).await,
        track(&app, "20260000000000999", Some(code), None).await,
        track(&app, "20260000000000000", Some(code), None).await,
    ];
    let first = answers[0].body.clone();
    for r in answers {
        assert_eq!(r.status.as_u16(), 404);
        assert_eq!(
            r.body, first,
            "one answer for every way of not holding the receipt"
        );
    }
    track(&app, "2026", Some(code), None)
        .await
        .expect_problem(400, "malformed");
}

#[tokio::test]
async fn a_thousand_guesses_get_the_same_answer_and_meet_the_rate_limit() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria Silva", Some("green")).await);
    let (mut not_found, mut limited) = (BTreeSet::new(), 0);
    for i in 0..1000 {
        let guess = format!("{:06}", i);
        let r = track(&app, &p, Some(&guess), None).await;
        match r.status.as_u16() {
            404 => {
                not_found.insert(r.text.clone());
            }
            429 => {
                limited += 1;
                assert_eq!(r.header("retry-after"), Some("60"), "a full minute at :00");
                assert_eq!(r.body["code"], "rate_limited");
            }
            other => panic!("guess {guess}: {other} {}", r.text),
        }
    }
    assert_eq!(not_found.len(), 1, "identical answers: {not_found:?}");
    assert_eq!(limited, 1000 - 20, "20 lookups a minute from one address");
    app.advance(TimeDelta::seconds(45));
    let r = track(&app, &p, Some("000000"), None).await;
    assert_eq!(
        r.header("retry-after"),
        Some("15"),
        "the seconds left in the minute"
    );
    app.advance(TimeDelta::seconds(15));
    assert_eq!(
        track(&app, &p, Some("000000"), None).await.status.as_u16(),
        404
    );
}

/// The estimate the holder of `v`'s receipt sees.
async fn estimate(app: &TestApp, v: &Value) -> Value {
    let code = v["check_code"].as_str().unwrap().to_owned();
    track(app, &protocol(v), Some(&code), None)
        .await
        .expect(200)["estimated_wait"]
        .clone()
}

fn behind_a_proxy(c: &mut Config) {
    c.server.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    c.portal.lookups_per_minute = 2;
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_allowance() {
    let app = TestApp::spawn_with(behind_a_proxy, Arc::new(ManualClock::new(start_time()))).await;
    let p = protocol(&app.admit("Maria Silva", Some("green")).await);
    for _ in 0..2 {
        track(&app, &p, None, Some("203.0.113.7")).await.expect(404);
    }
    track(&app, &p, None, Some("203.0.113.7"))
        .await
        .expect_problem(429, "rate_limited");
    // Another client behind the same proxy, even if it forges an earlier hop.
    track(&app, &p, None, Some("203.0.113.7, 198.51.100.9"))
        .await
        .expect(404);

    // Without trusting the proxy, the header counts for nothing.
    let app = TestApp::spawn_with(
        |c| c.portal.lookups_per_minute = 2,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    for forwarded in ["203.0.113.1", "203.0.113.2"] {
        track(&app, &p, None, Some(forwarded)).await.expect(404);
    }
    track(&app, &p, None, Some("203.0.113.3"))
        .await
        .expect_problem(429, "rate_limited");
}

#[tokio::test]
async fn with_the_portal_off_the_follow_up_answers_404_and_staff_still_see_the_code() {
    let app = TestApp::spawn_with(
        |c| c.portal.enabled = false,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let view = app.admit("Maria Silva", Some("green")).await;
    let code = view["check_code"].as_str().unwrap();
    track(&app, &protocol(&view), Some(code), None)
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn the_wait_estimate_is_a_range_once_the_queue_has_history_and_never_for_red() {
    let app = TestApp::spawn().await;
    // Two hours of calls, one every 10 minutes.
    for _ in 0..8 {
        app.admit("Chamado", Some("green")).await;
        app.call(ROOM).await.expect(200);
        app.advance(TimeDelta::minutes(10));
    }
    let green: Vec<Value> = [
        app.admit("Ana", Some("green")).await,
        app.admit("Bia", Some("green")).await,
        app.admit("Caio", Some("green")).await,
    ]
    .into();
    let red = app.admit("Davi", Some("red")).await;
    let first = estimate(&app, &green[0]).await;
    let third = estimate(&app, &green[2]).await;
    assert!(
        first["low_seconds"].as_i64() <= first["high_seconds"].as_i64(),
        "{first}"
    );
    assert!(
        third["low_seconds"].as_i64() > first["low_seconds"].as_i64(),
        "more ahead, a later range: {first} {third}"
    );
    assert_eq!(
        estimate(&app, &red).await,
        Value::Null,
        "red is called at once"
    );
}

#[tokio::test]
async fn the_follow_up_page_is_served_without_a_token_and_not_with_the_portal_off() {
    let app = TestApp::spawn().await;
    for path in ["/p", "/p/20260000000000001"] {
        let r = app.get_abs(path).await;
        assert_eq!(r.status.as_u16(), 200, "{path}");
        assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
        assert!(r.text.contains("/assets/follow.js"), "{path}");
    }
    let off = TestApp::spawn_with(
        |c| c.portal.enabled = false,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    off.get_abs("/p/20260000000000001")
        .await
        .expect_problem(404, "not_found");
}
