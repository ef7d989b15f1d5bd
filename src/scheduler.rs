//! The escalation scheduler: fire what is due, then sleep until the next
//! deadline, until told that an earlier one appeared, or until stopped (as
//! mini-redis purges expired keys). It never scans the patients: the domain's
//! deadline index says when to wake, and one pass takes the lock once.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// Longest sleep with nothing scheduled; a wake-up then costs one index lookup.
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

pub async fn run(service: Service, stop: CancellationToken) {
    let tick = service.config().escalation.tick;
    loop {
        let sleep = match service.escalate().await {
            Ok(next) => next.map_or(IDLE_SLEEP, |at| {
                (at - service.now()).to_std().unwrap_or(Duration::ZERO)
            }),
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
