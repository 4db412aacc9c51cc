//! Candidate surveys, as candidates and HR meet them: invitations through
//! the API, the public page at `/s/{token}` spoken to as a browser would
//! (forms, no key), answers landing as encounters or, in anonymous mode,
//! nowhere a person can be found; e-mail through a real SMTP conversation
//! with a sink this test starts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{header, StatusCode};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use touchpoint_tracker::config::{RateLimit, SmtpSettings, SurveySettings};

use crate::helpers::{spawn_app, spawn_app_with_surveys, TestApp};

const INVITATIONS: &str = "/api/v1/survey-invitations";

/// No page rate limit: tests that do not test it make many requests.
fn unlimited() -> SurveySettings {
    SurveySettings {
        page_rate: None,
        ..Default::default()
    }
}

struct Setup {
    touchpoint: i64,
    candidate: i64,
}

async fn setup(app: &TestApp) -> Setup {
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let candidate = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({"external_ref": "ATS-77", "display_name": "Nguyễn Thị Lan", "email": "lan@example.test"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    Setup {
        touchpoint,
        candidate,
    }
}

async fn invite(app: &TestApp, body: Value) -> (i64, String) {
    let reply = app.post(INVITATIONS, &app.recruiter, body).await;
    let body = reply.assert_status(201);
    (
        body["invitation"]["id"].as_i64().unwrap(),
        body["survey_url"].as_str().unwrap().to_owned(),
    )
}

/// The path of a survey URL (`/s/{token}`).
fn path_of(url: &str) -> String {
    let start = url.find("/s/").expect("a survey URL");
    url[start..].to_owned()
}

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    html: String,
}

async fn page_get(app: &TestApp, path: &str) -> Page {
    let response = app.client.get(app.url(path)).send().await.unwrap();
    page_of(response).await
}

async fn page_post(app: &TestApp, path: &str, form: &[(&str, &str)]) -> Page {
    let response = app
        .client
        .post(app.url(path))
        .form(form)
        .send()
        .await
        .unwrap();
    page_of(response).await
}

async fn page_of(response: reqwest::Response) -> Page {
    Page {
        status: response.status(),
        headers: response.headers().clone(),
        html: response.text().await.unwrap(),
    }
}

async fn scalar(app: &TestApp, sql: &str) -> Option<String> {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()?;
    row.try_get_by_index::<Option<String>>(0)
        .ok()
        .flatten()
        .or_else(|| row.try_get_by_index::<i64>(0).ok().map(|n| n.to_string()))
}

#[tokio::test]
async fn a_confidential_answer_is_the_candidates_encounter() {
    let app = spawn_app_with_surveys(unlimited()).await;
    let s = setup(&app).await;
    let (id, url) = invite(
        &app,
        json!({"candidate_external_ref": "ATS-77", "touchpoint_id": s.touchpoint, "locale": "en"}),
    )
    .await;
    assert!(url.starts_with(&app.base_url), "{url}");
    let path = path_of(&url);
    // 256 random bits, URL-safe base64, and only its hash is stored.
    let token = path.trim_start_matches("/s/");
    assert_eq!(token.len(), 43);
    assert_eq!(
        app.count(&format!("survey_invitations WHERE token_hash = '{token}'"))
            .await,
        0
    );

    // The page: the employer, the touchpoint, the question, eleven choices,
    // strict headers, and nothing of the candidate.
    let page = page_get(&app, &format!("{path}?score=7")).await;
    assert_eq!(page.status, 200);
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(page.headers[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(page.html.contains("<html lang=\"en\">"));
    assert!(page.html.contains("Acme Corp"));
    assert!(page.html.contains("Onsite interview"));
    assert!(page
        .html
        .contains("How likely are you to recommend Acme Corp to a friend as a place to work?"));
    assert_eq!(page.html.matches("type=\"radio\"").count(), 11);
    assert!(page.html.contains("value=\"7\" required checked"));
    for personal in ["ATS-77", "Lan", "lan@example.test"] {
        assert!(!page.html.contains(personal), "{personal} on the page");
    }
    assert!(!page.html.contains("http://") && !page.html.contains("https://"));
    // A GET writes nothing: not an answer, not even the opening.
    assert_eq!(app.count("encounters").await, 0);
    let invitation = app.get(&format!("{INVITATIONS}/{id}"), &app.reporter).await;
    assert_eq!(invitation.assert_status(200)["status"], "created");

    // The page's script reports that a browser showed it.
    let opened = app
        .client
        .post(app.url(&format!("{path}/opened")))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 204);
    let invitation = app.get(&format!("{INVITATIONS}/{id}"), &app.reporter).await;
    assert_eq!(invitation.assert_status(200)["status"], "opened");

    let thanks = page_post(
        &app,
        &path,
        &[("score", "9"), ("comment", "  Friendly panel  ")],
    )
    .await;
    assert_eq!(thanks.status, 200, "{}", thanks.html);
    assert!(thanks.html.contains("We are glad it went well"));

    let invitation = app.get(&format!("{INVITATIONS}/{id}"), &app.reporter).await;
    let invitation = invitation.assert_status(200);
    assert_eq!(invitation["status"], "answered");
    let encounter_id = invitation["encounter_id"].as_i64().expect("an encounter");
    let journey = app
        .get(
            &format!("/api/v1/candidates/{}/journey", s.candidate),
            &app.reporter,
        )
        .await;
    let steps = journey.assert_status(200)["steps"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0]["encounter_id"], encounter_id);
    assert_eq!(steps[0]["source"], "candidate_survey");
    assert_eq!(steps[0]["score"], 9);
    assert_eq!(steps[0]["note"], "Friendly panel");
    // The audit trail names the survey as the actor.
    let audit = app
        .get(
            &format!("/api/v1/audit-events?resource_type=encounter&resource_id={encounter_id}"),
            &app.admin,
        )
        .await;
    let events = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor_name"], "candidate survey");

    // A second answer is refused and writes nothing.
    let again = page_post(&app, &path, &[("score", "2")]).await;
    assert_eq!(again.status, 409);
    assert!(again.html.contains("already been answered"));
    assert_eq!(app.count("encounters").await, 1);
    let again = page_get(&app, &path).await;
    assert_eq!(again.status, 409);

    // The reports count it like any other scored encounter.
    let today = chrono::Utc::now().date_naive();
    let summary = app
        .get(
            &format!(
                "/api/v1/reports/summary?from={}&to={}",
                today,
                today.succ_opt().unwrap()
            ),
            &app.reporter,
        )
        .await;
    let summary = summary.assert_status(200);
    assert_eq!(summary["scored"], 1, "{summary}");
    assert_eq!(summary["cnps"], 100.0, "{summary}");
}

#[tokio::test]
async fn closed_unknown_and_malformed_answers_get_clear_pages_and_write_nothing() {
    let app = spawn_app_with_surveys(unlimited()).await;
    let s = setup(&app).await;
    // Unknown: 404, in the browser's language.
    let response = app
        .client
        .get(app.url("/s/not-a-real-token"))
        .header(header::ACCEPT_LANGUAGE, "vi-VN,vi;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap();
    let unknown = page_of(response).await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.html.contains("lang=\"vi\""));
    assert_eq!(
        page_post(&app, "/s/not-a-real-token", &[("score", "5")])
            .await
            .status,
        404
    );
    let long = format!("/s/{}", "a".repeat(500));
    assert_eq!(page_get(&app, &long).await.status, 404);

    let (id, url) = invite(
        &app,
        json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint, "locale": "vi"}),
    )
    .await;
    let path = path_of(&url);
    // Missing, out-of-range and repeated scores: the form again, 422.
    for form in [
        vec![("comment", "no score")],
        vec![("score", "11")],
        vec![("score", "-1")],
        vec![("score", "seven")],
        vec![("score", "3"), ("score", "9")],
    ] {
        let refused = page_post(&app, &path, &form).await;
        assert_eq!(refused.status, 422, "{form:?}");
        assert!(refused.html.contains("role=\"alert\""), "{form:?}");
        assert!(refused.html.contains("lang=\"vi\""));
    }
    let long_comment = "x".repeat(1001);
    let refused = page_post(&app, &path, &[("score", "5"), ("comment", &long_comment)]).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.html.contains("Nhận xét quá dài"),
        "{}",
        refused.html
    );
    assert!(refused.html.contains("value=\"5\" required checked"));
    // Not a form, or too big.
    let not_form = app
        .client
        .post(app.url(&path))
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"score": 5}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(not_form.status(), 415);
    let huge = format!("score=5&comment={}", "y".repeat(20_000));
    let too_big = app
        .client
        .post(app.url(&path))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(app.count("encounters").await, 0);
    assert_eq!(
        app.count("survey_invitations WHERE answered_at IS NOT NULL")
            .await,
        0
    );

    // Revoked: 410, for the page and for an answer.
    let revoked = app
        .post(
            &format!("{INVITATIONS}/{id}/revoke"),
            &app.recruiter,
            json!({}),
        )
        .await;
    assert_eq!(revoked.assert_status(200)["status"], "revoked");
    let gone = page_get(&app, &path).await;
    assert_eq!(gone.status, 410);
    assert!(gone.html.contains("Khảo sát đã đóng"));
    assert_eq!(page_post(&app, &path, &[("score", "5")]).await.status, 410);
    // Revoking again changes nothing.
    app.post(
        &format!("{INVITATIONS}/{id}/revoke"),
        &app.recruiter,
        json!({}),
    )
    .await
    .assert_status(200);

    // Expired: 410.
    let other = app.candidate("ATS-78").await;
    let (expired_id, url) = invite(
        &app,
        json!({"candidate_id": other, "touchpoint_id": s.touchpoint, "expires_in_days": 1}),
    )
    .await;
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!(
                "UPDATE survey_invitations SET expires_at = created_at WHERE id = {expired_id}"
            ),
        ))
        .await
        .unwrap();
    let path = path_of(&url);
    assert_eq!(page_get(&app, &path).await.status, 410);
    assert_eq!(page_post(&app, &path, &[("score", "5")]).await.status, 410);
    let listed = app
        .get(&format!("{INVITATIONS}?status=expired"), &app.reporter)
        .await;
    let items = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], expired_id);
    assert_eq!(app.count("encounters").await, 0);
    // An answered invitation cannot be revoked.
    let third = app.candidate("ATS-79").await;
    let (answered, url) = invite(
        &app,
        json!({"candidate_id": third, "touchpoint_id": s.touchpoint}),
    )
    .await;
    assert_eq!(
        page_post(&app, &path_of(&url), &[("score", "6")])
            .await
            .status,
        200
    );
    app.post(
        &format!("{INVITATIONS}/{answered}/revoke"),
        &app.admin,
        json!({}),
    )
    .await
    .assert_error(409, "invitation_closed", Some("id"));
}

