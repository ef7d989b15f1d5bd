//! The HTTP ceiling (issue 15): a bare actix-web server that does for an
//! admission everything Triagem's HTTP layer does and nothing else, so that
//! `benches/perf.py` can put Triagem's durable admissions per second beside
//! what the same HTTP stack gives on the same machine.
//!
//! ```sh
//! cargo bench --bench ceiling                           # serves on 127.0.0.1:18081
//! CEILING_BIND=127.0.0.1:9000 cargo bench --bench ceiling
//! wrk -t2 -c64 -d10s --latency -s benches/wrk/admit.lua http://127.0.0.1:18081/api/v1/units/pa/patients
//! ```
//!
//! `POST /api/v1/units/{unit}/patients` deserializes the admission's body (the
//! same fields as `AdmitBody` in src/http/patients.rs) and answers 201 Created
//! with a `Location` header and a JSON body of the same fields, shape and size
//! as Triagem's patient view (about 600 bytes), serialized per request, with a
//! counter for the protocol number. No journal, no lock, no logging, no
//! metrics, no validation. Like Triagem's server (src/startup.rs, src/main.rs):
//! HTTP/1.1 only, actix's default worker count (one per available core;
//! `CEILING_WORKERS` overrides it), and a `std` listener (backlog 128) given to
//! `HttpServer::listen`. Unknown arguments (cargo passes `--bench`) are ignored.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, App, HttpResponse, HttpServer};
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Timelike, Utc};
use serde::{Deserialize, Serialize};

const DEFAULT_BIND: &str = "127.0.0.1:18081";
/// `config/default.toml`: green's maximum wait, and the triage queue's.
const GREEN_MAX_WAIT_SECONDS: i64 = 2 * 60 * 60;
const TRIAGE_MAX_WAIT_SECONDS: i64 = 10 * 60;

/// The admission's body, as Triagem reads it.
#[derive(Deserialize)]
#[allow(dead_code)] // read, like Triagem reads them; not all are answered
struct AdmitBody {
    name: String,
    #[serde(default)]
    colour: Option<String>,
    #[serde(default)]
    complaint: Option<String>,
    #[serde(default)]
    arrived_at: Option<DateTime<Utc>>,
    #[serde(default)]
    birth_date: Option<NaiveDate>,
    #[serde(default)]
    document: Option<String>,
    #[serde(default)]
    contact: Option<ContactBody>,
}

#[derive(Deserialize)]
struct ContactBody {
    #[serde(default)]
    phone: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    consent: bool,
}

#[derive(Serialize)]
struct Contact {
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<String>,
    consent: bool,
}

/// The same fields, in the same order, as Triagem's `PatientView`.
#[derive(Serialize)]
struct View {
    protocol: String,
    ticket: String,
    unit: String,
    name: String,
    colour: Option<String>,
    status: &'static str,
    complaint: Option<String>,
    triage_note: Option<String>,
    birth_date: Option<NaiveDate>,
    document: Option<String>,
    arrived_at: DateTime<Utc>,
    admitted_at: DateTime<Utc>,
    triaged_at: Option<DateTime<Utc>>,
    max_wait_seconds: i64,
    due_at: DateTime<Utc>,
    waited_seconds: i64,
    overdue: bool,
    position: Option<u64>,
    room: Option<String>,
    called_at: Option<DateTime<Utc>>,
    no_shows: u32,
    outcome: Option<&'static str>,
    leave_reason: Option<&'static str>,
    closed_at: Option<DateTime<Utc>>,
    check_code: String,
    follow_url: String,
    contact: Option<Contact>,
}

struct State {
    sequence: AtomicU64,
    /// `http://{bind}`, as Triagem's default `portal.public_url`.
    public_url: String,
}

async fn admit(
    state: web::Data<State>,
    unit: web::Path<String>,
    body: web::Json<AdmitBody>,
) -> HttpResponse {
    let b = body.into_inner();
    let seq = state.sequence.fetch_add(1, Ordering::Relaxed) + 1;
    // Triagem's clock keeps milliseconds.
    let now = Utc::now();
    let now = now
        .with_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now);
    let arrived_at = b.arrived_at.unwrap_or(now);
    let (status, triaged_at, max_wait) = match b.colour {
        Some(_) => ("waiting", Some(now), GREEN_MAX_WAIT_SECONDS),
        None => ("awaiting_triage", None, TRIAGE_MAX_WAIT_SECONDS),
    };
    let protocol = format!("{}{seq:013}", now.year());
    // Not an HMAC, just as long: the ceiling measures HTTP, not the check code.
    let check_code = format!("{:06X}", seq.wrapping_mul(0x9E37_79B9) & 0xFF_FFFF);
    let view = View {
        ticket: format!("A{seq:03}"),
        unit: unit.into_inner(),
        name: b.name,
        colour: b.colour,
        status,
        complaint: b.complaint,
        triage_note: None,
        birth_date: b.birth_date,
        document: b.document,
        arrived_at,
        admitted_at: now,
        triaged_at,
        max_wait_seconds: max_wait,
        due_at: triaged_at.unwrap_or(arrived_at) + TimeDelta::seconds(max_wait),
        waited_seconds: (now - arrived_at).num_seconds(),
        overdue: false,
        position: Some(seq),
        room: None,
        called_at: None,
        no_shows: 0,
        outcome: None,
        leave_reason: None,
        closed_at: None,
        follow_url: format!("{}/p/{protocol}#{check_code}", state.public_url),
        check_code,
        contact: b.contact.map(|c| Contact {
            phone: c.phone,
            email: c.email,
            consent: c.consent,
        }),
        protocol,
    };
    HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/patients/{}", view.protocol),
        ))
        .json(view)
}

fn main() -> std::io::Result<()> {
    let bind = std::env::var("CEILING_BIND").unwrap_or_else(|_| DEFAULT_BIND.to_owned());
    let workers = std::env::var("CEILING_WORKERS")
        .ok()
        .and_then(|w| w.parse::<usize>().ok());
    let listener = TcpListener::bind(&bind)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {bind}: {e}")))?;
    let addr = listener.local_addr()?;
    let state = web::Data::from(Arc::new(State {
        sequence: AtomicU64::new(0),
        public_url: format!("http://{addr}"),
    }));
    let default_workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!(
        "ceiling: listening on http://{addr}, {} workers; POST /api/v1/units/{{unit}}/patients",
        workers.unwrap_or(default_workers)
    );
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .route("/api/v1/units/{unit}/patients", web::post().to(admit))
        });
        let server = match workers {
            Some(n) => server.workers(n),
            None => server,
        };
        server.listen(listener)?.run().await
    })
}
