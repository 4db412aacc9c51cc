//! Candidates: the people tracked through the journey.

use chrono::{DateTime, Utc};
use entity::{
    candidate, encounter,
    enums::{AuditAction, Stage},
};
use sea_orm::{
    sea_query::Query, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};

use super::{
    audit::{self, Actor, Event},
    idempotency::{self, Idempotent, Written},
    pagination::{Page, PageRequest},
    patch::Patch,
    rollups::EncounterWrite,
    store::Executor,
    validate, Connection, DomainError, DomainResult,
};

pub struct NewCandidate {
    pub external_ref: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub stage: Stage,
}

#[derive(Default)]
pub struct CandidateChanges {
    pub external_ref: Patch<String>,
    pub display_name: Patch<Option<String>>,
    pub email: Patch<Option<String>>,
    pub stage: Patch<Stage>,
}

#[derive(Default)]
pub struct CandidateFilter {
    pub stage: Option<Stage>,
    pub external_ref: Option<String>,
}

const DUPLICATE_REF: &str = "a candidate with this external_ref already exists";

async fn ensure_external_ref_free(
    db: &impl ConnectionTrait,
    organization_id: i64,
    external_ref: &str,
    except_id: Option<i64>,
) -> DomainResult<()> {
    let mut query = candidate::Entity::find()
        .filter(candidate::Column::OrganizationId.eq(organization_id))
        .filter(candidate::Column::ExternalRef.eq(external_ref));
    if let Some(id) = except_id {
        query = query.filter(candidate::Column::Id.ne(id));
    }
    if query.one(db).await?.is_some() {
        return Err(DomainError::AlreadyExists {
            field: "external_ref",
            message: DUPLICATE_REF.to_owned(),
        });
    }
    Ok(())
}

pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    new: NewCandidate,
) -> DomainResult<candidate::Model> {
    let txn = super::begin_write(db).await?;
    let created = insert(&txn, actor, organization_id, new).await?;
    txn.commit().await?;
    Ok(created)
}

/// Creates a candidate in a transaction of its own. With an idempotency
/// key, a repeat of an earlier request answers with its stored response
/// (and, having changed nothing, records no audit event).
pub async fn create_once(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    new: NewCandidate,
    idempotent: Option<Idempotent<'_, candidate::Model>>,
) -> DomainResult<Written<candidate::Model>> {
    if let Some(stored) = idempotency::earlier_answer(db, organization_id, idempotent).await? {
        return Ok(Written::Replayed(stored));
    }
    let txn = super::begin_write(db).await?;
    let claimed =
        idempotency::claim_if_keyed(&txn, organization_id, idempotent, super::now()).await?;
    if let Some(stored) = claimed {
        return Ok(Written::Replayed(stored));
    }
    let created = insert(&txn, actor, organization_id, new).await?;
    idempotency::record_if_keyed(&txn, organization_id, idempotent, &created).await?;
    txn.commit().await?;
    Ok(Written::Fresh(created))
}

/// Inserts a candidate and its audit event in the caller's transaction.
async fn insert(
    txn: &DatabaseTransaction,
    actor: &Actor,
    organization_id: i64,
    new: NewCandidate,
) -> DomainResult<candidate::Model> {
    let external_ref = validate::identifier(
        "external_ref",
        &new.external_ref,
        validate::EXTERNAL_REF_MAX,
    )?;
    let display_name =
        validate::optional_text("display_name", new.display_name, validate::NAME_MAX)?;
    let email = validate::email("email", new.email)?;
    ensure_external_ref_free(txn, organization_id, &external_ref, None).await?;
    let now = super::now();
    let created = candidate::ActiveModel {
        organization_id: Set(organization_id),
        external_ref: Set(external_ref),
        display_name: Set(display_name),
        email: Set(email),
        stage: Set(new.stage),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(txn)
    .await
    .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))?;
    let event = Event::candidate(created.id, AuditAction::Create)
        .fields(["external_ref"])
        .field_if(created.display_name.is_some(), "display_name")
        .field_if(created.email.is_some(), "email")
        .fields(["stage"]);
    audit::record(txn, organization_id, actor, now, event).await?;
    Ok(created)
}

