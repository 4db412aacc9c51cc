//! Bad input: every rejected request answers a 4xx in the one error shape
//! `{"error": {"code", "message", "field"}}`, names the field at fault, and
//! writes nothing. No request, however malformed, answers 5xx.

use std::future::Future;

use chrono::{Duration, SecondsFormat, Utc};
use reqwest::{header::CONTENT_TYPE, Method};
use serde_json::{json, Value};

use super::helpers::{spawn_app, Reply, TestApp};

const TOUCHPOINTS: &str = "/api/v1/touchpoints";
const CANDIDATES: &str = "/api/v1/candidates";
const ENCOUNTERS: &str = "/api/v1/encounters";
/// An id no row has.
const MISSING: i64 = 999_999;
/// A moment safely in the past.
const PAST: &str = "2025-03-01T10:00:00Z";

/// One row of each resource, to aim bad requests at.
struct Fixture {
    touchpoint: i64,
    candidate: i64,
    encounter: i64,
}

async fn fixture(app: &TestApp) -> Fixture {
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
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

fn touchpoint_body(name: &str) -> Value {
    json!({
        "name": name,
        "kind": "employer_created",
        "channel": "careers_site",
        "stage": "awareness",
    })
}

fn encounter_body(fixture: &Fixture) -> Value {
    json!({
        "candidate_id": fixture.candidate,
        "touchpoint_id": fixture.touchpoint,
        "occurred_at": PAST,
        "score": 5,
    })
}

/// `body` with `key` set to `value`.
fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

/// `body` without `key`.
fn without(mut body: Value, key: &str) -> Value {
    body.as_object_mut().unwrap().remove(key);
    body
}

/// Now plus `minutes`, as RFC 3339 in UTC.
fn minutes_from_now(minutes: i64) -> String {
    (Utc::now() + Duration::minutes(minutes)).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Rows in the tables a request could write to, and the audit events any
/// change records.
async fn counts(app: &TestApp) -> [i64; 4] {
    [
        app.count("touchpoints").await,
        app.count("candidates").await,
        app.count("encounters").await,
        app.count("audit_events").await,
    ]
}

/// Sends `request` (futures are lazy: nothing is sent before the rows are
/// counted), asserts the error it answers and that it wrote nothing.
async fn assert_rejected(
    app: &TestApp,
    request: impl Future<Output = Reply>,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> Reply {
    let before = counts(app).await;
    let reply = request.await;
    reply.assert_error(status, code, field);
    assert_eq!(
        counts(app).await,
        before,
        "a rejected request wrote rows: {reply:?}"
    );
    reply
}

/// A PATCH that must be rejected: also asserts the resource is unchanged.
async fn assert_patch_rejected(
    app: &TestApp,
    path: &str,
    body: Value,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let before = app.get(path, &app.admin).await.assert_status(200).clone();
    assert_rejected(app, app.patch(path, &app.admin, body), status, code, field).await;
    let after = app.get(path, &app.admin).await;
    assert_eq!(
        after.assert_status(200),
        &before,
        "a rejected PATCH changed {path}"
    );
}

/// Sends `body` as is, with `content_type` when given, as the admin.
async fn send_raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut request = app
        .client
        .request(method, app.url(path))
        .bearer_auth(&app.admin)
        .body(body);
    if let Some(content_type) = content_type {
        request = request.header(CONTENT_TYPE, content_type);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

#[tokio::test]
async fn unknown_enum_values_in_bodies_name_the_field() {
    let app = spawn_app().await;
    let f = fixture(&app).await;

    for field in ["kind", "channel", "stage"] {
        for bad in ["nope", "EMPLOYER_CREATED", ""] {
            let body = with(touchpoint_body("Job ad"), field, json!(bad));
            assert_rejected(
                &app,
                app.post(TOUCHPOINTS, &app.admin, body),
                422,
                "validation_failed",
                Some(field),
            )
            .await;
        }
        assert_patch_rejected(
            &app,
            &format!("{TOUCHPOINTS}/{}", f.touchpoint),
            json!({ field: "nope" }),
            422,
            "validation_failed",
            Some(field),
        )
        .await;
    }

    assert_rejected(
        &app,
        app.post(
            CANDIDATES,
            &app.admin,
            json!({"external_ref": "ATS-2", "stage": "nope"}),
        ),
        422,
        "validation_failed",
        Some("stage"),
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{CANDIDATES}/{}", f.candidate),
        json!({"stage": "nope"}),
        422,
        "validation_failed",
        Some("stage"),
    )
    .await;

    assert_rejected(
        &app,
        app.post(
            ENCOUNTERS,
            &app.admin,
            with(encounter_body(&f), "source", json!("nope")),
        ),
        422,
        "validation_failed",
        Some("source"),
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{ENCOUNTERS}/{}", f.encounter),
        json!({"source": "nope"}),
        422,
        "validation_failed",
        Some("source"),
    )
    .await;
}

#[tokio::test]
async fn bad_query_parameters_name_the_parameter() {
    let app = spawn_app().await;
    let cases = [
        ("/api/v1/touchpoints?kind=nope", "kind"),
        ("/api/v1/touchpoints?channel=nope", "channel"),
        ("/api/v1/touchpoints?stage=nope", "stage"),
        (
            "/api/v1/touchpoints?include_archived=maybe",
            "include_archived",
        ),
        ("/api/v1/candidates?stage=nope", "stage"),
        ("/api/v1/encounters?kind=nope", "kind"),
        ("/api/v1/encounters?stage=nope", "stage"),
        ("/api/v1/encounters?candidate_id=abc", "candidate_id"),
        ("/api/v1/encounters?touchpoint_id=1.5", "touchpoint_id"),
        ("/api/v1/encounters?from=yesterday", "from"),
        ("/api/v1/encounters?to=2025-13-01T00:00:00Z", "to"),
    ];
    for (path, field) in cases {
        app.get(path, &app.reporter)
            .await
            .assert_error(422, "validation_failed", Some(field));
    }
}

#[tokio::test]
async fn scores_outside_zero_to_ten_are_refused_on_create_and_update() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let encounter = format!("{ENCOUNTERS}/{}", f.encounter);

    for bad in [-1, 11, i64::from(i32::MAX) + 1] {
        assert_rejected(
            &app,
            app.post(
                ENCOUNTERS,
                &app.recruiter,
                with(encounter_body(&f), "score", json!(bad)),
            ),
            422,
            "validation_failed",
            Some("score"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &encounter,
            json!({ "score": bad }),
            422,
            "validation_failed",
            Some("score"),
        )
        .await;
    }

    for good in [0, 10] {
        let created = app
            .post(
                ENCOUNTERS,
                &app.recruiter,
                with(encounter_body(&f), "score", json!(good)),
            )
            .await;
        assert_eq!(created.assert_status(201)["score"], good);
        let updated = app
            .patch(&encounter, &app.recruiter, json!({ "score": good }))
            .await;
        assert_eq!(updated.assert_status(200)["score"], good);
    }
}

#[tokio::test]
async fn blank_and_overlong_names_and_refs_are_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let touchpoint = format!("{TOUCHPOINTS}/{}", f.touchpoint);
    let candidate = format!("{CANDIDATES}/{}", f.candidate);
    let too_long = "x".repeat(300);

    for bad in ["", "   ", "\t\n", too_long.as_str()] {
        assert_rejected(
            &app,
            app.post(TOUCHPOINTS, &app.admin, touchpoint_body(bad)),
            422,
            "validation_failed",
            Some("name"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &touchpoint,
            json!({ "name": bad }),
            422,
            "validation_failed",
            Some("name"),
        )
        .await;
        assert_rejected(
            &app,
            app.post(CANDIDATES, &app.admin, json!({ "external_ref": bad })),
            422,
            "validation_failed",
            Some("external_ref"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &candidate,
            json!({ "external_ref": bad }),
            422,
            "validation_failed",
            Some("external_ref"),
        )
        .await;
    }

    // The limit is 200 characters, not bytes.
    let longest = "é".repeat(200);
    let created = app
        .post(TOUCHPOINTS, &app.admin, touchpoint_body(&longest))
        .await;
    assert_eq!(created.assert_status(201)["name"], longest.as_str());
}

#[tokio::test]
async fn other_overlong_or_malformed_text_fields_are_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let cases = [
        (
            TOUCHPOINTS,
            with(
                touchpoint_body("Job ad"),
                "description",
                json!("d".repeat(2001)),
            ),
            "description",
        ),
        (
            CANDIDATES,
            json!({"external_ref": "ATS-2", "display_name": "n".repeat(201)}),
            "display_name",
        ),
        (
            CANDIDATES,
            json!({"external_ref": "ATS-2", "email": "not-an-address"}),
            "email",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "note", json!("n".repeat(4001))),
            "note",
        ),
    ];
    for (path, body, field) in cases {
        assert_rejected(
            &app,
            app.post(path, &app.admin, body),
            422,
            "validation_failed",
            Some(field),
        )
        .await;
    }
}

#[tokio::test]
async fn occurred_at_more_than_five_minutes_ahead_is_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let encounter = format!("{ENCOUNTERS}/{}", f.encounter);

    for minutes in [6, 60 * 24, 60 * 24 * 365 * 100] {
        let at = minutes_from_now(minutes);
        assert_rejected(
            &app,
            app.post(
                ENCOUNTERS,
                &app.recruiter,
                with(encounter_body(&f), "occurred_at", json!(at)),
            ),
            422,
            "validation_failed",
            Some("occurred_at"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &encounter,
            json!({ "occurred_at": at }),
            422,
            "validation_failed",
            Some("occurred_at"),
        )
        .await;
    }

    // Clocks drift: a minute ahead is accepted.
    let soon = minutes_from_now(1);
    let before = app.count("encounters").await;
    let created = app
        .post(
            ENCOUNTERS,
            &app.recruiter,
            with(encounter_body(&f), "occurred_at", json!(soon)),
        )
        .await;
    let expected = soon.replace('Z', "+00:00");
    assert_eq!(created.assert_status(201)["occurred_at"], expected.as_str());
    assert_eq!(app.count("encounters").await, before + 1);
    let moved = app
        .patch(&encounter, &app.recruiter, json!({ "occurred_at": soon }))
        .await;
    assert_eq!(moved.assert_status(200)["occurred_at"], expected.as_str());
}

#[tokio::test]
async fn unknown_references_in_the_body_are_422() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let foreign_touchpoint = app
        .post(
            TOUCHPOINTS,
            &app.other_admin,
            touchpoint_body("Globex careers"),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();

    let cases = [
        ("candidate_id", json!(MISSING)),
        ("candidate_id", json!(-1)),
        ("touchpoint_id", json!(MISSING)),
        ("touchpoint_id", json!(foreign_touchpoint)),
    ];
    for (field, id) in cases {
        assert_rejected(
            &app,
            app.post(
                ENCOUNTERS,
                &app.recruiter,
                with(encounter_body(&f), field, id),
            ),
            422,
            "unknown_reference",
            Some(field),
        )
        .await;
    }

    for id in [MISSING, foreign_touchpoint] {
        assert_patch_rejected(
            &app,
            &format!("{ENCOUNTERS}/{}", f.encounter),
            json!({ "touchpoint_id": id }),
            422,
            "unknown_reference",
            Some("touchpoint_id"),
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_ids_in_paths_are_404() {
    let app = spawn_app().await;
    fixture(&app).await;
    let cases = [
        (Method::GET, format!("{TOUCHPOINTS}/{MISSING}"), None),
        (
            Method::PATCH,
            format!("{TOUCHPOINTS}/{MISSING}"),
            Some(json!({"name": "Renamed"})),
        ),
        (Method::DELETE, format!("{TOUCHPOINTS}/{MISSING}"), None),
        (Method::GET, format!("{CANDIDATES}/{MISSING}"), None),
        (
            Method::PATCH,
            format!("{CANDIDATES}/{MISSING}"),
            Some(json!({"stage": "offer"})),
        ),
        (Method::DELETE, format!("{CANDIDATES}/{MISSING}"), None),
        (Method::GET, format!("{CANDIDATES}/{MISSING}/journey"), None),
        (Method::GET, format!("{ENCOUNTERS}/{MISSING}"), None),
        (
            Method::PATCH,
            format!("{ENCOUNTERS}/{MISSING}"),
            Some(json!({"score": 3})),
        ),
        (Method::DELETE, format!("{ENCOUNTERS}/{MISSING}"), None),
        (Method::DELETE, format!("/api/v1/keys/{MISSING}"), None),
        (Method::GET, format!("{TOUCHPOINTS}/-1"), None),
    ];
    for (method, path, body) in cases {
        let keys_before = app.count("api_keys").await;
        assert_rejected(
            &app,
            app.request(method, &path, Some(&app.admin), body),
            404,
            "not_found",
            None,
        )
        .await;
        assert_eq!(app.count("api_keys").await, keys_before);
    }
}

#[tokio::test]
async fn non_integer_path_ids_are_404() {
    let app = spawn_app().await;
    let cases = [
        (Method::GET, "/api/v1/touchpoints/abc"),
        (Method::PATCH, "/api/v1/touchpoints/abc"),
        (Method::DELETE, "/api/v1/touchpoints/abc"),
        (Method::GET, "/api/v1/touchpoints/1.5"),
        (Method::GET, "/api/v1/touchpoints/99999999999999999999"),
        (Method::GET, "/api/v1/candidates/abc"),
        (Method::GET, "/api/v1/candidates/abc/journey"),
        (Method::DELETE, "/api/v1/candidates/abc"),
        (Method::GET, "/api/v1/encounters/abc"),
        (Method::DELETE, "/api/v1/encounters/abc"),
        (Method::DELETE, "/api/v1/keys/abc"),
    ];
    for (method, path) in cases {
        let body = (method == Method::PATCH).then(|| json!({"name": "Renamed"}));
        assert_rejected(
            &app,
            app.request(method, path, Some(&app.admin), body),
            404,
            "not_found",
            None,
        )
        .await;
    }
}

#[tokio::test]
async fn duplicate_external_refs_are_409_on_create_and_update() {
    let app = spawn_app().await;
    let first = app.candidate("ATS-1").await;
    let second = app.candidate("ATS-2").await;

    for taken in ["ATS-1", "  ATS-1 "] {
        assert_rejected(
            &app,
            app.post(CANDIDATES, &app.recruiter, json!({ "external_ref": taken })),
            409,
            "already_exists",
            Some("external_ref"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &format!("{CANDIDATES}/{second}"),
            json!({ "external_ref": taken }),
            409,
            "already_exists",
            Some("external_ref"),
        )
        .await;
    }

    // Keeping one's own external_ref is not a conflict.
    let same = app
        .patch(
            &format!("{CANDIDATES}/{first}"),
            &app.recruiter,
            json!({"external_ref": "ATS-1"}),
        )
        .await;
    assert_eq!(same.assert_status(200)["external_ref"], "ATS-1");
}

#[tokio::test]
async fn duplicate_touchpoint_names_are_409_on_create_and_update() {
    let app = spawn_app().await;
    let first = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let second = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;

    for taken in ["Careers site", " Careers site  "] {
        assert_rejected(
            &app,
            app.post(TOUCHPOINTS, &app.admin, touchpoint_body(taken)),
            409,
            "already_exists",
            Some("name"),
        )
        .await;
        assert_patch_rejected(
            &app,
            &format!("{TOUCHPOINTS}/{second}"),
            json!({ "name": taken }),
            409,
            "already_exists",
            Some("name"),
        )
        .await;
    }

    // An archived touchpoint keeps its name.
    app.delete(&format!("{TOUCHPOINTS}/{first}"), &app.admin)
        .await
        .assert_status(200);
    assert_rejected(
        &app,
        app.post(TOUCHPOINTS, &app.admin, touchpoint_body("Careers site")),
        409,
        "already_exists",
        Some("name"),
    )
    .await;
}

#[tokio::test]
async fn archived_touchpoints_take_no_new_encounters() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let archived = app
        .touchpoint(
            "Old job board",
            "employer_created",
            "job_board",
            "awareness",
        )
        .await;
    app.delete(&format!("{TOUCHPOINTS}/{archived}"), &app.admin)
        .await
        .assert_status(200);

    assert_rejected(
        &app,
        app.post(
            ENCOUNTERS,
            &app.recruiter,
            with(encounter_body(&f), "touchpoint_id", json!(archived)),
        ),
        409,
        "touchpoint_archived",
        Some("touchpoint_id"),
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{ENCOUNTERS}/{}", f.encounter),
        json!({ "touchpoint_id": archived }),
        409,
        "touchpoint_archived",
        Some("touchpoint_id"),
    )
    .await;
}

#[tokio::test]
async fn malformed_json_is_400_and_misshapen_json_is_422() {
    let app = spawn_app().await;
    let json_type = "application/json";
    let valid = touchpoint_body("Job ad").to_string();

    for malformed in [
        r#"{"name": "Job ad", "#.to_owned(),
        "{name: 'Job ad'}".to_owned(),
        String::new(),
        format!("{valid} trailing"),
        format!("{valid}{valid}"),
    ] {
        assert_rejected(
            &app,
            app.post_raw(TOUCHPOINTS, &app.admin, json_type, &malformed),
            400,
            "malformed_json",
            None,
        )
        .await;
    }

    for not_an_object in ["[]", r#""Job ad""#, "42", "true", "null"] {
        assert_rejected(
            &app,
            app.post_raw(TOUCHPOINTS, &app.admin, json_type, not_an_object),
            422,
            "validation_failed",
            Some("body"),
        )
        .await;
    }

    let f = fixture(&app).await;
    let cases = [
        (
            TOUCHPOINTS,
            without(touchpoint_body("Job ad"), "kind"),
            "kind",
        ),
        (
            TOUCHPOINTS,
            without(touchpoint_body("Job ad"), "name"),
            "name",
        ),
        (
            TOUCHPOINTS,
            with(touchpoint_body("Job ad"), "name", json!(42)),
            "name",
        ),
        (CANDIDATES, json!({}), "external_ref"),
        (
            ENCOUNTERS,
            without(encounter_body(&f), "occurred_at"),
            "occurred_at",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "score", json!("high")),
            "score",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "score", json!(7.5)),
            "score",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "candidate_id", json!("1")),
            "candidate_id",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "occurred_at", json!("yesterday")),
            "occurred_at",
        ),
        (
            ENCOUNTERS,
            with(encounter_body(&f), "occurred_at", json!("2025-03-01 10:00")),
            "occurred_at",
        ),
    ];
    for (path, body, field) in cases {
        assert_rejected(
            &app,
            app.post(path, &app.admin, body),
            422,
            "validation_failed",
            Some(field),
        )
        .await;
    }
}

#[tokio::test]
async fn unknown_fields_are_refused() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    assert_rejected(
        &app,
        app.post(
            TOUCHPOINTS,
            &app.admin,
            with(touchpoint_body("Job ad"), "colour", json!("red")),
        ),
        422,
        "validation_failed",
        Some("colour"),
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{ENCOUNTERS}/{}", f.encounter),
        json!({"score": 3, "scroe": 4}),
        422,
        "validation_failed",
        Some("scroe"),
    )
    .await;
}

#[tokio::test]
async fn null_is_refused_for_required_patch_fields() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let cases = [
        (format!("{TOUCHPOINTS}/{}", f.touchpoint), "name"),
        (format!("{CANDIDATES}/{}", f.candidate), "external_ref"),
        (format!("{ENCOUNTERS}/{}", f.encounter), "touchpoint_id"),
        (format!("{ENCOUNTERS}/{}", f.encounter), "occurred_at"),
    ];
    for (path, field) in cases {
        assert_patch_rejected(
            &app,
            &path,
            json!({ field: null }),
            422,
            "validation_failed",
            Some(field),
        )
        .await;
    }
}

