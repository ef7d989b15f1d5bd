//! The one place where failures become HTTP: RFC 9457 problem details with a
//! status and a `code` (docs/api.md, Errors). 5xx bodies say nothing internal.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::DomainError;
use crate::service::ServiceError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    /// `retry_after`: seconds until the limit's window turns.
    #[error("{detail}")]
    TooManyRequests { detail: String, retry_after: u32 },
    #[error("{0}")]
    NotFound(String),
    /// `allow` is the one method the resource answers (sent as `Allow`).
    #[error("{detail}")]
    MethodNotAllowed { detail: String, allow: &'static str },
    #[error("{0}")]
    InvalidTransition(String),
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body did not arrive within `server.request_body_timeout`; nothing was changed, send it again")]
    Timeout,
    #[error("the request body must be JSON sent as `Content-Type: application/json`")]
    UnsupportedMediaType,
    /// `field` names the one value to correct, when there is one.
    #[error("{detail}")]
    Invalid {
        detail: String,
        field: Option<String>,
    },
    #[error("the service cannot record changes right now; nothing was changed, try again shortly")]
    Unavailable,
    #[error(
        "the database did not confirm this change, which may or may not have been kept: \
             retry an admission with the same Idempotency-Key, and read the patient before \
             repeating anything else"
    )]
    OutcomeUnknown,
    #[error("this instance is not the leader; another instance serves the department (retry, or ask the load balancer)")]
    NotLeader,
}

/// The problem+json body (RFC 9457), sent as `application/problem+json`.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    /// For `invalid`: the request field (or header) to correct, when one is to blame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// What kind of problem an [`ApiError`] is: its status, `code`, title and
/// what the API document says of it, in one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Malformed,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    InvalidTransition,
    TooLarge,
    Timeout,
    UnsupportedMediaType,
    Invalid,
    RateLimited,
    Unavailable,
    NotLeader,
    OutcomeUnknown,
}

impl Kind {
    /// The kinds the API document describes (a 405 is never documented).
    pub const DOCUMENTED: [Kind; 13] = [
        Kind::Malformed,
        Kind::Unauthorized,
        Kind::Forbidden,
        Kind::NotFound,
        Kind::InvalidTransition,
        Kind::TooLarge,
        Kind::Timeout,
        Kind::UnsupportedMediaType,
        Kind::Invalid,
        Kind::RateLimited,
        Kind::Unavailable,
        Kind::NotLeader,
        Kind::OutcomeUnknown,
    ];

    /// Status, `code`, title, and the description of the API document.
    #[rustfmt::skip]
    fn row(self) -> (StatusCode, &'static str, &'static str, &'static str) {
        use Kind::*;
        match self {
            Malformed => (StatusCode::BAD_REQUEST, "malformed", "Malformed request",
                "the body is not valid JSON, a path value is malformed (a protocol that is not \
                 17 digits, an alert id that is not a number) or a query value has the wrong type"),
            Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required",
                "no bearer token, or one this service did not issue (auth mode `tokens` only)"),
            Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not allowed for this role",
                "the token's role may not do this"),
            NotFound => (StatusCode::NOT_FOUND, "not_found", "Not found",
                "unknown unit, protocol or alert"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed",
                "Method not allowed", "the resource answers another method (see `Allow`)"),
            InvalidTransition => (StatusCode::CONFLICT, "invalid_transition",
                "Action not allowed in the patient's status",
                "the status of the patient (or alert) does not allow this action"),
            TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", "Request body too large",
                "the body is over `server.max_body_bytes` (default 16 KiB)"),
            Timeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout", "Request body too slow",
                "the body did not arrive within `server.request_body_timeout` (default 10 s); \
                 nothing was changed"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                "Unsupported media type", "a body that is not sent as `application/json`"),
            Invalid => (StatusCode::UNPROCESSABLE_ENTITY, "invalid", "Invalid request",
                "well-formed but invalid (unknown colour or room, a name or text out of bounds, \
                 `arrived_at` too far in the future or past, a field of the wrong type, a missing \
                 required field, a value out of range)"),
            RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited", "Too many requests",
                "more requests this minute than allowed: admissions per token \
                 (`auth.admissions_per_minute`), follow-up lookups per address \
                 (`portal.lookups_per_minute`)"),
            Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable",
                "the journal cannot be written (or is being recovered); nothing was changed. \
                 With the PostgreSQL journal a 503 may carry `not_leader` or `outcome_unknown` \
                 instead (see those responses): the latter, alone of all, does not mean \
                 that nothing was changed"),
            NotLeader => (StatusCode::SERVICE_UNAVAILABLE, "not_leader", "Not the leader",
                "this instance is a follower (PostgreSQL journal): another instance holds the \
                 lease and serves; nothing was changed"),
            OutcomeUnknown => (StatusCode::SERVICE_UNAVAILABLE, "outcome_unknown",
                "Outcome unknown",
                "the database (PostgreSQL journal) never confirmed the write: the change may \
                 or may not have been kept. Not to be retried blindly: retry an admission with \
                 the same `Idempotency-Key`, read the patient before repeating anything else"),
        }
    }

    pub fn status(self) -> StatusCode {
        self.row().0
    }

    pub fn code(self) -> &'static str {
        self.row().1
    }

    pub fn title(self) -> &'static str {
        self.row().2
    }

    pub fn description(self) -> &'static str {
        self.row().3
    }

    /// The name of its response in the API document (`#/components/responses/…`).
    pub fn response_name(self) -> String {
        format!("{self:?}")
    }

    /// Seconds the client should wait before trying again, sent as `Retry-After`.
    pub fn retry_after(self) -> Option<u32> {
        match self {
            Kind::Unavailable | Kind::NotLeader => Some(1),
            Kind::RateLimited => Some(60),
            _ => None,
        }
    }
}

