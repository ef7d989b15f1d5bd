//! Table layout and how each [`Change`] is written. Patients are stored whole
//! (JSON) and keyed by protocol number, so recovery is a plain reload.

use rusqlite::{params, Connection};

use crate::domain::numbering::ProtocolSequence;
use crate::domain::patient::{document_key, search_key, Patient};
use crate::domain::Change;
use crate::journal::{outbox_table, parse_json, JournalError, ReportFacts};

/// 5: records hold times as nanoseconds, which older versions cannot read;
/// the index of calls the board is restored from.
pub(super) const SCHEMA_VERSION: i64 = 5;

/// Marks the file as Triagem's in the SQLite header ("TRIG"), so start-up can
/// tell a journal from another program's database before writing to it.
pub(crate) const APPLICATION_ID: i32 = 0x5452_4947;

pub(crate) fn migrate(conn: &Connection) -> Result<(), JournalError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::Corrupt(format!(
            "the journal was written by a newer Triagem (schema {version}, this one knows {SCHEMA_VERSION})"
        )));
    }
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    // Both are written last, below: a journal that has them needs nothing,
    // and opening it writes nothing (a damaged one is then only read).
    if version == SCHEMA_VERSION && application_id == APPLICATION_ID {
        return Ok(());
    }
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS patients (
             protocol  INTEGER PRIMARY KEY,
             unit      TEXT NOT NULL,
             status    TEXT NOT NULL,
             closed_at INTEGER,
             body      TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS events (
             id       INTEGER PRIMARY KEY AUTOINCREMENT,
             protocol INTEGER,
             unit     TEXT NOT NULL,
             at       INTEGER NOT NULL,
             event    TEXT NOT NULL,
             actor    TEXT NOT NULL,
             details  TEXT NOT NULL,
             display  TEXT
         );
         CREATE INDEX IF NOT EXISTS events_by_protocol ON events(protocol, id);
         CREATE INDEX IF NOT EXISTS events_by_unit ON events(unit, id);
         -- Only calls: the board's last calls at start-up without reading
         -- every admission's event.
         CREATE INDEX IF NOT EXISTS events_calls ON events(unit, id)
             WHERE event IN ('called', 'recalled');
         CREATE TABLE IF NOT EXISTS counters (
             name  TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS alerts (
             id          INTEGER PRIMARY KEY AUTOINCREMENT,
             protocol    INTEGER NOT NULL,
             unit        TEXT NOT NULL,
             state       TEXT NOT NULL,
             resolved_at INTEGER,
             body        TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS outbox (
             id              INTEGER PRIMARY KEY AUTOINCREMENT,
             receiver        INTEGER NOT NULL,
             alert_id        INTEGER NOT NULL,
             event           TEXT NOT NULL,
             alert           TEXT NOT NULL,
             state           TEXT NOT NULL DEFAULT 'pending',
             attempts        INTEGER NOT NULL DEFAULT 0,
             created_at      INTEGER NOT NULL,
             last_error      TEXT
         );
         CREATE INDEX IF NOT EXISTS outbox_pending ON outbox(receiver, state, id);
         CREATE TABLE IF NOT EXISTS messages (
             id         INTEGER PRIMARY KEY AUTOINCREMENT,
             protocol   INTEGER NOT NULL,
             channel    TEXT NOT NULL,
             event      TEXT NOT NULL,
             body       TEXT NOT NULL,
             state      TEXT NOT NULL DEFAULT 'pending',
             attempts   INTEGER NOT NULL DEFAULT 0,
             created_at INTEGER NOT NULL,
             last_error TEXT
         );
         CREATE INDEX IF NOT EXISTS messages_pending ON messages(channel, state, id);
         CREATE INDEX IF NOT EXISTS messages_by_protocol ON messages(protocol, id);
         CREATE TABLE IF NOT EXISTS idempotency (
             key        TEXT PRIMARY KEY,
             created_at INTEGER NOT NULL,
             protocol   INTEGER NOT NULL,
             response   TEXT NOT NULL
         );",
    )?;
    if version < 2 {
        add_search_columns(conn)?;
    }
    if version < 4 {
        add_visits(conn)?;
    }
    // Prefixes webhook delivery ids, so two databases never issue the same one.
    let instance: [u8; 8] = rand::random();
    conn.execute(
        "INSERT OR IGNORE INTO counters(name, value) VALUES ('instance', ?1)",
        params![hex::encode(instance)],
    )?;
    // The secret check codes are derived with, made once per installation.
    let secret: [u8; 32] = rand::random();
    conn.execute(
        "INSERT OR IGNORE INTO counters(name, value) VALUES ('check_secret', ?1)",
        params![hex::encode(secret)],
    )?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    conn.pragma_update(None, "application_id", APPLICATION_ID)?;
    Ok(())
}

/// Version 2: what the patient search reads, beside each record, and the
/// index the rooms' listing (unit and status) uses. Existing rows are filled in.
fn add_search_columns(conn: &Connection) -> Result<(), JournalError> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('patients')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let tx = conn.unchecked_transaction()?;
    for (column, kind) in [
        ("name_key", "TEXT"),
        ("document_key", "TEXT"),
        ("ticket", "TEXT"),
        ("arrived_at", "INTEGER"),
        ("admitted_at", "INTEGER"),
    ] {
        if !columns.iter().any(|c| c == column) {
            tx.execute_batch(&format!("ALTER TABLE patients ADD COLUMN {column} {kind}"))?;
        }
    }
    tx.execute_batch(
        "CREATE INDEX IF NOT EXISTS patients_by_unit_status ON patients(unit, status)",
    )?;
    let rows: Vec<(i64, String)> = tx
        .prepare("SELECT protocol, body FROM patients WHERE name_key IS NULL")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    {
        let mut update = tx.prepare(
            "UPDATE patients SET name_key = ?2, document_key = ?3, ticket = ?4,
             arrived_at = ?5, admitted_at = ?6 WHERE protocol = ?1",
        )?;
        for (protocol, body) in rows {
            let p: Patient = parse_json("patient", &body)?;
            let s = SearchColumns::of(&p);
            update.execute(params![
                protocol,
                s.name_key,
                s.document_key,
                p.ticket,
                s.arrived_at,
                s.admitted_at
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Version 4: what reports read of each visit, in a narrow table of its own
/// beside the records, so a 90-day report over half a million visits reads
/// small rows and no JSON. Existing visits are filled in from their records.
fn add_visits(conn: &Connection) -> Result<(), JournalError> {
    let tx = conn.unchecked_transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS visits (
             protocol          INTEGER NOT NULL,
             unit              TEXT NOT NULL,
             arrived_at        INTEGER NOT NULL,
             first_triaged_at  INTEGER,
             colour            TEXT,
             classified_max    INTEGER,
             call_at           INTEGER,
             call_colour       TEXT,
             call_clock_start  INTEGER,
             call_max          INTEGER,
             status            TEXT NOT NULL,
             closed_at         INTEGER,
             outcome           TEXT,
             leave_reason      TEXT,
             -- Kept in arrival order: a period is one sequential range.
             PRIMARY KEY (arrived_at, protocol)
         ) WITHOUT ROWID;
         CREATE UNIQUE INDEX IF NOT EXISTS visits_by_protocol ON visits(protocol);",
    )?;
    let bodies: Vec<String> = tx
        .prepare("SELECT body FROM patients WHERE protocol NOT IN (SELECT protocol FROM visits)")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for body in bodies {
        let p: Patient = parse_json("patient", &body)?;
        write_visit(&tx, &p)?;
    }
    tx.commit()?;
    Ok(())
}

fn millis(t: Option<chrono::DateTime<chrono::Utc>>) -> Option<i64> {
    t.map(|t| t.timestamp_millis())
}

/// A visit's row of the `visits` table, from its record.
fn write_visit(tx: &Connection, p: &Patient) -> Result<(), JournalError> {
    let f = ReportFacts::of(p);
    let call = f.first_call.as_ref();
    tx.prepare_cached(
        "INSERT OR REPLACE INTO visits(protocol, unit, arrived_at, first_triaged_at, colour,
             classified_max, call_at, call_colour, call_clock_start, call_max, status,
             closed_at, outcome, leave_reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        p.protocol.as_u64() as i64,
        f.unit.as_str(),
        f.arrived_at.timestamp_millis(),
        millis(f.first_triaged_at),
        f.colour.as_deref(),
        f.classified_max_wait_seconds,
        millis(call.map(|c| c.at)),
        call.and_then(|c| c.colour.as_deref()),
        millis(call.map(|c| c.clock_start)),
        call.map(|c| c.max_wait_seconds),
        f.status.as_str(),
        millis(f.closed_at),
        f.outcome.map(|o| o.as_str()),
        f.leave_reason.map(|r| r.as_str()),
    ])?;
    Ok(())
}

/// The search columns of a patient's row.
struct SearchColumns {
    name_key: String,
    document_key: Option<String>,
    arrived_at: i64,
    admitted_at: i64,
}

impl SearchColumns {
    fn of(p: &Patient) -> Self {
        Self {
            name_key: search_key(p.name.as_str()),
            document_key: p.document.as_deref().map(document_key),
            arrived_at: p.arrived_at.timestamp_millis(),
            admitted_at: p.admitted_at.timestamp_millis(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, JournalError> {
    serde_json::to_string(v).map_err(|e| JournalError::Corrupt(e.to_string()))
}

fn apply(tx: &Connection, change: &Change, receivers: usize) -> Result<(), JournalError> {
    match change {
        Change::Patient(p) => {
            let s = SearchColumns::of(p);
            tx.prepare_cached(
                // An upsert, not `INSERT OR REPLACE`: a replace deletes
                // the old row's index entries first, so SQLite keeps a
                // statement journal (a copy of every page it touches) in
                // case it must undo half of it.
                "INSERT INTO patients(protocol, unit, status, closed_at, body,
                     name_key, document_key, ticket, arrived_at, admitted_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT(protocol) DO UPDATE SET unit = excluded.unit,
                     status = excluded.status, closed_at = excluded.closed_at,
                     body = excluded.body, name_key = excluded.name_key,
                     document_key = excluded.document_key, ticket = excluded.ticket,
                     arrived_at = excluded.arrived_at, admitted_at = excluded.admitted_at",
            )?
            .execute(params![
                p.protocol.as_u64() as i64,
                p.unit.as_str(),
                p.status.as_str(),
                p.closed_at.map(|t| t.timestamp_millis()),
                json(p)?,
                s.name_key,
                s.document_key,
                p.ticket,
                s.arrived_at,
                s.admitted_at,
            ])?;
            write_visit(tx, p)?;
        }
        Change::Event(e) => {
            let display = e.display_json();
            tx.prepare_cached(
                "INSERT INTO events(id, protocol, unit, at, event, actor, details, display)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                e.id as i64,
                e.protocol.as_u64() as i64,
                e.unit.as_str(),
                e.at.timestamp_millis(),
                e.event,
                e.actor,
                json(&e.details)?,
                display,
            ])?;
        }
        Change::Alert(a) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO alerts(id, protocol, unit, state, resolved_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                a.id as i64,
                a.protocol.as_u64() as i64,
                a.unit.as_str(),
                a.state.as_str(),
                a.resolved_at.map(|t| t.timestamp_millis()),
                json(a)?,
            ])?;
        }
        Change::Notify(n) => {
            let alert = json(&n.alert)?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO outbox(receiver, alert_id, event, alert, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for receiver in 0..receivers {
                insert.execute(params![
                    receiver as i64,
                    n.alert.id as i64,
                    n.event.as_str(),
                    alert,
                    chrono::Utc::now().timestamp_millis(),
                ])?;
            }
        }
        Change::Message(m) => {
            tx.prepare_cached(
                "INSERT INTO messages(protocol, channel, event, body, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                m.protocol.as_u64() as i64,
                m.channel.as_str(),
                m.event.as_str(),
                json(m)?,
                chrono::Utc::now().timestamp_millis(),
            ])?;
        }
        Change::Delivery {
            outbox,
            id,
            outcome,
            attempts,
            error,
        } => {
            let table = outbox_table(outbox);
            tx.prepare_cached(&format!(
                "UPDATE {table} SET state = ?2, attempts = ?3, last_error = ?4 WHERE id = ?1"
            ))?
            .execute(params![
                *id as i64,
                outcome.as_str(),
                *attempts as i64,
                error
            ])?;
        }
        Change::Sequence(seq) => {
            set_counter(tx, "sequence", &json(seq)?)?;
        }
        Change::Tickets { unit, counter } => {
            set_counter(tx, &format!("tickets:{unit}"), &json(counter)?)?;
        }
        Change::Idempotency(rec) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO idempotency(key, created_at, protocol, response)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                rec.key,
                rec.created_at.timestamp_millis(),
                rec.protocol.as_u64() as i64,
                rec.response,
            ])?;
        }
        Change::Purge {
            protocols,
            alerts,
            idempotency_before,
        } => {
            let mut del_alert = tx.prepare_cached("DELETE FROM alerts WHERE id = ?1")?;
            for id in alerts {
                del_alert.execute(params![*id as i64])?;
            }
            // Sent notifications of alerts no longer kept, these and earlier
            // purges' (one still pending at its purge was sent after it).
            tx.execute(crate::journal::ORPHAN_NOTIFICATIONS, [])?;
            let mut patients = tx.prepare_cached("DELETE FROM patients WHERE protocol = ?1")?;
            let mut events = tx.prepare_cached("DELETE FROM events WHERE protocol = ?1")?;
            // Messages hold the contact: they go with the patient, sent or not.
            let mut messages = tx.prepare_cached("DELETE FROM messages WHERE protocol = ?1")?;
            let mut visits = tx.prepare_cached("DELETE FROM visits WHERE protocol = ?1")?;
            for p in protocols {
                visits.execute(params![p.as_u64() as i64])?;
                patients.execute(params![p.as_u64() as i64])?;
                events.execute(params![p.as_u64() as i64])?;
                messages.execute(params![p.as_u64() as i64])?;
            }
            tx.execute(
                "DELETE FROM idempotency WHERE created_at < ?1",
                params![idempotency_before.timestamp_millis()],
            )?;
        }
    }
    Ok(())
}

/// Writes a group commit's changes. The counters move with nearly every
/// admission and only their last values matter, so each is written once per
/// commit (the counters table is read by nothing else, so order does not).
/// Applies one command's changes to the open transaction, all but the
/// counters, which `write_counters` writes once before the commit.
pub(crate) fn apply_changes(
    tx: &Connection,
    changes: &[Change],
    receivers: usize,
) -> Result<(), JournalError> {
    for change in changes {
        if !matches!(change, Change::Sequence(_) | Change::Tickets { .. }) {
            apply(tx, change, receivers)?;
        }
    }
    Ok(())
}

/// The protocol and ticket counters of a group commit: only the last value
/// of each counter is written, since each one supersedes the ones before.
/// Returns the protocol sequence written, if the group issued a number.
pub(crate) fn write_counters<'a>(
    tx: &Connection,
    changes: impl Iterator<Item = &'a Change>,
) -> Result<Option<&'a ProtocolSequence>, JournalError> {
    let mut sequence = None;
    let mut tickets: Vec<&'a Change> = Vec::new();
    for change in changes {
        match change {
            Change::Sequence(_) => sequence = Some(change),
            Change::Tickets { unit, .. } => {
                let same =
                    |c: &&mut &Change| matches!(c, Change::Tickets { unit: u, .. } if u == unit);
                match tickets.iter_mut().find(same) {
                    Some(last) => *last = change,
                    None => tickets.push(change),
                }
            }
            _ => {}
        }
    }
    for change in sequence.into_iter().chain(tickets) {
        apply(tx, change, 0)?;
    }
    Ok(sequence.and_then(|c| match c {
        Change::Sequence(s) => Some(s),
        _ => None,
    }))
}

fn set_counter(tx: &Connection, name: &str, value: &str) -> Result<(), JournalError> {
    tx.prepare_cached("INSERT OR REPLACE INTO counters(name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(())
}
