//! `GET /api/v1/openapi.json`: an OpenAPI 3 document that
//! lists every endpoint of the contract with its methods, whose operations are
//! all served by the route table (so the document and the routes cannot drift
//! apart), whose references all resolve, and which is behind the role check.

use std::collections::BTreeSet;
use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use triagem::auth::new_token;
use triagem::auth::{AuthMode, Role, Token, TokenHash};
use triagem::clock::ManualClock;

use crate::helpers::{protocol, start_time, TestApp, API, UNIT};

/// Every endpoint under `/api/v1`, and those outside it.
const CONTRACT: [(&str, &str); 30] = [
    ("get", "/api/v1/reports/summary"),
    ("get", "/api/v1/reports/summary.csv"),
    ("get", "/api/v1/reports/daily"),
    ("get", "/api/v1/track/{protocol}"),
    ("get", "/api/v1/patients/{protocol}/qr"),
    ("get", "/api/v1/patients/{protocol}/messages"),
    ("post", "/api/v1/units/{unit}/patients"),
    ("get", "/api/v1/patients"),
    ("get", "/api/v1/session"),
    ("get", "/api/v1/patients/{protocol}"),
    ("get", "/api/v1/patients/{protocol}/history"),
    ("post", "/api/v1/patients/{protocol}/triage"),
    ("post", "/api/v1/units/{unit}/call"),
    ("post", "/api/v1/patients/{protocol}/start"),
    ("post", "/api/v1/patients/{protocol}/finish"),
    ("post", "/api/v1/patients/{protocol}/no-show"),
    ("post", "/api/v1/patients/{protocol}/leave"),
    ("post", "/api/v1/patients/{protocol}/recall"),
    ("post", "/api/v1/patients/{protocol}/transfer"),
    ("get", "/api/v1/units/{unit}/queue"),
    ("get", "/api/v1/units/{unit}/board"),
    ("get", "/api/v1/units/{unit}/events"),
    ("get", "/api/v1/alerts"),
    ("post", "/api/v1/alerts/{id}/ack"),
    ("get", "/api/v1/units"),
    ("get", "/api/v1/protocol"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let r = app.get("/openapi.json").await;
    assert_eq!(
        r.header("content-type"),
        Some("application/json"),
        "{:?}",
        r.headers
    );
    r.expect(200)
}

/// Every `(method, path)` the document describes.
fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

/// Follows a local `$ref` (`#/components/...`).
#[track_caller]
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let pointer = r.strip_prefix('#').expect("a local reference");
            doc.pointer(pointer)
                .unwrap_or_else(|| panic!("unresolved reference {r}"))
        }
        None => v,
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_with_every_endpoint_of_the_contract() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "OpenAPI version {version}");
    assert!(doc["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));

    let documented = operations(&doc);
    for (method, path) in CONTRACT {
        assert!(
            documented.iter().any(|(m, p)| m == method && p == path),
            "{} {path} is not in the document",
            method.to_uppercase()
        );
    }
    assert_eq!(
        documented.len(),
        CONTRACT.len(),
        "operations beyond the contract: {documented:?}"
    );
    let mut ids: Vec<&str> = documented
        .iter()
        .map(|(m, p)| doc["paths"][p][m]["operationId"].as_str().expect("id"))
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), documented.len(), "operation ids are unique");
}

