//! Access control (docs/api.md, Authentication and roles): every endpoint
//! against every role, no token and an unknown token; the display role's view
//! without personal data; the token's name as the actor of history entries
//! (`anonymous` in open mode); `access_token` only on the event stream; the
//! admission rate limit; and, on the real binary, the refusal of open mode on
//! a non-loopback bind, `triagem token`, and tokens from `TRIAGEM_TOKENS_FILE`.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use triagem::auth::{new_token, sha256_hex};
use triagem::auth::{AuthMode, Token, TokenHash};
use triagem::clock::ManualClock;
use triagem::config::Config;

use crate::helpers::{
    default_config_path, protocol, sequence, start_time, with_second_unit, Resp, TestApp, API,
    PATIENCE, ROOM, TRIAGE_ROOM, UNIT,
};

const ROLES: [&str; 6] = [
    "reception",
    "triage",
    "clinician",
    "display",
    "monitor",
    "admin",
];

/// Issued tokens by name: `(name, role, token)`.
struct Issued(Vec<(String, String, String)>);

impl Issued {
    /// One fresh token per `(name, role)`.
    fn new(entries: &[(&str, &str)]) -> Self {
        Self(
            entries
                .iter()
                .map(|(name, role)| ((*name).to_owned(), (*role).to_owned(), new_token()))
                .collect(),
        )
    }

    /// One token per role, named after the role.
    fn one_per_role() -> Self {
        Self::new(&ROLES.map(|r| (r, r)))
    }

    /// The token issued under `name`.
    #[track_caller]
    fn token(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, _, t)| t.as_str())
            .unwrap_or_else(|| panic!("no token named {name}"))
    }

    /// A config tweak: tokens mode holding the SHA-256 of each token.
    fn configure(&self, c: &mut Config) {
        c.auth.mode = AuthMode::Tokens;
        c.auth.tokens = self
            .0
            .iter()
            .map(|(name, role, token)| Token {
                name: name.clone(),
                role: role.parse().expect("a role"),
                sha256: TokenHash::of(token),
            })
            .collect();
    }
}

/// A service in tokens mode with these tokens, plus the second unit `obs`.
async fn spawn_with_tokens(issued: &Issued, tweak: impl FnOnce(&mut Config)) -> TestApp {
    TestApp::spawn_with(
        |c| {
            with_second_unit(c);
            issued.configure(c);
            tweak(c);
        },
        Arc::new(ManualClock::new(start_time())),
    )
    .await
}

async fn into_resp(r: reqwest::Response) -> Resp {
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("read response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        text,
        body,
    }
}

/// A request to `path` (absolute: `/metrics`, `/api/v1/units`) with an
/// optional bearer token and an optional JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Resp {
    let mut req = app.client.request(method, format!("{}{path}", app.address));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    into_resp(req.send().await.expect("send")).await
}

async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> Resp {
    send(app, Method::GET, &format!("{API}{path}"), token, None).await
}

async fn post_as(app: &TestApp, path: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
    send(app, Method::POST, &format!("{API}{path}"), token, body).await
}

/// Admits to `unit` with `token`, asserting 201; returns the patient view.
async fn admit_as(app: &TestApp, token: &str, unit: &str, body: Value) -> Value {
    post_as(
        app,
        &format!("/units/{unit}/patients"),
        Some(token),
        Some(&body),
    )
    .await
    .expect(201)
}

