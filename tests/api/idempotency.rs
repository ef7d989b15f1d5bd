//! `Idempotency-Key` on admissions.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{protocol, TestApp, UNIT};

async fn admit_with_key(app: &TestApp, key: &str, body: &Value) -> (u16, Option<String>, String) {
    let r = app
        .client
        .post(app.url(&format!("/units/{UNIT}/patients")))
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("POST");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, location, r.text().await.unwrap())
}

#[tokio::test]
async fn the_same_key_twice_returns_the_first_response_and_admits_one_patient() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Maria Silva", "colour": "yellow"});
    let (s1, l1, b1) = admit_with_key(&app, "desk-1:0001", &body).await;
    app.advance(TimeDelta::seconds(30));
    let (s2, l2, b2) = admit_with_key(&app, "desk-1:0001", &body).await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(b1, b2, "byte-for-byte the same body");
    assert_eq!(l1, l2);
    let v: Value = serde_json::from_str(&b1).unwrap();
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(app.total("treatment").await, 1);

    // Another key is another patient.
    let (s3, _, b3) = admit_with_key(&app, "desk-1:0002", &body).await;
    assert_eq!(s3, 201);
    let v3: Value = serde_json::from_str(&b3).unwrap();
    assert_eq!(v3["protocol"], "20260000000000002");
    assert_eq!(v3["ticket"], "A002");
    assert_eq!(app.total("treatment").await, 2);
    assert_eq!(
        app.care_history(&protocol(&v)).await.len(),
        1,
        "one admitted event"
    );
}

#[tokio::test]
async fn the_same_key_with_another_body_still_returns_the_first_response() {
    let app = TestApp::spawn().await;
    let (_, _, b1) = admit_with_key(&app, "k1", &json!({"name": "Ana"})).await;
    let (s2, _, b2) = admit_with_key(&app, "k1", &json!({"name": "Bia", "colour": "red"})).await;
    assert_eq!(s2, 201);
    assert_eq!(b1, b2);
    assert_eq!(app.total("triage").await, 1);
    assert_eq!(app.total("treatment").await, 0);
}

#[tokio::test]
async fn a_refused_admission_does_not_claim_the_key() {
    let app = TestApp::spawn().await;
    let (s1, _, _) = admit_with_key(&app, "k1", &json!({"name": " "})).await;
    assert_eq!(s1, 422);
    let (s2, _, b2) = admit_with_key(&app, "k1", &json!({"name": "Ana"})).await;
    assert_eq!(s2, 201);
    let v: Value = serde_json::from_str(&b2).unwrap();
    assert_eq!(v["protocol"], "20260000000000001");
}

#[tokio::test]
async fn a_key_is_forgotten_after_24_hours() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Ana"});
    let (_, _, b1) = admit_with_key(&app, "k1", &body).await;
    app.advance(TimeDelta::hours(23));
    let (_, _, b2) = admit_with_key(&app, "k1", &body).await;
    assert_eq!(b1, b2, "still within 24 h");
    app.advance(TimeDelta::hours(1) + TimeDelta::seconds(1));
    let (s3, _, b3) = admit_with_key(&app, "k1", &body).await;
    assert_eq!(s3, 201);
    let v3: Value = serde_json::from_str(&b3).unwrap();
    assert_eq!(v3["protocol"], "20260000000000002");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_requests_with_the_same_key_admit_one_patient() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Maria Silva", "colour": "green"});
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url(&format!("/units/{UNIT}/patients"));
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("Idempotency-Key", "same-key")
                .json(&body)
                .send()
                .await
                .expect("POST");
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    let mut bodies = Vec::new();
    for t in tasks {
        let (status, text) = t.await.unwrap();
        assert_eq!(status, 201, "{text}");
        bodies.push(text);
    }
    assert!(
        bodies.iter().all(|b| *b == bodies[0]),
        "every answer is the first"
    );
    let v: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(app.total("treatment").await, 1);
    // The next admission is consecutive: the replays used up no numbers.
    assert_eq!(
        app.admit("Outra", None).await["protocol"],
        "20260000000000002"
    );
}
