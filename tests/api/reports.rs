//! `/api/v1/reports/…` through the real service: a shift run with a hand-moved
//! clock, the numbers the reports give, that they agree with the metrics over
//! the same period, and that a restart changes none of them.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{protocol, TestApp, ROOM, UNIT};

const DAY: &str = "from=2026-11-28&to=2026-11-28";

async fn summary(app: &TestApp, query: &str) -> Value {
    app.get(&format!("/reports/summary?{query}"))
        .await
        .expect(200)
}

/// A morning: four arrivals, one of them leaving unseen, one called late.
async fn morning(app: &TestApp) {
    let a = protocol(&app.admit("Ana", None).await); // 12:00 (09:00 local)
    app.advance(TimeDelta::minutes(5));
    app.call_triage().await.expect(200);
    app.triage(&a, "yellow").await.expect(200); // 12:05
    let b = protocol(&app.admit("Bia", Some("green")).await); // 12:05, triaged at admission
    app.advance(TimeDelta::minutes(20));
    app.call(ROOM).await.expect(200); // Ana, 20 min after triage: within 30
    app.action(&a, "start").await.expect(200);
    app.advance(TimeDelta::minutes(35));
    app.finish(&a, "discharged").await.expect(200); // 13:00: stay 60 min
    let c = protocol(&app.admit("Caio", None).await); // 13:00
    app.advance(TimeDelta::minutes(10));
    app.action(&c, "leave").await.expect(200); // before triage
    app.advance(TimeDelta::minutes(140));
    app.call(ROOM).await.expect(200); // Bia at 15:30, 3h25 after classification: not within 2 h
    app.finish(&b, "admitted").await.expect(200); // 15:30: stay 3h25
}

#[tokio::test]
async fn a_shift_gives_the_measures_and_they_match_the_metrics() {
    let app = TestApp::spawn().await;
    morning(&app).await;
    let s = summary(&app, &format!("unit={UNIT}&{DAY}")).await;
    assert_eq!(s["unit"], UNIT);
    assert_eq!(s["arrivals"], 3);
    assert_eq!(
        s["door_to_triage_seconds"],
        json!({"count": 2, "median": 0, "p90": 300, "p95": 300})
    );
    assert_eq!(
        s["door_to_provider_seconds"],
        json!({"count": 2, "median": 1500, "p90": 12300, "p95": 12300})
    );
    let colour = |id: &str| {
        s["by_colour"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["colour"] == id)
            .cloned()
            .unwrap()
    };
    let yellow = colour("yellow");
    assert_eq!(
        (yellow["patients"].clone(), yellow["within_target"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(yellow["wait_to_call_seconds"]["median"], 1200);
    let green = colour("green");
    assert_eq!(
        (green["patients"].clone(), green["within_target"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(green["within_target_ratio"], 0.0);
    assert_eq!(green["label"], "Verde");
    assert_eq!(s["length_of_stay_seconds"]["discharged"]["median"], 3600);
    assert_eq!(s["length_of_stay_seconds"]["admitted"]["median"], 12300);
    assert_eq!(
        s["left_without_being_seen"],
        json!({"before_triage": 1, "after_triage": 0, "rate": 0.3333})
    );

    // The same visits, counted by the metrics.
    assert_eq!(
        app.metric("triagem_admissions_total{unit=\"pa\"}").await,
        3.0
    );
    assert_eq!(
        app.metric("triagem_calls_total{queue=\"treatment\",unit=\"pa\"}")
            .await,
        2.0
    );
    assert_eq!(
        app.metric("triagem_left_total{reason=\"lwbs\",unit=\"pa\"}")
            .await,
        1.0
    );

    let days = app
        .get(&format!(
            "/reports/daily?unit={UNIT}&from=2026-11-27&to=2026-11-28"
        ))
        .await
        .expect(200);
    assert_eq!(
        days,
        json!([
            {"date": "2026-11-27", "arrivals": 0, "within_target_ratio": null,
             "door_to_provider_median_seconds": null, "left_without_being_seen": 0},
            {"date": "2026-11-28", "arrivals": 3, "within_target_ratio": 0.5,
             "door_to_provider_median_seconds": 1500, "left_without_being_seen": 1}
        ])
    );

    let app = app.restart().await;
    assert_eq!(
        summary(&app, &format!("unit={UNIT}&{DAY}")).await,
        s,
        "a restart changes nothing"
    );
}

#[tokio::test]
async fn the_csv_is_a_download_of_the_same_numbers() {
    let app = TestApp::spawn().await;
    morning(&app).await;
    let r = app.get(&format!("/reports/summary.csv?{DAY}")).await;
    assert_eq!(r.status.as_u16(), 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .contains("attachment"));
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines[0], "measure,colour,count,value,median,p90,p95");
    assert!(lines.contains(&"arrivals,,,3,,,"), "{}", r.text);
    assert!(lines.contains(&"patients,yellow,1,,,,"), "{}", r.text);
    assert!(lines.contains(&"within_target,yellow,1,,,,"), "{}", r.text);
    assert!(
        lines.contains(&"within_target_ratio,yellow,,1,,,"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn a_report_checks_its_period_and_unit() {
    let app = TestApp::spawn().await;
    let today = app.get("/reports/summary").await.expect(200);
    assert_eq!(
        (today["from"].clone(), today["to"].clone()),
        (json!("2026-11-28"), json!("2026-11-28"))
    );
    assert_eq!(today["unit"], Value::Null, "all units");
    app.get("/reports/summary?from=28/11/2026")
        .await
        .expect_problem(400, "malformed");
    let p = app
        .get("/reports/summary?from=2026-11-29&to=2026-11-28")
        .await
        .expect_problem(422, "invalid");
    assert_eq!(p["field"], "from");
    app.get("/reports/daily?from=2025-01-01&to=2026-11-28")
        .await
        .expect_problem(422, "invalid");
    app.get("/reports/summary?unit=nowhere")
        .await
        .expect_problem(404, "not_found");
}
