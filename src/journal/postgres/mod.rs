//! The PostgreSQL backend, for several instances against one database. The
//! writer thread and the reads use blocking connections with a deadline on
//! every answer ([`conn`]; the journal's writer is a thread and reads run on
//! blocking threads, as with SQLite); the lease keeper is a task (see [`lease`]).
//!
//! A write transaction commits only while this instance holds the lease under
//! the term it recovered with: the check is the transaction's last statement,
//! under a share lock on the lease row, so a takeover waits for it or it sees
//! the takeover and rolls back.

mod conn;
mod lease;
pub(crate) mod schema;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::backend::{Reads, Store};
use super::{
    from_millis, parse_json, recent_fact, HistoryEntry, JournalError, MessageEntry, MessageStatus,
    OutboxEntry, PatientSearch, ReportData, ReportFacts, StreamEvent, VisitRow, MAX_SEARCH_WORDS,
    RECENT_EVENTS,
};
use crate::domain::escalation::Alert;
use crate::domain::numbering::{ProtocolSequence, TicketCounter};
use crate::domain::patient::{document_key, search_key, Patient, Protocol};
use crate::domain::{
    BoardCall, Change, Channel, IdempotencyRecord, PatientFeed, RecentFact, Snapshot, UnitId,
    BOARD_CALLS,
};
pub(crate) use conn::Conn;
pub use lease::LeaseKeeper;
use lease::LeaseState;

/// How long the writer waits for one answer: the server cuts every
/// statement but COMMIT off at a lease, so an answer later than this is not
/// coming (a middlebox holds the connection). Past it the connection is
/// given up; a COMMIT given up that way steps this instance down.
pub(crate) fn writer_deadline(lease: Duration) -> Duration {
    lease.mul_f64(1.25)
}

/// The last statement of every write transaction, sent with the COMMIT
/// behind it: it divides by the number of lease rows this instance holds
/// under the term it recovered with, unexpired, share-locked so a takeover
/// waits for this transaction. None (fenced off) raises `division_by_zero`,
/// which aborts the transaction, and the COMMIT then rolls it back. It also
/// lifts the statement timeout for that COMMIT (SET LOCAL, without a round
/// trip of its own): a COMMIT cancelled while it waits for a synchronous
/// standby returns success, committed here but maybe not on the standby,
/// which must never be acknowledged.
const FENCE: &str = "SELECT set_config('statement_timeout', '0', true),
     1 / (SELECT count(*) FROM (
         SELECT 1 FROM lease
         WHERE id = 1 AND term = $1 AND holder = $2 AND expires_at > clock_timestamp()
         FOR SHARE) held)::int";

/// How long a read waits for one answer (one row of a long report).
const READ_DEADLINE: Duration = Duration::from_secs(30);
/// How long the snapshot a leader reads memory back from waits for one answer.
const SNAPSHOT_DEADLINE: Duration = Duration::from_secs(60);

/// How the snapshot and reports read: one consistent view.
const READ_ONLY: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

/// The settings every connection of the journal uses, the lease keeper's too.
pub(crate) fn settings(url: &str, lease: Duration) -> Result<tokio_postgres::Config, JournalError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| JournalError::Corrupt(format!("storage.postgres_url: {e}")))?;
    config
        .application_name("triagem")
        .connect_timeout(lease)
        // A database cut off (packets dropped) breaks the connection within
        // the lease, instead of TCP's retransmissions holding a call for minutes.
        .tcp_user_timeout(lease)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5));
    Ok(config)
}

/// Connects with [`settings`]; `deadline` bounds the handshake and each
/// answer after it.
pub(crate) fn connect(
    url: &str,
    lease: Duration,
    deadline: Option<Duration>,
) -> Result<Conn, JournalError> {
    let mut client = Conn::open(&settings(url, lease)?, writer_deadline(lease), deadline)?;
    // A writer paused inside a transaction would hold its row locks, and the
    // lease row's share lock, until its connection died: the server ends
    // such a transaction once the lease has run out.
    client.batch_execute(&format!(
        "SET idle_in_transaction_session_timeout = {}",
        lease.as_millis().max(1)
    ))?;
    Ok(client)
}

