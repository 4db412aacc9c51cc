//! `DELETE /api/v1/candidates/{id}`: erasure removes the person and keeps
//! the trends true.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Reply, TestApp};

const EXPORT: &str = "/api/v1/exports/encounters";

/// A realistic organization: four touchpoints of the three kinds, eight
/// candidates (five created one by one with personal data, three by a
/// survey batch naming them by ATS id), scored and unscored encounters over
/// three months, some with notes. Returns the candidates' ids, in order.
async fn record_history(app: &TestApp) -> Vec<i64> {
    let touchpoints = [
        app.touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await,
        app.touchpoint("Glassdoor reviews", "true", "review_site", "consideration")
            .await,
        app.touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await,
        app.touchpoint(
            "Interviewer no-show",
            "unexpected",
            "interview",
            "interview",
        )
        .await,
    ];
    let mut candidates = Vec::new();
    for n in 0..5 {
        let created = app
            .post(
                "/api/v1/candidates",
                &app.recruiter,
                json!({
                    "external_ref": format!("ATS-{n}"),
                    "display_name": format!("Candidate {n}"),
                    "email": format!("candidate{n}@example.com"),
                    "stage": "interview",
                }),
            )
            .await;
        candidates.push(created.assert_status(201)["id"].as_i64().unwrap());
    }
    for (n, &candidate) in candidates.iter().enumerate() {
        for step in 0..(3 + n % 3) {
            let day = 1 + (n * 5 + step * 9) % 28;
            let month = 8 + step % 3;
            let score = ((n * 3 + step * 7) % 11) as i64;
            let mut body = json!({
                "candidate_id": candidate,
                "touchpoint_id": touchpoints[(n + step) % touchpoints.len()],
                "occurred_at": format!("2026-{month:02}-{day:02}T{:02}:30:00Z", 8 + step),
                "source": if step % 2 == 0 { "candidate_survey" } else { "recruiter_observation" },
            });
            if (n + step) % 4 != 3 {
                body["score"] = json!(score);
            }
            if step % 2 == 1 {
                body["note"] = json!(format!("candidate {n} said something at step {step}"));
            }
            app.post("/api/v1/encounters", &app.recruiter, body)
                .await
                .assert_status(201);
        }
    }
    let names = ["Careers site", "Glassdoor reviews", "Onsite interview"];
    let mut batch = Vec::new();
    for n in 0..3 {
        for step in 0..4 {
            batch.push(json!({
                "candidate_external_ref": format!("SURVEY-{n}"),
                "touchpoint_name": names[(n + step) % 3],
                "occurred_at": format!("2026-{:02}-{:02}T12:00:00Z", 8 + step % 3, 3 + n * 7 + step),
                "score": (n * 4 + step * 3) % 11,
                "note": if step == 2 { Value::from(format!("survey answer {n}")) } else { Value::Null },
            }));
        }
    }
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(batch))
        .await
        .assert_status(201);
    for n in 0..3 {
        let found = app
            .get(
                &format!("/api/v1/candidates?external_ref=SURVEY-{n}"),
                &app.reporter,
            )
            .await;
        candidates.push(found.assert_status(200)["items"][0]["id"].as_i64().unwrap());
    }
    candidates
}

/// Every report, in every grouping and bucket, for a few windows.
async fn all_reports(app: &TestApp) -> BTreeMap<String, Value> {
    all_reports_in(
        app,
        &[
            ("2026-08-01", "2026-11-01"),
            ("2026-09-01", "2026-10-01"),
            ("2026-08-10", "2026-08-24"),
        ],
    )
    .await
}

/// Every report, in every grouping and bucket, for each `(from, to)` window.
pub async fn all_reports_in(app: &TestApp, windows: &[(&str, &str)]) -> BTreeMap<String, Value> {
    let mut paths = Vec::new();
    for &(from, to) in windows {
        let window = format!("from={from}&to={to}");
        for bucket in ["day", "week", "month"] {
            for group_by in ["none", "kind", "channel", "stage", "touchpoint"] {
                paths.push(format!(
                    "/api/v1/reports/perception-trend?{window}&bucket={bucket}&group_by={group_by}"
                ));
            }
        }
        paths.push(format!(
            "/api/v1/reports/perception-trend?{window}&bucket=week&kind=employer_created&stage=interview"
        ));
        paths.push(format!("/api/v1/reports/touchpoint-impact?{window}"));
        for group_by in ["none", "kind", "stage"] {
            paths.push(format!(
                "/api/v1/reports/perception-shift?{window}&group_by={group_by}"
            ));
        }
        paths.push(format!("/api/v1/reports/summary?{window}"));
    }
    let mut reports = BTreeMap::new();
    for path in paths {
        let body = app
            .get(&path, &app.reporter)
            .await
            .assert_status(200)
            .clone();
        reports.insert(path, body);
    }
    reports
}

