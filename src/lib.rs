//! Triagem: an emergency-department triage queue service.
//!
//! The layers, each depending only on those before it:
//! - [`domain`]: the pure core (queues, numbering, status machine, escalation
//!   rules). No I/O, no clock: every command takes `now` and returns the
//!   [`domain::Change`]s to make durable.
//! - [`journal`]: the durable journal. One writer thread commits whatever
//!   queued up together (group commit); recovery reads it back. Behind it a
//!   backend: SQLite (embedded, the default) or PostgreSQL, where several
//!   instances share one database and the holder of a lease (a term checked
//!   by every write) is the only one that writes and serves.
//! - [`service`]: the [`service::Service`] handle (mini-redis's `Db`): the
//!   department behind one lock, the journal, the event streams and metrics.
//!   A change runs under the lock, queues its changes on the journal before
//!   releasing it, and is answered once they are committed.
//! - [`reports`]: the standard ED measures, from what the journal keeps of
//!   each visit, read on a connection of their own.
//! - [`scheduler`], [`outbox`], [`maintenance`]: the background tasks
//!   (escalation deadlines, webhook deliveries, purge and failure recovery);
//!   and [`http`]: one route table from which the routes, the role check and
//!   the OpenAPI document derive.
//! - [`startup`]: builds everything, runs the background tasks while this
//!   instance leads, stops them in order; `main.rs` is the command line.
//!
//! Beside them: [`config`] (typed settings), [`clock`] (where `now` comes
//! from), [`auth`] (tokens and roles) and [`metrics`].

pub mod auth;
pub mod clock;
pub mod config;
pub mod domain;
pub(crate) mod http;
pub mod journal;
pub(crate) mod maintenance;
pub(crate) mod metrics;
pub(crate) mod outbox;
pub mod reports;
pub(crate) mod scheduler;
pub mod service;
pub mod startup;

pub use service::Service;
pub use startup::Application;
