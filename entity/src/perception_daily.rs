use sea_orm::entity::prelude::*;

/// The counters of one touchpoint's encounters on one UTC day, maintained in
/// the transaction of every encounter write. `day` counts days since
/// 1970-01-01, `week` is the `day` of that ISO week's Monday and `month` is
/// `year * 12 + month - 1`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "perception_daily")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub touchpoint_id: i64,
    pub day: i32,
    pub week: i32,
    pub month: i32,
    pub encounters: i64,
    pub scored: i64,
    pub score_sum: i64,
    /// The sum of the squares of the scores.
    pub score_sq_sum: i64,
    pub promoters: i64,
    pub passives: i64,
    pub detractors: i64,
    /// The sum of the shifts attributed to these encounters.
    pub attributed_sum: f64,
    /// The sum of the squares of those shifts.
    pub attributed_sq_sum: f64,
    /// How many of these encounters have an attributed shift.
    pub attributions: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
