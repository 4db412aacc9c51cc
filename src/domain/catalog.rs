//! The touchpoint catalog.

use entity::{
    enums::{AuditAction, Channel, Kind, Stage},
    touchpoint,
};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::domain::{
    pagination::{Page, PageRequest},
    patch::Patch,
    privacy::audit::{self, Actor, Event},
    validate, Connection, DomainError, DomainResult,
};

pub struct NewTouchpoint {
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    pub description: Option<String>,
}

#[derive(Default)]
pub struct TouchpointChanges {
    pub name: Patch<String>,
    pub kind: Patch<Kind>,
    pub channel: Patch<Channel>,
    pub stage: Patch<Stage>,
    pub description: Patch<Option<String>>,
}

#[derive(Default)]
pub struct TouchpointFilter {
    pub kind: Option<Kind>,
    pub channel: Option<Channel>,
    pub stage: Option<Stage>,
    pub include_archived: bool,
}

const DUPLICATE_NAME: &str = "a touchpoint with this name already exists";

async fn ensure_name_free(
    db: &impl ConnectionTrait,
    organization_id: i64,
    name: &str,
    except_id: Option<i64>,
) -> DomainResult<()> {
    let mut query = touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .filter(touchpoint::Column::Name.eq(name));
    if let Some(id) = except_id {
        query = query.filter(touchpoint::Column::Id.ne(id));
    }
    if query.one(db).await?.is_some() {
        return Err(DomainError::AlreadyExists {
            field: "name",
            message: DUPLICATE_NAME.to_owned(),
        });
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    new: NewTouchpoint,
) -> DomainResult<touchpoint::Model> {
    let name = validate::identifier("name", &new.name, validate::NAME_MAX)?;
    let description =
        validate::optional_text("description", new.description, validate::DESCRIPTION_MAX)?;
    let txn = crate::domain::begin_write(db).await?;
    ensure_name_free(&txn, organization_id, &name, None).await?;
    let now = crate::domain::now();
    let created = touchpoint::ActiveModel {
        organization_id: Set(organization_id),
        name: Set(name),
        kind: Set(new.kind),
        channel: Set(new.channel),
        stage: Set(new.stage),
        description: Set(description),
        archived_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(|err| DomainError::on_unique_violation(err, "name", DUPLICATE_NAME))?;
    let event = Event::touchpoint(created.id, AuditAction::Create)
        .fields(["name", "kind", "channel", "stage"])
        .field_if(created.description.is_some(), "description");
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(created)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, touchpoint_id = id))]
pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<touchpoint::Model> {
    find(db, organization_id, id)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "touchpoint",
        })
}

pub async fn find(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<Option<touchpoint::Model>> {
    Ok(touchpoint::Entity::find_by_id(id)
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: TouchpointFilter,
    page: PageRequest,
) -> DomainResult<Page<touchpoint::Model>> {
    let mut select =
        touchpoint::Entity::find().filter(touchpoint::Column::OrganizationId.eq(organization_id));
    if let Some(kind) = filter.kind {
        select = select.filter(touchpoint::Column::Kind.eq(kind));
    }
    if let Some(channel) = filter.channel {
        select = select.filter(touchpoint::Column::Channel.eq(channel));
    }
    if let Some(stage) = filter.stage {
        select = select.filter(touchpoint::Column::Stage.eq(stage));
    }
    if !filter.include_archived {
        select = select.filter(touchpoint::Column::ArchivedAt.is_null());
    }
    page.fetch(db, select, touchpoint::Column::Id, |t| t.id)
        .await
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, touchpoint_id = id))]
pub async fn update(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    changes: TouchpointChanges,
) -> DomainResult<touchpoint::Model> {
    let name = changes
        .name
        .try_map(|name| validate::identifier("name", &name, validate::NAME_MAX))?;
    let description = changes.description.try_map(|description| {
        validate::optional_text("description", description, validate::DESCRIPTION_MAX)
    })?;
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    if let Patch::Set(name) = &name {
        ensure_name_free(&txn, organization_id, name, Some(id)).await?;
    }
    let event = Event::touchpoint(id, AuditAction::Update)
        .field_if(name.changes(&current.name), "name")
        .field_if(changes.kind.changes(&current.kind), "kind")
        .field_if(changes.channel.changes(&current.channel), "channel")
        .field_if(changes.stage.changes(&current.stage), "stage")
        .field_if(description.changes(&current.description), "description");
    let mut active: touchpoint::ActiveModel = current.into();
    if let Patch::Set(name) = name {
        active.name = Set(name);
    }
    if let Patch::Set(kind) = changes.kind {
        active.kind = Set(kind);
    }
    if let Patch::Set(channel) = changes.channel {
        active.channel = Set(channel);
    }
    if let Patch::Set(stage) = changes.stage {
        active.stage = Set(stage);
    }
    if let Patch::Set(description) = description {
        active.description = Set(description);
    }
    let now = crate::domain::now();
    active.updated_at = Set(now);
    let updated = active
        .update(&txn)
        .await
        .map_err(|err| DomainError::on_unique_violation(err, "name", DUPLICATE_NAME))?;
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Archives a touchpoint: it stays in past encounters and reports but takes
/// no new encounters. Archiving twice keeps the first `archived_at` and
/// records no second event.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, touchpoint_id = id))]
pub async fn archive(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<touchpoint::Model> {
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    if current.archived_at.is_some() {
        return Ok(current);
    }
    let now = crate::domain::now();
    let mut active: touchpoint::ActiveModel = current.into();
    active.archived_at = Set(Some(now));
    active.updated_at = Set(now);
    let archived = active.update(&txn).await?;
    let event = Event::touchpoint(id, AuditAction::Archive).fields(["archived_at"]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(archived)
}
