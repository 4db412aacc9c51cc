//! Recording encounters: one from a recruiter, thousands from a survey or
//! review-site import. Every path (the single create, the all-or-nothing
//! batch, the chunks of a streamed import, the shared transactions of the
//! group commit) goes through the same three steps:
//!
//! 1. [`check`]: the rules that need no database (score, note, time, text);
//! 2. [`resolve`]: inside the write transaction, candidate and touchpoint
//!    references become ids; a candidate named by an unknown external
//!    reference is to be created; an erased candidate takes no encounters
//!    (an erased one keeps no reference, so only its id can name it);
//! 3. [`insert`]: the missing candidates, then the encounters, then their
//!    audit events, many rows per statement: an event for each, or for the
//!    one request of a batch or an import chunk, one for each run of them
//!    ([`audit::Runs`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{
    candidate, encounter,
    enums::{AuditAction, Source, Stage},
    touchpoint,
};
use sea_orm::{
    sea_query::{OnConflict, Query},
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};

use crate::db::store::{Executor, InsertRows, WriterConnection};
use crate::domain::{
    alerts,
    encounters::write::EncounterAppend,
    error::ItemError,
    idempotency::{self, Idempotent, ImportStep, Written},
    privacy::audit::{self, Event, KeyActor},
    validate,
    webhooks::{self, events::NewEvent},
    DomainError, DomainResult,
};

/// The most encounters one batch request may carry.
pub const BATCH_MAX: usize = 5000;
/// Rows per multi-row statement: far below both backends' bind limits.
const CHUNK: usize = 500;

/// Which candidate an encounter is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CandidateRef {
    Id(i64),
    /// The applicant-tracking system's id; an unknown one creates the candidate.
    ExternalRef(String),
}

/// Which touchpoint the candidate met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TouchpointRef {
    Id(i64),
    Name(String),
}

/// An encounter to record, as the client sent it.
#[derive(Debug, Clone)]
pub struct EncounterInput {
    pub candidate: CandidateRef,
    pub touchpoint: TouchpointRef,
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
    pub score: Option<i32>,
    pub note: Option<String>,
}

/// What a recording wrote.
#[derive(Debug)]
pub struct Recorded {
    /// The encounters, in the order of the input.
    pub encounters: Vec<encounter::Model>,
    /// Candidates created because an item named an unknown external reference.
    pub candidates_created: u64,
}

/// An input whose references are ids (or a candidate to create).
#[derive(Debug)]
pub struct Resolved {
    candidate: ResolvedCandidate,
    touchpoint_id: i64,
    input: EncounterInput,
}

#[derive(Debug)]
enum ResolvedCandidate {
    Existing(i64),
    New(String),
}

/// Field names, so errors name what the client sent.
const CANDIDATE_ID: &str = "candidate_id";
const CANDIDATE_REF: &str = "candidate_external_ref";
const TOUCHPOINT_ID: &str = "touchpoint_id";
const TOUCHPOINT_NAME: &str = "touchpoint_name";

/// The rules that need no database; text is trimmed.
pub fn check(input: EncounterInput, now: DateTime<Utc>) -> DomainResult<EncounterInput> {
    let candidate =
        match input.candidate {
            CandidateRef::ExternalRef(external_ref) => CandidateRef::ExternalRef(
                validate::identifier(CANDIDATE_REF, &external_ref, validate::EXTERNAL_REF_MAX)?,
            ),
            id => id,
        };
    let touchpoint = match input.touchpoint {
        TouchpointRef::Name(name) => TouchpointRef::Name(validate::identifier(
            TOUCHPOINT_NAME,
            &name,
            validate::NAME_MAX,
        )?),
        id => id,
    };
    Ok(EncounterInput {
        candidate,
        touchpoint,
        occurred_at: validate::not_in_future("occurred_at", input.occurred_at, now)?,
        score: validate::score("score", input.score)?,
        note: validate::optional_text("note", input.note, validate::NOTE_MAX)?,
        source: input.source,
    })
}

/// Checks every input; all the refusals, by index, or the checked inputs.
pub fn check_all(
    inputs: Vec<EncounterInput>,
    now: DateTime<Utc>,
) -> Result<Vec<EncounterInput>, Vec<ItemError>> {
    let mut checked = Vec::with_capacity(inputs.len());
    let mut errors = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        match check(input, now) {
            Ok(input) => checked.push(input),
            Err(error) => errors.push(ItemError { index, error }),
        }
    }
    if errors.is_empty() {
        Ok(checked)
    } else {
        Err(errors)
    }
}

