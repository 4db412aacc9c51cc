//! The audit trail (`GET /api/v1/audit-events`): every change made through
//! the API and the command line is recorded exactly once, in the
//! transaction of the change, with the key that made it and the names of
//! the fields it changed, never their values.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use super::helpers::{fresh_database, spawn_app, Reply, TestApp};

const AUDIT: &str = "/api/v1/audit-events";
const OCCURRED_AT: &str = "2026-03-02T10:00:00Z";

/// An API key: its id, name and token.
struct Key {
    id: i64,
    name: String,
    token: String,
}

/// The key with this token, as the keys list shows it.
async fn key_of(app: &TestApp, token: &str) -> Key {
    let list = app.get("/api/v1/keys?limit=500", &app.admin).await;
    let key = list.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| token.starts_with(key["token_prefix"].as_str().unwrap()))
        .expect("the key is listed")
        .clone();
    Key {
        id: key["id"].as_i64().unwrap(),
        name: key["name"].as_str().unwrap().to_owned(),
        token: token.to_owned(),
    }
}

async fn create_key(app: &TestApp, admin: &str, name: &str, role: &str) -> Key {
    let reply = app
        .post("/api/v1/keys", admin, json!({"name": name, "role": role}))
        .await;
    let body = reply.assert_status(201);
    Key {
        id: body["key"]["id"].as_i64().unwrap(),
        name: name.to_owned(),
        token: body["token"].as_str().unwrap().to_owned(),
    }
}

/// An event about one resource as the API lists it, but for its id and
/// time.
fn event(
    actor: &Key,
    resource: (&str, i64),
    action: &str,
    fields: &[&str],
    subject: Option<i64>,
) -> Value {
    run_event(
        actor,
        (resource.0, resource.1, resource.1),
        action,
        fields,
        subject,
    )
}

/// An event about a run of resources, `(type, first id, last id)`, as the
/// API lists it, but for its id and time.
fn run_event(
    actor: &Key,
    run: (&str, i64, i64),
    action: &str,
    fields: &[&str],
    subject: Option<i64>,
) -> Value {
    json!({
        "actor_key_id": actor.id,
        "actor_name": actor.name,
        "resource_type": run.0,
        "resource_id": run.1,
        "last_resource_id": run.2,
        "action": action,
        "changed_fields": fields,
        "subject_candidate_id": subject,
    })
}

fn without_id_and_time(mut event: Value) -> Value {
    let object = event.as_object_mut().unwrap();
    assert!(object.remove("id").unwrap().is_i64());
    assert!(object.remove("occurred_at").unwrap().is_string());
    event
}

/// Every event `query` selects, newest first, read page by page with
/// `limit` (checking the pages follow each other).
async fn walk(app: &TestApp, token: &str, query: &str, limit: u64) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{AUDIT}?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, token).await;
        let page = page.assert_status(200);
        let items = page["items"].as_array().unwrap();
        assert!(items.len() as u64 <= limit, "{page}");
        events.extend(items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len() as u64, limit, "only a full page has a next");
                cursor = Some(next.to_owned());
            }
            None => return events,
        }
    }
}

fn ids(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["id"].as_i64().unwrap()).collect()
}

/// The id of the newest event of the admin's organization (0 if none).
async fn newest_id(app: &TestApp) -> i64 {
    let page = app.get(&format!("{AUDIT}?limit=1"), &app.admin).await;
    page.assert_status(200)["items"][0]["id"]
        .as_i64()
        .unwrap_or(0)
}

/// The events recorded after event `since`, oldest first, without id and time.
async fn events_since(app: &TestApp, since: i64) -> Vec<Value> {
    let mut events: Vec<Value> = walk(app, &app.admin, "", 500)
        .await
        .into_iter()
        .filter(|e| e["id"].as_i64().unwrap() > since)
        .collect();
    events.reverse();
    events.into_iter().map(without_id_and_time).collect()
}

/// Sends a request with an `Idempotency-Key`.
async fn post_keyed(app: &TestApp, path: &str, token: &str, key: &str, body: Value) -> Reply {
    let request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(&body);
    TestApp::reply(request.send().await.unwrap()).await
}

/// Every operation of the document that changes something.
fn mutating_operations() -> BTreeSet<String> {
    let document: Value =
        serde_json::from_str(&touchpoint_tracker::api::openapi_document()).unwrap();
    let mut operations = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if method != "get" {
                operations.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    operations
}

/// Tracks which mutating operations a scenario ran, and checks each one's
/// events.
struct Workflow<'a> {
    app: &'a TestApp,
    covered: BTreeSet<String>,
    mark: i64,
}

impl<'a> Workflow<'a> {
    async fn new(app: &'a TestApp) -> Self {
        Workflow {
            app,
            covered: BTreeSet::new(),
            mark: newest_id(app).await,
        }
    }

    /// `operation` (as the document names it) just ran and recorded
    /// exactly `expected`, in this order.
    async fn recorded(&mut self, operation: &str, expected: Vec<Value>) {
        let recorded = events_since(self.app, self.mark).await;
        assert_eq!(recorded, expected, "{operation}");
        self.covered.insert(operation.to_owned());
        self.mark = newest_id(self.app).await;
    }

    /// Nothing was recorded since the last step.
    async fn recorded_nothing(&self, what: &str) {
        assert_eq!(
            events_since(self.app, self.mark).await,
            Vec::<Value>::new(),
            "{what}"
        );
    }

    /// The scenario is over: it ran exactly the operations [`SCENARIOS`]
    /// lists for it, and no personal value reached the trail.
    async fn finish(self, scenario: &str) {
        let (_, listed) = SCENARIOS
            .iter()
            .find(|(name, _)| *name == scenario)
            .expect("the scenario is listed");
        let listed: BTreeSet<String> = listed.iter().map(|op| op.to_string()).collect();
        assert_eq!(self.covered, listed, "the operations of {scenario}");
        assert_no_personal_value(self.app).await;
    }
}

/// Personal data the scenarios send; none of it may reach the trail.
const PERSONAL: [&str; 6] = [
    "Nguyen Thi Lan",
    "lan.nguyen@example.com",
    "ATS-AUDIT-1",
    "SURVEY-AUDIT-7",
    "Waited 40 minutes",
    "Loved the office",
];

/// The mutating operations each scenario below runs and checks the events
/// of. A mutating operation added to the API must be added to a scenario,
/// with its events, and listed here.
const SCENARIOS: [(&str, &[&str]); 11] = [
    ("keys", &["POST /api/v1/keys", "DELETE /api/v1/keys/{id}"]),
    (
        "dashboard sessions",
        &["POST /api/v1/session", "DELETE /api/v1/session"],
    ),
    ("organization", &["PATCH /api/v1/organization"]),
    (
        "catalog",
        &[
            "POST /api/v1/touchpoints",
            "PATCH /api/v1/touchpoints/{id}",
            "DELETE /api/v1/touchpoints/{id}",
        ],
    ),
    (
        "candidates",
        &["POST /api/v1/candidates", "PATCH /api/v1/candidates/{id}"],
    ),
    (
        "single encounter",
        &["POST /api/v1/encounters", "PATCH /api/v1/encounters/{id}"],
    ),
    (
        "batch and import",
        &[
            "POST /api/v1/encounters/batch",
            "POST /api/v1/encounters/import",
            "DELETE /api/v1/encounters/{id}",
        ],
    ),
    ("erasure", &["DELETE /api/v1/candidates/{id}"]),
    (
        "surveys",
        &[
            "POST /api/v1/survey-invitations",
            "POST /api/v1/survey-invitations/batch",
            "POST /api/v1/survey-invitations/{id}/revoke",
        ],
    ),
    (
        "webhooks",
        &[
            "POST /api/v1/webhooks",
            "PATCH /api/v1/webhooks/{id}",
            "POST /api/v1/webhooks/{id}/rotate-secret",
            "POST /api/v1/webhooks/{id}/ping",
            "POST /api/v1/webhooks/{id}/redeliveries",
            "DELETE /api/v1/webhooks/{id}",
        ],
    ),
    (
        "alerts",
        &[
            "POST /api/v1/alert-rules",
            "PATCH /api/v1/alert-rules/{id}",
            "POST /api/v1/alert-rules/{id}/evaluate",
            "POST /api/v1/alerts/{id}/acknowledge",
            "POST /api/v1/alerts/{id}/resolve",
            "DELETE /api/v1/alert-rules/{id}",
        ],
    ),
];

