use serde_json::{json, Value};

use super::helpers::spawn_app;

/// Scores 6, -, 9, 4, -, 10 over time: shifts are +3, -5, +6 (hand-computed),
/// the overall shift 10 - 6 = +4.
#[tokio::test]
async fn journey_orders_encounters_in_time_and_computes_shifts() {
    let app = spawn_app().await;
    let careers = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let review = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    let interview = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let no_show = app
        .touchpoint(
            "Interviewer no-show",
            "unexpected",
            "interview",
            "interview",
        )
        .await;
    let candidate = app.candidate("ATS-42").await;
    // Logged out of order on purpose: the journey sorts by occurred_at.
    app.encounter(candidate, interview, "2026-03-05T10:00:00Z", Some(9))
        .await;
    app.encounter(candidate, careers, "2026-03-01T10:00:00Z", Some(6))
        .await;
    app.encounter(candidate, review, "2026-03-03T10:00:00Z", None)
        .await;
    app.encounter(candidate, no_show, "2026-03-07T10:00:00Z", Some(4))
        .await;
    app.encounter(candidate, review, "2026-03-08T10:00:00Z", None)
        .await;
    app.encounter(candidate, interview, "2026-03-10T10:00:00Z", Some(10))
        .await;

    let journey = app
        .get(
            &format!("/api/v1/candidates/{candidate}/journey"),
            &app.reporter,
        )
        .await;
    let journey = journey.assert_status(200);

    let steps = journey["steps"].as_array().unwrap();
    let names: Vec<&str> = steps
        .iter()
        .map(|s| s["touchpoint_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Careers site",
            "Glassdoor",
            "Onsite interview",
            "Interviewer no-show",
            "Glassdoor",
            "Onsite interview"
        ]
    );
    let scores: Vec<_> = steps.iter().map(|s| s["score"].clone()).collect();
    assert_eq!(
        scores,
        [
            json!(6),
            json!(null),
            json!(9),
            json!(4),
            json!(null),
            json!(10)
        ]
    );
    let shifts: Vec<_> = steps.iter().map(|s| s["shift"].clone()).collect();
    assert_eq!(
        shifts,
        [
            json!(null),
            json!(null),
            json!(3),
            json!(-5),
            json!(null),
            json!(6)
        ]
    );
    assert_eq!(steps[3]["kind"], "unexpected");
    assert_eq!(steps[1]["channel"], "review_site");
    assert_eq!(steps[0]["stage"], "awareness");
    assert_eq!(journey["candidate_id"], candidate);
    assert_eq!(journey["first_score"], 6);
    assert_eq!(journey["latest_score"], 10);
    assert_eq!(journey["overall_shift"], 4);
}

#[tokio::test]
async fn journey_without_two_scores_has_no_overall_shift() {
    let app = spawn_app().await;
    let ad = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let empty = app.candidate("ATS-1").await;
    let once = app.candidate("ATS-2").await;
    app.encounter(once, ad, "2026-01-01T00:00:00Z", Some(7))
        .await;
    app.encounter(once, ad, "2026-01-02T00:00:00Z", None).await;

    let empty = app
        .get(
            &format!("/api/v1/candidates/{empty}/journey"),
            &app.reporter,
        )
        .await;
    let once = app
        .get(&format!("/api/v1/candidates/{once}/journey"), &app.reporter)
        .await;

    let empty = empty.assert_status(200);
    assert_eq!(empty["steps"], json!([]));
    assert!(empty["first_score"].is_null() && empty["latest_score"].is_null());
    assert!(empty["overall_shift"].is_null());
    let once = once.assert_status(200);
    assert_eq!(once["first_score"], 7);
    assert_eq!(once["latest_score"], 7);
    assert!(once["overall_shift"].is_null());
    assert_eq!(once["steps"][0]["shift"], json!(null));
}

/// Reads a streamed answer to the end: its status and its bytes, or the
/// error that cut it short.
async fn read_streamed(
    app: &crate::helpers::TestApp,
    path: &str,
    token: &str,
) -> (reqwest::StatusCode, Result<Vec<u8>, reqwest::Error>) {
    let response = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("an answer");
    let status = response.status();
    (status, response.bytes().await.map(|bytes| bytes.to_vec()))
}

