//! `GET /api/v1/candidates/{id}/export`: everything stored about one
//! candidate, for a subject-access request.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn the_export_holds_the_profile_and_every_encounter_and_nothing_of_others() {
    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
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
    let created = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({"external_ref": "ATS-1042", "display_name": "Nguyen Thi Lan",
                   "email": "lan@example.com", "stage": "interview"}),
        )
        .await;
    let profile = created.assert_status(201).clone();
    let id = profile["id"].as_i64().unwrap();
    let first = app
        .encounter(id, site, "2026-11-02T09:00:00Z", Some(7))
        .await;
    let unscored = app.encounter(id, site, "2026-11-05T09:00:00Z", None).await;
    let noted = app
        .post(
            "/api/v1/encounters",
            &app.recruiter,
            json!({"candidate_id": id, "touchpoint_id": no_show,
                   "occurred_at": "2026-11-09T14:00:00Z", "score": 3,
                   "source": "recruiter_observation",
                   "note": "Waited 40 minutes, nobody came"}),
        )
        .await
        .assert_status(201)
        .clone();
    let other = app.candidate("ATS-2").await;
    app.encounter(other, site, "2026-11-03T09:00:00Z", Some(10))
        .await;

    let path = format!("/api/v1/candidates/{id}/export");
    let export = app.get(&path, &app.admin).await;
    let body = export.assert_status(200);
    assert!(body["exported_at"].is_string());
    assert_eq!(body["candidate"], profile);
    let encounters = body["encounters"].as_array().unwrap();
    let ids: Vec<i64> = encounters
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![first, unscored, noted["id"].as_i64().unwrap()]);
    let last = &encounters[2];
    assert_eq!(
        last["touchpoint"],
        json!({"id": no_show, "name": "Interviewer no-show", "kind": "unexpected",
               "channel": "interview", "stage": "interview"})
    );
    assert_eq!(last["score"], 3);
    assert_eq!(last["shift"], -4);
    assert_eq!(last["source"], "recruiter_observation");
    assert_eq!(last["note"], "Waited 40 minutes, nobody came");
    for field in [
        "occurred_at",
        "created_at",
        "updated_at",
        "recorded_by_key_id",
    ] {
        assert_eq!(last[field], noted[field], "{field}");
    }
    assert!(encounters[1]["score"].is_null() && encounters[1]["shift"].is_null());
    assert!(encounters[0]["note"].is_null());
    assert_eq!(body["first_score"], 7);
    assert_eq!(body["latest_score"], 3);
    assert_eq!(body["overall_shift"], -4);

    // After erasure: what is left, without personal data.
    app.delete(&format!("/api/v1/candidates/{id}"), &app.admin)
        .await
        .assert_status(200);
    let after = app.get(&path, &app.admin).await;
    let after = after.assert_status(200);
    for field in ["external_ref", "display_name", "email"] {
        assert!(after["candidate"][field].is_null(), "{field}");
    }
    assert!(after["candidate"]["erased_at"].is_string());
    let encounters = after["encounters"].as_array().unwrap();
    assert_eq!(encounters.len(), 3);
    assert!(encounters.iter().all(|e| e["note"].is_null()));
    assert_eq!(encounters[2]["score"], 3);
    assert_eq!(after["overall_shift"], -4);
}

#[tokio::test]
async fn only_admins_export_and_only_their_own_candidates() {
    let app = spawn_app().await;
    let id = app.candidate("ATS-1").await;
    let path = format!("/api/v1/candidates/{id}/export");
    for token in [&app.recruiter, &app.reporter] {
        app.get(&path, token)
            .await
            .assert_error(403, "forbidden", None);
    }
    app.get(&path, &app.other_admin)
        .await
        .assert_error(404, "not_found", None);
    app.get(
        &format!("/api/v1/candidates/{}/export", id + 100),
        &app.admin,
    )
    .await
    .assert_error(404, "not_found", None);
    app.get("/api/v1/candidates/abc/export", &app.admin)
        .await
        .assert_error(404, "not_found", None);
}