#[test]
fn every_mutating_operation_is_run_by_a_scenario() {
    let listed: BTreeSet<String> = SCENARIOS
        .iter()
        .flat_map(|(_, operations)| operations.iter().map(|op| op.to_string()))
        .collect();
    assert_eq!(
        listed,
        mutating_operations(),
        "every mutating operation records its events"
    );
}

/// Lan as a recruiter enters her: every personal field set.
fn lan_details() -> Value {
    json!({"external_ref": "ATS-AUDIT-1", "display_name": "Nguyen Thi Lan",
           "email": "lan.nguyen@example.com", "stage": "application"})
}

/// Creates Lan as the recruiter; returns her id.
async fn create_lan(app: &TestApp) -> i64 {
    let created = app
        .post("/api/v1/candidates", &app.recruiter, lan_details())
        .await;
    created.assert_status(201)["id"].as_i64().unwrap()
}

/// The catalog the encounter scenarios log against: the careers site and
/// the career fair.
async fn site_and_fair(app: &TestApp) -> (i64, i64) {
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let fair = app
        .touchpoint("Career fair", "employer_created", "event", "awareness")
        .await;
    (site, fair)
}

/// The fields an encounter's creation names: those sent, and the source.
const ENCOUNTER_FIELDS: [&str; 4] = ["candidate_id", "touchpoint_id", "occurred_at", "source"];

