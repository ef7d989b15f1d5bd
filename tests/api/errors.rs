//! Every error status of docs/api.md, Errors (except 401/403 and 503, see
//! journal_failure.rs): problem+json with type/title/status/detail/code, and a
//! refused request changes nothing.

use chrono::TimeDelta;
use serde_json::{json, Value};

use crate::helpers::{protocol, start_time, TestApp, ROOM, UNIT};

const UNKNOWN: &str = "20260000000000999";

/// Nobody was admitted: both queues are empty and the next admission gets
/// the first protocol number and ticket.
async fn assert_nobody_admitted(app: &TestApp) {
    assert_eq!(app.total("treatment").await, 0);
    assert_eq!(app.total("triage").await, 0);
    let v = app.admit("Depois", None).await;
    assert_eq!(v["protocol"], "20260000000000001", "no number was used up");
    assert_eq!(v["ticket"], "A001", "no ticket was used up");
}

/// A patient's view and history, to compare before and after a refused request.
async fn snapshot(app: &TestApp, p: &str) -> (Value, usize, Value) {
    (
        app.patient(p).await,
        app.care_history(p).await.len(),
        app.board().await,
    )
}

// ---- 400 malformed ----

#[tokio::test]
async fn a_body_that_is_not_json_is_400_malformed() {
    let app = TestApp::spawn().await;
    for body in [
        "{\"name\": ",
        "{name: 'Ana'}",
        "not json",
        "{\"name\": \"Ana\"} trailing",
    ] {
        let p = app
            .post_raw(&format!("/units/{UNIT}/patients"), "application/json", body)
            .await
            .expect_problem(400, "malformed");
        assert_eq!(p["title"], "Malformed request");
        assert_eq!(p["type"], "urn:triagem:problem:malformed");
    }
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn an_empty_body_where_one_is_required_is_400_malformed() {
    let app = TestApp::spawn().await;
    app.post_raw(&format!("/units/{UNIT}/patients"), "application/json", "")
        .await
        .expect_problem(400, "malformed");
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn broken_json_on_triage_and_call_is_400_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", None).await);
    let before = snapshot(&app, &p).await;
    app.post_raw(
        &format!("/patients/{p}/triage"),
        "application/json",
        "{\"colour\":",
    )
    .await
    .expect_problem(400, "malformed");
    app.post_raw(&format!("/units/{UNIT}/call"), "application/json", "[")
        .await
        .expect_problem(400, "malformed");
    assert_eq!(snapshot(&app, &p).await, before);
}

#[tokio::test]
async fn a_protocol_in_the_path_that_is_not_17_digits_is_400_malformed() {
    let app = TestApp::spawn().await;
    for bad in [
        "123",
        "2026000000000001",   // 16 digits
        "202600000000000001", // 18 digits
        "2026000000000000x",
        "abcdefghijklmnopq",
    ] {
        let detail = app
            .get(&format!("/patients/{bad}"))
            .await
            .expect_problem(400, "malformed");
        assert!(detail["detail"].as_str().unwrap().contains("17 digits"));
        app.get(&format!("/patients/{bad}/history"))
            .await
            .expect_problem(400, "malformed");
        app.action(bad, "start")
            .await
            .expect_problem(400, "malformed");
        app.triage(bad, "red")
            .await
            .expect_problem(400, "malformed");
    }
}

/// 17 digits are a well-formed protocol number even when none could have
/// been issued (a year before 1000, sequence 0): unknown, so 404.
#[tokio::test]
async fn a_17_digit_protocol_that_was_never_issued_is_404() {
    let app = TestApp::spawn().await;
    for never in [
        "09990000000000001",
        "20260000000000000",
        "99999999999999999",
    ] {
        app.get(&format!("/patients/{never}"))
            .await
            .expect_problem(404, "not_found");
        app.get(&format!("/patients/{never}/history"))
            .await
            .expect_problem(404, "not_found");
        app.action(never, "start")
            .await
            .expect_problem(404, "not_found");
        app.triage(never, "red")
            .await
            .expect_problem(404, "not_found");
    }
}

#[tokio::test]
async fn a_query_value_of_the_wrong_type_is_400_malformed() {
    let app = TestApp::spawn().await;
    app.get(&format!("/units/{UNIT}/queue?limit=many"))
        .await
        .expect_problem(400, "malformed");
    app.get(&format!("/units/{UNIT}/queue?offset=-1"))
        .await
        .expect_problem(400, "malformed");
    app.get(&format!("/units/{UNIT}/queue?queue=lobby"))
        .await
        .expect_problem(400, "malformed");
}

// ---- 404 not_found ----

#[tokio::test]
async fn an_unknown_unit_is_404_and_admits_nobody() {
    let app = TestApp::spawn().await;
    app.admit_raw("uti", &json!({"name": "Ana", "colour": "red"}))
        .await
        .expect_problem(404, "not_found");
    app.post_json("/units/uti/call", &json!({"room": ROOM}))
        .await
        .expect_problem(404, "not_found");
    app.get("/units/uti/queue")
        .await
        .expect_problem(404, "not_found");
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn an_unknown_protocol_is_404_on_every_patient_endpoint() {
    let app = TestApp::spawn().await;
    app.admit("Ana", Some("green")).await;
    app.get(&format!("/patients/{UNKNOWN}"))
        .await
        .expect_problem(404, "not_found");
    app.get(&format!("/patients/{UNKNOWN}/history"))
        .await
        .expect_problem(404, "not_found");
    app.triage(UNKNOWN, "red")
        .await
        .expect_problem(404, "not_found");
    for action in ["start", "no-show", "leave", "recall"] {
        app.action(UNKNOWN, action)
            .await
            .expect_problem(404, "not_found");
    }
    app.finish(UNKNOWN, "discharged")
        .await
        .expect_problem(404, "not_found");
    app.post_json(
        &format!("/patients/{UNKNOWN}/transfer"),
        &json!({"unit": "pa"}),
    )
    .await
    .expect_problem(404, "not_found");
}

#[tokio::test]
async fn an_unknown_route_is_404_problem_json() {
    let app = TestApp::spawn().await;
    for path in ["/api/v1/nope", "/nope", "/api/v1/patient", "/api/v2/units"] {
        app.get_abs(path).await.expect_problem(404, "not_found");
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_route_is_405_problem_json() {
    let app = TestApp::spawn().await;
    let r = app.post_json("/units", &json!({})).await;
    assert_eq!(
        r.header("allow"),
        Some("GET, HEAD"),
        "405 names the methods to use"
    );
    r.expect_problem(405, "method_not_allowed");

    let r = app.get("/units/pa/call").await;
    assert_eq!(r.header("allow"), Some("POST"));
    r.expect_problem(405, "method_not_allowed");

    // The web pages too.
    let page = app
        .client
        .post(format!("{}/display/pa", app.address))
        .send()
        .await
        .expect("POST");
    let r = crate::helpers::Resp::from(page).await;
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    r.expect_problem(405, "method_not_allowed");
}

// ---- 409 invalid_transition ----

#[tokio::test]
async fn actions_the_status_does_not_allow_are_409_and_change_nothing() {
    let app = TestApp::spawn().await;
    let waiting = protocol(&app.admit("Esperando", Some("yellow")).await);
    let before = snapshot(&app, &waiting).await;
    for action in ["start", "no-show", "recall"] {
        let p = app
            .action(&waiting, action)
            .await
            .expect_problem(409, "invalid_transition");
        assert!(p["detail"].as_str().unwrap().contains("waiting"), "{p}");
    }
    app.finish(&waiting, "discharged")
        .await
        .expect_problem(409, "invalid_transition");
    assert_eq!(snapshot(&app, &waiting).await, before);

    let awaiting = protocol(&app.admit("Sem cor", None).await);
    let before = snapshot(&app, &awaiting).await;
    for action in ["start", "no-show", "recall"] {
        app.action(&awaiting, action)
            .await
            .expect_problem(409, "invalid_transition");
    }
    assert_eq!(snapshot(&app, &awaiting).await, before);
}

#[tokio::test]
async fn finishing_twice_is_409_and_keeps_the_first_outcome() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    app.call(ROOM).await.expect(200);
    app.finish(&p, "discharged").await.expect(200);
    let before = snapshot(&app, &p).await;
    app.advance(TimeDelta::minutes(1));
    let before_time = before.0.clone();
    app.finish(&p, "deceased")
        .await
        .expect_problem(409, "invalid_transition");
    let after = app.patient(&p).await;
    assert_eq!(after["outcome"], "discharged");
    assert_eq!(after["closed_at"], before_time["closed_at"]);
    assert_eq!(app.care_history(&p).await.len(), before.1);
}

#[tokio::test]
async fn a_finished_or_in_treatment_patient_cannot_be_triaged_transferred_or_started_again() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("green")).await);
    app.call(ROOM).await.expect(200);
    app.action(&p, "start").await.expect(200);
    let before = snapshot(&app, &p).await;
    app.action(&p, "start")
        .await
        .expect_problem(409, "invalid_transition");
    app.triage(&p, "red")
        .await
        .expect_problem(409, "invalid_transition");
    app.post_json(&format!("/patients/{p}/transfer"), &json!({"unit": "pa"}))
        .await
        .expect_problem(409, "invalid_transition");
    app.action(&p, "recall")
        .await
        .expect_problem(409, "invalid_transition");
    assert_eq!(snapshot(&app, &p).await, before);
}