pub async fn find(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<Option<candidate::Model>> {
    Ok(candidate::Entity::find_by_id(id)
        .filter(candidate::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?)
}

/// Which of these ids are candidates of the organization, each with
/// whether it is erased.
pub async fn existing_ids(
    db: &impl super::store::Executor,
    organization_id: i64,
    ids: &std::collections::BTreeSet<i64>,
) -> DomainResult<Vec<(i64, bool)>> {
    let mut found = Vec::with_capacity(ids.len());
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let select = candidate::Entity::find()
            .select_only()
            .columns([candidate::Column::Id, candidate::Column::ErasedAt])
            .filter(candidate::Column::OrganizationId.eq(organization_id))
            .filter(candidate::Column::Id.is_in(chunk.iter().copied()))
            .into_query();
        for row in db.query(&select).await? {
            let erased_at: Option<DateTime<Utc>> = row.get(1)?;
            found.push((row.get(0)?, erased_at.is_some()));
        }
    }
    Ok(found)
}

pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<candidate::Model> {
    find(db, organization_id, id)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "candidate",
        })
}

pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: CandidateFilter,
    page: PageRequest,
) -> DomainResult<Page<candidate::Model>> {
    let mut select =
        candidate::Entity::find().filter(candidate::Column::OrganizationId.eq(organization_id));
    if let Some(stage) = filter.stage {
        select = select.filter(candidate::Column::Stage.eq(stage));
    }
    if let Some(external_ref) = filter.external_ref {
        let external_ref =
            validate::identifier("external_ref", &external_ref, validate::EXTERNAL_REF_MAX)?;
        select = select.filter(candidate::Column::ExternalRef.eq(external_ref));
    }
    page.fetch(db, select, candidate::Column::Id, |c| c.id)
        .await
}

/// Changes a candidate, in a transaction of its own. An erased candidate
/// takes no changes (409): its row is locked while checked, so an erasure
/// committing meanwhile cannot be overwritten with personal data again.
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    changes: CandidateChanges,
) -> DomainResult<candidate::Model> {
    let external_ref = changes.external_ref.try_map(|external_ref| {
        validate::identifier("external_ref", &external_ref, validate::EXTERNAL_REF_MAX)
    })?;
    let display_name = changes
        .display_name
        .try_map(|name| validate::optional_text("display_name", name, validate::NAME_MAX))?;
    let email = changes
        .email
        .try_map(|email| validate::email("email", email))?;
    let txn = super::begin_write(db).await?;
    // FOR UPDATE on PostgreSQL; SQLite's write lock is already held.
    let current = candidate::Entity::find_by_id(id)
        .filter(candidate::Column::OrganizationId.eq(organization_id))
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "candidate",
        })?;
    if current.erased_at.is_some() {
        return Err(DomainError::erased("id", id));
    }
    if let Patch::Set(external_ref) = &external_ref {
        ensure_external_ref_free(&txn, organization_id, external_ref, Some(id)).await?;
    }
    let event = Event::candidate(id, AuditAction::Update)
        .field_if(external_ref.changes(&current.external_ref), "external_ref")
        .field_if(display_name.changes(&current.display_name), "display_name")
        .field_if(email.changes(&current.email), "email")
        .field_if(changes.stage.changes(&current.stage), "stage");
    let mut active: candidate::ActiveModel = current.into();
    if let Patch::Set(external_ref) = external_ref {
        active.external_ref = Set(external_ref);
    }
    if let Patch::Set(display_name) = display_name {
        active.display_name = Set(display_name);
    }
    if let Patch::Set(email) = email {
        active.email = Set(email);
    }
    if let Patch::Set(stage) = changes.stage {
        active.stage = Set(stage);
    }
    let now = super::now();
    active.updated_at = Set(now);
    let updated = active
        .update(&txn)
        .await
        .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))?;
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}

/// The `external_ref` an erased candidate keeps. The column is `NOT NULL`
/// and unique per organization (see the migration that added `erased_at`
/// for why it stays so), so erasure puts a value there that names nobody
/// and can never collide with a client's: every client-given reference is
/// trimmed, so none starts with a space. No lookup by reference (a filter,
/// a batch item's `candidate_external_ref`) can ever match it, and the ATS
/// id the candidate had is free again: if the same person applies again,
/// they are a new candidate. The API shows it as `null`.
pub fn erased_external_ref(id: i64) -> String {
    format!(" erased {id}")
}

