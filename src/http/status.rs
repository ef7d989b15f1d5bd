//! `/metrics`, `/healthz` and `/readyz`.

use actix_web::HttpResponse;

use super::openapi::{Health, Readiness};
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

/// This instance leads, its journal is writable and memory recovered (no
/// token needed). A load balancer sends traffic where this answers 200.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "service",
    responses(
        (status = 200, description = "Ready: the leader, recovered", body = Readiness),
    ),
)]
pub async fn readyz(service: Svc) -> HttpResponse {
    let role = service.role();
    let follower = service.is_follower();
    let name = if follower { "follower" } else { "leader" };
    if service.is_ready() && !follower {
        return HttpResponse::Ok().json(Readiness {
            status: "ready",
            role: name,
            term: role.term,
        });
    }
    let error = if follower {
        ApiError::NotLeader
    } else {
        ApiError::Unavailable
    };
    // The problem, with the role and term as extension members (RFC 9457).
    let mut body = serde_json::to_value(error.problem()).unwrap_or_default();
    if let Some(fields) = body.as_object_mut() {
        fields.insert("role".into(), name.into());
        fields.insert("term".into(), role.term.into());
    }
    HttpResponse::ServiceUnavailable()
        .content_type(PROBLEM_JSON)
        .insert_header((actix_web::http::header::RETRY_AFTER, 1))
        .json(body)
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
