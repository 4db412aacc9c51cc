use sea_orm::entity::prelude::*;

/// A projection step being applied in parts: the encounters after the
/// organization's mark up to `upto` are in the rollup rows of the parts
/// listed in `applied_parts` (month and touchpoint, 12 bytes each) and in
/// no other. The step's last part moves the mark to `upto` and deletes
/// this row, in one transaction.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "rollup_steps")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub organization_id: i64,
    pub upto: i64,
    pub applied_parts: Vec<u8>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