#[tokio::test]
async fn the_cool_down_refuses_a_candidate_surveyed_recently() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let body = json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint});
    let (first, _) = invite(&app, body.clone()).await;
    let refused = app.post(INVITATIONS, &app.recruiter, body.clone()).await;
    refused.assert_error(409, "survey_cooldown", Some("candidate_id"));
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("invitation {first}")),
        "{message}"
    );
    assert!(message.contains("14"), "{message}");
    // The error names the field the request named the candidate by.
    app.post(
        INVITATIONS,
        &app.recruiter,
        json!({"candidate_external_ref": "ATS-77", "touchpoint_id": s.touchpoint}),
    )
    .await
    .assert_error(409, "survey_cooldown", Some("candidate_external_ref"));
    // A revoked invitation does not count.
    app.post(
        &format!("{INVITATIONS}/{first}/revoke"),
        &app.admin,
        json!({}),
    )
    .await
    .assert_status(200);
    let (second, _) = invite(&app, body.clone()).await;
    // The setting: 0 turns it off; out of range is refused.
    app.patch(
        "/api/v1/organization",
        &app.admin,
        json!({"survey_cooldown_days": 3651}),
    )
    .await
    .assert_error(422, "validation_failed", Some("survey_cooldown_days"));
    let org = app
        .patch(
            "/api/v1/organization",
            &app.admin,
            json!({"survey_cooldown_days": 0, "survey_locale": "vi", "privacy_notice_url": "https://acme.example/privacy"}),
        )
        .await;
    let org = org.assert_status(200);
    assert_eq!(org["survey_cooldown_days"], 0);
    assert_eq!(org["survey_locale"], "vi");
    app.patch(
        "/api/v1/organization",
        &app.admin,
        json!({"privacy_notice_url": "javascript:alert(1)"}),
    )
    .await
    .assert_error(422, "validation_failed", Some("privacy_notice_url"));
    let reply = app.post(INVITATIONS, &app.recruiter, body).await;
    let third = reply.assert_status(201);
    assert_ne!(third["invitation"]["id"], second);
    // The organization's language is the default, and the notice is linked.
    assert_eq!(third["invitation"]["locale"], "vi");
    let page = page_get(&app, &path_of(third["survey_url"].as_str().unwrap())).await;
    assert!(page.html.contains("href=\"https://acme.example/privacy\""));
    assert!(page.html.contains("Thông báo quyền riêng tư"));
}

