//! The status transitions of one patient: triage, call, start, finish,
//! no-show, recall, transfer, leave; and the history they leave.

use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::{json, Value};
use triagem::clock::ManualClock;

use crate::helpers::{
    protocol, start_time, time, with_second_unit, TestApp, ROOM, TRIAGE_ROOM, UNIT,
};

fn events(history: &[Value]) -> Vec<&str> {
    history
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn history_lists_every_change_oldest_first_with_the_anonymous_actor() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria", None).await);
    app.advance(TimeDelta::minutes(1));
    app.call_triage().await.expect(200);
    app.advance(TimeDelta::minutes(1));
    app.post_json(
        &format!("/patients/{p}/triage"),
        &json!({"colour": "yellow", "note": "dor torácica"}),
    )
    .await
    .expect(200);
    app.advance(TimeDelta::minutes(1));
    app.call(ROOM).await.expect(200);
    app.advance(TimeDelta::minutes(1));
    app.action(&p, "start").await.expect(200);
    app.advance(TimeDelta::minutes(1));
    app.finish(&p, "discharged").await.expect(200);

    let h = app.care_history(&p).await;
    assert_eq!(
        events(&h),
        ["admitted", "called", "triaged", "called", "started", "finished"]
    );
    for (i, e) in h.iter().enumerate() {
        assert_eq!(e["actor"], "anonymous");
        assert_eq!(
            time(&e["at"]),
            start_time() + TimeDelta::minutes(i as i64),
            "entry {i}: {e}"
        );
        assert!(e.get("details").is_some());
    }
    assert_eq!(h[1]["details"]["room"], TRIAGE_ROOM);
    assert_eq!(h[1]["details"]["queue"], "triage");
    assert_eq!(h[2]["details"]["colour"], "yellow");
    assert_eq!(h[3]["details"]["room"], ROOM);
    assert_eq!(h[5]["details"]["outcome"], "discharged");
}

#[tokio::test]
async fn triage_sets_the_colour_keeps_arrival_and_starts_the_colour_clock() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria", None).await);
    app.advance(TimeDelta::minutes(5));
    let v = app.triage(&p, "yellow").await.expect(200);
    assert_eq!(v["status"], "waiting");
    assert_eq!(v["colour"], "yellow");
    assert_eq!(time(&v["arrived_at"]), start_time());
    let triaged = start_time() + TimeDelta::minutes(5);
    assert_eq!(time(&v["triaged_at"]), triaged);
    assert_eq!(v["max_wait_seconds"], 1800);
    assert_eq!(time(&v["due_at"]), triaged + TimeDelta::minutes(30));
    assert_eq!(v["waited_seconds"], 300, "still counted from arrival");
    assert_eq!(v["position"], 1);
    assert_eq!(app.total("triage").await, 0);
    assert_eq!(app.total("treatment").await, 1);
}

#[tokio::test]
async fn a_patient_in_triage_can_be_triaged() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria", None).await);
    let called = app.call_triage().await.expect(200);
    assert_eq!(called["status"], "in_triage");
    let v = app.triage(&p, "green").await.expect(200);
    assert_eq!(v["status"], "waiting");
    assert_eq!(v["room"], json!(null));
    assert_eq!(v["position"], 1);
}

