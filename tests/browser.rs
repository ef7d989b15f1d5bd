//! End-to-end tests of the web pages in a real headless Chromium (Debian's
//! `chromium`, driven over the DevTools protocol by chromiumoxide): the real
//! service on a free port, the reception desk, the clinician's queue and the
//! ward display, live through the event stream, across a server restart, and
//! in tokens mode.
//!
//! Without `/usr/bin/chromium` these tests are skipped with a message saying
//! how to install it, so `cargo test` passes on a machine without a browser;
//! `TRIAGEM_REQUIRE_BROWSER=1` (set by `.ci/run`) makes a missing Chromium a
//! failure instead. Screenshots of the three pages go to
//! `target/screenshots/`, and the documented ones also to `docs/screenshots/`
//! with `TRIAGEM_UPDATE_SCREENSHOTS=1`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chromiumoxide::browser::{Browser, BrowserConfig};
use chromiumoxide::cdp::browser_protocol::input::InsertTextParams;
use chromiumoxide::cdp::browser_protocol::page::AddScriptToEvaluateOnNewDocumentParams;
use chromiumoxide::handler::viewport::Viewport;
use chromiumoxide::page::{MediaTypeParams, ScreenshotParams};
use chromiumoxide::Page;
use chrono::Utc;
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tempfile::TempDir;
use triagem::auth::{AuthMode, Token, TokenHash};
use triagem::clock::SystemClock;
use triagem::config::Config;
use triagem::startup::StopHandle;
use triagem::Application;

const CHROMIUM: &str = "/usr/bin/chromium";
const UNIT: &str = "pa";
const ROOM: &str = "Consultório 1";
/// How long a wait for something on a page may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------- server

struct Running {
    handle: StopHandle,
    thread: JoinHandle<anyhow::Result<()>>,
}

/// The real service on its own thread and actix System, like `main.rs` runs it.
struct Server {
    port: u16,
    config: Config,
    running: Option<Running>,
    _data: TempDir,
    client: reqwest::Client,
    token: Option<String>,
}

impl Server {
    /// `config/default.toml` as shipped, changed by `tweak`, on a fresh data dir.
    async fn start(tweak: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::Builder::new()
            .prefix("triagem-browser-")
            .tempdir()
            .expect("tempdir");
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
        let mut config = Config::from_toml(&std::fs::read_to_string(path).expect("read config"))
            .expect("config/default.toml parses");
        config.storage.data_dir = data.path().to_owned();
        tweak(&mut config);
        config.validate().expect("valid test config");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mut server = Self {
            port,
            config,
            running: None,
            _data: data,
            client: reqwest::Client::new(),
            token: None,
        };
        server.run(listener).await;
        server
    }

