//! How honest are the wait estimates (src/domain/estimate.rs)? A simulated
//! emergency department replayed through the real `Department` with a manual
//! clock: patients arrive by hour of day, a triage nurse calls and classifies
//! them, clinicians call the treatment queue (the domain picks the most urgent
//! colour first), some patients give up. Each waiting patient's
//! `Department::estimate` is recorded when they join a queue and every 15
//! minutes after, and compared with the time they were really called.
//!
//! Run with `cargo bench --bench estimate` (a plain `main`, `harness = false`;
//! about a second in release). Deterministic: every load has its own seeded
//! RNG. The figures are in benches/RESULTS.md, "Wait estimates".
//!
//! # The model (a mid-size Brazilian UPA; assumptions, not measurements)
//!
//! - Arrivals: Poisson by hour of day ([`ARRIVALS_PER_HOUR`], ~314 a day:
//!   3–6 an hour at night, a peak of 20–22 an hour at 09–12 h and a second
//!   one of 19–20 at 19–20 h), times a day-of-week factor ([`WEEKDAY`], Monday
//!   busiest). The heavy load multiplies every hour by 1.25 (~390 a day).
//! - Reception admits every arrival without colour: the triage queue.
//! - Triage: 2 nurses 07–23 h, 1 at night ([`nurses_on_duty`]), each calling
//!   the triage queue; triage takes 4 min on average (log-normal, CV 0.5),
//!   then the nurse classifies with the default scale's mix ([`COLOUR_MIX`]:
//!   red 2 %, yellow 20 %, green 55 %, blue 23 %).
//! - Treatment: 4 clinicians 07–01 h, 3 from 01 to 07 h
//!   ([`clinicians_on_duty`]). A free clinician calls the treatment queue at
//!   once; one who was idle notices a new patient after 0.5–3 min. A
//!   clinician is busy from the call to the end of the visit: 45 / 20 / 12 /
//!   8 min on average for red / yellow / green / blue (log-normal, CV 0.6),
//!   the walk to the room (1–2.5 min) included. A clinician whose shift ended
//!   finishes the current patient and calls nobody else.
//! - Leaving without being seen: each patient has a patience (exponential)
//!   for each queue: 5 h mean in the triage queue, 4 h for green and 3 h for
//!   blue in the treatment queue; red and yellow always stay. A patient whose
//!   patience runs out while still waiting leaves (`LeaveReason::Lwbs`).
//! - No no-shows, re-triage or transfers.
//! - Two days of warm-up (the first starts empty at midnight), then 28
//!   measured days.
//!
//! # What is measured
//!
//! For each observation (a patient waiting in a queue at a moment: when they
//! join it, then every 15 min until called): the estimate the domain gives,
//! and the wait that really remained (`called_at − observed_at`). Patients
//! who leave or are still waiting at the end have no real wait: their
//! observations are left out. Per queue (triage; yellow, green and blue in the
//! treatment queue; red never gets an estimate): how often there was no
//! estimate, how often the real wait fell inside the range, how often it was
//! shorter or longer, the median absolute error of the range's middle and the
//! median width of the range.
//!
//! Then the same observations are scored with variants of the formula (a copy
//! of src/domain/estimate.rs, [`estimate`]), to find parameters that cover
//! 80 % for green and blue without absurd ranges. The copy is checked
//! against the domain's answers on every observation: it must match
//! [`CURRENT`] (or [`BEFORE`]); after a change to src/domain/estimate.rs,
//! update it here.
//!
//! Options (after `--`): `--seed N` replays other days (the figures in
//! RESULTS.md use 0); `--diagnose` shows where the domain's formula misses
//! for green and blue; `--grid` (about 20 s) sweeps the parameters.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use triagem::clock::{Clock, ManualClock};
use triagem::config::Config;
use triagem::domain::patient::{LeaveReason, Outcome, Protocol, QueueKind};
use triagem::domain::{Admission, ColourId, Department, UnitId};

const UNIT: &str = "pa";
const ACTOR: &str = "bench";
/// The default scale, most urgent first (its ranks).
const COLOURS: [&str; 4] = ["red", "yellow", "green", "blue"];
/// The share of each colour at triage.
const COLOUR_MIX: [f64; 4] = [0.02, 0.20, 0.55, 0.23];
/// Mean arrivals in each hour of the day (local time), ~314 a day.
const ARRIVALS_PER_HOUR: [f64; 24] = [
    6.0, 5.0, 4.0, 3.0, 3.0, 4.0, 6.0, 10.0, // 00–07 h
    16.0, 20.0, 22.0, 21.0, 17.0, 16.0, 17.0, 17.0, // 08–15 h
    16.0, 16.0, 17.0, 19.0, 20.0, 17.0, 13.0, 9.0, // 16–23 h
];
/// Day-of-week factor, Monday first.
const WEEKDAY: [f64; 7] = [1.12, 1.02, 0.98, 0.97, 1.0, 0.93, 0.98];
/// Mean triage time, minutes, and its coefficient of variation.
const TRIAGE_MINUTES: (f64, f64) = (4.0, 0.5);
/// Mean time a clinician is busy with a patient, minutes, by colour; and the CV.
const VISIT_MINUTES: [f64; 4] = [45.0, 20.0, 12.0, 8.0];
const VISIT_CV: f64 = 0.6;
/// Mean patience in the triage queue, hours.
const PATIENCE_TRIAGE_HOURS: f64 = 5.0;
/// Mean patience in the treatment queue by colour, hours (none: never leaves).
const PATIENCE_HOURS: [Option<f64>; 4] = [None, None, Some(4.0), Some(3.0)];
/// How often a waiting patient's estimate is looked at again.
const OBSERVE_EVERY: i64 = 15 * 60;
const WARMUP_DAYS: i64 = 2;
const DAYS: i64 = 28;
const DAY: i64 = 86_400;

fn nurses_on_duty(hour: i64) -> usize {
    if (7..23).contains(&hour) {
        2
    } else {
        1
    }
}

fn clinicians_on_duty(hour: i64) -> usize {
    if !(1..7).contains(&hour) {
        4
    } else {
        3
    }
}

