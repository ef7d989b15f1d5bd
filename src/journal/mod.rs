//! The durable journal: one SQLite database in WAL mode with `synchronous=FULL`,
//! written by a single thread that commits whatever commands queued up while
//! the previous fsync ran (group commit). A command's sender is answered only
//! after the transaction holding it is on disk.
//!
//! After a failed commit the writer refuses every later command until
//! [`Journal::reload`] proves the disk writable again and hands back the
//! committed state, so memory never runs ahead of what a restart would see.

mod identity;
mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::domain::escalation::Alert;
use crate::domain::numbering::{ProtocolSequence, TicketCounter};
use crate::domain::patient::{
    document_key, search_key, FirstCall, LeaveReason, Outcome, Patient, Protocol, Status,
};
use crate::domain::{BoardCall, Change, IdempotencyRecord, PatientFeed, Snapshot, BOARD_CALLS};
use crate::domain::{Channel, ColourId, Message, RecentFact, UnitId};

pub const DB_FILE: &str = "triagem.sqlite3";
/// Upper bound on commands in one transaction, so one commit's latency stays bounded.
const MAX_BATCH: usize = 4096;
/// How long after its first command a commit smaller than the one before
/// may wait for more: a fraction of one fsync.
const LINGER: Duration = Duration::from_micros(500);

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error(
        "{path} is not a Triagem journal: {why}. Nothing was written to it; \
         move it aside, or point storage.data_dir at the journal's directory"
    )]
    NotOurs { path: PathBuf, why: String },
    #[error(
        "the journal is damaged ({0}); Triagem writes nothing more to it: restore it \
         from a backup, or move it aside to start an empty journal"
    )]
    Damaged(rusqlite::Error),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("journal record cannot be read: {0}")]
    Corrupt(String),
    #[error("the journal is not accepting writes until it recovers from a failed commit")]
    Unavailable,
    #[error("the journal writer has stopped")]
    Stopped,
}

impl From<rusqlite::Error> for JournalError {
    /// Damage is told apart from other database errors wherever it is met,
    /// so start-up says what the operator has to do.
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
        match e.sqlite_error_code() {
            Some(DatabaseCorrupt | NotADatabase) => Self::Damaged(e),
            _ => Self::Sqlite(e),
        }
    }
}

/// One entry of `GET /patients/{protocol}/history`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub event: String,
    pub actor: String,
    /// What the event recorded (colour, room, outcome, …); always an object.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Called on the writer thread after each successful commit, with its duration
/// in seconds and the changes it made durable, in commit order. Event streams,
/// the webhook outbox and metrics hang off this, so nobody hears of a change
/// before it is on disk.
pub type CommitObserver = Box<dyn Fn(f64, &[&Change]) + Send>;

/// How the journal is opened.
#[derive(Default)]
pub struct JournalOptions {
    /// How many webhook receivers each alert notification is queued for.
    pub receivers: usize,
    pub observer: Option<CommitObserver>,
}

/// The most words of a name search that are looked for.
const MAX_SEARCH_WORDS: usize = 8;

/// What a patient search asks for (`GET /patients`).
#[derive(Debug, Clone, Default)]
pub struct PatientSearch {
    /// A protocol number, a ticket of today, a document, or words of the name.
    pub q: Option<String>,
    pub unit: Option<UnitId>,
    /// Any of these statuses; empty for any.
    pub statuses: Vec<Status>,
    /// Tickets restart each local day: only those issued since this instant match.
    pub tickets_since: DateTime<Utc>,
    pub limit: usize,
}

/// What reports read of one visit (kept beside each patient's record).
/// Visits journaled before these facts existed are approximated from the
/// record: the last classification for the first, and so on.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct ReportFacts {
    /// The unit of admission.
    pub unit: UnitId,
    pub arrived_at: DateTime<Utc>,
    pub first_triaged_at: Option<DateTime<Utc>>,
    /// The colour now (or when the visit ended).
    pub colour: Option<ColourId>,
    /// The maximum wait in force at the last classification.
    pub classified_max_wait_seconds: Option<i64>,
    pub first_call: Option<FirstCall>,
    pub status: Status,
    pub closed_at: Option<DateTime<Utc>>,
    pub outcome: Option<Outcome>,
    pub leave_reason: Option<LeaveReason>,
}

