//! Requests only append encounters; the projector applies them to the
//! rollups later. Every report must still equal a recount at every moment:
//! here against a service whose projector is paused (so everything written
//! is in the unprojected tail), after each acknowledged write, and again
//! once a projector has caught up.

use std::time::{Duration, Instant};

use entity::{organization, rollup_mark};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde_json::{json, Value};
use touchpoint_tracker::{
    db::store::WriterConnection,
    domain::analytics::{projector, rebuild},
};

use super::{
    helpers::{spawn_app_with_projector_paused, TestApp},
    recount::assert_reports_match_recount,
};

const WINDOWS: &[(&str, &str)] = &[
    ("2026-01-01", "2026-07-01"),
    ("2026-02-10", "2026-04-20"),
    ("2026-03-01", "2026-03-08"),
];

/// The organization's latest write and its rollups' high-water mark.
async fn log_and_mark(db: &DatabaseConnection, organization_id: i64) -> (i64, i64) {
    let latest = organization::Entity::find_by_id(organization_id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
        .change_seq;
    let mark = rollup_mark::Entity::find_by_id(organization_id)
        .one(db)
        .await
        .unwrap()
        .map_or(0, |mark| mark.projected_seq);
    (latest, mark)
}

async fn organization_id(app: &TestApp) -> i64 {
    app.get("/api/v1/organization", &app.admin)
        .await
        .assert_status(200)["id"]
        .as_i64()
        .unwrap()
}

/// Projects everything pending, the way the projector does, step by step.
async fn catch_up(db: &DatabaseConnection, organization_id: i64) -> usize {
    let connection = WriterConnection::Pool(db.clone());
    let mut steps = 0;
    loop {
        steps += 1;
        if projector::step(&connection, organization_id)
            .await
            .unwrap()
            .caught_up
        {
            return steps;
        }
    }
}

/// Every report of every window, as the service answers it.
async fn reports(app: &TestApp) -> Vec<Value> {
    let mut answers = Vec::new();
    for (from, to) in WINDOWS {
        for path in [
            format!("/api/v1/reports/perception-trend?from={from}&to={to}&bucket=week&group_by=touchpoint"),
            format!("/api/v1/reports/perception-trend?from={from}&to={to}&bucket=day&group_by=stage"),
            format!("/api/v1/reports/perception-trend?from={from}&to={to}&bucket=month&group_by=kind&compare_to=previous_bucket"),
            format!("/api/v1/reports/touchpoint-impact?from={from}&to={to}"),
            format!("/api/v1/reports/summary?from={from}&to={to}"),
            format!("/api/v1/reports/perception-gap?from={from}&to={to}&group_by=touchpoint"),
        ] {
            answers.push(app.get(&path, &app.reporter).await.assert_status(200).clone());
        }
    }
    answers
}

#[tokio::test]
async fn reports_equal_a_recount_after_every_write_while_projection_is_behind() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let api = app.api(&app.reporter);
    let careers = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let reviews = app
        .touchpoint("Review site", "true", "review_site", "consideration")
        .await;
    let chance = app
        .touchpoint("Chance meeting", "unexpected", "event", "interview")
        .await;
    let anna = app.candidate("ATS-ANNA").await;
    let binh = app.candidate("ATS-BINH").await;

    // A single create, through the group commit.
    app.encounter(anna, careers, "2026-03-02T09:00:00Z", Some(6))
        .await;
    assert_reports_match_recount(&api, WINDOWS).await;
    app.encounter(anna, reviews, "2026-03-20T09:00:00Z", Some(9))
        .await;
    assert_reports_match_recount(&api, WINDOWS).await;
    // Inserted between the two scores: it takes half of their shift, which
    // the stored rollups (empty) know nothing of.
    app.encounter(anna, chance, "2026-03-05T09:00:00Z", None)
        .await;
    assert_reports_match_recount(&api, WINDOWS).await;
    // A score inserted before the first: the first now carries a shift.
    app.encounter(anna, chance, "2026-02-11T09:00:00Z", Some(2))
        .await;
    assert_reports_match_recount(&api, WINDOWS).await;

    // A batch over both candidates and every source.
    let sources = [
        "recruiter_observation",
        "candidate_survey",
        "review_import",
        "other",
    ];
    let items: Vec<Value> = (0..40)
        .map(|n| {
            let touchpoint = [careers, reviews, chance][n % 3];
            json!({
                "candidate_id": if n % 2 == 0 { anna } else { binh },
                "touchpoint_id": touchpoint,
                "occurred_at": format!("2026-{:02}-{:02}T{:02}:00:00Z", 1 + n % 6, 1 + n % 28, n % 24),
                "source": sources[n % 4],
                "score": (n % 5 != 0).then_some(n % 11),
            })
        })
        .collect();
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
        .await
        .assert_status(201);
    assert_reports_match_recount(&api, WINDOWS).await;

    // An import naming new candidates by reference.
    let ndjson: String = (0..30)
        .map(|n| {
            format!(
                "{}\n",
                json!({
                    "candidate_external_ref": format!("SURVEY-{}", n % 12),
                    "touchpoint_name": "Review site",
                    "occurred_at": format!("2026-03-{:02}T08:00:00Z", 1 + n % 20),
                    "source": "review_import",
                    "score": n % 11,
                })
            )
        })
        .collect();
    app.post_raw(
        "/api/v1/encounters/import",
        &app.recruiter,
        "application/x-ndjson",
        &ndjson,
    )
    .await
    .assert_status(200);
    let rows = assert_reports_match_recount(&api, WINDOWS).await;
    assert_eq!(rows.len(), 4 + 40 + 30);

    // Nothing was projected: every report above read the tail.
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert!(
        mark < latest,
        "the paused projector moved the mark ({mark} of {latest})"
    );
    assert_eq!(mark, 0);

    // A change to a recorded encounter projects what is pending first and
    // moves the mark past itself.
    let first = rows.iter().find(|row| row.score == Some(6)).unwrap().id;
    app.patch(
        &format!("/api/v1/encounters/{first}"),
        &app.recruiter,
        json!({"score": 10, "occurred_at": "2026-03-03T09:00:00Z"}),
    )
    .await
    .assert_status(200);
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert_eq!(mark, latest, "an update leaves nothing pending");
    assert_reports_match_recount(&api, WINDOWS).await;

    // Appends after it are pending again; a delete catches them up.
    let late = app
        .encounter(binh, careers, "2026-03-04T09:00:00Z", Some(3))
        .await;
    app.encounter(binh, reviews, "2026-03-06T09:00:00Z", Some(8))
        .await;
    assert_reports_match_recount(&api, WINDOWS).await;
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert!(mark < latest);
    app.delete(&format!("/api/v1/encounters/{late}"), &app.admin)
        .await
        .assert_status(204);
    assert_reports_match_recount(&api, WINDOWS).await;
    app.encounter(binh, careers, "2026-03-07T09:00:00Z", Some(1))
        .await;
    let pending = reports(&app).await;

    // A projector catches up: the answers do not change by a digit, and
    // the rollups equal a rebuild from the encounters.
    catch_up(&app.db, org).await;
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert_eq!(mark, latest);
    assert_eq!(reports(&app).await, pending, "projected equals pending");
    assert_reports_match_recount(&api, WINDOWS).await;
    rebuild::rebuild(&app.db, org).await.unwrap();
    assert_eq!(reports(&app).await, pending, "projected equals rebuilt");
}