/// No statement of the writer may run longer than the lease: a write held up
/// in the database (a lock, a stalled server) fails instead of holding the
/// writer and every caller waiting on it past the time this instance may
/// lead. COMMIT is exempt (see `PgStore::commit`).
fn bound_statements(client: &mut Conn, lease: Duration) -> Result<(), JournalError> {
    client.batch_execute(&format!(
        "SET statement_timeout = {}",
        lease.as_millis().max(1)
    ))?;
    Ok(())
}

/// Creates the tables if the database is empty, and starts contending for
/// the lease on the current tokio runtime.
pub(crate) fn open(
    url: &str,
    lease: Duration,
    settings: &str,
) -> Result<(PgStore, PgReads, LeaseKeeper), JournalError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
        JournalError::Corrupt("the PostgreSQL journal needs a tokio runtime".into())
    })?;
    // Unbounded: the other instance may hold the migration lock a while.
    let mut client = connect(url, lease, None)?;
    schema::migrate(&mut client)?;
    client.set_deadline(Some(writer_deadline(lease)));
    bound_statements(&mut client, lease)?;
    let instance: String = client
        .query_one("SELECT value FROM counters WHERE name = 'instance'", &[])?
        .get(0);
    let holder = format!(
        "{}-{}",
        std::process::id(),
        hex::encode(rand::random::<[u8; 6]>())
    );
    let state = Arc::new(LeaseState::default());
    let keeper = LeaseKeeper::start(
        url.to_owned(),
        lease,
        holder.clone(),
        settings.to_owned(),
        state.clone(),
        &runtime,
    );
    let reader = connect(url, lease, Some(READ_DEADLINE))?;
    Ok((
        PgStore {
            url: url.to_owned(),
            lease,
            client: Some(client),
            statements: schema::Statements::watched_by(state.clone()),
            state,
            holder,
            term: None,
            unrecovered_since: None,
        },
        PgReads {
            url: url.to_owned(),
            lease,
            client: Mutex::new(Some(reader)),
            closed: AtomicBool::new(false),
            instance,
        },
        keeper,
    ))
}

/// The writer thread's side.
pub(crate) struct PgStore {
    url: String,
    lease: Duration,
    client: Option<Conn>,
    /// Prepared on `client`.
    statements: schema::Statements,
    state: Arc<LeaseState>,
    holder: String,
    /// The term memory was recovered under: commits carry it, and a newer
    /// term in the lease row fences them off.
    term: Option<u64>,
    /// Since when reading memory back has failed while leading, and under
    /// which term.
    unrecovered_since: Option<(u64, std::time::Instant)>,
}

impl PgStore {
    /// A leader that cannot read memory back (its own connections to the
    /// database broken, the lease keeper's well) would hold the lease and
    /// serve nobody for as long as that lasts: after a lease of failures it
    /// steps aside, and the other instance may lead.
    fn recovery_failed(&mut self) {
        let Some(term) = self.state.leading() else {
            self.unrecovered_since = None;
            return;
        };
        // Counted afresh in each term.
        let since = match self.unrecovered_since {
            Some((t, since)) if t == term => since,
            _ => {
                self.unrecovered_since
                    .insert((term, std::time::Instant::now()))
                    .1
            }
        };
        if since.elapsed() >= self.lease && self.state.step_aside() {
            self.unrecovered_since = None;
            tracing::error!(
                "stepping down: memory could not be read back from the database for a lease; \
                 the other instance may lead"
            );
        }
    }

