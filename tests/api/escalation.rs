//! Escalation (docs/api.md, Alerts and escalation): warning, breach and the
//! ladder levels of one waiting episode as one alert, acknowledgement,
//! resolution, the `/alerts` endpoints and their errors, and firing exactly
//! once across restarts.
//!
//! The scheduler runs on real time but reads the manual clock: after moving the
//! clock a test wakes it and polls `/alerts` until the expected state appears.
//! That something did *not* fire is judged only once a sentinel patient whose
//! deadline is the same moment (or later) has fired, and histories (read from
//! the journal) only once the commit in question is on disk, so no test
//! waits on luck.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{protocol, start_time, time, with_second_unit, TestApp, ROOM};

fn at(minutes: i64, seconds: i64) -> DateTime<Utc> {
    start_time() + TimeDelta::minutes(minutes) + TimeDelta::seconds(seconds)
}

fn id(alert: &Value) -> u64 {
    alert["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {alert}"))
}

async fn ack(app: &TestApp, id: u64, by: &str) -> Value {
    app.post_json(&format!("/alerts/{id}/ack"), &json!({ "by": by }))
        .await
        .expect(200)
}

/// `(event, actor, level)` of the alert entries of a patient's history, once
/// it holds at least `at_least` of them.
async fn alert_trail(app: &TestApp, p: &str, at_least: usize) -> Vec<(String, String, u64)> {
    app.wait_for_alert_history(p, at_least)
        .await
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["actor"].as_str().expect("actor").to_owned(),
                e["details"]["level"].as_u64().expect("details.level"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_red_patient_gets_a_level_1_breach_alert_at_admission() {
    let app = TestApp::spawn().await;
    let v = app.admit("Ana", Some("red")).await;
    let p = protocol(&v);
    // No clock move and no wake: the admission itself brings the deadline forward.
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    assert_eq!(a["id"], 1, "the first alert of a fresh service");
    assert_eq!(a["protocol"], p.as_str());
    assert_eq!(a["ticket"], "A001");
    assert_eq!(a["unit"], "pa");
    assert_eq!(a["colour"], "red");
    assert_eq!(a["kind"], "breach");
    assert_eq!(a["level_name"], "nursing-coordinator");
    assert_eq!(a["state"], "firing");
    assert_eq!(a["waited_seconds"], 0);
    assert_eq!(a["max_wait_seconds"], 0);
    assert_eq!(time(&a["arrived_at"]), time(&v["arrived_at"]));
    assert_eq!(time(&a["fired_at"]), start_time());
    assert_eq!(a["acknowledged_at"], Value::Null);
    assert_eq!(a["acknowledged_by"], Value::Null);
    assert_eq!(a["resolved_at"], Value::Null);
    assert_eq!(app.alerts("").await, vec![a.clone()], "active by default");
    assert_eq!(app.alerts("state=active").await, vec![a]);
}

#[tokio::test]
async fn a_yellow_wait_warns_at_24_minutes_breaches_at_30_and_reaches_level_2_at_45_as_one_alert() {
    let app = TestApp::spawn().await;
    let y = protocol(&app.admit("Ana", Some("yellow")).await);
    // A sentinel awaiting triage (10 min target) whose warning is due at 23:59.
    app.advance(TimeDelta::minutes(15) + TimeDelta::seconds(59));
    let s = protocol(&app.admit("Sentinela", None).await);
    app.advance_and_wake(TimeDelta::minutes(8));
    let sw = app.wait_for_alert(&s, |a| a["kind"] == "warning").await;
    assert_eq!(time(&sw["fired_at"]), at(23, 59));
    assert!(
        app.alerts("state=all")
            .await
            .iter()
            .all(|a| a["protocol"] != y.as_str()),
        "nothing for the yellow patient at 23:59"
    );

    app.advance_and_wake(TimeDelta::seconds(1));
    let w = app.wait_for_alert(&y, |a| a["kind"] == "warning").await;
    assert_eq!(w["level"], 0);
    assert_eq!(w["level_name"], "warning");
    assert_eq!(w["state"], "firing");
    assert_eq!(w["colour"], "yellow");
    assert_eq!(w["max_wait_seconds"], 1800);
    assert_eq!(w["waited_seconds"], 24 * 60);
    assert_eq!(time(&w["fired_at"]), at(24, 0));

    app.advance_and_wake(TimeDelta::minutes(6));
    let b1 = app.wait_for_alert(&y, |a| a["level"] == 1).await;
    assert_eq!(b1["id"], w["id"], "the breach advances the same alert");
    assert_eq!(b1["kind"], "breach");
    assert_eq!(b1["level_name"], "nursing-coordinator");
    assert_eq!(b1["state"], "firing");
    assert_eq!(b1["waited_seconds"], 30 * 60);
    assert_eq!(time(&b1["fired_at"]), at(30, 0));

    app.advance_and_wake(TimeDelta::minutes(15));
    let b2 = app.wait_for_alert(&y, |a| a["level"] == 2).await;
    assert_eq!(b2["id"], w["id"]);
    assert_eq!(b2["kind"], "breach");
    assert_eq!(b2["level_name"], "physician-on-duty");
    assert_eq!(b2["state"], "firing");
    assert_eq!(time(&b2["fired_at"]), at(45, 0));
    assert_eq!(time(&b2["arrived_at"]), start_time());

    // The history holds one system-written entry per step, in order.
    let h = app.wait_for_alert_history(&y, 3).await;
    assert_eq!(
        alert_trail(&app, &y, 3).await,
        [
            ("alert.firing".to_owned(), "system".to_owned(), 0),
            ("alert.firing".to_owned(), "system".to_owned(), 1),
            ("alert.firing".to_owned(), "system".to_owned(), 2),
        ]
    );
    let times: Vec<_> = h.iter().map(|e| time(&e["at"])).collect();
    assert_eq!(times, [at(24, 0), at(30, 0), at(45, 0)]);
    for e in &h {
        assert_eq!(e["details"]["alert"], w["id"], "{e}");
    }
    assert_eq!(h[1]["details"]["kind"], "breach");
    assert_eq!(h[2]["details"]["level_name"], "physician-on-duty");

    // Metrics count the committed steps: the sentinel warned and breached too.
    for (sample, value) in [
        ("triagem_alerts_total{kind=\"warning\",level=\"0\"}", 2.0),
        ("triagem_alerts_total{kind=\"breach\",level=\"1\"}", 2.0),
        ("triagem_alerts_total{kind=\"breach\",level=\"2\"}", 2.0),
        ("triagem_breaches_total{colour=\"yellow\",unit=\"pa\"}", 1.0),
        (
            "triagem_breaches_total{colour=\"untriaged\",unit=\"pa\"}",
            1.0,
        ),
        ("triagem_breaches_total{colour=\"red\",unit=\"pa\"}", 0.0),
    ] {
        assert_eq!(app.metric(sample).await, value, "{sample}");
    }
}

#[tokio::test]
async fn acknowledging_a_breach_records_who_and_stops_the_later_levels() {
    let app = TestApp::spawn().await;
    let a = protocol(&app.admit("Ana", Some("red")).await);
    // Same deadlines as Ana: its level 2 proves the scheduler looked at 15 min.
    let s = protocol(&app.admit("Sentinela", Some("red")).await);
    let alert = app.wait_for_alert(&a, |x| x["level"] == 1).await;
    app.wait_for_alert(&s, |x| x["level"] == 1).await;

    app.advance(TimeDelta::minutes(1));
    let acked = ack(&app, id(&alert), "Enf. Ana").await;
    assert_eq!(acked["id"], alert["id"]);
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "Enf. Ana");
    assert_eq!(time(&acked["acknowledged_at"]), at(1, 0));
    assert_eq!(acked["kind"], "breach");
    assert_eq!(acked["level"], 1);
    assert_eq!(acked["waited_seconds"], 60);
    let active = app.alerts("").await;
    assert!(
        active.contains(&acked),
        "an acknowledged alert is still active: {active:?}"
    );

    // Acknowledging again changes nothing.
    app.advance(TimeDelta::minutes(1));
    let again = ack(&app, id(&alert), "Dr. Outro").await;
    assert_eq!(again["acknowledged_by"], "Enf. Ana");
    assert_eq!(time(&again["acknowledged_at"]), at(1, 0));

    app.advance_and_wake(TimeDelta::minutes(13));
    let s2 = app.wait_for_alert(&s, |x| x["level"] == 2).await;
    assert_eq!(time(&s2["fired_at"]), at(15, 0));
    let now = app
        .alerts("state=all")
        .await
        .into_iter()
        .find(|x| x["id"] == alert["id"])
        .expect("Ana's alert");
    assert_eq!(now["level"], 1, "level 2 never fires after the ack");
    assert_eq!(now["state"], "acknowledged");
    // Ana's level 2, had it fired, would be in the commit of the sentinel's.
    app.wait_for_alert_history(&s, 2).await;
    assert_eq!(
        alert_trail(&app, &a, 2).await,
        [
            ("alert.firing".to_owned(), "system".to_owned(), 1),
            ("alert.acknowledged".to_owned(), "anonymous".to_owned(), 1),
        ],
        "one firing, one acknowledgement by the caller"
    );
}

#[tokio::test]
async fn acknowledging_a_warning_does_not_stop_the_breach_or_its_ladder() {
    let app = TestApp::spawn().await;
    let y = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance_and_wake(TimeDelta::minutes(24));
    let w = app.wait_for_alert(&y, |a| a["kind"] == "warning").await;
    let acked = ack(&app, id(&w), "Enf. Ana").await;
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["kind"], "warning");
    assert_eq!(acked["level"], 0);

    app.advance_and_wake(TimeDelta::minutes(6));
    let b1 = app.wait_for_alert(&y, |a| a["level"] == 1).await;
    assert_eq!(b1["id"], w["id"]);
    assert_eq!(b1["kind"], "breach");
    assert_eq!(b1["state"], "firing", "the breach is a new fact");
    assert_eq!(time(&b1["fired_at"]), at(30, 0));

    app.advance_and_wake(TimeDelta::minutes(15));
    let b2 = app.wait_for_alert(&y, |a| a["level"] == 2).await;
    assert_eq!(b2["state"], "firing");
    assert_eq!(time(&b2["fired_at"]), at(45, 0));
    let acked = ack(&app, id(&b2), "Dr. Bruno").await;
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "Dr. Bruno");
    assert_eq!(acked["level"], 2);
}

