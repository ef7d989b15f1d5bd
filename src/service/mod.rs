//! The service layer, shaped like mini-redis's `Db`: [`Service`] is a cheap
//! handle to [`Shared`], which owns the one [`Department`] behind one lock,
//! the journal, the event streams, the metrics and the wake-ups of the
//! background tasks. Every change goes through [`Service::execute`]: the
//! command runs under the lock, its changes are queued on the journal before
//! the lock is released (so the journal's order is memory's), and the caller
//! is answered once they are durable.
//!
//! The lock is never held across an `.await` or any I/O: recovery and reloads
//! read the journal and build the new department outside it, then swap it in.

mod events;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::clock::Clock;
use crate::config::Backend;
use crate::config::Config;
use crate::domain::patient::Protocol;
use crate::domain::{Applied, Change, Channel, Department, DomainError, PatientView, Settings};
use crate::journal::{
    HistoryEntry, Journal, JournalError, JournalOptions, MessageEntry, MessageStatus, OutboxEntry,
    PatientSearch, PendingCommit, Role,
};
use crate::metrics::Metrics;
pub use events::{EventHub, Live, LiveEvent, REPLAY_EVENTS};

/// Why the service did not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Not recovered yet, or the journal cannot be written: nothing was changed.
    #[error("the service cannot record changes right now")]
    Unavailable,
    /// Another instance leads (PostgreSQL journal): nothing was changed here.
    #[error("this instance is not the leader")]
    NotLeader,
    /// The database never confirmed the commit (PostgreSQL journal): the
    /// change may or may not have been kept.
    #[error("the database did not confirm the change")]
    OutcomeUnknown,
}

/// Where the service stands; only `Ready` serves the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Health {
    /// The journal has not been read back yet.
    Starting = 0,
    Ready = 1,
    /// A commit failed or a command panicked: memory may hold what the journal
    /// does not, so nothing is served until it is rebuilt from the journal.
    Failed = 2,
    /// Another instance holds the lease: memory is stale and nothing is
    /// served until this one leads and has rebuilt memory under its term.
    Follower = 3,
}

/// A handle to the service; clones share everything.
#[derive(Clone)]
pub struct Service {
    shared: Arc<Shared>,
}

struct Shared {
    config: Arc<Config>,
    /// The department's settings, derived from the config once.
    settings: Settings,
    clock: Arc<dyn Clock>,
    /// The domain. Never held across an `.await` or a disk write.
    state: Mutex<State>,
    health: AtomicU8,
    journal: OnceLock<Journal>,
    events: Arc<EventHub>,
    metrics: Arc<Metrics>,
    /// Poked when a deadline earlier than the one the scheduler sleeps toward appears.
    scheduler: Notify,
    /// One per webhook receiver; poked by a commit that queues a notification.
    outbox: Arc<[Notify]>,
    /// One per message channel (e-mail, SMS); poked by a commit that queues a message.
    messages: Arc<[(Channel, Notify)]>,
    /// Poked when the service turns `Failed`; the recovery task waits on it.
    failed: Notify,
    /// Turns true when the service starts stopping; event streams end on it.
    stopping: watch::Sender<bool>,
}

struct State {
    department: Department,
    /// The deadline the scheduler sleeps toward; a command that adds an earlier
    /// one must wake it, or that deadline waits for the next wake-up.
    scheduler_at: Option<DateTime<Utc>>,
}

