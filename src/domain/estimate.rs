//! An honest wait estimate for a patient in a queue: a range, from how fast
//! the queue has been called lately and how many are ahead, or nothing when
//! that would be a guess.
//!
//! The method (README, "Wait estimates"): over the last [`WINDOW`], the queue
//! was called `n` times (the unit's treatment queue, all colours; or its triage
//! queue). With fewer than [`MIN_CALLS`] calls there is no estimate. The call
//! rate is `n / WINDOW`. In the treatment queue, patients of a more urgent
//! colour who arrive meanwhile are called first, so the rate left for this
//! colour is the call rate minus the recent rate of more urgent arrivals (never
//! below half the call rate). The patient needs `ahead + 1` calls at
//! that rate: the middle of the range is `(ahead + 1) / rate`, and its spread
//! is that of waiting for `ahead + 1` calls of a Poisson stream, widened by
//! [`SPREAD`] standard deviations and never narrower than
//! ±[`MIN_RELATIVE_SPREAD`] of the middle. Red patients get none: they are
//! called at once.

use std::collections::VecDeque;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::scale::Rank;

/// How far back the call rate is measured.
pub const WINDOW: TimeDelta = TimeDelta::hours(2);
/// Fewer calls than this in the window: no estimate.
pub const MIN_CALLS: usize = 5;
/// Standard deviations on each side of the middle.
const SPREAD: f64 = 1.5;
/// The range is at least this share of the middle on each side (benches/estimate.rs:
/// narrower ranges missed blue patients, who are mostly called early).
const MIN_RELATIVE_SPREAD: f64 = 0.8;
/// More urgent arrivals never take more than this share of the calls.
const MAX_URGENT_SHARE: f64 = 0.5;

/// A range for the wait still ahead, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WaitEstimate {
    pub low_seconds: i64,
    pub high_seconds: i64,
}

/// One unit's recent calls and entries into the treatment queue.
#[derive(Debug, Clone, Default)]
pub struct Recent {
    /// Treatment calls, oldest first: when, and the colour called.
    treatment_calls: VecDeque<(DateTime<Utc>, Rank)>,
    triage_calls: VecDeque<DateTime<Utc>>,
    /// Classified patients joining the treatment queue: when, and their colour.
    entries: VecDeque<(DateTime<Utc>, Rank)>,
}

fn trim<T>(q: &mut VecDeque<T>, at: impl Fn(&T) -> DateTime<Utc>, since: DateTime<Utc>) {
    while q.front().is_some_and(|e| at(e) < since) {
        q.pop_front();
    }
}

impl Recent {
    pub fn called_treatment(&mut self, at: DateTime<Utc>, rank: Rank) {
        self.treatment_calls.push_back((at, rank));
        trim(&mut self.treatment_calls, |e| e.0, at - WINDOW);
    }

    pub fn called_triage(&mut self, at: DateTime<Utc>) {
        self.triage_calls.push_back(at);
        trim(&mut self.triage_calls, |e| *e, at - WINDOW);
    }

    pub fn entered_treatment(&mut self, at: DateTime<Utc>, rank: Rank) {
        self.entries.push_back((at, rank));
        trim(&mut self.entries, |e| e.0, at - WINDOW);
    }

    /// For a patient of colour `rank` in the treatment queue with `ahead`
    /// patients before them.
    pub fn treatment(&self, rank: Rank, ahead: usize, now: DateTime<Utc>) -> Option<WaitEstimate> {
        if rank == 0 {
            return None;
        }
        let since = now - WINDOW;
        let calls = self
            .treatment_calls
            .iter()
            .filter(|(at, _)| *at >= since)
            .count();
        let urgent = self
            .entries
            .iter()
            .filter(|(at, r)| *at >= since && *r < rank)
            .count();
        estimate(calls, urgent, ahead)
    }

    /// For a patient in the triage queue (first come, first served).
    pub fn triage(&self, ahead: usize, now: DateTime<Utc>) -> Option<WaitEstimate> {
        let since = now - WINDOW;
        let calls = self.triage_calls.iter().filter(|at| **at >= since).count();
        estimate(calls, 0, ahead)
    }
}

fn estimate(calls: usize, urgent: usize, ahead: usize) -> Option<WaitEstimate> {
    if calls < MIN_CALLS {
        return None;
    }
    let window = WINDOW.num_seconds() as f64;
    let call_rate = calls as f64 / window;
    let urgent_rate = (urgent as f64 / window).min(call_rate * MAX_URGENT_SHARE);
    let rate = call_rate - urgent_rate;
    let needed = (ahead + 1) as f64;
    let middle = needed / rate;
    let spread = (SPREAD * needed.sqrt() / rate).max(MIN_RELATIVE_SPREAD * middle);
    Some(WaitEstimate {
        low_seconds: (middle - spread).max(0.0).round() as i64,
        high_seconds: (middle + spread).round() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap() + TimeDelta::minutes(min)
    }

    #[test]
    fn too_little_history_or_a_red_patient_gets_no_estimate() {
        let mut r = Recent::default();
        for m in 0..4 {
            r.called_treatment(t(m * 10), 2);
        }
        assert_eq!(r.treatment(2, 3, t(40)), None, "4 calls are too few");
        r.called_treatment(t(45), 2);
        assert!(r.treatment(2, 3, t(46)).is_some());
        assert_eq!(r.treatment(0, 3, t(46)), None, "red is called at once");
        assert_eq!(
            r.treatment(2, 3, t(46) + WINDOW),
            None,
            "old calls fall out"
        );
    }

    #[test]
    fn more_ahead_or_more_urgent_arrivals_mean_a_longer_wait() {
        let mut r = Recent::default();
        // One call every 10 minutes for two hours.
        for m in 0..12 {
            r.called_treatment(t(m * 10), 2);
        }
        let now = t(119);
        let one = r.treatment(2, 0, now).unwrap();
        let five = r.treatment(2, 4, now).unwrap();
        assert!(one.low_seconds <= 600 && 600 <= one.high_seconds, "{one:?}");
        assert!(
            five.low_seconds < 3000 && 3000 < five.high_seconds,
            "{five:?}"
        );
        assert!(five.low_seconds > one.low_seconds);
        for m in 0..6 {
            r.entered_treatment(t(60 + m * 10), 1);
        }
        let crowded = r.treatment(2, 4, now).unwrap();
        assert!(
            crowded.low_seconds > five.low_seconds,
            "{crowded:?} vs {five:?}"
        );
        assert_eq!(
            r.treatment(1, 4, now),
            Some(five),
            "yellow is not slowed by yellow"
        );
    }
}
