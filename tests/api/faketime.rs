//! The real binary under Debian's libfaketime, its wall clock stepped by
//! rewriting the offset file while it runs (README, "Clock steps"). Only the
//! wall clock is faked (`FAKETIME_DONT_FAKE_MONOTONIC`), as when NTP steps it:
//! tokio's timers keep running on the untouched monotonic clock.
//!
//! Without libfaketime the test says so and passes; CI installs it and sets
//! `TRIAGEM_REQUIRE_FAKETIME=1`, which turns its absence into a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::crash::Server;
use crate::helpers::default_config_path;

const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Writes the offset libfaketime applies to the wall clock, e.g. `+7200`
/// (seconds); re-read on every clock read (`FAKETIME_NO_CACHE`).
fn step_to(file: &Path, offset: &str) {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("{offset}\n")).expect("write the offset");
    // Renamed into place so the server never reads a half-written offset.
    std::fs::rename(&tmp, file).expect("move the offset into place");
}

async fn alerts_of(client: &reqwest::Client, server: &Server, p: &str) -> Vec<Value> {
    let all: Vec<Value> = client
        .get(server.url("/api/v1/alerts?state=all"))
        .send()
        .await
        .expect("GET /alerts")
        .json()
        .await
        .expect("alerts JSON");
    all.into_iter().filter(|a| a["protocol"] == p).collect()
}

/// Polls until the alert of `p` satisfies `ready`; the time it took.
async fn wait_for(
    client: &reqwest::Client,
    server: &Server,
    p: &str,
    within: Duration,
    ready: impl Fn(&Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        if alerts_of(client, server, p).await.iter().any(&ready) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "the alert of {p} never got there in {within:?}; alerts: {:?}\n{}",
            alerts_of(client, server, p).await,
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn admit(client: &reqwest::Client, server: &Server, name: &str, colour: &str) -> String {
    let r = client
        .post(server.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": name, "colour": colour}))
        .send()
        .await
        .expect("admit");
    assert_eq!(r.status().as_u16(), 201, "{}", server.log());
    let v: Value = r.json().await.expect("patient JSON");
    v["protocol"].as_str().expect("protocol").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_libfaketime_a_stepped_wall_clock_fires_due_alerts_within_a_tick_and_none_early() {
    if !Path::new(LIBFAKETIME).exists() {
        assert!(
            std::env::var_os("TRIAGEM_REQUIRE_FAKETIME").is_none(),
            "TRIAGEM_REQUIRE_FAKETIME is set but {LIBFAKETIME} is missing (apt-get install faketime)"
        );
        eprintln!("skipped: {LIBFAKETIME} is missing (apt-get install faketime)");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("triagem-faketime-")
        .tempdir()
        .unwrap();
    let config = dir.path().join("triagem.toml");
    std::fs::copy(default_config_path(), &config).unwrap(); // tick = "1s"
    let offset = dir.path().join("offset");
    step_to(&offset, "+0");
    let offset_path = offset.to_str().expect("a UTF-8 temp path");
    let env = [
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset_path),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut server = Server::start_with_env(dir.path(), &config, 1, &env);
    server.wait_ready(&client).await;
    let tick = Duration::from_secs(1);
    let slack = Duration::from_secs(3);

    // Forward: a yellow patient (warning 24 min, breach 30, level 2 at 45),
    // then NTP steps the clock two hours on. Nobody tells the server.
    let y = admit(&client, &server, "Ana", "yellow").await;
    step_to(&offset, "+7200");
    let took = wait_for(&client, &server, &y, tick + slack, |a| a["level"] == 2).await;
    eprintln!("stepped forward 2 h: every level fired {took:?} after the step");

    // Back: a second yellow patient admitted at +2 h; the clock steps back to
    // -1 h, so its warning is 3 h 24 min away. A red sentinel admitted after
    // the step proves a pass ran; the yellow one has nothing.
    let b = admit(&client, &server, "Bia", "yellow").await;
    step_to(&offset, "-3600");
    let s = admit(&client, &server, "Sentinela", "red").await;
    wait_for(&client, &server, &s, tick + slack, |a| a["level"] == 1).await;
    // A few more passes at the stepped-back time.
    tokio::time::sleep(3 * tick).await;
    assert!(
        alerts_of(&client, &server, &b).await.is_empty(),
        "nothing fires early when the clock steps back"
    );
    // 26 min after Bia's admission by the wall clock: her warning (24 min) is
    // due, her breach (30 min) not yet; nothing was lost while the clock was back.
    step_to(&offset, &format!("+{}", 7200 + 26 * 60));
    let took = wait_for(&client, &server, &b, tick + slack, |a| {
        a["kind"] == "warning"
    })
    .await;
    eprintln!("stepped back then forward: the warning fired {took:?} after it fell due");

    // Each level of the first patient once, in order, read back from the journal.
    let history: Vec<Value> = client
        .get(server.url(&format!("/api/v1/patients/{y}/history")))
        .send()
        .await
        .expect("history")
        .json()
        .await
        .expect("history JSON");
    let levels: Vec<u64> = history
        .iter()
        .filter(|e| e["event"] == "alert.firing")
        .map(|e| e["details"]["level"].as_u64().expect("level"))
        .collect();
    assert_eq!(levels, [0, 1, 2], "{history:?}");
}
