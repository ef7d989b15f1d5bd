//! The leader lease: one row with a term, a holder and an expiry on the
//! server's clock. The holder renews it every lease/3; a follower takes it
//! (term + 1) once it has expired. A leader that has not renewed by 90 % of
//! the lease since its last successful renewal was sent steps down on its own
//! clock, before the server would let anybody else in.
//!
//! The lease alone cannot stop a paused or partitioned leader from writing
//! once it wakes: every write transaction also checks the term it was given
//! under a share lock on the row (see `PgStore::commit`), so a takeover and
//! an old leader's commit are serialised and the old commit fails.
//!
//! Runs as a task on the runtime that opened the journal, with timeouts on
//! every round trip, so a hung connection cannot keep it from stepping down.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_postgres::types::Type;
use tokio_util::sync::CancellationToken;

use crate::journal::Role;

/// What the writer and the keeper share.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    /// What the writer reads before each commit: the term held and until when.
    held: Mutex<Held>,
    /// Since when the commit under way has waited on its last answer.
    waiting_since: Mutex<Option<Instant>>,
    /// Wakes the keeper when the journal stepped down on its own.
    stepped_down: Notify,
}

/// A commit under way (see [`LeaseState::writing`]).
pub(crate) struct Writing<'a>(&'a LeaseState);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        *self.0.waiting_since.lock() = None;
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Held {
    term: u64,
    /// While leading: when to have stepped down by.
    until: Option<Instant>,
    /// The term memory was last read back under (see `PgStore::snapshot`).
    recovered: Option<u64>,
    /// The last term stepped down from: never held again, even if a renewal
    /// sent before the step-down answers after it.
    abandoned: Option<u64>,
    /// Stepped aside, unable to read memory back: the other instance takes
    /// an expired lease first, until memory is read back.
    yielding: bool,
}

impl LeaseState {
    /// The term, while this instance leads and its lease has time left.
    pub(crate) fn leading(&self) -> Option<u64> {
        let held = *self.held.lock();
        held.until
            .filter(|until| Instant::now() < *until)
            .map(|_| held.term)
    }

    /// Leading, with time left, under the term memory was read back with:
    /// memory recovered under an older term may miss another leader's writes.
    pub(crate) fn serving(&self) -> bool {
        let held = *self.held.lock();
        held.until.is_some_and(|until| Instant::now() < until) && held.recovered == Some(held.term)
    }

    pub(crate) fn recovered(&self, term: u64) {
        let mut held = self.held.lock();
        held.recovered = Some(term);
        held.yielding = false;
    }

    /// Steps down, and lets the other instance take the lease first.
    pub(crate) fn step_aside(&self) -> bool {
        let was = self.abandon();
        if was {
            self.held.lock().yielding = true;
        }
        was
    }

    fn yielding(&self) -> bool {
        self.held.lock().yielding
    }

    /// Marks a commit under way until the guard is dropped.
    pub(crate) fn writing(&self) -> Writing<'_> {
        *self.waiting_since.lock() = Some(Instant::now());
        Writing(self)
    }

    /// A statement of the commit under way was answered: it makes progress.
    pub(crate) fn progressed(&self) {
        let mut since = self.waiting_since.lock();
        if since.is_some() {
            *since = Some(Instant::now());
        }
    }

    /// Whether the commit under way has waited on one answer from the
    /// database for longer than `limit`.
    fn writer_stuck(&self, limit: Duration) -> bool {
        self.waiting_since
            .lock()
            .is_some_and(|since| since.elapsed() > limit)
    }

    fn until(&self) -> Option<Instant> {
        self.held.lock().until
    }

    /// Leads under `term` until `until`; false for a term stepped down from.
    fn hold(&self, term: u64, until: Instant) -> bool {
        let mut held = self.held.lock();
        if held.abandoned.is_some_and(|a| term <= a) {
            return false;
        }
        held.term = term;
        held.until = Some(until);
        true
    }

    /// Stops leading; true if it was. The lease is held again only under a
    /// new term.
    fn drop_lease(&self) -> bool {
        let mut held = self.held.lock();
        let was = held.until.take().is_some();
        if was {
            held.abandoned = Some(held.term);
        }
        was
    }

    /// [`Self::drop_lease`] by the journal itself: the keeper is woken to
    /// announce it (it would otherwise wait on a deadline now gone, and the
    /// service would go on as leader until a round trip answered).
    pub(crate) fn abandon(&self) -> bool {
        let was = self.drop_lease();
        if was {
            self.stepped_down.notify_one();
        }
        was
    }
}