#[tokio::test]
async fn wrong_json_types_for_enum_fields_are_422_naming_the_field() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let touchpoint = format!("{TOUCHPOINTS}/{}", f.touchpoint);

    for field in ["kind", "channel", "stage"] {
        for bad in [json!(3), json!(true), json!(["true"]), json!(null)] {
            assert_rejected(
                &app,
                app.post(
                    TOUCHPOINTS,
                    &app.admin,
                    with(touchpoint_body("Job ad"), field, bad),
                ),
                422,
                "validation_failed",
                Some(field),
            )
            .await;
        }
        assert_patch_rejected(
            &app,
            &touchpoint,
            json!({ field: null }),
            422,
            "validation_failed",
            Some(field),
        )
        .await;
    }
    assert_patch_rejected(
        &app,
        &format!("{CANDIDATES}/{}", f.candidate),
        json!({"stage": null}),
        422,
        "validation_failed",
        Some("stage"),
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{ENCOUNTERS}/{}", f.encounter),
        json!({"source": null}),
        422,
        "validation_failed",
        Some("source"),
    )
    .await;
    assert_rejected(
        &app,
        app.post(
            ENCOUNTERS,
            &app.admin,
            with(encounter_body(&f), "source", json!(1)),
        ),
        422,
        "validation_failed",
        Some("source"),
    )
    .await;
}

