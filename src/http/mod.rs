//! The HTTP layer: one route table ([`routes`]) from which the actix
//! configuration, the role check and the OpenAPI document derive; thin
//! handlers (parse, call the service, map errors); problem+json for
//! everything that goes wrong ([`errors`]).

mod alerts;
mod errors;
mod events;
mod extract;
mod openapi;
mod pages;
mod patients;
mod portal;
mod reports;
mod routes;
mod status;
mod units;

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};

use crate::auth::{Authenticator, Caller};
use crate::service::Service;
pub use errors::{ApiError, PROBLEM_JSON};
pub use routes::API_BASE;

/// What the routes need, registered by [`Api::configure`] wherever the API is mounted.
#[derive(Clone)]
pub struct Api {
    service: Service,
    auth: web::Data<Authenticator>,
    admissions: web::Data<RateLimiter>,
    lookups: web::Data<portal::Lookups>,
}

impl Api {
    pub fn new(service: Service) -> Self {
        let config = service.config();
        Self {
            auth: web::Data::new(Authenticator::new(config.auth.mode, &config.auth.tokens)),
            admissions: web::Data::new(RateLimiter::new(config.auth.admissions_per_minute)),
            lookups: web::Data::new(portal::Lookups(RateLimiter::new(
                config.portal.lookups_per_minute,
            ))),
            service,
        }
    }

    /// The route table, its dependencies and the 404 for everything else.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let limit = self.service.config().server.max_body_bytes;
        cfg.app_data(web::ThinData(self.service.clone()))
            .app_data(self.auth.clone())
            .app_data(self.admissions.clone())
            .app_data(self.lookups.clone())
            .app_data(extract::payload_config(limit));
        routes::configure(cfg);
        cfg.default_service(web::to(|req: HttpRequest| async move {
            Err::<actix_web::HttpResponse, _>(ApiError::NotFound(format!(
                "no such resource: {}",
                req.path()
            )))
        }));
    }
}

/// The service, as handlers extract it.
type Svc = web::ThinData<Service>;

/// The checked caller, put on the request by the route's role check. A
/// handler that takes one refuses to run without it (fail closed).
impl FromRequest for Caller {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(req.extensions().get::<Caller>().cloned().ok_or_else(|| {
            ApiError::Unauthorized("the request did not pass the role check".into())
        }))
    }
}

/// Requests of one key (a token's name) per clock minute. A fixed window on
/// the service's clock, as documented ("per clock minute"), so tests move it
/// by hand; windows of past minutes are dropped as the minute turns.
pub struct RateLimiter {
    per_minute: u32,
    windows: parking_lot::Mutex<(i64, std::collections::HashMap<String, u32>)>,
}

impl RateLimiter {
    /// `per_minute` 0 means no limit.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            windows: parking_lot::Mutex::new((i64::MIN, std::collections::HashMap::new())),
        }
    }

    /// Counts one request of `key` at `now`; over the limit, the error says
    /// how many seconds until the next minute starts.
    pub fn allow(&self, key: &str, now: chrono::DateTime<chrono::Utc>) -> Result<(), ApiError> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let minute = now.timestamp().div_euclid(60);
        let mut guard = self.windows.lock();
        let (current, counts) = &mut *guard;
        if *current != minute {
            *current = minute;
            counts.clear();
        }
        let count = counts.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        if *count <= self.per_minute {
            return Ok(());
        }
        Err(ApiError::TooManyRequests {
            detail: format!("at most {} a minute", self.per_minute),
            retry_after: (60 - now.timestamp().rem_euclid(60)) as u32,
        })
    }
}

