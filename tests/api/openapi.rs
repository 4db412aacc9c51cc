//! The committed OpenAPI document is what the code produces, and it is what
//! a generated client needs. `redocly lint` (scripts/clients.sh) checks the
//! document against the OpenAPI rules; the tests here check what it does
//! not: the conventions of issue 6, each failure naming the operation or
//! schema at fault.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

/// The media type of every error response.
const JSON: &str = "application/json; charset=utf-8";

/// Operations anyone may call without a key.
const PUBLIC_OPERATIONS: &[&str] = &["get_health"];

/// The first word of every operationId.
const VERBS: &[&str] = &[
    "list",
    "get",
    "create",
    "update",
    "delete",
    "archive",
    "revoke",
    "import",
    "export",
    "erase",
    "ping",
    "redeliver",
    "rotate",
    "evaluate",
    "acknowledge",
    "resolve",
];

/// The formats of the OpenAPI 3.0 specification and of JSON Schema that
/// generators know.
const STANDARD_FORMATS: &[&str] = &[
    "int32",
    "int64",
    "float",
    "double",
    "byte",
    "binary",
    "date",
    "date-time",
    "password",
    "email",
    "uri",
    "uuid",
];

fn document() -> Value {
    serde_json::from_str(&touchpoint_tracker::api::openapi_document()).unwrap()
}

/// Every operation as (`METHOD /path`, operation).
fn operations(document: &Value) -> Vec<(String, &Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            operations.push((format!("{} {path}", method.to_uppercase()), operation));
        }
    }
    operations
}

fn operation_id(operation: &Value) -> &str {
    operation["operationId"].as_str().unwrap_or("")
}

fn is_text(value: &Value) -> bool {
    value.as_str().is_some_and(|s| !s.trim().is_empty())
}

/// The name of the component a `$ref` points to.
fn ref_name(schema: &Value) -> Option<&str> {
    schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
}

/// Collects every failure, so one run lists them all.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn check(&mut self, ok: bool, finding: impl FnOnce() -> String) {
        if !ok {
            self.0.push(finding());
        }
    }

    fn assert_none(self, what: &str) {
        assert!(
            self.0.is_empty(),
            "{what}: {} findings:\n  {}",
            self.0.len(),
            self.0.join("\n  ")
        );
    }
}

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

#[test]
fn info_names_version_description_contact_license_and_server() {
    let document = document();
    let info = &document["info"];
    let mut findings = Findings::default();
    for field in ["title", "version", "description"] {
        findings.check(is_text(&info[field]), || format!("info.{field} is missing"));
    }
    findings.check(is_text(&info["contact"]["name"]), || {
        "info.contact has no name".into()
    });
    for field in ["name", "url"] {
        findings.check(is_text(&info["license"][field]), || {
            format!("info.license.{field} is missing")
        });
    }
    // One server, the same in every environment: the service itself.
    findings.check(
        document["servers"]
            == json!([{
                "url": "/",
                "description": document["servers"][0]["description"],
                "x-internal": true,
            }])
            && is_text(&document["servers"][0]["description"]),
        || {
            format!(
                "servers should be one relative `/` with a description, not {}",
                document["servers"]
            )
        },
    );
    findings.assert_none("info and servers");
}

#[test]
fn every_operation_has_a_snake_case_id_summary_description_and_one_tag() {
    let document = document();
    let declared_tags: BTreeMap<&str, &Value> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tag| (tag["name"].as_str().unwrap(), &tag["description"]))
        .collect();
    let mut findings = Findings::default();
    let mut ids = BTreeSet::new();
    for (name, operation) in operations(&document) {
        let id = operation_id(operation);
        let words: Vec<&str> = id.split('_').collect();
        let snake = words.len() >= 2
            && words.iter().all(|w| {
                !w.is_empty()
                    && w.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            });
        findings.check(snake && VERBS.contains(&words[0]), || {
            format!("{name}: operationId {id:?} is not verb_noun snake_case (verbs: {VERBS:?})")
        });
        findings.check(ids.insert(id.to_owned()), || {
            format!("{name}: operationId {id:?} is used twice")
        });
        let summary = operation["summary"].as_str().unwrap_or("");
        findings.check(
            is_text(&operation["summary"]) && !summary.ends_with('.'),
            || format!("{name} ({id}): no summary, or one ending with a period"),
        );
        findings.check(is_text(&operation["description"]), || {
            format!("{name} ({id}): no description")
        });
        let tags = operation["tags"].as_array().cloned().unwrap_or_default();
        let tag = tags.first().and_then(Value::as_str).unwrap_or("");
        findings.check(tags.len() == 1, || format!("{name} ({id}): not one tag"));
        findings.check(declared_tags.get(tag).is_some_and(|d| is_text(d)), || {
            format!("{name} ({id}): tag {tag:?} is not declared with a description")
        });
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            findings.check(is_text(&parameter["description"]), || {
                format!(
                    "{name} ({id}): parameter {} has no description",
                    parameter["name"]
                )
            });
        }
        for (status, response) in operation["responses"].as_object().unwrap() {
            findings.check(is_text(&response["description"]), || {
                format!("{name} ({id}): response {status} has no description")
            });
        }
    }
    findings.assert_none("operations");
    assert_eq!(
        ids.len(),
        63,
        "the number of operations changed: update this test"
    );
}

