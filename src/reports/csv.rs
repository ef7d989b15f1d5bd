//! The summary as CSV, for a spreadsheet: one row per measure (the summary's
//! JSON keys) and colour, under `measure,colour,count,value,median,p90,p95`.
//! Counts go in `count`, ratios and single figures in `value`. The
//! weekday-by-hour table of arrivals is left out: it is not one row.

use std::fmt::Write;

use super::{Stat, Summary};

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn stat_row(out: &mut String, measure: &str, colour: &str, s: &Stat) {
    let _ = writeln!(
        out,
        "{measure},{colour},{},,{},{},{}",
        s.count,
        cell(s.median),
        cell(s.p90),
        cell(s.p95)
    );
}

pub fn summary_csv(s: &Summary) -> String {
    let mut out = String::from("measure,colour,count,value,median,p90,p95\n");
    let _ = writeln!(out, "arrivals,,,{},,,", s.arrivals);
    stat_row(
        &mut out,
        "door_to_triage_seconds",
        "",
        &s.door_to_triage_seconds,
    );
    stat_row(
        &mut out,
        "door_to_provider_seconds",
        "",
        &s.door_to_provider_seconds,
    );
    for c in &s.by_colour {
        let colour = &c.colour;
        let _ = writeln!(out, "patients,{colour},{},,,,", c.patients);
        let _ = writeln!(out, "within_target,{colour},{},,,,", c.within_target);
        let _ = writeln!(
            out,
            "within_target_ratio,{colour},,{},,,",
            cell(c.within_target_ratio)
        );
        let _ = writeln!(out, "max_wait_seconds,{colour},,{},,,", c.max_wait_seconds);
        stat_row(
            &mut out,
            "wait_to_call_seconds",
            &c.colour,
            &c.wait_to_call_seconds,
        );
    }
    let los = &s.length_of_stay_seconds;
    stat_row(
        &mut out,
        "length_of_stay_seconds.discharged",
        "",
        &los.discharged,
    );
    stat_row(
        &mut out,
        "length_of_stay_seconds.admitted",
        "",
        &los.admitted,
    );
    let lwbs = &s.left_without_being_seen;
    let _ = writeln!(
        out,
        "left_without_being_seen.before_triage,,{},,,,",
        lwbs.before_triage
    );
    let _ = writeln!(
        out,
        "left_without_being_seen.after_triage,,{},,,,",
        lwbs.after_triage
    );
    let _ = writeln!(out, "left_without_being_seen.rate,,,{},,,", cell(lwbs.rate));
    stat_row(
        &mut out,
        "time_to_acknowledge_seconds",
        "",
        &s.time_to_acknowledge_seconds,
    );
    out
}