const TRIAGE_ROOMS: [&str; 2] = ["Triagem 1", "Triagem 2"];
const CLINIC_ROOMS: [&str; 4] = [
    "Consultório 1",
    "Consultório 2",
    "Consultório 3",
    "Consultório 4",
];

/// config/default.toml with the rooms this model staffs.
fn config() -> Config {
    let mut config = Config::from_toml(include_str!("../config/default.toml"))
        .expect("config/default.toml parses");
    let unit = &mut config.units[0];
    assert_eq!(unit.id.as_str(), UNIT);
    unit.triage_rooms = TRIAGE_ROOMS.iter().map(|r| r.to_string()).collect();
    unit.rooms = TRIAGE_ROOMS
        .iter()
        .chain(CLINIC_ROOMS.iter())
        .map(|r| r.to_string())
        .collect();
    config.validate().expect("the bench's config is valid");
    config
}

// ---------------------------------------------------------------------------
// Random draws (rand 0.8 has no distributions beyond uniform without rand_distr).

fn exponential(rng: &mut StdRng, mean: f64) -> f64 {
    -mean * (1.0 - rng.gen::<f64>()).ln()
}

fn log_normal(rng: &mut StdRng, mean: f64, cv: f64) -> f64 {
    let sigma2 = (1.0 + cv * cv).ln();
    let mu = mean.ln() - sigma2 / 2.0;
    let (u1, u2): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
    let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
    (mu + sigma2.sqrt() * z).exp()
}

