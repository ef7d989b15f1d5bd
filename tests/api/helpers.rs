//! A real service on a free port, a tempdir journal and a hand-moved clock.
//!
//! Each [`TestApp`] runs the service the way `main.rs` does: on its own thread
//! inside an actix `System`, so its lifetime does not depend on the test's
//! runtime, and dropping the `TestApp` stops it and closes its journal.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tempfile::TempDir;
use triagem::clock::ManualClock;
use triagem::config::Config;
use triagem::domain::{UnitId, UnitSettings};
use triagem::journal::Journal;
use triagem::startup::{Application, StopHandle};
use triagem::Service;

/// Where every test's clock starts: 09:00 in São Paulo, so a test can move hours
/// forward without crossing the local midnight that restarts tickets.
pub const START: &str = "2026-11-28T12:00:00Z";
pub const API: &str = "/api/v1";
pub const UNIT: &str = "pa";
pub const TRIAGE_ROOM: &str = "Triagem 1";
pub const ROOM: &str = "Consultório 1";
/// How long a poll for something the background tasks do may take before the
/// test fails; generous, since a passing poll returns as soon as it sees it.
pub const PATIENCE: Duration = Duration::from_secs(5);
/// The pause between two looks of a poll.
pub const POLL: Duration = Duration::from_millis(10);

pub fn start_time() -> DateTime<Utc> {
    START.parse().expect("START is RFC 3339")
}

pub fn default_config_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml")
}

/// `config/default.toml` as shipped, unvalidated and without env overrides.
pub fn default_config() -> Config {
    let text = std::fs::read_to_string(default_config_path()).expect("read config/default.toml");
    Config::from_toml(&text).expect("config/default.toml parses")
}

/// A config tweak adding a second unit `obs` (ticket prefix `B`).
pub fn with_second_unit(c: &mut Config) {
    c.units.push(UnitSettings {
        id: UnitId::parse("obs").expect("a unit id"),
        name: "Observação".into(),
        ticket_prefix: "B".into(),
        rooms: vec!["Leito 1".into(), "Leito 2".into()],
        triage_rooms: Vec::new(),
        max_no_shows: 3,
    });
}

/// A response: status, headers and the body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Resp {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("read response body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status, showing the body when it differs.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self.body
    }

    /// Asserts a problem+json error with this status and code, and returns the problem.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "errors are problem+json"
        );
        let b = &self.body;
        assert_eq!(b["status"], json!(status), "problem: {b}");
        assert_eq!(b["code"], json!(code), "problem: {b}");
        for field in ["type", "title", "detail"] {
            assert!(
                b[field].as_str().is_some_and(|s| !s.is_empty()),
                "problem lacks `{field}`: {b}"
            );
        }
        self.body
    }
}

struct Running {
    handle: StopHandle,
    thread: JoinHandle<anyhow::Result<()>>,
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub service: Service,
    config: Config,
    running: Option<Running>,
    data_dir: Option<TempDir>,
}

