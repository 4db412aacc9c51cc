use sea_orm::entity::prelude::*;

use crate::enums::{Channel, Kind, Stage};

/// A point where candidates meet the employer. Archived rather than deleted,
/// so past encounters keep their touchpoint.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "touchpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    pub description: Option<String>,
    pub archived_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
    #[sea_orm(has_many = "super::encounter::Entity")]
    Encounter,
}

impl Related<super::encounter::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Encounter.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