#[test]
fn every_operation_declares_its_security() {
    let document = document();
    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .unwrap();
    let mut findings = Findings::default();
    for (name, operation) in operations(&document) {
        let id = operation_id(operation);
        // Every operation takes a key or the dashboard's session, but for
        // the public ones, the sign-in (a key only) and the session's own
        // (the cookie only).
        let expected = if PUBLIC_OPERATIONS.contains(&id) {
            json!([{}])
        } else if id == "create_session" {
            json!([{"ApiKeyAuth": []}])
        } else if id.ends_with("_session") {
            json!([{"DashboardSession": []}])
        } else {
            json!([{"ApiKeyAuth": []}, {"DashboardSession": []}])
        };
        findings.check(operation["security"] == expected, || {
            format!(
                "{name} ({id}): security is {}, expected {expected}",
                operation["security"]
            )
        });
    }
    findings.check(schemes.contains_key("ApiKeyAuth"), || {
        "the ApiKeyAuth security scheme is not declared".into()
    });
    findings.check(
        schemes["DashboardSession"]
            == json!({
                "type": "apiKey",
                "in": "cookie",
                "name": "tt_session",
                "description": schemes["DashboardSession"]["description"],
            })
            && is_text(&schemes["DashboardSession"]["description"]),
        || "the DashboardSession scheme is not the documented tt_session cookie".into(),
    );
    findings.assert_none("security");
}

#[test]
fn every_error_response_is_declared_with_the_error_schema() {
    let document = document();
    let mut findings = Findings::default();
    for (name, operation) in operations(&document) {
        let id = operation_id(operation);
        let responses = operation["responses"].as_object().unwrap();
        for (status, response) in responses {
            if !(status.starts_with('4') || status.starts_with('5')) {
                continue;
            }
            let media = response["content"].as_object().cloned().unwrap_or_default();
            findings.check(
                media.len() == 1
                    && ref_name(&media.get(JSON).unwrap_or(&Value::Null)["schema"])
                        == Some("ErrorBody"),
                || format!("{name} ({id}): {status} is not declared as {JSON} ErrorBody"),
            );
        }
        // What every operation with a key can meet; /healthz reads no key,
        // no parameter and no body, so it can only be unavailable.
        let expected: &[&str] = if PUBLIC_OPERATIONS.contains(&id) {
            &["503"]
        } else {
            &["401", "403", "404", "422", "429", "500", "503"]
        };
        for status in expected {
            findings.check(responses.contains_key(*status), || {
                format!("{name} ({id}): no {status} response")
            });
        }
        findings.check(responses.keys().any(|s| s.starts_with('2')), || {
            format!("{name} ({id}): no 2xx response")
        });
    }
    findings.assert_none("error responses");
}

#[test]
fn every_request_body_is_documented_named_and_has_an_example() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let mut findings = Findings::default();
    for (name, operation) in operations(&document) {
        let id = operation_id(operation);
        let Some(body) = operation.get("requestBody") else {
            continue;
        };
        findings.check(is_text(&body["description"]), || {
            format!("{name} ({id}): the request body has no description")
        });
        for (media_type, media) in body["content"].as_object().unwrap() {
            let schema = &media["schema"];
            // An octet stream is bytes (the import's second media type, the
            // NDJSON of its first, for generators without NDJSON).
            if media_type == "application/octet-stream" {
                findings.check(
                    *schema == serde_json::json!({"type": "string", "format": "binary"})
                        && body["content"].get("application/x-ndjson").is_some(),
                    || format!("{name} ({id}): an octet stream that is not the import's: {schema}"),
                );
                continue;
            }
            // One named object, or an array of them.
            let named = ref_name(schema).or_else(|| {
                (schema["type"] == "array")
                    .then(|| ref_name(&schema["items"]))
                    .flatten()
            });
            match named {
                Some(component) => findings.check(!schemas[component]["example"].is_null(), || {
                    format!("{name} ({id}): {media_type} body {component} has no example")
                }),
                None => findings.check(false, || {
                    format!("{name} ({id}): {media_type} body is not a named schema: {schema}")
                }),
            }
        }
    }
    findings.assert_none("request bodies");
}

