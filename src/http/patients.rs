//! `/units/{unit}/patients` and `/patients/{protocol}/…`: admission and the
//! status transitions of one patient.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::extract::{protocol, Json, OptionalJson};
use super::{actor, caller, ApiError, AppState, API_BASE};
use crate::domain::patient::{LeaveReason, Outcome};
use crate::domain::{Admission, PatientView};

pub const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

#[derive(Debug, Deserialize)]
pub struct AdmitBody {
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
}

pub async fn admit(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: Json<AdmitBody>,
) -> Result<HttpResponse, ApiError> {
    let unit = path.into_inner();
    let b = body.0;
    let key = match req.headers().get(IDEMPOTENCY_KEY) {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::Malformed("`Idempotency-Key` must be visible ASCII".into()))?
                .to_owned(),
        ),
        None => None,
    };
    let admission = Admission {
        name: b.name,
        colour: b.colour,
        complaint: b.complaint,
        arrived_at: b.arrived_at,
        birth_date: b.birth_date,
        document: b.document,
    };
    let who = caller(&req);
    if !state.admission_allowed(&who) {
        return Err(ApiError::TooManyRequests(format!(
            "at most {} admissions per minute per token",
            state.config.auth.admissions_per_minute
        )));
    }
    let actor = who.name;
    let view = state
        .execute(|d, now| d.admit(&unit, admission, key.as_deref(), &actor, now))
        .await?;
    let location = view
        .get("protocol")
        .and_then(|p| p.as_str())
        .map(|p| format!("{API_BASE}/patients/{p}"))
        .unwrap_or_default();
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(view))
}

pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let view = state.read(|d, now| Ok(d.view(d.patient(protocol)?, now)))?;
    Ok(web::Json(view))
}

pub async fn history(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let protocol = protocol(&path)?;
    state.read(|d, _| d.patient(protocol).map(|_| ()))?;
    let s = state.clone();
    let entries = web::block(move || s.journal().map(|j| j.history(protocol)))
        .await
        .map_err(|_| ApiError::Unavailable)?
        .ok_or(ApiError::Unavailable)?
        .map_err(|e| {
            tracing::error!(error = %e, "cannot read history");
            ApiError::Unavailable
        })?;
    Ok(HttpResponse::Ok().json(entries))
}

#[derive(Debug, Deserialize)]
pub struct TriageBody {
    colour: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn triage(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: Json<TriageBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let TriageBody { colour, note } = body.0;
    let actor = actor(&req);
    let view = state
        .execute(|d, now| d.triage(protocol, &colour, note, &actor, now))
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
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    command: Transition,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let actor = actor(&req);
    let view = state
        .execute(|d, now| command(d, protocol, &actor, now))
        .await?;
    Ok(web::Json(view))
}

pub async fn start(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(state, path, req, |d, p, a, now| d.start(p, a, now)).await
}

pub async fn no_show(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(state, path, req, |d, p, a, now| d.no_show(p, a, now)).await
}

pub async fn recall(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<web::Json<PatientView>, ApiError> {
    transition(state, path, req, |d, p, a, now| d.recall(p, a, now)).await
}

#[derive(Debug, Deserialize)]
pub struct FinishBody {
    outcome: Outcome,
}

pub async fn finish(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: Json<FinishBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let outcome = body.0.outcome;
    let actor = actor(&req);
    let view = state
        .execute(|d, now| d.finish(protocol, outcome, &actor, now))
        .await?;
    Ok(web::Json(view))
}

#[derive(Debug, Default, Deserialize)]
pub struct LeaveBody {
    #[serde(default)]
    reason: LeaveReason,
}

pub async fn leave(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: OptionalJson<LeaveBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let reason = body.0.reason;
    let actor = actor(&req);
    let view = state
        .execute(|d, now| d.leave(protocol, reason, &actor, now))
        .await?;
    Ok(web::Json(view))
}

#[derive(Debug, Deserialize)]
pub struct TransferBody {
    unit: String,
}

pub async fn transfer(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: Json<TransferBody>,
) -> Result<web::Json<PatientView>, ApiError> {
    let protocol = protocol(&path)?;
    let to = body.0.unit;
    let actor = actor(&req);
    let view = state
        .execute(|d, now| d.transfer(protocol, &to, &actor, now))
        .await?;
    Ok(web::Json(view))
}