fn poisson(rng: &mut StdRng, mean: f64) -> usize {
    let limit = (-mean).exp();
    let mut p = 1.0;
    let mut k = 0;
    loop {
        p *= rng.gen::<f64>();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

fn pick_colour(rng: &mut StdRng) -> usize {
    let u: f64 = rng.gen();
    let mut acc = 0.0;
    for (rank, share) in COLOUR_MIX.iter().enumerate() {
        acc += share;
        if u < acc {
            return rank;
        }
    }
    COLOURS.len() - 1
}

// ---------------------------------------------------------------------------
// The simulation.

/// Which queue an observation is about: the triage queue, or a colour's rank
/// in the treatment queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Queue {
    Triage,
    Treatment(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    /// On the hour: staff come and go.
    Shift,
    Arrive(usize),
    /// Idle staff of this queue look for someone to call.
    Look(Queue),
    TriageDone {
        nurse: usize,
        patient: usize,
    },
    Start(usize),
    Finish {
        clinician: usize,
        patient: usize,
    },
    GiveUp {
        patient: usize,
        queue: Queue,
    },
    Observe {
        patient: usize,
        queue: Queue,
    },
}

#[derive(Debug, Default)]
struct SimPatient {
    protocol: Option<Protocol>,
    /// The colour the nurse will give.
    rank: usize,
    arrived: i64,
    /// The queue the patient waits in now, if any.
    waiting_in: Option<Queue>,
    triage_called: Option<i64>,
    triaged: Option<i64>,
    called: Option<i64>,
    left: Option<i64>,
}

/// One look at a waiting patient's estimate.
#[derive(Debug, Clone)]
struct Obs {
    patient: usize,
    at: i64,
    queue: Queue,
    /// The first look, as the patient joins the queue.
    first: bool,
    ahead: usize,
    /// How many of those ahead are of a more urgent colour.
    urgent_ahead: usize,
    domain: Option<(i64, i64)>,
    /// How much of each log was written then (a call later in the same
    /// second is not known yet).
    known: Known,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    treatment_calls: usize,
    triage_calls: usize,
    entries: usize,
    visits: usize,
    triages: usize,
    leaves: usize,
}

/// One call of a queue.
#[derive(Debug, Clone, Copy)]
struct Call {
    at: i64,
    /// The colour called (treatment queue).
    rank: usize,
    /// The time since the previous call of the same queue, when someone was
    /// waiting all that time: a gap set by the staff's pace, not by arrivals.
    busy_gap: Option<i64>,
    /// The room (index among the queue's rooms) that called.
    room: usize,
    /// The time since the same room's previous call, when someone was waiting
    /// all that time: that room's cycle (visit and whatever follows it).
    room_cycle: Option<i64>,
}

/// What the estimator could know: calls and entries, and the treatment
/// queue's length over time (for the variants).
#[derive(Debug, Default)]
struct Logs {
    treatment_calls: Vec<Call>,
    triage_calls: Vec<Call>,
    entries: Vec<(i64, usize)>,
    /// Per queue (triage, treatment): the last call, and whether the queue
    /// has been empty since.
    last_call: [Option<i64>; 2],
    emptied: [bool; 2],
    /// The same per room.
    room_last: [[Option<i64>; 4]; 2],
    room_emptied: [[bool; 4]; 2],
    /// Visits (call to finish) and triages (call to colour): (end, duration).
    visits: Vec<(i64, i64)>,
    triages: Vec<(i64, i64)>,
    /// Patients who left a queue unseen: (when, queue).
    leaves: Vec<(i64, Queue)>,
    /// (when, how many wait in the treatment queue from then on).
    treatment_len: Vec<(i64, usize)>,
    /// The same for each colour's part of the treatment queue.
    colour_len: [Vec<(i64, usize)>; 4],
    /// How many of each colour wait now.
    colour_waiting: [usize; 4],
    /// (when, how many wait in the triage queue from then on).
    triage_len: Vec<(i64, usize)>,
}

struct Sim {
    dept: Department,
    clock: ManualClock,
    base: DateTime<Utc>,
    unit: UnitId,
    colour_ids: Vec<ColourId>,
    rng: StdRng,
    events: BinaryHeap<Reverse<(i64, u64, Event)>>,
    seq: u64,
    patients: Vec<SimPatient>,
    by_protocol: HashMap<Protocol, usize>,
    nurses: [Option<usize>; TRIAGE_ROOMS.len()],
    clinicians: [Option<usize>; CLINIC_ROOMS.len()],
    obs: Vec<Obs>,
    logs: Logs,
    measure_from: i64,
}

impl Sim {
    fn new(config: &Config, seed: u64, load: f64, base: DateTime<Utc>) -> Self {
        let dept = Department::new(&config.department_settings());
        let mut sim = Self {
            dept,
            clock: ManualClock::new(base),
            base,
            unit: UnitId::parse(UNIT).expect("a unit id"),
            colour_ids: COLOURS
                .iter()
                .map(|c| ColourId::parse(c).expect("a colour id"))
                .collect(),
            rng: StdRng::seed_from_u64(seed),
            events: BinaryHeap::new(),
            seq: 0,
            patients: Vec::new(),
            by_protocol: HashMap::new(),
            nurses: [None; TRIAGE_ROOMS.len()],
            clinicians: [None; CLINIC_ROOMS.len()],
            obs: Vec::new(),
            logs: Logs::default(),
            measure_from: WARMUP_DAYS * DAY,
        };
        // Every arrival of every day, drawn up front.
        for day in 0..WARMUP_DAYS + DAYS {
            let weekday = WEEKDAY[(day % 7) as usize];
            for (hour, mean) in ARRIVALS_PER_HOUR.iter().enumerate() {
                let n = poisson(&mut sim.rng, mean * weekday * load);
                let mut times: Vec<i64> = (0..n)
                    .map(|_| day * DAY + hour as i64 * 3600 + sim.rng.gen_range(0..3600))
                    .collect();
                times.sort_unstable();
                for t in times {
                    let rank = pick_colour(&mut sim.rng);
                    sim.patients.push(SimPatient {
                        rank,
                        arrived: t,
                        ..SimPatient::default()
                    });
                    let i = sim.patients.len() - 1;
                    sim.at(t, Event::Arrive(i));
                }
            }
            for hour in 0..24 {
                sim.at(day * DAY + hour * 3600, Event::Shift);
            }
        }
        sim
    }

    fn at(&mut self, t: i64, e: Event) {
        self.seq += 1;
        self.events.push(Reverse((t, self.seq, e)));
    }

    fn hour(t: i64) -> i64 {
        t.rem_euclid(DAY) / 3600
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn minutes(&mut self, mean: f64, cv: f64) -> i64 {
        (log_normal(&mut self.rng, mean, cv) * 60.0)
            .round()
            .max(30.0) as i64
    }

    fn run(mut self) -> (Vec<Obs>, Vec<SimPatient>, Logs) {
        let end = (WARMUP_DAYS + DAYS) * DAY;
        while let Some(Reverse((t, _, e))) = self.events.pop() {
            if t >= end {
                break;
            }
            self.clock.set(self.base + TimeDelta::seconds(t));
            self.handle(t, e);
            self.log_lengths(t);
        }
        (self.obs, self.patients, self.logs)
    }

    fn log_lengths(&mut self, t: i64) {
        for (kind, log) in [
            (QueueKind::Treatment, &mut self.logs.treatment_len),
            (QueueKind::Triage, &mut self.logs.triage_len),
        ] {
            let n = self.dept.waiting(UNIT, kind).expect("the unit");
            if log.last().is_none_or(|&(_, last)| last != n) {
                log.push((t, n));
            }
        }
        for (log, &n) in self
            .logs
            .colour_len
            .iter_mut()
            .zip(&self.logs.colour_waiting)
        {
            if log.last().is_none_or(|&(_, last)| last != n) {
                log.push((t, n));
            }
        }
    }

    fn handle(&mut self, t: i64, e: Event) {
        match e {
            Event::Shift => {
                self.look(t, Queue::Triage);
                self.look(t, Queue::Treatment(0));
            }
            Event::Arrive(i) => self.arrive(t, i),
            Event::Look(q) => self.look(t, q),
            Event::TriageDone { nurse, patient } => self.triage_done(t, nurse, patient),
            Event::Start(i) => {
                let protocol = self.protocol(i);
                let now = self.now();
                self.dept.start(protocol, ACTOR, now).expect("start");
            }
            Event::Finish { clinician, patient } => {
                let protocol = self.protocol(patient);
                let now = self.now();
                self.dept
                    .finish(protocol, Outcome::Discharged, ACTOR, now)
                    .expect("finish");
                self.clinicians[clinician] = None;
                let called = self.patients[patient].called.expect("called");
                self.logs.visits.push((t, t - called));
                self.look(t, Queue::Treatment(0));
            }
            Event::GiveUp { patient, queue } => {
                if self.patients[patient].waiting_in == Some(queue) {
                    let protocol = self.protocol(patient);
                    let now = self.now();
                    self.dept
                        .leave(protocol, LeaveReason::Lwbs, ACTOR, now)
                        .expect("leave");
                    let p = &mut self.patients[patient];
                    p.waiting_in = None;
                    p.left = Some(t);
                    self.logs.leaves.push((t, queue));
                    if let Queue::Treatment(r) = queue {
                        self.logs.colour_waiting[r] -= 1;
                    }
                    self.note_empty();
                }
            }
            Event::Observe { patient, queue } => self.observe(t, patient, queue, false),
        }
    }

    fn protocol(&self, i: usize) -> Protocol {
        self.patients[i].protocol.expect("admitted")
    }

    fn arrive(&mut self, t: i64, i: usize) {
        let now = self.now();
        let admission = Admission {
            name: format!("Paciente {i}"),
            colour: None,
            complaint: None,
            arrived_at: None,
            birth_date: None,
            document: None,
            contact: None,
        };
        let applied = self
            .dept
            .admit(&self.unit, admission, None, ACTOR, now)
            .expect("admit");
        let protocol = applied.value.protocol;
        self.by_protocol.insert(protocol, i);
        let p = &mut self.patients[i];
        p.protocol = Some(protocol);
        p.waiting_in = Some(Queue::Triage);
        let patience = exponential(&mut self.rng, PATIENCE_TRIAGE_HOURS * 3600.0) as i64;
        self.at(
            t + patience,
            Event::GiveUp {
                patient: i,
                queue: Queue::Triage,
            },
        );
        self.observe(t, i, Queue::Triage, true);
        self.wake(t, Queue::Triage);
    }

    /// A patient joined `queue`: idle staff notice after a while.
    fn wake(&mut self, t: i64, queue: Queue) {
        let idle = match queue {
            Queue::Triage => self.nurses[..nurses_on_duty(Self::hour(t))]
                .iter()
                .any(Option::is_none),
            Queue::Treatment(_) => self.clinicians[..clinicians_on_duty(Self::hour(t))]
                .iter()
                .any(Option::is_none),
        };
        if idle {
            let delay = self.rng.gen_range(30..=180);
            self.at(t + delay, Event::Look(queue));
        }
    }

    /// Every idle member of the staff on duty calls the next patient.
    fn look(&mut self, t: i64, queue: Queue) {
        let hour = Self::hour(t);
        match queue {
            Queue::Triage => {
                for nurse in 0..nurses_on_duty(hour) {
                    if self.nurses[nurse].is_some() {
                        continue;
                    }
                    let Some(i) = self.call(QueueKind::Triage, nurse) else {
                        return;
                    };
                    self.nurses[nurse] = Some(i);
                    self.patients[i].triage_called = Some(t);
                    let took = self.minutes(TRIAGE_MINUTES.0, TRIAGE_MINUTES.1);
                    self.at(t + took, Event::TriageDone { nurse, patient: i });
                }
            }
            Queue::Treatment(_) => {
                for clinician in 0..clinicians_on_duty(hour) {
                    if self.clinicians[clinician].is_some() {
                        continue;
                    }
                    let Some(i) = self.call(QueueKind::Treatment, clinician) else {
                        return;
                    };
                    self.clinicians[clinician] = Some(i);
                    let rank = self.patients[i].rank;
                    self.patients[i].called = Some(t);
                    let visit = self.minutes(VISIT_MINUTES[rank], VISIT_CV);
                    let walk = self.rng.gen_range(60..=150).min(visit / 2);
                    self.at(t + walk, Event::Start(i));
                    self.at(
                        t + visit,
                        Event::Finish {
                            clinician,
                            patient: i,
                        },
                    );
                }
            }
        }
    }

    fn call(&mut self, kind: QueueKind, room: usize) -> Option<usize> {
        let now = self.now();
        let room_name = match kind {
            QueueKind::Triage => TRIAGE_ROOMS[room],
            QueueKind::Treatment => CLINIC_ROOMS[room],
        };
        let called = self
            .dept
            .call(UNIT, kind, room_name, None, ACTOR, now)
            .expect("call")
            .value?;
        let i = self.by_protocol[&called.protocol];
        self.patients[i].waiting_in = None;
        let t = (now - self.base).num_seconds();
        let q = usize::from(kind == QueueKind::Treatment);
        let busy_gap = match self.logs.last_call[q] {
            Some(last) if !self.logs.emptied[q] => Some(t - last),
            _ => None,
        };
        self.logs.last_call[q] = Some(t);
        self.logs.emptied[q] = false;
        let room_cycle = match self.logs.room_last[q][room] {
            Some(last) if !self.logs.room_emptied[q][room] => Some(t - last),
            _ => None,
        };
        self.logs.room_last[q][room] = Some(t);
        self.logs.room_emptied[q][room] = false;
        let call = Call {
            at: t,
            rank: self.patients[i].rank,
            busy_gap,
            room,
            room_cycle,
        };
        match kind {
            QueueKind::Triage => self.logs.triage_calls.push(call),
            QueueKind::Treatment => {
                self.logs.treatment_calls.push(call);
                self.logs.colour_waiting[call.rank] -= 1;
            }
        }
        self.note_empty();
        Some(i)
    }

    /// Remembers a queue that became empty (after a call or a leave).
    fn note_empty(&mut self) {
        for (q, kind) in [QueueKind::Triage, QueueKind::Treatment]
            .into_iter()
            .enumerate()
        {
            if self.dept.waiting(UNIT, kind).expect("the unit") == 0 {
                self.logs.emptied[q] = true;
                self.logs.room_emptied[q] = [true; 4];
            }
        }
    }

    fn triage_done(&mut self, t: i64, nurse: usize, i: usize) {
        let rank = self.patients[i].rank;
        let protocol = self.protocol(i);
        let now = self.now();
        self.dept
            .triage(protocol, &self.colour_ids[rank], None, ACTOR, now)
            .expect("triage");
        self.logs.entries.push((t, rank));
        self.logs.colour_waiting[rank] += 1;
        let called = self.patients[i].triage_called.expect("called to triage");
        self.logs.triages.push((t, t - called));
        let queue = Queue::Treatment(rank);
        let p = &mut self.patients[i];
        p.triaged = Some(t);
        p.waiting_in = Some(queue);
        if let Some(hours) = PATIENCE_HOURS[rank] {
            let patience = exponential(&mut self.rng, hours * 3600.0) as i64;
            self.at(t + patience, Event::GiveUp { patient: i, queue });
        }
        self.observe(t, i, queue, true);
        self.nurses[nurse] = None;
        self.look(t, Queue::Triage);
        self.wake(t, queue);
    }

    fn observe(&mut self, t: i64, i: usize, queue: Queue, first: bool) {
        if self.patients[i].waiting_in != Some(queue) {
            return;
        }
        if t >= self.measure_from {
            let p = self.dept.patient(self.protocol(i)).expect("a patient");
            let ahead = self.dept.position(p).expect("queued") - 1;
            let domain = self
                .dept
                .estimate(p, self.now())
                .map(|e| (e.low_seconds, e.high_seconds));
            self.obs.push(Obs {
                patient: i,
                at: t,
                queue,
                first,
                ahead,
                urgent_ahead: match queue {
                    Queue::Triage => 0,
                    Queue::Treatment(r) => self.logs.colour_waiting[..r].iter().sum(),
                },
                domain,
                known: Known {
                    treatment_calls: self.logs.treatment_calls.len(),
                    triage_calls: self.logs.triage_calls.len(),
                    entries: self.logs.entries.len(),
                    visits: self.logs.visits.len(),
                    triages: self.logs.triages.len(),
                    leaves: self.logs.leaves.len(),
                },
            });
        }
        self.at(t + OBSERVE_EVERY, Event::Observe { patient: i, queue });
    }
}

// ---------------------------------------------------------------------------
// The estimator, copied from src/domain/estimate.rs with its constants as
// parameters, and the variants tried.

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rate {
    /// src/domain/estimate.rs: calls in the window / the window.
    Calls,
    /// Calls in the window / the time in the window the queue was not empty.
    WhileWaiting,
    /// The pace of the calls that followed the previous call with someone
    /// waiting all along (at least `min` such gaps, else calls/window).
    BusyGaps { min: usize },
    /// The rooms that called in the window over their mean cycle (a room's
    /// call to its next call, someone waiting all along; at least `min`
    /// cycles, else calls/window).
    RoomCycles { min: usize },
    /// The rooms that called in the window over the mean visit (call to
    /// finish) of the visits that ended in it (at least `min`, else
    /// calls/window): what the rooms can do when someone is always waiting.
    Capacity { min: usize },
}

#[derive(Debug, Clone, Copy)]
struct Params {
    name: &'static str,
    window: i64,
    min_calls: usize,
    spread: f64,
    min_relative_spread: f64,
    max_urgent_share: f64,
    /// Every rate but `Calls` is never taken slower than calls/window.
    rate: Rate,
    /// Count the patients who left unseen in the window as progress (all of
    /// a more urgent colour, half of the same colour: they may be behind).
    leaves: bool,
    /// Instead of the pooled rate minus urgent arrivals: the colour's own
    /// pace (its calls over the time someone of the colour waited, one call
    /// added), after the more urgent patients waiting now at the pooled rate.
    colour_pace: bool,
}

/// The constants src/domain/estimate.rs had when this bench was written.
const BEFORE: Params = Params {
    name: "before: 2 h, SPREAD 1.5, MIN_RELATIVE_SPREAD 0.35, MAX_URGENT_SHARE 0.75",
    window: 2 * 3600,
    min_calls: 5,
    spread: 1.5,
    min_relative_spread: 0.35,
    max_urgent_share: 0.75,
    rate: Rate::Calls,
    leaves: false,
    colour_pace: false,
};

/// The constants of src/domain/estimate.rs now: the change this bench
/// recommended (benches/RESULTS.md, section 7), two constants.
const CURRENT: Params = Params {
    name: "current: MAX_URGENT_SHARE 0.5, MIN_RELATIVE_SPREAD 0.8",
    max_urgent_share: 0.5,
    min_relative_spread: 0.8,
    ..BEFORE
};

/// The other variants tried (benches/RESULTS.md says what they showed).
fn tried() -> Vec<Params> {
    vec![
        Params {
            name: "calls / time someone waited",
            rate: Rate::WhileWaiting,
            ..BEFORE
        },
        Params {
            name: "busy gaps",
            rate: Rate::BusyGaps { min: 5 },
            ..BEFORE
        },
        Params {
            name: "room cycles",
            rate: Rate::RoomCycles { min: 3 },
            ..BEFORE
        },
        Params {
            name: "capacity (rooms / mean visit)",
            rate: Rate::Capacity { min: 3 },
            ..BEFORE
        },
        Params {
            name: "leaves count as progress",
            leaves: true,
            ..BEFORE
        },
        Params {
            name: "capacity + leaves",
            rate: Rate::Capacity { min: 3 },
            leaves: true,
            ..BEFORE
        },
        Params {
            name: "colour's own pace",
            colour_pace: true,
            ..BEFORE
        },
        Params {
            name: "MIN_RELATIVE_SPREAD 0.8 alone",
            min_relative_spread: 0.8,
            ..BEFORE
        },
        Params {
            name: "MAX_URGENT_SHARE 0.5 alone",
            max_urgent_share: 0.5,
            ..BEFORE
        },
        Params {
            name: "MAX_URGENT_SHARE 0.4, MIN_RELATIVE_SPREAD 0.8",
            max_urgent_share: 0.4,
            min_relative_spread: 0.8,
            ..BEFORE
        },
        Params {
            name: "capacity, 3 h, MAX_URGENT_SHARE 0.5, MIN_RELATIVE_SPREAD 0.8",
            rate: Rate::Capacity { min: 3 },
            window: 3 * 3600,
            max_urgent_share: 0.5,
            min_relative_spread: 0.8,
            ..BEFORE
        },
    ]
}

/// The range `[from, to)` of a time-sorted log that falls in `[since, now]`.
fn between<T>(log: &[T], at: impl Fn(&T) -> i64, since: i64, now: i64) -> std::ops::Range<usize> {
    log.partition_point(|e| at(e) < since)..log.partition_point(|e| at(e) <= now)
}

/// Seconds in `[since, now]` during which the queue logged in `len` was not empty.
fn busy_seconds(len: &[(i64, usize)], since: i64, now: i64) -> i64 {
    let start = len.partition_point(|e| e.0 <= since);
    let mut total = 0;
    let mut current = if start == 0 { 0 } else { len[start - 1].1 };
    let mut from = since;
    for &(t, n) in len[start..].iter().take_while(|e| e.0 <= now) {
        if current > 0 {
            total += t - from;
        }
        from = t;
        current = n;
    }
    if current > 0 {
        total += now - from;
    }
    total
}

/// The estimate `p` gives for the look `o`, from what was logged before it.
fn estimate(p: &Params, logs: &Logs, o: &Obs) -> Option<(i64, i64)> {
    let since = o.at - p.window;
    let k = &o.known;
    let rank = match o.queue {
        Queue::Triage => None,
        Queue::Treatment(0) => return None,
        Queue::Treatment(r) => Some(r),
    };
    let (calls, len_log, durations) = match rank {
        None => (
            &logs.triage_calls[..k.triage_calls],
            &logs.triage_len,
            &logs.triages[..k.triages],
        ),
        Some(_) => (
            &logs.treatment_calls[..k.treatment_calls],
            &logs.treatment_len,
            &logs.visits[..k.visits],
        ),
    };
    let calls = &calls[between(calls, |c| c.at, since, o.at)];
    if calls.len() < p.min_calls {
        return None;
    }
    let entries = &logs.entries[..k.entries];
    let urgent = match rank {
        None => 0,
        Some(r) => entries[between(entries, |e| e.0, since, o.at)]
            .iter()
            .filter(|e| e.1 < r)
            .count(),
    };
    let leaves = &logs.leaves[..k.leaves];
    let left: f64 = leaves[between(leaves, |l| l.0, since, o.at)]
        .iter()
        .map(|l| match (l.1, rank) {
            (Queue::Triage, None) => 0.5,
            (Queue::Treatment(lr), Some(r)) if lr < r => 1.0,
            (Queue::Treatment(lr), Some(r)) if lr == r => 0.5,
            _ => 0.0,
        })
        .sum();

    let window = p.window as f64;
    let n = calls.len() as f64;
    let rooms = || {
        let mut seen = [false; 4];
        for c in calls {
            seen[c.room] = true;
        }
        seen.iter().filter(|s| **s).count() as f64
    };
    // A pace measured over `count` intervals totalling `total` seconds.
    let pace = |count: usize, total: i64, min: usize, scale: f64| {
        if count >= min && total > 0 {
            (scale * count as f64 / total as f64).max(n / window)
        } else {
            n / window
        }
    };
    let call_rate = match p.rate {
        Rate::Calls => n / window,
        Rate::WhileWaiting => {
            let waited = busy_seconds(len_log, since, o.at) as f64;
            (n / waited.max(window / 10.0)).max(n / window)
        }
        Rate::BusyGaps { min } => {
            let gaps: Vec<i64> = calls.iter().filter_map(|c| c.busy_gap).collect();
            pace(gaps.len(), gaps.iter().sum(), min, 1.0)
        }
        Rate::RoomCycles { min } => {
            let cycles: Vec<i64> = calls.iter().filter_map(|c| c.room_cycle).collect();
            pace(cycles.len(), cycles.iter().sum(), min, rooms())
        }
        Rate::Capacity { min } => {
            let recent = &durations[between(durations, |d| d.0, since, o.at)];
            pace(recent.len(), recent.iter().map(|d| d.1).sum(), min, rooms())
        }
    };
    let urgent_rate = (urgent as f64 / window).min(call_rate * p.max_urgent_share);
    let leave_rate = if p.leaves { left / window } else { 0.0 };
    let mut rate = call_rate - urgent_rate + leave_rate;
    let needed = (o.ahead + 1) as f64;
    let mut middle = needed / rate;
    if let (true, Some(r)) = (p.colour_pace, rank) {
        let own = calls.iter().filter(|c| c.rank == r).count() as f64;
        let waited = busy_seconds(&logs.colour_len[r], since, o.at) as f64;
        let own_rate = (own + 1.0) / waited.max(window / 10.0);
        middle =
            o.urgent_ahead as f64 / call_rate + (o.ahead - o.urgent_ahead + 1) as f64 / own_rate;
        rate = needed / middle;
    }
    let spread = (p.spread * needed.sqrt() / rate).max(p.min_relative_spread * middle);
    Some((
        (middle - spread).max(0.0).round() as i64,
        (middle + spread).round() as i64,
    ))
}

// ---------------------------------------------------------------------------
// Scoring and the tables.

#[derive(Debug, Default)]
struct Score {
    looks: usize,
    none: usize,
    inside: usize,
    early: usize,
    late: usize,
    /// Minutes.
    errors: Vec<f64>,
    widths: Vec<f64>,
    real: Vec<f64>,
}

impl Score {
    fn add(&mut self, range: Option<(i64, i64)>, real: i64) {
        self.looks += 1;
        self.real.push(real as f64 / 60.0);
        let Some((low, high)) = range else {
            self.none += 1;
            return;
        };
        if real < low {
            self.early += 1;
        } else if real > high {
            self.late += 1;
        } else {
            self.inside += 1;
        }
        let middle = (low + high) as f64 / 2.0;
        self.errors.push((middle - real as f64).abs() / 60.0);
        self.widths.push((high - low) as f64 / 60.0);
    }

    fn given(&self) -> usize {
        self.looks - self.none
    }

    fn inside_share(&self) -> f64 {
        self.inside as f64 / self.given().max(1) as f64
    }
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.0} %", 100.0 * part as f64 / whole as f64)
    }
}

fn quantile(v: &[f64], q: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    Some(v[((v.len() - 1) as f64 * q).round() as usize])
}

fn minutes(v: &[f64], q: f64) -> String {
    quantile(v, q).map_or("–".into(), |x| format!("{x:.0}"))
}

fn queue_name(q: Queue) -> &'static str {
    match q {
        Queue::Triage => "triage queue",
        Queue::Treatment(r) => COLOURS[r],
    }
}

