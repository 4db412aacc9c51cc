//! `GET /api/v1/exports/encounters`: the incremental export for reporting
//! jobs, streamed as NDJSON or CSV. The domain side (cursor, consistency) is
//! in `crate::domain::exports`.

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use poem::{web::Data, Body, IntoResponse, Response};
use poem_openapi::{
    param::Query,
    payload::Payload,
    registry::{MetaSchema, MetaSchemaRef, Registry},
    types::{ToJSON, Type},
    ApiResponse, Enum, Object, OpenApi, ResponseContent, Union,
};
use sea_orm::{ActiveEnum, DatabaseConnection};

use super::{encounters::Encounter, error::ApiError, security::ApiKeyAuth, ApiTags};
use crate::domain::{
    auth::Capability,
    exports::{self, Change, ChangeStream},
};

/// Changes encoded per chunk of the response body, at most: the rows the
/// database has ready, up to this many, are written together.
const ROWS_PER_CHUNK: usize = 256;

/// The format of the export.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum ExportFormat {
    /// `application/x-ndjson`: one JSON record per line, ending with an
    /// `end` record.
    Ndjson,
    /// `text/csv`: a header row, then one row per change.
    Csv,
}

/// An encounter created or changed since the cursor, in its current state.
#[derive(Object)]
pub struct ExportedEncounter {
    /// The change that last wrote the encounter.
    pub change_seq: i64,
    pub encounter: Encounter,
}

/// An encounter deleted since the cursor.
#[derive(Object)]
pub struct ExportedDeletion {
    /// The change that deleted the encounter.
    pub change_seq: i64,
    pub encounter_id: i64,
    pub candidate_id: i64,
    pub deleted_at: DateTime<Utc>,
}

/// The last record of a complete export. Without it, the export was cut
/// short: export again from the same cursor.
#[derive(Object)]
pub struct ExportEnd {
    /// Pass as `cursor` to the next export (also in `X-Next-Cursor`).
    pub next_cursor: String,
    /// The number of change records before this one.
    pub rows: u64,
}

/// One line of an NDJSON export, told apart by `type`: `encounter`
/// (create or change), `deleted`, and a final `end`.
#[derive(Union)]
#[oai(discriminator_name = "type")]
pub enum ExportRecord {
    #[oai(mapping = "encounter")]
    Encounter(ExportedEncounter),
    #[oai(mapping = "deleted")]
    Deleted(ExportedDeletion),
    #[oai(mapping = "end")]
    End(ExportEnd),
}

impl From<Change> for ExportRecord {
    fn from(change: Change) -> Self {
        match change {
            Change::Upsert {
                change_seq,
                encounter,
            } => ExportRecord::Encounter(ExportedEncounter {
                change_seq,
                encounter: encounter.into(),
            }),
            Change::Delete {
                change_seq,
                encounter_id,
                candidate_id,
                deleted_at,
            } => ExportRecord::Deleted(ExportedDeletion {
                change_seq,
                encounter_id,
                candidate_id,
                deleted_at,
            }),
        }
    }
}

/// A streamed NDJSON body whose lines are [`ExportRecord`]s.
pub struct NdjsonExport(Body);

impl Payload for NdjsonExport {
    const CONTENT_TYPE: &'static str = "application/x-ndjson";

    fn schema_ref() -> MetaSchemaRef {
        ExportRecord::schema_ref()
    }

    fn register(registry: &mut Registry) {
        ExportRecord::register(registry);
    }
}

impl IntoResponse for NdjsonExport {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.0)
    }
}

/// A streamed CSV body.
pub struct CsvExport(Body);

impl Payload for CsvExport {
    const CONTENT_TYPE: &'static str = "text/csv; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            description: Some(
                "RFC 4180 CSV with CRLF line ends and a header row: op (`upsert` or \
                 `delete`), change_seq, id, candidate_id, touchpoint_id, occurred_at, \
                 source, score, note, recorded_by_key_id, created_at, updated_at, \
                 deleted_at. A `delete` row fills only op, change_seq, id, candidate_id \
                 and deleted_at; an empty field is a null.",
            ),
            ..MetaSchema::new("string")
        }))
    }
}

