//! Domain rules with time passed in by hand: ordering, numbering, every
//! transition and every refusal.

use crate::domain::ids::{colour_id, unit_id};
use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use proptest::prelude::*;

use super::patient::{LeaveReason, Outcome, Protocol, QueueKind, Status};
use super::*;
use crate::config::Config;
use crate::domain::escalation::{AlertKind, AlertState};

const ROOM: &str = "Consultório 1";

fn config() -> Config {
    let text = include_str!("../../config/default.toml");
    let mut c = Config::from_toml(text).unwrap();
    c.units.push(UnitSettings {
        id: unit_id("ped"),
        name: "Pediatria".into(),
        ticket_prefix: "P".into(),
        rooms: vec!["Consultório P".into()],
        triage_rooms: Vec::new(),
        max_no_shows: 2,
    });
    c
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 28, 15, 0, 0).unwrap()
}

fn mins(m: i64) -> DateTime<Utc> {
    t0() + TimeDelta::minutes(m)
}

fn admission(name: &str, colour: Option<&str>) -> Admission {
    Admission {
        contact: None,
        name: name.into(),
        colour: colour.map(colour_id),
        complaint: None,
        arrived_at: None,
        birth_date: None,
        document: None,
    }
}

/// The admission's answer as the desk reads it.
trait AnswerJson {
    fn json(&self) -> serde_json::Value;
}

impl AnswerJson for Admitted {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.to_json()).unwrap()
    }
}

fn admit_at(d: &mut Department, colour: Option<&str>, now: DateTime<Utc>) -> Protocol {
    let v = d
        .admit(
            &unit_id("pa"),
            admission("Maria Silva", colour),
            None,
            "desk",
            now,
        )
        .unwrap()
        .value;
    v.protocol
}

fn call(d: &mut Department, now: DateTime<Utc>) -> Option<Protocol> {
    d.call("pa", QueueKind::Treatment, ROOM, None, "doc", now)
        .unwrap()
        .value
        .map(|v| v.protocol)
}

fn status(d: &Department, p: Protocol) -> Status {
    d.patient(p).unwrap().status
}

fn events(changes: &[Change]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Event(e) => Some(e.event.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_red_patient_is_called_before_an_earlier_yellow_one() {
    let mut d = Department::new(&config().department_settings());
    let yellow = admit_at(&mut d, Some("yellow"), mins(0));
    let red = admit_at(&mut d, Some("red"), mins(5));
    assert_eq!(call(&mut d, mins(6)), Some(red));
    assert_eq!(call(&mut d, mins(7)), Some(yellow));
    assert_eq!(call(&mut d, mins(8)), None);
}

#[test]
fn within_a_colour_the_earlier_arrival_is_called_first_even_if_admitted_later() {
    let mut d = Department::new(&config().department_settings());
    let late = admit_at(&mut d, Some("green"), mins(10));
    let mut a = admission("Ana", Some("green"));
    a.arrived_at = Some(mins(1));
    let early = d
        .admit(&unit_id("pa"), a, None, "desk", mins(11))
        .unwrap()
        .value
        .json();
    assert_eq!(early["position"], 1);
    assert_eq!(d.view(d.patient(late).unwrap(), mins(11)).position, Some(2));
    assert_eq!(
        call(&mut d, mins(12)).unwrap().to_string(),
        early["protocol"].as_str().unwrap()
    );
}

#[test]
fn protocol_numbers_are_17_digits_consecutive_and_tickets_count_per_unit() {
    let mut d = Department::new(&config().department_settings());
    let a = d
        .admit(&unit_id("pa"), admission("A", None), None, "x", t0())
        .unwrap()
        .value
        .json();
    let b = d
        .admit(&unit_id("pa"), admission("B", None), None, "x", t0())
        .unwrap()
        .value
        .json();
    let c = d
        .admit(&unit_id("ped"), admission("C", None), None, "x", t0())
        .unwrap()
        .value
        .json();
    assert_eq!(a["protocol"], "20260000000000001");
    assert_eq!(b["protocol"], "20260000000000002");
    assert_eq!(c["protocol"], "20260000000000003");
    assert_eq!(a["ticket"], "A001");
    assert_eq!(b["ticket"], "A002");
    assert_eq!(c["ticket"], "P001");
}

#[test]
fn the_protocol_year_and_ticket_day_follow_the_configured_time_zone() {
    // 02:00 UTC on 1 January is still 31 December in São Paulo (UTC-3).
    let mut d = Department::new(&config().department_settings());
    let new_year_utc = Utc.with_ymd_and_hms(2027, 1, 1, 2, 0, 0).unwrap();
    let v = d
        .admit(
            &unit_id("pa"),
            admission("A", None),
            None,
            "x",
            new_year_utc,
        )
        .unwrap()
        .value
        .json();
    assert!(v["protocol"].as_str().unwrap().starts_with("2026"));
    let later = Utc.with_ymd_and_hms(2027, 1, 1, 4, 0, 0).unwrap();
    let v = d
        .admit(&unit_id("pa"), admission("B", None), None, "x", later)
        .unwrap()
        .value
        .json();
    assert_eq!(v["protocol"], "20270000000000001");
    assert_eq!(
        v["ticket"], "A002",
        "a new local day restarts tickets, past the A001 still waiting"
    );
}

#[test]
fn admission_with_a_colour_is_triaged_at_admission() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("yellow"), t0());
    let v = d.view(d.patient(p).unwrap(), mins(10));
    assert_eq!(v.status, Status::Waiting);
    assert_eq!(v.triaged_at, Some(t0()));
    assert_eq!(v.max_wait_seconds, 1800);
    assert_eq!(v.due_at, mins(30));
    assert_eq!(v.waited_seconds, 600);
    assert!(!v.overdue);
    assert!(d.view(d.patient(p).unwrap(), mins(30)).overdue);
}

#[test]
fn an_untriaged_patient_uses_the_triage_max_wait_from_arrival() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, None, t0());
    let v = d.view(d.patient(p).unwrap(), mins(11));
    assert_eq!(v.status, Status::AwaitingTriage);
    assert_eq!(v.colour, None);
    assert_eq!(v.max_wait_seconds, 600);
    assert_eq!(v.due_at, mins(10));
    assert!(v.overdue);
}