/// The queues that get estimates (red never does).
const QUEUES: [Queue; 4] = [
    Queue::Triage,
    Queue::Treatment(1),
    Queue::Treatment(2),
    Queue::Treatment(3),
];

struct Run {
    load: &'static str,
    obs: Vec<Obs>,
    patients: Vec<SimPatient>,
    logs: Logs,
}

impl Run {
    /// The wait that really remained after a look, if the patient was called.
    fn real(&self, o: &Obs) -> Option<i64> {
        let p = &self.patients[o.patient];
        let called = match o.queue {
            Queue::Triage => p.triage_called,
            Queue::Treatment(_) => p.called,
        }?;
        Some(called - o.at)
    }

    /// Scores `range` on the looks at queue `q` (only the first look of each
    /// patient if `first_only`).
    fn score(
        &self,
        q: Queue,
        first_only: bool,
        range: impl Fn(&Obs) -> Option<(i64, i64)>,
    ) -> Score {
        let mut s = Score::default();
        for o in self
            .obs
            .iter()
            .filter(|o| o.queue == q && (o.first || !first_only))
        {
            if let Some(real) = self.real(o) {
                s.add(range(o), real);
            }
        }
        s
    }

    /// The patients who arrived after the warm-up.
    fn measured(&self) -> impl Iterator<Item = &SimPatient> {
        self.patients
            .iter()
            .filter(|p| p.arrived >= WARMUP_DAYS * DAY)
    }
}