/// The NDJSON export after `cursor`: its records (without the `end`
/// record) and the next cursor.
async fn export(app: &TestApp, cursor: Option<&str>) -> (Vec<Value>, String) {
    let mut request = app.client.get(app.url(EXPORT)).bearer_auth(&app.reporter);
    if let Some(cursor) = cursor {
        request = request.query(&[("cursor", cursor)]);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    let mut records: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let end = records.pop().unwrap();
    assert_eq!(end["type"], "end");
    (records, end["next_cursor"].as_str().unwrap().to_owned())
}

/// The exported encounters by id.
fn by_id(records: &[Value]) -> BTreeMap<i64, Value> {
    records
        .iter()
        .map(|record| {
            assert_eq!(record["type"], "encounter", "{record}");
            (
                record["encounter"]["id"].as_i64().unwrap(),
                record["encounter"].clone(),
            )
        })
        .collect()
}

async fn erase(app: &TestApp, id: i64) -> Reply {
    app.delete(&format!("/api/v1/candidates/{id}"), &app.admin)
        .await
}

#[tokio::test]
async fn erasure_leaves_every_report_unchanged_and_removes_only_personal_data() {
    let app = spawn_app().await;
    let candidates = record_history(&app).await;
    let reports_before = all_reports(&app).await;
    let (export_before, cursor) = export(&app, None).await;
    let export_before = by_id(&export_before);
    assert!(export_before.len() > 30, "a realistic history");

    // One created with personal data and one created by the survey batch.
    let erased = [candidates[1], candidates[6]];
    for &id in &erased {
        let first = erase(&app, id).await;
        let body = first.assert_status(200).clone();
        assert_eq!(body["id"], id);
        assert!(body["erased_at"].is_string(), "{body}");
        for field in ["external_ref", "display_name", "email"] {
            assert!(body[field].is_null(), "{field} erased: {body}");
        }
        // Idempotent: the same answer, nothing changed.
        let again = erase(&app, id).await;
        assert_eq!(again.assert_status(200), &body);
        let fetched = app
            .get(&format!("/api/v1/candidates/{id}"), &app.reporter)
            .await;
        assert_eq!(fetched.assert_status(200), &body);
    }

    // Every report is identical.
    assert_eq!(all_reports(&app).await, reports_before);

    // The export differs exactly in the erased notes: those encounters lost
    // their note and were changed by the erasure (a later change_seq and
    // updated_at), so the next incremental export carries them again.
    let (export_after, _) = export(&app, None).await;
    let export_after = by_id(&export_after);
    assert_eq!(
        export_after.keys().collect::<Vec<_>>(),
        export_before.keys().collect::<Vec<_>>()
    );
    let mut notes_erased = Vec::new();
    for (id, before) in &export_before {
        let after = &export_after[id];
        let of_erased = erased.contains(&before["candidate_id"].as_i64().unwrap());
        if of_erased && !before["note"].is_null() {
            let mut expected = before.clone();
            expected["note"] = Value::Null;
            expected["updated_at"] = after["updated_at"].clone();
            assert_eq!(after, &expected);
            assert_ne!(after["updated_at"], before["updated_at"]);
            notes_erased.push(*id);
        } else {
            assert_eq!(after, before, "encounter {id} unchanged");
        }
    }
    assert!(notes_erased.len() >= 2, "both erased candidates had notes");
    let (changes, _) = export(&app, Some(&cursor)).await;
    let changed = by_id(&changes);
    assert_eq!(changed.keys().copied().collect::<Vec<_>>(), notes_erased);
    assert!(changed
        .values()
        .all(|encounter| encounter["note"].is_null()));

    // The other candidates keep their data; the journey keeps the scores.
    let kept = app
        .get(
            &format!("/api/v1/candidates/{}", candidates[0]),
            &app.reporter,
        )
        .await;
    assert_eq!(kept.assert_status(200)["display_name"], "Candidate 0");
    assert!(kept.body["erased_at"].is_null());
    let journey = app
        .get(
            &format!("/api/v1/candidates/{}/journey", erased[0]),
            &app.reporter,
        )
        .await;
    let steps = journey.assert_status(200)["steps"].as_array().unwrap();
    assert!(steps.len() >= 3);
    assert!(steps.iter().all(|step| step["note"].is_null()));
    assert!(steps.iter().any(|step| step["score"].is_i64()));

    // Nothing of the erased person is left in the database.
    for needle in [
        "ATS-1",
        "Candidate 1",
        "candidate1@example.com",
        "candidate 1 said",
        "SURVEY-1",
        "survey answer 1",
    ] {
        let rows = raw_count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM candidates WHERE external_ref = '{needle}' OR display_name = '{needle}' OR email = '{needle}'"
            ),
        )
        .await
            + raw_count(
                &app,
                &format!("SELECT COUNT(*) AS n FROM encounters WHERE note LIKE '{needle}%'"),
            )
            .await
            // The audit trail names fields, never values.
            + raw_count(
                &app,
                &format!(
                    "SELECT COUNT(*) AS n FROM audit_events WHERE changed_fields LIKE '%{needle}%' OR actor_name LIKE '%{needle}%'"
                ),
            )
            .await;
        assert_eq!(rows, 0, "{needle} is gone");
    }
}

