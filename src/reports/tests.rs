//! A synthetic day whose every number was worked out by hand.

use chrono::{NaiveDate, TimeZone};
use chrono_tz::America::Sao_Paulo;

use super::*;
use crate::config::Config;
use crate::domain::escalation::{AlertKind, AlertState};
use crate::domain::ids::{colour_id, unit_id};
use crate::domain::patient::{FirstCall, Protocol};

/// 2026-11-28 at 12:00 UTC (09:00 in São Paulo) plus `min` minutes.
fn at(min: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + chrono::TimeDelta::minutes(min)
}

fn scale() -> TriageScale {
    Config::from_toml(include_str!("../../config/default.toml"))
        .unwrap()
        .department_settings()
        .scale
}

struct Visit(ReportFacts);

impl Visit {
    fn arrived(min: i64) -> Self {
        Self(ReportFacts {
            unit: unit_id("pa"),
            arrived_at: at(min),
            first_triaged_at: None,
            colour: None,
            classified_max_wait_seconds: None,
            first_call: None,
            status: Status::AwaitingTriage,
            closed_at: None,
            outcome: None,
            leave_reason: None,
        })
    }
    fn triaged(mut self, min: i64, colour: &str, max_wait: i64) -> Self {
        self.0.first_triaged_at = Some(at(min));
        self.0.colour = Some(colour_id(colour));
        self.0.classified_max_wait_seconds = Some(max_wait);
        self.0.status = Status::Waiting;
        self
    }
    fn called(mut self, min: i64, clock_start: i64) -> Self {
        self.0.first_call = Some(FirstCall {
            at: at(min),
            colour: self.0.colour.clone(),
            clock_start: at(clock_start),
            max_wait_seconds: self.0.classified_max_wait_seconds.unwrap(),
        });
        self.0.status = Status::Called;
        self
    }
    fn finished(mut self, min: i64, outcome: Outcome) -> Self {
        self.0.status = Status::Finished;
        self.0.closed_at = Some(at(min));
        self.0.outcome = Some(outcome);
        self
    }
    fn left(mut self, min: i64, reason: LeaveReason) -> Self {
        self.0.status = Status::Left;
        self.0.closed_at = Some(at(min));
        self.0.leave_reason = Some(reason);
        self
    }
}

fn day() -> Vec<ReportFacts> {
    use LeaveReason::*;
    use Outcome::*;
    [
        // Yellow, called 15 min after classification: within 30 min.
        Visit::arrived(0)
            .triaged(5, "yellow", 1800)
            .called(20, 5)
            .finished(60, Discharged),
        // Yellow, called 40 min after: not within.
        Visit::arrived(10)
            .triaged(12, "yellow", 1800)
            .called(52, 12)
            .finished(310, Admitted),
        // Green, called after 1 h: within 2 h.
        Visit::arrived(20)
            .triaged(30, "green", 7200)
            .called(90, 30)
            .finished(120, Discharged),
        // Yellow who left unseen after triage: counted, not within.
        Visit::arrived(30)
            .triaged(40, "yellow", 1800)
            .left(90, Lwbs),
        // Left before triage.
        Visit::arrived(40).left(60, Lwbs),
        // Red classified at arrival, called a minute later: not within 0 s.
        Visit::arrived(50)
            .triaged(50, "red", 0)
            .called(51, 50)
            .finished(110, Discharged),
        // Green admitted in error: a correction, in no target and no LWBS.
        Visit::arrived(60)
            .triaged(70, "green", 7200)
            .left(80, Error),
    ]
    .into_iter()
    .map(|v| v.0)
    .collect()
}

fn alert(id: u64, breached: Option<i64>, acknowledged: Option<(i64, u32)>) -> Alert {
    Alert {
        id,
        protocol: Protocol::new(2026, id).unwrap(),
        ticket: "A001".into(),
        unit: unit_id("pa"),
        colour: Some(colour_id("red")),
        kind: AlertKind::Breach,
        level: 1,
        level_name: "nursing-coordinator".into(),
        level_label: String::new(),
        state: AlertState::Firing,
        waited_seconds: 0,
        max_wait_seconds: 0,
        arrived_at: at(0),
        fired_at: at(0),
        breached_at: breached.map(at),
        acknowledged_at: acknowledged.map(|(m, _)| at(m)),
        acknowledged_by: None,
        acknowledged_level: acknowledged.map(|(_, l)| l),
        resolved_at: None,
        due_at: None,
    }
}

