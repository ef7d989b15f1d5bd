//! The one route table. Every route the service answers is declared here once,
//! with the roles that may call it; the actix configuration, the role check
//! (fail closed: the check is part of each route, not a layer one can forget)
//! and the OpenAPI document are all derived from it. The method and path of a
//! documented route are those of its `#[utoipa::path]` annotation.

use std::sync::OnceLock;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, HttpRequest, HttpResponse};
use utoipa::openapi::path::HttpMethod;

use super::errors::{ApiError, Kind};
use super::{alerts, events, openapi, pages, patients, portal, reports, status, units};
use crate::auth::{Authenticator, Denied, Role};

pub const API_BASE: &str = "/api/v1";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No token in any auth mode: health checks and the pages' HTML and assets.
    Public,
    /// A token of one of these roles (admin always may); anyone in open mode.
    Roles(&'static [Role]),
}

use Role::{Clinician, Display, Monitor, Reception, Triage};
/// What reception may do, and every role above it.
const DESK: &[Role] = &[Reception, Triage, Clinician];
const NURSE: &[Role] = &[Triage, Clinician];
const CLINICIAN: &[Role] = &[Clinician];
/// Board, events, units and protocol: the desks and the ward screens.
const SCREENS: &[Role] = &[Reception, Triage, Clinician, Display];
/// The queue: with names for the nurses, without them for the screens.
const QUEUE: &[Role] = &[Triage, Clinician, Display];
const ALERTS: &[Role] = &[Clinician, Monitor];
const MONITOR: &[Role] = &[Monitor];
/// Reports are for managers' dashboards: monitor (and admin).
const REPORTS: &[Role] = &[Monitor];
const ANY: &[Role] = Role::ALL;

/// Adds a documented route's operation (and the schemas it uses) to the document.
type Document = fn(&Route, &mut utoipa::openapi::OpenApi);

pub(crate) struct Route {
    pub method: Method,
    pub path: String,
    pub access: Access,
    /// The event stream takes its token from the query too: browsers'
    /// EventSource cannot set headers.
    pub token_in_query: bool,
    /// A GET also answers HEAD (RFC 9110 asks it of every server, and load
    /// balancers probe health with it), except the event stream, whose body
    /// never ends.
    head: bool,
    pub problems: &'static [Kind],
    /// Attaches the handler to an actix route.
    handler: fn(actix_web::Route) -> actix_web::Route,
    document: Option<Document>,
    /// The handler's name, to check that documentation and handler belong together.
    #[cfg(test)]
    names: (&'static str, &'static str),
}

impl Route {
    /// A route of the API document: method and path come from `P`, the
    /// `#[utoipa::path]` of the handler.
    fn documented<P: openapi::Documented, H>(
        access: Access,
        handler: fn(actix_web::Route) -> actix_web::Route,
        _handler_fn: H,
    ) -> Self {
        let method = match P::methods().as_slice() {
            [HttpMethod::Post] => Method::POST,
            _ => Method::GET,
        };
        Self {
            head: method == Method::GET,
            method,
            path: P::path(),
            access,
            token_in_query: false,
            problems: &[],
            handler,
            document: Some(openapi::add_operation::<P>),
            #[cfg(test)]
            names: (std::any::type_name::<P>(), std::any::type_name::<H>()),
        }
    }

    /// A page or asset: public, GET, not part of the API document.
    fn page(path: &str, handler: fn(actix_web::Route) -> actix_web::Route) -> Self {
        Self {
            head: true,
            method: Method::GET,
            path: path.to_owned(),
            access: Access::Public,
            token_in_query: false,
            problems: &[],
            handler,
            document: None,
            #[cfg(test)]
            names: ("", ""),
        }
    }

    /// Problems the route answers beyond those its kind implies (see `openapi`).
    fn problems(mut self, kinds: &'static [Kind]) -> Self {
        self.problems = kinds;
        self
    }

    fn token_in_query(mut self) -> Self {
        self.token_in_query = true;
        self
    }

    fn no_head(mut self) -> Self {
        self.head = false;
        self
    }

    pub fn document(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(add) = self.document {
            add(self, doc);
        }
    }
}

/// A documented route: access, handler, and the handler's `#[utoipa::path]`
/// type (checked by a test to be the handler's own).
macro_rules! documented {
    ($access:expr, $handler:path, $doc:ty) => {
        Route::documented::<$doc, _>($access, |r| r.to($handler), $handler)
    };
}

