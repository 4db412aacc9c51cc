use sea_orm::entity::prelude::*;

/// The candidates who met one touchpoint during one day or month, as a
/// serialized roaring bitmap of candidate ids: exact distinct counts over
/// any window without scanning encounters.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "touchpoint_reach")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub touchpoint_id: i64,
    /// `day` or `month`.
    pub span: String,
    /// A day or month number, as in `perception_daily`.
    pub period: i32,
    pub candidates: Vec<u8>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
