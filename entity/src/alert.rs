use sea_orm::entity::prelude::*;

/// An alert a rule raised: unique per rule, group (`encounter:<id>` for a
/// detractor alert) and period (its first day, days since 1970-01-01).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub rule_id: i64,
    pub group_key: String,
    pub period_start: i32,
    pub encounter_id: Option<i64>,
    /// `open`, `acknowledged` or `resolved`.
    pub status: String,
    /// The figures behind it (JSON).
    pub details: String,
    pub opened_at: DateTimeUtc,
    pub acknowledged_at: Option<DateTimeUtc>,
    pub resolved_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
