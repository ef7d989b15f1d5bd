//! The SQLite backend: one database file in WAL mode with `synchronous=FULL`.
//! The writer's connection commits each group in one `IMMEDIATE` transaction;
//! reads use a connection of their own (reports one each), which WAL lets run
//! beside the writer.

mod checkpoint;
mod identity;
mod issued;
pub(crate) mod schema;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension};

use self::checkpoint::Checkpointer;
use super::backend::{Reads, Store};
use super::{
    from_millis, parse_json, recent_fact, HistoryEntry, JournalError, MessageEntry, MessageStatus,
    OutboxEntry, PatientSearch, ReportData, ReportFacts, StreamEvent, VisitRow, MAX_SEARCH_WORDS,
    RECENT_EVENTS,
};
use crate::domain::escalation::Alert;
use crate::domain::numbering::{ProtocolSequence, TicketCounter};
use crate::domain::patient::{document_key, search_key, Patient, Protocol};
use crate::domain::UnitId;
use crate::domain::{
    BoardCall, Change, Channel, FeedBatch, IdempotencyRecord, PatientBatch, PatientFeed,
    RecentFact, Snapshot, BOARD_CALLS,
};

pub const DB_FILE: &str = "triagem.sqlite3";

fn open_connection(path: &Path) -> Result<Connection, JournalError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL: the WAL is fsynced at every commit, which is what "acknowledged" means here.
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    // A purged patient's name and contact are zeroed on disk, not left in
    // free space to be read from the file; so is an updated row's old text.
    conn.pragma_update(None, "secure_delete", "ON")?;
    // After a checkpoint the WAL is cut back to this size, so the pages of
    // changes long checkpointed (purged records among them) do not linger
    // past its end.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(conn)
}

