//! Connection limits: a client that never finishes its request's head
//! (slowloris) is closed after `server.request_head_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triagem::clock::ManualClock;

use crate::helpers::{start_time, TestApp};

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed_after_the_head_timeout() {
    let timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(
        |c| c.server.request_head_timeout = timeout,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&address).await.expect("connect");
    let started = Instant::now();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: triagem\r\nX-Slow: ")
        .await
        .expect("write part of a head");

    let mut answer = Vec::new();
    // Far below the 5 s default: only the configured timeout closes it this soon.
    tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut answer))
        .await
        .expect("the connection is closed within 3 s")
        .expect("read");
    let took = started.elapsed();
    // actix measures the timeout on a clock it refreshes every 500 ms.
    assert!(
        took >= timeout - Duration::from_millis(500),
        "closed after {took:?}, well before the timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "closed, or told 408 first: {answer}"
    );

    // Meanwhile and afterwards, whole requests are served.
    app.get_abs("/healthz").await.expect(200);
}
