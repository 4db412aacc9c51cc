//! The perception reports: hand-computed datasets for each report, then
//! random inserts, edits and deletes compared with a recount from scratch
//! (an implementation of the documented definitions written here, apart
//! from the service's rollups).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use serde_json::{json, Value};

use super::{
    helpers::{spawn_app, TestApp},
    recount,
};

const TREND: &str = "/api/v1/reports/perception-trend";
const IMPACT: &str = "/api/v1/reports/touchpoint-impact";
const SHIFT: &str = "/api/v1/reports/perception-shift";
const SUMMARY: &str = "/api/v1/reports/summary";

fn points(series: &Value) -> Vec<(String, i64, i64, Value, Value)> {
    series["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["bucket_start"].as_str().unwrap().to_owned(),
                p["encounters"].as_i64().unwrap(),
                p["scored"].as_i64().unwrap(),
                p["mean_score"].clone(),
                p["cnps"].clone(),
            )
        })
        .collect()
}

fn series<'a>(report: &'a Value, group: &str) -> &'a Value {
    report["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["group"] == group)
        .unwrap_or_else(|| panic!("no series {group} in {report}"))
}

/// Month, week and day edges: the last second of January, a Sunday and the
/// Monday after, and empty buckets in between.
#[tokio::test]
async fn trend_buckets_respect_calendar_edges_and_have_no_holes() {
    let app = spawn_app().await;
    let site = app
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
    let a = app.candidate("ATS-1").await;
    app.encounter(a, site, "2026-01-31T23:59:59Z", Some(10))
        .await;
    app.encounter(a, review, "2026-02-01T00:00:00Z", Some(5))
        .await;
    // 2026-03-01 is a Sunday, 2026-03-02 a Monday.
    app.encounter(a, site, "2026-03-01T23:59:59Z", Some(8))
        .await;
    app.encounter(a, review, "2026-03-02T00:00:00Z", None).await;

    let monthly = app
        .get(
            &format!("{TREND}?from=2026-01-01&to=2026-05-01&bucket=month"),
            &app.reporter,
        )
        .await;
    let body = monthly.assert_status(200);
    assert_eq!(body["bucket"], "month");
    assert_eq!(body["group_by"], "none");
    assert_eq!(body["from"], "2026-01-01");
    assert_eq!(body["to"], "2026-05-01");
    assert_eq!(body["series"].as_array().unwrap().len(), 1);
    let all = series(body, "all");
    assert_eq!(
        points(all),
        vec![
            ("2026-01-01".into(), 1, 1, json!(10.0), json!(100.0)),
            ("2026-02-01".into(), 1, 1, json!(5.0), json!(-100.0)),
            ("2026-03-01".into(), 2, 1, json!(8.0), json!(0.0)),
            ("2026-04-01".into(), 0, 0, Value::Null, Value::Null),
        ]
    );
    let january = &all["points"][0];
    assert_eq!(january["promoters"], 1);
    assert_eq!(january["passives"], 0);
    assert_eq!(january["detractors"], 0);

    let weekly = app
        .get(
            &format!("{TREND}?from=2026-02-23&to=2026-03-16&bucket=week&group_by=kind"),
            &app.reporter,
        )
        .await;
    let body = weekly.assert_status(200);
    let groups: Vec<&str> = body["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["group"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["employer_created", "true", "unexpected"]);
    assert_eq!(
        points(series(body, "employer_created")),
        vec![
            ("2026-02-23".into(), 1, 1, json!(8.0), json!(0.0)),
            ("2026-03-02".into(), 0, 0, Value::Null, Value::Null),
            ("2026-03-09".into(), 0, 0, Value::Null, Value::Null),
        ]
    );
    assert_eq!(points(series(body, "true"))[1].1, 1);
    assert!(points(series(body, "unexpected")).iter().all(|p| p.1 == 0));

    // A window starting mid-week: the bucket starts on its Monday, but only
    // days inside the window count.
    let daily = app
        .get(
            &format!("{TREND}?from=2026-03-01&to=2026-03-04&bucket=day&kind=true"),
            &app.reporter,
        )
        .await;
    let all = series(daily.assert_status(200), "all");
    assert_eq!(
        points(all)
            .iter()
            .map(|p| (p.0.as_str(), p.1))
            .collect::<Vec<_>>(),
        [("2026-03-01", 0), ("2026-03-02", 1), ("2026-03-03", 0)]
    );
    let mid_week = app
        .get(
            &format!("{TREND}?from=2026-03-02&to=2026-03-03&bucket=week"),
            &app.reporter,
        )
        .await;
    assert_eq!(
        points(series(mid_week.assert_status(200), "all"))[0],
        ("2026-03-02".into(), 1, 0, Value::Null, Value::Null)
    );
}

struct ImpactFixture {
    app: TestApp,
    t1: i64,
    t2: i64,
    t3: i64,
    e2: i64,
    e4: i64,
}

/// Candidate A: 6 at T1, an unscored T2, 9 at T3 (+3 shared by the T2 and
/// T3 encounters: 1.5 each), then 3 at T2 (−6 to that encounter).
/// Candidate B: 7 and 7 at T2 (a shift of 0). Candidate C: one score, 8 at
/// T1 (no shift). Another organization's data must never count.
async fn impact_fixture() -> ImpactFixture {
    let app = spawn_app().await;
    let t1 = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let t2 = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    let t3 = app
        .touchpoint("Chance meeting", "unexpected", "event", "consideration")
        .await;
    let (a, b, c) = (
        app.candidate("A").await,
        app.candidate("B").await,
        app.candidate("C").await,
    );
    app.encounter(a, t1, "2026-03-01T10:00:00Z", Some(6)).await;
    let e2 = app.encounter(a, t2, "2026-03-02T10:00:00Z", None).await;
    app.encounter(a, t3, "2026-03-03T10:00:00Z", Some(9)).await;
    let e4 = app.encounter(a, t2, "2026-03-04T10:00:00Z", Some(3)).await;
    app.encounter(b, t2, "2026-03-01T09:00:00Z", Some(7)).await;
    app.encounter(b, t2, "2026-03-02T09:00:00Z", Some(7)).await;
    app.encounter(c, t1, "2026-03-05T09:00:00Z", Some(8)).await;

    // The other organization: same days, other scores.
    let other = |path: &str, body: Value| {
        let app = &app;
        let path = path.to_owned();
        async move {
            app.post(&path, &app.other_admin, body)
                .await
                .assert_status(201)["id"]
                .as_i64()
                .unwrap()
        }
    };
    let ot = other(
        "/api/v1/touchpoints",
        json!({"name": "Careers site", "kind": "employer_created", "channel": "careers_site", "stage": "awareness"}),
    )
    .await;
    let oc = other("/api/v1/candidates", json!({"external_ref": "A"})).await;
    for (day, score) in [(1, 0), (2, 10), (3, 0)] {
        other(
            "/api/v1/encounters",
            json!({"candidate_id": oc, "touchpoint_id": ot, "occurred_at": format!("2026-03-0{day}T10:00:00Z"), "score": score}),
        )
        .await;
    }
    ImpactFixture {
        app,
        t1,
        t2,
        t3,
        e2,
        e4,
    }
}

fn impact_rows(report: &Value) -> Vec<Value> {
    report["touchpoints"].as_array().unwrap().clone()
}

#[tokio::test]
async fn touchpoint_impact_attributes_shifts_as_documented() {
    let f = impact_fixture().await;
    let app = &f.app;
    let url = format!("{IMPACT}?from=2026-03-01&to=2026-04-01");
    let report = app.get(&url, &app.reporter).await;
    let rows = impact_rows(report.assert_status(200));
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r["touchpoint_id"].as_i64().unwrap())
        .collect();
    // T2 hurts most (−1.5), then T3 (+1.5), then T1 without attributions.
    assert_eq!(ids, [f.t2, f.t3, f.t1]);
    assert_eq!(
        rows[0],
        json!({
            "touchpoint_id": f.t2, "name": "Glassdoor", "kind": "true",
            "channel": "review_site", "stage": "consideration",
            "encounters": 4, "candidates": 2, "scored": 3, "suppressed": false, "mean_score": 5.67,
            "cnps": -33.3, "attributed_shift_sum": -4.5, "attributions": 3,
            "mean_attributed_shift": -1.5,
            // Scores 3, 7, 7: the t interval [-0.07, 11.40], within 0-10;
            // the adjusted-Wald interval of 0 P, 1 D of 3.
            "mean_score_low": 0.0, "mean_score_high": 10.0,
            "cnps_low": -66.6, "cnps_high": 33.2,
            // Shifts +1.5, -6, 0: [-11.359, 8.359] within -10..10, and a t
            // test against 0 far from significant.
            "mean_attributed_shift_low": -10.0, "mean_attributed_shift_high": 8.359,
            "mean_attributed_shift_p_value": rows[0]["mean_attributed_shift_p_value"],
            "significant": false,
        })
    );
    let p = rows[0]["mean_attributed_shift_p_value"].as_f64().unwrap();
    assert!((p - 0.579_916).abs() < 1e-6, "p = {p}");
    // One attribution: no interval, no test, no decision.
    assert_eq!(rows[1]["attributions"], 1);
    assert!(rows[1]["mean_attributed_shift_low"].is_null() && rows[1]["significant"].is_null());
    assert_eq!(rows[1]["attributed_shift_sum"], 1.5);
    assert_eq!(rows[1]["candidates"], 1);
    assert_eq!(rows[1]["cnps"], 100.0);
    assert_eq!(rows[2]["encounters"], 2);
    assert_eq!(rows[2]["candidates"], 2);
    assert_eq!(rows[2]["cnps"], -50.0);
    assert_eq!(rows[2]["attributions"], 0);
    assert_eq!(rows[2]["mean_attributed_shift"], Value::Null);

    // A window of one day counts only that day's encounters.
    let one_day = app
        .get(
            &format!("{IMPACT}?from=2026-03-02&to=2026-03-03"),
            &app.reporter,
        )
        .await;
    let rows = impact_rows(one_day.assert_status(200));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["encounters"], 2);
    assert_eq!(rows[0]["candidates"], 2);
    assert_eq!(rows[0]["attributed_shift_sum"], 1.5);

    // Editing the score 3 to 9 turns −6 into +6; deleting the unscored
    // encounter gives T3 the whole +3.
    app.patch(
        &format!("/api/v1/encounters/{}", f.e4),
        &app.recruiter,
        json!({"score": 9}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/encounters/{}", f.e2), &app.recruiter)
        .await
        .assert_status(204);
    let rows = impact_rows(app.get(&url, &app.reporter).await.assert_status(200));
    let by_id: HashMap<i64, &Value> = rows
        .iter()
        .map(|r| (r["touchpoint_id"].as_i64().unwrap(), r))
        .collect();
    assert_eq!(by_id[&f.t3]["attributed_shift_sum"], 3.0);
    assert_eq!(by_id[&f.t2]["encounters"], 3);
    assert_eq!(by_id[&f.t2]["attributed_shift_sum"], 0.0);
    assert_eq!(by_id[&f.t2]["attributions"], 2);
    assert_eq!(by_id[&f.t2]["cnps"], 33.3);
}

#[tokio::test]
async fn perception_shift_counts_candidates_with_two_scores_in_the_window() {
    let f = impact_fixture().await;
    let app = &f.app;
    let report = app
        .get(
            &format!("{SHIFT}?from=2026-03-01&to=2026-04-01"),
            &app.reporter,
        )
        .await;
    let body = report.assert_status(200);
    let all = &body["groups"][0];
    assert_eq!(all["group"], "all");
    // A: 6 -> 3 (−3); B: 7 -> 7 (0); C has one score.
    assert_eq!(all["candidates"], 2);
    assert_eq!(all["improved"], 0);
    assert_eq!(all["unchanged"], 1);
    assert_eq!(all["declined"], 1);
    assert_eq!(all["mean_shift"], -1.5);
    let histogram = all["histogram"].as_array().unwrap();
    assert_eq!(histogram.len(), 21);
    assert_eq!(histogram[0]["shift"], -10);
    assert_eq!(histogram[7], json!({"shift": -3, "candidates": 1}));
    assert_eq!(histogram[10], json!({"shift": 0, "candidates": 1}));

    // Without A's first day, A goes 9 -> 3; B has one score left.
    let by_kind = app
        .get(
            &format!("{SHIFT}?from=2026-03-02&to=2026-04-01&group_by=kind"),
            &app.reporter,
        )
        .await;
    let body = by_kind.assert_status(200);
    let groups: Vec<(&str, i64, Value)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["group"].as_str().unwrap(),
                g["candidates"].as_i64().unwrap(),
                g["mean_shift"].clone(),
            )
        })
        .collect();
    // A's latest score is at T2, a `true` touchpoint.
    assert_eq!(
        groups,
        [
            ("employer_created", 0, Value::Null),
            ("true", 1, json!(-6.0)),
            ("unexpected", 0, Value::Null),
        ]
    );
    let by_stage = app
        .get(
            &format!("{SHIFT}?from=2026-03-01&to=2026-04-01&group_by=stage"),
            &app.reporter,
        )
        .await;
    let body = by_stage.assert_status(200);
    assert_eq!(body["groups"].as_array().unwrap().len(), 8);
    let consideration = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "consideration")
        .unwrap();
    assert_eq!(consideration["candidates"], 2);
}