impl ReportFacts {
    pub fn of(p: &Patient) -> Self {
        Self {
            unit: p.admitted_unit.clone().unwrap_or_else(|| p.unit.clone()),
            arrived_at: p.arrived_at,
            first_triaged_at: p.first_triaged_at.or(p.triaged_at),
            colour: p.colour.clone(),
            classified_max_wait_seconds: p.classified_max_wait_seconds,
            first_call: p.first_call.as_deref().cloned(),
            status: p.status,
            closed_at: p.closed_at,
            outcome: p.outcome,
            leave_reason: p.leave_reason,
        }
    }
}

/// A row of the `visits` table, as read.
struct VisitRow {
    unit: String,
    arrived_at: i64,
    first_triaged_at: Option<i64>,
    colour: Option<String>,
    classified_max: Option<i64>,
    call_at: Option<i64>,
    call_colour: Option<String>,
    call_clock_start: Option<i64>,
    call_max: Option<i64>,
    status: String,
    closed_at: Option<i64>,
    outcome: Option<String>,
    leave_reason: Option<String>,
}

impl VisitRow {
    fn facts(self) -> Result<ReportFacts, JournalError> {
        let corrupt = |what: &str| JournalError::Corrupt(format!("visit {what}"));
        let time = |ms: Option<i64>| ms.map(from_millis).transpose();
        let colour = |c: Option<String>| {
            c.map(|c| ColourId::try_from(c).map_err(|_| corrupt("colour")))
                .transpose()
        };
        let first_call = match (self.call_at, self.call_clock_start, self.call_max) {
            (Some(at), Some(start), Some(max)) => Some(FirstCall {
                at: from_millis(at)?,
                colour: colour(self.call_colour)?,
                clock_start: from_millis(start)?,
                max_wait_seconds: max,
            }),
            _ => None,
        };
        Ok(ReportFacts {
            unit: UnitId::try_from(self.unit).map_err(|_| corrupt("unit"))?,
            arrived_at: from_millis(self.arrived_at)?,
            first_triaged_at: time(self.first_triaged_at)?,
            colour: colour(self.colour)?,
            classified_max_wait_seconds: self.classified_max,
            first_call,
            status: self.status.parse().map_err(|_| corrupt("status"))?,
            closed_at: time(self.closed_at)?,
            outcome: self
                .outcome
                .map(|o| o.parse().map_err(|_| corrupt("outcome")))
                .transpose()?,
            leave_reason: self
                .leave_reason
                .map(|r| r.parse().map_err(|_| corrupt("leave reason")))
                .transpose()?,
        })
    }
}

/// The visits of a report's cohort and their alerts.
pub type ReportData = (Vec<ReportFacts>, Vec<Alert>);

/// One unsent message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageEntry {
    pub id: u64,
    /// The same on every attempt, also after a restart.
    pub delivery_id: String,
    pub message: Message,
    pub attempts: u32,
}

/// How one message to a patient went (`GET /patients/{protocol}/messages`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct MessageStatus {
    pub delivery_id: String,
    /// `email` or `sms`.
    pub channel: String,
    /// `admitted`, `called` or `finished`.
    pub event: String,
    /// `pending` (not sent yet, or being retried), `delivered` or `failed`.
    pub state: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// How many recent events start-up reads back for wait estimates (more than
/// two hours of a busy unit).
const RECENT_EVENTS: i64 = 20_000;

/// One pending webhook delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: u64,
    pub delivery_id: String,
    pub receiver: usize,
    pub alert_id: u64,
    pub event: String,
    pub alert: serde_json::Value,
    pub attempts: u32,
}

/// The last `limit` stream events of a unit with an id above `after`, oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    pub id: u64,
    pub display: crate::domain::DisplayEvent,
}

enum Msg {
    Commit {
        changes: Vec<Change>,
        reply: oneshot::Sender<Result<(), JournalError>>,
    },
    Reload(oneshot::Sender<Result<Snapshot, JournalError>>),
    InjectFailure(bool),
}

struct Shared {
    healthy: AtomicBool,
    /// Test hook: while true, reloads wait on the writer thread.
    reloads_paused: parking_lot::Mutex<bool>,
    reloads_resumed: parking_lot::Condvar,
    reloads_waiting: std::sync::atomic::AtomicUsize,
}

pub struct Journal {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    shared: Arc<Shared>,
    reader: Mutex<Connection>,
    writer: Mutex<Option<JoinHandle<()>>>,
    path: PathBuf,
    instance: String,
}

/// A submitted command; await it to learn whether it is durable.
pub struct PendingCommit(Option<oneshot::Receiver<Result<(), JournalError>>>);

