//! The server enforces each bound the document states (issue 15, item 6):
//! a client or fuzzer that trusts the document is never surprised. Each test
//! reads the bound from the document itself, so the two cannot drift apart.

use poem_openapi::validation::{Pattern, Validator};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

fn document() -> Value {
    serde_json::from_str(&touchpoint_tracker::api::openapi_document()).unwrap()
}

/// The schema of `parameter` of `GET path`.
fn parameter(document: &Value, path: &str, name: &str) -> Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("GET {path} has no parameter {name}"))["schema"]
        .clone()
}

fn max_length(schema: &Value) -> usize {
    schema["maxLength"].as_u64().expect("a maxLength") as usize
}

const LISTS: &[&str] = &[
    "/api/v1/touchpoints",
    "/api/v1/candidates",
    "/api/v1/encounters",
    "/api/v1/keys",
    "/api/v1/audit-events",
    "/api/v1/exports/encounters",
];

#[tokio::test]
async fn cursors_longer_than_documented_are_422_naming_cursor() {
    let app = spawn_app().await;
    let document = document();
    for list in LISTS {
        let max = max_length(&parameter(&document, list, "cursor"));
        assert_eq!(
            max,
            touchpoint_tracker::domain::pagination::CURSOR_MAX_LENGTH
        );
        // Over the bound: refused before any decoding, with the bound named.
        let long = "A".repeat(max + 1);
        let reply = app.get(&format!("{list}?cursor={long}"), &app.admin).await;
        reply.assert_error(422, "validation_failed", Some("cursor"));
        // Much longer, up to what the URI allows: the same answer, never 500.
        let huge = "A".repeat(6000);
        app.get(&format!("{list}?cursor={huge}"), &app.admin)
            .await
            .assert_error(422, "validation_failed", Some("cursor"));
        // At the bound, a cursor this API did not issue is still refused.
        let at_bound = "A".repeat(max);
        app.get(&format!("{list}?cursor={at_bound}"), &app.admin)
            .await
            .assert_error(422, "validation_failed", Some("cursor"));
    }
}

/// `id:<n>`, spelled as the server never writes it: base64url of the text.
fn cursor_of(text: &str) -> String {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
    URL_SAFE_NO_PAD.encode(text)
}

