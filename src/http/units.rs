//! `/units`, `/protocol` and a unit's call, queue and board.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{query, Json};
use super::{caller, ApiError, AppState};
use crate::domain::patient::QueueKind;
use crate::domain::{Board, PatientView};

/// The most patients one queue page may hold.
pub const QUEUE_PAGE_MAX: usize = 1000;
pub const QUEUE_PAGE_DEFAULT: usize = 100;

#[derive(Debug, Serialize)]
pub struct UnitView {
    id: String,
    name: String,
    ticket_prefix: String,
    rooms: Vec<String>,
    max_no_shows: u32,
}

pub async fn list(state: web::Data<AppState>) -> web::Json<Vec<UnitView>> {
    web::Json(
        state
            .config
            .units
            .iter()
            .map(|u| UnitView {
                id: u.id.clone(),
                name: u.name.clone(),
                ticket_prefix: u.ticket_prefix.clone(),
                rooms: u.rooms.clone(),
                max_no_shows: u.max_no_shows,
            })
            .collect(),
    )
}

#[derive(Debug, Serialize)]
pub struct ColourView {
    id: String,
    label: String,
    max_wait_seconds: u64,
}

#[derive(Debug, Serialize)]
pub struct ProtocolView {
    name: String,
    clock_starts: crate::config::ClockStarts,
    triage_max_wait_seconds: u64,
    colours: Vec<ColourView>,
}

pub async fn protocol(state: web::Data<AppState>) -> web::Json<ProtocolView> {
    let p = &state.config.protocol;
    web::Json(ProtocolView {
        name: p.name.clone(),
        clock_starts: p.clock_starts,
        triage_max_wait_seconds: p.triage_max_wait.as_secs(),
        colours: p
            .colours
            .iter()
            .map(|c| ColourView {
                id: c.id.clone(),
                label: c.label.clone(),
                max_wait_seconds: c.max_wait.as_secs(),
            })
            .collect(),
    })
}

#[derive(Debug, Deserialize)]
pub struct CallBody {
    #[serde(default)]
    queue: QueueKind,
    room: String,
    #[serde(default)]
    colours: Option<Vec<String>>,
}

pub async fn call(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: Json<CallBody>,
) -> Result<HttpResponse, ApiError> {
    let unit = path.into_inner();
    let CallBody {
        queue,
        room,
        colours,
    } = body.0;
    if colours.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::Invalid(
            "`colours` must name at least one colour, or be left out".into(),
        ));
    }
    let who = caller(&req);
    if !crate::auth::may_call(&who, queue) {
        return Err(ApiError::Forbidden(format!(
            "this role may not call the {} queue",
            queue.as_str()
        )));
    }
    let actor = who.name;
    let called = state
        .execute(|d, now| d.call(&unit, queue, &room, colours.as_deref(), &actor, now))
        .await?;
    Ok(match called {
        Some(view) => HttpResponse::Ok().json(view),
        None => HttpResponse::NoContent().finish(),
    })
}

#[derive(Debug, Deserialize)]
struct QueueQuery {
    #[serde(default)]
    queue: QueueKind,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
}

#[derive(Debug, Serialize)]
pub struct QueuePage<T> {
    total: usize,
    patients: Vec<T>,
}

/// A queue entry for the display role: no name, complaint, birth date,
/// document or protocol number.
#[derive(Debug, Serialize)]
pub struct AnonymousEntry {
    ticket: String,
    colour: Option<String>,
    status: crate::domain::patient::Status,
    arrived_at: chrono::DateTime<chrono::Utc>,
    max_wait_seconds: i64,
    due_at: chrono::DateTime<chrono::Utc>,
    waited_seconds: i64,
    overdue: bool,
    position: Option<usize>,
}

impl From<PatientView> for AnonymousEntry {
    fn from(v: PatientView) -> Self {
        Self {
            ticket: v.ticket,
            colour: v.colour,
            status: v.status,
            arrived_at: v.arrived_at,
            max_wait_seconds: v.max_wait_seconds,
            due_at: v.due_at,
            waited_seconds: v.waited_seconds,
            overdue: v.overdue,
            position: v.position,
        }
    }
}

pub async fn queue(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: QueueQuery = query(&req)?;
    let limit = q.limit.unwrap_or(QUEUE_PAGE_DEFAULT);
    if limit > QUEUE_PAGE_MAX {
        return Err(ApiError::Invalid(format!(
            "`limit` must be at most {QUEUE_PAGE_MAX}"
        )));
    }
    let (total, patients) =
        state.read(|d, now| d.queue_page(&path, q.queue, q.offset, limit, now))?;
    Ok(if caller(&req).is_display() {
        let patients: Vec<AnonymousEntry> = patients.into_iter().map(Into::into).collect();
        HttpResponse::Ok().json(QueuePage { total, patients })
    } else {
        HttpResponse::Ok().json(QueuePage { total, patients })
    })
}

pub async fn board(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<Board>, ApiError> {
    Ok(web::Json(state.read(|d, now| d.board(&path, now))?))
}
