//! The last protocol number issued, kept in a file of its own beside the
//! journal (`triagem.issued`). A journal restored from a backup has forgotten
//! the patients admitted after it, and would issue their protocol numbers
//! again, and with them the same check codes: the first patient's receipt
//! would open the second one's case. The restore puts back the database file
//! only, so this file still holds the last number issued and start-up goes on
//! after it.
//!
//! Written after each commit that issued a number, without an fsync: the
//! journal is the record, and this file is only ever behind it (after a
//! crash) or ahead of a restored one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::domain::numbering::ProtocolSequence;
use crate::journal::JournalError;

pub const ISSUED_FILE: &str = "triagem.issued";

/// One fixed-size record, rewritten whole, so no older tail is left behind.
const RECORD: usize = 64;

pub(super) struct Issued {
    file: File,
    path: PathBuf,
    /// A failed write is logged once: the journal goes on without the mark.
    warned: bool,
}

impl Issued {
    pub(super) fn open(data_dir: &Path) -> Result<Self, JournalError> {
        let (file, path) = super::data_file(data_dir, ISSUED_FILE)?;
        Ok(Self {
            file,
            path,
            warned: false,
        })
    }

    /// The number last written, if the file holds one.
    fn read(&mut self) -> Option<ProtocolSequence> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0)).ok()?;
        (&self.file)
            .take(RECORD as u64)
            .read_to_string(&mut text)
            .ok()?;
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match serde_json::from_str(text) {
            Ok(sequence) => Some(sequence),
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "the last protocol number issued cannot be read; numbering goes on from the journal");
                None
            }
        }
    }

    pub(super) fn write(&mut self, sequence: &ProtocolSequence) {
        let mut record = serde_json::to_string(sequence).unwrap_or_default();
        record.extend(std::iter::repeat_n(
            ' ',
            RECORD.saturating_sub(record.len() + 1),
        ));
        record.push('\n');
        let written = self
            .file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.write_all(record.as_bytes()));
        if let Err(e) = written {
            if !std::mem::replace(&mut self.warned, true) {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot note the last protocol number issued; a journal restored from a backup could issue numbers again");
            }
        }
    }

    /// Raises the journal's sequence to the last number issued, when the
    /// journal is behind it (restored from a backup).
    pub(super) fn raise(&mut self, journal: &mut Option<ProtocolSequence>) {
        let Some(issued) = self.read() else {
            return;
        };
        if journal.is_none_or(|j| j < issued) {
            tracing::warn!(
                journal_year = journal.map(|j| j.year),
                journal_last = journal.map(|j| j.last),
                issued_year = issued.year,
                issued_last = issued.last,
                "the journal is behind the protocol numbers already issued (restored from a backup?): numbering goes on after the last one issued, so none is given twice"
            );
            *journal = Some(issued);
        }
    }
}