#[tokio::test]
async fn summary_compares_with_the_previous_window() {
    let f = impact_fixture().await;
    let app = &f.app;
    // The previous window (2026-02-22 .. 2026-03-01) has one promoter.
    let d = app.candidate("D").await;
    app.encounter(d, f.t1, "2026-02-28T12:00:00Z", Some(10))
        .await;
    let report = app
        .get(
            &format!("{SUMMARY}?from=2026-03-01&to=2026-03-08"),
            &app.reporter,
        )
        .await;
    let body = report.assert_status(200);
    assert_eq!(body["from"], "2026-03-01");
    assert_eq!(body["previous_from"], "2026-02-22");
    assert_eq!(body["candidates"], 3);
    assert_eq!(body["encounters"], 7);
    assert_eq!(body["scored"], 6);
    // Scores 6, 9, 3, 7, 7, 8: one promoter, three passives, two detractors.
    assert_eq!(body["cnps"], -16.7);
    assert_eq!(body["mean_score"], 6.67);
    assert_eq!(body["previous_cnps"], 100.0);
    assert_eq!(body["cnps_change"], -116.7);
    // One answer against six: z = -0.818 on the adjusted figures, p = 0.413.
    let p = body["cnps_change_p_value"].as_f64().unwrap();
    assert!((p - 0.413_268).abs() < 1e-6, "p = {p}");
    assert_eq!(body["cnps_change_significant"], false);
    assert_eq!(
        (body["cnps_low"].clone(), body["cnps_high"].clone()),
        (json!(-56.7), json!(34.5))
    );
    assert_eq!(
        (
            body["previous_cnps_low"].clone(),
            body["previous_cnps_high"].clone()
        ),
        (json!(-48.5), json!(98.5))
    );
    // Glassdoor (-1.5 over three attributions, p = 0.58) is the only
    // touchpoint tested, the chance meeting's one attribution cannot be:
    // neither is a mover, however large its mean.
    assert_eq!(body["touchpoints_tested"], 1);
    assert_eq!(body["touchpoints_significant"], 0);
    assert_eq!(body["most_positive"], json!([]));
    assert_eq!(body["most_negative"], json!([]));

    // An empty window: counts are zero, cNPS undefined.
    let empty = app
        .get(
            &format!("{SUMMARY}?from=2025-01-01&to=2025-02-01"),
            &app.reporter,
        )
        .await;
    let body = empty.assert_status(200);
    assert_eq!(body["candidates"], 0);
    assert_eq!(body["cnps"], Value::Null);
    assert_eq!(body["cnps_change"], Value::Null);
    assert_eq!(body["most_negative"], json!([]));
}

