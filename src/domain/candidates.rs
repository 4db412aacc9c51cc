//! Candidates: the people tracked through the journey.

use entity::{candidate, enums::Stage};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, QueryTrait, Set,
};

use super::{
    idempotency::{self, Idempotent, Written},
    pagination::{Page, PageRequest},
    patch::Patch,
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

/// Which of these ids are candidates of the organization.
pub async fn existing_ids(
    db: &impl super::store::Executor,
    organization_id: i64,
    ids: &std::collections::BTreeSet<i64>,
) -> DomainResult<Vec<i64>> {
    let mut found = Vec::with_capacity(ids.len());
    let ids: Vec<i64> = ids.iter().copied().collect();
    for chunk in ids.chunks(500) {
        let select = candidate::Entity::find()
            .select_only()
            .column(candidate::Column::Id)
            .filter(candidate::Column::OrganizationId.eq(organization_id))
            .filter(candidate::Column::Id.is_in(chunk.iter().copied()))
            .into_query();
        for row in db.query(&select).await? {
            found.push(row.get(0)?);
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

pub async fn update(
    db: &impl ConnectionTrait,
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
    let current = get(db, organization_id, id).await?;
    if let Patch::Set(external_ref) = &external_ref {
        ensure_external_ref_free(db, organization_id, external_ref, Some(id)).await?;
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
    active
        .update(db)
        .await
        .map_err(|err| DomainError::on_unique_violation(err, "external_ref", DUPLICATE_REF))
}
