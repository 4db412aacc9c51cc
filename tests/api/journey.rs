use serde_json::json;

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
