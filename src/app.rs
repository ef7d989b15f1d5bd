//! Wiring: the shared [`AppState`] (the domain behind one mutex, the journal,
//! the clock) and [`Application`], which binds a listener it is given, recovers
//! the journal in the background and runs until stopped.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::{web, App, HttpServer};
use anyhow::Context;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::Notify;

use std::collections::HashMap;

use crate::auth::Authenticator;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Applied, Department, DomainError};
use crate::events::EventHub;
use crate::http::{self, ApiError};
use crate::journal::{Journal, JournalOptions};
use crate::metrics::Metrics;
use crate::{outbox, scheduler};

/// How often finished and left patients past retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// Pause between attempts to get the journal writable again after a failure.
const RECOVERY_RETRY: Duration = Duration::from_secs(1);

pub struct AppState {
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    /// The whole domain. Never held across an `.await` or a disk write.
    dept: Mutex<Department>,
    journal: OnceLock<Journal>,
    recovered: AtomicBool,
    journal_failed: Notify,
    pub events: Arc<EventHub>,
    /// One per webhook receiver; poked when a commit queues a notification.
    outbox_wake: Vec<Arc<Notify>>,
    /// Poked when a deadline earlier than the scheduler's sleep appears.
    pub scheduler_wake: Notify,
    /// The deadline (ms since the epoch) the scheduler sleeps toward.
    scheduler_at: AtomicI64,
    pub metrics: Arc<Metrics>,
    pub auth: Authenticator,
    /// Turns true when the service starts stopping; event streams watch it.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Admissions per caller in the current minute: (minute, count).
    admissions: Mutex<HashMap<String, (i64, u32)>>,
}

impl AppState {
    pub fn new(config: Arc<Config>, clock: Arc<dyn Clock>) -> Self {
        Self {
            dept: Mutex::new(Department::new(&config)),
            metrics: Arc::new(Metrics::new(&config)),
            auth: Authenticator::new(&config.auth),
            shutdown: tokio::sync::watch::Sender::new(false),
            admissions: Mutex::new(HashMap::new()),
            events: Arc::new(EventHub::new(config.units.iter().map(|u| u.id.as_str()))),
            outbox_wake: config
                .alerts
                .webhooks
                .iter()
                .map(|_| Arc::new(Notify::new()))
                .collect(),
            config,
            clock,
            journal: OnceLock::new(),
            recovered: AtomicBool::new(false),
            journal_failed: Notify::new(),
            scheduler_wake: Notify::new(),
            scheduler_at: AtomicI64::new(i64::MAX),
        }
    }

    /// Recovered at start-up and the journal is taking writes.
    pub fn is_ready(&self) -> bool {
        self.recovered.load(Ordering::Acquire)
            && self.journal.get().is_some_and(Journal::is_healthy)
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.get()
    }

    fn writable_journal(&self) -> Result<&Journal, ApiError> {
        match self.journal.get() {
            Some(j) if self.recovered.load(Ordering::Acquire) && j.is_healthy() => Ok(j),
            _ => Err(ApiError::Unavailable),
        }
    }

    /// Runs a command on the domain and answers only once its changes are durable.
    pub async fn execute<T>(
        &self,
        command: impl FnOnce(&mut Department, DateTime<Utc>) -> Result<Applied<T>, DomainError>,
    ) -> Result<T, ApiError> {
        let journal = self.writable_journal()?;
        let (value, pending, earlier_deadline) = {
            let mut dept = self.dept.lock();
            // Read under the lock so journal order and time order agree.
            let now = self.clock.now();
            let applied = command(&mut dept, now)?;
            let earlier = dept.next_deadline().is_some_and(|at| {
                at.timestamp_millis() < self.scheduler_at.load(Ordering::Acquire)
            });
            (applied.value, journal.submit(applied.changes), earlier)
        };
        if earlier_deadline {
            self.scheduler_wake.notify_one();
        }
        if pending.wait().await.is_err() {
            self.journal_failed.notify_one();
            return Err(ApiError::Unavailable);
        }
        Ok(value)
    }