/// Resolves the references of checked inputs inside the write transaction:
/// one result per input, in order. A query failure fails the whole call.
pub async fn resolve(
    db: &impl Executor,
    organization_id: i64,
    inputs: Vec<EncounterInput>,
) -> DomainResult<Vec<DomainResult<Resolved>>> {
    let references = References::read(db, organization_id, &inputs).await?;
    Ok(inputs
        .into_iter()
        .map(|input| references.resolve(input))
        .collect())
}

/// What the references of a set of inputs name, read in a few queries.
struct References {
    /// Each known candidate id, with whether the candidate is erased.
    candidates: HashMap<i64, bool>,
    candidates_by_ref: HashMap<String, i64>,
    touchpoints_by_id: HashMap<i64, TouchpointRow>,
    touchpoints_by_name: HashMap<String, TouchpointRow>,
}

impl References {
    async fn read(
        db: &impl Executor,
        organization_id: i64,
        inputs: &[EncounterInput],
    ) -> DomainResult<Self> {
        let mut candidate_ids = BTreeSet::new();
        let mut external_refs = BTreeSet::new();
        let mut touchpoint_ids = BTreeSet::new();
        let mut touchpoint_names = BTreeSet::new();
        for input in inputs {
            match &input.candidate {
                CandidateRef::Id(id) => candidate_ids.insert(*id),
                CandidateRef::ExternalRef(external_ref) => {
                    external_refs.insert(external_ref.clone())
                }
            };
            match &input.touchpoint {
                TouchpointRef::Id(id) => touchpoint_ids.insert(*id),
                TouchpointRef::Name(name) => touchpoint_names.insert(name.clone()),
            };
        }
        let candidates =
            crate::domain::candidates::existing_ids(db, organization_id, &candidate_ids)
                .await?
                .into_iter()
                .collect();
        let candidates_by_ref = candidate_ids_by_ref(db, organization_id, &external_refs).await?;
        let mut touchpoints_by_id = HashMap::new();
        let mut touchpoints_by_name = HashMap::new();
        for touchpoint in
            find_touchpoints(db, organization_id, &touchpoint_ids, &touchpoint_names).await?
        {
            // A name in the request is matched exactly; an id too.
            if touchpoint_ids.contains(&touchpoint.id) {
                touchpoints_by_id.insert(touchpoint.id, touchpoint.clone());
            }
            if touchpoint_names.contains(&touchpoint.name) {
                touchpoints_by_name.insert(touchpoint.name.clone(), touchpoint);
            }
        }
        Ok(References {
            candidates,
            candidates_by_ref,
            touchpoints_by_id,
            touchpoints_by_name,
        })
    }

    /// One input's references, or why they do not resolve.
    fn resolve(&self, input: EncounterInput) -> DomainResult<Resolved> {
        let candidate = match &input.candidate {
            CandidateRef::Id(id) => match self.candidates.get(id) {
                Some(false) => ResolvedCandidate::Existing(*id),
                Some(true) => return Err(DomainError::erased(CANDIDATE_ID, *id)),
                None => return Err(unknown(CANDIDATE_ID)),
            },
            CandidateRef::ExternalRef(external_ref) => {
                match self.candidates_by_ref.get(external_ref) {
                    Some(id) => ResolvedCandidate::Existing(*id),
                    None => ResolvedCandidate::New(external_ref.clone()),
                }
            }
        };
        let (touchpoint, field) = match &input.touchpoint {
            TouchpointRef::Id(id) => (self.touchpoints_by_id.get(id), TOUCHPOINT_ID),
            TouchpointRef::Name(name) => (self.touchpoints_by_name.get(name), TOUCHPOINT_NAME),
        };
        let touchpoint = touchpoint.ok_or(unknown(field))?;
        if touchpoint.archived {
            return Err(DomainError::Archived {
                field,
                message: format!(
                    "touchpoint {} is archived and takes no new encounters",
                    touchpoint.id
                ),
            });
        }
        Ok(Resolved {
            candidate,
            touchpoint_id: touchpoint.id,
            input,
        })
    }
}

/// The reference errors of checked inputs, by index, read outside any
/// write: what a batch refused for its static errors reports beside them,
/// so that one answer names every refused item.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn reference_errors(
    db: &impl Executor,
    organization_id: i64,
    inputs: Vec<EncounterInput>,
) -> DomainResult<Vec<ItemError>> {
    Ok(resolve(db, organization_id, inputs)
        .await?
        .into_iter()
        .enumerate()
        .filter_map(|(index, result)| result.err().map(|error| ItemError { index, error }))
        .collect())
}

