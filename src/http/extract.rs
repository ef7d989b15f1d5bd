//! Request parsing that maps every failure to the problem rows of API.md:
//! 413 for oversize bodies, 415 for non-JSON, 400 for broken JSON or paths,
//! 422 for JSON that parses but does not fit the request's shape.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;

use super::errors::ApiError;
use super::AppState;
use crate::domain::patient::Protocol;

/// A JSON body that must be present.
pub struct Json<T>(pub T);

/// A JSON body that may be left out (an empty body is `T::default()`).
pub struct OptionalJson<T>(pub T);

type BoxFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>>>>;

fn is_json(req: &HttpRequest) -> Option<bool> {
    let ct = req.headers().get(header::CONTENT_TYPE)?;
    let essence = ct
        .to_str()
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json")),
    )
}

fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<web::Data<AppState>>()
        .map(|s| s.config.server.max_body_bytes)
        .unwrap_or(16 * 1024)
}

async fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge(limit));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::Invalid(format!("the body does not fit this request: {e}")),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::Malformed(format!("the body is not valid JSON: {e}"))
            }
        }
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = BoxFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            if is_json(&req) != Some(true) {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = read_body(&req, &mut payload, body_limit(&req)).await?;
            if body.is_empty() {
                return Err(ApiError::Malformed(
                    "the body is empty; a JSON object is required".into(),
                ));
            }
            parse(&body).map(Json)
        })
    }
}

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = BoxFuture<Self>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let mut payload = payload.take();
        Box::pin(async move {
            let body = read_body(&req, &mut payload, body_limit(&req)).await?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if is_json(&req) != Some(true) {
                return Err(ApiError::UnsupportedMediaType);
            }
            parse(&body).map(OptionalJson)
        })
    }
}

/// Query strings: a value of the wrong type is malformed.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::Malformed(format!("bad query string: {e}")))
}

/// A protocol number from the path. Not 17 digits: 400 malformed. 17 digits
/// that no protocol number can be (year before 1000, sequence 0): 404, as
/// for any number that was never issued.
pub fn protocol(s: &str) -> Result<Protocol, ApiError> {
    Protocol::parse(s).map_err(|e| {
        if s.len() == 17 && s.bytes().all(|b| b.is_ascii_digit()) {
            ApiError::NotFound(format!("no patient has protocol number {s}"))
        } else {
            ApiError::Malformed(format!("in the path: {e}"))
        }
    })
}
