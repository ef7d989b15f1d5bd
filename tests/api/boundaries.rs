//! Calendar boundaries in the configured time zone: New Year's midnight under
//! concurrent admissions, local midnight for tickets, and daylight-saving
//! changes, which move the local clock but no deadline (deadlines are instants).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use serde_json::{json, Value};
use triagem::clock::ManualClock;
use triagem::config::Config;

use crate::helpers::{protocol, sequence, time, TestApp, UNIT};

fn instant(s: &str) -> DateTime<Utc> {
    s.parse().expect("RFC 3339")
}

/// The year a protocol number was issued in (its first four digits).
fn year_of(protocol: &str) -> i32 {
    protocol[..4].parse().expect("a year")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admissions_racing_across_new_year_repeat_no_number_and_take_the_year_they_were_admitted_in(
) {
    // São Paulo is UTC-3 all year: local midnight is 03:00Z.
    let midnight = instant("2027-01-01T03:00:00Z");
    let clock = Arc::new(ManualClock::new(midnight - TimeDelta::seconds(1)));
    let app = Arc::new(TestApp::spawn_with(|_| {}, clock.clone()).await);

    const DESKS: usize = 8;
    const EACH: usize = 30;
    let acked = Arc::new(AtomicUsize::new(0));
    let mut desks = Vec::new();
    for desk in 0..DESKS {
        let (app, acked) = (app.clone(), acked.clone());
        desks.push(tokio::spawn(async move {
            let mut views = Vec::new();
            for i in 0..EACH {
                let v = app.admit(&format!("Desk {desk} patient {i}"), None).await;
                acked.fetch_add(1, Ordering::Relaxed);
                views.push(v);
            }
            views
        }));
    }
    // The clock reaches midnight while requests are in flight from every desk.
    while acked.load(Ordering::Relaxed) < DESKS * EACH / 3 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    clock.set(midnight);
    let mut views = Vec::new();
    for d in desks {
        views.extend(d.await.expect("desk"));
    }

    let mut by_year: BTreeMap<i32, Vec<u64>> = BTreeMap::new();
    for v in &views {
        let p = protocol(v);
        let admitted = time(&v["admitted_at"]);
        let local_year = admitted
            .with_timezone(&chrono_tz::America::Sao_Paulo)
            .year();
        assert_eq!(
            year_of(&p),
            local_year,
            "{p} admitted at {admitted}: the year of its admission, not of its request"
        );
        by_year.entry(year_of(&p)).or_default().push(sequence(&p));
    }
    let years: Vec<i32> = by_year.keys().copied().collect();
    assert_eq!(years, [2026, 2027], "admissions on both sides of midnight");
    for (year, numbers) in &mut by_year {
        numbers.sort_unstable();
        let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
        assert_eq!(
            *numbers, expected,
            "{year}: each number once, none skipped, 2027 from 1"
        );
    }
    // New Year's Day's tickets start again, one each, skipping those the
    // old year's patients (all still waiting) hold.
    let tickets_of = |year: i32| -> Vec<String> {
        let mut t: Vec<String> = views
            .iter()
            .filter(|v| year_of(&protocol(v)) == year)
            .map(|v| v["ticket"].as_str().expect("ticket").to_owned())
            .collect();
        t.sort_unstable();
        t
    };
    let (old_tickets, new_tickets) = (tickets_of(2026), tickets_of(2027));
    let expected: Vec<String> = (1..)
        .map(|n| format!("A{n:03}"))
        .filter(|t| !old_tickets.contains(t))
        .take(new_tickets.len())
        .collect();
    assert_eq!(new_tickets, expected);

    // A restart remembers the new year's count.
    let app = Arc::into_inner(app).expect("the desks are done");
    let app = app.restart().await;
    let next = app.admit("Depois do reinício", None).await;
    assert_eq!(sequence(&protocol(&next)), by_year[&2027].len() as u64 + 1);
    assert_eq!(year_of(&protocol(&next)), 2027);
}

#[tokio::test]
async fn a_patient_who_arrived_before_new_year_but_is_admitted_after_gets_the_new_years_number() {
    let midnight = instant("2027-01-01T03:00:00Z");
    let clock = Arc::new(ManualClock::new(midnight - TimeDelta::minutes(30)));
    let app = TestApp::spawn_with(|_| {}, clock).await;
    assert_eq!(protocol(&app.admit("Ana", None).await), "20260000000000001");
    app.advance(TimeDelta::minutes(40)); // 00:10 on 1 January, locally
    let arrived = midnight - TimeDelta::minutes(10);
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Bia", "arrived_at": arrived.to_rfc3339()}),
        )
        .await
        .expect(201);
    assert_eq!(protocol(&v), "20270000000000001");
    assert_eq!(v["ticket"], "A002", "a new day, but A001 (Ana) still waits");
    assert_eq!(
        time(&v["arrived_at"]),
        arrived,
        "the arrival is kept as given"
    );
}