fn encounter_fields(more: &[&'static str]) -> Vec<&'static str> {
    ENCOUNTER_FIELDS.iter().chain(more).copied().collect()
}

/// A key records the key that created it (the bootstrap admin's, then one
/// created through the API), naming its expiry when it has one; revoking
/// records once, revoking again nothing.
#[tokio::test]
async fn keys_record_the_key_that_created_and_the_one_that_revoked_them() {
    let app = spawn_app().await;
    let bootstrap = key_of(&app, &app.admin).await;
    let mut flow = Workflow::new(&app).await;

    let hr = create_key(&app, &app.admin, "HR team", "admin").await;
    flow.recorded(
        "POST /api/v1/keys",
        vec![event(
            &bootstrap,
            ("api_key", hr.id),
            "create",
            &["name", "role"],
            None,
        )],
    )
    .await;
    let recruiter = create_key(&app, &hr.token, "Recruiting desk", "recruiter").await;
    flow.recorded(
        "POST /api/v1/keys",
        vec![event(
            &hr,
            ("api_key", recruiter.id),
            "create",
            &["name", "role"],
            None,
        )],
    )
    .await;
    let expiring = app
        .post(
            "/api/v1/keys",
            &hr.token,
            json!({"name": "Agency, one month", "role": "recruiter",
                   "expires_at": (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339()}),
        )
        .await
        .assert_status(201)["key"]["id"]
        .as_i64()
        .unwrap();
    flow.recorded(
        "POST /api/v1/keys",
        vec![event(
            &hr,
            ("api_key", expiring),
            "create",
            &["name", "role", "expires_at"],
            None,
        )],
    )
    .await;

    app.delete(&format!("/api/v1/keys/{}", recruiter.id), &hr.token)
        .await
        .assert_status(200);
    flow.recorded(
        "DELETE /api/v1/keys/{id}",
        vec![event(
            &hr,
            ("api_key", recruiter.id),
            "revoke",
            &["revoked_at"],
            None,
        )],
    )
    .await;
    app.delete(&format!("/api/v1/keys/{}", recruiter.id), &hr.token)
        .await
        .assert_status(200);
    flow.recorded_nothing("revoking again changes nothing")
        .await;
    flow.finish("keys").await;
}

/// A change of the organization's settings names only the field whose
/// value changes, not one sent with its current value.
/// A dashboard sign-in and sign-out are the key's, with the session's id;
/// signing out again records nothing, and revoking a key with a session
/// records only the revocation.
#[tokio::test]
async fn dashboard_sign_in_and_sign_out_record_the_key() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let mut flow = Workflow::new(&app).await;

    let response = app
        .client
        .post(app.url("/api/v1/session"))
        .bearer_auth(&recruiter.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let cookie = response.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session_id = newest_event(&app).await["resource_id"].as_i64().unwrap();
    flow.recorded(
        "POST /api/v1/session",
        vec![event(
            &recruiter,
            ("dashboard_session", session_id),
            "create",
            &["expires_at"],
            None,
        )],
    )
    .await;

    let sign_out = || {
        app.client
            .delete(app.url("/api/v1/session"))
            .header(reqwest::header::COOKIE, &cookie)
            .header(reqwest::header::ORIGIN, &app.base_url)
            .send()
    };
    assert_eq!(sign_out().await.unwrap().status(), 204);
    flow.recorded(
        "DELETE /api/v1/session",
        vec![event(
            &recruiter,
            ("dashboard_session", session_id),
            "delete",
            &[],
            None,
        )],
    )
    .await;
    assert_eq!(sign_out().await.unwrap().status(), 401);
    flow.recorded_nothing("an ended session cannot sign out again")
        .await;
    flow.finish("dashboard sessions").await;
}

/// The newest event of the trail, as the API lists it.
async fn newest_event(app: &TestApp) -> Value {
    let list = app.get("/api/v1/audit-events?limit=1", &app.admin).await;
    list.assert_status(200)["items"][0].clone()
}

#[tokio::test]
async fn organization_settings_record_only_the_field_that_changes() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let mut flow = Workflow::new(&app).await;

    let organization = app.get("/api/v1/organization", &admin.token).await;
    let organization = organization.assert_status(200)["id"].as_i64().unwrap();
    app.patch(
        "/api/v1/organization",
        &admin.token,
        json!({"name": "Acme Corp", "min_group_size": 5}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/organization",
        vec![event(
            &admin,
            ("organization", organization),
            "update",
            &["min_group_size"],
            None,
        )],
    )
    .await;
    // Back to 0: a change back is a change.
    app.patch(
        "/api/v1/organization",
        &admin.token,
        json!({"min_group_size": 0}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/organization",
        vec![event(
            &admin,
            ("organization", organization),
            "update",
            &["min_group_size"],
            None,
        )],
    )
    .await;
    flow.finish("organization").await;
}

/// A touchpoint's creation names the fields sent, its update the fields
/// that change (a cleared description included), its archiving
/// `archived_at`, once.
#[tokio::test]
async fn catalog_changes_record_the_fields_they_set() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let mut flow = Workflow::new(&app).await;

    let site = app
        .post(
            "/api/v1/touchpoints",
            &admin.token,
            json!({"name": "Careers site", "kind": "employer_created",
                   "channel": "careers_site", "stage": "awareness",
                   "description": "Our jobs page"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    flow.recorded(
        "POST /api/v1/touchpoints",
        vec![event(
            &admin,
            ("touchpoint", site),
            "create",
            &["name", "kind", "channel", "stage", "description"],
            None,
        )],
    )
    .await;
    let fair = app
        .post(
            "/api/v1/touchpoints",
            &admin.token,
            json!({"name": "Career fair", "kind": "employer_created",
                   "channel": "event", "stage": "awareness"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    flow.recorded(
        "POST /api/v1/touchpoints",
        vec![event(
            &admin,
            ("touchpoint", fair),
            "create",
            &["name", "kind", "channel", "stage"],
            None,
        )],
    )
    .await;
    // `kind` is sent with its current value: not a change.
    app.patch(
        &format!("/api/v1/touchpoints/{site}"),
        &admin.token,
        json!({"kind": "employer_created", "stage": "consideration", "description": null}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/touchpoints/{id}",
        vec![event(
            &admin,
            ("touchpoint", site),
            "update",
            &["stage", "description"],
            None,
        )],
    )
    .await;

    app.delete(&format!("/api/v1/touchpoints/{fair}"), &admin.token)
        .await
        .assert_status(200);
    flow.recorded(
        "DELETE /api/v1/touchpoints/{id}",
        vec![event(
            &admin,
            ("touchpoint", fair),
            "archive",
            &["archived_at"],
            None,
        )],
    )
    .await;
    app.delete(&format!("/api/v1/touchpoints/{fair}"), &admin.token)
        .await
        .assert_status(200);
    flow.recorded_nothing("archiving again changes nothing")
        .await;
    flow.finish("catalog").await;
}

/// A candidate's creation and update name their personal fields, never
/// their values, and the candidate is their own subject; an idempotent
/// replay records nothing.
#[tokio::test]
async fn candidate_changes_record_field_names_and_a_replay_records_nothing() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let mut flow = Workflow::new(&app).await;

    let created = post_keyed(
        &app,
        "/api/v1/candidates",
        &recruiter.token,
        "audit-candidate-1",
        lan_details(),
    )
    .await;
    let lan = created.assert_status(201)["id"].as_i64().unwrap();
    flow.recorded(
        "POST /api/v1/candidates",
        vec![event(
            &recruiter,
            ("candidate", lan),
            "create",
            &["external_ref", "display_name", "email", "stage"],
            Some(lan),
        )],
    )
    .await;
    let replay = post_keyed(
        &app,
        "/api/v1/candidates",
        &recruiter.token,
        "audit-candidate-1",
        lan_details(),
    )
    .await;
    assert_eq!(replay.assert_status(201)["id"], lan);
    flow.recorded_nothing("an idempotent replay").await;

    // `display_name` is sent with its current value: not a change.
    app.patch(
        &format!("/api/v1/candidates/{lan}"),
        &recruiter.token,
        json!({"email": null, "stage": "interview", "display_name": "Nguyen Thi Lan"}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/candidates/{id}",
        vec![event(
            &recruiter,
            ("candidate", lan),
            "update",
            &["email", "stage"],
            Some(lan),
        )],
    )
    .await;
    flow.finish("candidates").await;
}

/// A single encounter, through the group commit, records one event naming
/// its note but not the note; its replay records nothing, and its update
/// names only the field whose value changes.
#[tokio::test]
async fn a_single_encounter_records_once_and_its_update_names_what_changed() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let (site, _) = site_and_fair(&app).await;
    let lan = create_lan(&app).await;
    let mut flow = Workflow::new(&app).await;

    let single = json!({"candidate_id": lan, "touchpoint_id": site, "occurred_at": OCCURRED_AT,
                        "score": 3, "note": "Waited 40 minutes, nobody came"});
    let noted = post_keyed(
        &app,
        "/api/v1/encounters",
        &recruiter.token,
        "audit-encounter-1",
        single.clone(),
    )
    .await
    .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    flow.recorded(
        "POST /api/v1/encounters",
        vec![event(
            &recruiter,
            ("encounter", noted),
            "create",
            &encounter_fields(&["score", "note"]),
            Some(lan),
        )],
    )
    .await;
    post_keyed(
        &app,
        "/api/v1/encounters",
        &recruiter.token,
        "audit-encounter-1",
        single,
    )
    .await
    .assert_status(201);
    flow.recorded_nothing("an idempotent replay").await;

    // `source` is sent with its current value: not a change.
    app.patch(
        &format!("/api/v1/encounters/{noted}"),
        &recruiter.token,
        json!({"score": 4, "source": "recruiter_observation"}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/encounters/{id}",
        vec![event(
            &recruiter,
            ("encounter", noted),
            "update",
            &["score"],
            Some(lan),
        )],
    )
    .await;
    flow.finish("single encounter").await;
}

/// A batch and an NDJSON import record the candidates they create by
/// reference before the encounters, one event per run of each, naming
/// every field set on one of its encounters, and no subject when they are
/// about several candidates; deleting an encounter records its candidate.
/// Asked for by resource, the trail lists the run that created it.
#[tokio::test]
async fn batch_and_import_record_the_candidates_they_create_then_their_encounters() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let (site, fair) = site_and_fair(&app).await;
    let lan = create_lan(&app).await;
    let mut flow = Workflow::new(&app).await;

    // A batch: one item for Lan, one creating a candidate by reference.
    let batch = app
        .post(
            "/api/v1/encounters/batch",
            &recruiter.token,
            json!([
                {"candidate_id": lan, "touchpoint_name": "Career fair",
                 "occurred_at": OCCURRED_AT, "note": "Loved the office"},
                {"candidate_external_ref": "SURVEY-AUDIT-7", "touchpoint_id": fair,
                 "occurred_at": OCCURRED_AT, "score": 9},
            ]),
        )
        .await;
    let batch = batch.assert_status(201);
    let [fair_lan, fair_new]: [i64; 2] = ids_of(&batch["encounter_ids"]).try_into().unwrap();
    let surveyed = candidate_by_ref(&app, "SURVEY-AUDIT-7").await;
    flow.recorded(
        "POST /api/v1/encounters/batch",
        vec![
            event(
                &recruiter,
                ("candidate", surveyed),
                "create",
                &["external_ref", "stage"],
                Some(surveyed),
            ),
            run_event(
                &recruiter,
                ("encounter", fair_lan, fair_new),
                "create",
                &encounter_fields(&["note", "score"]),
                None,
            ),
        ],
    )
    .await;

    // An NDJSON import: a new candidate by reference, and a known one.
    let import = app
        .post_raw(
            "/api/v1/encounters/import",
            &admin.token,
            "application/x-ndjson",
            &format!(
                "{}\n{}\n",
                json!({"candidate_external_ref": "SURVEY-AUDIT-8", "touchpoint_id": site,
                       "occurred_at": OCCURRED_AT, "score": 6}),
                json!({"candidate_external_ref": "SURVEY-AUDIT-7", "touchpoint_id": site,
                       "occurred_at": OCCURRED_AT}),
            ),
        )
        .await;
    assert_eq!(import.assert_status(200)["encounters_created"], 2);
    let imported = candidate_by_ref(&app, "SURVEY-AUDIT-8").await;
    let listed = app
        .get(
            &format!("/api/v1/encounters?touchpoint_id={site}&limit=500"),
            &app.admin,
        )
        .await;
    let [import_first, import_second]: [i64; 2] = ids_of(&listed.assert_status(200)["items"])
        .try_into()
        .unwrap();
    let import_run = run_event(
        &admin,
        ("encounter", import_first, import_second),
        "create",
        &encounter_fields(&["score"]),
        None,
    );
    flow.recorded(
        "POST /api/v1/encounters/import",
        vec![
            event(
                &admin,
                ("candidate", imported),
                "create",
                &["external_ref", "stage"],
                Some(imported),
            ),
            import_run.clone(),
        ],
    )
    .await;

    app.delete(
        &format!("/api/v1/encounters/{import_second}"),
        &recruiter.token,
    )
    .await
    .assert_status(204);
    let deleted = event(
        &recruiter,
        ("encounter", import_second),
        "delete",
        &[],
        Some(surveyed),
    );
    flow.recorded("DELETE /api/v1/encounters/{id}", vec![deleted.clone()])
        .await;

    // By resource: the events about the encounter, and the run holding it.
    let about = walk(
        &app,
        &app.admin,
        &format!("&resource_type=encounter&resource_id={import_second}"),
        500,
    )
    .await;
    let about: Vec<Value> = about.into_iter().map(without_id_and_time).collect();
    assert_eq!(about, [deleted, import_run]);
    flow.finish("batch and import").await;
}

/// Erasing a candidate records the personal fields that held a value (Lan
/// has cleared her email) and one event per note of theirs; erasing again
/// records nothing.
#[tokio::test]
async fn erasure_records_the_personal_fields_and_each_note() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let (site, fair) = site_and_fair(&app).await;
    let lan = create_lan(&app).await;
    app.patch(
        &format!("/api/v1/candidates/{lan}"),
        &app.recruiter,
        json!({"email": null}),
    )
    .await
    .assert_status(200);
    let mut noted = Vec::new();
    for (touchpoint, note) in [
        (site, "Waited 40 minutes, nobody came"),
        (fair, "Loved the office"),
    ] {
        let reply = app
            .post(
                "/api/v1/encounters",
                &app.recruiter,
                json!({"candidate_id": lan, "touchpoint_id": touchpoint,
                       "occurred_at": OCCURRED_AT, "note": note}),
            )
            .await;
        noted.push(reply.assert_status(201)["id"].as_i64().unwrap());
    }
    // An encounter without a note has nothing to erase.
    app.encounter(lan, site, OCCURRED_AT, Some(3)).await;
    let mut flow = Workflow::new(&app).await;

    app.delete(&format!("/api/v1/candidates/{lan}"), &admin.token)
        .await
        .assert_status(200);
    flow.recorded(
        "DELETE /api/v1/candidates/{id}",
        vec![
            event(
                &admin,
                ("candidate", lan),
                "erase",
                &["external_ref", "display_name", "erased_at"],
                Some(lan),
            ),
            event(
                &admin,
                ("encounter", noted[0]),
                "erase",
                &["note"],
                Some(lan),
            ),
            event(
                &admin,
                ("encounter", noted[1]),
                "erase",
                &["note"],
                Some(lan),
            ),
        ],
    )
    .await;
    app.delete(&format!("/api/v1/candidates/{lan}"), &admin.token)
        .await
        .assert_status(200);
    flow.recorded_nothing("erasing again changes nothing").await;
    flow.finish("erasure").await;
}

fn ids_of(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item.as_i64().or(item["id"].as_i64()).unwrap())
        .collect()
}

async fn candidate_by_ref(app: &TestApp, external_ref: &str) -> i64 {
    let found = app
        .get(
            &format!("/api/v1/candidates?external_ref={external_ref}"),
            &app.admin,
        )
        .await;
    found.assert_status(200)["items"][0]["id"].as_i64().unwrap()
}

/// Every audit row of the database, all its columns as text.
async fn audit_rows_as_text(app: &TestApp) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = app
        .db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT actor_name, resource_type, action, changed_fields, \
             CAST(occurred_at AS TEXT) AS occurred_at FROM audit_events"
                .to_owned(),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            [
                "actor_name",
                "resource_type",
                "action",
                "changed_fields",
                "occurred_at",
            ]
            .iter()
            .map(|column| row.try_get::<String>("", column).unwrap())
            .collect::<Vec<_>>()
            .join(" | ")
        })
        .collect()
}

/// No personal value reached the trail, neither in the API nor in a row
/// of the database (whose rows are both organizations').
async fn assert_no_personal_value(app: &TestApp) {
    let everything = walk(app, &app.admin, "", 500).await;
    let listed = Value::from(everything.clone()).to_string();
    let rows = audit_rows_as_text(app).await;
    assert!(rows.len() > everything.len(), "acme's rows and globex's");
    for needle in PERSONAL {
        assert!(!listed.contains(needle), "{needle} in the listed trail");
        for row in &rows {
            assert!(!row.contains(needle), "{needle} in an audit row: {row}");
        }
    }
}

/// The service's own changes: the command line's organization and keys.
#[tokio::test]
async fn the_command_line_is_recorded_as_the_actor() {
    let database = fresh_database().await;
    let url = database.url.clone();
    super::helpers::run_cli(&url, &["org", "create", "acme", "Acme Corp"]);
    let token = super::helpers::run_cli(
        &url,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--role",
            "admin",
            "--name",
            "HR laptop",
        ],
    );
    let service = super::helpers::ServiceProcess::start_healthy(&url).await;
    let api = super::helpers::ApiClient {
        base_url: service.api.clone(),
        token,
        client: reqwest::Client::new(),
    };
    let trail = api.get(AUDIT).await;
    let mut events = trail.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    events.reverse();
    let keys = api.get("/api/v1/keys").await;
    let key_id = keys.assert_status(200)["items"][0]["id"].as_i64().unwrap();
    let events: Vec<Value> = events.into_iter().map(without_id_and_time).collect();
    let organization_id = events[0]["resource_id"].clone();
    assert_eq!(
        events,
        vec![
            json!({"actor_key_id": null, "actor_name": "command line",
                   "resource_type": "organization", "resource_id": organization_id,
                   "last_resource_id": organization_id, "action": "create", "changed_fields": ["slug", "name"],
                   "subject_candidate_id": null}),
            json!({"actor_key_id": null, "actor_name": "command line",
                   "resource_type": "api_key", "resource_id": key_id,
                   "last_resource_id": key_id, "action": "create", "changed_fields": ["name", "role"],
                   "subject_candidate_id": null}),
        ]
    );
}

#[tokio::test]
async fn a_refused_or_failed_change_records_nothing() {
    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let archived = app
        .touchpoint(
            "Old job board",
            "employer_created",
            "job_board",
            "awareness",
        )
        .await;
    app.delete(&format!("/api/v1/touchpoints/{archived}"), &app.admin)
        .await
        .assert_status(200);
    let lan = app.candidate("ATS-1").await;
    let erased = app.candidate("ATS-2").await;
    app.delete(&format!("/api/v1/candidates/{erased}"), &app.admin)
        .await
        .assert_status(200);
    let before = app.count("audit_events").await;
    let candidates_before = app.count("candidates").await;

    let refusals: Vec<(Reply, u16)> = vec![
        // Validation.
        (
            app.post(
                "/api/v1/touchpoints",
                &app.admin,
                json!({"name": "", "kind": "true", "channel": "press", "stage": "alumni"}),
            )
            .await,
            422,
        ),
        (
            app.patch(
                &format!("/api/v1/encounters/{}", 1),
                &app.recruiter,
                json!({"score": 11}),
            )
            .await,
            422,
        ),
        // A name or reference already taken.
        (
            app.post(
                "/api/v1/touchpoints",
                &app.admin,
                json!({"name": "Careers site", "kind": "true", "channel": "press",
                       "stage": "alumni"}),
            )
            .await,
            409,
        ),
        (
            app.post(
                "/api/v1/candidates",
                &app.recruiter,
                json!({"external_ref": "ATS-1"}),
            )
            .await,
            409,
        ),
        // An erased candidate, an archived touchpoint.
        (
            app.patch(
                &format!("/api/v1/candidates/{erased}"),
                &app.recruiter,
                json!({"stage": "offer"}),
            )
            .await,
            409,
        ),
        (
            app.post(
                "/api/v1/encounters",
                &app.recruiter,
                json!({"candidate_id": lan, "touchpoint_id": archived,
                       "occurred_at": OCCURRED_AT}),
            )
            .await,
            409,
        ),
        // An unknown candidate, through the group commit.
        (
            app.post(
                "/api/v1/encounters",
                &app.recruiter,
                json!({"candidate_id": lan + 1000, "touchpoint_id": site,
                       "occurred_at": OCCURRED_AT}),
            )
            .await,
            422,
        ),
        // An all-or-nothing batch with one bad item, after a good one that
        // would have created a candidate.
        (
            app.post(
                "/api/v1/encounters/batch",
                &app.recruiter,
                json!([
                    {"candidate_external_ref": "NEW-1", "touchpoint_id": site,
                     "occurred_at": OCCURRED_AT, "score": 8},
                    {"candidate_id": lan, "touchpoint_name": "No such touchpoint",
                     "occurred_at": OCCURRED_AT},
                ]),
            )
            .await,
            422,
        ),
        // A role that may not.
        (
            app.post(
                "/api/v1/keys",
                &app.recruiter,
                json!({"name": "Sneaky", "role": "admin"}),
            )
            .await,
            403,
        ),
        (
            app.delete(&format!("/api/v1/candidates/{lan}"), &app.reporter)
                .await,
            403,
        ),
        // Another organization's resource.
        (
            app.delete(&format!("/api/v1/touchpoints/{site}"), &app.other_admin)
                .await,
            404,
        ),
    ];
    for (reply, status) in &refusals {
        reply.assert_status(*status);
    }
    // A failed import chunk.
    let import = app
        .post_raw(
            "/api/v1/encounters/import",
            &app.recruiter,
            "application/x-ndjson",
            &format!(
                "{}\n{}\n",
                json!({"candidate_external_ref": "NEW-2", "touchpoint_id": site,
                       "occurred_at": OCCURRED_AT}),
                json!({"candidate_id": lan, "touchpoint_id": archived,
                       "occurred_at": OCCURRED_AT}),
            ),
        )
        .await;
    import.assert_error(422, "invalid_items", None);

    assert_eq!(app.count("audit_events").await, before, "no event");
    assert_eq!(app.count("candidates").await, candidates_before);
}

#[tokio::test]
async fn events_are_listed_newest_first_filtered_and_paged() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let fair = app
        .touchpoint("Career fair", "employer_created", "event", "awareness")
        .await;
    for stage in ["consideration", "application", "screening"] {
        app.patch(
            &format!("/api/v1/touchpoints/{site}"),
            &app.admin,
            json!({"stage": stage}),
        )
        .await
        .assert_status(200);
    }
    let candidate = app.candidate("ATS-1").await;
    for n in 0..4 {
        app.encounter(candidate, fair, OCCURRED_AT, Some(n)).await;
    }

    // Newest first; every page size walks the same events.
    let all = walk(&app, &app.admin, "", 500).await;
    let all_ids = ids(&all);
    assert!(all_ids.windows(2).all(|w| w[0] > w[1]), "{all_ids:?}");
    assert!(all.len() >= 12, "{}", all.len());
    for limit in [1, 2, 5] {
        assert_eq!(ids(&walk(&app, &app.admin, "", limit).await), all_ids);
    }

    // By resource.
    let site_events = walk(
        &app,
        &app.admin,
        &format!("&resource_type=touchpoint&resource_id={site}"),
        2,
    )
    .await;
    let actions: Vec<&str> = site_events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "update", "update", "create"]);
    assert!(site_events.iter().all(|e| e["resource_id"] == site));
    let encounters = walk(&app, &app.admin, "&resource_type=encounter", 3).await;
    assert_eq!(encounters.len(), 4);
    assert!(encounters
        .iter()
        .all(|e| e["subject_candidate_id"] == candidate));

    // By actor.
    let by_recruiter = walk(
        &app,
        &app.admin,
        &format!("&actor_key_id={}", recruiter.id),
        500,
    )
    .await;
    assert_eq!(by_recruiter.len(), 5, "the candidate and four encounters");
    assert!(by_recruiter
        .iter()
        .all(|e| e["actor_key_id"] == recruiter.id && e["actor_name"] == recruiter.name));
    let by_admin = walk(
        &app,
        &app.admin,
        &format!("&actor_key_id={}", admin.id),
        500,
    )
    .await;
    assert_eq!(by_admin.len(), 5, "two touchpoints and three changes");

    // By time: `from` inclusive, `to` exclusive.
    let oldest = all.last().unwrap()["occurred_at"]
        .as_str()
        .unwrap()
        .to_owned();
    let newest = all[0]["occurred_at"].as_str().unwrap().to_owned();
    let query = |from: &str, to: &str| format!("&from={}&to={}", urlencode(from), urlencode(to));
    let far_future = "2100-01-01T00:00:00Z";
    assert_eq!(
        ids(&walk(&app, &app.admin, &query(&oldest, far_future), 500).await),
        all_ids
    );
    let before_newest = walk(&app, &app.admin, &query(&oldest, &newest), 500).await;
    assert!(before_newest
        .iter()
        .all(|e| time(&e["occurred_at"]) < time(&all[0]["occurred_at"])));
    assert!(before_newest.len() < all.len());
    assert!(walk(
        &app,
        &app.admin,
        &query(far_future, "2100-01-02T00:00:00Z"),
        500
    )
    .await
    .is_empty());

    // Bad filters name the parameter.
    for (query, field) in [
        (query(far_future, &oldest), "from"),
        (query(&oldest, &oldest), "from"),
        ("&from=yesterday".to_owned(), "from"),
        ("&to=2026-13-01T00:00:00Z".to_owned(), "to"),
        ("&resource_type=invoice".to_owned(), "resource_type"),
        ("&resource_id=7".to_owned(), "resource_id"),
        (
            "&resource_type=candidate&resource_id=x".to_owned(),
            "resource_id",
        ),
        ("&actor_key_id=me".to_owned(), "actor_key_id"),
        ("&cursor=not-a-cursor".to_owned(), "cursor"),
        ("&limit=0".to_owned(), "limit"),
        ("&limit=501".to_owned(), "limit"),
    ] {
        let path = format!("{AUDIT}?{}", &query[1..]);
        app.get(&path, &app.admin)
            .await
            .assert_error(422, "validation_failed", Some(field));
    }

    // Admins only.
    for token in [&app.recruiter, &app.reporter] {
        app.get(AUDIT, token)
            .await
            .assert_error(403, "forbidden", None);
    }
}