#[tokio::test]
async fn bad_report_parameters_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        (format!("{TREND}?from=2026-03-01&to=2026-03-01"), "to"),
        (format!("{TREND}?from=2026-03-02&to=2026-03-01"), "to"),
        (
            format!("{TREND}?from=2020-01-01&to=2026-01-01&bucket=day"),
            "bucket",
        ),
        (
            format!("{TREND}?from=2026-01-01&to=2026-02-01&bucket=year"),
            "bucket",
        ),
        (
            format!("{TREND}?from=2026-01-01&to=2026-02-01&group_by=planet"),
            "group_by",
        ),
        (
            format!("{TREND}?from=2026-01-01&to=2026-02-01&kind=nice"),
            "kind",
        ),
        (format!("{TREND}?to=2026-02-01"), "from"),
        (format!("{TREND}?from=yesterday&to=2026-02-01"), "from"),
        (format!("{IMPACT}?from=2026-01-01"), "to"),
        (format!("{IMPACT}?from=2026-02-01&to=2026-01-01"), "to"),
        (
            format!("{SHIFT}?from=2026-01-01&to=2026-02-01&group_by=channel"),
            "group_by",
        ),
        (format!("{SUMMARY}?from=2026-02-01&to=2026-02-01"), "to"),
        (format!("{SUMMARY}?from=0001-01-01&to=9000-01-01"), "from"),
        (format!("{IMPACT}?from=-0001-01-01&to=2026-01-01"), "from"),
        (format!("{IMPACT}?from=2026-01-01&to=+10000-01-01"), "to"),
    ] {
        let reply = app.get(&query, &app.reporter).await;
        reply.assert_error(422, "validation_failed", Some(field));
    }
    // 1,000 daily buckets are allowed, 1,001 are not.
    app.get(
        &format!("{TREND}?from=2024-01-01&to=2026-09-27&bucket=day"),
        &app.reporter,
    )
    .await
    .assert_status(200);
    app.get(
        &format!("{TREND}?from=2024-01-01&to=2026-09-28&bucket=day"),
        &app.reporter,
    )
    .await
    .assert_error(422, "validation_failed", Some("bucket"));
}

