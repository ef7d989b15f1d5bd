//! `POST /units/{unit}/patients` and `GET /patients/{protocol}`.

use std::sync::Arc;

use chrono::{Datelike, TimeDelta};
use serde_json::json;
use triagem::clock::ManualClock;

use crate::helpers::{protocol, start_time, time, TestApp, UNIT};

#[tokio::test]
async fn admitting_with_a_colour_answers_201_with_location_and_the_full_patient_view() {
    let app = TestApp::spawn().await;
    let r = app
        .admit_raw(
            UNIT,
            &json!({
                "name": "  Maria Silva  ",
                "colour": "yellow",
                "complaint": "chest pain",
                "birth_date": "1970-05-04",
                "document": "123.456.789-00"
            }),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{}", r.text);
    assert_eq!(
        r.header("location"),
        Some("/api/v1/patients/20260000000000001")
    );
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let v = r.body;
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(v["ticket"], "A001");
    assert_eq!(v["unit"], "pa");
    assert_eq!(v["name"], "Maria Silva", "the name is trimmed");
    assert_eq!(v["colour"], "yellow");
    assert_eq!(v["status"], "waiting");
    assert_eq!(v["complaint"], "chest pain");
    assert_eq!(v["birth_date"], "1970-05-04");
    assert_eq!(v["document"], "123.456.789-00");
    assert_eq!(time(&v["arrived_at"]), start_time());
    assert_eq!(time(&v["admitted_at"]), start_time());
    assert_eq!(
        time(&v["triaged_at"]),
        start_time(),
        "admitted with a colour is triaged at admission"
    );
    assert_eq!(v["max_wait_seconds"], 1800);
    assert_eq!(time(&v["due_at"]), start_time() + TimeDelta::minutes(30));
    assert_eq!(v["waited_seconds"], 0);
    assert_eq!(v["overdue"], false);
    assert_eq!(v["position"], 1);
    assert_eq!(v["room"], json!(null));
    assert_eq!(v["no_shows"], 0);
    assert_eq!(v["outcome"], json!(null));
}

#[tokio::test]
async fn admitting_without_a_colour_puts_the_patient_in_the_triage_queue() {
    let app = TestApp::spawn().await;
    let v = app.admit("João Souza", None).await;
    assert_eq!(v["status"], "awaiting_triage");
    assert_eq!(v["colour"], json!(null));
    assert_eq!(v["triaged_at"], json!(null));
    assert_eq!(v["max_wait_seconds"], 600, "triage_max_wait is 10 min");
    assert_eq!(
        time(&v["due_at"]),
        start_time() + TimeDelta::minutes(10),
        "counted from arrival"
    );
    assert_eq!(v["position"], 1);
    assert_eq!(app.total("triage").await, 1);
    assert_eq!(app.total("treatment").await, 0);
}

#[tokio::test]
async fn protocol_numbers_are_17_digits_of_the_current_year_and_consecutive() {
    let app = TestApp::spawn().await;
    let mut protocols = Vec::new();
    for (i, colour) in [Some("green"), None, Some("red"), None].iter().enumerate() {
        let v = app.admit(&format!("Paciente {i}"), *colour).await;
        protocols.push(protocol(&v));
    }
    assert_eq!(
        protocols,
        [
            "20260000000000001",
            "20260000000000002",
            "20260000000000003",
            "20260000000000004"
        ]
    );
    for p in &protocols {
        assert_eq!(p.len(), 17);
        assert!(p.bytes().all(|b| b.is_ascii_digit()));
        assert!(p.starts_with(&start_time().year().to_string()));
    }
}

#[tokio::test]
async fn tickets_count_up_from_a001_whatever_the_colour() {
    let app = TestApp::spawn().await;
    let mut tickets = Vec::new();
    for colour in [None, Some("blue"), Some("red"), None, Some("yellow")] {
        tickets.push(app.admit("Ana", colour).await["ticket"].clone());
    }
    assert_eq!(
        tickets,
        [
            json!("A001"),
            "A002".into(),
            "A003".into(),
            "A004".into(),
            "A005".into()
        ]
    );
}

#[tokio::test]
async fn tickets_restart_the_next_local_day_but_protocol_numbers_go_on() {
    let app = TestApp::spawn().await;
    let ana = app.admit("Ana", None).await;
    assert_eq!(ana["ticket"], "A001");
    assert_eq!(app.admit("Bia", None).await["ticket"], "A002");
    // 2026-11-28T12:00Z is 09:00 in São Paulo; local midnight is 03:00Z next day.
    app.advance(TimeDelta::hours(14)); // 02:00Z on the 29th: still the 28th locally
    let same_day = app.admit("Caio", None).await;
    assert_eq!(same_day["ticket"], "A003");
    // Ana goes home; Bia and Caio still wait when the day turns.
    app.post_json(
        &format!("/patients/{}/leave", protocol(&ana)),
        &json!({"reason": "lwbs"}),
    )
    .await
    .expect(200);
    app.advance(TimeDelta::hours(2)); // 04:00Z: 01:00 on the 29th locally
    let next_day = app.admit("Davi", None).await;
    assert_eq!(next_day["ticket"], "A001");
    assert_eq!(next_day["protocol"], "20260000000000004");
    // A002 and A003 are still in the waiting room: never issued twice.
    assert_eq!(app.admit("Eva", None).await["ticket"], "A004");
}

#[tokio::test]
async fn the_protocol_year_is_the_local_year_and_the_sequence_restarts_on_new_year() {
    // 01:00Z on 1 January 2027 is still 31 December 2026 in São Paulo.
    let clock = Arc::new(ManualClock::new("2027-01-01T01:00:00Z".parse().unwrap()));
    let app = TestApp::spawn_with(|_| {}, clock).await;
    assert_eq!(
        app.admit("Ana", None).await["protocol"],
        "20260000000000001"
    );
    assert_eq!(
        app.admit("Bia", None).await["protocol"],
        "20260000000000002"
    );
    app.advance(TimeDelta::hours(3)); // 01:00 local on 1 January 2027
    let v = app.admit("Caio", None).await;
    assert_eq!(v["protocol"], "20270000000000001");
    assert_eq!(v["ticket"], "A003", "a new day; Ana and Bia still wait");
}

#[tokio::test]
async fn get_patient_returns_the_view_given_at_admission() {
    let app = TestApp::spawn().await;
    let admitted = app.admit("Maria Silva", Some("green")).await;
    let fetched = app.patient(&protocol(&admitted)).await;
    assert_eq!(fetched, admitted);
}

#[tokio::test]
async fn an_arrival_in_the_past_is_kept_and_counts_toward_the_wait() {
    let app = TestApp::spawn().await;
    let arrived = start_time() - TimeDelta::minutes(20);
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "colour": "green", "arrived_at": arrived.to_rfc3339()}),
        )
        .await
        .expect(201);
    assert_eq!(time(&v["arrived_at"]), arrived);
    assert_eq!(time(&v["admitted_at"]), start_time());
    assert_eq!(v["waited_seconds"], 1200);
    assert_eq!(
        time(&v["due_at"]),
        start_time() + TimeDelta::hours(2),
        "the colour's clock starts at triage"
    );
}

