//! Answering a survey link: what its page shows, the first time a browser
//! showed it, and recording the answer.
//!
//! A confidential answer is an encounter of the candidate (source
//! `candidate_survey`), recorded by the same insert as any other, so the
//! reports, journeys, shifts, export, audit trail and erasure see it as
//! they see the rest. An anonymous answer is a row of `anonymous_answers`:
//! touchpoint, day, score and comment, nothing else; it is counted in the
//! touchpoint's rollups (cNPS, trends, impact, the perception gap) but in
//! no candidate's journey, shift or attribution, and its invitation keeps
//! only the day it was answered.

use chrono::{DateTime, Utc};
use entity::{
    anonymous_answer,
    enums::{Source, SurveyLocale, SurveyMode},
    organization, survey_invitation, touchpoint,
};
use sea_orm::{
    sea_query::{Expr, Func, Query},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryTrait, Set,
};

use crate::db::store::{Executor, WriterConnection};
use crate::domain::{
    access::secret,
    analytics::{
        perception::{date_of_day, day_of, Counters, DayKey, RollupDelta},
        rollups,
    },
    encounters::{
        ingest::{self, CandidateRef, EncounterInput, TouchpointRef},
        write::EncounterAppend,
    },
    privacy::audit::KeyActor,
    surveys::invitations::{self, Status},
    validate,
    webhooks::{
        self,
        events::{EventType, NewEvent},
    },
    DomainError, DomainResult,
};
use serde_json::json;

/// The longest comment a survey takes, in characters.
pub const COMMENT_MAX: usize = 1000;
/// No token this service issues is longer: a longer one is unknown
/// without being looked up.
const TOKEN_MAX: usize = 64;

/// What a survey page shows, and what answering needs.
#[derive(Debug, Clone)]
pub struct SurveyView {
    pub invitation_id: i64,
    pub organization_id: i64,
    pub candidate_id: i64,
    pub touchpoint_id: i64,
    pub created_by_key_id: i64,
    /// The organization's display name.
    pub employer: String,
    pub touchpoint: String,
    pub locale: SurveyLocale,
    pub mode: SurveyMode,
    pub privacy_notice_url: Option<String>,
    pub status: Status,
}

/// The answer a candidate gave.
#[derive(Debug, Clone)]
pub struct Answer {
    pub score: i32,
    pub comment: Option<String>,
}

/// Why an answer was not recorded.
#[derive(Debug)]
pub enum Refusal {
    /// No invitation has this token.
    Unknown,
    /// The invitation takes no answer: answered, revoked or expired.
    Closed(SurveyView),
    /// The answer breaks a rule (see `DomainError::Invalid`).
    Invalid(SurveyView, DomainError),
}

/// The survey behind a token, or `None` when no invitation has it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn view(db: &impl ConnectionTrait, token: &str) -> DomainResult<Option<SurveyView>> {
    if token.is_empty() || token.len() > TOKEN_MAX {
        return Ok(None);
    }
    let Some(invitation) = survey_invitation::Entity::find()
        .filter(survey_invitation::Column::TokenHash.eq(secret::hash_token(token)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let organization = organization::Entity::find_by_id(invitation.organization_id)
        .one(db)
        .await?
        .ok_or_else(|| DomainError::internal("an invitation's organization is missing"))?;
    let touchpoint = touchpoint::Entity::find_by_id(invitation.touchpoint_id)
        .one(db)
        .await?
        .ok_or_else(|| DomainError::internal("an invitation's touchpoint is missing"))?;
    let mut status = Status::of(&invitation, crate::domain::now());
    // An archived touchpoint takes no new encounters: its open links close.
    if status.is_open() && touchpoint.archived_at.is_some() {
        status = Status::Revoked;
    }
    Ok(Some(SurveyView {
        invitation_id: invitation.id,
        organization_id: invitation.organization_id,
        candidate_id: invitation.candidate_id,
        touchpoint_id: invitation.touchpoint_id,
        created_by_key_id: invitation.created_by_key_id,
        employer: organization.name,
        touchpoint: touchpoint.name,
        locale: invitation.locale,
        mode: invitation.mode,
        privacy_notice_url: organization.privacy_notice_url,
        status,
    }))
}

/// Records the first time a browser showed the page (the page's script
/// reports it, so mail scanners that fetch links count as nothing). For an
/// anonymous invitation, only the day. Closed or unknown links: nothing.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn mark_opened(db: &DatabaseConnection, token: &str) -> DomainResult<()> {
    let Some(view) = view(db, token).await? else {
        return Ok(());
    };
    if !view.status.is_open() {
        return Ok(());
    }
    let now = crate::domain::now();
    let opened = match view.mode {
        SurveyMode::Confidential => now,
        SurveyMode::Anonymous => start_of_day(now),
    };
    let update = Query::update()
        .table(survey_invitation::Entity)
        .value(survey_invitation::Column::OpenedAt, opened)
        .and_where(survey_invitation::Column::Id.eq(view.invitation_id))
        .and_where(survey_invitation::Column::OpenedAt.is_null())
        .to_owned();
    Executor::execute(db, &update).await?;
    Ok(())
}

