//! The PostgreSQL journal against a real PostgreSQL: a throwaway cluster per
//! test (`initdb` and `pg_ctl` in a temporary directory, its own port) and the
//! real `triagem` binary, two instances of it, talked to over HTTP.
//!
//! Without PostgreSQL's binaries (Debian's `postgresql` package) these tests
//! are skipped with a message; `TRIAGEM_REQUIRE_POSTGRES=1` (set by `.ci/run`)
//! makes that a failure. As root (CI) the cluster runs as the `postgres` user.

use std::collections::BTreeSet;
use std::fs::File;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

/// The lease the instances run with: short, so failovers are quick to test.
const LEASE: Duration = Duration::from_secs(2);
/// The contract: a follower serves within the lease and 5 s of the leader's death.
const FAILOVER_BOUND: Duration = Duration::from_secs(2 + 5);

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().unwrap().port()
}

/// PostgreSQL's server binaries, if installed.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists() && bin.join("pg_ctl").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A throwaway PostgreSQL cluster, stopped (immediately) when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    root: bool,
}

impl Cluster {
    /// `None` (after saying why) when PostgreSQL is not installed.
    fn start() -> Option<Self> {
        let Some(bin) = pg_bin() else {
            let hint = "no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)";
            if std::env::var("TRIAGEM_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("{hint}; TRIAGEM_REQUIRE_POSTGRES=1 forbids skipping these tests");
            }
            eprintln!("PostgreSQL tests SKIPPED: {hint}");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("triagem-pg-")
            .tempdir()
            .unwrap();
        let root = is_root();
        if root {
            // initdb refuses to run as root: the cluster is the postgres user's,
            // who must be able to enter and write the directory.
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.path())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown postgres {}", dir.path().display());
        }
        let cluster = Self {
            bin,
            port: free_port(),
            dir,
            root,
        };
        let data = cluster.dir.path().join("data");
        cluster.run(&format!(
            "{}/initdb -D {} -A trust -U postgres --no-sync >/dev/null",
            cluster.bin.display(),
            data.display()
        ));
        cluster.run(&format!(
            "{}/pg_ctl -D {} -l {}/log -w -o '-p {} -k {} -c listen_addresses=127.0.0.1' start >/dev/null",
            cluster.bin.display(),
            data.display(),
            cluster.dir.path().display(),
            cluster.port,
            cluster.dir.path().display(),
        ));
        Some(cluster)
    }

