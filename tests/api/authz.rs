//! Authentication, the role matrix, tenant isolation and API keys managed
//! over the API. Every check is real HTTP against `spawn_app()`.
//!
//! One table, [`endpoints`], lists every operation under `/api/v1` with a
//! valid body and the status each role must get; the authentication, role
//! and isolation tests are loops over it.

use std::collections::BTreeSet;

use rand::{distr::Alphanumeric, Rng};
use reqwest::{header::AUTHORIZATION, Method};
use serde_json::{json, Value};

use touchpoint_tracker::config::Limits;

use super::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

/// A moment safely in the past, for encounters.
const OCCURRED_AT: &str = "2026-03-02T10:00:00Z";

/// Every table, to prove that a rejected request wrote nothing (not even
/// an audit event).
const TABLES: [&str; 6] = [
    "organizations",
    "api_keys",
    "touchpoints",
    "candidates",
    "encounters",
    "audit_events",
];

/// The organization's full contents as its admin sees them.
const LISTS: [&str; 5] = [
    "/api/v1/touchpoints?include_archived=true&limit=500",
    "/api/v1/candidates?limit=500",
    "/api/v1/encounters?limit=500",
    "/api/v1/keys?limit=500",
    "/api/v1/audit-events?limit=500",
];

/// The roles of the matrix, in the order of [`Endpoint::expect`].
const ROLES: [&str; 3] = ["admin", "recruiter", "reporter"];

// ---------------------------------------------------------------------------
// The endpoint table
// ---------------------------------------------------------------------------

