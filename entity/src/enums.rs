//! The closed vocabularies of DOMAIN.md, stored as short strings. Adding a
//! value is a code change plus an OpenAPI change, never free text.

use sea_orm::entity::prelude::*;

/// Who controls a touchpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Kind {
    #[sea_orm(string_value = "employer_created")]
    EmployerCreated,
    #[sea_orm(string_value = "true")]
    True,
    #[sea_orm(string_value = "unexpected")]
    Unexpected,
}

/// Where a touchpoint happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Channel {
    #[sea_orm(string_value = "careers_site")]
    CareersSite,
    #[sea_orm(string_value = "job_board")]
    JobBoard,
    #[sea_orm(string_value = "social_media")]
    SocialMedia,
    #[sea_orm(string_value = "review_site")]
    ReviewSite,
    #[sea_orm(string_value = "email")]
    Email,
    #[sea_orm(string_value = "phone")]
    Phone,
    #[sea_orm(string_value = "chat")]
    Chat,
    #[sea_orm(string_value = "interview")]
    Interview,
    #[sea_orm(string_value = "assessment")]
    Assessment,
    #[sea_orm(string_value = "event")]
    Event,
    #[sea_orm(string_value = "referral")]
    Referral,
    #[sea_orm(string_value = "word_of_mouth")]
    WordOfMouth,
    #[sea_orm(string_value = "press")]
    Press,
    #[sea_orm(string_value = "other")]
    Other,
}

/// The step of the candidate journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Stage {
    #[sea_orm(string_value = "awareness")]
    Awareness,
    #[sea_orm(string_value = "consideration")]
    Consideration,
    #[sea_orm(string_value = "application")]
    Application,
    #[sea_orm(string_value = "screening")]
    Screening,
    #[sea_orm(string_value = "interview")]
    Interview,
    #[sea_orm(string_value = "offer")]
    Offer,
    #[sea_orm(string_value = "onboarding")]
    Onboarding,
    #[sea_orm(string_value = "alumni")]
    Alumni,
}

/// Who recorded an encounter and measured its score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Source {
    #[sea_orm(string_value = "recruiter_observation")]
    RecruiterObservation,
    #[sea_orm(string_value = "candidate_survey")]
    CandidateSurvey,
    #[sea_orm(string_value = "review_import")]
    ReviewImport,
    #[sea_orm(string_value = "other")]
    Other,
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "recruiter")]
    Recruiter,
    #[sea_orm(string_value = "reporter")]
    Reporter,
}

/// What an audit event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum AuditResource {
    #[sea_orm(string_value = "touchpoint")]
    Touchpoint,
    #[sea_orm(string_value = "candidate")]
    Candidate,
    #[sea_orm(string_value = "encounter")]
    Encounter,
    #[sea_orm(string_value = "api_key")]
    ApiKey,
    #[sea_orm(string_value = "organization")]
    Organization,
    #[sea_orm(string_value = "survey_invitation")]
    SurveyInvitation,
    #[sea_orm(string_value = "webhook_endpoint")]
    WebhookEndpoint,
    #[sea_orm(string_value = "alert_rule")]
    AlertRule,
    #[sea_orm(string_value = "alert")]
    Alert,
    #[sea_orm(string_value = "dashboard_session")]
    DashboardSession,
}

/// The kind of change an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum AuditAction {
    #[sea_orm(string_value = "create")]
    Create,
    #[sea_orm(string_value = "update")]
    Update,
    #[sea_orm(string_value = "delete")]
    Delete,
    #[sea_orm(string_value = "archive")]
    Archive,
    #[sea_orm(string_value = "erase")]
    Erase,
    #[sea_orm(string_value = "revoke")]
    Revoke,
}

/// The language of a survey invitation: its page and its e-mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(8))")]
pub enum SurveyLocale {
    #[sea_orm(string_value = "vi")]
    Vi,
    #[sea_orm(string_value = "en")]
    En,
}

/// Whether a survey answer is the candidate's encounter (`confidential`) or
/// kept apart from them (`anonymous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum SurveyMode {
    #[sea_orm(string_value = "confidential")]
    Confidential,
    #[sea_orm(string_value = "anonymous")]
    Anonymous,
}