#[tokio::test]
async fn every_operation_documents_its_parameters_bodies_and_problems() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;

    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        let what = format!("{} {path}", method.to_uppercase());
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{what}: no success response"
        );
        // Every problem is problem+json with the Problem schema.
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let schema = &resolve(&doc, response)["content"]["application/problem+json"]["schema"];
            assert_eq!(
                schema["$ref"], "#/components/schemas/Problem",
                "{what} {status}: {response}"
            );
        }
        let open = matches!(
            path.as_str(),
            "/healthz" | "/readyz" | "/api/v1/track/{protocol}"
        );
        if !open {
            // Any token-checked route may answer 401 and 403.
            for status in ["401", "403"] {
                assert!(responses.contains_key(status), "{what}: no {status}");
            }
        }
        // Path parameters: declared, required; protocols are 17 digits.
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        // Listed once each (OpenAPI 3 requires it: a validator refuses the
        // whole document otherwise, and client generators with it).
        let mut seen = BTreeSet::new();
        for p in params.iter().map(|p| resolve(&doc, p)) {
            let key = (p["name"].to_string(), p["in"].to_string());
            assert!(seen.insert(key), "{what}: parameter listed twice: {p}");
        }
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let p = params
                .iter()
                .map(|p| resolve(&doc, p))
                .find(|p| p["name"] == name && p["in"] == "path")
                .unwrap_or_else(|| panic!("{what}: path parameter {name} undeclared"));
            assert_eq!(p["required"], true, "{what}: {name}");
            if name == "protocol" {
                assert_eq!(p["schema"]["pattern"], "^[0-9]{17}$", "{what}");
                for status in ["400", "404"] {
                    assert!(responses.contains_key(status), "{what}: no {status}");
                }
            }
        }
        // A JSON body: documented, with the 413 and 415 of reading it.
        if let Some(body) = op.get("requestBody") {
            let body = resolve(&doc, body);
            assert!(
                body["content"]["application/json"]["schema"].is_object(),
                "{what}: {body}"
            );
            for status in ["400", "413", "415", "422"] {
                assert!(responses.contains_key(status), "{what}: no {status}");
            }
        }
        // A change may find the journal unwritable.
        if method == "post" {
            assert!(responses.contains_key("503"), "{what}: no 503");
        }
    }

    let admit = &doc["paths"]["/api/v1/units/{unit}/patients"]["post"];
    assert!(
        admit["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
        "Idempotency-Key header: {admit}"
    );
    assert_eq!(admit["requestBody"]["required"], true);
    assert!(admit["responses"]["201"]["headers"]["Location"].is_object());
    for status in ["404", "429"] {
        assert!(admit["responses"].get(status).is_some(), "admit: {status}");
    }
    // The bodies that may be left out are optional.
    for path in [
        "/api/v1/patients/{protocol}/leave",
        "/api/v1/alerts/{id}/ack",
    ] {
        let body = &doc["paths"][path]["post"]["requestBody"];
        assert_ne!(body["required"], true, "{path}: {body}");
    }
    let query: Vec<&str> = doc["paths"]["/api/v1/units/{unit}/queue"]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(query, ["queue", "limit", "offset"]);
    let call = &doc["paths"]["/api/v1/units/{unit}/call"]["post"]["responses"];
    assert!(call.get("204").is_some(), "call: 204 when nobody waits");

    // Bearer tokens, required everywhere except health and readiness.
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(scheme["type"], "http");
    assert_eq!(scheme["scheme"], "bearer");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    for open in ["/healthz", "/readyz"] {
        assert_eq!(
            doc["paths"][open]["get"]["security"],
            serde_json::json!([{}]),
            "{open} needs no token"
        );
    }
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    fn walk(doc: &Value, v: &Value, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("{r}"));
                    assert!(doc.pointer(pointer).is_some(), "unresolved {r}");
                    *seen += 1;
                }
                map.values().for_each(|v| walk(doc, v, seen));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(doc, v, seen)),
            _ => {}
        }
    }
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 50, "only {seen} references");
    for schema in ["PatientView", "Board", "Alert", "HistoryEntry", "Problem"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} schema"
        );
    }
}