#[tokio::test]
async fn a_batch_creates_all_or_names_every_refused_item() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let b = app.candidate("ATS-2").await;
    let erased = app.candidate("ATS-3").await;
    app.delete(&format!("/api/v1/candidates/{erased}"), &app.admin)
        .await
        .assert_status(200);
    let refused = app
        .post(
            &format!("{INVITATIONS}/batch"),
            &app.recruiter,
            json!([
                {"candidate_id": s.candidate, "touchpoint_id": s.touchpoint},
                {"candidate_external_ref": "NOBODY", "touchpoint_id": s.touchpoint},
                {"candidate_id": b, "touchpoint_id": s.touchpoint, "mode": "secret"},
                {"candidate_id": s.candidate, "touchpoint_id": s.touchpoint},
                {"candidate_id": erased, "touchpoint_id": s.touchpoint},
                {"candidate_id": b, "touchpoint_id": 999_999},
                {"candidate_id": b, "touchpoint_id": s.touchpoint, "send_email": true},
            ]),
        )
        .await;
    refused.assert_error(422, "invalid_items", None);
    let items = refused.body["items"].as_array().unwrap();
    let codes: Vec<(i64, &str)> = items
        .iter()
        .map(|i| {
            (
                i["index"].as_i64().unwrap(),
                i["error"]["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            (1, "unknown_reference"),
            (2, "validation_failed"),
            (3, "survey_cooldown"),
            (4, "candidate_erased"),
            (5, "unknown_reference"),
            (6, "validation_failed"),
        ]
    );
    assert_eq!(app.count("survey_invitations").await, 0);
    assert_eq!(
        app.count("audit_events WHERE resource_type = 'survey_invitation'")
            .await,
        0
    );

    let created = app
        .post(
            &format!("{INVITATIONS}/batch"),
            &app.recruiter,
            json!([
                {"candidate_id": s.candidate, "touchpoint_id": s.touchpoint, "locale": "vi"},
                {"candidate_external_ref": "ATS-2", "touchpoint_id": s.touchpoint, "mode": "anonymous"},
            ]),
        )
        .await;
    let items = created.assert_status(201)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["invitation"]["candidate_id"], b);
    assert_eq!(items[1]["invitation"]["mode"], "anonymous");
    assert_ne!(items[0]["survey_url"], items[1]["survey_url"]);
    assert_eq!(
        app.count("audit_events WHERE resource_type = 'survey_invitation'")
            .await,
        2
    );
    // 1,001 items is too many.
    let many: Vec<Value> = (0..1001)
        .map(|_| json!({"candidate_id": b, "touchpoint_id": s.touchpoint}))
        .collect();
    app.post(
        &format!("{INVITATIONS}/batch"),
        &app.recruiter,
        Value::Array(many),
    )
    .await
    .assert_error(422, "validation_failed", Some("body"));
}