fn stat(count: usize, median: i64, p90: i64, p95: i64) -> Stat {
    Stat {
        count,
        median: Some(median),
        p90: Some(p90),
        p95: Some(p95),
    }
}

const NONE: Stat = Stat {
    count: 0,
    median: None,
    p90: None,
    p95: None,
};

fn period() -> Period {
    let d = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
    Period::new(d, d).unwrap()
}

#[test]
fn nearest_rank_is_the_smallest_value_with_p_percent_at_or_below_it() {
    let v = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    assert_eq!(percentile(&v, 50), Some(50));
    assert_eq!(percentile(&v, 90), Some(90));
    assert_eq!(percentile(&v, 95), Some(100));
    assert_eq!(percentile(&[7], 50), Some(7));
    assert_eq!(percentile(&[], 50), None);
    assert_eq!(percentile(&[1, 2, 3], 50), Some(2));
    assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
}

#[test]
fn a_synthetic_day_gives_the_hand_counted_measures() {
    let alerts = [
        alert(1, Some(50), Some((52, 1))),
        // A warning acknowledged before any breach: not a breach acknowledged.
        alert(2, None, Some((30, 0))),
        // A breach nobody acknowledged.
        alert(3, Some(60), None),
    ];
    let s = summary(
        &day(),
        &alerts,
        &scale(),
        Some(unit_id("pa")),
        period(),
        Sao_Paulo,
    );
    assert_eq!(s.arrivals, 7);
    assert_eq!(s.timezone, "America/Sao_Paulo");
    // Door to triage: 300, 120, 600, 600, 0, 600 s.
    assert_eq!(s.door_to_triage_seconds, stat(6, 300, 600, 600));
    // Door to provider: 1200, 2520, 4200, 60 s.
    assert_eq!(s.door_to_provider_seconds, stat(4, 1200, 4200, 4200));
    let colour = |id: &str| s.by_colour.iter().find(|c| c.colour == id).unwrap();
    let (red, yellow, green, blue) = (
        colour("red"),
        colour("yellow"),
        colour("green"),
        colour("blue"),
    );
    assert_eq!(
        (red.patients, red.within_target, red.within_target_ratio),
        (1, 0, Some(0.0))
    );
    assert_eq!(red.wait_to_call_seconds, stat(1, 60, 60, 60));
    assert_eq!(
        (
            yellow.patients,
            yellow.within_target,
            yellow.within_target_ratio
        ),
        (3, 1, Some(0.3333))
    );
    assert_eq!(yellow.wait_to_call_seconds, stat(2, 900, 2400, 2400));
    assert_eq!(yellow.max_wait_seconds, 1800);
    assert_eq!(
        (
            green.patients,
            green.within_target,
            green.within_target_ratio
        ),
        (1, 1, Some(1.0))
    );
    assert_eq!((blue.patients, blue.within_target_ratio), (0, None));
    assert_eq!(blue.wait_to_call_seconds, NONE);
    assert_eq!(
        s.length_of_stay_seconds.discharged,
        stat(3, 3600, 6000, 6000)
    );
    assert_eq!(
        s.length_of_stay_seconds.admitted,
        stat(1, 18000, 18000, 18000)
    );
    let lwbs = &s.left_without_being_seen;
    assert_eq!(
        (lwbs.before_triage, lwbs.after_triage, lwbs.rate),
        (1, 1, Some(0.2857))
    );
    assert_eq!(s.time_to_acknowledge_seconds, stat(1, 120, 120, 120));
    // A Saturday; arrivals from 09:00 to 10:00 local.
    let saturday = &s.arrivals_by_hour[5];
    assert_eq!((saturday[9], saturday[10]), (6, 1));
    assert_eq!(s.arrivals_by_hour.iter().flatten().sum::<usize>(), 7);
}

