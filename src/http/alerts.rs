//! `/alerts` and `/alerts/{id}/ack`.

use actix_web::{web, HttpRequest};
use serde::Deserialize;

use super::extract::{query, OptionalJson};
use super::{actor, ApiError, AppState};
use crate::domain::escalation::Alert;

#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case")]
enum StateFilter {
    #[default]
    Active,
    All,
}

#[derive(Debug, Deserialize)]
struct AlertsQuery {
    unit: Option<String>,
    #[serde(default)]
    state: StateFilter,
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<web::Json<Vec<Alert>>, ApiError> {
    let q: AlertsQuery = query(&req)?;
    let all = q.state == StateFilter::All;
    Ok(web::Json(
        state.read(|d, now| d.alerts(q.unit.as_deref(), all, now))?,
    ))
}

#[derive(Debug, Default, Deserialize)]
pub struct AckBody {
    #[serde(default)]
    by: Option<String>,
}

/// The longest `by` an acknowledgement may carry.
const ACK_BY_MAX_CHARS: usize = 100;

pub async fn ack(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    body: OptionalJson<AckBody>,
) -> Result<web::Json<Alert>, ApiError> {
    let id: u64 = path
        .parse()
        .map_err(|_| ApiError::Malformed("an alert id is a positive integer".into()))?;
    let actor = actor(&req);
    let by = match body.0.by.map(|b| b.trim().to_owned()) {
        Some(b) if b.is_empty() || b.chars().count() > ACK_BY_MAX_CHARS => {
            return Err(ApiError::Invalid(format!(
                "`by` must be 1 to {ACK_BY_MAX_CHARS} characters"
            )))
        }
        Some(b) => b,
        None => actor.clone(),
    };
    let alert = state
        .execute(|d, now| d.acknowledge(id, &by, &actor, now))
        .await?;
    Ok(web::Json(alert))
}
