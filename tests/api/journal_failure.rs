//! A journal that cannot commit: 503, nothing changed, and recovery.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{protocol, TestApp, UNIT};

#[tokio::test]
async fn a_failed_commit_is_503_changes_nothing_and_the_service_recovers() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("Ana", Some("yellow")).await);
    let b = protocol(&app.admit("Bia", None).await);
    assert_eq!(b, "20260000000000002");
    let history_b = app.care_history(&b).await;

    app.journal().inject_commit_failures(true);
    let r = app
        .admit_raw(UNIT, &json!({"name": "Caio", "colour": "red"}))
        .await;
    assert_eq!(r.header("retry-after"), Some("1"));
    let p = r.expect_problem(503, "unavailable");
    assert!(
        !p["detail"].as_str().unwrap().contains("injected"),
        "a 5xx says nothing internal: {p}"
    );
    app.get_abs("/readyz")
        .await
        .expect_problem(503, "unavailable");
    // While the journal is failing, every change is refused.
    app.triage(&b, "green")
        .await
        .expect_problem(503, "unavailable");
    app.action(&a, "leave")
        .await
        .expect_problem(503, "unavailable");
    app.get_abs("/healthz").await.expect(200);

    app.journal().inject_commit_failures(false);
    app.wait_ready(Duration::from_secs(10)).await;

    // The failed admission left no trace.
    assert_eq!(app.queue_protocols("treatment").await, [a.as_str()]);
    assert_eq!(app.queue_protocols("triage").await, [b.as_str()]);
    app.get("/patients/20260000000000003")
        .await
        .expect_problem(404, "not_found");
    assert_eq!(app.patient(&b).await["status"], "awaiting_triage");
    assert_eq!(app.care_history(&b).await, history_b);
    assert!(
        app.board().await["queues"][0]["waiting"] == 0,
        "no red patient"
    );

    // The next number is consecutive with the last successful one: none skipped.
    let c = app.admit("Caio", Some("red")).await;
    assert_eq!(c["protocol"], "20260000000000003");
    assert_eq!(c["ticket"], "A003");
    assert_eq!(app.triage(&b, "green").await.expect(200)["colour"], "green");
}

#[tokio::test]
async fn an_idempotency_key_of_a_failed_admission_is_not_remembered() {
    let app = TestApp::spawn().await;
    let send = |app: &TestApp| {
        app.client
            .post(app.url(&format!("/units/{UNIT}/patients")))
            .header("Idempotency-Key", "retry-me")
            .json(&json!({"name": "Ana"}))
            .send()
    };
    app.journal().inject_commit_failures(true);
    assert_eq!(send(&app).await.unwrap().status().as_u16(), 503);
    assert_eq!(
        send(&app).await.unwrap().status().as_u16(),
        503,
        "a retry while failing is refused, not answered from the failed attempt"
    );
    app.journal().inject_commit_failures(false);
    app.wait_ready(Duration::from_secs(10)).await;
    let r = send(&app).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(app.total("triage").await, 1);
}

#[tokio::test]
async fn while_the_journal_is_failing_no_read_shows_a_refused_change() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("Ana", Some("yellow")).await);
    app.journal().inject_commit_failures(true);
    app.admit_raw(UNIT, &json!({"name": "Fantasma", "colour": "red"}))
        .await
        .expect_problem(503, "unavailable");
    let refused = "20260000000000002";

    // A read may be refused too, but must never show what was refused.
    let queue = app.get(&format!("/units/{UNIT}/queue")).await;
    match queue.status.as_u16() {
        503 => {
            queue.expect_problem(503, "unavailable");
        }
        200 => {
            assert_eq!(queue.body["total"], 1, "{}", queue.text);
            assert!(!queue.text.contains("Fantasma"), "{}", queue.text);
        }
        s => panic!("queue read gave {s}: {}", queue.text),
    }
    let board = app.get(&format!("/units/{UNIT}/board")).await;
    match board.status.as_u16() {
        503 => {
            board.expect_problem(503, "unavailable");
        }
        200 => assert_eq!(board.body["queues"][0]["waiting"], 0, "{}", board.text),
        s => panic!("board read gave {s}: {}", board.text),
    }
    let p = app.get(&format!("/patients/{refused}")).await;
    assert!(
        matches!(p.status.as_u16(), 404 | 503),
        "the refused admission is visible: {}",
        p.text
    );
    let p = app.get(&format!("/patients/{a}")).await;
    match p.status.as_u16() {
        503 => {}
        200 => assert_eq!(p.body["position"], 1, "{}", p.text),
        s => panic!("patient read gave {s}: {}", p.text),
    }

    app.journal().inject_commit_failures(false);
    app.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(app.queue_protocols("treatment").await, [a]);
}

