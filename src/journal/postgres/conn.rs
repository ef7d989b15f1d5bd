//! A blocking PostgreSQL connection for the journal's threads, with a
//! deadline on every answer.
//!
//! The `postgres` crate's client waits for ever: a connection to a middlebox
//! that acknowledges what it receives and never forwards it (a proxy, a
//! stopped server whose kernel still answers TCP) is bounded neither by TCP
//! nor by the server's own timeouts, and the writer and every request behind
//! it waited for as long as the stall lasted. Here each answer (each row of a
//! long read) has a deadline; past it the connection is given up for good.

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
    given_up: bool,
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
            given_up: false,
        })
    }

    /// Returns the one it replaces.
    pub(crate) fn set_deadline(&mut self, deadline: Option<Duration>) -> Option<Duration> {
        std::mem::replace(&mut self.deadline, deadline)
    }

    /// Broken, closed by the server, or given up after a missed deadline.
    pub(crate) fn is_closed(&self) -> bool {
        self.given_up || self.client().is_closed()
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("taken only when dropped")
    }

    fn runtime(&self) -> &Runtime {
        self.runtime.as_ref().expect("taken only when dropped")
    }

    /// Refuses a connection already given up.
    fn usable(&self) -> Result<(), JournalError> {
        match self.given_up {
            true => Err(JournalError::NoAnswer(self.deadline.unwrap_or_default())),
            false => Ok(()),
        }
    }

    /// Gives the connection up after a missed deadline.
    fn settle<T>(&mut self, result: Result<T, JournalError>) -> Result<T, JournalError> {
        if matches!(result, Err(JournalError::NoAnswer(_))) {
            self.given_up = true;
        }
        result
    }

    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<(), JournalError> {
        self.usable()?;
        let done = self
            .runtime()
            .block_on(within(self.deadline, self.client().batch_execute(sql)));
        self.settle(done)
    }

    pub(crate) fn prepare(&mut self, sql: &str) -> Result<Statement, JournalError> {
        self.usable()?;
        let done = self
            .runtime()
            .block_on(within(self.deadline, self.client().prepare(sql)));
        self.settle(done)
    }

    pub(crate) fn execute<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, JournalError> {
        self.usable()?;
        let call = self.client().execute(statement, params);
        let done = self.runtime().block_on(within(self.deadline, call));
        self.settle(done)
    }

    pub(crate) fn query_one<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, JournalError> {
        self.usable()?;
        let call = self.client().query_one(statement, params);
        let done = self.runtime().block_on(within(self.deadline, call));
        self.settle(done)
    }

    pub(crate) fn query_opt<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, JournalError> {
        self.usable()?;
        let call = self.client().query_opt(statement, params);
        let done = self.runtime().block_on(within(self.deadline, call));
        self.settle(done)
    }

    /// All the rows, the deadline on each (a large read answers row after
    /// row; a stalled one stops).
    pub(crate) fn query<S: ?Sized + ToStatement + Sync>(
        &mut self,
        statement: &S,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, JournalError> {
        self.usable()?;
        let (deadline, client) = (self.deadline, self.client());
        let done = self.runtime().block_on(async move {
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
        });
        self.settle(done)
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
        self.usable().map_err(|e| (0, e))?;
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
            self.given_up = true;
            let e = results[i].take().and_then(Result::err);
            let why = e.map_or_else(|| "not sent".to_owned(), |e| e.to_string());
            return Err((
                i,
                JournalError::Corrupt(format!("a statement was not sent: {why}")),
            ));
        }
        if timed_out {
            self.given_up = true;
        }
        let commit = statements.len();
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Some(Ok(())) => continue,
                // Said by the server before the COMMIT ran: it rolled back.
                // From the COMMIT itself only an ERROR says so; a FATAL or
                // PANIC may come after the commit record was written.
                Some(Err(e))
                    if e.as_db_error().is_some_and(|db| {
                        i < commit || db.parsed_severity() == Some(Severity::Error)
                    }) =>
                {
                    return Err((i, JournalError::Postgres(e)));
                }
                Some(Err(e)) => {
                    self.given_up = true;
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
            self.given_up = true;
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
                // The server said ERROR (a serialization failure, a deferred
                // constraint): nothing was committed. A FATAL or PANIC may
                // come after the commit record was written.
                Err(JournalError::Postgres(e))
                    if e.as_db_error().and_then(|db| db.parsed_severity())
                        == Some(Severity::Error) =>
                {
                    Err(JournalError::Postgres(e))
                }
                Err(e) => {
                    self.given_up = true;
                    Err(JournalError::OutcomeUnknown(e.to_string()))
                }
            },
            Err(e) => {
                // A failed transaction must end before the next; a connection
                // that cannot say ROLLBACK is of no further use.
                if !self.is_closed() && self.batch_execute("ROLLBACK").is_err() {
                    self.given_up = true;
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