#[tokio::test]
async fn re_triage_moves_the_patient_among_the_new_colour_by_arrival() {
    let app = TestApp::spawn().await;
    let g1 = protocol(&app.admit("G1", Some("green")).await);
    app.advance(TimeDelta::minutes(1));
    let y1 = protocol(&app.admit("Y1", Some("yellow")).await);
    app.advance(TimeDelta::minutes(1));
    let g2 = protocol(&app.admit("G2", Some("green")).await);
    app.advance(TimeDelta::minutes(1));
    let y2 = protocol(&app.admit("Y2", Some("yellow")).await);
    assert_eq!(
        app.queue_protocols("treatment").await,
        [y1.clone(), y2.clone(), g1.clone(), g2.clone()]
    );

    app.advance(TimeDelta::minutes(7));
    let v = app.triage(&g2, "yellow").await.expect(200);
    assert_eq!(v["colour"], "yellow");
    assert_eq!(
        v["position"], 2,
        "G2 arrived before Y2, so it goes ahead of Y2 among the yellows"
    );
    assert_eq!(
        time(&v["arrived_at"]),
        start_time() + TimeDelta::minutes(2),
        "arrived_at is kept"
    );
    let now = start_time() + TimeDelta::minutes(10);
    assert_eq!(time(&v["triaged_at"]), now);
    assert_eq!(time(&v["due_at"]), now + TimeDelta::minutes(30));
    assert_eq!(
        app.queue_protocols("treatment").await,
        [y1.clone(), g2.clone(), y2.clone(), g1.clone()]
    );
    assert_eq!(app.patient(&y2).await["position"], 3);
    assert_eq!(app.patient(&g1).await["position"], 4);

    // Down-grading moves the other way.
    let v = app.triage(&y1, "blue").await.expect(200);
    assert_eq!(v["position"], 4);
    assert_eq!(app.queue_protocols("treatment").await, [g2, y2, g1, y1]);

    let h = app.care_history(&protocol(&v)).await;
    assert_eq!(events(&h), ["admitted", "triaged"]);
    assert_eq!(h[1]["details"]["from"], "yellow");
    assert_eq!(h[1]["details"]["colour"], "blue");
}

