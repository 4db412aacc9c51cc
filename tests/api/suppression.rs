//! Small-group suppression (`min_group_size` on the organization): every
//! report withholds the figures of a point or row backed by too few scored
//! encounters (perception shift: too few candidates), keeps its counts and
//! says `suppressed: true`.

use serde_json::{json, Value};

use super::helpers::{spawn_app, TestApp};

const ORGANIZATION: &str = "/api/v1/organization";
const TREND: &str = "/api/v1/reports/perception-trend";
const IMPACT: &str = "/api/v1/reports/touchpoint-impact";
const SHIFT: &str = "/api/v1/reports/perception-shift";
const SUMMARY: &str = "/api/v1/reports/summary";

/// The threshold the tests set: the large group has exactly this many
/// scored encounters (and candidates, and attributions), the small one one
/// fewer.
const N: i64 = 3;

/// What a suppressed trend point, impact row or summary withholds.
const SCORE_FIGURES: [&str; 5] = ["mean_score", "cnps", "promoters", "passives", "detractors"];
const SHIFT_FIGURES: [&str; 2] = ["attributed_shift_sum", "mean_attributed_shift"];
const SHIFT_COUNTS: [&str; 4] = ["improved", "unchanged", "declined", "mean_shift"];

struct Fixture {
    app: TestApp,
    large: i64,
    small: i64,
}

/// On 2026-02-10 every candidate is scored at a `true` touchpoint: L1 to
/// L3 give 5, S1 and S2 give 9. In March, L1 to L3 score 9 at "Large"
/// (`employer_created`) on 2026-03-02: 3 scored encounters, +4 each. S1
/// and S2 score 1 at "Small" (`unexpected`) on 2026-03-03: 2 scored
/// encounters, −8 each; S3 meets "Small" three times without a score on
/// 2026-03-04, which does not make the group larger.
async fn fixture() -> Fixture {
    let app = spawn_app().await;
    let baseline = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    let large = app
        .touchpoint("Large", "employer_created", "interview", "interview")
        .await;
    let small = app
        .touchpoint("Small", "unexpected", "event", "interview")
        .await;
    for n in 1..=N {
        let candidate = app.candidate(&format!("L{n}")).await;
        app.encounter(candidate, baseline, "2026-02-10T10:00:00Z", Some(5))
            .await;
        app.encounter(candidate, large, "2026-03-02T10:00:00Z", Some(9))
            .await;
    }
    for n in 1..N {
        let candidate = app.candidate(&format!("S{n}")).await;
        app.encounter(candidate, baseline, "2026-02-10T11:00:00Z", Some(9))
            .await;
        app.encounter(candidate, small, "2026-03-03T10:00:00Z", Some(1))
            .await;
    }
    let unscored = app.candidate("S3").await;
    for hour in 10..13 {
        app.encounter(unscored, small, &format!("2026-03-04T{hour}:00:00Z"), None)
            .await;
    }
    Fixture { app, large, small }
}

async fn set_min_group_size(app: &TestApp, token: &str, size: i64) -> Value {
    app.patch(ORGANIZATION, token, json!({"min_group_size": size}))
        .await
        .assert_status(200)
        .clone()
}

/// Asserts that `row` is suppressed and that each of `withheld` is `null`.
#[track_caller]
fn assert_suppressed(row: &Value, withheld: &[&str]) {
    assert_eq!(row["suppressed"], true, "{row}");
    for field in withheld {
        assert!(row[*field].is_null(), "{field} is withheld: {row}");
    }
}

/// Asserts that `row` is not suppressed and that each of `shown` has a value.
#[track_caller]
fn assert_shown(row: &Value, shown: &[&str]) {
    assert_eq!(row["suppressed"], false, "{row}");
    for field in shown {
        assert!(!row[*field].is_null(), "{field} is shown: {row}");
    }
}