/// The status line of the event stream only (the body never ends): 200
/// streams are dropped unread, errors are read whole.
async fn events_status(app: &TestApp, query: &str, token: Option<&str>) -> Resp {
    // Not the app's client: its overall timeout would cut a stream it reads.
    let client = reqwest::Client::new();
    let mut req = client.get(app.url(&format!("/units/{UNIT}/events{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = tokio::time::timeout(PATIENCE, req.send())
        .await
        .expect("the stream's headers came in time")
        .expect("GET events");
    if r.status().is_success() {
        Resp {
            status: r.status(),
            headers: r.headers().clone(),
            text: String::new(),
            body: Value::Null,
        }
    } else {
        into_resp(r).await
    }
}

/// A body short enough for a failure message.
fn short(text: &str) -> String {
    match text.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Checks a problem+json answer with this status and code, without panicking.
fn problem_mismatch(r: &Resp, status: u16, code: &str) -> Option<String> {
    if r.status.as_u16() != status {
        return Some(format!(
            "status {} (want {status}): {}",
            r.status,
            short(&r.text)
        ));
    }
    if r.header("content-type") != Some("application/problem+json") {
        return Some(format!(
            "content-type {:?}, not problem+json",
            r.header("content-type")
        ));
    }
    if status == 401 && r.header("www-authenticate").is_none() {
        return Some("a 401 without `WWW-Authenticate`".into());
    }
    if r.body["code"] != code || r.body["status"] != status {
        return Some(format!("problem {} (want code {code})", r.text));
    }
    None
}

// ---- 1. the matrix ----

/// Every method and route of the API (the call endpoint once per
/// queue, the queue once per queue), plus the routes outside `/api/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ep {
    Report,
    Admit,
    Search,
    Session,
    GetPatient,
    History,
    Triage,
    CallTriage,
    CallTreatment,
    Start,
    Finish,
    NoShow,
    Leave,
    Recall,
    Transfer,
    QueueTreatment,
    QueueTriage,
    Board,
    Events,
    Alerts,
    Ack,
    Units,
    Protocol,
    Metrics,
    Healthz,
    Readyz,
}

const ENDPOINTS: [Ep; 26] = [
    Ep::Report,
    Ep::Admit,
    Ep::Search,
    Ep::Session,
    Ep::GetPatient,
    Ep::History,
    Ep::Triage,
    Ep::CallTriage,
    Ep::CallTreatment,
    Ep::Start,
    Ep::Finish,
    Ep::NoShow,
    Ep::Leave,
    Ep::Recall,
    Ep::Transfer,
    Ep::QueueTreatment,
    Ep::QueueTriage,
    Ep::Board,
    Ep::Events,
    Ep::Alerts,
    Ep::Ack,
    Ep::Units,
    Ep::Protocol,
    Ep::Metrics,
    Ep::Healthz,
    Ep::Readyz,
];

/// The role table of docs/api.md, written out by hand (not from
/// src/auth.rs): what each role may call. `/healthz` and `/readyz` need no token.
fn contract_allows(role: &str, ep: Ep) -> bool {
    use Ep::*;
    // "admit, read patients and history, leave, board, events, units, protocol"
    let reception = [
        Admit, Search, GetPatient, History, Leave, Board, Events, Units, Protocol,
    ];
    // "reception's, plus the queue (with names), call the triage queue, triage,
    // no-show, recall"
    let triage_extra = [
        QueueTreatment,
        QueueTriage,
        CallTriage,
        Triage,
        NoShow,
        Recall,
    ];
    // "triage's, plus call the treatment queue, start, finish, transfer, alerts and ack"
    let clinician_extra = [CallTreatment, Start, Finish, Transfer, Alerts, Ack];
    // "board, events, units, protocol, and the queue without names…"
    let display = [Board, Events, Units, Protocol, QueueTreatment, QueueTriage];
    // "/metrics, alerts (read only), reports"
    let monitor = [Metrics, Alerts, Report];
    // Who the caller is: any token may ask.
    if matches!(ep, Healthz | Readyz | Session) {
        return true;
    }
    match role {
        "reception" => reception.contains(&ep),
        "triage" => reception.contains(&ep) || triage_extra.contains(&ep),
        "clinician" => {
            reception.contains(&ep) || triage_extra.contains(&ep) || clinician_extra.contains(&ep)
        }
        "display" => display.contains(&ep),
        "monitor" => monitor.contains(&ep),
        "admin" => true,
        other => panic!("no role {other}"),
    }
}

#[derive(Debug, Clone, Copy)]
enum Who<'a> {
    Role(&'a str),
    NoToken,
    UnknownToken,
}

/// One prepared request: the real patient (and the status it must keep when
/// the request is refused) it acts on, if any.
struct Prepared {
    method: Method,
    path: String,
    body: Option<Value>,
    patient: Option<(String, &'static str)>,
}

/// An untriaged patient of `pa` admitted by the admin.
async fn awaiting(app: &TestApp, admin: &str) -> String {
    protocol(&admit_as(app, admin, UNIT, json!({ "name": "Aguardando Triagem" })).await)
}

/// A patient of `pa` called to a room by the admin (the red one just admitted,
/// or an earlier red one back in the queue after a no-show).
async fn called(app: &TestApp, admin: &str) -> String {
    admit_as(
        app,
        admin,
        UNIT,
        json!({ "name": "Chamado Vermelho", "colour": "red" }),
    )
    .await;
    let v = post_as(
        app,
        &format!("/units/{UNIT}/call"),
        Some(admin),
        Some(&json!({ "room": ROOM })),
    )
    .await
    .expect(200);
    assert_eq!(v["status"], "called");
    protocol(&v)
}

async fn prepare(app: &TestApp, admin: &str, alert: u64, ep: Ep) -> Prepared {
    let api = |p: String| format!("{API}{p}");
    let simple = |method: Method, path: String| Prepared {
        method,
        path,
        body: None,
        patient: None,
    };
    match ep {
        Ep::Admit => Prepared {
            body: Some(json!({ "name": "Matriz de Papéis" })),
            ..simple(Method::POST, api(format!("/units/{UNIT}/patients")))
        },
        Ep::GetPatient | Ep::History | Ep::Triage | Ep::Leave | Ep::Transfer => {
            let p = awaiting(app, admin).await;
            let (method, path, body) = match ep {
                Ep::GetPatient => (Method::GET, format!("/patients/{p}"), None),
                Ep::History => (Method::GET, format!("/patients/{p}/history"), None),
                Ep::Triage => (
                    Method::POST,
                    format!("/patients/{p}/triage"),
                    Some(json!({ "colour": "yellow" })),
                ),
                Ep::Leave => (Method::POST, format!("/patients/{p}/leave"), None),
                _ => (
                    Method::POST,
                    format!("/patients/{p}/transfer"),
                    Some(json!({ "unit": "obs" })),
                ),
            };
            Prepared {
                method,
                path: api(path),
                body,
                patient: Some((p, "awaiting_triage")),
            }
        }
        Ep::Start | Ep::Finish | Ep::NoShow | Ep::Recall => {
            let p = called(app, admin).await;
            let (path, body) = match ep {
                Ep::Start => (format!("/patients/{p}/start"), None),
                Ep::Finish => (
                    format!("/patients/{p}/finish"),
                    Some(json!({ "outcome": "discharged" })),
                ),
                Ep::NoShow => (format!("/patients/{p}/no-show"), None),
                _ => (format!("/patients/{p}/recall"), None),
            };
            Prepared {
                method: Method::POST,
                path: api(path),
                body,
                patient: Some((p, "called")),
            }
        }
        Ep::CallTriage => {
            awaiting(app, admin).await;
            Prepared {
                body: Some(json!({ "queue": "triage", "room": TRIAGE_ROOM })),
                ..simple(Method::POST, api(format!("/units/{UNIT}/call")))
            }
        }
        Ep::CallTreatment => {
            admit_as(
                app,
                admin,
                UNIT,
                json!({ "name": "Espera Verde", "colour": "green" }),
            )
            .await;
            Prepared {
                body: Some(json!({ "queue": "treatment", "room": ROOM })),
                ..simple(Method::POST, api(format!("/units/{UNIT}/call")))
            }
        }
        Ep::QueueTreatment => simple(Method::GET, api(format!("/units/{UNIT}/queue"))),
        Ep::QueueTriage => simple(
            Method::GET,
            api(format!("/units/{UNIT}/queue?queue=triage")),
        ),
        Ep::Board => simple(Method::GET, api(format!("/units/{UNIT}/board"))),
        Ep::Events => simple(Method::GET, api(format!("/units/{UNIT}/events"))),
        Ep::Alerts => simple(Method::GET, api("/alerts?state=all".into())),
        Ep::Ack => Prepared {
            body: Some(json!({ "by": "coordenação" })),
            ..simple(Method::POST, api(format!("/alerts/{alert}/ack")))
        },
        Ep::Units => simple(Method::GET, api("/units".into())),
        Ep::Search => simple(Method::GET, api("/patients?q=Aguardando".into())),
        Ep::Session => simple(Method::GET, api("/session".into())),
        Ep::Report => simple(Method::GET, api("/reports/summary".into())),
        Ep::Protocol => simple(Method::GET, api("/protocol".into())),
        Ep::Metrics => simple(Method::GET, "/metrics".into()),
        Ep::Healthz => simple(Method::GET, "/healthz".into()),
        Ep::Readyz => simple(Method::GET, "/readyz".into()),
    }
}

#[tokio::test]
async fn every_endpoint_answers_every_role_no_token_and_an_unknown_token_as_the_contract_table_says(
) {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let admin = issued.token("admin");
    let unknown = new_token();

    // An alert to acknowledge, in the other unit so calls on `pa` leave it firing.
    let red = protocol(
        &admit_as(
            &app,
            admin,
            "obs",
            json!({ "name": "Alerta Vermelho", "colour": "red" }),
        )
        .await,
    );
    let deadline = Instant::now() + PATIENCE;
    let alert = loop {
        let all = get_as(&app, "/alerts?state=all", Some(admin))
            .await
            .expect(200);
        if let Some(a) = all
            .as_array()
            .expect("alerts")
            .iter()
            .find(|a| a["protocol"] == red.as_str())
        {
            break a["id"].as_u64().expect("alert id");
        }
        assert!(
            Instant::now() < deadline,
            "the red patient's alert never fired"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };

    let mut callers: Vec<Who> = ROLES.iter().map(|r| Who::Role(r)).collect();
    callers.push(Who::NoToken);
    callers.push(Who::UnknownToken);

    let mut wrong = Vec::new();
    let mut checked = 0;
    for who in &callers {
        let token = match who {
            Who::Role(r) => Some(issued.token(r)),
            Who::NoToken => None,
            Who::UnknownToken => Some(unknown.as_str()),
        };
        for ep in ENDPOINTS {
            let prep = prepare(&app, admin, alert, ep).await;
            let r = if ep == Ep::Events {
                events_status(&app, "", token).await
            } else {
                send(
                    &app,
                    prep.method.clone(),
                    &prep.path,
                    token,
                    prep.body.as_ref(),
                )
                .await
            };
            checked += 1;
            let open = matches!(ep, Ep::Healthz | Ep::Readyz);
            let problem = match who {
                _ if open => {
                    (!r.status.is_success()).then(|| format!("{} {}", r.status, short(&r.text)))
                }
                Who::NoToken | Who::UnknownToken => problem_mismatch(&r, 401, "unauthorized"),
                Who::Role(role) if contract_allows(role, ep) => (!r.status.is_success())
                    .then(|| format!("status {} (want 2xx): {}", r.status, short(&r.text))),
                Who::Role(_) => problem_mismatch(&r, 403, "forbidden"),
            };
            if let Some(p) = problem {
                wrong.push(format!("{who:?} {} {}: {p}", prep.method, prep.path));
                continue;
            }
            // A refused change changed nothing.
            if let (false, Some((p, before))) = (r.status.is_success(), &prep.patient) {
                let now = get_as(&app, &format!("/patients/{p}"), Some(admin))
                    .await
                    .expect(200);
                if now["status"] != *before {
                    wrong.push(format!(
                        "{who:?} {} {}: refused, yet the patient is now {}",
                        prep.method, prep.path, now["status"]
                    ));
                }
            }
        }
    }
    assert_eq!(checked, 8 * ENDPOINTS.len());
    assert!(
        wrong.is_empty(),
        "{} of {checked} answers break the role table:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A colour at admission is a classification: the reception desk admits, the
/// triage nurse (or a clinician, an admin) classifies.
#[tokio::test]
async fn only_the_roles_that_may_triage_admit_with_a_colour() {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let admit = format!("/units/{UNIT}/patients");
    let red = json!({ "name": "Ana", "colour": "red" });
    post_as(&app, &admit, Some(issued.token("reception")), Some(&red))
        .await
        .expect_problem(403, "forbidden");
    let queue = get_as(
        &app,
        &format!("/units/{UNIT}/queue"),
        Some(issued.token("admin")),
    )
    .await
    .expect(200);
    assert_eq!(
        queue["total"], 0,
        "the refused admission admitted nobody: {queue}"
    );
    let plain = admit_as(
        &app,
        issued.token("reception"),
        UNIT,
        json!({ "name": "Ana" }),
    )
    .await;
    assert_eq!(plain["status"], "awaiting_triage");
    for role in ["triage", "clinician", "admin"] {
        let v = admit_as(&app, issued.token(role), UNIT, red.clone()).await;
        assert_eq!(
            (v["status"].as_str(), v["colour"].as_str()),
            (Some("waiting"), Some("red")),
            "{role}"
        );
    }
}

#[tokio::test]
async fn the_triage_role_may_call_the_triage_queue_but_not_the_treatment_queue_and_the_clinician_both(
) {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let reception = issued.token("reception");
    let nurse = issued.token("triage");
    let doctor = issued.token("clinician");
    let call = format!("/units/{UNIT}/call");
    let a = protocol(&admit_as(&app, reception, UNIT, json!({ "name": "Ana" })).await);
    let b = protocol(&admit_as(&app, reception, UNIT, json!({ "name": "Bia" })).await);
    let y = protocol(
        &admit_as(
            &app,
            nurse,
            UNIT,
            json!({ "name": "Caio", "colour": "yellow" }),
        )
        .await,
    );

    let triage_call = json!({ "queue": "triage", "room": TRIAGE_ROOM });
    let v = post_as(&app, &call, Some(nurse), Some(&triage_call))
        .await
        .expect(200);
    assert_eq!(protocol(&v), a);
    for body in [
        json!({ "room": ROOM }),
        json!({ "queue": "treatment", "room": ROOM }),
    ] {
        post_as(&app, &call, Some(nurse), Some(&body))
            .await
            .expect_problem(403, "forbidden");
    }
    let waiting = get_as(&app, &format!("/patients/{y}"), Some(nurse))
        .await
        .expect(200);
    assert_eq!(
        waiting["status"], "waiting",
        "the refused call called nobody"
    );

    let v = post_as(&app, &call, Some(doctor), Some(&triage_call))
        .await
        .expect(200);
    assert_eq!(protocol(&v), b);
    let v = post_as(&app, &call, Some(doctor), Some(&json!({ "room": ROOM })))
        .await
        .expect(200);
    assert_eq!(protocol(&v), y);
    assert_eq!(v["status"], "called");

    for body in [triage_call, json!({ "room": ROOM })] {
        post_as(&app, &call, Some(reception), Some(&body))
            .await
            .expect_problem(403, "forbidden");
    }
}

// ---- 2. the display role ----

/// Reads an event stream's text until it is quiet for `idle`.
async fn read_until_quiet(response: &mut reqwest::Response, idle: Duration) -> String {
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout(idle, response.chunk()).await {
        text.push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
        assert!(
            tokio::time::Instant::now() < deadline,
            "the stream never went quiet"
        );
    }
    text
}

#[tokio::test]
async fn the_display_role_sees_no_name_complaint_birth_date_document_or_protocol_number() {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let admin = issued.token("admin");
    let display = issued.token("display");

    // A live stream, open before anything happens.
    let stream_client = reqwest::Client::new();
    let mut live = tokio::time::timeout(
        PATIENCE,
        stream_client
            .get(app.url(&format!("/units/{UNIT}/events")))
            .bearer_auth(display)
            .send(),
    )
    .await
    .expect("stream opened in time")
    .expect("GET events");
    assert_eq!(live.status().as_u16(), 200);

    let people = [
        (
            "Zuleica Bragança Quintela",
            Some("red"),
            "dor torácica irradiando para o braço esquerdo",
            "1957-03-14",
            "RG-48213977",
        ),
        (
            "Anastácio Poliglota Ferraz",
            Some("yellow"),
            "febre persistente há quatro dias",
            "1962-11-05",
            "CPF-93144211807",
        ),
        (
            "Genoveva Turíbio Marcondes",
            None,
            "corte profundo na mão direita",
            "1948-07-23",
            "CNS-700509328471112",
        ),
        (
            "Rosalvo Epaminondas Leite",
            None,
            "tontura súbita ao levantar",
            "1971-01-30",
            "PASSAPORTE-FX829310",
        ),
    ];
    let mut secrets: Vec<String> = Vec::new();
    let mut protocols = Vec::new();
    for (name, colour, complaint, birth, document) in people {
        let mut body = json!({
            "name": name, "complaint": complaint, "birth_date": birth, "document": document,
        });
        if let Some(c) = colour {
            body["colour"] = json!(c);
        }
        let v = admit_as(&app, admin, UNIT, body).await;
        assert_eq!(v["name"], name);
        protocols.push(protocol(&v));
        secrets.extend([name, complaint, birth, document].map(str::to_owned));
        secrets.push(protocol(&v));
    }
    // Zuleica is red: her breach alert fires at once (an `alert` frame).
    let deadline = Instant::now() + PATIENCE;
    while !get_as(&app, "/alerts?state=all", Some(admin))
        .await
        .text
        .contains(&protocols[0])
    {
        assert!(Instant::now() < deadline, "Zuleica's alert never fired");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Zuleica to a room, Genoveva to triage and then green.
    let call = format!("/units/{UNIT}/call");
    let zuleica = post_as(&app, &call, Some(admin), Some(&json!({ "room": ROOM })))
        .await
        .expect(200);
    assert_eq!(protocol(&zuleica), protocols[0]);
    let genoveva = post_as(
        &app,
        &call,
        Some(admin),
        Some(&json!({ "queue": "triage", "room": TRIAGE_ROOM })),
    )
    .await
    .expect(200);
    assert_eq!(protocol(&genoveva), protocols[2]);
    post_as(
        &app,
        &format!("/patients/{}/triage", protocols[2]),
        Some(admin),
        Some(&json!({ "colour": "green", "note": "ferimento limpo" })),
    )
    .await
    .expect(200);

    let mut seen: Vec<(String, String)> = Vec::new();
    for path in [
        format!("/units/{UNIT}/board"),
        format!("/units/{UNIT}/queue"),
        format!("/units/{UNIT}/queue?queue=treatment&limit=1000"),
        format!("/units/{UNIT}/queue?queue=triage"),
        "/units".to_owned(),
        "/protocol".to_owned(),
    ] {
        let r = get_as(&app, &path, Some(display)).await;
        assert_eq!(r.status.as_u16(), 200, "{path}: {}", r.text);
        seen.push((path, r.text));
    }

    // The display still gets a usable queue: tickets, colours, positions.
    let treatment = get_as(&app, &format!("/units/{UNIT}/queue"), Some(display))
        .await
        .expect(200);
    assert_eq!(
        treatment["total"], 2,
        "Anastácio and Genoveva wait: {treatment}"
    );
    let triage = get_as(
        &app,
        &format!("/units/{UNIT}/queue?queue=triage"),
        Some(display),
    )
    .await
    .expect(200);
    assert_eq!(triage["total"], 1, "Rosalvo awaits triage: {triage}");
    for entry in treatment["patients"]
        .as_array()
        .unwrap()
        .iter()
        .chain(triage["patients"].as_array().unwrap())
    {
        assert!(entry["ticket"].as_str().is_some(), "a ticket: {entry}");
        assert!(entry["position"].as_u64().is_some(), "a place: {entry}");
        for key in ["name", "complaint", "birth_date", "document", "protocol"] {
            assert!(
                entry.get(key).is_none(),
                "`{key}` shown to the display: {entry}"
            );
        }
    }
    let board = get_as(&app, &format!("/units/{UNIT}/board"), Some(display))
        .await
        .expect(200);
    assert!(
        board["calls"]
            .as_array()
            .expect("calls")
            .iter()
            .any(|c| c["ticket"] == zuleica["ticket"] && c["room"] == ROOM),
        "the board calls by ticket: {board}"
    );

    // The same people through the queue as a clinician: they are really there.
    let named = get_as(
        &app,
        &format!("/units/{UNIT}/queue"),
        Some(issued.token("clinician")),
    )
    .await;
    assert!(named.text.contains(people[1].0), "{}", named.text);

    // The live stream, and a replay of everything from the start.
    let live_text = read_until_quiet(&mut live, Duration::from_millis(400)).await;
    seen.push(("events (live)".into(), live_text));
    let mut replay = tokio::time::timeout(
        PATIENCE,
        stream_client
            .get(app.url(&format!("/units/{UNIT}/events")))
            .bearer_auth(display)
            .header("Last-Event-ID", "0")
            .send(),
    )
    .await
    .expect("stream opened in time")
    .expect("GET events");
    assert_eq!(replay.status().as_u16(), 200);
    let replay_text = read_until_quiet(&mut replay, Duration::from_millis(400)).await;
    seen.push(("events (replay)".into(), replay_text));
    for (what, text) in &seen[seen.len() - 2..] {
        for event in ["admitted", "alert", "called", "triaged"] {
            assert!(
                text.contains(&format!("event: {event}\n")),
                "{what} lacks a `{event}` frame:\n{text}"
            );
        }
    }

    for (what, text) in &seen {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "the display's {what} shows `{secret}`:\n{text}"
            );
        }
    }
}

// ---- 3. actors ----

/// `(event, actor)` of a patient's history, without the scheduler's alerts.
async fn trail(app: &TestApp, token: Option<&str>, p: &str) -> Vec<(String, String)> {
    get_as(app, &format!("/patients/{p}/history"), token)
        .await
        .expect(200)
        .as_array()
        .expect("history is an array")
        .iter()
        .filter(|e| !e["event"].as_str().is_some_and(|n| n.starts_with("alert.")))
        .map(|e| {
            (
                e["event"].as_str().expect("event").to_owned(),
                e["actor"].as_str().expect("actor").to_owned(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[tokio::test]
async fn the_history_names_the_token_that_made_each_change() {
    let issued = Issued::new(&[
        ("recepcao-1", "reception"),
        ("enf-1", "triage"),
        ("dra-ana", "clinician"),
    ]);
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let reception = issued.token("recepcao-1");
    let nurse = issued.token("enf-1");
    let doctor = issued.token("dra-ana");

    let p = protocol(&admit_as(&app, reception, UNIT, json!({ "name": "Maria Silva" })).await);
    let call = format!("/units/{UNIT}/call");
    post_as(
        &app,
        &call,
        Some(nurse),
        Some(&json!({ "queue": "triage", "room": TRIAGE_ROOM })),
    )
    .await
    .expect(200);
    post_as(
        &app,
        &format!("/patients/{p}/triage"),
        Some(nurse),
        Some(&json!({ "colour": "yellow" })),
    )
    .await
    .expect(200);
    post_as(&app, &call, Some(doctor), Some(&json!({ "room": ROOM })))
        .await
        .expect(200);
    post_as(&app, &format!("/patients/{p}/start"), Some(doctor), None)
        .await
        .expect(200);
    post_as(
        &app,
        &format!("/patients/{p}/finish"),
        Some(doctor),
        Some(&json!({ "outcome": "discharged" })),
    )
    .await
    .expect(200);

    assert_eq!(
        trail(&app, Some(reception), &p).await,
        pairs(&[
            ("admitted", "recepcao-1"),
            ("called", "enf-1"),
            ("triaged", "enf-1"),
            ("called", "dra-ana"),
            ("started", "dra-ana"),
            ("finished", "dra-ana"),
        ])
    );
}

#[tokio::test]
async fn in_open_mode_the_actor_of_every_change_is_anonymous() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria Silva", None).await);
    // A bearer token means nothing in open mode; it does not become a name.
    let stranger = new_token();
    post_as(
        &app,
        &format!("/patients/{p}/triage"),
        Some(&stranger),
        Some(&json!({ "colour": "green" })),
    )
    .await
    .expect(200);
    app.action(&p, "leave").await.expect(200);
    assert_eq!(
        trail(&app, None, &p).await,
        pairs(&[
            ("admitted", "anonymous"),
            ("triaged", "anonymous"),
            ("left", "anonymous"),
        ])
    );
}

// ---- 4. access_token ----

#[tokio::test]
async fn the_access_token_query_parameter_opens_the_event_stream_and_nothing_else() {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let admin = issued.token("admin");
    let display = issued.token("display");
    let p = protocol(&admit_as(&app, admin, UNIT, json!({ "name": "Ana" })).await);

    let r = events_status(&app, &format!("?access_token={display}"), None).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    let r = events_status(&app, &format!("?access_token={}", new_token()), None).await;
    assert!(problem_mismatch(&r, 401, "unauthorized").is_none(), "{r:?}");
    let monitor = issued.token("monitor");
    let r = events_status(&app, &format!("?access_token={monitor}"), None).await;
    assert!(problem_mismatch(&r, 403, "forbidden").is_none(), "{r:?}");

    for (method, path) in [
        (Method::GET, format!("{API}/units/{UNIT}/board")),
        (Method::GET, format!("{API}/units/{UNIT}/queue")),
        (Method::GET, format!("{API}/units")),
        (Method::GET, format!("{API}/patients/{p}")),
        (Method::GET, format!("{API}/patients/{p}/history")),
        // A path that merely ends in `/events` is not the event stream.
        (Method::GET, format!("{API}/patients/events")),
        (Method::GET, format!("{API}/alerts")),
        (Method::GET, "/metrics".to_owned()),
        (Method::POST, format!("{API}/patients/{p}/leave")),
    ] {
        let r = send(
            &app,
            method.clone(),
            &format!("{path}?access_token={admin}"),
            None,
            None,
        )
        .await;
        if let Some(why) = problem_mismatch(&r, 401, "unauthorized") {
            panic!("{method} {path}?access_token=…: {why}");
        }
    }
    let still = get_as(&app, &format!("/patients/{p}"), Some(admin))
        .await
        .expect(200);
    assert_eq!(still["status"], "awaiting_triage");
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_and_other_schemes_are_401() {
    let issued = Issued::one_per_role();
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let t = issued.token("reception");
    let units = app.url("/units");
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = app
            .client
            .get(&units)
            .header("Authorization", format!("{scheme} {t}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status().as_u16(), 200, "scheme `{scheme}`");
    }
    for header in [format!("Basic {t}"), t.to_owned(), "Bearer ".to_owned()] {
        let r = app
            .client
            .get(&units)
            .header("Authorization", &header)
            .send()
            .await
            .expect("GET");
        let r = into_resp(r).await;
        assert!(
            problem_mismatch(&r, 401, "unauthorized").is_none(),
            "`Authorization: {header}`: {r:?}"
        );
    }
}

// ---- 5. rate limit ----

#[tokio::test]
async fn the_fourth_admission_of_a_minute_by_one_token_is_429_and_other_tokens_go_on() {
    let issued = Issued::new(&[("recepcao-1", "reception"), ("recepcao-2", "reception")]);
    let app = spawn_with_tokens(&issued, |c| c.auth.admissions_per_minute = 3).await;
    let one = issued.token("recepcao-1");
    let two = issued.token("recepcao-2");
    let admit = format!("/units/{UNIT}/patients");

    let mut numbers = Vec::new();
    for i in 0..3 {
        let v = admit_as(&app, one, UNIT, json!({ "name": format!("Paciente {i}") })).await;
        numbers.push(sequence(&protocol(&v)));
    }
    let r = post_as(&app, &admit, Some(one), Some(&json!({ "name": "Quarta" }))).await;
    assert!(r.header("retry-after").is_some(), "429 says when to retry");
    r.expect_problem(429, "rate_limited");

    let v = admit_as(&app, two, UNIT, json!({ "name": "Outra Recepção" })).await;
    numbers.push(sequence(&protocol(&v)));
    assert_eq!(
        numbers,
        [1, 2, 3, 4],
        "the refused admission took no number"
    );

    // Still refused within the minute; a new minute, a new allowance.
    post_as(&app, &admit, Some(one), Some(&json!({ "name": "Quinta" })))
        .await
        .expect_problem(429, "rate_limited");
    app.advance(TimeDelta::seconds(60));
    admit_as(&app, one, UNIT, json!({ "name": "Minuto Seguinte" })).await;
}

// ---- CORS: off unless an origin is listed ----

const INTRANET: &str = "https://intranet.hospital.example";

/// A request from a page of `origin` (what a browser adds to cross-origin calls).
async fn from_origin(app: &TestApp, method: Method, path: &str, origin: &str, token: &str) -> Resp {
    let req = app
        .client
        .request(method, format!("{}{API}{path}", app.address))
        .header("origin", origin)
        .bearer_auth(token);
    into_resp(req.send().await.expect("send")).await
}

#[tokio::test]
async fn without_cors_origins_no_cross_origin_header_is_ever_sent() {
    let issued = Issued::new(&[("recepcao-1", "reception")]);
    let app = spawn_with_tokens(&issued, |_| {}).await;
    let token = issued.token("recepcao-1");
    let r = from_origin(&app, Method::GET, "/units", INTRANET, token).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert_eq!(r.header("access-control-allow-origin"), None);
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url(&format!("/units/{UNIT}/patients")))
        .header("origin", INTRANET)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(
        preflight.headers().get("access-control-allow-origin"),
        None,
        "no preflight approval"
    );
}

#[tokio::test]
async fn a_listed_origin_gets_preflight_and_answers_and_other_origins_do_not() {
    let issued = Issued::new(&[("recepcao-1", "reception")]);
    let app = spawn_with_tokens(&issued, |c| {
        c.server.cors_origins = vec![INTRANET.to_owned().try_into().expect("an origin")];
    })
    .await;
    let token = issued.token("recepcao-1");

    // The preflight carries no token and must not be stopped by the role check.
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url(&format!("/units/{UNIT}/patients")))
        .header("origin", INTRANET)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type, idempotency-key",
        )
        .send()
        .await
        .expect("OPTIONS");
    assert!(
        preflight.status().is_success(),
        "preflight: {}",
        preflight.status()
    );
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], INTRANET);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let headers = h["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(name), "{name} not in {headers}");
    }

    let r = from_origin(&app, Method::GET, "/units", INTRANET, token).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.header("access-control-allow-origin"), Some(INTRANET));

    // Another site: served (the token decides access), but without the header,
    // so its page cannot read the answer.
    let r = from_origin(&app, Method::GET, "/units", "https://evil.example", token).await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.header("access-control-allow-origin"), None);

    // The service's own pages (same origin, POSTs carry Origin) still work.
    let own = app.address.clone();
    let r = app
        .client
        .post(app.url(&format!("/units/{UNIT}/patients")))
        .header("origin", own)
        .bearer_auth(token)
        .json(&json!({ "name": "Pela Página" }))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status().as_u16(), 201);

    // Still no token, no data.
    let r = app
        .client
        .get(app.url("/units"))
        .header("origin", INTRANET)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status().as_u16(), 401);
}

// ---- 6. the binary: open mode off loopback, `triagem token` ----

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("free port");
    l.local_addr().expect("local addr").port()
}

/// The binary with a clean environment for the triagem variables.
fn triagem(args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_triagem"));
    cmd.args(args)
        .env_remove("TRIAGEM_BIND")
        .env_remove("TRIAGEM_DATA_DIR")
        .env_remove("TRIAGEM_TOKENS_FILE")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs to the end within 10 s (killed otherwise) and returns the output.
async fn run(mut cmd: tokio::process::Command) -> std::process::Output {
    let child = cmd.spawn().expect("start the triagem binary");
    tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("triagem did not exit within 10 s")
        .expect("wait for triagem")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write_config(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

fn shipped_config() -> String {
    std::fs::read_to_string(default_config_path()).expect("read config/default.toml")
}

#[tokio::test]
async fn open_mode_on_a_non_loopback_bind_refuses_to_start_and_fails_check_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shipped = shipped_config();
    assert!(
        shipped.contains("mode = \"open\""),
        "the shipped config is open"
    );
    let config = write_config(dir.path(), "open.toml", &shipped);
    let config = config.to_str().expect("UTF-8 path");
    let bind = format!("0.0.0.0:{}", free_port());
    let data = dir.path().join("data");

    let started = Instant::now();
    let mut serve = triagem(&["serve", "--config", config]);
    serve
        .env("TRIAGEM_BIND", &bind)
        .env("TRIAGEM_DATA_DIR", &data);
    let out = run(serve).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the refusal is immediate"
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "serve started: {err}");
    assert!(err.contains("auth.mode"), "names the key: {err}");
    assert!(err.contains("loopback"), "says why: {err}");

    let mut check = triagem(&["check-config", "--config", config]);
    check
        .env("TRIAGEM_BIND", &bind)
        .env("TRIAGEM_DATA_DIR", &data);
    let out = run(check).await;
    let err = text(&out.stderr);
    assert!(
        !out.status.success(),
        "check-config passed: {}",
        text(&out.stdout)
    );
    assert!(
        err.contains("auth.mode") && err.contains("loopback"),
        "{err}"
    );

    // The same file on loopback is fine: it is the bind that is refused.
    let port = free_port();
    let mut check = triagem(&["check-config", "--config", config]);
    check
        .env("TRIAGEM_BIND", format!("127.0.0.1:{port}"))
        .env("TRIAGEM_DATA_DIR", &data);
    let out = run(check).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The effective settings, defaults included: where the links point.
    let printed = text(&out.stdout);
    assert!(
        printed.contains(&format!("public_url = \"http://127.0.0.1:{port}\"")),
        "{printed}"
    );
}

#[tokio::test]
async fn triagem_token_prints_a_random_token_and_the_table_holding_its_sha256() {
    let out = run(triagem(&[
        "token",
        "--role",
        "clinician",
        "--name",
        "dra-ana",
    ]))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let tokens: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.len() == 64 && l.chars().all(|c| c.is_ascii_hexdigit()))
        .collect();
    assert_eq!(tokens.len(), 1, "one bare 64-hex token line:\n{stdout}");
    let token = tokens[0];

    let table_start = stdout
        .find("[[auth.tokens]]")
        .unwrap_or_else(|| panic!("no [[auth.tokens]] table:\n{stdout}"));
    let table: toml::Value = toml::from_str(&stdout[table_start..])
        .unwrap_or_else(|e| panic!("the table is not TOML ({e}):\n{stdout}"));
    let entry = &table["auth"]["tokens"][0];
    assert_eq!(entry["name"].as_str(), Some("dra-ana"));
    assert_eq!(entry["role"].as_str(), Some("clinician"));
    let expected = hex::encode(Sha256::digest(token.as_bytes()));
    assert_eq!(entry["sha256"].as_str(), Some(expected.as_str()));

    // The table is a working config entry.
    let mut c: Config = crate::helpers::default_config();
    c.auth.mode = AuthMode::Tokens;
    c.auth.tokens = vec![Token {
        name: entry["name"].as_str().unwrap().into(),
        role: entry["role"].as_str().unwrap().parse().expect("a role"),
        sha256: TokenHash::try_from(entry["sha256"].as_str().unwrap().to_owned())
            .expect("64 hex digits"),
    }];
    c.validate().expect("the printed table validates");

    let again = run(triagem(&[
        "token",
        "--role",
        "clinician",
        "--name",
        "dra-ana",
    ]))
    .await;
    assert!(
        !text(&again.stdout).contains(token),
        "every run prints a new token"
    );

    // A name with quotes and a backslash still makes a valid table.
    let awkward = r#"enf "chefe" \ ala 2"#;
    let out = run(triagem(&["token", "--role", "triage", "--name", awkward])).await;
    let stdout = text(&out.stdout);
    let table: toml::Value = toml::from_str(&stdout[stdout.find("[[auth.tokens]]").unwrap()..])
        .unwrap_or_else(|e| panic!("the table is not TOML ({e}):\n{stdout}"));
    assert_eq!(table["auth"]["tokens"][0]["name"].as_str(), Some(awkward));

    let out = run(triagem(&["token", "--role", "wizard"])).await;
    assert!(!out.status.success(), "an unknown role is refused");
    assert!(
        !text(&out.stdout).contains("[[auth.tokens]]"),
        "and prints no table"
    );
    assert!(
        text(&out.stderr).contains("wizard"),
        "{}",
        text(&out.stderr)
    );

    // Names check-config would refuse are refused here, before a table is printed.
    for name in ["", "  ", "system", "anonymous", "enf\nana"] {
        let out = run(triagem(&["token", "--role", "triage", "--name", name])).await;
        assert!(!out.status.success(), "{name:?} is refused");
        assert!(!text(&out.stdout).contains("[[auth.tokens]]"), "{name:?}");
    }
}

// ---- 7. TRIAGEM_TOKENS_FILE ----

#[tokio::test]
async fn tokens_from_the_triagem_tokens_file_work_and_replace_those_of_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let in_config = new_token();
    let in_file = new_token();
    let display_in_file = new_token();
    let config_text = format!(
        "{}\n[[auth.tokens]]\nname = \"esquecido\"\nrole = \"admin\"\nsha256 = \"{}\"\n",
        shipped_config().replace("mode = \"open\"", "mode = \"tokens\""),
        sha256_hex(&in_config)
    );
    let config = write_config(dir.path(), "tokens.toml", &config_text);
    let tokens_file = write_config(
        dir.path(),
        "tokens-file.toml",
        &format!(
            "[[tokens]]\nname = \"recepcao-arquivo\"\nrole = \"reception\"\nsha256 = \"{}\"\n\n\
             [[tokens]]\nname = \"painel\"\nrole = \"display\"\nsha256 = \"{}\"\n",
            sha256_hex(&in_file),
            sha256_hex(&display_in_file)
        ),
    );
    let config = config.to_str().expect("UTF-8 path").to_owned();

    // check-config reads the file too; a missing file is a clear error.
    let mut check = triagem(&["check-config", "--config", &config]);
    check.env("TRIAGEM_TOKENS_FILE", &tokens_file);
    let out = run(check).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("recepcao-arquivo"));
    let missing = dir.path().join("no-such-tokens.toml");
    let mut check = triagem(&["check-config", "--config", &config]);
    check.env("TRIAGEM_TOKENS_FILE", &missing);
    let out = run(check).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no-such-tokens.toml"),
        "names the file: {}",
        text(&out.stderr)
    );

    let port = free_port();
    let mut serve = triagem(&["serve", "--config", &config]);
    serve
        .env("TRIAGEM_TOKENS_FILE", &tokens_file)
        .env("TRIAGEM_BIND", format!("127.0.0.1:{port}"))
        .env("TRIAGEM_DATA_DIR", dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = serve.spawn().expect("start the triagem binary");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("triagem exited with {status}");
        }
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().as_u16() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "triagem never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let admit = |token: &str| {
        client
            .post(format!("{base}{API}/units/{UNIT}/patients"))
            .bearer_auth(token)
            .json(&json!({ "name": "Ana" }))
            .send()
    };
    let r = admit(&in_file).await.expect("POST");
    assert_eq!(
        r.status().as_u16(),
        201,
        "the file's reception token admits"
    );
    let p = protocol(&r.json::<Value>().await.expect("JSON"));
    let r = admit(&in_config).await.expect("POST");
    assert_eq!(
        r.status().as_u16(),
        401,
        "the file replaces the config's tokens"
    );
    let r = admit(&display_in_file).await.expect("POST");
    assert_eq!(r.status().as_u16(), 403, "the file's roles hold");

    let history: Value = client
        .get(format!("{base}{API}/patients/{p}/history"))
        .bearer_auth(&in_file)
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(history[0]["event"], "admitted");
    assert_eq!(history[0]["actor"], "recepcao-arquivo");

    let board = client
        .get(format!("{base}{API}/units/{UNIT}/board"))
        .bearer_auth(&display_in_file)
        .send()
        .await
        .expect("GET");
    assert_eq!(board.status().as_u16(), 200);
    let _ = child.kill().await;
}