#[tokio::test]
async fn calling_an_empty_treatment_queue_answers_204_with_no_body() {
    let app = TestApp::spawn().await;
    app.admit("Na triagem", None).await;
    let r = app.call(ROOM).await;
    assert_eq!(r.status.as_u16(), 204);
    assert!(r.text.is_empty());
    assert!(app.board().await["calls"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn calls_follow_colour_rank_then_arrival() {
    let app = TestApp::spawn().await;
    let mut by_name = std::collections::HashMap::new();
    for (name, colour) in [
        ("blue", "blue"),
        ("green", "green"),
        ("yellow1", "yellow"),
        ("red1", "red"),
        ("yellow2", "yellow"),
        ("red2", "red"),
    ] {
        by_name.insert(protocol(&app.admit(name, Some(colour)).await), name);
        app.advance(TimeDelta::seconds(10));
    }
    let mut order = Vec::new();
    for _ in 0..6 {
        let v = app.call(ROOM).await.expect(200);
        assert_eq!(v["status"], "called");
        assert_eq!(v["room"], ROOM);
        assert_eq!(v["position"], json!(null));
        assert_eq!(time(&v["called_at"]), app.now());
        order.push(by_name[&protocol(&v)]);
    }
    assert_eq!(
        order,
        ["red1", "red2", "yellow1", "yellow2", "green", "blue"]
    );
    assert_eq!(app.call(ROOM).await.status.as_u16(), 204);
}

#[tokio::test]
async fn same_arrival_time_is_broken_by_the_lower_protocol_number() {
    let app = TestApp::spawn().await;
    let at = (start_time() - TimeDelta::minutes(3)).to_rfc3339();
    let mut expected = Vec::new();
    for name in ["A", "B", "C"] {
        let v = app
            .admit_raw(
                UNIT,
                &json!({"name": name, "colour": "green", "arrived_at": at}),
            )
            .await
            .expect(201);
        expected.push(protocol(&v));
    }
    for p in &expected {
        assert_eq!(&protocol(&app.call(ROOM).await.expect(200)), p);
    }
}

#[tokio::test]
async fn a_call_restricted_to_some_colours_takes_the_most_urgent_of_those() {
    let app = TestApp::spawn().await;
    let red = protocol(&app.admit("red", Some("red")).await);
    let green = protocol(&app.admit("green", Some("green")).await);
    let blue = protocol(&app.admit("blue", Some("blue")).await);
    let call = |colours: Value| {
        let app = &app;
        async move {
            app.post_json(
                &format!("/units/{UNIT}/call"),
                &json!({"room": ROOM, "colours": colours}),
            )
            .await
        }
    };
    assert_eq!(
        protocol(&call(json!(["blue", "green"])).await.expect(200)),
        green
    );
    assert_eq!(protocol(&call(json!(["blue"])).await.expect(200)), blue);
    let r = call(json!(["yellow", "blue"])).await;
    assert_eq!(r.status.as_u16(), 204, "no yellow or blue left");
    assert_eq!(app.queue_protocols("treatment").await, [red]);
}

#[tokio::test]
async fn the_triage_queue_is_called_first_come_first_served() {
    let app = TestApp::spawn().await;
    let mut expected = Vec::new();
    for name in ["primeiro", "segundo", "terceiro"] {
        expected.push(protocol(&app.admit(name, None).await));
        app.advance(TimeDelta::seconds(30));
    }
    let yellow = protocol(&app.admit("amarelo", Some("yellow")).await);
    for p in &expected {
        let v = app.call_triage().await.expect(200);
        assert_eq!(&protocol(&v), p);
        assert_eq!(v["status"], "in_triage");
        assert_eq!(v["room"], TRIAGE_ROOM);
        assert_eq!(v["colour"], json!(null));
    }
    assert_eq!(app.call_triage().await.status.as_u16(), 204);
    assert_eq!(
        app.queue_protocols("treatment").await,
        [yellow],
        "the treatment queue is untouched"
    );
}

#[tokio::test]
async fn start_moves_a_called_patient_into_treatment() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria", Some("green")).await);
    app.call(ROOM).await.expect(200);
    let v = app.action(&p, "start").await.expect(200);
    assert_eq!(v["status"], "in_treatment");
    assert_eq!(v["room"], ROOM);
    assert_eq!(v["position"], json!(null));
}

#[tokio::test]
async fn finish_records_the_outcome_from_called_or_in_treatment() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", Some("yellow")).await);
    let b = protocol(&app.admit("B", Some("yellow")).await);
    app.call(ROOM).await.expect(200);
    app.call(ROOM).await.expect(200);
    app.action(&b, "start").await.expect(200);
    app.advance(TimeDelta::minutes(40));

    let va = app.finish(&a, "admitted").await.expect(200);
    assert_eq!(va["status"], "finished");
    assert_eq!(va["outcome"], "admitted");
    assert_eq!(time(&va["closed_at"]), app.now());
    assert_eq!(va["position"], json!(null));

    let vb = app.finish(&b, "deceased").await.expect(200);
    assert_eq!(vb["status"], "finished");
    assert_eq!(vb["outcome"], "deceased");

    for outcome in ["discharged", "transferred"] {
        let p = protocol(&app.admit(outcome, Some("green")).await);
        app.call(ROOM).await.expect(200);
        assert_eq!(
            app.finish(&p, outcome).await.expect(200)["outcome"],
            outcome
        );
    }
}

#[tokio::test]
async fn a_no_show_in_treatment_returns_the_patient_to_their_original_place() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", Some("yellow")).await);
    app.advance(TimeDelta::minutes(1));
    let b = protocol(&app.admit("B", Some("yellow")).await);
    app.advance(TimeDelta::minutes(1));
    let c = protocol(&app.admit("C", Some("yellow")).await);
    assert_eq!(protocol(&app.call(ROOM).await.expect(200)), a);
    app.advance(TimeDelta::minutes(2));

    let v = app.action(&a, "no-show").await.expect(200);
    assert_eq!(v["status"], "waiting");
    assert_eq!(v["no_shows"], 1);
    assert_eq!(v["room"], json!(null));
    assert_eq!(v["position"], 1);
    assert_eq!(time(&v["arrived_at"]), start_time());
    assert_eq!(app.queue_protocols("treatment").await, [a.clone(), b, c]);
    assert_eq!(
        protocol(&app.call(ROOM).await.expect(200)),
        a,
        "called first again"
    );
}

