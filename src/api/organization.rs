//! The caller's own organization: its name and settings.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    patch::{change, required},
    payload::JsonBody,
    security::ApiKeyAuth,
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
}

/// A partial change: the fields it leaves as they are are absent.
impl Example for UpdateOrganization {
    fn example() -> Self {
        UpdateOrganization {
            name: None,
            min_group_size: Some(10),
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
    /// Changes the fields present in the body: the display name and
    /// `min_group_size`, which every report applies from the next request
    /// on. Admin only.
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
        };
        let updated =
            organizations::update(*db, &auth.actor(), auth.0.organization_id, changes).await?;
        Ok(OrganizationResponse::Ok(Json(updated.into())))
    }
}
