//! What an attacker or a careless client sends: times the reports cannot
//! hold, duplicate JSON keys, `null` where the document has none, ids
//! spelled another way, invisible characters in identifiers, refusals that
//! must write nothing, keys that must not be revoked, floods of bad tokens.
//! Every one gets a 4xx in the one error shape, naming the field.

use chrono::Utc;
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{json, Value};
use touchpoint_tracker::config::{Limits, RateLimit};

use super::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

const ENCOUNTERS: &str = "/api/v1/encounters";
const BATCH: &str = "/api/v1/encounters/batch";
const IMPORT: &str = "/api/v1/encounters/import";
const PAST: &str = "2025-03-01T10:00:00Z";

/// Times no report can place: signed, zero and five-digit years, and the
/// spellings of RFC 3339 that are not RFC 3339.
const BAD_TIMES: [&str; 8] = [
    "-0001-06-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "+10000-01-01T00:00:00Z",
    "0001-01-01T00:30:00+01:00",
    "2025-03-01 10:00:00Z",
    "2025-03-01T10:00:00",
    "2025-03-01T10:00:00+0700",
    "2025-03-01",
];

struct Fixture {
    touchpoint: i64,
    candidate: i64,
    encounter: i64,
}

async fn fixture(app: &TestApp) -> Fixture {
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let candidate = app.candidate("ATS-1").await;
    let encounter = app.encounter(candidate, touchpoint, PAST, Some(7)).await;
    Fixture {
        touchpoint,
        candidate,
        encounter,
    }
}

/// The organization's change sequence and the rows a write could add: what
/// a refused request must leave as it was.
async fn written(app: &TestApp) -> (i64, [i64; 4]) {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT change_seq FROM organizations WHERE slug = 'acme'",
        ))
        .await
        .unwrap()
        .unwrap();
    let seq = row.try_get::<i64>("", "change_seq").unwrap();
    (
        seq,
        [
            app.count("candidates").await,
            app.count("encounters").await,
            app.count("audit_events").await,
            app.count("idempotency_keys").await,
        ],
    )
}

async fn import(app: &TestApp, body: &str) -> Reply {
    app.post_raw(IMPORT, &app.recruiter, "application/x-ndjson", body)
        .await
}

/// Sends `body` as is (JSON text the test spells out), as the admin.
async fn send_text(app: &TestApp, method: Method, path: &str, body: &str) -> Reply {
    let response = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request sent");
    TestApp::reply(response).await
}