impl PendingCommit {
    pub async fn wait(self) -> Result<(), JournalError> {
        match self.0 {
            Some(rx) => rx.await.unwrap_or(Err(JournalError::Stopped)),
            None => Err(JournalError::Stopped),
        }
    }

    /// For blocking callers (start-up and shutdown tasks, benches).
    pub fn wait_blocking(self) -> Result<(), JournalError> {
        match self.0 {
            Some(rx) => rx.blocking_recv().unwrap_or(Err(JournalError::Stopped)),
            None => Err(JournalError::Stopped),
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, which is what "acknowledged" means here.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    Ok(conn)
}

impl Journal {
    /// Opens (or creates) the journal in `data_dir` and reads back its state.
    pub fn open(
        data_dir: &Path,
        options: JournalOptions,
    ) -> Result<(Self, Snapshot), JournalError> {
        std::fs::create_dir_all(data_dir).map_err(|source| JournalError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        identity::check(&path)?;
        let conn = open_connection(&path)?;
        schema::migrate(&conn)?;
        let snapshot = load_snapshot(&conn, &path)?;
        let reader = open_connection(&path)?;
        reader.pragma_update(None, "query_only", true)?;
        let instance: String = conn.query_row(
            "SELECT value FROM counters WHERE name = 'instance'",
            [],
            |r| r.get(0),
        )?;
        let JournalOptions {
            receivers,
            observer,
        } = options;

        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            reloads_paused: parking_lot::Mutex::new(false),
            reloads_resumed: parking_lot::Condvar::new(),
            reloads_waiting: std::sync::atomic::AtomicUsize::new(0),
        });
        let (tx, rx) = mpsc::channel();
        let writer_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn({
                let path = path.clone();
                move || Writer::new(conn, path, writer_shared, observer, receivers).run(rx)
            })
            .map_err(|e| JournalError::Corrupt(format!("cannot start writer thread: {e}")))?;
        Ok((
            Self {
                tx: Mutex::new(Some(tx)),
                shared,
                reader: Mutex::new(reader),
                writer: Mutex::new(Some(writer)),
                path,
                instance,
            },
            snapshot,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// False from a failed commit until a successful [`Journal::reload`].
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// Queues changes for the next group commit. Call it while still holding the
    /// lock under which the changes were made, so the journal's order is memory's.
    pub fn submit(&self, changes: Vec<Change>) -> PendingCommit {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Commit { changes, reply }).is_ok());
        PendingCommit(sent.then_some(rx))
    }

    /// Proves the disk writable, then returns the committed state. Blocking.
    pub fn reload(&self) -> Result<Snapshot, JournalError> {
        let (reply, rx) = oneshot::channel();
        let sent = self
            .tx
            .lock()
            .as_ref()
            .is_some_and(|tx| tx.send(Msg::Reload(reply)).is_ok());
        if !sent {
            return Err(JournalError::Stopped);
        }
        rx.blocking_recv().unwrap_or(Err(JournalError::Stopped))
    }

    /// Makes every commit fail (as a full or broken disk would) until turned off.
    /// Exists so tests can exercise the failure path; never used by the service.
    #[doc(hidden)]
    pub fn inject_commit_failures(&self, on: bool) {
        if let Some(tx) = self.tx.lock().as_ref() {
            let _ = tx.send(Msg::InjectFailure(on));
        }
    }

    /// Makes reloads wait (a slow disk, a large journal) until turned off.
    /// Exists so tests can look at the service while it rebuilds memory.
    #[doc(hidden)]
    pub fn pause_reloads(&self, on: bool) {
        *self.shared.reloads_paused.lock() = on;
        self.shared.reloads_resumed.notify_all();
    }

    /// How many reloads are waiting because of [`Journal::pause_reloads`].
    #[doc(hidden)]
    pub fn paused_reloads(&self) -> usize {
        self.shared.reloads_waiting.load(Ordering::Acquire)
    }

    /// A patient's audit trail, oldest first. Blocking: call from a blocking task.
    pub fn history(&self, protocol: Protocol) -> Result<Vec<HistoryEntry>, JournalError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT at, event, actor, details FROM events WHERE protocol = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![protocol.as_u64() as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (at, event, actor, details) = row?;
            Ok(HistoryEntry {
                at: from_millis(at)?,
                event,
                actor,
                details: serde_json::from_str(&details)
                    .map_err(|e| JournalError::Corrupt(e.to_string()))?,
            })
        })
        .collect()
    }

