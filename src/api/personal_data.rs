//! Which properties of the API's answers hold a candidate's personal data,
//! and erasing them from the answers stored for idempotency keys: the
//! domain's [`AnswerRedactor`], supplied by this layer because it knows the
//! schemas. The table is checked against the OpenAPI document: a property
//! added to the schema of a stored answer fails
//! `every_property_of_a_stored_answer_is_classified` until it is listed
//! here, as personal or not, so erasure cannot silently miss it.

use serde_json::{Map, Value};

use crate::domain::idempotency::AnswerRedactor;

/// A schema whose objects may be part of a stored answer.
struct StoredSchema {
    /// Its name in the document, which the tests check the table against.
    #[cfg_attr(not(test), allow(dead_code))]
    name: &'static str,
    /// The property holding the id of the candidate the object is about.
    subject: Option<&'static str>,
    /// Properties erased with that candidate.
    personal: &'static [&'static str],
    /// Properties that hold no personal data.
    not_personal: &'static [&'static str],
}

/// Every schema reachable from the answer of an operation that takes an
/// `Idempotency-Key` (checked by the tests below).
const STORED_SCHEMAS: &[StoredSchema] = &[
    StoredSchema {
        name: "Candidate",
        subject: Some("id"),
        personal: &["external_ref", "display_name", "email"],
        not_personal: &["id", "stage", "created_at", "updated_at", "erased_at"],
    },
    StoredSchema {
        name: "Encounter",
        subject: Some("candidate_id"),
        personal: &["note"],
        not_personal: &[
            "id",
            "candidate_id",
            "touchpoint_id",
            "occurred_at",
            "source",
            "score",
            "recorded_by_key_id",
            "created_at",
            "updated_at",
        ],
    },
    StoredSchema {
        name: "BatchRecorded",
        subject: None,
        personal: &[],
        not_personal: &["encounter_ids", "candidates_created"],
    },
    StoredSchema {
        name: "ImportReport",
        subject: None,
        personal: &[],
        not_personal: &[
            "lines_committed",
            "encounters_created",
            "candidates_created",
        ],
    },
];

impl StoredSchema {
    /// Whether `object` is one of this schema's: it has exactly its
    /// properties (the API writes every property, null or not).
    fn describes(&self, object: &Map<String, Value>) -> bool {
        object.len() == self.personal.len() + self.not_personal.len()
            && object.keys().all(|key| {
                self.personal.contains(&key.as_str()) || self.not_personal.contains(&key.as_str())
            })
    }
}

/// Erases a candidate's personal properties from stored answers, by the
/// table above.
pub struct StoredAnswerRedactor;

impl AnswerRedactor for StoredAnswerRedactor {
    fn redact(&self, body: &str, candidate_id: i64) -> Option<String> {
        let mut value: Value = serde_json::from_str(body).ok()?;
        redact(&mut value, candidate_id).then(|| value.to_string())
    }
}