#[tokio::test]
async fn times_outside_rfc3339_and_years_0001_to_9999_are_refused_on_every_write_path() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let before = written(&app).await;
    for time in BAD_TIMES {
        let single = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                            "occurred_at": time, "score": 5});
        app.post(ENCOUNTERS, &app.recruiter, single)
            .await
            .assert_error(422, "validation_failed", Some("occurred_at"));

        let item = json!({"candidate_external_ref": "ATS-2", "touchpoint_name": "Onsite interview",
                          "occurred_at": time});
        let reply = app.post(BATCH, &app.recruiter, json!([item])).await;
        reply.assert_error(422, "invalid_items", None);
        assert_eq!(reply.body["items"][0]["index"], 0, "{time}");
        assert_eq!(
            reply.body["items"][0]["error"]["field"], "occurred_at",
            "{time}"
        );

        let reply = import(&app, &format!("{item}\n")).await;
        reply.assert_error(422, "invalid_items", None);
        assert_eq!(reply.body["lines_committed"], 0, "{time}");
        assert_eq!(
            reply.body["items"][0]["error"]["field"], "occurred_at",
            "{time}"
        );

        let path = format!("{ENCOUNTERS}/{}", f.encounter);
        app.patch(&path, &app.recruiter, json!({"occurred_at": time}))
            .await
            .assert_error(422, "validation_failed", Some("occurred_at"));

        app.post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Nightly", "role": "reporter", "expires_at": time}),
        )
        .await
        .assert_error(422, "validation_failed", Some("expires_at"));

        // Query windows: the same rule, naming the parameter.
        let query = time.replace('+', "%2B");
        for (path, parameter) in [
            (format!("{ENCOUNTERS}?from={query}"), "from"),
            (format!("{ENCOUNTERS}?to={query}"), "to"),
            (format!("/api/v1/audit-events?from={query}"), "from"),
            (format!("/api/v1/audit-events?to={query}"), "to"),
        ] {
            app.get(&path, &app.admin).await.assert_error(
                422,
                "validation_failed",
                Some(parameter),
            );
        }
    }
    // A key that would expire after the year 9999 is no key either.
    app.post(
        "/api/v1/keys",
        &app.admin,
        json!({"name": "Forever", "role": "reporter", "expires_at": "9999-12-31T23:30:00-01:00"}),
    )
    .await
    .assert_error(422, "validation_failed", Some("expires_at"));
    // Report windows: dates, in the same years.
    for (from, to) in [
        ("-0001-01-01", "2026-01-01"),
        ("2026-01-01", "+10000-01-01"),
    ] {
        let path = format!(
            "/api/v1/reports/summary?from={}&to={}",
            from.replace('+', "%2B"),
            to.replace('+', "%2B")
        );
        let reply = app.get(&path, &app.reporter).await;
        assert_eq!(reply.status.as_u16(), 422, "{path}: {reply:?}");
    }
    assert_eq!(written(&app).await, before, "a refused time was written");
    // The edges themselves are fine.
    for time in ["0001-01-01T00:00:00Z", "2025-03-01t10:00:00.5+07:00"] {
        let body = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint, "occurred_at": time});
        app.post(ENCOUNTERS, &app.recruiter, body)
            .await
            .assert_status(201);
    }
}

#[tokio::test]
async fn a_stored_time_with_another_year_form_does_not_break_later_writes() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    // A row stored before times were checked: year -1 (2 BC), as each
    // backend wrote it.
    let backend = app.db.get_database_backend();
    let (sql, time) = match backend {
        DbBackend::Postgres => (
            "UPDATE encounters SET occurred_at = '0002-06-01 00:00:00+00 BC' WHERE id = $1",
            "",
        ),
        _ => (
            "UPDATE encounters SET occurred_at = ? WHERE id = ?",
            "-0001-06-01T00:00:00+00:00",
        ),
    };
    let values: Vec<sea_orm::Value> = if backend == DbBackend::Postgres {
        vec![f.encounter.into()]
    } else {
        vec![time.into(), f.encounter.into()]
    };
    app.db
        .execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
        .unwrap();
    // Every write naming the candidate reads its history first.
    let body = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                      "occurred_at": "2026-01-05T09:00:00Z", "score": 4});
    app.post(ENCOUNTERS, &app.recruiter, body)
        .await
        .assert_status(201);
    let item = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                      "occurred_at": "2026-01-06T09:00:00Z", "score": 6});
    app.post(BATCH, &app.recruiter, json!([item]))
        .await
        .assert_status(201);
    let reply = import(&app, &format!("{item}\n")).await;
    assert_eq!(reply.assert_status(200)["encounters_created"], 1);
    // Reads of the row answer too.
    for path in [
        format!("/api/v1/candidates/{}/journey", f.candidate),
        format!("{ENCOUNTERS}/{}", f.encounter),
        format!("{ENCOUNTERS}?candidate_id={}", f.candidate),
        "/api/v1/exports/encounters".to_owned(),
    ] {
        app.get(&path, &app.reporter).await.assert_status(200);
    }
}

