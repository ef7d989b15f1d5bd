//! Wiring, and the only module that knows every other one: [`Application`]
//! builds the service and the HTTP server on a listener it is given (port 0 in
//! tests), recovers the journal in the background, owns the background tasks
//! and stops everything in order: the server, then the scheduler, the
//! webhook senders and the maintenance task, then the journal.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::journal::Journal;
use crate::service::Service;
use crate::{http, maintenance, outbox, scheduler};

/// How long a background task may take to stop once told to; then it is aborted.
const TASK_GRACE: Duration = Duration::from_secs(10);
/// How long stopping waits for the journal's writer to finish its commit.
const JOURNAL_CLOSE: Duration = Duration::from_secs(5);
/// How long requests in flight may take to finish at a graceful stop.
const SHUTDOWN_TIMEOUT_SECS: u64 = 10;
/// Pause before trying again to rebuild memory as a new leader.
const LEAD_RETRY: Duration = Duration::from_secs(1);

/// A bound, not yet running service.
pub struct Application {
    port: u16,
    service: Service,
    server: actix_web::dev::Server,
}

/// Makes the kernel close a connection whose client has accepted none of our
/// data for `timeout` (zero window or no ACK): actix stops writing to a client
/// that does not read, and would otherwise keep it, and its event stream, for
/// ever. Linux only; elsewhere the option is not set.
fn send_timeout(conn: &dyn std::any::Any, timeout: Duration) {
    #[cfg(target_os = "linux")]
    if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
        if let Err(e) = socket2::SockRef::from(tcp).set_tcp_user_timeout(Some(timeout)) {
            tracing::warn!(error = %e, "cannot set TCP_USER_TIMEOUT on a connection");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (conn, timeout);
}

impl Application {
    /// Binds the service to `listener` with the given clock.
    pub fn build(
        config: Config,
        listener: TcpListener,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let service = Service::new(Arc::new(config), clock);
        let api = http::Api::new(service.clone());
        let origins = service.config().server.cors_origins.clone();
        let limits = service.config().server.clone();
        let server = HttpServer::new(move || {
            App::new()
                // Every answer, not only the pages: a browser must never read
                // a JSON, CSV or SVG answer as something it would run, nor
                // keep one (names, documents, check codes) in its cache on a
                // shared ward PC; the pages and streams say their own.
                .wrap(
                    actix_web::middleware::DefaultHeaders::new()
                        .add((actix_web::http::header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
                        .add((actix_web::http::header::CACHE_CONTROL, "no-store")),
                )
                .wrap(actix_web::middleware::from_fn(http::observe))
                // Outermost, so a browser's preflight (which carries no token) is
                // answered before the role check.
                .wrap(actix_web::middleware::Condition::new(
                    !origins.is_empty(),
                    http::cors(&origins),
                ))
                .configure(|cfg| api.configure(cfg))
        })
        .max_connections(limits.max_connections)
        .client_request_timeout(limits.request_head_timeout)
        .keep_alive(limits.keep_alive)
        .on_connect(move |conn, _| send_timeout(conn, limits.send_timeout))
        .listen(listener)?
        .shutdown_timeout(SHUTDOWN_TIMEOUT_SECS)
        // Signals are ours: event streams must be told to end first (see StopHandle).
        .disable_signals()
        .run();
        Ok(Self {
            port,
            service,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn service(&self) -> Service {
        self.service.clone()
    }

    /// Stops the server from outside (tests restart the service on the same data dir).
    pub fn handle(&self) -> StopHandle {
        StopHandle {
            server: self.server.handle(),
            service: self.service.clone(),
        }
    }

    /// Serves until SIGTERM/SIGINT or a [`StopHandle`] stops it, then stops the
    /// background tasks and closes the journal. An error if recovery failed or a
    /// task had to be aborted.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let service = self.service.clone();
        let server_handle = self.server.handle();
        let signals = tokio::spawn(stop_on_signal(self.handle()));
        let recovery = {
            let service = service.clone();
            tokio::task::spawn_blocking(move || service.recover())
        };
        let server = tokio::spawn(self.server);
        // A signal during recovery stops the process without waiting for it
        // (a database that stopped answering would hold it for ever).
        let mut stopping = service.stopping();
        let recovered = tokio::select! {
            recovered = recovery => Some(recovered?),
            _ = stopping.wait_for(|s| *s) => None,
        };
        match recovered {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                service.begin_stop();
                server_handle.stop(false).await;
                signals.abort();
                close_journal(&service).await;
                return Err(e);
            }
            None => {
                tracing::warn!("stopped before the journal was read back");
                let _ = server.await;
                close_journal(&service).await;
                return Ok(());
            }
        }
        let leading = CancellationToken::new();
        let leadership = tokio::spawn(lead_while_leader(service.clone(), leading.clone()));
        let served = server.await;
        signals.abort();
        leading.cancel();
        let stopped = leadership.await?;
        let closed = close_journal(&service).await;
        served??;
        stopped?;
        anyhow::ensure!(closed, "the journal did not close");
        Ok(())
    }
}

/// Closes the journal within [`JOURNAL_CLOSE`]; false if it did not. On a
/// thread of its own, not the runtime's blocking pool, which the runtime
/// waits for when it ends: a writer stuck on a database that stopped
/// answering (a lost COMMIT answer, a middlebox holding the bytes) would keep
/// the process from ever exiting. Nothing it had not committed was
/// acknowledged; the lease, if held, is given up all the same.
async fn close_journal(service: &Service) -> bool {
    let Some(journal) = service.journal() else {
        return true;
    };
    let location = journal.location();
    if on_own_thread(service, Journal::shutdown, JOURNAL_CLOSE).await {
        tracing::info!(%location, "journal closed");
        return true;
    }
    tracing::error!(
        %location,
        "the journal did not close within {JOURNAL_CLOSE:?} (its writer is still waiting on \
         the database or the disk): stopping without it; nothing it had not committed was \
         acknowledged"
    );
    on_own_thread(service, Journal::give_up_lease, Duration::from_secs(3)).await;
    false
}

/// Runs `f` on the journal on a thread of its own; whether it returned within `within`.
async fn on_own_thread(service: &Service, f: fn(&Journal), within: Duration) -> bool {
    let s = service.clone();
    let (finished, done) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        if let Some(j) = s.journal() {
            f(j);
        }
        let _ = finished.send(());
    });
    tokio::time::timeout(within, done).await.is_ok()
}

/// Stops the service: event streams end at once (they never finish on their
/// own), then the server stops taking connections and, when `graceful`,
/// finishes the requests in flight.
#[derive(Clone)]
pub struct StopHandle {
    server: actix_web::dev::ServerHandle,
    service: Service,
}

impl StopHandle {
    /// Starts stopping now; await the result to wait until the server is down.
    pub fn stop(&self, graceful: bool) -> impl Future<Output = ()> {
        self.service.begin_stop();
        self.server.stop(graceful)
    }
}

async fn stop_on_signal(handle: StopHandle) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => tracing::info!("SIGTERM: finishing requests in flight, then stopping"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: finishing requests in flight, then stopping"),
    }
    handle.stop(true).await;
}

/// Runs the background tasks while this instance leads: with SQLite from
/// recovery until stopped; on PostgreSQL for each term this instance holds,
/// after rebuilding memory under it. Losing the lease stops serving first
/// (requests get 503 `not_leader` at once), then the tasks.
async fn lead_while_leader(service: Service, stop: CancellationToken) -> anyhow::Result<()> {
    let Some(mut role) = service.journal().map(|j| j.role()) else {
        return Ok(());
    };
    loop {
        let term = loop {
            let now = *role.borrow_and_update();
            if now.leader {
                break now.term;
            }
            tokio::select! {
                changed = role.changed() => if changed.is_err() { return Ok(()) },
                _ = stop.cancelled() => return Ok(()),
            }
        };
        if !service.is_serving() {
            let s = service.clone();
            // Not waited for once stopping: a takeover reading a journal
            // whose database stopped answering would hold the stop for ever.
            let lead = tokio::task::spawn_blocking(move || s.lead());
            let led = tokio::select! {
                led = lead => led,
                _ = stop.cancelled() => return Ok(()),
            };
            match led {
                Ok(Ok(())) => tracing::info!(term, "leading: memory rebuilt from the journal"),
                Ok(Err(e)) => {
                    tracing::warn!(term, error = %e, "cannot take over yet");
                    tokio::select! {
                        _ = tokio::time::sleep(LEAD_RETRY) => continue,
                        _ = stop.cancelled() => return Ok(()),
                    }
                }
                Err(e) => anyhow::bail!("taking over panicked: {e}"),
            }
        }
        let tasks = Tasks::start(&service);
        let stopped = loop {
            tokio::select! {
                changed = role.changed() => {
                    let now = *role.borrow();
                    if changed.is_err() {
                        // Nobody changes the role any more: lead until stopped.
                        stop.cancelled().await;
                        break true;
                    }
                    if !now.leader || now.term != term {
                        break false;
                    }
                }
                _ = stop.cancelled() => break true,
            }
        };
        if stopped {
            return tasks.stop().await;
        }
        service.follow();
        tracing::warn!(term, "no longer leading: following");
        if let Err(e) = tasks.stop().await {
            tracing::error!(error = %e, "stepping down");
        }
    }
}

/// A background task with its owner's stop signal.
struct Task {
    name: String,
    stop: CancellationToken,
    handle: JoinHandle<()>,
}

/// How a task ended when it was told to stop.
#[derive(Debug, PartialEq, Eq)]
enum TaskEnd {
    /// It saw its stop signal and returned.
    Stopped,
    /// It panicked at some point.
    Panicked,
    /// It did not return within [`TASK_GRACE`] and was aborted.
    Aborted,
}

impl Task {
    fn spawn<F: Future<Output = ()> + Send + 'static>(
        name: impl Into<String>,
        run: impl FnOnce(CancellationToken) -> F,
    ) -> Self {
        let stop = CancellationToken::new();
        Self {
            name: name.into(),
            handle: tokio::spawn(run(stop.clone())),
            stop,
        }
    }

    async fn stop(self, grace: Duration) -> TaskEnd {
        self.stop.cancel();
        let mut handle = self.handle;
        let end = match tokio::time::timeout(grace, &mut handle).await {
            Ok(Ok(())) => TaskEnd::Stopped,
            Ok(Err(_)) => TaskEnd::Panicked,
            Err(_) => {
                handle.abort();
                TaskEnd::Aborted
            }
        };
        match end {
            TaskEnd::Stopped => tracing::info!(task = %self.name, "background task stopped"),
            _ => tracing::error!(task = %self.name, ?end, "background task did not stop cleanly"),
        }
        end
    }
}