    async fn run(&mut self, listener: TcpListener) {
        let config = self.config.clone();
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("triagem-{}", self.port))
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let app = Application::build(config, listener, Arc::new(SystemClock))?;
                    tx.send(app.handle()).expect("the test waits for the app");
                    app.run_until_stopped().await
                })
            })
            .expect("spawn server thread");
        let handle = tokio::task::spawn_blocking(move || rx.recv())
            .await
            .expect("join")
            .expect("the server thread failed before building the app");
        self.running = Some(Running { handle, thread });
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let ok = self
                .client
                .get(self.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "/readyz never said 200");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the service and waits until it is down and its journal closed.
    async fn stop(&mut self) {
        if let Some(Running { handle, thread }) = self.running.take() {
            handle.stop(true).await;
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .expect("join")
                .expect("server thread panicked")
                .expect("the service stopped with an error");
        }
    }

    /// Starts the service again on the same port and data dir.
    async fn restart(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "port {} stays busy: {e}",
                        self.port
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.run(listener).await;
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = self.url(&format!("/api/v1{path}"));
        let mut req = match method {
            "GET" => self.client.get(url),
            _ => self.client.post(url),
        };
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("API request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn admit(&self, body: Value) -> Value {
        let (status, view) = self
            .api("POST", &format!("/units/{UNIT}/patients"), Some(body))
            .await;
        assert_eq!(status, 201, "admission failed: {view}");
        view
    }

    /// Calls the next patient of the treatment queue to `room`, asserting 200.
    async fn call(&self, room: &str) -> Value {
        let (status, view) = self
            .api(
                "POST",
                &format!("/units/{UNIT}/call"),
                Some(json!({ "room": room })),
            )
            .await;
        assert_eq!(status, 200, "the call failed: {view}");
        view
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(Running { handle, thread }) = self.running.take() {
            drop(handle.stop(false));
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------- browser

/// Headless Chromium with a fresh profile; `None` when the tests are skipped.
struct Chromium {
    browser: Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: TempDir,
}

impl Chromium {
    async fn launch() -> Option<Self> {
        if !Path::new(CHROMIUM).exists() {
            let hint = format!(
                "the browser tests need Chromium at {CHROMIUM}: run `apt-get install -y chromium` (Debian)"
            );
            if std::env::var("TRIAGEM_REQUIRE_BROWSER").as_deref() == Ok("1") {
                panic!("{hint}; TRIAGEM_REQUIRE_BROWSER=1 forbids skipping them");
            }
            eprintln!("browser tests SKIPPED: {hint}");
            return None;
        }
        let profile = tempfile::Builder::new()
            .prefix("triagem-chromium-")
            .tempdir()
            .expect("profile dir");
        let config = BrowserConfig::builder()
            .chrome_executable(CHROMIUM)
            .no_sandbox()
            .user_data_dir(profile.path())
            .window_size(1920, 1080)
            .viewport(Viewport {
                width: 1920,
                height: 1080,
                device_scale_factor: Some(1.0),
                ..Viewport::default()
            })
            .args([
                "disable-gpu",
                "disable-background-networking",
                "disable-component-update",
                "disable-sync",
                // As a ward screen's kiosk is started, so the chime may play.
                "autoplay-policy=no-user-gesture-required",
            ])
            .build()
            .expect("browser config");
        let (browser, mut handler) = Browser::launch(config)
            .await
            .unwrap_or_else(|e| panic!("cannot launch {CHROMIUM}: {e}"));
        // Drive the DevTools connection; a message it cannot parse is not fatal.
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Some(Self {
            browser,
            handler,
            _profile: profile,
        })
    }

    async fn open(&self, url: &str) -> Page {
        let page = self.browser.new_page(url).await.expect("open page");
        page.wait_for_navigation().await.expect("page loads");
        page
    }

    /// Opens `url` in a page where `script` runs before any of the page's own.
    async fn open_with_script(&self, url: &str, script: &str) -> Page {
        let page = self
            .browser
            .new_page("about:blank")
            .await
            .expect("open page");
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(script))
            .await
            .expect("add the early script");
        page.goto(url).await.expect("navigate");
        page.wait_for_navigation().await.expect("page loads");
        page
    }

    async fn close(mut self) {
        let _ = self.browser.close().await;
        let _ = self.browser.wait().await;
        self.handler.abort();
    }
}

async fn eval<T: DeserializeOwned>(page: &Page, js: &str) -> T {
    page.evaluate(js)
        .await
        .unwrap_or_else(|e| panic!("evaluating `{js}`: {e}"))
        .into_value()
        .unwrap_or_else(|e| panic!("result of `{js}`: {e}"))
}

/// Polls `js` (a boolean expression) on the page until it holds.
async fn wait_until(page: &Page, js: &str, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        if page
            .evaluate(js)
            .await
            .ok()
            .and_then(|r| r.into_value::<bool>().ok())
            == Some(true)
        {
            return started.elapsed();
        }
        if started.elapsed() > PATIENCE {
            let text: String = eval(page, "document.body.innerText").await;
            panic!("timed out waiting for {what} (`{js}`); the page shows:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the page's event stream is connected.
async fn wait_live(page: &Page, what: &str) -> Duration {
    wait_until(page, "document.body.dataset.live === 'up'", what).await
}

async fn text(page: &Page, selector: &str) -> String {
    eval(
        page,
        &format!("document.querySelector({selector:?})?.textContent.trim() ?? ''"),
    )
    .await
}

/// Types into a field as a user would: a click to focus it, then the text as
/// the keyboard's input method inserts it (any character, with input events).
async fn type_into(page: &Page, selector: &str, value: &str) {
    page.bring_to_front().await.expect("bring to front");
    page.find_element(selector)
        .await
        .unwrap_or_else(|e| panic!("no {selector}: {e}"))
        .click()
        .await
        .expect("click field");
    page.execute(InsertTextParams::new(value))
        .await
        .expect("insert text");
}

/// Runs a statement on the page, ignoring its value.
async fn run(page: &Page, js: &str) {
    page.evaluate(format!("(() => {{ {js}; return true; }})()"))
        .await
        .unwrap_or_else(|e| panic!("evaluating `{js}`: {e}"));
}

/// Clicks the element as a mouse would; a live page may re-render it between
/// finding and clicking, so a detached node is looked up again.
async fn click(page: &Page, selector: &str) {
    page.bring_to_front().await.expect("bring to front");
    let mut tries = 0;
    loop {
        let found = page.find_element(selector).await;
        let result = match found {
            Ok(el) => el.click().await.map(|_| ()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => return,
            Err(e) if tries < 20 => {
                tries += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("click {selector}: {e}"),
        }
    }
}

async fn screenshot(page: &Page, name: &str) {
    page.bring_to_front().await.expect("bring to front");
    let png = page
        .screenshot(ScreenshotParams::builder().build())
        .await
        .expect("screenshot");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut dirs = vec![root.join("target/screenshots")];
    let documented = ["display", "reception", "clinician", "receipt-print"].contains(&name);
    if documented && std::env::var("TRIAGEM_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        dirs.push(root.join("docs/screenshots"));
    }
    for dir in dirs {
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), &png).expect("write screenshot");
    }
}

fn minutes_ago(m: i64) -> String {
    (Utc::now() - chrono::TimeDelta::minutes(m))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

// ---------------------------------------------------------------- tests

/// The whole walk: admit at reception, call from the clinician page, see the
/// call on the display within a second, never a name or protocol there, and
/// the reconnecting banner across a server restart on the same port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reception_clinician_and_display_in_a_real_browser() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    // Waits counted from arrival, so patients admitted "40 minutes ago" are overdue.
    let mut server = Server::start(|c| {
        c.protocol.clock_starts = triagem::domain::ClockStarts::Arrival;
    })
    .await;

    // The display first, so it is listening when the call is made.
    let display = chrome.open(&server.url(&format!("/display/{UNIT}"))).await;
    wait_live(&display, "the display's event stream").await;
    wait_until(
        &display,
        "document.querySelectorAll('.d-queue').length === 5",
        "the display's queues",
    )
    .await;
    assert_eq!(text(&display, "#now-ticket").await, "Aguardando chamadas");

    // Reception: admit through the form.
    let reception = chrome
        .open(&server.url(&format!("/reception/{UNIT}")))
        .await;
    wait_until(
        &reception,
        "document.querySelectorAll('#colour option').length === 5",
        "the colour list",
    )
    .await;
    let name = "Maria Aparecida Testemunha";
    type_into(&reception, "#name", name).await;
    run(
        &reception,
        "document.querySelector('#colour').value = 'yellow'",
    )
    .await;
    type_into(&reception, "#complaint", "dor torácica há 2 horas").await;
    click(&reception, "#admit-submit").await;
    wait_until(
        &reception,
        "!document.querySelector('#result').hidden",
        "the admission result",
    )
    .await;
    let protocol = text(&reception, "#result-protocol").await;
    let ticket = text(&reception, "#result-ticket").await;
    assert_eq!(
        protocol.len(),
        17,
        "a 17-digit protocol is shown: {protocol:?}"
    );
    assert!(protocol.chars().all(|c| c.is_ascii_digit()), "{protocol}");
    assert_eq!(ticket, "A001");
    let (status, view) = server
        .api("GET", &format!("/patients/{protocol}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(view["name"], name);
    assert_eq!(view["colour"], "yellow");
    assert_eq!(view["complaint"], "dor torácica há 2 horas");
    // The printable receipt holds the same numbers.
    assert_eq!(text(&reception, "#rc-protocol").await, protocol);
    assert_eq!(text(&reception, "#rc-ticket").await, ticket);

    // Clinician: the patient is in the queue with a name; call next.
    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}")))
        .await;
    wait_until(
        &clinician,
        &format!("document.querySelector('#queue')?.innerText.includes({name:?})"),
        "the patient in the clinician's queue",
    )
    .await;
    wait_live(&clinician, "the clinician's event stream").await;
    run(
        &clinician,
        &format!("document.querySelector('#call-room').value = {ROOM:?}"),
    )
    .await;
    click(&clinician, "#call-submit").await;
    let seen = wait_until(
        &display,
        &format!("document.querySelector('#now-ticket').textContent === {ticket:?} && document.querySelector('#now-room').textContent === {ROOM:?}"),
        "the call on the display",
    )
    .await;
    eprintln!("the call reached the display {seen:?} after the click");
    assert!(
        seen < Duration::from_secs(1),
        "the call reached the display after {seen:?}"
    );
    assert!(
        text(&display, "#now-colour").await.contains("Amarelo"),
        "colour written out"
    );
    let spoken: Vec<String> = eval(&display, "window.triagemSpoken").await;
    assert_eq!(spoken, vec![format!("Senha {ticket}, {ROOM}")]);

    // The called patient is on the clinician's panel: start, then finish.
    wait_until(
        &clinician,
        "!!document.querySelector('#active .active-card button.primary')",
        "the called patient's card",
    )
    .await;
    click(&clinician, "#active .active-card button.primary").await;
    wait_until(
        &clinician,
        "document.querySelector('#active')?.innerText.includes('Em atendimento')",
        "in treatment",
    )
    .await;
    let (_, view) = server
        .api("GET", &format!("/patients/{protocol}"), None)
        .await;
    assert_eq!(view["status"], "in_treatment");

    // A fuller department for the screenshots: every colour, the triage queue,
    // overdue patients (with their alerts), a call to triage and a recall.
    for (n, colour, ago) in [
        ("João Pereira", Some("red"), 3),
        ("Ana Souza", Some("yellow"), 41),
        ("Carlos Lima", Some("yellow"), 12),
        ("Beatriz Santos", Some("green"), 95),
        ("Rafael Costa", Some("green"), 20),
        ("Luíza Almeida", Some("blue"), 64),
        ("Pedro Henrique Rocha", None, 14),
        ("Fernanda Oliveira", None, 4),
        ("Helena Martins", None, 2),
    ] {
        let mut body =
            json!({"name": n, "arrived_at": minutes_ago(ago), "complaint": "febre e cefaleia"});
        if let Some(c) = colour {
            body["colour"] = json!(c);
        }
        server.admit(body).await;
    }
    let (status, called) = server
        .api(
            "POST",
            &format!("/units/{UNIT}/call"),
            Some(json!({"queue": "triage", "room": "Triagem 1"})),
        )
        .await;
    assert_eq!(status, 200, "{called}");
    server.call("Consultório 2").await;
    wait_until(
        &display,
        "document.querySelector('#now-room').textContent === 'Consultório 2'",
        "the second call",
    )
    .await;
    wait_until(
        &display,
        "document.querySelectorAll('.d-recent-item').length >= 2",
        "recent calls",
    )
    .await;
    wait_until(
        &display,
        "document.querySelectorAll('.d-queue.late').length >= 1",
        "an overdue queue",
    )
    .await;
    wait_until(
        &clinician,
        "document.querySelectorAll('#alerts li.alert').length >= 1",
        "alerts on the clinician page",
    )
    .await;
    wait_until(
        &clinician,
        "document.querySelectorAll('#queue tbody tr').length === 5",
        "the treatment queue",
    )
    .await;

    // Never a name or a protocol number on the display, whatever happened.
    let dom: String = eval(&display, "document.documentElement.outerHTML").await;
    for secret in [name, "Maria", &protocol, "João Pereira", "Helena"] {
        assert!(!dom.contains(secret), "the display's DOM holds `{secret}`");
    }
    let year = &protocol[..4];
    assert!(
        !dom.contains(&format!("{year}000000000")),
        "the display's DOM holds something like a protocol number"
    );

    // Screenshots, once the flash of the new call is over.
    tokio::time::sleep(Duration::from_millis(4200)).await;
    screenshot(&display, "display").await;
    // The reception desk with an admission's result and a looked-up patient.
    type_into(&reception, "#lookup", &protocol).await;
    click(&reception, "#lookup-form button[type=submit]").await;
    wait_until(
        &reception,
        "document.querySelector('#lookup-result')?.innerText.includes('Em atendimento')",
        "the looked-up patient",
    )
    .await;
    screenshot(&reception, "reception").await;
    // Printed, the page is only the receipt.
    reception
        .emulate_media_type(MediaTypeParams::Print)
        .await
        .expect("print media");
    let printed: Vec<bool> = eval(
        &reception,
        "['#receipt', '#admit-form', '#lookup-form', 'header'].map(s => document.querySelector(s).getClientRects().length > 0)",
    )
    .await;
    assert_eq!(
        printed,
        [true, false, false, false],
        "only the receipt is printed"
    );
    let receipt = text(&reception, "#receipt").await;
    assert!(
        receipt.contains(&protocol) && receipt.contains(name),
        "{receipt}"
    );
    screenshot(&reception, "receipt-print").await;
    reception
        .emulate_media_type(MediaTypeParams::Screen)
        .await
        .expect("screen media");
    run(&clinician, "window.scrollTo(0, 0)").await;
    screenshot(&clinician, "clinician").await;

    // The server stops: the display says it is reconnecting; it comes back by itself.
    server.stop().await;
    wait_until(
        &display,
        "!document.querySelector('#reconnecting').hidden",
        "the reconnecting banner",
    )
    .await;
    assert_eq!(text(&display, "#reconnecting").await, "Reconectando…");
    server.restart().await;
    wait_until(
        &display,
        "document.querySelector('#reconnecting').hidden",
        "the banner to go away",
    )
    .await;
    wait_live(&display, "the stream back up").await;
    // And it is live again: a recall after the restart is shown and announced.
    let (status, _) = server
        .api(
            "POST",
            &format!("/patients/{}/recall", called["protocol"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, 200);
    wait_until(
        &display,
        "document.querySelector('#now-room').textContent === 'Triagem 1'",
        "the recall after the restart",
    )
    .await;

    drop(server);
    chrome.close().await;
}

/// English with `?lang=`, and an unknown unit is a 404 problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_pages_and_unknown_unit() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|_| {}).await;

    let res = reqwest::get(server.url("/display/nowhere"))
        .await
        .expect("GET");
    assert_eq!(res.status().as_u16(), 404);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );

    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}?lang=en")))
        .await;
    wait_until(
        &clinician,
        "document.documentElement.lang === 'en'",
        "an English page",
    )
    .await;
    assert_eq!(text(&clinician, "#queue-title").await, "Treatment queue");
    wait_until(
        &clinician,
        "document.querySelector('#queue')?.innerText.includes('Nobody waiting.')",
        "the empty queue",
    )
    .await;
    // Nobody to call: said in words.
    click(&clinician, "#call-submit").await;
    wait_until(
        &clinician,
        "document.querySelector('#notice')?.textContent === 'Nobody is waiting in this queue.'",
        "the nobody-waiting notice",
    )
    .await;

    let display = chrome
        .open(&server.url(&format!("/display/{UNIT}?lang=en")))
        .await;
    wait_live(&display, "the display's event stream").await;
    assert_eq!(text(&display, "#now-ticket").await, "Waiting for calls");
    server
        .admit(json!({"name": "Someone", "colour": "green"}))
        .await;
    server.call(ROOM).await;
    wait_until(
        &display,
        "document.querySelector('#now-ticket').textContent === 'A001'",
        "the call",
    )
    .await;
    let spoken: Vec<String> = eval(&display, "window.triagemSpoken").await;
    assert_eq!(spoken, vec![format!("Ticket A001, {ROOM}")]);
    screenshot(&display, "display-en").await;

    // The triage nurse's part: call to triage, classify in the dialog.
    let waiting = server.admit(json!({"name": "Untriaged Person"})).await;
    let waiting = waiting["protocol"].as_str().unwrap().to_owned();
    wait_until(
        &clinician,
        "document.querySelector('#triage')?.innerText.includes('Untriaged Person')",
        "the triage queue",
    )
    .await;
    click(&clinician, "#triage-call-submit").await;
    wait_until(
        &clinician,
        "!!document.querySelector('#active button[data-key$=\":classify\"]')",
        "the classify button",
    )
    .await;
    click(&clinician, "#active button[data-key$=':classify']").await;
    wait_until(
        &clinician,
        "!!document.querySelector('dialog.action-dialog[open]')",
        "the classification dialog",
    )
    .await;
    click(&clinician, "dialog.action-dialog input[value=green]").await;
    click(&clinician, "dialog.action-dialog button.primary").await;
    wait_until(
        &clinician,
        "!document.querySelector('dialog.action-dialog')",
        "the dialog to close",
    )
    .await;
    let (_, view) = server
        .api("GET", &format!("/patients/{waiting}"), None)
        .await;
    assert_eq!(
        (view["status"].as_str(), view["colour"].as_str()),
        (Some("waiting"), Some("green"))
    );
    wait_until(
        &clinician,
        "document.querySelector('#queue')?.innerText.includes('Untriaged Person')",
        "the patient in the treatment queue",
    )
    .await;
    screenshot(&clinician, "clinician-en").await;

    // An API error is shown in words: an unknown protocol.
    let reception = chrome
        .open(&server.url(&format!("/reception/{UNIT}?lang=en")))
        .await;
    wait_until(
        &reception,
        "document.querySelectorAll('#colour option').length === 5",
        "the colour list",
    )
    .await;
    type_into(&reception, "#lookup", "20260000000009999").await;
    click(&reception, "#lookup-form button[type=submit]").await;
    wait_until(
        &reception,
        "document.querySelector('#lookup-error')?.textContent.startsWith('Not found')",
        "the not-found error in words",
    )
    .await;
    // Mark a looked-up patient as left (the confirmation answered yes).
    run(&reception, "document.querySelector('#lookup').value = ''").await;
    type_into(&reception, "#lookup", &waiting).await;
    click(&reception, "#lookup-form button[type=submit]").await;
    wait_until(
        &reception,
        "!!document.querySelector('form.leave')",
        "the leave form",
    )
    .await;
    run(&reception, "window.confirm = () => true").await;
    click(&reception, "form.leave button[type=submit]").await;
    wait_until(
        &reception,
        // The leave form's own reason list says "Left without being seen" too:
        // wait for the form to go, as it does once the patient has left.
        "!document.querySelector('form.leave') && \
         document.querySelector('#lookup-result')?.innerText.includes('Left without being seen')",
        "the patient shown as left",
    )
    .await;
    let (_, view) = server
        .api("GET", &format!("/patients/{waiting}"), None)
        .await;
    assert_eq!(view["status"], "left");

    drop(server);
    chrome.close().await;
}

/// Tokens mode: the page asks for a token on the first 401, keeps it, and
/// the event stream takes it as `access_token`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_mode_asks_for_a_token_once() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let reception_token = "reception-token-for-the-browser-test";
    let display_token = "display-token-for-the-browser-test";
    let mut server = Server::start(|c| {
        c.auth.mode = AuthMode::Tokens;
        c.auth.tokens = [
            ("recepcao-1", "reception", reception_token),
            ("tv-1", "display", display_token),
        ]
        .into_iter()
        .map(|(name, role, token)| Token {
            name: name.into(),
            role: role.parse().expect("a role"),
            sha256: TokenHash::of(token),
        })
        .collect();
    })
    .await;
    server.token = Some(reception_token.into());

    let reception = chrome
        .open(&server.url(&format!("/reception/{UNIT}")))
        .await;
    wait_until(
        &reception,
        "!!document.querySelector('dialog.token-dialog[open]')",
        "the token dialog",
    )
    .await;
    type_into(&reception, "#token-input", reception_token).await;
    click(&reception, "dialog.token-dialog button.primary").await;
    wait_until(
        &reception,
        "document.querySelectorAll('#colour option').length === 5",
        "the colour list",
    )
    .await;
    wait_live(&reception, "the event stream with access_token").await;
    let stored: Option<String> = eval(&reception, "localStorage.getItem('triagem.token')").await;
    assert_eq!(stored.as_deref(), Some(reception_token));
    // Keyboard only: Enter in the name field admits.
    type_into(&reception, "#name", "Paciente Com Token").await;
    reception
        .find_element("#name")
        .await
        .expect("name field")
        .press_key("Enter")
        .await
        .expect("press Enter");
    wait_until(
        &reception,
        "!document.querySelector('#result').hidden",
        "the admission result",
    )
    .await;
    let protocol = text(&reception, "#result-protocol").await;
    let (_, view) = server
        .api("GET", &format!("/patients/{protocol}"), None)
        .await;
    assert_eq!(view["name"], "Paciente Com Token");
    // A reload asks for nothing: the token is kept.
    reception.reload().await.expect("reload");
    wait_live(&reception, "the stream after a reload").await;
    let dialogs: usize = eval(
        &reception,
        "document.querySelectorAll('dialog.token-dialog').length",
    )
    .await;
    assert_eq!(dialogs, 0, "no second token prompt");

    // The reception role may not read the queue: the clinician page says so in
    // words. (Same origin, so the same stored token.)
    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}")))
        .await;
    wait_until(
        &clinician,
        "document.querySelector('#queue')?.innerText.includes('Seu perfil não tem permissão')",
        "the forbidden queue in words",
    )
    .await;

    // A display with the display role's token.
    run(
        &reception,
        &format!("localStorage.setItem('triagem.token', {display_token:?})"),
    )
    .await;
    let display = chrome.open(&server.url(&format!("/display/{UNIT}"))).await;
    wait_live(&display, "the display's stream").await;
    server.token = Some(display_token.into());
    let dom: String = eval(&display, "document.documentElement.outerHTML").await;
    assert!(!dom.contains("Paciente Com Token") && !dom.contains(&protocol));
    server.stop().await;
    chrome.close().await;
}

/// A steady stream of events closer together than the pages' refresh
/// interval still refreshes the display and the clinician's queue while it
/// lasts (the refresh is throttled, not debounced), and the final state is
/// shown once it ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_refresh_during_a_steady_stream_of_events() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|_| {}).await;
    let display = chrome.open(&server.url(&format!("/display/{UNIT}"))).await;
    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}")))
        .await;
    for page in [&display, &clinician] {
        wait_until(
            page,
            "document.body.dataset.live === 'up'",
            "the event stream",
        )
        .await;
    }
    // How many patients each page shows waiting.
    let on_display = "[...document.querySelectorAll('.d-queue .n')].reduce((s, e) => s + Number(e.textContent), 0)";
    let on_clinician = "document.querySelectorAll('#queue tbody tr').length";

    // An admission every 50 ms for 2.5 s, each sent on schedule whatever the
    // previous one's latency, so the events never pause for 120 ms.
    const BURST: usize = 50;
    let burst = {
        let client = server.client.clone();
        let url = server.url(&format!("/api/v1/units/{UNIT}/patients"));
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(50));
            let mut sent = Vec::new();
            for i in 0..BURST {
                every.tick().await;
                let req = client
                    .post(&url)
                    .json(&json!({"name": format!("Paciente {i}"), "colour": "green"}));
                sent.push(tokio::spawn(async move {
                    req.send().await.map(|r| r.status().as_u16())
                }));
            }
            for s in sent {
                assert_eq!(s.await.expect("join").expect("admission"), 201);
            }
        })
    };
    let (mut seen_display, mut seen_clinician) = (Vec::new(), Vec::new());
    while !burst.is_finished() {
        let d: usize = eval(&display, on_display).await;
        let c: usize = eval(&clinician, on_clinician).await;
        for (seen, n) in [(&mut seen_display, d), (&mut seen_clinician, c)] {
            if seen.last() != Some(&n) {
                seen.push(n);
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    burst.await.expect("the burst of admissions");
    eprintln!(
        "counts shown during the stream: display {seen_display:?}, clinician {seen_clinician:?}"
    );
    // Counts shown while the stream went on, short of the final one.
    let during = |seen: &[usize]| seen.iter().filter(|&&n| n > 0 && n < BURST).count();
    assert!(
        during(&seen_display) >= 3,
        "the display refreshed too rarely during the stream: {seen_display:?}"
    );
    assert!(
        during(&seen_clinician) >= 3,
        "the clinician's queue refreshed too rarely during the stream: {seen_clinician:?}"
    );
    // And the final state once it is over.
    wait_until(
        &display,
        &format!("{on_display} === {BURST}"),
        "the display's final count",
    )
    .await;
    wait_until(
        &clinician,
        &format!("{on_clinician} === {BURST}"),
        "the clinician's final queue",
    )
    .await;

    // The throttle itself: called every 50 ms for 2 s, it runs about every
    // 120 ms during the burst, not more often, and exactly once after the
    // last call.
    let (runs, last_call): (Vec<f64>, f64) = eval(
        &display,
        "new Promise((resolve) => {
           const runs = [];
           let last = 0;
           const f = Triagem.throttle(() => { runs.push(performance.now()); }, 120);
           const every = setInterval(() => { last = performance.now(); f(); }, 50);
           setTimeout(() => {
             clearInterval(every);
             setTimeout(() => resolve([runs, last]), 600);
           }, 2000);
         })",
    )
    .await;
    let before = runs.iter().filter(|&&t| t < last_call).count();
    let after = runs.iter().filter(|&&t| t >= last_call).count();
    assert!(
        before >= 8,
        "only {before} runs during 2 s of calls: {runs:?}"
    );
    assert_eq!(
        after, 1,
        "runs after the last call: {runs:?}, last {last_call}"
    );
    // About 2000 / 120 runs at most; a busy machine's timers jitter by a few
    // milliseconds either way, so the bounds leave room for that, but not
    // for runs on every call (40) or back to back.
    assert!(before <= 18, "{before} runs during 2 s of calls: {runs:?}");
    let closest = runs
        .windows(2)
        .map(|w| w[1] - w[0])
        .fold(f64::MAX, f64::min);
    eprintln!("throttle: {before} runs during the calls, closest {closest:.1} ms apart");
    assert!(closest >= 60.0, "two runs {closest} ms apart: {runs:?}");

    drop(server);
    chrome.close().await;
}

