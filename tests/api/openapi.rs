//! The committed OpenAPI document is what the code produces.

use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn committed_document_matches_the_code() {
    let generated = touchpoint_tracker::api::openapi_document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date; refresh it with \
         `cargo run -- openapi > openapi/openapi.json` \
         (or `UPDATE_OPENAPI=1 cargo test --test api openapi`) and commit it"
    );
}

/// Every operation is documented for a generated client.
#[test]
fn every_operation_has_id_summary_tag_and_error_responses() {
    let document: Value =
        serde_json::from_str(&touchpoint_tracker::api::openapi_document()).unwrap();
    let mut operation_ids = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let name = format!("{method} {path}");
            let id = operation["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}: no operationId"));
            operation_ids.push(id.to_owned());
            assert!(operation["summary"].is_string(), "{name}: no summary");
            assert_eq!(
                operation["tags"].as_array().map(Vec::len),
                Some(1),
                "{name}: one tag"
            );
            let responses = operation["responses"].as_object().unwrap();
            let error_statuses: &[&str] = if path == "/healthz" {
                &["503"]
            } else {
                &["401", "403", "404", "422", "500"]
            };
            for status in error_statuses {
                let schema = &responses[*status]["content"]["application/json; charset=utf-8"]
                    ["schema"]["$ref"];
                assert!(
                    schema.as_str().is_some_and(|s| s.ends_with("/ErrorBody")),
                    "{name}: {status} not declared with ErrorBody"
                );
            }
            if path != "/healthz" {
                assert_eq!(
                    operation["security"][0]["ApiKeyAuth"],
                    serde_json::json!([]),
                    "{name}: no security"
                );
            }
        }
    }
    let count = operation_ids.len();
    operation_ids.sort();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operationIds are unique");
    assert_eq!(count, 26);
}
