//! Request parsing that maps every failure to a problem: 413 for oversize
//! bodies, 415 for non-JSON, 400 for broken JSON, paths or query strings,
//! 422 for JSON that parses but does not fit the request's shape (naming the
//! field where it can).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::mime;
use actix_web::HttpMessage;
use actix_web::{web, FromRequest, HttpRequest};
use chrono::NaiveDate;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::Required;
use utoipa::IntoParams;

use super::errors::ApiError;
use crate::domain::patient::Protocol;
use crate::domain::UnitId;

/// The body limit for bodies read as bytes ([`Json`], [`OptionalJson`]).
pub(super) fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}

impl From<PayloadError> for ApiError {
    fn from(e: PayloadError) -> Self {
        match e {
            e if timed_out(&e) => ApiError::Timeout,
            e => ApiError::Malformed(format!("cannot read the body: {e}")),
        }
    }
}

/// Whether reading the body was cut off by [`body_deadline`].
fn timed_out(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The request's body, cut off with a timeout error once `timeout` has passed
/// (from when the head was read): actix bounds the time to send a head, not a
/// body, so a client trickling a body could otherwise hold a worker's
/// connection for ever.
pub(super) fn body_deadline(payload: Payload, timeout: Duration) -> Payload {
    if matches!(payload, Payload::None) {
        return payload;
    }
    let deadline = Deadline {
        inner: payload,
        sleep: Box::pin(tokio::time::sleep(timeout)),
    };
    Payload::Stream {
        payload: Box::pin(deadline),
    }
}

struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl futures_util::Stream for Deadline {
    type Item = Result<web::Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Poll::Ready(item) = Pin::new(&mut self.inner).poll_next(cx) {
            return Poll::Ready(item);
        }
        match self.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body timed out",
            ))))),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn malformed(e: &serde_json::Error) -> ApiError {
    ApiError::Malformed(format!("the body is not valid JSON: {e}"))
}

/// A request body read as `T`. Unlike a bare `serde_json::from_slice`, the
/// body must be an object: serde fills a struct from an array too, field by
/// field in order, so `["cancelled"]` would pass for `{"reason": "cancelled"}`.
/// And whether the JSON itself is broken (400) is decided by the JSON alone:
/// serde_json reports a `null` or a number where an enum is expected as a
/// syntax error, though the body parses.
fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.trim_ascii_start().first() != Some(&b'{') {
        return Err(match serde_json::from_slice::<IgnoredAny>(body) {
            Ok(_) => ApiError::Invalid {
                detail: "the body must be a JSON object".into(),
                field: None,
            },
            Err(e) => malformed(&e),
        });
    }
    serde_json::from_slice(body).map_err(|e| misfit::<T>(body, &e))
}

/// Why `T` refused a body: broken JSON is 400; JSON that parses is 422,
/// naming the field. The body is read a second time to find the field's path,
/// only on this path of refusal, so that an admission that fits pays nothing.
fn misfit<T: DeserializeOwned>(body: &[u8], e: &serde_json::Error) -> ApiError {
    if let Err(broken) = serde_json::from_slice::<IgnoredAny>(body) {
        return malformed(&broken);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let field = match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(refused) => field_of(&refused.path().to_string(), &refused.inner().to_string()),
        Ok(_) => None,
    };
    ApiError::Invalid {
        detail: format!("the body does not fit this request: {e}"),
        field,
    }
}

/// The field a refusal is about: the path to the value refused (`colour`,
/// `contact.phone`, `colours[1]`), or for a missing field, that field under
/// the path (`.` is the whole body).
fn field_of(path: &str, message: &str) -> Option<String> {
    let missing = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(name, _)| name);
    match (path, missing) {
        (".", None) => None,
        (".", Some(name)) => Some(name.to_owned()),
        (path, Some(name)) => Some(format!("{path}.{name}")),
        (path, None) => Some(path.to_owned()),
    }
}

/// For an optional field with a default: `null` is the default, as when the
/// field is left out (`#[serde(default, deserialize_with = "null_is_default")]`).
pub(super) fn null_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// For a field that holds an object: only an object (or `null`, or nothing),
/// never an array filling its fields in order (see [`decode`]).
pub(super) fn object_or_null<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Object<T>(T);
    impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Fields<T>(std::marker::PhantomData<T>);
            impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
                type Value = T;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                    T::deserialize(MapAccessDeserializer::new(map))
                }
            }
            d.deserialize_map(Fields(std::marker::PhantomData))
                .map(Object)
        }
    }
    Ok(Option::<Object<T>>::deserialize(d)?.map(|Object(t)| t))
}