    /// Counts an admission against the caller's per-minute allowance (tokens mode).
    pub fn admission_allowed(&self, caller: &crate::auth::Caller) -> bool {
        let limit = self.config.auth.admissions_per_minute;
        if limit == 0 || caller.role.is_none() {
            return true;
        }
        let minute = self.clock.now().timestamp() / 60;
        let mut counts = self.admissions.lock();
        let entry = counts.entry(caller.name.clone()).or_insert((minute, 0));
        if entry.0 != minute {
            *entry = (minute, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }

    /// The Prometheus text exposition.
    pub fn render_metrics(&self) -> String {
        let dept = self.dept.lock();
        self.metrics.render(&dept, self.clock.now())
    }

    /// Reads the domain; refused until start-up recovery is done, and from a
    /// failed commit until memory is reloaded from the journal, because until
    /// then memory still holds the refused changes ("nothing was changed").
    pub fn read<T>(
        &self,
        query: impl FnOnce(&Department, DateTime<Utc>) -> Result<T, DomainError>,
    ) -> Result<T, ApiError> {
        if !self.is_ready() {
            return Err(ApiError::Unavailable);
        }
        let dept = self.dept.lock();
        Ok(query(&dept, self.clock.now())?)
    }

    /// True when an escalation step is due now.
    pub fn escalation_due(&self) -> bool {
        let dept = self.dept.lock();
        dept.next_deadline()
            .is_some_and(|at| at <= self.clock.now())
    }

    /// How long the scheduler may sleep; records the deadline it sleeps toward.
    pub fn until_next_deadline(&self) -> Option<Duration> {
        let dept = self.dept.lock();
        let next = dept.next_deadline();
        // Recorded under the lock, like `execute`'s comparison: a command that
        // adds an earlier deadline after this read must see this value and
        // wake the scheduler, or that deadline waits for the next wake-up.
        self.scheduler_at.store(
            next.map_or(i64::MAX, |at| at.timestamp_millis()),
            Ordering::Release,
        );
        drop(dept);
        next.map(|at| (at - self.clock.now()).to_std().unwrap_or(Duration::ZERO))
    }

    /// Makes the scheduler look again (tests call it after moving a manual clock).
    pub fn wake_scheduler(&self) {
        self.scheduler_wake.notify_one();
    }

    /// Opens the journal and loads its state. Blocking: runs on a blocking thread.
    fn recover(&self) -> anyhow::Result<()> {
        let events = self.events.clone();
        let wakes = self.outbox_wake.clone();
        let metrics = self.metrics.clone();
        let receivers = self.config.alerts.webhooks.len();
        let options = JournalOptions {
            receivers,
            observer: Some(Box::new(move |seconds, changes| {
                metrics.committed(seconds, changes, receivers);
                events.publish(changes);
                if changes
                    .iter()
                    .any(|c| matches!(c, crate::domain::Change::Notify(_)))
                {
                    wakes.iter().for_each(|w| w.notify_one());
                }
            })),
        };
        let (journal, snapshot) = Journal::open(&self.config.storage.data_dir, options)
            .with_context(|| {
                format!(
                    "cannot open the journal in {}",
                    self.config.storage.data_dir.display()
                )
            })?;
        let patients = snapshot.patients.len();
        self.metrics.set_outbox_pending(journal.outbox_pending()?);
        for unit in &self.config.units {
            let recent = journal.stream_events(&unit.id, 0, crate::events::REPLAY_EVENTS)?;
            self.events.preload(&unit.id, recent);
        }
        let dept = Department::restore(&self.config, snapshot)?;
        *self.dept.lock() = dept;
        if self.journal.set(journal).is_err() {
            anyhow::bail!("journal opened twice");
        }
        self.recovered.store(true, Ordering::Release);
        tracing::info!(patients, "journal recovered; ready");
        Ok(())
    }

    /// After a failed commit: once the disk takes writes again, memory becomes
    /// exactly what the journal holds (the failed commands are forgotten).
    fn reload_after_failure(&self) -> anyhow::Result<()> {
        let journal = self.journal.get().context("no journal")?;
        let mut dept = self.dept.lock();
        let snapshot = journal.reload()?;
        *dept = Department::restore(&self.config, snapshot)?;
        Ok(())
    }
}

/// A bound, not yet running service.
pub struct Application {
    port: u16,
    state: web::Data<AppState>,
    server: actix_web::dev::Server,
}

impl Application {
    /// Binds the service to `listener` (port 0 in tests) with the given clock.
    pub fn build(
        config: Config,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let state = web::Data::new(AppState::new(Arc::new(config), clock));
        let data = state.clone();
        let origins = state.config.server.cors_origins.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(actix_web::middleware::from_fn(http::authorize))
                .wrap(actix_web::middleware::from_fn(http::observe))
                // Outermost, so a browser's preflight (which carries no token) is
                // answered before the role check.
                .wrap(actix_web::middleware::Condition::new(
                    !origins.is_empty(),
                    http::cors(&origins),
                ))
                .configure(http::configure)
        })
        .listen(listener)?
        .shutdown_timeout(10)
        // Signals are ours: event streams must be told to end first (see StopHandle).
        .disable_signals()
        .run();
        Ok(Self {
            port,
            state,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Stops the server from outside (tests restart the service on the same data dir).
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            state: self.state.clone(),
        }
    }

    /// Serves until SIGTERM/SIGINT or a [`StopHandle`] stops it, then closes the journal.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let state = self.state.clone();
        let handle = self.server.handle();
        let signals = tokio::spawn(stop_on_signal(self.handle()));
        let recovery = {
            let state = state.clone();
            tokio::task::spawn_blocking(move || state.recover())
        };
        let server = tokio::spawn(self.server);
        match recovery.await? {
            Ok(()) => {}
            Err(e) => {
                handle.stop(false).await;
                return Err(e);
            }
        }
        let mut background = vec![
            tokio::spawn(background_tasks(state.clone())),
            tokio::spawn(scheduler::run(state.clone())),
        ];
        for (i, wake) in state.outbox_wake.iter().enumerate() {
            background.push(tokio::spawn(outbox::run_receiver(
                state.clone(),
                i,
                wake.clone(),
            )));
        }
        server.await??;
        signals.abort();
        for task in background {
            task.abort();
        }
        if let Some(journal) = state.journal() {
            let journal_state = state.clone();
            tokio::task::spawn_blocking(move || {
                if let Some(j) = journal_state.journal() {
                    j.shutdown();
                }
            })
            .await?;
            tracing::info!(path = %journal.path().display(), "journal closed");
        }
        Ok(())
    }
}

