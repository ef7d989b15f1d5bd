//! Start-up recovery, in its two parts: opening the journal (`Journal::open`:
//! counters, alerts, recent calls; the patients' reader thread starts) and
//! rebuilding the queues from the patients as they are read and decoded
//! (`Department::restore`), and the CPU each side took. The end-to-end figure
//! (restart to `/readyz` 200 over HTTP) is `benches/perf.py`'s; this one says
//! where the time goes.
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

/// CPU seconds the calling thread has run (Linux's schedstat; 0 elsewhere).
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |ns| ns / 1e9)
}

/// CPU seconds of the whole process, threads that ended included (user and
/// system time from /proc/self/stat, in Linux's fixed 100 ticks a second).
fn process_cpu() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
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
        let cpu = process_cpu();
        let t = Instant::now();
        let (journal, snapshot) = Journal::open(&dir, JournalOptions::default()).expect("open");
        let read = t.elapsed();
        let t = Instant::now();
        // On a thread of its own, as in the service (a blocking task's
        // thread): a thread's heap grows differently from the main one's.
        let settings = settings.clone();
        let (dept, rebuilding) = std::thread::spawn(move || {
            let cpu = thread_cpu();
            let dept = Department::restore(&settings, snapshot).expect("restore");
            (dept, thread_cpu() - cpu)
        })
        .join()
        .expect("the rebuilding thread");
        let restore = t.elapsed();
        let others = process_cpu() - cpu - rebuilding;
        let n = dept.patient_count();
        // The patients are read (and mostly decoded) on another thread while
        // the queues are rebuilt, so "restore" includes reading them; the
        // rebuilding thread decodes the batches the reader leaves to it when
        // it would otherwise wait. The start-up takes about as long as the
        // busier of the two threads.
        println!(
            "run {run}: {n} patients: journal opened {:.2} s, patients read and queues rebuilt {:.2} s, total {:.2} s",
            read.as_secs_f64(),
            restore.as_secs_f64(),
            (read + restore).as_secs_f64()
        );
        println!("        CPU: rebuilding thread (and its share of decoding) {rebuilding:.2} s, the others (reading, decoding) {others:.2} s");
        let t = Instant::now();
        drop(dept);
        journal.shutdown();
        println!("        (dropped in {:.2} s)", t.elapsed().as_secs_f64());
    }
}