#[tokio::test]
async fn json_arrays_are_never_taken_for_objects() {
    let app = spawn_app().await;
    for array in [
        r#"["Job ad", "employer_created", "careers_site", "awareness"]"#,
        r#"["Job ad", "employer_created", "careers_site", "awareness", null]"#,
        r#"[{"name": "Job ad"}]"#,
    ] {
        assert_rejected(
            &app,
            app.post_raw(TOUCHPOINTS, &app.admin, "application/json", array),
            422,
            "validation_failed",
            Some("body"),
        )
        .await;
    }
    assert_rejected(
        &app,
        app.post_raw(CANDIDATES, &app.admin, "application/json", r#"["ATS-2"]"#),
        422,
        "validation_failed",
        Some("body"),
    )
    .await;
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let body = touchpoint_body("Job ad").to_string();

    for content_type in [
        "text/plain",
        "application/xml",
        "application/x-www-form-urlencoded",
        "not a media type",
    ] {
        assert_rejected(
            &app,
            app.post_raw(TOUCHPOINTS, &app.admin, content_type, &body),
            415,
            "unsupported_media_type",
            None,
        )
        .await;
    }

    // No Content-Type at all, with and without a body.
    assert_rejected(
        &app,
        send_raw(&app, Method::POST, TOUCHPOINTS, None, body.clone()),
        415,
        "unsupported_media_type",
        None,
    )
    .await;
    assert_rejected(
        &app,
        app.request(Method::POST, CANDIDATES, Some(&app.admin), None),
        415,
        "unsupported_media_type",
        None,
    )
    .await;

    let touchpoint = format!("{TOUCHPOINTS}/{}", f.touchpoint);
    let before = app
        .get(&touchpoint, &app.admin)
        .await
        .assert_status(200)
        .clone();
    send_raw(
        &app,
        Method::PATCH,
        &touchpoint,
        Some("text/plain"),
        r#"{"name": "Renamed"}"#,
    )
    .await
    .assert_error(415, "unsupported_media_type", None);
    assert_eq!(
        app.get(&touchpoint, &app.admin).await.assert_status(200),
        &before
    );
}

#[tokio::test]
async fn bad_cursors_and_limits_are_422_and_500_is_the_largest_page() {
    let app = spawn_app().await;
    fixture(&app).await;

    for list in [TOUCHPOINTS, CANDIDATES, ENCOUNTERS, "/api/v1/keys"] {
        for cursor in ["garbage", "aWQ6", "aWQ6LTU", "%21%21"] {
            app.get(&format!("{list}?cursor={cursor}"), &app.admin)
                .await
                .assert_error(422, "validation_failed", Some("cursor"));
        }
        for limit in ["0", "501", "-1", "abc", "18446744073709551616"] {
            app.get(&format!("{list}?limit={limit}"), &app.admin)
                .await
                .assert_error(422, "validation_failed", Some("limit"));
        }
        let page = app.get(&format!("{list}?limit=500"), &app.admin).await;
        let page = page.assert_status(200);
        assert!(page["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()));
        assert!(page["next_cursor"].is_null());
    }
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let huge_note = "n".repeat(2 * 1024 * 1024);

    assert_rejected(
        &app,
        app.post(
            ENCOUNTERS,
            &app.recruiter,
            with(encounter_body(&f), "note", json!(huge_note)),
        ),
        413,
        "payload_too_large",
        None,
    )
    .await;
    assert_patch_rejected(
        &app,
        &format!("{ENCOUNTERS}/{}", f.encounter),
        json!({ "note": huge_note }),
        413,
        "payload_too_large",
        None,
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_unsupported_methods_405() {
    let app = spawn_app().await;
    for path in [
        "/api/v1/nope",
        "/api/v2/touchpoints",
        "/api/v1/touchpoints/1/2",
        "/nope",
    ] {
        app.get(path, &app.admin)
            .await
            .assert_error(404, "not_found", None);
    }

    let cases = [
        (Method::PUT, TOUCHPOINTS.to_owned()),
        (Method::DELETE, TOUCHPOINTS.to_owned()),
        (Method::PATCH, CANDIDATES.to_owned()),
        (Method::POST, format!("{TOUCHPOINTS}/1")),
        (Method::PUT, format!("{CANDIDATES}/1")),
        (Method::PUT, format!("{ENCOUNTERS}/1")),
        (Method::POST, format!("{CANDIDATES}/1/journey")),
        (Method::GET, "/api/v1/keys/1".to_owned()),
    ];
    for (method, path) in cases {
        assert_rejected(
            &app,
            app.request(method, &path, Some(&app.admin), Some(json!({}))),
            405,
            "method_not_allowed",
            None,
        )
        .await;
    }
}

/// One request of [`no_bad_request_answers_5xx`].
struct Case {
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

impl Case {
    fn json(method: Method, path: impl Into<String>, body: Value) -> Self {
        Self::raw(method, path, Some("application/json"), body.to_string())
    }

    fn raw(
        method: Method,
        path: impl Into<String>,
        content_type: Option<&'static str>,
        body: impl Into<Vec<u8>>,
    ) -> Self {
        Case {
            method,
            path: path.into(),
            content_type,
            body: body.into(),
        }
    }

    fn bare(method: Method, path: impl Into<String>) -> Self {
        Self::raw(method, path, None, Vec::new())
    }

    async fn send(&self, app: &TestApp, token: &str) -> Reply {
        let mut request = app
            .client
            .request(self.method.clone(), app.url(&self.path))
            .bearer_auth(token)
            .body(self.body.clone());
        if let Some(content_type) = self.content_type {
            request = request.header(CONTENT_TYPE, content_type);
        }
        TestApp::reply(request.send().await.expect("request sent")).await
    }
}

/// Whether `reply` is in the one error shape (without judging its values).
fn has_error_shape(reply: &Reply) -> bool {
    let error = &reply.body["error"];
    reply.content_type.as_deref() == Some("application/json; charset=utf-8")
        && error["code"].is_string()
        && error["message"].as_str().is_some_and(|m| !m.is_empty())
        && error.get("field").is_some()
}

fn bad_requests(f: &Fixture) -> Vec<Case> {
    use Method as M;
    let touchpoint = format!("{TOUCHPOINTS}/{}", f.touchpoint);
    let candidate = format!("{CANDIDATES}/{}", f.candidate);
    let encounter = format!("{ENCOUNTERS}/{}", f.encounter);
    let enc = || encounter_body(f);
    let tp = || touchpoint_body("Job ad");
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    vec![
        // Enums, ranges, lengths, references, times.
        Case::json(M::POST, TOUCHPOINTS, with(tp(), "kind", json!("nope"))),
        Case::json(M::POST, TOUCHPOINTS, with(tp(), "name", json!(""))),
        Case::json(
            M::POST,
            TOUCHPOINTS,
            with(tp(), "name", json!("x".repeat(300))),
        ),
        Case::json(
            M::POST,
            TOUCHPOINTS,
            with(tp(), "description", json!("d".repeat(5000))),
        ),
        Case::json(M::PATCH, &touchpoint, json!({"name": "   "})),
        Case::json(M::PATCH, &touchpoint, json!({"stage": null})),
        Case::json(
            M::POST,
            CANDIDATES,
            json!({"external_ref": "", "stage": "nope"}),
        ),
        Case::json(M::POST, CANDIDATES, json!({"external_ref": "ATS-1"})),
        Case::json(
            M::POST,
            CANDIDATES,
            json!({"external_ref": "ATS-9", "email": "a@@b"}),
        ),
        Case::json(M::PATCH, &candidate, json!({"external_ref": null})),
        Case::json(M::POST, ENCOUNTERS, with(enc(), "score", json!(-1))),
        Case::json(M::POST, ENCOUNTERS, with(enc(), "score", json!(11))),
        Case::json(M::POST, ENCOUNTERS, with(enc(), "score", json!(1e300))),
        Case::json(M::POST, ENCOUNTERS, with(enc(), "score", json!(i64::MIN))),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "candidate_id", json!(MISSING)),
        ),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "candidate_id", json!(u64::MAX)),
        ),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "touchpoint_id", json!(i64::MIN)),
        ),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "occurred_at", json!("9999-12-31T23:59:59Z")),
        ),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "occurred_at", json!("+262143-01-01T00:00:00Z")),
        ),
        Case::json(
            M::POST,
            ENCOUNTERS,
            with(enc(), "occurred_at", json!(minutes_from_now(10))),
        ),
        Case::json(M::POST, ENCOUNTERS, with(enc(), "source", json!({"x": 1}))),
        Case::json(M::PATCH, &encounter, json!({"score": 11})),
        Case::json(M::PATCH, &encounter, json!({"touchpoint_id": MISSING})),
        Case::json(M::PATCH, &encounter, json!({"occurred_at": "tomorrow"})),
        Case::json(
            M::POST,
            "/api/v1/keys",
            json!({"name": "", "role": "admin"}),
        ),
        Case::json(
            M::POST,
            "/api/v1/keys",
            json!({"name": "k", "role": "root"}),
        ),
        // Bodies that are not (well-formed) JSON objects.
        Case::raw(M::POST, TOUCHPOINTS, Some("application/json"), "{"),
        Case::raw(M::POST, TOUCHPOINTS, Some("application/json"), ""),
        Case::raw(M::POST, TOUCHPOINTS, Some("application/json"), "[]"),
        Case::raw(M::POST, TOUCHPOINTS, Some("application/json"), nested),
        Case::raw(
            M::POST,
            TOUCHPOINTS,
            Some("application/json"),
            vec![b'"', 0xff, 0xfe, b'"'],
        ),
        Case::raw(
            M::POST,
            TOUCHPOINTS,
            Some("application/json"),
            r#"{"name": "\ud800"}"#,
        ),
        Case::raw(
            M::POST,
            ENCOUNTERS,
            Some("application/json"),
            r#"{"score": 1e400}"#,
        ),
        Case::raw(M::PATCH, &encounter, Some("application/json"), "{} {}"),
        Case::raw(M::POST, TOUCHPOINTS, Some("text/plain"), "hello"),
        Case::raw(
            M::POST,
            TOUCHPOINTS,
            Some("application/json; charset=latin1"),
            "{",
        ),
        Case::raw(M::POST, CANDIDATES, Some(""), "{}"),
        Case::bare(M::POST, ENCOUNTERS),
        Case::bare(M::PATCH, &touchpoint),
        // Query parameters.
        Case::bare(M::GET, "/api/v1/touchpoints?kind=nope"),
        Case::bare(M::GET, "/api/v1/touchpoints?limit=0"),
        Case::bare(M::GET, "/api/v1/touchpoints?limit=501"),
        Case::bare(M::GET, "/api/v1/touchpoints?limit=99999999999999999999999"),
        Case::bare(M::GET, "/api/v1/touchpoints?cursor=garbage"),
        Case::bare(M::GET, "/api/v1/touchpoints?cursor="),
        Case::bare(
            M::GET,
            "/api/v1/candidates?cursor=aWQ6OTk5OTk5OTk5OTk5OTk5OTk5OTk5",
        ),
        Case::bare(
            M::GET,
            "/api/v1/encounters?from=not-a-date&to=2025-02-30T00:00:00Z",
        ),
        Case::bare(
            M::GET,
            "/api/v1/encounters?candidate_id=99999999999999999999",
        ),
        Case::bare(M::GET, "/api/v1/keys?limit=abc"),
        // Paths, routes and methods.
        Case::bare(M::GET, format!("{TOUCHPOINTS}/{MISSING}")),
        Case::bare(M::GET, format!("{TOUCHPOINTS}/{}", i64::MAX)),
        Case::bare(M::GET, format!("{TOUCHPOINTS}/{}", i64::MIN)),
        Case::bare(M::GET, "/api/v1/touchpoints/abc"),
        Case::bare(M::GET, "/api/v1/touchpoints/%00"),
        Case::bare(M::DELETE, format!("{TOUCHPOINTS}/{MISSING}")),
        Case::bare(M::GET, format!("{CANDIDATES}/{MISSING}/journey")),
        Case::bare(M::DELETE, format!("{CANDIDATES}/{MISSING}")),
        Case::bare(M::DELETE, format!("{ENCOUNTERS}/{MISSING}")),
        Case::bare(M::DELETE, "/api/v1/keys/999999"),
        Case::bare(M::GET, "/api/v1/nope"),
        Case::bare(M::PUT, TOUCHPOINTS),
        Case::bare(M::POST, &touchpoint),
        Case::bare(M::OPTIONS, TOUCHPOINTS),
        Case::bare(Method::from_bytes(b"BREW").unwrap(), TOUCHPOINTS),
    ]
}