/// Stops the service: event streams end at once (they never finish on their
/// own), then the server stops taking connections and, when `graceful`,
/// finishes the requests in flight.
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    state: web::Data<AppState>,
}

impl StopHandle {
    /// Starts stopping now; await the result to wait until the server is down.
    pub fn stop(&self, graceful: bool) -> impl std::future::Future<Output = ()> {
        self.state.shutdown.send_replace(true);
        self.server.stop(graceful)
    }
}

async fn stop_on_signal(handle: StopHandle) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: finishing requests in flight, then stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing requests in flight, then stopping"),
    }
    handle.stop(true).await;
}

/// Purging and failure recovery; both are rare, so one task owns them.
async fn background_tasks(state: web::Data<AppState>) {
    let mut purge = tokio::time::interval(PURGE_EVERY);
    loop {
        tokio::select! {
            _ = purge.tick() => {
                match state.execute(|d, now| Ok(d.purge(now))).await {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "purged patients past retention"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purge postponed"),
                }
            }
            _ = state.journal_failed.notified() => {
                while !state.is_ready() {
                    tokio::time::sleep(RECOVERY_RETRY).await;
                    let s = state.clone();
                    match tokio::task::spawn_blocking(move || s.reload_after_failure()).await {
                        Ok(Ok(())) => tracing::info!("recovered from journal failure"),
                        Ok(Err(e)) => tracing::warn!(error = %e, "journal still failing"),
                        Err(e) => tracing::error!(error = %e, "recovery task panicked"),
                    }
                }
            }
        }
    }
}
