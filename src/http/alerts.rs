//! `/alerts` and `/alerts/{id}/ack`.

use actix_web::{web, HttpRequest};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::extract::{query, OptionalJson};
use super::{ApiError, Svc};
use crate::auth::Caller;
use crate::domain::escalation::Alert;
use crate::domain::patient::{blank, stray_control};

/// `active` (firing or acknowledged) or `all` (also resolved).
#[derive(Debug, Deserialize, Default, Clone, Copy, PartialEq, ToSchema)]
#[serde(rename_all = "snake_case")]
enum StateFilter {
    #[default]
    Active,
    All,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct AlertsQuery {
    /// Only this unit's alerts.
    unit: Option<String>,
    /// `active` (default) or `all`.
    #[serde(default)]
    #[param(inline)]
    state: StateFilter,
}

/// Escalation alerts
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "listAlerts",
    tag = "alerts",
    params(AlertsQuery),
    responses(
        (status = 200, description = "The alerts", body = Vec<Alert>),
    )
)]
pub async fn list(service: Svc, req: HttpRequest) -> Result<web::Json<Vec<Alert>>, ApiError> {
    let q: AlertsQuery = query(&req)?;
    let all = q.state == StateFilter::All;
    Ok(web::Json(
        service.read(|d, now| d.alerts(q.unit.as_deref(), all, now))?,
    ))
}

/// The body may be left out: `by` is then the caller's token name.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct AckBody {
    /// Who acknowledges: 1 to 100 characters after trimming, not all blank,
    /// no control characters or bidirectional overrides, at least one visible.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"
    )]
    by: Option<String>,
}

/// The longest `by` an acknowledgement may carry.
const ACK_BY_MAX_CHARS: usize = 100;

/// Acknowledges an alert (stops the ladder after the current level)
#[utoipa::path(
    post,
    path = "/api/v1/alerts/{id}/ack",
    operation_id = "ackAlert",
    tag = "alerts",
    params(("id" = u64, Path, description = "Alert id")),
    request_body(content = ref("#/components/schemas/AckBody"), description = "May be left out"),
    responses(
        (status = 200, description = "The alert after the acknowledgement", body = Alert),
    )
)]
pub async fn ack(
    service: Svc,
    caller: Caller,
    path: web::Path<String>,
    body: OptionalJson<AckBody>,
) -> Result<web::Json<Alert>, ApiError> {
    let id: u64 = path
        .parse()
        .map_err(|_| ApiError::Malformed("an alert id is a positive integer".into()))?;
    let actor = caller.name();
    let by = match body.0.by.map(|b| b.trim().to_owned()) {
        Some(b)
            if blank(&b) || b.chars().count() > ACK_BY_MAX_CHARS || stray_control(&b, false) =>
        {
            return Err(ApiError::invalid(
                "by",
                format!(
                    "`by` must be 1 to {ACK_BY_MAX_CHARS} characters, with a visible one, without control or bidirectional override characters"
                ),
            ))
        }
        Some(b) => b,
        None => actor.to_owned(),
    };
    let alert = service
        .execute(|d, now| d.acknowledge(id, &by, actor, now))
        .await?;
    Ok(web::Json(alert))
}
