use sea_orm::entity::prelude::*;

/// A candidate's scored days, kept by the projector with the other
/// rollups: for each day with a score (from 1970-01-01, UTC), the day's
/// first and latest score (in order of `occurred_at`, then id) and the
/// touchpoint of the latest, packed (`analytics::perception::ScoreDays`).
/// Only candidates with a score have a row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "candidate_score_days")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub candidate_id: i64,
    pub organization_id: i64,
    pub days: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
