//! `GET /api/v1/exports/encounters`: full and incremental exports, NDJSON
//! and CSV, cursors, tenancy, roles, and exports running during writes.

use std::collections::{BTreeMap, HashSet};

use serde_json::{json, Value};

use super::helpers::{spawn_app, TestApp};

const EXPORT: &str = "/api/v1/exports/encounters";

/// One export response.
struct Export {
    status: u16,
    content_type: Option<String>,
    next_cursor_header: Option<String>,
    text: String,
}

impl Export {
    /// The NDJSON records, checked to end with the `end` record.
    #[track_caller]
    fn records(&self) -> (Vec<Value>, String) {
        assert_eq!(self.status, 200, "{}", self.text);
        assert_eq!(self.content_type.as_deref(), Some("application/x-ndjson"));
        assert!(self.text.ends_with('\n'), "lines end with a newline");
        let mut records: Vec<Value> = self
            .text
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect();
        let end = records.pop().expect("an end record");
        assert_eq!(end["type"], "end", "the last record: {end}");
        assert_eq!(end["rows"], records.len() as u64);
        let next_cursor = end["next_cursor"].as_str().unwrap().to_owned();
        assert_eq!(
            self.next_cursor_header.as_deref(),
            Some(next_cursor.as_str()),
            "the header and the end record agree"
        );
        (records, next_cursor)
    }

    fn error(&self) -> Value {
        serde_json::from_str(&self.text).expect("a JSON error body")
    }
}

async fn export(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Export {
    let response = app
        .client
        .get(app.url(EXPORT))
        .bearer_auth(token)
        .query(query)
        .send()
        .await
        .expect("request sent");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let next_cursor_header = header("x-next-cursor");
    let status = response.status().as_u16();
    let text = response.text().await.expect("the whole body");
    Export {
        status,
        content_type,
        next_cursor_header,
        text,
    }
}

/// Exports as NDJSON after `cursor` (from the beginning without one).
async fn ndjson(app: &TestApp, token: &str, cursor: Option<&str>) -> (Vec<Value>, String) {
    let query: Vec<(&str, &str)> = cursor.map(|c| ("cursor", c)).into_iter().collect();
    export(app, token, &query).await.records()
}

#[track_caller]
fn assert_validation_error(export: &Export, field: &str) {
    assert_eq!(export.status, 422, "{}", export.text);
    assert_eq!(
        export.content_type.as_deref(),
        Some("application/json; charset=utf-8")
    );
    let body = export.error();
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
    assert_eq!(body["error"]["field"], field, "{body}");
}

/// Every encounter of the key's organization, as `GET /api/v1/encounters`
/// lists them.
async fn current_encounters(app: &TestApp, token: &str) -> BTreeMap<i64, Value> {
    let mut all = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/encounters?limit=500&cursor={c}"),
            None => "/api/v1/encounters?limit=500".to_owned(),
        };
        let page = app.get(&path, token).await.assert_status(200).clone();
        for item in page["items"].as_array().unwrap() {
            all.insert(item["id"].as_i64().unwrap(), item.clone());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return all,
        }
    }
}

/// Applies exported records, in order, to a copy of the encounters. Checks
/// that every change is newer than the previous exports' (`last_seq`), that
/// sequence numbers never go back, and that no encounter appears twice.
#[track_caller]
fn apply(copy: &mut BTreeMap<i64, Value>, records: &[Value], last_seq: &mut i64) {
    let previous_exports = *last_seq;
    let mut seen = HashSet::new();
    for record in records {
        let seq = record["change_seq"].as_i64().unwrap();
        assert!(seq > previous_exports, "already exported: {record}");
        assert!(seq >= *last_seq, "change_seq went back: {record}");
        *last_seq = seq;
        match record["type"].as_str().unwrap() {
            "encounter" => {
                let encounter = &record["encounter"];
                let id = encounter["id"].as_i64().unwrap();
                assert!(seen.insert(id), "encounter {id} twice in one export");
                copy.insert(id, encounter.clone());
            }
            "deleted" => {
                let id = record["encounter_id"].as_i64().unwrap();
                assert!(seen.insert(id), "encounter {id} twice in one export");
                copy.remove(&id);
            }
            other => panic!("unexpected record type {other}"),
        }
    }
}

