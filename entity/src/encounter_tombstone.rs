use sea_orm::entity::prelude::*;

/// A deleted encounter, kept so the incremental export can tell clients to
/// delete their copy.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "encounter_tombstones")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub encounter_id: i64,
    pub candidate_id: i64,
    pub change_seq: i64,
    pub deleted_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