#[test]
fn a_red_patient_is_overdue_from_admission() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("red"), t0());
    let v = d.view(d.patient(p).unwrap(), t0());
    assert_eq!(v.max_wait_seconds, 0);
    assert!(v.overdue);
}

#[test]
fn re_triage_keeps_arrival_and_restarts_the_colour_clock() {
    let mut d = Department::new(&config().department_settings());
    let first = admit_at(&mut d, Some("green"), mins(0));
    let p = admit_at(&mut d, Some("blue"), mins(1));
    let v = d
        .triage(
            p,
            &colour_id("green"),
            Some("worse".into()),
            "nurse",
            mins(20),
        )
        .unwrap();
    assert_eq!(v.value.arrived_at, mins(1));
    assert_eq!(v.value.triaged_at, Some(mins(20)));
    assert_eq!(v.value.due_at, mins(20) + TimeDelta::hours(2));
    assert_eq!(v.value.position, Some(2), "placed among green by arrival");
    assert_eq!(events(&v.changes), vec!["triaged"]);
    let v = d
        .triage(p, &colour_id("yellow"), None, "nurse", mins(21))
        .unwrap()
        .value;
    assert_eq!(v.position, Some(1));
    assert_eq!(call(&mut d, mins(22)), Some(p));
    assert_eq!(call(&mut d, mins(23)), Some(first));
}

#[test]
fn clock_starts_arrival_counts_the_deadline_from_arrival() {
    let mut c = config();
    c.protocol.clock_starts = ClockStarts::Arrival;
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, None, mins(0));
    let v = d
        .triage(p, &colour_id("yellow"), None, "nurse", mins(8))
        .unwrap()
        .value;
    assert_eq!(v.due_at, mins(30));
}

#[test]
fn the_triage_queue_is_first_come_first_served() {
    let mut d = Department::new(&config().department_settings());
    let a = admit_at(&mut d, None, mins(0));
    let b = admit_at(&mut d, None, mins(1));
    let called = d
        .call("pa", QueueKind::Triage, "Triagem 1", None, "nurse", mins(2))
        .unwrap()
        .value
        .unwrap();
    assert_eq!(called.protocol, a);
    assert_eq!(called.status, Status::InTriage);
    assert_eq!(called.room.as_deref(), Some("Triagem 1"));
    assert_eq!(d.view(d.patient(b).unwrap(), mins(2)).position, Some(1));
    // Triage from in_triage moves the patient to the treatment queue.
    let v = d
        .triage(a, &colour_id("green"), None, "nurse", mins(3))
        .unwrap()
        .value;
    assert_eq!(v.status, Status::Waiting);
    assert_eq!(v.room, None);
}

#[test]
fn a_call_restricted_to_colours_leaves_the_others_waiting() {
    let mut d = Department::new(&config().department_settings());
    let red = admit_at(&mut d, Some("red"), mins(0));
    let blue = admit_at(&mut d, Some("blue"), mins(1));
    let only_blue = [colour_id("blue")];
    let v = d
        .call(
            "pa",
            QueueKind::Treatment,
            ROOM,
            Some(&only_blue),
            "doc",
            mins(2),
        )
        .unwrap()
        .value
        .unwrap();
    assert_eq!(v.protocol, blue);
    assert_eq!(status(&d, red), Status::Waiting);
}

#[test]
fn a_call_with_an_unknown_room_or_colour_changes_nothing() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    let err = d
        .call("pa", QueueKind::Treatment, "Sala 9", None, "doc", t0())
        .unwrap_err();
    assert!(matches!(err, DomainError::UnknownRoom { .. }));
    let purple = [colour_id("purple")];
    let err = d
        .call("pa", QueueKind::Treatment, ROOM, Some(&purple), "doc", t0())
        .unwrap_err();
    assert_eq!(err, DomainError::UnknownColour("purple".into()));
    assert_eq!(status(&d, p), Status::Waiting);
    assert_eq!(d.board("pa", t0()).unwrap().calls.len(), 0);
}

#[test]
fn start_and_finish_record_the_outcome() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("yellow"), mins(0));
    call(&mut d, mins(5));
    let v = d.start(p, "doc", mins(6)).unwrap().value;
    assert_eq!(v.status, Status::InTreatment);
    assert_eq!(v.waited_seconds, 300, "the wait ends at the call");
    let v = d
        .finish(p, Outcome::Discharged, "doc", mins(30))
        .unwrap()
        .value;
    assert_eq!(v.status, Status::Finished);
    assert_eq!(v.outcome, Some(Outcome::Discharged));
    assert_eq!(v.closed_at, Some(mins(30)));
    assert_eq!(v.position, None);
}

#[test]
fn a_called_patient_may_be_finished_without_start() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    call(&mut d, t0());
    assert_eq!(
        d.finish(p, Outcome::Admitted, "doc", t0())
            .unwrap()
            .value
            .status,
        Status::Finished
    );
}

#[test]
fn transitions_the_status_does_not_allow_are_refused_and_change_nothing() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    let before = d.patient(p).unwrap().clone();
    let refused = [
        d.start(p, "x", t0()).map(|_| ()),
        d.finish(p, Outcome::Discharged, "x", t0()).map(|_| ()),
        d.no_show(p, "x", t0()).map(|_| ()),
        d.recall(p, "x", t0()).map(|_| ()),
    ];
    for r in refused {
        assert!(
            matches!(r, Err(DomainError::InvalidTransition { .. })),
            "{r:?}"
        );
    }
    assert_eq!(d.patient(p).unwrap(), &before);
    d.leave(p, LeaveReason::Lwbs, "x", t0()).unwrap();
    for r in [
        d.triage(p, &colour_id("red"), None, "x", t0()).map(|_| ()),
        d.transfer(p, &unit_id("ped"), "x", t0()).map(|_| ()),
        d.leave(p, LeaveReason::Cancelled, "x", t0()).map(|_| ()),
    ] {
        assert!(
            matches!(r, Err(DomainError::InvalidTransition { .. })),
            "{r:?}"
        );
    }
    let p2 = admit_at(&mut d, Some("green"), t0());
    call(&mut d, t0());
    d.start(p2, "x", t0()).unwrap();
    assert!(matches!(
        d.triage(p2, &colour_id("red"), None, "x", t0()),
        Err(DomainError::InvalidTransition { .. })
    ));
    assert!(matches!(
        d.transfer(p2, &unit_id("ped"), "x", t0()),
        Err(DomainError::InvalidTransition { .. })
    ));
}