#[tokio::test]
async fn duplicate_json_keys_are_refused_naming_the_key() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let before = written(&app).await;
    // The first value is valid, the last would be taken by a lenient parser.
    let single = format!(
        r#"{{"candidate_id": {}, "touchpoint_id": {}, "occurred_at": "{PAST}", "score": 3, "score": 11}}"#,
        f.candidate, f.touchpoint
    );
    send_text(&app, Method::POST, ENCOUNTERS, &single)
        .await
        .assert_error(422, "validation_failed", Some("score"));
    // The same key spelled with an escape is the same key.
    let escaped = format!(
        r#"{{"candidate_id": {}, "touchpoint_id": {}, "occurred_at": "{PAST}", "note": "a", "n\u006fte": "b"}}"#,
        f.candidate, f.touchpoint
    );
    send_text(&app, Method::POST, ENCOUNTERS, &escaped)
        .await
        .assert_error(422, "validation_failed", Some("note"));
    let batch = format!(
        r#"[{{"candidate_id": {c}, "touchpoint_id": {t}, "occurred_at": "{PAST}"}},
            {{"candidate_id": {c}, "touchpoint_id": {t}, "touchpoint_id": {t}, "occurred_at": "{PAST}"}}]"#,
        c = f.candidate,
        t = f.touchpoint
    );
    send_text(&app, Method::POST, BATCH, &batch)
        .await
        .assert_error(422, "validation_failed", Some("[1].touchpoint_id"));
    let path = format!("{ENCOUNTERS}/{}", f.encounter);
    send_text(&app, Method::PATCH, &path, r#"{"score": 2, "score": null}"#)
        .await
        .assert_error(422, "validation_failed", Some("score"));
    send_text(
        &app,
        Method::POST,
        "/api/v1/touchpoints",
        r#"{"name": "A", "name": "B", "kind": "true", "channel": "press", "stage": "awareness"}"#,
    )
    .await
    .assert_error(422, "validation_failed", Some("name"));
    // An import refuses the line, by its number.
    let line = format!(
        r#"{{"candidate_id": {}, "touchpoint_id": {}, "occurred_at": "{PAST}", "score": 1, "score": 9}}"#,
        f.candidate, f.touchpoint
    );
    let reply = import(&app, &format!("{line}\n")).await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["items"][0]["error"]["field"], "score");
    assert_eq!(written(&app).await, before);
    let encounter = app.get(&path, &app.admin).await;
    assert_eq!(encounter.assert_status(200)["score"], 7);
}

#[tokio::test]
async fn null_is_refused_where_the_document_does_not_allow_it() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let document: Value = app
        .get("/openapi.json", &app.admin)
        .await
        .assert_status(200)
        .clone();
    let schemas = &document["components"]["schemas"];
    let before = written(&app).await;
    // Optional and not nullable in the document: absent is fine, null is not.
    let refusals = [
        (
            ENCOUNTERS,
            "CreateEncounter",
            json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                   "occurred_at": PAST, "source": null}),
            "source",
        ),
        (
            "/api/v1/candidates",
            "CreateCandidate",
            json!({"external_ref": "ATS-9", "stage": null}),
            "stage",
        ),
        (
            "/api/v1/keys",
            "CreateApiKey",
            json!({"name": "BI", "role": null}),
            "role",
        ),
    ];
    for (path, schema, body, field) in refusals {
        assert!(
            schemas[schema]["properties"][field]["nullable"].is_null(),
            "{schema}.{field} is documented nullable"
        );
        app.post(path, &app.admin, body)
            .await
            .assert_error(422, "validation_failed", Some(field));
    }
    // Bulk items (read without a value tree when they are fine) refuse it
    // by item, beside a valid one.
    assert!(schemas["ImportEncounter"]["properties"]["source"]["nullable"].is_null());
    let fine = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                      "occurred_at": PAST, "score": null});
    let null_source = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                             "occurred_at": PAST, "source": null});
    let reply = app
        .post(BATCH, &app.recruiter, json!([fine, null_source]))
        .await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["items"][0]["index"], 1);
    assert_eq!(reply.body["items"][0]["error"]["field"], "source");
    let reply = import(&app, &format!("{fine}\n{null_source}\n")).await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["items"][0]["index"], 1);
    assert_eq!(reply.body["items"][0]["error"]["field"], "source");
    assert_eq!(written(&app).await, before);
    // Where the document says nullable, null is taken.
    assert_eq!(
        schemas["CreateEncounter"]["properties"]["score"]["nullable"],
        true
    );
    let body = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                      "occurred_at": PAST, "score": null, "note": null});
    app.post(ENCOUNTERS, &app.recruiter, body)
        .await
        .assert_status(201);
    assert_eq!(
        schemas["UpdateEncounter"]["properties"]["score"]["nullable"],
        true
    );
    let path = format!("{ENCOUNTERS}/{}", f.encounter);
    let reply = app
        .patch(&path, &app.recruiter, json!({"score": null}))
        .await;
    assert!(reply.assert_status(200)["score"].is_null());
    assert_eq!(
        schemas["ImportEncounter"]["properties"]["score"]["nullable"],
        true
    );
    let item = json!({"candidate_id": f.candidate, "touchpoint_id": f.touchpoint,
                      "occurred_at": PAST, "score": null, "note": null});
    app.post(BATCH, &app.recruiter, json!([item]))
        .await
        .assert_status(201);
}

