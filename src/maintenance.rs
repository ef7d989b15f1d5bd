//! The rare background work, owned by one task: the hourly purge of patients
//! past retention, and rebuilding memory from the journal after a failure.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::Service;

/// How often finished and left patients past retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Pause between attempts to get the journal writable again after a failure.
const RECOVERY_RETRY: Duration = Duration::from_secs(1);

pub async fn run(service: Service, stop: CancellationToken) {
    let mut purge = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = purge.tick() => {
                match service.purge().await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "purged patients past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purge postponed"),
                }
            }
            _ = service.failed() => {
                if !recover(&service, &stop).await {
                    return;
                }
            }
            _ = stop.cancelled() => return,
        }
    }
}

/// Retries the reload until it succeeds; false if stopped first.
async fn recover(service: &Service, stop: &CancellationToken) -> bool {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(RECOVERY_RETRY) => {}
            _ = stop.cancelled() => return false,
        }
        let s = service.clone();
        match tokio::task::spawn_blocking(move || s.reload()).await {
            Ok(Ok(())) => {
                tracing::info!("recovered from the failure: memory rebuilt from the journal");
                return true;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "journal still failing"),
            Err(e) => tracing::error!(error = %e, "recovery task panicked"),
        }
    }
}
