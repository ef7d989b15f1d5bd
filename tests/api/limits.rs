//! Connection limits: a client that never finishes its request's head
//! (slowloris) is closed after `server.request_head_timeout`, one that
//! trickles a body gets 408 after `server.request_body_timeout`, and a screen
//! that stops reading its event stream is dropped after `server.send_timeout`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use triagem::clock::ManualClock;

use crate::helpers::{start_time, TestApp};

const STREAMS: &str = "triagem_event_streams";

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

#[tokio::test]
async fn a_body_that_trickles_in_gets_408_and_changes_nothing() {
    let timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(
        |c| c.server.request_body_timeout = timeout,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let body = br#"{"name": "Maria Lenta", "colour": "green"}"#;
    let mut slow = TcpStream::connect(&address).await.expect("connect");
    let started = Instant::now();
    let head = format!(
        "POST /api/v1/units/pa/patients HTTP/1.1\r\nHost: triagem\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("head");
    // Half the body, then nothing more.
    slow.write_all(&body[..10]).await.expect("part of the body");

    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("answered and closed within 5 s")
        .expect("read");
    let took = started.elapsed();
    assert!(
        took >= timeout,
        "answered after {took:?}, before the timeout"
    );
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");

    // Nobody was admitted, and a whole request is served at once.
    assert_eq!(app.total("treatment").await + app.total("triage").await, 0);
    app.admit("Maria Lenta", Some("green")).await;
}

#[tokio::test]
async fn a_screen_that_stops_reading_its_stream_is_dropped_and_a_reading_one_is_not() {
    let send_timeout = Duration::from_secs(1);
    let app = TestApp::spawn_with(
        |c| c.server.send_timeout = send_timeout,
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    let address: std::net::SocketAddr = app
        .address
        .trim_start_matches("http://")
        .parse()
        .expect("address");

    // A screen that reads everything.
    let reading = reqwest::Client::new()
        .get(app.url("/units/pa/events"))
        .send()
        .await
        .expect("GET events");
    assert_eq!(reading.status().as_u16(), 200);
    let reader = tokio::spawn(async move {
        let mut reading = reading;
        let mut bytes = 0usize;
        while let Ok(Some(chunk)) = reading.chunk().await {
            bytes += chunk.len();
        }
        bytes
    });

    // A screen that reads its headers and then nothing: a small receive
    // buffer so that its window closes after a few events.
    let socket = socket2::Socket::new(
        socket2::Domain::IPV4,
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )
    .expect("socket");
    socket.set_recv_buffer_size(2048).expect("SO_RCVBUF");
    socket.connect(&address.into()).expect("connect");
    socket.set_nonblocking(true).expect("nonblocking");
    let mut stalled = TcpStream::from_std(socket.into()).expect("tokio stream");
    stalled
        .write_all(b"GET /api/v1/units/pa/events HTTP/1.1\r\nHost: triagem\r\n\r\n")
        .await
        .expect("request");
    let mut head = [0u8; 64];
    let n = stalled.read(&mut head).await.expect("head");
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    app.wait_for_metric(STREAMS, 2.0).await;

    // Enough events to fill the stalled screen's window and our send buffer's
    // first segments: ~200 bytes each.
    for i in 0..150 {
        app.admit(&format!("Paciente {i}"), Some("green")).await;
    }
    let started = Instant::now();
    // The kernel aborts the stalled one at the first zero-window probe after
    // the timeout (probes back off from 200 ms): well within 10 s.
    loop {
        if app.metric(STREAMS).await == 1.0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the stalled stream is still open after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The reading screen is still there after several times the timeout, and
    // new events still reach it.
    tokio::time::sleep(send_timeout * 3).await;
    assert_eq!(app.metric(STREAMS).await, 1.0);
    app.admit("Depois", Some("blue")).await;
    assert!(!reader.is_finished(), "the reading screen's stream ended");

    // The stalled client finds its connection gone once it reads again.
    let mut rest = Vec::new();
    let end = tokio::time::timeout(Duration::from_secs(5), stalled.read_to_end(&mut rest)).await;
    assert!(
        matches!(end, Ok(Ok(_)) | Ok(Err(_))),
        "the stalled connection still delivers data after being dropped"
    );
    reader.abort();
}
