//! The standard ED measures (docs/reports.md), computed once, here, from what
//! the journal keeps of each visit ([`ReportFacts`]) and of each alert. Pure:
//! the caller reads the journal (on a connection of its own, never under the
//! department lock) and hands the facts in.
//!
//! Every measure is over the cohort of visits that *arrived* in the period
//! (local days) in the unit where they were *admitted*, whatever happened
//! later. Percentiles are nearest-rank: the p-th is the smallest value with at
//! least p % of the values at or below it.

mod csv;

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::domain::escalation::Alert;
use crate::domain::patient::{LeaveReason, Outcome, Status};
use crate::domain::{ColourId, TriageScale, UnitId};
use crate::journal::ReportFacts;
pub use csv::summary_csv;

/// The longest period one report covers.
pub const MAX_DAYS: u64 = 366;

/// Local days, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    #[error("`from` ({from}) is after `to` ({to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
    #[error("a report covers at most {MAX_DAYS} days")]
    TooLong,
}

impl Period {
    pub fn new(from: NaiveDate, to: NaiveDate) -> Result<Self, PeriodError> {
        if from > to {
            return Err(PeriodError::Reversed { from, to });
        }
        if (to - from).num_days() + 1 > MAX_DAYS as i64 {
            return Err(PeriodError::TooLong);
        }
        Ok(Self { from, to })
    }

    /// The instants the period spans in `tz`: from the first local midnight
    /// up to (not including) the one after the last day.
    pub fn instants(&self, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
        let after = self.to.checked_add_days(Days::new(1)).unwrap_or(self.to);
        (day_start(self.from, tz), day_start(after, tz))
    }

    fn days(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.from.iter_days().take_while(|d| *d <= self.to)
    }
}

/// Where a report's day begins (the domain's rule, shared with tickets).
pub use crate::domain::numbering::day_start;

/// Count and nearest-rank percentiles of durations in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Stat {
    pub count: usize,
    pub median: Option<i64>,
    pub p90: Option<i64>,
    pub p95: Option<i64>,
}

impl Stat {
    pub fn of(mut values: Vec<i64>) -> Self {
        values.sort_unstable();
        Self {
            count: values.len(),
            median: percentile(&values, 50),
            p90: percentile(&values, 90),
            p95: percentile(&values, 95),
        }
    }
}

/// The smallest value with at least `p` % of `sorted` at or below it.
pub fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 10_000.0).round() / 10_000.0)
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ColourSummary {
    pub colour: ColourId,
    pub label: String,
    /// The colour's maximum wait as configured now (each visit is judged by
    /// the one in force when it was classified).
    pub max_wait_seconds: i64,
    /// Classified in this colour and then called to the treatment queue, or
    /// left (lwbs, no-show) before any treatment call.
    pub patients: usize,
    /// Of them, first called within the maximum wait.
    pub within_target: usize,
    pub within_target_ratio: Option<f64>,
    /// Clock start to the first treatment call, by the colour at that call.
    pub wait_to_call_seconds: Stat,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LengthOfStay {
    pub discharged: Stat,
    pub admitted: Stat,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeftWithoutBeingSeen {
    /// Never classified.
    pub before_triage: usize,
    pub after_triage: usize,
    /// Both, over arrivals.
    pub rate: Option<f64>,
}

/// `GET /api/v1/reports/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Summary {
    pub unit: Option<UnitId>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub timezone: String,
    pub arrivals: usize,
    pub door_to_triage_seconds: Stat,
    pub door_to_provider_seconds: Stat,
    pub by_colour: Vec<ColourSummary>,
    pub length_of_stay_seconds: LengthOfStay,
    pub left_without_being_seen: LeftWithoutBeingSeen,
    pub time_to_acknowledge_seconds: Stat,
    /// Arrivals by local weekday (Monday first) and hour of day (0–23), for
    /// staffing.
    pub arrivals_by_hour: Vec<Vec<usize>>,
}

/// One day of `GET /api/v1/reports/daily`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Day {
    pub date: NaiveDate,
    pub arrivals: usize,
    /// Pooled over every colour.
    pub within_target_ratio: Option<f64>,
    pub door_to_provider_median_seconds: Option<i64>,
    pub left_without_being_seen: usize,
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
    (to - from).num_seconds().max(0)
}

/// Left unseen, as the measures count it (`cancelled` and `error` are corrections).
fn left_unseen(v: &ReportFacts) -> bool {
    v.status == Status::Left
        && matches!(
            v.leave_reason,
            Some(LeaveReason::Lwbs | LeaveReason::NoShow)
        )
}

/// The colour a visit is judged in for "within target", and whether it was,
/// or `None` when it does not count. A visit called to treatment is judged by
/// that call even if the patient then left (did not answer, walked out): the
/// department met or missed its target there, as door-to-provider counts it.
fn target(v: &ReportFacts) -> Option<(&ColourId, bool)> {
    match &v.first_call {
        Some(call) => {
            let waited = seconds(call.clock_start, call.at);
            Some((call.colour.as_ref()?, waited <= call.max_wait_seconds))
        }
        // Left before any treatment call, after a classification: not seen
        // within target.
        None if left_unseen(v) => Some((v.colour.as_ref()?, false)),
        None => None,
    }
}