#[tokio::test]
async fn roles_and_tenancy() {
    let app = spawn_app().await;
    let s = setup(&app).await;
    let body = json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint});
    app.post(INVITATIONS, &app.reporter, body.clone())
        .await
        .assert_error(403, "forbidden", None);
    let (id, _) = invite(&app, body).await;
    app.post(
        &format!("{INVITATIONS}/{id}/revoke"),
        &app.reporter,
        json!({}),
    )
    .await
    .assert_error(403, "forbidden", None);
    // Another organization sees nothing of it, and cannot name our rows.
    app.get(&format!("{INVITATIONS}/{id}"), &app.other_admin)
        .await
        .assert_error(404, "not_found", None);
    app.post(
        &format!("{INVITATIONS}/{id}/revoke"),
        &app.other_admin,
        json!({}),
    )
    .await
    .assert_error(404, "not_found", None);
    let theirs = app.get(INVITATIONS, &app.other_admin).await;
    assert_eq!(theirs.assert_status(200)["items"], json!([]));
    app.post(
        INVITATIONS,
        &app.other_admin,
        json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint}),
    )
    .await
    .assert_error(422, "unknown_reference", Some("candidate_id"));
    // Without SMTP, asking for an e-mail is refused with the reason.
    let c = app.candidate("ATS-9").await;
    app.post(
        INVITATIONS,
        &app.admin,
        json!({"candidate_id": c, "touchpoint_id": s.touchpoint, "send_email": true}),
    )
    .await
    .assert_error(422, "validation_failed", Some("send_email"));
    let listed = app
        .get(
            &format!("{INVITATIONS}?candidate_id={}", s.candidate),
            &app.reporter,
        )
        .await;
    assert_eq!(listed.assert_status(200)["items"][0]["id"], id);
    assert!(listed.body["items"][0].get("survey_url").is_none());
}