#[tokio::test]
async fn calling_the_patient_resolves_the_alert() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    app.advance(TimeDelta::minutes(2));
    app.call(ROOM).await.expect(200);

    assert_eq!(app.alerts("state=active").await, Vec::<Value>::new());
    assert_eq!(app.alerts("").await, Vec::<Value>::new());
    let all = app.alerts("state=all").await;
    assert_eq!(all.len(), 1, "{all:?}");
    let r = &all[0];
    assert_eq!(r["id"], a["id"]);
    assert_eq!(r["state"], "resolved");
    assert_eq!(time(&r["resolved_at"]), at(2, 0));
    assert_eq!(r["waited_seconds"], 120, "the wait ends at the resolution");
    assert_eq!(r["level"], 1, "the level it reached is kept");

    // The resolved alert stays put as time goes on.
    app.advance_and_wake(TimeDelta::minutes(20));
    assert_eq!(app.alerts("state=all").await[0]["waited_seconds"], 120);
    let trail = alert_trail(&app, &p, 2).await;
    assert_eq!(
        trail.last(),
        Some(&("alert.resolved".to_owned(), "system".to_owned(), 1))
    );
}

#[tokio::test]
async fn re_triage_to_a_colour_with_time_left_resolves_the_alert() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance_and_wake(TimeDelta::minutes(31));
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    app.triage(&p, "green").await.expect(200);
    let all = app.alerts("state=all").await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0]["id"], a["id"]);
    assert_eq!(all[0]["state"], "resolved");
    assert_eq!(time(&all[0]["resolved_at"]), at(31, 0));
    assert!(app.alerts("").await.is_empty());
}

