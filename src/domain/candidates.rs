//! Candidates: the people tracked through the journey.

use chrono::{DateTime, Utc};
use entity::{
    candidate,
    enums::{AuditAction, Stage},
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};

use crate::domain::{
    idempotency::{self, Idempotent, Written},
    pagination::{Page, PageRequest},
    patch::Patch,
    privacy::audit::{self, Actor, Event},
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
    /// Text the reference or the display name contains.
    pub search: Option<String>,
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

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    new: NewCandidate,
) -> DomainResult<candidate::Model> {
    let txn = crate::domain::begin_write(db).await?;
    let created = insert(&txn, actor, organization_id, new).await?;
    txn.commit().await?;
    Ok(created)
}

/// Creates a candidate in a transaction of its own. With an idempotency
/// key, a repeat of an earlier request answers with its stored response
/// (and, having changed nothing, records no audit event).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
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
    let txn = crate::domain::begin_write(db).await?;
    let claimed =
        idempotency::claim_if_keyed(&txn, organization_id, idempotent, crate::domain::now())
            .await?;
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
    let now = crate::domain::now();
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
    db: &impl crate::db::store::Executor,
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
            let erased_at: Option<DateTime<Utc>> = row.get(candidate::Column::ErasedAt)?;
            found.push((row.get(candidate::Column::Id)?, erased_at.is_some()));
        }
    }
    Ok(found)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, candidate_id = id))]
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

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
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
    if let Some(search) = filter.search {
        let pattern = contains_pattern(&validate::required_text("q", &search, validate::NAME_MAX)?);
        let contains = |column: candidate::Column| {
            Func::lower(Expr::col(column)).like(LikeExpr::new(pattern.clone()).escape('\\'))
        };
        select = select.filter(
            Condition::any()
                .add(contains(candidate::Column::ExternalRef))
                .add(contains(candidate::Column::DisplayName)),
        );
    }
    page.fetch(db, select, candidate::Column::Id, |c| c.id)
        .await
}

/// A LIKE pattern matching any text that contains `text`, lower-cased (the
/// column is lower-cased too: SQLite's `lower` folds A-Z only,
/// PostgreSQL's every letter), its wildcards escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Changes a candidate, in a transaction of its own. An erased candidate
/// takes no changes (409): its row is locked while checked, so an erasure
/// committing meanwhile cannot be overwritten with personal data again.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, candidate_id = id))]
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
    let txn = crate::domain::begin_write(db).await?;
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
    let now = crate::domain::now();
    active.updated_at = Set(now);
    let updated = active
        .update(&txn)
        .await
        .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))?;
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}