impl ApiError {
    pub fn kind(&self) -> Kind {
        match self {
            ApiError::Malformed(_) => Kind::Malformed,
            ApiError::Unauthorized(_) => Kind::Unauthorized,
            ApiError::Forbidden(_) => Kind::Forbidden,
            ApiError::TooManyRequests { .. } => Kind::RateLimited,
            ApiError::NotFound(_) => Kind::NotFound,
            ApiError::MethodNotAllowed { .. } => Kind::MethodNotAllowed,
            ApiError::InvalidTransition(_) => Kind::InvalidTransition,
            ApiError::TooLarge(_) => Kind::TooLarge,
            ApiError::Timeout => Kind::Timeout,
            ApiError::UnsupportedMediaType => Kind::UnsupportedMediaType,
            ApiError::Invalid { .. } => Kind::Invalid,
            ApiError::Unavailable => Kind::Unavailable,
            ApiError::OutcomeUnknown => Kind::OutcomeUnknown,
            ApiError::NotLeader => Kind::NotLeader,
        }
    }

    pub fn code(&self) -> &'static str {
        self.kind().code()
    }

    pub fn problem(&self) -> Problem {
        let kind = self.kind();
        Problem {
            kind: format!("urn:triagem:problem:{}", kind.code()),
            title: kind.title().to_owned(),
            status: kind.status().as_u16(),
            detail: self.to_string(),
            code: kind.code().to_owned(),
            field: match self {
                ApiError::Invalid { field, .. } => field.clone(),
                _ => None,
            },
        }
    }

    /// A 422 about one field.
    pub fn invalid(field: &str, detail: impl Into<String>) -> Self {
        ApiError::Invalid {
            detail: detail.into(),
            field: Some(field.to_owned()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.kind().status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.content_type(PROBLEM_JSON);
        let retry_after = match self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => self.kind().retry_after(),
        };
        if let Some(seconds) = retry_after {
            res.insert_header((actix_web::http::header::RETRY_AFTER, seconds));
        }
        match self {
            ApiError::Unauthorized(_) => {
                res.insert_header((actix_web::http::header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                res.insert_header((actix_web::http::header::ALLOW, *allow));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Domain(e) => e.into(),
            ServiceError::Unavailable => ApiError::Unavailable,
            ServiceError::NotLeader => ApiError::NotLeader,
            ServiceError::OutcomeUnknown => ApiError::OutcomeUnknown,
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        let detail = e.to_string();
        match e {
            DomainError::UnknownUnit(_)
            | DomainError::UnknownPatient(_)
            | DomainError::UnknownAlert(_) => ApiError::NotFound(detail),
            DomainError::UnknownColour(_) => ApiError::invalid("colour", detail),
            DomainError::UnknownRoom { .. } => ApiError::invalid("room", detail),
            DomainError::Invalid { field, .. } => ApiError::invalid(field, detail),
            DomainError::InvalidTransition { .. } => ApiError::InvalidTransition(detail),
            // Ten trillion admissions in a year: refuse rather than wrap.
            DomainError::Exhausted(_) => ApiError::Unavailable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    /// Every problem code the API answers has the pages' own words, in both
    /// languages: one left out showed "Erro do servidor (408)" at the desk.
    #[test]
    fn every_problem_code_has_a_message_on_the_pages() {
        let pages = include_str!("../web/common.js");
        for kind in Kind::DOCUMENTED {
            let key = format!("\"err.{}\":", kind.code());
            assert_eq!(
                pages.matches(&key).count(),
                2,
                "{key} in Portuguese and English"
            );
        }
    }
}