    fn run(&self, script: &str) {
        let status = if self.root {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", script])
                .status()
        } else {
            Command::new("sh").args(["-c", script]).status()
        };
        assert!(
            status.is_ok_and(|s| s.success()),
            "`{script}` failed; log:\n{}",
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// A new empty database.
    async fn database(&self, name: &str) -> String {
        let (client, connection) =
            tokio_postgres::connect(&self.url("postgres"), tokio_postgres::NoTls)
                .await
                .expect("connect to the cluster");
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        self.url(name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let script = format!(
            "{}/pg_ctl -D {}/data -m immediate stop >/dev/null",
            self.bin.display(),
            self.dir.path().display()
        );
        let _ = if self.root {
            Command::new("su")
                .args(["postgres", "-s", "/bin/sh", "-c", &script])
                .status()
        } else {
            Command::new("sh").args(["-c", &script]).status()
        };
    }
}

/// The shipped config with the journal in PostgreSQL and a short lease.
fn config(dir: &Path, backend: &str) -> PathBuf {
    config_with_lease(dir, backend, LEASE)
}

fn config_with_lease(dir: &Path, backend: &str, lease: Duration) -> PathBuf {
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.toml"))
            .unwrap();
    let text = shipped.replacen(
        "[storage]\n",
        &format!(
            "[storage]\nbackend = \"{backend}\"\nlease = \"{}ms\"\n",
            lease.as_millis()
        ),
        1,
    );
    assert_ne!(text, shipped, "the shipped config has a [storage] table");
    // As docs/ha.md asks of two instances: links to the site's shared
    // address, not to whichever machine admitted the patient.
    let text = format!("{text}\n[portal]\npublic_url = \"http://triagem.test\"\n");
    let path = dir.join(format!("{backend}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The binary as a child process, killed (if still running) when dropped.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(dir: &Path, config: &Path, database: &str, name: &str) -> Self {
        let port = free_port();
        let log = dir.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_triagem"))
            .args(["serve", "--config"])
            .arg(config)
            .env("TRIAGEM_DATA_DIR", dir.join("data"))
            .env("TRIAGEM_DATABASE_URL", database)
            .env("TRIAGEM_BIND", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the triagem binary");
        Self { child, port, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {signal} {}", self.pid());
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `/readyz`: its status and body, or none if unreachable.
    async fn readyz(&self, client: &reqwest::Client) -> Option<(u16, Value)> {
        let r = client.get(self.url("/readyz")).send().await.ok()?;
        let status = r.status().as_u16();
        Some((status, r.json().await.ok()?))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process would not die of SIGKILL before it is continued.
        let _ = Command::new("kill")
            .args(["-CONT", &self.pid()])
            .stderr(Stdio::null())
            .status();
        self.kill();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// Waits until one of `servers` is the ready leader; its index.
async fn leader_among(servers: &[&Server], client: &reqwest::Client, within: Duration) -> usize {
    let deadline = Instant::now() + within;
    loop {
        for (i, s) in servers.iter().enumerate() {
            if let Some((200, body)) = s.readyz(client).await {
                assert_eq!(body["role"], "leader", "{body}");
                return i;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no leader within {within:?}:\n{}",
            servers
                .iter()
                .map(|s| s.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `a` or `b` is the ready leader: (leader, follower).
async fn leader_and_follower<S: Deref<Target = Server>>(
    a: S,
    b: S,
    client: &reqwest::Client,
    within: Duration,
) -> (S, S) {
    if leader_among(&[&*a, &*b], client, within).await == 0 {
        (a, b)
    } else {
        (b, a)
    }
}

async fn admit(client: &reqwest::Client, server: &Server, name: &str) -> reqwest::Response {
    client
        .post(server.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": name, "colour": "green"}))
        .send()
        .await
        .expect("the request is answered")
}

/// Desks admitting (yellow) in a loop at a leader until stopped: each answer
/// is 201 (kept as acknowledged: protocol number and name) or 503, nothing else.
struct Desks {
    acked: Arc<Mutex<Vec<(u64, String)>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Desks {
    fn start(desks: usize, leader: &Server, client: &reqwest::Client) -> Self {
        let acked = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for desk in 0..desks {
            let (acked, stop, client) = (acked.clone(), stop.clone(), client.clone());
            let target = leader.url("/api/v1/units/pa/patients");
            tasks.push(tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let name = format!("Desk {desk} patient {i}");
                    let sent = client
                        .post(&target)
                        .json(&json!({"name": name, "colour": "yellow"}))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status() == 201 => {
                            let v: Value = r.json().await.unwrap();
                            acked.lock().push((number(&v["protocol"]), name));
                        }
                        Ok(r) => assert_eq!(r.status(), 503, "only 503 is allowed"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            }));
        }
        Self { acked, stop, tasks }
    }

    /// Waits until `count` admissions are acknowledged, or `within` has passed.
    async fn until(&self, count: usize, within: Duration) {
        let busy = Instant::now() + within;
        while self.acked.lock().len() < count && Instant::now() < busy {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the desks (each after its request in flight); the admissions acknowledged.
    async fn stop(self) -> Vec<(u64, String)> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        self.acked.lock().clone()
    }
}

fn number(protocol: &Value) -> u64 {
    protocol.as_str().unwrap().parse().unwrap()
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_have_one_leader_and_the_follower_refuses_the_api() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("two").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let a = Server::start(dir.path(), &config, &url, "a");
    let b = Server::start(dir.path(), &config, &url, "b");
    let client = client();
    let (leader, follower) = leader_and_follower(&a, &b, &client, Duration::from_secs(20)).await;

    let created = admit(&client, leader, "Ana Souza").await;
    assert_eq!(created.status(), 201);
    let created_protocol = created.json::<Value>().await.unwrap()["protocol"].clone();
    let (status, ready) = leader.readyz(&client).await.unwrap();
    assert_eq!(status, 200);
    let term = ready["term"].as_u64().unwrap();
    assert!(term >= 1, "{ready}");

    // The follower: 503 on readyz with its role, not_leader on the API.
    let (status, body) = follower.readyz(&client).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["role"], "follower");
    assert_eq!(body["term"].as_u64(), Some(term), "{body}");
    for r in [
        admit(&client, follower, "Bruno Lima").await,
        client
            .get(follower.url("/api/v1/units/pa/queue"))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let problem: Value = r.json().await.unwrap();
        assert_eq!(problem["code"], "not_leader", "{problem}");
    }
    // The patient's follow-up page is static and served by both; its lookup
    // is an API call, refused by the follower like the others (the page
    // says it cannot check right now and tries again).
    let protocol = created_protocol.as_str().unwrap();
    let page = client
        .get(follower.url(&format!("/p/{protocol}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let track = client
        .get(follower.url(&format!("/api/v1/track/{protocol}")))
        .header("Triagem-Check-Code", "ABCDEF")
        .send()
        .await
        .unwrap();
    assert_eq!(track.status(), 503);
    assert_eq!(track.json::<Value>().await.unwrap()["code"], "not_leader");
    // Health and metrics are served by both.
    assert_eq!(
        client
            .get(follower.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    for (server, leading) in [(leader, 1.0), (follower, 0.0)] {
        let text = client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(metric(&text, "triagem_leader"), Some(leading), "{text}");
        assert_eq!(metric(&text, "triagem_leader_term"), Some(term as f64));
        assert_eq!(metric(&text, "triagem_config_differs"), Some(0.0), "{text}");
    }
    // The follower refused Bruno: only Ana is in the queue.
    let queue: Value = client
        .get(leader.url("/api/v1/units/pa/queue"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queue["total"], 1, "{queue}");
}

/// Instances starting while the leader commits admissions all start and
/// follow. Their start-up created the tables "if not exists", which locks an
/// existing table too, and a start that met a commit holding the same tables
/// in the other order stopped with "deadlock detected" (seen twice in fifteen
/// runs of an earlier stuck-writer test, whose second instance started as
/// the first committed; this loop of starts did not
/// catch it in two runs of the old code: the window is a few milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_beside_a_busy_leader_all_follow() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("busy").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let leader = Server::start(dir.path(), &config, &url, "leader");
    let client = client();
    leader_among(&[&leader], &client, Duration::from_secs(20)).await;
    let desks = Desks::start(4, &leader, &client);
    desks.until(50, Duration::from_secs(20)).await;
    for i in 0..30 {
        let mut follower = Server::start(dir.path(), &config, &url, &format!("follower-{i}"));
        let started = Instant::now();
        let follows = loop {
            match follower.readyz(&client).await {
                Some((503, body)) if body["role"] == "follower" => break true,
                _ if follower.child.try_wait().unwrap().is_some() => break false,
                _ if started.elapsed() > Duration::from_secs(20) => break false,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert!(follows, "follower {i} did not start:\n{}", follower.log());
        follower.kill();
    }
    let acked = desks.stop().await;
    assert!(!acked.is_empty());
}

/// A follower whose config differs from the leader's in what both must share
/// says which sections, in its log and in `triagem_config_differs`; one with
/// the same config does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_another_config_than_the_leaders_says_so() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("drift").await;
    let dir = tempfile::tempdir().unwrap();
    let same = config(dir.path(), "postgres");
    let other = dir.path().join("other.toml");
    let text = std::fs::read_to_string(&same).unwrap();
    let changed = text.replacen("max_wait = \"30m\"", "max_wait = \"20m\"", 1);
    assert_ne!(changed, text, "the shipped config has a 30 min colour");
    std::fs::write(&other, changed).unwrap();
    let client = client();
    let leader = Server::start(dir.path(), &same, &url, "leader");
    leader_among(&[&leader], &client, Duration::from_secs(20)).await;

    let differs = |server: &Server| {
        let client = &client;
        let url = server.url("/metrics");
        async move {
            // None until it listens.
            let text = client.get(url).send().await.ok()?.text().await.ok()?;
            metric(&text, "triagem_config_differs")
        }
    };
    let drifted = Server::start(dir.path(), &other, &url, "drifted");
    let deadline = Instant::now() + Duration::from_secs(20);
    while differs(&drifted).await != Some(1.0) {
        assert!(Instant::now() < deadline, "not said:\n{}", drifted.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = drifted.log();
    let warning = log
        .lines()
        .find(|l| l.contains("differs from the leader's"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("sections=protocol"), "{warning}");
    assert_eq!(
        log.matches("differs from the leader's").count(),
        1,
        "once: {log}"
    );
    assert_eq!(differs(&leader).await, Some(0.0));
    drop(drifted);

    let alike = Server::start(dir.path(), &same, &url, "alike");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !alike.log().contains("following") {
        assert!(Instant::now() < deadline, "not following:\n{}", alike.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(LEASE).await; // a few of its lease round trips
    assert_eq!(differs(&alike).await, Some(0.0), "{}", alike.log());
    assert!(!alike.log().contains("differs from the leader's"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_leader_during_admissions_loses_nothing_and_the_other_serves_within_the_bound()
{
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("failover").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let mut a = Server::start(dir.path(), &config, &url, "a");
    let mut b = Server::start(dir.path(), &config, &url, "b");
    let client = client();
    let (leader, follower) =
        leader_and_follower(&mut a, &mut b, &client, Duration::from_secs(20)).await;

    // Desks admitting in a loop at the leader until it dies.
    let desks = Desks::start(6, leader, &client);
    desks.until(300, Duration::from_secs(20)).await;
    leader.kill();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let acked = desks.stop().await;
    assert!(acked.len() >= 50, "too few admissions: {}", acked.len());

    // The other instance leads and serves within the bound.
    leader_among(&[&*follower], &client, FAILOVER_BOUND).await;
    let took = killed.elapsed();
    assert!(took <= FAILOVER_BOUND, "took over after {took:?}");

    // Every admission any desk was told of is there, as told.
    for (protocol, name) in &acked {
        let r = client
            .get(follower.url(&format!("/api/v1/patients/{protocol}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {protocol} lost");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["name"], name.as_str());
    }
    // Numbering continues without a gap or a repeat: every number up to the
    // next one exists (the acknowledged, and those committed as the leader died).
    let numbers: BTreeSet<u64> = acked.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        numbers.len(),
        acked.len(),
        "a protocol number was issued twice"
    );
    let created = admit(&client, follower, "After the failover").await;
    assert_eq!(created.status(), 201);
    let next = number(&created.json::<Value>().await.unwrap()["protocol"]);
    let first = *numbers.first().unwrap();
    assert!(next > *numbers.last().unwrap());
    for n in first..next {
        let r = client
            .get(follower.url(&format!("/api/v1/patients/{n}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "protocol {n} skipped (next was {next})");
    }
    eprintln!(
        "failover: {} admissions acknowledged, {} committed, served again {took:?} after kill -9",
        acked.len(),
        next - first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_lease_commits_nothing_once_resumed() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("paused").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let a = Server::start(dir.path(), &config, &url, "a");
    let b = Server::start(dir.path(), &config, &url, "b");
    let client = client();
    let (old, new) = leader_and_follower(&a, &b, &client, Duration::from_secs(20)).await;
    assert_eq!(admit(&client, old, "Before the pause").await.status(), 201);

    old.signal("-STOP");
    leader_among(&[new], &client, FAILOVER_BOUND).await;
    assert_eq!(
        admit(&client, new, "With the new leader").await.status(),
        201
    );

    // A request reaches the paused leader's socket; it resumes and answers it.
    let late = {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        let target = old.url("/api/v1/units/pa/patients");
        tokio::spawn(async move {
            client
                .post(target)
                .json(&json!({"name": "From the paused leader", "colour": "red"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    old.signal("-CONT");
    let status = late.await.unwrap().expect("answered once resumed");
    assert_eq!(status, 503, "the old leader must refuse, not commit");

    // It follows the new term, and nothing of it reached the database.
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_term = new.readyz(&client).await.unwrap().1["term"].clone();
    loop {
        let (status, body) = old.readyz(&client).await.unwrap();
        if status == 503 && body["role"] == "follower" && body["term"] == new_term {
            break;
        }
        assert!(Instant::now() < deadline, "old leader: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queue: Value = client
        .get(new.url("/api/v1/units/pa/queue"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = queue["patients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Before the pause", "With the new leader"]);
    let (pg, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let n: i64 = pg
        .query_one("SELECT COUNT(*) FROM patients", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_a_sqlite_journal_and_numbering_continues_on_postgres() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("migrated").await;
    let dir = tempfile::tempdir().unwrap();
    let client = client();

    // A site on SQLite admits and calls a few patients, then stops.
    let sqlite = config(dir.path(), "sqlite");
    let mut before = Server::start(dir.path(), &sqlite, &url, "sqlite");
    leader_among(&[&before], &client, Duration::from_secs(20)).await;
    let mut protocols = Vec::new();
    for name in ["Ana", "Bruno", "Carla"] {
        let r = admit(&client, &before, name).await;
        assert_eq!(r.status(), 201);
        protocols.push(r.json::<Value>().await.unwrap());
    }
    let called = client
        .post(before.url("/api/v1/units/pa/call"))
        .json(&json!({"room": "Consultório 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);
    let migrate = |to: &str| {
        Command::new(env!("CARGO_BIN_EXE_triagem"))
            .args(["migrate", "--config"])
            .arg(&sqlite)
            .args(["--to", to])
            .env("TRIAGEM_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap()
    };
    // While the site still serves: refused (the copy would miss what it
    // writes next), and nothing is copied.
    let early = migrate(&url);
    let said = String::from_utf8_lossy(&early.stderr);
    assert!(
        !early.status.success() && said.contains("another Triagem"),
        "{said}"
    );
    before.signal("-TERM");
    let _ = before.child.wait();

    // Into a database an instance has led on, even empty: refused (it would
    // serve the copy under its own delivery ids).
    let led = cluster.database("led").await;
    let dir_led = tempfile::tempdir().unwrap();
    let mut leader = Server::start(
        dir_led.path(),
        &config(dir_led.path(), "postgres"),
        &led,
        "postgres",
    );
    leader_among(&[&leader], &client, Duration::from_secs(20)).await;
    leader.signal("-TERM");
    let _ = leader.child.wait();
    let refused = migrate(&led);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && said.contains("has led on it"),
        "{said}"
    );

    let out = migrate(&url);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("patients     3 rows"), "{stdout}");
    // Into a database that is no longer empty: refused. The URL from the
    // environment, as the docs show to keep the password off the command line.
    let again = Command::new(env!("CARGO_BIN_EXE_triagem"))
        .args(["migrate", "--config"])
        .arg(&sqlite)
        .env("TRIAGEM_DATA_DIR", dir.path().join("data"))
        .env("TRIAGEM_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let postgres = config(dir.path(), "postgres");
    let after = Server::start(dir.path(), &postgres, &url, "postgres");
    leader_among(&[&after], &client, Duration::from_secs(20)).await;
    for p in &protocols {
        let v: Value = client
            .get(after.url(&format!(
                "/api/v1/patients/{}",
                p["protocol"].as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["name"], p["name"]);
        assert_eq!(v["ticket"], p["ticket"]);
    }
    let board: Value = client
        .get(after.url("/api/v1/units/pa/board"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(board["calls"].as_array().unwrap().len(), 1, "{board}");
    let next = admit(&client, &after, "Daniel").await;
    assert_eq!(next.status(), 201);
    let next: Value = next.json().await.unwrap();
    assert_eq!(
        number(&next["protocol"]),
        number(&protocols[2]["protocol"]) + 1
    );
}

/// One POST as the receiver got it, and the status it answered.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    body: Value,
    answered: u16,
}

impl Received {
    fn delivery_id(&self) -> String {
        self.body["delivery_id"]
            .as_str()
            .unwrap_or_else(|| panic!("no delivery_id: {}", self.body))
            .to_owned()
    }
}

/// A webhook receiver (alert webhooks, the SMS gateway): keeps every POST
/// and answers the status set by [`Hook::answer`].
struct Hook {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

impl Hook {
    async fn start(status: u16) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(status));
        let (kept, answer) = (got.clone(), status.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let (kept, answer) = (kept.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Reads one request (headers, then Content-Length bytes).
                    loop {
                        let Ok(n) = socket.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some(end) = text.find("\r\n\r\n") else {
                            continue;
                        };
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case("content-length")
                                    .then(|| v.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if buf.len() < end + 4 + length {
                            continue;
                        }
                        let path = text.split(' ').nth(1).unwrap_or_default().to_owned();
                        let body = serde_json::from_slice::<Value>(&buf[end + 4..end + 4 + length])
                            .unwrap_or(Value::Null);
                        let status = answer.load(Ordering::SeqCst);
                        kept.lock().push(Received {
                            path,
                            body,
                            answered: status,
                        });
                        let _ = socket
                            .write_all(
                                format!(
                                    "HTTP/1.1 {status} Test\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                                )
                                .as_bytes(),
                            )
                            .await;
                        return;
                    }
                });
            }
        });
        Self { port, got, status }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().clone()
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().iter().map(|r| r.body.clone()).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_ladder_continues_across_a_failover_with_no_level_twice_or_skipped() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("ladder").await;
    let dir = tempfile::tempdir().unwrap();
    let hook = Hook::start(200).await;
    // Red waits 0 s: level 1 fires at admission, then levels 2 and 3 at +5 s
    // and +9 s, on whichever instance leads by then.
    let path = config(dir.path(), "postgres");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replacen("after = \"15m\"", "after = \"5s\"", 1)
        + &format!(
            "\n[[escalation.levels]]\nname = \"director\"\nafter = \"9s\"\n\n\
             [[alerts.webhooks]]\nurl = \"{}\"\n",
            hook.url("/alerts")
        );
    std::fs::write(&path, text).unwrap();
    let mut a = Server::start(dir.path(), &path, &url, "a");
    let mut b = Server::start(dir.path(), &path, &url, "b");
    let client = client();
    let (leader, follower) =
        leader_and_follower(&mut a, &mut b, &client, Duration::from_secs(20)).await;
    let r = client
        .post(leader.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": "Dona Rosa", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let firing = |got: &[Value]| -> Vec<(u64, String)> {
        got.iter()
            .filter(|v| v["event"] == "alert.firing")
            .map(|v| {
                (
                    v["alert"]["level"].as_u64().unwrap(),
                    v["delivery_id"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while firing(&hook.bodies()).is_empty() {
        assert!(Instant::now() < deadline, "level 1 never delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    leader.kill();
    leader_among(&[&*follower], &client, FAILOVER_BOUND).await;

    // Levels 2 and 3 come from the new leader, on time.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let levels: BTreeSet<u64> = firing(&hook.bodies()).iter().map(|(l, _)| *l).collect();
        if levels.contains(&3) {
            break;
        }
        assert!(Instant::now() < deadline, "levels so far: {levels:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let fired = firing(&hook.bodies());
    // At least once per notification, so a redelivery carries the same id;
    // but each level is one notification, fired once.
    let mut ids: Vec<(u64, BTreeSet<String>)> = Vec::new();
    for level in 1..=3 {
        let of_level: BTreeSet<String> = fired
            .iter()
            .filter(|(l, _)| *l == level)
            .map(|(_, id)| id.clone())
            .collect();
        ids.push((level, of_level));
    }
    for (level, of_level) in &ids {
        assert_eq!(of_level.len(), 1, "level {level}: {ids:?}");
    }
    let alerts: Value = client
        .get(follower.url("/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(alerts[0]["level"], 3, "{alerts}");
}

/// A client of the test's own for the database.
async fn database(url: &str) -> tokio_postgres::Client {
    let (pg, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    pg
}

async fn count(pg: &tokio_postgres::Client, sql: &str) -> i64 {
    pg.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_continue_across_a_failover_with_the_same_delivery_ids() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("deliveries").await;
    let dir = tempfile::tempdir().unwrap();
    // The alert receiver and the SMS gateway refuse everything (503) until
    // the new leader has retried what the old one could not deliver.
    let hook = Hook::start(503).await;
    let path = config(dir.path(), "postgres");
    let text = std::fs::read_to_string(&path).unwrap()
        + &format!(
            "\n[alerts]\nretry_initial = \"100ms\"\nretry_max = \"400ms\"\ntimeout = \"2s\"\n\n\
             [[alerts.webhooks]]\nurl = \"{}\"\n\n[notifications.sms]\nurl = \"{}\"\n",
            hook.url("/alerts"),
            hook.url("/sms")
        );
    std::fs::write(&path, text).unwrap();
    let mut a = Server::start(dir.path(), &path, &url, "a");
    let mut b = Server::start(dir.path(), &path, &url, "b");
    let client = client();
    let (leader, follower) =
        leader_and_follower(&mut a, &mut b, &client, Duration::from_secs(20)).await;

    // Red patients who consent to messages: each admission queues an alert
    // (level 1 fires at once) for the webhook and an SMS for the gateway.
    let mut protocols = Vec::new();
    for i in 0..4 {
        let r = client
            .post(leader.url("/api/v1/units/pa/patients"))
            .json(&json!({
                "name": format!("Paciente {i}"),
                "colour": "red",
                "contact": {"phone": "+5511987654321", "consent": true},
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        protocols.push(r.json::<Value>().await.unwrap()["protocol"].clone());
    }
    // The leader has tried (and recorded) the first of each queue a few times.
    let pg = database(&url).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = count(&pg, "SELECT COALESCE(MAX(attempts), 0) FROM outbox").await;
        let sms = count(&pg, "SELECT COALESCE(MAX(attempts), 0) FROM messages").await;
        if alerts >= 2 && sms >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "attempts recorded: {alerts} alert, {sms} SMS; {:?}\n{}",
            hook.received(),
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued_alerts = count(&pg, "SELECT COUNT(*) FROM outbox").await as usize;
    let queued_sms =
        count(&pg, "SELECT COUNT(*) FROM messages WHERE channel = 'sms'").await as usize;
    assert!(
        queued_alerts >= 4 && queued_sms == 4,
        "{queued_alerts} {queued_sms}"
    );
    assert_eq!(
        count(&pg, "SELECT COUNT(*) FROM outbox WHERE state <> 'pending'").await,
        0
    );

    leader.kill();
    // Nobody else leads before the lease runs out: all that arrived by now
    // was sent by the old leader.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = hook.received();
    assert!(before.iter().all(|r| r.answered == 503));
    let ids_of = |got: &[Received], path: &str| -> BTreeSet<String> {
        got.iter()
            .filter(|r| r.path == path)
            .map(Received::delivery_id)
            .collect()
    };
    let (alerts_before, sms_before) = (ids_of(&before, "/alerts"), ids_of(&before, "/sms"));
    assert!(!alerts_before.is_empty() && !sms_before.is_empty());
    leader_among(&[&*follower], &client, FAILOVER_BOUND).await;

    // The new leader retries the very deliveries the old one was retrying.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let after = hook.received().split_off(before.len());
        if ids_of(&after, "/alerts").is_superset(&alerts_before)
            && ids_of(&after, "/sms").is_superset(&sms_before)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "before: {alerts_before:?} {sms_before:?}; after: {after:?}\n{}",
            follower.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The receivers take them now: every notification arrives.
    hook.answer(200);
    let accepted = |path: &str| -> BTreeSet<String> {
        hook.received()
            .iter()
            .filter(|r| r.path == path && r.answered == 200)
            .map(Received::delivery_id)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while accepted("/alerts").len() < queued_alerts || accepted("/sms").len() < queued_sms {
        assert!(
            Instant::now() < deadline,
            "accepted {:?} {:?}\n{}",
            accepted("/alerts"),
            accepted("/sms"),
            follower.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // ... and is recorded as delivered.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pending = count(
            &pg,
            "SELECT COUNT(*) FROM outbox WHERE state <> 'delivered'",
        )
        .await
            + count(
                &pg,
                "SELECT COUNT(*) FROM messages WHERE state <> 'delivered'",
            )
            .await;
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{pending} not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = hook.received();

    // Deduplicated by delivery_id, none missing and none extra: one id per
    // notification, the same body on every attempt at it, whichever
    // instance made the attempt.
    let mut by_id: std::collections::BTreeMap<String, Vec<&Received>> = Default::default();
    for r in &all {
        by_id.entry(r.delivery_id()).or_default().push(r);
    }
    for (id, attempts) in &by_id {
        assert!(
            attempts
                .iter()
                .all(|r| r.body == attempts[0].body && r.path == attempts[0].path),
            "{id}: {attempts:?}"
        );
    }
    let (alert_ids, sms_ids) = (ids_of(&all, "/alerts"), ids_of(&all, "/sms"));
    assert_eq!(alert_ids.len(), queued_alerts, "{alert_ids:?}");
    assert_eq!(alert_ids, accepted("/alerts"));
    assert_eq!(sms_ids, accepted("/sms"));
    let notified: BTreeSet<(u64, String)> = all
        .iter()
        .filter(|r| r.path == "/alerts")
        .map(|r| {
            (
                r.body["alert"]["id"].as_u64().unwrap(),
                r.body["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(notified.len(), queued_alerts, "one id per notification");
    let alerts: Value = client
        .get(follower.url("/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alerts: BTreeSet<u64> = alerts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_u64().unwrap())
        .collect();
    let fired: BTreeSet<u64> = notified.iter().map(|(id, _)| *id).collect();
    assert_eq!(fired, alerts, "every alert notified");
    assert_eq!(alerts.len(), protocols.len());
    // The patients' messages, as the new leader lists them: the ids delivered.
    let mut listed = BTreeSet::new();
    for p in &protocols {
        let messages: Value = client
            .get(follower.url(&format!(
                "/api/v1/patients/{}/messages",
                p.as_str().unwrap()
            )))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for m in messages.as_array().unwrap() {
            assert_eq!(m["state"], "delivered", "{m}");
            listed.insert(m["delivery_id"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(listed, sms_ids);
    assert!(alerts_before.is_subset(&alert_ids) && sms_before.is_subset(&sms_ids));
    eprintln!(
        "deliveries across the failover: {} alert and {} SMS notifications, {} requests; \
         retried by the new leader with the same ids: {alerts_before:?} {sms_before:?}",
        alert_ids.len(),
        sms_ids.len(),
        all.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_stopped_with_sigterm_gives_the_lease_up_and_the_other_leads_at_once() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    // A long lease, so taking over at once is told apart from its expiry
    // (which would take at least two thirds of it).
    const LONG: Duration = Duration::from_secs(9);
    let url = cluster.database("sigterm").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_lease(dir.path(), "postgres", LONG);
    let mut a = Server::start(dir.path(), &config, &url, "a");
    let mut b = Server::start(dir.path(), &config, &url, "b");
    let client = client();
    let (leader, follower) =
        leader_and_follower(&mut a, &mut b, &client, Duration::from_secs(30)).await;
    let term = leader.readyz(&client).await.unwrap().1["term"]
        .as_u64()
        .unwrap();

    // Desks admit at the leader while it is told to stop: what it answered
    // 201 was committed before it let the lease go.
    let desks = Desks::start(4, leader, &client);
    desks.until(100, Duration::from_secs(20)).await;
    leader.signal("-TERM");
    let termed = Instant::now();
    leader_among(&[&*follower], &client, LONG).await;
    let took = termed.elapsed();
    let acked = desks.stop().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let exited = loop {
        if let Some(status) = leader.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running:\n{}",
            leader.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(exited.success(), "{exited}\n{}", leader.log());
    let log = leader.log();
    assert!(log.contains("lease given up"), "{log}");
    assert!(
        took < LONG / 2,
        "took over {took:?} after SIGTERM (lease {LONG:?})\n{log}"
    );
    let (_, ready) = follower.readyz(&client).await.unwrap();
    assert_eq!(ready["term"].as_u64(), Some(term + 1), "{ready}");

    // Every admission answered 201 is there, and numbering continues.
    assert!(acked.len() >= 20, "too few admissions: {}", acked.len());
    for (protocol, name) in &acked {
        let r = client
            .get(follower.url(&format!("/api/v1/patients/{protocol}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged {protocol} lost");
        assert_eq!(r.json::<Value>().await.unwrap()["name"], name.as_str());
    }
    let created = admit(&client, follower, "After the handover").await;
    assert_eq!(created.status(), 201);
    let next = number(&created.json::<Value>().await.unwrap()["protocol"]);
    let numbers: BTreeSet<u64> = acked.iter().map(|(p, _)| *p).collect();
    assert_eq!(
        numbers.len(),
        acked.len(),
        "a protocol number was issued twice"
    );
    assert!(next > *numbers.last().unwrap());
    eprintln!(
        "SIGTERM: {} admissions acknowledged, the other instance led {took:?} after the signal (lease {LONG:?})",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_resumed_after_a_pause_past_its_lease_serves_and_sends_nothing() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("resumed").await;
    let dir = tempfile::tempdir().unwrap();
    // A receiver (alert webhook and SMS gateway) per instance, so what the
    // paused one sends is told apart; both refuse, so deliveries stay pending.
    let hooks = [Hook::start(503).await, Hook::start(503).await];
    let shipped = std::fs::read_to_string(config(dir.path(), "postgres")).unwrap();
    let configs: Vec<PathBuf> = hooks
        .iter()
        .zip(["a", "b"])
        .map(|(hook, name)| {
            let path = dir.path().join(format!("{name}.toml"));
            let text = shipped.clone()
                + &format!(
                    "\n[alerts]\nretry_initial = \"500ms\"\nretry_max = \"1s\"\ntimeout = \"2s\"\n\n\
                     [[alerts.webhooks]]\nurl = \"{}\"\n\n[notifications.sms]\nurl = \"{}\"\n",
                    hook.url("/alerts"),
                    hook.url("/sms")
                );
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let a = Server::start(dir.path(), &configs[0], &url, "a");
    let b = Server::start(dir.path(), &configs[1], &url, "b");
    let client = client();
    let (old, new) = leader_and_follower(&a, &b, &client, Duration::from_secs(20)).await;
    let old_hook = if old.port == a.port {
        &hooks[0]
    } else {
        &hooks[1]
    };
    let r = client
        .post(old.url("/api/v1/units/pa/patients"))
        .json(&json!({
            "name": "Paciente",
            "colour": "red",
            "contact": {"phone": "+5511987654321", "consent": true},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The leader retries its alert and its SMS.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = old_hook.received();
        let tries = |path: &str| got.iter().filter(|r| r.path == path).count();
        if tries("/alerts") >= 2 && tries("/sms") >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "{got:?}\n{}", old.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    old.signal("-STOP");
    leader_among(&[new], &client, FAILOVER_BOUND).await;
    // The new leader calls the patient: the paused one's memory is stale.
    let called = client
        .post(new.url("/api/v1/units/pa/call"))
        .json(&json!({"room": "Consultório 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(called.status(), 200);

    // Requests reach the paused leader's socket; it answers them once resumed.
    let paused = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let queue = tokio::spawn(paused.get(old.url("/api/v1/units/pa/queue")).send());
    let ready = tokio::spawn(paused.get(old.url("/readyz")).send());
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = old_hook.received().len();
    old.signal("-CONT");
    for (what, answer) in [("queue", queue), ("readyz", ready)] {
        let r = answer.await.unwrap().expect("answered once resumed");
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 503, "{what} from stale memory: {body}");
        assert!(body.contains("not_leader"), "{what}: {body}");
    }
    // Nor does it send for a lease it no longer holds, though its retries
    // were overdue when it resumed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = old_hook.received().split_off(sent);
    assert!(after.is_empty(), "sent after it was resumed: {after:?}");
    // Its memory still has the red patient waiting, called since by the new
    // leader: its metrics say nobody waits (the queue rules read the leader),
    // or the red rule would page for a patient already called.
    let text = client
        .get(old.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(metric(&text, "triagem_leader"), Some(0.0));
    let red = text
        .lines()
        .find(|l| l.starts_with("triagem_patients_waiting{") && l.contains("colour=\"red\""))
        .expect("the red series");
    assert!(red.ends_with(" 0"), "{red}");
}

/// The setup of the tests of a leader behind a faulty link: a cluster, a
/// proxy in front of it, a leader through the proxy that has admitted one
/// patient ("Before"), and another instance connected directly, following.
struct Pair {
    // Dropped in this order: the processes before the cluster.
    leader: Server,
    other: Server,
    proxy: Proxy,
    direct: String,
    _dir: tempfile::TempDir,
    _cluster: Cluster,
}

impl Pair {
    async fn start(database: &str) -> Option<Self> {
        let cluster = Cluster::start()?;
        let direct = cluster.database(database).await;
        let proxy = Proxy::start(cluster.port).await;
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "postgres");
        let leader = Server::start(dir.path(), &config, &proxy.url(database), "leader");
        let client = client();
        leader_among(&[&leader], &client, Duration::from_secs(20)).await;
        let other = Server::start(dir.path(), &config, &direct, "other");
        assert_eq!(admit(&client, &leader, "Before").await.status(), 201);
        Some(Self {
            leader,
            other,
            proxy,
            direct,
            _dir: dir,
            _cluster: cluster,
        })
    }
}

/// A TCP proxy in front of the cluster that can hold every byte from now on
/// (a database cut off behind a middlebox: what is sent is acknowledged by
/// the proxy's kernel, and nothing arrives or comes back), hold what answers
/// the next COMMIT (it lands; its answer is lost), delay every byte each way
/// (a slow link) and sever every connection it carries.
struct Proxy {
    port: u16,
    hold: Arc<AtomicBool>,
    /// Armed: the next COMMIT (a simple query) goes through, and from then on
    /// nothing comes back on its connection.
    lose_commit_answer: Arc<AtomicBool>,
    /// Set: connections accepted from now on are held from the start.
    hold_new: Arc<AtomicBool>,
    /// Each connection's own hold, in the order they were accepted.
    holds: Arc<Mutex<Vec<Arc<AtomicBool>>>>,
    delay_ms: Arc<AtomicU64>,
    carried: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(AtomicBool::new(false));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let carried = Arc::new(Mutex::new(Vec::new()));
        let holds = Arc::new(Mutex::new(Vec::new()));
        let lose_commit_answer = Arc::new(AtomicBool::new(false));
        let hold_new = Arc::new(AtomicBool::new(false));
        let new_held = hold_new.clone();
        let (held, delayed, connections) = (hold.clone(), delay_ms.clone(), carried.clone());
        let (each, armed) = (holds.clone(), lose_commit_answer.clone());
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let own = Arc::new(AtomicBool::new(new_held.load(Ordering::SeqCst)));
                each.lock().push(own.clone());
                let answers = Arc::new(AtomicBool::new(false));
                let to_server = Hold {
                    flags: vec![held.clone(), own.clone()],
                    commit: Some((armed.clone(), answers.clone())),
                };
                let to_client = Hold {
                    flags: vec![held.clone(), own, answers],
                    commit: None,
                };
                let delay = delayed.clone();
                connections.lock().push(tokio::spawn(async move {
                    let Ok(outbound) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::join!(
                        pipe(in_read, out_write, to_server, delay.clone()),
                        pipe(out_read, in_write, to_client, delay)
                    );
                }));
            }
        });
        Self {
            port,
            hold,
            lose_commit_answer,
            hold_new,
            holds,
            delay_ms,
            carried,
            accept,
        }
    }

    fn hold(&self, on: bool) {
        self.hold.store(on, Ordering::SeqCst);
    }

    /// The next COMMIT lands, and its connection hears nothing more.
    fn lose_next_commit_answer(&self) {
        self.lose_commit_answer.store(true, Ordering::SeqCst);
    }

    /// Holds every connection accepted from now on (those open go on).
    fn hold_new_connections(&self) {
        self.hold_new.store(true, Ordering::SeqCst);
    }

    /// Holds the bytes of the `n`th connection accepted (from 0) only.
    fn hold_connection(&self, n: usize, on: bool) {
        self.holds.lock()[n].store(on, Ordering::SeqCst);
    }

    /// Each byte read from now on is delivered `delay` later, each way.
    fn delay(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The URL of `database` through this proxy.
    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Closes every connection carried so far.
    fn sever(&self) {
        for connection in self.carried.lock().drain(..) {
            connection.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.sever();
    }
}

/// What holds one direction of a connection.
struct Hold {
    /// Any set: nothing is delivered.
    flags: Vec<Arc<AtomicBool>>,
    /// Toward the server: when armed, a COMMIT seen sets the second flag
    /// (held answers) and disarms.
    commit: Option<(Arc<AtomicBool>, Arc<AtomicBool>)>,
}

/// A simple-protocol `COMMIT` query message.
const COMMIT_MESSAGE: &[u8] = b"Q\0\0\0\x0bCOMMIT\0";

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    hold: Hold,
    delay_ms: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // Read as it comes, each chunk stamped with when it may be delivered, so
    // a delay adds latency without holding up the chunks behind it.
    let (sent, mut delivered) = tokio::sync::mpsc::unbounded_channel();
    let read = async move {
        let mut buf = vec![0; 16 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let due = tokio::time::Instant::now()
                + Duration::from_millis(delay_ms.load(Ordering::SeqCst));
            if sent.send((due, buf[..n].to_vec())).is_err() {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, bytes)) = delivered.recv().await {
            tokio::time::sleep_until(due).await;
            while hold.flags.iter().any(|h| h.load(Ordering::SeqCst)) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // Before the COMMIT goes on, so its answer cannot slip back.
            if let Some((armed, answers)) = &hold.commit {
                let commit = bytes
                    .windows(COMMIT_MESSAGE.len())
                    .any(|w| w == COMMIT_MESSAGE);
                if commit && armed.swap(false, Ordering::SeqCst) {
                    answers.store(true, Ordering::SeqCst);
                }
            }
            if to.write_all(&bytes).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(read, write);
}

/// A journal on PostgreSQL, opened on a blocking thread (its client is
/// synchronous).
async fn open_journal(url: String, lease: Duration) -> triagem::journal::Journal {
    use triagem::journal::{Journal, JournalOptions};
    tokio::task::spawn_blocking(move || {
        Journal::open_postgres(&url, lease, "", JournalOptions::default())
    })
    .await
    .unwrap()
    .unwrap_or_else(|e| panic!("open the journal: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_the_database_steps_down_at_its_own_deadline() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let direct = cluster.database("cutoff").await;
    let proxy = Proxy::start(cluster.port).await;
    // Long enough to tell its 90 % (the deadline) from all of it.
    const CUT_LEASE: Duration = Duration::from_secs(3);
    let journal = open_journal(proxy.url("cutoff"), CUT_LEASE).await;
    let mut role = journal.role();
    let pg = database(&direct).await;
    let expiry = || async {
        pg.query_one("SELECT expires_at::text FROM lease", &[])
            .await
            .unwrap()
            .get::<_, String>(0)
    };
    // Held: its connection stays open and a renewal never answers. Severed:
    // a new connection never opens either.
    let mut took = Vec::new();
    for (how, sever) in [("held", false), ("severed and held", true)] {
        if tokio::time::timeout(Duration::from_secs(10), role.wait_for(|r| r.leader))
            .await
            .is_err()
        {
            break;
        }
        // Cut right after a renewal: the deadline is then 90 % of the lease away.
        let renewed = expiry().await;
        while expiry().await == renewed {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        proxy.hold(true);
        if sever {
            proxy.sever();
        }
        let cut = Instant::now();
        let stepped_down = tokio::time::timeout(CUT_LEASE * 2, role.wait_for(|r| !r.leader))
            .await
            .is_ok();
        took.push((how, stepped_down.then(|| cut.elapsed())));
        proxy.hold(false);
    }
    // Let go before asserting: its synchronous clients close on a blocking
    // thread, and not while the proxy holds their bytes.
    proxy.hold(false);
    proxy.sever();
    tokio::task::spawn_blocking(move || drop(journal))
        .await
        .unwrap();
    assert_eq!(took.len(), 2, "it did not lead again: {took:?}");
    eprintln!(
        "cut off from the database (lease {CUT_LEASE:?}): stepped down {took:?} after the cut"
    );
    for (how, took) in took {
        let took = took.unwrap_or_else(|| panic!("{how}: never stepped down"));
        assert!(
            took <= CUT_LEASE.mul_f64(0.9) + Duration::from_millis(150),
            "{how}: stepped down {took:?} after the cut (lease {CUT_LEASE:?})"
        );
    }
}

/// A slow link between the leader and the database. Each round trip 400 ms,
/// over half the lease keeper's budget (a third of the lease): it renews in
/// one round trip and goes on leading. 800 ms, over the budget (though a new
/// connection still opens in time): it steps down and the other instance, on
/// a quick link, leads. (Renewals took two round
/// trips, so the first link lost the lease, and the leader, retaking the
/// lease it still held at every tick unseen, kept it from the other for as
/// long as the link was slow: nobody led.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_to_the_database_keeps_or_hands_over_the_lease() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let direct = cluster.database("slow").await;
    let proxy = Proxy::start(cluster.port).await;
    let slow = open_journal(proxy.url("slow"), LEASE).await;
    let mut slow_role = slow.role();
    tokio::time::timeout(Duration::from_secs(10), slow_role.wait_for(|r| r.leader))
        .await
        .expect("the instance behind the proxy leads first")
        .expect("the lease keeper runs");
    let quick = open_journal(direct, LEASE).await;
    let mut quick_role = quick.role();

    proxy.delay(Duration::from_millis(200));
    let watched = Instant::now();
    let mut lost = None;
    while watched.elapsed() < LEASE * 3 {
        if !slow_role.borrow().leader || quick_role.borrow().leader {
            lost = Some(watched.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    proxy.delay(Duration::from_millis(400));
    let handed_over = tokio::time::timeout(LEASE * 5, quick_role.wait_for(|r| r.leader))
        .await
        .is_ok();
    let slow_leads = slow_role.borrow().leader;

    proxy.delay(Duration::ZERO);
    proxy.sever();
    tokio::task::spawn_blocking(move || drop((slow, quick)))
        .await
        .unwrap();
    assert_eq!(lost, None, "400 ms round trips: the lease changed hands");
    assert!(handed_over, "800 ms round trips: the other never led");
    assert!(!slow_leads, "two leaders");
}

/// The database stops answering in the middle of a commit (a middlebox holds
/// the bytes): the admission waiting on it is answered 503 once the writer's
/// deadline has passed, and SIGTERM stops the process within the server's
/// grace. It waited for the stuck writer for ever, and needed kill -9; then
/// (before the deadline on every answer) the journal's close was abandoned
/// after 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_database_stopped_answering_still_stops_on_sigterm() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    cluster.database("stuck").await;
    let proxy = Proxy::start(cluster.port).await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let mut server = Server::start(dir.path(), &config, &proxy.url("stuck"), "a");
    let client = client();
    leader_among(&[&server], &client, Duration::from_secs(20)).await;
    assert_eq!(admit(&client, &server, "Before").await.status(), 201);

    proxy.hold(true);
    let stuck = tokio::spawn({
        let url = server.url("/api/v1/units/pa/patients");
        async move {
            let slow = reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap();
            slow.post(url)
                .json(&json!({"name": "Stuck", "colour": "green"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.signal("-TERM");
    let signalled = Instant::now();
    let exited = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break Some(status);
        }
        if signalled.elapsed() > Duration::from_secs(40) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = signalled.elapsed();
    // Answered while the proxy still holds everything.
    let answered = tokio::time::timeout(Duration::from_secs(5), stuck).await;
    proxy.hold(false);
    proxy.sever();
    let log = server.log();
    assert!(exited.is_some(), "still running 40 s after SIGTERM:\n{log}");
    eprintln!("stopped {took:?} after SIGTERM with the database not answering");
    assert!(took < Duration::from_secs(15), "{took:?}:\n{log}");
    assert!(log.contains("did not answer within"), "{log}");
    let answered = answered.expect("answered, not left hanging").unwrap();
    assert_eq!(answered.ok(), Some(503), "{log}");
}

/// Only the writer's connection stops answering (a middlebox holding its
/// bytes) while the lease's own connection is well: the admission waiting on
/// it is answered 503 once the writer's deadline (1.25 leases) has passed,
/// and the leader serves again on a new connection, the held one still held;
/// the other instance is not needed. Before the deadline, every request hung
/// until the other instance led (the leader stopped renewing once a commit
/// had waited a lease and a half), and the held one until the hold ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_writer_connection_is_held_answers_and_serves_on_a_new_one() {
    let Some(pair) = Pair::start("writer").await else {
        return;
    };
    let (stuck, other, proxy, direct, client) = (
        &pair.leader,
        &pair.other,
        &pair.proxy,
        &pair.direct,
        client(),
    );

    // The journal opens its writer's connection first.
    proxy.hold_connection(0, true);
    let cut = Instant::now();
    let slow = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let held = slow
        .post(stuck.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": "Held", "colour": "green"}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let answered = cut.elapsed();
    // Served again, the held connection still held.
    let again = loop {
        let status = admit(&client, stuck, "After").await.status();
        if status == 201 || cut.elapsed() > LEASE * 6 {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let served = cut.elapsed();
    let other_ready = other.readyz(&client).await.map(|(status, _)| status);
    proxy.hold_connection(0, false);
    proxy.sever();
    let logs = format!("{}\n----\n{}", stuck.log(), other.log());
    eprintln!("writer's connection held: answered {answered:?}, served again {served:?} after");
    assert_eq!(held.ok(), Some(503), "{logs}");
    assert!(
        answered < LEASE * 2,
        "answered {answered:?} after the hold:\n{logs}"
    );
    assert_eq!(again, 201, "{logs}");
    assert_eq!(other_ready, Some(503), "{logs}");
    assert!(stuck.log().contains("did not answer within"), "{logs}");
    let pg = database(direct).await;
    let names = pg
        .query(
            "SELECT body::json->>'name' FROM patients ORDER BY protocol",
            &[],
        )
        .await
        .unwrap();
    let names: Vec<String> = names.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, ["Before", "After"]);
}

/// The leader's writer loses its connection and no new one opens (a
/// middlebox holding them), while its lease keeper's connection is well: it
/// cannot read memory back, so after a lease of failures it steps aside and
/// the other instance leads. It renewed the lease for as long as that lasted,
/// and nobody served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_read_memory_back_steps_aside_and_the_other_leads() {
    let Some(pair) = Pair::start("aside").await else {
        return;
    };
    let (a, b, proxy, client) = (&pair.leader, &pair.other, &pair.proxy, client());

    proxy.hold_new_connections();
    // The journal opens its writer's connection first.
    proxy.hold_connection(0, true);
    let cut = Instant::now();
    assert_eq!(admit(&client, a, "Held").await.status(), 503);
    let led = loop {
        if let Some((200, _)) = b.readyz(&client).await {
            break Some(cut.elapsed());
        }
        if cut.elapsed() > LEASE * 10 {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = match led {
        Some(_) => admit(&client, b, "After").await.status().as_u16(),
        None => 0,
    };
    proxy.sever();
    let logs = format!("{}\n----\n{}", a.log(), b.log());
    let led = led.unwrap_or_else(|| panic!("the other instance never led:\n{logs}"));
    eprintln!("the other instance led {led:?} after the leader's connections were held");
    assert_eq!(after, 201, "{logs}");
    assert!(a.log().contains("memory could not be read back"), "{logs}");
}

/// Every connection of the leader's is cut while idle (a database restart, a
/// failover, a pooler): the next admission is committed on a new connection
/// and answered 201, not 503 (nothing that could commit had been sent on the
/// dead one, so the commit goes on). It answered 503 `unavailable`, and the
/// desk had to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_after_the_connection_was_cut_while_idle_goes_on_a_new_one() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("cut").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let server = Server::start(dir.path(), &config, &url, "a");
    let client = client();
    leader_among(&[&server], &client, Duration::from_secs(20)).await;
    assert_eq!(admit(&client, &server, "Before").await.status(), 201);
    let pg = database(&url).await;
    let cut = count(
        &pg,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE application_name = 'triagem'",
    )
    .await;
    assert!(cut >= 1, "the leader's connections");
    let after = admit(&client, &server, "After").await;
    let status = after.status().as_u16();
    let body = after.text().await.unwrap();
    assert_eq!(status, 201, "{body}\n{}", server.log());
    assert!(
        server.log().contains("committing on a new one"),
        "{}",
        server.log()
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM patients").await, 2);
}

/// Another instance has taken the lease (a newer term in the row) while this
/// one still believes it leads: its next write is fenced off by the
/// transaction's last statement and rolled back, though the COMMIT was sent
/// right behind it without waiting (pipelined): 503 `not_leader`, nothing of
/// it in the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_after_another_instance_took_the_term_is_fenced_off_and_rolled_back() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("fence").await;
    let dir = tempfile::tempdir().unwrap();
    // Renewed every 10 s: the write below meets the fence, not the keeper.
    let config = config_with_lease(dir.path(), "postgres", Duration::from_secs(30));
    let server = Server::start(dir.path(), &config, &url, "a");
    let client = client();
    leader_among(&[&server], &client, Duration::from_secs(20)).await;
    assert_eq!(admit(&client, &server, "Before").await.status(), 201);
    let pg = database(&url).await;
    pg.execute(
        "UPDATE lease SET term = term + 1, holder = 'intruder',
             expires_at = clock_timestamp() + interval '1 minute'",
        &[],
    )
    .await
    .unwrap();
    let fenced = client
        .post(server.url("/api/v1/units/pa/patients"))
        .header("Idempotency-Key", "desk-1-fenced")
        .json(&json!({"name": "Fenced", "colour": "green"}))
        .send()
        .await
        .unwrap();
    let status = fenced.status().as_u16();
    let problem: Value = fenced.json().await.unwrap();
    let log = server.log();
    assert_eq!(
        (status, problem["code"].as_str()),
        (503, Some("not_leader")),
        "{problem}\n{log}"
    );
    assert_eq!(count(&pg, "SELECT count(*) FROM patients").await, 1);
    assert_eq!(count(&pg, "SELECT count(*) FROM idempotency").await, 0);
    assert_eq!(
        count(&pg, "SELECT count(*) FROM events WHERE event = 'admitted'").await,
        1
    );
}

/// The answer to a COMMIT is lost (the COMMIT reached the database, which
/// kept the admission; nothing comes back on that connection): the desk gets
/// 503 `outcome_unknown`, without `Retry-After`, within the writer's
/// deadline; the leader steps down, since only a new term settles whether
/// that transaction landed; and the desk's retry with the same
/// Idempotency-Key, on whichever instance then leads, answers with that
/// patient: one patient, one number. It hung for as long as the connection
/// stayed silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_commit_answer_is_503_and_the_retry_with_its_key_finds_the_patient() {
    let Some(pair) = Pair::start("lost").await else {
        return;
    };
    let (a, b, proxy, direct, client) = (
        &pair.leader,
        &pair.other,
        &pair.proxy,
        &pair.direct,
        client(),
    );

    proxy.lose_next_commit_answer();
    let sent = Instant::now();
    let admission = |server: &Server| {
        client
            .post(server.url("/api/v1/units/pa/patients"))
            .header("Idempotency-Key", "desk-1-lost")
            .json(&json!({"name": "Lost Answer", "colour": "yellow"}))
            .send()
    };
    let lost = admission(a).await.expect("answered");
    let took = sent.elapsed();
    let status = lost.status().as_u16();
    let retry_after = lost.headers().contains_key("retry-after");
    let problem: Value = lost.json().await.unwrap();
    let pg = database(direct).await;
    let kept = count(&pg, "SELECT count(*) FROM patients").await;
    let servers = [a, b];
    let leader = leader_among(&servers, &client, LEASE * 6).await;
    let retried = admission(servers[leader]).await.expect("answered");
    let retried_status = retried.status().as_u16();
    let retried: Value = retried.json().await.unwrap();
    proxy.sever();
    let logs = format!("{}\n----\n{}", a.log(), b.log());
    eprintln!("lost COMMIT answer: 503 after {took:?}; the retry went to instance {leader}");
    assert_eq!(status, 503, "{problem}\n{logs}");
    assert_eq!(problem["code"], "outcome_unknown", "{problem}");
    assert!(!retry_after, "not to be retried blindly");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("may or may not have been kept")),
        "{problem}"
    );
    assert!(took < LEASE * 2, "answered {took:?} after sending:\n{logs}");
    assert_eq!(kept, 2, "the COMMIT landed");
    assert!(a.log().contains("stepping down"), "{logs}");
    assert_eq!(retried_status, 201, "{retried}\n{logs}");
    assert_eq!(retried["name"], "Lost Answer", "{retried}");
    let stored = pg
        .query_one(
            "SELECT protocol FROM patients WHERE body::json->>'name' = 'Lost Answer'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(number(&retried["protocol"]), stored as u64, "{retried}");
    assert_eq!(count(&pg, "SELECT count(*) FROM patients").await, 2);
}

/// A leader that stepped down (here told to, as after a fenced commit)
/// takes the lease again only once it has expired, like any instance. It
/// retook its own unexpired lease at the next tick: a slow leader did so over
/// and over, a new term and a full reload each time, and the quick instance
/// never led.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_stepped_down_waits_for_its_lease_to_expire() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("stepped").await;
    let journal = open_journal(url, LEASE).await;
    let mut role = journal.role();
    tokio::time::timeout(Duration::from_secs(10), role.wait_for(|r| r.leader))
        .await
        .expect("it leads")
        .expect("the lease keeper runs");
    let first = role.borrow().term;
    journal.step_down();
    tokio::time::timeout(Duration::from_secs(2), role.wait_for(|r| !r.leader))
        .await
        .expect("it steps down")
        .expect("the lease keeper runs");
    let stepped = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), role.wait_for(|r| r.leader))
        .await
        .expect("it leads again, alone")
        .expect("the lease keeper runs");
    let again = stepped.elapsed();
    let term = role.borrow().term;
    tokio::task::spawn_blocking(move || drop(journal))
        .await
        .unwrap();
    assert_eq!(term, first + 1);
    // Its lease had up to 90 % of `LEASE` left when it stepped down, and was
    // renewed a third of the lease before: it lapses no sooner than that.
    assert!(
        again >= LEASE / 2,
        "retook its own lease {again:?} after stepping down (lease {LEASE:?})"
    );
}

/// A schema whose name needs quoting (a role's `"$user"` schema with
/// capitals): the journal opens in it, first creating its tables and then
/// finding them. Its catalog lookup once folded the name to lower case.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_opens_in_a_schema_whose_name_needs_quoting() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("quoted").await;
    database(&url)
        .await
        .batch_execute("CREATE SCHEMA \"Triagem\"")
        .await
        .unwrap();
    let in_schema = format!("{url}?options=-c%20search_path%3D%22Triagem%22");
    for _ in 0..2 {
        let journal = open_journal(in_schema.clone(), LEASE).await;
        tokio::task::spawn_blocking(move || drop(journal))
            .await
            .unwrap();
    }
    let tables: i64 = database(&url)
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'Triagem'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tables >= 8, "{tables} tables in \"Triagem\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_held_up_in_the_database_fails_within_the_lease() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("heldup").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let server = Server::start(dir.path(), &config, &url, "a");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    leader_among(&[&server], &client, Duration::from_secs(20)).await;
    assert_eq!(admit(&client, &server, "Before").await.status(), 201);

    // Another session locks the patients: the next commit waits on it.
    let pg = database(&url).await;
    pg.batch_execute("BEGIN; LOCK TABLE patients IN EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let held_up = client
        .post(server.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": "Held up", "colour": "green"}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    let took = started.elapsed();
    assert_eq!(held_up.ok(), Some(503), "after {took:?}");
    assert!(
        took < LEASE + Duration::from_secs(1),
        "answered after {took:?}"
    );
    pg.batch_execute("ROLLBACK").await.unwrap();

    // Nothing of it was committed, and the service takes admissions again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while admit(&client, &server, "After").await.status() != 201 {
        assert!(Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let names: Vec<String> = pg
        .query(
            "SELECT body::json->>'name' FROM patients ORDER BY protocol",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["Before", "After"]);
}

/// A load balancer as docs/ha.md sets one up: each new connection goes to the
/// instance whose `/readyz` last answered 200 (checked every 100 ms); the
/// connections to an instance that dies end with it.
struct Balancer {
    port: u16,
    tasks: [tokio::task::JoinHandle<()>; 2],
}

impl Balancer {
    async fn start(backends: [u16; 2]) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = Arc::new(AtomicU16::new(0));
        let checked = target.clone();
        let check = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(500))
                .build()
                .unwrap();
            loop {
                for backend in backends {
                    let url = format!("http://127.0.0.1:{backend}/readyz");
                    if let Ok(r) = client.get(url).send().await {
                        if r.status() == 200 {
                            checked.store(backend, Ordering::SeqCst);
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        let forward = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let backend = target.load(Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self {
            port,
            tasks: [check, forward],
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

const CHROMIUM: &str = "/usr/bin/chromium";

/// Headless Chromium (Debian's `chromium`), as tests/browser.rs drives it;
/// `None` (after saying why) without it, unless `TRIAGEM_REQUIRE_BROWSER=1`.
async fn chromium(
    profile: &Path,
) -> Option<(chromiumoxide::browser::Browser, tokio::task::JoinHandle<()>)> {
    use futures_util::StreamExt;
    if !Path::new(CHROMIUM).exists() {
        let hint = format!("no Chromium at {CHROMIUM} (apt-get install chromium)");
        if std::env::var("TRIAGEM_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("{hint}; TRIAGEM_REQUIRE_BROWSER=1 forbids skipping this test");
        }
        eprintln!("browser test SKIPPED: {hint}");
        return None;
    }
    let config = chromiumoxide::browser::BrowserConfig::builder()
        .chrome_executable(CHROMIUM)
        .no_sandbox()
        .user_data_dir(profile)
        .args([
            "disable-gpu",
            "disable-background-networking",
            "disable-component-update",
            "disable-sync",
        ])
        .build()
        .expect("browser config");
    let (browser, mut handler) = chromiumoxide::browser::Browser::launch(config)
        .await
        .unwrap_or_else(|e| panic!("cannot launch {CHROMIUM}: {e}"));
    let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
    Some((browser, handler))
}

/// Polls `js` (a boolean expression) on the page until it holds, at most `within`.
async fn page_until(page: &chromiumoxide::Page, js: &str, what: &str, within: Duration) {
    let started = Instant::now();
    loop {
        let holds = page
            .evaluate(js)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok());
        if holds == Some(true) {
            return;
        }
        if started.elapsed() > within {
            let text = page
                .evaluate("document.body.innerText")
                .await
                .ok()
                .and_then(|r| r.into_value::<String>().ok())
                .unwrap_or_default();
            panic!("timed out waiting for {what} (`{js}`); the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_display_shows_reconnecting_across_a_failover_and_resumes_on_the_new_leader() {
    let profile = tempfile::Builder::new()
        .prefix("triagem-chromium-")
        .tempdir()
        .unwrap();
    let Some((mut browser, handler)) = chromium(profile.path()).await else {
        return;
    };
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let url = cluster.database("display").await;
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "postgres");
    let mut a = Server::start(dir.path(), &config, &url, "a");
    let mut b = Server::start(dir.path(), &config, &url, "b");
    let client = client();
    let ports = [a.port, b.port];
    let (leader, follower) =
        leader_and_follower(&mut a, &mut b, &client, Duration::from_secs(20)).await;
    let balancer = Balancer::start(ports).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .get(balancer.url("/readyz"))
        .send()
        .await
        .map_or(true, |r| r.status() != 200)
    {
        assert!(Instant::now() < deadline, "the balancer found no leader");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let call = || async {
        let r = client
            .post(balancer.url("/api/v1/units/pa/call"))
            .json(&json!({"room": "Consultório 1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["ticket"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for name in ["Ana", "Bruno"] {
        let r = client
            .post(balancer.url("/api/v1/units/pa/patients"))
            .json(&json!({"name": name, "colour": "yellow"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    // The ward display, through the balancer, live on the leader.
    let display = browser
        .new_page(balancer.url("/display/pa").as_str())
        .await
        .expect("open the display");
    display
        .wait_for_navigation()
        .await
        .expect("the display loads");
    let patience = Duration::from_secs(20);
    let live = "document.body.dataset.live === 'up' \
                && document.querySelector('#reconnecting').hidden";
    page_until(&display, live, "the display's event stream", patience).await;
    let ticket = call().await;
    let shows = |ticket: &str| {
        format!("document.querySelector('#now-ticket').textContent.includes('{ticket}')")
    };
    page_until(&display, &shows(&ticket), "the first call", patience).await;

    // The leader dies: the display says it is reconnecting...
    leader.kill();
    page_until(
        &display,
        "!document.querySelector('#reconnecting').hidden",
        "the reconnecting banner",
        patience,
    )
    .await;
    // ... and once the other instance leads, it is back by itself, live: a
    // call made on the new leader is shown.
    leader_among(&[&*follower], &client, FAILOVER_BOUND).await;
    page_until(
        &display,
        live,
        "the stream back, on the new leader",
        patience,
    )
    .await;
    let after = call().await;
    assert_ne!(after, ticket);
    page_until(
        &display,
        &shows(&after),
        "the call after the failover",
        patience,
    )
    .await;

    let _ = browser.close().await;
    let _ = browser.wait().await;
    handler.abort();
}

/// A follower's connection that died while it followed (a database restart,
/// a pooler reset) looks open until used: taking over finds it at once and
/// connects again, rather than failing the first rebuild and trying again a
/// second later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn taking_over_replaces_a_connection_that_died_while_following() {
    let Some(cluster) = Cluster::start() else {
        return;
    };
    let direct = cluster.database("stale").await;
    let proxy = Proxy::start(cluster.port).await;
    const LEASE: Duration = Duration::from_secs(2);
    let a = open_journal(direct, LEASE).await;
    let mut a_role = a.role();
    tokio::time::timeout(Duration::from_secs(10), a_role.wait_for(|r| r.leader))
        .await
        .expect("A leads")
        .unwrap();
    let b = open_journal(proxy.url("stale"), LEASE).await;
    let mut b_role = b.role();
    // B's connections die while it follows; its lease keeper reconnects by
    // itself, its writer's connection is found out only when used.
    proxy.sever();
    tokio::task::spawn_blocking(move || a.shutdown())
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), b_role.wait_for(|r| r.leader))
        .await
        .expect("B leads once A has let go")
        .unwrap();
    // On a blocking thread, closed there too: its client is synchronous.
    let rebuild = tokio::task::spawn_blocking(move || {
        let rebuilt = b.reload().map(|_| ());
        drop(b);
        rebuilt
    })
    .await
    .unwrap();
    rebuild.expect("the first rebuild under the new term");
}
