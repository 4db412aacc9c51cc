use sea_orm::entity::prelude::*;

/// Where an organization's events are delivered, signed with `secret`
/// (and `previous_secret` until `previous_secret_expires_at`, during a
/// rotation). Events go out in order: `cursor_event_id` is the last one
/// handled, and `attempts`/`next_attempt_at` the retry state of the next.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub url: String,
    pub description: Option<String>,
    /// A JSON array of event types.
    pub event_types: String,
    pub enabled: bool,
    pub include_personal_data: bool,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub cursor_event_id: i64,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub consecutive_failures: i32,
    /// Why the service disabled it (410, or too many failures).
    pub disabled_reason: Option<String>,
    pub claimed_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