fn simulate(config: &Config, load: &'static str, scale: f64, seed: u64) -> Run {
    // Monday 2026-11-02, 00:00 in São Paulo (UTC−3, no daylight saving).
    let base = Utc.with_ymd_and_hms(2026, 11, 2, 3, 0, 0).unwrap();
    let (obs, patients, logs) = Sim::new(config, seed, scale, base).run();
    Run {
        load,
        obs,
        patients,
        logs,
    }
}

fn describe(runs: &[Run], out: &mut String) {
    writeln!(
        out,
        "| load | arrivals a day | left unseen | wait for triage | yellow | green | blue |\n|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for run in runs {
        let measured: Vec<&SimPatient> = run.measured().collect();
        let left = measured.iter().filter(|p| p.left.is_some()).count();
        let waits = |wait: &dyn Fn(&SimPatient) -> Option<i64>| {
            let w: Vec<f64> = measured
                .iter()
                .filter_map(|p| wait(p))
                .map(|s| s as f64 / 60.0)
                .collect();
            format!("{} ({})", minutes(&w, 0.5), minutes(&w, 0.9))
        };
        let colour = |rank: usize| {
            waits(&move |p: &SimPatient| {
                (p.rank == rank).then_some(())?;
                Some(p.called? - p.triaged?)
            })
        };
        writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {} | {} |",
            run.load,
            measured.len() as f64 / DAYS as f64,
            pct(left, measured.len()),
            waits(&|p: &SimPatient| Some(p.triage_called? - p.arrived)),
            colour(1),
            colour(2),
            colour(3),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nWaits in minutes, median (90th percentile): for triage from arrival, for a colour from triage to the call.\n"
    )
    .unwrap();
}