#[tokio::test]
async fn only_the_cursors_the_server_issues_are_accepted() {
    let app = spawn_app().await;
    for name in ["Careers site", "Job ad", "Interview"] {
        app.touchpoint(name, "employer_created", "careers_site", "awareness")
            .await;
    }
    let first = app.get("/api/v1/touchpoints?limit=1", &app.admin).await;
    let cursor = first.assert_status(200)["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let second = app
        .get(
            &format!("/api/v1/touchpoints?limit=1&cursor={cursor}"),
            &app.admin,
        )
        .await;
    assert_eq!(second.assert_status(200)["items"][0]["name"], "Job ad");
    // The same position spelled with leading zeros (some 100 characters,
    // under the bound) or a sign: once accepted silently, now refused.
    let id = first.body["items"][0]["id"].as_i64().unwrap();
    for text in [
        format!("id:{}{id}", "0".repeat(70)),
        format!("id:+{id}"),
        format!("id:0{id}"),
    ] {
        app.get(
            &format!("/api/v1/touchpoints?limit=1&cursor={}", cursor_of(&text)),
            &app.admin,
        )
        .await
        .assert_error(422, "validation_failed", Some("cursor"));
    }
}

#[tokio::test]
async fn external_ref_filters_longer_than_documented_are_422() {
    let app = spawn_app().await;
    let max = max_length(&parameter(
        &document(),
        "/api/v1/candidates",
        "external_ref",
    ));
    assert_eq!(max, 200);
    let at_bound = "r".repeat(max);
    app.candidate(&at_bound).await;
    let found = app
        .get(
            &format!("/api/v1/candidates?external_ref={at_bound}"),
            &app.admin,
        )
        .await;
    assert_eq!(
        found.assert_status(200)["items"][0]["external_ref"],
        at_bound
    );
    // One more character could never match a stored reference: refused, not
    // answered with an empty list.
    app.get(
        &format!("/api/v1/candidates?external_ref={at_bound}r"),
        &app.admin,
    )
    .await
    .assert_error(422, "validation_failed", Some("external_ref"));
}

#[tokio::test]
async fn batches_outside_the_documented_item_bounds_are_422() {
    let app = spawn_app().await;
    let schema = &document()["paths"]["/api/v1/encounters/batch"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(schema["minItems"], 1);
    let max = schema["maxItems"].as_u64().unwrap() as usize;
    assert_eq!(
        max,
        touchpoint_tracker::domain::encounters::ingest::BATCH_MAX
    );
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let candidate = app.candidate("ATS-1").await;
    let item = json!({
        "candidate_id": candidate,
        "touchpoint_id": touchpoint,
        "occurred_at": "2026-03-02T10:00:00Z",
    });
    for count in [0, max + 1] {
        let items = vec![item.clone(); count];
        app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
            .await
            .assert_error(422, "validation_failed", Some("body"));
    }
    assert_eq!(app.count("encounters").await, 0);
    // At the bound, the whole batch is recorded.
    let items = vec![item; max];
    let recorded = app
        .post("/api/v1/encounters/batch", &app.recruiter, json!(items))
        .await;
    let ids = recorded.assert_status(201)["encounter_ids"]
        .as_array()
        .unwrap();
    assert_eq!(ids.len(), max);
    assert_eq!(app.count("encounters").await, max as i64);
}

/// E-mail values on both sides of every clause of the rule.
const EMAILS: &[&str] = &[
    "lan.nguyen@example.com",
    "a@b",
    "nguyễn.lan@ví-dụ.vn",
    "  padded@example.com\t",
    "\u{85}a@b\u{3000}",
    "",
    "   ",
    "plain",
    "@example.com",
    "lan@",
    "lan@@example.com",
    "lan@ex@ample.com",
    "lan nguyen@example.com",
    "lan@example .com",
    "lan\u{a0}@example.com",
    "lan@exa\u{2028}mple.com",
    "lan\u{0}@example.com",
    "lan@example.com\u{1c}",
    "lan\u{7f}@example.com",
    "lan\u{9f}@example.com",
    "lan\u{200b}@example.com",
];

async fn create_with_email(app: &TestApp, external_ref: &str, email: &str) -> (u16, Value) {
    let reply = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({"external_ref": external_ref, "email": email}),
        )
        .await;
    (reply.status.as_u16(), reply.body)
}

#[tokio::test]
async fn the_server_accepts_exactly_the_emails_the_documented_pattern_allows() {
    let app = spawn_app().await;
    let document = document();
    let schemas = &document["components"]["schemas"];
    let create = &schemas["CreateCandidate"]["properties"]["email"];
    let update = &schemas["UpdateCandidate"]["properties"]["email"];
    assert_eq!(create["pattern"], update["pattern"]);
    assert_eq!(create["maxLength"], 320);
    assert_eq!(update["maxLength"], 320);
    let text = create["pattern"].as_str().expect("a pattern").to_owned();
    let pattern = Pattern::new(Box::leak(text.into_boxed_str()));
    let max = max_length(create);

    let long_local = "l".repeat(max - "@b".len());
    let mut cases: Vec<String> = EMAILS.iter().map(|e| e.to_string()).collect();
    cases.push(format!("{long_local}@b"));
    cases.push(format!("{long_local}@bc"));
    cases.push(format!(" {long_local}@b"));
    let target = app.candidate("ATS-PATCHED").await;
    for (i, email) in cases.iter().enumerate() {
        let documented = pattern.check(email) && email.chars().count() <= max;
        let (status, body) = create_with_email(&app, &format!("ATS-{i}"), email).await;
        if documented {
            assert_eq!(status, 201, "{email:?} fits the document: {body}");
            let stored = email.trim();
            let expected = if stored.is_empty() {
                Value::Null
            } else {
                json!(stored)
            };
            assert_eq!(body["email"], expected, "{email:?}");
        } else {
            assert_eq!(status, 422, "{email:?} does not fit the document: {body}");
            assert_eq!(body["error"]["field"], "email", "{email:?}: {body}");
        }
        // PATCH applies the same rule.
        let reply = app
            .patch(
                &format!("/api/v1/candidates/{target}"),
                &app.recruiter,
                json!({"email": email}),
            )
            .await;
        let expected = if documented { 200 } else { 422 };
        assert_eq!(
            reply.status.as_u16(),
            expected,
            "PATCH {email:?}: {:?}",
            reply.body
        );
    }
}

/// Every array inside a request body (a webhook's event types, an alert
/// rule's filters) is refused one item past its documented `maxItems`, and
/// an empty one below its `minItems`, with 422 naming it.
#[tokio::test]
async fn array_fields_outside_their_documented_bounds_are_422() {
    let app = spawn_app().await;
    let document = document();
    let schemas = &document["components"]["schemas"];
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    // (path, schema, a valid body, the field, one item of it)
    let cases = [
        (
            "/api/v1/webhooks",
            "CreateWebhookEndpoint",
            json!({"url": "https://hooks.example.com/x", "event_types": ["encounter.created"]}),
            "event_types",
            json!("encounter.created"),
        ),
        (
            "/api/v1/alert-rules",
            "CreateAlertRule",
            json!({"name": "r", "kind": "detractor"}),
            "touchpoint_ids",
            json!(touchpoint),
        ),
        (
            "/api/v1/alert-rules",
            "CreateAlertRule",
            json!({"name": "r", "kind": "detractor"}),
            "kinds",
            json!("true"),
        ),
        (
            "/api/v1/alert-rules",
            "CreateAlertRule",
            json!({"name": "r", "kind": "detractor"}),
            "stages",
            json!("offer"),
        ),
    ];
    for (path, schema, valid, field, item) in cases {
        let property = &schemas[schema]["properties"][field];
        let max = property["maxItems"]
            .as_u64()
            .unwrap_or_else(|| panic!("{schema}.{field} has no maxItems"))
            as usize;
        let mut body = valid.clone();
        body[field] = json!(vec![item.clone(); max + 1]);
        app.post(path, &app.admin, body)
            .await
            .assert_error(422, "validation_failed", Some(field));
        if property["minItems"].as_u64() == Some(1) {
            let mut body = valid.clone();
            body[field] = json!([]);
            app.post(path, &app.admin, body).await.assert_error(
                422,
                "validation_failed",
                Some(field),
            );
        }
        let mut body = valid.clone();
        body[field] = json!(vec![item.clone(); max]);
        let accepted = app.post(path, &app.admin, body).await;
        assert_eq!(
            accepted.status.as_u16(),
            201,
            "{path} {field}: {accepted:?}"
        );
    }
}