#[tokio::test]
async fn ids_in_paths_have_one_spelling() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    assert_eq!(f.encounter, 1);
    for spelling in ["+1", "01", "%2B1", "001", "-0"] {
        for (method, path) in [
            (Method::GET, format!("{ENCOUNTERS}/{spelling}")),
            (Method::DELETE, format!("{ENCOUNTERS}/{spelling}")),
            (
                Method::GET,
                format!("/api/v1/candidates/{spelling}/journey"),
            ),
            (Method::DELETE, format!("/api/v1/keys/{spelling}")),
        ] {
            app.request(method.clone(), &path, Some(&app.admin), None)
                .await
                .assert_error(404, "not_found", None);
        }
    }
    // Nothing was deleted through another spelling.
    app.get(&format!("{ENCOUNTERS}/1"), &app.admin)
        .await
        .assert_status(200);
    app.get("/api/v1/keys", &app.admin).await.assert_status(200);
}

#[tokio::test]
async fn identifiers_of_or_with_invisible_characters_are_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let before = written(&app).await;
    for name in [
        "\u{200B}",
        "Onsite\u{200B} interview",
        "\u{FEFF}Onsite interview",
        "Onsite\u{2060} interview",
    ] {
        app.post(
            "/api/v1/touchpoints",
            &app.admin,
            json!({"name": name, "kind": "true", "channel": "press", "stage": "awareness"}),
        )
        .await
        .assert_error(422, "validation_failed", Some("name"));
        app.post(
            "/api/v1/candidates",
            &app.admin,
            json!({"external_ref": name}),
        )
        .await
        .assert_error(422, "validation_failed", Some("external_ref"));
        let item = json!({"candidate_external_ref": format!("ATS-1{name}"), "touchpoint_id": f.touchpoint,
                          "occurred_at": PAST});
        let reply = app.post(BATCH, &app.recruiter, json!([item])).await;
        assert_eq!(
            reply.body["items"][0]["error"]["field"], "candidate_external_ref",
            "{reply:?}"
        );
        let item =
            json!({"candidate_id": f.candidate, "touchpoint_name": name, "occurred_at": PAST});
        let reply = app.post(BATCH, &app.recruiter, json!([item])).await;
        assert_eq!(
            reply.body["items"][0]["error"]["field"], "touchpoint_name",
            "{reply:?}"
        );
    }
    let path = format!("/api/v1/candidates/{}", f.candidate);
    app.patch(&path, &app.admin, json!({"external_ref": "ATS-1\u{200D}"}))
        .await
        .assert_error(422, "validation_failed", Some("external_ref"));
    assert_eq!(written(&app).await, before);
    // Letters with diacritics are letters.
    app.touchpoint(
        "Phỏng vấn trực tiếp",
        "employer_created",
        "interview",
        "interview",
    )
    .await;
}

