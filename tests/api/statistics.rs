//! How sure the reports are: intervals, tests and the perception gap on
//! small datasets whose figures were computed by hand (and checked with
//! scipy: `stats.ttest_1samp(...).confidence_interval()`,
//! `stats.ttest_ind(..., equal_var=False)`, `stats.norm`). The Python client
//! suite checks the same on a random dataset against scipy and statsmodels.

use serde_json::{json, Value};

use super::helpers::{spawn_app, TestApp};

const TREND: &str = "/api/v1/reports/perception-trend";
const IMPACT: &str = "/api/v1/reports/touchpoint-impact";
const SUMMARY: &str = "/api/v1/reports/summary";
const GAP: &str = "/api/v1/reports/perception-gap";
const ORGANIZATION: &str = "/api/v1/organization";

/// Logs a scored encounter from `source` as the recruiter.
async fn scored(
    app: &TestApp,
    candidate: i64,
    touchpoint: i64,
    at: &str,
    score: i32,
    source: &str,
) {
    app.post(
        "/api/v1/encounters",
        &app.recruiter,
        json!({"candidate_id": candidate, "touchpoint_id": touchpoint,
               "occurred_at": at, "score": score, "source": source}),
    )
    .await
    .assert_status(201);
}

#[track_caller]
fn assert_ends(body: &Value, figure: &str, low: f64, high: f64) {
    assert_eq!(
        (
            &body[format!("{figure}_low")],
            &body[format!("{figure}_high")]
        ),
        (&json!(low), &json!(high)),
        "{figure} in {body}"
    );
}

#[track_caller]
fn assert_no_interval(body: &Value, figure: &str) {
    assert!(
        body[format!("{figure}_low")].is_null() && body[format!("{figure}_high")].is_null(),
        "{figure} should have no interval in {body}"
    );
}

/// Ten scores: 10 10 9 9 9 8 7 5 3 0. cNPS 20.0 with the adjusted-Wald
/// interval [-30.3, 61.1]; mean 7.00 with the t interval [4.62, 9.38].
/// One score has neither interval.
#[tokio::test]
async fn every_figure_has_its_interval_computed_by_hand() {
    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    for (n, score) in [10, 10, 9, 9, 9, 8, 7, 5, 3, 0].into_iter().enumerate() {
        let candidate = app.candidate(&format!("ATS-{n}")).await;
        app.encounter(candidate, site, "2026-09-10T10:00:00Z", Some(score))
            .await;
    }
    let lone = app.candidate("ATS-LONE").await;
    app.encounter(lone, site, "2026-10-10T10:00:00Z", Some(8))
        .await;

    let window = "from=2026-09-01&to=2026-10-01";
    let summary = app.get(&format!("{SUMMARY}?{window}"), &app.reporter).await;
    let summary = summary.assert_status(200);
    assert_eq!(summary["cnps"], 20.0);
    assert_ends(summary, "cnps", -30.3, 61.1);
    assert_eq!(summary["mean_score"], 7.0);
    assert_ends(summary, "mean_score", 4.62, 9.38);

    let trend = app
        .get(
            &format!("{TREND}?from=2026-09-01&to=2026-11-01"),
            &app.reporter,
        )
        .await;
    let points = trend.assert_status(200)["series"][0]["points"].clone();
    assert_ends(&points[0], "cnps", -30.3, 61.1);
    assert_ends(&points[0], "mean_score", 4.62, 9.38);
    // October: one passive score. Its cNPS has an interval (adjusted-Wald
    // needs no spread: 0 ± 1.96·100·√(0.375/4) = ±60.0), its mean none.
    assert_eq!(points[1]["cnps"], 0.0);
    assert_ends(&points[1], "cnps", -60.0, 60.0);
    assert_no_interval(&points[1], "mean_score");

    let impact = app.get(&format!("{IMPACT}?{window}"), &app.reporter).await;
    let row = &impact.assert_status(200)["touchpoints"][0];
    assert_ends(row, "cnps", -30.3, 61.1);
    assert_ends(row, "mean_score", 4.62, 9.38);
    // First scores of ten candidates: nothing attributed, nothing tested.
    assert_no_interval(row, "mean_attributed_shift");
    assert!(row["significant"].is_null() && row["mean_attributed_shift_p_value"].is_null());
}