#[test]
fn a_no_show_returns_the_patient_to_their_original_place() {
    let mut d = Department::new(&config().department_settings());
    let first = admit_at(&mut d, Some("yellow"), mins(0));
    let second = admit_at(&mut d, Some("yellow"), mins(1));
    assert_eq!(call(&mut d, mins(2)), Some(first));
    let v = d.no_show(first, "doc", mins(3)).unwrap().value;
    assert_eq!(v.status, Status::Waiting);
    assert_eq!(v.no_shows, 1);
    assert_eq!(v.position, Some(1));
    assert_eq!(v.room, None);
    assert_eq!(
        d.view(d.patient(second).unwrap(), mins(3)).position,
        Some(2)
    );
}

#[test]
fn a_no_show_in_triage_returns_to_the_triage_queue() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, None, t0());
    d.call("pa", QueueKind::Triage, "Triagem 1", None, "n", t0())
        .unwrap();
    let v = d.no_show(p, "n", mins(1)).unwrap().value;
    assert_eq!(v.status, Status::AwaitingTriage);
    assert_eq!(v.position, Some(1));
}

#[test]
fn the_no_show_that_reaches_the_limit_makes_the_patient_left() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    for i in 1..=2 {
        call(&mut d, mins(i));
        assert_eq!(
            d.no_show(p, "doc", mins(i)).unwrap().value.status,
            Status::Waiting
        );
    }
    call(&mut d, mins(3));
    let applied = d.no_show(p, "doc", mins(3)).unwrap();
    assert_eq!(applied.value.status, Status::Left);
    assert_eq!(applied.value.leave_reason, Some(LeaveReason::NoShow));
    assert_eq!(applied.value.no_shows, 3);
    assert_eq!(events(&applied.changes), vec!["no_show", "left"]);
    assert_eq!(call(&mut d, mins(4)), None);
}

#[test]
fn recall_announces_again_without_changing_status() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    call(&mut d, mins(1));
    let applied = d.recall(p, "doc", mins(2)).unwrap();
    assert_eq!(applied.value.status, Status::Called);
    assert_eq!(applied.value.called_at, Some(mins(1)));
    assert_eq!(events(&applied.changes), vec!["recalled"]);
    let board = d.board("pa", mins(2)).unwrap();
    assert_eq!(board.calls.len(), 2);
    assert_eq!(board.calls[0].called_at, mins(2));
    assert_eq!(board.calls[0].room, ROOM);
}

#[test]
fn transfer_keeps_ticket_arrival_and_place_by_arrival() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("green"), mins(0));
    let mut other = admission("Other", Some("green"));
    other.arrived_at = Some(mins(5));
    d.admit(&unit_id("ped"), other, None, "desk", mins(5))
        .unwrap();
    call(&mut d, mins(6));
    let v = d
        .transfer(p, &unit_id("ped"), "doc", mins(7))
        .unwrap()
        .value;
    assert_eq!(v.unit, "ped");
    assert_eq!(v.status, Status::Waiting);
    assert_eq!(v.ticket, "A001");
    assert_eq!(v.arrived_at, mins(0));
    assert_eq!(v.triaged_at, Some(mins(0)));
    assert_eq!(
        v.position,
        Some(1),
        "arrived before the patient already there"
    );
    assert_eq!(d.waiting("pa", QueueKind::Treatment).unwrap(), 0);
    assert!(matches!(
        d.transfer(p, &unit_id("nowhere"), "doc", mins(8)),
        Err(DomainError::UnknownUnit(_))
    ));
    assert!(matches!(
        d.transfer(p, &unit_id("ped"), "doc", mins(8)),
        Err(DomainError::Invalid { .. })
    ));
}

#[test]
fn transfer_of_an_untriaged_patient_goes_to_the_other_triage_queue() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, None, t0());
    let v = d.transfer(p, &unit_id("ped"), "desk", t0()).unwrap().value;
    assert_eq!(v.status, Status::AwaitingTriage);
    assert_eq!(d.waiting("ped", QueueKind::Triage).unwrap(), 1);
}

#[test]
fn leave_takes_the_patient_out_of_the_queue_with_its_reason() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("blue"), mins(0));
    let v = d
        .leave(p, LeaveReason::Cancelled, "desk", mins(40))
        .unwrap()
        .value;
    assert_eq!(v.status, Status::Left);
    assert_eq!(v.leave_reason, Some(LeaveReason::Cancelled));
    assert_eq!(v.waited_seconds, 2400);
    assert_eq!(call(&mut d, mins(41)), None);
    assert!(matches!(
        d.leave(p, LeaveReason::NoShow, "desk", mins(41)),
        Err(DomainError::Invalid { .. }) | Err(DomainError::InvalidTransition { .. })
    ));
}

#[test]
fn a_client_may_not_claim_the_no_show_leave_reason() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("blue"), t0());
    assert!(matches!(
        d.leave(p, LeaveReason::NoShow, "desk", t0()),
        Err(DomainError::Invalid { .. })
    ));
    assert_eq!(status(&d, p), Status::Waiting);
}