    fn try_probe(&mut self) -> Result<(), JournalError> {
        // Watched like a commit: a takeover whose probe never answers must
        // not hold the lease without serving.
        let state = self.state.clone();
        let _writing = state.writing();
        match self.client()?.batch_execute("SELECT 1") {
            Ok(()) => Ok(()),
            // A connection left idle while following may have died with a
            // database restart or a pooler reset, unnoticed until used:
            // found here, it is replaced at once, not after a failed
            // takeover and another try a second later.
            Err(_) if self.client.as_ref().is_some_and(Conn::is_closed) => {
                self.client()?.batch_execute("SELECT 1")?;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn try_snapshot(&mut self) -> Result<Snapshot, JournalError> {
        let term = self.state.leading().ok_or(JournalError::NotLeader)?;
        // The first row of a large table may come only once the server has
        // sorted it: a longer wait than a write's.
        let client = self.client()?;
        let writing = client.set_deadline(Some(SNAPSHOT_DEADLINE));
        let snapshot = load_snapshot(client);
        client.set_deadline(writing);
        let snapshot = snapshot?;
        self.term = Some(term);
        self.state.recovered(term);
        Ok(snapshot)
    }

    fn client(&mut self) -> Result<&mut Conn, JournalError> {
        if self.client.as_ref().is_none_or(Conn::is_closed) {
            self.client = None;
            self.statements.clear();
            let mut client = connect(&self.url, self.lease, Some(writer_deadline(self.lease)))?;
            bound_statements(&mut client, self.lease)?;
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

impl Store for PgStore {
    /// Nothing until the commit: the group's rows are then written table by
    /// table with one statement each, which is where PostgreSQL's round
    /// trips are saved.
    fn stage(&mut self, _: bool, _: &[Change], _: usize) -> Result<(), JournalError> {
        Ok(())
    }

    /// A transaction that failed was dropped (rolled back) where it failed.
    fn rollback(&mut self) {}

    fn commit(&mut self, changes: &[&Change], receivers: usize) -> Result<(), JournalError> {
        let term = self.term.ok_or(JournalError::NotLeader)?;
        if self.state.leading() != Some(term) {
            return Err(JournalError::NotLeader);
        }
        // Watched by the lease keeper as well as bounded by the deadline:
        // a commit that never returns must not keep this instance leading.
        let state = self.state.clone();
        let _writing = state.writing();
        let holder = self.holder.clone();
        let segments = schema::segments(changes, receivers)?;
        let term_arg = term as i64;
        let mut steps = Vec::new();
        schema::queue(&segments, &mut steps);
        let fence = steps.len();
        steps.push(schema::Step {
            sql: FENCE.into(),
            params: vec![&term_arg, &holder],
        });
        // A connection that died while idle (a database restart, a failover
        // or a pooler cutting it) is found only when used: up to BEGIN
        // nothing that could commit has been sent, so the commit goes on,
        // once, on a new connection instead of failing. Not after a missed
        // deadline: that wait has been paid already.
        let mut again = true;
        let prepared = loop {
            self.client()?;
            let (Some(client), statements) = (self.client.as_mut(), &mut self.statements) else {
                unreachable!("connected above");
            };
            // BEGIN has its own round trip: a statement run outside a
            // transaction would commit on its own.
            let ready = statements
                .prepare_all(client, &steps)
                .and_then(|prepared| client.begin("BEGIN").map(|()| prepared));
            match ready {
                Ok(prepared) => break prepared,
                // The session's end comes as the server's FATAL, or as the
                // connection closed.
                Err(e) if again && !matches!(e, JournalError::NoAnswer(_)) => {
                    tracing::warn!(error = %e, "the journal's connection failed; committing on a new one");
                    again = false;
                    self.client = None;
                }
                Err(e) => return Err(e),
            }
        };
        let (Some(client), statements) = (self.client.as_mut(), &mut self.statements) else {
            unreachable!("connected above");
        };
        let pipeline: Vec<_> = prepared
            .iter()
            .zip(&steps)
            .map(|(statement, step)| (statement, step.params.as_slice()))
            .collect();
        let committed = match client.commit_pipelined(&pipeline, || statements.answered()) {
            Ok(()) => Ok(()),
            Err((at, JournalError::Postgres(e)))
                if at == fence && e.code() == Some(&SqlState::DIVISION_BY_ZERO) =>
            {
                Err(JournalError::NotLeader)
            }
            Err((_, e)) => Err(e),
        };
        if let Err(JournalError::OutcomeUnknown(why)) = &committed {
            // Memory may be read back only once that transaction has landed
            // or not, which only a new term settles (taking the lease waits
            // for its share lock on the lease row): no more commits and no
            // reload under this one.
            if state.abandon() {
                tracing::error!(term, error = %why,
                    "stepping down: the answer to a COMMIT was lost, and only a new term settles it");
            }
        }
        committed
    }

    fn probe(&mut self) -> Result<(), JournalError> {
        let probed = self.try_probe();
        if probed.is_err() {
            self.recovery_failed();
        }
        probed
    }

    /// Binds the term held now: everything committed under older terms is
    /// in (their commits either finished before the takeover or were fenced).
    fn snapshot(&mut self) -> Result<Snapshot, JournalError> {
        let snapshot = self.try_snapshot();
        match snapshot {
            Ok(_) => self.unrecovered_since = None,
            Err(_) => self.recovery_failed(),
        }
        snapshot
    }
}

/// Reads beside the writer, on a connection of their own.
pub(crate) struct PgReads {
    url: String,
    lease: Duration,
    client: Mutex<Option<Conn>>,
    /// Set by [`Reads::close`]: no new connection after it.
    closed: AtomicBool,
    /// Prefixes delivery ids (the database's, so every instance issues the same).
    instance: String,
}

impl PgReads {
    fn with<T>(
        &self,
        read: impl FnOnce(&mut Conn) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        let mut guard = self.client.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(JournalError::Unavailable);
        }
        if guard.as_ref().is_none_or(Conn::is_closed) {
            *guard = None;
            *guard = Some(connect(&self.url, self.lease, Some(READ_DEADLINE))?);
        }
        read(guard.as_mut().expect("connected above"))
    }
}

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

impl Reads for PgReads {
    fn location(&self) -> String {
        crate::config::without_password(&self.url)
    }

    /// No new connection after it: the process is ending.
    fn close(&self) {
        let mut guard = self.client.lock();
        self.closed.store(true, Ordering::Release);
        drop(guard.take());
    }

    fn history(&self, protocol: Protocol) -> Result<Vec<HistoryEntry>, JournalError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT at, event, actor, details FROM events WHERE protocol = $1 ORDER BY id",
                &[&(protocol.as_u64() as i64)],
            )
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(HistoryEntry {
                    at: from_millis(r.get(0))?,
                    event: r.get(1),
                    actor: r.get(2),
                    details: parse_json("details", r.get(3))?,
                })
            })
            .collect()
    }

    fn search(&self, search: &PatientSearch) -> Result<Vec<Protocol>, JournalError> {
        let mut sql = String::from("SELECT protocol FROM patients WHERE TRUE");
        let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
        let arg = |args: &mut Vec<Box<dyn ToSql + Sync>>, v: Box<dyn ToSql + Sync>| {
            args.push(v);
            format!("${}", args.len())
        };
        if let Some(unit) = &search.unit {
            let n = arg(&mut args, Box::new(unit.to_string()));
            sql.push_str(&format!(" AND unit = {n}"));
        }
        if !search.statuses.is_empty() {
            let statuses: Vec<String> = search
                .statuses
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect();
            let n = arg(&mut args, Box::new(statuses));
            sql.push_str(&format!(" AND status = ANY({n})"));
        }
        if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let t = arg(&mut args, Box::new(q.to_uppercase()));
            let since = arg(&mut args, Box::new(search.tickets_since.timestamp_millis()));
            let mut any = vec![format!("(ticket = {t} AND admitted_at >= {since})")];
            if let Ok(p) = Protocol::parse(q) {
                let n = arg(&mut args, Box::new(p.as_u64() as i64));
                any.push(format!("protocol = {n}"));
            }
            let document = document_key(q);
            if !document.is_empty() {
                let n = arg(&mut args, Box::new(document));
                any.push(format!("document_key = {n}"));
            }
            // Every word of the query somewhere in the name, accents and case aside.
            let likes: Vec<String> = search_key(q)
                .split(' ')
                .take(MAX_SEARCH_WORDS)
                .map(|w| {
                    let pattern = format!(
                        "%{}%",
                        w.replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    );
                    let n = arg(&mut args, Box::new(pattern));
                    format!("name_key LIKE {n} ESCAPE '\\'")
                })
                .collect();
            if !likes.is_empty() {
                any.push(format!("({})", likes.join(" AND ")));
            }
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        let n = arg(&mut args, Box::new(search.limit as i64));
        let o = arg(&mut args, Box::new(search.offset as i64));
        sql.push_str(&format!(
            " ORDER BY arrived_at DESC, protocol DESC LIMIT {n} OFFSET {o}"
        ));
        let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|a| a.as_ref()).collect();
        let rows = self.with(|c| c.query(&sql, &params))?;
        rows.into_iter()
            .map(|r| {
                let n: i64 = r.get(0);
                Protocol::from_u64(n as u64)
                    .ok_or_else(|| JournalError::Corrupt(format!("protocol {n}")))
            })
            .collect()
    }