#[tokio::test]
async fn a_report_waits_for_the_projector_while_more_is_pending_than_it_merges() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    // More than a report merges (20,000), in batches of 5,000.
    let total = 20_004;
    for batch in 0..5 {
        let size = if batch < 4 { 5000 } else { total - 4 * 5000 };
        let items: Vec<Value> = (0..size)
            .map(|n| {
                json!({
                    "candidate_external_ref": format!("C-{}", (batch * 5000 + n) % 7000),
                    "touchpoint_id": touchpoint,
                    "occurred_at": format!("2026-03-{:02}T10:00:00Z", 1 + n % 28),
                    "score": n % 11,
                })
            })
            .collect();
        app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
            .await
            .assert_status(201);
    }
    let summary = "/api/v1/reports/summary?from=2026-03-01&to=2026-04-01";

    // No projector at all: after waiting, 503 with the one error shape.
    let asked = Instant::now();
    let refused = app.get(summary, &app.reporter).await;
    refused.assert_error(503, "unavailable", None);
    assert!(
        asked.elapsed() >= Duration::from_secs(9),
        "{:?}",
        asked.elapsed()
    );

    // A projector starts meanwhile: the report waits for it and is exact.
    let db = app.db.clone();
    let projecting = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        catch_up(&db, org).await
    });
    let answered = app.get(summary, &app.reporter).await;
    let body = answered.assert_status(200);
    assert_eq!(body["encounters"], total);
    assert!(
        projecting.await.unwrap() >= 5,
        "whole writes, a step at a time"
    );
}