/// The route table serves every documented operation: a request with real
/// path values reaches a handler (no 405, no "no such resource" 404).
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let patient = protocol(&app.admit("Maria Silva", Some("yellow")).await);

    for (method, path) in operations(&doc) {
        let url = format!(
            "{}{}",
            app.address,
            path.replace("{unit}", UNIT)
                .replace("{protocol}", &patient)
                .replace("{id}", "1")
        );
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut req = app.client.request(method.clone(), &url);
        if method == Method::POST {
            req = req.header("content-type", "application/json").body("{}");
        }
        // Headers only: the event stream never ends.
        let r = req.send().await.expect("request");
        let status = r.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        if status == StatusCode::NOT_FOUND {
            let body: Value = r.json().await.expect("problem");
            let detail = body["detail"].as_str().unwrap_or_default();
            assert!(
                !detail.starts_with("no such resource"),
                "{method} {path} is not routed: {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_document_is_behind_the_role_check() {
    let display = new_token();
    let app = TestApp::spawn_with(
        |c| {
            c.auth.mode = AuthMode::Tokens;
            c.auth.tokens = vec![Token {
                name: "painel-1".into(),
                role: Role::Display,
                sha256: TokenHash::of(&display),
            }];
        },
        Arc::new(ManualClock::new(start_time())),
    )
    .await;
    app.get("/openapi.json")
        .await
        .expect_problem(401, "unauthorized");
    let r = app
        .client
        .get(format!("{}{API}/openapi.json", app.address))
        .bearer_auth(&display)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.expect("JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
}

/// Answers carry every field of their schema (`null` where it does not
/// apply), and the document says so: each is `required`, so a client's
/// generated types need not treat an always-present key as optional.
#[tokio::test]
async fn answers_carry_every_field_their_schema_requires() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let red = protocol(&app.admit("Ana", Some("red")).await);
    let green = app.admit("Bruno", Some("green")).await;
    let alert = app.wait_for_alert(&red, |a| a["level"] == 1).await;
    app.call("Consultório 1").await.expect(200);
    let board = app.get(&format!("/units/{UNIT}/board")).await.expect(200);
    let code = green["check_code"].as_str().expect("a check code");
    let track = app
        .client
        .get(app.url(&format!("/track/{}", protocol(&green))))
        .header("Triagem-Check-Code", code)
        .send()
        .await
        .expect("GET /track");
    let track: Value = track.json().await.expect("JSON");
    let summary = app
        .get(&format!("/reports/summary?unit={UNIT}"))
        .await
        .expect(200);
    let daily = app
        .get(&format!("/reports/daily?unit={UNIT}"))
        .await
        .expect(200);
    let session = app.get("/session").await.expect(200);
    let answers = [
        ("PatientView", &green),
        ("Alert", &alert),
        ("Board", &board),
        ("BoardCall", &board["calls"][0]),
        ("BoardQueue", &board["queues"][0]),
        ("FollowView", &track),
        ("Summary", &summary),
        ("ColourSummary", &summary["by_colour"][0]),
        ("Stat", &summary["door_to_provider_seconds"]),
        ("LeftWithoutBeingSeen", &summary["left_without_being_seen"]),
        ("Day", &daily[0]),
        ("SessionView", &session),
    ];
    for (name, answer) in answers {
        let schema = &doc["components"]["schemas"][name];
        let listed = |key: &str| -> Vec<String> {
            let mut v: Vec<String> = match &schema[key] {
                Value::Array(a) => a.iter().map(|k| k.as_str().unwrap().to_owned()).collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => Vec::new(),
            };
            v.sort();
            v
        };
        let mut carried: Vec<String> = answer
            .as_object()
            .unwrap_or_else(|| panic!("{name}: {answer}"))
            .keys()
            .cloned()
            .collect();
        carried.sort();
        assert_eq!(listed("properties"), carried, "{name}: fields of {answer}");
        // An alert's `due_at` only while it is active (as this one is).
        let optional: &[&str] = if name == "Alert" { &["due_at"] } else { &[] };
        carried.retain(|k| !optional.contains(&k.as_str()));
        assert_eq!(listed("required"), carried, "{name}: required");
    }
}