/// Erases a candidate's personal data, irreversibly, in one transaction:
/// `display_name`, `email` and `external_ref` (see [`erased_external_ref`]),
/// and the notes of all their encounters. The encounters and their scores
/// stay, de-identified, so every report is the same before and after.
///
/// It runs as an [`EncounterWrite`]: one at a time with the organization's
/// other encounter writes (so none can add an encounter to the candidate
/// while it is being erased), and the encounters whose note it removes get
/// its `change_seq`, so the next incremental export carries them again,
/// without the note, and the copies downstream lose it too.
///
/// The audit trail gets an `erase` event for the candidate and one for
/// each encounter that lost its note, naming the fields, not their values.
///
/// Erasing an erased candidate changes nothing and answers the same.
pub async fn erase(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<candidate::Model> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    let current = get(write.entities(), organization_id, id).await?;
    if current.erased_at.is_some() {
        // Dropping the write rolls back its change_seq bump.
        return Ok(current);
    }
    let erased = erase_in(&write, actor, current).await?;
    write.commit().await?;
    Ok(erased)
}

/// Erases `current`, a candidate not yet erased, within `write` (see
/// [`erase`]), on behalf of `actor`; the caller commits.
pub(super) async fn erase_in(
    write: &EncounterWrite,
    actor: &Actor,
    current: candidate::Model,
) -> DomainResult<candidate::Model> {
    let (organization_id, id) = (current.organization_id, current.id);
    let now = write.now();
    let erasure = Event::candidate(id, AuditAction::Erase)
        .fields(["external_ref"])
        .field_if(current.display_name.is_some(), "display_name")
        .field_if(current.email.is_some(), "email")
        .fields(["erased_at"]);
    let mut active: candidate::ActiveModel = current.into();
    active.external_ref = Set(erased_external_ref(id));
    active.display_name = Set(None);
    active.email = Set(None);
    active.erased_at = Set(Some(now));
    active.updated_at = Set(now);
    let erased = active.update(write.entities()).await?;
    let remove_notes = Query::update()
        .table(encounter::Entity)
        .value(encounter::Column::Note, Option::<String>::None)
        .value(encounter::Column::ChangeSeq, write.seq())
        .value(encounter::Column::UpdatedAt, now)
        .and_where(encounter::Column::OrganizationId.eq(organization_id))
        .and_where(encounter::Column::CandidateId.eq(id))
        .and_where(encounter::Column::Note.is_not_null())
        .returning_col(encounter::Column::Id)
        .to_owned();
    let mut events = vec![erasure];
    for row in write.txn().query(&remove_notes).await? {
        let encounter_id = row.get(0)?;
        events.push(Event::encounter(encounter_id, id, AuditAction::Erase).fields(["note"]));
    }
    events[1..].sort_by_key(|event| event.resource_id);
    audit::record_all(
        write.txn(),
        organization_id,
        now,
        events.into_iter().map(|event| (actor, event)),
    )
    .await?;
    idempotency::redact_candidate(write.entities(), organization_id, id).await?;
    // No score changed, so the rollups are untouched.
    Ok(erased)
}

/// Everything stored about one candidate, for a subject-access request
/// (GDPR Art. 15), being read: the profile, every encounter with its
/// touchpoint, score, shift and note ([`super::encounters::JourneyRead`]),
/// and the audit trail of them ([`SubjectAccessRead::audit_events`]), all
/// from one snapshot, so the parts agree. Streamed: however long the
/// candidate's history, only a row at a time is held.
pub struct SubjectAccessRead {
    pub journey: super::encounters::JourneyRead,
}

/// Starts reading everything stored about one candidate. Everything that
/// can refuse it (no such candidate in the organization) is checked here,
/// before anything is streamed; an erased candidate's data is what is left.
pub async fn read_subject_access(
    db: &DatabaseConnection,
    organization_id: i64,
    id: i64,
) -> DomainResult<SubjectAccessRead> {
    Ok(SubjectAccessRead {
        journey: super::encounters::read_journey(db, organization_id, id).await?,
    })
}

impl SubjectAccessRead {
    /// The audit events about the candidate and their encounters, deleted
    /// ones included, oldest first.
    pub fn audit_events(
        &self,
    ) -> impl futures_util::Stream<Item = DomainResult<entity::audit_event::Model>> + Send + '_
    {
        let candidate = &self.journey.candidate;
        audit::about_candidate(
            self.journey.snapshot(),
            candidate.organization_id,
            candidate.id,
        )
    }
}
