//! `/units`, `/protocol`, `/healthz`, `/readyz` and the pages' assets.

use serde_json::json;

use crate::helpers::TestApp;

#[tokio::test]
async fn healthz_says_the_process_is_alive() {
    let app = TestApp::spawn().await;
    let body = app.get_abs("/healthz").await.expect(200);
    assert_eq!(body, json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_says_ready_once_the_journal_is_recovered() {
    let app = TestApp::spawn().await;
    let body = app.get_abs("/readyz").await.expect(200);
    // With SQLite this one process always leads, under no lease (term 0).
    assert_eq!(
        body,
        json!({"status": "ready", "role": "leader", "term": 0})
    );
}

#[tokio::test]
async fn units_lists_the_configured_units() {
    let app = TestApp::spawn().await;
    let body = app.get("/units").await.expect(200);
    assert_eq!(
        body,
        json!([{
            "id": "pa",
            "name": "Pronto Atendimento",
            "ticket_prefix": "A",
            "rooms": ["Triagem 1", "Consultório 1", "Consultório 2"],
            "triage_rooms": ["Triagem 1"],
            "max_no_shows": 3
        }])
    );
}

#[tokio::test]
async fn units_lists_a_second_unit_when_configured() {
    let app = TestApp::spawn_with(
        crate::helpers::with_second_unit,
        std::sync::Arc::new(triagem::clock::ManualClock::new(
            crate::helpers::start_time(),
        )),
    )
    .await;
    let body = app.get("/units").await.expect(200);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["pa", "obs"]);
    assert_eq!(body[1]["ticket_prefix"], "B");
}

#[tokio::test]
async fn protocol_describes_the_default_brazilian_scale() {
    let app = TestApp::spawn().await;
    let body = app.get("/protocol").await.expect(200);
    assert_eq!(
        body,
        json!({
            "name": "Acolhimento com Classificação de Risco",
            "clock_starts": "triage",
            "triage_max_wait_seconds": 600,
            "colours": [
                {"id": "red", "label": "Vermelho", "max_wait_seconds": 0},
                {"id": "yellow", "label": "Amarelo", "max_wait_seconds": 1800},
                {"id": "green", "label": "Verde", "max_wait_seconds": 7200},
                {"id": "blue", "label": "Azul", "max_wait_seconds": 10800}
            ],
            "timezone": "America/Sao_Paulo",
            // No channel in the shipped config: the desk says no message goes out.
            "messages": {"channels": [], "on": ["admitted", "called"]}
        })
    );
}

#[tokio::test]
async fn page_assets_are_revalidated_by_their_etag() {
    let app = TestApp::spawn().await;
    let url = format!("{}/assets/app.css", app.address);
    let first = app.client.get(&url).send().await.expect("GET");
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag}");
    assert_eq!(first.headers()["cache-control"], "no-cache");
    let again = |tag: &str| {
        app.client
            .get(&url)
            .header("if-none-match", tag.to_owned())
            .send()
    };
    assert_eq!(again(&etag).await.expect("GET").status(), 304);
    assert_eq!(
        again(&format!("\"old\", W/{etag}"))
            .await
            .expect("GET")
            .status(),
        304,
        "any listed tag, compared weakly"
    );
    let changed = again("\"old\"").await.expect("GET");
    assert_eq!(changed.status(), 200);
    assert!(
        changed.text().await.unwrap().contains('{'),
        "the stylesheet"
    );
    assert_eq!(
        app.client
            .get(format!("{}/assets/nothing.js", app.address))
            .send()
            .await
            .expect("GET")
            .status(),
        404
    );
}

#[tokio::test]
async fn head_answers_like_get_without_the_body() {
    let app = TestApp::spawn().await;
    for path in [
        "/healthz",
        "/readyz",
        "/api/v1/units",
        "/display/pa",
        "/metrics",
    ] {
        let url = format!("{}{path}", app.address);
        let get = app.client.get(&url).send().await.expect("GET");
        let get_type = get.headers().get("content-type").cloned();
        let get_len = get.bytes().await.expect("GET body").len();
        let head = app.client.head(&url).send().await.expect("HEAD");
        assert_eq!(head.status(), 200, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "{path}"
        );
        if path != "/metrics" {
            // (The metrics count the GET, so their length moves.)
            let len = head.headers().get("content-length").expect("a length");
            assert_eq!(len.to_str().unwrap(), get_len.to_string(), "{path}");
        }
        assert!(head.bytes().await.expect("HEAD body").is_empty(), "{path}");
    }
    // Not the event stream, whose body never ends, nor a POST route.
    for (path, allow) in [
        ("/api/v1/units/pa/events", "GET"),
        ("/api/v1/units/pa/call", "POST"),
    ] {
        let head = app
            .client
            .head(format!("{}{path}", app.address))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), 405, "{path}");
        assert_eq!(head.headers()["allow"], allow, "{path}");
    }
}

/// A unit's name is the config's free text, shown escaped, and taken as
/// written: a `{{v}}` in it was replaced by the assets' version.
#[tokio::test]
async fn a_unit_name_reaches_its_pages_escaped_and_as_written() {
    let app = TestApp::spawn_with(
        |c| c.units[0].name = "Ala {{v}} <b>&".into(),
        std::sync::Arc::new(triagem::clock::ManualClock::new(
            crate::helpers::start_time(),
        )),
    )
    .await;
    for page in ["display", "reception", "clinician", "reports"] {
        let r = app
            .client
            .get(format!("{}/{page}/pa", app.address))
            .send()
            .await
            .expect("GET the page");
        let html = r.text().await.expect("the page");
        assert!(html.contains("Ala {{v}} &lt;b&gt;&amp;"), "{page}: {html}");
        assert!(!html.contains("<b>&"), "{page}");
    }
}

/// No answer may be sniffed into something a browser runs: JSON, problems,
/// CSV, the QR code's SVG and the metrics carry `nosniff` like the pages.
/// Nor kept in a browser's cache: a patient, a search, a history.
#[tokio::test]
async fn every_answer_says_nosniff_and_no_store() {
    let app = TestApp::spawn().await;
    let p = crate::helpers::protocol(&app.admit("Ana", None).await);
    // (path, whether it answers 200 with a patient's data)
    let paths = [
        (format!("/api/v1/patients/{p}"), true),
        ("/api/v1/patients?q=ana".to_owned(), true),
        (format!("/api/v1/patients/{p}/history"), true),
        ("/api/v1/units/pa/queue".to_owned(), true),
        ("/api/v1/units".to_owned(), false),
        (format!("/api/v1/patients/{p}/qr"), false),
        ("/api/v1/patients/00000000000000000".to_owned(), false),
        ("/api/v1/reports/summary.csv".to_owned(), false),
        ("/metrics".to_owned(), false),
        ("/nowhere".to_owned(), false),
    ];
    for (path, personal) in paths {
        let r = app
            .client
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .expect("GET");
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap());
        assert_eq!(header("x-content-type-options"), Some("nosniff"), "{path}");
        if personal {
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(header("cache-control"), Some("no-store"), "{path}");
        }
    }
}
