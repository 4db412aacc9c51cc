use entity::{enums::AuditAction, organization};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};

use super::{
    audit::{self, Actor, Event},
    validate, Connection, DomainError, DomainResult,
};

pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    slug: &str,
    name: &str,
) -> DomainResult<organization::Model> {
    let slug = validate::slug("slug", slug)?;
    let name = validate::required_text("name", name, validate::NAME_MAX)?;
    let txn = super::begin_write(db).await?;
    if find_by_slug(&txn, &slug).await?.is_some() {
        return Err(DomainError::AlreadyExists {
            field: "slug",
            message: format!("an organization with slug {slug:?} already exists"),
        });
    }
    let now = super::now();
    let created = organization::ActiveModel {
        slug: Set(slug),
        name: Set(name),
        change_seq: Set(0),
        // Nothing to roll up yet: the empty rollups are current.
        rollup_version: Set(super::rollups::ROLLUP_VERSION),
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

pub async fn find_by_slug(
    db: &impl ConnectionTrait,
    slug: &str,
) -> DomainResult<Option<organization::Model>> {
    Ok(organization::Entity::find()
        .filter(organization::Column::Slug.eq(slug))
        .one(db)
        .await?)
}

pub async fn count(db: &impl ConnectionTrait) -> DomainResult<u64> {
    Ok(organization::Entity::find().count(db).await?)
}