fn time(value: &Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(value.as_str().unwrap()).unwrap()
}

fn urlencode(value: &str) -> String {
    value.replace(':', "%3A").replace('+', "%2B")
}

#[tokio::test]
async fn the_subject_access_export_holds_the_candidates_events_only() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let admin = key_of(&app, &app.admin).await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let lan = app.candidate("ATS-1").await;
    let other = app.candidate("ATS-2").await;
    app.patch(
        &format!("/api/v1/candidates/{lan}"),
        &app.recruiter,
        json!({"display_name": "Nguyen Thi Lan"}),
    )
    .await
    .assert_status(200);
    let kept = app.encounter(lan, site, OCCURRED_AT, Some(7)).await;
    let deleted = app.encounter(lan, site, OCCURRED_AT, Some(2)).await;
    app.encounter(other, site, OCCURRED_AT, Some(9)).await;
    app.delete(&format!("/api/v1/encounters/{deleted}"), &app.recruiter)
        .await
        .assert_status(204);

    let export = |id: i64| {
        let app = &app;
        async move {
            let reply = app
                .get(&format!("/api/v1/candidates/{id}/export"), &app.admin)
                .await;
            reply.assert_status(200)["audit_events"]
                .as_array()
                .unwrap()
                .clone()
        }
    };
    let trail = export(lan).await;
    let ids_in_export = ids(&trail);
    assert!(
        ids_in_export.windows(2).all(|w| w[0] < w[1]),
        "oldest first"
    );
    let mut listed: Vec<Value> = walk(&app, &app.admin, "", 500)
        .await
        .into_iter()
        .filter(|e| e["subject_candidate_id"] == lan)
        .collect();
    listed.reverse();
    assert_eq!(trail, listed, "the export shows the events as listed");
    let encounter_fields = [
        "candidate_id",
        "touchpoint_id",
        "occurred_at",
        "source",
        "score",
    ];
    assert_eq!(
        trail
            .into_iter()
            .map(without_id_and_time)
            .collect::<Vec<_>>(),
        vec![
            event(
                &recruiter,
                ("candidate", lan),
                "create",
                &["external_ref", "stage"],
                Some(lan)
            ),
            event(
                &recruiter,
                ("candidate", lan),
                "update",
                &["display_name"],
                Some(lan)
            ),
            event(
                &recruiter,
                ("encounter", kept),
                "create",
                &encounter_fields,
                Some(lan)
            ),
            event(
                &recruiter,
                ("encounter", deleted),
                "create",
                &encounter_fields,
                Some(lan)
            ),
            event(&recruiter, ("encounter", deleted), "delete", &[], Some(lan)),
        ]
    );

    // After erasure, the erasure is part of it; the other candidate's
    // export has only their own.
    app.delete(&format!("/api/v1/candidates/{lan}"), &app.admin)
        .await
        .assert_status(200);
    let after = export(lan).await;
    assert_eq!(after.len(), 6);
    assert_eq!(
        without_id_and_time(after[5].clone()),
        event(
            &admin,
            ("candidate", lan),
            "erase",
            &["external_ref", "display_name", "erased_at"],
            Some(lan)
        )
    );
    let theirs = export(other).await;
    assert_eq!(theirs.len(), 2, "{theirs:?}");
    assert!(theirs.iter().all(|e| e["subject_candidate_id"] == other));
}