#[tokio::test]
async fn a_refused_single_post_writes_nothing_not_even_the_change_sequence() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let before = written(&app).await;
    for body in [
        json!({"candidate_id": 999_999, "touchpoint_id": f.touchpoint, "occurred_at": PAST}),
        json!({"candidate_id": f.candidate, "touchpoint_id": 999_999, "occurred_at": PAST}),
    ] {
        let reply = app.post(ENCOUNTERS, &app.recruiter, body).await;
        assert_eq!(reply.status.as_u16(), 422, "{reply:?}");
        assert_eq!(reply.body["error"]["code"], "unknown_reference");
    }
    // With an idempotency key too: the key is not kept for a refusal.
    let response = app
        .client
        .post(app.url(ENCOUNTERS))
        .bearer_auth(&app.recruiter)
        .header("Idempotency-Key", "refused-1")
        .json(&json!({"candidate_id": 999_999, "touchpoint_id": f.touchpoint, "occurred_at": PAST}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    assert_eq!(written(&app).await, before);
    // The next accepted write moves the sequence on as usual.
    app.encounter(f.candidate, f.touchpoint, PAST, None).await;
    assert!(written(&app).await.0 > before.0);
}

#[tokio::test]
async fn a_batch_names_every_refused_item_in_one_answer() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let before = written(&app).await;
    let items = json!([
        {"candidate_id": f.candidate, "touchpoint_id": f.touchpoint, "occurred_at": PAST},
        {"candidate_id": 999_999, "touchpoint_id": f.touchpoint, "occurred_at": PAST},
        {"candidate_id": f.candidate, "touchpoint_id": f.touchpoint, "occurred_at": PAST, "score": 11},
        {"candidate_external_ref": "NEW", "touchpoint_name": "Nope", "occurred_at": PAST},
        {"candidate_id": f.candidate, "touchpoint_id": f.touchpoint, "occurred_at": "0000-01-01T00:00:00Z"},
    ]);
    let reply = app.post(BATCH, &app.recruiter, items).await;
    reply.assert_error(422, "invalid_items", None);
    let refused: Vec<(i64, String, String)> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["index"].as_i64().unwrap(),
                item["error"]["code"].as_str().unwrap().to_owned(),
                item["error"]["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        refused,
        vec![
            (1, "unknown_reference".to_owned(), "candidate_id".to_owned()),
            (2, "validation_failed".to_owned(), "score".to_owned()),
            (
                3,
                "unknown_reference".to_owned(),
                "touchpoint_name".to_owned()
            ),
            (4, "validation_failed".to_owned(), "occurred_at".to_owned()),
        ]
    );
    assert_eq!(written(&app).await, before);
}

#[tokio::test]
async fn the_last_active_admin_key_cannot_be_revoked() {
    let app = spawn_app().await;
    let keys = app.get("/api/v1/keys", &app.admin).await;
    let admin_id = keys.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["role"] == "admin")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    // A second admin.
    let second = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Deputy", "role": "admin"}),
        )
        .await;
    let second_id = second.body["key"]["id"].as_i64().unwrap();
    let second_token = second.body["token"].as_str().unwrap().to_owned();
    // The first admin revokes the second: allowed, another admin remains.
    app.delete(&format!("/api/v1/keys/{second_id}"), &app.admin)
        .await
        .assert_status(200);
    // A fresh deputy tries to revoke the first admin while it is the only
    // other active one: allowed once, then the deputy is the last.
    let third = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Deputy 2", "role": "admin"}),
        )
        .await;
    let third_token = third.body["token"].as_str().unwrap().to_owned();
    app.delete(&format!("/api/v1/keys/{admin_id}"), &third_token)
        .await
        .assert_status(200);
    // Now the deputy is the last active admin: it cannot revoke itself, and
    // no one else (a revoked key, a recruiter) can revoke it.
    let third_path = format!("/api/v1/keys/{}", third.body["key"]["id"]);
    let events = app.count("audit_events").await;
    app.delete(&third_path, &third_token)
        .await
        .assert_error(409, "key_still_needed", Some("id"));
    app.delete(&third_path, &second_token)
        .await
        .assert_error(401, "unauthorized", None);
    app.delete(&third_path, &app.recruiter)
        .await
        .assert_error(403, "forbidden", None);
    assert_eq!(app.count("audit_events").await, events);
    app.get("/api/v1/keys", &third_token)
        .await
        .assert_status(200);
    // A reporter key is not an admin: revoking it is fine.
    let reporter = app
        .post(
            "/api/v1/keys",
            &third_token,
            json!({"name": "BI", "role": "reporter"}),
        )
        .await;
    app.delete(
        &format!("/api/v1/keys/{}", reporter.body["key"]["id"]),
        &third_token,
    )
    .await
    .assert_status(200);
}

