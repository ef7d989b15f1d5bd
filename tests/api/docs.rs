//! docs/api.md, the repository's API reference, against the running service:
//! its endpoint table lists exactly the operations of the OpenAPI document
//! the server serves, and its configuration table names exactly the keys the
//! config parser accepts.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;
use triagem::config::Config;

use crate::helpers::TestApp;

const METHODS: [&str; 8] = [
    "GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE",
];

fn reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/api.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The cells of a Markdown table row (`| a | b |` → `["a", "b"]`), backticks
/// removed; `None` for a line that is not a table row.
fn cells(line: &str) -> Option<Vec<String>> {
    let inner = line.trim().strip_prefix('|')?.strip_suffix('|')?;
    Some(
        inner
            .split('|')
            .map(|c| c.trim().trim_matches('`').trim().to_owned())
            .collect(),
    )
}

/// The `(method, path)` rows of the endpoint table: every table row whose
/// first cell is an HTTP method and second cell a path. They must form one
/// table (consecutive lines) and not repeat.
fn documented_endpoints(doc: &str) -> BTreeSet<(String, String)> {
    let mut rows = BTreeSet::new();
    let mut lines = Vec::new();
    for (n, line) in doc.lines().enumerate() {
        let Some(cells) = cells(line) else { continue };
        let [method, path, ..] = cells.as_slice() else {
            continue;
        };
        if !METHODS.contains(&method.as_str()) || !path.starts_with('/') {
            continue;
        }
        let row = (method.to_lowercase(), path.clone());
        assert!(
            rows.insert(row),
            "docs/api.md line {}: {method} {path} is listed twice",
            n + 1
        );
        lines.push(n);
    }
    assert!(!lines.is_empty(), "docs/api.md has no endpoint table");
    assert_eq!(
        lines.last().unwrap() - lines[0] + 1,
        lines.len(),
        "docs/api.md: the endpoint rows must form one table (lines {}..={})",
        lines[0] + 1,
        lines.last().unwrap() + 1
    );
    rows
}

/// Every `(method, path)` of the OpenAPI document.
fn served_endpoints(openapi: &Value) -> BTreeSet<(String, String)> {
    let paths = openapi["paths"]
        .as_object()
        .expect("the document has paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .map(|m| m.to_lowercase())
                .filter(|m| item.get(m).is_some())
                .map(move |m| (m, path.clone()))
        })
        .collect()
}

fn listing(set: &BTreeSet<(String, String)>) -> String {
    set.iter()
        .map(|(m, p)| format!("\n  {} {p}", m.to_uppercase()))
        .collect()
}

#[tokio::test]
async fn the_endpoint_table_of_docs_api_md_matches_the_openapi_document() {
    let app = TestApp::spawn().await;
    let openapi = app.get_abs("/api/v1/openapi.json").await.expect(200);
    let served = served_endpoints(&openapi);
    let documented = documented_endpoints(&reference());
    assert!(served.len() > 10, "the OpenAPI document lists {served:?}");

    let undocumented: BTreeSet<_> = served.difference(&documented).cloned().collect();
    let unknown: BTreeSet<_> = documented.difference(&served).cloned().collect();
    assert!(
        undocumented.is_empty() && unknown.is_empty(),
        "docs/api.md and GET /api/v1/openapi.json disagree.\n\
         In the OpenAPI document, missing from the table of docs/api.md:{}\n\
         In the table of docs/api.md, missing from the OpenAPI document:{}",
        listing(&undocumented),
        listing(&unknown)
    );
}

/// The keys in the first column of the tables of the `## Configuration`
/// section: dotted names, `[]` marking an array of tables (`units[].rooms`).
fn documented_config_keys(doc: &str) -> BTreeSet<String> {
    let section = doc
        .split("\n## ")
        .find(|s| s.starts_with("Configuration\n"))
        .expect("docs/api.md has a `## Configuration` section");
    let is_key = |k: &str| {
        !k.is_empty()
            && k.split('.').all(|part| {
                let name = part.strip_suffix("[]").unwrap_or(part);
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            })
    };
    section
        .lines()
        .filter(|line| line.trim_start().starts_with("| `"))
        .filter_map(cells)
        .filter_map(|cells| cells.into_iter().next())
        .filter(|k| is_key(k))
        .collect()
}

/// A TOML document that sets `key` (in the notation above) to a dummy value.
fn toml_setting(key: &str) -> String {
    let (table, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    if table.is_empty() {
        return format!("{leaf} = 0\n");
    }
    assert!(
        !table.trim_end_matches("[]").contains("[]"),
        "{key}: only the innermost table may be an array"
    );
    match table.strip_suffix("[]") {
        Some(array) => format!("[[{array}]]\n{leaf} = 0\n"),
        None => format!("[{table}]\n{leaf} = 0\n"),
    }
}

/// Whether the config parser knows `key`: setting it may fail (the dummy
/// value has the wrong type, required keys are missing) but never as an
/// unknown field.
fn parser_knows(key: &str) -> bool {
    match Config::from_toml(&toml_setting(key)) {
        Ok(_) => true,
        Err(e) => !e.to_string().contains("unknown field"),
    }
}

/// The keys of a TOML table, in the notation above; an empty array (no
/// tables to look into) is named by itself.
fn keys_of(table: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
    for (name, value) in table {
        let key = format!("{prefix}{name}");
        match value {
            toml::Value::Table(t) => keys_of(t, &format!("{key}."), out),
            toml::Value::Array(items) if items.iter().any(toml::Value::is_table) => {
                for item in items.iter().filter_map(toml::Value::as_table) {
                    keys_of(item, &format!("{key}[]."), out);
                }
            }
            _ => {
                out.insert(key);
            }
        }
    }
}

#[test]
fn every_config_key_of_docs_api_md_exists_and_every_shipped_key_is_documented() {
    let documented = documented_config_keys(&reference());
    assert!(
        documented.len() >= 20,
        "docs/api.md, Configuration, lists only {documented:?}"
    );
    assert!(
        !parser_knows("server.no_such_key"),
        "the probe must see an unknown key"
    );
    let unknown: Vec<&String> = documented.iter().filter(|k| !parser_knows(k)).collect();
    assert!(
        unknown.is_empty(),
        "docs/api.md documents config keys the service does not accept: {unknown:?}"
    );

    // The effective settings of the shipped config (defaults filled in),
    // as `triagem check-config` prints them.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let text = std::fs::read_to_string(path).expect("read config/default.toml");
    let config = Config::from_toml(&text).expect("config/default.toml parses");
    let effective = toml::Value::try_from(&config).expect("the config serializes");
    let mut shipped = BTreeSet::new();
    keys_of(effective.as_table().expect("a table"), "", &mut shipped);
    let missing: Vec<&String> = shipped
        .iter()
        .filter(|k| {
            !documented
                .iter()
                .any(|d| d == *k || d.starts_with(&format!("{k}[]")))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "config keys missing from docs/api.md, Configuration: {missing:?}"
    );
}
