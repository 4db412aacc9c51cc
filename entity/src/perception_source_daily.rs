use sea_orm::entity::prelude::*;

use crate::enums::Source;

/// The counters of one touchpoint's encounters of one `source` on one UTC
/// day: `perception_daily` split by who measured the score, for the
/// perception-gap report.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "perception_source_daily")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub touchpoint_id: i64,
    pub day: i32,
    pub month: i32,
    pub source: Source,
    pub encounters: i64,
    pub scored: i64,
    pub score_sum: i64,
    pub score_sq_sum: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    pub attributed_sum: f64,
    pub attributed_sq_sum: f64,
    pub attributions: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