#[tokio::test]
async fn another_organization_sees_none_of_the_events() {
    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let lan = app.candidate("ATS-1").await;
    app.encounter(lan, site, OCCURRED_AT, Some(7)).await;
    app.post(
        "/api/v1/touchpoints",
        &app.other_admin,
        json!({"name": "Globex site", "kind": "true", "channel": "press", "stage": "alumni"}),
    )
    .await
    .assert_status(201);

    let acme: BTreeSet<i64> = ids(&walk(&app, &app.admin, "", 500).await)
        .into_iter()
        .collect();
    let globex = walk(&app, &app.other_admin, "", 500).await;
    let globex_ids: BTreeSet<i64> = ids(&globex).into_iter().collect();
    assert!(!acme.is_empty() && !globex_ids.is_empty());
    assert!(acme.is_disjoint(&globex_ids), "{acme:?} vs {globex_ids:?}");
    // Globex's own: its organization, its key, its touchpoint.
    assert_eq!(globex.len(), 3, "{globex:?}");
    for query in [
        format!("&resource_type=touchpoint&resource_id={site}"),
        format!("&resource_type=candidate&resource_id={lan}"),
        format!("&actor_key_id={}", key_of(&app, &app.admin).await.id),
    ] {
        assert!(
            walk(&app, &app.other_admin, &query, 500).await.is_empty(),
            "{query}"
        );
    }
}