impl IntoResponse for CsvExport {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type(Self::CONTENT_TYPE)
            .body(self.0)
    }
}

#[derive(ResponseContent)]
pub enum ExportBody {
    Ndjson(NdjsonExport),
    Csv(CsvExport),
}

#[derive(ApiResponse)]
pub enum ExportResponse {
    /// The changes since the cursor, streamed in `change_seq` order (then by
    /// encounter id): each encounter once, in its current state, and each
    /// deletion.
    #[oai(status = 200)]
    Ok(
        ExportBody,
        /// The cursor to resume from: pass it as `cursor` to the next export.
        #[oai(header = "X-Next-Cursor")]
        String,
    ),
}

#[derive(Default)]
pub struct ExportsApi;

#[OpenApi(prefix_path = "/api/v1/exports", tag = "ApiTags::Exports")]
impl ExportsApi {
    /// Export encounter changes
    ///
    /// Every encounter created, changed or deleted since `cursor` (all of
    /// them without one), for nightly reporting jobs: store the next cursor
    /// (`X-Next-Cursor`, and the NDJSON `end` record) and pass it the next
    /// time, to get only what changed since. Changes committed while an
    /// export runs are in the next one; no change is missed or repeated.
    /// The response is streamed. Readable by every role.
    #[oai(
        path = "/encounters",
        method = "get",
        operation_id = "export_encounters"
    )]
    async fn export(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The next cursor of the previous export; absent for everything.
        cursor: Query<Option<String>>,
        /// `ndjson` (default) or `csv`.
        format: Query<Option<ExportFormat>>,
    ) -> Result<ExportResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let export = exports::export(*db, auth.0.organization_id, cursor.0.as_deref()).await?;
        let next_cursor = export.next_cursor.clone();
        let body = match format.0.unwrap_or(ExportFormat::Ndjson) {
            ExportFormat::Ndjson => ExportBody::Ndjson(NdjsonExport(ndjson_body(export))),
            ExportFormat::Csv => ExportBody::Csv(CsvExport(csv_body(export.changes))),
        };
        Ok(ExportResponse::Ok(body, next_cursor))
    }
}

/// A failure after the response started: it is logged, and the body ends
/// with an error, so the connection is cut and the client sees a truncated
/// body (for NDJSON: no `end` record).
fn cut_short(err: crate::domain::DomainError) -> std::io::Error {
    tracing::error!(error = %err, "export cut short");
    std::io::Error::other("export cut short")
}

fn ndjson_body(export: exports::Export) -> Body {
    let exports::Export {
        next_cursor,
        changes,
    } = export;
    let lines = async_stream::stream! {
        let mut rows = 0u64;
        let mut batches = changes.ready_chunks(ROWS_PER_CHUNK);
        while let Some(batch) = batches.next().await {
            let mut buf = Vec::new();
            for change in batch {
                match change {
                    Ok(change) => {
                        rows += 1;
                        write_json_line(&mut buf, &ExportRecord::from(change));
                    }
                    Err(err) => {
                        yield Err(cut_short(err));
                        return;
                    }
                }
            }
            yield Ok(buf);
        }
        let mut buf = Vec::new();
        write_json_line(&mut buf, &ExportRecord::End(ExportEnd { next_cursor, rows }));
        yield Ok(buf);
    };
    Body::from_bytes_stream(lines)
}

/// Writes a record as one line, `type` first (readers can dispatch on it
/// before reading the rest): the same object as `record.to_json()`.
fn write_json_line(buf: &mut Vec<u8>, record: &ExportRecord) {
    let (kind, fields) = match record {
        ExportRecord::Encounter(r) => ("encounter", r.to_json()),
        ExportRecord::Deleted(r) => ("deleted", r.to_json()),
        ExportRecord::End(r) => ("end", r.to_json()),
    };
    buf.extend_from_slice(b"{\"type\":");
    write_json(buf, kind);
    if let Some(serde_json::Value::Object(fields)) = fields {
        for (name, value) in fields {
            buf.push(b',');
            write_json(buf, &name);
            buf.push(b':');
            write_json(buf, &value);
        }
    }
    buf.extend_from_slice(b"}\n");
}