/// Walks a schema, calling `visit` with its location and each schema it
/// holds (properties, items, additional properties, allOf/anyOf/oneOf
/// members), depth first, itself included.
fn walk<'a>(
    at: &str,
    schema: &'a Value,
    visit: &mut dyn FnMut(&str, &'a Value, usize),
    depth: usize,
) {
    visit(at, schema, depth);
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        walk(&format!("{at}.{name}"), property, visit, depth + 1);
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            walk(&format!("{at}[{key}]"), &schema[key], visit, depth + 1);
        }
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, member) in schema[key].as_array().into_iter().flatten().enumerate() {
            walk(&format!("{at}.{key}[{i}]"), member, visit, depth + 1);
        }
    }
}

/// Every schema in the document, with where it is: the components, and the
/// schemas of parameters, request bodies, responses and headers.
fn schema_roots(document: &Value) -> Vec<(String, &Value, bool)> {
    let mut roots = Vec::new();
    for (name, schema) in document["components"]["schemas"].as_object().unwrap() {
        roots.push((name.clone(), schema, true));
    }
    for (name, operation) in operations(document) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            roots.push((
                format!("{name} parameter {}", parameter["name"]),
                &parameter["schema"],
                false,
            ));
        }
        for (media_type, media) in operation["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            roots.push((
                format!("{name} {media_type} request"),
                &media["schema"],
                false,
            ));
        }
        for (status, response) in operation["responses"].as_object().unwrap() {
            for (media_type, media) in response["content"].as_object().into_iter().flatten() {
                roots.push((
                    format!("{name} {status} {media_type}"),
                    &media["schema"],
                    false,
                ));
            }
            for (header, h) in response["headers"].as_object().into_iter().flatten() {
                roots.push((
                    format!("{name} {status} header {header}"),
                    &h["schema"],
                    false,
                ));
            }
        }
    }
    roots
}

#[test]
fn every_object_schema_is_named_and_documented() {
    let document = document();
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let mut findings = Findings::default();
    for (name, schema) in schemas {
        findings.check(is_text(&schema["description"]), || {
            format!("schema {name} has no description")
        });
    }
    for (root, schema, component) in schema_roots(&document) {
        walk(
            &root,
            schema,
            &mut |at, schema, depth| {
                let is_object = schema["type"] == "object" || schema.get("properties").is_some();
                // An object is a component, or a member of a component's
                // allOf (the variants of a tagged union, poem-openapi's shape).
                let part_of_component =
                    component && (depth == 0 || (depth == 1 && at.contains(".allOf[")));
                findings.check(!is_object || part_of_component, || {
                    format!("{at}: an anonymous inline object; give it a name")
                });
                if let Some(format) = schema["format"].as_str() {
                    findings.check(STANDARD_FORMATS.contains(&format), || {
                        format!("{at}: format {format:?} is not a standard format")
                    });
                }
                // A reference with siblings is `allOf: [$ref]` and nothing
                // else; openapi-python-client reads no other shape.
                if depth > 0 || !component {
                    if let Some(members) = schema["allOf"].as_array() {
                        findings.check(
                            members.len() == 1 && ref_name(&members[0]).is_some(),
                            || format!("{at}: allOf is not one $ref: {schema}"),
                        );
                    }
                }
            },
            0,
        );
        if component {
            // Each property says what it is, itself or through its schema.
            for (property, value) in schema["properties"].as_object().into_iter().flatten() {
                let documented = is_text(&value["description"])
                    || ref_name(value).is_some_and(|n| is_text(&schemas[n]["description"]));
                findings.check(documented, || {
                    format!("{root}.{property} has no description")
                });
            }
        }
    }
    findings.assert_none("schemas");
}

/// The component schemas `roots` lead to, through every reference.
fn reachable<'a>(schemas: &'a Value, roots: Vec<&'a Value>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = roots;
    while let Some(schema) = todo.pop() {
        walk(
            "",
            schema,
            &mut |_, s, _| {
                if let Some(name) = ref_name(s) {
                    if seen.insert(name.to_owned()) {
                        todo.push(&schemas[name]);
                    }
                }
            },
            0,
        );
    }
    seen
}

