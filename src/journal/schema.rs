//! Table layout and how each [`Change`] is written. Patients are stored whole
//! (JSON) and keyed by protocol number, so recovery is a plain reload.

use rusqlite::{params, Connection, Transaction};

use super::JournalError;
use crate::domain::Change;

const SCHEMA_VERSION: i64 = 1;

pub(super) fn migrate(conn: &Connection) -> Result<(), JournalError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::Corrupt(format!(
            "the journal was written by a newer Triagem (schema {version}, this one knows {SCHEMA_VERSION})"
        )));
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
             details  TEXT NOT NULL
         );
         CREATE INDEX IF NOT EXISTS events_by_protocol ON events(protocol, id);
         CREATE INDEX IF NOT EXISTS events_by_unit ON events(unit, id);
         CREATE TABLE IF NOT EXISTS counters (
             name  TEXT PRIMARY KEY,
             value TEXT NOT NULL
         );
         CREATE TABLE IF NOT EXISTS idempotency (
             key        TEXT PRIMARY KEY,
             created_at INTEGER NOT NULL,
             protocol   INTEGER NOT NULL,
             response   TEXT NOT NULL
         );",
    )?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, JournalError> {
    serde_json::to_string(v).map_err(|e| JournalError::Corrupt(e.to_string()))
}

pub(super) fn apply(tx: &Transaction<'_>, change: &Change) -> Result<(), JournalError> {
    match change {
        Change::Patient(p) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO patients(protocol, unit, status, closed_at, body)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                p.protocol.as_u64() as i64,
                p.unit,
                p.status.as_str(),
                p.closed_at.map(|t| t.timestamp_millis()),
                json(p)?,
            ])?;
        }
        Change::Event(e) => {
            tx.prepare_cached(
                "INSERT INTO events(protocol, unit, at, event, actor, details)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                e.protocol.as_u64() as i64,
                e.unit,
                e.at.timestamp_millis(),
                e.event,
                e.actor,
                json(&e.details)?,
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
                json(&rec.response)?,
            ])?;
        }
        Change::Purge {
            protocols,
            idempotency_before,
        } => {
            let mut patients = tx.prepare_cached("DELETE FROM patients WHERE protocol = ?1")?;
            let mut events = tx.prepare_cached("DELETE FROM events WHERE protocol = ?1")?;
            for p in protocols {
                patients.execute(params![p.as_u64() as i64])?;
                events.execute(params![p.as_u64() as i64])?;
            }
            tx.execute(
                "DELETE FROM idempotency WHERE created_at < ?1",
                params![idempotency_before.timestamp_millis()],
            )?;
        }
    }
    Ok(())
}

fn set_counter(tx: &Transaction<'_>, name: &str, value: &str) -> Result<(), JournalError> {
    tx.prepare_cached("INSERT OR REPLACE INTO counters(name, value) VALUES (?1, ?2)")?
        .execute(params![name, value])?;
    Ok(())
}