/// An overdue yellow patient, acknowledged, then re-classified red: the red
/// patient is a new fact. The yellow alert ends and a red one fires at once;
/// kept, the acknowledged alert stayed silent (and read back yellow after a
/// restart).
#[tokio::test]
async fn re_triage_to_a_more_urgent_colour_past_its_deadline_fires_a_new_alert() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance_and_wake(TimeDelta::minutes(31));
    let yellow = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    ack(&app, id(&yellow), "Enf. Ana").await;
    app.advance(TimeDelta::minutes(1));
    app.triage(&p, "red").await.expect(200);
    let red = app
        .wait_for_alert(&p, |a| a["colour"] == "red" && a["level"] == 1)
        .await;
    assert_ne!(red["id"], yellow["id"], "a new alert");
    assert_eq!(red["state"], "firing");
    assert_eq!(red["max_wait_seconds"], 0);
    assert_eq!(time(&red["fired_at"]), at(32, 0));
    let all = app.alerts("state=all").await;
    let old = all
        .iter()
        .find(|a| a["id"] == yellow["id"])
        .expect("yellow");
    assert_eq!(old["state"], "resolved");

    // As it was, after a restart.
    let app = app.restart().await;
    let active = app.alerts("").await;
    assert_eq!(active.len(), 1, "{active:?}");
    assert_eq!(active[0]["id"], red["id"]);
    assert_eq!(active[0]["colour"], "red");
}