/// One operation: its method, its path (with `{touchpoint}`, `{candidate}`,
/// `{encounter}` and `{key}` standing for a fixture's ids), a valid body,
/// the status each role gets, and what an allowed call does to the tables.
struct Endpoint {
    method: Method,
    path: &'static str,
    body: fn(&Fixture) -> Option<Value>,
    /// The status for admin, recruiter and reporter.
    expect: [u16; 3],
    /// For writes: the table written and how its row count changes.
    writes: Option<(&'static str, i64)>,
}

impl Endpoint {
    fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    /// Whether the path names one resource (as opposed to a collection).
    fn names_a_resource(&self) -> bool {
        self.path.contains('{')
    }
}

fn no_body(_: &Fixture) -> Option<Value> {
    None
}

/// Every operation under `/api/v1`.
fn endpoints() -> Vec<Endpoint> {
    use Method as M;
    let read = |method: Method, path, expect| Endpoint {
        method,
        path,
        body: no_body,
        expect,
        writes: None,
    };
    const ALL: [u16; 3] = [200, 200, 200];
    const ADMIN: [u16; 3] = [200, 403, 403];
    vec![
        read(M::GET, "/api/v1/touchpoints", ALL),
        Endpoint {
            method: M::POST,
            path: "/api/v1/touchpoints",
            body: |f| {
                Some(json!({
                    "name": format!("Job ad {}", f.tag),
                    "kind": "employer_created",
                    "channel": "job_board",
                    "stage": "awareness",
                }))
            },
            expect: [201, 403, 403],
            writes: Some(("touchpoints", 1)),
        },
        read(M::GET, "/api/v1/touchpoints/{touchpoint}", ALL),
        Endpoint {
            method: M::PATCH,
            path: "/api/v1/touchpoints/{touchpoint}",
            body: |_| Some(json!({"description": "changed", "stage": "alumni"})),
            expect: ADMIN,
            writes: Some(("touchpoints", 0)),
        },
        Endpoint {
            method: M::DELETE,
            path: "/api/v1/touchpoints/{touchpoint}",
            body: no_body,
            expect: ADMIN,
            writes: Some(("touchpoints", 0)),
        },
        read(M::GET, "/api/v1/candidates", ALL),
        Endpoint {
            method: M::POST,
            path: "/api/v1/candidates",
            body: |f| Some(json!({"external_ref": format!("NEW-{}", f.tag)})),
            expect: [201, 201, 403],
            writes: Some(("candidates", 1)),
        },
        read(M::GET, "/api/v1/candidates/{candidate}", ALL),
        Endpoint {
            method: M::PATCH,
            path: "/api/v1/candidates/{candidate}",
            body: |_| Some(json!({"stage": "offer", "display_name": "Changed"})),
            expect: [200, 200, 403],
            writes: Some(("candidates", 0)),
        },
        Endpoint {
            method: M::DELETE,
            path: "/api/v1/candidates/{candidate}",
            body: no_body,
            expect: ADMIN,
            writes: Some(("candidates", 0)),
        },
        read(M::GET, "/api/v1/candidates/{candidate}/journey", ALL),
        read(M::GET, "/api/v1/candidates/{candidate}/export", ADMIN),
        read(M::GET, "/api/v1/encounters", ALL),
        Endpoint {
            method: M::POST,
            path: "/api/v1/encounters",
            body: |f| {
                Some(json!({
                    "candidate_id": f.candidate,
                    "touchpoint_id": f.touchpoint,
                    "occurred_at": OCCURRED_AT,
                    "score": 9,
                }))
            },
            expect: [201, 201, 403],
            writes: Some(("encounters", 1)),
        },
        read(M::GET, "/api/v1/encounters/{encounter}", ALL),
        Endpoint {
            method: M::PATCH,
            path: "/api/v1/encounters/{encounter}",
            body: |_| Some(json!({"score": 2, "note": "changed"})),
            expect: [200, 200, 403],
            writes: Some(("encounters", 0)),
        },
        Endpoint {
            method: M::DELETE,
            path: "/api/v1/encounters/{encounter}",
            body: no_body,
            expect: [204, 204, 403],
            writes: Some(("encounters", -1)),
        },
        read(
            M::GET,
            "/api/v1/reports/perception-trend?from=2026-01-01&to=2026-04-01&group_by=kind",
            ALL,
        ),
        read(
            M::GET,
            "/api/v1/reports/touchpoint-impact?from=2026-01-01&to=2026-04-01",
            ALL,
        ),
        read(
            M::GET,
            "/api/v1/reports/perception-shift?from=2026-01-01&to=2026-04-01",
            ALL,
        ),
        read(
            M::GET,
            "/api/v1/reports/summary?from=2026-01-01&to=2026-04-01",
            ALL,
        ),
        read(
            M::GET,
            "/api/v1/reports/perception-gap?from=2026-01-01&to=2026-04-01&group_by=kind",
            ALL,
        ),
        read(M::GET, "/api/v1/keys", ADMIN),
        Endpoint {
            method: M::POST,
            path: "/api/v1/keys",
            body: |f| Some(json!({"name": format!("Key {}", f.tag), "role": "admin"})),
            expect: [201, 403, 403],
            writes: Some(("api_keys", 1)),
        },
        Endpoint {
            method: M::DELETE,
            path: "/api/v1/keys/{key}",
            body: no_body,
            expect: ADMIN,
            writes: Some(("api_keys", 0)),
        },
        read(M::GET, "/api/v1/organization", ADMIN),
        Endpoint {
            method: M::PATCH,
            path: "/api/v1/organization",
            body: |_| Some(json!({"min_group_size": 5})),
            expect: ADMIN,
            writes: Some(("organizations", 0)),
        },
        read(M::GET, "/api/v1/audit-events", ADMIN),
    ]
}

// ---------------------------------------------------------------------------
// Fixtures and helpers
// ---------------------------------------------------------------------------

/// One of each resource, in one organization.
#[derive(Debug, Clone)]
struct Fixture {
    tag: String,
    touchpoint: i64,
    candidate: i64,
    encounter: i64,
    key: i64,
}

impl Fixture {
    /// Ids that exist in no organization.
    fn missing() -> Self {
        Fixture {
            tag: "missing".to_owned(),
            touchpoint: 987_654_321,
            candidate: 987_654_322,
            encounter: 987_654_323,
            key: 987_654_324,
        }
    }

    fn external_ref(&self) -> String {
        format!("ATS-{}", self.tag)
    }

