//! Organizations: the tenants, and their settings.

use entity::{enums::AuditAction, organization};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use crate::domain::{
    patch::Patch,
    privacy::audit::{self, Actor, Event},
    validate, Connection, DomainError, DomainResult,
};

/// Changes to an organization's name and settings.
#[derive(Debug, Default)]
pub struct OrganizationChanges {
    pub name: Patch<String>,
    pub min_group_size: Patch<i64>,
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    slug: &str,
    name: &str,
) -> DomainResult<organization::Model> {
    let slug = validate::slug("slug", slug)?;
    let name = validate::required_text("name", name, validate::NAME_MAX)?;
    let txn = crate::domain::begin_write(db).await?;
    if find_by_slug(&txn, &slug).await?.is_some() {
        return Err(DomainError::AlreadyExists {
            field: "slug",
            message: format!("an organization with slug {slug:?} already exists"),
        });
    }
    let now = crate::domain::now();
    let created = organization::ActiveModel {
        slug: Set(slug),
        name: Set(name),
        change_seq: Set(0),
        // Nothing to roll up yet: the empty rollups are current.
        rollup_version: Set(crate::domain::analytics::rollups::ROLLUP_VERSION),
        min_group_size: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|err| {
        DomainError::on_unique_violation(
            err,
            "slug",
            "an organization with this slug already exists",
        )
    })?;
    let event = Event::organization(created.id, AuditAction::Create).fields(["slug", "name"]);
    audit::record(&txn, created.id, actor, now, event).await?;
    txn.commit().await?;
    Ok(created)
}

/// The caller's own organization.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = id))]
pub async fn get(db: &impl ConnectionTrait, id: i64) -> DomainResult<organization::Model> {
    organization::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "organization",
        })
}

/// Changes an organization's name and settings: the one place they change.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = id))]
pub async fn update(
    db: &impl Connection,
    actor: &Actor,
    id: i64,
    changes: OrganizationChanges,
) -> DomainResult<organization::Model> {
    let name = changes
        .name
        .try_map(|name| validate::required_text("name", &name, validate::NAME_MAX))?;
    let min_group_size = changes
        .min_group_size
        .try_map(|size| validate::min_group_size("min_group_size", size))?;
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, id).await?;
    let event = Event::organization(id, AuditAction::Update)
        .field_if(name.changes(&current.name), "name")
        .field_if(
            min_group_size.changes(&current.min_group_size),
            "min_group_size",
        );
    let mut active: organization::ActiveModel = current.into();
    if let Patch::Set(name) = name {
        active.name = Set(name);
    }
    if let Patch::Set(size) = min_group_size {
        active.min_group_size = Set(size);
    }
    let now = crate::domain::now();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    audit::record(&txn, id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> DomainResult<Option<organization::Model>> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

#[tracing::instrument(level = "debug", skip_all)]
pub async fn count(db: &impl ConnectionTrait) -> DomainResult<u64> {
    Ok(organization::Entity::find().count(db).await?)
}
