//! The domain queue through the public `Department` API, at 10 000 and
//! 1 000 000 waiting patients (config/default.toml, unit `pa`), plus the
//! journal's group commit. Run with `cargo bench --bench queue`; results and
//! the figures measured so far are in benches/RESULTS.md.
//!
//! Each queue operation is timed alone (`iter_custom`); what undoes it (a
//! leave after an admission, a re-admission after a call, the re-triage back)
//! runs outside the timed region, so every timed operation sees a queue of
//! exactly N. criterion sizes its runs by wall time, undo included, so a slow
//! undo only means fewer iterations, never a longer run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};

use triagem::config::Config;
use triagem::domain::patient::{LeaveReason, Protocol, QueueKind};
use triagem::domain::{Admission, Admitted, Change, Department};
use triagem::journal::Journal;

mod common;
use common::{base_time, colour_id, config, unit, ACTOR, UNIT};

const ROOM: &str = "Consultório 1";
/// The default scale, most urgent first.
const COLOURS: [&str; 4] = ["red", "yellow", "green", "blue"];

/// A rough emergency-department mix: 5 % red, 25 % yellow, 50 % green, 20 % blue.
fn colour_of(i: usize) -> usize {
    match i % 20 {
        0 => 0,
        1..=5 => 1,
        6..=15 => 2,
        _ => 3,
    }
}

/// A small deterministic generator (xorshift64), so runs pick the same patients.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

struct Fixture {
    dept: Department,
    /// Everyone waiting at build time, with their colour's rank.
    waiting: Vec<(Protocol, usize)>,
    now: DateTime<Utc>,
    admitted: u64,
}

impl Fixture {
    /// `n` triaged patients waiting in `pa`'s treatment queue, arrived over the
    /// last 20 hours.
    fn new(config: &Config, n: usize) -> Self {
        let dept =
            common::waiting_department(config, n, TimeDelta::hours(20), |i| COLOURS[colour_of(i)]);
        let waiting = (0..n)
            .map(|i| (common::protocol(i), colour_of(i)))
            .collect();
        let now = base_time();
        Self {
            dept,
            waiting,
            now,
            admitted: 0,
        }
    }

    fn tick(&mut self) -> DateTime<Utc> {
        self.now += TimeDelta::microseconds(1);
        self.now
    }

    fn admission(&mut self, colour: &str) -> Admission {
        self.admitted += 1;
        Admission {
            contact: None,
            name: format!("Paciente B{}", self.admitted),
            colour: Some(colour_id(colour)),
            complaint: None,
            arrived_at: None,
            birth_date: None,
            document: None,
        }
    }

    fn admit(&mut self, colour: &str) -> Protocol {
        let admission = self.admission(colour);
        let now = self.tick();
        let applied = self
            .dept
            .admit(&unit(), admission, None, ACTOR, now)
            .expect("admit");
        protocol_of(&applied.value)
    }
}

fn protocol_of(admitted: &Admitted) -> Protocol {
    admitted.protocol
}