/// Every route, in the order of the API document.
pub(crate) fn routes() -> &'static [Route] {
    static ROUTES: OnceLock<Vec<Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        use Access::{Public, Roles};
        use Kind::*;
        vec![
            documented!(Roles(DESK), patients::admit, patients::__path_admit)
                .problems(&[RateLimited]),
            documented!(Roles(DESK), patients::search, patients::__path_search).problems(&[
                Malformed,
                NotFound,
                Invalid,
                Unavailable,
            ]),
            documented!(Roles(DESK), patients::get, patients::__path_get).problems(&[Unavailable]),
            documented!(Roles(DESK), patients::history, patients::__path_history)
                .problems(&[Unavailable]),
            documented!(Roles(NURSE), patients::triage, patients::__path_triage)
                .problems(&[InvalidTransition]),
            // Triage may call only the triage queue: the handler checks the queue.
            documented!(Roles(NURSE), units::call, units::__path_call),
            documented!(Roles(CLINICIAN), patients::start, patients::__path_start)
                .problems(&[InvalidTransition]),
            documented!(Roles(CLINICIAN), patients::finish, patients::__path_finish)
                .problems(&[InvalidTransition]),
            documented!(Roles(NURSE), patients::no_show, patients::__path_no_show)
                .problems(&[InvalidTransition]),
            documented!(Roles(DESK), patients::leave, patients::__path_leave)
                .problems(&[InvalidTransition]),
            documented!(Roles(NURSE), patients::recall, patients::__path_recall)
                .problems(&[InvalidTransition]),
            documented!(
                Roles(CLINICIAN),
                patients::transfer,
                patients::__path_transfer
            )
            .problems(&[InvalidTransition]),
            documented!(Roles(DESK), portal::qr, portal::__path_qr).problems(&[Unavailable]),
            documented!(Roles(DESK), portal::messages, portal::__path_messages)
                .problems(&[Unavailable]),
            // The patient's own case: the check code, not a token, guards it.
            documented!(Public, portal::track, portal::__path_track).problems(&[
                Malformed,
                NotFound,
                RateLimited,
                Unavailable,
            ]),
            documented!(Roles(QUEUE), units::queue, units::__path_queue).problems(&[
                Malformed,
                Invalid,
                Unavailable,
            ]),
            documented!(Roles(SCREENS), units::board, units::__path_board).problems(&[Unavailable]),
            documented!(Roles(SCREENS), events::stream, events::__path_stream)
                .problems(&[Unavailable])
                .token_in_query()
                .no_head(),
            documented!(Roles(ALERTS), alerts::list, alerts::__path_list).problems(&[
                Malformed,
                NotFound,
                Unavailable,
            ]),
            documented!(Roles(CLINICIAN), alerts::ack, alerts::__path_ack)
                .problems(&[InvalidTransition]),
            documented!(Roles(REPORTS), reports::summary, reports::__path_summary).problems(&[
                Malformed,
                NotFound,
                Invalid,
                Unavailable,
            ]),
            documented!(
                Roles(REPORTS),
                reports::summary_csv,
                reports::__path_summary_csv
            )
            .problems(&[Malformed, NotFound, Invalid, Unavailable]),
            documented!(Roles(REPORTS), reports::daily, reports::__path_daily).problems(&[
                Malformed,
                NotFound,
                Invalid,
                Unavailable,
            ]),
            documented!(Roles(SCREENS), units::list, units::__path_list),
            documented!(Roles(SCREENS), units::protocol, units::__path_protocol),
            documented!(Roles(ANY), status::session, status::__path_session),
            // It describes the API, not patients: any role may read it.
            documented!(Roles(ANY), openapi::document, openapi::__path_document),
            documented!(Roles(MONITOR), status::metrics, status::__path_metrics),
            documented!(Public, status::healthz, status::__path_healthz),
            documented!(Public, status::readyz, status::__path_readyz).problems(&[Unavailable]),
            // The pages call the API like any client; their own files need no token.
            Route::page("/display/{unit}", |r| r.to(pages::unit_page)),
            Route::page("/reception/{unit}", |r| r.to(pages::unit_page)),
            Route::page("/clinician/{unit}", |r| r.to(pages::unit_page)),
            // The page is public; the reports it asks for need a monitor's token.
            Route::page("/reports/{unit}", |r| r.to(pages::unit_page)),
            Route::page("/assets/{file}", |r| r.to(pages::asset)),
            // The patient's own page: its data call needs the check code, not a token.
            Route::page("/p", |r| r.to(pages::follow)),
            Route::page("/p/{protocol}", |r| r.to(pages::follow)),
        ]
    })
}

/// Registers every route: one resource each, its role check wrapped around
/// it, and a 405 problem with `Allow` for any other method.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    for route in routes() {
        let allow = if route.head {
            "GET, HEAD"
        } else {
            route.method.as_str()
        };
        let mut resource = web::resource(route.path.as_str())
            .route((route.handler)(web::route().method(route.method.clone())));
        if route.head {
            // actix sends the GET's head without its body.
            resource = resource.route((route.handler)(web::route().method(Method::HEAD)));
        }
        let resource = resource.default_service(web::to(move |req: HttpRequest| async move {
            Err::<HttpResponse, _>(ApiError::MethodNotAllowed {
                detail: format!(
                    "{} is not allowed on {}; use {allow}",
                    req.method(),
                    req.path()
                ),
                allow,
            })
        }));
        match route.access {
            Access::Public => cfg.service(resource),
            Access::Roles(_) => cfg.service(resource.wrap(from_fn(
                move |req: ServiceRequest, next: Next<BoxBody>| check(route, req, next),
            ))),
        };
    }
}

