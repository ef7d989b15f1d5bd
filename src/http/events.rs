//! `GET /units/{unit}/events`: server-sent events for the ward screens, with
//! `Last-Event-ID` replay and a keep-alive comment so proxies keep it open.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::{stream, StreamExt};
use tokio::sync::broadcast::error::{RecvError, TryRecvError};

use super::extract::{query, UnitPath};
use super::{ApiError, Svc};
use crate::service::{Live, Service};

/// Well below the 15 s promised (docs/api.md, Events), so a proxy's idle timer never fires.
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// How long a stream waits after an event for the next ones, to send them
/// together: unnoticeable on a ward screen.
const COALESCE: Duration = Duration::from_millis(100);

fn frame(e: &Live) -> web::Bytes {
    web::Bytes::from(format!(
        "id: {}\nevent: {}\ndata: {}\n\n",
        e.id, e.name, e.data
    ))
}

struct Stream {
    service: Service,
    unit: crate::domain::UnitId,
    backlog: std::collections::VecDeque<Live>,
    rx: tokio::sync::broadcast::Receiver<Live>,
    stopping: tokio::sync::watch::Receiver<bool>,
    /// The journal's role: a stream on an instance that stops leading ends,
    /// so the page reconnects (through the load balancer, to the new leader).
    role: Option<tokio::sync::watch::Receiver<crate::journal::Role>>,
    last: u64,
    /// Dropped with the stream: when the client goes, or is dropped for not reading.
    _open: crate::metrics::StreamGuard,
}

impl Stream {
    /// Fell behind the broadcast: the kept events after the last one sent.
    fn catch_up(&mut self) {
        self.backlog = self.service.events().since(&self.unit, self.last).into();
    }
}

/// The stream's own query parameter (`access_token` is the role check's).
#[derive(serde::Deserialize)]
struct ResumeQuery {
    last_event_id: Option<u64>,
}

/// Server-sent events of a unit (never names or protocol numbers)
///
/// Events `admitted`, `triaged`, `called`, `started`, `no_show`, `finished`,
/// `left`, `transferred`, `alert`; `data:` is a JSON object. A comment line
/// at least every 15 s; `Last-Event-ID` replays what was missed.
#[utoipa::path(
    get,
    path = "/api/v1/units/{unit}/events",
    operation_id = "unitEvents",
    tag = "units",
    params(
        UnitPath,
        ("Last-Event-ID" = Option<u64>, Header, description = "Replay the events after this id"),
        ("last_event_id" = Option<u64>, Query, description = "As `Last-Event-ID`, for a page that reloads"),
        ("access_token" = Option<String>, Query, description = "The bearer token, for EventSource clients that cannot set headers"),
    ),
    responses(
        (status = 200, description = "An endless event stream", body = String, content_type = "text/event-stream"),
    )
)]
pub async fn stream(
    service: Svc,
    UnitPath(unit): UnitPath,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let newest = service.read(|d, _| d.unit(&unit).map(|_| d.last_event_id()))?;
    // Browsers' EventSource sends the header on reconnection (one it cannot
    // read starts the stream afresh: the page cannot correct it); the query
    // parameter lets a page resume after a reload, and a bad one is refused.
    let resume: ResumeQuery = query(&req)?;
    let after = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .or(resume.last_event_id)
        // An id this journal never gave (a screen that outlived the restore
        // of a backup) starts the stream afresh: resumed after it, every
        // event up to it was skipped and the screen stayed silent.
        .filter(|&id| id <= newest);
    let (missed, rx) = service
        .events()
        .subscribe(&unit, after)
        .ok_or_else(|| ApiError::NotFound(format!("unit `{unit}` does not exist")))?;
    let s = Stream {
        service: service.0.clone(),
        unit,
        last: after.unwrap_or(0),
        backlog: missed.into(),
        rx,
        stopping: service.stopping(),
        role: service.journal().map(|j| j.role()),
        _open: service.metrics().event_stream_opened(),
    };
    let body = stream::unfold(s, |mut s| async move {
        loop {
            if let Some(e) = s.backlog.pop_front() {
                if e.id <= s.last {
                    continue;
                }
                s.last = e.id;
                return Some((Ok::<_, actix_web::Error>(frame(&e)), s));
            }
            if *s.stopping.borrow() || s.service.is_follower() {
                return None;
            }
            let role_changed = async {
                match s.role.as_mut() {
                    Some(role) => {
                        if role.changed().await.is_err() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending().await,
                }
            };
            let next = tokio::select! {
                r = tokio::time::timeout(KEEP_ALIVE, s.rx.recv()) => r,
                // The service is stopping: end the stream; EventSource reconnects.
                _ = s.stopping.changed() => return None,
                // Looked at again at the top of the loop.
                () = role_changed => continue,
            };
            match next {
                Err(_) => return Some((Ok(web::Bytes::from_static(b": keep-alive\n\n")), s)),
                Ok(Ok(e)) => {
                    s.backlog.push_back(e);
                    // Let events that come close together go out in one write:
                    // a desk's burst then costs each screen one wake-up and one
                    // send, not one per event, and the desks' own requests are
                    // not queued behind thousands of sends.
                    tokio::select! {
                        () = tokio::time::sleep(COALESCE) => {}
                        _ = s.stopping.changed() => return None,
                    }
                    loop {
                        match s.rx.try_recv() {
                            Ok(e) => s.backlog.push_back(e),
                            Err(TryRecvError::Lagged(_)) => {
                                s.catch_up();
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                }
                Ok(Err(RecvError::Lagged(_))) => s.catch_up(),
                Ok(Err(RecvError::Closed)) => return None,
            }
        }
    });
    // A first comment so clients (and proxies) see the stream open at once.
    let hello = stream::once(async {
        Ok::<_, actix_web::Error>(web::Bytes::from_static(b": connected\n\n"))
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(hello.chain(body)))
}
