//! Chaos soak with a history checker (issue 16), in the manner of Jepsen.
//!
//! A real `triagem serve` runs on a temporary data dir with a config written
//! here: short maximum waits and a four-level escalation ladder a few seconds
//! apart, so alerts fire all through the run, and a webhook receiver run by
//! this harness. A few clients do a desk's mix of work (admit with and without
//! `Idempotency-Key` and colour, triage, call both queues, start, finish,
//! no-show, recall, re-triage, transfer between two units, leave, acknowledge
//! alerts) and record every operation: invoke and complete time, request, and
//! outcome, one of
//!
//! - **ok**: a 2xx, with what the answer said;
//! - **failed** (definite): a 4xx, a 503 (docs/api.md: "Nothing was changed"),
//!   or a connection refused before anything was sent;
//! - **indeterminate**: a timeout or a connection broken after sending (the
//!   change may or may not have happened).
//!
//! Meanwhile a nemesis `kill -9`s the server at moments drawn uniformly around
//! the mean gap (and now and then again while it recovers), restarts it on the
//! same data dir and waits for `/readyz`; after each restart it checks the
//! queues' order and replays some idempotency keys. At the end the clients stop,
//! the server is killed and restarted once more (so what is read back comes
//! from the journal alone), and the checker compares the history with that
//! state: every patient, their history, the queues, the alerts and every
//! webhook delivery. See `check` for the list of checks. Any failed check
//! makes the exit status 1.
//!
//! ```sh
//! cargo build --release
//! cargo bench --bench soak -- --quick                    # ~60 s, 10 kills (CI)
//! cargo bench --bench soak -- --minutes 10 --kills 100   # the long run
//! ```
//!
//! Options: `--bin PATH` (or env `TRIAGEM_BIN`; default `target/release/triagem`),
//! `--quick`, `--minutes N` / `--seconds N`, `--kills N`, `--clients N`,
//! `--pause-ms N` (each client's think time, uniform 0..N), `--seed N`, `--keep`
//! (keep the data dir, the server logs and `history.jsonl` even on success).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::stream::{self, StreamExt};
use parking_lot::Mutex;
use rand::distributions::WeightedIndex;
use rand::prelude::*;
use rand::rngs::StdRng;
use reqwest::{Client, Method};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

// ---------------------------------------------------------------- options

struct Opts {
    bin: PathBuf,
    duration: Duration,
    kills: usize,
    clients: usize,
    pause_ms: u64,
    seed: u64,
    keep: bool,
}

const USAGE: &str =
    "cargo bench --bench soak -- [--quick | --minutes N | --seconds N] [--kills N] \
[--clients N] [--pause-ms N] [--seed N] [--bin PATH] [--keep]";

