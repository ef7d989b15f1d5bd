//! Black-box tests of the HTTP API (docs/api.md): each test runs
//! the real service on a free port with a tempdir journal and a manual clock
//! (crash.rs runs the real binary instead).

mod helpers;

mod admission;
mod auth;
mod boundaries;
mod clock_steps;
mod concurrency;
mod crash;
mod docs;
mod errors;
mod escalation;
mod events;
mod faketime;
mod idempotency;
mod info;
mod journal_failure;
mod journal_files;
mod lifecycle;
mod limits;
mod metrics;
mod notifications;
mod openapi;
mod outage;
mod portal;
mod queues;
mod receivers;
mod reports;
mod restart;
mod search;
mod timing;
mod webhooks;
