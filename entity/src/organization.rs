use sea_orm::entity::prelude::*;

use crate::enums::SurveyLocale;

/// An employer: the tenant every other row belongs to.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    /// Bumped by every transaction that changes encounters: the position in
    /// the incremental export's change log.
    pub change_seq: i64,
    /// The version of the perception rollups this organization's rows were
    /// built with; below the service's version, they are rebuilt at start.
    pub rollup_version: i32,
    /// Small-group suppression: a report point or row backed by fewer
    /// scored encounters than this hides the figures that could reveal a
    /// candidate's score. 0 (the default) turns it off.
    pub min_group_size: i32,
    /// No new survey invitation for a candidate invited more recently than
    /// this many days.
    pub survey_cooldown_days: i32,
    /// The language of invitations that name none.
    pub survey_locale: SurveyLocale,
    /// Linked from every survey page's privacy notice.
    pub privacy_notice_url: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::api_key::Entity")]
    ApiKey,
}

impl ActiveModelBehavior for ActiveModel {}