/// Takes `data_dir` for this process alone, while the file returned is open:
/// a second server on one directory would number patients from its own
/// memory, its commits clashing with the other's, and a migration next to a
/// running server copies a journal still changing.
pub(crate) fn lock_data_dir(data_dir: &Path) -> Result<std::fs::File, JournalError> {
    let (file, path) = data_file(data_dir, "triagem.lock")?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(JournalError::InUse(data_dir.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(JournalError::DataDir { path, source }),
    }
}

/// A small file of the journal's beside the database, opened to read and
/// write (created, never truncated), and its path.
fn data_file(data_dir: &Path, name: &str) -> Result<(std::fs::File, PathBuf), JournalError> {
    let path = data_dir.join(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|source| JournalError::DataDir {
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

/// Opens (or creates) the journal's database in `data_dir` and migrates it;
/// returns the writer's store and the readers.
pub(crate) fn open(data_dir: &Path) -> Result<(SqliteStore, SqliteReads), JournalError> {
    std::fs::create_dir_all(data_dir).map_err(|source| JournalError::DataDir {
        path: data_dir.to_owned(),
        source,
    })?;
    let lock = lock_data_dir(data_dir)?;
    let path = data_dir.join(DB_FILE);
    identity::check(&path)?;
    let conn = open_connection(&path)?;
    schema::migrate(&conn)?;
    let reader = open_connection(&path)?;
    reader.pragma_update(None, "query_only", true)?;
    let instance: String = conn.query_row(
        "SELECT value FROM counters WHERE name = 'instance'",
        [],
        |r| r.get(0),
    )?;
    Ok((
        SqliteStore {
            conn,
            checkpoints: Checkpointer::start(&path)?,
            path: path.clone(),
            issued: issued::Issued::open(data_dir)?,
            _lock: lock,
        },
        SqliteReads {
            reader: Mutex::new(reader),
            path,
            instance,
        },
    ))
}

/// The writer thread's side.
pub(crate) struct SqliteStore {
    conn: Connection,
    checkpoints: Checkpointer,
    path: PathBuf,
    issued: issued::Issued,
    /// Held while the writer lives ([`lock_data_dir`]).
    _lock: std::fs::File,
}

impl Store for SqliteStore {
    /// Applied to the open transaction at once, so the SQL work overlaps the
    /// requests still being handled.
    fn stage(
        &mut self,
        first: bool,
        changes: &[Change],
        receivers: usize,
    ) -> Result<(), JournalError> {
        if first {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        schema::apply_changes(&self.conn, changes, receivers)
    }

    /// The counters (once per group: only their last values matter), then
    /// the commit.
    fn commit(&mut self, changes: &[&Change], _receivers: usize) -> Result<(), JournalError> {
        let issued = schema::write_counters(&self.conn, changes.iter().copied())?;
        self.conn.execute_batch("COMMIT")?;
        self.checkpoints.committed();
        if let Some(sequence) = issued {
            self.issued.write(sequence);
        }
        Ok(())
    }

    fn rollback(&mut self) {
        if !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    fn probe(&mut self) -> Result<(), JournalError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO counters(name, value) VALUES ('last_write_probe', ?1)",
            params![Utc::now().to_rfc3339()],
        )?;
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Snapshot, JournalError> {
        let mut snapshot = load_snapshot(&self.conn, &self.path)?;
        self.issued.raise(&mut snapshot.sequence);
        Ok(snapshot)
    }
}

/// Reads beside the writer, on a connection of their own.
pub(crate) struct SqliteReads {
    reader: Mutex<Connection>,
    path: PathBuf,
    /// Prefixes delivery ids.
    instance: String,
}

impl Reads for SqliteReads {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    /// A patient's audit trail, oldest first. Blocking: call from a blocking task.
    fn history(&self, protocol: Protocol) -> Result<Vec<HistoryEntry>, JournalError> {
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
    fn search(&self, search: &PatientSearch) -> Result<Vec<Protocol>, JournalError> {
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
        sql.push_str(" ORDER BY arrived_at DESC, protocol DESC LIMIT ? OFFSET ?");
        args.push(Value::Integer(search.limit as i64));
        args.push(Value::Integer(search.offset as i64));
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
    fn outbox_next(&self, receiver: usize) -> Result<Option<OutboxEntry>, JournalError> {
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
    fn outbox_pending(&self) -> Result<u64, JournalError> {
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
    fn report_data(
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
    fn message_next(&self, channel: Channel) -> Result<Option<MessageEntry>, JournalError> {
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
    fn messages_of(&self, protocol: Protocol) -> Result<Vec<MessageStatus>, JournalError> {
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
    fn messages_pending(&self, channel: Channel) -> Result<u64, JournalError> {
        let conn = self.reader.lock();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM messages WHERE channel = ?1 AND state = 'pending'",
            params![channel.as_str()],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// A unit's stream events after `after`, oldest first, at most `limit`. Blocking.
    fn stream_events(
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
}

/// The recent calls and entries wait estimates learn from, oldest first.
fn load_recent(
    conn: &Connection,
) -> Result<Vec<(String, DateTime<Utc>, RecentFact)>, JournalError> {
    // Newest first, straight down the rowid, and turned round here: an outer
    // `ORDER BY id` made SQLite sort what it had just read in order.
    let mut stmt = conn.prepare(
        "SELECT unit, at, event, details FROM events
         WHERE event IN ('admitted', 'triaged', 'called')
         ORDER BY id DESC LIMIT ?1",
    )?;
    let mut rows = stmt.query(params![RECENT_EVENTS])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let text = |i| r.get_ref(i)?.as_str().map_err(rusqlite::Error::from);
        if let Some(fact) = recent_fact(text(2)?, text(3)?)? {
            out.push((text(0)?.to_owned(), from_millis(r.get(1)?)?, fact));
        }
    }
    out.reverse();
    Ok(out)
}

/// Patients per batch of the start-up feed.
pub(crate) const FEED_BATCH: usize = 4096;
/// Batches read ahead of the queues' rebuilding, at most. Enough that the
/// reader need not stop while the rebuilding thread first reads the rest of
/// the snapshot (~0.1 s); what waits here is memory the registry takes over
/// anyway.
const FEED_AHEAD: usize = 32;

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
            let feed = Feed {
                batches,
                queued: Arc::new(AtomicUsize::new(0)),
            };
            if let Err(e) = feed_patients(&path, &feed, &mut started) {
                // Before the start the opener hears of it; after, the rebuild.
                match started.take() {
                    Some(started) => drop(started.send(Err(e))),
                    None => {
                        let e = e.to_string();
                        feed.send(Box::new(move || Err(e)));
                    }
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

/// The reader's end of the feed.
struct Feed {
    batches: mpsc::SyncSender<FeedBatch>,
    /// Batches sent and not yet taken.
    queued: Arc<AtomicUsize>,
}

impl Feed {
    /// Queues a batch, counted until the taker takes it. False once nobody
    /// is rebuilding any more.
    fn send(&self, take: FeedBatch) -> bool {
        let queued = self.queued.clone();
        queued.fetch_add(1, Ordering::AcqRel);
        self.batches
            .send(Box::new(move || {
                queued.fetch_sub(1, Ordering::AcqRel);
                take()
            }))
            .is_ok()
    }

    /// Whether the rebuilding thread is about to wait for the reader: at
    /// most the batch just sent is left for it. It can then decode the next
    /// batch itself. Reading and decoding cost the reader about twice what
    /// filing costs the rebuilder, so left alone the reader is the longer side.
    fn starving(&self) -> bool {
        self.queued.load(Ordering::Acquire) <= 1
    }
}

/// A batch decoded by the reader.
fn decoded(batch: PatientBatch) -> FeedBatch {
    Box::new(move || Ok(batch))
}

/// A batch of records as text (`bodies`, each ending at its `ends`), for the
/// taker to decode.
fn undecoded(bodies: String, ends: Vec<usize>) -> FeedBatch {
    Box::new(move || {
        let mut start = 0;
        ends.into_iter()
            .map(|end| {
                let body = &bodies[start..end];
                start = end;
                parse_json::<Box<Patient>>("patient", body).map_err(|e| e.to_string())
            })
            .collect()
    })
}

fn feed_patients(
    path: &Path,
    feed: &Feed,
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
    let (mut bodies, mut ends) = (String::new(), Vec::with_capacity(FEED_BATCH));
    let mut leave_undecoded = feed.starving();
    while let Some(r) = row {
        let body = r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        if leave_undecoded {
            bodies.push_str(body);
            ends.push(bodies.len());
        } else {
            batch.push(parse_json::<Box<Patient>>("patient", body)?);
        }
        if batch.len() + ends.len() == FEED_BATCH {
            let take = if leave_undecoded {
                let full = std::mem::replace(&mut ends, Vec::with_capacity(FEED_BATCH));
                undecoded(std::mem::take(&mut bodies), full)
            } else {
                decoded(std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(FEED_BATCH),
                ))
            };
            if !feed.send(take) {
                return Ok(()); // nobody is rebuilding any more
            }
            leave_undecoded = feed.starving();
        }
        row = rows.next()?;
    }
    let last = if leave_undecoded {
        undecoded(bodies, ends)
    } else {
        decoded(batch)
    };
    feed.send(last);
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
mod feed_tests {
    use super::*;
    use crate::domain::ids::unit_id;
    use crate::domain::{Admission, Department};

    /// Three patients' stored records.
    fn bodies() -> Vec<String> {
        let c =
            crate::config::Config::from_toml(include_str!("../../../config/default.toml")).unwrap();
        let mut d = Department::new(&c.department_settings());
        (0..3)
            .map(|i| {
                let admission = Admission {
                    contact: None,
                    name: format!("Paciente {i}"),
                    colour: None,
                    complaint: Some("dor \"forte\"".into()),
                    arrived_at: None,
                    birth_date: None,
                    document: None,
                };
                let now = Utc::now();
                let admitted = d
                    .admit(&unit_id("pa"), admission, None, "desk", now)
                    .unwrap();
                let protocol = admitted.changes.iter().find_map(|c| match c {
                    Change::Patient(p) => Some(p.protocol),
                    _ => None,
                });
                serde_json::to_string(d.patient(protocol.unwrap()).unwrap()).unwrap()
            })
            .collect()
    }

    fn feed() -> (Feed, mpsc::Receiver<FeedBatch>) {
        let (batches, rx) = mpsc::sync_channel(4);
        let queued = Arc::new(AtomicUsize::new(0));
        (Feed { batches, queued }, rx)
    }

    fn text(bodies: &[String]) -> (String, Vec<usize>) {
        let mut text = String::new();
        let ends = bodies
            .iter()
            .map(|b| {
                text.push_str(b);
                text.len()
            })
            .collect();
        (text, ends)
    }

    #[test]
    fn a_batch_reads_the_same_decoded_by_the_reader_or_by_its_taker() {
        let bodies = bodies();
        let (feed, rx) = feed();
        assert!(feed.starving(), "nothing sent yet");
        let expected: PatientBatch = bodies
            .iter()
            .map(|b| parse_json("patient", b).unwrap())
            .collect();
        assert!(feed.send(decoded(expected.clone())));
        let (all, ends) = text(&bodies);
        assert!(feed.send(undecoded(all, ends)));
        assert!(!feed.starving(), "two batches wait");
        let first = rx.recv().unwrap()();
        assert!(feed.starving(), "one left: the taker is about to wait");
        let second = rx.recv().unwrap()();
        assert_eq!(feed.queued.load(Ordering::Acquire), 0);
        assert_eq!(first.unwrap(), expected);
        assert_eq!(second.unwrap(), expected);
    }

    #[test]
    fn a_record_left_undecoded_that_cannot_be_read_fails_its_batch_with_the_reason() {
        let mut bodies = bodies();
        bodies[1].truncate(20);
        let (feed, rx) = feed();
        let (all, ends) = text(&bodies);
        assert!(feed.send(undecoded(all, ends)));
        let err = rx.recv().unwrap()().unwrap_err();
        assert!(err.contains("patient"), "{err}");
    }
}
