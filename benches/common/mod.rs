//! The fixture both benches start from: config/default.toml and N triaged
//! patients waiting in unit `pa`, built with `Department::restore` (what
//! start-up does), because admitting them one by one would cost O(n) each for
//! the position in the admission's answer.

// Each bench uses some of these helpers; the rest are dead code in its crate.
#![allow(dead_code)]

use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeDelta, TimeZone, Utc};

use triagem::config::Config;
use triagem::domain::numbering::{ProtocolSequence, TicketCounter};
use triagem::domain::patient::{Patient, PatientName, Protocol, QueueKind, Status};
use triagem::domain::{ColourId, Department, Snapshot, UnitId};

pub const UNIT: &str = "pa";

/// The bench unit's id.
pub fn unit() -> UnitId {
    UnitId::parse(UNIT).expect("a unit id")
}

pub fn colour_id(c: &str) -> ColourId {
    ColourId::parse(c).expect("a colour id")
}
pub const ACTOR: &str = "bench";

pub fn config() -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let text = std::fs::read_to_string(&path).expect("config/default.toml");
    let config = Config::from_toml(&text).expect("config/default.toml parses");
    config.validate().expect("config/default.toml is valid");
    config
}

/// The moment every fixture is built around; benches advance it 1 µs per operation.
pub fn base_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap()
}

/// The protocol of the fixture's `i`-th patient (0-based).
pub fn protocol(i: usize) -> Protocol {
    Protocol::new(2026, i as u64 + 1).unwrap()
}

/// `n` patients waiting in `pa`'s treatment queue, the `i`-th of colour
/// `colour(i)`, arrived (and triaged) evenly over the `span` before
/// [`base_time`], in protocol order.
pub fn waiting_department(
    config: &Config,
    n: usize,
    span: TimeDelta,
    colour: impl Fn(usize) -> &'static str,
) -> Department {
    let now = base_time();
    let step = span / n as i32;
    let patients: Vec<Patient> = (0..n)
        .map(|i| {
            let arrived_at = now - span + step * i as i32;
            Patient {
                protocol: protocol(i),
                ticket: format!("A{:03}", i + 1),
                unit: unit(),
                name: PatientName::parse(&format!("Paciente {i}")).expect("a name"),
                colour: Some(colour_id(colour(i))),
                status: Status::Waiting,
                complaint: None,
                birth_date: None,
                document: None,
                arrived_at,
                admitted_at: arrived_at,
                triaged_at: Some(arrived_at),
                called_at: None,
                wait_ended_at: None,
                room: None,
                called_from: None,
                no_shows: 0,
                outcome: None,
                leave_reason: None,
                triage_note: None,
                closed_at: None,
                contact: None,
                updated_at: None,
                admitted_unit: None,
                first_triaged_at: None,
                classified_max_wait_seconds: None,
                first_call: None,
            }
        })
        .collect();
    let snapshot = Snapshot {
        patients: patients.into_iter().collect(),
        sequence: Some(ProtocolSequence {
            year: 2026,
            last: n as u64,
        }),
        tickets: vec![(
            UNIT.to_owned(),
            TicketCounter {
                day: NaiveDate::from_ymd_opt(2026, 11, 28).unwrap(),
                last: n as u32,
            },
        )],
        ..Snapshot::default()
    };
    let dept =
        Department::restore(&config.department_settings(), snapshot).expect("fixture restores");
    assert_eq!(dept.waiting(UNIT, QueueKind::Treatment).unwrap(), n);
    dept
}
