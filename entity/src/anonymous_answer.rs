use sea_orm::entity::prelude::*;

/// The answer to an anonymous survey invitation: no candidate, no
/// invitation, no time finer than the day (days since 1970-01-01, UTC), and
/// a random id.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "anonymous_answers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i64,
    pub organization_id: i64,
    pub touchpoint_id: i64,
    pub day: i32,
    pub score: i32,
    pub comment: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