#[test]
fn bad_admissions_are_refused_and_consume_no_number() {
    let mut d = Department::new(&config().department_settings());
    let bad = [
        admission("   ", None),
        admission(&"x".repeat(201), None),
        admission("Ana", Some("purple")),
        Admission {
            arrived_at: Some(t0() + TimeDelta::seconds(6)),
            ..admission("Ana", None)
        },
        Admission {
            arrived_at: Some(t0() - TimeDelta::hours(25)),
            ..admission("Ana", None)
        },
        Admission {
            complaint: Some("x".repeat(1001)),
            ..admission("Ana", None)
        },
        Admission {
            document: Some("1".repeat(33)),
            ..admission("Ana", None)
        },
    ];
    for a in bad {
        assert!(
            d.admit(&unit_id("pa"), a.clone(), None, "desk", t0())
                .is_err(),
            "{a:?}"
        );
    }
    assert!(matches!(
        d.admit(
            &unit_id("nowhere"),
            admission("Ana", None),
            None,
            "desk",
            t0()
        ),
        Err(DomainError::UnknownUnit(_))
    ));
    let v = d
        .admit(
            &unit_id("pa"),
            admission("  Ana  ", None),
            None,
            "desk",
            t0(),
        )
        .unwrap()
        .value
        .json();
    assert_eq!(v["protocol"], "20260000000000001");
    assert_eq!(v["name"], "Ana");
    assert_eq!(v["ticket"], "A001");
}

#[test]
fn an_arrival_a_few_seconds_ahead_is_clock_skew_and_counts_as_now() {
    let mut d = Department::new(&config().department_settings());
    let a = Admission {
        arrived_at: Some(t0() + TimeDelta::seconds(4)),
        ..admission("Ana", None)
    };
    let v = d
        .admit(&unit_id("pa"), a, None, "desk", t0())
        .unwrap()
        .value
        .json();
    assert_eq!(v["arrived_at"], serde_json::to_value(t0()).unwrap());
}

#[test]
fn the_same_idempotency_key_returns_the_first_response_for_24_hours() {
    let mut d = Department::new(&config().department_settings());
    let first = d
        .admit(
            &unit_id("pa"),
            admission("Ana", None),
            Some("k-1"),
            "desk",
            t0(),
        )
        .unwrap();
    assert!(first
        .changes
        .iter()
        .any(|c| matches!(c, Change::Idempotency(_))));
    let again = d
        .admit(
            &unit_id("pa"),
            admission("Ana", None),
            Some("k-1"),
            "desk",
            mins(60),
        )
        .unwrap();
    assert_eq!(again.value.protocol, first.value.protocol);
    assert_eq!(again.value.to_json(), first.value.to_json());
    assert!(again.changes.is_empty());
    assert_eq!(d.waiting("pa", QueueKind::Triage).unwrap(), 1);
    let later = d
        .admit(
            &unit_id("pa"),
            admission("Ana", None),
            Some("k-1"),
            "desk",
            t0() + TimeDelta::hours(25),
        )
        .unwrap();
    assert_ne!(later.value.protocol, first.value.protocol);
}

#[test]
fn the_board_counts_waiting_longest_wait_and_overdue_without_personal_data() {
    let mut d = Department::new(&config().department_settings());
    admit_at(&mut d, Some("yellow"), mins(0));
    admit_at(&mut d, Some("yellow"), mins(20));
    admit_at(&mut d, None, mins(25));
    let board = d.board("pa", mins(35)).unwrap();
    let ids: Vec<_> = board.queues.iter().map(|q| q.colour.clone()).collect();
    assert_eq!(
        ids,
        vec![
            Some(colour_id("red")),
            Some(colour_id("yellow")),
            Some(colour_id("green")),
            Some(colour_id("blue")),
            None
        ]
    );
    let yellow = &board.queues[1];
    assert_eq!(
        (yellow.waiting, yellow.longest_wait_seconds, yellow.overdue),
        (2, 2100, 1)
    );
    let triage = &board.queues[4];
    assert_eq!(
        (triage.waiting, triage.longest_wait_seconds, triage.overdue),
        (1, 600, 1)
    );
    let text = serde_json::to_string(&board).unwrap();
    assert!(!text.contains("Maria"));
    assert!(!text.contains("2026000"));
}

/// The board counts overdue by each patient's own deadline: with the clock
/// starting at triage, a late re-triage pushes the deadline past an earlier
/// arrival's; with it starting at arrival, arrival alone decides.
#[test]
fn the_board_overdue_count_follows_each_clock_start() {
    for (starts, at_40, at_55) in [(ClockStarts::Triage, 1, 2), (ClockStarts::Arrival, 2, 2)] {
        let mut c = config();
        c.protocol.clock_starts = starts;
        let mut d = Department::new(&c.department_settings());
        let early = admit_at(&mut d, None, mins(0));
        let late = admit_at(&mut d, None, mins(5));
        d.triage(early, &colour_id("yellow"), None, "nurse", mins(20))
            .unwrap();
        d.triage(late, &colour_id("yellow"), None, "nurse", mins(6))
            .unwrap();
        admit_at(&mut d, Some("yellow"), mins(39));
        let overdue = |d: &Department, at| d.board("pa", at).unwrap().queues[1].overdue;
        assert_eq!(overdue(&d, mins(29)), 0, "{starts:?}");
        assert_eq!(overdue(&d, mins(40)), at_40, "{starts:?}");
        assert_eq!(overdue(&d, mins(55)), at_55, "{starts:?}");
        assert_eq!(overdue(&d, mins(69)), 3, "{starts:?}");
    }
}

#[test]
fn the_board_keeps_the_last_ten_calls_newest_first() {
    let mut d = Department::new(&config().department_settings());
    for i in 0..12 {
        admit_at(&mut d, Some("green"), mins(i));
    }
    for i in 0..12 {
        call(&mut d, mins(20 + i));
    }
    let board = d.board("pa", mins(40)).unwrap();
    assert_eq!(board.calls.len(), BOARD_CALLS);
    assert_eq!(board.calls[0].ticket, "A012");
    assert_eq!(board.calls[9].ticket, "A003");
}

#[test]
fn purge_forgets_closed_patients_after_retention_only() {
    let mut d = Department::new(&config().department_settings());
    let gone = admit_at(&mut d, Some("green"), t0());
    let waiting = admit_at(&mut d, Some("green"), t0());
    d.leave(gone, LeaveReason::Lwbs, "desk", t0()).unwrap();
    assert_eq!(d.purge(t0() + TimeDelta::days(89)).value, 0);
    let applied = d.purge(t0() + TimeDelta::days(91));
    assert_eq!(applied.value, 1);
    assert!(d.patient(gone).is_err());
    assert!(d.patient(waiting).is_ok());
}