fn parse_args() -> Result<Opts, String> {
    let mut o = Opts {
        bin: std::env::var_os("TRIAGEM_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("target/release/triagem")),
        duration: Duration::from_secs(60),
        kills: 10,
        clients: 4,
        pause_ms: 20,
        seed: rand::random::<u32>() as u64,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    fn num(what: &str, v: Option<String>) -> Result<f64, String> {
        v.as_deref()
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| *v >= 0.0)
            .ok_or_else(|| format!("{what} needs a number"))
    }
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => {} // cargo bench adds it
            "--quick" => {
                o.duration = Duration::from_secs(60);
                o.kills = 10;
            }
            "--minutes" => o.duration = Duration::from_secs_f64(num(&a, args.next())? * 60.0),
            "--seconds" => o.duration = Duration::from_secs_f64(num(&a, args.next())?),
            "--kills" => o.kills = num(&a, args.next())? as usize,
            "--clients" => o.clients = (num(&a, args.next())? as usize).max(1),
            "--pause-ms" => o.pause_ms = num(&a, args.next())? as u64,
            "--seed" => o.seed = num(&a, args.next())? as u64,
            "--bin" => o.bin = PathBuf::from(args.next().ok_or("--bin needs a path")?),
            "--keep" => o.keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(o)
}

// ---------------------------------------------------------------- the site

/// Two units (transfers need a second one): (id, triage rooms, treatment rooms).
const UNITS: [(&str, &[&str], &[&str]); 2] = [
    (
        "pa",
        &["Triagem 1", "Triagem 2"],
        &["Consultório 1", "Consultório 2", "Consultório 3"],
    ),
    ("obs", &["Leito 1"], &["Leito 2", "Leito 3"]),
];
/// Most urgent first, as in the config below.
const COLOURS: [&str; 4] = ["red", "yellow", "green", "blue"];

/// Waits of seconds (not minutes) and a ladder of four levels 3 s apart, so
/// warnings, breaches and every level fire many times during a run, across
/// kills. Deliveries retry fast so the outbox drains within the run.
fn config_toml(port: u16, data_dir: &Path, hook: &str) -> String {
    let data_dir = data_dir.display().to_string();
    format!(
        r#"# Written by benches/soak.rs for one chaos soak.
timezone = "UTC"

[server]
bind = "127.0.0.1:{port}"

[storage]
data_dir = {data_dir:?}

[protocol]
triage_max_wait = "15s"
clock_starts = "triage"

[[protocol.colours]]
id = "red"
label = "Red"
max_wait = "0s"

[[protocol.colours]]
id = "yellow"
label = "Yellow"
max_wait = "20s"

[[protocol.colours]]
id = "green"
label = "Green"
max_wait = "40s"

[[protocol.colours]]
id = "blue"
label = "Blue"
max_wait = "60s"

[escalation]
tick = "100ms"
warning_at_percent = 50

[[escalation.levels]]
name = "l1"
after = "0s"

[[escalation.levels]]
name = "l2"
after = "3s"

[[escalation.levels]]
name = "l3"
after = "6s"

[[escalation.levels]]
name = "l4"
after = "9s"

[alerts]
timeout = "2s"
retry_initial = "100ms"
retry_max = "1s"

[[alerts.webhooks]]
url = "{hook}"
secret = "soak"

[[units]]
id = "pa"
name = "Pronto Atendimento"
ticket_prefix = "A"
rooms = ["Triagem 1", "Triagem 2", "Consultório 1", "Consultório 2", "Consultório 3"]
triage_rooms = ["Triagem 1", "Triagem 2"]
max_no_shows = 3

[[units]]
id = "obs"
name = "Observação"
ticket_prefix = "B"
rooms = ["Leito 1", "Leito 2", "Leito 3"]
triage_rooms = ["Leito 1"]
max_no_shows = 2

[log]
level = "warn"
"#
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

// ---------------------------------------------------------------- the server

/// The binary under test as a child process; `kill` is SIGKILL (std's
/// `Child::kill`): no shutdown, no flush.
struct Server {
    bin: PathBuf,
    config: PathBuf,
    dir: PathBuf,
    base: String,
    child: Option<Child>,
    starts: usize,
}

impl Server {
    fn start(&mut self) {
        self.starts += 1;
        let log = File::create(self.dir.join(format!("server-{:03}.log", self.starts)))
            .expect("server log file");
        let child = Command::new(&self.bin)
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            // The config says all; nothing from the caller's environment overrides it.
            .env_remove("RUST_LOG")
            .env_remove("TRIAGEM_DATA_DIR")
            .env_remove("TRIAGEM_BIND")
            .env_remove("TRIAGEM_TOKENS_FILE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join(format!("server-{:03}.log", self.starts)))
            .unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `/readyz` until 200; an exit or 60 s without it is an error.
    async fn wait_ready(&mut self, http: &Client) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!(
                    "triagem exited with {status}:\n{}",
                    self.log_tail()
                ));
            }
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "triagem not ready after 60 s:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---------------------------------------------------------------- webhook receiver

/// One webhook request as received (every attempt, duplicates included).
#[derive(Debug, Clone)]
struct Receipt {
    delivery_id: String,
    event: String,
    alert: u64,
    protocol: String,
    level: i64,
    max_wait_seconds: i64,
}

/// A plain HTTP/1.1 receiver: one request per connection, answered 200, or
/// 500 one time in twenty so the service's retries (same `delivery_id`) are
/// exercised too. Every request is recorded before it is answered, so a
/// delivery the service counts as done is always in the record.
async fn receiver(listener: TcpListener, receipts: Arc<Mutex<Vec<Receipt>>>) {
    while let Ok((conn, _)) = listener.accept().await {
        let receipts = receipts.clone();
        tokio::spawn(async move {
            let _ = receive(conn, &receipts).await;
        });
    }
}

async fn receive(mut conn: TcpStream, receipts: &Mutex<Vec<Receipt>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let alert = &v["alert"];
    receipts.lock().push(Receipt {
        delivery_id: v["delivery_id"].as_str().unwrap_or("?").to_owned(),
        event: v["event"].as_str().unwrap_or("?").to_owned(),
        alert: alert["id"].as_u64().unwrap_or(0),
        protocol: alert["protocol"].as_str().unwrap_or("?").to_owned(),
        level: alert["level"].as_i64().unwrap_or(-1),
        max_wait_seconds: alert["max_wait_seconds"].as_i64().unwrap_or(-1),
    });
    let status = if rand::random::<f64>() < 0.05 {
        "500 Try Again"
    } else {
        "200 OK"
    };
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}

// ---------------------------------------------------------------- the history

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Admit,
    Triage,
    CallTriage,
    CallTreatment,
    Start,
    Finish,
    NoShow,
    Recall,
    Transfer,
    Leave,
    Ack,
}

/// What an operation came to.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Outcome {
    /// 2xx: `answer` keeps the fields the checker needs; `body_hash` the whole
    /// body, for comparing idempotent replays.
    Ok {
        status: u16,
        answer: Value,
        body_hash: u64,
    },
    /// Definitely not done: a problem answer (`code`), or `status` 0 when the
    /// connection was refused before anything was sent.
    Fail { status: u16, code: String },
    /// Maybe done, maybe not: timeout or broken connection after sending.
    Info { error: String },
}

#[derive(Debug, Clone, Serialize)]
struct Op {
    /// `clients` (one past the last client) is the nemesis' replays.
    client: usize,
    kind: Kind,
    /// The patient acted on (for a call, the one called; for an ack, the alert's).
    protocol: Option<String>,
    request: Value,
    key: Option<String>,
    /// Admissions only; unique per logical admission (a key's replays share it).
    name: Option<String>,
    replay: bool,
    invoke: DateTime<Utc>,
    complete: DateTime<Utc>,
    outcome: Outcome,
}

impl Op {
    fn ok(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok { answer, .. } => Some(answer),
            _ => None,
        }
    }
}

/// The fields of an answer the checker uses (patient view or alert).
fn summary(body: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for k in [
        "protocol",
        "name",
        "unit",
        "status",
        "colour",
        "room",
        "called_at",
        "no_shows",
        "id",
        "level",
        "state",
        "acknowledged_at",
    ] {
        if let Some(v) = body.get(k) {
            out.insert(k.to_owned(), v.clone());
        }
    }
    Value::Object(out)
}

/// Sends one request and classifies the outcome (see the module comment).
async fn send(
    http: &Client,
    method: Method,
    url: String,
    body: Option<&Value>,
    key: Option<&str>,
) -> (DateTime<Utc>, DateTime<Utc>, Outcome, Value) {
    let invoke = Utc::now();
    let mut rb = http.request(method, url);
    if let Some(b) = body {
        rb = rb.json(b);
    }
    if let Some(k) = key {
        rb = rb.header("Idempotency-Key", k);
    }
    let (outcome, full) = match rb.send().await {
        // Refused: the request never left, so nothing can have happened.
        Err(e) if e.is_connect() => (
            Outcome::Fail {
                status: 0,
                code: "connection refused".into(),
            },
            Value::Null,
        ),
        Err(e) => (
            Outcome::Info {
                error: error_chain(&e),
            },
            Value::Null,
        ),
        Ok(resp) => {
            let status = resp.status().as_u16();
            match resp.bytes().await {
                Err(e) if status < 300 => (
                    Outcome::Info {
                        error: error_chain(&e),
                    },
                    Value::Null,
                ),
                Err(_) => (
                    Outcome::Fail {
                        status,
                        code: "?".into(),
                    },
                    Value::Null,
                ),
                Ok(bytes) => {
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                    if status < 300 {
                        let mut h = DefaultHasher::new();
                        bytes.hash(&mut h);
                        (
                            Outcome::Ok {
                                status,
                                answer: summary(&v),
                                body_hash: h.finish(),
                            },
                            v,
                        )
                    } else {
                        let code = v["code"].as_str().unwrap_or("?").to_owned();
                        (Outcome::Fail { status, code }, v)
                    }
                }
            }
        }
    };
    (invoke, Utc::now(), outcome, full)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

// ---------------------------------------------------------------- clients

/// What the clients believe of a patient, from the answers they got. Only a
/// guide for choosing plausible operations: the checker never trusts it.
#[derive(Clone)]
struct Known {
    status: String,
    unit: String,
}

struct World {
    base: String,
    http: Client,
    known: Mutex<HashMap<String, Known>>,
    /// Keys used so far, with the admission's unit and body, for replays.
    keys: Mutex<Vec<(String, String, Value)>>,
    ops: Mutex<Vec<Op>>,
    stop: AtomicBool,
    clients: usize,
}

const OPEN: [&str; 5] = [
    "awaiting_triage",
    "in_triage",
    "waiting",
    "called",
    "in_treatment",
];

impl World {
    fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    fn record(&self, op: Op) {
        self.ops.lock().push(op);
    }

    /// A random known patient in one of `statuses`.
    fn pick(&self, rng: &mut StdRng, statuses: &[&str]) -> Option<(String, Known)> {
        let known = self.known.lock();
        let candidates: Vec<(&String, &Known)> = known
            .iter()
            .filter(|(_, k)| statuses.contains(&k.status.as_str()))
            .collect();
        candidates
            .choose(rng)
            .map(|(p, k)| ((*p).clone(), (*k).clone()))
    }

    /// Learns from a patient view; finished and left patients are forgotten.
    fn learn(&self, view: &Value) {
        let (Some(p), Some(status), Some(unit)) = (
            view["protocol"].as_str(),
            view["status"].as_str(),
            view["unit"].as_str(),
        ) else {
            return;
        };
        let mut known = self.known.lock();
        if OPEN.contains(&status) {
            known.insert(
                p.to_owned(),
                Known {
                    status: status.to_owned(),
                    unit: unit.to_owned(),
                },
            );
        } else {
            known.remove(p);
        }
    }

    /// After a refusal, reads the patient again (not recorded: reads are not checked).
    async fn refresh(&self, protocol: &str) {
        if let Ok(r) = self
            .http
            .get(self.url(&format!("/patients/{protocol}")))
            .send()
            .await
        {
            match r.status().as_u16() {
                200 => {
                    if let Ok(v) = r.json::<Value>().await {
                        self.learn(&v);
                    }
                }
                404 => {
                    self.known.lock().remove(protocol);
                }
                _ => {}
            }
        }
    }

    fn waiting(&self) -> usize {
        self.known
            .lock()
            .values()
            .filter(|k| k.status == "waiting" || k.status == "awaiting_triage")
            .count()
    }

    /// Sends, records and learns from one operation on one patient (or a call).
    async fn act(
        &self,
        client: usize,
        kind: Kind,
        protocol: Option<String>,
        path: String,
        request: Value,
    ) -> Outcome {
        let body = (!request.is_null()).then_some(&request);
        let (invoke, complete, outcome, full) =
            send(&self.http, Method::POST, self.url(&path), body, None).await;
        let mut protocol = protocol;
        match &outcome {
            Outcome::Ok { .. } if kind == Kind::Ack => {
                protocol = full["protocol"].as_str().map(str::to_owned).or(protocol);
            }
            Outcome::Ok { .. } => {
                self.learn(&full);
                if protocol.is_none() {
                    protocol = full["protocol"].as_str().map(str::to_owned);
                }
            }
            Outcome::Fail { status: 404, .. } | Outcome::Fail { status: 409, .. }
                if kind != Kind::Ack =>
            {
                if let Some(p) = &protocol {
                    self.refresh(p).await;
                }
            }
            _ => {}
        }
        self.record(Op {
            client,
            kind,
            protocol,
            request,
            key: None,
            name: None,
            replay: false,
            invoke,
            complete,
            outcome: outcome.clone(),
        });
        outcome
    }

    /// One admission request (a first try or a replay of `key`).
    async fn admit(
        &self,
        client: usize,
        unit: &str,
        body: &Value,
        key: Option<&str>,
        replay: bool,
    ) -> Outcome {
        let (invoke, complete, outcome, full) = send(
            &self.http,
            Method::POST,
            self.url(&format!("/units/{unit}/patients")),
            Some(body),
            key,
        )
        .await;
        if matches!(outcome, Outcome::Ok { .. }) && !replay {
            self.learn(&full);
        }
        self.record(Op {
            client,
            kind: Kind::Admit,
            protocol: full["protocol"].as_str().map(str::to_owned),
            request: json!({"unit": unit, "body": body}),
            key: key.map(str::to_owned),
            name: body["name"].as_str().map(str::to_owned),
            replay,
            invoke,
            complete,
            outcome: outcome.clone(),
        });
        outcome
    }

    async fn replay_some(&self, client: usize, rng: &mut StdRng, n: usize) {
        let picked: Vec<(String, String, Value)> = {
            let keys = self.keys.lock();
            keys.choose_multiple(rng, n).cloned().collect()
        };
        for (key, unit, body) in picked {
            self.admit(client, &unit, &body, Some(&key), true).await;
        }
    }
}

fn other_unit(unit: &str) -> &'static str {
    if unit == UNITS[0].0 {
        UNITS[1].0
    } else {
        UNITS[0].0
    }
}

fn rooms(unit: &str, triage: bool) -> &'static [&'static str] {
    let u = UNITS.iter().find(|u| u.0 == unit).unwrap_or(&UNITS[0]);
    if triage {
        u.1
    } else {
        u.2
    }
}