fn unknown(field: &'static str) -> DomainError {
    let resource = if field.starts_with("candidate") {
        "candidate"
    } else {
        "touchpoint"
    };
    DomainError::UnknownReference { field, resource }
}

async fn candidate_ids_by_ref(
    db: &impl Executor,
    organization_id: i64,
    external_refs: &BTreeSet<String>,
) -> DomainResult<HashMap<String, i64>> {
    let mut found = HashMap::with_capacity(external_refs.len());
    let external_refs: Vec<&String> = external_refs.iter().collect();
    for chunk in external_refs.chunks(CHUNK) {
        let select = candidate::Entity::find()
            .select_only()
            .columns([candidate::Column::Id, candidate::Column::ExternalRef])
            .filter(candidate::Column::OrganizationId.eq(organization_id))
            .filter(candidate::Column::ExternalRef.is_in(chunk.iter().map(|s| s.as_str())))
            .into_query();
        for row in db.query(&select).await? {
            found.insert(
                row.get(candidate::Column::ExternalRef)?,
                row.get(candidate::Column::Id)?,
            );
        }
    }
    Ok(found)
}

/// What resolving needs of a touchpoint.
#[derive(Debug, Clone)]
struct TouchpointRow {
    id: i64,
    name: String,
    archived: bool,
}

async fn find_touchpoints(
    db: &impl Executor,
    organization_id: i64,
    ids: &BTreeSet<i64>,
    names: &BTreeSet<String>,
) -> DomainResult<Vec<TouchpointRow>> {
    let select = || {
        touchpoint::Entity::find()
            .select_only()
            .columns([
                touchpoint::Column::Id,
                touchpoint::Column::Name,
                touchpoint::Column::ArchivedAt,
            ])
            .filter(touchpoint::Column::OrganizationId.eq(organization_id))
    };
    let mut queries = Vec::new();
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(CHUNK) {
        queries.push(
            select()
                .filter(touchpoint::Column::Id.is_in(chunk.iter().copied()))
                .into_query(),
        );
    }
    let names: Vec<&String> = names.iter().collect();
    for chunk in names.chunks(CHUNK) {
        queries.push(
            select()
                .filter(touchpoint::Column::Name.is_in(chunk.iter().map(|s| s.as_str())))
                .into_query(),
        );
    }
    let mut found = Vec::new();
    for query in queries {
        for row in db.query(&query).await? {
            found.push(TouchpointRow {
                id: row.get(touchpoint::Column::Id)?,
                name: row.get(touchpoint::Column::Name)?,
                archived: row
                    .get::<Option<DateTime<Utc>>>(touchpoint::Column::ArchivedAt)?
                    .is_some(),
            });
        }
    }
    Ok(found)
}

/// Whose requests the inputs of one [`insert`] are, for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requests {
    /// Each input is a request of its own (the group commit of single
    /// creates): an event for each candidate and encounter.
    OneEach,
    /// All inputs are one request (a batch, an import chunk): an event for
    /// each run of candidates, then of encounters, created together.
    One,
}