/// The full table for one estimator: the domain's own (`None`) or a variant.
fn accuracy(runs: &[Run], p: Option<&Params>, first_only: bool, out: &mut String) {
    writeln!(
        out,
        "| load | queue | looks | no estimate | **inside** | called earlier | called later | median abs. error of the middle, min | median width, min | median real wait, min |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    for run in runs {
        for q in QUEUES {
            let s = run.score(q, first_only, |o| match p {
                None => o.domain,
                Some(p) => estimate(p, &run.logs, o),
            });
            writeln!(
                out,
                "| {} | {} | {} | {} | **{}** | {} | {} | {} | {} | {} |",
                run.load,
                queue_name(q),
                s.looks,
                pct(s.none, s.looks),
                pct(s.inside, s.given()),
                pct(s.early, s.given()),
                pct(s.late, s.given()),
                minutes(&s.errors, 0.5),
                minutes(&s.widths, 0.5),
                minutes(&s.real, 0.5),
            )
            .unwrap();
        }
    }
    writeln!(out).unwrap();
}

/// One line per variant and load: inside (earlier / later), median width.
fn variants(runs: &[Run], list: &[Params], out: &mut String) {
    write!(out, "| variant | load |").unwrap();
    for q in QUEUES {
        write!(out, " {} |", queue_name(q)).unwrap();
    }
    writeln!(out, "\n|---|---|---|---|---|---|").unwrap();
    for p in list {
        for run in runs {
            write!(out, "| {} | {} |", p.name, run.load).unwrap();
            for q in QUEUES {
                let s = run.score(q, false, |o| estimate(p, &run.logs, o));
                write!(
                    out,
                    " {} ({}/{}), {}′ |",
                    pct(s.inside, s.given()),
                    pct(s.early, s.given()),
                    pct(s.late, s.given()),
                    minutes(&s.widths, 0.5),
                )
                .unwrap();
            }
            writeln!(out).unwrap();
        }
    }
    writeln!(
        out,
        "\nEach cell: inside the range (called earlier / later than it), median width; every look.\n"
    )
    .unwrap();
}