/// Alerts go with their patient: one resolved long ago stays while the
/// patient is still kept (here, waiting again after a re-triage).
#[test]
fn purge_keeps_the_alerts_of_patients_still_kept() {
    let mut d = Department::new(&config().department_settings());
    let waiting = admit_at(&mut d, Some("red"), t0());
    let gone = admit_at(&mut d, Some("red"), t0());
    d.escalate(t0());
    d.triage(waiting, &colour_id("blue"), None, "nurse", mins(1))
        .unwrap();
    d.leave(gone, LeaveReason::Lwbs, "desk", mins(1)).unwrap();
    let all = |d: &Department| d.alerts(None, true, t0() + TimeDelta::days(91)).unwrap();
    assert_eq!(all(&d).len(), 2);
    let purged = d.purge(t0() + TimeDelta::days(91));
    let Change::Purge { alerts, .. } = &purged.changes[0] else {
        panic!("{:?}", purged.changes);
    };
    assert_eq!(alerts.len(), 1);
    let left: Vec<_> = all(&d).iter().map(|a| a.protocol).collect();
    assert_eq!(left, [waiting]);
}

/// Tickets start again at A001 every day, but never as a patient still here
/// holds: a long stay (or a time zone changed mid-shift) kept yesterday's
/// A001 waiting while the new day's A001 was called to the same screen.
#[test]
fn a_new_days_tickets_skip_those_still_held_also_after_a_restart() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let ticket = |d: &Department, p| d.patient(p).unwrap().ticket.clone();
    let day1: Vec<Protocol> = (0..5)
        .map(|i| admit_at(&mut d, Some("green"), mins(i)))
        .collect();
    // A001 and A005 stay; A002..A004 leave.
    for p in &day1[1..4] {
        d.leave(*p, LeaveReason::Lwbs, "desk", mins(10)).unwrap();
    }
    // The paediatric unit's P003 stays, P001 and P002 leave (both units'
    // held tickets are found in one pass at start-up).
    let ped = |d: &mut Department, now| {
        let admitted = d.admit(
            &unit_id("ped"),
            admission("Bia", Some("green")),
            None,
            "desk",
            now,
        );
        admitted.unwrap().value.protocol
    };
    for i in 0..3 {
        let p = ped(&mut d, mins(i));
        if i < 2 {
            d.leave(p, LeaveReason::Lwbs, "desk", mins(10)).unwrap();
        }
    }
    let next_day = t0() + TimeDelta::days(1);
    let first = admit_at(&mut d, Some("green"), next_day);
    assert_eq!(ticket(&d, first), "A002", "A001 is still waiting");
    let first_ped = ped(&mut d, next_day);
    assert_eq!(ticket(&d, first_ped), "P001");
    // After a restart the counter stands at 2, and A005 still waits.
    let snapshot = Snapshot {
        patients: d.patients.values().cloned().collect(),
        sequence: Some(d.sequence),
        tickets: vec![
            ("pa".into(), d.units[0].tickets),
            ("ped".into(), d.units[1].tickets),
        ],
        ..Snapshot::default()
    };
    let mut r = Department::restore(&c.department_settings(), snapshot).unwrap();
    let issued: Vec<String> = (1..=4)
        .map(|i| {
            let p = admit_at(&mut r, Some("green"), next_day + TimeDelta::minutes(i));
            ticket(&r, p)
        })
        .collect();
    assert_eq!(issued, ["A003", "A004", "A006", "A007"]);
    let ped_after: Vec<String> = (5..7)
        .map(|i| {
            let p = ped(&mut r, next_day + TimeDelta::minutes(i));
            ticket(&r, p)
        })
        .collect();
    assert_eq!(ped_after, ["P002", "P004"], "yesterday's P003 still waits");
}

/// A unit removed from the config: its closed visits stay readable and do
/// not hold up the start; one patient still in care does, and says how to go on.
#[test]
fn a_removed_unit_blocks_the_start_only_while_it_has_patients_in_care() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let ped = |d: &mut Department, now| {
        d.admit(
            &unit_id("ped"),
            admission("Bia", Some("green")),
            None,
            "desk",
            now,
        )
        .unwrap()
        .value
        .protocol
    };
    let closed = ped(&mut d, t0());
    d.leave(closed, LeaveReason::Lwbs, "desk", mins(1)).unwrap();
    let mut without_ped = config();
    without_ped.units.retain(|u| u.id.as_str() != "ped");
    let snapshot = |d: &Department| Snapshot {
        patients: d.patients.values().cloned().collect(),
        sequence: Some(d.sequence),
        ..Snapshot::default()
    };
    let r = Department::restore(&without_ped.department_settings(), snapshot(&d)).unwrap();
    assert_eq!(r.patient(closed).unwrap().status, Status::Left);
    let code = r.check_code(closed);
    let seen = r.follow(closed, Some(code.as_str()), mins(2)).unwrap();
    assert_eq!(seen.unit_name, "ped", "the id, for want of a name");

    let waiting = ped(&mut d, mins(2));
    let Err(refused) = Department::restore(&without_ped.department_settings(), snapshot(&d)) else {
        panic!("a patient in care in a removed unit was taken in");
    };
    let said = refused.to_string();
    assert!(
        said.contains(&waiting.to_string()) && said.contains("waiting"),
        "{said}"
    );
}

