//! The escalation scheduler: fire what is due, then sleep until the next
//! deadline, until told that an earlier one appeared, or until stopped (as
//! mini-redis purges expired keys). It never scans the patients: the domain's
//! deadline index says when to wake, and one pass takes the lock once.
//!
//! Deadlines are wall-clock instants; tokio's sleeps run on the monotonic
//! clock, which does not follow a step of the wall clock (NTP correcting it,
//! a VM resumed). So while anything is scheduled no sleep is longer than
//! `escalation.tick`, and every wake-up reads the wall clock again and fires
//! everything due by then: a clock stepped forward fires what fell due within
//! one tick of the step, each level once (the domain fires the levels in order
//! and remembers the last); a clock stepped back fires nothing early, because
//! what is due is always judged against the wall clock, never the sleep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// Longest sleep with nothing scheduled: no deadline can fall due before a
/// command adds one, and that command wakes the scheduler.
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

pub async fn run(service: Service, stop: CancellationToken) {
    let tick = service.config().escalation.tick;
    loop {
        let sleep = match service.escalate().await {
            Ok(next) => sleep_toward(next, service.now(), tick),
            Err(e) => {
                // Not journaled: memory is being rebuilt; try again a tick later.
                tracing::warn!(error = %e, "escalation postponed");
                tick
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = service.scheduler_woken() => {}
            _ = stop.cancelled() => return,
        }
    }
}

/// How long to sleep before looking at the wall clock again: until the next
/// deadline, but never more than a tick while one exists, so a step of the
/// wall clock is noticed within a tick.
fn sleep_toward(next: Option<DateTime<Utc>>, now: DateTime<Utc>, tick: Duration) -> Duration {
    match next {
        None => IDLE_SLEEP,
        Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO).min(tick),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    const TICK: Duration = Duration::from_secs(1);

    fn t0() -> DateTime<Utc> {
        "2026-11-28T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_distant_deadline_is_approached_a_tick_at_a_time() {
        let half_an_hour = Some(t0() + TimeDelta::minutes(30));
        assert_eq!(sleep_toward(half_an_hour, t0(), TICK), TICK);
    }

    #[test]
    fn a_deadline_within_the_tick_is_slept_toward_exactly() {
        let soon = Some(t0() + TimeDelta::milliseconds(250));
        assert_eq!(sleep_toward(soon, t0(), TICK), Duration::from_millis(250));
    }

    #[test]
    fn a_deadline_already_past_is_fired_without_sleeping() {
        let past = Some(t0() - TimeDelta::hours(1));
        assert_eq!(sleep_toward(past, t0(), TICK), Duration::ZERO);
    }

    #[test]
    fn with_nothing_scheduled_the_scheduler_waits_to_be_woken() {
        assert_eq!(sleep_toward(None, t0(), TICK), IDLE_SLEEP);
    }
}