// ---- 413 too_large ----

#[tokio::test]
async fn a_body_over_16384_bytes_is_413_and_admits_nobody() {
    let app = TestApp::spawn().await;
    let body = json!({"name": "Ana", "complaint": "x".repeat(16_384)});
    app.admit_raw(UNIT, &body)
        .await
        .expect_problem(413, "too_large");
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn a_body_of_exactly_16384_bytes_is_read() {
    let app = TestApp::spawn().await;
    // Valid JSON, right at the limit; it then fails validation, not size.
    let head = r#"{"name": "Ana", "complaint": ""#;
    let tail = r#""}"#;
    let text = format!(
        "{head}{}{tail}",
        "x".repeat(16_384 - head.len() - tail.len())
    );
    assert_eq!(text.len(), 16_384);
    app.post_raw(&format!("/units/{UNIT}/patients"), "application/json", text)
        .await
        .expect_problem(422, "invalid");
}

#[tokio::test]
async fn a_chunked_body_that_grows_past_16384_bytes_is_413() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/units/{UNIT}/patients HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(4096);
    // No Content-Length: only counting the chunks can find out.
    let mut sent = 0;
    while sent <= 16_384 {
        let frame = format!("{:x}\r\n{chunk}\r\n", chunk.len());
        if stream.write_all(frame.as_bytes()).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut response = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut response),
    )
    .await;
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("application/problem+json"), "{text}");
    assert!(text.contains("\"too_large\""), "{text}");
    assert_nobody_admitted(&app).await;
}