#[tokio::test]
async fn a_no_show_in_triage_returns_the_patient_to_the_head_of_the_triage_queue() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", None).await);
    let b = protocol(&app.admit("B", None).await);
    app.call_triage().await.expect(200);
    let v = app.action(&a, "no-show").await.expect(200);
    assert_eq!(v["status"], "awaiting_triage");
    assert_eq!(v["no_shows"], 1);
    assert_eq!(v["position"], 1);
    assert_eq!(app.queue_protocols("triage").await, [a, b]);
}

#[tokio::test]
async fn the_third_no_show_makes_the_patient_leave_with_reason_no_show() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", Some("green")).await);
    let b = protocol(&app.admit("B", Some("green")).await);
    for n in 1..=2 {
        assert_eq!(protocol(&app.call(ROOM).await.expect(200)), a);
        let v = app.action(&a, "no-show").await.expect(200);
        assert_eq!(v["status"], "waiting");
        assert_eq!(v["no_shows"], n);
    }
    assert_eq!(protocol(&app.call(ROOM).await.expect(200)), a);
    let v = app.action(&a, "no-show").await.expect(200);
    assert_eq!(v["status"], "left");
    assert_eq!(v["leave_reason"], "no_show");
    assert_eq!(v["no_shows"], 3);
    assert_eq!(v["position"], json!(null));
    assert_eq!(app.queue_protocols("treatment").await, [b]);

    let h = app.care_history(&a).await;
    assert_eq!(
        events(&h),
        ["admitted", "called", "no_show", "called", "no_show", "called", "no_show", "left"]
    );
    assert_eq!(h[7]["details"]["reason"], "no_show");
    // Terminal: nothing more can happen.
    app.action(&a, "no-show")
        .await
        .expect_problem(409, "invalid_transition");
}

#[tokio::test]
async fn max_no_shows_comes_from_the_unit_config() {
    let app = TestApp::spawn_with(
        |c| c.units[0].max_no_shows = 1,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let a = protocol(&app.admit("A", None).await);
    app.call_triage().await.expect(200);
    let v = app.action(&a, "no-show").await.expect(200);
    assert_eq!(v["status"], "left");
    assert_eq!(v["leave_reason"], "no_show");
}

#[tokio::test]
async fn recall_announces_the_patient_again_without_changing_the_status() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", Some("red")).await);
    app.call(ROOM).await.expect(200);
    app.advance(TimeDelta::seconds(45));
    let v = app.action(&a, "recall").await.expect(200);
    assert_eq!(v["status"], "called");
    assert_eq!(v["room"], ROOM);
    assert_eq!(
        time(&v["called_at"]),
        start_time(),
        "a recall does not move called_at"
    );

    let calls = app.board().await["calls"].clone();
    assert_eq!(
        calls,
        json!([
            {"ticket": "A001", "room": ROOM, "colour": "red", "queue": "treatment",
             "called_at": "2026-11-28T12:00:45Z"},
            {"ticket": "A001", "room": ROOM, "colour": "red", "queue": "treatment",
             "called_at": "2026-11-28T12:00:00Z"}
        ])
    );
    assert_eq!(
        events(&app.care_history(&a).await),
        ["admitted", "called", "recalled"]
    );
}

#[tokio::test]
async fn recall_works_for_a_patient_called_to_triage() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", None).await);
    app.call_triage().await.expect(200);
    let v = app.action(&a, "recall").await.expect(200);
    assert_eq!(v["status"], "in_triage");
    let calls = app.board().await["calls"].clone();
    assert_eq!(calls.as_array().unwrap().len(), 2);
    assert_eq!(calls[0]["queue"], "triage");
    assert_eq!(calls[0]["room"], TRIAGE_ROOM);
    assert_eq!(calls[0]["colour"], json!(null));
}

