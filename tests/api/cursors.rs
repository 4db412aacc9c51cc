//! Cursors: one versioned codec for lists and the export. The cursors the
//! previous build issued (`id:N` and `ex1:ORG:SEQ`) still work, so a client
//! walking pages or holding a nightly export's cursor across an upgrade
//! carries on where it was.

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use serde_json::Value;

use super::helpers::spawn_app;

const CANDIDATES: &str = "/api/v1/candidates";
const EXPORT: &str = "/api/v1/exports/encounters";

fn plain(cursor: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).expect("base64url")).expect("text")
}

fn ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn list_cursors_of_both_versions_walk_the_same_pages() {
    let app = spawn_app().await;
    let mut created = Vec::new();
    for n in 0..4 {
        created.push(app.candidate(&format!("ATS-{n}")).await);
    }
    let first = app
        .get(&format!("{CANDIDATES}?limit=1"), &app.admin)
        .await
        .assert_status(200)
        .clone();
    assert_eq!(ids(&first), [created[0]]);
    let cursor = first["next_cursor"].as_str().unwrap();
    assert_eq!(plain(cursor), format!("v2:l:{}", created[0]));

    // The same position as the previous build wrote it.
    let old = URL_SAFE_NO_PAD.encode(format!("id:{}", created[0]));
    for cursor in [cursor, old.as_str()] {
        let page = app
            .get(&format!("{CANDIDATES}?limit=2&cursor={cursor}"), &app.admin)
            .await
            .assert_status(200)
            .clone();
        assert_eq!(ids(&page), [created[1], created[2]], "after {cursor}");
        assert_eq!(
            plain(page["next_cursor"].as_str().unwrap()),
            format!("v2:l:{}", created[2]),
            "the next page's cursor is of the current version"
        );
    }

    // Neither version of an export cursor is a list's.
    for text in ["ex1:1:1", "v2:x:1:1"] {
        let cursor = URL_SAFE_NO_PAD.encode(text);
        app.get(&format!("{CANDIDATES}?cursor={cursor}"), &app.admin)
            .await
            .assert_error(422, "validation_failed", Some("cursor"));
    }
}

#[tokio::test]
async fn export_cursors_of_both_versions_resume_at_the_same_change() {
    let app = spawn_app().await;
    let tp = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let lan = app.candidate("ATS-1").await;
    let first = app
        .encounter(lan, tp, "2026-10-01T09:30:00Z", Some(8))
        .await;
    let export = |cursor: Option<String>| {
        let app = &app;
        async move {
            let mut request = app.client.get(app.url(EXPORT)).bearer_auth(&app.reporter);
            if let Some(cursor) = cursor {
                request = request.query(&[("cursor", cursor)]);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let text = response.text().await.unwrap();
            (status, text)
        }
    };
    let (status, text) = export(None).await;
    assert_eq!(status, 200, "{text}");
    let end: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let cursor = end["next_cursor"].as_str().unwrap().to_owned();
    let current = plain(&cursor);
    let fields: Vec<&str> = current.split(':').collect();
    assert!(matches!(fields.as_slice(), ["v2", "x", _, _]), "{current}");
    let (org, seq) = (fields[2], fields[3]);

    let second = app
        .encounter(lan, tp, "2026-10-02T09:30:00Z", Some(9))
        .await;
    assert_ne!(first, second);
    // The same position as the previous build wrote it.
    let old = URL_SAFE_NO_PAD.encode(format!("ex1:{org}:{seq}"));
    let mut answers = Vec::new();
    for cursor in [cursor.clone(), old] {
        let (status, text) = export(Some(cursor.clone())).await;
        assert_eq!(status, 200, "{cursor}: {text}");
        let records: Vec<Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(records.len(), 2, "{text}");
        assert_eq!(records[0]["encounter"]["id"], second, "{text}");
        assert_eq!(records[1]["type"], "end");
        assert!(plain(records[1]["next_cursor"].as_str().unwrap()).starts_with("v2:x:"));
        answers.push(text);
    }
    assert_eq!(answers[0], answers[1], "both versions resume at one change");

    // A list cursor of either version is not an export's.
    for text in ["id:1", "v2:l:1"] {
        let (status, body) = export(Some(URL_SAFE_NO_PAD.encode(text))).await;
        assert_eq!(status, 422, "{body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"]["field"], "cursor", "{body}");
    }
}
