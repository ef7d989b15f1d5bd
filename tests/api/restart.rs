//! Stopping the service and starting a new one on the same data dir.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};
use triagem::clock::ManualClock;

use crate::helpers::{protocol, TestApp, ROOM, UNIT};

/// Everything a client can see of `pa`, with the clock standing still.
async fn visible_state(app: &TestApp, protocols: &[String]) -> Vec<Value> {
    let mut out = vec![
        app.queue("queue=treatment&limit=1000").await,
        app.queue("queue=triage&limit=1000").await,
        app.board().await,
    ];
    for p in protocols {
        out.push(app.patient(p).await);
        out.push(Value::Array(app.care_history(p).await));
    }
    out
}

#[tokio::test]
async fn a_restart_keeps_queues_positions_calls_and_the_numbering() {
    let app = TestApp::spawn().await;
    let mut all = Vec::new();
    for (name, colour) in [
        ("y1", Some("yellow")),
        ("g1", Some("green")),
        ("t1", None),
        ("r1", Some("red")),
        ("b1", Some("blue")),
        ("t2", None),
        ("y2", Some("yellow")),
        ("r2", Some("red")),
    ] {
        all.push(protocol(&app.admit(name, colour).await));
        app.advance(TimeDelta::seconds(20));
    }
    // An earlier arrival admitted late, a re-triage, a call, a triage call, a recall,
    // a no-show and a finished patient: the state a restart must rebuild.
    let early = app
        .admit_raw(
            UNIT,
            &json!({"name": "early", "colour": "green", "arrived_at": "2026-11-28T11:30:00Z"}),
        )
        .await
        .expect(201);
    all.push(protocol(&early));
    app.triage(&all[4], "yellow").await.expect(200); // b1 → yellow
    let called = app.call(ROOM).await.expect(200); // r1
    app.advance(TimeDelta::seconds(20));
    app.call_triage().await.expect(200); // t1
    app.action(&protocol(&called), "recall").await.expect(200);
    let r2 = app.call("Consultório 2").await.expect(200);
    assert_eq!(protocol(&r2), all[7]);
    app.action(&all[7], "no-show").await.expect(200);
    let again = app.call("Consultório 2").await.expect(200);
    assert_eq!(protocol(&again), all[7], "back at the head of the reds");
    assert_eq!(again["no_shows"], 1);
    let y1 = app.call(ROOM).await.expect(200);
    assert_eq!(protocol(&y1), all[0]);
    app.finish(&all[0], "discharged").await.expect(200);
    app.advance(TimeDelta::minutes(3));

    let before = visible_state(&app, &all).await;
    assert_eq!(before[0]["total"], 4, "g1, b1(yellow), y2, early");
    assert_eq!(before[1]["total"], 1, "t2");
    assert_eq!(before[2]["calls"].as_array().unwrap().len(), 6);

    let app = app.restart().await;
    let after = visible_state(&app, &all).await;
    assert_eq!(
        after[0], before[0],
        "same treatment queue, order and positions"
    );
    assert_eq!(after[1], before[1], "same triage queue");
    assert_eq!(after[2], before[2], "same board, calls included");
    assert_eq!(after, before, "same patients and histories");

    // Numbering continues where it stopped.
    let next = app.admit("next", Some("blue")).await;
    assert_eq!(next["protocol"], "20260000000000010");
    assert_eq!(next["ticket"], "A010");
    // And the restored queue behaves: the next call is the yellow that arrived first.
    let v = app.call(ROOM).await.expect(200);
    assert_eq!(
        protocol(&v),
        all[4],
        "b1, re-triaged to yellow, arrived before y2"
    );
}

#[tokio::test]
async fn an_idempotency_key_still_answers_after_a_restart() {
    // The journal reloads keys by the wall clock, so this test's clock is the wall clock.
    let clock = Arc::new(ManualClock::new(Utc::now()));
    let app = TestApp::spawn_with(|_| {}, clock).await;
    let send = |app: &TestApp| {
        app.client
            .post(app.url(&format!("/units/{UNIT}/patients")))
            .header("Idempotency-Key", "desk-2:77")
            .json(&json!({"name": "Ana", "colour": "green"}))
            .send()
    };
    let first = send(&app).await.unwrap().text().await.unwrap();
    let app = app.restart().await;
    let r = send(&app).await.unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.text().await.unwrap(), first);
    assert_eq!(app.total("treatment").await, 1);
}