/// `migrate` without `--to` takes the config's URL or TRIAGEM_DATABASE_URL
/// (tests/postgres.rs runs that); with neither it says where to give one and
/// touches nothing.
#[tokio::test]
async fn migrate_without_a_destination_says_where_to_give_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let config = crate::helpers::default_config_path();
    let mut cmd = triagem(&["migrate", "--config", config.to_str().expect("UTF-8 path")]);
    cmd.env_remove("TRIAGEM_DATABASE_URL")
        .env("TRIAGEM_DATA_DIR", &data);
    let out = run(cmd).await;
    assert!(!out.status.success());
    let said = text(&out.stderr);
    assert!(
        said.contains("--to") && said.contains("TRIAGEM_DATABASE_URL"),
        "{said}"
    );
    assert!(!data.exists(), "nothing created: {data:?}");
}

/// Open mode has no tokens: what keeps a web page that the desk's browser
/// opens from changing or reading patients is that a change must not come
/// from another origin's page, and every request must name a loopback host
/// (a rebinding name pointed at 127.0.0.1 is refused).
#[tokio::test]
async fn in_open_mode_another_sites_page_can_neither_change_nor_read_patients() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Maria Silva", Some("red")).await);
    let leave = format!("{}{API}/patients/{p}/leave", app.address);
    let own = app.address.clone();
    let foreign: [(&str, &str); 3] = [
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
        ("origin", "http://evil.example"),
    ];
    for (header, value) in foreign {
        let r = app
            .client
            .post(&leave)
            .header(header, value)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), 403, "{header}: {value}");
    }
    assert_eq!(app.patient(&p).await["status"], "waiting", "nobody left");

    let port = own.rsplit(':').next().expect("port");
    let r = app
        .client
        .get(format!("{own}{API}/patients?q=maria"))
        .header("host", format!("rebound.example:{port}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 403, "a rebinding name reads nothing");
    assert!(!r.text().await.unwrap().contains("Maria"));

    // The service's own pages, and clients that are not browsers, go on.
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let r = app
            .client
            .get(format!("{own}{API}/patients?q=maria"))
            .header("host", host.clone())
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{host}");
    }
    let r = app
        .client
        .post(&leave)
        .header("origin", own.as_str())
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200, "the page's own leave");
    assert_eq!(app.patient(&p).await["status"], "left");
}