    fn outbox_next(&self, receiver: usize) -> Result<Option<OutboxEntry>, JournalError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT id, alert_id, event, alert, attempts FROM outbox
                 WHERE receiver = $1 AND state = 'pending' ORDER BY id LIMIT 1",
                &[&(receiver as i64)],
            )
        })?;
        row.map(|r| {
            let id: i64 = r.get(0);
            Ok(OutboxEntry {
                id: id as u64,
                delivery_id: format!("{}-{id}", self.instance),
                receiver,
                alert_id: r.get::<_, i64>(1) as u64,
                event: r.get(2),
                alert: parse_json("outbox alert", r.get(3))?,
                attempts: r.get::<_, i64>(4) as u32,
            })
        })
        .transpose()
    }

    fn outbox_pending(&self) -> Result<u64, JournalError> {
        let n: i64 = self.with(|c| {
            Ok(
                c.query_one("SELECT COUNT(*) FROM outbox WHERE state = 'pending'", &[])?
                    .get(0),
            )
        })?;
        Ok(count(n))
    }

    /// On a connection of its own, so a long report holds up no other read.
    fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        unit: Option<&UnitId>,
    ) -> Result<ReportData, JournalError> {
        let mut c = connect(&self.url, self.lease, Some(READ_DEADLINE))?;
        let unit = unit.map(|u| u.to_string());
        let args: [&(dyn ToSql + Sync); 3] =
            [&from.timestamp_millis(), &to.timestamp_millis(), &unit];
        c.transaction(READ_ONLY, |tx| read_report(tx, &args))
    }

    fn message_next(&self, channel: Channel) -> Result<Option<MessageEntry>, JournalError> {
        let row = self.with(|c| {
            c.query_opt(
                "SELECT id, body, attempts FROM messages
                 WHERE channel = $1 AND state = 'pending' ORDER BY id LIMIT 1",
                &[&channel.as_str()],
            )
        })?;
        row.map(|r| {
            let id: i64 = r.get(0);
            Ok(MessageEntry {
                id: id as u64,
                delivery_id: format!("{}-m{id}", self.instance),
                message: parse_json("message", r.get(1))?,
                attempts: r.get::<_, i64>(2) as u32,
            })
        })
        .transpose()
    }

    fn messages_of(&self, protocol: Protocol) -> Result<Vec<MessageStatus>, JournalError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, channel, event, state, attempts, created_at FROM messages
                 WHERE protocol = $1 ORDER BY id",
                &[&(protocol.as_u64() as i64)],
            )
        })?;
        rows.into_iter()
            .map(|r| {
                let id: i64 = r.get(0);
                Ok(MessageStatus {
                    delivery_id: format!("{}-m{id}", self.instance),
                    channel: r.get(1),
                    event: r.get(2),
                    state: r.get(3),
                    attempts: r.get::<_, i64>(4) as u32,
                    created_at: from_millis(r.get(5))?,
                })
            })
            .collect()
    }

    fn messages_pending(&self, channel: Channel) -> Result<u64, JournalError> {
        let n: i64 = self.with(|c| {
            Ok(c.query_one(
                "SELECT COUNT(*) FROM messages WHERE channel = $1 AND state = 'pending'",
                &[&channel.as_str()],
            )?
            .get(0))
        })?;
        Ok(count(n))
    }

    fn stream_events(
        &self,
        unit: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>, JournalError> {
        let rows = self.with(|c| {
            c.query(
                "SELECT id, display FROM (
                     SELECT id, display FROM events
                     WHERE unit = $1 AND id > $2 AND display IS NOT NULL
                     ORDER BY id DESC LIMIT $3) last
                 ORDER BY id",
                &[&unit, &(after as i64), &(limit as i64)],
            )
        })?;
        rows.into_iter()
            .map(|r| {
                Ok(StreamEvent {
                    id: r.get::<_, i64>(0) as u64,
                    display: parse_json("display", r.get(1))?,
                })
            })
            .collect()
    }
}