/// The candidate's encounters through the list, in journey order: by
/// `occurred_at`, then by id.
async fn listed_encounters(app: &crate::helpers::TestApp, candidate: i64) -> Vec<Value> {
    let mut encounters = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/v1/encounters?candidate_id={candidate}&limit=500");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, &app.admin).await;
        let page = page.assert_status(200);
        encounters.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let at = |e: &Value| {
        e["occurred_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    encounters.sort_by_key(|e| (at(e), e["id"].as_i64().unwrap()));
    encounters
}

/// A journey long enough to be streamed in many chunks, with ties in time,
/// unscored encounters, a change that moves an encounter to the front and
/// a deletion: the journey and the export hold exactly the candidate's
/// encounters as the list shows them, in journey order, with the shifts
/// and summary computed from the rows they return (the values the
/// journey was built from in memory before it was streamed).
#[tokio::test]
async fn a_long_journey_and_its_export_are_complete_and_in_order() {
    let app = spawn_app().await;
    let touchpoints = [
        app.touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await,
        app.touchpoint("Glassdoor", "true", "review_site", "consideration")
            .await,
        app.touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await,
    ];
    let candidate = app.candidate("ATS-LONG").await;
    let other = app.candidate("ATS-OTHER").await;
    // 900 encounters with 1,000-character notes (about 1 MB), four at each
    // moment; every third unscored. Another candidate's in between.
    let filler = "é\"x\\".repeat(250);
    let items: Vec<Value> = (0..900)
        .map(|n| {
            json!({"candidate_id": candidate, "touchpoint_id": touchpoints[n % 3],
                   "occurred_at": format!("2026-01-{:02}T{:02}:00:00Z", 1 + n / 96, (n / 4) % 24),
                   "score": if n % 3 == 0 { Value::Null } else { json!((n * 7) % 11) },
                   "note": format!("{n} {filler}")})
        })
        .chain((0..10).map(|n| {
            json!({"candidate_id": other, "touchpoint_id": touchpoints[0],
                   "occurred_at": "2026-01-02T00:00:00Z", "score": n})
        }))
        .collect();
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        Value::Array(items),
    )
    .await
    .assert_status(201);
    let listed = listed_encounters(&app, candidate).await;
    assert_eq!(listed.len(), 900);
    let created_ids: Vec<i64> = listed.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    // The last encounter moves to the front; one is deleted.
    let last = listed[899]["id"].as_i64().unwrap();
    app.patch(
        &format!("/api/v1/encounters/{last}"),
        &app.recruiter,
        json!({"occurred_at": "2025-12-31T00:00:00Z", "score": 3}),
    )
    .await
    .assert_status(200);
    let deleted = listed[450]["id"].as_i64().unwrap();
    app.delete(&format!("/api/v1/encounters/{deleted}"), &app.recruiter)
        .await
        .assert_status(204);
    let listed = listed_encounters(&app, candidate).await;
    assert_eq!(listed.len(), 899);
    assert_eq!(listed[0]["id"], last);

    // What the journey must hold, computed here.
    let mut previous: Option<i64> = None;
    let shifts: Vec<Value> = listed
        .iter()
        .map(|e| match e["score"].as_i64() {
            None => Value::Null,
            Some(score) => {
                let shift = previous.map(|p| json!(score - p)).unwrap_or(Value::Null);
                previous = Some(score);
                shift
            }
        })
        .collect();
    let scores: Vec<i64> = listed.iter().filter_map(|e| e["score"].as_i64()).collect();
    let mut names = std::collections::HashMap::new();
    for id in touchpoints {
        let touchpoint = app
            .get(&format!("/api/v1/touchpoints/{id}"), &app.reporter)
            .await;
        names.insert(id, touchpoint.assert_status(200).clone());
    }

    let path = format!("/api/v1/candidates/{candidate}/journey");
    let (status, body) = read_streamed(&app, &path, &app.reporter).await;
    assert_eq!(status, 200);
    let body = body.expect("the whole journey");
    assert!(body.len() > 900_000, "{} bytes", body.len());
    let journey: Value = serde_json::from_slice(&body).expect("valid JSON");
    assert_eq!(journey["candidate_id"], candidate);
    assert_eq!(journey["first_score"], 3);
    assert_eq!(journey["latest_score"], json!(scores[scores.len() - 1]));
    assert_eq!(
        journey["overall_shift"],
        json!(scores[scores.len() - 1] - 3)
    );
    let steps = journey["steps"].as_array().unwrap();
    assert_eq!(steps.len(), listed.len());
    for ((step, e), shift) in steps.iter().zip(&listed).zip(&shifts) {
        let touchpoint = &names[&e["touchpoint_id"].as_i64().unwrap()];
        let expected = json!({
            "encounter_id": e["id"], "occurred_at": e["occurred_at"],
            "touchpoint_id": e["touchpoint_id"], "touchpoint_name": touchpoint["name"],
            "kind": touchpoint["kind"], "channel": touchpoint["channel"],
            "stage": touchpoint["stage"], "source": e["source"], "score": e["score"],
            "shift": shift, "note": e["note"],
        });
        assert_eq!(step, &expected);
    }

    // The export: the same encounters, and the audit trail in id order.
    let path = format!("/api/v1/candidates/{candidate}/export");
    let (status, body) = read_streamed(&app, &path, &app.admin).await;
    assert_eq!(status, 200);
    let export: Value = serde_json::from_slice(&body.expect("the whole export")).unwrap();
    for field in ["first_score", "latest_score", "overall_shift"] {
        assert_eq!(export[field], journey[field], "{field}");
    }
    assert_eq!(export["candidate"]["id"], candidate);
    let encounters = export["encounters"].as_array().unwrap();
    assert_eq!(encounters.len(), listed.len());
    for ((record, e), step) in encounters.iter().zip(&listed).zip(steps) {
        let touchpoint = &names[&e["touchpoint_id"].as_i64().unwrap()];
        let expected = json!({
            "id": e["id"], "occurred_at": e["occurred_at"],
            "touchpoint": {"id": touchpoint["id"], "name": touchpoint["name"],
                           "kind": touchpoint["kind"], "channel": touchpoint["channel"],
                           "stage": touchpoint["stage"]},
            "source": e["source"], "score": e["score"], "shift": step["shift"],
            "note": e["note"], "recorded_by_key_id": e["recorded_by_key_id"],
            "created_at": e["created_at"], "updated_at": e["updated_at"],
        });
        assert_eq!(record, &expected);
    }
    let events = export["audit_events"].as_array().unwrap();
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let count = |resource: &str, action: &str| {
        events
            .iter()
            .filter(|e| e["resource_type"] == resource && e["action"] == action)
            .count()
    };
    assert_eq!(count("candidate", "create"), 1);
    assert_eq!(count("encounter", "update"), 1);
    assert_eq!(count("encounter", "delete"), 1);
    // The batch is one event, a run of both candidates' encounters (so no
    // subject), listed once; it holds each of this candidate's 900.
    assert_eq!(count("encounter", "create"), 1);
    assert_eq!(events.len(), 4);
    let run = events
        .iter()
        .find(|e| e["action"] == "create" && e["resource_type"] == "encounter")
        .unwrap();
    assert_eq!(run["subject_candidate_id"], Value::Null);
    let (first, last) = (
        run["resource_id"].as_i64().unwrap(),
        run["last_resource_id"].as_i64().unwrap(),
    );
    assert_eq!(last - first + 1, 910, "{run}");
    assert!(created_ids.iter().all(|id| (first..=last).contains(id)));
    assert!(events
        .iter()
        .filter(|e| e["action"] != "create" || e["resource_type"] != "encounter")
        .all(|e| e["subject_candidate_id"] == candidate));
}

/// A stored row the service cannot read (a value no release writes): found
/// before the answer starts, it is an error answer; found after, the
/// answer is cut short, never a complete-looking document.
#[tokio::test]
async fn a_row_that_cannot_be_read_is_an_error_or_a_cut_short_answer() {
    use sea_orm::ConnectionTrait;

    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let candidate = app.candidate("ATS-BAD").await;
    let note = "n".repeat(1000);
    let items: Vec<Value> = (0..500)
        .map(|n| {
            json!({"candidate_id": candidate, "touchpoint_id": site,
                   "occurred_at": format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60),
                   "score": n % 11, "note": note})
        })
        .collect();
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        Value::Array(items),
    )
    .await
    .assert_status(201);
    let listed = listed_encounters(&app, candidate).await;
    let corrupt = |id: &Value| {
        format!(
            "UPDATE encounters SET source = 'not_a_source' WHERE id = {}",
            id.as_i64().unwrap()
        )
    };
    let run = |sql: String| {
        let db = &app.db;
        async move {
            db.execute_unprepared(&sql).await.unwrap();
        }
    };

    // The last row: past the first chunk of the answer.
    run(corrupt(&listed[499]["id"])).await;
    for (path, token) in [
        (
            format!("/api/v1/candidates/{candidate}/journey"),
            &app.reporter,
        ),
        (format!("/api/v1/candidates/{candidate}/export"), &app.admin),
    ] {
        let (status, body) = read_streamed(&app, &path, token).await;
        assert_eq!(status, 200, "{path}");
        match body {
            Err(_) => {}
            Ok(body) => assert!(
                serde_json::from_slice::<Value>(&body).is_err(),
                "{path}: a complete-looking answer of {} bytes",
                body.len()
            ),
        }
    }

    // The first row: the journey's answer has not started, it is an error
    // answer. (The export's starts with the audit trail, 500 events here,
    // sent before the encounters are read: it is cut short as above.)
    run(corrupt(&listed[0]["id"])).await;
    app.get(
        &format!("/api/v1/candidates/{candidate}/journey"),
        &app.reporter,
    )
    .await
    .assert_error(500, "internal", None);
    // And the service still answers.
    app.get(&format!("/api/v1/candidates/{candidate}"), &app.reporter)
        .await
        .assert_status(200);
}
