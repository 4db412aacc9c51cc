//! Alert rules on constructed data: a detractor's score alerts at once; a
//! real drop alerts once, the same drop on a small group (noise) does not,
//! a period below the minimum never does; alerts go out as webhooks.

use serde_json::{json, Value};

use crate::helpers::{spawn_app, TestApp};

/// Records scores on a touchpoint on one day, one candidate each, in one
/// batch: `(score, how many)`.
async fn scores(app: &TestApp, touchpoint: i64, day: &str, counts: &[(i32, usize)], tag: &str) {
    let mut items = Vec::new();
    for (score, count) in counts {
        for n in 0..*count {
            items.push(json!({
                "candidate_external_ref": format!("{tag}-{day}-{score}-{n}"),
                "touchpoint_id": touchpoint,
                "occurred_at": format!("{day}T10:00:00Z"),
                "score": score,
                "source": "candidate_survey",
            }));
        }
    }
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        Value::Array(items),
    )
    .await
    .assert_status(201);
}

#[tokio::test]
async fn a_detractors_score_alerts_as_it_is_recorded() {
    let app = spawn_app().await;
    let interview = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let careers = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let rule = app
        .post(
            "/api/v1/alert-rules",
            &app.admin,
            json!({"name": "Interview detractors", "kind": "detractor", "stages": ["interview"]}),
        )
        .await;
    let rule = rule.assert_status(201).clone();
    assert_eq!(rule["threshold"], 6);
    let rule_id = rule["id"].as_i64().unwrap();
    let lan = app.candidate("ATS-1").await;
    let low = app
        .encounter(lan, interview, "2026-11-20T09:00:00Z", Some(5))
        .await;
    let fine = app
        .encounter(lan, interview, "2026-11-20T10:00:00Z", Some(7))
        .await;
    app.encounter(lan, careers, "2026-11-20T11:00:00Z", Some(2))
        .await;
    app.encounter(lan, interview, "2026-11-20T12:00:00Z", None)
        .await;
    let listed = app.get("/api/v1/alerts", &app.reporter).await;
    let alerts = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let alert = &alerts[0];
    assert_eq!(alert["rule_id"], rule_id);
    assert_eq!(alert["encounter_id"], low);
    assert_eq!(alert["group"], format!("encounter:{low}"));
    assert_eq!(alert["status"], "open");
    assert_eq!(alert["period_start"], "2026-11-20");
    assert_eq!(alert["details"]["score"], 5);
    assert_eq!(alert["details"]["threshold"], 6);
    let id = alert["id"].as_i64().unwrap();

    // The lifecycle: acknowledged, resolved, and no way back.
    app.post(
        &format!("/api/v1/alerts/{id}/acknowledge"),
        &app.reporter,
        json!({}),
    )
    .await
    .assert_error(403, "forbidden", None);
    let acked = app
        .post(
            &format!("/api/v1/alerts/{id}/acknowledge"),
            &app.recruiter,
            json!({}),
        )
        .await;
    assert_eq!(acked.assert_status(200)["status"], "acknowledged");
    let resolved = app
        .post(
            &format!("/api/v1/alerts/{id}/resolve"),
            &app.recruiter,
            json!({}),
        )
        .await;
    assert_eq!(resolved.assert_status(200)["status"], "resolved");
    assert!(resolved.body["resolved_at"].is_string());
    app.post(
        &format!("/api/v1/alerts/{id}/acknowledge"),
        &app.recruiter,
        json!({}),
    )
    .await
    .assert_error(409, "alert_resolved", Some("id"));
    app.post(
        &format!("/api/v1/alerts/{id}/resolve"),
        &app.recruiter,
        json!({}),
    )
    .await
    .assert_status(200);
    // A score corrected down to a detractor's alerts too, once.
    for score in [4, 3] {
        app.patch(
            &format!("/api/v1/encounters/{fine}"),
            &app.recruiter,
            json!({"score": score}),
        )
        .await
        .assert_status(200);
    }
    let listed = app.get("/api/v1/alerts?status=open", &app.reporter).await;
    let open = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["encounter_id"], fine);
    assert_eq!(open[0]["details"]["score"], 4);
    assert!(open[0]["details"]["p_value"].is_null());
    let corrected = open[0]["id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/alerts/{corrected}/resolve"),
        &app.admin,
        json!({}),
    )
    .await
    .assert_status(200);
    // A disabled rule raises nothing; rules are for admins.
    app.patch(
        &format!("/api/v1/alert-rules/{rule_id}"),
        &app.admin,
        json!({"enabled": false}),
    )
    .await
    .assert_status(200);
    app.encounter(lan, interview, "2026-11-21T09:00:00Z", Some(1))
        .await;
    let listed = app.get("/api/v1/alerts?status=open", &app.reporter).await;
    assert_eq!(listed.assert_status(200)["items"], json!([]));
    app.post(
        "/api/v1/alert-rules",
        &app.recruiter,
        json!({"name": "x", "kind": "detractor"}),
    )
    .await
    .assert_error(403, "forbidden", None);
    // A touchpoint the organization does not have is refused, also another
    // organization's.
    let theirs = app
        .post(
            "/api/v1/touchpoints",
            &app.other_admin,
            json!({"name": "Theirs", "kind": "true", "channel": "review_site", "stage": "consideration"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    for ids in [json!([999_999]), json!([interview, theirs])] {
        app.post(
            "/api/v1/alert-rules",
            &app.admin,
            json!({"name": "x", "kind": "detractor", "touchpoint_ids": ids}),
        )
        .await
        .assert_error(422, "unknown_reference", Some("touchpoint_ids"));
        app.patch(
            &format!("/api/v1/alert-rules/{rule_id}"),
            &app.admin,
            json!({"touchpoint_ids": ids}),
        )
        .await
        .assert_error(422, "unknown_reference", Some("touchpoint_ids"));
    }
    app.get(&format!("/api/v1/alerts/{id}"), &app.other_admin)
        .await
        .assert_error(404, "not_found", None);
    app.post(
        &format!("/api/v1/alert-rules/{rule_id}/evaluate"),
        &app.admin,
        json!({}),
    )
    .await
    .assert_error(422, "validation_failed", Some("id"));
}

#[tokio::test]
async fn a_real_drop_alerts_once_and_noise_or_a_thin_period_does_not() {
    let app = spawn_app().await;
    let big = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let small = app
        .touchpoint("Offer call", "employer_created", "phone", "offer")
        .await;
    let thin = app
        .touchpoint("Phone screen", "employer_created", "phone", "screening")
        .await;
    // Baseline: the four ISO weeks from 2026-09-28; cNPS +20 everywhere.
    for week in ["2026-09-29", "2026-10-06", "2026-10-13", "2026-10-20"] {
        scores(&app, big, week, &[(10, 20), (8, 20), (3, 10)], "B").await;
        scores(&app, small, week, &[(9, 2), (8, 2), (2, 1)], "S").await;
        scores(&app, thin, week, &[(9, 20), (8, 20), (4, 10)], "T").await;
    }
    // The week of 2026-10-26: the same fall to cNPS −20 on the big and the
    // small touchpoint (100 and 5 scores); the thin one falls to −100, on
    // 4 scores, fewer than the rule's minimum of 5.
    scores(&app, big, "2026-10-27", &[(10, 20), (8, 40), (3, 40)], "B").await;
    scores(&app, small, "2026-10-27", &[(9, 1), (8, 2), (2, 2)], "S").await;
    scores(&app, thin, "2026-10-27", &[(2, 4)], "T").await;

    let rule = app
        .post(
            "/api/v1/alert-rules",
            &app.admin,
            json!({"name": "Weekly drops", "kind": "drop", "period": "week", "baseline_periods": 4, "min_scores": 5}),
        )
        .await;
    let rule_id = rule.assert_status(201)["id"].as_i64().unwrap();
    let evaluate = |as_of: &'static str| {
        let app = &app;
        async move {
            let reply = app
                .post(
                    &format!("/api/v1/alert-rules/{rule_id}/evaluate"),
                    &app.admin,
                    json!({"as_of": as_of}),
                )
                .await;
            reply.assert_status(200).clone()
        }
    };
    let first = evaluate("2026-11-02").await;
    assert_eq!(first["period_start"], "2026-10-26");
    assert_eq!(first["period_end"], "2026-11-02");
    assert_eq!(first["baseline_start"], "2026-09-28");
    assert_eq!(first["groups_tested"], 2, "the thin period is not tested");
    let opened = first["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 1, "{first}");
    let alert = &opened[0];
    assert_eq!(alert["group"], big.to_string());
    let details = &alert["details"];
    assert_eq!(details["scored"], 100);
    assert_eq!(details["cnps"], -20.0);
    assert_eq!(details["baseline_scored"], 200);
    assert_eq!(details["baseline_cnps"], 20.0);
    assert!(details["p_value"].as_f64().unwrap() < 0.05);
    assert!(details["z"].as_f64().unwrap() < 0.0);
    // With a minimum of 30, the small touchpoint is not tested either.
    app.patch(
        &format!("/api/v1/alert-rules/{rule_id}"),
        &app.admin,
        json!({"min_scores": 30}),
    )
    .await
    .assert_status(200);
    // Evaluated again (the schedule does it every hour): nothing new.
    let again = evaluate("2026-11-02").await;
    assert_eq!(again["opened"], json!([]));
    assert_eq!(
        again["groups_tested"], 1,
        "only the big touchpoint has 30 scores"
    );
    let all = app.get("/api/v1/alerts", &app.reporter).await;
    assert_eq!(all.assert_status(200)["items"].as_array().unwrap().len(), 1);

    // The next week recovers: the open drop alert is resolved.
    scores(&app, big, "2026-11-03", &[(10, 40), (8, 40), (3, 20)], "B").await;
    let next = evaluate("2026-11-09").await;
    assert_eq!(next["opened"], json!([]));
    let resolved = next["resolved"].as_array().unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["id"], alert["id"]);
    assert_eq!(resolved[0]["status"], "resolved");

    // An organization that suppresses groups under 150 scores gets no
    // alert about a period of 100, whatever the rule says.
    app.patch(
        "/api/v1/organization",
        &app.admin,
        json!({"min_group_size": 150}),
    )
    .await
    .assert_status(200);
    let suppressed = evaluate("2026-11-02").await;
    assert_eq!(suppressed["groups_tested"], 0);
}

#[tokio::test]
async fn a_slow_drift_is_found_by_the_cusum_where_the_z_test_is_not() {
    let app = spawn_app().await;
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    // Four weeks at cNPS +20 (the CUSUM's reference), then +10, +5, 0, 0:
    // the last week is not significantly below the four before it, but the
    // drift is sustained.
    let weeks = [
        ("2026-09-08", [40, 40, 20]),
        ("2026-09-15", [40, 40, 20]),
        ("2026-09-22", [40, 40, 20]),
        ("2026-09-29", [40, 40, 20]),
        ("2026-10-06", [35, 40, 25]),
        ("2026-10-13", [35, 35, 30]),
        ("2026-10-20", [30, 40, 30]),
        ("2026-10-27", [30, 40, 30]),
    ];
    for (day, [promoters, passives, detractors]) in weeks {
        scores(
            &app,
            touchpoint,
            day,
            &[(10, promoters), (8, passives), (3, detractors)],
            "D",
        )
        .await;
    }
    let rule = |cusum: bool| {
        let app = &app;
        async move {
            let reply = app
                .post(
                    "/api/v1/alert-rules",
                    &app.admin,
                    json!({"name": format!("drift {cusum}"), "kind": "drop", "cusum": cusum}),
                )
                .await;
            let id = reply.assert_status(201)["id"].as_i64().unwrap();
            let evaluation = app
                .post(
                    &format!("/api/v1/alert-rules/{id}/evaluate"),
                    &app.admin,
                    json!({"as_of": "2026-11-02"}),
                )
                .await;
            evaluation.assert_status(200).clone()
        }
    };
    let z_only = rule(false).await;
    assert_eq!(z_only["groups_tested"], 1);
    assert_eq!(z_only["opened"], json!([]), "the z test alone sees no drop");
    let with_cusum = rule(true).await;
    let opened = with_cusum["opened"].as_array().unwrap();
    assert_eq!(opened.len(), 1, "{with_cusum}");
    let details = &opened[0]["details"];
    assert_eq!(details["signal"], "cusum");
    assert!(details["p_value"].as_f64().unwrap() >= 0.05);
    assert!(details["cusum_lower"].as_f64().unwrap() > 4.0);
    assert_eq!(details["cusum_upper"], 0.0);
}
