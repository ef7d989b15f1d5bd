//! `/units/{unit}/patients` and `/patients/{protocol}/…`: admission and the
//! status transitions of one patient.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{
    iso_date_or_null, null_is_default, object_or_null, Json, OptionalJson, ProtocolPath, UnitPath,
};
use super::{ApiError, RateLimiter, Svc, API_BASE};
use crate::auth::Caller;
use crate::domain::patient::{stray_control, Contact, LeaveReason, Outcome, Status};
use crate::domain::{Admission, PatientView};
use crate::domain::{ColourId, UnitId};
use crate::journal::HistoryEntry;
use crate::journal::PatientSearch;

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

/// An arrival at the desk.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AdmitBody {
    /// 1 to 200 characters after trimming, one of them visible; no control
    /// characters, none that reorders the text (bidirectional embeddings,
    /// overrides, isolates).
    #[schema(
        example = "Maria Silva",
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*[^\s\u0000-\u001f\u007f-\u009f\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff][^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]*$"
    )]
    name: String,
    /// A colour id of the protocol, when classified at admission; left out
    /// (or null), the patient waits in the triage queue.
    #[serde(default)]
    #[schema(example = "yellow")]
    colour: Option<ColourId>,
    /// At most 1000 characters; no control characters but line breaks and tabs, no
    /// bidirectional overrides.
    #[serde(default)]
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    complaint: Option<String>,
    /// When the patient arrived, if before now: at most 24 h ago, at most 5 s ahead.
    #[serde(default)]
    arrived_at: Option<DateTime<Utc>>,
    /// Not in the future.
    #[serde(default, deserialize_with = "iso_date_or_null")]
    birth_date: Option<NaiveDate>,
    /// An identity document number, at most 32 characters, no control characters
    /// or bidirectional overrides.
    #[serde(default)]
    #[schema(max_length = 32, pattern = r"^[^\u0000-\u001f\u007f-\u009f]*$")]
    document: Option<String>,
    /// How to reach the patient: messages are sent only with `consent`.
    #[serde(default, deserialize_with = "object_or_null")]
    contact: Option<ContactBody>,
}

/// A contact as the desk typed it.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ContactBody {
    /// E.164: `+`, country code and number (`+5511987654321`).
    #[serde(default)]
    #[schema(example = "+5511987654321")]
    phone: Option<String>,
    #[serde(default)]
    #[schema(example = "maria@example.com")]
    email: Option<String>,
    /// The patient agreed to be sent messages.
    #[serde(default, deserialize_with = "null_is_default")]
    consent: bool,
}

/// Admits a patient
///
/// Issues the protocol number and ticket at once and puts the patient in the
/// triage queue (no colour) or the treatment queue (colour given). The same
/// `Idempotency-Key` again within 24 h answers the first response and admits
/// nobody new.
#[utoipa::path(
    post,
    path = "/api/v1/units/{unit}/patients",
    operation_id = "admit",
    tag = "patients",
    params(
        UnitPath,
        ("Idempotency-Key" = Option<String>, Header, description = "1 to 200 visible ASCII characters; repeats within 24 h answer the first response"),
    ),
    request_body = AdmitBody,
    responses(
        (status = 201, description = "Admitted (or the first response to this `Idempotency-Key`)", body = PatientView,
            headers(("Location" = String, description = "`/api/v1/patients/{protocol}`"))),
    )
)]

pub async fn admit(
    service: Svc,
    limiter: web::Data<RateLimiter>,
    caller: Caller,
    UnitPath(unit): UnitPath,
    req: HttpRequest,
    body: Json<AdmitBody>,
) -> Result<HttpResponse, ApiError> {
    // Counted before anything is checked. Tokens mode only: in open mode every desk is the same `anonymous`.
    if caller.role().is_some() {
        limiter.allow(caller.name(), service.now())?;
    }
    let b = body.0;
    if b.colour.is_some() && !caller.may_classify() {
        return Err(ApiError::Forbidden(
            "a colour at admission is a classification, which this role may not make: \
             admit without `colour`, and the triage nurse classifies"
                .into(),
        ));
    }
    let mut keys = req.headers().get_all(IDEMPOTENCY_KEY);
    let key = match keys.next() {
        // Which of two keys would name the request? Neither: ask for one.
        Some(_) if keys.next().is_some() => {
            return Err(ApiError::Malformed(
                "send one `Idempotency-Key` header, not several".into(),
            ))
        }
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::Malformed("`Idempotency-Key` must be visible ASCII".into()))?
                .to_owned(),
        ),
        None => None,
    };
    let contact = match b.contact {
        Some(c) => Some(
            Contact::parse(c.phone.as_deref(), c.email.as_deref(), c.consent)
                .map_err(|e| ApiError::invalid(e.field, e.to_string()))?,
        ),
        None => None,
    };
    let admission = Admission {
        contact,
        name: b.name,
        colour: b.colour,
        complaint: b.complaint,
        arrived_at: b.arrived_at,
        birth_date: b.birth_date,
        document: b.document,
    };
    let actor = caller.name();
    let admitted = service
        .execute(|d, now| d.admit(&unit, admission, key.as_deref(), actor, now))
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{API_BASE}/patients/{}", admitted.protocol),
        ))
        .content_type(actix_web::mime::APPLICATION_JSON)
        .body(admitted.to_json()))
}