/// Reading `window.localStorage` throws, as in a kiosk browser that blocks
/// site storage.
const BLOCK_STORAGE: &str = r#"Object.defineProperty(window, "localStorage", {
  configurable: true,
  get() { throw new DOMException("The operation is insecure.", "SecurityError"); },
});"#;

/// With storage blocked the pages still load and work: the display shows and
/// announces a call and its sound switch works, the clinician calls a
/// patient, the reception desk loads; preferences are kept in memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_work_when_storage_is_blocked() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|_| {}).await;
    let blocked = "(() => { try { window.localStorage; return false; } catch (e) { return e.name === 'SecurityError'; } })()";

    let display = chrome
        .open_with_script(&server.url(&format!("/display/{UNIT}")), BLOCK_STORAGE)
        .await;
    assert!(eval::<bool>(&display, blocked).await, "storage is blocked");
    wait_live(&display, "the display's event stream").await;
    wait_until(
        &display,
        "document.querySelectorAll('.d-queue').length === 5",
        "the display's queues",
    )
    .await;
    server
        .admit(json!({"name": "Kiosk Sem Storage", "colour": "green"}))
        .await;
    server.call(ROOM).await;
    wait_until(
        &display,
        &format!("document.querySelector('#now-ticket').textContent === 'A001' && document.querySelector('#now-room').textContent === {ROOM:?}"),
        "the call on the display",
    )
    .await;
    let spoken: Vec<String> = eval(&display, "window.triagemSpoken").await;
    assert_eq!(spoken, vec![format!("Senha A001, {ROOM}")]);
    assert_eq!(
        eval::<String>(
            &display,
            "document.querySelector('#sound').getAttribute('aria-pressed')"
        )
        .await,
        "true"
    );
    click(&display, "#sound").await;
    wait_until(
        &display,
        "document.querySelector('#sound').getAttribute('aria-pressed') === 'false'",
        "the sound switched off",
    )
    .await;

    let clinician = chrome
        .open_with_script(&server.url(&format!("/clinician/{UNIT}")), BLOCK_STORAGE)
        .await;
    assert!(
        eval::<bool>(&clinician, blocked).await,
        "storage is blocked"
    );
    wait_live(&clinician, "the clinician's event stream").await;
    server
        .admit(json!({"name": "Outro Paciente", "colour": "yellow"}))
        .await;
    wait_until(
        &clinician,
        "document.querySelector('#queue')?.innerText.includes('Outro Paciente')",
        "the patient in the queue",
    )
    .await;
    // The chosen room is kept for the session (in memory) and used for the call.
    run(
        &clinician,
        "const s = document.querySelector('#call-room'); s.value = 'Consultório 2'; s.dispatchEvent(new Event('change'))",
    )
    .await;
    click(&clinician, "#call-submit").await;
    wait_until(
        &clinician,
        "document.querySelector('#active')?.innerText.includes('Outro Paciente')",
        "the called patient's card",
    )
    .await;
    let (_, queue) = server
        .api("GET", &format!("/units/{UNIT}/queue?queue=treatment"), None)
        .await;
    assert_eq!(queue["total"], 0, "the patient was called: {queue}");
    wait_until(
        &display,
        "document.querySelector('#now-room').textContent === 'Consultório 2'",
        "the clinician's call on the display",
    )
    .await;

    let reception = chrome
        .open_with_script(&server.url(&format!("/reception/{UNIT}")), BLOCK_STORAGE)
        .await;
    wait_until(
        &reception,
        "document.querySelectorAll('#colour option').length === 5",
        "the colour list",
    )
    .await;
    wait_live(&reception, "the reception's event stream").await;

    drop(server);
    chrome.close().await;
}

