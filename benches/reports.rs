//! How long a report takes over a busy quarter: a journal holding 500 000
//! finished visits spread over 90 days (about 5 500 a day, and 2 % of them red
//! with an acknowledged alert), then the 90-day summary (all units and one
//! unit) and the daily report, timed several times each.
//!
//!     cargo bench --bench reports            # VISITS=100000 for a quicker run
//!
//! The report reads the journal on a connection of its own, as the service
//! does; the department lock is not involved at all.

use std::time::Instant;

use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use triagem::domain::escalation::{Alert, AlertKind, AlertState};
use triagem::domain::patient::{
    FirstCall, LeaveReason, Outcome, Patient, PatientName, Protocol, Status,
};
use triagem::domain::{Change, ColourId, UnitId};
use triagem::journal::{Journal, JournalOptions};
use triagem::reports::{self, Period};

mod common;

const DAYS: i64 = 90;
const BATCH: usize = 2_000;

fn visit(i: usize, rng: &mut StdRng) -> (Patient, Option<Alert>) {
    let first = Utc.with_ymd_and_hms(2026, 9, 1, 3, 0, 0).unwrap();
    let span = TimeDelta::days(DAYS).num_seconds();
    let arrived = first + TimeDelta::seconds(rng.gen_range(0..span));
    let (colour, max_wait) = match rng.gen_range(0..100) {
        0..2 => ("red", 0),
        2..22 => ("yellow", 1800),
        22..77 => ("green", 7200),
        _ => ("blue", 10800),
    };
    let triaged = arrived + TimeDelta::seconds(rng.gen_range(60..900));
    let called = triaged + TimeDelta::seconds(rng.gen_range(0..2 * max_wait.max(300)));
    let closed = called + TimeDelta::seconds(rng.gen_range(600..14_400));
    let unit = UnitId::parse(if i.is_multiple_of(3) { "obs" } else { "pa" }).unwrap();
    let colour = ColourId::parse(colour).unwrap();
    let protocol = Protocol::new(2026, i as u64 + 1).unwrap();
    let left = rng.gen_range(0..100) < 3;
    let patient = Patient {
        protocol,
        ticket: format!("A{:03}", i % 900 + 1),
        unit: unit.clone(),
        name: PatientName::parse(&format!("Paciente {i}")).unwrap(),
        colour: Some(colour.clone()),
        status: if left { Status::Left } else { Status::Finished },
        complaint: Some("dor".into()),
        birth_date: None,
        document: None,
        arrived_at: arrived,
        admitted_at: arrived,
        triaged_at: Some(triaged),
        called_at: (!left).then_some(called),
        wait_ended_at: Some(called),
        room: None,
        called_from: None,
        no_shows: 0,
        outcome: (!left).then_some(if i.is_multiple_of(7) {
            Outcome::Admitted
        } else {
            Outcome::Discharged
        }),
        leave_reason: left.then_some(LeaveReason::Lwbs),
        triage_note: None,
        closed_at: Some(closed),
        contact: None,
        updated_at: Some(closed),
        admitted_unit: Some(unit.clone()),
        first_triaged_at: Some(triaged),
        classified_max_wait_seconds: Some(max_wait),
        first_call: (!left).then(|| {
            Box::new(FirstCall {
                at: called,
                colour: Some(colour.clone()),
                clock_start: triaged,
                max_wait_seconds: max_wait,
            })
        }),
    };
    let alert = (max_wait == 0).then(|| Alert {
        id: i as u64 + 1,
        protocol,
        ticket: patient.ticket.clone(),
        unit,
        colour: Some(colour),
        kind: AlertKind::Breach,
        level: 1,
        level_name: "nursing-coordinator".into(),
        level_label: "Coordenação de enfermagem".into(),
        state: AlertState::Resolved,
        waited_seconds: 60,
        max_wait_seconds: 0,
        arrived_at: arrived,
        fired_at: triaged,
        breached_at: Some(triaged),
        acknowledged_at: Some(triaged + TimeDelta::seconds(rng.gen_range(10..600))),
        acknowledged_by: Some("enf".into()),
        acknowledged_level: Some(1),
        resolved_at: Some(called),
        due_at: None,
    });
    (patient, alert)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            std::hint::black_box(f());
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    (ms[0], ms[ms.len() / 2])
}

fn main() {
    let visits: usize = std::env::var("VISITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(dir.path(), JournalOptions::default()).expect("journal");
    let mut rng = StdRng::seed_from_u64(14);
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..visits {
        let (p, alert) = visit(i, &mut rng);
        batch.push(Change::Patient(Box::new(p)));
        batch.extend(alert.map(|a| Change::Alert(Box::new(a))));
        if batch.len() >= BATCH || i + 1 == visits {
            journal
                .submit(std::mem::take(&mut batch))
                .wait_blocking()
                .expect("commit");
        }
    }
    println!(
        "journal: {visits} visits over {DAYS} days written in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let config = common::config();
    let settings = config.department_settings();
    let tz = settings.time_zone;
    let period = Period::new(
        NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
        NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
    )
    .unwrap();
    let (from, to) = period.instants(tz);
    let pa = UnitId::parse("pa").unwrap();
    println!("90-day reports (min / median of 5 runs, ms):");
    for (label, unit) in [("all units", None), ("unit pa", Some(&pa))] {
        let mut arrivals = 0;
        let (read_min, read_med) = time(5, || journal.report_data(from, to, unit).unwrap());
        let (all_min, all_med) = time(5, || {
            let (v, a) = journal.report_data(from, to, unit).unwrap();
            let s = reports::summary(&v, &a, &settings.scale, unit.cloned(), period, tz);
            arrivals = s.arrivals;
            s
        });
        let (daily_min, daily_med) = time(5, || {
            let (v, _) = journal.report_data(from, to, unit).unwrap();
            reports::daily(&v, period, tz)
        });
        println!(
            "  {label:<10} {arrivals:>7} visits: read {read_min:>5.0} / {read_med:>5.0}   \
             summary {all_min:>5.0} / {all_med:>5.0}   daily {daily_min:>5.0} / {daily_med:>5.0}"
        );
    }
}