/// One desk: chooses an operation by weight among those that have a plausible
/// patient, does it, records it, thinks a little, again until told to stop.
async fn client(world: Arc<World>, id: usize, seed: u64, pause_ms: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut n = 0u64;
    while !world.stop.load(Ordering::Relaxed) {
        n += 1;
        // Admissions slow down when many wait, so queues (and the final read) stay small.
        let admit_weight = if world.waiting() > 150 { 3 } else { 22 };
        let weights = [
            admit_weight, // 0 admit
            2,            // 1 replay an earlier key
            9,            // 2 call the triage queue
            11,           // 3 call the treatment queue
            12,           // 4 triage / re-triage
            8,            // 5 start
            10,           // 6 finish
            3,            // 7 no-show
            3,            // 8 recall
            3,            // 9 transfer
            2,            // 10 leave
            4,            // 11 acknowledge an alert
        ];
        let choice = WeightedIndex::new(weights)
            .expect("weights")
            .sample(&mut rng);
        let outcome = match choice {
            0 => {
                let unit = if rng.gen_bool(0.7) { "pa" } else { "obs" };
                let mut body = json!({"name": format!("Soak {id}-{n}"), "complaint": "soak"});
                if rng.gen_bool(0.5) {
                    body["colour"] = json!(COLOURS.choose(&mut rng));
                }
                if rng.gen_bool(0.3) {
                    // An arrival some seconds ago: the place in the queue then differs
                    // from the admission order, and deadlines may already have passed.
                    let ago = TimeDelta::milliseconds(rng.gen_range(1_000..30_000));
                    body["arrived_at"] = json!(
                        (Utc::now() - ago).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                    );
                }
                if rng.gen_bool(0.5) {
                    let key = format!("soak-{id}-{n}");
                    world
                        .keys
                        .lock()
                        .push((key.clone(), unit.to_owned(), body.clone()));
                    if rng.gen_bool(0.05) {
                        // The same key twice at once: one patient, one answer.
                        let (a, _) = tokio::join!(
                            world.admit(id, unit, &body, Some(&key), false),
                            world.admit(id, unit, &body, Some(&key), false)
                        );
                        a
                    } else {
                        world.admit(id, unit, &body, Some(&key), false).await
                    }
                } else {
                    world.admit(id, unit, &body, None, false).await
                }
            }
            1 => {
                world.replay_some(id, &mut rng, 1).await;
                Outcome::Info {
                    error: String::new(),
                }
            }
            2 | 3 => {
                let triage = choice == 2;
                let unit = if rng.gen_bool(0.6) { "pa" } else { "obs" };
                let room = rooms(unit, triage).choose(&mut rng).expect("a room");
                let queue = if triage { "triage" } else { "treatment" };
                let kind = if triage {
                    Kind::CallTriage
                } else {
                    Kind::CallTreatment
                };
                world
                    .act(
                        id,
                        kind,
                        None,
                        format!("/units/{unit}/call"),
                        json!({"queue": queue, "room": room}),
                    )
                    .await
            }
            _ => {
                let (kind, statuses, verb): (Kind, &[&str], &str) = match choice {
                    4 => (
                        Kind::Triage,
                        &["in_triage", "in_triage", "awaiting_triage", "waiting"],
                        "triage",
                    ),
                    5 => (Kind::Start, &["called"], "start"),
                    6 => (Kind::Finish, &["called", "in_treatment"], "finish"),
                    7 => (Kind::NoShow, &["in_triage", "called"], "no-show"),
                    8 => (Kind::Recall, &["in_triage", "called"], "recall"),
                    9 => (
                        Kind::Transfer,
                        &["awaiting_triage", "waiting", "called"],
                        "transfer",
                    ),
                    10 => (Kind::Leave, &OPEN, "leave"),
                    _ => (Kind::Ack, &[], "ack"),
                };
                if kind == Kind::Ack {
                    ack_one(&world, id, &mut rng).await
                } else if let Some((p, k)) = world.pick(&mut rng, statuses) {
                    let request = match kind {
                        Kind::Triage => {
                            json!({"colour": COLOURS.choose(&mut rng), "note": "soak"})
                        }
                        Kind::Finish => {
                            let outcomes = ["discharged", "admitted", "transferred", "deceased"];
                            json!({"outcome": outcomes.choose(&mut rng)})
                        }
                        Kind::Transfer => json!({"unit": other_unit(&k.unit)}),
                        Kind::Leave => {
                            let reasons = ["lwbs", "cancelled", "error"];
                            json!({"reason": reasons.choose(&mut rng)})
                        }
                        _ => Value::Null,
                    };
                    world
                        .act(
                            id,
                            kind,
                            Some(p.clone()),
                            format!("/patients/{p}/{verb}"),
                            request,
                        )
                        .await
                } else {
                    Outcome::Info {
                        error: String::new(),
                    }
                }
            }
        };
        if matches!(outcome, Outcome::Fail { status: 0, .. }) {
            // The server is down: do not spin.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if pause_ms > 0 {
            let pause = rng.gen_range(0..=pause_ms);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }
}

/// Lists the active alerts and acknowledges a firing one, as a clinician would.
async fn ack_one(world: &World, id: usize, rng: &mut StdRng) -> Outcome {
    let none = Outcome::Info {
        error: String::new(),
    };
    let Ok(r) = world.http.get(world.url("/alerts")).send().await else {
        return none;
    };
    let Ok(alerts) = r.json::<Vec<Value>>().await else {
        return none;
    };
    let firing: Vec<&Value> = alerts.iter().filter(|a| a["state"] == "firing").collect();
    let Some(alert) = firing.choose(rng) else {
        return none;
    };
    let alert_id = alert["id"].as_u64().unwrap_or(0);
    world
        .act(
            id,
            Kind::Ack,
            alert["protocol"].as_str().map(str::to_owned),
            format!("/alerts/{alert_id}/ack"),
            json!({"by": format!("soak-{id}"), "alert": alert_id}),
        )
        .await
}

// ---------------------------------------------------------------- reading state

/// GET with a few retries on refusals and 503 (reads by the harness, not checked ops).
async fn get_json(http: &Client, url: &str) -> Result<(u16, Value), String> {
    let mut last = String::new();
    for _ in 0..50 {
        match http.get(url).send().await {
            Ok(r) if r.status().as_u16() == 503 => last = "503".into(),
            Ok(r) => {
                let status = r.status().as_u16();
                let v = r.json::<Value>().await.unwrap_or(Value::Null);
                return Ok((status, v));
            }
            Err(e) => last = error_chain(&e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("GET {url}: {last}"))
}

/// One unit's queue, every page, in call order.
async fn read_queue(world: &World, unit: &str, queue: &str) -> Result<Vec<Value>, String> {
    let mut out: Vec<Value> = Vec::new();
    loop {
        let url = world.url(&format!(
            "/units/{unit}/queue?queue={queue}&limit=1000&offset={}",
            out.len()
        ));
        let (status, v) = get_json(&world.http, &url).await?;
        if status != 200 {
            return Err(format!("GET {url}: {status} {v}"));
        }
        let page = v["patients"].as_array().cloned().unwrap_or_default();
        let total = v["total"].as_u64().unwrap_or(0) as usize;
        let done = page.is_empty() || out.len() + page.len() >= total;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

fn time_of(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()?.parse().ok()
}

/// docs/api.md, "Queues and call order": the triage queue by `arrived_at`
/// then protocol number; the treatment queue by colour rank, then `arrived_at`,
/// then protocol number. Also each entry's status and `position`.
fn order_violations(unit: &str, queue: &str, patients: &[Value]) -> Vec<String> {
    let mut out = Vec::new();
    let want_status = if queue == "triage" {
        "awaiting_triage"
    } else {
        "waiting"
    };
    let key = |p: &Value| {
        let rank = if queue == "triage" {
            0
        } else {
            p["colour"]
                .as_str()
                .and_then(|c| COLOURS.iter().position(|x| *x == c))
                .unwrap_or(usize::MAX)
        };
        (
            rank,
            time_of(&p["arrived_at"]),
            p["protocol"].as_str().unwrap_or("").to_owned(),
        )
    };
    for (i, p) in patients.iter().enumerate() {
        if p["status"] != want_status || p["unit"] != unit {
            out.push(format!(
                "{unit}/{queue}[{i}]: {} is {} in {}",
                p["protocol"], p["status"], p["unit"]
            ));
        }
        if p["position"].as_u64() != Some(i as u64 + 1) {
            out.push(format!(
                "{unit}/{queue}[{i}]: {} has position {}",
                p["protocol"], p["position"]
            ));
        }
        if i > 0 && key(&patients[i - 1]) >= key(p) {
            out.push(format!(
                "{unit}/{queue}[{i}]: {} ({}, {}) after {} ({}, {})",
                p["protocol"],
                p["colour"],
                p["arrived_at"],
                patients[i - 1]["protocol"],
                patients[i - 1]["colour"],
                patients[i - 1]["arrived_at"]
            ));
        }
    }
    out
}

async fn check_queues(world: &World, found: &mut Vec<String>) -> Result<usize, String> {
    let mut reads = 0;
    for (unit, _, _) in UNITS {
        for queue in ["triage", "treatment"] {
            let patients = read_queue(world, unit, queue).await?;
            reads += 1;
            found.extend(order_violations(unit, queue, &patients));
        }
    }
    Ok(reads)
}

/// How long the final drain may go without the outbox's backlog shrinking.
const DRAIN_STALL: Duration = Duration::from_secs(60);

async fn outbox_pending(world: &World) -> Option<f64> {
    let text = world
        .http
        .get(format!("{}/metrics", world.base))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("triagem_webhook_outbox_pending "))
        .and_then(|v| v.trim().parse().ok())
}

/// The final state, read after the last restart.
struct Final {
    /// Every patient found, by protocol: (view, history).
    patients: BTreeMap<String, (Value, Vec<Value>)>,
    /// Protocols below the highest found that answered 404.
    gaps: Vec<String>,
    queues: BTreeMap<(String, String), Vec<Value>>,
    /// Alerts before waiting for the outbox, and after taking the receipts.
    alerts_before: Vec<Value>,
    alerts_after: Vec<Value>,
    receipts: Vec<Receipt>,
    outbox_drained: bool,
}

fn protocol_of(year: &str, seq: u64) -> String {
    format!("{year}{seq:013}")
}

async fn read_patient(
    world: &World,
    p: String,
) -> Result<(String, Option<(Value, Vec<Value>)>), String> {
    let (status, view) = get_json(&world.http, &world.url(&format!("/patients/{p}"))).await?;
    match status {
        404 => Ok((p, None)),
        200 => {
            let (s, history) =
                get_json(&world.http, &world.url(&format!("/patients/{p}/history"))).await?;
            if s != 200 {
                return Err(format!("history of {p}: {s} {history}"));
            }
            let history = history.as_array().cloned().unwrap_or_default();
            Ok((p, Some((view, history))))
        }
        s => Err(format!("patient {p}: {s} {view}")),
    }
}

/// Reads every protocol number from 1 up, until 50 in a row past the highest
/// number anyone was told are unknown (admissions with no answer may have
/// taken numbers beyond it).
async fn read_patients(
    world: &World,
    year: &str,
    highest_told: u64,
) -> Result<(BTreeMap<String, (Value, Vec<Value>)>, Vec<String>), String> {
    let mut patients = BTreeMap::new();
    let mut missing = BTreeSet::new();
    let mut from = 1;
    let mut to = highest_told + 50;
    loop {
        let results: Vec<_> = stream::iter(from..=to)
            .map(|seq| read_patient(world, protocol_of(year, seq)))
            .buffer_unordered(8)
            .collect()
            .await;
        for r in results {
            match r? {
                (p, Some(found)) => {
                    patients.insert(p, found);
                }
                (p, None) => {
                    missing.insert(p);
                }
            }
        }
        let highest_found = patients.keys().last().cloned().unwrap_or_default();
        let limit = protocol_of(year, to.saturating_sub(50));
        if highest_found <= limit {
            let gaps = missing.into_iter().filter(|p| *p < highest_found).collect();
            return Ok((patients, gaps));
        }
        from = to + 1;
        to += 100;
    }
}

// ---------------------------------------------------------------- the checker

/// Each check: its name and what it found (an empty list passes).
struct Report {
    checks: Vec<(&'static str, Vec<String>)>,
}

impl Report {
    fn failed(&self) -> bool {
        self.checks.iter().any(|(_, v)| !v.is_empty())
    }
}

/// Milliseconds, as the service keeps times.
fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Whether a history entry's time lies within [invoke, complete] (1 ms slack
/// each side for the service's millisecond truncation). Both clocks are this
/// machine's wall clock, so the entry's moment is the linearization point.
fn within(at: &Value, invoke: DateTime<Utc>, complete: DateTime<Utc>) -> bool {
    time_of(at).is_some_and(|t| ms(t) >= ms(invoke) - 1 && ms(t) <= ms(complete) + 1)
}

/// What a history entry's `details` must satisfy to be the one an operation wrote.
type Matcher = Box<dyn Fn(&Value) -> bool>;

struct Epoch {
    ready_at: DateTime<Utc>,
    killed_at: Option<DateTime<Utc>>,
}

fn check(ops: &[Op], fin: &Final, epochs: &[Epoch], server_panics: Vec<String>) -> Report {
    let mut lost_admissions = Vec::new();
    let mut lost_transitions = Vec::new();
    let mut duplicates = Vec::new();
    let mut phantoms = Vec::new();
    let mut idempotency = Vec::new();
    let mut order_rt = Vec::new();
    let mut wrong_answers = Vec::new();
    let mut bad_5xx = Vec::new();
    let mut bad_503 = Vec::new();

    // Patients by name: every logical admission has a unique name.
    let mut by_name: HashMap<&str, Vec<&str>> = HashMap::new();
    for (p, (view, _)) in &fin.patients {
        if let Some(n) = view["name"].as_str() {
            by_name.entry(n).or_default().push(p);
        }
    }

    // --- admissions, grouped by logical request (name)
    let mut requests: BTreeMap<&str, Vec<&Op>> = BTreeMap::new();
    for op in ops.iter().filter(|o| o.kind == Kind::Admit) {
        if let Some(n) = op.name.as_deref() {
            requests.entry(n).or_default().push(op);
        }
    }
    // (first invoke, first ok complete, protocol) of each acknowledged admission.
    let mut created: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = Vec::new();
    for (name, group) in &requests {
        let found = by_name.get(name).cloned().unwrap_or_default();
        if found.len() > 1 {
            duplicates.push(format!(
                "{name:?} admitted {} times: {found:?}",
                found.len()
            ));
        }
        let oks: Vec<&&Op> = group.iter().filter(|o| o.ok().is_some()).collect();
        let told: BTreeSet<&str> = oks
            .iter()
            .filter_map(|o| o.ok()?["protocol"].as_str())
            .collect();
        if told.len() > 1 {
            idempotency.push(format!("key {:?} answered {told:?}", group[0].key));
        }
        let hashes: BTreeSet<u64> = oks
            .iter()
            .filter_map(|o| match &o.outcome {
                Outcome::Ok { body_hash, .. } => Some(*body_hash),
                _ => None,
            })
            .collect();
        if hashes.len() > 1 {
            idempotency.push(format!(
                "key {:?}: {} different bodies replayed for one admission",
                group[0].key,
                hashes.len()
            ));
        }
        for o in &oks {
            let a = o.ok().expect("ok");
            let with_colour = o.request["body"]["colour"].is_string();
            let want = if with_colour {
                "waiting"
            } else {
                "awaiting_triage"
            };
            if !o.replay && a["status"] != want {
                wrong_answers.push(format!(
                    "admission {name:?} answered status {}",
                    a["status"]
                ));
            }
        }
        let definite = group
            .iter()
            .all(|o| matches!(o.outcome, Outcome::Fail { .. }));
        if definite && !found.is_empty() {
            phantoms.push(format!(
                "{name:?} was refused ({}) yet is {found:?}",
                group
                    .iter()
                    .map(|o| match &o.outcome {
                        Outcome::Fail { status, code } => format!("{status} {code}"),
                        _ => String::new(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let Some(first_ok) = oks.iter().min_by_key(|o| o.complete) else {
            continue;
        };
        let protocol = first_ok.ok().expect("ok")["protocol"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let first_invoke = group.iter().map(|o| o.invoke).min().expect("an op");
        match fin.patients.get(&protocol) {
            None => lost_admissions.push(format!(
                "protocol {protocol} ({name:?}, answered 201 at {}) is gone after the restarts",
                first_ok.complete
            )),
            Some((view, history)) => {
                if view["name"] != *name {
                    lost_admissions.push(format!(
                        "protocol {protocol} was {name:?} when admitted, is {} now",
                        view["name"]
                    ));
                } else if !history.iter().any(|e| {
                    e["event"] == "admitted" && within(&e["at"], first_invoke, first_ok.complete)
                }) {
                    lost_admissions.push(format!(
                        "protocol {protocol} ({name:?}): no 'admitted' entry in its history \
                         between {first_invoke} and {}",
                        first_ok.complete
                    ));
                }
            }
        }
        created.push((first_invoke, first_ok.complete, protocol));
    }

    // --- protocol numbers unique and increasing in real-time order: if A's 201
    // came before B was sent, A's number is lower.
    let mut seen = HashSet::new();
    for (_, _, p) in &created {
        if !seen.insert(p) {
            duplicates.push(format!("protocol {p} answered to two different admissions"));
        }
    }
    let mut by_invoke: Vec<&(DateTime<Utc>, DateTime<Utc>, String)> = created.iter().collect();
    by_invoke.sort_by_key(|c| c.0);
    let mut by_complete: Vec<&(DateTime<Utc>, DateTime<Utc>, String)> = created.iter().collect();
    by_complete.sort_by_key(|c| c.1);
    let mut j = 0;
    let mut max_done: Option<&(DateTime<Utc>, DateTime<Utc>, String)> = None;
    for c in by_invoke {
        while j < by_complete.len() && by_complete[j].1 < c.0 {
            if max_done.is_none_or(|m| by_complete[j].2 > m.2) {
                max_done = Some(by_complete[j]);
            }
            j += 1;
        }
        if let Some(m) = max_done {
            if m.2 >= c.2 {
                order_rt.push(format!(
                    "{} was answered at {} but {} sent later at {} got a lower number",
                    m.2, m.1, c.2, c.0
                ));
            }
        }
    }

    // --- acknowledged transitions: each in its patient's history, at a moment
    // within the operation's interval, with the details the request asked for.
    let mut used: HashSet<(String, usize)> = HashSet::new();
    for op in ops.iter().filter(|o| o.kind != Kind::Admit) {
        let Some(a) = op.ok() else { continue };
        let call = op.kind == Kind::CallTriage || op.kind == Kind::CallTreatment;
        if call && a.as_object().is_none_or(|m| m.is_empty()) {
            continue; // 204: nobody waited
        }
        let Some(p) = op.protocol.clone() else {
            continue;
        };
        let status = a["status"].as_str().unwrap_or("");
        let expected: &[&str] = match op.kind {
            Kind::Triage => &["waiting"],
            Kind::CallTriage => &["in_triage"],
            Kind::CallTreatment => &["called"],
            Kind::Start => &["in_treatment"],
            Kind::Finish => &["finished"],
            Kind::NoShow => &["awaiting_triage", "waiting", "left"],
            Kind::Recall => &["in_triage", "called"],
            Kind::Transfer => &["awaiting_triage", "waiting"],
            Kind::Leave => &["left"],
            Kind::Ack | Kind::Admit => &[],
        };
        if op.kind != Kind::Ack && !expected.contains(&status) {
            wrong_answers.push(format!("{:?} of {p} answered status {status:?}", op.kind));
        }
        // An acknowledgement of an alert already acknowledged at its level is a
        // 200 that changes nothing: only a new acknowledgement is looked for.
        if op.kind == Kind::Ack && !within(&a["acknowledged_at"], op.invoke, op.complete) {
            continue;
        }
        let (event, detail): (&str, Matcher) = match op.kind {
            Kind::Triage => ("triaged", {
                let c = op.request["colour"].clone();
                Box::new(move |d: &Value| d["colour"] == c)
            }),
            Kind::CallTriage | Kind::CallTreatment => ("called", {
                let (room, at) = (a["room"].clone(), a["called_at"].clone());
                let q = if op.kind == Kind::CallTriage {
                    "triage"
                } else {
                    "treatment"
                };
                Box::new(move |d: &Value| {
                    d["room"] == room && d["called_at"] == at && d["queue"] == q
                })
            }),
            Kind::Start => ("started", Box::new(|_: &Value| true)),
            Kind::Finish => ("finished", {
                let o = op.request["outcome"].clone();
                Box::new(move |d: &Value| d["outcome"] == o)
            }),
            Kind::NoShow => ("no_show", {
                let n = a["no_shows"].clone();
                Box::new(move |d: &Value| d["no_shows"] == n)
            }),
            Kind::Recall => ("recalled", {
                let room = a["room"].clone();
                Box::new(move |d: &Value| d["room"] == room)
            }),
            Kind::Transfer => ("transferred", {
                let to = op.request["unit"].clone();
                Box::new(move |d: &Value| d["to"] == to)
            }),
            Kind::Leave => ("left", {
                let r = op.request["reason"].clone();
                Box::new(move |d: &Value| d["reason"] == r)
            }),
            Kind::Ack => ("alert.acknowledged", {
                let id = a["id"].clone();
                Box::new(move |d: &Value| d["alert"] == id)
            }),
            Kind::Admit => unreachable!(),
        };
        let history = fin
            .patients
            .get(&p)
            .map(|(_, h)| h.as_slice())
            .unwrap_or(&[]);
        let hit = history.iter().enumerate().position(|(i, e)| {
            e["event"] == event
                && detail(&e["details"])
                && within(&e["at"], op.invoke, op.complete)
                // Two acknowledgements of one alert at once both answer 200 for
                // the one entry; every other action writes an entry of its own.
                && (op.kind == Kind::Ack || !used.contains(&(p.clone(), i)))
        });
        match hit {
            Some(i) => {
                used.insert((p.clone(), i));
            }
            None => lost_transitions.push(format!(
                "{:?} of {p} {} (answered {} at {}): no '{event}' entry in its history{}",
                op.kind,
                op.request,
                status,
                op.complete,
                if fin.patients.contains_key(&p) {
                    ""
                } else {
                    " (the patient is gone)"
                }
            )),
        }
    }

    // --- status codes: no 5xx but 503, and 503 only while recovering.
    for op in ops {
        if let Outcome::Fail { status, code } = &op.outcome {
            if *status >= 500 && *status != 503 {
                bad_5xx.push(format!("{:?} {}: {status} {code}", op.kind, op.request));
            }
            if *status == 503
                && epochs.iter().any(|e| {
                    e.ready_at <= op.invoke && e.killed_at.is_none_or(|k| op.complete <= k)
                })
            {
                bad_503.push(format!(
                    "{:?} {} at {}: 503 while the server was ready",
                    op.kind, op.request, op.invoke
                ));
            }
        }
    }

    // --- the final queues: ordered, and holding exactly the patients whose
    // status says they wait there.
    let mut queue_order = Vec::new();
    let mut queue_members = Vec::new();
    let mut in_queue: HashSet<(String, String, String)> = HashSet::new();
    for ((unit, queue), patients) in &fin.queues {
        queue_order.extend(order_violations(unit, queue, patients));
        for p in patients {
            let key = (
                p["protocol"].as_str().unwrap_or("").to_owned(),
                unit.clone(),
                queue.clone(),
            );
            if !in_queue.insert(key) {
                queue_members.push(format!("{} twice in {unit}/{queue}", p["protocol"]));
            }
        }
    }
    for (p, (view, _)) in &fin.patients {
        let queue = match view["status"].as_str() {
            Some("awaiting_triage") => "triage",
            Some("waiting") => "treatment",
            _ => continue,
        };
        let unit = view["unit"].as_str().unwrap_or("").to_owned();
        if !in_queue.contains(&(p.clone(), unit.clone(), queue.to_owned())) {
            queue_members.push(format!(
                "{p} is {} in {unit} but not in its queue",
                view["status"]
            ));
        }
    }

    // --- alerts: one delivery_id per alert, event and level; no level skipped.
    let (repeated, skipped, lost_alerts) = check_alerts(fin);

    Report {
        checks: vec![
            ("lost acknowledged admissions", lost_admissions),
            ("lost acknowledged transitions", lost_transitions),
            ("duplicate admissions", duplicates),
            ("refused admissions present (phantoms)", phantoms),
            ("idempotency replays differing", idempotency),
            ("protocol numbers out of real-time order", order_rt),
            (
                "protocol numbers skipped",
                fin.gaps.iter().map(|p| format!("{p} is unknown")).collect(),
            ),
            ("wrong answers", wrong_answers),
            ("queue order violations (final)", queue_order),
            ("queue membership mismatches (final)", queue_members),
            ("repeated alert levels", repeated),
            ("skipped alert levels", skipped),
            ("lost alert changes", lost_alerts),
            ("5xx other than 503", bad_5xx),
            ("503 while ready", bad_503),
            ("server panics", server_panics),
            (
                "webhook outbox not drained",
                if fin.outbox_drained {
                    vec![]
                } else {
                    vec![format!(
                        "triagem_webhook_outbox_pending stopped falling for {} s before reaching 0",
                        DRAIN_STALL.as_secs()
                    )]
                },
            ),
        ],
    }
}

/// Deliveries, deduplicated by `delivery_id` (a receiver may see one twice:
/// at least once), against the alerts read before and after them.
fn check_alerts(fin: &Final) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut repeated = Vec::new();
    let mut skipped = Vec::new();
    let mut lost = Vec::new();
    // (alert, event, level) -> delivery ids
    let mut ids: BTreeMap<(u64, String, i64), BTreeSet<&str>> = BTreeMap::new();
    for r in &fin.receipts {
        ids.entry((r.alert, r.event.clone(), r.level))
            .or_default()
            .insert(&r.delivery_id);
    }
    for ((alert, event, level), set) in &ids {
        if set.len() > 1 {
            repeated.push(format!(
                "alert {alert} {event} level {level}: {} delivery ids {set:?}",
                set.len()
            ));
        }
    }
    // Levels fired per alert, and whether its ladder could start with a warning.
    let mut fired: BTreeMap<u64, (BTreeSet<i64>, String, i64)> = BTreeMap::new();
    let mut first_receipt: HashMap<u64, &Receipt> = HashMap::new();
    for r in &fin.receipts {
        first_receipt.entry(r.alert).or_insert(r);
        if r.event == "alert.firing" {
            fired
                .entry(r.alert)
                .or_insert_with(|| (BTreeSet::new(), r.protocol.clone(), r.max_wait_seconds))
                .0
                .insert(r.level);
        }
    }
    let lowest = |max_wait: i64| if max_wait == 0 { 1 } else { 0 };
    for (alert, (levels, protocol, max_wait)) in &fired {
        let (lo, hi) = (
            *levels.first().expect("a level"),
            *levels.last().expect("a level"),
        );
        let want: BTreeSet<i64> = (lowest(*max_wait)..=hi).collect();
        if lo < lowest(*max_wait) || *levels != want {
            skipped.push(format!(
                "alert {alert} of {protocol}: levels {levels:?} delivered (max wait {max_wait} s)"
            ));
        }
    }
    // Every level an alert reached (read before the outbox drained) was delivered.
    for a in &fin.alerts_before {
        let (Some(id), Some(level)) = (a["id"].as_u64(), a["level"].as_i64()) else {
            continue;
        };
        let got = fired.get(&id).map(|f| f.0.clone()).unwrap_or_default();
        let first_wait = first_receipt
            .get(&id)
            .map(|r| r.max_wait_seconds)
            .unwrap_or_else(|| a["max_wait_seconds"].as_i64().unwrap_or(-1));
        let missing: Vec<i64> = (lowest(first_wait)..=level)
            .filter(|l| !got.contains(l))
            .collect();
        if !missing.is_empty() {
            skipped.push(format!(
                "alert {id} of {} is at level {level} but levels {missing:?} were never delivered",
                a["protocol"]
            ));
        }
    }
    // Nothing delivered that the journal does not hold (read after the deliveries).
    let after: HashMap<u64, &Value> = fin
        .alerts_after
        .iter()
        .filter_map(|a| Some((a["id"].as_u64()?, a)))
        .collect();
    for (alert, (levels, protocol, _)) in &fired {
        let hi = *levels.last().expect("a level");
        match after.get(alert) {
            None => lost.push(format!(
                "alert {alert} of {protocol} was delivered (levels {levels:?}) but is gone"
            )),
            Some(a) if a["level"].as_i64().unwrap_or(-1) < hi => lost.push(format!(
                "alert {alert} of {protocol} delivered at level {hi} but is at level {}",
                a["level"]
            )),
            Some(_) => {}
        }
    }
    (repeated, skipped, lost)
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if !opts.bin.exists() {
        eprintln!(
            "no triagem binary at {} (cargo build --release, or --bin PATH / TRIAGEM_BIN)",
            opts.bin.display()
        );
        return ExitCode::from(2);
    }
    match run(&opts).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("soak aborted: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(opts: &Opts) -> Result<bool, String> {
    let started = Instant::now();
    let dir = tempfile::Builder::new()
        .prefix("triagem-soak-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let path = dir.path().to_owned();

    // The webhook receiver.
    let hook = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let hook_url = format!(
        "http://{}/hooks/triagem",
        hook.local_addr().map_err(|e| e.to_string())?
    );
    let receipts: Arc<Mutex<Vec<Receipt>>> = Arc::default();
    tokio::spawn(receiver(hook, receipts.clone()));

    let port = free_port();
    let config = path.join("soak.toml");
    std::fs::write(&config, config_toml(port, &path.join("data"), &hook_url))
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let mut server = Server {
        bin: opts.bin.clone(),
        config,
        dir: path.clone(),
        base: base.clone(),
        child: None,
        starts: 0,
    };
    // Short timeouts; no retries by the client library beyond what hyper does
    // for a request that was never written.
    let http = Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "chaos soak: {} for {:.0} s, {} kills, {} clients, seed {}, in {}",
        opts.bin.display(),
        opts.duration.as_secs_f64(),
        opts.kills,
        opts.clients,
        opts.seed,
        path.display()
    );

    server.start();
    server.wait_ready(&http).await?;
    let mut epochs = vec![Epoch {
        ready_at: Utc::now(),
        killed_at: None,
    }];

    let world = Arc::new(World {
        base,
        http: http.clone(),
        known: Mutex::default(),
        keys: Mutex::default(),
        ops: Mutex::default(),
        stop: AtomicBool::new(false),
        clients: opts.clients,
    });
    let tasks: Vec<_> = (0..opts.clients)
        .map(|i| {
            tokio::spawn(client(
                world.clone(),
                i,
                opts.seed.wrapping_mul(1000).wrapping_add(i as u64),
                opts.pause_ms,
            ))
        })
        .collect();

    // The nemesis. Gaps between kills are uniform in [0.5, 1.5] × the mean that
    // spreads the kills over the run (recovery time comes on top).
    let mut rng = StdRng::seed_from_u64(opts.seed ^ 0x6e656d65736973);
    let mean = opts.duration.as_secs_f64() / (opts.kills as f64 + 1.0);
    let nemesis = world.clients;
    let mut kills_in_recovery = 0;
    let mut recoveries: Vec<Duration> = Vec::new();
    let mut violations_after_restarts: Vec<String> = Vec::new();
    let mut queue_reads = 0;
    for _ in 0..opts.kills {
        let gap = rng.gen_range(0.5 * mean..=1.5 * mean);
        tokio::time::sleep(Duration::from_secs_f64(gap)).await;
        server.kill();
        let killed_at = Utc::now();
        epochs.last_mut().expect("an epoch").killed_at = Some(killed_at);
        let down = Instant::now();
        // One time in ten, kill it again while it reads the journal back.
        if rng.gen_bool(0.1) {
            server.start();
            let wait = rng.gen_range(0..300);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            server.kill();
            kills_in_recovery += 1;
        }
        server.start();
        server.wait_ready(&http).await?;
        recoveries.push(down.elapsed());
        epochs.push(Epoch {
            ready_at: Utc::now(),
            killed_at: None,
        });
        queue_reads += check_queues(&world, &mut violations_after_restarts).await?;
        world.replay_some(nemesis, &mut rng, 5).await;
    }
    let left = opts.duration.saturating_sub(started.elapsed());
    tokio::time::sleep(left.max(Duration::from_secs(2))).await;

    // Stop the clients, then one more kill -9: the final state comes from the journal alone.
    println!(
        "{:.0} s: clients stopped after {} kills; final kill, restart and read-back",
        started.elapsed().as_secs_f64(),
        opts.kills + kills_in_recovery
    );
    world.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    server.kill();
    epochs.last_mut().expect("an epoch").killed_at = Some(Utc::now());
    server.start();
    server.wait_ready(&http).await?;
    epochs.push(Epoch {
        ready_at: Utc::now(),
        killed_at: None,
    });
    queue_reads += check_queues(&world, &mut violations_after_restarts).await?;
    // Every key again, answered or not: the same protocol for those answered,
    // and at most one patient for those that never were.
    let keys: Vec<(String, String, Value)> = world.keys.lock().clone();
    for (key, unit, body) in &keys {
        world.admit(nemesis, unit, body, Some(key), true).await;
    }

    // Alerts, then the deliveries once the outbox is empty (twice, 0.5 s
    // apart, so a commit in flight is counted), then alerts again.
    let read_alerts = || async {
        let (s, v) = get_json(&http, &world.url("/alerts?state=all")).await?;
        if s != 200 {
            return Err(format!("GET /alerts: {s}"));
        }
        Ok::<Vec<Value>, String>(v.as_array().cloned().unwrap_or_default())
    };
    let alerts_before = read_alerts().await?;
    // Waits as long as the backlog keeps shrinking: the alerts that fell due
    // while the server was down fire together at the restart, and draining
    // them takes time in proportion; a minute without progress is a failure.
    let drain_started = Instant::now();
    let mut progress_at = Instant::now();
    let mut lowest = f64::INFINITY;
    let mut outbox_drained = false;
    while progress_at.elapsed() < DRAIN_STALL {
        let pending = outbox_pending(&world).await;
        if pending == Some(0.0) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if outbox_pending(&world).await == Some(0.0) {
                outbox_drained = true;
                break;
            }
        }
        if let Some(p) = pending.filter(|p| *p < lowest) {
            lowest = p;
            progress_at = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{:.0} s: webhook outbox {} after {:.1} s",
        started.elapsed().as_secs_f64(),
        if outbox_drained {
            "drained"
        } else {
            "NOT drained"
        },
        drain_started.elapsed().as_secs_f64()
    );
    let receipt_snapshot = receipts.lock().clone();
    let alerts_after = read_alerts().await?;

    let ops: Vec<Op> = std::mem::take(&mut *world.ops.lock());
    let highest = ops
        .iter()
        .filter_map(|o| o.ok()?["protocol"].as_str().map(str::to_owned))
        .max()
        .unwrap_or_default();
    let year = if highest.len() == 17 {
        highest[..4].to_owned()
    } else {
        Utc::now().format("%Y").to_string()
    };
    let highest_seq: u64 = highest.get(4..).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (patients, gaps) = read_patients(&world, &year, highest_seq).await?;
    println!(
        "{:.0} s: read {} patients and their histories; checking",
        started.elapsed().as_secs_f64(),
        patients.len()
    );
    let mut queues = BTreeMap::new();
    for (unit, _, _) in UNITS {
        for queue in ["triage", "treatment"] {
            queues.insert(
                (unit.to_owned(), queue.to_owned()),
                read_queue(&world, unit, queue).await?,
            );
        }
    }
    server.kill();
    let server_panics = server_panics(&path, server.starts);
    let fin = Final {
        patients,
        gaps,
        queues,
        alerts_before,
        alerts_after,
        receipts: receipt_snapshot,
        outbox_drained,
    };

    let mut report = check(&ops, &fin, &epochs, server_panics);
    report.checks.insert(
        8,
        (
            "queue order violations (after each restart)",
            violations_after_restarts,
        ),
    );

    // The history, one operation a line, for a look after a failure.
    if let Ok(mut f) = File::create(path.join("history.jsonl")) {
        for op in &ops {
            let _ = writeln!(f, "{}", serde_json::to_string(op).unwrap_or_default());
        }
    }

    print_report(
        opts,
        &ops,
        &fin,
        &report,
        Stats {
            kills: opts.kills + kills_in_recovery + 1,
            kills_in_recovery,
            recoveries,
            queue_reads,
            keys: keys.len(),
            elapsed: started.elapsed(),
        },
    );
    let failed = report.failed();
    if failed || opts.keep {
        let kept = dir.keep();
        println!(
            "data dir, server logs and history.jsonl kept in {}",
            kept.display()
        );
    }
    Ok(!failed)
}

fn server_panics(dir: &Path, starts: usize) -> Vec<String> {
    (1..=starts)
        .flat_map(|i| {
            let name = format!("server-{i:03}.log");
            let text = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
            text.lines()
                .filter(|l| l.contains("panicked"))
                .map(|l| format!("{name}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect()
}

struct Stats {
    kills: usize,
    kills_in_recovery: usize,
    recoveries: Vec<Duration>,
    queue_reads: usize,
    keys: usize,
    elapsed: Duration,
}

fn print_report(opts: &Opts, ops: &[Op], fin: &Final, report: &Report, s: Stats) {
    let mut by_kind: BTreeMap<Kind, [usize; 3]> = BTreeMap::new();
    let (mut ok, mut fail, mut info) = (0, 0, 0);
    let mut fail_by: BTreeMap<String, usize> = BTreeMap::new();
    for op in ops {
        let slot = by_kind.entry(op.kind).or_default();
        match &op.outcome {
            Outcome::Ok { .. } => {
                ok += 1;
                slot[0] += 1;
            }
            Outcome::Fail { status, code } => {
                fail += 1;
                slot[1] += 1;
                *fail_by.entry(format!("{status} {code}")).or_default() += 1;
            }
            Outcome::Info { .. } => {
                info += 1;
                slot[2] += 1;
            }
        }
    }
    let mut rec = s.recoveries.clone();
    rec.sort();
    let pct = |q: f64| {
        rec.get(((rec.len() as f64 - 1.0) * q).round() as usize)
            .map_or(0, |d| d.as_millis())
    };
    let firing = fin
        .receipts
        .iter()
        .filter(|r| r.event == "alert.firing")
        .map(|r| &r.delivery_id)
        .collect::<HashSet<_>>()
        .len();
    let distinct = fin
        .receipts
        .iter()
        .map(|r| &r.delivery_id)
        .collect::<HashSet<_>>()
        .len();

    println!();
    println!("== chaos soak report");
    println!(
        "run: {:.0} s, seed {}, {} clients, binary {}",
        s.elapsed.as_secs_f64(),
        opts.seed,
        opts.clients,
        opts.bin.display()
    );
    println!(
        "kills (SIGKILL): {} = {} under load + {} during recovery + 1 before the final read; \
         restart to ready: median {} ms, max {} ms",
        s.kills,
        opts.kills,
        s.kills_in_recovery,
        pct(0.5),
        pct(1.0)
    );
    println!(
        "operations: {} — ok {ok}, failed {fail}, indeterminate {info}",
        ops.len()
    );
    for (kind, [o, f, i]) in &by_kind {
        println!(
            "  {:<15} ok {o:>6}  failed {f:>6}  indeterminate {i:>5}",
            format!("{kind:?}")
        );
    }
    println!(
        "  failures by answer: {}",
        fail_by
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "patients at the end: {} (with {} idempotency keys); queue reads checked: {}",
        fin.patients.len(),
        s.keys,
        s.queue_reads
    );
    println!(
        "alerts: {} — webhook requests {}, distinct deliveries {distinct} ({firing} level firings), \
         seen more than once {}",
        fin.alerts_after.len(),
        fin.receipts.len(),
        fin.receipts.len() - distinct
    );
    println!("checks:");
    for (name, found) in &report.checks {
        println!("  {:<48} {}", name, found.len());
    }
    for (name, found) in &report.checks {
        if found.is_empty() {
            continue;
        }
        println!("\n{}: {}", name.to_uppercase(), found.len());
        for f in found.iter().take(20) {
            println!("  - {f}");
        }
        if found.len() > 20 {
            println!("  … and {} more", found.len() - 20);
        }
    }
    println!(
        "\n{}",
        if report.failed() {
            "SOAK FAILED"
        } else {
            "SOAK PASSED: 0 lost, 0 duplicates, 0 order violations, 0 repeated or skipped alert levels"
        }
    );
}
