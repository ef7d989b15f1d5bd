//! The seam between the journal's machinery (the writer thread, group commit,
//! the refusal after a failed commit, the commit observer) and a database.
//! Everything a backend must say in its own SQL is here and nothing else:
//! writing one group of changes, reading the committed state back, and the
//! reads served beside the writer.

use chrono::{DateTime, Utc};

use super::{
    HistoryEntry, JournalError, MessageEntry, MessageStatus, OutboxEntry, PatientSearch,
    ReportData, StreamEvent,
};
use crate::domain::patient::Protocol;
use crate::domain::{Change, Channel, Snapshot, UnitId};

/// The writer thread's side; only that thread uses it.
pub(crate) trait Store: Send {
    /// One command of the group under way, as it arrives (`first` opens the
    /// group). A backend may apply it to an open transaction at once, or
    /// leave everything to [`Store::commit`]. Each notification is queued
    /// once per webhook receiver.
    fn stage(
        &mut self,
        first: bool,
        changes: &[Change],
        receivers: usize,
    ) -> Result<(), JournalError>;

    /// Makes the group durable in one transaction, all or none; `changes`
    /// are all of its commands' changes, in order.
    fn commit(&mut self, changes: &[&Change], receivers: usize) -> Result<(), JournalError>;

    /// Drops whatever was staged (after an error, or a planted fault).
    fn rollback(&mut self);

    /// Proves the database takes writes again after a failure (a write that
    /// changes nothing anybody reads).
    fn probe(&mut self) -> Result<(), JournalError>;

    /// Everything recovery needs, as committed.
    fn snapshot(&mut self) -> Result<Snapshot, JournalError>;
}

/// Reads beside the writer (never through it). Blocking: callers run them on
/// a blocking thread, never under the department lock.
pub(crate) trait Reads: Send + Sync {
    /// Where the journal lives, for logs (a path, or a URL without password).
    fn location(&self) -> String;
    /// Closes what the reads hold open, from a thread that may block (the
    /// journal's shutdown); reads after it fail.
    fn close(&self) {}
    fn history(&self, protocol: Protocol) -> Result<Vec<HistoryEntry>, JournalError>;
    fn search(&self, search: &PatientSearch) -> Result<Vec<Protocol>, JournalError>;
    fn outbox_next(&self, receiver: usize) -> Result<Option<OutboxEntry>, JournalError>;
    fn outbox_pending(&self) -> Result<u64, JournalError>;
    fn report_data(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        unit: Option<&UnitId>,
    ) -> Result<ReportData, JournalError>;
    fn message_next(&self, channel: Channel) -> Result<Option<MessageEntry>, JournalError>;
    fn messages_of(&self, protocol: Protocol) -> Result<Vec<MessageStatus>, JournalError>;
    fn messages_pending(&self, channel: Channel) -> Result<u64, JournalError>;
    fn stream_events(
        &self,
        unit: &str,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StreamEvent>, JournalError>;
}