async fn raw_count(app: &TestApp, sql: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    app.db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get::<i64>("", "n")
        .unwrap()
}

#[tokio::test]
async fn an_erased_candidate_takes_no_changes_and_no_encounters() {
    let app = spawn_app().await;
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let id = app.candidate("ATS-7").await;
    let encounter = app
        .encounter(id, touchpoint, "2026-10-01T10:00:00Z", Some(6))
        .await;
    erase(&app, id).await.assert_status(200);
    let encounters_before = app.count("encounters").await;

    app.patch(
        &format!("/api/v1/candidates/{id}"),
        &app.recruiter,
        json!({"display_name": "Back again"}),
    )
    .await
    .assert_error(409, "candidate_erased", Some("id"));

    let one = json!({"candidate_id": id, "touchpoint_id": touchpoint,
                     "occurred_at": "2026-10-02T10:00:00Z", "score": 7});
    app.post("/api/v1/encounters", &app.recruiter, one.clone())
        .await
        .assert_error(409, "candidate_erased", Some("candidate_id"));

    let batch = app
        .post("/api/v1/encounters/batch", &app.recruiter, json!([one]))
        .await;
    batch.assert_error(422, "invalid_items", None);
    assert_eq!(batch.body["items"][0]["index"], 0);
    assert_eq!(batch.body["items"][0]["error"]["code"], "candidate_erased");
    assert_eq!(batch.body["items"][0]["error"]["field"], "candidate_id");

    let import = app
        .post_raw(
            "/api/v1/encounters/import",
            &app.recruiter,
            "application/x-ndjson",
            &format!("{one}\n"),
        )
        .await;
    import.assert_error(422, "invalid_items", None);
    assert_eq!(import.body["items"][0]["error"]["code"], "candidate_erased");
    assert_eq!(import.body["lines_committed"], 0);

    // Its encounters take no note again; a score correction is allowed.
    let path = format!("/api/v1/encounters/{encounter}");
    app.patch(&path, &app.recruiter, json!({"note": "remembered"}))
        .await
        .assert_error(409, "candidate_erased", Some("note"));
    let corrected = app.patch(&path, &app.recruiter, json!({"score": 5})).await;
    assert_eq!(corrected.assert_status(200)["score"], 5);
    assert_eq!(app.count("encounters").await, encounters_before);

    // The former ATS id names nobody now: a new application is a new
    // candidate.
    let listed = app
        .get("/api/v1/candidates?external_ref=ATS-7", &app.reporter)
        .await;
    assert_eq!(listed.assert_status(200)["items"], json!([]));
    let again = app
        .post(
            "/api/v1/encounters/batch",
            &app.recruiter,
            json!([{"candidate_external_ref": "ATS-7", "touchpoint_id": touchpoint,
                    "occurred_at": "2026-10-03T10:00:00Z"}]),
        )
        .await;
    assert_eq!(again.assert_status(201)["candidates_created"], 1);
}

#[tokio::test]
async fn only_admins_erase_and_only_in_their_organization() {
    let app = spawn_app().await;
    let id = app.candidate("ATS-1").await;
    for token in [&app.recruiter, &app.reporter] {
        app.delete(&format!("/api/v1/candidates/{id}"), token)
            .await
            .assert_error(403, "forbidden", None);
    }
    app.delete(&format!("/api/v1/candidates/{id}"), &app.other_admin)
        .await
        .assert_error(404, "not_found", None);
    erase(&app, id + 100)
        .await
        .assert_error(404, "not_found", None);
    let kept = app
        .get(&format!("/api/v1/candidates/{id}"), &app.admin)
        .await;
    assert_eq!(kept.assert_status(200)["external_ref"], "ATS-1");
}