#[tokio::test]
async fn full_export_then_only_what_changed_then_nothing() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let lan = app.candidate("ATS-1").await;
    let minh = app.candidate("ATS-2").await;
    let first = app
        .post(
            "/api/v1/encounters",
            &app.recruiter,
            json!({"candidate_id": lan, "touchpoint_id": tp,
                   "occurred_at": "2026-10-01T09:30:00Z", "score": 8,
                   "note": "Liked the team", "source": "candidate_survey"}),
        )
        .await
        .id();
    let second = app
        .encounter(lan, tp, "2026-10-02T10:00:00Z", Some(3))
        .await;
    let third = app.encounter(minh, tp, "2026-10-03T11:00:00Z", None).await;

    let (records, cursor) = ndjson(&app, &app.reporter, None).await;
    assert_eq!(records.len(), 3, "{records:?}");
    let listed = current_encounters(&app, &app.reporter).await;
    let mut previous_seq = 0;
    for (record, id) in records.iter().zip([first, second, third]) {
        assert_eq!(record["type"], "encounter");
        assert_eq!(
            record["encounter"], listed[&id],
            "the exported encounter is the API's encounter"
        );
        let seq = record["change_seq"].as_i64().unwrap();
        assert!(seq > previous_seq, "one change per write, in order");
        previous_seq = seq;
    }
    let first_record = &records[0]["encounter"];
    assert_eq!(first_record["candidate_id"], lan);
    assert_eq!(first_record["touchpoint_id"], tp);
    assert_eq!(first_record["occurred_at"], "2026-10-01T09:30:00+00:00");
    assert_eq!(first_record["source"], "candidate_survey");
    assert_eq!(first_record["score"], 8);
    assert_eq!(first_record["note"], "Liked the team");
    assert!(records[2]["encounter"]["score"].is_null());
    assert!(records[2]["encounter"]["note"].is_null());

    // One edited, one deleted, one created: exactly those three changes.
    app.patch(
        &format!("/api/v1/encounters/{first}"),
        &app.recruiter,
        json!({"score": 9}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/encounters/{second}"), &app.recruiter)
        .await
        .assert_status(204);
    let fourth = app
        .encounter(minh, tp, "2026-10-04T12:00:00Z", Some(10))
        .await;

    let (changes, next) = ndjson(&app, &app.reporter, Some(&cursor)).await;
    assert_ne!(next, cursor);
    assert_eq!(changes.len(), 3, "{changes:?}");
    let listed = current_encounters(&app, &app.reporter).await;
    assert_eq!(changes[0]["type"], "encounter");
    assert_eq!(changes[0]["encounter"], listed[&first]);
    assert_eq!(changes[0]["encounter"]["score"], 9);
    assert_eq!(changes[1]["type"], "deleted");
    assert_eq!(changes[1]["encounter_id"], second);
    assert_eq!(changes[1]["candidate_id"], lan);
    assert!(changes[1]["deleted_at"].is_string());
    assert_eq!(changes[2]["type"], "encounter");
    assert_eq!(changes[2]["encounter"], listed[&fourth]);
    let seqs: Vec<i64> = changes
        .iter()
        .map(|c| c["change_seq"].as_i64().unwrap())
        .collect();
    assert!(seqs[0] > previous_seq && seqs.windows(2).all(|w| w[0] < w[1]));

    // Nothing changed: no records, and the same cursor back.
    let (nothing, again) = ndjson(&app, &app.reporter, Some(&next)).await;
    assert!(nothing.is_empty(), "{nothing:?}");
    assert_eq!(again, next);

    // Applying both exports to an empty copy gives the current encounters.
    let mut copy = BTreeMap::new();
    let mut seq = -1;
    apply(&mut copy, &records, &mut seq);
    apply(&mut copy, &changes, &mut seq);
    assert_eq!(copy, listed);
}

#[tokio::test]
async fn an_empty_organization_exports_nothing_and_a_stable_cursor() {
    let app = spawn_app().await;
    let (records, cursor) = ndjson(&app, &app.admin, None).await;
    assert!(records.is_empty());
    let (records, again) = ndjson(&app, &app.admin, Some(&cursor)).await;
    assert!(records.is_empty());
    assert_eq!(again, cursor);
}

#[tokio::test]
async fn rows_written_before_change_sequences_existed_are_exported() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let tp = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("ATS-9").await;
    let id = app
        .encounter(candidate, tp, "2026-09-01T10:00:00Z", Some(5))
        .await;
    // What the migration leaves on existing rows.
    for sql in [
        "UPDATE encounters SET change_seq = 0",
        "UPDATE organizations SET change_seq = 0",
    ] {
        app.db
            .execute_raw(Statement::from_string(app.db.get_database_backend(), sql))
            .await
            .unwrap();
    }
    let (records, cursor) = ndjson(&app, &app.reporter, None).await;
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["encounter"]["id"], id);
    assert_eq!(records[0]["change_seq"], 0);
    let (records, _) = ndjson(&app, &app.reporter, Some(&cursor)).await;
    assert!(records.is_empty());
}