    fn path(&self, template: &str) -> String {
        template
            .replace("{touchpoint}", &self.touchpoint.to_string())
            .replace("{candidate}", &self.candidate.to_string())
            .replace("{encounter}", &self.encounter.to_string())
            .replace("{key}", &self.key.to_string())
    }
}

/// Creates a touchpoint, a candidate, an encounter and a reporter key with
/// the given admin token, all over the API.
async fn fixture(app: &TestApp, admin: &str, tag: &str) -> Fixture {
    let touchpoint = created(
        app.post(
            "/api/v1/touchpoints",
            admin,
            json!({
                "name": format!("Careers site {tag}"),
                "kind": "employer_created",
                "channel": "careers_site",
                "stage": "awareness",
            }),
        )
        .await,
    );
    let mut fixture = Fixture {
        tag: tag.to_owned(),
        touchpoint,
        candidate: 0,
        encounter: 0,
        key: 0,
    };
    fixture.candidate = created(
        app.post(
            "/api/v1/candidates",
            admin,
            json!({"external_ref": fixture.external_ref()}),
        )
        .await,
    );
    fixture.encounter = created(
        app.post(
            "/api/v1/encounters",
            admin,
            json!({
                "candidate_id": fixture.candidate,
                "touchpoint_id": fixture.touchpoint,
                "occurred_at": OCCURRED_AT,
                "score": 5,
            }),
        )
        .await,
    );
    fixture.key = create_key(app, admin, &format!("Fixture key {tag}"), "reporter")
        .await
        .0["id"]
        .as_i64()
        .unwrap();
    fixture
}

#[track_caller]
fn created(reply: Reply) -> i64 {
    reply.assert_status(201);
    reply.id()
}

/// Creates a key over the API; returns the key object and its token.
async fn create_key(app: &TestApp, admin: &str, name: &str, role: &str) -> (Value, String) {
    let reply = app
        .post("/api/v1/keys", admin, json!({"name": name, "role": role}))
        .await;
    let body = reply.assert_status(201);
    let token = body["token"].as_str().expect("a token").to_owned();
    (body["key"].clone(), token)
}

/// A token that was valid (an admin's) and has been revoked over the API.
async fn revoked_token(app: &TestApp) -> String {
    let (key, token) = create_key(app, &app.admin, "Soon revoked", "admin").await;
    app.get("/api/v1/touchpoints", &token)
        .await
        .assert_status(200);
    app.delete(&format!("/api/v1/keys/{}", key["id"]), &app.admin)
        .await
        .assert_status(200);
    token
}

fn random_token() -> String {
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    format!("tpt_{random}")
}

/// Sends a request with a raw `Authorization` header (or none).
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(value) = authorization {
        request = request.header(AUTHORIZATION, value);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    TestApp::reply(request.send().await.expect("request sent")).await
}

/// Calls one endpoint of the table against a fixture.
async fn call(app: &TestApp, endpoint: &Endpoint, token: &str, fixture: &Fixture) -> Reply {
    app.request(
        endpoint.method.clone(),
        &fixture.path(endpoint.path),
        Some(token),
        (endpoint.body)(fixture),
    )
    .await
}

fn token_of(app: &TestApp, role: &str) -> String {
    match role {
        "admin" => app.admin.clone(),
        "recruiter" => app.recruiter.clone(),
        "reporter" => app.reporter.clone(),
        other => panic!("no such role {other}"),
    }
}

/// Asserts the status, and for the error statuses of this file the
/// documented error shape and code.
#[track_caller]
fn check(reply: &Reply, status: u16, context: &str) {
    assert_eq!(reply.status.as_u16(), status, "{context}: {reply:?}");
    match status {
        401 => reply.assert_error(401, "unauthorized", None),
        403 => reply.assert_error(403, "forbidden", None),
        404 => reply.assert_error(404, "not_found", None),
        _ => {}
    }
}

/// Everything the database holds: the row count of every table, and an
/// organization's lists and settings as its admin sees them.
/// `last_used_at` is left out: authenticating (the snapshot's own reads
/// included) may refresh it.
#[derive(Debug, PartialEq)]
struct State {
    counts: Vec<(&'static str, i64)>,
    lists: Vec<Value>,
    organization: Value,
}

async fn state(app: &TestApp, admin: &str) -> State {
    let mut counts = Vec::new();
    for table in TABLES {
        counts.push((table, app.count(table).await));
    }
    let mut lists = Vec::new();
    for path in LISTS {
        let mut list = app.get(path, admin).await.assert_status(200).clone();
        assert!(list["next_cursor"].is_null(), "{path} fits one page");
        for item in list["items"].as_array_mut().unwrap() {
            item.as_object_mut().unwrap().remove("last_used_at");
        }
        lists.push(list);
    }
    let organization = app
        .get("/api/v1/organization", admin)
        .await
        .assert_status(200)
        .clone();
    State {
        counts,
        lists,
        organization,
    }
}

impl State {
    fn count(&self, table: &str) -> i64 {
        self.counts
            .iter()
            .find(|(name, _)| *name == table)
            .expect("a known table")
            .1
    }
}

/// The ids of a list's items.
fn ids(list: &Value) -> BTreeSet<i64> {
    list["items"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

async fn list_ids(app: &TestApp, path: &str, token: &str) -> BTreeSet<i64> {
    ids(app.get(path, token).await.assert_status(200))
}

// ---------------------------------------------------------------------------
// 1. Authentication
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_endpoint_refuses_missing_malformed_unknown_and_revoked_keys() {
    // Over 100 failed authentications from one address: without the limit
    // per address (tested in hostile_input.rs), each must be a 401.
    let app = spawn_app_with(Limits {
        auth_failures: None,
        ..Default::default()
    })
    .await;
    let fixture = fixture(&app, &app.admin, "auth").await;
    let revoked = revoked_token(&app).await;
    let mut tampered = app.admin.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);

    let credentials: Vec<(&str, Option<String>)> = vec![
        ("no header", None),
        ("basic scheme", Some("Basic abc".to_owned())),
        (
            "basic scheme, valid token",
            Some(format!("Basic {}", app.admin)),
        ),
        ("bearer without token", Some("Bearer".to_owned())),
        ("bearer with empty token", Some("Bearer ".to_owned())),
        ("token without prefix", Some("Bearer abcdef".to_owned())),
        ("unknown token", Some(format!("Bearer {}", random_token()))),
        ("tampered token", Some(format!("Bearer {tampered}"))),
        ("revoked token", Some(format!("Bearer {revoked}"))),
    ];

    let before = state(&app, &app.admin).await;
    let table = endpoints();
    assert_eq!(table.len(), 28, "every operation under /api/v1");
    for endpoint in &table {
        for (what, authorization) in &credentials {
            let reply = send(
                &app,
                endpoint.method.clone(),
                &fixture.path(endpoint.path),
                authorization.as_deref(),
                (endpoint.body)(&fixture),
            )
            .await;
            check(&reply, 401, &format!("{} with {what}", endpoint.describe()));
        }
    }
    assert_eq!(
        state(&app, &app.admin).await,
        before,
        "refused requests change nothing"
    );
}

#[tokio::test]
async fn healthz_needs_no_key() {
    let app = spawn_app().await;
    for authorization in [None, Some("Basic abc"), Some("Bearer tpt_unknown")] {
        let reply = send(&app, Method::GET, "/healthz", authorization, None).await;
        assert_eq!(
            reply.assert_status(200),
            &json!({"status": "ok"}),
            "{authorization:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// 2. The role matrix
// ---------------------------------------------------------------------------

/// Runs every endpoint of the table as `role`, each on fresh fixtures, and
/// checks the status and what was written.
async fn role_matrix(role: &str) {
    let index = ROLES.iter().position(|r| *r == role).unwrap();
    let app = spawn_app().await;
    let token = token_of(&app, role);
    for (n, endpoint) in endpoints().iter().enumerate() {
        let context = format!("{role} {}", endpoint.describe());
        let fixture = fixture(&app, &app.admin, &format!("{role}-{n}")).await;
        let before = state(&app, &app.admin).await;

        let reply = call(&app, endpoint, &token, &fixture).await;
        let status = endpoint.expect[index];
        check(&reply, status, &context);

        let after = state(&app, &app.admin).await;
        match endpoint.writes {
            Some((table, delta)) if status != 403 => {
                assert_ne!(after, before, "{context} changed something");
                assert_eq!(
                    after.count(table),
                    before.count(table) + delta,
                    "{context}: rows of {table}"
                );
            }
            _ => assert_eq!(after, before, "{context} wrote nothing"),
        }
    }
}

#[tokio::test]
async fn admin_may_do_everything() {
    role_matrix("admin").await;
}

#[tokio::test]
async fn recruiter_reads_everything_and_records_candidates_and_encounters_only() {
    role_matrix("recruiter").await;
}

#[tokio::test]
async fn reporter_is_read_only() {
    role_matrix("reporter").await;
}

#[test]
fn the_matrix_follows_the_documented_rules() {
    for endpoint in endpoints() {
        let [admin, recruiter, reporter] = endpoint.expect;
        let context = endpoint.describe();
        assert_ne!(admin, 403, "{context}: admin may do everything");
        let is_read = endpoint.method == Method::GET;
        // Keys and the organization's settings are for admins.
        let is_key = endpoint.path.starts_with("/api/v1/keys")
            || endpoint.path.starts_with("/api/v1/organization");
        let records = endpoint.path.starts_with("/api/v1/candidates")
            || endpoint.path.starts_with("/api/v1/encounters");
        // Answering a candidate's privacy request (an export of their data,
        // an erasure) is for admins.
        let privacy = endpoint.path.starts_with("/api/v1/candidates")
            && (endpoint.method == Method::DELETE || endpoint.path.ends_with("/export"));
        // The audit trail is for admins.
        let audit = endpoint.path.starts_with("/api/v1/audit-events");
        assert_eq!(
            recruiter == 403,
            is_key || privacy || audit || !(is_read || records),
            "{context}: recruiter"
        );
        assert_eq!(
            reporter == 403,
            is_key || privacy || audit || !is_read,
            "{context}: reporter"
        );
        assert_eq!(endpoint.writes.is_none(), is_read, "{context}: writes");
    }
}

// ---------------------------------------------------------------------------
// 3. Tenant isolation
// ---------------------------------------------------------------------------

/// `intruder` (a key of another organization) gets, for every resource of
/// `victim`, exactly the 404 of an id that does not exist, and changes
/// nothing; `victim_admin` re-reads the victim's data to prove it.
async fn assert_isolated(app: &TestApp, intruder: &str, victim: &Fixture, victim_admin: &str) {
    let before = state(app, victim_admin).await;
    let missing = Fixture::missing();
    for endpoint in endpoints().iter().filter(|e| e.names_a_resource()) {
        let context = format!("{} of another organization", endpoint.describe());
        let foreign = call(app, endpoint, intruder, victim).await;
        check(&foreign, 404, &context);
        let absent = call(app, endpoint, intruder, &missing).await;
        check(
            &absent,
            404,
            &format!("{} (no such id)", endpoint.describe()),
        );
        assert_eq!(
            (&foreign.body, &foreign.content_type),
            (&absent.body, &absent.content_type),
            "{context} answers like an id that does not exist"
        );
        assert_eq!(
            state(app, victim_admin).await,
            before,
            "{context} changed nothing"
        );
    }

    // The intruder's lists hold none of the victim's rows, even when asked
    // for them by id or ATS reference.
    for path in LISTS {
        let theirs = list_ids(app, path, victim_admin).await;
        assert!(!theirs.is_empty(), "{path}: the victim has rows");
        let seen = list_ids(app, path, intruder).await;
        assert!(seen.is_disjoint(&theirs), "{path}: {seen:?} vs {theirs:?}");
    }
    for path in [
        format!("/api/v1/encounters?candidate_id={}", victim.candidate),
        format!("/api/v1/encounters?touchpoint_id={}", victim.touchpoint),
        format!("/api/v1/candidates?external_ref={}", victim.external_ref()),
    ] {
        assert!(list_ids(app, &path, intruder).await.is_empty(), "{path}");
    }
}

#[tokio::test]
async fn another_organization_cannot_reach_any_resource_of_the_first() {
    let app = spawn_app().await;
    let acme = fixture(&app, &app.admin, "acme").await;
    let globex = fixture(&app, &app.other_admin, "globex").await;

    assert_isolated(&app, &app.other_admin, &acme, &app.admin).await;

    // Globex sees exactly its own rows.
    for (path, own) in [
        (
            "/api/v1/touchpoints?include_archived=true",
            globex.touchpoint,
        ),
        ("/api/v1/candidates", globex.candidate),
        ("/api/v1/encounters", globex.encounter),
    ] {
        assert_eq!(
            list_ids(&app, path, &app.other_admin).await,
            BTreeSet::from([own]),
            "{path}"
        );
    }
    assert!(list_ids(&app, "/api/v1/keys", &app.other_admin)
        .await
        .contains(&globex.key));
}

#[tokio::test]
async fn encounters_cannot_reference_another_organizations_rows() {
    let app = spawn_app().await;
    let acme = fixture(&app, &app.admin, "acme").await;
    let globex = fixture(&app, &app.other_admin, "globex").await;
    let missing = Fixture::missing();
    let before = state(&app, &app.admin).await;
    let globex_before = state(&app, &app.other_admin).await;

    // (field at fault, candidate_id, touchpoint_id, its nonexistent twin)
    let cases = [
        (
            "candidate_id",
            (acme.candidate, globex.touchpoint),
            (missing.candidate, globex.touchpoint),
        ),
        (
            "touchpoint_id",
            (globex.candidate, acme.touchpoint),
            (globex.candidate, missing.touchpoint),
        ),
    ];
    let post = |(candidate, touchpoint): (i64, i64)| {
        app.post(
            "/api/v1/encounters",
            &app.other_admin,
            json!({
                "candidate_id": candidate,
                "touchpoint_id": touchpoint,
                "occurred_at": OCCURRED_AT,
                "score": 3,
            }),
        )
    };
    for (field, foreign, absent) in cases {
        let foreign = post(foreign).await;
        foreign.assert_error(422, "unknown_reference", Some(field));
        assert_eq!(foreign.body, post(absent).await.body, "{field}");
    }

    // Nor can an encounter be moved onto another organization's touchpoint.
    let moved = app
        .patch(
            &format!("/api/v1/encounters/{}", globex.encounter),
            &app.other_admin,
            json!({"touchpoint_id": acme.touchpoint}),
        )
        .await;
    moved.assert_error(422, "unknown_reference", Some("touchpoint_id"));

    assert_eq!(state(&app, &app.admin).await, before);
    assert_eq!(state(&app, &app.other_admin).await, globex_before);
}

#[tokio::test]
async fn a_key_created_over_the_api_cannot_see_the_other_organization() {
    let app = spawn_app().await;
    let globex = fixture(&app, &app.other_admin, "globex").await;
    fixture(&app, &app.admin, "acme").await;
    let (_, token) = create_key(&app, &app.admin, "New acme admin", "admin").await;

    assert_isolated(&app, &token, &globex, &app.other_admin).await;
}

// ---------------------------------------------------------------------------
// 4. Keys over the API
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_created_key_is_shown_once_and_works_at_once_with_its_role() {
    let app = spawn_app().await;
    // What each role's new key may do: list candidates, create one, list keys.
    let probes = [
        ("admin", [200, 201, 200]),
        ("recruiter", [200, 201, 403]),
        ("reporter", [200, 403, 403]),
    ];
    for (role, [read, record, manage]) in probes {
        let reply = app
            .post(
                "/api/v1/keys",
                &app.admin,
                json!({"name": format!("New {role} key"), "role": role}),
            )
            .await;
        let body = reply.assert_status(201).clone();
        let fields: BTreeSet<&str> = body
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(fields, BTreeSet::from(["key", "token"]), "{body}");
        let key = &body["key"];
        let token = body["token"].as_str().unwrap();
        assert!(key["id"].is_i64(), "{body}");
        assert_eq!(key["name"], format!("New {role} key"));
        assert_eq!(key["role"], role);
        assert!(key["revoked_at"].is_null());
        assert!(key["last_used_at"].is_null());
        assert!(key["created_at"].is_string());
        assert!(key.get("token").is_none(), "the key object has no token");
        assert!(token.starts_with("tpt_"), "{token}");
        let prefix = key["token_prefix"].as_str().unwrap();
        assert!(prefix.len() > 4 && prefix.len() < token.len(), "{prefix}");
        assert!(token.starts_with(prefix), "{prefix} prefixes {token}");

        let context = format!("a new {role} key");
        check(&app.get("/api/v1/candidates", token).await, read, &context);
        let candidate = json!({"external_ref": format!("BY-{role}")});
        check(
            &app.post("/api/v1/candidates", token, candidate).await,
            record,
            &context,
        );
        check(&app.get("/api/v1/keys", token).await, manage, &context);
    }
}

#[tokio::test]
async fn the_token_is_never_returned_again() {
    let app = spawn_app().await;
    let (key, token) = create_key(&app, &app.admin, "BI export", "reporter").await;
    app.get("/api/v1/encounters", &token)
        .await
        .assert_status(200);

    let list = app.get("/api/v1/keys", &app.admin).await;
    let list = list.assert_status(200);
    let items = list["items"].as_array().unwrap();
    // The three bootstrap keys of acme and the new one; none of globex.
    assert_eq!(items.len(), 4, "{list}");
    for item in items {
        assert!(item.get("token").is_none(), "{item}");
        assert!(item.get("token_hash").is_none(), "{item}");
    }
    let listed = items.iter().find(|item| item["id"] == key["id"]).unwrap();
    assert_eq!(listed["token_prefix"], key["token_prefix"]);
    assert!(token.starts_with(listed["token_prefix"].as_str().unwrap()));
    assert!(listed["last_used_at"].is_string(), "the use was recorded");
    for secret in [&token, &app.admin, &app.recruiter, &app.reporter] {
        assert!(
            !list.to_string().contains(secret.as_str()),
            "the list leaks a token"
        );
    }

    let revoked = app
        .delete(&format!("/api/v1/keys/{}", key["id"]), &app.admin)
        .await;
    let revoked = revoked.assert_status(200);
    assert!(revoked.get("token").is_none(), "{revoked}");
    assert!(!revoked.to_string().contains(&token));
}

#[tokio::test]
async fn revoking_is_immediate_and_idempotent() {
    let app = spawn_app().await;
    let (key, token) = create_key(&app, &app.admin, "Agency", "recruiter").await;
    let path = format!("/api/v1/keys/{}", key["id"]);
    app.get("/api/v1/candidates", &token)
        .await
        .assert_status(200);

    let first = app.delete(&path, &app.admin).await;
    let first = first.assert_status(200).clone();
    assert_eq!(first["id"], key["id"]);
    assert_eq!(first["name"], "Agency");
    assert_eq!(first["role"], "recruiter");
    let revoked_at = first["revoked_at"].clone();
    assert!(revoked_at.is_string(), "{first}");

    check(
        &app.get("/api/v1/candidates", &token).await,
        401,
        "a revoked key",
    );

    let second = app.delete(&path, &app.admin).await;
    let second = second.assert_status(200);
    assert_eq!(
        second["revoked_at"], revoked_at,
        "revoking again changes nothing"
    );
    assert_eq!(second, &first);

    let listed = app.get("/api/v1/keys", &app.admin).await;
    let listed = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == key["id"])
        .cloned()
        .expect("revoked keys stay listed");
    assert_eq!(listed["revoked_at"], revoked_at);

    // Only that key: the others still work.
    for other in [&app.admin, &app.recruiter, &app.reporter] {
        app.get("/api/v1/candidates", other)
            .await
            .assert_status(200);
    }
    check(
        &app.delete("/api/v1/keys/987654321", &app.admin).await,
        404,
        "an unknown key",
    );
}

#[tokio::test]
async fn an_admin_key_cannot_revoke_itself_but_another_admin_can() {
    let app = spawn_app().await;
    let (key, token) = create_key(&app, &app.admin, "Short-lived", "admin").await;
    let path = format!("/api/v1/keys/{}", key["id"]);
    let events = app.count("audit_events").await;
    app.delete(&path, &token)
        .await
        .assert_error(409, "key_still_needed", Some("id"));
    assert_eq!(
        app.count("audit_events").await,
        events,
        "a refusal is no change"
    );
    check(
        &app.get("/api/v1/keys", &token).await,
        200,
        "a key that tried to revoke itself",
    );
    let reply = app.delete(&path, &app.admin).await;
    assert!(reply.assert_status(200)["revoked_at"].is_string());
    check(
        &app.get("/api/v1/keys", &token).await,
        401,
        "a key revoked by another admin",
    );
}

#[tokio::test]
async fn keys_are_created_only_with_a_known_role() {
    let app = spawn_app().await;
    let before = app.count("api_keys").await;
    let reply = app
        .post(
            "/api/v1/keys",
            &app.admin,
            json!({"name": "Root", "role": "superuser"}),
        )
        .await;
    reply.assert_error(422, "validation_failed", Some("role"));
    assert_eq!(app.count("api_keys").await, before);
}