fn bench_department(c: &mut Criterion, config: &Config, n: usize, label: &str) {
    let build = Instant::now();
    let mut f = Fixture::new(config, n);
    eprintln!(
        "fixture of {n} waiting patients built in {:?}",
        build.elapsed()
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);

    let mut g = c.benchmark_group(format!("department/{label}"));
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // GET /patients/{protocol}: the place of a random waiting patient, then the whole view.
    g.bench_function("position", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (protocol, _) = f.waiting[rng.below(f.waiting.len())];
                let start = Instant::now();
                let place = f.dept.position(f.dept.patient(protocol).unwrap());
                total += start.elapsed();
                black_box(place.expect("waiting patients have a place"));
            }
            total
        })
    });
    g.bench_function("view", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let now = f.now;
            for _ in 0..iters {
                let (protocol, _) = f.waiting[rng.below(f.waiting.len())];
                let start = Instant::now();
                let view = f.dept.view(f.dept.patient(protocol).unwrap(), now);
                total += start.elapsed();
                black_box(view);
            }
            total
        })
    });
    // GET /units/pa/queue: the first page of 100.
    g.bench_function("queue_page_100", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let now = f.now;
            for _ in 0..iters {
                let start = Instant::now();
                let page = f.dept.queue_page(UNIT, QueueKind::Treatment, 0, 100, now);
                total += start.elapsed();
                black_box(page.unwrap());
            }
            total
        })
    });
    // Re-triage a random waiting patient to another colour; untimed, back again.
    g.bench_function("retriage", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (protocol, rank) = f.waiting[rng.below(f.waiting.len())];
                let other = COLOURS[(rank + 1) % COLOURS.len()];
                let now = f.tick();
                let start = Instant::now();
                let applied = f.dept.triage(protocol, &colour_id(other), None, ACTOR, now);
                total += start.elapsed();
                black_box(applied.expect("triage"));
                let now = f.tick();
                f.dept
                    .triage(protocol, &colour_id(COLOURS[rank]), None, ACTOR, now)
                    .expect("triage back");
            }
            total
        })
    });
    // Admit a green patient (the answer includes the new place); untimed, they leave.
    g.bench_function("admit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let admission = f.admission("green");
                let now = f.tick();
                let start = Instant::now();
                let applied = f.dept.admit(&unit(), admission, None, ACTOR, now);
                total += start.elapsed();
                let protocol = protocol_of(&black_box(applied.expect("admit")).value);
                let now = f.tick();
                f.dept
                    .leave(protocol, LeaveReason::Cancelled, ACTOR, now)
                    .expect("leave");
            }
            total
        })
    });
    // Call the next patient of the treatment queue; untimed, a new patient of
    // the same colour is admitted, so the queue and its colour mix stay put.
    // Runs last: it takes fixture patients out of the queue.
    g.bench_function("call_next", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let now = f.tick();
                let start = Instant::now();
                let applied = f
                    .dept
                    .call(UNIT, QueueKind::Treatment, ROOM, None, ACTOR, now);
                total += start.elapsed();
                let view = black_box(applied.expect("call"))
                    .value
                    .expect("someone waits");
                f.admit(view.colour.as_deref().expect("a triaged patient"));
            }
            total
        })
    });
    g.finish();
    assert_eq!(f.dept.waiting(UNIT, QueueKind::Treatment).unwrap(), n);
}

fn department(c: &mut Criterion) {
    let config = config();
    bench_department(c, &config, 10_000, "10k");
    bench_department(c, &config, 1_000_000, "1M");
}

/// Admission change sets as the domain makes them, to feed the journal. Each
/// set is new (the journal's event ids only grow), so one department keeps admitting.
struct Admissions {
    dept: Department,
    now: DateTime<Utc>,
    count: u64,
}

impl Admissions {
    fn next(&mut self, n: usize) -> Vec<Vec<Change>> {
        (0..n)
            .map(|_| {
                self.count += 1;
                self.now += TimeDelta::microseconds(1);
                let admission = Admission {
                    contact: None,
                    name: format!("Paciente {}", self.count),
                    colour: Some(colour_id("green")),
                    complaint: None,
                    arrived_at: None,
                    birth_date: None,
                    document: None,
                };
                self.dept
                    .admit(&unit(), admission, None, ACTOR, self.now)
                    .expect("admit")
                    .changes
            })
            .collect()
    }
}

/// The journal on a temporary directory: one admission committed alone (an
/// fsync each), and many submitted together and then awaited (group commit).
fn journal(c: &mut Criterion) {
    let config = config();
    let dir = tempfile::tempdir().expect("tempdir");
    let (journal, _) = Journal::open(dir.path(), Default::default()).expect("journal opens");
    let mut admissions = Admissions {
        dept: Department::new(&config.department_settings()),
        now: base_time(),
        count: 0,
    };
    let mut g = c.benchmark_group("journal");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for batch in [1usize, 1000] {
        g.throughput(Throughput::Elements(batch as u64));
        g.bench_function(BenchmarkId::new("admissions", batch), |b| {
            b.iter_batched(
                || admissions.next(batch),
                |changes| {
                    let pending: Vec<_> = changes.into_iter().map(|c| journal.submit(c)).collect();
                    for p in pending {
                        p.wait_blocking().expect("committed");
                    }
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
    journal.shutdown();
}

criterion_group!(benches, department, journal);
criterion_main!(benches);