#[test]
fn restore_rebuilds_the_same_queues_in_the_same_order() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    for (i, colour) in [
        Some("green"),
        None,
        Some("red"),
        Some("green"),
        None,
        Some("yellow"),
    ]
    .into_iter()
    .enumerate()
    {
        admit_at(&mut d, colour, mins(i as i64));
    }
    call(&mut d, mins(10));
    let snapshot = Snapshot {
        patients: d.patients.values().cloned().collect(),
        sequence: Some(d.sequence),
        tickets: vec![("pa".into(), d.units[0].tickets)],
        idempotency: Vec::new(),
        calls: d.units[0]
            .calls
            .iter()
            .rev()
            .map(|c| ("pa".into(), c.clone()))
            .collect(),
        ..Snapshot::default()
    };
    let r = Department::restore(&c.department_settings(), snapshot).unwrap();
    for kind in [QueueKind::Treatment, QueueKind::Triage] {
        let before = d.queue_page("pa", kind, 0, 100, mins(11)).unwrap();
        let after = r.queue_page("pa", kind, 0, 100, mins(11)).unwrap();
        assert_eq!(before, after);
    }
    assert_eq!(
        r.board("pa", mins(11)).unwrap(),
        d.board("pa", mins(11)).unwrap()
    );
    let mut r = r;
    let next = r
        .admit(&unit_id("pa"), admission("Z", None), None, "x", mins(12))
        .unwrap()
        .value
        .json();
    assert_eq!(next["protocol"], "20260000000000007");
    assert_eq!(next["ticket"], "A007");
}

/// One step of a random shift, applied both to the department and to a plain list.
#[derive(Debug, Clone)]
enum Op {
    Admit { colour: Option<usize>, back: i64 },
    Retriage { pick: usize, colour: usize },
    Call,
    NoShow,
    Transfer { pick: usize },
    Leave { pick: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (proptest::option::weighted(0.8, 0usize..4), 0i64..600)
            .prop_map(|(colour, back)| Op::Admit { colour, back }),
        2 => (any::<usize>(), 0usize..4).prop_map(|(pick, colour)| Op::Retriage { pick, colour }),
        2 => Just(Op::Call),
        1 => Just(Op::NoShow),
        1 => any::<usize>().prop_map(|pick| Op::Transfer { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Leave { pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The queue calls in exactly the order of a naive sort by (rank, arrival, protocol).
    #[test]
    fn the_queue_calls_in_the_order_of_a_naive_sort(ops in proptest::collection::vec(op(), 1..120)) {
        let c = config();
        let mut d = Department::new(&c.department_settings());
        let colours = ["red", "yellow", "green", "blue"];
        let mut now = t0();
        let mut last_called: Option<Protocol> = None;
        for op in ops {
            now += TimeDelta::seconds(7);
            // The model: every patient waiting in pa's treatment queue.
            let waiting = |d: &Department| -> Vec<(usize, DateTime<Utc>, Protocol)> {
                let mut v: Vec<_> = d.patients.values()
                    .filter(|p| p.unit == "pa" && p.status == Status::Waiting)
                    .map(|p| (d.scale.rank(p.colour.as_deref().unwrap()).unwrap(), p.arrived_at, p.protocol))
                    .collect();
                v.sort();
                v
            };
            match op {
                Op::Admit { colour, back } => {
                    let a = Admission {
                        arrived_at: Some(now - TimeDelta::seconds(back)),
                        ..admission("P", colour.map(|i| colours[i]))
                    };
                    d.admit(&unit_id("pa"), a, None, "x", now).unwrap();
                }
                Op::Retriage { pick, colour } => {
                    let all = waiting(&d);
                    if !all.is_empty() {
                        let p = all[pick % all.len()].2;
                        d.triage(p, &colour_id(colours[colour]), None, "x", now).unwrap();
                    }
                }
                Op::Call => {
                    let expected = waiting(&d).first().map(|e| e.2);
                    let got = call(&mut d, now);
                    prop_assert_eq!(got, expected);
                    if got.is_some() { last_called = got; }
                }
                Op::NoShow => {
                    if let Some(p) = last_called.take() {
                        if d.patient(p).unwrap().status == Status::Called {
                            d.no_show(p, "x", now).unwrap();
                        }
                    }
                }
                Op::Transfer { pick } => {
                    let all = waiting(&d);
                    if !all.is_empty() {
                        let p = all[pick % all.len()].2;
                        d.transfer(p, &unit_id("ped"), "x", now).unwrap();
                    }
                }
                Op::Leave { pick } => {
                    let all = waiting(&d);
                    if !all.is_empty() {
                        let p = all[pick % all.len()].2;
                        d.leave(p, LeaveReason::Lwbs, "x", now).unwrap();
                    }
                }
            }
            let model = waiting(&d);
            let listed = d.queue_page("pa", QueueKind::Treatment, 0, 1000, now).unwrap();
            prop_assert_eq!(listed.0, model.len());
            let order: Vec<Protocol> = listed.1.iter().map(|v| v.protocol).collect();
            let expected: Vec<Protocol> = model.iter().map(|e| e.2).collect();
            prop_assert_eq!(&order, &expected);
            for (i, v) in listed.1.iter().enumerate() {
                prop_assert_eq!(v.position, Some(i + 1));
            }
        }
    }
}

fn alert_events(changes: &[Change]) -> Vec<(String, u32)> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Notify(n) => Some((n.event.as_str().to_owned(), n.alert.level)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_red_admission_is_due_for_escalation_at_once() {
    let mut d = Department::new(&config().department_settings());
    admit_at(&mut d, Some("red"), t0());
    assert_eq!(d.next_deadline(), Some(t0()));
    let fired = d.escalate(t0());
    assert_eq!(fired.value, 1);
    assert_eq!(
        alert_events(&fired.changes),
        vec![("alert.firing".into(), 1)]
    );
    let stream: Vec<_> = fired
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Event(e) => e.display.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(stream.len(), 1);
    assert_eq!(stream[0].event, "alert");
    assert_eq!(stream[0].kind, Some(AlertKind::Breach));
}

#[test]
fn calling_the_patient_resolves_the_alert() {
    let mut d = Department::new(&config().department_settings());
    admit_at(&mut d, Some("red"), t0());
    d.escalate(t0());
    let called = d
        .call("pa", QueueKind::Treatment, ROOM, None, "doc", mins(1))
        .unwrap();
    assert_eq!(
        alert_events(&called.changes),
        vec![("alert.resolved".into(), 1)]
    );
    assert!(d.alerts(None, false, mins(1)).unwrap().is_empty());
    assert_eq!(d.alerts(None, true, mins(1)).unwrap().len(), 1);
    assert_eq!(d.next_deadline(), None);
}

#[test]
fn re_triage_to_a_colour_with_time_left_resolves_the_alert() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("yellow"), t0());
    let warned = d.escalate(mins(24));
    assert_eq!(
        alert_events(&warned.changes),
        vec![("alert.firing".into(), 0)]
    );
    let t = d
        .triage(p, &colour_id("green"), None, "nurse", mins(25))
        .unwrap();
    assert_eq!(alert_events(&t.changes), vec![("alert.resolved".into(), 0)]);
    // The new episode warns at 80 % of green's 2 h, counted from the re-triage.
    assert_eq!(d.next_deadline(), Some(mins(25 + 96)));
}

/// The id of the alert the first of `changes` records.
fn first_alert(changes: &[Change]) -> u64 {
    match &changes[0] {
        Change::Alert(a) => a.id,
        other => panic!("{other:?}"),
    }
}

/// What a restart reads back of `d`: patients, numbering, alerts and events.
/// The alerts `changes` write to the journal: id, colour and target.
fn alerts_written(changes: &[Change]) -> Vec<(u64, Option<ColourId>, i64)> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Alert(a) => Some((a.id, a.colour.clone(), a.max_wait_seconds)),
            _ => None,
        })
        .collect()
}

