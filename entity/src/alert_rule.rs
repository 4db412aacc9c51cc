use sea_orm::entity::prelude::*;

/// A rule the service evaluates: `detractor` (a score at or below
/// `threshold`, on the encounter's write) or `drop` (a group's cNPS over
/// the last complete `period` significantly below the `baseline_periods`
/// before it). `touchpoint_ids`, `kinds` and `stages` (JSON arrays; empty:
/// all) choose the touchpoints it watches.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    pub threshold: i32,
    pub group_by: String,
    pub touchpoint_ids: String,
    pub kinds: String,
    pub stages: String,
    pub period: String,
    pub baseline_periods: i32,
    pub min_scores: i32,
    /// Drop rules: also a two-sided CUSUM for slow drifts.
    pub cusum: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
