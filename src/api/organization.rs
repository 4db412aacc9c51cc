//! The caller's own organization: its name and settings.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    nullable::Nullable,
    patch::{change, nullable_change, required},
    payload::JsonBody,
    security::ApiKeyAuth,
    vocabulary::SurveyLocale,
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    organizations::{self, OrganizationChanges},
};

/// The employer the API key belongs to, and its settings.
#[derive(Object)]
pub struct Organization {
    /// The organization's id.
    pub id: i64,
    /// Its short unique name, set when it was created.
    #[oai(validator(max_length = 64))]
    pub slug: String,
    /// Its display name.
    #[oai(validator(max_length = 200))]
    pub name: String,
    /// Small-group suppression: every report point or row backed by fewer
    /// scored encounters than this (for perception shift: fewer
    /// candidates) shows its counts, `suppressed: true` and `null` for the
    /// figures that could reveal a candidate's score. 0 turns it off.
    pub min_group_size: i32,
    /// No new survey invitation for a candidate invited (and not revoked)
    /// within this many days; 0 turns the cool-down off.
    pub survey_cooldown_days: i32,
    /// The language of survey invitations that name none.
    pub survey_locale: SurveyLocale,
    /// The organization's privacy notice, linked from every survey page;
    /// `null`: the pages link to none.
    #[oai(validator(max_length = 2000))]
    pub privacy_notice_url: Nullable<String>,
    /// When the organization was created.
    pub created_at: DateTime<Utc>,
    /// When its name or settings last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<entity::organization::Model> for Organization {
    fn from(model: entity::organization::Model) -> Self {
        Organization {
            id: model.id,
            slug: model.slug,
            name: model.name,
            min_group_size: model.min_group_size,
            survey_cooldown_days: model.survey_cooldown_days,
            survey_locale: model.survey_locale.into(),
            privacy_notice_url: model.privacy_notice_url.into(),
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// Changes to the organization; absent fields stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// A new display name; 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// The smallest group a report shows figures of, 0 (off) to 1000.
    /// Survey vendors use 10 to 20.
    #[oai(validator(minimum(value = "0"), maximum(value = "1000")))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub min_group_size: Option<i64>,
    /// Days, 0 (off) to 3650, within which a candidate invited to a survey
    /// gets no new invitation. Survey tools use 14 to 90.
    #[oai(validator(minimum(value = "0"), maximum(value = "3650")))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub survey_cooldown_days: Option<i64>,
    /// The default language of survey invitations.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub survey_locale: Option<SurveyLocale>,
    /// An absolute http(s) URL, at most 2000 characters; `null` clears it.
    #[oai(validator(max_length = 2000))]
    #[serde(default)]
    #[oai(nullable)]
    pub privacy_notice_url: MaybeUndefined<String>,
}

/// A partial change: the fields it leaves as they are are absent.
impl Example for UpdateOrganization {
    fn example() -> Self {
        UpdateOrganization {
            name: None,
            min_group_size: Some(10),
            survey_cooldown_days: None,
            survey_locale: None,
            privacy_notice_url: MaybeUndefined::Undefined,
        }
    }
}

#[derive(ApiResponse)]
pub enum OrganizationResponse {
    /// The organization.
    #[oai(status = 200)]
    Ok(Json<Organization>),
}

#[derive(Default)]
pub struct OrganizationApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Organization")]
impl OrganizationApi {
    /// Get the organization
    ///
    /// The organization of the API key, with its settings. Admin only.
    #[oai(
        path = "/organization",
        method = "get",
        operation_id = "get_organization"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
    ) -> Result<OrganizationResponse, ApiError> {
        auth.0.require(Capability::ManageOrganization)?;
        let organization = organizations::get(*db, auth.0.organization_id).await?;
        Ok(OrganizationResponse::Ok(Json(organization.into())))
    }

    /// Update the organization
    ///
    /// Changes the fields present in the body: the display name,
    /// `min_group_size` (which every report applies from the next request
    /// on) and the survey settings. Admin only.
    #[oai(
        path = "/organization",
        method = "patch",
        operation_id = "update_organization"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The fields to change.
        body: JsonBody<UpdateOrganization>,
    ) -> Result<OrganizationResponse, ApiError> {
        auth.0.require(Capability::ManageOrganization)?;
        let body = body.0;
        let changes = OrganizationChanges {
            name: change(body.name),
            min_group_size: change(body.min_group_size),
            survey_cooldown_days: change(body.survey_cooldown_days),
            survey_locale: change(body.survey_locale),
            privacy_notice_url: nullable_change(body.privacy_notice_url),
        };
        let updated =
            organizations::update(*db, &auth.actor(), auth.0.organization_id, changes).await?;
        Ok(OrganizationResponse::Ok(Json(updated.into())))
    }
}