#[test]
fn the_maximum_wait_in_force_at_classification_judges_the_visit_not_todays() {
    // Classified when yellow allowed 60 min; the config now says 30 min.
    let visit = Visit::arrived(0).triaged(0, "yellow", 3600).called(45, 0).0;
    let s = summary(&[visit], &[], &scale(), None, period(), Sao_Paulo);
    let yellow = s.by_colour.iter().find(|c| c.colour == "yellow").unwrap();
    assert_eq!((yellow.within_target, yellow.max_wait_seconds), (1, 1800));
}

/// Called within target, then gone after the no-shows: judged by the call
/// (the department called in time) and counted among the unseen departures
/// after triage (the patient was not seen).
#[test]
fn a_patient_called_in_time_who_then_left_is_within_target_and_left_unseen() {
    let visits = [
        Visit::arrived(0)
            .triaged(5, "green", 7200)
            .called(30, 5)
            .left(50, LeaveReason::NoShow),
        Visit::arrived(0)
            .triaged(5, "green", 7200)
            .called(200, 5)
            .left(210, LeaveReason::Lwbs),
    ]
    .map(|v| v.0);
    let s = summary(&visits, &[], &scale(), None, period(), Sao_Paulo);
    let green = s.by_colour.iter().find(|c| c.colour == "green").unwrap();
    assert_eq!((green.patients, green.within_target), (2, 1));
    assert_eq!(s.door_to_provider_seconds.count, 2);
    let lwbs = &s.left_without_being_seen;
    assert_eq!((lwbs.before_triage, lwbs.after_triage), (0, 2));
}

/// A scale changed from five colours to four: the visits classified in the
/// colour taken out still count, in a row of their own after the configured
/// ones, judged by the target they were given.
#[test]
fn a_colour_no_longer_configured_keeps_its_visits_in_the_report() {
    let visits = [Visit::arrived(0)
        .triaged(5, "orange", 600)
        .called(10, 5)
        .finished(40, Outcome::Discharged)]
    .map(|v| v.0);
    let s = summary(&visits, &[], &scale(), None, period(), Sao_Paulo);
    let ids: Vec<&str> = s.by_colour.iter().map(|c| c.colour.as_str()).collect();
    assert_eq!(ids, ["red", "yellow", "green", "blue", "orange"]);
    let orange = &s.by_colour[4];
    assert_eq!((orange.patients, orange.within_target), (1, 1));
    assert_eq!(
        (orange.label.as_str(), orange.max_wait_seconds),
        ("orange", 600)
    );
    assert_eq!(orange.wait_to_call_seconds.count, 1);
}