/// Nulls the candidate's personal properties wherever they appear; whether
/// anything changed.
fn redact(value: &mut Value, candidate_id: i64) -> bool {
    let mut changed = false;
    match value {
        Value::Object(object) => {
            let about_candidate = STORED_SCHEMAS.iter().find(|schema| {
                schema.describes(object)
                    && schema.subject.is_some_and(|subject| {
                        object.get(subject).and_then(Value::as_i64) == Some(candidate_id)
                    })
            });
            for field in about_candidate.map_or(&[][..], |schema| schema.personal) {
                if let Some(slot) = object.get_mut(*field) {
                    if !slot.is_null() {
                        *slot = Value::Null;
                        changed = true;
                    }
                }
            }
            for nested in object.values_mut() {
                changed |= redact(nested, candidate_id);
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= redact(item, candidate_id);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use poem_openapi::types::ToJSON;
    use serde_json::json;

    use super::*;

    fn document() -> Value {
        serde_json::from_str(&crate::api::openapi_document()).unwrap()
    }

    /// The schema names an operation's 2xx answers refer to.
    fn answer_schemas(operation: &Value) -> Vec<String> {
        let mut names = Vec::new();
        for (status, response) in operation["responses"].as_object().unwrap() {
            if status.starts_with('2') {
                collect_refs(response, &mut names);
            }
        }
        names
    }

    fn collect_refs(value: &Value, names: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(reference)) = object.get("$ref") {
                    names.push(
                        reference
                            .trim_start_matches("#/components/schemas/")
                            .to_owned(),
                    );
                }
                object.values().for_each(|v| collect_refs(v, names));
            }
            Value::Array(items) => items.iter().for_each(|v| collect_refs(v, names)),
            _ => {}
        }
    }

    /// Every object schema an answer stored for an idempotency key can contain, as
    /// the document says: the answers of the operations that take the
    /// header, and every schema they refer to.
    fn stored_schemas_in_the_document(document: &Value) -> BTreeSet<String> {
        let mut pending = Vec::new();
        for operations in document["paths"].as_object().unwrap().values() {
            for operation in operations.as_object().unwrap().values() {
                let keyed = operation["parameters"]
                    .as_array()
                    .is_some_and(|parameters| {
                        parameters.iter().any(|p| p["name"] == "Idempotency-Key")
                    });
                if keyed {
                    pending.extend(answer_schemas(operation));
                }
            }
        }
        let mut seen = BTreeSet::new();
        while let Some(name) = pending.pop() {
            if seen.insert(name.clone()) {
                collect_refs(&document["components"]["schemas"][&name], &mut pending);
            }
        }
        // Enums are closed vocabularies: only objects carry free data.
        seen.retain(|name| document["components"]["schemas"][name]["properties"].is_object());
        seen
    }

    #[test]
    fn every_property_of_a_stored_answer_is_classified() {
        let document = document();
        let in_document = stored_schemas_in_the_document(&document);
        assert!(in_document.contains("Candidate"), "{in_document:?}");
        let listed: BTreeSet<String> = STORED_SCHEMAS.iter().map(|s| s.name.to_owned()).collect();
        assert_eq!(
            in_document, listed,
            "the schemas of stored answers changed: list each in STORED_SCHEMAS"
        );
        for schema in STORED_SCHEMAS {
            let properties: BTreeSet<&str> = document["components"]["schemas"][schema.name]
                ["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            let classified: BTreeSet<&str> = schema
                .personal
                .iter()
                .chain(schema.not_personal)
                .copied()
                .collect();
            assert_eq!(
                properties, classified,
                "{}: classify each property as personal or not in STORED_SCHEMAS",
                schema.name
            );
            if let Some(subject) = schema.subject {
                assert!(properties.contains(subject), "{}.{subject}", schema.name);
            }
        }
    }

    /// Answers rendered by the API types themselves lose exactly the
    /// candidate's personal properties.
    #[test]
    fn stored_answers_lose_only_the_candidates_personal_data() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-11-02T09:00:00Z")
            .unwrap()
            .to_utc();
        let candidate = |id: i64| crate::api::candidates::Candidate {
            id,
            external_ref: Some(format!("ATS-{id}")).into(),
            display_name: Some("Nguyen Thi Lan".to_owned()).into(),
            email: Some("lan@example.com".to_owned()).into(),
            stage: crate::api::vocabulary::Stage::Interview,
            created_at: at,
            updated_at: at,
            erased_at: None.into(),
        };
        let redactor = StoredAnswerRedactor;
        let theirs = candidate(3).to_json_string();
        let redacted: Value = serde_json::from_str(&redactor.redact(&theirs, 3).unwrap()).unwrap();
        assert_eq!(redacted["external_ref"], Value::Null);
        assert_eq!(redacted["display_name"], Value::Null);
        assert_eq!(redacted["email"], Value::Null);
        assert_eq!(redacted["id"], 3);
        assert_eq!(redacted["stage"], "interview");
        assert_eq!(redactor.redact(&candidate(4).to_json_string(), 3), None);
        assert_eq!(
            redactor.redact(&redacted.to_string(), 3),
            None,
            "already redacted"
        );

        let mut body = json!({
            "encounters": [
                {"id": 7, "candidate_id": 3, "touchpoint_id": 1, "occurred_at": "2026-11-02T09:00:00Z",
                 "source": "recruiter_observation", "score": 8, "note": "said hello",
                 "recorded_by_key_id": 1, "created_at": "2026-11-02T09:00:00Z",
                 "updated_at": "2026-11-02T09:00:00Z"},
                {"id": 3, "candidate_id": 4, "touchpoint_id": 1, "occurred_at": "2026-11-02T09:00:00Z",
                 "source": "recruiter_observation", "score": 2, "note": "kept",
                 "recorded_by_key_id": 1, "created_at": "2026-11-02T09:00:00Z",
                 "updated_at": "2026-11-02T09:00:00Z"}
            ]
        });
        assert!(redact(&mut body, 3));
        assert_eq!(body["encounters"][0]["note"], Value::Null);
        assert_eq!(body["encounters"][0]["score"], 8);
        assert_eq!(body["encounters"][1]["note"], "kept");
    }
}
