//! Bulk recording of encounters: a JSON batch (all or nothing) and a
//! streamed NDJSON import (committed chunk by chunk, resumable).

use chrono::{DateTime, Utc};
use poem::{web::Data, Body, Endpoint, EndpointExt, Request, Response};
use poem_openapi::types::Example;
use poem_openapi::{param::Header, payload::Json, ApiRequest, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;
use serde::Deserialize;
use tracing::Instrument;

use super::{
    error::{render_error, ApiError, ErrorBody, ErrorDetail, ItemError},
    flat_json::FlatObject,
    idempotency::{answer, idempotency, stored},
    payload::{example_time, JsonItems, NdjsonBody, NdjsonReader, OctetStream},
    security::ApiKeyAuth,
    time::rfc3339,
    vocabulary::Source,
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    encounters::group_commit::{EncounterWriter, RenderBatch},
    encounters::ingest::{self, CandidateRef, EncounterInput, Recorded, TouchpointRef, BATCH_MAX},
    idempotency::{
        self as idempotency_store, Idempotency, ImportCheckpoint, ImportProgress, ImportStep,
        StoredResponse, Written, HEADER as IDEMPOTENCY_HEADER, IMPORT_OPERATION,
    },
    DomainError,
};

/// One encounter of a batch or an import. Name the candidate by
/// `candidate_id` or by `candidate_external_ref` (the applicant-tracking
/// system's id; an unknown one creates the candidate, at stage
/// `awareness`), and the touchpoint by `touchpoint_id` or by its exact
/// `touchpoint_name`. An optional field but `source` may also be `null`, as
/// absent (exports from spreadsheets and survey tools write empty cells so).
#[derive(Object, Deserialize, Debug, Clone)]
#[oai(deny_unknown_fields, example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct ImportEncounter {
    /// The candidate's id; or give `candidate_external_ref`.
    #[serde(default)]
    #[oai(nullable)]
    pub candidate_id: Option<i64>,
    /// The candidate's reference in your applicant-tracking system; or give
    /// `candidate_id`.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(nullable)]
    pub candidate_external_ref: Option<String>,
    /// The touchpoint's id; or give `touchpoint_name`.
    #[serde(default)]
    #[oai(nullable)]
    pub touchpoint_id: Option<i64>,
    /// The touchpoint's name, exactly; or give `touchpoint_id`.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(nullable)]
    pub touchpoint_name: Option<String>,
    /// When it happened (UTC); at most 5 minutes in the future.
    #[serde(deserialize_with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    /// Defaults to `candidate_survey`. Absent, never `null`: the document
    /// cannot say a nullable enum in OpenAPI 3.0 without a type beside it.
    #[serde(default)]
    pub source: Option<Source>,
    /// 0 to 10, or absent when not measured.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default)]
    #[oai(nullable)]
    pub score: Option<i32>,
    /// Up to 4000 characters.
    #[oai(validator(max_length = 4000))]
    #[serde(default)]
    #[oai(nullable)]
    pub note: Option<String>,
}

impl FlatObject for ImportEncounter {}

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
        let candidate = candidate_ref(self.candidate_id, self.candidate_external_ref)?;
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