/// A minimal RFC 4180 reader: quoted fields may hold commas, doubled quotes
/// and line breaks.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => assert_eq!(chars.next(), Some('\n'), "CRLF line ends"),
            (false, '\n') => panic!("a bare LF ends a CSV line"),
            (false, c) => field.push(c),
        }
        if !quoted && c == '\r' {
            row.push(std::mem::take(&mut field));
            rows.push(std::mem::take(&mut row));
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "the last line ends with CRLF"
    );
    rows
}

#[tokio::test]
async fn csv_quotes_notes_and_carries_the_cursor_in_a_header() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint("Phone screen", "employer_created", "phone", "screening")
        .await;
    let candidate = app.candidate("ATS-3").await;
    let note = "Said \"great\", then:\nwaited 40 minutes, nobody came";
    let noted = app
        .post(
            "/api/v1/encounters",
            &app.recruiter,
            json!({"candidate_id": candidate, "touchpoint_id": tp,
                   "occurred_at": "2026-10-01T09:30:00Z", "score": 2, "note": note}),
        )
        .await
        .id();
    let deleted = app
        .encounter(candidate, tp, "2026-10-02T09:30:00Z", None)
        .await;
    app.delete(&format!("/api/v1/encounters/{deleted}"), &app.admin)
        .await
        .assert_status(204);

    let csv = export(&app, &app.reporter, &[("format", "csv")]).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(csv.content_type.as_deref(), Some("text/csv; charset=utf-8"));
    let rows = parse_csv(&csv.text);
    assert_eq!(
        rows[0],
        [
            "op",
            "change_seq",
            "id",
            "candidate_id",
            "touchpoint_id",
            "occurred_at",
            "source",
            "score",
            "note",
            "recorded_by_key_id",
            "created_at",
            "updated_at",
            "deleted_at"
        ]
    );
    // Encounter `deleted` was created, then deleted: only its tombstone is
    // left, after `noted`.
    assert_eq!(rows.len(), 3, "{rows:?}");
    let listed = current_encounters(&app, &app.reporter).await;
    let expected = &listed[&noted];
    let upsert = &rows[1];
    assert_eq!(upsert[0], "upsert");
    assert_eq!(upsert[2], noted.to_string());
    assert_eq!(upsert[3], candidate.to_string());
    assert_eq!(upsert[4], tp.to_string());
    assert_eq!(upsert[5], expected["occurred_at"]);
    assert_eq!(upsert[6], "recruiter_observation");
    assert_eq!(upsert[7], "2");
    assert_eq!(upsert[8], note, "the note survives quoting");
    assert_eq!(upsert[9], expected["recorded_by_key_id"].to_string());
    assert_eq!(upsert[10], expected["created_at"]);
    assert_eq!(upsert[11], expected["updated_at"]);
    assert_eq!(upsert[12], "");
    let delete = &rows[2];
    assert_eq!(delete[0], "delete");
    assert!(delete[1].parse::<i64>().unwrap() > upsert[1].parse::<i64>().unwrap());
    assert_eq!(delete[2], deleted.to_string());
    assert_eq!(delete[3], candidate.to_string());
    assert!(delete[4..12].iter().all(String::is_empty), "{delete:?}");
    assert!(!delete[12].is_empty());

    // The header's cursor resumes after everything exported.
    let cursor = csv.next_cursor_header.expect("X-Next-Cursor");
    let (records, again) = ndjson(&app, &app.reporter, Some(&cursor)).await;
    assert!(records.is_empty());
    assert_eq!(again, cursor);
    let empty = export(
        &app,
        &app.reporter,
        &[("format", "csv"), ("cursor", &cursor)],
    )
    .await;
    assert_eq!(parse_csv(&empty.text).len(), 1, "only the header row");
    assert_eq!(empty.next_cursor_header.as_deref(), Some(cursor.as_str()));
}