#[tokio::test]
async fn an_arrival_up_to_5_seconds_in_the_future_is_taken_as_now() {
    let app = TestApp::spawn().await;
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "arrived_at": (start_time() + TimeDelta::seconds(5)).to_rfc3339()}),
        )
        .await
        .expect(201);
    assert_eq!(time(&v["arrived_at"]), start_time());
    assert_eq!(v["waited_seconds"], 0);
}

#[tokio::test]
async fn an_arrival_just_under_24_hours_ago_is_accepted() {
    let app = TestApp::spawn().await;
    let arrived = start_time() - TimeDelta::hours(24) + TimeDelta::seconds(1);
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "arrived_at": arrived.to_rfc3339()}),
        )
        .await
        .expect(201);
    assert_eq!(v["waited_seconds"], 24 * 3600 - 1);
    assert_eq!(v["overdue"], true, "10 min triage wait long past");
}

#[tokio::test]
async fn the_position_reflects_colour_then_arrival() {
    let app = TestApp::spawn().await;
    let green = app.admit("Verde", Some("green")).await;
    assert_eq!(green["position"], 1);
    let yellow = app.admit("Amarelo", Some("yellow")).await;
    assert_eq!(yellow["position"], 1, "yellow goes ahead of green");
    let red = app.admit("Vermelho", Some("red")).await;
    assert_eq!(red["position"], 1);
    let yellow2 = app.admit("Amarelo 2", Some("yellow")).await;
    assert_eq!(yellow2["position"], 3, "behind red and the earlier yellow");
    assert_eq!(app.patient(&protocol(&green)).await["position"], 4);
    assert_eq!(app.patient(&protocol(&yellow)).await["position"], 2);
}

#[tokio::test]
async fn an_earlier_arrival_goes_ahead_within_its_colour() {
    let app = TestApp::spawn().await;
    let now = app.admit("Chegou agora", Some("green")).await;
    let earlier = app
        .admit_raw(
            UNIT,
            &json!({
                "name": "Chegou antes",
                "colour": "green",
                "arrived_at": (start_time() - TimeDelta::minutes(10)).to_rfc3339()
            }),
        )
        .await
        .expect(201);
    assert_eq!(earlier["position"], 1);
    assert_eq!(app.patient(&protocol(&now)).await["position"], 2);
    assert_eq!(
        app.queue_protocols("treatment").await,
        [protocol(&earlier), protocol(&now)]
    );
}

#[tokio::test]
async fn empty_optional_fields_are_stored_as_null() {
    let app = TestApp::spawn().await;
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "complaint": "  ", "document": ""}),
        )
        .await
        .expect(201);
    assert_eq!(v["complaint"], json!(null));
    assert_eq!(v["document"], json!(null));
    assert_eq!(v["birth_date"], json!(null));
}

#[tokio::test]
async fn a_200_character_name_is_accepted() {
    let app = TestApp::spawn().await;
    let name = "é".repeat(200);
    let v = app.admit(&name, None).await;
    assert_eq!(v["name"], name.as_str());
}