#[tokio::test]
async fn an_anonymous_answer_counts_in_the_figures_and_links_to_nobody() {
    let app = spawn_app_with_surveys(unlimited()).await;
    let s = setup(&app).await;
    let (id, url) = invite(
        &app,
        json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint, "mode": "anonymous"}),
    )
    .await;
    let path = path_of(&url);
    let page = page_get(&app, &path).await;
    assert!(page.html.contains("anonymous"));
    let thanks = page_post(
        &app,
        &path,
        &[("score", "3"), ("comment", "Nobody called me back")],
    )
    .await;
    assert_eq!(thanks.status, 200);
    assert!(thanks.html.contains("sorry it fell short"));

    // No encounter, no journey step, no shift.
    assert_eq!(app.count("encounters").await, 0);
    let journey = app
        .get(
            &format!("/api/v1/candidates/{}/journey", s.candidate),
            &app.reporter,
        )
        .await;
    assert_eq!(journey.assert_status(200)["steps"], json!([]));
    // The invitation knows only the day, and no answer.
    let invitation = app.get(&format!("{INVITATIONS}/{id}"), &app.reporter).await;
    let invitation = invitation.assert_status(200);
    assert_eq!(invitation["status"], "answered");
    assert!(invitation["encounter_id"].is_null());
    let answered_at = invitation["answered_at"].as_str().unwrap();
    assert!(answered_at.contains("T00:00:00"), "{answered_at}");

    // In the database itself: the answer's row has its touchpoint, day,
    // score and comment, and no column that could point to a person, an
    // invitation or a moment.
    let columns = table_columns(&app, "anonymous_answers").await;
    assert_eq!(
        columns,
        [
            "comment",
            "day",
            "id",
            "organization_id",
            "score",
            "touchpoint_id"
        ]
    );
    assert_eq!(app.count("anonymous_answers").await, 1);
    assert_eq!(
        scalar(&app, "SELECT comment FROM anonymous_answers")
            .await
            .as_deref(),
        Some("Nobody called me back")
    );
    // Nor does any other table hold the comment or the score with a link.
    assert_eq!(app.count("encounters WHERE note IS NOT NULL").await, 0);
    assert_eq!(
        app.count("audit_events WHERE resource_type = 'encounter'")
            .await,
        0
    );

    // It counts in cNPS and the touchpoint's figures.
    let today = chrono::Utc::now().date_naive();
    let window = format!("from={}&to={}", today, today.succ_opt().unwrap());
    let summary = app
        .get(&format!("/api/v1/reports/summary?{window}"), &app.reporter)
        .await;
    let summary = summary.assert_status(200);
    assert_eq!(summary["scored"], 1);
    assert_eq!(summary["cnps"], -100.0);
    let impact = app
        .get(
            &format!("/api/v1/reports/touchpoint-impact?{window}"),
            &app.reporter,
        )
        .await;
    let rows = impact.assert_status(200)["touchpoints"].clone();
    let row = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["touchpoint_id"] == s.touchpoint))
        .cloned()
        .unwrap_or_else(|| panic!("{}", impact.body));
    assert_eq!(row["scored"], 1);
    assert_eq!(row["attributions"], 0);
    // The perception gap sees it as the candidates' own voice.
    let gap = app
        .get(
            &format!("/api/v1/reports/perception-gap?{window}"),
            &app.reporter,
        )
        .await;
    let sources = gap.assert_status(200)["groups"][0]["sources"].clone();
    let survey = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["source"] == "candidate_survey")
        .unwrap()
        .clone();
    assert_eq!(survey["scored"], 1);
    // A rebuild of the rollups (a new ROLLUP_VERSION) counts it again.
    let organization_id: i64 = scalar(&app, "SELECT organization_id FROM anonymous_answers")
        .await
        .unwrap()
        .parse()
        .unwrap();
    touchpoint_tracker::domain::analytics::rebuild::rebuild(&app.db, organization_id)
        .await
        .unwrap();
    let rebuilt = app
        .get(&format!("/api/v1/reports/summary?{window}"), &app.reporter)
        .await;
    assert_eq!(rebuilt.assert_status(200)["scored"], 1);
    assert_eq!(rebuilt.body["cnps"], -100.0);
    // Erasing the candidate leaves the anonymous answer (it is nobody's).
    app.delete(&format!("/api/v1/candidates/{}", s.candidate), &app.admin)
        .await
        .assert_status(200);
    assert_eq!(app.count("anonymous_answers").await, 1);
}