/// Writes resolved inputs: first the candidates they name by an unknown
/// external reference (each once), then the encounters, in input order, and
/// the audit events of the candidates and encounters created. The write
/// must have begun with [`EncounterAppend::begin_in`]. Each input comes
/// with the API key that recorded it.
pub async fn insert(
    write: &EncounterAppend,
    resolved: Vec<(&KeyActor, Resolved)>,
    requests: Requests,
) -> DomainResult<Recorded> {
    let organization_id = write.organization_id();
    // Each new reference, with the key of the first input naming it.
    let mut new_refs: BTreeMap<&str, &KeyActor> = BTreeMap::new();
    for (actor, item) in &resolved {
        if let ResolvedCandidate::New(external_ref) = &item.candidate {
            new_refs.entry(external_ref.as_str()).or_insert(actor);
        }
    }
    let (created_ids, created_now) = create_candidates(write, &new_refs).await?;
    let candidates_created = created_now.len() as u64;
    let mut events: Vec<(&KeyActor, Event)> = created_now
        .into_iter()
        .map(|(actor, id)| {
            let event = Event::candidate(id, AuditAction::Create).fields(["external_ref", "stage"]);
            (actor, event)
        })
        .collect();
    let candidate_ids: Vec<i64> = resolved
        .iter()
        .map(|(_, item)| match &item.candidate {
            ResolvedCandidate::Existing(id) => Ok(*id),
            ResolvedCandidate::New(external_ref) => {
                created_ids.get(external_ref).copied().ok_or_else(|| {
                    // The reference is personal data: not in the message.
                    DomainError::internal("a candidate just created has no id")
                })
            }
        })
        .collect::<DomainResult<_>>()?;
    let mut actors = Vec::with_capacity(resolved.len());
    let mut encounters: Vec<encounter::Model> = resolved
        .into_iter()
        .zip(&candidate_ids)
        .map(|((actor, item), candidate_id)| {
            actors.push(actor);
            new_encounter(write, actor, *candidate_id, item)
        })
        .collect();
    insert_encounters(write, &mut encounters).await?;
    events.extend(actors.into_iter().zip(&encounters).map(|(actor, e)| {
        let event = Event::encounter(e.id, e.candidate_id, AuditAction::Create)
            .fields(["candidate_id", "touchpoint_id", "occurred_at", "source"])
            .field_if(e.score.is_some(), "score")
            .field_if(e.note.is_some(), "note");
        (actor, event)
    }));
    if requests == Requests::One {
        events = events.into_iter().collect::<audit::Runs<_>>().into_events();
    }
    audit::record_all(write.txn(), organization_id, write.now(), events).await?;
    let created = encounters
        .iter()
        .map(NewEvent::encounter_created as fn(&_) -> _);
    webhooks::events::record(write.txn(), organization_id, write.now(), created).await?;
    alerts::lifecycle::detractors(write.txn(), organization_id, write.now(), &encounters).await?;
    Ok(Recorded {
        encounters,
        candidates_created,
    })
}

/// The encounter a resolved input records, before it has an id.
fn new_encounter(
    write: &EncounterAppend,
    actor: &KeyActor,
    candidate_id: i64,
    item: Resolved,
) -> encounter::Model {
    encounter::Model {
        id: 0, // known once inserted
        organization_id: write.organization_id(),
        candidate_id,
        touchpoint_id: item.touchpoint_id,
        occurred_at: item.input.occurred_at,
        source: item.input.source,
        score: item.input.score,
        note: item.input.note,
        recorded_by_key_id: actor.key_id,
        change_seq: write.seq(),
        created_at: write.now(),
        updated_at: write.now(),
    }
}

/// Inserts encounters and gives each its id. Only the ids come back:
/// reading whole rows back (three times each) cost more than writing them.
async fn insert_encounters(
    write: &EncounterAppend,
    encounters: &mut [encounter::Model],
) -> DomainResult<()> {
    use encounter::Column as C;
    let mut rows = InsertRows::new(
        encounter::Entity,
        [
            C::OrganizationId,
            C::CandidateId,
            C::TouchpointId,
            C::OccurredAt,
            C::Source,
            C::Score,
            C::Note,
            C::RecordedByKeyId,
            C::ChangeSeq,
            C::CreatedAt,
            C::UpdatedAt,
        ],
    );
    for e in encounters.iter() {
        rows.push([
            e.organization_id.into(),
            e.candidate_id.into(),
            e.touchpoint_id.into(),
            e.occurred_at.into(),
            e.source.into(),
            e.score.into(),
            e.note.clone().into(),
            e.recorded_by_key_id.into(),
            e.change_seq.into(),
            e.created_at.into(),
            e.updated_at.into(),
        ]);
    }
    let ids = write.txn().insert_rows(&rows, true).await?;
    if ids.len() != encounters.len() {
        return Err(DomainError::internal(format!(
            "{} encounters inserted of {}",
            ids.len(),
            encounters.len()
        )));
    }
    for (encounter, id) in encounters.iter_mut().zip(ids) {
        encounter.id = id;
    }
    Ok(())
}

