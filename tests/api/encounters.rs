use serde_json::json;

use super::helpers::spawn_app;

#[tokio::test]
async fn recruiter_logs_an_interview_and_corrects_it() {
    let app = spawn_app().await;
    let interview = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let phone = app
        .touchpoint("Phone screen", "employer_created", "phone", "screening")
        .await;
    let candidate = app.candidate("ATS-7").await;

    let logged = app
        .post(
            "/api/v1/encounters",
            &app.recruiter,
            json!({
                "candidate_id": candidate,
                "touchpoint_id": interview,
                "occurred_at": "2026-10-01T09:30:00Z",
                "score": 8,
                "note": "Liked meeting the team"
            }),
        )
        .await;
    let body = logged.assert_status(201).clone();
    let id = logged.id();
    assert_eq!(body["candidate_id"], candidate);
    assert_eq!(body["touchpoint_id"], interview);
    assert_eq!(body["occurred_at"], "2026-10-01T09:30:00+00:00");
    assert_eq!(
        body["source"], "recruiter_observation",
        "the default source"
    );
    assert_eq!(body["score"], 8);
    assert_eq!(body["note"], "Liked meeting the team");
    assert!(body["recorded_by_key_id"].is_i64());

    let corrected = app
        .patch(
            &format!("/api/v1/encounters/{id}"),
            &app.recruiter,
            json!({"touchpoint_id": phone, "score": null, "source": "candidate_survey"}),
        )
        .await;
    let corrected = corrected.assert_status(200).clone();
    assert_eq!(corrected["touchpoint_id"], phone);
    assert!(corrected["score"].is_null());
    assert_eq!(corrected["source"], "candidate_survey");
    assert_eq!(corrected["note"], "Liked meeting the team");

    let fetched = app
        .get(&format!("/api/v1/encounters/{id}"), &app.reporter)
        .await;
    assert_eq!(fetched.assert_status(200), &corrected);

    let deleted = app
        .delete(&format!("/api/v1/encounters/{id}"), &app.recruiter)
        .await;
    deleted.assert_status(204);
    app.get(&format!("/api/v1/encounters/{id}"), &app.reporter)
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn list_filters_by_candidate_touchpoint_kind_stage_and_time() {
    let app = spawn_app().await;
    let ad = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let review = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    let lan = app.candidate("ATS-1").await;
    let minh = app.candidate("ATS-2").await;
    let e1 = app
        .encounter(lan, ad, "2026-09-01T10:00:00Z", Some(7))
        .await;
    let e2 = app
        .encounter(lan, review, "2026-09-10T10:00:00Z", Some(4))
        .await;
    let e3 = app.encounter(minh, ad, "2026-10-01T00:00:00Z", None).await;

    let ids = |path: String| {
        let app = &app;
        async move {
            app.get(&path, &app.reporter).await.assert_status(200)["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };

    assert_eq!(ids("/api/v1/encounters".into()).await, vec![e1, e2, e3]);
    assert_eq!(
        ids(format!("/api/v1/encounters?candidate_id={lan}")).await,
        vec![e1, e2]
    );
    assert_eq!(
        ids(format!("/api/v1/encounters?touchpoint_id={ad}")).await,
        vec![e1, e3]
    );
    assert_eq!(ids("/api/v1/encounters?kind=true".into()).await, vec![e2]);
    assert_eq!(
        ids("/api/v1/encounters?stage=awareness".into()).await,
        vec![e1, e3]
    );
    // `from` is inclusive, `to` exclusive.
    assert_eq!(
        ids("/api/v1/encounters?from=2026-09-10T10:00:00Z&to=2026-10-01T00:00:00Z".into()).await,
        vec![e2]
    );
    assert_eq!(
        ids(format!(
            "/api/v1/encounters?candidate_id={minh}&kind=employer_created"
        ))
        .await,
        vec![e3]
    );
}
