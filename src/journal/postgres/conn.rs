//! A blocking PostgreSQL connection for the journal's threads, with a
//! deadline on every answer.
//!
//! The `postgres` crate's client waits for ever: a connection to a middlebox
//! that acknowledges what it receives and never forwards it (a proxy, a
//! stopped server whose kernel still answers TCP) is bounded neither by TCP
//! nor by the server's own timeouts, and the writer and every request behind
//! it waited for as long as the stall lasted. Here each answer (each row of a
//! long read) has a deadline; past it the connection is given up for good.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::runtime::Runtime;
use tokio_postgres::error::Severity;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement, ToStatement};

use crate::journal::JournalError;

pub(crate) struct Conn {
    /// Drives the connection, and only while a call waits on it: the journal's
    /// threads are not tokio's. Both taken only by [`Drop`].
    runtime: Option<Runtime>,
    client: Option<Client>,
    /// How long one answer may take; `None` waits (migration, behind the
    /// other instance's lock).
    deadline: Option<Duration>,
    /// An answer missed its deadline: whatever follows on this connection
    /// would queue behind it, so nothing more is sent on it.
    given_up: Cell<bool>,
}

impl Conn {
    /// Connects, the handshake (TCP, start-up, authentication) bounded by
    /// `handshake`; then each answer by `deadline`.
    pub(crate) fn open(
        config: &tokio_postgres::Config,
        handshake: Duration,
        deadline: Option<Duration>,
    ) -> Result<Self, JournalError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| JournalError::Corrupt(format!("a runtime for PostgreSQL: {e}")))?;
        let connecting = within(Some(handshake), config.connect(NoTls));
        let (client, connection) = match runtime.block_on(connecting) {
            Ok(connected) => connected,
            Err(e) => {
                // As in `Drop`: never blocks, whatever the thread.
                runtime.shutdown_background();
                return Err(e);
            }
        };
        // Its error, if any, reaches the client's next call.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        Ok(Self {
            runtime: Some(runtime),
            client: Some(client),
            deadline,
            given_up: Cell::new(false),
        })
    }

    /// Returns the one it replaces.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Duration>) -> Option<Duration> {
        std::mem::replace(&mut self.deadline, deadline)
    }

    /// Broken, closed by the server, or given up after a missed deadline.
    pub(crate) fn is_closed(&self) -> bool {
        self.given_up.get() || self.client().is_closed()
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("taken only when dropped")
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("taken only when dropped")
    }

    /// Runs `call` on this connection, unless it was given up; a missed
    /// deadline gives it up.
    fn wait<T>(
        &self,
        call: impl Future<Output = Result<T, JournalError>>,
    ) -> Result<T, JournalError> {
        if self.given_up.get() {
            return Err(JournalError::NoAnswer(self.deadline.unwrap_or_default()));
        }
        let done = self.runtime().block_on(call);
        if matches!(done, Err(JournalError::NoAnswer(_))) {
            self.given_up.set(true);
        }
        done
    }

    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), JournalError> {
        self.wait(within(self.deadline, self.client().batch_execute(sql)))
    }

    /// Prepares them all at once: their messages go out together, so a new
    /// connection pays one round trip for them, not one each.
    pub(crate) fn prepare_many(&mut self, sqls: &[&str]) -> Result<Vec<Statement>, JournalError> {
        let client = self.client();
        let all = futures_util::future::try_join_all(sqls.iter().map(|sql| client.prepare(sql)));
        self.wait(within(self.deadline, all))
    }

    pub(crate) fn execute<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, JournalError> {
        self.wait(within(
            self.deadline,
            self.client().execute(statement, params),
        ))
    }

    pub(crate) fn query_one<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, JournalError> {
        self.wait(within(
            self.deadline,
            self.client().query_one(statement, params),
        ))
    }

    pub(crate) fn query_opt<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, JournalError> {
        self.wait(within(
            self.deadline,
            self.client().query_opt(statement, params),
        ))
    }

    /// All the rows, the deadline on each (a large read answers row after
    /// row; a stalled one stops).
    pub(crate) fn query<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, JournalError> {
        let (deadline, client) = (self.deadline, self.client());
        self.wait(async move {
            let stream = within(
                deadline,
                client.query_raw(statement, params.iter().copied()),
            );
            let mut stream = std::pin::pin!(stream.await?);
            let mut rows = Vec::new();
            loop {
                let next = async { Ok::<_, JournalError>(stream.next().await) };
                match within(deadline, next).await? {
                    Some(row) => rows.push(row?),
                    None => return Ok(rows),
                }
            }
        })
    }

    /// Sends every statement of an open transaction, then COMMIT, without
    /// waiting for one answer before sending the next (the server runs them
    /// in order): one round trip instead of one each. Once an answer is an
    /// error the transaction is aborted, and the COMMIT behind it rolls back.
    /// Err: the first step that failed (`statements.len()` for the COMMIT),
    /// with [`JournalError::OutcomeUnknown`] when nothing says whether the
    /// COMMIT ran (an answer missing, the connection lost).
    pub(crate) fn commit_pipelined(
        &mut self,
        statements: &[(&Statement, &[&(dyn ToSql + Sync)])],
        answered: impl Fn(),
    ) -> Result<(), (usize, JournalError)> {
        if self.given_up.get() {
            return Err((0, JournalError::NoAnswer(self.deadline.unwrap_or_default())));
        }
        let (deadline, client) = (self.deadline, self.client());
        type Call<'c> = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + 'c>>;
        let mut calls: Vec<Call<'_>> = statements
            .iter()
            .map(|(statement, params)| -> Call<'_> {
                Box::pin(async move { client.execute(*statement, params).await.map(|_| ()) })
            })
            .collect();
        let mut results: Vec<Option<Result<(), tokio_postgres::Error>>> =
            calls.iter().map(|_| None).collect();
        let (timed_out, unsent) = self.runtime().block_on(async {
            // Polled once each, in order: a call's first poll sends its
            // request, so the server receives them in this order. One that
            // is done at once was never sent (its values could not be
            // encoded, the connection is closed): the COMMIT must not follow,
            // or the rest would commit without it.
            let first = std::future::poll_fn(|cx| {
                let unsent = calls
                    .iter_mut()
                    .zip(results.iter_mut())
                    .enumerate()
                    .find_map(|(i, (call, result))| match call.as_mut().poll(cx) {
                        Poll::Ready(r) => {
                            *result = Some(r);
                            Some(i)
                        }
                        Poll::Pending => None,
                    });
                Poll::Ready(unsent)
            })
            .await;
            if first.is_some() {
                return (false, first);
            }
            calls.push(Box::pin(client.batch_execute("COMMIT")));
            results.push(None);
            let mut done = 0;
            while done < calls.len() {
                let progress = std::future::poll_fn(|cx| {
                    let before = done;
                    for (call, result) in calls.iter_mut().zip(results.iter_mut()) {
                        if result.is_none() {
                            if let Poll::Ready(r) = call.as_mut().poll(cx) {
                                *result = Some(r);
                                done += 1;
                            }
                        }
                    }
                    match done > before {
                        true => Poll::Ready(()),
                        false => Poll::Pending,
                    }
                });
                match deadline {
                    Some(d) => {
                        if tokio::time::timeout(d, progress).await.is_err() {
                            return (true, None);
                        }
                    }
                    None => progress.await,
                }
                answered();
            }
            (false, None)
        });
        drop(calls);
        if let Some(i) = unsent {
            // Its transaction ends with the connection, uncommitted.
            self.given_up.set(true);
            let e = results[i].take().and_then(Result::err);
            let why = e.map_or_else(|| "not sent".to_owned(), |e| e.to_string());
            return Err((
                i,
                JournalError::Corrupt(format!("a statement was not sent: {why}")),
            ));
        }
        if timed_out {
            self.given_up.set(true);
        }
        let commit = statements.len();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Some(Ok(())) => continue,
                // Said by the server before the COMMIT ran: it rolled back.
                Some(Err(e)) if (i < commit && e.as_db_error().is_some()) || commit_refused(&e) => {
                    return Err((i, JournalError::Postgres(e)));
                }
                Some(Err(e)) => {
                    self.given_up.set(true);
                    return Err((i, JournalError::OutcomeUnknown(e.to_string())));
                }
                None => {
                    let waited = deadline.unwrap_or_default();
                    return Err((
                        i,
                        JournalError::OutcomeUnknown(JournalError::NoAnswer(waited).to_string()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Opens a transaction with `sql` ("BEGIN" and its options). A connection
    /// that cannot is given up: it may be left inside an aborted one.
    pub(crate) fn begin(&mut self, sql: &str) -> Result<(), JournalError> {
        let begun = self.batch_execute(sql);
        if begun.is_err() {
            self.given_up.set(true);
        }
        begun
    }

    /// Runs `body` in a transaction opened with `begin` ("BEGIN" and its
    /// options): committed if it returns `Ok`, else rolled back. A COMMIT
    /// whose answer does not come leaves the outcome unknown:
    /// [`JournalError::OutcomeUnknown`].
    pub(crate) fn transaction<T>(
        &mut self,
        begin: &str,
        body: impl FnOnce(&mut Self) -> Result<T, JournalError>,
    ) -> Result<T, JournalError> {
        self.begin(begin)?;
        match body(self) {
            Ok(value) => match self.batch_execute("COMMIT") {
                Ok(()) => Ok(value),
                Err(JournalError::Postgres(e)) if commit_refused(&e) => {
                    Err(JournalError::Postgres(e))
                }
                Err(e) => {
                    self.given_up.set(true);
                    Err(JournalError::OutcomeUnknown(e.to_string()))
                }
            },
            Err(e) => {
                // A failed transaction must end before the next; a connection
                // that cannot say ROLLBACK is of no further use.
                if !self.is_closed() && self.batch_execute("ROLLBACK").is_err() {
                    self.given_up.set(true);
                }
                Err(e)
            }
        }
    }
}

impl Drop for Conn {
    /// Without waiting: the runtime's tasks (the connection) are dropped,
    /// which closes the socket. The server logs nothing for a client gone
    /// outside a transaction, and this is safe on any thread (a runtime
    /// dropped the ordinary way panics on one of tokio's).
    fn drop(&mut self) {
        drop(self.client.take());
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Whether a COMMIT's error says nothing was committed: only an ERROR does
/// (a serialization failure, a deferred constraint); a FATAL or PANIC may
/// come after the commit record was written.
fn commit_refused(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().and_then(|db| db.parsed_severity()) == Some(Severity::Error)
}

/// `call`, unless no answer comes within `deadline`.
async fn within<T, E: Into<JournalError>>(
    deadline: Option<Duration>,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, JournalError> {
    match deadline {
        None => call.await.map_err(Into::into),
        Some(d) => match tokio::time::timeout(d, call).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(JournalError::NoAnswer(d)),
        },
    }
}
