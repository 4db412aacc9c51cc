use sea_orm::entity::prelude::*;

/// An event for webhooks, written in the transaction of the change that
/// caused it. `payload` (JSON) holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub event_type: String,
    /// The candidate the event is about, if any: an endpoint that opted in
    /// to personal data gets theirs added when the event is sent.
    pub subject_candidate_id: Option<i64>,
    pub payload: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
