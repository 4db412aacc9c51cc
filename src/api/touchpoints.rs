use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{param::Path, param::Query, payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    nullable::Nullable,
    page::{page_request, page_type},
    patch::{change, nullable_change, required},
    payload::JsonBody,
    security::ApiKeyAuth,
    vocabulary::{Channel, Kind, Stage},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    catalog::{self, NewTouchpoint, TouchpointChanges, TouchpointFilter},
};

/// A point where candidates meet the employer.
#[derive(Object)]
pub struct Touchpoint {
    /// The touchpoint's id.
    pub id: i64,
    /// Unique within the organization.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    /// What the touchpoint is; `null` when not given.
    #[oai(validator(max_length = 2000))]
    pub description: Nullable<String>,
    /// Set once archived; an archived touchpoint takes no new encounters.
    pub archived_at: Nullable<DateTime<Utc>>,
    /// When the touchpoint was created.
    pub created_at: DateTime<Utc>,
    /// When the touchpoint was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<entity::touchpoint::Model> for Touchpoint {
    fn from(model: entity::touchpoint::Model) -> Self {
        Touchpoint {
            id: model.id,
            name: model.name,
            kind: model.kind.into(),
            channel: model.channel.into(),
            stage: model.stage.into(),
            description: model.description.into(),
            archived_at: model.archived_at.into(),
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A new touchpoint of the catalog.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateTouchpoint {
    /// Unique within the organization; 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    /// Up to 2000 characters.
    #[oai(validator(max_length = 2000))]
    #[serde(default)]
    #[oai(nullable)]
    pub description: Option<String>,
}

impl Example for CreateTouchpoint {
    fn example() -> Self {
        CreateTouchpoint {
            name: "Interviewer no-show".to_owned(),
            kind: Kind::Unexpected,
            channel: Channel::Interview,
            stage: Stage::Interview,
            description: Some("The interviewer did not join the call.".to_owned()),
        }
    }
}

/// Changes to a touchpoint; absent fields stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateTouchpoint {
    /// A new name, unique within the organization; 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub kind: Option<Kind>,
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub channel: Option<Channel>,
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub stage: Option<Stage>,
    /// `null` clears the description.
    #[oai(validator(max_length = 2000))]
    #[serde(default)]
    #[oai(nullable)]
    pub description: MaybeUndefined<String>,
}

/// A partial change: the fields it leaves as they are are absent (they are
/// `skip_serializing_if_is_none`), `null` clears a field.
impl Example for UpdateTouchpoint {
    fn example() -> Self {
        UpdateTouchpoint {
            name: None,
            kind: None,
            channel: None,
            stage: Some(Stage::Consideration),
            description: MaybeUndefined::Null,
        }
    }
}

page_type! {
    /// One page of touchpoints.
    TouchpointPage of Touchpoint
}

#[derive(ApiResponse)]
pub enum TouchpointResponse {
    /// The touchpoint.
    #[oai(status = 200)]
    Ok(Json<Touchpoint>),
}

#[derive(ApiResponse)]
pub enum TouchpointCreated {
    /// The touchpoint was created.
    #[oai(status = 201)]
    Created(Json<Touchpoint>),
}

#[derive(ApiResponse)]
pub enum TouchpointList {
    /// One page of touchpoints, in creation order.
    #[oai(status = 200)]
    Ok(Json<TouchpointPage>),
}

#[derive(Default)]
pub struct TouchpointsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Touchpoints")]
impl TouchpointsApi {
    /// List touchpoints
    ///
    /// The organization's touchpoint catalog, filtered by kind, channel and
    /// stage. Archived touchpoints are left out unless `include_archived`.
    #[oai(
        path = "/touchpoints",
        method = "get",
        operation_id = "list_touchpoints"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only touchpoints of this kind.
        kind: Query<Option<Kind>>,
        /// Only touchpoints on this channel.
        channel: Query<Option<Channel>>,
        /// Only touchpoints at this stage.
        stage: Query<Option<Stage>>,
        /// Include archived touchpoints (default false).
        include_archived: Query<Option<bool>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<TouchpointList, ApiError> {
        auth.0.require(Capability::Read)?;
        let filter = TouchpointFilter {
            kind: kind.0.map(Into::into),
            channel: channel.0.map(Into::into),
            stage: stage.0.map(Into::into),
            include_archived: include_archived.0.unwrap_or(false),
        };
        let page = catalog::list(
            *db,
            auth.0.organization_id,
            filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(TouchpointList::Ok(Json(page.into())))
    }

    /// Create a touchpoint
    ///
    /// Adds a touchpoint to the catalog. Admin only. A name already used in
    /// the organization answers 409.
    #[oai(
        path = "/touchpoints",
        method = "post",
        operation_id = "create_touchpoint"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The touchpoint to add.
        body: JsonBody<CreateTouchpoint>,
    ) -> Result<TouchpointCreated, ApiError> {
        auth.0.require(Capability::ManageCatalog)?;
        let body = body.0;
        let new = NewTouchpoint {
            name: body.name,
            kind: body.kind.into(),
            channel: body.channel.into(),
            stage: body.stage.into(),
            description: body.description,
        };
        let created = catalog::create(*db, &auth.actor(), auth.0.organization_id, new).await?;
        Ok(TouchpointCreated::Created(Json(created.into())))
    }

    /// Get a touchpoint
    ///
    /// The touchpoint with this id, archived or not. Every role.
    #[oai(
        path = "/touchpoints/:id",
        method = "get",
        operation_id = "get_touchpoint"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Touchpoint id.
        id: Path<i64>,
    ) -> Result<TouchpointResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let touchpoint = catalog::get(*db, auth.0.organization_id, id.0).await?;
        Ok(TouchpointResponse::Ok(Json(touchpoint.into())))
    }

    /// Update a touchpoint
    ///
    /// Changes the fields present in the body. Admin only.
    #[oai(
        path = "/touchpoints/:id",
        method = "patch",
        operation_id = "update_touchpoint"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Touchpoint id.
        id: Path<i64>,
        /// The fields to change.
        body: JsonBody<UpdateTouchpoint>,
    ) -> Result<TouchpointResponse, ApiError> {
        auth.0.require(Capability::ManageCatalog)?;
        let body = body.0;
        let changes = TouchpointChanges {
            name: change(body.name),
            kind: change(body.kind),
            channel: change(body.channel),
            stage: change(body.stage),
            description: nullable_change(body.description),
        };
        let updated =
            catalog::update(*db, &auth.actor(), auth.0.organization_id, id.0, changes).await?;
        Ok(TouchpointResponse::Ok(Json(updated.into())))
    }

    /// Archive a touchpoint
    ///
    /// Touchpoints are archived, never deleted: past encounters and reports
    /// keep them, but they take no new encounters (409). Archiving an archived
    /// touchpoint changes nothing. Admin only.
    #[oai(
        path = "/touchpoints/:id",
        method = "delete",
        operation_id = "archive_touchpoint"
    )]
    async fn archive(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Touchpoint id.
        id: Path<i64>,
    ) -> Result<TouchpointResponse, ApiError> {
        auth.0.require(Capability::ManageCatalog)?;
        let archived = catalog::archive(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        Ok(TouchpointResponse::Ok(Json(archived.into())))
    }
}