/// The background tasks, in the order they are stopped.
struct Tasks(Vec<Task>);

impl Tasks {
    fn start(service: &Service) -> Self {
        let mut tasks = vec![Task::spawn("scheduler", |stop| {
            scheduler::run(service.clone(), stop)
        })];
        for receiver in 0..service.config().alerts.webhooks.len() {
            if let Some(hook) = outbox::Webhook::new(service, receiver) {
                let name = format!("webhooks[{receiver}]");
                tasks.push(Task::spawn(name.clone(), |stop| {
                    let service = service.clone();
                    async move { outbox::run(service, hook, &name, stop).await }
                }));
            }
        }
        let notifications = &service.config().notifications;
        if let Some(config) = &notifications.email {
            match outbox::messages::Email::new(service, config) {
                Ok(email) => tasks.push(Task::spawn("email", |stop| {
                    outbox::run(service.clone(), email, "email", stop)
                })),
                Err(e) => tracing::error!(error = %e, "cannot send e-mail"),
            }
        }
        if let Some(config) = &notifications.sms {
            match outbox::messages::Sms::new(service, config) {
                Ok(sms) => tasks.push(Task::spawn("sms", |stop| {
                    outbox::run(service.clone(), sms, "sms", stop)
                })),
                Err(e) => tracing::error!(error = %e, "cannot send SMS"),
            }
        }
        tasks.push(Task::spawn("maintenance", |stop| {
            maintenance::run(service.clone(), stop)
        }));
        Self(tasks)
    }