/// Concurrent single POSTs share group-committed transactions, of several
/// keys at once: each encounter gets one event, naming its own key.
#[tokio::test]
async fn group_committed_encounters_each_record_their_own_key() {
    let app = spawn_app().await;
    let site = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let lan = app.candidate("ATS-1").await;
    let keys = [
        key_of(&app, &app.admin).await,
        key_of(&app, &app.recruiter).await,
    ];
    let posts = (0..60).map(|n| {
        let key = &keys[n % 2];
        app.post(
            "/api/v1/encounters",
            &key.token,
            json!({"candidate_id": lan, "touchpoint_id": site,
                   "occurred_at": OCCURRED_AT, "score": n % 11}),
        )
    });
    for reply in futures_util::future::join_all(posts).await {
        reply.assert_status(201);
    }
    let encounters = app
        .get("/api/v1/encounters?limit=500", &app.admin)
        .await
        .assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(encounters.len(), 60);
    let events = walk(&app, &app.admin, "&resource_type=encounter", 500).await;
    assert_eq!(events.len(), 60, "one event per encounter");
    for encounter in &encounters {
        let matching: Vec<&Value> = events
            .iter()
            .filter(|e| e["resource_id"] == encounter["id"])
            .collect();
        assert_eq!(matching.len(), 1, "{encounter}");
        let key = keys
            .iter()
            .find(|k| encounter["recorded_by_key_id"] == k.id)
            .unwrap();
        assert_eq!(matching[0]["actor_key_id"], key.id);
        assert_eq!(matching[0]["actor_name"], key.name.as_str());
        assert_eq!(matching[0]["action"], "create");
    }
}

