//! `GET /api/v1/openapi.json`: the OpenAPI document of this API, built from
//! the route table: each route's operation comes from its handler's
//! `#[utoipa::path]` annotation (and the types it reads and answers), and the
//! table adds what the route's declaration implies: the token requirement, and
//! the problems every route of its kind may answer. So it cannot drift from
//! the code.

use std::sync::OnceLock;

use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, Operation};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};

use super::errors::{Kind, Problem, PROBLEM_JSON};
use super::routes::{routes, Access, Route};
use super::{alerts, patients};

/// The answer of `/healthz` and `/readyz` when all is well.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Health {
    /// `ok` (`/healthz`) or `ready` (`/readyz`).
    pub status: &'static str,
}

/// The answer of `/readyz`: whether this instance serves, and its role.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: &'static str,
    /// `leader` or `follower` (with SQLite always `leader`).
    pub role: &'static str,
    /// The journal lease's term as this instance last saw it (0 with SQLite).
    pub term: u64,
}

/// The bearer-token scheme (docs/api.md, Access).
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
    components(
        // Bodies that may be left out, referenced by name from their operations.
        schemas(Problem, patients::LeaveBody, alerts::AckBody),
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "patients", description = "Admission and the status transitions of one patient"),
        (name = "units", description = "Units, their queues, calls, boards and event streams"),
        (name = "alerts", description = "Escalation alerts"),
        (name = "portal", description = "The patient's follow-up of their own case"),
        (name = "reports", description = "The standard ED measures of a period"),
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
    )
)]
pub async fn document() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok()
        .content_type("application/json")
        .body(json())
}

/// The document as JSON, built once from the route table.
pub fn json() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        let components = doc.components.get_or_insert_with(Default::default);
        for kind in Kind::DOCUMENTED {
            components
                .responses
                .insert(kind.response_name(), RefOr::T(problem_response(kind)));
        }
        for route in routes() {
            route.document(&mut doc);
        }
        require_every_field(&mut doc);
        doc.to_json().unwrap_or_default()
    })
}

/// Answers that always carry every field, `null` where it does not apply,
/// but those named beside them (left out when they do not apply). utoipa
/// leaves an `Option` out of `required`, which tells a client's generated
/// types that the key may be missing.
const COMPLETE_ANSWERS: [(&str, &[&str]); 13] = [
    ("PatientView", &[]),
    // `due_at` only while the alert is active and the patient waits.
    ("Alert", &["due_at"]),
    ("AnonymousEntry", &[]),
    ("Board", &[]),
    ("BoardCall", &[]),
    ("BoardQueue", &[]),
    ("FollowView", &[]),
    ("SessionView", &[]),
    ("Summary", &[]),
    ("ColourSummary", &[]),
    ("Day", &[]),
    ("Stat", &[]),
    ("LeftWithoutBeingSeen", &[]),
];

fn require_every_field(doc: &mut utoipa::openapi::OpenApi) {
    let schemas = &mut doc.components.get_or_insert_with(Default::default).schemas;
    for (name, optional) in COMPLETE_ANSWERS {
        match schemas.get_mut(name) {
            Some(RefOr::T(Schema::Object(o))) => {
                let always = o
                    .properties
                    .keys()
                    .filter(|k| !optional.contains(&k.as_str()));
                o.required = always.cloned().collect();
            }
            // A renamed type: the document would silently lose the rule.
            _ => panic!("no object schema {name} in the OpenAPI document"),
        }
    }
}

/// What `#[utoipa::path]` generates for a handler. (`SchemaReferences` and
/// `Tags` are utoipa's own plumbing, which its `OpenApi` derive uses the same way.)
pub(super) trait Documented:
    utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>
{
}

impl<P: utoipa::Path + utoipa::__dev::SchemaReferences + utoipa::__dev::Tags<'static>> Documented
    for P
{
}

/// Adds the operation of `P` (a handler's `#[utoipa::path]`) for `route`,
/// with the schemas it refers to and the problems its declaration implies.
pub(super) fn add_operation<P: Documented>(route: &Route, doc: &mut utoipa::openapi::OpenApi) {
    let mut op = P::operation();
    op.tags = Some(P::tags().into_iter().map(str::to_owned).collect());
    add_implied_problems(route, &mut op);
    let method = if route.method == actix_web::http::Method::POST {
        HttpMethod::Post
    } else {
        HttpMethod::Get
    };
    doc.paths.add_path_operation(&route.path, vec![method], op);
    let mut schemas = Vec::new();
    P::schemas(&mut schemas);
    doc.components
        .get_or_insert_with(Default::default)
        .schemas
        .extend(schemas);
}

/// The problems a route answers because of what it is: a token-checked route
/// 401 and 403; a JSON body 400, 408, 413, 415 and 422; a path value 404 (and 400
/// when it has a shape: a protocol number, an alert id); a change 503. Then
/// those its table entry lists.
fn add_implied_problems(route: &Route, op: &mut Operation) {
    let mut kinds = Vec::new();
    match route.access {
        Access::Public => op.security = Some(vec![SecurityRequirement::default()]),
        Access::Roles(_) => kinds.extend([Kind::Unauthorized, Kind::Forbidden]),
    }
    if op.request_body.is_some() {
        kinds.extend([
            Kind::Malformed,
            Kind::TooLarge,
            Kind::Timeout,
            Kind::UnsupportedMediaType,
            Kind::Invalid,
        ]);
    }
    if route.path.contains("{protocol}") || route.path.contains("{id}") {
        kinds.push(Kind::Malformed);
    }
    if route.path.contains('{') {
        kinds.push(Kind::NotFound);
    }
    if route.method == actix_web::http::Method::POST {
        kinds.push(Kind::Unavailable);
    }
    kinds.extend(route.problems);
    for kind in kinds {
        op.responses
            .responses
            .entry(kind.status().as_str().to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(kind.response_name())));
    }
}

/// A problem+json answer of one kind, for `#/components/responses`.
fn problem_response(kind: Kind) -> Response {
    let mut response = ResponseBuilder::new()
        .description(format!("`{}`: {}", kind.code(), kind.description()))
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        );
    let header = |schema: RefOr<Schema>, description: &str| {
        HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(description))
            .build()
    };
    if kind.retry_after().is_some() {
        let seconds = header(u32::schema(), "Seconds to wait");
        response = response.header("Retry-After", seconds);
    }
    if kind == Kind::Unauthorized {
        response = response.header("WWW-Authenticate", header(String::schema(), "`Bearer`"));
    }
    response.build()
}