fn write_json(buf: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    serde_json::to_writer(buf, value).expect("writing JSON to a Vec cannot fail");
}

const CSV_HEADER: &str = "op,change_seq,id,candidate_id,touchpoint_id,occurred_at,source,\
score,note,recorded_by_key_id,created_at,updated_at,deleted_at\r\n";

fn csv_body(changes: ChangeStream) -> Body {
    let rows = async_stream::stream! {
        yield Ok(CSV_HEADER.as_bytes().to_vec());
        let mut batches = changes.ready_chunks(ROWS_PER_CHUNK);
        while let Some(batch) = batches.next().await {
            let mut buf = String::new();
            for change in batch {
                match change {
                    Ok(change) => write_csv_row(&mut buf, &change),
                    Err(err) => {
                        yield Err(cut_short(err));
                        return;
                    }
                }
            }
            yield Ok(buf.into_bytes());
        }
    };
    Body::from_bytes_stream(rows)
}

fn write_csv_row(buf: &mut String, change: &Change) {
    let time = |at: &DateTime<Utc>| at.to_rfc3339();
    let fields: [String; 13] = match change {
        Change::Upsert {
            change_seq,
            encounter: e,
        } => [
            "upsert".into(),
            change_seq.to_string(),
            e.id.to_string(),
            e.candidate_id.to_string(),
            e.touchpoint_id.to_string(),
            time(&e.occurred_at),
            e.source.to_value(),
            e.score.map(|s| s.to_string()).unwrap_or_default(),
            e.note.clone().unwrap_or_default(),
            e.recorded_by_key_id.to_string(),
            time(&e.created_at),
            time(&e.updated_at),
            String::new(),
        ],
        Change::Delete {
            change_seq,
            encounter_id,
            candidate_id,
            deleted_at,
        } => [
            "delete".into(),
            change_seq.to_string(),
            encounter_id.to_string(),
            candidate_id.to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            time(deleted_at),
        ],
    };
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            buf.push(',');
        }
        push_csv_field(buf, field);
    }
    buf.push_str("\r\n");
}

/// RFC 4180: a field holding a comma, quote or line break is quoted, with
/// its quotes doubled.
fn push_csv_field(buf: &mut String, field: &str) {
    if field.contains([',', '"', '\r', '\n']) {
        buf.push('"');
        buf.push_str(&field.replace('"', "\"\""));
        buf.push('"');
    } else {
        buf.push_str(field);
    }
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::ToJSON;

    use super::*;

    #[test]
    fn json_lines_are_the_documented_records() {
        let records = [
            ExportRecord::Deleted(ExportedDeletion {
                change_seq: 7,
                encounter_id: 3,
                candidate_id: 2,
                deleted_at: "2026-11-02T09:00:00Z".parse().unwrap(),
            }),
            ExportRecord::End(ExportEnd {
                next_cursor: "abc".into(),
                rows: 1,
            }),
        ];
        for record in records {
            let mut buf = Vec::new();
            write_json_line(&mut buf, &record);
            let line = String::from_utf8(buf).unwrap();
            assert!(line.starts_with("{\"type\":"), "{line}");
            assert!(line.ends_with("}\n") && line.matches('\n').count() == 1);
            let parsed: serde_json::Value = serde_json::from_str(&line).unwrap();
            assert_eq!(Some(parsed), record.to_json());
        }
    }

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        let quoted = |field: &str| {
            let mut buf = String::new();
            push_csv_field(&mut buf, field);
            buf
        };
        assert_eq!(quoted("plain text"), "plain text");
        assert_eq!(quoted("a, b"), "\"a, b\"");
        assert_eq!(quoted("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quoted("two\nlines"), "\"two\nlines\"");
        assert_eq!(quoted(""), "");
    }
}
