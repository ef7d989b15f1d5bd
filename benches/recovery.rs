//! Start-up recovery, in its two parts: opening the journal (`Journal::open`:
//! counters, alerts, recent calls; the patients' reader thread starts) and
//! rebuilding the queues from the patients as they are read and decoded
//! (`Department::restore`). The end-to-end figure (restart to `/readyz` 200
//! over HTTP) is `benches/perf.py`'s; this one says where the time goes.
//!
//! ```text
//! cargo bench --bench recovery                          # 1 000 000 waiting
//! cargo bench --bench recovery -- --patients 100000
//! cargo bench --bench recovery -- --data-dir /tmp/j     # keep (or reuse) the journal
//! ```
//!
//! The journal is written through the real path (`Department::admit`, then
//! the journal's group commit) once, then opened `--runs` times.

use std::path::PathBuf;
use std::time::Instant;

use chrono::TimeDelta;

use triagem::domain::{Admission, Department};
use triagem::journal::{Journal, JournalOptions};

mod common;
use common::{base_time, colour_id, config, unit, ACTOR};

/// The default scale's colours in a rough emergency-department mix.
fn colour(i: usize) -> &'static str {
    match i % 20 {
        0 => "red",
        1..=5 => "yellow",
        6..=15 => "green",
        _ => "blue",
    }
}

struct Args {
    patients: usize,
    runs: usize,
    data_dir: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        patients: 1_000_000,
        runs: 3,
        data_dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().expect("a value after the option");
        match arg.as_str() {
            "--patients" => a.patients = value().parse().expect("a number of patients"),
            "--runs" => a.runs = value().parse().expect("a number of runs"),
            "--data-dir" => a.data_dir = Some(PathBuf::from(value())),
            // cargo bench passes --bench; criterion's other flags mean nothing here.
            _ => {}
        }
    }
    a
}

/// Admits `n` patients through the domain and commits them in groups of
/// 1 000, as a busy server would; a day's span of arrivals.
fn fill(dir: &std::path::Path, n: usize) {
    let config = config();
    let (journal, snapshot) = Journal::open(dir, JournalOptions::default()).expect("journal");
    let mut dept = Department::restore(&config.department_settings(), snapshot).expect("restore");
    let start = base_time() - TimeDelta::hours(20);
    let step = TimeDelta::hours(20) / n.max(1) as i32;
    let unit = unit();
    let mut pending = Vec::new();
    for i in 0..n {
        let admission = Admission {
            contact: None,
            name: format!("Paciente {i}"),
            colour: Some(colour_id(colour(i))),
            complaint: None,
            arrived_at: None,
            birth_date: None,
            document: None,
        };
        let now = start + step * i as i32;
        let applied = dept
            .admit(&unit, admission, None, ACTOR, now)
            .expect("admit");
        pending.push(journal.submit(applied.changes));
        if pending.len() == 1_000 {
            pending
                .drain(..)
                .for_each(|p| p.wait_blocking().expect("commit"));
        }
    }
    pending
        .drain(..)
        .for_each(|p| p.wait_blocking().expect("commit"));
    journal.shutdown();
}

fn main() {
    let args = args();
    let temp;
    let dir = match &args.data_dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().expect("a temp dir");
            temp.path().to_owned()
        }
    };
    let existing = Journal::open(&dir, JournalOptions::default())
        .map(|(j, s)| {
            let n = s
                .patients
                .batches()
                .map(|b| b.expect("patients").len())
                .sum::<usize>();
            j.shutdown();
            n
        })
        .expect("journal");
    if existing == 0 {
        let t = Instant::now();
        fill(&dir, args.patients);
        println!(
            "wrote {} admissions in {:.1} s ({})",
            args.patients,
            t.elapsed().as_secs_f64(),
            dir.display()
        );
    }
    let settings = config().department_settings();
    for run in 1..=args.runs {
        let t = Instant::now();
        let (journal, snapshot) = Journal::open(&dir, JournalOptions::default()).expect("open");
        let read = t.elapsed();
        let t = Instant::now();
        let dept = Department::restore(&settings, snapshot).expect("restore");
        let restore = t.elapsed();
        let n = dept.patient_count();
        // The patients are read and decoded on another thread while the
        // queues are rebuilt, so "restore" includes reading them.
        println!(
            "run {run}: {n} patients: journal opened {:.2} s, patients read and queues rebuilt {:.2} s, total {:.2} s",
            read.as_secs_f64(),
            restore.as_secs_f64(),
            (read + restore).as_secs_f64()
        );
        let t = Instant::now();
        drop(dept);
        journal.shutdown();
        println!("        (dropped in {:.2} s)", t.elapsed().as_secs_f64());
    }
}
