//! The escalation scheduler: fire what is due, then sleep until the next
//! deadline or until told that an earlier one appeared (as mini-redis purges
//! expired keys). It never scans the patients; the domain's deadline index
//! says when to wake.

use std::time::Duration;

use actix_web::web;

use crate::app::AppState;

/// Longest sleep with nothing scheduled; a wake-up then costs one index lookup.
const IDLE_SLEEP: Duration = Duration::from_secs(3600);

pub async fn run(state: web::Data<AppState>) {
    loop {
        if state.escalation_due() {
            match state.execute(|d, now| Ok(d.escalate(now))).await {
                Ok(n) if n > 0 => tracing::debug!(fired = n, "escalation steps fired"),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "escalation postponed");
                    tokio::time::sleep(state.config.escalation.tick).await;
                    continue;
                }
            }
        }
        let sleep = state.until_next_deadline().unwrap_or(IDLE_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = state.scheduler_wake.notified() => {}
        }
    }
}
