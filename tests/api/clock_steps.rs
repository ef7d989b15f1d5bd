//! The wall clock stepped under a running scheduler (README, "Clock steps"):
//! forward, what fell due fires within a tick, each level once, with nobody
//! waking the scheduler; back, nothing fires early and nothing is lost.
//!
//! The clock is moved with `advance` only, never `advance_and_wake`: a step of
//! the system clock wakes nobody, so the scheduler must notice it by itself.
//! That nothing fired is judged once a red sentinel admitted after the step has
//! its alert, which proves the scheduler made a pass at the stepped time; a
//! history is read once a later commit (the sentinel's) is on disk.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use triagem::clock::ManualClock;
use triagem::config::Config;

use crate::helpers::{protocol, start_time, time, TestApp};

const TICK: Duration = Duration::from_millis(100);

fn short_tick(c: &mut Config) {
    c.escalation.tick = TICK;
}

async fn spawn() -> TestApp {
    TestApp::spawn_with(short_tick, Arc::new(ManualClock::new(start_time()))).await
}

/// `(event, level)` of a patient's alert history once it holds `n` entries.
async fn levels(app: &TestApp, p: &str, n: usize) -> Vec<(String, u64)> {
    app.wait_for_alert_history(p, n)
        .await
        .iter()
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["details"]["level"].as_u64().expect("details.level"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_clock_stepped_forward_fires_every_level_that_fell_due_once_within_a_tick() {
    let app = spawn().await;
    // Yellow: warning at 24 min, breach (level 1) at 30, level 2 at 45.
    let y = protocol(&app.admit("Ana", Some("yellow")).await);

    let stepped = Instant::now();
    app.advance(TimeDelta::hours(2));
    let a = app.wait_for_alert(&y, |a| a["level"] == 2).await;
    let noticed = stepped.elapsed();
    // A scheduler sleeping toward the 24-minute warning on the monotonic clock
    // would only see the step 24 real minutes later.
    assert!(
        noticed < TICK + Duration::from_secs(2),
        "the step was noticed after {noticed:?}"
    );
    assert_eq!(time(&a["fired_at"]), start_time() + TimeDelta::hours(2));

    // A later pass, proved by a sentinel's alert, repeats none of them.
    app.advance(TimeDelta::hours(1));
    let s = protocol(&app.admit("Sentinela", Some("red")).await);
    app.wait_for_alert(&s, |a| a["level"] == 1).await;
    // The sentinel's step is on disk, so anything fired before it is too.
    levels(&app, &s, 1).await;
    let trail = levels(&app, &y, 3).await;
    assert_eq!(
        trail,
        [
            ("alert.firing".to_owned(), 0),
            ("alert.firing".to_owned(), 1),
            ("alert.firing".to_owned(), 2),
        ],
        "each level once, in order"
    );
}

#[tokio::test]
async fn a_clock_stepped_back_fires_nothing_early_and_then_loses_nothing() {
    let app = spawn().await;
    let y = protocol(&app.admit("Ana", Some("yellow")).await);
    app.advance(TimeDelta::minutes(23));

    // NTP steps the clock an hour back: the warning due at 24:00 is now 61 min away.
    app.advance(TimeDelta::hours(-1));
    let s1 = protocol(&app.admit("Sentinela 1", Some("red")).await);
    app.wait_for_alert(&s1, |a| a["level"] == 1).await;
    // And forward again to one second before the warning.
    app.advance(TimeDelta::hours(1) + TimeDelta::seconds(59));
    let s2 = protocol(&app.admit("Sentinela 2", Some("red")).await);
    app.wait_for_alert(&s2, |a| a["level"] == 1).await;
    assert!(
        app.alerts("state=all")
            .await
            .iter()
            .all(|a| a["protocol"] != y.as_str()),
        "nothing for the yellow patient before 24:00 by the wall clock"
    );

    // Due now: fires within a tick, with no wake-up, and the rest follow.
    app.advance(TimeDelta::seconds(1));
    let w = app.wait_for_alert(&y, |a| a["kind"] == "warning").await;
    assert_eq!(time(&w["fired_at"]), start_time() + TimeDelta::minutes(24));
    app.advance(TimeDelta::minutes(30));
    app.wait_for_alert(&y, |a| a["level"] == 2).await;
    let trail = levels(&app, &y, 3).await;
    assert_eq!(
        trail.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
        [0, 1, 2],
        "{trail:?}"
    );
}