// ---------------------------------------------------------------------------
// Reports against a recount
// ---------------------------------------------------------------------------

/// Random creates, edits (score, time, touchpoint) and deletes over three
/// months, then every report against a recount.
#[tokio::test]
async fn reports_equal_a_recount_after_random_inserts_edits_and_deletes() {
    let app = spawn_app().await;
    let mut rng = StdRng::seed_from_u64(20261123);
    let kinds = [
        ("employer_created", "interview", "interview"),
        ("true", "review_site", "consideration"),
        ("unexpected", "event", "awareness"),
        ("employer_created", "careers_site", "awareness"),
        ("true", "word_of_mouth", "alumni"),
    ];
    let mut touchpoints = HashMap::new();
    for (n, (kind, channel, stage)) in kinds.iter().enumerate() {
        let id = app
            .touchpoint(&format!("Touchpoint {n}"), kind, channel, stage)
            .await;
        touchpoints.insert(id, *kind);
    }
    let touchpoint_ids: Vec<i64> = touchpoints.keys().copied().collect();
    let mut candidates = Vec::new();
    for n in 0..8 {
        candidates.push(app.candidate(&format!("ATS-{n}")).await);
    }
    let start = "2026-01-01T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
    let random_time = |rng: &mut StdRng| {
        // Whole hours over 90 days, so equal timestamps happen too.
        start + Duration::hours(rng.random_range(0..90 * 24))
    };
    let random_score = |rng: &mut StdRng| rng.random_bool(0.6).then(|| rng.random_range(0..=10));
    let mut live: Vec<i64> = Vec::new();
    for _ in 0..160 {
        let action = rng.random_range(0..10);
        if action < 6 || live.len() < 5 {
            let candidate = candidates[rng.random_range(0..candidates.len())];
            let touchpoint = touchpoint_ids[rng.random_range(0..touchpoint_ids.len())];
            let at = random_time(&mut rng).to_rfc3339();
            let score = random_score(&mut rng);
            live.push(app.encounter(candidate, touchpoint, &at, score).await);
        } else if action < 9 {
            let id = live[rng.random_range(0..live.len())];
            let change = match rng.random_range(0..3) {
                0 => json!({"score": random_score(&mut rng)}),
                1 => json!({"occurred_at": random_time(&mut rng).to_rfc3339()}),
                _ => {
                    json!({"touchpoint_id": touchpoint_ids[rng.random_range(0..touchpoint_ids.len())]})
                }
            };
            app.patch(&format!("/api/v1/encounters/{id}"), &app.recruiter, change)
                .await
                .assert_status(200);
        } else {
            let id = live.swap_remove(rng.random_range(0..live.len()));
            app.delete(&format!("/api/v1/encounters/{id}"), &app.recruiter)
                .await
                .assert_status(204);
        }
    }

    let api = app.api(&app.reporter);
    let listed_kinds = recount::touchpoint_kinds(&api).await;
    let created_kinds: HashMap<i64, String> = touchpoints
        .iter()
        .map(|(id, kind)| (*id, (*kind).to_owned()))
        .collect();
    assert_eq!(listed_kinds, created_kinds);
    let rows = recount::encounters(&api).await;
    assert_eq!(rows.len(), live.len());
    // Whole months; a whole month with days around it; days of one month.
    recount::assert_reports_match_recount(
        &api,
        &[
            ("2026-01-01", "2026-04-01"),
            ("2026-01-20", "2026-03-03"),
            ("2026-02-03", "2026-02-20"),
        ],
    )
    .await;
}

