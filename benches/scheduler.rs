//! What one wake-up of the escalation scheduler costs, at 10 000 and
//! 1 000 000 patients waiting (config/default.toml, unit `pa`). Run with
//! `cargo bench --bench scheduler`; the figures are in benches/RESULTS.md.
//!
//! The scheduler task (src/scheduler.rs) wakes, asks under the department
//! lock whether anything is due (`AppState::escalation_due`), fires it with
//! `Department::escalate` if so, then asks how long to sleep
//! (`AppState::until_next_deadline`). Here the same calls run against a
//! `parking_lot::Mutex<Department>` and a `ManualClock`, with no journal
//! (journaling the fired alerts happens after the lock is dropped).
//!
//! Every fixture patient arrived in the 5 minutes before the clock's start
//! and none is red, so the earliest deadline (a yellow warning at 24 of 30
//! minutes) is 19 minutes away and nothing falls due during a run.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use criterion::{criterion_group, criterion_main, Criterion};
use parking_lot::Mutex;

use triagem::clock::{Clock, ManualClock};
use triagem::config::Config;
use triagem::domain::patient::{LeaveReason, QueueKind};
use triagem::domain::{Admission, Department};

mod common;
use common::{base_time, colour_id, config, unit, ACTOR, UNIT};

/// The default scale without red (red is due at admission).
const COLOURS: [&str; 3] = ["yellow", "green", "blue"];
/// How far back the fixture's arrivals go.
const ARRIVALS_SPAN_MINUTES: i64 = 5;

/// Yellow, green, blue in turn (a third each).
fn colour_of(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

/// `n` triaged patients waiting in `pa`'s treatment queue, every one in the
/// deadline index.
fn department(config: &Config, n: usize) -> Department {
    common::waiting_department(
        config,
        n,
        TimeDelta::minutes(ARRIVALS_SPAN_MINUTES),
        colour_of,
    )
}

/// The scheduler's view of the service: the department behind its lock and the clock.
struct Scheduler {
    dept: Mutex<Department>,
    clock: ManualClock,
}

impl Scheduler {
    /// `AppState::escalation_due`.
    fn due(&self) -> bool {
        let dept = self.dept.lock();
        dept.next_deadline()
            .is_some_and(|at| at <= self.clock.now())
    }

    /// `AppState::until_next_deadline`, without the atomic store.
    fn sleep(&self) -> Option<Duration> {
        let next = self.dept.lock().next_deadline();
        next.map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
    }

    /// One pass of the loop in `scheduler::run`, journal aside: what was fired
    /// and how long to sleep.
    fn wake(&self) -> (usize, Option<Duration>) {
        let fired = if self.due() {
            let mut dept = self.dept.lock();
            let now = self.clock.now();
            dept.escalate(now).value
        } else {
            0
        };
        (fired, self.sleep())
    }

    fn tick(&self) {
        self.clock.advance(TimeDelta::microseconds(1));
    }
}

fn red_admission(i: u64) -> Admission {
    Admission {
        contact: None,
        name: format!("Paciente R{i}"),
        colour: Some(colour_id("red")),
        complaint: None,
        arrived_at: None,
        birth_date: None,
        document: None,
    }
}

fn bench_wake(c: &mut Criterion, config: &Config, n: usize, label: &str) {
    let build = Instant::now();
    let s = Scheduler {
        dept: Mutex::new(department(config, n)),
        clock: ManualClock::new(base_time()),
    };
    eprintln!(
        "fixture of {n} waiting patients built in {:?}",
        build.elapsed()
    );
    let first = s
        .dept
        .lock()
        .next_deadline()
        .expect("everyone has a deadline");
    assert!(
        first > base_time() + TimeDelta::minutes(18),
        "nothing is due"
    );

    let mut g = c.benchmark_group(format!("scheduler/{label}"));
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    // A wake-up with nothing due: is anything due, then how long to sleep.
    g.bench_function("wake_nothing_due", |b| {
        b.iter(|| {
            s.tick();
            let (fired, sleep) = s.wake();
            assert_eq!(fired, 0);
            black_box(sleep)
        })
    });
    // `Department::escalate` itself when nothing is due (the scheduler skips
    // it then, but this is its floor), plus the next-deadline query.
    g.bench_function("escalate_nothing_due", |b| {
        b.iter(|| {
            s.tick();
            let now = s.clock.now();
            let mut dept = s.dept.lock();
            let applied = dept.escalate(now);
            assert_eq!(applied.value, 0);
            black_box((applied, dept.next_deadline()))
        })
    });
    // A wake-up that fires exactly one alert: a red patient (due at
    // admission) is admitted untimed, the wake-up fires its breach and
    // builds the journal changes, then the patient leaves, untimed.
    let mut admitted = 0;
    g.bench_function("wake_one_due", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                admitted += 1;
                s.tick();
                let now = s.clock.now();
                let applied = s
                    .dept
                    .lock()
                    .admit(&unit(), red_admission(admitted), None, ACTOR, now)
                    .expect("admit");
                let protocol = applied.value.protocol;
                let start = Instant::now();
                let (fired, sleep) = s.wake();
                total += start.elapsed();
                assert_eq!(fired, 1);
                black_box(sleep);
                s.tick();
                let now = s.clock.now();
                s.dept
                    .lock()
                    .leave(protocol, LeaveReason::Cancelled, ACTOR, now)
                    .expect("leave");
            }
            total
        })
    });
    g.finish();
    let dept = s.dept.lock();
    assert_eq!(dept.waiting(UNIT, QueueKind::Treatment).unwrap(), n);
    assert_eq!(
        dept.next_deadline(),
        Some(first),
        "the fixture is unchanged"
    );
}

fn scheduler(c: &mut Criterion) {
    let config = config();
    bench_wake(c, &config, 10_000, "10k");
    bench_wake(c, &config, 1_000_000, "1M");
}

criterion_group!(benches, scheduler);
criterion_main!(benches);