fn with_alerts(d: &Department) -> Snapshot {
    Snapshot {
        patients: d.patients.values().cloned().collect(),
        sequence: Some(d.sequence),
        alerts: d.escalation.alerts().cloned().collect(),
        last_alert_id: d.escalation.alerts().map(|a| a.id).max().unwrap_or(0),
        last_event_id: d.last_event_id,
        ..Snapshot::default()
    }
}

#[test]
fn re_triage_to_a_less_urgent_colour_already_past_its_deadline_keeps_escalating() {
    let mut c = config();
    c.protocol.clock_starts = ClockStarts::Arrival;
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, Some("yellow"), t0());
    let first = d.escalate(mins(31));
    let id = first_alert(&first.changes);
    let t = d
        .triage(p, &colour_id("green"), None, "nurse", mins(125))
        .unwrap();
    assert!(alert_events(&t.changes).is_empty(), "not resolved");
    // The alert's new colour is journaled, or a restart reads back yellow.
    let kept = alerts_written(&t.changes);
    assert_eq!(kept, [(id, Some(colour_id("green")), 7200)]);
    // Green from arrival was due at 120 min, its level 2 at 135.
    assert_eq!(d.next_deadline(), Some(mins(135)));
    let level2 = d.escalate(mins(135));
    assert_eq!(
        alert_events(&level2.changes),
        vec![("alert.firing".into(), 2)]
    );
    assert_eq!(
        d.alerts(None, false, mins(135)).unwrap()[0].id,
        id,
        "same alert"
    );
}

/// A journal written before a kept alert's new colour was recorded: the
/// re-triage to green is read back with the alert still yellow, 30 minutes.
/// The alert goes on, acknowledged, against green: taken for a config change,
/// it was resolved and a new one fired from the warning, paging again.
#[test]
fn an_older_journals_kept_alert_goes_on_after_the_upgrade() {
    let mut c = config();
    c.protocol.clock_starts = ClockStarts::Arrival;
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, Some("yellow"), t0());
    let id = first_alert(&d.escalate(mins(31)).changes);
    let level2 = d.escalate(mins(46)); // under green not due before 135 min
    assert_eq!(
        alert_events(&level2.changes),
        vec![("alert.firing".into(), 2)]
    );
    d.acknowledge(id, "Dr. Ack", "clinician", mins(47)).unwrap();
    d.triage(p, &colour_id("green"), None, "nurse", mins(125))
        .unwrap();
    let mut snapshot = with_alerts(&d);
    for a in &mut snapshot.alerts {
        a.colour = Some(colour_id("yellow"));
        a.max_wait_seconds = 1800;
    }
    let mut r = Department::restore(&c.department_settings(), snapshot).unwrap();
    // Nothing resolved or fired; the first pass writes the alert back as
    // memory now has it, so the journal no longer says yellow.
    let first = r.escalate(mins(126));
    assert!(alert_events(&first.changes).is_empty());
    let written = alerts_written(&first.changes);
    assert_eq!(written, [(id, Some(colour_id("green")), 7200)]);
    assert!(r.escalate(mins(127)).changes.is_empty(), "written once");
    let active = r.alerts(None, false, mins(126)).unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].id, id);
    assert_eq!(active[0].colour, Some(colour_id("green")));
    assert_eq!(active[0].max_wait_seconds, 7200);
    assert_eq!(active[0].acknowledged_by.as_deref(), Some("Dr. Ack"));
    // Acknowledged: no later level pages anyone.
    assert!(r.escalate(mins(200)).changes.is_empty());
}

/// The corrected alert is written back as it is at the first pass: an
/// acknowledgement made after the start (a desk retrying as soon as the
/// service is ready) is not overwritten by the copy taken at start-up.
#[test]
fn an_alert_corrected_at_start_up_keeps_an_acknowledgement_made_before_the_first_pass() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, Some("yellow"), t0());
    let id = first_alert(&d.escalate(mins(31)).changes);
    // An older journal: the transfer moved the patient, not the alert.
    d.patients.get_mut(&p).unwrap().unit = unit_id("ped");
    let snapshot = with_alerts(&d);
    let mut r = Department::restore(&c.department_settings(), snapshot).unwrap();
    r.acknowledge(id, "Dr. Ack", "clinician", mins(32)).unwrap();
    let first = r.escalate(mins(32));
    let last_written = first
        .changes
        .iter()
        .rev()
        .find_map(|c| match c {
            Change::Alert(a) if a.id == id => Some(a.clone()),
            _ => None,
        })
        .expect("the corrected alert written back");
    assert_eq!(last_written.unit, unit_id("ped"));
    assert_eq!(last_written.acknowledged_by.as_deref(), Some("Dr. Ack"));
}