/// Rollups rebuilt from scratch (what the service does at start when their
/// definition changed) equal the ones maintained write by write.
#[tokio::test]
async fn rebuilt_rollups_equal_the_maintained_ones() {
    use sea_orm::{ConnectionTrait, Statement};
    let f = impact_fixture().await;
    let app = &f.app;
    app.delete(&format!("/api/v1/encounters/{}", f.e2), &app.recruiter)
        .await
        .assert_status(204);
    let urls = [
        format!("{IMPACT}?from=2026-03-01&to=2026-04-01"),
        format!("{TREND}?from=2026-02-01&to=2026-04-01&bucket=week&group_by=touchpoint"),
        format!("{SUMMARY}?from=2026-03-02&to=2026-03-05"),
    ];
    let mut before = Vec::new();
    for url in &urls {
        before.push(app.get(url, &app.reporter).await.assert_status(200).clone());
    }
    let backend = app.db.get_database_backend();
    for sql in [
        "UPDATE perception_daily SET encounters = 999",
        "DELETE FROM touchpoint_reach",
        "UPDATE organizations SET rollup_version = 0",
    ] {
        app.db
            .execute_raw(Statement::from_string(backend, sql))
            .await
            .unwrap();
    }
    touchpoint_tracker::domain::analytics::rebuild::rebuild_outdated(&app.db)
        .await
        .unwrap();
    for (url, expected) in urls.iter().zip(before) {
        let after = app.get(url, &app.reporter).await;
        assert_eq!(after.assert_status(200), &expected, "{url}");
    }
}
