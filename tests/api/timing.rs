//! Time-dependent values, driven by the manual clock (never by sleeping).

use std::sync::Arc;

use chrono::TimeDelta;
use serde_json::json;
use triagem::clock::ManualClock;
use triagem::domain::ClockStarts;

use crate::helpers::{protocol, start_time, time, TestApp, ROOM, UNIT};

#[tokio::test]
async fn waited_seconds_grows_with_the_clock_until_the_call() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("green")).await);
    app.advance(TimeDelta::seconds(125));
    assert_eq!(app.patient(&p).await["waited_seconds"], 125);
    app.call(ROOM).await.expect(200);
    app.advance(TimeDelta::minutes(30));
    let v = app.patient(&p).await;
    assert_eq!(v["waited_seconds"], 125, "the wait ends at the call");
    assert_eq!(v["overdue"], false);
    app.action(&p, "no-show").await.expect(200);
    app.advance(TimeDelta::seconds(5));
    assert_eq!(
        app.patient(&p).await["waited_seconds"],
        125 + 1800 + 5,
        "back in the queue, the wait counts from arrival again"
    );
}

#[tokio::test]
async fn a_yellow_patient_becomes_overdue_exactly_at_30_minutes() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance(TimeDelta::minutes(30) - TimeDelta::seconds(1));
    let v = app.patient(&p).await;
    assert_eq!(v["overdue"], false);
    assert_eq!(v["waited_seconds"], 1799);
    app.advance(TimeDelta::seconds(1));
    let v = app.patient(&p).await;
    assert_eq!(v["overdue"], true);
    assert_eq!(v["waited_seconds"], 1800);
    assert_eq!(time(&v["due_at"]), start_time() + TimeDelta::minutes(30));
}

#[tokio::test]
async fn a_patient_awaiting_triage_is_overdue_10_minutes_after_arrival() {
    let app = TestApp::spawn().await;
    let arrived = start_time() - TimeDelta::minutes(4);
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Ana", "arrived_at": arrived.to_rfc3339()}),
        )
        .await
        .expect(201);
    let p = protocol(&v);
    assert_eq!(time(&v["due_at"]), arrived + TimeDelta::minutes(10));
    app.advance(TimeDelta::minutes(5));
    assert_eq!(app.patient(&p).await["overdue"], false);
    app.advance(TimeDelta::minutes(1));
    let v = app.patient(&p).await;
    assert_eq!(v["overdue"], true);
    assert_eq!(v["waited_seconds"], 600);
}

#[tokio::test]
async fn a_red_patient_is_due_immediately() {
    let app = TestApp::spawn().await;
    let v = app.admit("Ana", Some("red")).await;
    assert_eq!(v["max_wait_seconds"], 0);
    assert_eq!(time(&v["due_at"]), start_time());
    assert_eq!(v["overdue"], true, "a 0 s target is reached at once");
}

#[tokio::test]
async fn re_triage_restarts_the_colour_clock_so_an_overdue_patient_may_no_longer_be() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance(TimeDelta::minutes(31));
    assert_eq!(app.patient(&p).await["overdue"], true);
    let v = app.triage(&p, "green").await.expect(200);
    assert_eq!(v["overdue"], false);
    assert_eq!(
        time(&v["due_at"]),
        start_time() + TimeDelta::minutes(31) + TimeDelta::hours(2)
    );
    assert_eq!(v["waited_seconds"], 31 * 60);
}

