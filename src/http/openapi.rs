//! `GET /api/v1/openapi.json`: the OpenAPI document of this API, generated
//! at compile time from the handlers' `#[utoipa::path]` annotations and the
//! types they read and answer, so it cannot drift from the code. The API
//! tests check that every route of the table in [`super::configure`] is in it.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse, ToSchema};

use super::errors::Problem;
use super::{alerts, events, patients, units};

/// 400 `malformed`.
#[derive(ToResponse)]
#[response(
    description = "`malformed`: the body is not valid JSON, a path value is malformed (a protocol \
                   that is not 17 digits, an alert id that is not a number) or a query value has \
                   the wrong type",
    content_type = "application/problem+json"
)]
pub struct Malformed(pub Problem);

/// 401 `unauthorized`.
#[derive(ToResponse)]
#[response(
    description = "`unauthorized`: no bearer token, or one this service did not issue \
                   (auth mode `tokens` only)",
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer`"))
)]
pub struct Unauthorized(pub Problem);

/// 403 `forbidden`.
#[derive(ToResponse)]
#[response(
    description = "`forbidden`: the token's role may not do this (API.md section 5)",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 404 `not_found`.
#[derive(ToResponse)]
#[response(
    description = "`not_found`: unknown unit, protocol or alert",
    content_type = "application/problem+json"
)]
pub struct NotFound(pub Problem);

/// 409 `invalid_transition`.
#[derive(ToResponse)]
#[response(
    description = "`invalid_transition`: the status of the patient (or alert) does not allow this \
                   action",
    content_type = "application/problem+json"
)]
pub struct InvalidTransition(pub Problem);

/// 413 `too_large`.
#[derive(ToResponse)]
#[response(
    description = "`too_large`: the body is over `server.max_body_bytes` (default 16 KiB)",
    content_type = "application/problem+json"
)]
pub struct TooLarge(pub Problem);

/// 415 `unsupported_media_type`.
#[derive(ToResponse)]
#[response(
    description = "`unsupported_media_type`: a body that is not sent as `application/json`",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(pub Problem);

/// 422 `invalid`.
#[derive(ToResponse)]
#[response(
    description = "`invalid`: well-formed but invalid (unknown colour or room, a name or text out \
                   of bounds, `arrived_at` too far in the future or past, a field of the wrong \
                   type, a missing required field, a value out of range)",
    content_type = "application/problem+json"
)]
pub struct Invalid(pub Problem);

/// 429 `rate_limited`.
#[derive(ToResponse)]
#[response(
    description = "`rate_limited`: more admissions per minute than `auth.admissions_per_minute` \
                   allows this caller",
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait"))
)]
pub struct RateLimited(pub Problem);

/// 503 `unavailable`.
#[derive(ToResponse)]
#[response(
    description = "`unavailable`: the journal cannot be written (or is being recovered); nothing \
                   was changed",
    content_type = "application/problem+json",
    headers(("Retry-After" = u32, description = "Seconds to wait"))
)]
pub struct Unavailable(pub Problem);

/// The answer of `/healthz` and `/readyz` when all is well.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    pub status: &'static str,
}

/// The bearer-token scheme of API.md section 5.
struct BearerAuth;

/// The name of the security scheme in the document.
pub const BEARER: &str = "bearer";

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from `triagem token --role ROLE` (auth mode `tokens`); in \
                         auth mode `open` (loopback only) no token is needed",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Triagem",
        description = "Emergency-department triage queues: admission, triage, calls, \
                       escalation alerts and ward display boards. Times are RFC 3339 UTC, \
                       durations integer seconds, errors RFC 9457 problem details.",
    ),
    paths(
        patients::admit,
        patients::get,
        patients::history,
        patients::triage,
        units::call,
        patients::start,
        patients::finish,
        patients::no_show,
        patients::leave,
        patients::recall,
        patients::transfer,
        units::queue,
        units::board,
        events::stream,
        alerts::list,
        alerts::ack,
        units::list,
        units::protocol,
        document,
        super::metrics,
        super::healthz,
        super::readyz,
    ),
    components(
        // Bodies that may be left out, referenced by name from their operations.
        schemas(Problem, patients::LeaveBody, alerts::AckBody),
        responses(
            Malformed,
            Unauthorized,
            Forbidden,
            NotFound,
            InvalidTransition,
            TooLarge,
            UnsupportedMediaType,
            Invalid,
            RateLimited,
            Unavailable
        )
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "patients", description = "Admission and the status transitions of one patient"),
        (name = "units", description = "Units, their queues, calls, boards and event streams"),
        (name = "alerts", description = "Escalation alerts"),
        (name = "service", description = "The protocol, this document, metrics and health"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI 3 document of this API.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "service",
    responses(
        (status = 200, description = "The OpenAPI document", body = Object),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
    )
)]
pub async fn document() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

/// The document as JSON, built once.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| ApiDoc::openapi().to_json().unwrap_or_default())
}