/// Records an answer once: in one transaction, the invitation is marked
/// answered (only if still open, so two submissions cannot both win) and
/// the answer is written, with the rollups. Nothing is written when it is
/// refused.
#[tracing::instrument(level = "debug", skip_all)]
/// `view` is the token's survey as [`view`] read it; the answer's
/// transaction checks again that it is open.
pub async fn submit(
    db: &DatabaseConnection,
    token: &str,
    view: SurveyView,
    answer: Answer,
) -> DomainResult<Result<SurveyView, Refusal>> {
    if !view.status.is_open() {
        return Ok(Err(Refusal::Closed(view)));
    }
    let comment = match validate::score("score", Some(answer.score))
        .and_then(|_| validate::optional_text("comment", answer.comment, COMMENT_MAX))
    {
        Ok(comment) => comment,
        Err(err) => return Ok(Err(Refusal::Invalid(view, err))),
    };
    let connection = WriterConnection::Pool(db.clone());
    let txn = connection.begin_write().await?;
    let write = EncounterAppend::begin_in(txn, view.organization_id).await?;
    let now = write.now();
    let answered_at = match view.mode {
        SurveyMode::Confidential => now,
        SurveyMode::Anonymous => start_of_day(now),
    };
    let claim = Query::update()
        .table(survey_invitation::Entity)
        .value(survey_invitation::Column::AnsweredAt, answered_at)
        .value(
            survey_invitation::Column::OpenedAt,
            Func::coalesce([
                Expr::col(survey_invitation::Column::OpenedAt),
                Expr::val(answered_at),
            ]),
        )
        .and_where(survey_invitation::Column::Id.eq(view.invitation_id))
        .and_where(survey_invitation::Column::AnsweredAt.is_null())
        .and_where(survey_invitation::Column::RevokedAt.is_null())
        .and_where(survey_invitation::Column::ExpiresAt.gt(now))
        .to_owned();
    if write.txn().execute(&claim).await? == 0 {
        // Answered, revoked or expired meanwhile: the write rolls back.
        drop(write);
        return Ok(match self::view(db, token).await? {
            Some(now_closed) => Err(Refusal::Closed(now_closed)),
            None => Err(Refusal::Unknown),
        });
    }
    match view.mode {
        SurveyMode::Confidential => {
            let input = EncounterInput {
                candidate: CandidateRef::Id(view.candidate_id),
                touchpoint: TouchpointRef::Id(view.touchpoint_id),
                occurred_at: now,
                source: Source::CandidateSurvey,
                score: Some(answer.score),
                note: comment,
            };
            let checked = ingest::check(input, now)?;
            let resolved = ingest::resolve(write.txn(), view.organization_id, vec![checked])
                .await?
                .pop()
                .ok_or_else(|| DomainError::internal("an answer resolved to nothing"))?;
            let resolved = match resolved {
                Ok(resolved) => resolved,
                // Erased or archived since the page was shown: closed.
                Err(DomainError::Erased { .. } | DomainError::Archived { .. }) => {
                    drop(write);
                    let mut closed = view;
                    closed.status = Status::Revoked;
                    return Ok(Err(Refusal::Closed(closed)));
                }
                Err(other) => return Err(other),
            };
            // Recorded by the key that sent the invitation; the audit trail
            // names the candidate's survey as the actor.
            let actor = KeyActor {
                key_id: view.created_by_key_id,
                key_name: "candidate survey".to_owned(),
            };
            let recorded =
                ingest::insert(&write, vec![(&actor, resolved)], ingest::Requests::One).await?;
            let encounter_id = recorded
                .encounters
                .first()
                .map(|encounter| encounter.id)
                .ok_or_else(|| DomainError::internal("an answer recorded no encounter"))?;
            let link = Query::update()
                .table(survey_invitation::Entity)
                .value(survey_invitation::Column::EncounterId, encounter_id)
                .and_where(survey_invitation::Column::Id.eq(view.invitation_id))
                .to_owned();
            write.txn().execute(&link).await?;
            let answered = NewEvent {
                event_type: EventType::SurveyAnswered,
                subject_candidate_id: Some(view.candidate_id),
                data: json!({
                    "invitation_id": view.invitation_id,
                    "mode": "confidential",
                    "candidate_id": view.candidate_id,
                    "touchpoint_id": view.touchpoint_id,
                    "encounter_id": encounter_id,
                    "score": answer.score,
                }),
            };
            webhooks::events::record(write.txn(), view.organization_id, now, vec![answered])
                .await?;
        }
        SurveyMode::Anonymous => {
            let day = day_of(now);
            let insert = anonymous_answer::Entity::insert(anonymous_answer::ActiveModel {
                // Random, so the id does not tell the order answers came in.
                id: Set(rand::random::<i64>() & i64::MAX),
                organization_id: Set(view.organization_id),
                touchpoint_id: Set(view.touchpoint_id),
                day: Set(day),
                score: Set(answer.score),
                comment: Set(comment),
            })
            .into_query();
            write.txn().execute(&insert).await?;
            let mut delta = RollupDelta::default();
            delta.counters.insert(
                DayKey {
                    touchpoint_id: view.touchpoint_id,
                    day,
                    source: Source::CandidateSurvey,
                },
                Counters::of_score(answer.score),
            );
            rollups::apply(write.txn(), view.organization_id, &delta, now).await?;
            // Nothing that could link it: no invitation, candidate or score.
            let answered = NewEvent {
                event_type: EventType::SurveyAnswered,
                subject_candidate_id: None,
                data: json!({
                    "mode": "anonymous",
                    "touchpoint_id": view.touchpoint_id,
                    "invitation_id": null,
                    "candidate_id": null,
                    "encounter_id": null,
                    "score": null,
                }),
            };
            webhooks::events::record(write.txn(), view.organization_id, now, vec![answered])
                .await?;
        }
    }
    invitations::cancel_emails(write.txn(), view.organization_id, &[view.invitation_id]).await?;
    write.commit().await?;
    let mut answered = view;
    answered.status = Status::Answered;
    Ok(Ok(answered))
}

/// Midnight (UTC) of the day of `moment`.
pub fn start_of_day(moment: DateTime<Utc>) -> DateTime<Utc> {
    date_of_day(day_of(moment))
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
}