fn find<'a>(list: &'a Value, key: &str, value: impl Into<Value>) -> &'a Value {
    let value = value.into();
    list.as_array()
        .unwrap()
        .iter()
        .find(|item| item[key] == value)
        .unwrap_or_else(|| panic!("no {key} = {value} in {list}"))
}

/// The one point of a monthly trend of March, per group.
async fn march_points(app: &TestApp, group_by: &str) -> Value {
    let report = app
        .get(
            &format!("{TREND}?from=2026-03-01&to=2026-04-01&group_by={group_by}"),
            &app.reporter,
        )
        .await;
    let series = report.assert_status(200)["series"].clone();
    let points: serde_json::Map<String, Value> = series
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["group"].as_str().unwrap().to_owned(),
                s["points"][0].clone(),
            )
        })
        .collect();
    Value::Object(points)
}

#[tokio::test]
async fn by_default_nothing_is_suppressed() {
    let f = fixture().await;
    let app = &f.app;
    let organization = app.get(ORGANIZATION, &app.admin).await;
    assert_eq!(organization.assert_status(200)["min_group_size"], 0);

    let points = march_points(app, "kind").await;
    assert_shown(&points["unexpected"], &SCORE_FIGURES);
    assert_eq!(points["unexpected"]["detractors"], 2);
    // Nothing scored: nothing to show, but nothing withheld either.
    assert_eq!(points["true"]["suppressed"], false);
    assert_eq!(points["true"]["promoters"], 0);

    let impact = app
        .get(
            &format!("{IMPACT}?from=2026-03-01&to=2026-04-01"),
            &app.reporter,
        )
        .await;
    let rows = impact.assert_status(200)["touchpoints"].clone();
    // Small hurts most (−8), then Large (+4).
    assert_eq!(rows[0]["touchpoint_id"], f.small);
    assert_eq!(rows[0]["mean_attributed_shift"], -8.0);
    assert_eq!(rows[1]["touchpoint_id"], f.large);
    for row in rows.as_array().unwrap() {
        assert_shown(row, &["mean_score", "cnps"]);
        assert_shown(row, &SHIFT_FIGURES);
    }

    let shift = app
        .get(
            &format!("{SHIFT}?from=2026-02-01&to=2026-04-01&group_by=kind"),
            &app.reporter,
        )
        .await;
    for group in shift.assert_status(200)["groups"].as_array().unwrap() {
        assert_eq!(group["suppressed"], false, "{group}");
        assert_eq!(group["histogram"].as_array().unwrap().len(), 21);
    }

    let summary = app
        .get(
            &format!("{SUMMARY}?from=2026-03-03&to=2026-03-04"),
            &app.reporter,
        )
        .await;
    let summary = summary.assert_status(200);
    assert_shown(summary, &["mean_score", "cnps", "cnps_change"]);
    assert_eq!(summary["previous_suppressed"], false);
    let negative = &summary["most_negative"];
    assert_eq!(negative[0]["touchpoint_id"], f.small, "{summary}");
}

