use sea_orm::entity::prelude::*;

/// The stored answer to a write sent with an `Idempotency-Key` header.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    /// The client's key, unique within the organization.
    pub key: String,
    /// SHA-256 of the operation and the request body, hex.
    pub fingerprint: String,
    /// The HTTP status of the original response.
    pub status: i32,
    /// The JSON body of the original response.
    pub response_body: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