/// The summary of a period, from the visits that arrived in it (any order).
pub fn summary(
    visits: &[ReportFacts],
    alerts: &[Alert],
    scale: &TriageScale,
    unit: Option<UnitId>,
    period: Period,
    tz: Tz,
) -> Summary {
    let arrivals = visits.len();
    let door_to_triage = visits
        .iter()
        .filter_map(|v| Some(seconds(v.arrived_at, v.first_triaged_at?)))
        .collect();
    let door_to_provider = visits
        .iter()
        .filter_map(|v| Some(seconds(v.arrived_at, v.first_call.as_ref()?.at)))
        .collect();
    // The configured colours, then any the period's visits were judged or
    // called in that the config no longer has (a scale changed from five
    // colours to four): last month's audit keeps them.
    let mut colours: Vec<(ColourId, String, i64)> = scale
        .colours
        .iter()
        .map(|c| (c.id.clone(), c.label.clone(), c.max_wait.num_seconds()))
        .collect();
    let seen = visits.iter().flat_map(|v| {
        let judged = target(v).map(|(c, _)| (c, v.classified_max_wait_seconds));
        let called = v
            .first_call
            .as_ref()
            .and_then(|call| Some((call.colour.as_ref()?, Some(call.max_wait_seconds))));
        judged.into_iter().chain(called)
    });
    for (colour, max_wait) in seen {
        if !colours.iter().any(|(c, _, _)| c == colour) {
            colours.push((colour.clone(), colour.to_string(), max_wait.unwrap_or(0)));
        }
    }
    let by_colour = colours
        .into_iter()
        .map(|(id, label, max_wait_seconds)| {
            let judged: Vec<bool> = visits
                .iter()
                .filter_map(target)
                .filter(|(colour, _)| **colour == id)
                .map(|(_, within)| within)
                .collect();
            let within = judged.iter().filter(|w| **w).count();
            let waits = visits
                .iter()
                .filter_map(|v| v.first_call.as_ref())
                .filter(|call| call.colour.as_ref() == Some(&id))
                .map(|call| seconds(call.clock_start, call.at))
                .collect();
            ColourSummary {
                colour: id,
                label,
                max_wait_seconds,
                patients: judged.len(),
                within_target: within,
                within_target_ratio: ratio(within, judged.len()),
                wait_to_call_seconds: Stat::of(waits),
            }
        })
        .collect();
    let stay = |outcome: Outcome| {
        Stat::of(
            visits
                .iter()
                .filter(|v| v.status == Status::Finished && v.outcome == Some(outcome))
                .filter_map(|v| Some(seconds(v.arrived_at, v.closed_at?)))
                .collect(),
        )
    };
    let unseen: Vec<&ReportFacts> = visits.iter().filter(|v| left_unseen(v)).collect();
    let before_triage = unseen
        .iter()
        .filter(|v| v.first_triaged_at.is_none())
        .count();
    let acknowledged = alerts
        .iter()
        .filter(|a| a.acknowledged_level.is_some_and(|l| l >= 1))
        .filter_map(|a| Some(seconds(a.breached_at?, a.acknowledged_at?)))
        .collect();
    Summary {
        unit,
        from: period.from,
        to: period.to,
        timezone: tz.name().to_owned(),
        arrivals,
        door_to_triage_seconds: Stat::of(door_to_triage),
        door_to_provider_seconds: Stat::of(door_to_provider),
        by_colour,
        length_of_stay_seconds: LengthOfStay {
            discharged: stay(Outcome::Discharged),
            admitted: stay(Outcome::Admitted),
        },
        left_without_being_seen: LeftWithoutBeingSeen {
            before_triage,
            after_triage: unseen.len() - before_triage,
            rate: ratio(unseen.len(), arrivals),
        },
        time_to_acknowledge_seconds: Stat::of(acknowledged),
        arrivals_by_hour: by_hour(visits, tz),
    }
}

fn by_hour(visits: &[ReportFacts], tz: Tz) -> Vec<Vec<usize>> {
    use chrono::{Datelike, Timelike};
    let mut grid = vec![vec![0; 24]; 7];
    for v in visits {
        let local = v.arrived_at.with_timezone(&tz);
        let day = local.weekday().num_days_from_monday() as usize;
        grid[day][local.hour() as usize] += 1;
    }
    grid
}

/// One entry per local day of the period, days without arrivals included.
pub fn daily(visits: &[ReportFacts], period: Period, tz: Tz) -> Vec<Day> {
    let mut by_day: BTreeMap<NaiveDate, Vec<&ReportFacts>> = BTreeMap::new();
    for v in visits {
        let day = v.arrived_at.with_timezone(&tz).date_naive();
        by_day.entry(day).or_default().push(v);
    }
    period
        .days()
        .map(|date| {
            let visits = by_day.get(&date).map(Vec::as_slice).unwrap_or_default();
            let judged: Vec<bool> = visits
                .iter()
                .filter_map(|v| target(v))
                .map(|t| t.1)
                .collect();
            let mut provider: Vec<i64> = visits
                .iter()
                .filter_map(|v| Some(seconds(v.arrived_at, v.first_call.as_ref()?.at)))
                .collect();
            provider.sort_unstable();
            Day {
                date,
                arrivals: visits.len(),
                within_target_ratio: ratio(judged.iter().filter(|w| **w).count(), judged.len()),
                door_to_provider_median_seconds: percentile(&provider, 50),
                left_without_being_seen: visits.iter().filter(|v| left_unseen(v)).count(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