// ---- 415 unsupported_media_type ----

#[tokio::test]
async fn a_text_plain_body_is_415_and_admits_nobody() {
    let app = TestApp::spawn().await;
    app.post_raw(
        &format!("/units/{UNIT}/patients"),
        "text/plain",
        r#"{"name": "Ana"}"#,
    )
    .await
    .expect_problem(415, "unsupported_media_type");
    // No content type at all.
    let r = app
        .client
        .post(app.url(&format!("/units/{UNIT}/patients")))
        .body(r#"{"name": "Ana"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn a_text_plain_body_on_an_optional_body_endpoint_is_415() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", None).await);
    app.post_raw(&format!("/patients/{p}/leave"), "text/plain", "cancelled")
        .await
        .expect_problem(415, "unsupported_media_type");
    assert_eq!(app.patient(&p).await["status"], "awaiting_triage");
}

#[tokio::test]
async fn a_json_content_type_with_parameters_is_accepted() {
    let app = TestApp::spawn().await;
    app.post_raw(
        &format!("/units/{UNIT}/patients"),
        "application/json; charset=utf-8",
        r#"{"name": "Ana"}"#,
    )
    .await
    .expect(201);
}

// ---- 422 invalid ----

#[tokio::test]
async fn invalid_admissions_are_422_and_admit_nobody() {
    let app = TestApp::spawn().await;
    let now = start_time();
    let bad = [
        json!({"name": "Ana", "colour": "purple"}),
        json!({"name": "Ana", "colour": "Red"}),
        json!({"name": ""}),
        json!({"name": "   \t  "}),
        json!({"name": "a".repeat(201)}),
        json!({"name": "Ana", "arrived_at": (now + TimeDelta::seconds(6)).to_rfc3339()}),
        json!({"name": "Ana", "arrived_at": (now + TimeDelta::hours(1)).to_rfc3339()}),
        json!({"name": "Ana", "arrived_at": (now - TimeDelta::hours(24) - TimeDelta::seconds(1)).to_rfc3339()}),
        json!({"name": "Ana", "arrived_at": "yesterday"}),
        json!({"name": "Ana", "complaint": "x".repeat(1001)}),
        json!({"name": "Ana", "document": "1".repeat(33)}),
        json!({"name": "Ana", "birth_date": "04/05/1970"}),
        json!({"name": "Ana", "birth_date": "2027-01-01"}),
        json!({"colour": "red"}),
        json!({"name": 42}),
    ];
    for body in &bad {
        let r = app.admit_raw(UNIT, body).await;
        assert_eq!(r.status.as_u16(), 422, "{body} gave {}", r.text);
        r.expect_problem(422, "invalid");
    }
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn the_422_detail_says_what_is_wrong() {
    let app = TestApp::spawn().await;
    let p = app
        .admit_raw(UNIT, &json!({"name": "Ana", "colour": "purple"}))
        .await
        .expect_problem(422, "invalid");
    assert!(p["detail"].as_str().unwrap().contains("purple"), "{p}");
    let p = app
        .admit_raw(UNIT, &json!({"name": " "}))
        .await
        .expect_problem(422, "invalid");
    assert!(p["detail"].as_str().unwrap().contains("name"), "{p}");
}

/// A 422 about one value names it in `field`, so a page can say which, in its
/// own words; a body of the wrong shape names none.
#[tokio::test]
async fn a_422_names_the_field_to_correct() {
    let app = TestApp::spawn().await;
    let field = |p: Value| p["field"].clone();
    let cases = [
        (json!({"name": "Ana", "colour": "purple"}), "colour"),
        (json!({"name": " "}), "name"),
        (
            json!({"name": "Ana", "arrived_at": "2030-01-01T00:00:00Z"}),
            "arrived_at",
        ),
        (
            json!({"name": "Ana", "birth_date": "2030-01-01"}),
            "birth_date",
        ),
        (
            json!({"name": "Ana", "complaint": "x".repeat(1001)}),
            "complaint",
        ),
        (
            json!({"name": "Ana", "document": "1".repeat(33)}),
            "document",
        ),
    ];
    for (body, expected) in cases {
        let p = app
            .admit_raw(UNIT, &body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(field(p), expected, "{body}");
    }
    let p = app
        .post_json(&format!("/units/{UNIT}/call"), &json!({"room": "Sala 9"}))
        .await
        .expect_problem(422, "invalid");
    assert_eq!(field(p), "room");
    let p = app
        .post_json(
            &format!("/units/{UNIT}/call"),
            &json!({"room": ROOM, "colours": ["purple"]}),
        )
        .await
        .expect_problem(422, "invalid");
    assert_eq!(field(p), "colours");
    // Values of the wrong type or missing, and where they are.
    let shapes = [
        (json!({"name": 7}), "name"),
        (json!({"colour": "red"}), "name"),
        (json!({"name": "Ana", "colour": "RED"}), "colour"),
        (
            json!({"name": "Ana", "contact": {"phone": 5}}),
            "contact.phone",
        ),
        (
            json!({"name": "Ana", "contact": ["+5511987654321"]}),
            "contact",
        ),
        (
            json!({"name": "Ana", "arrived_at": "yesterday"}),
            "arrived_at",
        ),
    ];
    for (body, expected) in shapes {
        let p = app
            .admit_raw(UNIT, &body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(field(p), expected, "{body}");
    }
    let calls = [
        (json!({"queue": "triage"}), "room"),
        (json!({"room": ROOM, "queue": 1}), "queue"),
        (json!({"room": ROOM, "colours": ["green", 5]}), "colours[1]"),
    ];
    for (body, expected) in calls {
        let p = app
            .post_json(&format!("/units/{UNIT}/call"), &body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(field(p), expected, "{body}");
    }
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    for body in ["[]", r#"["Ana", "red"]"#, r#""Ana""#, "7", "null", "true"] {
        let p = app
            .post_raw(&format!("/units/{UNIT}/patients"), "application/json", body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(p["detail"], "the body must be a JSON object", "{body}");
    }
    assert_nobody_admitted(&app).await;

    // serde would fill the fields of these bodies from an array, in order.
    let p = protocol(&app.admit("Ana", None).await);
    let before = snapshot(&app, &p).await;
    for (path, body) in [
        (format!("/patients/{p}/triage"), r#"["red"]"#),
        (format!("/patients/{p}/leave"), r#"["cancelled"]"#),
        (format!("/patients/{p}/leave"), "[]"),
        (format!("/patients/{p}/finish"), r#"["discharged"]"#),
        (
            format!("/units/{UNIT}/call"),
            r#"["treatment", "Consultório 1"]"#,
        ),
    ] {
        app.post_raw(&path, "application/json", body)
            .await
            .expect_problem(422, "invalid");
    }
    assert_eq!(snapshot(&app, &p).await, before);
}

#[tokio::test]
async fn an_enum_of_the_wrong_type_is_422_naming_it_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("green")).await);
    let before = snapshot(&app, &p).await;
    let cases = [
        (
            format!("/patients/{p}/finish"),
            json!({"outcome": null}),
            "outcome",
        ),
        (
            format!("/patients/{p}/finish"),
            json!({"outcome": 5}),
            "outcome",
        ),
        (format!("/patients/{p}/finish"), json!({}), "outcome"),
        (
            format!("/patients/{p}/leave"),
            json!({"reason": 5}),
            "reason",
        ),
        (
            format!("/patients/{p}/leave"),
            json!({"reason": ["lwbs"]}),
            "reason",
        ),
        (
            format!("/units/{UNIT}/call"),
            json!({"room": ROOM, "queue": false}),
            "queue",
        ),
    ];
    for (path, body, field) in cases {
        let problem = app
            .post_json(&path, &body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(problem["field"], field, "{path} {body}");
    }
    assert_eq!(snapshot(&app, &p).await, before);
}

#[tokio::test]
async fn null_for_an_optional_field_is_its_default() {
    let app = TestApp::spawn().await;
    let first = protocol(&app.admit("Ana", Some("green")).await);
    let second = protocol(&app.admit("Bia", Some("green")).await);
    let called = app
        .post_json(
            &format!("/units/{UNIT}/call"),
            &json!({"room": ROOM, "queue": null, "colours": null}),
        )
        .await
        .expect(200);
    assert_eq!(
        called["protocol"],
        first.as_str(),
        "from the treatment queue"
    );
    let left = app
        .post_json(
            &format!("/patients/{second}/leave"),
            &json!({"reason": null}),
        )
        .await
        .expect(200);
    assert_eq!(left["leave_reason"], "lwbs");
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Caio", "colour": null, "complaint": null, "contact": null}),
        )
        .await
        .expect(201);
    assert_eq!(v["status"], "awaiting_triage");
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "Duda", "contact": {"phone": "+5511987654321", "consent": null}}),
        )
        .await
        .expect(201);
    assert_eq!(v["contact"]["consent"], false, "{v}");
}

#[tokio::test]
async fn triage_to_an_unknown_colour_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("green")).await);
    let before = snapshot(&app, &p).await;
    app.triage(&p, "orange")
        .await
        .expect_problem(422, "invalid");
    app.post_json(&format!("/patients/{p}/triage"), &json!({}))
        .await
        .expect_problem(422, "invalid");
    assert_eq!(snapshot(&app, &p).await, before);
}