fn in_lisbon(c: &mut Config) {
    c.timezone = chrono_tz::Europe::Lisbon;
}

async fn lisbon_at(at: &str) -> TestApp {
    TestApp::spawn_with(in_lisbon, Arc::new(ManualClock::new(instant(at)))).await
}

fn ticket(v: &Value) -> &str {
    v["ticket"].as_str().expect("ticket")
}

#[tokio::test]
async fn clocks_going_forward_in_spring_move_no_deadline_and_restart_no_ticket() {
    // Lisbon, 29 March 2026: at 01:00Z local time jumps from 01:00 to 02:00.
    let app = lisbon_at("2026-03-29T00:50:00Z").await; // 00:50 WET
    let y = app.admit("Ana", Some("yellow")).await;
    assert_eq!(
        time(&y["due_at"]),
        instant("2026-03-29T01:20:00Z"),
        "30 min"
    );
    assert_eq!(ticket(&y), "A001");

    app.advance_and_wake(TimeDelta::minutes(20)); // 01:10Z = 02:10 WEST
    let b = app.admit("Bia", Some("yellow")).await;
    assert_eq!(ticket(&b), "A002", "the same local day");
    assert_eq!(time(&b["due_at"]), instant("2026-03-29T01:40:00Z"));

    // One second before Ana's deadline, an hour later by the wall clock on
    // the wall: only her warning (24 min) has fired.
    app.advance_and_wake(TimeDelta::minutes(9) + TimeDelta::seconds(59));
    let s = protocol(&app.admit("Sentinela", Some("red")).await);
    app.wait_for_alert(&s, |a| a["level"] == 1).await;
    let a = app.wait_for_alert(&protocol(&y), |_| true).await;
    assert_eq!(a["kind"], "warning", "{a}");
    app.advance_and_wake(TimeDelta::seconds(1));
    let a = app
        .wait_for_alert(&protocol(&y), |a| a["kind"] == "breach")
        .await;
    assert_eq!(time(&a["fired_at"]), instant("2026-03-29T01:20:00Z"));
    assert_eq!(a["waited_seconds"], 30 * 60, "30 minutes, not 90");
}

#[tokio::test]
async fn clocks_going_back_in_autumn_move_no_deadline_and_keep_arrival_order() {
    // Lisbon, 25 October 2026: at 01:00Z local time falls back from 02:00 to 01:00.
    let app = lisbon_at("2026-10-25T00:40:00Z").await; // 01:40 WEST
    let y = app.admit("Ana", Some("yellow")).await;
    assert_eq!(time(&y["due_at"]), instant("2026-10-25T01:10:00Z"));

    app.advance_and_wake(TimeDelta::minutes(25)); // 01:05Z = 01:05 WET, "earlier" locally
    let b = app.admit("Bia", Some("yellow")).await;
    assert_eq!(ticket(&b), "A002", "the same local day");
    assert_eq!(time(&b["due_at"]), instant("2026-10-25T01:35:00Z"));
    assert_eq!(
        app.queue_protocols("treatment").await,
        [protocol(&y), protocol(&b)],
        "the one who arrived first is first, whatever the local clock says"
    );

    app.advance_and_wake(TimeDelta::minutes(5)); // 01:10Z
    let a = app
        .wait_for_alert(&protocol(&y), |a| a["kind"] == "breach")
        .await;
    assert_eq!(time(&a["fired_at"]), instant("2026-10-25T01:10:00Z"));
    let all = app.alerts("state=all").await;
    assert!(
        all.iter()
            .all(|a| a["protocol"] != protocol(&b).as_str() || a["kind"] == "warning"),
        "Bia is not overdue: {all:?}"
    );
}