/// Rebuilding memory after a failure reads the whole journal (seconds at a
/// million patients): it must not hold the department lock meanwhile, or
/// every request, the metrics scrape included, waits on it.
#[tokio::test]
async fn while_memory_is_rebuilt_every_request_is_answered_at_once() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("Ana", Some("yellow")).await);
    app.journal().pause_reloads(true);
    app.journal().inject_commit_failures(true);
    app.admit_raw(UNIT, &json!({"name": "Bia"}))
        .await
        .expect_problem(503, "unavailable");
    app.journal().inject_commit_failures(false);
    // The recovery task's reload is now under way, held by the pause.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.journal().paused_reloads() == 0 {
        assert!(std::time::Instant::now() < deadline, "no reload began");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let quick = app
        .client
        .get(format!("{}/metrics", app.address))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .expect("/metrics answers while memory is rebuilt");
    assert_eq!(quick.status(), 200);
    app.get_abs("/readyz")
        .await
        .expect_problem(503, "unavailable");
    app.get(&format!("/patients/{a}"))
        .await
        .expect_problem(503, "unavailable");
    app.get(&format!("/units/{UNIT}/board"))
        .await
        .expect_problem(503, "unavailable");
    app.admit_raw(UNIT, &json!({"name": "Caio"}))
        .await
        .expect_problem(503, "unavailable");

    app.journal().pause_reloads(false);
    app.wait_ready(Duration::from_secs(10)).await;
    assert_eq!(app.queue_protocols("treatment").await, [a.as_str()]);
}

/// A retry with the first attempt's Idempotency-Key is answered from memory;
/// while the first attempt is not yet durable it must wait for it, and fail
/// with it: a replay answered 201 before the first commit failed gave the
/// patient a receipt for an admission that was never saved (and its number
/// and ticket to the next patient).
#[tokio::test]
async fn a_replay_waits_for_the_first_attempt_and_fails_with_it() {
    let app = TestApp::spawn().await;
    // Hold the journal's writer (in a paused reload) so commits queue up.
    app.journal().pause_reloads(true);
    let service = app.service.clone();
    let held =
        tokio::task::spawn_blocking(move || service.journal().expect("open").reload().map(|_| ()));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while app.journal().paused_reloads() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer never held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Every commit queued from now on fails when the writer goes on.
    app.journal().inject_commit_failures(true);
    let send = || {
        app.client
            .post(app.url(&format!("/units/{UNIT}/patients")))
            .header("Idempotency-Key", "desk-7-attempt-1")
            .json(&json!({"name": "Maria Original", "colour": "green"}))
            .send()
    };
    let first = tokio::spawn(send());
    // Applied in memory, not durable: the queue shows her.
    while app.queue_protocols("treatment").await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "never applied");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut replay = tokio::spawn(send());
    let early = tokio::time::timeout(Duration::from_millis(300), &mut replay).await;
    // Let the writer go before any assertion: a failing test must not hang
    // on the held reload.
    app.journal().pause_reloads(false);
    held.await.expect("join").expect("the held reload");
    assert!(
        early.is_err(),
        "the replay was answered before the first attempt was durable: {:?}",
        early.map(|r| r.map(|r| r.map(|r| r.status())))
    );
    let status = |r: reqwest::Response| r.status().as_u16();
    assert_eq!(status(first.await.expect("join").expect("first")), 503);
    assert_eq!(status(replay.await.expect("join").expect("replay")), 503);

    app.journal().inject_commit_failures(false);
    app.wait_ready(Duration::from_secs(10)).await;
    app.get("/patients/20260000000000001")
        .await
        .expect_problem(404, "not_found");
    // The key was never remembered: the desk's next retry admits her.
    let again = send().await.expect("retry");
    assert_eq!(again.status().as_u16(), 201);
    let view: serde_json::Value = again.json().await.expect("JSON");
    assert_eq!(view["protocol"], "20260000000000001");
    assert_eq!(view["name"], "Maria Original");
}