#[test]
fn response_fields_sent_as_null_are_required() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let mut requests = Vec::new();
    let mut responses = Vec::new();
    for (_, operation) in operations(&document) {
        for media in operation["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            requests.push(&media.1["schema"]);
        }
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            requests.push(&parameter["schema"]);
        }
        for response in operation["responses"].as_object().unwrap().values() {
            for media in response["content"].as_object().into_iter().flatten() {
                responses.push(&media.1["schema"]);
            }
        }
    }
    let in_requests = reachable(schemas, requests);
    let mut findings = Findings::default();
    for name in reachable(schemas, responses).difference(&in_requests) {
        let schema = &schemas[name];
        let required: Vec<&Value> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        for (property, value) in schema["properties"].as_object().into_iter().flatten() {
            // A nullable response field is always sent, `null` or not: a
            // client must not have to tell "absent" from `null`.
            if value["nullable"] == true {
                findings.check(required.contains(&&json!(property)), || {
                    format!("{name}.{property} is nullable but not required")
                });
            }
        }
    }
    findings.assert_none("response fields");
}

/// The component schemas of every request body: (where, component, schema
/// of the body itself).
fn request_bodies(document: &Value) -> Vec<(String, String, &Value)> {
    let mut bodies = Vec::new();
    for (name, operation) in operations(document) {
        for (media_type, media) in operation["requestBody"]["content"]
            .as_object()
            .into_iter()
            .flatten()
        {
            let schema = &media["schema"];
            let named = ref_name(schema).or_else(|| ref_name(&schema["items"]));
            if let Some(component) = named {
                bodies.push((format!("{name} {media_type}"), component.to_owned(), schema));
            }
        }
    }
    bodies
}

#[test]
fn every_request_body_refuses_unknown_fields() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    let bodies = request_bodies(&document);
    assert_eq!(bodies.len(), 19, "request bodies changed: update this test");
    let mut findings = Findings::default();
    for (at, component, _) in bodies {
        findings.check(schemas[&component]["additionalProperties"] == false, || {
            format!("{at}: {component} does not say additionalProperties: false")
        });
    }
    findings.assert_none("request bodies");
}

#[test]
fn every_string_anywhere_has_a_max_length_and_every_integer_bounds() {
    let document = document();
    let mut findings = Findings::default();
    for (root, schema, _) in schema_roots(&document) {
        walk(
            &root,
            schema,
            &mut |at, schema, _| {
                if schema["type"] == "string" {
                    // Unbounded on purpose (clients/lint/.spectral.yaml says
                    // why): the streamed export and import, and error
                    // messages, which may quote the refused input.
                    let unbounded = at.contains("/exports/encounters 200 text/csv")
                        || at.contains("/encounters/import application/octet-stream request")
                        || at.starts_with("ErrorDetail.");
                    findings.check(
                        schema["maxLength"].is_u64() || schema["enum"].is_array() || unbounded,
                        || format!("{at}: a string without maxLength"),
                    );
                }
                if schema["type"] == "integer" {
                    findings.check(
                        schema["minimum"].is_number() && schema["maximum"].is_number(),
                        || format!("{at}: an integer without minimum and maximum"),
                    );
                }
            },
            0,
        );
    }
    findings.assert_none("bounds");
}

#[test]
fn every_string_parameter_has_a_max_length() {
    let document = document();
    let mut findings = Findings::default();
    let mut strings = 0;
    for (name, operation) in operations(&document) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            let schema = &parameter["schema"];
            if schema["type"] != "string" {
                continue;
            }
            strings += 1;
            findings.check(schema["maxLength"].is_u64(), || {
                format!(
                    "{name}: {} parameter {} has no maxLength",
                    parameter["in"], parameter["name"]
                )
            });
        }
    }
    findings.assert_none("string parameters");
    // cursors (12), dates and date-times (18), external_ref, the candidates'
    // search (q), Idempotency-Key (4)
    assert_eq!(strings, 36, "string parameters changed: update this test");
}

#[test]
fn the_batch_states_its_item_bounds() {
    let document = document();
    let schema = &document["paths"]["/api/v1/encounters/batch"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(schema["type"], "array");
    assert_eq!(schema["minItems"], 1);
    assert_eq!(
        schema["maxItems"],
        touchpoint_tracker::domain::encounters::ingest::BATCH_MAX
    );
    assert_eq!(ref_name(&schema["items"]), Some("ImportEncounter"));
}

#[test]
fn email_fields_state_the_servers_rule() {
    let document = document();
    let schemas = &document["components"]["schemas"];
    for component in ["CreateCandidate", "UpdateCandidate"] {
        let email = &schemas[component]["properties"]["email"];
        assert_eq!(email["maxLength"], 320, "{component}.email");
        assert!(
            email["pattern"]
                .as_str()
                .is_some_and(|p| p.starts_with('^') && p.ends_with('$')),
            "{component}.email has no anchored pattern: {email}"
        );
    }
    // What the service sends back is what it stored: bounded the same way.
    assert_eq!(
        schemas["Candidate"]["properties"]["email"]["maxLength"],
        320
    );
}