impl Service {
    /// An empty, not yet recovered service; [`Service::recover`] reads the journal.
    pub fn new(config: Arc<Config>, clock: Arc<dyn Clock>) -> Self {
        let receivers = config.alerts.webhooks.len();
        let settings = config.department_settings();
        let shared = Shared {
            state: Mutex::new(State {
                department: Department::new(&settings),
                scheduler_at: None,
            }),
            health: AtomicU8::new(Health::Starting as u8),
            journal: OnceLock::new(),
            events: Arc::new(EventHub::new(config.units.iter().map(|u| u.id.as_str()))),
            metrics: Arc::new(Metrics::new(&config)),
            scheduler: Notify::new(),
            outbox: (0..receivers).map(|_| Notify::new()).collect(),
            messages: [Channel::Email, Channel::Sms]
                .into_iter()
                .map(|c| (c, Notify::new()))
                .collect(),
            failed: Notify::new(),
            stopping: watch::Sender::new(false),
            settings,
            config,
            clock,
        };
        Self {
            shared: Arc::new(shared),
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    pub fn events(&self) -> &EventHub {
        &self.shared.events
    }

    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    fn health(&self) -> Health {
        match self.shared.health.load(Ordering::Acquire) {
            1 => Health::Ready,
            2 => Health::Failed,
            3 => Health::Follower,
            _ => Health::Starting,
        }
    }

    fn set_health(&self, health: Health) {
        self.shared.health.store(health as u8, Ordering::Release);
    }

    /// Recovered, nothing pending a reload, the journal takes writes, and
    /// (PostgreSQL) the lease is held by its own deadline under the term
    /// memory was read back with: checked here on every call, because the
    /// role is announced by a task that may not have run yet (a leader
    /// resumed after a pause answers its queued requests first).
    pub fn is_ready(&self) -> bool {
        self.health() == Health::Ready
            && self
                .journal()
                .is_some_and(|j| j.is_healthy() && j.serves_lease())
    }

    /// Whether this instance leads, and the lease's term (SQLite: always, 0).
    /// Before the journal is open: a follower of term 0.
    pub fn role(&self) -> Role {
        match self.journal() {
            Some(j) => *j.role().borrow(),
            None => Role {
                leader: false,
                term: 0,
            },
        }
    }

    /// Another instance leads, or this one has stepped down and not yet
    /// rebuilt memory under a new term: requests get 503 `not_leader`.
    pub fn is_follower(&self) -> bool {
        match self.journal() {
            Some(j) => {
                self.health() == Health::Follower
                    || !j.role().borrow().leader
                    // Past the lease's deadline, whatever the role says yet.
                    || !j.holds_lease()
            }
            // Not open yet: starting, not following.
            None => false,
        }
    }

    /// The error for a refusal: `not_leader` on a follower, else `unavailable`.
    /// A commit that failed with nobody waiting on it (its callers gone)
    /// starts the recovery here, or the journal would refuse for good.
    fn refusal(&self) -> ServiceError {
        if self.is_follower() {
            return ServiceError::NotLeader;
        }
        if self.health() == Health::Ready && self.journal().is_some_and(|j| !j.is_healthy()) {
            self.fail();
        }
        ServiceError::Unavailable
    }

    /// The open journal, once recovered. Tests use it to inject faults.
    #[doc(hidden)]
    pub fn journal(&self) -> Option<&Journal> {
        self.shared.journal.get()
    }

    /// Memory may now differ from the journal: refuse everything until the
    /// recovery task has rebuilt it.
    fn fail(&self) {
        if self.health() != Health::Failed {
            self.set_health(Health::Failed);
            self.shared.failed.notify_one();
        }
    }

    /// Waits until the service turns `Failed` (the recovery task's wake-up).
    pub async fn failed(&self) {
        self.shared.failed.notified().await;
    }

    /// Runs a command on the domain and answers only once its changes are
    /// durable. A command that panics leaves nothing half-applied on view:
    /// the service turns `Failed` and memory is rebuilt from the journal.
    pub async fn execute<T>(
        &self,
        command: impl FnOnce(&mut Department, DateTime<Utc>) -> Result<Applied<T>, DomainError>,
    ) -> Result<T, ServiceError> {
        let (value, pending) = self.apply(|state, now| {
            let applied = command(&mut state.department, now)?;
            Ok((applied.value, applied.changes))
        })?;
        // No changes of its own (a replayed admission, an alert acknowledged
        // twice): its answer comes from memory, which may hold commands not
        // yet durable, so it waits for them (a replay answered 201 for an
        // admission whose commit then failed).
        let pending = pending.or_else(|| self.journal().map(Journal::barrier));
        self.durable(pending).await?;
        Ok(value)
    }

    /// The locked part of a change: checks health under the lock (so nothing
    /// mutates memory once a reload has begun), runs `f`, queues its changes.
    fn apply<T>(
        &self,
        f: impl FnOnce(&mut State, DateTime<Utc>) -> Result<(T, Vec<Change>), DomainError>,
    ) -> Result<(T, Option<PendingCommit>), ServiceError> {
        let journal = self.journal().ok_or(ServiceError::Unavailable)?;
        let (value, pending, wake) = {
            let mut state = self.shared.state.lock();
            if !self.is_ready() {
                return Err(self.refusal());
            }
            // Read under the lock so journal order and time order agree.
            let now = self.shared.clock.now();
            let (value, changes) = match catch_unwind(AssertUnwindSafe(|| f(&mut state, now))) {
                Ok(result) => result?,
                Err(_) => {
                    tracing::error!("a command panicked; reloading memory from the journal");
                    self.fail();
                    return Err(ServiceError::Unavailable);
                }
            };
            let next = state.department.next_deadline();
            let wake = next.is_some_and(|at| state.scheduler_at.is_none_or(|s| at < s));
            let pending = (!changes.is_empty()).then(|| journal.submit(changes));
            (value, pending, wake)
        };
        if wake {
            self.wake_scheduler();
        }
        Ok((value, pending))
    }

    async fn durable(&self, pending: Option<PendingCommit>) -> Result<(), ServiceError> {
        let Some(pending) = pending else {
            return Ok(());
        };
        pending.wait().await.map_err(|e| match e {
            // Fenced off, or a lost COMMIT that only a new term settles: stop
            // serving, and let the lease go at once.
            JournalError::NotLeader | JournalError::OutcomeUnknown(_) => {
                self.follow();
                if let Some(journal) = self.journal() {
                    journal.step_down();
                }
                if matches!(e, JournalError::NotLeader) {
                    ServiceError::NotLeader
                } else {
                    ServiceError::OutcomeUnknown
                }
            }
            _ => {
                self.fail();
                ServiceError::Unavailable
            }
        })
    }

    /// Reads the domain; refused until recovered, and from a failed commit
    /// until memory is rebuilt, because memory may still hold the refused
    /// changes ("nothing was changed").
    pub fn read<T>(
        &self,
        query: impl FnOnce(&Department, DateTime<Utc>) -> Result<T, DomainError>,
    ) -> Result<T, ServiceError> {
        if !self.is_ready() {
            return Err(self.refusal());
        }
        let state = self.shared.state.lock();
        Ok(query(&state.department, self.shared.clock.now())?)
    }

    /// One pass of the scheduler, under one lock: fires what is due, records
    /// and returns the next deadline to sleep toward.
    pub async fn escalate(&self) -> Result<Option<DateTime<Utc>>, ServiceError> {
        let ((fired, next), pending) = self.apply(|state, now| {
            let applied = state.department.escalate(now);
            let next = state.department.next_deadline();
            state.scheduler_at = next;
            Ok(((applied.value, next), applied.changes))
        })?;
        self.durable(pending).await?;
        if fired > 0 {
            tracing::debug!(fired, "escalation steps fired");
        }
        Ok(next)
    }

    /// Makes the scheduler look again (tests call it after moving a manual clock).
    pub fn wake_scheduler(&self) {
        self.shared.scheduler.notify_one();
    }

    /// Waits until the scheduler is woken.
    pub async fn scheduler_woken(&self) {
        self.shared.scheduler.notified().await;
    }

    /// Waits until a commit queues a notification for webhook `receiver`.
    pub async fn outbox_woken(&self, receiver: usize) {
        match self.shared.outbox.get(receiver) {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// Waits until a commit queues a message for `channel`.
    pub async fn messages_woken(&self, channel: Channel) {
        match self.shared.messages.iter().find(|(c, _)| *c == channel) {
            Some((_, n)) => n.notified().await,
            None => std::future::pending().await,
        }
    }

    /// The oldest unsent message of a channel.
    pub async fn message_next(
        &self,
        channel: Channel,
    ) -> Result<Option<MessageEntry>, ServiceError> {
        self.blocking_read(move |j| j.message_next(channel)).await
    }

    /// The oldest undelivered notification of a webhook receiver.
    pub async fn outbox_next(&self, receiver: usize) -> Result<Option<OutboxEntry>, ServiceError> {
        self.blocking_read(move |j| j.outbox_next(receiver)).await
    }

    /// Purges the patients past retention; their messages go with them, so
    /// the pending gauges are counted again from the journal (a message still
    /// unsent after the retention period would otherwise be counted for ever).
    pub async fn purge(&self) -> Result<usize, ServiceError> {
        let purged = self.execute(|d, now| Ok(d.purge(now))).await?;
        if purged > 0 {
            let service = self.clone();
            self.blocking_read(move |j| service.count_pending(j))
                .await?;
        }
        Ok(purged)
    }

    /// Records the result of a delivery attempt. A lost record only means the
    /// entry is sent again (at least once), so only the journal's health matters.
    pub async fn record_delivery(&self, change: Change) -> Result<(), ServiceError> {
        let journal = self.journal().ok_or(ServiceError::Unavailable)?;
        self.durable(Some(journal.submit(vec![change]))).await
    }

    /// A patient's audit trail, oldest first; 404 for an unknown protocol.
    pub async fn history(&self, protocol: Protocol) -> Result<Vec<HistoryEntry>, ServiceError> {
        self.read(|d, _| d.patient(protocol).map(|_| ()))?;
        self.blocking_read(move |j| j.history(protocol)).await
    }

    /// Patients matching a search (`GET /patients`), most recent arrival
    /// first. The journal finds them on its own connection; only the views of
    /// those found (at most a page) are read under the lock.
    pub async fn search(
        &self,
        mut search: PatientSearch,
    ) -> Result<Vec<PatientView>, ServiceError> {
        let now = self.now();
        self.read(|d, _| match &search.unit {
            Some(unit) => d.unit(unit).map(|_| ()),
            None => Ok(()),
        })?;
        let tz = self.shared.settings.time_zone;
        search.tickets_since = crate::reports::day_start(now.with_timezone(&tz).date_naive(), tz);
        let statuses = search.statuses.clone();
        let found = self.blocking_read(move |j| j.search(&search)).await?;
        // Memory may be a change ahead of the journal: filter on what it says.
        self.read(|d, now| {
            Ok(found
                .iter()
                .filter_map(|p| d.patient(*p).ok())
                .filter(|p| statuses.is_empty() || statuses.contains(&p.status))
                .map(|p| d.view(p, now))
                .collect())
        })
    }

    /// How the messages to a patient went; 404 for an unknown protocol.
    pub async fn messages(&self, protocol: Protocol) -> Result<Vec<MessageStatus>, ServiceError> {
        self.read(|d, _| d.patient(protocol).map(|_| ()))?;
        self.blocking_read(move |j| j.messages_of(protocol)).await
    }

    /// What a report reads of `period` (see [`crate::reports`]); never under
    /// the department lock.
    pub async fn report_data(
        &self,
        period: crate::reports::Period,
        unit: Option<crate::domain::UnitId>,
    ) -> Result<crate::journal::ReportData, ServiceError> {
        if let Some(u) = &unit {
            self.read(|d, _| d.unit(u).map(|_| ()))?;
        }
        let (from, to) = period.instants(self.shared.settings.time_zone);
        self.blocking_read(move |j| j.report_data(from, to, unit.as_ref()))
            .await
    }

    /// The department's settings (scale, time zone, …), as the config made them.
    pub fn settings(&self) -> &Settings {
        &self.shared.settings
    }

    /// A journal read on a blocking thread, never under the domain lock.
    async fn blocking_read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Journal) -> Result<T, crate::journal::JournalError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let service = self.clone();
        let result = tokio::task::spawn_blocking(move || service.journal().map(read)).await;
        match result {
            Ok(Some(Ok(value))) => Ok(value),
            Ok(Some(Err(e))) => {
                tracing::error!(error = %e, "cannot read the journal");
                Err(ServiceError::Unavailable)
            }
            Ok(None) | Err(_) => Err(ServiceError::Unavailable),
        }
    }

    /// The Prometheus text exposition. Only the queue gauges are read under the
    /// lock (a few numbers per unit and colour); encoding happens outside it.
    pub fn render_metrics(&self) -> String {
        let now = self.now();
        let gauges = {
            let state = self.shared.state.lock();
            crate::metrics::QueueGauges::read(&state.department, now)
        };
        let role = self.role();
        let leading = role.leader && !self.is_follower();
        let differs = self.journal().is_some_and(Journal::settings_differ);
        self.shared.metrics.set_role(leading, role.term, differs);
        self.shared.metrics.render(&gauges, leading)
    }

    /// Turns true when the service starts stopping (event streams end on it).
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.shared.stopping.subscribe()
    }

    pub fn begin_stop(&self) {
        self.shared.stopping.send_replace(true);
    }

    /// Opens the journal and loads its state. Blocking: run it on a blocking thread.
    pub fn recover(&self) -> anyhow::Result<()> {
        let config = &self.shared.config;
        let receivers = config.alerts.webhooks.len();
        let (events, metrics, outbox, messages) = (
            self.shared.events.clone(),
            self.shared.metrics.clone(),
            self.shared.outbox.clone(),
            self.shared.messages.clone(),
        );
        let options = JournalOptions {
            receivers,
            // On the writer thread, after each commit: nobody hears of a change
            // before it is on disk.
            observer: Some(Box::new(move |seconds, changes| {
                metrics.committed(seconds, changes, receivers);
            })),
            // After the callers have their answers: nobody hears of a change
            // before it is on disk, and the desk that made it hears first.
            announcer: Some(Box::new(move |changes| {
                events.publish(changes);
                if changes.iter().any(|c| matches!(c, Change::Notify(_))) {
                    outbox.iter().for_each(Notify::notify_one);
                }
                for (channel, wake) in messages.iter() {
                    let queued =
                        |c: &&Change| matches!(c, Change::Message(m) if m.channel == *channel);
                    if changes.iter().any(queued) {
                        wake.notify_one();
                    }
                }
            })),
        };
        let storage = &config.storage;
        let snapshot = match (storage.backend, &storage.postgres_url) {
            (Backend::Postgres, Some(url)) => {
                let settings = config.shared_settings();
                let journal =
                    Journal::open_postgres(url.as_str(), storage.lease, &settings, options)
                        .with_context(|| {
                            format!("cannot open the journal at {}", url.redacted())
                        })?;
                if self.shared.journal.set(journal).is_err() {
                    anyhow::bail!("journal opened twice");
                }
                // Memory is read back when this instance comes to lead (`lead`).
                tracing::info!("journal open; following until this instance holds the lease");
                return Ok(());
            }
            _ => {
                let data_dir = &storage.data_dir;
                let (journal, snapshot) = Journal::open(data_dir, options).with_context(|| {
                    format!("cannot open the journal in {}", data_dir.display())
                })?;
                if self.shared.journal.set(journal).is_err() {
                    anyhow::bail!("journal opened twice");
                }
                snapshot
            }
        };
        self.restore(snapshot)?;
        Ok(())
    }

    /// Sets the outboxes' pending gauges from the journal. Blocking.
    fn count_pending(&self, journal: &Journal) -> Result<(), crate::journal::JournalError> {
        let metrics = &self.shared.metrics;
        metrics.set_outbox_pending(journal.outbox_pending()?);
        for channel in self.shared.config.notifications.channels() {
            metrics.set_notifications_pending(channel, journal.messages_pending(channel)?);
        }
        Ok(())
    }

    /// Builds memory from a snapshot (outside the lock), with what the
    /// outboxes' gauges and the event streams' replay need, then serves it.
    fn restore(&self, snapshot: crate::domain::Snapshot) -> anyhow::Result<()> {
        let started = std::time::Instant::now();
        let config = &self.shared.config;
        let journal = self.journal().context("no journal")?;
        self.count_pending(journal)?;
        for unit in &config.units {
            let recent = journal.stream_events(&unit.id, 0, REPLAY_EVENTS)?;
            self.shared.events.preload(&unit.id, recent);
        }
        let department = Department::restore(&self.shared.settings, snapshot)?;
        let patients = department.patient_count();
        self.swap_in(department);
        // With the patients read meanwhile: an operator sees what a restart costs.
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(patients, seconds, "journal recovered; ready");
        Ok(())
    }

    /// This instance has just come to lead: memory becomes what the database
    /// holds under the new term (whatever an earlier leader committed).
    /// Blocking. Requests meanwhile get 503 `unavailable`.
    pub fn lead(&self) -> anyhow::Result<()> {
        self.set_health(Health::Starting);
        // Commands check health under the lock: once it has been taken and
        // released, none is between its check and its submission.
        drop(self.shared.state.lock());
        let journal = self.journal().context("no journal")?;
        let snapshot = journal.reload()?;
        self.restore(snapshot)
    }

    /// Stops serving: another instance leads, or may. Memory is kept but never
    /// served again before [`Service::lead`] rebuilds it.
    pub fn follow(&self) {
        self.set_health(Health::Follower);
    }

    /// Whether memory is rebuilt and served (false while starting, following
    /// or after a failure).
    pub fn is_serving(&self) -> bool {
        self.health() == Health::Ready
    }

    /// After a failure: once the disk takes writes again, memory becomes
    /// exactly what the journal holds (refused or half-applied commands are
    /// forgotten). Blocking. The department is rebuilt outside the lock;
    /// meanwhile every request gets 503 at once.
    pub fn reload(&self) -> anyhow::Result<()> {
        if self.health() != Health::Failed {
            // Rebuilding while commands run would drop what they commit meanwhile.
            return Ok(());
        }
        // Health is `Failed`, and commands check it under the lock: once this
        // lock has been taken and released, every command that changed memory
        // has queued its changes, ahead of the reload in the journal's queue.
        drop(self.shared.state.lock());
        let journal = self.journal().context("no journal")?;
        let snapshot = journal.reload()?;
        let department = Department::restore(&self.shared.settings, snapshot)?;
        self.swap_in(department);
        Ok(())
    }

    fn swap_in(&self, department: Department) {
        let old = {
            let mut state = self.shared.state.lock();
            state.scheduler_at = None;
            let old = std::mem::replace(&mut state.department, department);
            self.set_health(Health::Ready);
            old
        };
        // Freeing a large department takes a while: not under the lock.
        drop(old);
        self.wake_scheduler();
    }
}

#[cfg(test)]
mod tests;
