//! `/api/v1/reports/…`: the standard ED measures of a period (docs/reports.md),
//! for the `monitor` and `admin` roles. Read from the journal on a connection
//! of their own: a report never holds up admissions or calls.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{iso_date, query};
use super::{ApiError, Svc};
use crate::domain::UnitId;
use crate::reports::{self, Day, Period, PeriodError, Summary};
use crate::service::Service;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// One unit (by where visits were admitted); all units when left out.
    unit: Option<String>,
    /// First local day, `YYYY-MM-DD`; `to` when left out.
    #[param(value_type = Option<String>, format = Date)]
    from: Option<String>,
    /// Last local day, included; today when left out.
    #[param(value_type = Option<String>, format = Date)]
    to: Option<String>,
}

/// The period and unit a report request asks for.
fn period(service: &Service, req: &HttpRequest) -> Result<(Period, Option<UnitId>), ApiError> {
    let q: ReportQuery = query(req)?;
    let date = |name: &str, s: &Option<String>| -> Result<Option<NaiveDate>, ApiError> {
        s.as_deref()
            .map(|d| {
                iso_date(d).ok_or_else(|| {
                    ApiError::Malformed(format!("`{name}` must be a date such as 2026-11-30"))
                })
            })
            .transpose()
    };
    let today = service
        .now()
        .with_timezone(&service.settings().time_zone)
        .date_naive();
    let to = date("to", &q.to)?.unwrap_or(today);
    let from = date("from", &q.from)?.unwrap_or(to);
    let period = Period::new(from, to).map_err(|e| match e {
        PeriodError::Reversed { .. } => ApiError::invalid("from", e.to_string()),
        PeriodError::TooLong => ApiError::invalid("to", e.to_string()),
    })?;
    let unit = q
        .unit
        .map(|u| {
            UnitId::parse(&u).map_err(|_| ApiError::NotFound(format!("unit `{u}` does not exist")))
        })
        .transpose()?;
    Ok((period, unit))
}

async fn summary_of(service: &Service, req: &HttpRequest) -> Result<Summary, ApiError> {
    let (period, unit) = period(service, req)?;
    let (visits, alerts) = service.report_data(period, unit.clone()).await?;
    let settings = service.settings();
    Ok(reports::summary(
        &visits,
        &alerts,
        &settings.scale,
        unit,
        period,
        settings.time_zone,
    ))
}

/// The measures of a period
///
/// Over the visits that arrived in the period (local days) in the unit where
/// they were admitted; nearest-rank percentiles; durations in seconds.
#[utoipa::path(
    get,
    path = "/api/v1/reports/summary",
    operation_id = "reportSummary",
    tag = "reports",
    params(ReportQuery),
    responses((status = 200, description = "The summary", body = Summary)),
)]
pub async fn summary(service: Svc, req: HttpRequest) -> Result<web::Json<Summary>, ApiError> {
    Ok(web::Json(summary_of(&service, &req).await?))
}

/// The measures of a period, as CSV
#[utoipa::path(
    get,
    path = "/api/v1/reports/summary.csv",
    operation_id = "reportSummaryCsv",
    tag = "reports",
    params(ReportQuery),
    responses((status = 200, description = "`measure,colour,count,value,median,p90,p95`, a row per measure and colour",
        body = String, content_type = "text/csv")),
)]
pub async fn summary_csv(service: Svc, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let s = summary_of(&service, &req).await?;
    let name = format!(
        "triagem-{}-{}-{}.csv",
        s.unit.as_ref().map_or("all", |u| u.as_str()),
        s.from,
        s.to
    );
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(reports::summary_csv(&s)))
}

/// The period day by day
#[utoipa::path(
    get,
    path = "/api/v1/reports/daily",
    operation_id = "reportDaily",
    tag = "reports",
    params(ReportQuery),
    responses((status = 200, description = "One entry per day, days without arrivals included",
        body = Vec<Day>)),
)]
pub async fn daily(service: Svc, req: HttpRequest) -> Result<web::Json<Vec<Day>>, ApiError> {
    let (period, unit) = period(&service, &req)?;
    let (visits, _) = service.report_data(period, unit).await?;
    Ok(web::Json(reports::daily(
        &visits,
        period,
        service.settings().time_zone,
    )))
}