#[tokio::test]
async fn a_call_to_an_unknown_room_or_colour_is_422_and_calls_nobody() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    let before = snapshot(&app, &p).await;
    for body in [
        json!({"room": "Consultório 9"}),
        json!({"room": ROOM, "colours": ["purple"]}),
        json!({"room": ROOM, "colours": []}),
        json!({"queue": "triage", "room": "Sala X"}),
        json!({}),
    ] {
        let r = app.post_json(&format!("/units/{UNIT}/call"), &body).await;
        assert_eq!(r.status.as_u16(), 422, "{body} gave {}", r.text);
        r.expect_problem(422, "invalid");
    }
    let r = app
        .post_json(
            &format!("/units/{UNIT}/call"),
            &json!({"queue": "lobby", "room": ROOM}),
        )
        .await;
    r.expect_problem(422, "invalid");
    assert_eq!(snapshot(&app, &p).await, before);
    assert_eq!(before.2["calls"], json!([]));
}

#[tokio::test]
async fn finish_with_an_unknown_outcome_is_422() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", Some("red")).await);
    app.call(ROOM).await.expect(200);
    app.finish(&p, "cured").await.expect_problem(422, "invalid");
    assert_eq!(app.patient(&p).await["status"], "called");
}

#[tokio::test]
async fn a_queue_limit_over_1000_is_422() {
    let app = TestApp::spawn().await;
    app.get(&format!("/units/{UNIT}/queue?limit=1001"))
        .await
        .expect_problem(422, "invalid");
    app.get(&format!("/units/{UNIT}/queue?limit=1000"))
        .await
        .expect(200);
}

