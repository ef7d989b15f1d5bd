//! The web pages the service serves itself: the ward display screen, the
//! reception desk, the clinician's queue, the nurse manager's reports and
//! the patient's follow-up page. Static HTML, CSS and
//! JavaScript embedded in the binary (from `src/web/`), no build step; the
//! pages call the API like any other client, so every request they make is
//! checked by the route table while the pages themselves need no token.

use std::sync::OnceLock;

use actix_web::http::header::{self, EntityTag};
use actix_web::HttpMessage;
use actix_web::{web, HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use super::{ApiError, Svc};
use strum::VariantArray;

use crate::config::Lang;

/// The pages, by the first segment of their path (`/display/{unit}`).
const PAGES: [(&str, &str); 4] = [
    ("display", include_str!("../web/display.html")),
    ("reception", include_str!("../web/reception.html")),
    ("clinician", include_str!("../web/clinician.html")),
    ("reports", include_str!("../web/reports.html")),
];

/// The patient's follow-up page (`/p`, `/p/{protocol}`), for a phone.
const FOLLOW: &str = include_str!("../web/follow.html");

const CSS: &str = "text/css; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";

/// Every file under `/assets/`: name, body, content type.
const ASSETS: [(&str, &str, &str); 10] = [
    ("app.css", include_str!("../web/app.css"), CSS),
    ("follow.css", include_str!("../web/follow.css"), CSS),
    ("follow.js", include_str!("../web/follow.js"), JS),
    ("common.js", include_str!("../web/common.js"), JS),
    ("display.js", include_str!("../web/display.js"), JS),
    ("reception.css", include_str!("../web/reception.css"), CSS),
    ("reception.js", include_str!("../web/reception.js"), JS),
    ("clinician.js", include_str!("../web/clinician.js"), JS),
    ("reports.css", include_str!("../web/reports.css"), CSS),
    ("reports.js", include_str!("../web/reports.js"), JS),
];

/// Scripts only from this origin, no inline code, no framing: a page that
/// shows patients' names must not be embeddable or injectable.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                   img-src 'self' data:; connect-src 'self'; media-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

/// A unit's page: `/display/{unit}`, `/reception/{unit}`, `/clinician/{unit}`
/// or `/reports/{unit}`.
pub(super) async fn unit_page(
    service: Svc,
    unit: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let name = req.path().split('/').nth(1).unwrap_or_default();
    let template = PAGES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .ok_or_else(|| ApiError::NotFound(format!("no such page: {name}")))?;
    page(&service, &unit, &req, template)
}

/// The patient's follow-up page: `/p` (a form for the number and the code) and
/// `/p/{protocol}` (the code comes from the URL's fragment, which the browser
/// never sends here). 404 with the portal off.
pub(super) async fn follow(service: Svc, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let config = service.config();
    if !config.portal.enabled {
        return Err(ApiError::NotFound(format!(
            "no such resource: {}",
            req.path()
        )));
    }
    let html = FOLLOW
        .replace("{{lang}}", language(&req, config.web.lang).tag())
        .replace("{{v}}", assets_version());
    Ok(html_response(html))
}

/// The page's language: `?lang=` when it names one the pages speak
/// (`en`, `en-US`, `pt`, `pt-BR`…), else `web.lang` of the config.
fn language(req: &HttpRequest, default: Lang) -> Lang {
    let asked =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok()
            .and_then(|q| q.get("lang").map(|l| l.to_ascii_lowercase()));
    // By the primary subtag: `pt`, `pt-br`, `PT-PT` all pick pt-BR.
    let pick = |l: &str| {
        let primary = l.split('-').next()?;
        Lang::VARIANTS.iter().copied().find(|w| {
            let tag = w.tag();
            tag.split('-').next() == Some(primary) || tag.eq_ignore_ascii_case(l)
        })
    };
    asked.as_deref().and_then(pick).unwrap_or(default)
}

fn page(
    service: &crate::service::Service,
    unit: &str,
    req: &HttpRequest,
    template: &str,
) -> Result<HttpResponse, ApiError> {
    let config = service.config();
    let Some(u) = config.units.iter().find(|u| u.id == unit) else {
        return Err(ApiError::NotFound(format!("unit `{unit}` does not exist")));
    };
    // The unit's name last: free text from the config, it may hold `{{v}}`
    // itself, which a later replacement would take for a placeholder.
    let html = template
        .replace("{{lang}}", language(req, config.web.lang).tag())
        .replace("{{unit}}", &escape(&u.id))
        .replace("{{v}}", assets_version())
        .replace("{{unit_name}}", &escape(&u.name));
    Ok(html_response(html))
}

/// A page with the headers every page gets: not cached by others, not
/// framed, no script from elsewhere, and no referrer (a follow-up URL holds a code).
fn html_response(html: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .body(html)
}

/// A short hash of all the assets, appended to their URLs so a browser
/// never mixes a new page with old scripts after an upgrade.
fn assets_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut h = Sha256::new();
        for (name, body, _) in ASSETS {
            h.update(name.as_bytes());
            h.update(body.as_bytes());
        }
        hex::encode(&h.finalize()[..6])
    })
}

pub(super) async fn asset(
    file: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Some((_, body, content_type)) = ASSETS.into_iter().find(|(name, _, _)| *name == *file)
    else {
        return Err(ApiError::NotFound(format!("no such asset: {file}")));
    };
    let etag = EntityTag::new_strong(assets_version().to_owned());
    // A weak comparison, as RFC 9110 asks of If-None-Match.
    let fresh = match req.get_header::<header::IfNoneMatch>() {
        Some(header::IfNoneMatch::Any) => true,
        Some(header::IfNoneMatch::Items(tags)) => tags.iter().any(|t| t.weak_eq(&etag)),
        None => false,
    };
    let mut res = if fresh {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    res.insert_header(header::ETag(etag))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"));
    Ok(if fresh {
        res.finish()
    } else {
        res.content_type(content_type).body(body)
    })
}

/// HTML-escapes text put into a page.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn language_from_query_or_default() {
        let lang =
            |q: &str, d: Lang| language(&TestRequest::with_uri(q).to_http_request(), d).tag();
        let (pt, en) = (Lang::PtBr, Lang::En);
        assert_eq!(lang("/display/pa", pt), "pt-BR");
        assert_eq!(lang("/display/pa", en), "en");
        assert_eq!(lang("/display/pa?lang=en", pt), "en");
        assert_eq!(lang("/display/pa?lang=EN-us", pt), "en");
        assert_eq!(lang("/display/pa?lang=pt", en), "pt-BR");
        assert_eq!(lang("/display/pa?lang=fr", en), "en");
        assert_eq!(lang("/display/pa?lang=", pt), "pt-BR");
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn every_page_names_only_existing_assets() {
        for page in PAGES.iter().map(|(_, p)| *p).chain([FOLLOW]) {
            for part in page.split("/assets/").skip(1) {
                let name = part.split(['?', '"']).next().unwrap();
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == name),
                    "unknown asset {name}"
                );
            }
        }
    }
}
