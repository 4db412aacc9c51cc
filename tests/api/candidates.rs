use serde_json::json;

use super::helpers::spawn_app;

#[tokio::test]
async fn recruiter_creates_finds_and_updates_a_candidate() {
    let app = spawn_app().await;

    let created = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({
                "external_ref": "ATS-1042",
                "display_name": "Nguyen Thi Lan",
                "email": "lan@example.com",
                "stage": "application"
            }),
        )
        .await;
    let body = created.assert_status(201).clone();
    let id = created.id();
    assert_eq!(body["external_ref"], "ATS-1042");
    assert_eq!(body["display_name"], "Nguyen Thi Lan");
    assert_eq!(body["email"], "lan@example.com");
    assert_eq!(body["stage"], "application");

    let by_ref = app
        .get("/api/v1/candidates?external_ref=ATS-1042", &app.reporter)
        .await;
    let items = by_ref.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(items, vec![body.clone()]);

    let updated = app
        .patch(
            &format!("/api/v1/candidates/{id}"),
            &app.recruiter,
            json!({"stage": "interview", "email": null}),
        )
        .await;
    let updated = updated.assert_status(200);
    assert_eq!(updated["stage"], "interview");
    assert!(updated["email"].is_null());
    assert_eq!(updated["display_name"], "Nguyen Thi Lan");

    let fetched = app
        .get(&format!("/api/v1/candidates/{id}"), &app.reporter)
        .await;
    assert_eq!(fetched.assert_status(200), updated);
}

#[tokio::test]
async fn stage_defaults_to_awareness_and_filters_the_list() {
    let app = spawn_app().await;
    let first = app.candidate("ATS-1").await;
    let second = app.candidate("ATS-2").await;
    app.patch(
        &format!("/api/v1/candidates/{second}"),
        &app.admin,
        json!({"stage": "offer"}),
    )
    .await
    .assert_status(200);

    let first_body = app
        .get(&format!("/api/v1/candidates/{first}"), &app.admin)
        .await;
    assert_eq!(first_body.assert_status(200)["stage"], "awareness");

    let offers = app
        .get("/api/v1/candidates?stage=offer", &app.reporter)
        .await;
    let ids: Vec<i64> = offers.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![second]);
}

#[tokio::test]
async fn candidates_are_found_by_part_of_their_reference_or_name() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for (external_ref, name) in [
        ("ATS-1042", Some("Nguyen Thi Lan")),
        ("ATS-2001", Some("Tran Van Minh")),
        ("REF_50%", None),
        ("HR-7", Some("Lan Anh Pham")),
    ] {
        let created = app
            .post(
                "/api/v1/candidates",
                &app.recruiter,
                json!({"external_ref": external_ref, "display_name": name}),
            )
            .await;
        ids.push(created.assert_status(201)["id"].as_i64().unwrap());
    }
    let globex = app
        .post(
            "/api/v1/candidates",
            &app.other_admin,
            json!({"external_ref": "LAN-9", "display_name": "Lan of Globex"}),
        )
        .await;
    globex.assert_status(201);
    // Erased: no reference or name left to match.
    app.delete(&format!("/api/v1/candidates/{}", ids[3]), &app.admin)
        .await
        .assert_status(200);

    let found = |q: &str| {
        let path = format!(
            "/api/v1/candidates?q={}",
            url::form_urlencoded::byte_serialize(q.as_bytes()).collect::<String>()
        );
        let app = &app;
        async move {
            let listed = app.get(&path, &app.reporter).await;
            listed.assert_status(200)["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_i64().unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        found("lan").await,
        vec![ids[0]],
        "by name, any case, in this organization"
    );
    assert_eq!(found("ats-").await, vec![ids[0], ids[1]], "by reference");
    assert_eq!(found("  MINH ").await, vec![ids[1]], "trimmed");
    assert_eq!(found("50%").await, vec![ids[2]], "% is a character");
    assert_eq!(found("_").await, vec![ids[2]], "_ is a character");
    assert_eq!(found("%").await, vec![ids[2]]);
    assert!(found("nobody").await.is_empty());

    app.get("/api/v1/candidates?q=%20", &app.reporter)
        .await
        .assert_error(422, "validation_failed", Some("q"));
    let long = "x".repeat(201);
    app.get(&format!("/api/v1/candidates?q={long}"), &app.reporter)
        .await
        .assert_error(422, "validation_failed", Some("q"));
}
