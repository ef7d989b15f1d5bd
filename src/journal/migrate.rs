//! `triagem migrate`: copies a SQLite journal into an empty PostgreSQL
//! database in one transaction, then checks the copy: every table's row
//! count, the protocol sequence (the next number) and the ticket counters.

use std::path::Path;

use rusqlite::OpenFlags;
use tokio_postgres::types::ToSql;

use super::postgres::{connect, schema as pg_schema, Conn};
use super::sqlite::{lock_data_dir, schema as sqlite_schema, DB_FILE};
use super::JournalError;
use crate::domain::numbering::ProtocolSequence;

/// The type of a copied column.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
}
use Col::{Int, Text};

/// Every table the journal keeps, with its columns (the lease is not copied:
/// it is the new database's own).
const TABLES: &[(&str, &[(&str, Col)])] = &[
    (
        "patients",
        &[
            ("protocol", Int),
            ("unit", Text),
            ("status", Text),
            ("closed_at", Int),
            ("body", Text),
            ("name_key", Text),
            ("document_key", Text),
            ("ticket", Text),
            ("arrived_at", Int),
            ("admitted_at", Int),
        ],
    ),
    (
        "events",
        &[
            ("id", Int),
            ("protocol", Int),
            ("unit", Text),
            ("at", Int),
            ("event", Text),
            ("actor", Text),
            ("details", Text),
            ("display", Text),
        ],
    ),
    (
        "alerts",
        &[
            ("id", Int),
            ("protocol", Int),
            ("unit", Text),
            ("state", Text),
            ("resolved_at", Int),
            ("body", Text),
        ],
    ),
    (
        "outbox",
        &[
            ("id", Int),
            ("receiver", Int),
            ("alert_id", Int),
            ("event", Text),
            ("alert", Text),
            ("state", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("last_error", Text),
        ],
    ),
    (
        "messages",
        &[
            ("id", Int),
            ("protocol", Int),
            ("channel", Text),
            ("event", Text),
            ("body", Text),
            ("state", Text),
            ("attempts", Int),
            ("created_at", Int),
            ("last_error", Text),
        ],
    ),
    (
        "idempotency",
        &[
            ("key", Text),
            ("created_at", Int),
            ("protocol", Int),
            ("response", Text),
        ],
    ),
    (
        "visits",
        &[
            ("protocol", Int),
            ("unit", Text),
            ("arrived_at", Int),
            ("first_triaged_at", Int),
            ("colour", Text),
            ("classified_max", Int),
            ("call_at", Int),
            ("call_colour", Text),
            ("call_clock_start", Int),
            ("call_max", Int),
            ("status", Text),
            ("closed_at", Int),
            ("outcome", Text),
            ("leave_reason", Text),
        ],
    ),
    ("counters", &[("name", Text), ("value", Text)]),
];

/// Rows copied per statement.
const CHUNK: usize = 5000;

/// What was copied and checked.
#[derive(Debug)]
pub struct Migrated {
    /// Rows per table, equal on both sides.
    pub tables: Vec<(&'static str, u64)>,
    /// The last protocol number issued (the next is one more), the same on both sides.
    pub sequence: Option<ProtocolSequence>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("no SQLite journal at {0}")]
    NoJournal(String),
    #[error("the PostgreSQL database is not empty ({0}); migrate only into a new database")]
    NotEmpty(String),
    #[error("the copy does not match: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Journal(#[from] JournalError),
}

impl From<rusqlite::Error> for MigrateError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Journal(e.into())
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Journal(e.into())
    }
}

/// One column's values, read from SQLite.
enum Values {
    Int(Vec<Option<i64>>),
    Text(Vec<Option<String>>),
}

