//! Server-sent events on `/units/{unit}/events` (docs/api.md, Event stream):
//! frames with `id`, `event` and a nameless `data`, the opening comment,
//! `Last-Event-ID` replay (also after a restart) and the 404 of an unknown
//! unit. Every read is bounded by a timeout.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{protocol, start_time, time, TestApp, PATIENCE, ROOM, UNIT};

/// One SSE frame (the lines up to a blank line).
#[derive(Debug, Clone, Default)]
struct Frame {
    id: Option<u64>,
    event: Option<String>,
    data: String,
    comments: Vec<String>,
}

impl Frame {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data)
            .unwrap_or_else(|e| panic!("data is not JSON ({e}): {:?}", self.data))
    }

    fn name(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }
}

/// An open event stream, read frame by frame.
struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    async fn open(app: &TestApp, unit: &str, last_event_id: Option<u64>) -> Self {
        // Not the app's client: its overall timeout would cut the stream.
        let client = reqwest::Client::new();
        let mut req = client.get(app.url(&format!("/units/{unit}/events")));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let response = tokio::time::timeout(PATIENCE, req.send())
            .await
            .expect("the stream's headers came in time")
            .expect("GET events");
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(
            response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Self {
            response,
            buffer: String::new(),
        }
    }

    /// The next frame, comments included, within `within`.
    async fn frame_within(&mut self, within: Duration) -> Option<Frame> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let raw: String = self.buffer.drain(..end + 2).collect();
                return Some(parse_frame(&raw));
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .ok()?
                .expect("the stream broke")
                .expect("the stream ended");
            self.buffer
                .push_str(std::str::from_utf8(&chunk).expect("UTF-8 stream"));
        }
    }

    async fn frame(&mut self) -> Frame {
        self.frame_within(PATIENCE)
            .await
            .expect("a frame within the patience")
    }

    /// The next frame that is an event (skipping comment-only frames).
    async fn event(&mut self) -> Frame {
        loop {
            let f = self.frame().await;
            if f.event.is_some() || !f.data.is_empty() {
                return f;
            }
        }
    }
}

fn parse_frame(raw: &str) -> Frame {
    let mut f = Frame::default();
    for line in raw.lines() {
        if let Some(c) = line.strip_prefix(':') {
            f.comments.push(c.trim().to_owned());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => f.id = Some(value.parse().expect("numeric event id")),
            "event" => f.event = Some(value.to_owned()),
            "data" => {
                if !f.data.is_empty() {
                    f.data.push('\n');
                }
                f.data.push_str(value);
            }
            _ => {}
        }
    }
    f
}

/// Asserts that the frame's data names nobody.
#[track_caller]
fn assert_anonymous(f: &Frame, name: &str, protocol: &str) {
    assert!(!f.data.contains(name), "the name leaked: {}", f.data);
    assert!(
        !f.data.contains(protocol),
        "the protocol leaked: {}",
        f.data
    );
    let v = f.json();
    for key in ["name", "protocol", "complaint", "document", "birth_date"] {
        assert!(v.get(key).is_none(), "`{key}` in {}", f.data);
    }
}

#[tokio::test]
async fn the_stream_opens_with_a_comment_right_away() {
    let app = TestApp::spawn().await;
    let mut s = Sse::open(&app, UNIT, None).await;
    let first = s
        .frame_within(Duration::from_secs(2))
        .await
        .expect("a first frame before anything happens");
    assert_eq!(first.comments, ["connected"]);
    assert_eq!(first.event, None);
    assert_eq!(first.data, "");
}

#[tokio::test]
async fn admitting_and_calling_a_patient_stream_admitted_then_called_without_the_name() {
    let app = TestApp::spawn().await;
    let mut s = Sse::open(&app, UNIT, None).await;
    assert_eq!(s.frame().await.comments, ["connected"]);

    let name = "Maria Silva";
    let v = app.admit(name, Some("yellow")).await;
    let p = protocol(&v);
    let admitted = s.event().await;
    assert_eq!(admitted.name(), "admitted");
    let admitted_id = admitted.id.expect("an id");
    assert_anonymous(&admitted, name, &p);
    let d = admitted.json();
    assert_eq!(d["ticket"], "A001");
    assert_eq!(d["colour"], "yellow");
    assert_eq!(d["status"], "waiting");
    assert_eq!(d["room"], Value::Null);
    assert_eq!(d["queue"], "treatment");
    assert_eq!(time(&d["at"]), start_time());

    app.advance(chrono::TimeDelta::minutes(3));
    app.call(ROOM).await.expect(200);
    let called = s.event().await;
    assert_eq!(called.name(), "called");
    assert!(called.id.expect("an id") > admitted_id, "ids increase");
    assert_anonymous(&called, name, &p);
    let d = called.json();
    assert_eq!(d["ticket"], "A001");
    assert_eq!(d["colour"], "yellow");
    assert_eq!(d["status"], "called");
    assert_eq!(d["room"], ROOM);
    assert_eq!(d["queue"], "treatment");
    assert_eq!(time(&d["at"]), start_time() + chrono::TimeDelta::minutes(3));

    // A recall is announced as another `called`.
    app.action(&p, "recall").await.expect(200);
    let recalled = s.event().await;
    assert_eq!(recalled.name(), "called");
    assert!(recalled.id > called.id);
    assert_eq!(recalled.json()["room"], ROOM);
}