/// A waiting patient's running alert follows them to another unit, and stays
/// there after a restart (it read back in the unit they had left).
#[tokio::test]
async fn a_transferred_patients_alert_stays_in_the_new_unit_across_a_restart() {
    let app = TestApp::spawn_with(
        with_second_unit,
        std::sync::Arc::new(triagem::clock::ManualClock::new(start_time())),
    )
    .await;
    let p = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance_and_wake(TimeDelta::minutes(25));
    let warned = app.wait_for_alert(&p, |a| a["level"] == 0).await;
    app.post_json(&format!("/patients/{p}/transfer"), &json!({"unit": "obs"}))
        .await
        .expect(200);
    let moved = app.alerts("unit=obs").await;
    assert_eq!(moved.len(), 1, "{moved:?}");
    assert_eq!(moved[0]["id"], warned["id"]);

    let app = app.restart().await;
    let obs = app.alerts("unit=obs").await;
    assert_eq!(obs.len(), 1, "{obs:?}");
    assert_eq!(obs[0]["id"], warned["id"]);
    assert!(app.alerts("unit=pa").await.is_empty());
    // The breach that follows is the new unit's.
    app.advance_and_wake(TimeDelta::minutes(5));
    let breach = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    assert_eq!(breach["unit"], "obs");
}

#[tokio::test]
async fn the_alert_list_filters_by_unit_and_lists_newest_first() {
    let app = TestApp::spawn_with(
        with_second_unit,
        std::sync::Arc::new(triagem::clock::ManualClock::new(start_time())),
    )
    .await;
    let pa = protocol(&app.admit("Ana", Some("red")).await);
    let obs = protocol(
        &app.admit_raw("obs", &json!({"name": "Bia", "colour": "red"}))
            .await
            .expect(201),
    );
    let a_pa = app.wait_for_alert(&pa, |a| a["level"] == 1).await;
    let a_obs = app.wait_for_alert(&obs, |a| a["level"] == 1).await;
    assert_eq!(a_obs["unit"], "obs");
    assert_eq!(a_obs["ticket"], "B001");

    assert_eq!(app.alerts("unit=pa").await, vec![a_pa.clone()]);
    assert_eq!(app.alerts("unit=obs").await, vec![a_obs.clone()]);
    assert_eq!(app.alerts("unit=pa&state=all").await, vec![a_pa.clone()]);
    assert_eq!(app.alerts("").await, vec![a_obs, a_pa], "newest first");

    app.get("/alerts?unit=nope")
        .await
        .expect_problem(404, "not_found");
    app.get("/alerts?state=firing")
        .await
        .expect_problem(400, "malformed");
    app.get("/alerts?unit=nope&state=all")
        .await
        .expect_problem(404, "not_found");
}

#[tokio::test]
async fn acknowledging_an_unknown_a_malformed_or_a_resolved_alert_is_refused() {
    let app = TestApp::spawn().await;
    app.post_json("/alerts/999/ack", &json!({"by": "Enf. Ana"}))
        .await
        .expect_problem(404, "not_found");
    app.post_json("/alerts/abc/ack", &json!({"by": "Enf. Ana"}))
        .await
        .expect_problem(400, "malformed");
    app.post_json("/alerts/-1/ack", &json!({"by": "Enf. Ana"}))
        .await
        .expect_problem(400, "malformed");

    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    app.post_json(&format!("/alerts/{}/ack", id(&a)), &json!({"by": "  "}))
        .await
        .expect_problem(422, "invalid");
    app.call(ROOM).await.expect(200);
    app.post_json(
        &format!("/alerts/{}/ack", id(&a)),
        &json!({"by": "Enf. Ana"}),
    )
    .await
    .expect_problem(409, "invalid_transition");
    let all = app.alerts("state=all").await;
    assert_eq!(
        all[0]["state"], "resolved",
        "the refused ack changed nothing"
    );
    assert_eq!(all[0]["acknowledged_by"], Value::Null);
}