/// Creates candidates by external reference; returns every reference's id
/// and, for the ones created now, the key that named them first and the
/// new id. A concurrent create of the same reference (which does not take
/// the encounter write lock) is not an error: its row is used, and it is
/// not this write's to record.
async fn create_candidates<'a>(
    write: &EncounterAppend,
    external_refs: &BTreeMap<&str, &'a KeyActor>,
) -> DomainResult<(HashMap<String, i64>, Vec<(&'a KeyActor, i64)>)> {
    if external_refs.is_empty() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let refs: Vec<&str> = external_refs.keys().copied().collect();
    let mut created = Vec::new();
    let mut ids = HashMap::with_capacity(refs.len());
    for chunk in refs.chunks(CHUNK) {
        let rows = chunk.iter().map(|external_ref| candidate::ActiveModel {
            organization_id: Set(write.organization_id()),
            external_ref: Set((*external_ref).to_owned()),
            display_name: Set(None),
            email: Set(None),
            stage: Set(Stage::Awareness),
            created_at: Set(write.now()),
            updated_at: Set(write.now()),
            ..Default::default()
        });
        // RETURNING yields only the rows inserted, not the conflicting ones.
        let insert = candidate::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    candidate::Column::OrganizationId,
                    candidate::Column::ExternalRef,
                ])
                .do_nothing()
                .to_owned(),
            )
            .into_query()
            .returning(
                Query::returning().columns([candidate::Column::Id, candidate::Column::ExternalRef]),
            )
            .to_owned();
        for row in write.txn().query(&insert).await? {
            let external_ref: String = row.get(candidate::Column::ExternalRef)?;
            let actor = external_refs
                .get(external_ref.as_str())
                .copied()
                .ok_or_else(|| {
                    DomainError::internal("a candidate was created that was not asked for")
                })?;
            let id = row.get(candidate::Column::Id)?;
            created.push((actor, id));
            ids.insert(external_ref, id);
        }
    }
    // Ids grow with insertion order; RETURNING itself promises no order.
    created.sort_unstable_by_key(|(_, id)| *id);
    // Only references a concurrent create took are left to read.
    if ids.len() < refs.len() {
        let taken: BTreeSet<String> = refs
            .iter()
            .filter(|external_ref| !ids.contains_key(**external_ref))
            .map(|external_ref| (*external_ref).to_owned())
            .collect();
        ids.extend(candidate_ids_by_ref(write.txn(), write.organization_id(), &taken).await?);
    }
    Ok((ids, created))
}

/// Records inputs in one transaction through the pool, all or none (the
/// demo seed, the benchmark's seeding). Every refused item is reported, by
/// its index in `inputs`. The service records batches and import chunks
/// through the encounter writer instead.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn record_all(
    db: &DatabaseConnection,
    organization_id: i64,
    recorded_by: &KeyActor,
    inputs: Vec<EncounterInput>,
    idempotent: Option<Idempotent<'_, Recorded>>,
) -> DomainResult<Written<Recorded>> {
    let checked = check_all(inputs, crate::domain::now()).map_err(DomainError::InvalidItems)?;
    if let Some(stored) = idempotency::earlier_answer(db, organization_id, idempotent).await? {
        return Ok(Written::Replayed(stored));
    }
    let connection = WriterConnection::Pool(db.clone());
    record_checked(
        &connection,
        organization_id,
        recorded_by,
        checked,
        idempotent,
        None,
    )
    .await
}

/// Records inputs that passed [`check_all`] in one transaction on
/// `connection`, all or none: the batch endpoint and each chunk of a
/// streamed import. Every refused item is reported, by its index. A chunk
/// of a keyed import moves its key's checkpoint in the same transaction, so
/// the checkpoint says exactly what committed.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn record_checked(
    connection: &WriterConnection,
    organization_id: i64,
    recorded_by: &KeyActor,
    checked: Vec<EncounterInput>,
    idempotent: Option<Idempotent<'_, Recorded>>,
    import: Option<&ImportStep>,
) -> DomainResult<Written<Recorded>> {
    let txn = connection.begin_write().await?;
    let write = EncounterAppend::begin_in(txn, organization_id).await?;
    let claimed =
        idempotency::claim_if_keyed(write.txn(), organization_id, idempotent, write.now()).await?;
    if let Some(stored) = claimed {
        return Ok(Written::Replayed(stored));
    }
    let mut resolved = Vec::with_capacity(checked.len());
    let mut errors = Vec::new();
    for (index, result) in resolve(write.txn(), organization_id, checked)
        .await?
        .into_iter()
        .enumerate()
    {
        match result {
            Ok(item) => resolved.push((recorded_by, item)),
            Err(error) => errors.push(ItemError { index, error }),
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::InvalidItems(errors));
    }
    let recorded = insert(&write, resolved, Requests::One).await?;
    idempotency::record_if_keyed(write.txn(), organization_id, idempotent, &recorded).await?;
    if let Some(step) = import {
        let next = step.checkpoint(
            recorded.encounters.len() as u64,
            recorded.candidates_created,
        );
        idempotency::advance_import(write.txn(), organization_id, step, &next, write.now()).await?;
    }
    write.commit().await?;
    Ok(Written::Fresh(recorded))
}