/// The candidate a request names, by exactly one of `candidate_id` and
/// `candidate_external_ref`.
pub(crate) fn candidate_ref(
    id: Option<i64>,
    external_ref: Option<String>,
) -> Result<CandidateRef, ApiError> {
    match (id, external_ref) {
        (Some(id), None) => Ok(CandidateRef::Id(id)),
        (None, Some(external_ref)) => Ok(CandidateRef::ExternalRef(external_ref)),
        _ => Err(ApiError::validation(
            "candidate_id",
            "give exactly one of candidate_id and candidate_external_ref",
        )),
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
    /// The lines recorded, from the start of the stream: all of them,
    /// blank lines included.
    pub lines_committed: u64,
    /// The encounters recorded (with an `Idempotency-Key`, by every request
    /// with the key).
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

/// `errors`, the static errors of some items, with the reference errors of
/// the others (`inputs`), in the order of the items: a refused batch names
/// every item it refuses at once, so a client fixes them in one round.
async fn with_reference_errors(
    db: &DatabaseConnection,
    organization_id: i64,
    inputs: Vec<(u64, EncounterInput)>,
    mut errors: Vec<ItemError>,
) -> Result<Vec<ItemError>, ApiError> {
    let (numbers, inputs): (Vec<u64>, Vec<EncounterInput>) = inputs.into_iter().unzip();
    let unresolved = ingest::reference_errors(db, organization_id, inputs).await?;
    if !unresolved.is_empty() {
        errors.extend(renumbered(DomainError::InvalidItems(unresolved), &numbers)?);
        errors.sort_by_key(|item| item.index);
    }
    Ok(errors)
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

/// The 422 `invalid_items` of a refused batch (of encounters or
/// invitations): nothing was written.
pub(crate) fn refused(items: Vec<ItemError>) -> ApiError {
    ApiError::Unprocessable(Json(refused_body(items)))
}

fn refused_body(items: Vec<ItemError>) -> ErrorBody {
    let mut body = ApiError::from(DomainError::InvalidItems(Vec::new())).into_body();
    body.error.message = format!(
        "{} items were refused and nothing was written; see items",
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
        db: Data<&DatabaseConnection>,
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
            let errors = with_reference_errors(*db, auth.0.organization_id, inputs, errors).await?;
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
                None,
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
    /// of a batch item), of any length, as `application/x-ndjson` or, for
    /// clients that cannot send that media type, the same bytes as
    /// `application/octet-stream`. Each line is checked as it is read.
    /// Lines are recorded in chunks of 5,000 lines or 4 MiB of lines,
    /// whichever comes first, each in its own transaction. The import stops
    /// at the first chunk with a refused line, recording nothing of that
    /// chunk, and answers 422 `invalid_items`: `items` has the refused lines
    /// (by line number, from 0, blank lines counted). A line may be at most
    /// 64 KiB (configurable). Admins and recruiters.
    ///
    /// Every answer, success or error, has `lines_committed`: how many
    /// lines from the start of the stream are recorded (0 when none). Send
    /// an `Idempotency-Key` to make the import resumable: each chunk stores
    /// the key's progress in its own transaction, and a request with the
    /// same key skips the lines already recorded under it (they must be the
    /// same lines: otherwise 422 naming `Idempotency-Key`, nothing
    /// recorded), records the rest and answers the whole import. So after
    /// any failure (a refused line, a 500 or 503, a lost connection), send
    /// the whole stream again with the same key, fixed where refused, and
    /// no line is recorded twice. Without a key, send the stream again from
    /// line `lines_committed`.
    #[oai(
        path = "/encounters/import",
        method = "post",
        operation_id = "import_encounters",
        transform = "every_answer_counts_lines"
    )]
    async fn import(
        &self,
        request: &Request,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        writer: Data<&EncounterWriter>,
        /// A unique key per import (1 to 255 visible ASCII characters, e.g.
        /// a UUID), kept for at least 24 hours: a retry with it resumes
        /// after the lines already recorded.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        idempotency_key: Header<Option<String>>,
        body: ImportBody,
    ) -> Result<ImportResponse, ApiError> {
        // A key that is not text would reach here as no key at all, and the
        // import would run unprotected.
        if let Some(value) = request.headers().get(IDEMPOTENCY_HEADER) {
            if value.to_str().is_err() {
                return Err(with_lines_committed(
                    ApiError::validation(IDEMPOTENCY_HEADER, "must be visible ASCII characters"),
                    0,
                ));
            }
        }
        let mut import = Import::default();
        let result = import
            .run(&auth, *db, *writer, idempotency_key.0.as_deref(), body)
            .await;
        if result.is_err() {
            // Reading may have stopped with a chunk still being written:
            // the answer counts it if it commits. A refusal of it is not
            // why the import stopped, so only the first error is answered.
            let _ = import.settle().await;
        }
        match result {
            Ok(()) => Ok(ImportResponse::Ok(Json(import.report))),
            Err(mut err) => {
                // An error that says otherwise (a stream the key does not
                // know: none of it) keeps its count.
                let lines = &mut err.body_mut().lines_committed;
                lines.get_or_insert(import.report.lines_committed);
                Err(err)
            }
        }
    }
}

/// The body of an import: one encounter per line, as JSON.
#[derive(ApiRequest)]
pub enum ImportBody {
    /// NDJSON (`application/x-ndjson`).
    Ndjson(NdjsonBody<ImportEncounter>),
    /// The same NDJSON bytes, for clients that cannot send
    /// `application/x-ndjson`.
    OctetStream(NdjsonBody<ImportEncounter, OctetStream>),
}

impl ImportBody {
    fn lines(self) -> NdjsonReader<ImportEncounter> {
        match self {
            ImportBody::Ndjson(body) => body.lines(),
            ImportBody::OctetStream(body) => body.lines(),
        }
    }
}

/// Lines of an NDJSON import recorded per transaction, at most.
pub const IMPORT_CHUNK: usize = 5000;
/// Bytes of lines recorded per transaction, at most (a chunk closes at the
/// line that reaches it): what one import holds at a time is twice this
/// (the chunk being read and the one being written), plus a line, whatever
/// the lines' length.
pub const IMPORT_CHUNK_BYTES: usize = 4 * 1024 * 1024;

/// An import in progress: what it committed so far, and the chunk it reads.
#[derive(Default)]
struct Import {
    report: ImportReport,
    /// Checked lines of the chunk being read, by line number.
    chunk: Vec<(u64, EncounterInput)>,
    /// Lines of the chunk, refused ones included, and their bytes.
    chunk_lines: usize,
    chunk_bytes: usize,
    /// Refused lines of the chunk; once a chunk has one, the import stops.
    refused: Vec<ItemError>,
    /// The key's checkpoint: where this import resumes, then its last chunk.
    checkpoint: Option<ImportCheckpoint>,
    /// The chunk being recorded while the next one is read.
    in_flight: Option<ChunkWrite>,
}

/// A chunk's write, under way on its own task: reading and checking the
/// next chunk (about 12 ms per 5,000 lines) overlaps it instead of waiting
/// for it. One at a time: the next chunk's write starts once this one
/// committed, so chunks commit in order and the checkpoint says which.
struct ChunkWrite {
    task: tokio::task::JoinHandle<Result<Written<Recorded>, DomainError>>,
    /// The line number of each of the chunk's inputs, in order.
    numbers: Vec<u64>,
    lines_read: u64,
    step: Option<ImportStep>,
}

impl Import {
    async fn run(
        &mut self,
        auth: &ApiKeyAuth,
        db: &DatabaseConnection,
        writer: &EncounterWriter,
        key: Option<&str>,
        body: ImportBody,
    ) -> Result<(), ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let organization_id = auth.0.organization_id;
        let key = idempotency(key, IMPORT_OPERATION, &[])?;
        if let Some(key) = &key {
            self.checkpoint =
                idempotency_store::import_checkpoint(db, organization_id, key).await?;
        }
        let resume = self.checkpoint.as_ref().map(|c| c.progress);
        if let Some(progress) = resume {
            self.report = ImportReport::from(progress);
        }
        let resume_at = resume.map_or(0, |p| p.lines_committed);
        let mut lines = body.lines();
        lines.mark(resume_at as usize);
        let mut verified = resume.is_none();
        let mut stopped = false;
        let now = crate::domain::now();
        loop {
            let line = lines.next().await?;
            let Some((index, item)) = line else {
                break;
            };
            let index = index as u64;
            if index < resume_at {
                continue; // recorded under the key: checked below, once read
            }
            if !verified {
                self.verify(lines.marked_digest())?;
                verified = true;
            }
            if stopped {
                continue; // read to the end, so the client sees the answer
            }
            match checked(item, now) {
                Ok(input) => self.chunk.push((index, input)),
                Err(error) => self.refused.push(ItemError { index, error }),
            }
            self.chunk_lines += 1;
            self.chunk_bytes += lines.line_bytes();
            if self.chunk_lines >= IMPORT_CHUNK || self.chunk_bytes >= IMPORT_CHUNK_BYTES {
                stopped = !self
                    .flush(auth, db, writer, key.as_ref(), at(&lines))
                    .await?;
            }
        }
        if !verified {
            self.verify(lines.marked_digest())?;
        }
        if !stopped {
            stopped = !self
                .flush(auth, db, writer, key.as_ref(), at(&lines))
                .await?;
        }
        if !stopped {
            stopped = !self.settle().await?;
        }
        if stopped {
            let mut body = refused_body(std::mem::take(&mut self.refused));
            body.error.message = format!(
                "the import stopped at a chunk with refused lines: lines before {} are recorded \
                 ({} encounters), nothing after; fix the lines in items and send the rest",
                self.report.lines_committed, self.report.encounters_created
            );
            return Err(ApiError::Unprocessable(Json(body)));
        }
        self.report.lines_committed = self.report.lines_committed.max(lines.lines_read() as u64);
        Ok(())
    }

    /// A retry must repeat the lines recorded under its key.
    fn verify(&self, digest: Option<[u8; 32]>) -> Result<(), ApiError> {
        let stored = self.checkpoint.as_ref().map(|c| c.digest);
        if digest.is_some() && digest == stored {
            return Ok(());
        }
        let err = ApiError::validation(
            IDEMPOTENCY_HEADER,
            format!(
                "this key recorded the first {} lines of another stream; send that stream \
                 again (fixed only after those lines), or use a new key",
                self.report.lines_committed
            ),
        );
        // None of this stream is known to be recorded.
        Err(with_lines_committed(err, 0))
    }

    /// Starts recording the chunk read so far, once the chunk before it
    /// committed, unless a line of either was refused: whether the import
    /// goes on. A refused chunk's answer names every refused line of it,
    /// the reference errors of the others included.
    async fn flush(
        &mut self,
        auth: &ApiKeyAuth,
        db: &DatabaseConnection,
        writer: &EncounterWriter,
        key: Option<&Idempotency>,
        (lines_read, digest): (u64, [u8; 32]),
    ) -> Result<bool, ApiError> {
        let chunk = std::mem::take(&mut self.chunk);
        let refused = std::mem::take(&mut self.refused);
        (self.chunk_lines, self.chunk_bytes) = (0, 0);
        // The chunk before decides first: if it was refused, the import
        // stops there and this one is not recorded.
        if !self.settle().await? {
            return Ok(false);
        }
        if !refused.is_empty() {
            self.refused =
                with_reference_errors(db, auth.0.organization_id, chunk, refused).await?;
            return Ok(false);
        }
        if chunk.is_empty() {
            return Ok(true);
        }
        let step = key.map(|key| ImportStep {
            key: key.clone(),
            previous: self.checkpoint.clone(),
            lines_committed: lines_read,
            digest,
        });
        let (numbers, inputs): (Vec<u64>, Vec<EncounterInput>) = chunk.into_iter().unzip();
        let writer = writer.clone();
        let (organization_id, actor, import) =
            (auth.0.organization_id, auth.key_actor(), step.clone());
        let task = tokio::spawn(
            async move {
                writer
                    .record_batch(organization_id, actor, inputs, None, import)
                    .await
            }
            .in_current_span(),
        );
        self.in_flight = Some(ChunkWrite {
            task,
            numbers,
            lines_read,
            step,
        });
        Ok(true)
    }

    /// Waits for the chunk in flight, if any, and counts it: whether it
    /// committed (or there was none). A refused one leaves its refused
    /// lines, renumbered, in `refused`.
    async fn settle(&mut self) -> Result<bool, ApiError> {
        let Some(chunk) = self.in_flight.take() else {
            return Ok(true);
        };
        let written = chunk.task.await.map_err(|err| {
            DomainError::internal(format!("an import chunk's write failed: {err}"))
        })?;
        match written {
            Ok(Written::Fresh(recorded)) => {
                let encounters = recorded.encounters.len() as u64;
                self.report.lines_committed = chunk.lines_read;
                self.report.encounters_created += encounters;
                self.report.candidates_created += recorded.candidates_created;
                if let Some(step) = chunk.step {
                    self.checkpoint =
                        Some(step.checkpoint(encounters, recorded.candidates_created));
                }
                Ok(true)
            }
            Ok(Written::Replayed(_)) => unreachable!("a chunk has no idempotency key of its own"),
            Err(err) => {
                self.refused = renumbered(err, &chunk.numbers)?;
                Ok(false)
            }
        }
    }
}

impl From<ImportProgress> for ImportReport {
    fn from(progress: ImportProgress) -> Self {
        ImportReport {
            lines_committed: progress.lines_committed,
            encounters_created: progress.encounters_created,
            candidates_created: progress.candidates_created,
        }
    }
}

/// Where the reader is: lines read, and their digest.
fn at(lines: &NdjsonReader<ImportEncounter>) -> (u64, [u8; 32]) {
    (lines.lines_read() as u64, lines.digest())
}

/// One line, checked as it is read: only what passed is kept.
fn checked(
    item: Result<ImportEncounter, ErrorDetail>,
    now: chrono::DateTime<Utc>,
) -> Result<EncounterInput, ErrorDetail> {
    item.and_then(|item| {
        item.into_input()
            .and_then(|input| ingest::check(input, now).map_err(ApiError::from))
            .map_err(ApiError::into_detail)
    })
}

/// Sets `lines_committed` on an error of the import.
fn with_lines_committed(mut err: ApiError, lines: u64) -> ApiError {
    err.body_mut().lines_committed = Some(lines);
    err
}

/// The import's errors raised before it runs (an unknown key, a wrong
/// media type, a bad header) also say that no line was recorded.
fn every_answer_counts_lines<E: Endpoint + 'static>(ep: E) -> impl Endpoint<Output = Response> {
    ep.map_to_response().around(|ep, request| async move {
        let response = match ep.call(request).await {
            Ok(response) => response,
            Err(err) => render_error(err).await,
        };
        if response.status().is_success() {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let bytes = body.into_bytes().await.unwrap_or_default();
        let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(mut object)) if object.contains_key("error") => {
                object
                    .entry("lines_committed")
                    .or_insert(serde_json::Value::from(0));
                serde_json::to_vec(&object)
                    .map(Body::from)
                    .unwrap_or_default()
            }
            _ => Body::from(bytes),
        };
        let mut response = Response::from_parts(parts, body);
        response
            .headers_mut()
            .remove(poem::http::header::CONTENT_LENGTH);
        Ok(response)
    })
}
