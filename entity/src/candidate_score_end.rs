use sea_orm::entity::prelude::*;

/// A candidate's first and latest scored encounter (in order of
/// `occurred_at`, then id), kept by the projector with the other rollups:
/// for a candidate whose scores all fall inside a report's window, they
/// are the window's first and latest. Days count from 1970-01-01 (UTC).
/// Only candidates with a score have a row.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "candidate_score_ends")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub candidate_id: i64,
    pub organization_id: i64,
    /// How many scored encounters the candidate has.
    pub scores: i64,
    pub first_day: i32,
    pub first_score: i32,
    pub latest_day: i32,
    pub latest_score: i32,
    pub latest_touchpoint_id: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