#[tokio::test]
async fn trend_points_below_the_threshold_show_counts_only() {
    let f = fixture().await;
    let app = &f.app;
    let settings = set_min_group_size(app, &app.admin, N).await;
    assert_eq!(settings["min_group_size"], N);

    let points = march_points(app, "kind").await;
    // N scored encounters: shown.
    let large = &points["employer_created"];
    assert_shown(large, &SCORE_FIGURES);
    assert_eq!(
        (&large["encounters"], &large["scored"]),
        (&json!(3), &json!(3))
    );
    assert_eq!(large["promoters"], 3);
    assert_eq!(large["cnps"], 100.0);
    // N - 1 scored and 3 unscored encounters: the unscored ones do not count.
    let small = &points["unexpected"];
    assert_suppressed(small, &SCORE_FIGURES);
    assert_eq!(
        (&small["encounters"], &small["scored"]),
        (&json!(5), &json!(2))
    );
    // No scores at all: below the threshold too.
    assert_suppressed(&points["true"], &SCORE_FIGURES);
    assert_eq!(points["true"]["encounters"], 0);
    // All March together: 5 scored encounters.
    assert_shown(&march_points(app, "none").await["all"], &SCORE_FIGURES);

    // By touchpoint and by day, the same rule for every point.
    let points = march_points(app, "touchpoint").await;
    assert_shown(&points[f.large.to_string()], &SCORE_FIGURES);
    assert_suppressed(&points[f.small.to_string()], &SCORE_FIGURES);
    let daily = app
        .get(
            &format!("{TREND}?from=2026-03-02&to=2026-03-04&bucket=day"),
            &app.reporter,
        )
        .await;
    let days = &daily.assert_status(200)["series"][0]["points"];
    assert_shown(&days[0], &SCORE_FIGURES);
    assert_suppressed(&days[1], &SCORE_FIGURES);
    assert_eq!(days[1]["scored"], 2);

    // Back to 0: everything shows again.
    set_min_group_size(app, &app.admin, 0).await;
    assert_shown(
        &march_points(app, "kind").await["unexpected"],
        &SCORE_FIGURES,
    );
}

#[tokio::test]
async fn impact_rows_below_the_threshold_withhold_scores_and_shifts_and_sort_last() {
    let f = fixture().await;
    let app = &f.app;
    set_min_group_size(app, &app.admin, N).await;
    let impact = app
        .get(
            &format!("{IMPACT}?from=2026-03-01&to=2026-04-01"),
            &app.reporter,
        )
        .await;
    let rows = impact.assert_status(200)["touchpoints"].clone();
    // Small would come first (−8); its withheld mean must not place it.
    assert_eq!(rows[0]["touchpoint_id"], f.large, "{rows}");
    assert_eq!(rows[1]["touchpoint_id"], f.small, "{rows}");

    let large = &rows[0];
    assert_shown(large, &["mean_score", "cnps"]);
    assert_shown(large, &SHIFT_FIGURES);
    assert_eq!(large["mean_attributed_shift"], 4.0);
    assert_eq!(large["attributed_shift_sum"], 12.0);

    let small = &rows[1];
    assert_suppressed(small, &["mean_score", "cnps"]);
    assert_suppressed(small, &SHIFT_FIGURES);
    assert_eq!(small["encounters"], 5);
    assert_eq!(small["candidates"], 3);
    assert_eq!(small["scored"], 2);
    assert_eq!(small["attributions"], 2);
}

#[tokio::test]
async fn shift_groups_with_fewer_candidates_than_the_threshold_are_suppressed() {
    let f = fixture().await;
    let app = &f.app;
    set_min_group_size(app, &app.admin, N).await;
    let report = app
        .get(
            &format!("{SHIFT}?from=2026-02-01&to=2026-04-01&group_by=kind"),
            &app.reporter,
        )
        .await;
    let groups = report.assert_status(200)["groups"].clone();
    // L1 to L3, last scored at Large: exactly N candidates.
    let large = find(&groups, "group", "employer_created");
    assert_shown(large, &SHIFT_COUNTS);
    assert_eq!(large["candidates"], 3);
    assert_eq!(large["improved"], 3);
    assert_eq!(large["mean_shift"], 4.0);
    assert_eq!(large["histogram"][14], json!({"shift": 4, "candidates": 3}));
    // S1 and S2, last scored at Small: one candidate too few.
    let small = find(&groups, "group", "unexpected");
    assert_suppressed(small, &SHIFT_COUNTS);
    assert_eq!(small["candidates"], 2);
    assert_eq!(small["histogram"], json!([]));
    assert_suppressed(find(&groups, "group", "true"), &SHIFT_COUNTS);

    let all = app
        .get(
            &format!("{SHIFT}?from=2026-02-01&to=2026-04-01"),
            &app.reporter,
        )
        .await;
    let all = &all.assert_status(200)["groups"][0];
    assert_shown(all, &SHIFT_COUNTS);
    assert_eq!(all["candidates"], 5);
}

