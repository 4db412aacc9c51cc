//! Bulk recording of encounters: a JSON batch (all or nothing) and a
//! streamed NDJSON import (committed chunk by chunk, resumable).

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{param::Header, payload::Json, ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::{
    error::{ApiError, ErrorBody, ErrorDetail, ItemError},
    idempotency::{answer, idempotency, stored},
    payload::{example_time, JsonItems, NdjsonBody},
    security::ApiKeyAuth,
    vocabulary::Source,
    ApiTags,
};
use crate::domain::{
    auth::Capability,
    group_commit::{EncounterWriter, RenderBatch},
    idempotency::{StoredResponse, Written},
    ingest::{self, CandidateRef, EncounterInput, Recorded, TouchpointRef, BATCH_MAX},
    DomainError,
};

/// Lines of an NDJSON import recorded per transaction.
pub const IMPORT_CHUNK: usize = 5000;

/// One encounter of a batch or an import. Name the candidate by
/// `candidate_id` or by `candidate_external_ref` (the applicant-tracking
/// system's id; an unknown one creates the candidate, at stage
/// `awareness`), and the touchpoint by `touchpoint_id` or by its exact
/// `touchpoint_name`.
#[derive(Object, Deserialize, Debug, Clone)]
#[oai(deny_unknown_fields, example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct ImportEncounter {
    /// The candidate's id; or give `candidate_external_ref`.
    #[serde(default)]
    pub candidate_id: Option<i64>,
    /// The candidate's reference in your applicant-tracking system; or give
    /// `candidate_id`.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    pub candidate_external_ref: Option<String>,
    /// The touchpoint's id; or give `touchpoint_name`.
    #[serde(default)]
    pub touchpoint_id: Option<i64>,
    /// The touchpoint's name, exactly; or give `touchpoint_id`.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    pub touchpoint_name: Option<String>,
    /// When it happened (UTC); at most 5 minutes in the future.
    pub occurred_at: DateTime<Utc>,
    /// Defaults to `candidate_survey`.
    #[serde(default)]
    pub source: Option<Source>,
    /// 0 to 10, or absent when not measured.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default)]
    pub score: Option<i32>,
    /// Up to 4000 characters.
    #[oai(validator(max_length = 4000))]
    #[serde(default)]
    pub note: Option<String>,
}

impl Example for ImportEncounter {
    fn example() -> Self {
        ImportEncounter {
            candidate_id: None,
            candidate_external_ref: Some("ATS-1042".to_owned()),
            touchpoint_id: None,
            touchpoint_name: Some("Glassdoor reviews".to_owned()),
            occurred_at: example_time("2026-10-28T18:30:00Z"),
            source: Some(Source::CandidateSurvey),
            score: Some(6),
            note: None,
        }
    }
}

impl ImportEncounter {
    /// The domain's input, once exactly one reference of each kind is given.
    fn into_input(self) -> Result<EncounterInput, ApiError> {
        let candidate = match (self.candidate_id, self.candidate_external_ref) {
            (Some(id), None) => CandidateRef::Id(id),
            (None, Some(external_ref)) => CandidateRef::ExternalRef(external_ref),
            _ => {
                return Err(ApiError::validation(
                    "candidate_id",
                    "give exactly one of candidate_id and candidate_external_ref",
                ))
            }
        };
        let touchpoint = match (self.touchpoint_id, self.touchpoint_name) {
            (Some(id), None) => TouchpointRef::Id(id),
            (None, Some(name)) => TouchpointRef::Name(name),
            _ => {
                return Err(ApiError::validation(
                    "touchpoint_id",
                    "give exactly one of touchpoint_id and touchpoint_name",
                ))
            }
        };
        Ok(EncounterInput {
            candidate,
            touchpoint,
            occurred_at: self.occurred_at,
            source: self.source.unwrap_or(Source::CandidateSurvey).into(),
            score: self.score,
            note: self.note,
        })
    }
}

/// What a batch recorded.
#[derive(Object, Debug)]
pub struct BatchRecorded {
    /// The ids of the new encounters, in the order of the batch.
    #[oai(validator(max_items = 5000))]
    pub encounter_ids: Vec<i64>,
    /// Candidates created for unknown `candidate_external_ref`s.
    pub candidates_created: u64,
}

