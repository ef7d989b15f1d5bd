//! `GET /units/{unit}/queue` and `GET /units/{unit}/board`.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{protocol, TestApp, ROOM, UNIT};

fn protocols(page: &Value) -> Vec<String> {
    page["patients"]
        .as_array()
        .expect("patients")
        .iter()
        .map(protocol)
        .collect()
}

/// Admits red, yellow, green, blue twice each, one minute apart, least urgent first.
async fn eight_patients(app: &TestApp) -> Vec<String> {
    let mut by_colour: Vec<(usize, String)> = Vec::new();
    for round in 0..2 {
        for (colour, rank) in [("blue", 3), ("green", 2), ("yellow", 1), ("red", 0)] {
            let v = app.admit(&format!("{colour} {round}"), Some(colour)).await;
            by_colour.push((rank, protocol(&v)));
            app.advance(TimeDelta::minutes(1));
        }
    }
    // Call order: by rank (stable, so by admission within a colour).
    by_colour.sort_by_key(|(rank, _)| *rank);
    by_colour.into_iter().map(|(_, p)| p).collect()
}

#[tokio::test]
async fn the_treatment_queue_lists_patients_in_call_order_with_positions() {
    let app = TestApp::spawn().await;
    let expected = eight_patients(&app).await;
    app.admit("na triagem", None).await;
    let page = app.queue("").await;
    assert_eq!(page["total"], 8, "the default queue is treatment");
    assert_eq!(protocols(&page), expected);
    let colours: Vec<&str> = page["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["colour"].as_str().unwrap())
        .collect();
    assert_eq!(
        colours,
        ["red", "red", "yellow", "yellow", "green", "green", "blue", "blue"]
    );
    for (i, p) in page["patients"].as_array().unwrap().iter().enumerate() {
        assert_eq!(p["position"], i + 1);
        assert!(p["name"].is_string(), "the queue carries names");
    }
    // The queue is what calls take, in that order.
    for p in &expected {
        assert_eq!(&protocol(&app.call(ROOM).await.expect(200)), p);
    }
}

#[tokio::test]
async fn limit_and_offset_page_through_the_queue_and_total_counts_all() {
    let app = TestApp::spawn().await;
    let expected = eight_patients(&app).await;
    let page = app.queue("limit=3").await;
    assert_eq!(page["total"], 8);
    assert_eq!(protocols(&page), expected[..3]);
    let page = app.queue("limit=3&offset=3").await;
    assert_eq!(protocols(&page), expected[3..6]);
    assert_eq!(page["patients"][0]["position"], 4);
    let page = app.queue("limit=3&offset=6").await;
    assert_eq!(protocols(&page), expected[6..]);
    let page = app.queue("offset=8").await;
    assert_eq!(page["total"], 8);
    assert_eq!(page["patients"], json!([]));
    let page = app.queue("limit=0").await;
    assert_eq!(page["patients"], json!([]));
    let page = app.queue("queue=treatment&limit=1000").await;
    assert_eq!(protocols(&page), expected);
}

#[tokio::test]
async fn queue_triage_lists_the_triage_queue_by_arrival() {
    let app = TestApp::spawn().await;
    let late = protocol(&app.admit("chegou por último", None).await);
    let early = protocol(
        &app.admit_raw(
            UNIT,
            &json!({"name": "chegou antes", "arrived_at": "2026-11-28T11:50:00Z"}),
        )
        .await
        .expect(201),
    );
    app.admit("amarelo", Some("yellow")).await;
    let page = app.queue("queue=triage").await;
    assert_eq!(page["total"], 2);
    assert_eq!(protocols(&page), [early, late]);
    assert_eq!(page["patients"][0]["status"], "awaiting_triage");
    assert_eq!(page["patients"][1]["position"], 2);
}

#[tokio::test]
async fn an_empty_queue_has_total_zero() {
    let app = TestApp::spawn().await;
    assert_eq!(app.queue("").await, json!({"total": 0, "patients": []}));
    assert_eq!(
        app.queue("queue=triage").await,
        json!({"total": 0, "patients": []})
    );
}

#[tokio::test]
async fn the_board_lists_one_queue_per_colour_in_protocol_order_then_the_triage_queue() {
    let app = TestApp::spawn().await;
    app.admit("g1", Some("green")).await;
    app.advance(TimeDelta::minutes(4));
    app.admit("g2", Some("green")).await;
    app.admit("y1", Some("yellow")).await;
    app.admit("t1", None).await;
    app.advance(TimeDelta::minutes(1));
    let board = app.board().await;
    assert_eq!(board["unit"], "pa");
    assert_eq!(board["generated_at"], "2026-11-28T12:05:00Z");
    assert_eq!(board["calls"], json!([]));
    assert_eq!(
        board["queues"],
        json!([
            {"colour": "red", "waiting": 0, "longest_wait_seconds": 0, "overdue": 0,
             "next_due_at": null},
            {"colour": "yellow", "waiting": 1, "longest_wait_seconds": 60, "overdue": 0,
             "next_due_at": "2026-11-28T12:34:00Z"},
            {"colour": "green", "waiting": 2, "longest_wait_seconds": 300, "overdue": 0,
             "next_due_at": "2026-11-28T14:00:00Z"},
            {"colour": "blue", "waiting": 0, "longest_wait_seconds": 0, "overdue": 0,
             "next_due_at": null},
            {"colour": null, "waiting": 1, "longest_wait_seconds": 60, "overdue": 0,
             "next_due_at": "2026-11-28T12:14:00Z"}
        ])
    );
}

#[tokio::test]
async fn the_board_keeps_the_last_10_calls_newest_first() {
    let app = TestApp::spawn().await;
    let mut tickets = Vec::new();
    for i in 0..12 {
        let v = app.admit(&format!("P{i}"), Some("green")).await;
        tickets.push(v["ticket"].as_str().unwrap().to_owned());
    }
    for i in 0..12 {
        let room = if i % 2 == 0 {
            "Consultório 1"
        } else {
            "Consultório 2"
        };
        app.call(room).await.expect(200);
        app.advance(TimeDelta::seconds(10));
    }
    let board = app.board().await;
    let calls = board["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 10);
    let shown: Vec<&str> = calls
        .iter()
        .map(|c| c["ticket"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = tickets.iter().rev().take(10).map(String::as_str).collect();
    assert_eq!(shown, newest_first);
    assert_eq!(
        calls[0],
        json!({"ticket": "A012", "room": "Consultório 2", "colour": "green",
               "queue": "treatment", "called_at": "2026-11-28T12:01:50Z"})
    );
    assert_eq!(calls[9]["ticket"], "A003");
    assert_eq!(calls[9]["called_at"], "2026-11-28T12:00:20Z");
}

#[tokio::test]
async fn the_board_never_shows_names_or_protocol_numbers() {
    let app = TestApp::spawn().await;
    let mut secrets = Vec::new();
    for (name, colour) in [
        ("Maria Aparecida da Silva", Some("red")),
        ("José Carlos Pereira", Some("yellow")),
        ("Ana Beatriz Souza", None),
    ] {
        let v = app
            .admit_raw(
                UNIT,
                &json!({"name": name, "colour": colour, "complaint": "febre alta", "document": "98765432100"}),
            )
            .await
            .expect(201);
        secrets.push(name.to_owned());
        secrets.push(protocol(&v));
    }
    app.call(ROOM).await.expect(200);
    app.call_triage().await.expect(200);
    let r = app.get(&format!("/units/{UNIT}/board")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body["calls"].as_array().unwrap().len(), 2);
    for s in secrets
        .iter()
        .chain([&"febre alta".to_owned(), &"98765432100".to_owned()])
    {
        assert!(
            !r.text.contains(s.as_str()),
            "board shows `{s}`: {}",
            r.text
        );
    }
    // Not even a fragment of the protocol's sequence.
    assert!(!r.text.contains("2026000000000"), "{}", r.text);
}

#[tokio::test]
async fn an_unknown_unit_has_no_queue_and_no_board() {
    let app = TestApp::spawn().await;
    app.get("/units/uti/queue")
        .await
        .expect_problem(404, "not_found");
    app.get("/units/uti/board")
        .await
        .expect_problem(404, "not_found");
}
