//! `/units`, `/protocol` and a unit's call, queue and board.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{null_is_default, query, Json, UnitPath};
use super::{ApiError, Svc};
use crate::auth::Caller;
use crate::domain::patient::QueueKind;
use crate::domain::{Board, Channel, ColourId, DomainError, PatientView, UnitId};
use crate::service::ServiceError;

/// The most patients one queue page may hold.
pub const QUEUE_PAGE_MAX: usize = 1000;
pub const QUEUE_PAGE_DEFAULT: usize = 100;

#[derive(Debug, Serialize, ToSchema)]
pub struct UnitView {
    id: UnitId,
    name: String,
    ticket_prefix: String,
    rooms: Vec<String>,
    /// The rooms that serve the triage queue (a subset of `rooms`).
    triage_rooms: Vec<String>,
    max_no_shows: u32,
}

/// The units of the service
#[utoipa::path(
    get,
    path = "/api/v1/units",
    operation_id = "listUnits",
    tag = "units",
    responses(
        (status = 200, description = "Every unit, in configuration order", body = Vec<UnitView>),
    )
)]
pub async fn list(service: Svc) -> web::Json<Vec<UnitView>> {
    web::Json(
        service
            .config()
            .units
            .iter()
            .map(|u| UnitView {
                id: u.id.clone(),
                name: u.name.clone(),
                ticket_prefix: u.ticket_prefix.clone(),
                rooms: u.rooms.clone(),
                triage_rooms: u.triage_rooms.clone(),
                max_no_shows: u.max_no_shows,
            })
            .collect(),
    )
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ColourView {
    id: ColourId,
    label: String,
    max_wait_seconds: u64,
}

/// The triage scale: colours most urgent first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProtocolView {
    name: String,
    clock_starts: crate::domain::ClockStarts,
    triage_max_wait_seconds: u64,
    colours: Vec<ColourView>,
    /// The service's time zone (IANA, config `timezone`): the pages show
    /// times in it, whatever zone the screen's computer is set to.
    #[schema(example = "America/Sao_Paulo")]
    timezone: &'static str,
    messages: MessagesView,
}

/// What the service can send a consenting patient (config `notifications`):
/// the desk says so before it asks for consent.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessagesView {
    /// The configured channels (`email`, `sms`); empty when the service
    /// sends no messages.
    #[schema(example = json!(["sms"]))]
    channels: Vec<&'static str>,
    /// The events that send a message (`admitted`, `called`, `finished`).
    #[schema(example = json!(["admitted", "called"]))]
    on: Vec<&'static str>,
}