/// The running keeper; dropping it does not stop it, [`LeaseKeeper::shutdown`] does.
pub struct LeaseKeeper {
    state: Arc<LeaseState>,
    role: watch::Receiver<Role>,
    step_down: Arc<Notify>,
    stop: CancellationToken,
    released: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
    settings_differ: Arc<AtomicBool>,
}

impl LeaseKeeper {
    pub(crate) fn start(
        url: String,
        lease: Duration,
        holder: String,
        settings: String,
        state: Arc<LeaseState>,
        runtime: &tokio::runtime::Handle,
    ) -> Self {
        let (role_tx, role) = watch::channel(Role {
            leader: false,
            term: 0,
        });
        let step_down = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let (released_tx, released) = std::sync::mpsc::channel();
        let settings_differ = Arc::new(AtomicBool::new(false));
        let keeper = Keeper {
            url,
            lease,
            stamp: format!("{holder} {settings}"),
            holder,
            settings,
            state: state.clone(),
            role: role_tx,
            step_down: step_down.clone(),
            stop: stop.clone(),
            settings_differ: settings_differ.clone(),
            warned: Mutex::new(None),
        };
        runtime.spawn(async move {
            keeper.run().await;
            let _ = released_tx.send(());
        });
        Self {
            state,
            role,
            step_down,
            stop,
            released: Mutex::new(Some(released)),
            settings_differ,
        }
    }

    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Whether the leader, as last seen while following, runs with other
    /// shared settings than this instance's (see [`Keeper::compare`]).
    pub fn settings_differ(&self) -> bool {
        self.settings_differ.load(Ordering::Relaxed)
    }

    /// Whether the lease is held now by its own deadline (monotonic clock),
    /// even before the keeper task has run to announce that it ran out (a
    /// process resumed after a pause answers its queued requests first).
    pub fn holds(&self) -> bool {
        self.state.leading().is_some()
    }

    /// [`LeaseKeeper::holds`], under the term memory was read back with.
    pub fn serving(&self) -> bool {
        self.state.serving()
    }

    /// Stops leading now (a commit was fenced off); the keeper contends again.
    pub fn step_down(&self) {
        self.step_down.notify_one();
    }

    /// Stops the keeper, which gives the lease up if it holds it, so a
    /// follower need not wait for it to expire. Waits a moment for that.
    pub fn shutdown(&self) {
        self.stop.cancel();
        if let Some(released) = self.released.lock().take() {
            let _ = released.recv_timeout(Duration::from_secs(2));
        }
    }
}

struct Keeper {
    url: String,
    lease: Duration,
    holder: String,
    /// This instance's `Config::shared_settings`.
    settings: String,
    /// What it writes beside the lease it takes: holder, space, settings.
    stamp: String,
    state: Arc<LeaseState>,
    role: watch::Sender<Role>,
    step_down: Arc<Notify>,
    stop: CancellationToken,
    settings_differ: Arc<AtomicBool>,
    /// The leader's settings last warned about, so a warning is logged once.
    warned: Mutex<Option<String>>,
}

/// What one round trip learned.
struct Seen {
    /// The term held after it, if this instance holds the lease.
    leading: Option<u64>,
    /// The lease's term.
    term: u64,
    /// While following: the holder's settings, if it wrote them.
    leader_settings: Option<String>,
}

impl Keeper {
    fn tick(&self) -> Duration {
        self.lease / 3
    }