#[tokio::test]
async fn invalid_cursors_and_formats_are_refused() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("ATS-4").await;
    app.encounter(candidate, tp, "2026-09-01T10:00:00Z", None)
        .await;
    app.encounter(candidate, tp, "2026-09-02T10:00:00Z", None)
        .await;
    let list_cursor = app
        .get("/api/v1/encounters?limit=1", &app.reporter)
        .await
        .assert_status(200)["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, other_cursor) = ndjson(&app, &app.other_admin, None).await;
    for bad in ["garbage", "!!", "", &list_cursor, &other_cursor] {
        let reply = export(&app, &app.reporter, &[("cursor", bad)]).await;
        assert_validation_error(&reply, "cursor");
    }
    let reply = export(&app, &app.reporter, &[("format", "xml")]).await;
    assert_validation_error(&reply, "format");
}

#[tokio::test]
async fn another_organizations_encounters_never_appear() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("ATS-5").await;
    let ours = app
        .encounter(candidate, tp, "2026-09-01T10:00:00Z", Some(6))
        .await;

    let their_tp = app
        .post(
            "/api/v1/touchpoints",
            &app.other_admin,
            json!({"name": "Job ad", "kind": "employer_created",
                   "channel": "job_board", "stage": "awareness"}),
        )
        .await
        .id();
    let their_candidate = app
        .post(
            "/api/v1/candidates",
            &app.other_admin,
            json!({"external_ref": "G-1"}),
        )
        .await
        .id();
    let theirs = |day: u32| {
        let app = &app;
        async move {
            app.post(
                "/api/v1/encounters",
                &app.other_admin,
                json!({"candidate_id": their_candidate, "touchpoint_id": their_tp,
                       "occurred_at": format!("2026-09-{day:02}T10:00:00Z")}),
            )
            .await
            .id()
        }
    };
    let kept = theirs(1).await;
    let removed = theirs(2).await;
    app.delete(&format!("/api/v1/encounters/{removed}"), &app.other_admin)
        .await
        .assert_status(204);

    let (records, _) = ndjson(&app, &app.reporter, None).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["encounter"]["id"], ours);
    let csv = export(&app, &app.reporter, &[("format", "csv")]).await;
    assert_eq!(parse_csv(&csv.text).len(), 2, "header and our one row");

    let (records, _) = ndjson(&app, &app.other_admin, None).await;
    let ids: Vec<&Value> = records
        .iter()
        .map(|r| match r["type"].as_str().unwrap() {
            "deleted" => &r["encounter_id"],
            _ => &r["encounter"]["id"],
        })
        .collect();
    // `removed` was created, then deleted: only its tombstone is left.
    assert_eq!(ids, [&json!(kept), &json!(removed)]);
    assert_eq!(records[1]["type"], "deleted");
}