/// The display's record of what it announced keeps only the latest calls, so
/// a screen that runs for months does not grow without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoken_calls_are_bounded() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|_| {}).await;
    let display = chrome.open(&server.url(&format!("/display/{UNIT}"))).await;
    wait_live(&display, "the display's event stream").await;
    const CALLS: usize = 60;
    const KEPT: usize = 50;
    for i in 0..CALLS {
        server
            .admit(json!({"name": format!("Paciente {i}"), "colour": "green"}))
            .await;
    }
    for _ in 0..CALLS {
        server.call(ROOM).await;
    }
    let last = format!("A{CALLS:03}");
    wait_until(
        &display,
        &format!("document.querySelector('#now-ticket').textContent === {last:?} && window.triagemSpoken.at(-1) === {:?}", format!("Senha {last}, {ROOM}")),
        "the last call announced",
    )
    .await;
    let spoken: Vec<String> = eval(&display, "window.triagemSpoken").await;
    let expected: Vec<String> = (CALLS - KEPT + 1..=CALLS)
        .map(|n| format!("Senha A{n:03}, {ROOM}"))
        .collect();
    assert_eq!(
        spoken, expected,
        "only the last {KEPT} announcements are kept"
    );

    drop(server);
    chrome.close().await;
}

/// Patients who become overdue together, between two fetches, re-render the
/// clinician's queue once, not once per patient.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_rows_rerender_the_queue_once() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|_| {}).await;
    for i in 0..5 {
        server
            .admit(json!({"name": format!("Paciente {i}"), "colour": "green"}))
            .await;
    }
    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}")))
        .await;
    wait_until(
        &clinician,
        "document.body.dataset.live === 'up' && document.querySelectorAll('#queue tbody tr').length === 5",
        "the queue",
    )
    .await;
    // Count the queue's re-renders, then move the page's clock past the green
    // target (2 h): every row turns overdue in the same second.
    run(
        &clinician,
        "window.queueRenders = 0;
         new MutationObserver((records) => { window.queueRenders += records.length; })
           .observe(document.querySelector('#queue'), { childList: true });
         const now = Date.now;
         Date.now = () => now() + 3 * 3600 * 1000",
    )
    .await;
    wait_until(
        &clinician,
        "document.querySelectorAll('#queue tbody tr.overdue').length === 5",
        "the rows marked overdue",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let renders: usize = eval(&clinician, "window.queueRenders").await;
    assert_eq!(renders, 1, "the queue was re-rendered {renders} times");

    drop(server);
    chrome.close().await;
}

