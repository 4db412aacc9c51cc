//! Candidate pulse surveys.
//!
//! - `organizations`: `survey_cooldown_days` (no new invitation for a
//!   candidate surveyed more recently; 14 by default, as survey tools do
//!   against fatigue), `survey_locale` (the invitations' default language)
//!   and `privacy_notice_url` (linked from every survey page).
//! - `survey_invitations`: one link sent to one candidate about one
//!   touchpoint. Only the SHA-256 hash of its token is kept. A confidential
//!   answer is an encounter (`encounter_id`); an anonymous one keeps no link
//!   back here, and its invitation's `answered_at` is only the day.
//! - `survey_email_queue`: invitations waiting to be e-mailed. It holds the
//!   token (the e-mail carries the link) only until the message is sent,
//!   given up or cancelled; a claim (`claimed_until`) keeps two instances
//!   from sending the same one.
//! - `anonymous_answers`: the scores and comments of anonymous invitations:
//!   touchpoint, day, score, comment, and nothing that points to a person
//!   or an invitation. Their id is random, so it does not give away the
//!   order the answers came in.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    SurveyCooldownDays,
    SurveyLocale,
    PrivacyNoticeUrl,
}

#[derive(DeriveIden, Clone, Copy)]
enum Candidates {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Touchpoints {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum SurveyInvitations {
    Table,
    Id,
    OrganizationId,
    CandidateId,
    TouchpointId,
    TokenHash,
    Locale,
    Mode,
    CreatedByKeyId,
    CreatedAt,
    ExpiresAt,
    SentAt,
    OpenedAt,
    AnsweredAt,
    RevokedAt,
    EncounterId,
    EmailAttempts,
    EmailLastError,
}

#[derive(DeriveIden, Clone, Copy)]
enum SurveyEmailQueue {
    Table,
    InvitationId,
    OrganizationId,
    Token,
    NextAttemptAt,
    ClaimedUntil,
}

#[derive(DeriveIden, Clone, Copy)]
enum AnonymousAnswers {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Day,
    Score,
    Comment,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for mut column in [
            integer(Organizations::SurveyCooldownDays)
                .default(14)
                .to_owned(),
            string_len(Organizations::SurveyLocale, 8)
                .default("en")
                .to_owned(),
            text_null(Organizations::PrivacyNoticeUrl),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .add_column(&mut column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(SurveyInvitations::Table)
                    .col(big_pk_auto(SurveyInvitations::Id))
                    .col(big_integer(SurveyInvitations::OrganizationId))
                    .col(big_integer(SurveyInvitations::CandidateId))
                    .col(big_integer(SurveyInvitations::TouchpointId))
                    .col(string_len(SurveyInvitations::TokenHash, 64).unique_key())
                    .col(string_len(SurveyInvitations::Locale, 8))
                    .col(string_len(SurveyInvitations::Mode, 16))
                    .col(big_integer(SurveyInvitations::CreatedByKeyId))
                    .col(timestamp_with_time_zone(SurveyInvitations::CreatedAt))
                    .col(timestamp_with_time_zone(SurveyInvitations::ExpiresAt))
                    .col(timestamp_with_time_zone_null(SurveyInvitations::SentAt))
                    .col(timestamp_with_time_zone_null(SurveyInvitations::OpenedAt))
                    .col(timestamp_with_time_zone_null(SurveyInvitations::AnsweredAt))
                    .col(timestamp_with_time_zone_null(SurveyInvitations::RevokedAt))
                    .col(big_integer_null(SurveyInvitations::EncounterId))
                    .col(integer(SurveyInvitations::EmailAttempts).default(0))
                    .col(text_null(SurveyInvitations::EmailLastError))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SurveyInvitations::Table, SurveyInvitations::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SurveyInvitations::Table, SurveyInvitations::CandidateId)
                            .to(Candidates::Table, Candidates::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SurveyInvitations::Table, SurveyInvitations::TouchpointId)
                            .to(Touchpoints::Table, Touchpoints::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SurveyInvitations::Table, SurveyInvitations::CreatedByKeyId)
                            .to(ApiKeys::Table, ApiKeys::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // The cool-down: a candidate's latest invitation.
        manager
            .create_index(
                Index::create()
                    .name("idx_survey_invitations_candidate")
                    .table(SurveyInvitations::Table)
                    .col(SurveyInvitations::OrganizationId)
                    .col(SurveyInvitations::CandidateId)
                    .col(SurveyInvitations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // Lists and the response-rate report: by creation time.
        manager
            .create_index(
                Index::create()
                    .name("idx_survey_invitations_created")
                    .table(SurveyInvitations::Table)
                    .col(SurveyInvitations::OrganizationId)
                    .col(SurveyInvitations::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SurveyEmailQueue::Table)
                    .col(big_integer(SurveyEmailQueue::InvitationId).primary_key())
                    .col(big_integer(SurveyEmailQueue::OrganizationId))
                    .col(string_len(SurveyEmailQueue::Token, 128))
                    .col(timestamp_with_time_zone(SurveyEmailQueue::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(
                        SurveyEmailQueue::ClaimedUntil,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SurveyEmailQueue::Table, SurveyEmailQueue::InvitationId)
                            .to(SurveyInvitations::Table, SurveyInvitations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_survey_email_queue_due")
                    .table(SurveyEmailQueue::Table)
                    .col(SurveyEmailQueue::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AnonymousAnswers::Table)
                    .col(big_integer(AnonymousAnswers::Id).primary_key())
                    .col(big_integer(AnonymousAnswers::OrganizationId))
                    .col(big_integer(AnonymousAnswers::TouchpointId))
                    .col(integer(AnonymousAnswers::Day))
                    .col(integer(AnonymousAnswers::Score))
                    .col(text_null(AnonymousAnswers::Comment))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AnonymousAnswers::Table, AnonymousAnswers::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AnonymousAnswers::Table, AnonymousAnswers::TouchpointId)
                            .to(Touchpoints::Table, Touchpoints::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_anonymous_answers_touchpoint_day")
                    .table(AnonymousAnswers::Table)
                    .col(AnonymousAnswers::OrganizationId)
                    .col(AnonymousAnswers::TouchpointId)
                    .col(AnonymousAnswers::Day)
                    .to_owned(),
            )
            .await
    }
}
