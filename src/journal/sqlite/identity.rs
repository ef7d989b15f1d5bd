//! Is the file at the journal's path Triagem's, and whole? Checked before
//! anything writes to it: a file that is another program's, empty or cut
//! short stops start-up with a message saying so, and is left as it was.
//! Damage inside an SQLite file that passes these checks shows up as
//! [`JournalError::Damaged`] when recovery reads it, still before any write.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::schema::{APPLICATION_ID, SCHEMA_VERSION};
use crate::journal::JournalError;

/// The first 16 bytes of every SQLite database file.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
const HEADER_LEN: usize = 100;

/// Refuses a file that must not be opened for writing; a missing file is a
/// new journal.
pub(super) fn check(path: &Path) -> Result<(), JournalError> {
    let refuse = |why: String| JournalError::NotOurs {
        path: path.to_owned(),
        why,
    };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(refuse(format!("it cannot be read ({e})"))),
    };
    let len = file
        .metadata()
        .map_err(|e| refuse(format!("it cannot be read ({e})")))?
        .len();
    if len == 0 {
        return Err(refuse(
            "it is empty: a journal that was truncated, or a file put there by hand".into(),
        ));
    }
    let mut header = [0u8; HEADER_LEN];
    if file.read_exact(&mut header).is_err() {
        return Err(refuse(format!(
            "it is {len} bytes, shorter than a database header: truncated, or not a database"
        )));
    }
    if &header[..16] != SQLITE_MAGIC {
        return Err(refuse("it is not an SQLite database".into()));
    }
    if let Some(expected) = size_in_header(&header) {
        if len < expected {
            return Err(refuse(format!(
                "it is truncated: its header says {expected} bytes, the file has {len}"
            )));
        }
    }
    if be_i32(&header[68..72]) == APPLICATION_ID {
        return Ok(());
    }
    // The header on disk may predate pages still in the write-ahead log, or
    // the file may be an older Triagem's, from before the application id: ask
    // SQLite, read-only.
    identify(path).map_err(refuse)
}

/// The database size the header vouches for: valid only when the header's
/// "version-valid-for" number equals its change counter (SQLite file format).
fn size_in_header(header: &[u8; HEADER_LEN]) -> Option<u64> {
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let valid = header[24..28] == header[92..96];
    let pages = u64::from(u32::from_be_bytes([
        header[28], header[29], header[30], header[31],
    ]));
    (valid && pages > 0).then_some(pages * page_size)
}

fn be_i32(b: &[u8]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// `Ok` for an empty database, a Triagem journal, or an older Triagem's
/// (schema 1 to this one, with its tables); why not, otherwise.
fn identify(path: &Path) -> Result<(), String> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let unreadable = |e: rusqlite::Error| format!("SQLite cannot read it ({e})");
    let conn = Connection::open_with_flags(path, flags).map_err(unreadable)?;
    let application_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(unreadable)?;
    if application_id == APPLICATION_ID {
        return Ok(());
    }
    if application_id != 0 {
        return Err(format!(
            "it belongs to another program (SQLite application id {application_id:#x})"
        ));
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(unreadable)?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(unreadable)?;
    let ours = |t: &str| tables.iter().any(|n| n == t);
    if tables.is_empty() && version == 0 {
        return Ok(()); // a database nothing was written to yet
    }
    if (1..=SCHEMA_VERSION).contains(&version) && ours("patients") && ours("counters") {
        return Ok(());
    }
    Err(format!(
        "it is an SQLite database of something else (schema version {version}, tables: {})",
        if tables.is_empty() {
            "none".to_owned()
        } else {
            tables.join(", ")
        }
    ))
}