#[tokio::test]
async fn summary_withholds_small_windows_and_lists_no_suppressed_touchpoint() {
    let f = fixture().await;
    let app = &f.app;
    set_min_group_size(app, &app.admin, N).await;
    let summary = |from: &str, to: &str| {
        let url = format!("{SUMMARY}?from={from}&to={to}");
        async move {
            app.get(&url, &app.reporter)
                .await
                .assert_status(200)
                .clone()
        }
    };

    // 2026-03-03: S1 and S2's scores (N - 1); the day before: L1 to L3's (N).
    let small = summary("2026-03-03", "2026-03-04").await;
    assert_suppressed(&small, &["mean_score", "cnps", "cnps_change"]);
    assert_eq!(
        (&small["encounters"], &small["scored"]),
        (&json!(2), &json!(2))
    );
    assert_eq!(small["candidates"], 2);
    assert_eq!(small["previous_suppressed"], false);
    assert_eq!(small["previous_cnps"], 100.0);
    // Small's row is suppressed: it is not among the most negative.
    assert_eq!(small["most_negative"], json!([]));

    let large = summary("2026-03-02", "2026-03-03").await;
    assert_shown(&large, &["mean_score", "cnps"]);
    assert_eq!(large["cnps"], 100.0);
    // Nothing was scored on 2026-03-01.
    assert_eq!(large["previous_suppressed"], true);
    assert!(large["previous_cnps"].is_null());
    assert!(large["cnps_change"].is_null());
    assert_eq!(large["most_positive"][0]["touchpoint_id"], f.large);
    assert_eq!(large["most_positive"][0]["suppressed"], false);

    // The whole of March: 5 scored encounters are shown, but Small's
    // mean shift still is not, so it is not listed.
    let march = summary("2026-03-01", "2026-04-01").await;
    assert_shown(&march, &["mean_score", "cnps", "cnps_change"]);
    assert_eq!(march["most_negative"], json!([]));
    assert_eq!(march["most_positive"][0]["touchpoint_id"], f.large);
}

#[tokio::test]
async fn the_setting_is_read_and_changed_by_admins_only() {
    let app = spawn_app().await;
    let before = app.get(ORGANIZATION, &app.admin).await;
    let before = before.assert_status(200).clone();
    assert_eq!(before["slug"], "acme");
    assert_eq!(before["name"], "Acme Corp");
    assert_eq!(before["min_group_size"], 0);
    assert!(before["id"].is_i64() && before["created_at"].is_string());

    for token in [&app.recruiter, &app.reporter] {
        app.get(ORGANIZATION, token)
            .await
            .assert_error(403, "forbidden", None);
        app.patch(ORGANIZATION, token, json!({"min_group_size": 10}))
            .await
            .assert_error(403, "forbidden", None);
    }
    assert_eq!(
        app.get(ORGANIZATION, &app.admin).await.assert_status(200),
        &before
    );

    let changed = app
        .patch(
            ORGANIZATION,
            &app.admin,
            json!({"min_group_size": 10, "name": "  Acme Corporation "}),
        )
        .await;
    let changed = changed.assert_status(200).clone();
    assert_eq!(changed["min_group_size"], 10);
    assert_eq!(changed["name"], "Acme Corporation");
    assert_eq!(changed["slug"], "acme");
    assert_eq!(changed["created_at"], before["created_at"]);
    assert_ne!(changed["updated_at"], before["updated_at"]);
    // Absent fields stay as they are.
    let renamed = app
        .patch(ORGANIZATION, &app.admin, json!({"name": "Acme"}))
        .await;
    assert_eq!(renamed.assert_status(200)["min_group_size"], 10);
    assert_eq!(
        &app.get(ORGANIZATION, &app.admin).await.assert_status(200)["name"],
        "Acme"
    );
}

