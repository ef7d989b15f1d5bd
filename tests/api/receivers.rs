//! Real protocol peers the tests run themselves: an HTTP receiver (alert
//! webhooks, the SMS gateway) that records what it gets and answers from a
//! programmable list of statuses, and an SMTP sink that does the same for mail.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{PATIENCE, POLL};

/// One request as the receiver got it, and the status it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub answered: u16,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("the body is not JSON ({e}): {:?}", self.body))
    }

    pub fn delivery_id(&self) -> String {
        self.json()["delivery_id"]
            .as_str()
            .expect("delivery_id is a string")
            .to_owned()
    }
}

struct Shared {
    received: Mutex<Vec<Received>>,
    /// While set, connections are accepted and held without a word.
    hang: AtomicBool,
    held: Mutex<Vec<TcpStream>>,
    /// Statuses to answer first, in order; then `then`.
    plan: Mutex<VecDeque<u16>>,
    then: AtomicU16,
}

/// A webhook receiver on 127.0.0.1.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(plan: &[u16], then: u16) -> Self {
        Self::start_on(0, plan, then).await
    }

    pub async fn start_on(port: u16, plan: &[u16], then: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            hang: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
            plan: Mutex::new(plan.iter().copied().collect()),
            then: AtomicU16::new(then),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                if s.hang.load(Ordering::SeqCst) {
                    s.held.lock().unwrap().push(conn);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = serve(conn, &s).await;
                });
            }
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/triagem", self.addr)
    }

    pub fn answer_from_now_on(&self, status: u16) {
        self.shared.plan.lock().unwrap().clear();
        self.shared.then.store(status, Ordering::SeqCst);
    }

    /// From now on, accepts connections and never reads or answers (a hung
    /// receiver); they stay open until the receiver is dropped. `false` serves
    /// new connections again.
    pub fn hang(&self, on: bool) {
        self.shared.hang.store(on, Ordering::SeqCst);
    }

    /// How many connections were accepted and left hanging.
    pub fn held(&self) -> usize {
        self.shared.held.lock().unwrap().len()
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have arrived; returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} of {n} requests: {got:?}",
                got.len()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request, records it, answers and closes the connection.
async fn serve(mut conn: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
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
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let path = request_line
        .split(' ')
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let status = shared
        .plan
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(|| shared.then.load(Ordering::SeqCst));
    shared.received.lock().unwrap().push(Received {
        path,
        headers,
        body,
        answered: status,
    });
    // A redirect names somewhere else on the same receiver, where a client
    // that followed it would show up as a request to `/elsewhere`.
    let location = if (300..400).contains(&status) {
        "location: /elsewhere\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} Test\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n"
    );
    conn.write_all(response.as_bytes()).await?;
    conn.shutdown().await
}

/// One message the SMTP sink took (or refused).
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent after DATA.
    pub data: String,
    /// The reply it got to its DATA: 250 taken, 4xx/5xx refused.
    pub answered: u16,
}

impl Mail {
    /// A header's value (the first of that name).
    pub fn header(&self, name: &str) -> Option<String> {
        self.data
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
    }

    /// The `delivery_id` the service put in the `Message-ID` (`<id@triagem>`).
    pub fn delivery_id(&self) -> String {
        let id = self.header("message-id").expect("a Message-ID");
        id.trim_start_matches('<')
            .trim_end_matches('>')
            .trim_end_matches("@triagem")
            .to_owned()
    }

    /// The body, after the headers, with soft line breaks undone.
    pub fn body(&self) -> String {
        let body = self.data.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        body.replace("=\r\n", "")
    }
}

struct Sink {
    mails: Mutex<Vec<Mail>>,
    /// Replies to DATA, in order; then `then`.
    plan: Mutex<VecDeque<u16>>,
    then: AtomicU16,
    /// While set, connections are accepted and held without a greeting.
    hang: AtomicBool,
    held: Mutex<Vec<TcpStream>>,
}

/// An SMTP server on 127.0.0.1 that keeps what it is sent (plain SMTP, no
/// TLS, as `smtp://` asks).
pub struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Sink>,
    task: tokio::task::JoinHandle<()>,
}

impl SmtpSink {
    /// `plan`: the replies to the first DATA commands (e.g. 451, then 550).
    pub async fn start(plan: &[u16]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("sink address");
        let shared = Arc::new(Sink {
            mails: Mutex::new(Vec::new()),
            plan: Mutex::new(plan.iter().copied().collect()),
            then: AtomicU16::new(250),
            hang: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                if s.hang.load(Ordering::SeqCst) {
                    s.held.lock().unwrap().push(conn);
                    continue;
                }
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = smtp_session(conn, &s).await;
                });
            }
        });
        Self { addr, shared, task }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Replies `code` to every DATA from now on (451: try later; 250: taken).
    pub fn answer_from_now_on(&self, code: u16) {
        self.shared.plan.lock().unwrap().clear();
        self.shared.then.store(code, Ordering::SeqCst);
    }

    /// From now on, accepts connections and never greets (a hung server);
    /// they stay open until the sink is dropped. `false` serves new ones again.
    pub fn hang(&self, on: bool) {
        self.shared.hang.store(on, Ordering::SeqCst);
    }

    /// How many connections were accepted and left hanging.
    pub fn held(&self) -> usize {
        self.shared.held.lock().unwrap().len()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.shared.mails.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages were taken (answered 250).
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let taken: Vec<Mail> = self
                .mails()
                .into_iter()
                .filter(|m| m.answered == 250)
                .collect();
            if taken.len() >= n {
                return taken;
            }
            assert!(
                Instant::now() < deadline,
                "the sink took {} of {n} messages: {:?}",
                taken.len(),
                self.mails()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One SMTP conversation (RFC 5321), as much of it as a client needs.
async fn smtp_session(conn: TcpStream, sink: &Sink) -> std::io::Result<()> {
    let (read, mut write) = conn.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink.test ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => "250-sink.test\r\n250 8BITMIME\r\n".into(),
            "HELO" => "250 sink.test\r\n".into(),
            "MAIL" => {
                from = command
                    .split_once(':')
                    .map(|x| x.1)
                    .unwrap_or_default()
                    .trim()
                    .into();
                "250 OK\r\n".into()
            }
            "RCPT" => {
                to.push(
                    command
                        .split_once(':')
                        .map(|x| x.1)
                        .unwrap_or_default()
                        .trim()
                        .into(),
                );
                "250 OK\r\n".into()
            }
            "DATA" => {
                write.write_all(b"354 go on\r\n").await?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321, 4.5.2).
                    let l = line.strip_prefix('.').unwrap_or(&line);
                    data.push_str(l);
                }
                let answered = sink
                    .plan
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| sink.then.load(Ordering::SeqCst));
                // A refusal names the recipient, as real servers' do.
                let reply = if answered == 250 {
                    format!("{answered} taken\r\n")
                } else {
                    format!("{answered} {}: not now\r\n", to.join(", "))
                };
                sink.mails.lock().unwrap().push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    answered,
                });
                reply
            }
            "RSET" => {
                from.clear();
                to.clear();
                "250 OK\r\n".into()
            }
            "NOOP" => "250 OK\r\n".into(),
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 not implemented\r\n".into(),
        };
        write.write_all(reply.as_bytes()).await?;
    }
}

/// The value of `Value` at `pointer`, as a string.
pub fn text_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}