/// Invitations record the key that created and revoked them, about the
/// candidate (so they are in the candidate's export); a confidential
/// answer records its encounter with the inviting key and the survey as
/// the actor's name; revoking again records nothing.
#[tokio::test]
async fn survey_invitations_record_who_invited_and_revoked() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let candidates = [
        app.candidate("INV-1").await,
        app.candidate("INV-2").await,
        app.candidate("INV-3").await,
    ];
    let mut flow = Workflow::new(&app).await;
    const CREATED: [&str; 5] = [
        "candidate_id",
        "touchpoint_id",
        "locale",
        "mode",
        "expires_at",
    ];

    let single = app
        .post(
            "/api/v1/survey-invitations",
            &recruiter.token,
            json!({"candidate_id": candidates[0], "touchpoint_id": touchpoint}),
        )
        .await;
    let single = single.assert_status(201).clone();
    let single_id = single["invitation"]["id"].as_i64().unwrap();
    flow.recorded(
        "POST /api/v1/survey-invitations",
        vec![event(
            &recruiter,
            ("survey_invitation", single_id),
            "create",
            &CREATED,
            Some(candidates[0]),
        )],
    )
    .await;
    let batch = app
        .post(
            "/api/v1/survey-invitations/batch",
            &recruiter.token,
            json!([
                {"candidate_id": candidates[1], "touchpoint_id": touchpoint},
                {"candidate_id": candidates[2], "touchpoint_id": touchpoint, "mode": "anonymous"},
            ]),
        )
        .await;
    let items = batch.assert_status(201)["items"]
        .as_array()
        .unwrap()
        .clone();
    let ids: Vec<i64> = items
        .iter()
        .map(|item| item["invitation"]["id"].as_i64().unwrap())
        .collect();
    flow.recorded(
        "POST /api/v1/survey-invitations/batch",
        vec![
            event(
                &recruiter,
                ("survey_invitation", ids[0]),
                "create",
                &CREATED,
                Some(candidates[1]),
            ),
            event(
                &recruiter,
                ("survey_invitation", ids[1]),
                "create",
                &CREATED,
                Some(candidates[2]),
            ),
        ],
    )
    .await;
    let path = |item: &Value| {
        let url = item["survey_url"].as_str().unwrap();
        url[url.find("/s/").unwrap()..].to_owned()
    };
    app.post(
        &format!("/api/v1/survey-invitations/{}/revoke", ids[0]),
        &recruiter.token,
        json!({}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "POST /api/v1/survey-invitations/{id}/revoke",
        vec![event(
            &recruiter,
            ("survey_invitation", ids[0]),
            "revoke",
            &["revoked_at"],
            Some(candidates[1]),
        )],
    )
    .await;
    app.post(
        &format!("/api/v1/survey-invitations/{}/revoke", ids[0]),
        &recruiter.token,
        json!({}),
    )
    .await
    .assert_status(200);
    flow.recorded_nothing("revoking again changes nothing")
        .await;

    // A confidential answer: the encounter, recorded by the inviting key
    // on the candidate's behalf; the comment is named, never quoted.
    let answered = app
        .client
        .post(app.url(&path(&single)))
        .form(&[("score", "8"), ("comment", "Loved the office")])
        .send()
        .await
        .unwrap();
    assert_eq!(answered.status(), 200);
    let invitation = app
        .get(
            &format!("/api/v1/survey-invitations/{single_id}"),
            &app.admin,
        )
        .await;
    let encounter_id = invitation.assert_status(200)["encounter_id"]
        .as_i64()
        .unwrap();
    let survey = Key {
        id: recruiter.id,
        name: "candidate survey".to_owned(),
        token: String::new(),
    };
    assert_eq!(
        events_since(&app, flow.mark).await,
        vec![event(
            &survey,
            ("encounter", encounter_id),
            "create",
            &encounter_fields(&["score", "note"]),
            Some(candidates[0]),
        )]
    );
    flow.mark = newest_id(&app).await;
    // An anonymous answer records nothing: an event would say when it came.
    let anonymous = app
        .client
        .post(app.url(&path(&items[1])))
        .form(&[("score", "4")])
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 200);
    flow.recorded_nothing("an anonymous answer").await;
    flow.finish("surveys").await;
}