/// Why the current formula misses for a colour: real wait over the range's
/// middle by how many are ahead, and the rates behind it (per hour, looks
/// with a real wait over 10 min): the progress the patient really made
/// ((ahead + 1) / wait), the calls and more urgent entries in the window
/// before the look and during the wait, and those who left during it.
fn diagnose(run: &Run, q: Queue, p: &Params, out: &mut String) {
    let Queue::Treatment(rank) = q else { return };
    writeln!(out, "{} load, {}, {}:\n", run.load, queue_name(q), p.name).unwrap();
    writeln!(
        out,
        "| ahead | looks | inside | real / middle p10 | p50 | p90 | progress /h | calls /h before | during | urgent entries /h before | during | left /h during |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    let per_hour = |n: usize, secs: i64| n as f64 * 3600.0 / secs as f64;
    for (lo, hi) in [(0, 0), (1, 2), (3, 5), (6, 10), (11, 20), (21, usize::MAX)] {
        let mut s = Score::default();
        let mut ratio = Vec::new();
        let mut rates: [Vec<f64>; 6] = Default::default();
        for o in run
            .obs
            .iter()
            .filter(|o| o.queue == q && (lo..=hi).contains(&o.ahead))
        {
            let Some(real) = run.real(o) else { continue };
            let range = estimate(p, &run.logs, o);
            s.add(range, real);
            if let Some((low, high)) = range {
                ratio.push(real as f64 / ((low + high) as f64 / 2.0).max(1.0));
            }
            if real < 600 {
                continue;
            }
            let calls = &run.logs.treatment_calls;
            let entries = &run.logs.entries;
            let urgent =
                |r: std::ops::Range<usize>| entries[r].iter().filter(|e| e.1 < rank).count();
            let before = (o.at - p.window, o.at);
            let during = (o.at, o.at + real);
            let left = run
                .logs
                .leaves
                .iter()
                .filter(|l| l.0 > during.0 && l.0 < during.1)
                .filter(|l| matches!(l.1, Queue::Treatment(r) if r <= rank))
                .count();
            rates[0].push(per_hour(o.ahead + 1, real));
            rates[1].push(per_hour(
                between(calls, |c| c.at, before.0, before.1).len(),
                p.window,
            ));
            rates[2].push(per_hour(
                between(calls, |c| c.at, during.0, during.1).len(),
                real,
            ));
            rates[3].push(per_hour(
                urgent(between(entries, |e| e.0, before.0, before.1)),
                p.window,
            ));
            rates[4].push(per_hour(
                urgent(between(entries, |e| e.0, during.0, during.1)),
                real,
            ));
            rates[5].push(per_hour(left, real));
        }
        let r = |q: f64| quantile(&ratio, q).map_or("–".into(), |x| format!("{x:.2}"));
        write!(
            out,
            "| {lo}{} | {} | {} | {} | {} | {} |",
            if hi == usize::MAX {
                "+".to_string()
            } else if hi == lo {
                String::new()
            } else {
                format!("–{hi}")
            },
            s.looks,
            pct(s.inside, s.given()),
            r(0.1),
            r(0.5),
            r(0.9),
        )
        .unwrap();
        for v in &rates {
            write!(out, " {} |", minutes(v, 0.5)).unwrap();
        }
        writeln!(out).unwrap();
    }
    writeln!(out).unwrap();
}

/// Every combination of the parameters (`-- --grid`, about 20 s): those that
/// cover 80 % of the looks of every queue at both loads, narrowest green +
/// blue ranges at the realistic load first.
fn grid(runs: &[Run], out: &mut String) {
    let mut rows = Vec::new();
    for window in [3600, 2 * 3600, 3 * 3600] {
        for rate in [Rate::Calls, Rate::Capacity { min: 3 }] {
            for leaves in [false, true] {
                for max_urgent_share in [0.75, 0.6, 0.5, 0.4, 0.3] {
                    for spread in [1.0, 1.5, 2.0] {
                        for min_relative_spread in [0.35, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0] {
                            let p = Params {
                                name: "",
                                window,
                                spread,
                                min_relative_spread,
                                max_urgent_share,
                                rate,
                                leaves,
                                ..BEFORE
                            };
                            let cells: Vec<(f64, f64)> = runs
                                .iter()
                                .flat_map(|run| {
                                    QUEUES.iter().map(move |&q| {
                                        let s = run.score(q, false, |o| estimate(&p, &run.logs, o));
                                        (s.inside_share(), quantile(&s.widths, 0.5).unwrap_or(0.0))
                                    })
                                })
                                .collect();
                            rows.push((p, cells));
                        }
                    }
                }
            }
        }
    }
    rows.retain(|(_, c)| c.iter().all(|x| x.0 >= 0.8));
    rows.sort_by(|a, b| (a.1[2].1 + a.1[3].1).total_cmp(&(b.1[2].1 + b.1[3].1)));
    writeln!(
        out,
        "| window | rate | leaves | MAX_URGENT_SHARE | SPREAD | MIN_RELATIVE_SPREAD | realistic: triage / yellow / green / blue | heavy |\n|---|---|---|---|---|---|---|---|"
    )
    .unwrap();
    let cells = |c: &[(f64, f64)]| {
        c.iter()
            .map(|(i, w)| format!("{:.0} % {:.0}′", i * 100.0, w))
            .collect::<Vec<_>>()
            .join(" / ")
    };
    for (p, c) in rows.iter().take(30) {
        writeln!(
            out,
            "| {} h | {:?} | {} | {} | {} | {} | {} | {} |",
            p.window / 3600,
            p.rate,
            p.leaves,
            p.max_urgent_share,
            p.spread,
            p.min_relative_spread,
            cells(&c[..4]),
            cells(&c[4..]),
        )
        .unwrap();
    }
    writeln!(
        out,
        "\nThe combinations with ≥ 80 % inside for every queue at both loads, narrowest green + blue ranges at the realistic load first (median widths).\n"
    )
    .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    // `-- --seed N` replays other days (the figures in RESULTS.md use 0).
    let seed: u64 = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0);
    let config = config();
    let runs = [
        simulate(&config, "realistic", 1.0, 0x5EED_0001 + 1000 * seed),
        simulate(&config, "heavy", 1.25, 0x5EED_0002 + 1000 * seed),
    ];

    // Which formula does the domain use? The copy must match it on every look.
    let domain = [CURRENT, BEFORE]
        .into_iter()
        .find(|p| {
            runs.iter().all(|run| {
                run.obs
                    .iter()
                    .all(|o| estimate(p, &run.logs, o) == o.domain)
            })
        })
        .expect("src/domain/estimate.rs matches neither CURRENT nor BEFORE: update CURRENT here");

    let mut out = String::new();
    writeln!(
        out,
        "### The simulated days ({DAYS} days after {WARMUP_DAYS} of warm-up, seed {seed})\n"
    )
    .unwrap();
    describe(&runs, &mut out);
    writeln!(out, "### Department::estimate, every look (on joining the queue, then every 15 min)\n\nThe domain's formula is `{}`.\n", domain.name).unwrap();
    accuracy(&runs, None, false, &mut out);
    writeln!(out, "### Department::estimate, on joining the queue only\n").unwrap();
    accuracy(&runs, None, true, &mut out);
    // The other of the two, for comparison.
    let other = if domain.name == CURRENT.name {
        BEFORE
    } else {
        CURRENT
    };
    writeln!(out, "### {}, every look\n", other.name).unwrap();
    accuracy(&runs, Some(&other), false, &mut out);
    writeln!(out, "### {}, on joining the queue only\n", other.name).unwrap();
    accuracy(&runs, Some(&other), true, &mut out);
    writeln!(out, "### Variants tried, same looks\n").unwrap();
    let mut list = vec![CURRENT, BEFORE];
    list.extend(tried());
    variants(&runs, &list, &mut out);
    if flag("--diagnose") {
        writeln!(out, "### Where the misses are\n").unwrap();
        for run in &runs {
            for q in [Queue::Treatment(2), Queue::Treatment(3)] {
                diagnose(run, q, &domain, &mut out);
            }
        }
    }
    if flag("--grid") {
        writeln!(out, "### Grid\n").unwrap();
        grid(&runs, &mut out);
    }
    print!("{out}");
}