#[tokio::test]
async fn bad_settings_are_422_naming_the_field_and_change_nothing() {
    let app = spawn_app().await;
    set_min_group_size(&app, &app.admin, 5).await;
    let before = app
        .get(ORGANIZATION, &app.admin)
        .await
        .assert_status(200)
        .clone();
    for (body, field) in [
        (json!({"min_group_size": -1}), "min_group_size"),
        (json!({"min_group_size": 1001}), "min_group_size"),
        (
            json!({"min_group_size": 5_000_000_000_i64}),
            "min_group_size",
        ),
        (json!({"min_group_size": 1e30}), "min_group_size"),
        (json!({"min_group_size": 2.5}), "min_group_size"),
        (json!({"min_group_size": "10"}), "min_group_size"),
        (json!({"min_group_size": true}), "min_group_size"),
        (json!({"min_group_size": null}), "min_group_size"),
        (
            json!({"min_group_size": 3, "min_groupsize": 3}),
            "min_groupsize",
        ),
        (json!({"name": "   "}), "name"),
        (json!({"name": null}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"slug": "other"}), "slug"),
    ] {
        let reply = app.patch(ORGANIZATION, &app.admin, body.clone()).await;
        reply.assert_error(422, "validation_failed", Some(field));
        assert_eq!(
            app.get(ORGANIZATION, &app.admin).await.assert_status(200),
            &before,
            "{body} changed nothing"
        );
    }
    // The bounds themselves are allowed.
    assert_eq!(
        set_min_group_size(&app, &app.admin, 1000).await["min_group_size"],
        1000
    );
    assert_eq!(
        set_min_group_size(&app, &app.admin, 0).await["min_group_size"],
        0
    );
}

#[tokio::test]
async fn one_organizations_setting_does_not_touch_anothers_reports() {
    let f = fixture().await;
    let app = &f.app;
    // Globex: one candidate, one score in March.
    let post = |path: &str, body: Value| {
        let path = path.to_owned();
        async move {
            app.post(&path, &app.other_admin, body)
                .await
                .assert_status(201)["id"]
                .as_i64()
                .unwrap()
        }
    };
    let touchpoint = post(
        "/api/v1/touchpoints",
        json!({"name": "Large", "kind": "employer_created", "channel": "interview", "stage": "interview"}),
    )
    .await;
    let candidate = post("/api/v1/candidates", json!({"external_ref": "G1"})).await;
    post(
        "/api/v1/encounters",
        json!({"candidate_id": candidate, "touchpoint_id": touchpoint,
               "occurred_at": "2026-03-02T10:00:00Z", "score": 9}),
    )
    .await;

    set_min_group_size(app, &app.admin, N).await;
    let theirs = app.get(ORGANIZATION, &app.other_admin).await;
    assert_eq!(theirs.assert_status(200)["min_group_size"], 0);
    assert_eq!(theirs.assert_status(200)["slug"], "globex");
    let url = format!("{TREND}?from=2026-03-01&to=2026-04-01");
    let point = app.get(&url, &app.other_admin).await;
    let point = &point.assert_status(200)["series"][0]["points"][0];
    assert_shown(point, &SCORE_FIGURES);
    assert_eq!(point["scored"], 1);

    // And the other way round.
    set_min_group_size(app, &app.other_admin, 50).await;
    assert_eq!(
        app.get(ORGANIZATION, &app.admin).await.assert_status(200)["min_group_size"],
        N
    );
    assert_shown(
        &march_points(app, "kind").await["employer_created"],
        &SCORE_FIGURES,
    );
    let point = app.get(&url, &app.other_admin).await;
    assert_suppressed(
        &point.assert_status(200)["series"][0]["points"][0],
        &SCORE_FIGURES,
    );
}