impl TestApp {
    /// The shipped default config, a fresh data dir and a clock at [`START`].
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}, Arc::new(ManualClock::new(start_time()))).await
    }

    /// The default config changed by `tweak` (data dir already set), with `clock`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config), clock: Arc<ManualClock>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("triagem-api-")
            .tempdir()
            .expect("create tempdir");
        let mut config = default_config();
        config.storage.data_dir = dir.path().to_owned();
        tweak(&mut config);
        config.validate().expect("the test config is valid");
        Self::start(config, clock, dir).await
    }

    async fn start(config: Config, clock: Arc<ManualClock>, data_dir: TempDir) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        let (tx, rx) = mpsc::channel();
        let thread_config = config.clone();
        let thread_clock = clock.clone();
        let thread = std::thread::Builder::new()
            .name(format!("triagem-{port}"))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = Application::build(thread_config, listener, thread_clock)?;
                    tx.send((app.service(), app.handle()))
                        .expect("test is waiting for the app");
                    app.run_until_stopped().await
                })
            })
            .expect("spawn server thread");
        let (service, handle) = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .expect("join")
            .expect("the server thread failed before building the app");
        let app = Self {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            clock,
            service,
            config,
            running: Some(Running { handle, thread }),
            data_dir: Some(data_dir),
        };
        app.wait_ready(Duration::from_secs(10)).await;
        app
    }

    /// Polls `/readyz` until it says 200, failing the test after `within`.
    pub async fn wait_ready(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(r) = self
                .client
                .get(format!("{}/readyz", self.address))
                .send()
                .await
            {
                if r.status() == StatusCode::OK {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "/readyz never said 200");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn journal(&self) -> &Journal {
        self.service
            .journal()
            .expect("the journal is open once ready")
    }

    /// Where the journal is.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.as_ref().expect("data dir").path()
    }

    /// Moves the service's clock forward.
    pub fn advance(&self, by: TimeDelta) {
        self.clock.advance(by);
    }

    pub fn now(&self) -> DateTime<Utc> {
        use triagem::clock::Clock;
        self.clock.now()
    }

    /// Stops the service gracefully and waits until its journal is closed.
    pub async fn stop(&mut self) {
        if let Some(Running { handle, thread }) = self.running.take() {
            handle.stop(true).await;
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("join")
                .expect("server thread panicked")
                .expect("the service stopped with an error");
        }
    }

    /// Stops this service and starts a new one on the same data dir, config and clock.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// As [`restart`](Self::restart), doing `between` to the data dir while
    /// nothing runs (an operator's backup or restore).
    pub async fn restart_with(mut self, between: impl FnOnce(&std::path::Path)) -> Self {
        self.stop().await;
        let dir = self.data_dir.take().expect("data dir");
        between(dir.path());
        Self::start(self.config.clone(), self.clock.clone(), dir).await
    }

    /// `path` under the API base (`/units` → `/api/v1/units`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{API}{path}", self.address)
    }

    // ---- raw requests; `path` is under /api/v1 ----

    pub async fn get(&self, path: &str) -> Resp {
        self.get_abs(&format!("{API}{path}")).await
    }

    /// GET of a path outside the API base (`/healthz`, `/readyz`, anything).
    pub async fn get_abs(&self, path: &str) -> Resp {
        let url = format!("{}{path}", self.address);
        Resp::from(self.client.get(url).send().await.expect("GET")).await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        Resp::from(
            self.client
                .post(self.url(path))
                .json(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    /// POST with no body at all.
    pub async fn post_empty(&self, path: &str) -> Resp {
        Resp::from(self.client.post(self.url(path)).send().await.expect("POST")).await
    }

    /// POST of raw bytes with an explicit content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Resp {
        Resp::from(
            self.client
                .post(self.url(path))
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .expect("POST"),
        )
        .await
    }

    // ---- typed helpers ----

    pub async fn admit_raw(&self, unit: &str, body: &Value) -> Resp {
        self.post_json(&format!("/units/{unit}/patients"), body)
            .await
    }

    /// Admits to `pa`, asserting 201; returns the patient view.
    pub async fn admit(&self, name: &str, colour: Option<&str>) -> Value {
        let mut body = json!({ "name": name });
        if let Some(c) = colour {
            body["colour"] = json!(c);
        }
        self.admit_raw(UNIT, &body).await.expect(201)
    }

    pub async fn patient(&self, protocol: &str) -> Value {
        self.get(&format!("/patients/{protocol}")).await.expect(200)
    }

    pub async fn history(&self, protocol: &str) -> Vec<Value> {
        match self
            .get(&format!("/patients/{protocol}/history"))
            .await
            .expect(200)
        {
            Value::Array(v) => v,
            other => panic!("history is not an array: {other}"),
        }
    }

    /// The history without the `alert.*` entries the escalation scheduler writes
    /// on its own schedule, for tests of the care steps themselves.
    pub async fn care_history(&self, protocol: &str) -> Vec<Value> {
        self.history(protocol)
            .await
            .into_iter()
            .filter(|e| !e["event"].as_str().is_some_and(|n| n.starts_with("alert.")))
            .collect()
    }

    pub async fn triage(&self, protocol: &str, colour: &str) -> Resp {
        self.post_json(
            &format!("/patients/{protocol}/triage"),
            &json!({ "colour": colour }),
        )
        .await
    }

    /// Calls the next patient of `pa`'s treatment queue to `room`.
    pub async fn call(&self, room: &str) -> Resp {
        self.post_json(&format!("/units/{UNIT}/call"), &json!({ "room": room }))
            .await
    }

    pub async fn call_triage(&self) -> Resp {
        self.post_json(
            &format!("/units/{UNIT}/call"),
            &json!({ "queue": "triage", "room": TRIAGE_ROOM }),
        )
        .await
    }

    /// A body-less transition: start, no-show, recall, leave.
    pub async fn action(&self, protocol: &str, action: &str) -> Resp {
        self.post_empty(&format!("/patients/{protocol}/{action}"))
            .await
    }

    pub async fn finish(&self, protocol: &str, outcome: &str) -> Resp {
        self.post_json(
            &format!("/patients/{protocol}/finish"),
            &json!({ "outcome": outcome }),
        )
        .await
    }

    /// `GET /units/pa/queue?{query}`, asserting 200.
    pub async fn queue(&self, query: &str) -> Value {
        self.get(&format!("/units/{UNIT}/queue?{query}"))
            .await
            .expect(200)
    }

    /// The protocols of `pa`'s queue (`treatment` or `triage`) in call order.
    pub async fn queue_protocols(&self, kind: &str) -> Vec<String> {
        let q = self.queue(&format!("queue={kind}&limit=1000")).await;
        q["patients"]
            .as_array()
            .expect("patients")
            .iter()
            .map(protocol)
            .collect()
    }

    pub async fn total(&self, kind: &str) -> u64 {
        self.queue(&format!("queue={kind}")).await["total"]
            .as_u64()
            .expect("total")
    }

    pub async fn board(&self) -> Value {
        self.get(&format!("/units/{UNIT}/board")).await.expect(200)
    }

    // ---- escalation ----

    /// Makes the scheduler look at the (manual) clock again.
    pub fn wake(&self) {
        self.service.wake_scheduler();
    }

    /// Moves the clock forward and wakes the scheduler, which runs on real
    /// time but reads the manual clock.
    pub fn advance_and_wake(&self, by: TimeDelta) {
        self.advance(by);
        self.wake();
    }

    /// `GET /alerts?{query}`, asserting 200.
    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        match self.get(&format!("/alerts?{query}")).await.expect(200) {
            Value::Array(v) => v,
            other => panic!("alerts is not an array: {other}"),
        }
    }

    /// Polls `GET /alerts?state=all` until the alert of `protocol` satisfies
    /// `ready`, and returns it; fails the test after [`PATIENCE`].
    pub async fn wait_for_alert(&self, protocol: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let all = self.alerts("state=all").await;
            if let Some(a) = all.iter().find(|a| a["protocol"] == protocol && ready(a)) {
                return a.clone();
            }
            assert!(
                Instant::now() < deadline,
                "the alert of {protocol} never reached the expected state; alerts: {all:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The `alert.*` entries of a patient's history.
    pub async fn alert_history(&self, protocol: &str) -> Vec<Value> {
        self.history(protocol)
            .await
            .into_iter()
            .filter(|e| e["event"].as_str().is_some_and(|n| n.starts_with("alert.")))
            .collect()
    }

    /// Polls the patient's history until it holds at least `at_least` `alert.*`
    /// entries, and returns them. `/alerts` shows a step as soon as memory has
    /// it; the history only once its commit is on disk, a moment later.
    pub async fn wait_for_alert_history(&self, protocol: &str, at_least: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let h = self.alert_history(protocol).await;
            if h.len() >= at_least {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "the history of {protocol} never held {at_least} alert entries: {h:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The value of one sample of `/metrics`, e.g.
    /// `triagem_webhook_deliveries_total{result="failed"}`.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.get_abs("/metrics").await.text;
        text.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample `{sample}` in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("sample `{sample}` is not a number: {e}"))
    }

    /// Polls `/metrics` until `sample` reads `value`.
    pub async fn wait_for_metric(&self, sample: &str, value: f64) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let now = self.metric(sample).await;
            if now == value {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{sample} stayed at {now}, expected {value}"
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(Running { handle, thread }) = self.running.take() {
            // Sent at once; the server's own thread carries it out and closes the journal.
            drop(handle.stop(false));
            let _ = thread.join();
        }
    }
}

/// The protocol number of a patient view.
#[track_caller]
pub fn protocol(view: &Value) -> String {
    view["protocol"]
        .as_str()
        .unwrap_or_else(|| panic!("no protocol in {view}"))
        .to_owned()
}

/// The 13-digit sequence part of a protocol number.
#[track_caller]
pub fn sequence(protocol: &str) -> u64 {
    assert_eq!(protocol.len(), 17, "protocol {protocol}");
    protocol[4..].parse().expect("digits")
}

#[track_caller]
pub fn time(v: &Value) -> DateTime<Utc> {
    v.as_str()
        .unwrap_or_else(|| panic!("not a time: {v}"))
        .parse()
        .unwrap_or_else(|e| panic!("not RFC 3339: {v}: {e}"))
}