/// A patient by protocol number
#[utoipa::path(
    get,
    path = "/api/v1/patients/{protocol}",
    operation_id = "getPatient",
    tag = "patients",
    params(ProtocolPath),
    responses(
        (status = 200, description = "The patient", body = PatientView),
    )
)]
pub async fn get(
    service: Svc,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<web::Json<PatientView>, ApiError> {
    let view = service.read(|d, now| Ok(d.view(d.patient(protocol)?, now)))?;
    Ok(web::Json(view))
}

/// The most patients one search answers.
pub const SEARCH_MAX: usize = 50;
const SEARCH_DEFAULT: usize = 20;
/// Paging deeper than this is not a search any more.
const SEARCH_MAX_OFFSET: usize = 100_000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// A protocol number, a ticket of today (`A012`), a document number, or
    /// words of the name (accents and case do not matter).
    q: Option<String>,
    /// Only this unit's patients.
    unit: Option<String>,
    /// Only patients in these statuses, comma-separated (`called,in_treatment`).
    status: Option<String>,
    /// At most this many (default 20).
    #[param(minimum = 1, maximum = 50)]
    limit: Option<usize>,
    /// Skip this many matches (default 0): the next page of a listing, e.g.
    /// when more than 50 patients are in rooms.
    #[param(minimum = 0, maximum = 100000)]
    offset: Option<usize>,
}

/// Patients found by a search.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatientList {
    /// Most recent arrival first.
    patients: Vec<PatientView>,
}