#[test]
fn every_day_of_the_period_has_an_entry() {
    let from = NaiveDate::from_ymd_opt(2026, 11, 27).unwrap();
    let to = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap();
    let days = daily(&day(), Period::new(from, to).unwrap(), Sao_Paulo);
    assert_eq!(days.len(), 3);
    assert_eq!(days[0].arrivals, 0);
    assert_eq!(days[0].within_target_ratio, None);
    assert_eq!(days[0].door_to_provider_median_seconds, None);
    let d = &days[1];
    assert_eq!(d.date, NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
    assert_eq!(d.arrivals, 7);
    assert_eq!(
        d.within_target_ratio,
        Some(0.4),
        "2 of 5 judged, all colours"
    );
    assert_eq!(d.door_to_provider_median_seconds, Some(1200));
    assert_eq!(d.left_without_being_seen, 2);
}

#[test]
fn a_period_runs_forward_and_at_most_366_days() {
    let d = |m, day| NaiveDate::from_ymd_opt(2026, m, day).unwrap();
    assert!(Period::new(d(11, 2), d(11, 1)).is_err());
    assert!(Period::new(d(1, 1), d(12, 31)).is_ok());
    let leap = NaiveDate::from_ymd_opt(2028, 1, 1).unwrap();
    assert!(Period::new(leap, NaiveDate::from_ymd_opt(2028, 12, 31).unwrap()).is_ok());
    assert_eq!(
        Period::new(d(1, 1), NaiveDate::from_ymd_opt(2027, 1, 2).unwrap()),
        Err(PeriodError::TooLong)
    );
    // Local midnights: São Paulo is UTC-3.
    let (from, to) = Period::new(d(11, 28), d(11, 28))
        .unwrap()
        .instants(Sao_Paulo);
    assert_eq!(from, Utc.with_ymd_and_hms(2026, 11, 28, 3, 0, 0).unwrap());
    assert_eq!(to, Utc.with_ymd_and_hms(2026, 11, 29, 3, 0, 0).unwrap());
}

#[test]
fn the_csv_has_a_row_per_measure_and_colour() {
    let s = summary(&day(), &[], &scale(), None, period(), Sao_Paulo);
    let csv = summary_csv(&s);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "measure,colour,count,value,median,p90,p95");
    assert!(lines.contains(&"arrivals,,,7,,,"));
    assert!(lines.contains(&"patients,yellow,3,,,,"));
    assert!(lines.contains(&"within_target,yellow,1,,,,"));
    assert!(lines.contains(&"within_target_ratio,yellow,,0.3333,,,"));
    assert!(lines.contains(&"max_wait_seconds,yellow,,1800,,,"));
    // Every colour's counts and ratio, as in the JSON.
    for c in &s.by_colour {
        let row = |measure: &str| {
            let head = format!("{measure},{},", c.colour);
            let line = lines.iter().find(|l| l.starts_with(&head));
            line.unwrap_or_else(|| panic!("no {head} row: {csv}"))
                .to_string()
        };
        let ratio = c
            .within_target_ratio
            .map(|r| r.to_string())
            .unwrap_or_default();
        assert_eq!(
            row("patients"),
            format!("patients,{},{},,,,", c.colour, c.patients)
        );
        assert_eq!(
            row("within_target"),
            format!("within_target,{},{},,,,", c.colour, c.within_target)
        );
        assert_eq!(
            row("within_target_ratio"),
            format!("within_target_ratio,{},,{ratio},,,", c.colour)
        );
    }
    assert!(lines.contains(&"wait_to_call_seconds,yellow,2,,900,2400,2400"));
    assert!(lines.contains(&"wait_to_call_seconds,blue,0,,,,"));
    assert!(lines.contains(&"left_without_being_seen.rate,,,0.2857,,,"));
    assert!(lines.iter().all(|l| l.split(',').count() == 7), "{csv}");
}

/// A day whose midnight a clock change skipped starts at its first minute
/// that exists (São Paulo, 4 November 2018: 00:00 became 01:00, UTC-2), not
/// at midnight read as UTC, which began it at 22:00 the evening before.
#[test]
fn a_day_without_a_midnight_starts_where_its_clock_does() {
    let d = NaiveDate::from_ymd_opt(2018, 11, 4).unwrap();
    let start = day_start(d, Sao_Paulo);
    assert_eq!(start, Utc.with_ymd_and_hms(2018, 11, 4, 3, 0, 0).unwrap());
    assert_eq!(start.with_timezone(&Sao_Paulo).date_naive(), d);
    // An ordinary day: its midnight (UTC-3).
    let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
    assert_eq!(
        day_start(d, Sao_Paulo),
        Utc.with_ymd_and_hms(2026, 3, 1, 3, 0, 0).unwrap()
    );
    // The 3rd has its 24 hours; the 4th, which lost its first hour, 23.
    let days = |from: u32, to: u32| {
        let (a, b) = Period::new(
            NaiveDate::from_ymd_opt(2018, 11, from).unwrap(),
            NaiveDate::from_ymd_opt(2018, 11, to).unwrap(),
        )
        .unwrap()
        .instants(Sao_Paulo);
        b - a
    };
    assert_eq!(days(3, 3), chrono::TimeDelta::hours(24));
    assert_eq!(days(4, 4), chrono::TimeDelta::hours(23));
}