    /// Stops each task in turn, all within one [`TASK_GRACE`] (tasks held
    /// up by a journal that no longer answers would otherwise take a grace
    /// each); an error names those that did not stop cleanly.
    async fn stop(self) -> anyhow::Result<()> {
        let mut unclean = Vec::new();
        let deadline = tokio::time::Instant::now() + TASK_GRACE;
        for task in self.0 {
            let name = task.name.clone();
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if task.stop(left.max(Duration::from_millis(200))).await != TaskEnd::Stopped {
                unclean.push(name);
            }
        }
        if unclean.is_empty() {
            Ok(())
        } else {
            anyhow::bail!(
                "background tasks did not stop cleanly: {}",
                unclean.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_heeds_its_signal_stops_and_one_that_does_not_is_aborted() {
        let heeds = Task::spawn("heeds", |stop| async move { stop.cancelled().await });
        let deaf = Task::spawn("deaf", |_| std::future::pending());
        assert_eq!(heeds.stop(Duration::from_secs(5)).await, TaskEnd::Stopped);
        assert_eq!(deaf.stop(Duration::from_millis(50)).await, TaskEnd::Aborted);
        let panics = Task::spawn("panics", |_| async { panic!("injected") });
        assert_eq!(panics.stop(Duration::from_secs(5)).await, TaskEnd::Panicked);
    }

    #[tokio::test]
    async fn every_background_task_of_the_service_stops_on_its_signal() {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            Config::from_toml(include_str!("../config/default.toml")).expect("default config");
        config.storage.data_dir = dir.path().to_owned();
        config.alerts.webhooks = vec![crate::config::WebhookConfig {
            // Nobody listens here: the sender is in its retry pause when stopped.
            url: "http://127.0.0.1:9/alerts".to_owned().try_into().unwrap(),
            secret: None,
        }];
        let service = Service::new(Arc::new(config), Arc::new(crate::clock::SystemClock));
        let s = service.clone();
        tokio::task::spawn_blocking(move || s.recover())
            .await
            .unwrap()
            .unwrap();
        let tasks = Tasks::start(&service);
        let names: Vec<&str> = tasks.0.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["scheduler", "webhooks[0]", "maintenance"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        tasks.stop().await.expect("every task stops on its signal");
    }
}
