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
    domain::analytics::{
        projection::{self, Applied},
        projector, rebuild,
    },
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

/// Three touchpoints, one of each kind, and two candidates.
struct Setting {
    careers: i64,
    reviews: i64,
    chance: i64,
    anna: i64,
    binh: i64,
}

impl Setting {
    async fn create(app: &TestApp) -> Setting {
        Setting {
            careers: app
                .touchpoint(
                    "Careers site",
                    "employer_created",
                    "careers_site",
                    "awareness",
                )
                .await,
            reviews: app
                .touchpoint("Review site", "true", "review_site", "consideration")
                .await,
            chance: app
                .touchpoint("Chance meeting", "unexpected", "event", "interview")
                .await,
            anna: app.candidate("ATS-ANNA").await,
            binh: app.candidate("ATS-BINH").await,
        }
    }
}

/// A service whose projector is paused, its organization's id, and the
/// three touchpoints of [`Setting`].
async fn paused_with_touchpoints() -> (TestApp, i64, [i64; 3]) {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let Setting {
        careers,
        reviews,
        chance,
        ..
    } = Setting::create(&app).await;
    (app, org, [careers, reviews, chance])
}

#[tokio::test]
async fn reports_equal_a_recount_after_every_write_while_projection_is_behind() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let api = app.api(&app.reporter);
    let Setting {
        careers,
        reviews,
        chance,
        anna,
        binh,
    } = Setting::create(&app).await;

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
    // Steps of at most `projector::STEP` (20,000) encounters, in whole
    // writes: the first four writes, then the last.
    assert_eq!(
        projecting.await.unwrap(),
        2,
        "whole writes, a step at a time"
    );
}

#[tokio::test]
async fn a_report_merges_up_to_its_rows_and_waits_for_the_projector_beyond() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let mut touchpoints = Vec::new();
    for n in 0..40 {
        touchpoints.push(
            app.touchpoint(
                &format!("Interview {n}"),
                "employer_created",
                "interview",
                "interview",
            )
            .await,
        );
    }
    // One encounter on each of 8,000 touchpoint days (the most counter
    // rows a report merges), each by a candidate of its own, so that no
    // other day's counters change.
    let item = |n: usize| {
        let day = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
            + chrono::Days::new((n / touchpoints.len()) as u64);
        json!({
            "candidate_external_ref": format!("C-{n}"),
            "touchpoint_id": touchpoints[n % touchpoints.len()],
            "occurred_at": format!("{day}T10:00:00Z"),
            "score": n % 11,
        })
    };
    for batch in 0..2 {
        let items: Vec<Value> = (batch * 4000..(batch + 1) * 4000).map(item).collect();
        app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
            .await
            .assert_status(201);
    }
    let summary = "/api/v1/reports/summary?from=2025-01-01&to=2026-01-01";
    let answered = app.get(summary, &app.reporter).await;
    let body = answered.assert_status(200);
    assert_eq!(body["encounters"], 8000);

    // One more touchpoint day: more than a report merges. After waiting
    // for the projector, which is paused, 503.
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        json!([item(8000)]),
    )
    .await
    .assert_status(201);
    let asked = Instant::now();
    app.get(summary, &app.reporter)
        .await
        .assert_error(503, "unavailable", None);
    assert!(
        asked.elapsed() >= Duration::from_secs(9),
        "{:?}",
        asked.elapsed()
    );
    catch_up(&app.db, org).await;
    let answered = app.get(summary, &app.reporter).await;
    let body = answered.assert_status(200);
    assert_eq!(body["encounters"], 8001);
}

/// Reads the next projection step of the organization in a snapshot.
async fn read_step(db: &DatabaseConnection, organization_id: i64) -> projection::Step {
    let read = touchpoint_tracker::db::snapshot(db).await.unwrap();
    let step = projection::read_step(&read, organization_id, None)
        .await
        .unwrap()
        .expect("something to project");
    read.commit().await.unwrap();
    step
}