#[tokio::test]
async fn transfer_keeps_ticket_protocol_colour_and_arrival_and_a_called_patient_waits_again() {
    let app = TestApp::spawn_with(with_second_unit, Arc::new(ManualClock::new(start_time()))).await;
    let y = app.admit("Amarelo", Some("yellow")).await;
    let py = protocol(&y);
    app.advance(TimeDelta::minutes(5));
    // A yellow admitted to obs later than the transferred patient arrived.
    let o = app
        .admit_raw("obs", &json!({"name": "Obs", "colour": "yellow"}))
        .await
        .expect(201);
    assert_eq!(o["ticket"], "B001");
    app.call(ROOM).await.expect(200);
    app.advance(TimeDelta::minutes(1));

    let v = app
        .post_json(&format!("/patients/{py}/transfer"), &json!({"unit": "obs"}))
        .await
        .expect(200);
    assert_eq!(v["unit"], "obs");
    assert_eq!(v["status"], "waiting", "called returns to waiting");
    assert_eq!(v["room"], json!(null));
    assert_eq!(v["protocol"], y["protocol"]);
    assert_eq!(v["ticket"], "A001");
    assert_eq!(v["colour"], "yellow");
    assert_eq!(v["arrived_at"], y["arrived_at"]);
    assert_eq!(v["triaged_at"], y["triaged_at"]);
    assert_eq!(v["due_at"], y["due_at"]);
    assert_eq!(v["position"], 1, "ahead of the later obs patient");

    let obs = app.get("/units/obs/queue").await.expect(200);
    assert_eq!(obs["total"], 2);
    assert_eq!(obs["patients"][0]["protocol"], py.as_str());
    assert_eq!(obs["patients"][1]["protocol"], o["protocol"]);
    assert_eq!(app.total("treatment").await, 0);

    let h = app.care_history(&py).await;
    assert_eq!(events(&h), ["admitted", "called", "transferred"]);
    assert_eq!(h[2]["details"], json!({"from": "pa", "to": "obs"}));
}

#[tokio::test]
async fn transfer_of_a_patient_awaiting_triage_moves_them_to_the_other_triage_queue() {
    let app = TestApp::spawn_with(with_second_unit, Arc::new(ManualClock::new(start_time()))).await;
    let a = protocol(&app.admit("A", None).await);
    let v = app
        .post_json(&format!("/patients/{a}/transfer"), &json!({"unit": "obs"}))
        .await
        .expect(200);
    assert_eq!(v["status"], "awaiting_triage");
    assert_eq!(v["unit"], "obs");
    assert_eq!(v["position"], 1);
    assert_eq!(app.total("triage").await, 0);
    let obs = app.get("/units/obs/queue?queue=triage").await.expect(200);
    assert_eq!(obs["total"], 1);
    // The obs triage room calls them.
    let called = app
        .post_json(
            "/units/obs/call",
            &json!({"queue": "triage", "room": "Leito 1"}),
        )
        .await
        .expect(200);
    assert_eq!(protocol(&called), a);
}

#[tokio::test]
async fn transfer_to_an_unknown_unit_is_404_and_to_the_same_unit_is_422() {
    let app = TestApp::spawn_with(with_second_unit, Arc::new(ManualClock::new(start_time()))).await;
    let a = protocol(&app.admit("A", Some("green")).await);
    app.post_json(&format!("/patients/{a}/transfer"), &json!({"unit": "uti"}))
        .await
        .expect_problem(404, "not_found");
    app.post_json(&format!("/patients/{a}/transfer"), &json!({"unit": "pa"}))
        .await
        .expect_problem(422, "invalid");
    let v = app.patient(&a).await;
    assert_eq!(v["unit"], "pa");
    assert_eq!(v["position"], 1);
    // Whatever the patient's state: the unit named is checked first.
    app.call(ROOM).await.expect(200);
    app.action(&a, "start").await.expect(200);
    app.post_json(&format!("/patients/{a}/transfer"), &json!({"unit": "uti"}))
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn leave_defaults_to_lwbs_and_takes_the_patient_out_of_the_queue() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", Some("green")).await);
    let b = protocol(&app.admit("B", Some("green")).await);
    app.advance(TimeDelta::minutes(50));
    let v = app.action(&a, "leave").await.expect(200);
    assert_eq!(v["status"], "left");
    assert_eq!(v["leave_reason"], "lwbs");
    assert_eq!(v["position"], json!(null));
    assert_eq!(v["waited_seconds"], 3000);
    assert_eq!(time(&v["closed_at"]), app.now());
    assert_eq!(app.queue_protocols("treatment").await, [b.as_str()]);
    assert_eq!(app.patient(&b).await["position"], 1);

    app.advance(TimeDelta::minutes(10));
    assert_eq!(
        app.patient(&a).await["waited_seconds"],
        3000,
        "the wait stopped when the patient left"
    );
    let h = app.care_history(&a).await;
    assert_eq!(events(&h), ["admitted", "left"]);
    assert_eq!(h[1]["details"]["reason"], "lwbs");
}

