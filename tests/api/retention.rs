//! The retention policy: `retention run [--dry-run]` and the schedule inside
//! the service erase exactly the candidates whose latest encounter is older
//! than the limit, keep every report as it was, and erase each candidate
//! once when several processes apply the policy at the same time.

use std::{collections::BTreeMap, process::Command, time::Duration};

use chrono::{DateTime, Utc};
use entity::candidate;
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{json, Value};

use super::{
    erasure::all_reports_in,
    helpers::{spawn_app, spawn_app_with_retention, TestApp, BIN},
};
use touchpoint_tracker::config::RetentionPolicy;

fn days_ago(days: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::days(days)
}

fn at(days: i64) -> String {
    days_ago(days).to_rfc3339()
}

/// Candidates in every situation the 365-day policy distinguishes.
struct Scene {
    /// Due: latest encounter 380 days ago.
    old: i64,
    /// Due: no encounter, created two years ago.
    dormant: i64,
    /// Due, in the second organization.
    globex_old: i64,
    /// Kept: an old encounter, but also one 10 days ago.
    recent: i64,
    /// Kept: no encounter, created now.
    fresh: i64,
    /// Already erased on request: not erased again.
    erased: i64,
}

impl Scene {
    fn due(&self) -> Vec<i64> {
        let mut due = vec![self.old, self.dormant, self.globex_old];
        due.sort();
        due
    }
}

async fn create_candidate(app: &TestApp, token: &str, external_ref: &str) -> i64 {
    let body = json!({"external_ref": external_ref, "display_name": format!("Person {external_ref}"),
                      "email": format!("{}@example.org", external_ref.to_lowercase())});
    app.post("/api/v1/candidates", token, body)
        .await
        .assert_status(201)
        .get("id")
        .and_then(Value::as_i64)
        .unwrap()
}

/// Records a candidate's encounters `days` ago in one request: with the
/// schedule running, a candidate given its old encounter first would be
/// due, and may be erased, before the later one is recorded.
async fn encounters(app: &TestApp, token: &str, candidate: i64, touchpoint: i64, days: &[i64]) {
    let items: Vec<Value> = days
        .iter()
        .map(|&days| {
            json!({"candidate_id": candidate, "touchpoint_id": touchpoint,
                   "occurred_at": at(days), "score": (days % 11) as i32,
                   "note": format!("Note about candidate {candidate}")})
        })
        .collect();
    app.post("/api/v1/encounters/batch", token, json!(items))
        .await
        .assert_status(201);
}