/// Copies the SQLite journal in `data_dir` into the database at `url`.
/// Stop the service first: the journal must not change meanwhile.
pub fn sqlite_to_postgres(data_dir: &Path, url: &str) -> Result<Migrated, MigrateError> {
    let path = data_dir.join(DB_FILE);
    if !path.exists() {
        return Err(MigrateError::NoJournal(path.display().to_string()));
    }
    // Refused while a server has the journal: the copy would be of a
    // journal still changing, and what it wrote after would be lost.
    let _lock = lock_data_dir(data_dir)?;
    // Brought to the current schema first, as `serve` would.
    {
        let conn = rusqlite::Connection::open(&path)?;
        sqlite_schema::migrate(&conn)?;
    }
    let lite = rusqlite::Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // No deadline: a one-off copy, watched by the operator.
    let mut pg = connect(url, std::time::Duration::from_secs(30), None)?;
    pg_schema::migrate(&mut pg)?;
    // An error ends the process and its connection, which rolls back.
    pg.batch_execute("BEGIN")?;
    let tx = &mut pg;
    tx.batch_execute("SET LOCAL idle_in_transaction_session_timeout = 0")?;
    for (table, _) in TABLES.iter().filter(|(t, _)| *t != "counters") {
        let n: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {table}"), &[])?
            .get(0);
        if n > 0 {
            return Err(MigrateError::NotEmpty(format!("{table} has {n} rows")));
        }
    }
    if tx
        .query_opt("SELECT 1 FROM counters WHERE name = 'sequence'", &[])?
        .is_some()
    {
        return Err(MigrateError::NotEmpty("a protocol sequence exists".into()));
    }
    // An instance has led on it (or leads now): it holds its own state, and
    // would serve the copy under its own delivery-id prefix.
    let term: i64 = tx
        .query_one("SELECT COALESCE(MAX(term), 0) FROM lease", &[])?
        .get(0);
    if term > 0 {
        return Err(MigrateError::NotEmpty(format!(
            "an instance has led on it (lease term {term}); stop it and use a new database"
        )));
    }
    // The installation's own values come along (delivery ids, check codes).
    tx.execute(
        "DELETE FROM counters WHERE name IN ('instance', 'check_secret')",
        &[],
    )?;
    let lite_tx = lite.unchecked_transaction()?;
    let mut tables = Vec::new();
    for (table, cols) in TABLES {
        let filter = if *table == "counters" {
            " WHERE name NOT IN ('schema', 'last_write_probe')"
        } else {
            ""
        };
        let names: Vec<&str> = cols.iter().map(|(c, _)| *c).collect();
        let select = format!("SELECT {} FROM {table}{filter}", names.join(", "));
        let mut stmt = lite_tx.prepare(&select)?;
        let mut rows = stmt.query([])?;
        let mut copied = 0u64;
        loop {
            let mut values: Vec<Values> = cols
                .iter()
                .map(|(_, kind)| match kind {
                    Int => Values::Int(Vec::new()),
                    Text => Values::Text(Vec::new()),
                })
                .collect();
            let mut n = 0;
            while n < CHUNK {
                let Some(row) = rows.next()? else { break };
                for (i, v) in values.iter_mut().enumerate() {
                    match v {
                        Values::Int(v) => v.push(row.get(i)?),
                        Values::Text(v) => v.push(row.get(i)?),
                    }
                }
                n += 1;
            }
            if n == 0 {
                break;
            }
            let casts: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, (_, kind))| match kind {
                    Int => format!("${}::bigint[]", i + 1),
                    Text => format!("${}::text[]", i + 1),
                })
                .collect();
            let params: Vec<&(dyn ToSql + Sync)> = values
                .iter()
                .map(|v| match v {
                    Values::Int(v) => v as &(dyn ToSql + Sync),
                    Values::Text(v) => v as &(dyn ToSql + Sync),
                })
                .collect();
            tx.execute(
                &format!(
                    "INSERT INTO {table}({}) SELECT * FROM UNNEST({})",
                    names.join(", "),
                    casts.join(", ")
                ),
                &params,
            )?;
            copied += n as u64;
        }
        tables.push((*table, copied));
    }
    // Ids never repeat, also those of rows purged before the copy.
    let seq = |name: &str| -> Result<i64, rusqlite::Error> {
        use rusqlite::OptionalExtension;
        Ok(lite_tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0))
    };
    for (table, counter) in [("events", "last_event_id"), ("alerts", "last_alert_id")] {
        tx.execute(
            "INSERT INTO counters(name, value) VALUES ($1, $2::bigint::text)
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
            &[&counter, &seq(table)?],
        )?;
    }
    for table in ["outbox", "messages"] {
        let last = seq(table)?;
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                     GREATEST($1, (SELECT COALESCE(MAX(id), 0) FROM {table}), 1),
                     GREATEST($1, (SELECT COALESCE(MAX(id), 0) FROM {table})) > 0)"
            ),
            &[&last],
        )?;
    }
    tx.batch_execute("COMMIT")?;
    let sequence = verify(&lite_tx, &mut pg, &tables)?;
    Ok(Migrated { tables, sequence })
}

/// Reads the copy back: the same rows per table and the same counters.
fn verify(
    lite: &rusqlite::Transaction<'_>,
    pg: &mut Conn,
    tables: &[(&'static str, u64)],
) -> Result<Option<ProtocolSequence>, MigrateError> {
    for (table, copied) in tables {
        let filter = if *table == "counters" {
            " WHERE name NOT IN ('schema', 'last_write_probe', 'last_event_id', 'last_alert_id')"
        } else {
            ""
        };
        let sql = format!("SELECT COUNT(*) FROM {table}{filter}");
        let there: i64 = pg.query_one(&sql, &[])?.get(0);
        let here: i64 = lite.query_row(&sql, [], |r| r.get(0))?;
        if there != here || here as u64 != *copied {
            return Err(MigrateError::Mismatch(format!(
                "{table}: {here} rows in SQLite, {there} in PostgreSQL"
            )));
        }
    }
    let counters = "SELECT name, value FROM counters
                    WHERE name = 'sequence' OR name LIKE 'tickets:%' ORDER BY name";
    let here: Vec<(String, String)> = lite
        .prepare(counters)?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let there: Vec<(String, String)> = pg
        .query(counters, &[])?
        .into_iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if here != there {
        return Err(MigrateError::Mismatch(
            "the protocol sequence or the ticket counters differ".into(),
        ));
    }
    here.iter()
        .find(|(name, _)| name == "sequence")
        .map(|(_, v)| super::parse_json::<ProtocolSequence>("sequence", v))
        .transpose()
        .map_err(MigrateError::from)
}