    async fn run(self) {
        let mut client: Option<tokio_postgres::Client> = None;
        // The last round trip timed out: its effect on the row is unknown.
        let mut uncertain = false;
        let mut timeouts = 0;
        // The last round trip's time (a timed-out one counts as the budget).
        let mut round_trip = Duration::ZERO;
        let mut next = Instant::now();
        loop {
            let until = self.state.until();
            tokio::select! {
                // The deadline first: a renewal that is overdue too must
                // never put stepping down off (select! would pick at random).
                biased;
                _ = sleep_until(until) => {
                    self.lose("the lease could not be renewed in time");
                    continue;
                }
                _ = self.stop.cancelled() => {
                    if let (Some(c), Some(term)) = (&client, self.state.leading()) {
                        self.state.drop_lease();
                        let term_arg = term as i64;
                        let args: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
                            [(&term_arg, Type::INT8), (&self.holder, Type::TEXT)];
                        let release = c.query_typed(
                            "UPDATE lease SET expires_at = '-infinity'
                             WHERE id = 1 AND term = $1 AND holder = $2",
                            &args,
                        );
                        match tokio::time::timeout(self.tick(), release).await {
                            Ok(Ok(_)) => tracing::info!(term, "lease given up"),
                            _ => tracing::warn!(term, "could not give the lease up; it will expire"),
                        }
                    }
                    return;
                }
                _ = self.step_down.notified() => {
                    self.lose("a write was fenced off: another instance holds a newer term");
                    continue;
                }
                _ = self.state.stepped_down.notified() => {
                    // Logged by the journal, with its reason.
                    self.lose("the journal stepped down");
                    continue;
                }
                _ = tokio::time::sleep_until(next) => {}
            }
            next = Instant::now() + self.tick();
            if client
                .as_ref()
                .is_none_or(tokio_postgres::Client::is_closed)
            {
                client = self.connect().await;
            }
            let Some(c) = &client else { continue };
            // A commit that has waited on the database for a lease and a half
            // would keep every request waiting while this instance renewed on
            // a connection of its own: it neither renews nor takes the lease
            // then, so the other instance leads. The writer's own deadline on
            // each answer (1.25 leases) ends such a commit first; this is the
            // second line. The server cuts each statement but COMMIT off at a
            // lease, so a long purge answering statement after statement is
            // not taken for a stall.
            let stuck = self.state.writer_stuck(self.lease.mul_f64(1.5));
            if stuck && self.state.leading().is_some() {
                self.lose("a commit has waited on the database for over a lease");
            }
            let sent = Instant::now();
            let leading = self.state.leading();
            // A link whose round trip takes over half the budget serves
            // badly and may not keep the lease, and an instance that could
            // not read memory back serves nobody: it lets the other take an
            // expired lease first, taking it only a tick and a half later
            // (then, with nobody else, it leads all the same).
            let defer = if round_trip > self.tick() / 2 || self.state.yielding() {
                self.tick().mul_f64(1.5)
            } else {
                Duration::ZERO
            };
            let attempt = self.attempt(c, leading, uncertain || stuck, defer);
            match tokio::time::timeout(self.budget(self.tick()), attempt).await {
                Ok(Ok(seen)) => {
                    uncertain = false;
                    timeouts = 0;
                    round_trip = sent.elapsed();
                    self.saw(seen, leading, sent);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot reach the lease"),
                Err(_) => {
                    tracing::warn!("the lease did not answer in time");
                    round_trip = self.tick();
                    // The round trip may have renewed or taken the lease
                    // unseen: until one answers in time, this instance only
                    // reads it, or a link too slow for the budget would
                    // retake it at every tick, a new term each time, and
                    // nobody would lead.
                    uncertain = true;
                    // A new connection, not one that may stay silent for good
                    // (bytes lost in a middlebox): at once while leading (the
                    // next renewal would queue behind the lost answer and miss
                    // the deadline too); else at a second timeout in a row, as
                    // on a slow link a handshake costs several round trips.
                    timeouts += 1;
                    if leading.is_some() || timeouts >= 2 {
                        client = None;
                        timeouts = 0;
                    }
                }
            }
        }
    }

    /// `limit`, cut to the time left before stepping down while leading: a
    /// round trip that hangs must not keep the keeper past its deadline.
    fn budget(&self, limit: Duration) -> Duration {
        match self.state.until() {
            Some(until) => limit.min(until.saturating_duration_since(Instant::now())),
            None => limit,
        }
    }

    async fn connect(&self) -> Option<tokio_postgres::Client> {
        let mut config = match super::settings(&self.url, self.lease) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot connect for the lease");
                return None;
            }
        };
        let connect = config
            .application_name("triagem-lease")
            .connect(tokio_postgres::NoTls);
        match tokio::time::timeout(self.budget(self.lease), connect).await {
            Ok(Ok((client, connection))) => {
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!(error = %e, "lease connection closed");
                    }
                });
                Some(client)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot connect for the lease");
                None
            }
            Err(_) => {
                tracing::warn!("connecting for the lease timed out");
                None
            }
        }
    }

    /// Renews the lease held, or takes it once it has been expired for
    /// `defer` (a new term); only reads it when `read_only`. Not its own
    /// unexpired lease after a step-down: a slow instance retook it at once,
    /// over and over, and the quick one never could. One round trip each
    /// (typed statements, not prepared first), so the budget of a tick holds
    /// a link twice as slow.
    async fn attempt(
        &self,
        c: &tokio_postgres::Client,
        leading: Option<u64>,
        read_only: bool,
        defer: Duration,
    ) -> Result<Seen, tokio_postgres::Error> {
        let defer_ms = defer.as_secs_f64() * 1000.0;
        let ms = self.lease.as_secs_f64() * 1000.0;
        if let Some(term) = leading {
            let renewed = c
                .query_typed_opt(
                    "UPDATE lease SET expires_at = clock_timestamp() + $3 * interval '1 millisecond'
                     WHERE id = 1 AND term = $1 AND holder = $2 RETURNING term",
                    &[
                        (&(term as i64), Type::INT8),
                        (&self.holder, Type::TEXT),
                        (&ms, Type::FLOAT8),
                    ],
                )
                .await?;
            if renewed.is_some() {
                return Ok(Seen {
                    leading: Some(term),
                    term,
                    leader_settings: None,
                });
            }
        }
        // Takes the lease if it may, and reads it as it was, in one round
        // trip: the statement's own reading is the row before the update.
        let row = c
            .query_typed_one(
                "WITH taken AS (
                     UPDATE lease SET term = term + 1, holder = $1,
                         expires_at = clock_timestamp() + $2 * interval '1 millisecond',
                         settings = $3
                     WHERE id = 1 AND NOT $4 AND $5
                         AND expires_at < clock_timestamp() - $6 * interval '1 millisecond'
                     RETURNING term)
                 SELECT (SELECT term FROM taken), term, holder, settings FROM lease WHERE id = 1",
                &[
                    (&self.holder, Type::TEXT),
                    (&ms, Type::FLOAT8),
                    (&self.stamp, Type::TEXT),
                    (&read_only, Type::BOOL),
                    (&leading.is_none(), Type::BOOL),
                    (&defer_ms, Type::FLOAT8),
                ],
            )
            .await?;
        if let Some(term) = row.get::<_, Option<i64>>(0) {
            return Ok(Seen {
                leading: Some(term as u64),
                term: term as u64,
                leader_settings: None,
            });
        }
        let (term, holder, stamp): (i64, String, String) = (row.get(1), row.get(2), row.get(3));
        // Written by the holder itself, not left by an earlier one.
        let leader_settings = stamp
            .strip_prefix(holder.as_str())
            .and_then(|rest| rest.strip_prefix(' '))
            .filter(|_| !holder.is_empty())
            .map(str::to_owned);
        Ok(Seen {
            leading: None,
            term: term as u64,
            leader_settings,
        })
    }

    /// Says once, while following, which shared settings differ from the
    /// leader's: after a takeover this instance would apply its own to the
    /// same patients (other targets, ladder, tokens or check-code secret).
    fn compare(&self, leader: Option<&str>) {
        let Some(leader) = leader else {
            // A leader that wrote none (an older build): nothing to say.
            self.settings_differ.store(false, Ordering::Relaxed);
            return;
        };
        let differing = crate::config::Config::differing_sections(&self.settings, leader);
        self.settings_differ
            .store(!differing.is_empty(), Ordering::Relaxed);
        let mut warned = self.warned.lock();
        if differing.is_empty() {
            if warned.take().is_some() {
                tracing::info!("the leader's settings are now the same as this instance's");
            }
        } else if warned.as_deref() != Some(leader) {
            tracing::warn!(
                sections = %differing.join(", "),
                "this instance's config differs from the leader's: after a takeover it would \
                 apply its own to the same patients; both must have the same (docs/ha.md)"
            );
            *warned = Some(leader.to_owned());
        }
    }

    fn saw(&self, seen: Seen, before: Option<u64>, sent: Instant) {
        if seen.leading.is_some() {
            self.settings_differ.store(false, Ordering::Relaxed);
        } else {
            self.compare(seen.leader_settings.as_deref());
        }
        // Counted from when the renewal was sent, and short of the server's
        // expiry, which was set after that.
        let held = seen
            .leading
            .filter(|term| self.state.hold(*term, sent + self.lease.mul_f64(0.9)));
        match held {
            Some(term) => {
                if before != Some(term) {
                    tracing::info!(term, "leading: this instance holds the lease");
                    self.role.send_replace(Role { leader: true, term });
                }
            }
            None => {
                if before.is_some() {
                    self.lose("another instance holds the lease");
                }
                self.role.send_if_modified(|r| {
                    let changed = r.term != seen.term || r.leader;
                    *r = Role {
                        leader: false,
                        term: seen.term,
                    };
                    changed
                });
            }
        }
    }

    fn lose(&self, why: &str) {
        if self.state.drop_lease() {
            tracing::warn!(reason = why, "stepping down: following");
        }
        self.role.send_if_modified(|r| {
            let was = r.leader;
            r.leader = false;
            was
        });
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A term stepped down from (a lost COMMIT answer) is not held again by
    /// a renewal that was already on its way: memory must not be read back
    /// under it. A later term is held as usual.
    #[test]
    fn a_term_stepped_down_from_is_never_held_again() {
        let state = LeaseState::default();
        let until = Instant::now() + Duration::from_secs(5);
        assert!(state.hold(7, until));
        assert_eq!(state.leading(), Some(7));
        assert!(state.abandon());
        assert!(!state.abandon(), "once");
        assert!(!state.hold(7, until), "the renewal that answers late");
        assert_eq!(state.leading(), None);
        assert!(state.hold(8, until));
        assert_eq!(state.leading(), Some(8));
    }

    /// The journal stepping down on its own (a lost COMMIT answer, a leader
    /// unable to read memory back) wakes the keeper, which announces it: it
    /// waited on a deadline the step-down had removed, and the service went
    /// on as leader until a round trip of the keeper's answered.
    #[tokio::test]
    async fn the_journal_stepping_down_wakes_the_keeper() {
        let state = LeaseState::default();
        assert!(!state.abandon(), "not leading: nothing to announce");
        assert!(state.hold(3, Instant::now() + Duration::from_secs(5)));
        assert!(state.step_aside());
        tokio::time::timeout(Duration::from_secs(1), state.stepped_down.notified())
            .await
            .expect("woken");
        assert!(state.yielding());
        state.recovered(4);
        assert!(!state.yielding(), "memory read back: no longer yields");
    }

    /// The watch on the writer counts from the last answer, not from the
    /// start of the commit: a purge of many statements, each answered within
    /// the server's limit, is not taken for a stuck writer (judged by the
    /// whole commit, a healthy leader stepped down at every such purge).
    #[tokio::test(start_paused = true)]
    async fn a_commit_that_makes_progress_is_not_stuck() {
        let state = LeaseState::default();
        let limit = Duration::from_secs(3);
        {
            let _writing = state.writing();
            for _ in 0..10 {
                tokio::time::advance(Duration::from_millis(2_900)).await;
                state.progressed();
            }
            assert!(!state.writer_stuck(limit), "29 s of answers, none late");
            tokio::time::advance(Duration::from_millis(3_100)).await;
            assert!(state.writer_stuck(limit), "no answer for 3.1 s");
        }
        assert!(!state.writer_stuck(limit), "no commit under way");
        state.progressed();
        assert!(
            !state.writer_stuck(limit),
            "an answer outside a commit starts none"
        );
    }
}