impl From<Recorded> for BatchRecorded {
    fn from(recorded: Recorded) -> Self {
        BatchRecorded {
            encounter_ids: recorded.encounters.iter().map(|e| e.id).collect(),
            candidates_created: recorded.candidates_created,
        }
    }
}

/// What a complete NDJSON import recorded.
#[derive(Object, Debug, Default)]
pub struct ImportReport {
    /// The lines read, blank lines included.
    pub lines_committed: u64,
    /// The encounters recorded.
    pub encounters_created: u64,
    /// Candidates created for unknown `candidate_external_ref`s.
    pub candidates_created: u64,
}

#[derive(ApiResponse)]
pub enum BatchResponse {
    /// Every encounter of the batch was recorded.
    #[oai(status = 201)]
    Created(Json<BatchRecorded>),
}

#[derive(ApiResponse)]
pub enum ImportResponse {
    /// Every line was recorded.
    #[oai(status = 200)]
    Ok(Json<ImportReport>),
}

fn render_batch(recorded: &Recorded) -> StoredResponse {
    stored(
        201,
        &BatchRecorded {
            encounter_ids: recorded.encounters.iter().map(|e| e.id).collect(),
            candidates_created: recorded.candidates_created,
        },
    )
}

/// Checks numbered items: the inputs, and every refusal by number.
fn inputs(
    items: Vec<(u64, Result<ImportEncounter, ErrorDetail>)>,
) -> (Vec<(u64, EncounterInput)>, Vec<ItemError>) {
    let now = crate::domain::now();
    let mut inputs = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items {
        let checked = item.and_then(|item| {
            item.into_input()
                .and_then(|input| ingest::check(input, now).map_err(ApiError::from))
                .map_err(ApiError::into_detail)
        });
        match checked {
            Ok(input) => inputs.push((index, input)),
            Err(error) => errors.push(ItemError { index, error }),
        }
    }
    (inputs, errors)
}

/// Item errors of a domain refusal, numbered as the client numbers them.
fn renumbered(err: DomainError, numbers: &[u64]) -> Result<Vec<ItemError>, ApiError> {
    match ApiError::from(err) {
        ApiError::Unprocessable(mut body) if body.0.items.is_some() => {
            let mut items = body.0.items.take().unwrap_or_default();
            for item in &mut items {
                item.index = numbers[item.index as usize];
            }
            Ok(items)
        }
        other => Err(other),
    }
}

fn refused(items: Vec<ItemError>) -> ApiError {
    ApiError::Unprocessable(Json(refused_body(items)))
}

fn refused_body(items: Vec<ItemError>) -> ErrorBody {
    let mut body = ApiError::from(DomainError::InvalidItems(Vec::new())).into_body();
    body.error.message = format!(
        "{} items were refused and nothing was recorded; see items",
        items.len()
    );
    body.items = Some(items);
    body
}

