//! The patient's follow-up (`GET /api/v1/track/{protocol}`, public, guarded by
//! the check code and a per-address rate limit), and what the desk needs to
//! hand it over: the receipt's QR code and how the messages went.

use std::net::IpAddr;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use qrcode::render::svg;
use qrcode::QrCode;

use super::extract::ProtocolPath;
use super::{ApiError, RateLimiter, Svc};
use crate::domain::patient::Protocol;
use crate::domain::FollowView;
use crate::journal::MessageStatus;

/// The header the check code travels in (never the URL: it would be logged).
pub const CHECK_CODE_HEADER: &str = "Triagem-Check-Code";

/// The follow-up route's own rate limiter (per client address), apart from the
/// admissions' one (per token).
pub struct Lookups(pub RateLimiter);

/// The client's address: the peer's, or when the peer is a trusted proxy the
/// last address of `X-Forwarded-For` that is not one.
fn client_address(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = req.peer_addr()?.ip();
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

fn not_found() -> ApiError {
    // One answer for an unknown protocol, a missing code and a wrong code.
    ApiError::NotFound("no case matches this protocol number and check code".into())
}

/// Whose lookups count together: an IPv4 address, or an IPv6 one's /64,
/// which a single subscriber or machine is usually given whole (counted one
/// address each, it could guess 20 a minute from each of 2^64 addresses).
fn lookup_key(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let prefix = u128::from(v6) & (u128::MAX << 64);
            format!("{}/64", std::net::Ipv6Addr::from(prefix))
        }
        std::net::IpAddr::V6(v6) => v6.to_canonical().to_string(),
        v4 => v4.to_string(),
    }
}

/// A patient's own case, for the holder of the receipt
///
/// Needs no token: the check code of the receipt (header
/// `Triagem-Check-Code`, case aside) proves the holder has it. An unknown
/// protocol, a missing code and a wrong one get the same 404. Every request
/// counts against the caller's address: `portal.lookups_per_minute` a minute.
#[utoipa::path(
    get,
    path = "/api/v1/track/{protocol}",
    operation_id = "track",
    tag = "portal",
    params(
        ProtocolPath,
        ("Triagem-Check-Code" = String, Header, description = "The receipt's check code, 6 characters"),
    ),
    responses((status = 200, description = "The case", body = FollowView)),
)]
pub async fn track(
    service: Svc,
    lookups: web::Data<Lookups>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    // Read here, not by an extractor: the portal's switch and the lookup
    // limit come before any check of the path (and a `web::Path` would list
    // the parameter a second time in the OpenAPI document).
    let protocol = req.match_info().get("protocol").unwrap_or_default();
    let config = service.config();
    if !config.portal.enabled {
        return Err(ApiError::NotFound(format!(
            "no such resource: {}",
            req.path()
        )));
    }
    let address = client_address(&req, &config.server.trusted_proxies)
        .map_or_else(|| "unknown".to_owned(), lookup_key);
    lookups.0.allow(&address, service.now())?;
    let well_formed = protocol.len() == 17 && protocol.bytes().all(|b| b.is_ascii_digit());
    if !well_formed {
        return Err(ApiError::Malformed(
            "in the path: a protocol number is exactly 17 digits".into(),
        ));
    }
    let Ok(protocol) = Protocol::parse(protocol) else {
        return Err(not_found());
    };
    let code = req
        .headers()
        .get(CHECK_CODE_HEADER)
        .and_then(|v| v.to_str().ok());
    let view = service.read(|d, now| Ok(d.follow(protocol, code, now)))?;
    let view = view.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok()
        // A patient's case: never kept by a shared cache.
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(view))
}

/// The receipt's QR code: the patient's follow-up address, as SVG
#[utoipa::path(
    get,
    path = "/api/v1/patients/{protocol}/qr",
    operation_id = "patientQr",
    tag = "patients",
    params(ProtocolPath),
    responses((status = 200, description = "SVG of the follow-up address", body = String,
        content_type = "image/svg+xml")),
)]
pub async fn qr(
    service: Svc,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<HttpResponse, ApiError> {
    let url = service.read(|d, _| d.patient(protocol).map(|p| d.follow_url(p.protocol)))?;
    // Only an address of thousands of characters would not fit a QR code.
    let code = QrCode::new(url.as_bytes()).map_err(|e| {
        tracing::error!(error = %e, "cannot encode the follow-up address as a QR code");
        ApiError::Unavailable
    })?;
    let image = code
        .render::<svg::Color>()
        .min_dimensions(160, 160)
        .quiet_zone(true)
        .build();
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(image))
}

/// The messages sent to a patient and how each went
#[utoipa::path(
    get,
    path = "/api/v1/patients/{protocol}/messages",
    operation_id = "patientMessages",
    tag = "patients",
    params(ProtocolPath),
    responses((status = 200, description = "Oldest first; never the address or the text",
        body = Vec<MessageStatus>)),
)]
pub async fn messages(
    service: Svc,
    ProtocolPath(protocol): ProtocolPath,
) -> Result<web::Json<Vec<MessageStatus>>, ApiError> {
    Ok(web::Json(service.messages(protocol).await?))
}

#[cfg(test)]
mod tests {
    use super::lookup_key;

    #[test]
    fn an_ipv6_subscriber_counts_as_one_and_ipv4_by_address() {
        let key = |s: &str| lookup_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(key("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_ne!(key("192.0.2.1"), key("192.0.2.2"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }
}