/// A date written `YYYY-MM-DD` and nothing else: chrono also reads `+2026-12-01`,
/// `2026-1-1` and negative years.
pub(super) fn iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

/// For an optional date field of a body: `YYYY-MM-DD` ([`iso_date`]) or `null`.
pub(super) fn iso_date_or_null<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<NaiveDate>, D::Error> {
    Option::<std::borrow::Cow<'de, str>>::deserialize(d)?
        .map(|s| {
            iso_date(&s).ok_or_else(|| {
                serde::de::Error::custom(format!("`{s}` is not a date written YYYY-MM-DD"))
            })
        })
        .transpose()
}

/// The error of reading a body as bytes.
fn read_error(req: &HttpRequest, e: &actix_web::Error) -> ApiError {
    match e.as_error::<PayloadError>() {
        Some(PayloadError::Overflow) => ApiError::TooLarge(body_limit(req)),
        Some(p) if timed_out(p) => ApiError::Timeout,
        _ => ApiError::Malformed(format!("cannot read the body: {e}")),
    }
}

fn is_json(req: &HttpRequest) -> bool {
    req.mime_type().ok().flatten().is_some_and(|m| {
        m.type_() == mime::APPLICATION
            && (m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON))
    })
}

/// A JSON request body (see [`decode`]).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let json = is_json(&req);
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            if !json {
                return Err(ApiError::UnsupportedMediaType);
            }
            let body = bytes.await.map_err(|e| read_error(&req, &e))?;
            decode(&body).map(Json)
        })
    }
}

/// A JSON body that may be left out: an empty body is `T::default()`.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default + 'static> FromRequest for OptionalJson<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = bytes.await.map_err(|e| read_error(&req, &e))?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            if !is_json(&req) {
                return Err(ApiError::UnsupportedMediaType);
            }
            decode(&body).map(OptionalJson)
        })
    }
}

fn body_limit(req: &HttpRequest) -> usize {
    req.app_data::<super::Svc>()
        .map_or(0, |s| s.config().server.max_body_bytes)
}

/// Query strings: a value of the wrong type is malformed.
pub fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::Malformed(format!("bad query string: {e}")))
}

/// The `{protocol}` of the path. Not 17 digits: 400 malformed. 17 digits that
/// no protocol number can be (year before 1000, sequence 0): 404, as for any
/// number that was never issued.
pub struct ProtocolPath(pub Protocol);

impl FromRequest for ProtocolPath {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let s = req.match_info().get("protocol").unwrap_or_default();
        std::future::ready(Protocol::parse(s).map(ProtocolPath).map_err(|e| {
            if s.len() == 17 && s.bytes().all(|b| b.is_ascii_digit()) {
                ApiError::NotFound(format!("no patient has protocol number {s}"))
            } else {
                ApiError::Malformed(format!("in the path: {e}"))
            }
        }))
    }
}

/// The `{unit}` of the path. One that cannot be an id is as unknown as one
/// that is not configured: 404 (the domain says the latter).
pub struct UnitPath(pub UnitId);

impl FromRequest for UnitPath {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let unit = req.match_info().get("unit").unwrap_or_default();
        std::future::ready(
            UnitId::parse(unit)
                .map(UnitPath)
                .map_err(|_| ApiError::NotFound(format!("unit `{unit}` does not exist"))),
        )
    }
}

/// A required path parameter for the API document.
fn path_parameter(
    name: &str,
    description: &str,
    schema: utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    example: &str,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some(description))
        .schema(Some(schema))
        .example(Some(serde_json::json!(example)))
        .build()
}

/// Declared once here for every route with a `{protocol}`: `params(ProtocolPath)`.
impl IntoParams for ProtocolPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = <Protocol as utoipa::PartialSchema>::schema();
        let description = "Protocol number, 17 digits";
        vec![path_parameter(
            "protocol",
            description,
            schema,
            "20260000000000042",
        )]
    }
}

/// Declared once here for every route with a `{unit}`: `params(UnitPath)`.
impl IntoParams for UnitPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let schema = <String as utoipa::PartialSchema>::schema();
        let description = "Unit id (see `GET /units`)";
        vec![path_parameter("unit", description, schema, "pa")]
    }
}