/// Applies one part of a step in a transaction of its own: groups of one
/// part, and a write waiting after the first, as the projector sees it.
async fn apply_one_part(
    db: &DatabaseConnection,
    organization_id: i64,
    step: &mut projection::Step,
) -> Applied {
    let txn = touchpoint_tracker::db::begin_write(db).await.unwrap();
    let one_part = projection::Limit {
        rows: 1,
        total: usize::MAX,
        go_on: &|| false,
    };
    let applied = projection::apply_step(
        &txn,
        organization_id,
        step,
        Some(one_part),
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
    applied
}

/// Encounters of two candidates over three touchpoints and four months,
/// so that a step has a dozen parts (a month and a touchpoint each).
async fn encounters_over_months(app: &TestApp) -> (i64, i64) {
    let Setting {
        careers,
        reviews,
        chance,
        anna,
        binh,
    } = Setting::create(app).await;
    let items: Vec<Value> = (0..36)
        .map(|n| {
            let touchpoint = [careers, reviews, chance][n % 3];
            json!({
                "candidate_id": if n % 2 == 0 { anna } else { binh },
                "touchpoint_id": touchpoint,
                "occurred_at": format!("2026-{:02}-{:02}T{:02}:00:00Z", 2 + n % 4, 1 + n % 27, n % 24),
                "score": (n % 5 != 0).then_some(n % 11),
            })
        })
        .collect();
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
        .await
        .assert_status(201);
    (anna, careers)
}

#[tokio::test]
async fn reports_equal_a_recount_between_the_parts_of_a_step() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let api = app.api(&app.reporter);
    let (anna, careers) = encounters_over_months(&app).await;

    // The projector applies a step a few rollup keys per transaction. Between
    // them some rollup rows hold the step and others do not; every report
    // still equals a recount, and the mark moves with the last part only.
    let mut step = read_step(&app.db, org).await;
    let mut parts = 0;
    loop {
        let applied = apply_one_part(&app.db, org, &mut step).await;
        assert_reports_match_recount(&api, WINDOWS).await;
        let (latest, mark) = log_and_mark(&app.db, org).await;
        match applied {
            Applied::Part => {
                parts += 1;
                assert_eq!(mark, 0, "the mark moved before the step's last part");
                // Writes go on between the parts.
                if parts == 2 {
                    app.encounter(anna, careers, "2026-03-09T09:00:00Z", Some(4))
                        .await;
                    assert_reports_match_recount(&api, WINDOWS).await;
                }
            }
            Applied::Step(projected) => {
                assert_eq!(projected.encounters, 36);
                assert!(
                    mark > 0 && mark < latest,
                    "the step ends before the later write"
                );
                break;
            }
            Applied::Stale => panic!("nothing else moved the mark"),
        }
    }
    assert!(parts >= 10, "a part per month and touchpoint: {parts}");
    let pending = reports(&app).await;
    catch_up(&app.db, org).await;
    assert_eq!(reports(&app).await, pending, "projected equals pending");
    rebuild::rebuild(&app.db, org).await.unwrap();
    assert_eq!(reports(&app).await, pending, "projected equals rebuilt");
}

#[tokio::test]
async fn reports_equal_a_recount_when_the_pending_candidates_span_several_reads() {
    // Pending encounters' candidates are read 64 at a time
    // (`projection::HISTORIES`): 150 candidates with a projected history,
    // then a pending encounter each, inserted among their earlier ones.
    let (app, org, touchpoints) = paused_with_touchpoints().await;
    let api = app.api(&app.reporter);
    let items = |days: &[u32], offset: usize| -> Vec<Value> {
        (0..150)
            .flat_map(|candidate| {
                days.iter().enumerate().map(move |(n, day)| {
                    json!({
                        "candidate_external_ref": format!("C-{candidate}"),
                        "touchpoint_id": touchpoints[(candidate + n + offset) % 3],
                        "occurred_at": format!("2026-03-{day:02}T{:02}:00:00Z", candidate % 24),
                        "score": ((candidate + n + offset) % 6 != 0).then_some((candidate * 7 + n) % 11),
                    })
                })
            })
            .collect()
    };
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        json!(items(&[2, 9, 20], 0)),
    )
    .await
    .assert_status(201);
    catch_up(&app.db, org).await;
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        json!(items(&[5], 1)),
    )
    .await
    .assert_status(201);
    assert_reports_match_recount(&api, WINDOWS).await;

    // Part-way through the step, with more pending after its end.
    let mut step = read_step(&app.db, org).await;
    assert_eq!(apply_one_part(&app.db, org, &mut step).await, Applied::Part);
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        json!(items(&[14], 2)),
    )
    .await
    .assert_status(201);
    assert_reports_match_recount(&api, WINDOWS).await;
    catch_up(&app.db, org).await;
    assert_reports_match_recount(&api, WINDOWS).await;
}

