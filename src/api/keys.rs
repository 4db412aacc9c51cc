use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Object, OpenApi,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    nullable::Nullable,
    page::{page_request, page_type},
    payload::JsonBody,
    security::ApiKeyAuth,
    time::rfc3339_nullable,
    vocabulary::Role,
    ApiTags,
};
use std::sync::Arc;

use crate::domain::{
    access::auth::Capability,
    access::{key_cache::KeyCache, keys},
};

/// An API key. The token itself is shown only once, when the key is created.
#[derive(Object)]
pub struct ApiKey {
    /// The key's id.
    pub id: i64,
    /// What the key is for.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub role: Role,
    /// The token's first characters, to tell keys apart.
    #[oai(validator(max_length = 12))]
    pub token_prefix: String,
    /// Last successful use, to the minute.
    pub last_used_at: Nullable<DateTime<Utc>>,
    /// Set once revoked; a revoked key is refused with 401.
    pub revoked_at: Nullable<DateTime<Utc>>,
    /// When the key stops being accepted (401 from then on); null: valid
    /// until revoked.
    pub expires_at: Nullable<DateTime<Utc>>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key was last changed (created, revoked).
    pub updated_at: DateTime<Utc>,
}

impl From<entity::api_key::Model> for ApiKey {
    fn from(model: entity::api_key::Model) -> Self {
        ApiKey {
            id: model.id,
            name: model.name,
            role: model.role.into(),
            token_prefix: model.token_prefix,
            last_used_at: model.last_used_at.into(),
            revoked_at: model.revoked_at.into(),
            expires_at: model.expires_at.into(),
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A new API key.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for, e.g. "Monthly BI export"; 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    pub role: Role,
    /// When the key stops being accepted (RFC 3339, in the future); omit it
    /// (or send null) for a key that is valid until revoked. To rotate a
    /// key, create its successor, switch the client over, then revoke the
    /// old one.
    #[serde(default, deserialize_with = "rfc3339_nullable")]
    #[oai(nullable)]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Example for CreateApiKey {
    fn example() -> Self {
        CreateApiKey {
            name: "Monthly BI export".to_owned(),
            role: Role::Reporter,
            expires_at: Some(
                DateTime::parse_from_rfc3339("2027-06-30T00:00:00Z")
                    .expect("a valid time")
                    .with_timezone(&Utc),
            ),
        }
    }
}

/// A key just created, with its token. Store the token now: it cannot be
/// read again.
#[derive(Object)]
pub struct CreatedApiKey {
    pub key: ApiKey,
    /// The bearer token: `Authorization: Bearer <token>`.
    #[oai(validator(max_length = 47))]
    pub token: String,
}

page_type! {
    /// One page of API keys.
    ApiKeyPage of ApiKey
}

#[derive(ApiResponse)]
pub enum ApiKeyCreated {
    /// The key was created; the response holds its token, shown only once.
    #[oai(status = 201)]
    Created(Json<CreatedApiKey>),
}

#[derive(ApiResponse)]
pub enum ApiKeyResponse {
    /// The key, now revoked.
    #[oai(status = 200)]
    Ok(Json<ApiKey>),
}

#[derive(ApiResponse)]
pub enum ApiKeyList {
    /// One page of keys, in creation order, revoked ones included.
    #[oai(status = 200)]
    Ok(Json<ApiKeyPage>),
}

#[derive(Default)]
pub struct KeysApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Keys")]
impl KeysApi {
    /// List API keys
    ///
    /// The organization's keys, without their tokens. Admin only.
    #[oai(path = "/keys", method = "get", operation_id = "list_api_keys")]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<ApiKeyList, ApiError> {
        auth.0.require(Capability::ManageKeys)?;
        let page = keys::list(*db, auth.0.organization_id, page_request(&cursor, &limit)?).await?;
        Ok(ApiKeyList::Ok(Json(page.into())))
    }

    /// Create an API key
    ///
    /// Returns the token once; only its hash is stored. Admin only.
    #[oai(path = "/keys", method = "post", operation_id = "create_api_key")]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The key to create.
        body: JsonBody<CreateApiKey>,
    ) -> Result<ApiKeyCreated, ApiError> {
        auth.0.require(Capability::ManageKeys)?;
        let body = body.0;
        let created = keys::create(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            body.role.into(),
            &body.name,
            body.expires_at,
        )
        .await?;
        Ok(ApiKeyCreated::Created(Json(CreatedApiKey {
            key: created.key.into(),
            token: created.token,
        })))
    }

    /// Revoke an API key
    ///
    /// The key is refused from the next request on. Revoking a revoked key
    /// changes nothing. A key cannot revoke itself, and the organization's
    /// last active admin key cannot be revoked (409 `key_still_needed`):
    /// create its successor first. Admin only.
    #[oai(path = "/keys/:id", method = "delete", operation_id = "revoke_api_key")]
    async fn revoke(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        cache: Data<&Arc<KeyCache>>,
        /// API key id.
        id: Path<i64>,
    ) -> Result<ApiKeyResponse, ApiError> {
        auth.0.require(Capability::ManageKeys)?;
        let revoked = keys::revoke(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        // Refused by this instance from now on; by the others within
        // `key_cache::REVALIDATE_EVERY`.
        cache.forget(revoked.id);
        Ok(ApiKeyResponse::Ok(Json(revoked.into())))
    }
}