async fn scene(app: &TestApp) -> Scene {
    let interview = app
        .touchpoint(
            "Panel interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let old = create_candidate(app, &app.admin, "RET-OLD").await;
    encounters(app, &app.admin, old, interview, &[400, 380]).await;
    let recent = create_candidate(app, &app.admin, "RET-RECENT").await;
    encounters(app, &app.admin, recent, interview, &[400, 10]).await;
    let fresh = create_candidate(app, &app.admin, "RET-FRESH").await;
    let dormant = create_candidate(app, &app.admin, "RET-DORMANT").await;
    // Two years pass for this one: the only way to a candidate created long
    // ago without waiting for it.
    candidate::Entity::update_many()
        .col_expr(candidate::Column::CreatedAt, Expr::value(days_ago(730)))
        .filter(candidate::Column::Id.eq(dormant))
        .exec(&app.db)
        .await
        .unwrap();
    let erased = create_candidate(app, &app.admin, "RET-ERASED").await;
    encounters(app, &app.admin, erased, interview, &[500]).await;
    app.delete(&format!("/api/v1/candidates/{erased}"), &app.admin)
        .await
        .assert_status(200);

    let globex_touchpoint = app
        .post(
            "/api/v1/touchpoints",
            &app.other_admin,
            json!({"name": "Job ad", "kind": "employer_created", "channel": "job_board", "stage": "awareness"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    let globex_old = create_candidate(app, &app.other_admin, "RET-GLOBEX").await;
    encounters(app, &app.other_admin, globex_old, globex_touchpoint, &[700]).await;
    Scene {
        old,
        dormant,
        globex_old,
        recent,
        fresh,
        erased,
    }
}

/// `touchpoint-tracker retention run` on the app's database.
/// Runs `retention run` on a thread of its own, so the test's runtime, on
/// which the service runs, goes on meanwhile: on PostgreSQL the service's
/// projector is a task there, and a process waiting for the projection
/// lock that the projector held, with the runtime blocked on the process,
/// waited out the statement timeout.
async fn retention_run(app: &TestApp, args: &[&str], days: Option<&str>) -> std::process::Output {
    let mut command = Command::new(BIN);
    command
        .args(["retention", "run"])
        .args(args)
        .env("DATABASE_URL", &app.database.url)
        .env_remove("RUST_LOG")
        .env_remove("RETENTION_DAYS");
    if let Some(days) = days {
        command.env("RETENTION_DAYS", days);
    }
    tokio::task::spawn_blocking(move || command.output().expect("binary runs"))
        .await
        .unwrap()
}

/// The candidate ids of the tab-separated lines `retention run` prints.
fn listed(output: &std::process::Output) -> Vec<i64> {
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout.clone()).unwrap();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("organization\tcandidate_id\texternal_ref\tlast_activity")
    );
    let mut ids: Vec<i64> = lines
        .map(|line| line.split('\t').nth(1).unwrap().parse().unwrap())
        .collect();
    ids.sort();
    ids
}

/// Each candidate's JSON, as its organization's admin sees it.
async fn candidates(app: &TestApp, scene: &Scene) -> BTreeMap<i64, Value> {
    let mut all = BTreeMap::new();
    for (id, token) in [
        (scene.old, &app.admin),
        (scene.dormant, &app.admin),
        (scene.recent, &app.admin),
        (scene.fresh, &app.admin),
        (scene.erased, &app.admin),
        (scene.globex_old, &app.other_admin),
    ] {
        let body = app.get(&format!("/api/v1/candidates/{id}"), token).await;
        all.insert(id, body.assert_status(200).clone());
    }
    all
}

fn windows() -> Vec<(String, String)> {
    let day = |days: i64| days_ago(days).format("%Y-%m-%d").to_string();
    vec![
        (day(800), day(-1)),
        (day(410), day(370)),
        (day(30), day(-1)),
    ]
}

async fn reports(app: &TestApp) -> BTreeMap<String, Value> {
    let windows = windows();
    let windows: Vec<(&str, &str)> = windows
        .iter()
        .map(|(from, to)| (from.as_str(), to.as_str()))
        .collect();
    let mut reports = all_reports_in(app, &windows).await;
    let summary = app
        .get(
            &format!(
                "/api/v1/reports/summary?from={}&to={}",
                windows[0].0, windows[0].1
            ),
            &app.other_admin,
        )
        .await;
    reports.insert(
        "globex summary".to_owned(),
        summary.assert_status(200).clone(),
    );
    reports
}

#[tokio::test]
async fn retention_run_lists_then_erases_exactly_the_candidates_past_the_limit() {
    let app = spawn_app().await;
    let scene = scene(&app).await;
    let reports_before = reports(&app).await;
    let before = candidates(&app, &scene).await;

    // Without a policy the command refuses, and says what to set.
    let refused = retention_run(&app, &[], None).await;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("--retention-days"),
        "{refused:?}"
    );

    // A dry run lists the due candidates, with their reference for review,
    // and changes nothing.
    let dry = retention_run(&app, &["--dry-run"], Some("365")).await;
    assert_eq!(listed(&dry), scene.due());
    let stdout = String::from_utf8_lossy(&dry.stdout);
    assert!(stdout.contains("\tRET-OLD\t") && stdout.contains("\tRET-DORMANT\t"));
    assert!(String::from_utf8_lossy(&dry.stderr).contains("would erase 3 candidates"));
    assert_eq!(candidates(&app, &scene).await, before);

    let run = retention_run(&app, &[], Some("365")).await;
    assert_eq!(listed(&run), scene.due());
    assert!(
        !String::from_utf8_lossy(&run.stdout).contains("RET-"),
        "an erasure run does not print what it erased"
    );
    let after = candidates(&app, &scene).await;
    for id in scene.due() {
        let candidate = &after[&id];
        assert!(candidate["erased_at"].is_string(), "{candidate}");
        for field in ["external_ref", "display_name", "email"] {
            assert!(candidate[field].is_null(), "{field} of {candidate}");
        }
    }
    for id in [scene.recent, scene.fresh, scene.erased] {
        assert_eq!(after[&id], before[&id], "candidate {id} is untouched");
    }
    let journey = app
        .get(
            &format!("/api/v1/candidates/{}/journey", scene.old),
            &app.admin,
        )
        .await;
    let steps = journey.assert_status(200)["steps"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(steps.len(), 2, "the encounters stay");
    assert!(steps.iter().all(|step| step["note"].is_null()), "{steps:?}");
    assert_eq!(reports(&app).await, reports_before, "reports are unchanged");
    // Each erasure is in the audit trail, by the policy.
    for (id, token) in [
        (scene.old, &app.admin),
        (scene.dormant, &app.admin),
        (scene.globex_old, &app.other_admin),
    ] {
        let events = app
            .get(
                &format!("/api/v1/audit-events?resource_type=candidate&resource_id={id}"),
                token,
            )
            .await;
        let events = events.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .clone();
        let erasures: Vec<&Value> = events.iter().filter(|e| e["action"] == "erase").collect();
        assert_eq!(erasures.len(), 1, "{events:?}");
        assert_eq!(erasures[0]["actor_name"], "retention policy");
        assert!(erasures[0]["actor_key_id"].is_null());
    }

    // Applying it again finds nothing left to do.
    let again = retention_run(&app, &[], Some("365")).await;
    assert_eq!(listed(&again), Vec::<i64>::new());
    // A longer limit spares candidates a shorter one erases.
    let longer = retention_run(&app, &["--dry-run"], Some("1000")).await;
    assert_eq!(listed(&longer), Vec::<i64>::new());
}

#[tokio::test]
async fn a_bad_retention_setting_is_refused_with_its_name() {
    let app = spawn_app().await;
    for days in ["0", "-5", "soon", "40000"] {
        let output = retention_run(&app, &["--dry-run"], Some(days)).await;
        assert!(!output.status.success(), "RETENTION_DAYS={days} accepted");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("--retention-days"),
            "{output:?}"
        );
    }
}

#[tokio::test]
async fn the_service_applies_the_policy_on_its_schedule() {
    let app = spawn_app_with_retention(RetentionPolicy {
        days: 365,
        interval: Duration::from_millis(300),
    })
    .await;
    let scene = scene(&app).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let after = candidates(&app, &scene).await;
        let erased: Vec<i64> = scene
            .due()
            .into_iter()
            .filter(|id| after[id]["erased_at"].is_string())
            .collect();
        if erased == scene.due() {
            for id in [scene.recent, scene.fresh] {
                assert!(after[&id]["erased_at"].is_null(), "{}", after[&id]);
                assert!(after[&id]["display_name"].is_string());
            }
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the schedule erased only {erased:?} of {:?}",
            scene.due()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn processes_applying_the_policy_at_once_erase_each_candidate_once() {
    let app = spawn_app().await;
    let touchpoint = app
        .touchpoint("Survey", "true", "review_site", "application")
        .await;
    // 250 due candidates (more than one erasure batch), imported the way a
    // survey import creates them, and 20 recent ones.
    let mut items: Vec<Value> = (0..250)
        .map(|n| {
            json!({"candidate_external_ref": format!("OLD-{n}"), "touchpoint_id": touchpoint,
                         "occurred_at": at(400 + n), "score": n % 11})
        })
        .collect();
    items.extend((0..20).map(|n| {
        json!({"candidate_external_ref": format!("NEW-{n}"), "touchpoint_id": touchpoint,
               "occurred_at": at(n), "score": n % 11})
    }));
    app.post("/api/v1/encounters/batch", &app.recruiter, json!(items))
        .await
        .assert_status(201);

    let runs: Vec<std::process::Output> =
        futures_util::future::join_all((0..3).map(|_| retention_run(&app, &[], Some("365")))).await;
    let mut erased: Vec<i64> = runs.iter().flat_map(listed).collect();
    erased.sort();
    let count = erased.len();
    erased.dedup();
    assert_eq!(count, erased.len(), "a candidate was erased twice");
    assert_eq!(count, 250, "every due candidate was erased by one process");

    let listed = app
        .get("/api/v1/candidates?limit=500", &app.admin)
        .await
        .assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    let (gone, kept): (Vec<&Value>, Vec<&Value>) =
        listed.iter().partition(|c| c["erased_at"].is_string());
    assert_eq!(gone.len(), 250);
    assert_eq!(kept.len(), 20);
    assert!(kept
        .iter()
        .all(|c| c["external_ref"].as_str().unwrap().starts_with("NEW-")));

    // One erase event per erased candidate, however many processes ran.
    let mut erase_events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/api/v1/audit-events?resource_type=candidate&limit=500".to_owned();
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, &app.admin).await.assert_status(200).clone();
        erase_events.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "erase")
                .map(|e| e["resource_id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    erase_events.sort();
    assert_eq!(erase_events, erased, "one erase event per candidate");
}
