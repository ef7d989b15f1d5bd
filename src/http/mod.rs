//! The HTTP layer: one route table, thin handlers (parse, call the domain,
//! map errors), and problem+json for everything that goes wrong.

mod alerts;
mod errors;
mod events;
mod extract;
pub mod openapi;
mod patients;
mod units;

use std::time::Instant;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::HttpMessage;

use crate::auth::{Caller, Denied};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpRequest, HttpResponse};

pub use crate::app::AppState;
pub use errors::{ApiError, Problem, PROBLEM_JSON};

pub const API_BASE: &str = "/api/v1";
pub use crate::auth::ANONYMOUS;

/// Who is making the request (set by [`authorize`]).
pub(crate) fn caller(req: &HttpRequest) -> Caller {
    req.extensions()
        .get::<Caller>()
        .cloned()
        .unwrap_or_else(Caller::anonymous)
}

/// The name recorded as the actor of a change.
pub(crate) fn actor(req: &HttpRequest) -> String {
    caller(req).name
}

/// Routes anyone may call, token or not.
const OPEN_ROUTES: [&str; 2] = ["/healthz", "/readyz"];

/// A resource answering one method; any other gets a 405 problem with `Allow`.
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move |req: HttpRequest| async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
            detail: format!(
                "{} is not allowed on {}; use {allow}",
                req.method(),
                req.path()
            ),
            allow,
        })
    }))
}

/// A resource answering GET with `handler`.
pub(crate) fn get<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource(path, "GET").route(web::get().to(handler))
}

/// A resource answering POST with `handler`.
fn post<F, Args>(path: &str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    resource(path, "POST").route(web::post().to(handler))
}

/// Cross-origin access for the configured origins only (`server.cors_origins`).
/// A request from any other origin is still served, without CORS headers, so
/// the browser withholds the answer from that page; blocking it here would
/// also refuse the service's own pages, whose POSTs carry `Origin`.
pub(crate) fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin)
        })
        .allowed_methods(["GET", "POST"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::HeaderName::from_static("idempotency-key"),
            header::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([header::RETRY_AFTER, header::LOCATION])
        .block_on_origin_mismatch(false)
        .max_age(3600)
}

/// The one route that also takes its token from the query string.
const EVENTS_ROUTE: &str = "/api/v1/units/{unit}/events";

/// The bearer token, or for the event stream (browsers' EventSource cannot
/// set headers) the `access_token` query parameter. `route` is the matched
/// pattern, so a path that merely ends in `/events` (a protocol of
/// `/patients/{protocol}`) does not take a token from its URL.
fn presented_token(req: &ServiceRequest, route: &str) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110, 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    header.or_else(|| {
        if route != EVENTS_ROUTE {
            return None;
        }
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("access_token").cloned())
    })
}

/// The one role check, wrapped around the whole app: route pattern and
/// method against [`crate::auth::permitted`]. Unknown paths fall through to 404.
pub(crate) async fn authorize(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Ok(req
            .error_response(ApiError::Unavailable)
            .map_into_right_body());
    };
    let Some(route) = req.match_pattern() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if OPEN_ROUTES.contains(&route.as_str()) || crate::web::OPEN_ROUTES.contains(&route.as_str()) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let token = presented_token(&req, &route);
    match state
        .auth
        .authorize(token.as_deref(), req.method().as_str(), &route)
    {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(Denied::Unauthenticated) => {
            let err = if token.is_some() {
                ApiError::Unauthorized("the bearer token is not one this service issued".into())
            } else {
                ApiError::Unauthorized("send `Authorization: Bearer <token>`".into())
            };
            Ok(req.error_response(err).map_into_right_body())
        }
        Err(Denied::Forbidden(role)) => {
            let detail = format!("the {role} role may not {} {route}", req.method());
            Ok(req
                .error_response(ApiError::Forbidden(detail))
                .map_into_right_body())
        }
    }
}

/// The route table, shared by the binary and the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(get("/healthz", healthz))
        .service(get("/metrics", metrics))
        .service(get("/readyz", readyz))
        .service(
            web::scope(API_BASE)
                .service(get("/units", units::list))
                .service(get("/protocol", units::protocol))
                .service(get("/openapi.json", openapi::document))
                .service(post("/units/{unit}/patients", patients::admit))
                .service(post("/units/{unit}/call", units::call))
                .service(get("/units/{unit}/queue", units::queue))
                .service(get("/units/{unit}/board", units::board))
                .service(get("/units/{unit}/events", events::stream))
                .service(get("/alerts", alerts::list))
                .service(post("/alerts/{id}/ack", alerts::ack))
                .service(get("/patients/{protocol}", patients::get))
                .service(get("/patients/{protocol}/history", patients::history))
                .service(post("/patients/{protocol}/triage", patients::triage))
                .service(post("/patients/{protocol}/start", patients::start))
                .service(post("/patients/{protocol}/finish", patients::finish))
                .service(post("/patients/{protocol}/no-show", patients::no_show))
                .service(post("/patients/{protocol}/leave", patients::leave))
                .service(post("/patients/{protocol}/recall", patients::recall))
                .service(post("/patients/{protocol}/transfer", patients::transfer)),
        )
        .configure(crate::web::configure)
        .default_service(web::to(not_found));
}

/// One log line and the HTTP metrics per request, labelled by route pattern
/// (never the raw path, which may hold a protocol number).
pub(crate) async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let method = req.method().clone();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(state) = state {
        state.metrics.http(method.as_str(), &route, status, seconds);
    }
    tracing::info!(method = %method, route = %route, status, ms = seconds * 1000.0, "request");
    Ok(res)
}

/// Prometheus metrics (API.md section 6)
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "service",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String,
            content_type = "text/plain; version=0.0.4; charset=utf-8"),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
    )
)]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.render_metrics())
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no such resource: {}",
        req.path()
    )))
}

/// The process is alive (no token needed)
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "service",
    security(()),
    responses((status = 200, description = "Alive", body = openapi::Health)),
)]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(openapi::Health { status: "ok" })
}

/// The journal is writable and recovered (no token needed)
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Ready", body = openapi::Health),
        (status = 503, response = openapi::Unavailable),
    ),
)]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.is_ready() {
        HttpResponse::Ok().json(openapi::Health { status: "ready" })
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(PROBLEM_JSON)
            .json(ApiError::Unavailable.problem())
    }
}