    /// Patients matching a search, most recent arrival first. Blocking; reads
    /// its own connection, never the department.
    pub fn search(&self, search: &PatientSearch) -> Result<Vec<Protocol>, JournalError> {
        use rusqlite::types::Value;
        let mut sql = String::from("SELECT protocol FROM patients WHERE 1 = 1");
        let mut args: Vec<Value> = Vec::new();
        if let Some(unit) = &search.unit {
            sql.push_str(" AND unit = ?");
            args.push(Value::Text(unit.to_string()));
        }
        if !search.statuses.is_empty() {
            let marks = vec!["?"; search.statuses.len()].join(", ");
            sql.push_str(&format!(" AND status IN ({marks})"));
            args.extend(
                search
                    .statuses
                    .iter()
                    .map(|s| Value::Text(s.as_str().into())),
            );
        }
        if let Some(q) = search.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let mut any = vec!["(ticket = ? AND admitted_at >= ?)".to_owned()];
            args.push(Value::Text(q.to_uppercase()));
            args.push(Value::Integer(search.tickets_since.timestamp_millis()));
            if let Ok(p) = Protocol::parse(q) {
                any.push("protocol = ?".into());
                args.push(Value::Integer(p.as_u64() as i64));
            }
            let document = document_key(q);
            if !document.is_empty() {
                any.push("document_key = ?".into());
                args.push(Value::Text(document));
            }
            // Every word of the query somewhere in the name, accents and case aside.
            let words: Vec<String> = search_key(q)
                .split(' ')
                .take(MAX_SEARCH_WORDS)
                .map(|w| {
                    format!(
                        "%{}%",
                        w.replace('\\', "\\\\")
                            .replace('%', "\\%")
                            .replace('_', "\\_")
                    )
                })
                .collect();
            if !words.is_empty() {
                let likes = vec!["name_key LIKE ? ESCAPE '\\'"; words.len()].join(" AND ");
                any.push(format!("({likes})"));
                args.extend(words.into_iter().map(Value::Text));
            }
            sql.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        sql.push_str(" ORDER BY arrived_at DESC, protocol DESC LIMIT ?");
        args.push(Value::Integer(search.limit as i64));
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, i64>(0))?;
        rows.map(|row| {
            let n = row?;
            Protocol::from_u64(n as u64)
                .ok_or_else(|| JournalError::Corrupt(format!("protocol {n}")))
        })
        .collect()
    }

    /// The oldest undelivered notification for a receiver. Blocking.
    pub fn outbox_next(&self, receiver: usize) -> Result<Option<OutboxEntry>, JournalError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, alert_id, event, alert, attempts FROM outbox
             WHERE receiver = ?1 AND state = 'pending' ORDER BY id LIMIT 1",
        )?;
        let row = stmt
            .query_row(params![receiver as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })
            .optional()?;
        row.map(|(id, alert_id, event, alert, attempts)| {
            Ok(OutboxEntry {
                id: id as u64,
                delivery_id: format!("{}-{id}", self.instance),
                receiver,
                alert_id: alert_id as u64,
                event,
                alert: parse_json("outbox alert", &alert)?,
                attempts: attempts as u32,
            })
        })
        .transpose()
    }

    /// How many notifications wait to be delivered, over all receivers. Blocking.
    pub fn outbox_pending(&self) -> Result<u64, JournalError> {
        let conn = self.reader.lock();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// What reports read: the visits that arrived in `[from, to)` (in their
    /// unit of admission, or all units) and the alerts of those visits. On a
    /// connection of its own, so a long report holds up no other reader and
    /// never the writer (WAL). Blocking.
    pub fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        unit: Option<&UnitId>,
    ) -> Result<ReportData, JournalError> {
        let conn = open_connection(&self.path)?;
        conn.pragma_update(None, "query_only", true)?;
        let unit = unit.map(|u| u.to_string());
        let cohort = "FROM visits v WHERE v.arrived_at >= ?1 AND v.arrived_at < ?2
                      AND (?3 IS NULL OR v.unit = ?3)";
        let args = params![from.timestamp_millis(), to.timestamp_millis(), unit];
        let mut stmt = conn.prepare(&format!(
            "SELECT v.unit, v.arrived_at, v.first_triaged_at, v.colour, v.classified_max,
                    v.call_at, v.call_colour, v.call_clock_start, v.call_max, v.status,
                    v.closed_at, v.outcome, v.leave_reason {cohort}"
        ))?;
        let visits = stmt
            .query_map(args, |r| {
                Ok(VisitRow {
                    unit: r.get(0)?,
                    arrived_at: r.get(1)?,
                    first_triaged_at: r.get(2)?,
                    colour: r.get(3)?,
                    classified_max: r.get(4)?,
                    call_at: r.get(5)?,
                    call_colour: r.get(6)?,
                    call_clock_start: r.get(7)?,
                    call_max: r.get(8)?,
                    status: r.get(9)?,
                    closed_at: r.get(10)?,
                    outcome: r.get(11)?,
                    leave_reason: r.get(12)?,
                })
            })?
            .map(|row| row?.facts())
            .collect::<Result<Vec<ReportFacts>, _>>()?;
        let mut stmt = conn.prepare(
            "SELECT a.body FROM alerts a JOIN visits v ON v.protocol = a.protocol
             WHERE v.arrived_at >= ?1 AND v.arrived_at < ?2 AND (?3 IS NULL OR v.unit = ?3)",
        )?;
        let alerts = stmt
            .query_map(args, |r| r.get::<_, String>(0))?
            .map(|b| parse_json("alert", &b?))
            .collect::<Result<Vec<Alert>, _>>()?;
        Ok((visits, alerts))
    }

    /// The oldest unsent message of a channel. Blocking.
    pub fn message_next(&self, channel: Channel) -> Result<Option<MessageEntry>, JournalError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, body, attempts FROM messages
             WHERE channel = ?1 AND state = 'pending' ORDER BY id LIMIT 1",
        )?;
        let row = stmt
            .query_row(params![channel.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .optional()?;
        row.map(|(id, body, attempts)| {
            Ok(MessageEntry {
                id: id as u64,
                delivery_id: format!("{}-m{id}", self.instance),
                message: parse_json("message", &body)?,
                attempts: attempts as u32,
            })
        })
        .transpose()
    }

    /// The messages of a patient and how each went, oldest first (never the
    /// address or the text). Blocking.
    pub fn messages_of(&self, protocol: Protocol) -> Result<Vec<MessageStatus>, JournalError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, channel, event, state, attempts, created_at FROM messages
             WHERE protocol = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![protocol.as_u64() as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        rows.map(|row| {
            let (id, channel, event, state, attempts, created_at) = row?;
            Ok(MessageStatus {
                delivery_id: format!("{}-m{id}", self.instance),
                channel,
                event,
                state,
                attempts: attempts as u32,
                created_at: from_millis(created_at)?,
            })
        })
        .collect()
    }

    /// How many messages of each channel wait to be sent. Blocking.
    pub fn messages_pending(&self, channel: Channel) -> Result<u64, JournalError> {
        let conn = self.reader.lock();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM messages WHERE channel = ?1 AND state = 'pending'",
            params![channel.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// A unit's stream events after `after`, oldest first, at most `limit`. Blocking.
    pub fn stream_events(
        &self,
        unit: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>, JournalError> {
        let conn = self.reader.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, display FROM (
                 SELECT id, display FROM events
                 WHERE unit = ?1 AND id > ?2 AND display IS NOT NULL
                 ORDER BY id DESC LIMIT ?3)
             ORDER BY id",
        )?;
        let rows = stmt.query_map(params![unit, after as i64, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        rows.map(|row| {
            let (id, display) = row?;
            Ok(StreamEvent {
                id: id as u64,
                display: parse_json("display", &display)?,
            })
        })
        .collect()
    }

    /// Stops the writer after it has committed everything already submitted.
    pub fn shutdown(&self) {
        drop(self.tx.lock().take());
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn from_millis(ms: i64) -> Result<DateTime<Utc>, JournalError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| JournalError::Corrupt(format!("bad timestamp {ms}")))
}

type Reply = oneshot::Sender<Result<(), JournalError>>;

/// The commands of the group commit under way, applied but not committed.
struct Batch {
    commands: Vec<(Vec<Change>, Reply)>,
    /// The first error applying them; the batch is then rolled back.
    error: Option<JournalError>,
    started: Instant,
}

impl Default for Batch {
    fn default() -> Self {
        Self {
            commands: Vec::new(),
            error: None,
            started: Instant::now(),
        }
    }
}

struct Writer {
    conn: Connection,
    path: PathBuf,
    shared: Arc<Shared>,
    observer: Option<CommitObserver>,
    receivers: usize,
    /// Set by a failed commit; cleared only by a successful reload.
    failed: bool,
    inject_failure: bool,
}

impl Writer {
    fn new(
        conn: Connection,
        path: PathBuf,
        shared: Arc<Shared>,
        observer: Option<CommitObserver>,
        receivers: usize,
    ) -> Self {
        Self {
            conn,
            path,
            shared,
            observer,
            receivers,
            failed: false,
            inject_failure: false,
        }
    }

    /// Group commit. A transaction is opened by the first command that
    /// arrives and each command's changes are applied to it as it comes, so
    /// the SQL work overlaps the requests still being handled; the batch is
    /// committed (one fsync) as soon as no command is waiting, and only then
    /// is any of them acknowledged.
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut batch = Batch::default();
        let mut last_batch = 0;
        while let Ok(first) = rx.recv() {
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    Msg::Commit { changes, reply } => self.stage(&mut batch, changes, reply),
                    Msg::Reload(reply) => {
                        self.flush(&mut batch);
                        let _ = reply.send(self.reload());
                    }
                    Msg::InjectFailure(on) => {
                        self.flush(&mut batch);
                        self.inject_failure = on;
                    }
                }
                if batch.commands.len() < MAX_BATCH {
                    next = rx.try_recv().ok();
                    // Fewer commands than the last commit had: the others are
                    // most likely still in the workers' hands. A moment's wait
                    // lets them join this fsync instead of paying for their own.
                    let waited = batch.started.elapsed();
                    if next.is_none() && batch.commands.len() < last_batch && waited < LINGER {
                        next = rx.recv_timeout(LINGER - waited).ok();
                    }
                }
            }
            last_batch = batch.commands.len();
            self.flush(&mut batch);
        }
        self.flush(&mut batch);
        tracing::info!("journal writer stopped");
    }

    /// Applies a command's changes to the open transaction (opening it for
    /// the first). After an error nothing more is applied: the whole batch
    /// will be rolled back and every command in it refused.
    fn stage(&mut self, batch: &mut Batch, changes: Vec<Change>, reply: Reply) {
        if batch.error.is_none() && !self.failed && !self.inject_failure {
            if batch.commands.is_empty() {
                batch.started = Instant::now();
                if let Err(e) = self.conn.execute_batch("BEGIN IMMEDIATE") {
                    batch.error = Some(e.into());
                }
            }
            if batch.error.is_none() {
                if let Err(e) = schema::apply_changes(&self.conn, &changes, self.receivers) {
                    batch.error = Some(e);
                }
            }
        }
        batch.commands.push((changes, reply));
    }

    fn flush(&mut self, batch: &mut Batch) {
        if batch.commands.is_empty() {
            return;
        }
        let result = if self.failed {
            Err(JournalError::Unavailable)
        } else {
            let r = self.commit(batch);
            if r.is_err() && !self.conn.is_autocommit() {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            if let (Ok(()), Some(observe)) = (&r, &self.observer) {
                let changes: Vec<&Change> = batch.commands.iter().flat_map(|(c, _)| c).collect();
                observe(batch.started.elapsed().as_secs_f64(), &changes);
            }
            r
        };
        batch.error = None;
        match result {
            Ok(()) => {
                for (_, reply) in batch.commands.drain(..) {
                    let _ = reply.send(Ok(()));
                }
            }
            Err(e) => {
                if !self.failed {
                    tracing::error!(error = %e, commands = batch.commands.len(), "journal commit failed; refusing writes until it recovers");
                }
                self.failed = true;
                self.shared.healthy.store(false, Ordering::Release);
                for (_, reply) in batch.commands.drain(..) {
                    let _ = reply.send(Err(JournalError::Unavailable));
                }
            }
        }
    }

    /// Ends the batch's transaction: the counters, then the commit.
    fn commit(&mut self, batch: &mut Batch) -> Result<(), JournalError> {
        if self.inject_failure {
            return Err(JournalError::Corrupt("injected commit failure".into()));
        }
        if let Some(e) = batch.error.take() {
            return Err(e);
        }
        #[cfg(feature = "planted-fault")]
        if planted_fault_skips(&batch.commands) {
            // Acknowledged, never written: what the soak's checker must catch.
            self.conn.execute_batch("ROLLBACK")?;
            return Ok(());
        }
        schema::write_counters(
            &self.conn,
            batch.commands.iter().flat_map(|(changes, _)| changes),
        )?;
        self.conn.execute_batch("COMMIT")?;
        Ok(())
    }

    fn reload(&mut self) -> Result<Snapshot, JournalError> {
        {
            let mut paused = self.shared.reloads_paused.lock();
            if *paused {
                self.shared.reloads_waiting.fetch_add(1, Ordering::AcqRel);
                while *paused {
                    self.shared.reloads_resumed.wait(&mut paused);
                }
                self.shared.reloads_waiting.fetch_sub(1, Ordering::AcqRel);
            }
        }
        if self.inject_failure {
            return Err(JournalError::Unavailable);
        }
        let now = Utc::now();
        self.conn.execute(
            "INSERT OR REPLACE INTO counters(name, value) VALUES ('last_write_probe', ?1)",
            params![now.to_rfc3339()],
        )?;
        let snapshot = load_snapshot(&self.conn, &self.path)?;
        self.failed = false;
        self.shared.healthy.store(true, Ordering::Release);
        tracing::info!("journal writable again; state reloaded");
        Ok(snapshot)
    }
}

/// A planted fault for the chaos soak (`benches/soak.rs`, feature
/// `planted-fault`, never in a normal build): once per process, the first batch
/// from the 500th on that admits someone is acknowledged without being committed.
#[cfg(feature = "planted-fault")]
fn planted_fault_skips(batch: &[(Vec<Change>, Reply)]) -> bool {
    use std::sync::atomic::AtomicU64;
    static BATCHES: AtomicU64 = AtomicU64::new(0);
    static PLANTED: AtomicBool = AtomicBool::new(false);
    let n = BATCHES.fetch_add(1, Ordering::Relaxed) + 1;
    let admits = batch
        .iter()
        .flat_map(|(changes, _)| changes)
        .any(|c| matches!(c, Change::Sequence(_)));
    n >= 500 && admits && !PLANTED.swap(true, Ordering::Relaxed)
}

fn parse_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T, JournalError> {
    serde_json::from_str(text).map_err(|e| JournalError::Corrupt(format!("{what}: {e}")))
}

/// The recent calls and entries wait estimates learn from, oldest first.
fn load_recent(
    conn: &Connection,
) -> Result<Vec<(String, DateTime<Utc>, RecentFact)>, JournalError> {
    let mut stmt = conn.prepare(
        "SELECT unit, at, event, details FROM (
             SELECT id, unit, at, event, details FROM events
             WHERE event IN ('admitted', 'triaged', 'called')
             ORDER BY id DESC LIMIT ?1)
         ORDER BY id",
    )?;
    let rows = stmt.query_map(params![RECENT_EVENTS], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (unit, at, event, details) = row?;
        let details: serde_json::Value = parse_json("details", &details)?;
        let colour = details["colour"]
            .as_str()
            .and_then(|c| crate::domain::ColourId::parse(c).ok());
        let fact = match event.as_str() {
            "called" => RecentFact::Called {
                queue: serde_json::from_value(details["queue"].clone()).unwrap_or_default(),
                colour,
            },
            _ => match colour {
                Some(colour) => RecentFact::Entered { colour },
                None => continue,
            },
        };
        out.push((unit, from_millis(at)?, fact));
    }
    Ok(out)
}

/// Patients per batch of the start-up feed.
const FEED_BATCH: usize = 4096;
/// Batches decoded ahead of the queues' rebuilding, at most.
const FEED_AHEAD: usize = 8;

type Batches = mpsc::SyncSender<Result<Vec<Patient>, String>>;
type Started = mpsc::Sender<Result<(), JournalError>>;

/// Reads and decodes the patients on a thread of its own, in protocol order.
/// Returns once its read transaction has begun, so the feed and the rest of
/// the snapshot see the same committed state.
fn patient_feed(path: &Path) -> Result<PatientFeed, JournalError> {
    let (batches, rx) = mpsc::sync_channel(FEED_AHEAD);
    let (started, is_started) = mpsc::channel();
    let path = path.to_owned();
    std::thread::Builder::new()
        .name("journal-read".into())
        .spawn(move || {
            let mut started = Some(started);
            if let Err(e) = feed_patients(&path, &batches, &mut started) {
                // Before the start the opener hears of it; after, the rebuild.
                match started.take() {
                    Some(started) => drop(started.send(Err(e))),
                    None => drop(batches.send(Err(e.to_string()))),
                }
            }
        })
        .map_err(|e| JournalError::Corrupt(format!("cannot start the reader thread: {e}")))?;
    match is_started.recv() {
        Ok(Ok(())) => Ok(PatientFeed::from_batches(rx)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(JournalError::Stopped),
    }
}

fn feed_patients(
    path: &Path,
    batches: &Batches,
    started: &mut Option<Started>,
) -> Result<(), JournalError> {
    let conn = open_connection(path)?;
    conn.pragma_update(None, "query_only", true)?;
    let tx = conn.unchecked_transaction()?;
    let mut stmt = tx.prepare("SELECT body FROM patients ORDER BY protocol")?;
    let mut rows = stmt.query([])?;
    // The first step takes the read snapshot.
    let mut row = rows.next()?;
    if let Some(started) = started.take() {
        let _ = started.send(Ok(()));
    }
    let mut batch = Vec::with_capacity(FEED_BATCH);
    while let Some(r) = row {
        let body = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        batch.push(parse_json::<Patient>("patient", body)?);
        if batch.len() == FEED_BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(FEED_BATCH));
            if batches.send(Ok(full)).is_err() {
                return Ok(()); // nobody is rebuilding any more
            }
        }
        row = rows.next()?;
    }
    let _ = batches.send(Ok(batch));
    Ok(())
}