/// A table's column names, sorted, on either backend.
async fn table_columns(app: &TestApp, table: &str) -> Vec<String> {
    let backend = app.db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => format!("SELECT name FROM pragma_table_info('{table}')"),
        _ => format!(
            "SELECT column_name AS name FROM information_schema.columns WHERE table_name = '{table}'"
        ),
    };
    let rows = app
        .db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    let mut names: Vec<String> = rows
        .iter()
        .map(|row| row.try_get::<String>("", "name").unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn response_rates_per_touchpoint_with_suppression() {
    let app = spawn_app_with_surveys(unlimited()).await;
    let s = setup(&app).await;
    let second = app
        .touchpoint("Offer call", "employer_created", "phone", "offer")
        .await;
    let mut urls = Vec::new();
    for n in 0..4 {
        let candidate = app.candidate(&format!("R-{n}")).await;
        let touchpoint = if n < 3 { s.touchpoint } else { second };
        urls.push(
            invite(
                &app,
                json!({"candidate_id": candidate, "touchpoint_id": touchpoint}),
            )
            .await
            .1,
        );
    }
    assert_eq!(
        page_post(&app, &path_of(&urls[0]), &[("score", "8")])
            .await
            .status,
        200
    );
    assert_eq!(
        page_post(&app, &path_of(&urls[1]), &[("score", "10")])
            .await
            .status,
        200
    );
    let today = chrono::Utc::now().date_naive();
    let window = format!("from={}&to={}", today, today.succ_opt().unwrap());
    let report = app
        .get(
            &format!("/api/v1/reports/survey-responses?{window}"),
            &app.reporter,
        )
        .await;
    let groups = report.assert_status(200)["groups"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["group"], s.touchpoint.to_string());
    assert_eq!(groups[0]["invited"], 3);
    assert_eq!(groups[0]["answered"], 2);
    assert_eq!(groups[0]["opened"], 2);
    assert_eq!(groups[0]["sent"], 0);
    let rate = groups[0]["response_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / 3.0).abs() < 1e-9);
    assert!(groups[0]["median_hours_to_answer"].as_f64().unwrap() >= 0.0);
    assert_eq!(groups[1]["answered"], 0);
    assert!(groups[1]["median_hours_to_answer"].is_null());
    let by_stage = app
        .get(
            &format!("/api/v1/reports/survey-responses?{window}&group_by=stage"),
            &app.reporter,
        )
        .await;
    let stages = by_stage.assert_status(200)["groups"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(stages.len(), 8, "every stage is listed");
    let interview = stages.iter().find(|g| g["group"] == "interview").unwrap();
    assert_eq!(interview["invited"], 3);
    // Suppression: groups of fewer invitations show only the count.
    app.patch(
        "/api/v1/organization",
        &app.admin,
        json!({"min_group_size": 3}),
    )
    .await
    .assert_status(200);
    let report = app
        .get(
            &format!("/api/v1/reports/survey-responses?{window}"),
            &app.reporter,
        )
        .await;
    let groups = report.assert_status(200)["groups"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(groups[0]["suppressed"], false);
    assert_eq!(groups[1]["suppressed"], true);
    assert_eq!(groups[1]["invited"], 1);
    assert!(groups[1]["answered"].is_null() && groups[1]["response_rate"].is_null());
    app.get(
        "/api/v1/reports/survey-responses?from=2026-01-02&to=2026-01-01",
        &app.reporter,
    )
    .await
    .assert_error(422, "validation_failed", Some("to"));
}

#[tokio::test]
async fn the_survey_pages_are_rate_limited_per_client_address() {
    let app = spawn_app_with_surveys(SurveySettings {
        page_rate: Some(RateLimit {
            per_second: 0.01,
            burst: 3.0,
        }),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(page_get(&app, "/s/some-token").await.status, 404);
    }
    let limited = page_get(&app, "/s/some-token").await;
    assert_eq!(limited.status, 429);
    assert!(limited.headers.contains_key(header::RETRY_AFTER));
    assert!(limited.html.contains("Too many requests"));
    // The API is not limited by it.
    app.get(INVITATIONS, &app.reporter).await.assert_status(200);
}

/// A real SMTP server, as small as the conversation needs: it accepts every
/// message and keeps it (or, when `refuse`, answers 451 to `DATA`).
struct SmtpSink {
    port: u16,
    messages: Arc<Mutex<Vec<String>>>,
}

impl SmtpSink {
    async fn start(refuse: bool) -> SmtpSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let kept = messages.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
                    while let Ok(Some(line)) = lines.next_line().await {
                        let command = line.to_ascii_uppercase();
                        let reply: &[u8] = if command.starts_with("EHLO") {
                            b"250-sink\r\n250 8BITMIME\r\n"
                        } else if command.starts_with("DATA") {
                            if refuse {
                                b"451 try again later\r\n"
                            } else {
                                write.write_all(b"354 go ahead\r\n").await.unwrap();
                                let mut message = String::new();
                                while let Ok(Some(line)) = lines.next_line().await {
                                    if line == "." {
                                        break;
                                    }
                                    message.push_str(&line);
                                    message.push('\n');
                                }
                                kept.lock().unwrap().push(message);
                                b"250 kept\r\n"
                            }
                        } else if command.starts_with("QUIT") {
                            let _ = write.write_all(b"221 bye\r\n").await;
                            return;
                        } else {
                            b"250 ok\r\n"
                        };
                        write.write_all(reply).await.unwrap();
                    }
                });
            }
        });
        SmtpSink { port, messages }
    }

    fn settings(&self) -> SurveySettings {
        SurveySettings {
            public_url: Some("https://feedback.acme.example".to_owned()),
            smtp: Some(SmtpSettings {
                url: format!("smtp://127.0.0.1:{}", self.port),
                from: "Acme Careers <careers@acme.example>".to_owned(),
            }),
            page_rate: None,
        }
    }
}