#[tokio::test]
async fn no_bad_request_answers_5xx() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let cases = bad_requests(&f);
    assert!(cases.len() >= 50, "the table covers many requests");

    let before = counts(&app).await;
    let mut failures = Vec::new();
    for case in &cases {
        for token in [app.admin.as_str(), app.reporter.as_str(), "not-a-key"] {
            let reply = case.send(&app, token).await;
            if !reply.status.is_client_error() || !has_error_shape(&reply) {
                failures.push(format!("{} {} -> {reply:?}", case.method, case.path));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(counts(&app).await, before, "a rejected request wrote rows");
}

#[tokio::test]
async fn nul_characters_in_text_never_answer_500() {
    let app = spawn_app().await;
    let f = fixture(&app).await;
    let encounter = format!("{ENCOUNTERS}/{}", f.encounter);
    let cases = [
        (
            Case::json(Method::POST, TOUCHPOINTS, touchpoint_body("nul\u{0}name")),
            "name",
        ),
        (
            Case::json(
                Method::POST,
                CANDIDATES,
                json!({"external_ref": "ATS-\u{0}"}),
            ),
            "external_ref",
        ),
        (
            Case::json(Method::PATCH, &encounter, json!({"note": "a\u{0}b"})),
            "note",
        ),
        (
            Case::bare(Method::GET, "/api/v1/candidates?external_ref=%00"),
            "external_ref",
        ),
    ];
    for (case, field) in cases {
        // Storing the value or refusing it with 422 are both fine; 500 is not.
        let reply = case.send(&app, &app.admin).await;
        if reply.status.is_client_error() {
            reply.assert_error(422, "validation_failed", Some(field));
        } else {
            assert!(
                reply.status.is_success(),
                "{} {} -> {reply:?}",
                case.method,
                case.path
            );
        }
    }
}
