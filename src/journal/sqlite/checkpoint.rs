//! Checkpoints beside the writer.
//!
//! SQLite's own checkpoint runs inside the commit that crosses 1 000 WAL
//! pages: that batch, and everything queued behind it, waited for ~260
//! database pages and the database's fsync (5–10 ms every ~40 commits under
//! load: most of the call-next p99). This thread copies the WAL into the
//! database on a connection of its own every few commits, so when the
//! writer's checkpoint comes due almost nothing is left to copy. The writer
//! keeps its own checkpoint because only it can restart the WAL: a
//! checkpointer alone never catches up with a busy writer, and the WAL would
//! grow without bound.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use super::open_connection;
use crate::journal::JournalError;

/// Commits between two wake-ups (~30 WAL pages each under load).
const EVERY: u64 = 4;

pub(super) struct Checkpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    commits: u64,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Self, JournalError> {
        let conn = open_connection(path)?;
        // A full queue means a checkpoint is already due: nothing to add.
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("journal-checkpoint".into())
            .spawn(move || {
                crate::journal::raise_priority("journal-checkpoint");
                let mut failing = false;
                while woken.recv().is_ok() {
                    // PASSIVE never waits for the writer; a busy or failed
                    // checkpoint is left to the writer's own.
                    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        Ok(()) => failing = false,
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "background checkpoint failed; the writer checkpoints alone");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|e| JournalError::Corrupt(format!("cannot start checkpoint thread: {e}")))?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
            commits: 0,
        })
    }

    /// Called after each commit.
    pub(super) fn committed(&mut self) {
        self.commits += 1;
        if self.commits.is_multiple_of(EVERY) {
            if let Some(wake) = &self.wake {
                let _ = wake.try_send(());
            }
        }
    }
}

impl Drop for Checkpointer {
    /// Ends the thread once its checkpoint, if any, is done.
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