#[tokio::test]
async fn an_ack_by_with_control_characters_is_422_and_leaves_the_alert_firing() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    let problem = app
        .post_json(
            &format!("/alerts/{}/ack", id(&a)),
            &json!({"by": "Enf\u{0}Ana\u{1b}[31m"}),
        )
        .await
        .expect_problem(422, "invalid");
    assert_eq!(problem["field"], "by");
    // An override made "(reconhecido: Ana)" read as another name on the
    // clinician page; a name of zero-width spaces named nobody.
    for by in ["\u{202e}anA .fnE", "Ana \u{2067}X", "\u{200b}\u{200b}"] {
        let problem = app
            .post_json(&format!("/alerts/{}/ack", id(&a)), &json!({ "by": by }))
            .await
            .expect_problem(422, "invalid");
        assert_eq!(problem["field"], "by", "{by:?}");
    }
    assert_eq!(
        ack(&app, id(&a), "Enf. Ana").await["acknowledged_by"],
        "Enf. Ana"
    );
}

#[tokio::test]
async fn an_ack_without_a_body_is_recorded_as_the_caller() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let a = app.wait_for_alert(&p, |a| a["level"] == 1).await;
    let acked = app
        .post_empty(&format!("/alerts/{}/ack", id(&a)))
        .await
        .expect(200);
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "anonymous");
}

#[tokio::test]
async fn no_level_fires_twice_across_restarts_and_a_level_due_while_down_fires_after() {
    let mut app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let l1 = app.wait_for_alert(&p, |a| a["level"] == 1).await;

    // Level 2 falls due while the service is down.
    app.stop().await;
    app.advance(TimeDelta::minutes(15));
    let mut app = app.restart().await;
    let l2 = app.wait_for_alert(&p, |a| a["level"] == 2).await;
    assert_eq!(l2["id"], l1["id"]);
    assert_eq!(l2["level_name"], "physician-on-duty");
    assert_eq!(time(&l2["fired_at"]), at(15, 0));
    // Level 1 (due earlier) would have fired in the same pass as level 2.
    assert_eq!(
        alert_trail(&app, &p, 2).await,
        [
            ("alert.firing".to_owned(), "system".to_owned(), 1),
            ("alert.firing".to_owned(), "system".to_owned(), 2),
        ]
    );

    // Another restart with nothing of Ana's due; a sentinel awaiting triage
    // warns at 24:00 and proves the new scheduler has run.
    app.advance(TimeDelta::minutes(1));
    let s = protocol(&app.admit("Sentinela", None).await);
    app.stop().await;
    app.advance(TimeDelta::minutes(8));
    let app = app.restart().await;
    let sw = app.wait_for_alert(&s, |a| a["kind"] == "warning").await;
    assert_eq!(time(&sw["fired_at"]), at(24, 0));
    assert_eq!(id(&sw), id(&l1) + 1, "alert ids continue after a restart");
    // A repeat of Ana's steps would be in the commit of the sentinel's warning.
    app.wait_for_alert_history(&s, 1).await;
    assert_eq!(
        alert_trail(&app, &p, 2).await.len(),
        2,
        "nothing fired again"
    );
    let ana = app
        .alerts("")
        .await
        .into_iter()
        .find(|a| a["protocol"] == p.as_str())
        .expect("Ana's alert is still active");
    assert_eq!(ana["level"], 2);
    assert_eq!(ana["fired_at"], l2["fired_at"]);
    assert_eq!(ana["state"], "firing");
}

#[tokio::test]
async fn a_warning_and_a_breach_both_due_while_down_both_fire_after_in_order() {
    let mut app = TestApp::spawn().await;
    let y = protocol(&app.admit("Bia", Some("yellow")).await);
    // The warning (24 min) and the breach (30 min) fall due while it is down.
    app.stop().await;
    app.advance(TimeDelta::minutes(31));
    let app = app.restart().await;
    let breach = app.wait_for_alert(&y, |a| a["level"] == 1).await;
    assert_eq!(time(&breach["fired_at"]), at(31, 0));
    let firing = |level| ("alert.firing".to_owned(), "system".to_owned(), level);
    assert_eq!(alert_trail(&app, &y, 2).await, [firing(0), firing(1)]);
    let warnings = app
        .metric("triagem_alerts_total{kind=\"warning\",level=\"0\"}")
        .await;
    assert_eq!(warnings, 1.0);
}