#[tokio::test]
async fn an_invalid_idempotency_key_is_422_and_admits_nobody() {
    let app = TestApp::spawn().await;
    for key in ["has space", &"k".repeat(201)] {
        let r = app
            .client
            .post(app.url(&format!("/units/{UNIT}/patients")))
            .header("Idempotency-Key", key)
            .json(&json!({"name": "Ana"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 422);
    }
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn two_idempotency_keys_are_400_and_admit_nobody() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(app.url(&format!("/units/{UNIT}/patients")))
        .header("Idempotency-Key", "a")
        .header("Idempotency-Key", "b")
        .json(&json!({"name": "Ana"}))
        .send()
        .await
        .unwrap();
    crate::helpers::Resp::from(r)
        .await
        .expect_problem(400, "malformed");
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn text_with_control_or_invisible_characters_is_422_and_admits_nobody() {
    let app = TestApp::spawn().await;
    let cases = [
        (json!({"name": "Ana", "complaint": "dor\u{0}"}), "complaint"),
        (
            json!({"name": "Ana", "complaint": "\u{1b}[2Jdor"}),
            "complaint",
        ),
        (json!({"name": "Ana", "document": "123\t456"}), "document"),
        (json!({"name": "Ana", "document": "12\u{85}3"}), "document"),
        (json!({"name": "\u{200b}"}), "name"),
        (json!({"name": "\u{feff} \u{200b}\u{2060}"}), "name"),
        (json!({"name": "Maria \u{202e}avlis"}), "name"),
        (json!({"name": "Ana \u{2067}X\u{2069}"}), "name"),
        // Overrides reorder what follows them on a screen, in any free text.
        (
            json!({"name": "Ana", "complaint": "dor \u{202e}etrof"}),
            "complaint",
        ),
        (
            json!({"name": "Ana", "document": "12\u{202d}3"}),
            "document",
        ),
    ];
    for (body, field) in cases {
        let p = app
            .admit_raw(UNIT, &body)
            .await
            .expect_problem(422, "invalid");
        assert_eq!(p["field"], field, "{body}");
    }
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn line_breaks_and_right_to_left_names_are_accepted() {
    let app = TestApp::spawn().await;
    let v = app
        .admit_raw(
            UNIT,
            &json!({"name": "مريم الحسن", "complaint": "dor no peito\nhá 2 horas\tforte"}),
        )
        .await
        .expect(201);
    assert_eq!(v["name"], "مريم الحسن");
    assert_eq!(v["complaint"], "dor no peito\nhá 2 horas\tforte");
    // A zero-width joiner inside a name is part of how some scripts are written.
    app.admit_raw(UNIT, &json!({"name": "می\u{200c}خواهم"}))
        .await
        .expect(201);
    let p = protocol(&v);
    app.post_json(
        &format!("/patients/{p}/triage"),
        &json!({"colour": "green", "note": "PA 12x8\nsem febre"}),
    )
    .await
    .expect(200);
}

#[tokio::test]
async fn a_triage_note_with_control_characters_is_422_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let p = protocol(&app.admit("Ana", None).await);
    let before = snapshot(&app, &p).await;
    // Control characters, and an isolate that reorders what follows.
    for note in ["a\u{0}b\u{1b}[2J", "PA \u{2067}21x8\u{2069}"] {
        let problem = app
            .post_json(
                &format!("/patients/{p}/triage"),
                &json!({"colour": "green", "note": note}),
            )
            .await
            .expect_problem(422, "invalid");
        assert_eq!(problem["field"], "note", "{note:?}");
    }
    assert_eq!(snapshot(&app, &p).await, before);
}

#[tokio::test]
async fn an_arrival_at_second_60_is_422_and_admits_nobody() {
    let app = TestApp::spawn().await;
    let at = (start_time() - TimeDelta::minutes(5)).format("%Y-%m-%dT%H:%M:60Z");
    let p = app
        .admit_raw(UNIT, &json!({"name": "Ana", "arrived_at": at.to_string()}))
        .await
        .expect_problem(422, "invalid");
    assert_eq!(p["field"], "arrived_at");
    assert_nobody_admitted(&app).await;
}

#[tokio::test]
async fn a_date_not_written_yyyy_mm_dd_is_refused() {
    let app = TestApp::spawn().await;
    for birth in [
        "+2000-02-01",
        "2000-2-1",
        "-0001-01-01",
        "0000-01-01",
        "1899-12-31",
    ] {
        let p = app
            .admit_raw(UNIT, &json!({"name": "Ana", "birth_date": birth}))
            .await
            .expect_problem(422, "invalid");
        assert_eq!(p["field"], "birth_date", "{birth}");
    }
    assert_nobody_admitted(&app).await;
    let v = app
        .admit_raw(UNIT, &json!({"name": "Bia", "birth_date": "1900-01-01"}))
        .await
        .expect(201);
    assert_eq!(v["birth_date"], "1900-01-01");
    for query in [
        "from=2026-1-1",
        "from=%2B2026-11-01",
        "from=-0001-01-01&to=-0001-01-02",
        "to=2026-11-28T00:00:00Z",
    ] {
        app.get(&format!("/reports/summary?{query}"))
            .await
            .expect_problem(400, "malformed");
        app.get(&format!("/reports/daily?{query}"))
            .await
            .expect_problem(400, "malformed");
    }
    app.get("/reports/summary?from=2026-11-01&to=2026-11-28")
        .await
        .expect(200);
}