/// The clinician page offers the unit's `triage_rooms` for triage calls and
/// its other rooms for treatment calls, whatever the rooms are called; a unit
/// without triage rooms offers all its rooms for both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triage_rooms_come_from_the_config() {
    let Some(chrome) = Chromium::launch().await else {
        return;
    };
    let server = Server::start(|c| {
        let mut other = c.units[0].clone();
        let pa = &mut c.units[0];
        pa.rooms = ["Consultório 1", "Consultório 2", "Acolhimento"]
            .map(String::from)
            .to_vec();
        pa.triage_rooms = vec!["Acolhimento".into()];
        other.id = triagem::domain::UnitId::parse("ps").expect("a unit id");
        other.name = "Pronto Socorro".into();
        other.ticket_prefix = "B".into();
        other.rooms = vec!["Sala A".into(), "Sala B".into()];
        other.triage_rooms = vec![];
        c.units.push(other);
    })
    .await;
    let options =
        |id: &str| format!("[...document.querySelectorAll('#{id} option')].map(o => o.value)");

    let clinician = chrome
        .open(&server.url(&format!("/clinician/{UNIT}")))
        .await;
    wait_until(
        &clinician,
        "document.body.dataset.live === 'up' && document.querySelectorAll('#triage-room option').length > 0",
        "the room lists",
    )
    .await;
    let triage: Vec<String> = eval(&clinician, &options("triage-room")).await;
    assert_eq!(triage, ["Acolhimento"]);
    let treatment: Vec<String> = eval(&clinician, &options("call-room")).await;
    assert_eq!(treatment, ["Consultório 1", "Consultório 2"]);
    // A call to triage goes to that room.
    let waiting = server.admit(json!({"name": "Sem Classificação"})).await;
    wait_until(
        &clinician,
        "document.querySelector('#triage')?.innerText.includes('Sem Classificação')",
        "the triage queue",
    )
    .await;
    click(&clinician, "#triage-call-submit").await;
    wait_until(
        &clinician,
        "!!document.querySelector('#active button[data-key$=\":classify\"]')",
        "the patient called to triage",
    )
    .await;
    let (_, view) = server
        .api(
            "GET",
            &format!("/patients/{}", waiting["protocol"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(
        (view["status"].as_str(), view["room"].as_str()),
        (Some("in_triage"), Some("Acolhimento"))
    );

    let other = chrome.open(&server.url("/clinician/ps")).await;
    wait_until(
        &other,
        "document.body.dataset.live === 'up' && document.querySelectorAll('#triage-room option').length > 0",
        "the room lists",
    )
    .await;
    for id in ["triage-room", "call-room"] {
        let rooms: Vec<String> = eval(&other, &options(id)).await;
        assert_eq!(rooms, ["Sala A", "Sala B"], "#{id}");
    }

    drop(server);
    chrome.close().await;
}
