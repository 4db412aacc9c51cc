use sea_orm::entity::prelude::*;

/// The counters of one touchpoint's encounters in one calendar month
/// (`month` = `year * 12 + month - 1`): the sum of its `perception_daily`
/// rows, maintained in the same transactions.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "perception_monthly")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub touchpoint_id: i64,
    pub month: i32,
    pub encounters: i64,
    pub scored: i64,
    pub score_sum: i64,
    /// The sum of the squares of the scores.
    pub score_sq_sum: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub attributed_sum: f64,
    /// The sum of the squares of those shifts.
    pub attributed_sq_sum: f64,
    pub attributions: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