#[tokio::test]
async fn two_admins_revoking_each_other_at_once_leave_one() {
    for _ in 0..5 {
        let app = spawn_app().await;
        let created = app
            .post(
                "/api/v1/keys",
                &app.admin,
                json!({"name": "Deputy", "role": "admin"}),
            )
            .await;
        let deputy = created.body["token"].as_str().unwrap().to_owned();
        let deputy_id = created.body["key"]["id"].as_i64().unwrap();
        let keys = app.get("/api/v1/keys", &app.admin).await;
        let admin_id = keys.body["items"][0]["id"].as_i64().unwrap();
        let (deputy_path, admin_path) = (
            format!("/api/v1/keys/{deputy_id}"),
            format!("/api/v1/keys/{admin_id}"),
        );
        let (a, b) = tokio::join!(
            app.delete(&deputy_path, &app.admin),
            app.delete(&admin_path, &deputy),
        );
        let statuses = [a.status.as_u16(), b.status.as_u16()];
        assert!(statuses.contains(&200), "{a:?} {b:?}");
        assert!(
            statuses.contains(&409) || statuses.contains(&401),
            "{a:?} {b:?}"
        );
        let mut working = 0;
        for token in [&app.admin, &deputy] {
            if app.get("/api/v1/keys", token).await.status.as_u16() == 200 {
                working += 1;
            }
        }
        assert_eq!(working, 1, "{a:?} {b:?}");
    }
}

#[tokio::test]
async fn failed_authentications_are_limited_per_address_before_any_lookup() {
    let app = spawn_app_with(Limits {
        auth_failures: Some(RateLimit {
            per_second: 0.2,
            burst: 5.0,
        }),
        ..Default::default()
    })
    .await;
    let bad = format!("tpt_{}", "A".repeat(43));
    for attempt in 0..5 {
        let reply = app.get("/api/v1/touchpoints", &bad).await;
        assert_eq!(reply.status.as_u16(), 401, "attempt {attempt}: {reply:?}");
    }
    let started = Utc::now();
    let mut refused = 0;
    for _ in 0..200 {
        let response = app
            .client
            .get(app.url("/api/v1/touchpoints"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            refused += 1;
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=5).contains(&retry_after), "{retry_after}");
        }
    }
    // At 0.2 per second, at most a few more tokens refilled meanwhile.
    let elapsed = (Utc::now() - started).num_seconds();
    assert!(refused >= 200 - 1 - elapsed, "{refused} of 200 refused");
    let reply = app.get("/api/v1/touchpoints", &bad).await;
    reply.assert_error(429, "rate_limited", None);
    // The address is refused before its token is read: a valid key from it
    // waits too (documented), while requests without credentials still get
    // their 401.
    app.get("/api/v1/touchpoints", &app.admin)
        .await
        .assert_error(429, "rate_limited", None);
    let reply = app
        .client
        .get(app.url("/api/v1/touchpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status().as_u16(), 401);
    // Successful authentications never count.
    let fresh = spawn_app_with(Limits {
        auth_failures: Some(RateLimit {
            per_second: 0.2,
            burst: 2.0,
        }),
        ..Default::default()
    })
    .await;
    for _ in 0..20 {
        fresh
            .get("/api/v1/touchpoints", &fresh.admin)
            .await
            .assert_status(200);
    }
}
