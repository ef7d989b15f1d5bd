//! The real binary, killed with SIGKILL in the middle of admissions, then
//! restarted on the same data dir: every acknowledged admission is there.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::helpers::{default_config_path, sequence};

const COLOURS: [Option<&str>; 5] = [
    Some("red"),
    Some("yellow"),
    Some("green"),
    Some("blue"),
    None,
];

/// The binary as a child process, killed (if still running) when dropped.
pub(crate) struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    pub(crate) fn start(dir: &Path, config: &Path, run: usize) -> Self {
        Self::start_with_env(dir, config, run, &[])
    }

    /// Started with extra environment variables (e.g. an `LD_PRELOAD`).
    pub(crate) fn start_with_env(
        dir: &Path,
        config: &Path,
        run: usize,
        env: &[(&str, &str)],
    ) -> Self {
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").expect("free port");
            l.local_addr().unwrap().port()
        };
        let log = dir.join(format!("server-{run}.log"));
        let out = File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_triagem"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env("TRIAGEM_DATA_DIR", dir.join("data"))
            .env("TRIAGEM_BIND", format!("127.0.0.1:{port}"))
            .env_remove("RUST_LOG")
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the triagem binary");
        Self { child, port, log }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub(crate) async fn wait_ready(&mut self, client: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("triagem exited with {status}:\n{}", self.log());
            }
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status().as_u16() == 200 {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "triagem never became ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits for the process to exit by itself; `None` if it still runs after `within`.
    pub(crate) async fn exit_status(
        &mut self,
        within: Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    fn kill(&mut self) {
        // SIGKILL: no shutdown, no flush, no goodbye.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[derive(Debug, Clone)]
struct Acked {
    protocol: String,
    ticket: String,
    colour: Value,
    name: String,
}

fn rank(colour: &Value) -> Option<usize> {
    let c = colour.as_str()?;
    ["red", "yellow", "green", "blue"]
        .iter()
        .position(|x| *x == c)
}

fn arrived(v: &Value) -> DateTime<Utc> {
    v["arrived_at"].as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkill_during_admissions_loses_no_acknowledged_patient_and_skips_no_number() {
    let dir = tempfile::Builder::new()
        .prefix("triagem-crash-")
        .tempdir()
        .unwrap();
    let config = dir.path().join("triagem.toml");
    std::fs::copy(default_config_path(), &config).unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    let mut server = Server::start(dir.path(), &config, 1);
    server.wait_ready(&client).await;

    // 8 desks admitting in a loop until the process dies (bounded in count and time).
    let acked = Arc::new(Mutex::new(Vec::<Acked>::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut desks = Vec::new();
    for desk in 0..8 {
        let (client, acked, count, stop) =
            (client.clone(), acked.clone(), count.clone(), stop.clone());
        let url = server.url("/api/v1/units/pa/patients");
        desks.push(tokio::spawn(async move {
            for i in 0..200 {
                if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                    break;
                }
                let name = format!("Desk {desk} patient {i}");
                let colour = COLOURS[(desk + i) % COLOURS.len()];
                let r = match client
                    .post(&url)
                    .json(&json!({"name": name, "colour": colour}))
                    .send()
                    .await
                {
                    Ok(r) => r,
                    Err(_) => break, // the server is gone
                };
                if r.status().as_u16() != 201 {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else {
                    break;
                };
                acked.lock().push(Acked {
                    protocol: v["protocol"].as_str().unwrap().to_owned(),
                    ticket: v["ticket"].as_str().unwrap().to_owned(),
                    colour: v["colour"].clone(),
                    name,
                });
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Kill once a good number went through, while the desks are still sending.
    let kill_by = Instant::now() + Duration::from_secs(10);
    while count.load(Ordering::Relaxed) < 150 && Instant::now() < kill_by {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for d in desks {
        d.await.unwrap();
    }
    let acked = acked.lock().clone();
    assert!(
        acked.len() >= 20,
        "too few admissions before the kill ({}):\n{}",
        acked.len(),
        server.log()
    );

    let mut server = Server::start(dir.path(), &config, 2);
    server.wait_ready(&client).await;

    // Every acknowledged admission is there, unchanged.
    for a in &acked {
        let r = client
            .get(server.url(&format!("/api/v1/patients/{}", a.protocol)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "acknowledged {} lost", a.protocol);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["ticket"], a.ticket.as_str());
        assert_eq!(v["colour"], a.colour);
        assert_eq!(v["name"], a.name.as_str());
    }

    // The queues hold exactly numbers 1..=n with no gap (a number is taken in
    // the commit that records the admission), in the right order.
    let page = |queue: &'static str| {
        let client = client.clone();
        let url = server.url(&format!("/api/v1/units/pa/queue?queue={queue}&limit=1000"));
        async move {
            let v: Value = client.get(url).send().await.unwrap().json().await.unwrap();
            v["patients"].as_array().unwrap().clone()
        }
    };
    let treatment = page("treatment").await;
    let triage = page("triage").await;
    let treatment_keys: Vec<_> = treatment
        .iter()
        .map(|p| {
            (
                rank(&p["colour"]).unwrap(),
                arrived(p),
                sequence(p["protocol"].as_str().unwrap()),
            )
        })
        .collect();
    let mut sorted = treatment_keys.clone();
    sorted.sort();
    assert_eq!(treatment_keys, sorted, "treatment queue out of order");
    let triage_keys: Vec<_> = triage
        .iter()
        .map(|p| (arrived(p), sequence(p["protocol"].as_str().unwrap())))
        .collect();
    let mut sorted = triage_keys.clone();
    sorted.sort();
    assert_eq!(triage_keys, sorted, "triage queue out of order");

    let mut seqs: Vec<u64> = treatment_keys
        .iter()
        .map(|k| k.2)
        .chain(triage_keys.iter().map(|k| k.1))
        .collect();
    seqs.sort_unstable();
    let n = seqs.len() as u64;
    assert_eq!(
        seqs,
        (1..=n).collect::<Vec<_>>(),
        "numbers skipped or repeated"
    );
    let acked_seqs: HashSet<u64> = acked.iter().map(|a| sequence(&a.protocol)).collect();
    assert!(acked_seqs.iter().all(|s| *s <= n));
    // Tickets are unique too.
    let tickets: HashSet<&str> = treatment
        .iter()
        .chain(&triage)
        .map(|p| p["ticket"].as_str().unwrap())
        .collect();
    assert_eq!(tickets.len() as u64, n);
    // Colours match what was asked for, per acknowledged patient.
    let by_protocol: BTreeMap<&str, &Value> = treatment
        .iter()
        .chain(&triage)
        .map(|p| (p["protocol"].as_str().unwrap(), p))
        .collect();
    for a in &acked {
        assert_eq!(by_protocol[a.protocol.as_str()]["colour"], a.colour);
    }

    eprintln!(
        "crash test: {} admissions acknowledged before SIGKILL, {n} committed",
        acked.len()
    );

    // The numbering continues above everything issued before the crash.
    let r = client
        .post(server.url("/api/v1/units/pa/patients"))
        .json(&json!({"name": "Depois do crash", "colour": "green"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let v: Value = r.json().await.unwrap();
    let next = sequence(v["protocol"].as_str().unwrap());
    assert_eq!(next, n + 1);
    assert!(acked_seqs.iter().all(|s| *s < next));
    server.kill();
}