#[tokio::test]
async fn a_step_left_half_applied_is_resumed_or_finished_by_a_change() {
    let app = spawn_app_with_projector_paused().await;
    let org = organization_id(&app).await;
    let api = app.api(&app.reporter);
    let (anna, careers) = encounters_over_months(&app).await;

    // A projector stops (killed) after three parts: the next reads the step
    // back from the database and applies the rest, each part once.
    let mut step = read_step(&app.db, org).await;
    for _ in 0..3 {
        assert_eq!(apply_one_part(&app.db, org, &mut step).await, Applied::Part);
    }
    drop(step);
    let pending = reports(&app).await;
    assert_eq!(catch_up(&app.db, org).await, 1, "one step resumed, whole");
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert_eq!(mark, latest);
    assert_eq!(reports(&app).await, pending, "resumed equals pending");
    assert_reports_match_recount(&api, WINDOWS).await;

    // A step half applied when a recorded encounter changes: the change
    // finishes it first, and a projector holding the step finds it stale.
    app.encounter(anna, careers, "2026-04-02T09:00:00Z", Some(9))
        .await;
    let id = app
        .encounter(anna, careers, "2026-05-02T09:00:00Z", Some(1))
        .await;
    let mut step = read_step(&app.db, org).await;
    assert_eq!(apply_one_part(&app.db, org, &mut step).await, Applied::Part);
    app.patch(
        &format!("/api/v1/encounters/{id}"),
        &app.recruiter,
        json!({"score": 3}),
    )
    .await
    .assert_status(200);
    let (latest, mark) = log_and_mark(&app.db, org).await;
    assert_eq!(mark, latest, "the change left nothing pending");
    assert_eq!(
        apply_one_part(&app.db, org, &mut step).await,
        Applied::Stale
    );
    assert_reports_match_recount(&api, WINDOWS).await;
    let answered = reports(&app).await;
    rebuild::rebuild(&app.db, org).await.unwrap();
    assert_eq!(reports(&app).await, answered, "finished equals rebuilt");
}

#[tokio::test]
async fn reports_equal_a_recount_when_insertions_land_among_long_projected_histories() {
    // A step and a report's tail read only the days of a candidate's
    // history that pending encounters can change (`analytics::affected`):
    // from the scored day before each to the scored day after. Long
    // projected histories, scored densely, sparsely or never, then pending
    // encounters everywhere among them: before the first score, after the
    // last, on scored days and between them.
    use rand::{rngs::StdRng, Rng, SeedableRng};
    let (app, org, touchpoints) = paused_with_touchpoints().await;
    let api = app.api(&app.reporter);
    let mut rng = StdRng::seed_from_u64(21);
    // Each candidate's chance that an encounter is scored.
    let scored = [0.9, 0.5, 0.15, 0.0, 0.6, 0.3];
    let items = |rng: &mut StdRng, per_candidate: usize| -> Vec<Value> {
        let mut items = Vec::new();
        for (candidate, chance_scored) in scored.iter().enumerate() {
            for _ in 0..per_candidate {
                let day = rng.random_range(0..180);
                let at = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                    + chrono::Duration::days(day);
                items.push(json!({
                    "candidate_external_ref": format!("LONG-{candidate}"),
                    "touchpoint_id": touchpoints[rng.random_range(0..3)],
                    "occurred_at": format!("{at}T{:02}:{:02}:00Z", rng.random_range(0..24), rng.random_range(0..60)),
                    "score": rng.random_bool(*chance_scored).then(|| rng.random_range(0..=10)),
                }));
            }
        }
        items
    };
    let history = items(&mut rng, 80);
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(history))
        .await
        .assert_status(201);
    catch_up(&app.db, org).await;
    let pending = items(&mut rng, 6);
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(pending))
        .await
        .assert_status(201);
    assert_reports_match_recount(&api, WINDOWS).await;

    // Part-way through the step, with more pending after its end.
    let mut step = read_step(&app.db, org).await;
    assert_eq!(apply_one_part(&app.db, org, &mut step).await, Applied::Part);
    let later = items(&mut rng, 4);
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(later))
        .await
        .assert_status(201);
    assert_reports_match_recount(&api, WINDOWS).await;

    // Caught up, the rollups equal a rebuild from the encounters.
    catch_up(&app.db, org).await;
    let projected = reports(&app).await;
    assert_reports_match_recount(&api, WINDOWS).await;
    rebuild::rebuild(&app.db, org).await.unwrap();
    assert_eq!(reports(&app).await, projected, "projected equals rebuilt");
}
