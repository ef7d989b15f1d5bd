//! `GET /api/v1/patients`: finding a patient by name, document, today's
//! ticket or protocol number, and who is in a room; and `GET /api/v1/session`.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{protocol, TestApp, ROOM, UNIT};

async fn search(app: &TestApp, query: &str) -> Vec<String> {
    let body = app.get(&format!("/patients?{query}")).await.expect(200);
    body["patients"]
        .as_array()
        .expect("patients")
        .iter()
        .map(protocol)
        .collect()
}

async fn admit(app: &TestApp, body: Value) -> String {
    protocol(&app.admit_raw(UNIT, &body).await.expect(201))
}

#[tokio::test]
async fn a_name_is_found_by_its_words_whatever_the_accents_and_case() {
    let app = TestApp::spawn().await;
    let jose = admit(&app, json!({"name": "José da Conceição"})).await;
    app.advance(TimeDelta::minutes(1));
    let joao = admit(&app, json!({"name": "João Conceicao Lima"})).await;
    admit(&app, json!({"name": "Maria Silva"})).await;

    assert_eq!(search(&app, "q=jose").await, [jose.as_str()]);
    assert_eq!(
        search(&app, "q=CONCEIÇÃO").await,
        [joao.as_str(), jose.as_str()],
        "most recent arrival first"
    );
    assert_eq!(
        search(&app, "q=conceicao%20jo%C3%A3o").await,
        [joao.as_str()]
    );
    assert!(search(&app, "q=Pedro").await.is_empty());
    assert!(search(&app, "q=100%25").await.is_empty(), "% is literal");
}

#[tokio::test]
async fn a_document_a_ticket_of_today_and_a_protocol_are_found() {
    let app = TestApp::spawn().await;
    let ana = admit(&app, json!({"name": "Ana", "document": "123.456.789-09"})).await;
    let bia = admit(&app, json!({"name": "Bia"})).await;
    assert_eq!(search(&app, "q=12345678909").await, [ana.as_str()]);
    assert_eq!(search(&app, "q=123.456.789-09").await, [ana.as_str()]);
    assert_eq!(search(&app, "q=a002").await, [bia.as_str()]);
    assert_eq!(search(&app, &format!("q={ana}")).await, [ana.as_str()]);

    // Tomorrow (local), A002 is someone else's ticket: yesterday's is not found by it.
    app.advance(TimeDelta::hours(20));
    assert!(search(&app, "q=A002").await.is_empty());
    assert_eq!(
        search(&app, "q=bia").await,
        [bia.as_str()],
        "the name still finds her"
    );
}

#[tokio::test]
async fn who_is_in_a_room_is_listed_by_status_and_unit() {
    let app = TestApp::spawn().await;
    let waiting = admit(&app, json!({"name": "Espera", "colour": "green"})).await;
    let called = admit(&app, json!({"name": "Chamado", "colour": "red"})).await;
    let triage = admit(&app, json!({"name": "Triagem"})).await;
    let done = admit(&app, json!({"name": "Feito", "colour": "yellow"})).await;
    app.call(ROOM).await.expect(200); // the red one
    app.call(ROOM).await.expect(200); // the yellow one
    app.action(&done, "start").await.expect(200);
    app.finish(&done, "discharged").await.expect(200);
    app.call_triage().await.expect(200);

    let in_rooms = search(
        &app,
        &format!("unit={UNIT}&status=in_triage,called,in_treatment"),
    )
    .await;
    assert_eq!(in_rooms, [triage.as_str(), called.as_str()]);
    let all = search(&app, "limit=50").await;
    assert_eq!(all.len(), 4, "finished patients are found too: {all:?}");
    assert!(all.contains(&waiting));

    // From the journal, so also after a restart.
    let app = app.restart().await;
    assert_eq!(search(&app, "q=feito").await, [done.as_str()]);
    let views = app.get("/patients?q=chamado").await.expect(200);
    assert_eq!(views["patients"][0]["status"], "called");
    assert_eq!(views["patients"][0]["room"], ROOM);
}

#[tokio::test]
async fn a_search_checks_its_query() {
    let app = TestApp::spawn().await;
    app.get("/patients?limit=51")
        .await
        .expect_problem(422, "invalid");
    app.get("/patients?limit=0")
        .await
        .expect_problem(422, "invalid");
    app.get("/patients?limit=many")
        .await
        .expect_problem(400, "malformed");
    app.get("/patients?status=sleeping")
        .await
        .expect_problem(400, "malformed");
    app.get("/patients?unit=nowhere")
        .await
        .expect_problem(404, "not_found");
    app.get("/patients?unit=Nowhere")
        .await
        .expect_problem(404, "not_found");
    app.get("/patients?offset=-1")
        .await
        .expect_problem(400, "malformed");
    app.get("/patients?offset=100001")
        .await
        .expect_problem(422, "invalid");
    // Control characters: a NUL matched every patient (SQLite) or was a
    // journal error (PostgreSQL).
    for q in ["%00", "a%00b", "ana%1B"] {
        app.get(&format!("/patients?q={q}"))
            .await
            .expect_problem(422, "invalid");
    }
    for i in 0..25 {
        admit(&app, json!({"name": format!("Paciente {i}")})).await;
    }
    assert_eq!(search(&app, "q=paciente").await.len(), 20, "20 by default");
}

/// More patients in rooms than a page holds: the next pages, by `offset`,
/// list the rest, none twice, so a busy department's clinician page shows
/// every one of them.
#[tokio::test]
async fn a_listing_longer_than_a_page_is_read_page_by_page() {
    let app = TestApp::spawn().await;
    let mut called = Vec::new();
    for i in 0..57 {
        admit(
            &app,
            json!({"name": format!("Sala {i}"), "colour": "green"}),
        )
        .await;
        called.push(protocol(&app.call(ROOM).await.expect(200)));
    }
    let query = |offset: usize| format!("unit={UNIT}&status=called&limit=50&offset={offset}");
    let first = search(&app, &query(0)).await;
    let second = search(&app, &query(50)).await;
    assert_eq!((first.len(), second.len()), (50, 7));
    assert!(search(&app, &query(100)).await.is_empty());
    let mut all: Vec<String> = first.into_iter().chain(second).collect();
    // Most recent arrival first, across the pages.
    let mut expected = called.clone();
    expected.reverse();
    assert_eq!(all, expected);
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 57);
}

#[tokio::test]
async fn the_session_says_who_calls() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/session").await.expect(200),
        json!({"name": "anonymous", "role": null})
    );
}