/// Cross-origin access for the configured origins only (`server.cors_origins`).
/// A request from any other origin is still served, without CORS headers, so
/// the browser withholds the answer from that page; blocking it here would
/// also refuse the service's own pages, whose POSTs carry `Origin`.
pub fn cors(origins: &[crate::config::Origin]) -> actix_cors::Cors {
    use actix_web::http::header;
    origins
        .iter()
        .fold(actix_cors::Cors::default(), |cors, origin| {
            cors.allowed_origin(origin.as_str())
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

/// One log line and the HTTP metrics per request, labelled by route pattern
/// (never the raw path, which may hold a protocol number); the body's deadline
/// (`server.request_body_timeout`).
pub async fn observe<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let service = req.app_data::<Svc>().map(|s| s.0.clone());
    if let Some(service) = &service {
        let payload = req.take_payload();
        req.set_payload(extract::body_deadline(
            payload,
            service.config().server.request_body_timeout,
        ));
    }
    let method = req.method().clone();
    // A follower serves no API call (its memory is stale): the load balancer
    // or the page tries again, and reaches the leader.
    let res = if service.as_ref().is_some_and(Service::is_follower)
        && req.path().starts_with(API_BASE)
        && req.method() != actix_web::http::Method::OPTIONS
    {
        req.error_response(ApiError::NotLeader)
            .map_into_right_body()
    } else {
        next.call(req).await?.map_into_left_body()
    };
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    if let Some(service) = service {
        service
            .metrics()
            .http(method_label(&method), &route, status, seconds);
    }
    // Every request is counted in the metrics; the log line per request is for
    // debugging (`RUST_LOG=info,triagem::http=debug`): at info it cost ~5 % of an
    // admission and ~230 bytes of log each. Server errors are always logged.
    if status >= 500 && status != 503 {
        tracing::warn!(method = %method, route = %route, status, ms = seconds * 1000.0, "request failed");
    } else {
        tracing::debug!(method = %method, route = %route, status, ms = seconds * 1000.0, "request");
    }
    Ok(res)
}

/// The `method` label: a standard method's name, or `other` for any name a
/// client made up, which would otherwise put its own text (a name, a protocol
/// number) into /metrics and a new series there per request.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|name| *name == method.as_str())
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::{test, App};

    use super::*;
    use crate::auth::{AuthMode, Role, Token, TokenHash};
    use crate::config::Config;
    use routes::{routes, Access};

    fn service(mode: AuthMode) -> Service {
        let mut config = Config::from_toml(include_str!("../../config/default.toml")).unwrap();
        config.auth.mode = mode;
        config.auth.tokens = vec![Token {
            name: "painel".into(),
            role: Role::Display,
            sha256: TokenHash::of("secret"),
        }];
        Service::new(Arc::new(config), Arc::new(crate::clock::SystemClock))
    }

    /// The API mounted with nothing around it still checks every token route:
    /// the check belongs to the routes, not to a layer an `App` may leave out.
    #[actix_web::test]
    async fn the_api_mounted_alone_refuses_every_token_route_without_a_token() {
        let api = Api::new(service(AuthMode::Tokens));
        let app = test::init_service(App::new().configure(|c| api.configure(c))).await;
        for route in routes() {
            let path = route
                .path
                .replace("{unit}", "pa")
                .replace("{protocol}", "20260000000000001")
                .replace("{id}", "1")
                .replace("{file}", "app.css");
            let req = test::TestRequest::default()
                .method(route.method.clone())
                .uri(&path)
                .to_request();
            let status = test::call_service(&app, req).await.status();
            match route.access {
                Access::Roles(_) => assert_eq!(status, 401, "{} {path}", route.method),
                Access::Public => assert_ne!(status, 401, "{} {path}", route.method),
            }
        }
    }

    #[actix_web::test]
    async fn the_session_names_the_tokens_holder_and_role() {
        let api = Api::new(service(AuthMode::Tokens));
        let app = test::init_service(App::new().configure(|c| api.configure(c))).await;
        let req = test::TestRequest::get()
            .uri("/api/v1/session")
            .insert_header(("Authorization", "Bearer secret"))
            .to_request();
        let body: serde_json::Value = test::call_and_read_body_json(&app, req).await;
        assert_eq!(
            body,
            serde_json::json!({"name": "painel", "role": "display"})
        );
    }

    #[actix_web::test]
    async fn the_route_table_without_its_authenticator_lets_nobody_in_even_in_open_mode() {
        let svc = service(AuthMode::Open);
        let app = test::init_service(
            App::new()
                .app_data(web::ThinData(svc))
                .configure(routes::configure),
        )
        .await;
        let req = test::TestRequest::get().uri("/api/v1/units").to_request();
        assert_eq!(test::call_service(&app, req).await.status(), 401);
    }

    #[actix_web::test]
    async fn a_handler_that_takes_a_caller_does_not_run_without_the_role_check() {
        let app = test::init_service(App::new().route(
            "/elsewhere",
            web::get().to(|caller: Caller| async move { caller.name().to_owned() }),
        ))
        .await;
        let req = test::TestRequest::get().uri("/elsewhere").to_request();
        assert_eq!(test::call_service(&app, req).await.status(), 401);
    }
}
