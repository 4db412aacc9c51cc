use sea_orm::entity::prelude::*;

/// How far an organization's encounters are in its rollups: every
/// encounter whose `change_seq` is at most `projected_seq` is counted in
/// them, and none after it. The projector moves it forward in the
/// transaction that applies the encounters.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rollup_marks")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: i64,
    pub projected_seq: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