/// October: 20 candidates score 8 (cNPS 0). November: the same 20 score 10
/// at the interview (+2 each, no spread), and two more candidates move by
/// +10 and -1 at the offer call (mean +4.5, p = 0.563); ten more fall from
/// 10 to 5 at a rejection e-mail (-5 each). The cNPS change is significant;
/// the interview's and the rejection's shifts are, the offer call's is not,
/// though its mean is the largest: it is no mover.
#[tokio::test]
async fn only_significant_changes_and_touchpoints_are_flagged() {
    let app = spawn_app().await;
    let site = app
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
    let offer = app
        .touchpoint("Offer call", "employer_created", "phone", "offer")
        .await;
    for n in 0..20 {
        let candidate = app.candidate(&format!("C-{n}")).await;
        app.encounter(candidate, site, "2026-10-15T10:00:00Z", Some(8))
            .await;
        app.encounter(candidate, interview, "2026-11-10T10:00:00Z", Some(10))
            .await;
    }
    let rejection = app
        .touchpoint("Rejection e-mail", "employer_created", "email", "alumni")
        .await;
    for n in 0..10 {
        let candidate = app.candidate(&format!("F-{n}")).await;
        app.encounter(candidate, site, "2026-11-01T10:00:00Z", Some(10))
            .await;
        app.encounter(candidate, rejection, "2026-11-05T10:00:00Z", Some(5))
            .await;
    }
    for (n, (first, then)) in [(0, 10), (10, 9)].into_iter().enumerate() {
        let candidate = app.candidate(&format!("E-{n}")).await;
        app.encounter(candidate, site, "2026-11-02T10:00:00Z", Some(first))
            .await;
        app.encounter(candidate, offer, "2026-11-03T10:00:00Z", Some(then))
            .await;
    }

    // The summary of November against the 30 days before it.
    let summary = app
        .get(
            &format!("{SUMMARY}?from=2026-11-01&to=2026-12-01"),
            &app.reporter,
        )
        .await;
    let summary = summary.assert_status(200);
    assert_eq!(summary["previous_scored"], 20);
    assert_eq!(summary["previous_cnps"], 0.0);
    assert_ends(summary, "previous_cnps", -10.4, 10.4);
    // 33 promoters and 11 detractors of 44: z = 3.4165, p = 0.000634.
    assert_eq!(summary["cnps"], 50.0);
    assert_ends(summary, "cnps", 22.1, 71.6);
    let p = summary["cnps_change_p_value"].as_f64().unwrap();
    assert!((p - 0.000_634_389).abs() < 1e-9, "p = {p}");
    assert_eq!(summary["cnps_change_significant"], true);
    assert_eq!(summary["touchpoints_tested"], 3);
    assert_eq!(summary["touchpoints_significant"], 2);
    let movers = |list: &str| -> Vec<i64> {
        summary[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["touchpoint_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(movers("most_positive"), [interview]);
    assert_eq!(movers("most_negative"), [rejection]);

    let impact = app
        .get(
            &format!("{IMPACT}?from=2026-11-01&to=2026-12-01"),
            &app.reporter,
        )
        .await;
    let rows = impact.assert_status(200)["touchpoints"]
        .as_array()
        .unwrap()
        .clone();
    let row = |id: i64| rows.iter().find(|r| r["touchpoint_id"] == id).unwrap();
    assert_eq!(row(interview)["mean_attributed_shift"], 2.0);
    assert_ends(row(interview), "mean_attributed_shift", 2.0, 2.0);
    assert_eq!(row(interview)["mean_attributed_shift_p_value"], 0.0);
    assert_eq!(row(interview)["significant"], true);
    assert_eq!(row(offer)["mean_attributed_shift"], 4.5);
    // The t interval of +10 and -1, [-65.4, 74.4], clipped to the shifts' range.
    assert_ends(row(offer), "mean_attributed_shift", -10.0, 10.0);
    let p = row(offer)["mean_attributed_shift_p_value"]
        .as_f64()
        .unwrap();
    assert!((p - 0.563_451).abs() < 1e-5, "p = {p}");
    assert_eq!(row(offer)["significant"], false);
    assert!(row(site)["significant"].is_null());

    // The trend tests each month against the one before only when asked.
    let path = format!("{TREND}?from=2026-10-01&to=2027-01-01");
    let plain = app.get(&path, &app.reporter).await;
    let plain = plain.assert_status(200);
    assert_eq!(plain["compare_to"], "none");
    for point in plain["series"][0]["points"].as_array().unwrap() {
        assert!(
            point["cnps_change_p_value"].is_null() && point["cnps_change_significant"].is_null()
        );
    }
    let compared = app
        .get(&format!("{path}&compare_to=previous_bucket"), &app.reporter)
        .await;
    let compared = compared.assert_status(200);
    assert_eq!(compared["compare_to"], "previous_bucket");
    let points = compared["series"][0]["points"].as_array().unwrap();
    // September, the month before October, has no scores; December has no
    // cNPS.
    assert!(points[0]["cnps_change_p_value"].is_null());
    // October's 20 passives against November's 44 scores: the summary's test.
    assert_eq!(points[1]["cnps_change_significant"], true);
    let p = points[1]["cnps_change_p_value"].as_f64().unwrap();
    assert!((p - 0.000_634_389).abs() < 1e-9, "p = {p}");
    assert!(points[2]["cnps_change_p_value"].is_null());
    assert!(points[2]["cnps_change_significant"].is_null());
    // A window that starts in November tests its first point against
    // October all the same, read for the purpose, and by week too.
    let november = app
        .get(
            &format!("{TREND}?from=2026-11-01&to=2026-12-01&compare_to=previous_bucket"),
            &app.reporter,
        )
        .await;
    let first = &november.assert_status(200)["series"][0]["points"][0];
    assert_eq!(first["bucket_start"], "2026-11-01");
    let p = first["cnps_change_p_value"].as_f64().unwrap();
    assert!((p - 0.000_634_389).abs() < 1e-9, "p = {p}");
    // The week of Monday 2026-11-09 holds the interview's 20 promoters; the
    // week before it, from Monday 2026-11-02, 3 promoters and 11 detractors
    // of 14 (the offer-call pairs and the rejections): z = 6.093.
    let weeks = app
        .get(
            &format!(
                "{TREND}?from=2026-11-10&to=2026-11-16&bucket=week&compare_to=previous_bucket"
            ),
            &app.reporter,
        )
        .await;
    let week = &weeks.assert_status(200)["series"][0]["points"][0];
    assert_eq!(week["bucket_start"], "2026-11-09");
    let p = week["cnps_change_p_value"].as_f64().unwrap();
    assert!((p - 1.106_223e-9).abs() < 1e-14, "p = {p}");
}

/// Ten candidates, each observed by a recruiter (9 9 10 8 9 10 9 8 9 10)
/// and answering a survey themselves (5 6 4 7 5 6 5 4 6 5) after the same
/// interview; a review site has review imports only. Recruiters think
/// candidates 3.80 points happier than they say: Welch's interval [3.00,
/// 4.60], p = 1.58e-8.
#[tokio::test]
async fn the_perception_gap_compares_recruiters_with_candidates() {
    let app = spawn_app().await;
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
    let observed = [9, 9, 10, 8, 9, 10, 9, 8, 9, 10];
    let answered = [5, 6, 4, 7, 5, 6, 5, 4, 6, 5];
    for n in 0..10 {
        let candidate = app.candidate(&format!("ATS-{n}")).await;
        scored(
            &app,
            candidate,
            interview,
            "2026-11-10T10:00:00Z",
            observed[n],
            "recruiter_observation",
        )
        .await;
        scored(
            &app,
            candidate,
            interview,
            "2026-11-11T10:00:00Z",
            answered[n],
            "candidate_survey",
        )
        .await;
        scored(
            &app,
            candidate,
            reviews,
            "2026-11-20T10:00:00Z",
            3,
            "review_import",
        )
        .await;
    }
    let window = "from=2026-11-01&to=2026-12-01";

    let report = app
        .get(&format!("{GAP}?{window}&group_by=kind"), &app.reporter)
        .await;
    let report = report.assert_status(200);
    assert_eq!(report["group_by"], "kind");
    let groups = report["groups"].as_array().unwrap();
    let names: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["employer_created", "true", "unexpected"]);
    let employer = &groups[0];
    let sources: Vec<&str> = employer["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        [
            "recruiter_observation",
            "candidate_survey",
            "review_import",
            "other"
        ]
    );
    let recruiters = &employer["sources"][0];
    assert_eq!(
        (
            recruiters["scored"].clone(),
            recruiters["mean_score"].clone()
        ),
        (json!(10), json!(9.1))
    );
    assert_ends(recruiters, "mean_score", 8.57, 9.63);
    assert_eq!(recruiters["cnps"], 80.0);
    assert_ends(recruiters, "cnps", 29.3, 93.8);
    let candidates = &employer["sources"][1];
    assert_eq!(candidates["mean_score"], 5.3);
    assert_ends(candidates, "mean_score", 4.62, 5.98);
    assert_eq!(candidates["cnps"], -90.0);
    assert_ends(candidates, "cnps", -100.0, -38.1);
    assert_eq!(employer["sources"][2]["scored"], 0);
    assert!(employer["sources"][2]["mean_score"].is_null());
    assert_eq!(employer["mean_score_gap"], 3.8);
    assert_ends(employer, "mean_score_gap", 3.0, 4.6);
    let p = employer["mean_score_gap_p_value"].as_f64().unwrap();
    assert!((p - 1.5767e-8).abs() < 1e-11, "p = {p}");
    assert_eq!(employer["gap_significant"], true);
    assert_eq!(employer["cnps_gap"], 170.0);
    // Review imports only: their figures, and no gap.
    let review = &groups[1];
    assert_eq!(review["sources"][2]["mean_score"], 3.0);
    assert!(review["mean_score_gap"].is_null() && review["gap_significant"].is_null());
    assert_no_interval(review, "mean_score_gap");

    // One group in all, and one per touchpoint with encounters, by id.
    let all = app.get(&format!("{GAP}?{window}"), &app.reporter).await;
    let all = all.assert_status(200);
    assert_eq!(all["group_by"], "none");
    assert_eq!(all["groups"][0]["group"], "all");
    assert_eq!(all["groups"][0]["mean_score_gap"], 3.8);
    let by_touchpoint = app
        .get(
            &format!("{GAP}?{window}&group_by=touchpoint"),
            &app.reporter,
        )
        .await;
    let ids: Vec<String> = by_touchpoint.assert_status(200)["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, [interview.to_string(), reviews.to_string()]);

    // Another organization sees none of it.
    let other = app.get(&format!("{GAP}?{window}"), &app.other_admin).await;
    assert_eq!(
        other.assert_status(200)["groups"][0]["sources"][0]["scored"],
        0
    );
    app.get(&format!("{GAP}?{window}&group_by=channel"), &app.reporter)
        .await
        .assert_error(422, "validation_failed", Some("group_by"));
    app.get(
        &format!("{GAP}?from=2026-12-01&to=2026-11-01"),
        &app.reporter,
    )
    .await
    .assert_error(422, "validation_failed", Some("to"));

    // Ten scores per source, eleven required: every figure computed from
    // scores is withheld, the gap and every interval with them.
    app.patch(ORGANIZATION, &app.admin, json!({"min_group_size": 11}))
        .await
        .assert_status(200);
    let suppressed = app
        .get(&format!("{GAP}?{window}&group_by=kind"), &app.reporter)
        .await;
    let employer = suppressed.assert_status(200)["groups"][0].clone();
    for source in employer["sources"].as_array().unwrap() {
        assert_eq!(source["suppressed"], true, "{source}");
        assert!(source["mean_score"].is_null() && source["cnps"].is_null());
        assert_no_interval(source, "mean_score");
        assert_no_interval(source, "cnps");
    }
    assert_eq!(employer["sources"][0]["scored"], 10);
    for field in [
        "mean_score_gap",
        "mean_score_gap_p_value",
        "gap_significant",
        "cnps_gap",
    ] {
        assert!(employer[field].is_null(), "{field} in {employer}");
    }
    assert_no_interval(&employer, "mean_score_gap");
}