/// A report's rows, in a read-only transaction.
fn read_report(tx: &mut Conn, args: &[&(dyn ToSql + Sync); 3]) -> Result<ReportData, JournalError> {
    let visits = tx
        .query(
            "SELECT unit, arrived_at, first_triaged_at, colour, classified_max, call_at,
                    call_colour, call_clock_start, call_max, status, closed_at, outcome,
                    leave_reason
             FROM visits WHERE arrived_at >= $1 AND arrived_at < $2
                  AND ($3::text IS NULL OR unit = $3)",
            args,
        )?
        .into_iter()
        .map(|r| {
            VisitRow {
                unit: r.get(0),
                arrived_at: r.get(1),
                first_triaged_at: r.get(2),
                colour: r.get(3),
                classified_max: r.get(4),
                call_at: r.get(5),
                call_colour: r.get(6),
                call_clock_start: r.get(7),
                call_max: r.get(8),
                status: r.get(9),
                closed_at: r.get(10),
                outcome: r.get(11),
                leave_reason: r.get(12),
            }
            .facts()
        })
        .collect::<Result<Vec<ReportFacts>, _>>()?;
    let alerts = tx
        .query(
            "SELECT a.body FROM alerts a JOIN visits v ON v.protocol = a.protocol
             WHERE v.arrived_at >= $1 AND v.arrived_at < $2
                   AND ($3::text IS NULL OR v.unit = $3)",
            args,
        )?
        .into_iter()
        .map(|r| parse_json("alert", r.get(0)))
        .collect::<Result<Vec<Alert>, _>>()?;
    Ok((visits, alerts))
}