#[tokio::test]
async fn leave_accepts_cancelled_and_error_from_any_non_terminal_status() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", None).await);
    let v = app
        .post_json(
            &format!("/patients/{a}/leave"),
            &json!({"reason": "cancelled"}),
        )
        .await
        .expect(200);
    assert_eq!(v["leave_reason"], "cancelled");

    let b = protocol(&app.admit("B", Some("red")).await);
    app.call(ROOM).await.expect(200);
    app.action(&b, "start").await.expect(200);
    let v = app
        .post_json(&format!("/patients/{b}/leave"), &json!({"reason": "error"}))
        .await
        .expect(200);
    assert_eq!(v["status"], "left");
    assert_eq!(v["leave_reason"], "error");

    app.action(&b, "leave")
        .await
        .expect_problem(409, "invalid_transition");
}

#[tokio::test]
async fn leave_with_reason_no_show_is_refused() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("A", None).await);
    app.post_json(
        &format!("/patients/{a}/leave"),
        &json!({"reason": "no_show"}),
    )
    .await
    .expect_problem(422, "invalid");
    assert_eq!(app.patient(&a).await["status"], "awaiting_triage");
}

#[tokio::test]
async fn entries_the_service_writes_itself_carry_the_system_actor() {
    let app = TestApp::spawn().await;
    // Red's target is 0 s: the breach is due at admission.
    let p = protocol(&app.admit("Ana", Some("red")).await);
    app.service.wake_scheduler();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let h = loop {
        let h = app.history(&p).await;
        if events(&h).contains(&"alert.firing") {
            break h;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no alert.firing in {h:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(events(&h)[..2], ["admitted", "alert.firing"]);
    assert_eq!(h[0]["actor"], "anonymous");
    assert_eq!(h[1]["actor"], "system");
    assert_eq!(time(&h[1]["at"]), start_time());

    // Called: the alert resolves, again written by the service.
    app.call(ROOM).await.expect(200);
    let h = app.history(&p).await;
    let actors: Vec<(&str, &str)> = h
        .iter()
        .map(|e| (e["event"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert!(actors.contains(&("called", "anonymous")), "{actors:?}");
    assert!(
        actors.contains(&("alert.resolved", "system")),
        "resolved in the commit of the call: {actors:?}"
    );
    for (event, actor) in &actors {
        if event.starts_with("alert.") {
            assert_eq!(*actor, "system", "{actors:?}");
        }
    }
}

#[tokio::test]
async fn the_triage_note_reaches_the_clinicians_view_never_the_screens() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria", None).await);
    let note = "PA 160x100\ndor 7/10";
    let v = app
        .post_json(
            &format!("/patients/{p}/triage"),
            &json!({"colour": "yellow", "note": note}),
        )
        .await
        .expect(200);
    assert_eq!(v["triage_note"], note);
    // A re-classification without a note keeps the last one.
    let v = app
        .post_json(
            &format!("/patients/{p}/triage"),
            &json!({"colour": "green"}),
        )
        .await
        .expect(200);
    assert_eq!(v["triage_note"], note);
    assert_eq!(app.patient(&p).await["triage_note"], note);
    let q = app.queue("queue=treatment").await;
    assert_eq!(q["patients"][0]["triage_note"], note);
    // Nothing of it on the ward screen's board.
    let board = app.board().await.to_string();
    assert!(!board.contains("PA 160x100"), "{board}");
}