#[derive(Default)]
pub struct EncounterImportsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Encounters")]
impl EncounterImportsApi {
    /// Record a batch of encounters
    ///
    /// Records 1 to 5,000 encounters in one transaction: all of them, or
    /// none. Every item is checked; a refused batch answers 422
    /// `invalid_items` with the error of each refused item, by its index.
    /// Items may name candidates by `candidate_external_ref`, creating the
    /// unknown ones, and touchpoints by name. Admins and recruiters.
    /// Supports `Idempotency-Key`.
    #[oai(
        path = "/encounters/batch",
        method = "post",
        operation_id = "create_encounter_batch"
    )]
    async fn batch(
        &self,
        auth: ApiKeyAuth,
        writer: Data<&EncounterWriter>,
        /// A unique key per logical request (1 to 255 visible ASCII
        /// characters, e.g. a UUID), kept for at least 24 hours.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        idempotency_key: Header<Option<String>>,
        /// A JSON array of 1 to 5,000 encounters.
        body: JsonItems<ImportEncounter, BATCH_MAX>,
    ) -> Result<BatchResponse, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let idempotency = idempotency(
            idempotency_key.0.as_deref(),
            "create_encounter_batch",
            body.digest(),
        )?;
        let numbered = (0u64..).zip(body.0).collect();
        let (inputs, errors) = inputs(numbered);
        if !errors.is_empty() {
            return Err(refused(errors));
        }
        let inputs = inputs.into_iter().map(|(_, input)| input).collect();
        let render = render_batch as RenderBatch;
        let written = writer
            .record_batch(
                auth.0.organization_id,
                auth.key_actor(),
                inputs,
                idempotency.map(|key| (key, render)),
            )
            .await?;
        Ok(BatchResponse::Created(Json(answer(
            written,
            BatchRecorded::from,
        )?)))
    }

    /// Import encounters from NDJSON
    ///
    /// Streams newline-delimited JSON, one encounter per line (the fields
    /// of a batch item), of any length. Lines are recorded in chunks of
    /// 5,000, each in its own transaction. The import stops at the first
    /// chunk with a refused line, recording nothing of that chunk, and
    /// answers 422 `invalid_items`: `items` has the refused lines (by line
    /// number, from 0, blank lines counted) and `lines_committed` how many
    /// lines from the start are recorded, so fix the lines and send the
    /// stream again from there. A line may be at most 64 KiB
    /// (configurable). Admins and recruiters.
    #[oai(
        path = "/encounters/import",
        method = "post",
        operation_id = "import_encounters"
    )]
    async fn import(
        &self,
        auth: ApiKeyAuth,
        writer: Data<&EncounterWriter>,
        /// One encounter per line, as JSON (`application/x-ndjson`).
        body: NdjsonBody<ImportEncounter>,
    ) -> Result<ImportResponse, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let mut lines = body.lines();
        let mut report = ImportReport::default();
        let mut chunk = Vec::with_capacity(IMPORT_CHUNK);
        let mut refused: Option<Vec<ItemError>> = None;
        loop {
            let line = lines.next().await?;
            let end = line.is_none();
            if let Some(line) = line {
                if refused.is_some() {
                    continue; // read to the end, so the client sees the answer
                }
                chunk.push((line.0 as u64, line.1));
                if chunk.len() < IMPORT_CHUNK {
                    continue;
                }
            }
            if refused.is_none() && !chunk.is_empty() {
                let last_line = chunk.last().map(|(n, _)| *n).unwrap_or_default();
                match record_chunk(*writer, &auth, std::mem::take(&mut chunk)).await? {
                    Ok(recorded) => {
                        report.lines_committed = last_line + 1;
                        report.encounters_created += recorded.encounters.len() as u64;
                        report.candidates_created += recorded.candidates_created;
                    }
                    Err(errors) => refused = Some(errors),
                }
            }
            if end {
                break;
            }
        }
        if let Some(items) = refused {
            let mut body = refused_body(items);
            body.error.message = format!(
                "the import stopped at a chunk with refused lines: lines before {} are recorded \
                 ({} encounters), nothing after; fix the lines in items and send the rest",
                report.lines_committed, report.encounters_created
            );
            body.lines_committed = Some(report.lines_committed);
            return Err(ApiError::Unprocessable(Json(body)));
        }
        report.lines_committed = lines.lines_read() as u64;
        Ok(ImportResponse::Ok(Json(report)))
    }
}

/// Records one chunk of an import: what it recorded, or its refused lines.
async fn record_chunk(
    writer: &EncounterWriter,
    auth: &ApiKeyAuth,
    chunk: Vec<(u64, Result<ImportEncounter, ErrorDetail>)>,
) -> Result<Result<Recorded, Vec<ItemError>>, ApiError> {
    let (inputs, errors) = inputs(chunk);
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let (numbers, inputs): (Vec<u64>, Vec<EncounterInput>) = inputs.into_iter().unzip();
    let written = writer
        .record_batch(auth.0.organization_id, auth.key_actor(), inputs, None)
        .await;
    match written {
        Ok(Written::Fresh(recorded)) => Ok(Ok(recorded)),
        Ok(Written::Replayed(_)) => unreachable!("no idempotency key was given"),
        Err(err) => renumbered(err, &numbers).map(Err),
    }
}