#[tokio::test]
async fn every_role_can_export_and_anonymous_callers_cannot() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("ATS-6").await;
    app.encounter(candidate, tp, "2026-09-01T10:00:00Z", Some(6))
        .await;
    for token in [&app.admin, &app.recruiter, &app.reporter] {
        let (records, _) = ndjson(&app, token, None).await;
        assert_eq!(records.len(), 1);
        let csv = export(&app, token, &[("format", "csv")]).await;
        assert_eq!(csv.status, 200);
    }
    app.request(reqwest::Method::GET, EXPORT, None, None)
        .await
        .assert_error(401, "unauthorized", None);
    app.get(EXPORT, "tt_not_a_key")
        .await
        .assert_error(401, "unauthorized", None);
}

/// Writers create, edit and delete encounters while a job exports
/// incrementally, again and again: replaying the exports in order gives
/// exactly the encounters the API lists at the end.
#[tokio::test]
async fn exports_during_concurrent_writes_miss_and_repeat_nothing() {
    let app = std::sync::Arc::new(spawn_app().await);
    let tp = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let other_tp = app
        .touchpoint("Glassdoor", "true", "review_site", "consideration")
        .await;
    const WRITERS: usize = 4;
    const ROUNDS: usize = 12;
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let app = app.clone();
        let candidate = app.candidate(&format!("ATS-C{w}")).await;
        writers.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for round in 0..ROUNDS {
                let id = app
                    .post(
                        "/api/v1/encounters",
                        &app.recruiter,
                        json!({"candidate_id": candidate, "touchpoint_id": tp,
                               "occurred_at": format!("2026-09-{:02}T10:00:00Z", round + 1),
                               "score": round % 11,
                               "note": format!("writer {w}, round {round}")}),
                    )
                    .await
                    .assert_status(201)["id"]
                    .as_i64()
                    .unwrap();
                mine.push(id);
                let edited = mine[round / 2];
                app.patch(
                    &format!("/api/v1/encounters/{edited}"),
                    &app.recruiter,
                    json!({"touchpoint_id": other_tp, "note": format!("edited in round {round}")}),
                )
                .await
                .assert_status(200);
                if round % 4 == 3 {
                    let gone = mine.remove(0);
                    app.delete(&format!("/api/v1/encounters/{gone}"), &app.recruiter)
                        .await
                        .assert_status(204);
                }
            }
        }));
    }

    let mut copy = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut seq = -1;
    let mut exports = 0;
    let mut non_empty = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let (records, next) = ndjson(&app, &app.reporter, cursor.as_deref()).await;
        apply(&mut copy, &records, &mut seq);
        exports += 1;
        non_empty += usize::from(!records.is_empty());
        cursor = Some(next);
    }
    for writer in writers {
        writer.await.expect("writer succeeded");
    }
    let (records, next) = ndjson(&app, &app.reporter, cursor.as_deref()).await;
    apply(&mut copy, &records, &mut seq);
    let final_state = current_encounters(&app, &app.reporter).await;
    assert_eq!(
        final_state.len(),
        WRITERS * (ROUNDS - ROUNDS / 4),
        "the writers' net result"
    );
    assert_eq!(
        copy, final_state,
        "replayed exports = the encounters listed"
    );
    assert!(
        exports > 1 && non_empty > 1,
        "exports ran during the writes ({exports} exports, {non_empty} with changes)"
    );
    let (records, again) = ndjson(&app, &app.reporter, Some(&next)).await;
    assert!(records.is_empty());
    assert_eq!(again, next);
}
