//! Triagem: an emergency-department triage queue service.
//!
//! How a request flows:
//! - [`http`] parses the request (problem+json on anything bad) and calls
//!   [`app::AppState::execute`] (changes) or [`app::AppState::read`].
//! - `execute` locks the one [`domain::Department`], runs the command with
//!   `now` from the [`clock::Clock`], and queues the resulting
//!   [`domain::Change`]s on the [`journal`] before releasing the lock.
//! - The journal's single writer thread commits queued commands together
//!   (one fsync for many); only then is the request answered.
//! - At start-up [`app::Application`] replays the journal into memory; `/readyz`
//!   says 503 until that is done.
//!
//! [`config`] holds the typed settings of API.md section 4.

pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod domain;
pub mod events;
pub mod http;
pub mod journal;
pub mod metrics;
pub mod outbox;
pub mod scheduler;
pub mod web;

pub use app::{AppState, Application};