#[tokio::test]
async fn a_restart_of_an_empty_service_starts_numbering_at_one() {
    let app = TestApp::spawn().await;
    let app = app.restart().await;
    let v = app.admit("Ana", None).await;
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(v["ticket"], "A001");
}

#[tokio::test]
async fn two_restarts_in_a_row_lose_nothing() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("Ana", Some("yellow")).await);
    let app = app.restart().await;
    let b = protocol(&app.admit("Bia", Some("red")).await);
    let app = app.restart().await;
    assert_eq!(app.queue_protocols("treatment").await, [b, a]);
    assert_eq!(app.admit("Caio", None).await["ticket"], "A003");
}

#[tokio::test]
async fn sub_millisecond_arrivals_keep_their_order_across_a_restart() {
    let app = TestApp::spawn().await;
    let later = app
        .admit_raw(
            UNIT,
            &json!({"name": "A", "colour": "green", "arrived_at": "2026-11-28T11:59:00.000900Z"}),
        )
        .await
        .expect(201);
    let earlier = app
        .admit_raw(
            UNIT,
            &json!({"name": "B", "colour": "green", "arrived_at": "2026-11-28T11:59:00.000100Z"}),
        )
        .await
        .expect(201);
    let order = [protocol(&earlier), protocol(&later)];
    assert_eq!(app.queue_protocols("treatment").await, order);
    let app = app.restart().await;
    assert_eq!(app.queue_protocols("treatment").await, order);
    assert_eq!(
        app.patient(&protocol(&later)).await["arrived_at"],
        later["arrived_at"]
    );
}

#[tokio::test]
async fn the_board_keeps_its_last_10_calls_across_a_restart() {
    let app = TestApp::spawn().await;
    for i in 0..12 {
        app.admit(&format!("P{i}"), None).await;
    }
    for _ in 0..12 {
        app.call_triage().await.expect(200);
        app.advance(TimeDelta::seconds(7));
    }
    let before = app.board().await;
    assert_eq!(before["calls"].as_array().unwrap().len(), 10);
    assert_eq!(before["calls"][0]["ticket"], "A012");
    let app = app.restart().await;
    assert_eq!(app.board().await, before);
}

/// The operator's restore (README: the backup put back as the database file,
/// its `-wal` and `-shm` removed) loses the patients admitted after the
/// backup, but not their numbers: the next admission goes on after the last
/// one issued, so no receipt's number and check code open another patient's
/// case.
#[tokio::test]
async fn a_journal_restored_from_a_backup_never_issues_a_number_again() {
    let backup = tempfile::tempdir().expect("backup dir");
    let journal_files = [
        "triagem.sqlite3",
        "triagem.sqlite3-wal",
        "triagem.sqlite3-shm",
    ];
    let app = TestApp::spawn().await;
    let kept = app.admit("Ana", Some("green")).await;
    let app = app
        .restart_with(|dir| {
            for f in journal_files {
                if dir.join(f).exists() {
                    std::fs::copy(dir.join(f), backup.path().join(f)).expect("back up");
                }
            }
        })
        .await;
    let lost = app.admit("Bia", Some("yellow")).await;
    let app = app
        .restart_with(|dir| {
            for f in journal_files {
                let _ = std::fs::remove_file(dir.join(f));
                if backup.path().join(f).exists() {
                    std::fs::copy(backup.path().join(f), dir.join(f)).expect("restore");
                }
            }
        })
        .await;
    // The backup's patient is back; the one admitted after it is not.
    assert_eq!(app.queue_protocols("treatment").await, [protocol(&kept)]);
    app.get(&format!("/patients/{}", protocol(&lost)))
        .await
        .expect(404);

    let next = app.admit("Caio", Some("green")).await;
    assert!(
        protocol(&next) > protocol(&lost),
        "{} was issued after {}",
        protocol(&next),
        protocol(&lost)
    );
    assert_ne!(next["check_code"], lost["check_code"]);
    // Nothing else is skipped: the one after the last issued.
    assert_eq!(protocol(&next), "20260000000000003");
}
