//! `/metrics`: requests counted and timed by route pattern, never by the
//! patient in the path.

use crate::helpers::{protocol, TestApp};

const ADMIT: &str = r#"method="POST",route="/api/v1/units/{unit}/patients""#;
const LOOKUP: &str = r#"method="GET",route="/api/v1/patients/{protocol}""#;

/// The `le` bounds and counts of one route's duration histogram, in order.
fn buckets(text: &str, labels: &str) -> Vec<(String, f64)> {
    let prefix = format!("triagem_http_request_duration_seconds_bucket{{{labels},le=\"");
    text.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(|rest| {
            let (le, count) = rest.split_once("\"} ").expect("a bucket sample");
            (le.to_owned(), count.parse().expect("a count"))
        })
        .collect()
}

#[tokio::test]
async fn requests_are_counted_and_timed_by_route_never_by_patient() {
    let app = TestApp::spawn().await;
    let name = "Zuleica Metricsova";
    let first = protocol(&app.admit(name, Some("green")).await);
    let second = protocol(&app.admit(name, Some("yellow")).await);
    app.patient(&first).await;
    app.patient(&second).await;
    app.get("/patients/20260000000009999").await.expect(404);

    let text = app.get_abs("/metrics").await.text;
    for secret in [
        name,
        "Zuleica",
        first.as_str(),
        second.as_str(),
        "20260000000009999",
    ] {
        assert!(
            !text.contains(secret),
            "`{secret}` reached /metrics:\n{text}"
        );
    }
    let admitted = format!("triagem_http_requests_total{{{ADMIT},status=\"201\"}}");
    assert_eq!(app.metric(&admitted).await, 2.0);
    let found = format!("triagem_http_requests_total{{{LOOKUP},status=\"200\"}}");
    let missing = format!("triagem_http_requests_total{{{LOOKUP},status=\"404\"}}");
    assert_eq!(app.metric(&found).await, 2.0);
    assert_eq!(app.metric(&missing).await, 1.0);

    // Sub-millisecond buckets, so a dashboard can tell a 1 ms answer from a
    // 4 ms one against the 5 ms target; cumulative, ending in every request.
    let b = buckets(&text, LOOKUP);
    let bounds: Vec<&str> = b.iter().map(|(le, _)| le.as_str()).collect();
    assert_eq!(
        bounds,
        [
            "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1", "2.5", "5", "10", "+Inf"
        ]
    );
    assert!(b.windows(2).all(|w| w[0].1 <= w[1].1), "{b:?}");
    assert_eq!(b.last().map(|(_, n)| *n), Some(3.0));
    let count = format!("triagem_http_request_duration_seconds_count{{{LOOKUP}}}");
    assert_eq!(app.metric(&count).await, 3.0);
}

#[tokio::test]
async fn a_made_up_method_is_counted_as_other() {
    let app = TestApp::spawn().await;
    for (method, path) in [("20260000000000001", "/healthz"), ("ZULEICA", "/nothing")] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method token");
        let res = app
            .client
            .request(method, format!("{}{path}", app.address))
            .send()
            .await
            .expect("a made-up method is answered");
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    let text = app.get_abs("/metrics").await.text;
    for secret in ["20260000000000001", "ZULEICA"] {
        assert!(!text.contains(secret), "`{secret}` reached /metrics");
    }
    let other = r#"triagem_http_requests_total{method="other",route="/healthz",status="405"}"#;
    assert_eq!(app.metric(other).await, 1.0);
}
