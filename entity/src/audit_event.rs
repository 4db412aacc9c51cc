use sea_orm::entity::prelude::*;

use crate::enums::{AuditAction, AuditResource};

/// One change to an organization's data: who made it, to what, when, and
/// which fields it changed. Field names only, never their values, so the
/// trail holds no personal data.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub occurred_at: DateTimeUtc,
    /// The API key that made the change; `None` for the service itself
    /// (the command line, a retention policy).
    pub actor_key_id: Option<i64>,
    /// The key's name at the time, or what the service was doing.
    pub actor_name: String,
    pub resource_type: AuditResource,
    pub resource_id: i64,
    /// On an event about a run of resources created together (a batch),
    /// the last of their ids: the run is every id from `resource_id` to
    /// this one. `None` on an event about one resource.
    pub last_resource_id: Option<i64>,
    pub action: AuditAction,
    /// A JSON array of the names of the fields changed (or set, on create).
    pub changed_fields: String,
    /// The candidate the event concerns: set on candidate and encounter
    /// events, for the candidate's subject-access export; `None` on a run
    /// about several candidates.
    pub subject_candidate_id: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