/// The role check of one route. Without an authenticator (a route mounted
/// outside [`super::Api`]) nobody gets in.
async fn check(
    route: &'static Route,
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Access::Roles(allowed) = route.access else {
        return next.call(req).await;
    };
    let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
        return Ok(req.error_response(ApiError::Unauthorized(
            "this route is not behind the service's authentication".into(),
        )));
    };
    let token = presented_token(&req, route.token_in_query);
    match auth.authorize(token.as_deref(), allowed) {
        Ok(caller) => {
            if caller.role().is_none() {
                let cors = req
                    .app_data::<super::Svc>()
                    .map_or(&[][..], |s| &s.config().server.cors_origins);
                if let Some(why) = open_mode_refusal(&req, cors) {
                    return Ok(req.error_response(ApiError::Forbidden(why)));
                }
            }
            req.extensions_mut().insert(caller);
            next.call(req).await
        }
        Err(Denied::Unauthenticated) => {
            let detail = if token.is_some() {
                "the bearer token is not one this service issued"
            } else {
                "send `Authorization: Bearer <token>`"
            };
            Ok(req.error_response(ApiError::Unauthorized(detail.into())))
        }
        Err(Denied::Forbidden(role)) => {
            let detail = format!("the {role} role may not {} {}", req.method(), route.path);
            Ok(req.error_response(ApiError::Forbidden(detail)))
        }
    }
}

/// Open mode has no tokens and listens on loopback only, which keeps other
/// machines out but not a web page that the desk's own browser opens: it
/// could post a form here (discharge a patient), or, through a name it
/// points at 127.0.0.1 (DNS rebinding), read every patient. So in open mode
/// a request must name a loopback address or a dotless name, and a change must not come from
/// another origin's page (`Sec-Fetch-Site`, else `Origin`; clients that are
/// not browsers send neither), unless that origin is in `server.cors_origins`.
fn open_mode_refusal(req: &ServiceRequest, cors: &[crate::config::Origin]) -> Option<String> {
    use actix_web::http::header::{HOST, ORIGIN};
    let headers = req.headers();
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    if let Some(host) = host {
        let name = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => host.rsplit_once(':').map_or(host, |(name, _)| name),
        };
        // A rebinding needs a name in a domain the attacker's DNS answers
        // for, so a dotted one; a machine's own alias (`triagem` in
        // /etc/hosts) is no such name, but another machine's address is.
        let local = crate::config::names_this_machine(name)
            || (!name.contains('.') && name.parse::<std::net::IpAddr>().is_err());
        if !local {
            return Some(format!(
                "in open mode the service answers only to a loopback address or a \
                 name without a dot (localhost, 127.0.0.1, [::1]), not {name:?}"
            ));
        }
    }
    if matches!(req.method().as_str(), "GET" | "HEAD" | "OPTIONS") {
        return None;
    }
    let origin = headers.get(ORIGIN).and_then(|o| o.to_str().ok());
    if origin.is_some_and(|o| cors.iter().any(|c| c.as_str() == o)) {
        return None;
    }
    let fetched_from = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    let foreign = match fetched_from {
        Some(site) => !matches!(site, "same-origin" | "none"),
        None => origin.is_some_and(|o| host.is_none_or(|h| o != format!("http://{h}"))),
    };
    foreign.then(|| {
        "in open mode a change must come from this service's own pages or a \
         client that is not a browser page of another origin"
            .to_owned()
    })
}

/// The bearer token, or where the route allows it the `access_token` query parameter.
fn presented_token(req: &ServiceRequest, in_query: bool) -> Option<String> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 9110, 11.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    header.or_else(|| {
        if !in_query {
            return None;
        }
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("access_token").cloned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_documented_route_is_served_by_the_handler_its_documentation_belongs_to() {
        for route in routes().iter().filter(|r| r.document.is_some()) {
            let (doc, handler) = route.names;
            assert_eq!(doc.replace("__path_", ""), handler, "{}", route.path);
        }
    }

    #[test]
    fn every_path_is_declared_once() {
        let mut paths: Vec<&str> = routes().iter().map(|r| r.path.as_str()).collect();
        paths.sort_unstable();
        let before = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), before);
    }

    #[test]
    fn only_health_checks_and_pages_are_public() {
        let public: Vec<&str> = routes()
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path.as_str())
            .collect();
        assert_eq!(
            public,
            [
                "/api/v1/track/{protocol}",
                "/healthz",
                "/readyz",
                "/display/{unit}",
                "/reception/{unit}",
                "/clinician/{unit}",
                "/reports/{unit}",
                "/assets/{file}",
                "/p",
                "/p/{protocol}"
            ]
        );
    }
}
