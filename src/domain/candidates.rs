//! Candidates: the people tracked through the journey.

use chrono::{DateTime, Utc};
use entity::{candidate, encounter, enums::Stage};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection,
    EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};

use super::{
    idempotency::{self, Idempotent, Written},
    pagination::{Page, PageRequest},
    patch::Patch,
    rollups::EncounterWrite,
    validate, DomainError, DomainResult,
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
    db: &impl ConnectionTrait,
    organization_id: i64,
    new: NewCandidate,
) -> DomainResult<candidate::Model> {
    let external_ref = validate::required_text(
        "external_ref",
        &new.external_ref,
        validate::EXTERNAL_REF_MAX,
    )?;
    let display_name =
        validate::optional_text("display_name", new.display_name, validate::NAME_MAX)?;
    let email = validate::email("email", new.email)?;
    ensure_external_ref_free(db, organization_id, &external_ref, None).await?;
    let now = super::now();
    candidate::ActiveModel {
        organization_id: Set(organization_id),
        external_ref: Set(external_ref),
        display_name: Set(display_name),
        email: Set(email),
        stage: Set(new.stage),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))
}

/// Creates a candidate in a transaction of its own. With an idempotency
/// key, a repeat of an earlier request answers with its stored response.
pub async fn create_once(
    db: &DatabaseConnection,
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
    let created = create(&txn, organization_id, new).await?;
    idempotency::record_if_keyed(&txn, organization_id, idempotent, &created).await?;
    txn.commit().await?;
    Ok(Written::Fresh(created))
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
            validate::required_text("external_ref", &external_ref, validate::EXTERNAL_REF_MAX)?;
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
    organization_id: i64,
    id: i64,
    changes: CandidateChanges,
) -> DomainResult<candidate::Model> {
    let external_ref = changes.external_ref.try_map(|external_ref| {
        validate::required_text("external_ref", &external_ref, validate::EXTERNAL_REF_MAX)
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
    active.updated_at = Set(super::now());
    let updated = active
        .update(&txn)
        .await
        .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))?;
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
/// Erasing an erased candidate changes nothing and answers the same.
pub async fn erase(
    db: &DatabaseConnection,
    organization_id: i64,
    id: i64,
) -> DomainResult<candidate::Model> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    let current = get(write.entities(), organization_id, id).await?;
    if current.erased_at.is_some() {
        // Dropping the write rolls back its change_seq bump.
        return Ok(current);
    }
    let erased = erase_in(&write, current).await?;
    write.commit().await?;
    Ok(erased)
}

/// Erases `current`, a candidate not yet erased, within `write` (see
/// [`erase`]); the caller commits.
pub(super) async fn erase_in(
    write: &EncounterWrite,
    current: candidate::Model,
) -> DomainResult<candidate::Model> {
    let (organization_id, id) = (current.organization_id, current.id);
    let now = write.now();
    let mut active: candidate::ActiveModel = current.into();
    active.external_ref = Set(erased_external_ref(id));
    active.display_name = Set(None);
    active.email = Set(None);
    active.erased_at = Set(Some(now));
    active.updated_at = Set(now);
    let erased = active.update(write.entities()).await?;
    encounter::Entity::update_many()
        .col_expr(encounter::Column::Note, Expr::value(Option::<String>::None))
        .col_expr(encounter::Column::ChangeSeq, Expr::value(write.seq()))
        .col_expr(encounter::Column::UpdatedAt, Expr::value(now))
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .filter(encounter::Column::CandidateId.eq(id))
        .filter(encounter::Column::Note.is_not_null())
        .exec(write.entities())
        .await?;
    idempotency::redact_candidate(write.entities(), organization_id, id).await?;
    // No score changed, so the rollups are untouched.
    Ok(erased)
}

/// Everything stored about one candidate, for a subject-access request
/// (GDPR Art. 15): the profile and every encounter with its touchpoint,
/// score, shift and note. Read from one snapshot, so the parts agree.
pub async fn subject_access(
    db: &DatabaseConnection,
    organization_id: i64,
    id: i64,
) -> DomainResult<super::encounters::Journey> {
    use sea_orm::{AccessMode, DbBackend, IsolationLevel, TransactionTrait};
    // A SQLite transaction reads one snapshot; PostgreSQL's default (read
    // committed) takes one per statement.
    let txn = match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
        _ => db.begin().await?,
    };
    let journey = super::encounters::journey(&txn, organization_id, id).await?;
    txn.commit().await?;
    Ok(journey)
}