/// Everything recovery needs, in one read-only snapshot of the database.
fn load_snapshot(client: &mut Conn) -> Result<Snapshot, JournalError> {
    client.transaction(READ_ONLY, read_snapshot)
}

fn read_snapshot(tx: &mut Conn) -> Result<Snapshot, JournalError> {
    // A large journal may take longer to read than a write may take (the
    // client's deadline is on each row, not the whole).
    tx.batch_execute("SET LOCAL statement_timeout = 0")?;
    let patients = tx
        .query("SELECT body FROM patients ORDER BY protocol", &[])?
        .into_iter()
        .map(|r| parse_json::<Box<Patient>>("patient", r.get(0)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut snapshot = Snapshot {
        patients: PatientFeed::from(patients),
        ..Snapshot::default()
    };
    let counter = |tx: &mut Conn, name: &str| -> Result<Option<String>, JournalError> {
        Ok(tx
            .query_opt("SELECT value FROM counters WHERE name = $1", &[&name])?
            .map(|r| r.get(0)))
    };
    snapshot.sequence = counter(tx, "sequence")?
        .map(|s| parse_json::<ProtocolSequence>("sequence", &s))
        .transpose()?;
    for r in tx.query(
        "SELECT name, value FROM counters WHERE name LIKE 'tickets:%'",
        &[],
    )? {
        let name: &str = r.get(0);
        snapshot.tickets.push((
            name.trim_start_matches("tickets:").to_owned(),
            parse_json::<TicketCounter>("tickets", r.get(1))?,
        ));
    }
    for r in tx.query(
        "SELECT key, created_at, protocol, response FROM idempotency",
        &[],
    )? {
        let protocol = Protocol::from_u64(r.get::<_, i64>(2) as u64)
            .ok_or_else(|| JournalError::Corrupt("idempotency protocol".into()))?;
        snapshot.idempotency.push(IdempotencyRecord {
            key: r.get(0),
            created_at: from_millis(r.get(1))?,
            protocol,
            response: r.get(3),
        });
    }
    let units: Vec<String> = tx
        .query(
            "SELECT DISTINCT unit FROM events WHERE event IN ('called', 'recalled')",
            &[],
        )?
        .into_iter()
        .map(|r| r.get(0))
        .collect();
    for unit in units {
        let mut calls: Vec<BoardCall> = tx
            .query(
                "SELECT details FROM events WHERE unit = $1 AND event IN ('called', 'recalled')
                 ORDER BY id DESC LIMIT $2",
                &[&unit, &(BOARD_CALLS as i64)],
            )?
            .into_iter()
            .map(|r| parse_json::<BoardCall>("call", r.get(0)))
            .collect::<Result<_, _>>()?;
        calls.reverse();
        snapshot
            .calls
            .extend(calls.into_iter().map(|c| (unit.clone(), c)));
    }
    for r in tx.query("SELECT body FROM alerts ORDER BY id", &[])? {
        snapshot.alerts.push(parse_json("alert", r.get(0))?);
    }
    // The largest id ever used, also if purged since.
    let mut last_id = |table: &str, name: &str| -> Result<u64, JournalError> {
        let n: i64 = tx
            .query_one(
                &format!(
                    "SELECT GREATEST(
                         (SELECT COALESCE(MAX(id), 0) FROM {table}),
                         (SELECT COALESCE(MAX(value::bigint), 0) FROM counters WHERE name = $1))"
                ),
                &[&name],
            )?
            .get(0);
        Ok(count(n))
    };
    snapshot.last_event_id = last_id("events", "last_event_id")?;
    snapshot.last_alert_id = last_id("alerts", "last_alert_id")?;
    let secret = counter(tx, "check_secret")?
        .ok_or_else(|| JournalError::Corrupt("no check secret".into()))?;
    snapshot.check_secret =
        hex::decode(secret).map_err(|e| JournalError::Corrupt(format!("check secret: {e}")))?;
    snapshot.recent = load_recent(tx)?;
    Ok(snapshot)
}

/// The recent calls and entries wait estimates learn from, oldest first.
fn load_recent(tx: &mut Conn) -> Result<Vec<(String, DateTime<Utc>, RecentFact)>, JournalError> {
    let rows = tx.query(
        "SELECT unit, at, event, details FROM (
             SELECT id, unit, at, event, details FROM events
             WHERE event IN ('admitted', 'triaged', 'called')
             ORDER BY id DESC LIMIT $1) last
         ORDER BY id",
        &[&RECENT_EVENTS],
    )?;
    let mut out = Vec::new();
    for r in rows {
        if let Some(fact) = recent_fact(r.get(2), r.get(3))? {
            out.push((r.get(0), from_millis(r.get(1))?, fact));
        }
    }
    Ok(out)
}
