use sea_orm::entity::prelude::*;

use crate::enums::{SurveyLocale, SurveyMode};

/// A survey link sent to one candidate about one touchpoint. Only the
/// SHA-256 hash of its token is stored. For an anonymous invitation,
/// `answered_at` is the start of the day it was answered and `encounter_id`
/// stays `None`: nothing here points to the answer.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "survey_invitations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub organization_id: i64,
    pub candidate_id: i64,
    pub touchpoint_id: i64,
    #[sea_orm(unique)]
    pub token_hash: String,
    pub locale: SurveyLocale,
    pub mode: SurveyMode,
    pub created_by_key_id: i64,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    pub opened_at: Option<DateTimeUtc>,
    pub answered_at: Option<DateTimeUtc>,
    pub revoked_at: Option<DateTimeUtc>,
    /// The encounter a confidential answer recorded.
    pub encounter_id: Option<i64>,
    /// E-mail attempts made, and the last one's error.
    pub email_attempts: i32,
    pub email_last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::candidate::Entity",
        from = "Column::CandidateId",
        to = "super::candidate::Column::Id"
    )]
    Candidate,
    #[sea_orm(
        belongs_to = "super::touchpoint::Entity",
        from = "Column::TouchpointId",
        to = "super::touchpoint::Column::Id"
    )]
    Touchpoint,
}

impl Related<super::touchpoint::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Touchpoint.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