/// Webhook endpoints record who created, changed, re-keyed and deleted
/// them, naming `secret` but never its value; a ping or a redelivery
/// changes nothing.
#[tokio::test]
async fn webhook_endpoints_record_every_change_but_never_the_secret() {
    let app =
        crate::helpers::spawn_app_with_webhooks(touchpoint_tracker::config::WebhookSettings {
            allow_http: true,
            allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
            ..Default::default()
        })
        .await;
    let admin = key_of(&app, &app.admin).await;
    // Nothing listens there: deliveries fail, which changes no data.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://127.0.0.1:{}/hook",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let mut flow = Workflow::new(&app).await;

    let created = app
        .post(
            "/api/v1/webhooks",
            &admin.token,
            json!({"url": url, "event_types": ["encounter.created"]}),
        )
        .await;
    let created = created.assert_status(201).clone();
    let id = created["endpoint"]["id"].as_i64().unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    flow.recorded(
        "POST /api/v1/webhooks",
        vec![event(
            &admin,
            ("webhook_endpoint", id),
            "create",
            &[
                "url",
                "event_types",
                "enabled",
                "include_personal_data",
                "secret",
            ],
            None,
        )],
    )
    .await;
    app.patch(
        &format!("/api/v1/webhooks/{id}"),
        &admin.token,
        json!({"enabled": false}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/webhooks/{id}",
        vec![event(
            &admin,
            ("webhook_endpoint", id),
            "update",
            &["enabled"],
            None,
        )],
    )
    .await;
    let rotated = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &admin.token,
            json!({}),
        )
        .await;
    let new_secret = rotated.assert_status(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    flow.recorded(
        "POST /api/v1/webhooks/{id}/rotate-secret",
        vec![event(
            &admin,
            ("webhook_endpoint", id),
            "update",
            &["secret"],
            None,
        )],
    )
    .await;
    let ping = app
        .post(
            &format!("/api/v1/webhooks/{id}/ping"),
            &admin.token,
            json!({}),
        )
        .await;
    assert_eq!(ping.assert_status(200)["delivered"], false);
    flow.recorded("POST /api/v1/webhooks/{id}/ping", vec![])
        .await;
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let candidate = app.candidate("HOOK-1").await;
    app.encounter(candidate, touchpoint, OCCURRED_AT, Some(7))
        .await;
    flow.mark = newest_id(&app).await;
    let events = app.get("/api/v1/webhook-events", &admin.token).await;
    let event_id = events.assert_status(200)["items"][0]["id"]
        .as_i64()
        .unwrap();
    let queued = app
        .post(
            &format!("/api/v1/webhooks/{id}/redeliveries"),
            &admin.token,
            json!({"event_id": event_id}),
        )
        .await;
    assert_eq!(queued.status, 202);
    flow.recorded("POST /api/v1/webhooks/{id}/redeliveries", vec![])
        .await;
    app.delete(&format!("/api/v1/webhooks/{id}"), &admin.token)
        .await
        .assert_status(204);
    flow.recorded(
        "DELETE /api/v1/webhooks/{id}",
        vec![event(&admin, ("webhook_endpoint", id), "delete", &[], None)],
    )
    .await;
    // No secret anywhere in the trail.
    let trail = serde_json::to_string(&walk(&app, &app.admin, "", 500).await).unwrap();
    assert!(!trail.contains(&secret) && !trail.contains(&new_secret));
    flow.finish("webhooks").await;
}

/// Alert rules record who created, changed and deleted them; alerts who
/// acknowledged and resolved them. Raising an alert (the service's doing)
/// and evaluating a rule record nothing.
#[tokio::test]
async fn alert_rules_and_alerts_record_who_changed_them() {
    let app = spawn_app().await;
    let admin = key_of(&app, &app.admin).await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let candidate = app.candidate("ALERT-1").await;
    let mut flow = Workflow::new(&app).await;

    let rule = app
        .post(
            "/api/v1/alert-rules",
            &admin.token,
            json!({"name": "Detractors", "kind": "detractor"}),
        )
        .await;
    let rule = rule.assert_status(201)["id"].as_i64().unwrap();
    flow.recorded(
        "POST /api/v1/alert-rules",
        vec![event(
            &admin,
            ("alert_rule", rule),
            "create",
            &["name", "kind"],
            None,
        )],
    )
    .await;
    app.patch(
        &format!("/api/v1/alert-rules/{rule}"),
        &admin.token,
        json!({"threshold": 4, "name": "Detractors"}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "PATCH /api/v1/alert-rules/{id}",
        vec![event(
            &admin,
            ("alert_rule", rule),
            "update",
            &["threshold"],
            None,
        )],
    )
    .await;
    let drop = app
        .post(
            "/api/v1/alert-rules",
            &admin.token,
            json!({"name": "Drops", "kind": "drop"}),
        )
        .await;
    let drop = drop.assert_status(201)["id"].as_i64().unwrap();
    flow.mark = newest_id(&app).await;
    app.post(
        &format!("/api/v1/alert-rules/{drop}/evaluate"),
        &admin.token,
        json!({}),
    )
    .await
    .assert_status(200);
    flow.recorded("POST /api/v1/alert-rules/{id}/evaluate", vec![])
        .await;
    app.encounter(candidate, touchpoint, OCCURRED_AT, Some(2))
        .await;
    flow.mark = newest_id(&app).await;
    let alerts = app.get("/api/v1/alerts", &admin.token).await;
    let alert = alerts.assert_status(200)["items"][0]["id"]
        .as_i64()
        .unwrap();
    app.post(
        &format!("/api/v1/alerts/{alert}/acknowledge"),
        &recruiter.token,
        json!({}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "POST /api/v1/alerts/{id}/acknowledge",
        vec![event(
            &recruiter,
            ("alert", alert),
            "update",
            &["status", "acknowledged_at"],
            None,
        )],
    )
    .await;
    app.post(
        &format!("/api/v1/alerts/{alert}/resolve"),
        &recruiter.token,
        json!({}),
    )
    .await
    .assert_status(200);
    flow.recorded(
        "POST /api/v1/alerts/{id}/resolve",
        vec![event(
            &recruiter,
            ("alert", alert),
            "update",
            &["status", "resolved_at"],
            None,
        )],
    )
    .await;
    app.delete(&format!("/api/v1/alert-rules/{rule}"), &admin.token)
        .await
        .assert_status(204);
    flow.recorded(
        "DELETE /api/v1/alert-rules/{id}",
        vec![event(&admin, ("alert_rule", rule), "delete", &[], None)],
    )
    .await;
    flow.finish("alerts").await;
}

/// A run is found by every id it holds, and by nothing else: through the
/// `resource_id` filter, and in the export of each candidate it is about,
/// once however many of their encounters it holds (a deleted one
/// included), with its subject only when all of it is about one candidate.
#[tokio::test]
async fn a_run_is_found_by_each_id_it_holds_and_exported_once() {
    let app = spawn_app().await;
    let recruiter = key_of(&app, &app.recruiter).await;
    let admin = key_of(&app, &app.admin).await;
    let (site, _) = site_and_fair(&app).await;
    let lan = app.candidate("ATS-RUN-LAN").await;
    let minh = app.candidate("ATS-RUN-MINH").await;
    let batch = |items: Vec<i64>| {
        let items: Vec<Value> = items
            .into_iter()
            .map(|candidate| {
                json!({"candidate_id": candidate, "touchpoint_id": site,
                       "occurred_at": OCCURRED_AT, "score": 8})
            })
            .collect();
        let app = &app;
        async move {
            let reply = app
                .post("/api/v1/encounters/batch", &app.recruiter, json!(items))
                .await;
            ids_of(&reply.assert_status(201)["encounter_ids"])
        }
    };
    let mixed = batch(vec![lan, lan, minh, minh, lan]).await;
    let lans = batch(vec![lan, lan, lan]).await;
    let single = batch(vec![minh]).await;
    let import = app
        .post_raw(
            "/api/v1/encounters/import",
            &admin.token,
            "application/x-ndjson",
            &(1..=3)
                .map(|n| {
                    json!({"candidate_external_ref": format!("SURVEY-RUN-{n}"),
                           "touchpoint_id": site, "occurred_at": OCCURRED_AT})
                    .to_string()
                        + "\n"
                })
                .collect::<String>(),
        )
        .await;
    assert_eq!(import.assert_status(200)["candidates_created"], 3);
    let imported = [
        candidate_by_ref(&app, "SURVEY-RUN-1").await,
        candidate_by_ref(&app, "SURVEY-RUN-2").await,
        candidate_by_ref(&app, "SURVEY-RUN-3").await,
    ];
    let fields = encounter_fields(&["score"]);
    let mixed_run = run_event(
        &recruiter,
        ("encounter", mixed[0], mixed[4]),
        "create",
        &fields,
        None,
    );
    let lans_run = run_event(
        &recruiter,
        ("encounter", lans[0], lans[2]),
        "create",
        &fields,
        Some(lan),
    );
    let single_event = event(
        &recruiter,
        ("encounter", single[0]),
        "create",
        &fields,
        Some(minh),
    );
    let candidates_run = run_event(
        &admin,
        ("candidate", imported[0], imported[2]),
        "create",
        &["external_ref", "stage"],
        None,
    );

    // Each id finds the run holding it, and only that one.
    let about = |resource: &'static str, id: i64| {
        let app = &app;
        async move {
            let query = format!("&resource_type={resource}&resource_id={id}");
            let events = walk(app, &app.admin, &query, 500).await;
            events
                .into_iter()
                .map(without_id_and_time)
                .collect::<Vec<_>>()
        }
    };
    for id in &mixed {
        assert_eq!(
            about("encounter", *id).await,
            std::slice::from_ref(&mixed_run),
            "{id}"
        );
    }
    for id in &lans {
        assert_eq!(
            about("encounter", *id).await,
            std::slice::from_ref(&lans_run),
            "{id}"
        );
    }
    assert_eq!(
        about("encounter", single[0]).await,
        std::slice::from_ref(&single_event)
    );
    for id in &imported {
        assert_eq!(
            about("candidate", *id).await,
            std::slice::from_ref(&candidates_run)
        );
    }
    assert_eq!(
        about("encounter", single[0] + 100).await,
        Vec::<Value>::new()
    );

    // A deleted encounter's run still reaches its candidate's export.
    app.delete(&format!("/api/v1/encounters/{}", mixed[4]), &app.recruiter)
        .await
        .assert_status(204);
    let exported = |candidate: i64| {
        let app = &app;
        async move {
            let path = format!("/api/v1/candidates/{candidate}/export");
            let export = app.get(&path, &app.admin).await;
            let events = export.assert_status(200)["audit_events"].clone();
            let events = events.as_array().unwrap().clone();
            assert!(ids(&events).windows(2).all(|w| w[0] < w[1]), "oldest first");
            events
                .into_iter()
                .map(without_id_and_time)
                .collect::<Vec<_>>()
        }
    };
    let created = |candidate: i64| {
        event(
            &recruiter,
            ("candidate", candidate),
            "create",
            &["external_ref", "stage"],
            Some(candidate),
        )
    };
    let deleted = event(
        &recruiter,
        ("encounter", mixed[4]),
        "delete",
        &[],
        Some(lan),
    );
    assert_eq!(
        exported(lan).await,
        [created(lan), mixed_run.clone(), lans_run, deleted]
    );
    assert_eq!(
        exported(minh).await,
        [created(minh), mixed_run, single_event]
    );
    let import_run = run_event(
        &admin,
        ("encounter", 0, 0),
        "create",
        &ENCOUNTER_FIELDS,
        None,
    );
    for candidate in imported {
        let events = exported(candidate).await;
        assert_eq!(events.len(), 2, "{events:?}");
        assert_eq!(events[0], candidates_run);
        let mut run = events[1].clone();
        let (first, last) = (run["resource_id"].take(), run["last_resource_id"].take());
        assert_eq!(last.as_i64().unwrap() - first.as_i64().unwrap(), 2, "{run}");
        run["resource_id"] = json!(0);
        run["last_resource_id"] = json!(0);
        assert_eq!(run, import_run);
    }
}