/// Finds patients by name, document, today's ticket or protocol number
///
/// Every patient still kept (retention) can be found, in a queue or not.
/// Without `q`, the unit's (or all) patients in the given statuses: e.g. who
/// is in a room now, with `status=in_triage,called,in_treatment`.
#[utoipa::path(
    get,
    path = "/api/v1/patients",
    operation_id = "searchPatients",
    tag = "patients",
    params(SearchQuery),
    responses((status = 200, description = "The patients found", body = PatientList)),
)]
pub async fn search(service: Svc, req: HttpRequest) -> Result<web::Json<PatientList>, ApiError> {
    let query: SearchQuery = super::extract::query(&req)?;
    let limit = query.limit.unwrap_or(SEARCH_DEFAULT);
    if !(1..=SEARCH_MAX).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("`limit` must be 1 to {SEARCH_MAX}"),
        ));
    }
    let offset = query.offset.unwrap_or(0);
    if offset > SEARCH_MAX_OFFSET {
        return Err(ApiError::invalid(
            "offset",
            format!("`offset` must be 0 to {SEARCH_MAX_OFFSET}"),
        ));
    }
    // A NUL matched everyone on SQLite (LIKE stops at it) and was refused by
    // PostgreSQL as a journal error (503): nothing a person types holds one.
    if query.q.as_deref().is_some_and(|q| stray_control(q, false)) {
        return Err(ApiError::invalid(
            "q",
            "`q` must not hold control or bidirectional override characters",
        ));
    }
    let unit = match &query.unit {
        Some(u) => Some(
            UnitId::parse(u)
                .map_err(|_| ApiError::NotFound(format!("unit `{u}` does not exist")))?,
        ),
        None => None,
    };
    let statuses = match &query.status {
        Some(list) => list
            .split(',')
            .map(|s| {
                s.trim().parse::<Status>().map_err(|_| {
                    ApiError::Malformed(format!("bad query string: `{s}` is not a status"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    let search = PatientSearch {
        q: query.q,
        unit,
        statuses,
        limit,
        offset,
        ..PatientSearch::default()
    };
    let patients = service.search(search).await?;
    Ok(web::Json(PatientList { patients }))
}

/// A patient's audit trail, oldest first
#[utoipa::path(
    get,
    path = "/api/v1/patients/{protocol}/history",
    operation_id = "patientHistory",
    tag = "patients",
    params(ProtocolPath),
    responses(
        (status = 200, description = "The history, oldest first", body = Vec<HistoryEntry>),
    )
)]
pub async fn history(
    service: Svc,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(service.history(protocol).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TriageBody {
    /// A colour id of the protocol.
    #[schema(example = "yellow")]
    colour: ColourId,
    /// At most 1000 characters; no control characters but line breaks and tabs, no
    /// bidirectional overrides.
    #[serde(default)]
    #[schema(
        max_length = 1000,
        pattern = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
    )]
    note: Option<String>,
}

/// Classifies (or re-classifies) a patient
///
/// From `awaiting_triage`, `in_triage` or `waiting` to `waiting` with the
/// colour; the clock of the colour starts now, the place by arrival is kept.
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/triage",
    operation_id = "triage",
    tag = "patients",
    params(ProtocolPath),
    request_body = TriageBody,
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn triage(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
    body: Json<TriageBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let TriageBody { colour, note } = body.0;
    let view = service
        .execute(|d, now| d.triage(protocol, &colour, note, caller.name(), now))
        .await?;
    Ok(web::Json(view))
}

/// A domain command on one patient that needs nothing but who and when.
type Transition = fn(
    &mut crate::domain::Department,
    crate::domain::patient::Protocol,
    &str,
    DateTime<Utc>,
) -> Result<crate::domain::Applied<PatientView>, crate::domain::DomainError>;

/// A body-less transition: parse the protocol, run it, answer the view.
async fn transition(
    service: Svc,
    caller: Caller,
    protocol: crate::domain::patient::Protocol,
    command: Transition,
) -> Result<web::Json<PatientView>, ApiError> {
    let view = service
        .execute(|d, now| command(d, protocol, caller.name(), now))
        .await?;
    Ok(web::Json(view))
}

/// Starts treatment: `called` to `in_treatment`
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/start",
    operation_id = "start",
    tag = "patients",
    params(ProtocolPath),
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn start(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(service, caller, protocol, |d, p, a, now| d.start(p, a, now)).await
}

/// The called patient did not come
///
/// `in_triage` back to `awaiting_triage`, `called` back to `waiting`, keeping
/// the place; the no-show that reaches `max_no_shows` makes the patient `left`.
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/no-show",
    operation_id = "noShow",
    tag = "patients",
    params(ProtocolPath),
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn no_show(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(service, caller, protocol, |d, p, a, now| {
        d.no_show(p, a, now)
    })
    .await
}

/// Announces a called patient again (`in_triage` or `called`; status unchanged)
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/recall",
    operation_id = "recall",
    tag = "patients",
    params(ProtocolPath),
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn recall(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(service, caller, protocol, |d, p, a, now| {
        d.recall(p, a, now)
    })
    .await
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct FinishBody {
    outcome: Outcome,
}

/// Records the outcome: `called` or `in_treatment` to `finished`
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/finish",
    operation_id = "finish",
    tag = "patients",
    params(ProtocolPath),
    request_body = FinishBody,
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn finish(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
    body: Json<FinishBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let outcome = body.0.outcome;
    let view = service
        .execute(|d, now| d.finish(protocol, outcome, caller.name(), now))
        .await?;
    Ok(web::Json(view))
}

/// The body may be left out: the reason is then `lwbs`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct LeaveBody {
    #[serde(default, deserialize_with = "null_is_default")]
    #[schema(value_type = LeaveRequestReason)]
    reason: LeaveReason,
}

/// Why a patient left, as a client may say it: left without being seen
/// (`lwbs`, the default), `cancelled`, or admitted in `error`. (`no_show` is
/// set only by the service.)
#[derive(Deserialize, ToSchema)]
#[allow(dead_code)]
#[serde(rename_all = "snake_case")]
enum LeaveRequestReason {
    Lwbs,
    Cancelled,
    Error,
}

/// The patient left (or the admission is cancelled): any non-terminal status to `left`
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/leave",
    operation_id = "leave",
    tag = "patients",
    params(ProtocolPath),
    request_body(content = ref("#/components/schemas/LeaveBody"), description = "May be left out"),
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn leave(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
    body: OptionalJson<LeaveBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let reason = body.0.reason;
    let view = service
        .execute(|d, now| d.leave(protocol, reason, caller.name(), now))
        .await?;
    Ok(web::Json(view))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct TransferBody {
    /// The id of the unit to move to.
    #[schema(example = "pa")]
    unit: String,
}

/// Moves a patient to the same queue of another unit
///
/// From `awaiting_triage`, `waiting` or `called` (back to `waiting`), keeping
/// arrival, triage time, colour, ticket and protocol.
#[utoipa::path(
    post,
    path = "/api/v1/patients/{protocol}/transfer",
    operation_id = "transfer",
    tag = "patients",
    params(ProtocolPath),
    request_body = TransferBody,
    responses(
        (status = 200, description = "The patient after the change", body = PatientView),
    )
)]
pub async fn transfer(
    service: Svc,
    caller: Caller,
    ProtocolPath(protocol): ProtocolPath,
    body: Json<TransferBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let to = UnitId::parse(&body.0.unit)
        .map_err(|_| ApiError::NotFound(format!("unit `{}` does not exist", body.0.unit)))?;
    let view = service
        .execute(|d, now| d.transfer(protocol, &to, caller.name(), now))
        .await?;
    Ok(web::Json(view))
}