/// Decodes a quoted-printable body well enough to read links and words.
fn unfold_quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn an_invitation_is_emailed_in_its_language_with_the_eleven_scores() {
    let sink = SmtpSink::start(false).await;
    let app = spawn_app_with_surveys(sink.settings()).await;
    let s = setup(&app).await;
    let reply = app
        .post(
            INVITATIONS,
            &app.recruiter,
            json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint, "locale": "vi", "send_email": true}),
        )
        .await;
    let body = reply.assert_status(201).clone();
    let id = body["invitation"]["id"].as_i64().unwrap();
    let url = body["survey_url"].as_str().unwrap().to_owned();
    assert!(url.starts_with("https://feedback.acme.example/s/"), "{url}");
    assert_eq!(body["invitation"]["email_pending"], true);
    let message = wait_for(|| sink.messages.lock().unwrap().first().cloned()).await;
    let text = unfold_quoted_printable(&message);
    assert!(text.contains("To: lan@example.test"), "{text}");
    assert!(
        !text.contains("Nguyễn") && !text.contains("ATS-77"),
        "{text}"
    );
    // The subject is encoded (RFC 2047); the body says it in Vietnamese.
    assert!(text.contains("Subject:"), "{text}");
    assert!(
        text.contains("Bạn có sẵn lòng giới thiệu Acme Corp"),
        "{text}"
    );
    for score in 0..=10 {
        assert!(
            text.contains(&format!("{url}?score={score}")),
            "{score}: {text}"
        );
    }
    let invitation = wait_for_json(&app, &format!("{INVITATIONS}/{id}"), |i| {
        i["status"] == "sent"
    })
    .await;
    assert_eq!(invitation["email_attempts"], 1);
    assert_eq!(invitation["email_pending"], false);
    assert!(invitation["sent_at"].is_string());
    // The link in the e-mail leads to the page (under the public URL's path).
    let page = page_get(&app, &format!("{}?score=10", path_of(&url))).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("value=\"10\" required checked"));
    // The token left the queue with the message.
    assert_eq!(app.count("survey_email_queue").await, 0);
}

#[tokio::test]
async fn a_refused_email_is_retried_later_and_erasure_cancels_it() {
    let sink = SmtpSink::start(true).await;
    let app = spawn_app_with_surveys(sink.settings()).await;
    let s = setup(&app).await;
    let (id, url) = invite(
        &app,
        json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint, "send_email": true}),
    )
    .await;
    let invitation = wait_for_json(&app, &format!("{INVITATIONS}/{id}"), |i| {
        i["email_attempts"] == 1
    })
    .await;
    assert_eq!(invitation["status"], "created");
    assert_eq!(invitation["email_pending"], true, "retried later");
    assert!(invitation["email_last_error"]
        .as_str()
        .is_some_and(|e| e.contains("451")));
    assert_eq!(app.count("survey_email_queue").await, 1);

    // Erasure revokes the open invitation and drops the queued message
    // (its address and link) and the mail server's error.
    app.delete(&format!("/api/v1/candidates/{}", s.candidate), &app.admin)
        .await
        .assert_status(200);
    assert_eq!(app.count("survey_email_queue").await, 0);
    let invitation = app.get(&format!("{INVITATIONS}/{id}"), &app.admin).await;
    let invitation = invitation.assert_status(200);
    assert_eq!(invitation["status"], "revoked");
    assert!(invitation["email_last_error"].is_null());
    assert_eq!(page_get(&app, &path_of(&url)).await.status, 410);
    // And the candidate's audit trail says so.
    let audit = app
        .get(
            &format!("/api/v1/audit-events?resource_type=survey_invitation&resource_id={id}"),
            &app.admin,
        )
        .await;
    let actions: Vec<String> = audit.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"revoke".to_owned()), "{actions:?}");
    assert!(sink.messages.lock().unwrap().is_empty());
    // The subject-access export lists the invitation, as it now stands.
    let export = app
        .get(
            &format!("/api/v1/candidates/{}/export", s.candidate),
            &app.admin,
        )
        .await;
    let invitations = export.assert_status(200)["survey_invitations"].clone();
    assert_eq!(invitations.as_array().unwrap().len(), 1, "{invitations}");
    assert_eq!(invitations[0]["id"], id);
    assert_eq!(invitations[0]["status"], "revoked");
    assert_eq!(invitations[0]["email_pending"], false);
}

