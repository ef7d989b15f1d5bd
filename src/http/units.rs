//! `/units`, `/protocol` and a unit's call, queue and board.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::extract::{query, Json};
use super::{actor, ApiError, AppState};
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
    let actor = actor(&req);
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
pub struct QueuePage {
    total: usize,
    patients: Vec<PatientView>,
}

pub async fn queue(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<web::Json<QueuePage>, ApiError> {
    let q: QueueQuery = query(&req)?;
    let limit = q.limit.unwrap_or(QUEUE_PAGE_DEFAULT);
    if limit > QUEUE_PAGE_MAX {
        return Err(ApiError::Invalid(format!(
            "`limit` must be at most {QUEUE_PAGE_MAX}"
        )));
    }
    let (total, patients) =
        state.read(|d, now| d.queue_page(&path, q.queue, q.offset, limit, now))?;
    Ok(web::Json(QueuePage { total, patients }))
}

pub async fn board(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<Board>, ApiError> {
    Ok(web::Json(state.read(|d, now| d.board(&path, now))?))
}