/// The triage protocol (colour scale and maximum waits)
#[utoipa::path(
    get,
    path = "/api/v1/protocol",
    operation_id = "getProtocol",
    tag = "service",
    responses(
        (status = 200, description = "The protocol", body = ProtocolView),
    )
)]
pub async fn protocol(service: Svc) -> web::Json<ProtocolView> {
    let config = service.config();
    let p = &config.protocol;
    web::Json(ProtocolView {
        timezone: config.timezone.name(),
        messages: MessagesView {
            channels: config
                .notifications
                .channels()
                .into_iter()
                .map(Channel::as_str)
                .collect(),
            on: config.notifications.on.iter().map(|e| e.as_str()).collect(),
        },
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

#[derive(Debug, Deserialize, ToSchema)]
pub struct CallBody {
    /// Which queue to call from (default `treatment`).
    #[serde(default, deserialize_with = "null_is_default")]
    queue: QueueKind,
    /// One of the unit's rooms.
    #[schema(example = "Consultório 1")]
    room: String,
    /// Call only patients of these colours (at least one).
    #[serde(default)]
    #[schema(min_items = 1)]
    colours: Option<Vec<ColourId>>,
}

/// Calls the next patient of a queue to a room
///
/// The triage queue first come first served; the treatment queue by colour,
/// then arrival, then protocol number.
#[utoipa::path(
    post,
    path = "/api/v1/units/{unit}/call",
    operation_id = "callNext",
    tag = "units",
    params(UnitPath),
    request_body = CallBody,
    responses(
        (status = 200, description = "The patient called", body = PatientView),
        (status = 204, description = "Nobody waits in that queue (for those colours)"),
    )
)]
pub async fn call(
    service: Svc,
    caller: Caller,
    UnitPath(unit): UnitPath,
    body: Json<CallBody>,
) -> Result<HttpResponse, ApiError> {
    let CallBody {
        queue,
        room,
        colours,
    } = body.0;
    if colours.as_ref().is_some_and(Vec::is_empty) {
        return Err(ApiError::invalid(
            "colours",
            "`colours` must name at least one colour, or be left out",
        ));
    }
    if !caller.may_call(queue) {
        return Err(ApiError::Forbidden(format!(
            "this role may not call the {} queue",
            queue.as_str()
        )));
    }
    let called = service
        .execute(|d, now| d.call(&unit, queue, &room, colours.as_deref(), caller.name(), now))
        .await
        .map_err(|e| match e {
            // The colour is one of the `colours` filter here.
            ServiceError::Domain(e @ DomainError::UnknownColour(_)) => {
                ApiError::invalid("colours", e.to_string())
            }
            e => e.into(),
        })?;
    Ok(match called {
        Some(view) => HttpResponse::Ok().json(view),
        None => HttpResponse::NoContent().finish(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct QueueQuery {
    /// `treatment` (default) or `triage`.
    #[serde(default)]
    #[param(inline)]
    queue: QueueKind,
    /// Page size, default 100.
    #[param(maximum = 1000)]
    limit: Option<usize>,
    /// Patients to skip, default 0.
    #[serde(default)]
    offset: usize,
}

/// A page of a queue, in call order.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueuePage {
    /// How many wait in the queue (all pages).
    total: usize,
    patients: Vec<QueueEntry>,
}

/// A queue entry: the patient view, or for the display role the entry
/// without personal data.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum QueueEntry {
    Patient(Box<PatientView>),
    Anonymous(AnonymousEntry),
}

/// A queue entry for the display role: no name, complaint, birth date,
/// document or protocol number (and no other field).
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnonymousEntry {
    ticket: String,
    colour: Option<ColourId>,
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

/// A page of a unit's queue, in call order
#[utoipa::path(
    get,
    path = "/api/v1/units/{unit}/queue",
    operation_id = "getQueue",
    tag = "units",
    params(UnitPath, QueueQuery),
    responses(
        (status = 200, description = "The page; the display role gets entries without personal data", body = QueuePage),
    )
)]
pub async fn queue(
    service: Svc,
    caller: Caller,
    UnitPath(unit): UnitPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let q: QueueQuery = query(&req)?;
    let limit = q.limit.unwrap_or(QUEUE_PAGE_DEFAULT);
    if limit > QUEUE_PAGE_MAX {
        return Err(ApiError::invalid(
            "limit",
            format!("`limit` must be at most {QUEUE_PAGE_MAX}"),
        ));
    }
    let (total, patients) =
        service.read(|d, now| d.queue_page(&unit, q.queue, q.offset, limit, now))?;
    let entry = if caller.is_display() {
        |v: PatientView| QueueEntry::Anonymous(v.into())
    } else {
        |v: PatientView| QueueEntry::Patient(Box::new(v))
    };
    let patients = patients.into_iter().map(entry).collect();
    Ok(HttpResponse::Ok().json(QueuePage { total, patients }))
}

/// The ward display board: recent calls and queue counts, no personal data
#[utoipa::path(
    get,
    path = "/api/v1/units/{unit}/board",
    operation_id = "getBoard",
    tag = "units",
    params(UnitPath),
    responses(
        (status = 200, description = "The board", body = Board),
    )
)]
pub async fn board(service: Svc, UnitPath(unit): UnitPath) -> Result<web::Json<Board>, ApiError> {
    Ok(web::Json(service.read(|d, now| d.board(&unit, now))?))
}
