//! Organizations: the tenants, and their settings.

use entity::{
    enums::{AuditAction, SurveyLocale},
    organization,
};
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
    pub survey_cooldown_days: Patch<i64>,
    pub survey_locale: Patch<SurveyLocale>,
    pub privacy_notice_url: Patch<Option<String>>,
}

/// The longest cool-down, in days (ten years).
pub const SURVEY_COOLDOWN_MAX: i64 = 3650;
/// The longest privacy notice URL.
pub const URL_MAX: usize = 2000;

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
        survey_cooldown_days: Set(14),
        survey_locale: Set(SurveyLocale::En),
        privacy_notice_url: Set(None),
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
    // An empty change log, all projected.
    crate::domain::analytics::projection::set_mark(&txn, created.id, 0).await?;
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
    let survey_cooldown_days = changes.survey_cooldown_days.try_map(|days| {
        if (0..=SURVEY_COOLDOWN_MAX).contains(&days) {
            Ok(days as i32)
        } else {
            Err(DomainError::invalid(
                "survey_cooldown_days",
                format!("must be between 0 and {SURVEY_COOLDOWN_MAX}"),
            ))
        }
    })?;
    let survey_locale = changes.survey_locale;
    let privacy_notice_url = changes.privacy_notice_url.try_map(|url| {
        url.map(|url| web_url("privacy_notice_url", &url))
            .transpose()
    })?;
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, id).await?;
    let event = Event::organization(id, AuditAction::Update)
        .field_if(
            survey_cooldown_days.changes(&current.survey_cooldown_days),
            "survey_cooldown_days",
        )
        .field_if(
            survey_locale.changes(&current.survey_locale),
            "survey_locale",
        )
        .field_if(
            privacy_notice_url.changes(&current.privacy_notice_url),
            "privacy_notice_url",
        )
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
    if let Patch::Set(days) = survey_cooldown_days {
        active.survey_cooldown_days = Set(days);
    }
    if let Patch::Set(locale) = survey_locale {
        active.survey_locale = Set(locale);
    }
    if let Patch::Set(url) = privacy_notice_url {
        active.privacy_notice_url = Set(url);
    }
    let now = crate::domain::now();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    audit::record(&txn, id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}

/// An absolute `https://` (or `http://`) URL a browser can open, at most
/// [`URL_MAX`] long: what survey pages link to.
fn web_url(field: &str, value: &str) -> DomainResult<String> {
    let value = value.trim();
    if value.len() > URL_MAX {
        return Err(DomainError::invalid(
            field,
            format!("must be at most {URL_MAX} characters"),
        ));
    }
    match url::Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(DomainError::invalid(
            field,
            "must be an absolute http:// or https:// URL",
        )),
    }
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