/// Everything recovery needs, as committed.
fn load_snapshot(conn: &Connection, path: &Path) -> Result<Snapshot, JournalError> {
    let mut snapshot = Snapshot {
        patients: patient_feed(path)?,
        ..Snapshot::default()
    };
    let sequence: Option<String> = conn
        .query_row(
            "SELECT value FROM counters WHERE name = 'sequence'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    snapshot.sequence = sequence
        .map(|s| parse_json::<ProtocolSequence>("sequence", &s))
        .transpose()?;
    {
        let mut stmt =
            conn.prepare("SELECT name, value FROM counters WHERE name LIKE 'tickets:%'")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let name: String = row.get(0)?;
            let value: String = row.get(1)?;
            let unit = name.trim_start_matches("tickets:").to_owned();
            snapshot
                .tickets
                .push((unit, parse_json::<TicketCounter>("tickets", &value)?));
        }
    }
    {
        // All of them: the department judges expiry by its own clock, and the
        // hourly purge deletes expired keys.
        let mut stmt =
            conn.prepare("SELECT key, created_at, protocol, response FROM idempotency")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let protocol = Protocol::from_u64(row.get::<_, i64>(2)? as u64)
                .ok_or_else(|| JournalError::Corrupt("idempotency protocol".into()))?;
            snapshot.idempotency.push(IdempotencyRecord {
                key: row.get(0)?,
                created_at: from_millis(row.get(1)?)?,
                protocol,
                response: row.get(3)?,
            });
        }
    }
    {
        // The units that have calls, one index step each (not a scan of every event).
        let units: Vec<String> = conn
            .prepare(
                "WITH RECURSIVE u(unit) AS (
                     SELECT MIN(unit) FROM events WHERE event IN ('called', 'recalled')
                     UNION ALL
                     SELECT (SELECT MIN(unit) FROM events
                             WHERE event IN ('called', 'recalled') AND unit > u.unit)
                     FROM u WHERE u.unit IS NOT NULL)
                 SELECT unit FROM u WHERE unit IS NOT NULL",
            )?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut stmt = conn.prepare(
            "SELECT details FROM events WHERE unit = ?1 AND event IN ('called', 'recalled') \
             ORDER BY id DESC LIMIT ?2",
        )?;
        for unit in units {
            let mut calls: Vec<BoardCall> = stmt
                .query_map(params![unit, BOARD_CALLS as i64], |r| r.get::<_, String>(0))?
                .map(|d| parse_json::<BoardCall>("call", &d?))
                .collect::<Result<_, _>>()?;
            calls.reverse();
            snapshot
                .calls
                .extend(calls.into_iter().map(|c| (unit.clone(), c)));
        }
    }
    {
        let mut stmt = conn.prepare("SELECT body FROM alerts ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let body: String = row.get(0)?;
            snapshot.alerts.push(parse_json("alert", &body)?);
        }
    }
    // AUTOINCREMENT remembers the largest id ever used, also across purges.
    let last_id = |table: &str| -> Result<u64, JournalError> {
        let n: Option<i64> = conn
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                params![table],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.unwrap_or(0) as u64)
    };
    snapshot.last_event_id = last_id("events")?;
    let secret: String = conn.query_row(
        "SELECT value FROM counters WHERE name = 'check_secret'",
        [],
        |r| r.get(0),
    )?;
    snapshot.check_secret =
        hex::decode(secret).map_err(|e| JournalError::Corrupt(format!("check secret: {e}")))?;
    snapshot.recent = load_recent(conn)?;
    snapshot.last_alert_id = last_id("alerts")?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests;
