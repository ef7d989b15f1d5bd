//! Black-box tests of the HTTP API (API.md sections 1, 2 and 4): each test runs
//! the real service on a free port with a tempdir journal and a manual clock.

mod helpers;

mod info;
