use sea_orm::entity::prelude::*;

use crate::enums::Stage;

/// A person tracked through the journey. `display_name`, `email` and
/// `external_ref` (the applicant-tracking system's id) are personal data;
/// once `erased_at` is set, the first two are `None` and `external_ref` is a
/// placeholder that names nobody.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "candidates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub external_ref: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub stage: Stage,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the candidate's personal data was erased.
    pub erased_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::organization::Entity",
        from = "Column::OrganizationId",
        to = "super::organization::Column::Id"
    )]
    Organization,
    #[sea_orm(has_many = "super::encounter::Entity")]
    Encounter,
}

impl Related<super::encounter::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Encounter.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
