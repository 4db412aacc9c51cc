use sea_orm::entity::prelude::*;

use crate::enums::Source;

/// One candidate meeting one touchpoint at one moment, with an optional
/// perception score (0-10, the candidate-NPS question).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "encounters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub candidate_id: i64,
    pub touchpoint_id: i64,
    pub occurred_at: DateTimeUtc,
    pub source: Source,
    pub score: Option<i32>,
    pub note: Option<String>,
    pub recorded_by_key_id: i64,
    /// The organization's `change_seq` of the transaction that last wrote it.
    pub change_seq: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::candidate::Entity",
        from = "Column::CandidateId",
        to = "super::candidate::Column::Id"
    )]
    Candidate,
    #[sea_orm(
        belongs_to = "super::touchpoint::Entity",
        from = "Column::TouchpointId",
        to = "super::touchpoint::Column::Id"
    )]
    Touchpoint,
    #[sea_orm(
        belongs_to = "super::api_key::Entity",
        from = "Column::RecordedByKeyId",
        to = "super::api_key::Column::Id"
    )]
    RecordedBy,
}

impl Related<super::candidate::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Candidate.def()
    }
}

impl Related<super::touchpoint::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Touchpoint.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
