use sea_orm::entity::prelude::*;

/// An invitation waiting to be e-mailed. `token` is the link's secret, kept
/// only until the message is sent, given up or cancelled.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "survey_email_queue")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub invitation_id: i64,
    pub organization_id: i64,
    pub token: String,
    pub next_attempt_at: DateTimeUtc,
    /// While set and in the future, an instance is sending it.
    pub claimed_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