async fn wait_for<T>(mut found: impl FnMut() -> Option<T>) -> T {
    for _ in 0..200 {
        if let Some(value) = found() {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing arrived within 10 s");
}

async fn wait_for_json(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        let reply = app.get(path, &app.admin).await;
        last = reply.assert_status(200).clone();
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} did not get there within 10 s: {last}");
}

/// Two service processes on one database share the e-mail queue: every
/// invitation is e-mailed exactly once; and two answers to one link racing
/// through both are recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_send_each_invitation_once_and_record_each_answer_once() {
    use crate::helpers::start_cluster;
    const INVITED: usize = 30;
    let sink = SmtpSink::start(false).await;
    let smtp = format!("smtp://127.0.0.1:{}", sink.port);
    let env = [
        ("SMTP_URL", smtp.as_str()),
        ("SMTP_FROM", "careers@acme.example"),
        ("SURVEY_RATE_PER_MINUTE", "0"),
    ];
    let mut cluster = start_cluster(2, &env).await;
    let token = cluster.token.clone();
    let a = cluster.services.remove(0);
    let b = cluster.services.remove(0);
    let client = reqwest::Client::new();
    let post = |api: &str, path: &str, body: Value| {
        client
            .post(format!("{api}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let touchpoint: Value = post(
        &a.api,
        "/api/v1/touchpoints",
        json!({"name": "Offer call", "kind": "employer_created", "channel": "phone", "stage": "offer"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let mut items = Vec::new();
    for n in 0..INVITED {
        let api = if n % 2 == 0 { &a.api } else { &b.api };
        let candidate: Value = post(
            api,
            "/api/v1/candidates",
            json!({"external_ref": format!("MULTI-{n}"), "email": format!("c{n}@example.test")}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        items.push(json!({"candidate_id": candidate["id"], "touchpoint_id": touchpoint["id"], "send_email": true}));
    }
    let created = post(
        &a.api,
        "/api/v1/survey-invitations/batch",
        Value::Array(items),
    )
    .await
    .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let links: Vec<String> = created["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["survey_url"].as_str().unwrap().to_owned())
        .collect();
    // Both instances poll the queue; every message arrives once.
    let messages = wait_for(|| {
        let kept = sink.messages.lock().unwrap();
        (kept.len() >= INVITED).then(|| kept.clone())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let messages_after = sink.messages.lock().unwrap().clone();
    assert_eq!(messages_after.len(), INVITED, "a message was sent twice");
    let recipients: std::collections::BTreeSet<String> = messages
        .iter()
        .filter_map(|m| m.lines().find(|l| l.starts_with("To: ")).map(str::to_owned))
        .collect();
    assert_eq!(recipients.len(), INVITED);

    // One link answered through both instances at once: one answer.
    let path = &links[0][links[0].find("/s/").unwrap()..];
    let answers = futures_util::future::join_all([&a.api, &b.api, &a.api, &b.api].map(|api| {
        client
            .post(format!("{api}{path}"))
            .form(&[("score", "9")])
            .send()
    }))
    .await;
    let mut statuses: Vec<u16> = answers
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 409, 409, 409]);
    let encounters: Value = client
        .get(format!("{}/api/v1/encounters", b.api))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(encounters["items"].as_array().unwrap().len(), 1);

    // One candidate invited through both instances at once: the cool-down
    // lets one through.
    let candidate: Value = post(
        &a.api,
        "/api/v1/candidates",
        json!({"external_ref": "RACE-1"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let body = json!({"candidate_id": candidate["id"], "touchpoint_id": touchpoint["id"]});
    let invited = futures_util::future::join_all(
        [&a.api, &b.api, &a.api, &b.api]
            .map(|api| post(api, "/api/v1/survey-invitations", body.clone())),
    )
    .await;
    let mut statuses: Vec<u16> = invited
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![201, 409, 409, 409]);
}

#[tokio::test]
async fn anonymous_comments_are_shown_apart_from_any_time_and_only_in_groups_big_enough() {
    let app = spawn_app_with_surveys(unlimited()).await;
    let s = setup(&app).await;
    let comments = ["Slow feedback", "", "Great people"];
    for (n, comment) in comments.iter().enumerate() {
        let candidate = app.candidate(&format!("ANON-{n}")).await;
        let (_, url) = invite(
            &app,
            json!({"candidate_id": candidate, "touchpoint_id": s.touchpoint, "mode": "anonymous"}),
        )
        .await;
        let answered = page_post(
            &app,
            &path_of(&url),
            &[("score", "7"), ("comment", comment)],
        )
        .await;
        assert_eq!(answered.status, 200);
    }
    // A confidential comment is its encounter's note, not listed here.
    let (_, url) = invite(
        &app,
        json!({"candidate_id": s.candidate, "touchpoint_id": s.touchpoint}),
    )
    .await;
    page_post(
        &app,
        &path_of(&url),
        &[("score", "2"), ("comment", "Confidential")],
    )
    .await;
    let today = chrono::Utc::now().date_naive();
    let path = format!(
        "/api/v1/reports/anonymous-comments?from={}&to={}",
        today,
        today.succ_opt().unwrap()
    );
    let report = app.get(&path, &app.recruiter).await;
    let groups = report.assert_status(200)["groups"].clone();
    assert_eq!(
        groups,
        json!([{
            "touchpoint_id": s.touchpoint,
            "answers": 3,
            "suppressed": false,
            "comments": [{"text": "Great people"}, {"text": "Slow feedback"}],
        }])
    );
    app.patch(
        "/api/v1/organization",
        &app.admin,
        json!({"min_group_size": 4}),
    )
    .await
    .assert_status(200);
    let report = app.get(&path, &app.reporter).await;
    let group = report.assert_status(200)["groups"][0].clone();
    assert_eq!(group["suppressed"], true);
    assert_eq!(group["answers"], 3);
    assert_eq!(group["comments"], json!([]));
    let other = app.get(&path, &app.other_admin).await;
    assert_eq!(other.assert_status(200)["groups"], json!([]));
}
