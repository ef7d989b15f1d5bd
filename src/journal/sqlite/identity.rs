//! Is the file at the journal's path Triagem's, and whole? Checked before
//! anything writes to it: a file that is another program's, empty or cut
//! short stops start-up with a message saying so, and is left as it was.
//! A file shorter than its header says is whole when the write-ahead log
//! beside it holds the missing pages: that is what a checkpoint cut short by
//! a crash leaves, and SQLite reads those pages from the log.
//! Damage inside an SQLite file that passes these checks shows up as
//! [`JournalError::Damaged`] when recovery reads it, still before any write.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
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
    if let Some((page_size, pages)) = size_in_header(&header) {
        let expected = page_size * u64::from(pages);
        if len < expected {
            if !wal_holds_the_rest(path, page_size, len / page_size, pages) {
                return Err(refuse(format!(
                    "it is truncated: its header says {expected} bytes, the file has {len}, \
                     and its write-ahead log does not hold the rest"
                )));
            }
            tracing::info!(
                bytes = len,
                in_header = expected,
                "the journal's last checkpoint was cut short; its write-ahead log holds the rest"
            );
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

/// The page size and the database size in pages the header vouches for:
/// valid only when the header's "version-valid-for" number equals its change
/// counter (SQLite file format).
fn size_in_header(header: &[u8; HEADER_LEN]) -> Option<(u64, u32)> {
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    let valid = header[24..28] == header[92..96];
    let pages = be_u32(&header[28..32]);
    (valid && pages > 0 && page_size > 0).then_some((page_size, pages))
}

/// Whether every page after the first `on_file` that the database holds is in
/// a committed frame of the write-ahead log beside `path`. The database's
/// size is the one its last commit in the log records, or `in_header` when
/// the log has none. A log of another page size is another database's
/// (SQLite cannot change the page size of a database in WAL mode).
fn wal_holds_the_rest(path: &Path, page_size: u64, on_file: u64, in_header: u32) -> bool {
    let mut wal_path = path.as_os_str().to_owned();
    wal_path.push("-wal");
    let Some((pages, size)) = committed_wal_pages(Path::new(&wal_path), page_size) else {
        return false;
    };
    let size = size.unwrap_or(in_header);
    (on_file + 1..=u64::from(size)).all(|p| u32::try_from(p).is_ok_and(|p| pages.contains(&p)))
}

const WAL_HEADER_LEN: u64 = 32;
const FRAME_HEADER_LEN: u64 = 24;

/// The pages in the log's committed frames, and the database size its last
/// commit records; `None` when there is no log, it is not one, or its pages
/// are not `page_size` bytes. A frame belongs to the log's current
/// generation when it carries the header's salts (SQLite's write-ahead log
/// format). Checksums are not verified: at worst a torn last commit is
/// counted, and a page it lacked then reads as damage when recovery reads it.
fn committed_wal_pages(wal_path: &Path, page_size: u64) -> Option<(HashSet<u32>, Option<u32>)> {
    let mut wal = File::open(wal_path).ok()?;
    let mut header = [0u8; WAL_HEADER_LEN as usize];
    wal.read_exact(&mut header).ok()?;
    if !matches!(be_u32(&header[0..4]), 0x377f_0682 | 0x377f_0683) {
        return None;
    }
    if u64::from(be_u32(&header[8..12])) != page_size {
        return None;
    }
    let len = wal.metadata().ok()?.len();
    let salts = &header[16..24];
    let (mut committed, mut pending, mut size) = (HashSet::new(), Vec::new(), None);
    let mut frame = [0u8; FRAME_HEADER_LEN as usize];
    for i in 0.. {
        let at = WAL_HEADER_LEN + i * (FRAME_HEADER_LEN + page_size);
        if at + FRAME_HEADER_LEN + page_size > len
            || wal.seek(SeekFrom::Start(at)).is_err()
            || wal.read_exact(&mut frame).is_err()
            || &frame[8..16] != salts
        {
            break;
        }
        pending.push(be_u32(&frame[0..4]));
        let commit = be_u32(&frame[4..8]);
        if commit > 0 {
            committed.extend(pending.drain(..));
            size = Some(commit);
        }
    }
    Some((committed, size))
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
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