/// A retry of a write answered before the erasure replays the stored
/// answer, without the personal data it held.
#[tokio::test]
async fn stored_idempotent_answers_lose_the_personal_data() {
    let app = spawn_app().await;
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let send = |path: &'static str, key: &'static str, body: Value| {
        let request = app
            .client
            .request(Method::POST, app.url(path))
            .bearer_auth(&app.recruiter)
            .header("Idempotency-Key", key)
            .json(&body);
        async move { TestApp::reply(request.send().await.unwrap()).await }
    };
    let create =
        json!({"external_ref": "ATS-9", "display_name": "Lan", "email": "lan@example.com"});
    let created = send("/api/v1/candidates", "create-9", create.clone()).await;
    let id = created.assert_status(201)["id"].as_i64().unwrap();
    let record = json!({"candidate_id": id, "touchpoint_id": touchpoint,
                        "occurred_at": "2026-10-01T10:00:00Z", "note": "private"});
    let recorded = send("/api/v1/encounters", "record-9", record.clone()).await;
    let encounter = recorded.assert_status(201)["id"].clone();

    erase(&app, id).await.assert_status(200);

    let replayed = send("/api/v1/candidates", "create-9", create).await;
    let body = replayed.assert_status(201);
    assert_eq!(body["id"], id);
    for field in ["external_ref", "display_name", "email"] {
        assert!(body[field].is_null(), "{body}");
    }
    let replayed = send("/api/v1/encounters", "record-9", record).await;
    let body = replayed.assert_status(201);
    assert_eq!(body["id"], encounter);
    assert!(body["note"].is_null(), "{body}");
    assert_eq!(app.count("candidates").await, 1);
    assert_eq!(app.count("encounters").await, 1);
}

/// Erasing a candidate while recruiters record encounters for them through
/// the group commit: each encounter either committed before the erasure
/// (and lost its note with it) or was refused; none carries a note after,
/// and the reports still equal a recount.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasure_during_concurrent_encounters_leaves_no_note_behind() {
    let app = std::sync::Arc::new(spawn_app().await);
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let id = app.candidate("ATS-RACE").await;
    let other = app.candidate("ATS-KEPT").await;
    // Writers go on until a few of their requests came after the erasure.
    let started = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let erased = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    for writer in 0..8 {
        let (app, started, erased) = (app.clone(), started.clone(), erased.clone());
        tasks.spawn(async move {
            let (mut recorded, mut refused, mut after) = (0, 0, 0);
            for n in 0..200 {
                if after >= 3 {
                    break;
                }
                if erased.load(std::sync::atomic::Ordering::SeqCst) {
                    after += 1;
                }
                let body = json!({
                    "candidate_id": if n % 5 == 4 { other } else { id },
                    "touchpoint_id": touchpoint,
                    "occurred_at": format!("2026-10-{:02}T{:02}:{:02}:00Z", 1 + n % 28, n / 28, writer),
                    "score": (n + writer) % 11,
                    "note": format!("writer {writer} note {n}"),
                });
                started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let reply = app.post("/api/v1/encounters", &app.recruiter, body).await;
                if reply.status == 201 {
                    recorded += 1;
                } else {
                    reply.assert_error(409, "candidate_erased", Some("candidate_id"));
                    refused += 1;
                }
            }
            (recorded, refused)
        });
    }
    while started.load(std::sync::atomic::Ordering::SeqCst) < 40 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    erase(&app, id).await.assert_status(200);
    erased.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut recorded, mut refused) = (0, 0);
    while let Some(result) = tasks.join_next().await {
        let (r, f) = result.unwrap();
        recorded += r;
        refused += f;
    }
    assert!(refused > 0, "requests after the erasure were refused");
    let of_erased = raw_count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM encounters WHERE candidate_id = {id}"),
    )
    .await;
    assert!(of_erased > 0, "encounters before the erasure stay");
    assert_eq!(app.count("encounters").await, recorded);
    let notes_of_erased = raw_count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM encounters WHERE candidate_id = {id} AND note IS NOT NULL"
        ),
    )
    .await;
    assert_eq!(notes_of_erased, 0);
    let notes_kept = raw_count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM encounters WHERE candidate_id = {other} AND note IS NOT NULL"),
    )
    .await;
    let of_other = raw_count(
        &app,
        &format!("SELECT COUNT(*) AS n FROM encounters WHERE candidate_id = {other}"),
    )
    .await;
    assert!(of_other > 0);
    assert_eq!(notes_kept, of_other, "the other candidate's notes stay");
    crate::recount::assert_reports_match_recount(
        &app.api(&app.reporter),
        &[("2026-10-01", "2026-11-01")],
    )
    .await;
}