#[tokio::test]
async fn with_clock_starts_arrival_the_deadline_counts_from_arrival() {
    let app = TestApp::spawn_with(
        |c| c.protocol.clock_starts = ClockStarts::Arrival,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    assert_eq!(
        app.get("/protocol").await.expect(200)["clock_starts"],
        "arrival"
    );
    let p = protocol(&app.admit("Ana", None).await);
    app.advance(TimeDelta::minutes(20));
    let v = app.triage(&p, "yellow").await.expect(200);
    assert_eq!(time(&v["due_at"]), start_time() + TimeDelta::minutes(30));
    assert_eq!(v["overdue"], false);
    app.advance(TimeDelta::minutes(10));
    assert_eq!(app.patient(&p).await["overdue"], true);
}

#[tokio::test]
async fn the_board_reports_the_longest_wait_and_overdue_counts_per_queue() {
    let app = TestApp::spawn().await;
    app.admit("y1", Some("yellow")).await;
    app.admit("t1", None).await;
    app.advance(TimeDelta::minutes(20));
    app.admit("y2", Some("yellow")).await;
    app.admit("t2", None).await;
    app.admit("b1", Some("blue")).await;
    app.admit("r1", Some("red")).await;
    app.advance(TimeDelta::minutes(15));
    // 12:35: y1 waited 35 min (overdue), y2 15 min; t1 35 min (overdue), t2 15 min (overdue).
    let board = app.board().await;
    assert_eq!(board["generated_at"], "2026-11-28T12:35:00Z");
    assert_eq!(
        board["queues"],
        json!([
            {"colour": "red", "waiting": 1, "longest_wait_seconds": 900, "overdue": 1,
             "next_due_at": "2026-11-28T12:20:00Z"},
            {"colour": "yellow", "waiting": 2, "longest_wait_seconds": 2100, "overdue": 1,
             "next_due_at": "2026-11-28T12:30:00Z"},
            {"colour": "green", "waiting": 0, "longest_wait_seconds": 0, "overdue": 0,
             "next_due_at": null},
            {"colour": "blue", "waiting": 1, "longest_wait_seconds": 900, "overdue": 0,
             "next_due_at": "2026-11-28T15:20:00Z"},
            {"colour": null, "waiting": 2, "longest_wait_seconds": 2100, "overdue": 2,
             "next_due_at": "2026-11-28T12:10:00Z"}
        ])
    );
    // Calling the longest waiters takes them off the board's counts.
    app.call(ROOM).await.expect(200); // r1
    app.call(ROOM).await.expect(200); // y1
    app.call_triage().await.expect(200); // t1
    let board = app.board().await;
    assert_eq!(
        board["queues"],
        json!([
            {"colour": "red", "waiting": 0, "longest_wait_seconds": 0, "overdue": 0,
             "next_due_at": null},
            {"colour": "yellow", "waiting": 1, "longest_wait_seconds": 900, "overdue": 0,
             "next_due_at": "2026-11-28T12:50:00Z"},
            {"colour": "green", "waiting": 0, "longest_wait_seconds": 0, "overdue": 0,
             "next_due_at": null},
            {"colour": "blue", "waiting": 1, "longest_wait_seconds": 900, "overdue": 0,
             "next_due_at": "2026-11-28T15:20:00Z"},
            {"colour": null, "waiting": 1, "longest_wait_seconds": 900, "overdue": 1,
             "next_due_at": "2026-11-28T12:30:00Z"}
        ])
    );
}

#[tokio::test]
async fn the_queue_listing_shows_live_waits_and_overdue_flags() {
    let app = TestApp::spawn().await;
    app.admit("g1", Some("green")).await;
    app.advance(TimeDelta::hours(1));
    app.admit("g2", Some("green")).await;
    app.advance(TimeDelta::hours(1));
    let page = app.queue("").await;
    let p = page["patients"].as_array().unwrap();
    assert_eq!(p[0]["waited_seconds"], 7200);
    assert_eq!(p[0]["overdue"], true);
    assert_eq!(p[1]["waited_seconds"], 3600);
    assert_eq!(p[1]["overdue"], false);
}

/// The board's time left is on the colour's clock: a green patient who waited
/// 1 h 40 min for triage and was classified 8 minutes ago is due in 1 h 52 min,
/// not 20 minutes; and the earliest deadline wins whatever the arrival order.
#[tokio::test]
async fn the_boards_next_deadline_counts_on_the_colours_clock() {
    let app = TestApp::spawn().await;
    let early = protocol(&app.admit("Ana", None).await);
    app.advance(TimeDelta::minutes(40));
    let late = protocol(&app.admit("Bia", None).await);
    app.advance(TimeDelta::minutes(52));
    app.triage(&late, "green").await.expect(200); // 13:32, due 15:32
    app.advance(TimeDelta::minutes(8));
    app.triage(&early, "green").await.expect(200); // 13:40, due 15:40
    app.advance(TimeDelta::minutes(8));
    let board = app.board().await;
    let green = &board["queues"][2];
    assert_eq!(green["colour"], "green");
    assert_eq!(green["longest_wait_seconds"], (108 * 60), "since arrival");
    assert_eq!(
        time(&green["next_due_at"]),
        start_time() + TimeDelta::minutes(92) + TimeDelta::hours(2),
        "the later arrival, triaged first, is due first"
    );
    assert_eq!(green["overdue"], 0);
}