#[test]
fn re_triage_to_a_more_urgent_colour_already_past_its_deadline_starts_a_new_alert() {
    let mut c = config();
    c.protocol.clock_starts = ClockStarts::Arrival;
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, Some("green"), t0());
    let first = d.escalate(mins(100));
    let id = first_alert(&first.changes);
    d.acknowledge(id, "Enf. Ana", "nurse-1", mins(100)).unwrap();
    let t = d
        .triage(p, &colour_id("yellow"), None, "nurse", mins(101))
        .unwrap();
    assert_eq!(alert_events(&t.changes), vec![("alert.resolved".into(), 0)]);
    // Yellow from arrival: warning at 24, breach at 30, level 2 at 45; all
    // due, all fire now, on a new alert the acknowledgement does not silence.
    let due = d.escalate(mins(101));
    assert_eq!(
        alert_events(&due.changes),
        vec![
            ("alert.firing".into(), 0),
            ("alert.firing".into(), 1),
            ("alert.firing".into(), 2)
        ]
    );
    let active = d.alerts(None, false, mins(101)).unwrap();
    assert_eq!(active.len(), 1);
    assert_ne!(active[0].id, id);
    assert_eq!(active[0].colour, Some(colour_id("yellow")));
}

#[test]
fn a_transferred_patient_keeps_their_alert_in_the_new_unit() {
    let mut d = Department::new(&config().department_settings());
    let p = admit_at(&mut d, Some("red"), t0());
    d.escalate(t0());
    let moved = d.transfer(p, &unit_id("ped"), "desk", mins(1)).unwrap();
    assert!(alert_events(&moved.changes).is_empty());
    let journaled: Vec<_> = moved
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Alert(a) => Some(a.unit.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(journaled, [unit_id("ped")], "the move is journaled");
    let active = d.alerts(Some("ped"), false, mins(1)).unwrap();
    assert_eq!(active.len(), 1);
    assert!(d.alerts(Some("pa"), false, mins(1)).unwrap().is_empty());
    assert_eq!(d.next_deadline(), Some(mins(15)), "level 2 still scheduled");
}

#[test]
fn acknowledging_records_who_and_stops_the_ladder() {
    let mut d = Department::new(&config().department_settings());
    admit_at(&mut d, Some("red"), t0());
    d.escalate(t0());
    let id = d.alerts(None, false, t0()).unwrap()[0].id;
    let acked = d.acknowledge(id, "Dra. Ana", "doc-1", mins(2)).unwrap();
    assert_eq!(acked.value.state, AlertState::Acknowledged);
    assert_eq!(acked.value.acknowledged_by.as_deref(), Some("Dra. Ana"));
    assert_eq!(
        alert_events(&acked.changes),
        vec![("alert.acknowledged".into(), 1)]
    );
    assert_eq!(d.next_deadline(), None);
    assert!(matches!(
        d.acknowledge(999, "x", "x", mins(3)),
        Err(DomainError::UnknownAlert(999))
    ));
}

/// Yellow's target raised from 30 to 60 minutes across a restart: a patient
/// breached under the old one is not overdue under the new one, so the alert
/// is resolved at the first pass and the wait is watched anew.
#[test]
fn a_target_raised_across_a_restart_resolves_the_alerts_it_ends() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    admit_at(&mut d, Some("yellow"), t0());
    let fired = d.escalate(mins(31));
    assert_eq!(
        alert_events(&fired.changes),
        vec![("alert.firing".into(), 0), ("alert.firing".into(), 1)]
    );
    let snapshot = with_alerts(&d);
    let mut raised = config();
    for colour in &mut raised.protocol.colours {
        if colour.id.as_str() == "yellow" {
            colour.max_wait = std::time::Duration::from_secs(3600);
        }
    }
    let mut r = Department::restore(&raised.department_settings(), snapshot).unwrap();
    let settled = r.escalate(mins(35));
    assert_eq!(
        alert_events(&settled.changes),
        vec![("alert.resolved".into(), 1)]
    );
    let resolved = r.alerts(None, true, mins(35)).unwrap();
    assert_eq!(
        resolved[0].max_wait_seconds, 1800,
        "kept as breached: against 30 minutes"
    );
    assert!(r.alerts(None, false, mins(35)).unwrap().is_empty());
    // Watched against 60 minutes from triage: the warning at 48.
    assert_eq!(r.next_deadline(), Some(mins(48)));
    assert!(r.escalate(mins(40)).changes.is_empty(), "settled once");
}

/// The same config, read back by an instance whose clock runs a little
/// behind the one that fired (a PostgreSQL takeover): nothing is settled, no
/// level fires again. Judged by the clock alone, the breach was resolved and
/// fired a second time under a new id.
#[test]
fn a_clock_a_little_behind_at_start_up_settles_nothing() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    admit_at(&mut d, Some("yellow"), t0());
    d.escalate(mins(30));
    let snapshot = with_alerts(&d);
    let mut r = Department::restore(&c.department_settings(), snapshot).unwrap();
    let behind = mins(30) - TimeDelta::seconds(3);
    assert!(r.escalate(behind).changes.is_empty());
    let active = r.alerts(None, false, behind).unwrap();
    assert_eq!((active.len(), active[0].level), (1, 1));
}

#[test]
fn after_a_restart_no_level_fires_twice_and_missed_ones_fire() {
    let c = config();
    let mut d = Department::new(&c.department_settings());
    let p = admit_at(&mut d, Some("red"), t0());
    d.escalate(t0());
    let snapshot = with_alerts(&d);
    let mut r = Department::restore(&c.department_settings(), snapshot).unwrap();
    assert!(r.escalate(t0()).changes.is_empty(), "level 1 already fired");
    // Level 2 fell due while the service was down: it fires at start-up.
    let late = r.escalate(mins(20));
    assert_eq!(
        alert_events(&late.changes),
        vec![("alert.firing".into(), 2)]
    );
    let next = admit_at(&mut r, Some("red"), mins(21));
    assert!(next > p);
    let new_alert = r.escalate(mins(21));
    let ids: Vec<u64> = new_alert
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::Alert(a) => Some(a.id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![2], "alert ids continue");
}
