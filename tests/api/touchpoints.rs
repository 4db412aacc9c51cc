use serde_json::json;

use super::helpers::spawn_app;

#[tokio::test]
async fn admin_creates_reads_updates_and_archives_a_touchpoint() {
    let app = spawn_app().await;

    let created = app
        .post(
            "/api/v1/touchpoints",
            &app.admin,
            json!({
                "name": "  Glassdoor reviews ",
                "kind": "true",
                "channel": "review_site",
                "stage": "consideration",
                "description": "Employee reviews on Glassdoor"
            }),
        )
        .await;
    let body = created.assert_status(201).clone();
    let id = created.id();
    assert_eq!(body["name"], "Glassdoor reviews", "names are trimmed");
    assert_eq!(body["kind"], "true");
    assert_eq!(body["channel"], "review_site");
    assert_eq!(body["stage"], "consideration");
    assert_eq!(body["description"], "Employee reviews on Glassdoor");
    assert!(body["archived_at"].is_null());
    assert_eq!(body["created_at"], body["updated_at"]);

    let fetched = app
        .get(&format!("/api/v1/touchpoints/{id}"), &app.reporter)
        .await;
    assert_eq!(fetched.assert_status(200), &body);

    let updated = app
        .patch(
            &format!("/api/v1/touchpoints/{id}"),
            &app.admin,
            json!({"stage": "alumni", "description": null}),
        )
        .await;
    let updated = updated.assert_status(200);
    assert_eq!(updated["stage"], "alumni");
    assert!(
        updated["description"].is_null(),
        "null clears the description"
    );
    assert_eq!(
        updated["name"], "Glassdoor reviews",
        "absent fields are kept"
    );
    assert_eq!(updated["kind"], "true");

    let archived = app
        .delete(&format!("/api/v1/touchpoints/{id}"), &app.admin)
        .await;
    let archived_at = archived.assert_status(200)["archived_at"].clone();
    assert!(archived_at.is_string());

    let again = app
        .delete(&format!("/api/v1/touchpoints/{id}"), &app.admin)
        .await;
    assert_eq!(
        again.assert_status(200)["archived_at"],
        archived_at,
        "archiving is idempotent"
    );
}

#[tokio::test]
async fn list_filters_by_kind_channel_stage_and_hides_archived() {
    let app = spawn_app().await;
    let careers = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let interview = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let reviews = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    let chance = app
        .touchpoint("Met an employee", "unexpected", "event", "awareness")
        .await;
    app.delete(&format!("/api/v1/touchpoints/{chance}"), &app.admin)
        .await
        .assert_status(200);

    let ids = |reply: super::helpers::Reply| -> Vec<i64> {
        reply.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_i64().unwrap())
            .collect()
    };

    assert_eq!(
        ids(app.get("/api/v1/touchpoints", &app.reporter).await),
        vec![careers, interview, reviews]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/touchpoints?include_archived=true", &app.reporter)
            .await),
        vec![careers, interview, reviews, chance]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/touchpoints?kind=employer_created", &app.reporter)
            .await),
        vec![careers, interview]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/touchpoints?channel=review_site", &app.reporter)
            .await),
        vec![reviews]
    );
    assert_eq!(
        ids(app
            .get("/api/v1/touchpoints?stage=awareness", &app.reporter)
            .await),
        vec![careers]
    );
    assert_eq!(
        ids(app
            .get(
                "/api/v1/touchpoints?stage=awareness&include_archived=true&kind=unexpected",
                &app.reporter
            )
            .await),
        vec![chance]
    );
}

#[tokio::test]
async fn pages_walk_every_row_once_even_while_rows_are_inserted() {
    let app = spawn_app().await;
    for n in 0..7 {
        app.touchpoint(
            &format!("Job ad {n}"),
            "employer_created",
            "job_board",
            "awareness",
        )
        .await;
    }

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/api/v1/touchpoints?limit=3&cursor={cursor}"),
            None => "/api/v1/touchpoints?limit=3".to_owned(),
        };
        let reply = app.get(&path, &app.reporter).await;
        let body = reply.assert_status(200).clone();
        pages += 1;
        for item in body["items"].as_array().unwrap() {
            seen.push(item["name"].as_str().unwrap().to_owned());
        }
        if pages == 1 {
            // A row inserted mid-walk appears at the end, never twice.
            app.touchpoint("Job ad late", "employer_created", "job_board", "awareness")
                .await;
        }
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }

    let mut expected: Vec<String> = (0..7).map(|n| format!("Job ad {n}")).collect();
    expected.push("Job ad late".to_owned());
    assert_eq!(seen, expected);
    assert_eq!(pages, 3);
}
