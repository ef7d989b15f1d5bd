//! `/metrics`, `/healthz` and `/readyz`.

use actix_web::HttpResponse;

use super::openapi::Health;
use super::{ApiError, Svc, PROBLEM_JSON};

/// Prometheus metrics (see docs/api.md, Metrics)
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
    )
)]
pub async fn metrics(service: Svc) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(service.render_metrics())
}

/// The process is alive (no token needed)
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "service",
    responses((status = 200, description = "Alive", body = Health)),
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The journal is writable and recovered (no token needed)
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "service",
    responses(
        (status = 200, description = "Ready", body = Health),
    ),
)]
pub async fn readyz(service: Svc) -> HttpResponse {
    if service.is_ready() {
        HttpResponse::Ok().json(Health { status: "ready" })
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(PROBLEM_JSON)
            .json(ApiError::Unavailable.problem())
    }
}

/// Who the caller is, for the pages to fit what they offer to the role.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The token's name (`anonymous` in open mode).
    name: String,
    /// The token's role; null in open mode, where everything is allowed.
    #[schema(value_type = Option<String>, example = "reception")]
    role: Option<crate::auth::Role>,
}

/// The caller: the token's name and role
#[utoipa::path(
    get,
    path = "/api/v1/session",
    operation_id = "getSession",
    tag = "service",
    responses((status = 200, description = "The caller", body = SessionView)),
)]
pub async fn session(caller: crate::auth::Caller) -> actix_web::web::Json<SessionView> {
    actix_web::web::Json(SessionView {
        name: caller.name().to_owned(),
        role: caller.role(),
    })
}