#[tokio::test]
async fn a_red_admission_streams_the_alert_with_kind_level_and_state() {
    let app = TestApp::spawn().await;
    let mut s = Sse::open(&app, UNIT, None).await;
    let name = "Ana Souza";
    let p = protocol(&app.admit(name, Some("red")).await);
    assert_eq!(s.event().await.name(), "admitted");
    let alert = s.event().await;
    assert_eq!(alert.name(), "alert");
    assert_anonymous(&alert, name, &p);
    let d = alert.json();
    assert_eq!(d["ticket"], "A001");
    assert_eq!(d["colour"], "red");
    assert_eq!(d["status"], "waiting");
    assert_eq!(d["queue"], "treatment");
    assert_eq!(d["kind"], "breach");
    assert_eq!(d["level"], 1);
    assert_eq!(d["state"], "firing");
}

#[tokio::test]
async fn last_event_id_replays_the_events_after_it_then_goes_live() {
    let app = TestApp::spawn().await;
    let mut s = Sse::open(&app, UNIT, None).await;
    let p = protocol(&app.admit("Maria Silva", Some("yellow")).await);
    let admitted = s.event().await;
    app.call(ROOM).await.expect(200);
    let called = s.event().await;
    drop(s);

    let mut again = Sse::open(&app, UNIT, admitted.id).await;
    assert_eq!(again.frame().await.comments, ["connected"]);
    let replayed = again.event().await;
    assert_eq!(replayed.name(), "called");
    assert_eq!(replayed.id, called.id);
    assert_eq!(replayed.json(), called.json());
    // Then live, with nothing repeated.
    app.finish(&p, "discharged").await.expect(200);
    let finished = again.event().await;
    assert_eq!(finished.name(), "finished");
    assert!(finished.id > called.id);
    assert_eq!(finished.json()["status"], "finished");

    // Without the header nothing old is replayed: the first event is the new one.
    let mut fresh = Sse::open(&app, UNIT, None).await;
    app.admit("Bia", None).await;
    let first = fresh.event().await;
    assert_eq!(first.name(), "admitted");
    assert_eq!(first.json()["ticket"], "A002");
    assert_eq!(first.json()["queue"], "triage");
    assert_eq!(first.json()["colour"], Value::Null);
    assert!(first.id > finished.id);
}

/// A screen that kept an id the journal never gave (the journal was restored
/// from a backup older than the screen's last event) is not left silent: the
/// stream starts afresh.
#[tokio::test]
async fn a_last_event_id_from_the_future_starts_the_stream_afresh() {
    let app = TestApp::spawn().await;
    let mut s = Sse::open(&app, UNIT, Some(1_000_000)).await;
    assert_eq!(s.frame().await.comments, ["connected"]);
    app.admit("Bia", None).await;
    let first = s.event().await;
    assert_eq!(first.name(), "admitted");
    assert!(first.id.is_some_and(|id| id < 1_000_000), "{first:?}");
}

#[tokio::test]
async fn last_event_id_replays_across_a_restart() {
    // No stream is open across the restart: the service's graceful stop waits
    // for open event streams (see the report), which would only slow this down.
    let app = TestApp::spawn().await;
    let live = {
        let mut live = Sse::open(&app, UNIT, None).await;
        app.admit("Maria Silva", Some("green")).await;
        app.call(ROOM).await.expect(200);
        [live.event().await, live.event().await]
    };
    let app = app.restart().await;

    // Everything after id 0 is everything the unit kept.
    let mut all = Sse::open(&app, UNIT, Some(0)).await;
    let admitted = all.event().await;
    let called = all.event().await;
    assert_eq!(admitted.name(), "admitted");
    assert_eq!(called.name(), "called");
    assert_eq!(called.json()["room"], ROOM);
    assert!(called.id > admitted.id);
    // What was stored is the text that was sent, byte for byte.
    for (stored, sent) in [&admitted, &called].into_iter().zip(&live) {
        assert_eq!((stored.id, &stored.data), (sent.id, &sent.data));
    }

    let mut again = Sse::open(&app, UNIT, admitted.id).await;
    let replayed = again.event().await;
    assert_eq!(replayed.name(), "called");
    assert_eq!(replayed.id, called.id);
    assert_eq!(replayed.json(), called.json());
    // Ids keep increasing after the restart.
    app.admit("Bia", Some("blue")).await;
    let next = again.event().await;
    assert_eq!(next.name(), "admitted");
    assert!(next.id > called.id);
    assert_eq!(next.json()["ticket"], "A002");
}

#[tokio::test]
async fn the_events_of_an_unknown_unit_are_404() {
    let app = TestApp::spawn().await;
    let r = tokio::time::timeout(PATIENCE, app.get("/units/nope/events"))
        .await
        .expect("answered in time");
    r.expect_problem(404, "not_found");
}

#[tokio::test]
async fn a_last_event_id_query_that_is_not_a_number_is_400() {
    let app = TestApp::spawn().await;
    for query in [
        "last_event_id=abc",
        "last_event_id=-1",
        "last_event_id=",
        "last_event_id=1&last_event_id=2",
    ] {
        let r = tokio::time::timeout(PATIENCE, app.get(&format!("/units/pa/events?{query}")))
            .await
            .expect("answered in time");
        r.expect_problem(400, "malformed");
    }
}
