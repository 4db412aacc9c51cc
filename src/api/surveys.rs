//! Survey invitations (`/api/v1/survey-invitations`) and the response-rate
//! report (`/api/v1/reports/survey-responses`). The page candidates answer
//! on is `survey_page`.

use chrono::{DateTime, NaiveDate, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Enum, Object, OpenApi,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    encounter_imports::{candidate_ref, refused},
    error::{ApiError, ItemError},
    flat_json::FlatObject,
    nullable::Nullable,
    page::{page_request, page_type},
    payload::{JsonBody, JsonItems},
    public_url::PublicUrl,
    security::ApiKeyAuth,
    vocabulary::{SurveyLocale, SurveyMode},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    analytics::reports::Window,
    surveys::{
        invitations::{self, InvitationFilter, InvitationInput, NewInvitation, Status, BATCH_MAX},
        mail::Mailer,
        responses::{self, ResponseGrouping},
    },
    DomainError,
};

/// Where an invitation stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum InvitationStatus {
    /// Created; not e-mailed by this service (or not yet).
    Created,
    /// E-mailed by this service.
    Sent,
    /// A browser showed the survey page (recorded by the page's script,
    /// so mail scanners that fetch links do not count).
    Opened,
    /// Answered: the link takes no more answers.
    Answered,
    /// Past `expires_at` without an answer.
    Expired,
    /// Revoked, by a user or by the candidate's erasure.
    Revoked,
}

impl From<Status> for InvitationStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Created => Self::Created,
            Status::Sent => Self::Sent,
            Status::Opened => Self::Opened,
            Status::Answered => Self::Answered,
            Status::Expired => Self::Expired,
            Status::Revoked => Self::Revoked,
        }
    }
}

impl From<InvitationStatus> for Status {
    fn from(status: InvitationStatus) -> Self {
        match status {
            InvitationStatus::Created => Self::Created,
            InvitationStatus::Sent => Self::Sent,
            InvitationStatus::Opened => Self::Opened,
            InvitationStatus::Answered => Self::Answered,
            InvitationStatus::Expired => Self::Expired,
            InvitationStatus::Revoked => Self::Revoked,
        }
    }
}

/// A survey invitation: one link, for one candidate, about one touchpoint.
#[derive(Object)]
pub struct SurveyInvitation {
    /// The invitation's id.
    pub id: i64,
    /// The candidate invited.
    pub candidate_id: i64,
    /// The touchpoint the survey asks about.
    pub touchpoint_id: i64,
    pub locale: SurveyLocale,
    pub mode: SurveyMode,
    pub status: InvitationStatus,
    /// When the invitation was created.
    pub created_at: DateTime<Utc>,
    /// The link takes no answer from then on.
    pub expires_at: DateTime<Utc>,
    /// When this service e-mailed it.
    pub sent_at: Nullable<DateTime<Utc>>,
    /// When a browser first showed the page; for an anonymous invitation
    /// only the day (midnight UTC).
    pub opened_at: Nullable<DateTime<Utc>>,
    /// When it was answered; for an anonymous invitation only the day
    /// (midnight UTC).
    pub answered_at: Nullable<DateTime<Utc>>,
    /// When it was revoked, by a user or by the candidate's erasure.
    pub revoked_at: Nullable<DateTime<Utc>>,
    /// The encounter a confidential answer recorded; always `null` for an
    /// anonymous invitation, whose answer keeps no link to it.
    pub encounter_id: Nullable<i64>,
    /// Whether an e-mail is queued for it.
    pub email_pending: bool,
    /// E-mail attempts made.
    pub email_attempts: i32,
    /// The last failed attempt's error, as the mail server gave it (up to
    /// 300 characters); `null` once one succeeded.
    #[oai(validator(max_length = 300))]
    pub email_last_error: Nullable<String>,
}

impl SurveyInvitation {
    pub(crate) fn new(model: entity::survey_invitation::Model, email_pending: bool) -> Self {
        let status = Status::of(&model, crate::domain::now()).into();
        SurveyInvitation {
            id: model.id,
            candidate_id: model.candidate_id,
            touchpoint_id: model.touchpoint_id,
            locale: model.locale.into(),
            mode: model.mode.into(),
            status,
            created_at: model.created_at,
            expires_at: model.expires_at,
            sent_at: model.sent_at.into(),
            opened_at: model.opened_at.into(),
            answered_at: model.answered_at.into(),
            revoked_at: model.revoked_at.into(),
            encounter_id: model.encounter_id.into(),
            email_pending,
            email_attempts: model.email_attempts,
            email_last_error: model.email_last_error.into(),
        }
    }
}

/// An invitation to create. Name the candidate by `candidate_id` or by
/// `candidate_external_ref`; the candidate must exist.
#[derive(Object, Deserialize, Debug, Clone)]
#[oai(deny_unknown_fields, example, skip_serializing_if_is_none)]
#[serde(deny_unknown_fields)]
pub struct CreateSurveyInvitation {
    /// The candidate's id; or give `candidate_external_ref`.
    #[serde(default)]
    pub candidate_id: Option<i64>,
    /// The candidate's reference in your applicant-tracking system; or
    /// give `candidate_id`.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(default)]
    pub candidate_external_ref: Option<String>,
    /// The touchpoint the survey asks about (an interview, an offer call).
    pub touchpoint_id: i64,
    /// Default: the organization's `survey_locale`.
    #[serde(default)]
    pub locale: Option<SurveyLocale>,
    /// Default `confidential`.
    #[serde(default)]
    pub mode: Option<SurveyMode>,
    /// Days the link stays open, 1 to 365 (default 30).
    #[oai(validator(minimum(value = "1"), maximum(value = "365")))]
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    /// E-mail the link to the candidate's address, in the invitation's
    /// language, with the eleven scores as links (default `false`). Needs
    /// the candidate's `email` and the service's SMTP configuration
    /// (`SMTP_URL`); 422 otherwise.
    #[serde(default)]
    pub send_email: Option<bool>,
}

impl FlatObject for CreateSurveyInvitation {}

impl Example for CreateSurveyInvitation {
    fn example() -> Self {
        CreateSurveyInvitation {
            candidate_id: None,
            candidate_external_ref: Some("ATS-1042".to_owned()),
            touchpoint_id: 3,
            locale: Some(SurveyLocale::Vi),
            mode: Some(SurveyMode::Confidential),
            expires_in_days: Some(14),
            send_email: Some(true),
        }
    }
}

impl CreateSurveyInvitation {
    fn into_input(self) -> Result<InvitationInput, ApiError> {
        let candidate = candidate_ref(self.candidate_id, self.candidate_external_ref)?;
        Ok(InvitationInput {
            candidate,
            touchpoint_id: self.touchpoint_id,
            locale: self.locale.map(Into::into),
            mode: self
                .mode
                .map_or(entity::enums::SurveyMode::Confidential, Into::into),
            expires_in_days: self.expires_in_days,
            send_email: self.send_email.unwrap_or(false),
        })
    }
}

/// An invitation just created, with its link. Keep the link now: only a
/// hash of its token is stored, so it cannot be shown again.
#[derive(Object)]
pub struct CreatedSurveyInvitation {
    pub invitation: SurveyInvitation,
    /// The survey's address: send it to the candidate (or let this service
    /// e-mail it with `send_email`). Append `?score=N` (0 to 10) to open
    /// the page with that answer chosen: a link per score, as in the
    /// service's own e-mail. Opening never records an answer.
    #[oai(validator(max_length = 2100))]
    pub survey_url: String,
}

page_type! {
    /// One page of survey invitations.
    SurveyInvitationPage of SurveyInvitation
}

/// What a batch of invitations created.
#[derive(Object)]
pub struct SurveyInvitationBatch {
    /// The invitations, in the order of the items.
    #[oai(validator(max_items = 1000))]
    pub items: Vec<CreatedSurveyInvitation>,
}

#[derive(ApiResponse)]
pub enum InvitationCreated {
    /// The invitation was created; the answer holds its link, shown once.
    #[oai(status = 201)]
    Created(Json<CreatedSurveyInvitation>),
}

#[derive(ApiResponse)]
pub enum InvitationBatchCreated {
    /// Every invitation of the batch was created.
    #[oai(status = 201)]
    Created(Json<SurveyInvitationBatch>),
}

#[derive(ApiResponse)]
pub enum InvitationResponse {
    /// The invitation.
    #[oai(status = 200)]
    Ok(Json<SurveyInvitation>),
}

#[derive(ApiResponse)]
pub enum InvitationList {
    /// One page of invitations, newest first.
    #[oai(status = 200)]
    Ok(Json<SurveyInvitationPage>),
}

/// What the response-rate report is split by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ResponsesGroupBy {
    /// One group per touchpoint with invitations in the window, by id.
    Touchpoint,
    /// One group per journey stage of the touchpoint.
    Stage,
    /// One group per touchpoint kind.
    Kind,
}

/// One group's survey responses.
#[derive(Object)]
pub struct SurveyResponseGroup {
    /// The touchpoint id, stage or kind.
    #[oai(validator(max_length = 32))]
    pub group: String,
    /// Invitations created in the window.
    pub invited: i64,
    /// Whether fewer invitations than the organization's `min_group_size`
    /// back the group: then only `invited` is shown (in a small group, who
    /// answered could be told). Always `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Of them, e-mailed by this service; `null` when suppressed.
    pub sent: Nullable<i64>,
    /// Opened in a browser; `null` when suppressed.
    pub opened: Nullable<i64>,
    /// Answered; `null` when suppressed.
    pub answered: Nullable<i64>,
    /// `answered / invited`, 0 to 1; `null` when suppressed or nothing was
    /// invited.
    pub response_rate: Nullable<f64>,
    /// The median hours from invitation to answer, 2 decimals, over the
    /// confidential answers (anonymous ones keep only the day); `null`
    /// without one, or when suppressed.
    pub median_hours_to_answer: Nullable<f64>,
}

/// Response rates of the invitations created in a window.
#[derive(Object)]
pub struct SurveyResponsesReport {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    pub group_by: ResponsesGroupBy,
    /// Stages and kinds are all listed, in the vocabulary's order;
    /// touchpoints are those with invitations in the window.
    #[oai(validator(max_items = 20000))]
    pub groups: Vec<SurveyResponseGroup>,
}

#[derive(ApiResponse)]
pub enum SurveyResponsesResponse {
    /// The report.
    #[oai(status = 200)]
    Ok(Json<SurveyResponsesReport>),
}

fn created(new: NewInvitation, url: &PublicUrl, email_pending: bool) -> CreatedSurveyInvitation {
    CreatedSurveyInvitation {
        survey_url: url.survey_url(&new.token),
        invitation: SurveyInvitation::new(new.invitation, email_pending),
    }
}

#[derive(Default)]
pub struct SurveysApi;

#[OpenApi(prefix_path = "/api/v1")]
impl SurveysApi {
    /// Invite a candidate to a survey
    ///
    /// Creates a survey link for one candidate about one touchpoint: the
    /// 0-10 recommend question and an optional comment, on a page this
    /// service serves (`/s/{token}`), in Vietnamese or English. The answer
    /// holds the link once. A confidential answer becomes the candidate's
    /// encounter (source `candidate_survey`, the touchpoint, the answer's
    /// time and score, the comment as its note); an anonymous one is kept
    /// apart from the candidate (see `mode`). Refused with 409
    /// `survey_cooldown` when the candidate was invited (and not revoked)
    /// within the organization's `survey_cooldown_days`; the message names
    /// the earlier invitation. Admins and recruiters.
    #[oai(
        path = "/survey-invitations",
        method = "post",
        operation_id = "create_survey_invitation",
        tag = "ApiTags::Surveys"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        url: Data<&PublicUrl>,
        mailer: Data<&Option<Mailer>>,
        /// The invitation to create.
        body: JsonBody<CreateSurveyInvitation>,
    ) -> Result<InvitationCreated, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let input = body.0.into_input()?;
        let send = input.send_email;
        let new = invitations::create(
            *db,
            &auth.key_actor(),
            auth.0.organization_id,
            input,
            mailer.is_some(),
        )
        .await?;
        if let (true, Some(mailer)) = (send, mailer.0) {
            mailer.wake();
        }
        Ok(InvitationCreated::Created(Json(created(new, &url, send))))
    }

    /// Invite candidates in a batch
    ///
    /// Creates 1 to 1,000 invitations in one transaction: all of them, or
    /// none. A refused batch answers 422 `invalid_items` with the error of
    /// each refused item, by index; the cool-down counts earlier items of
    /// the same batch. Admins and recruiters.
    #[oai(
        path = "/survey-invitations/batch",
        method = "post",
        operation_id = "create_survey_invitation_batch",
        tag = "ApiTags::Surveys"
    )]
    async fn batch(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        url: Data<&PublicUrl>,
        mailer: Data<&Option<Mailer>>,
        /// A JSON array of 1 to 1,000 invitations.
        body: JsonItems<CreateSurveyInvitation, BATCH_MAX>,
    ) -> Result<InvitationBatchCreated, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let mut errors = Vec::new();
        let mut inputs = Vec::new();
        let mut numbers = Vec::new();
        for (index, item) in body.0.into_iter().enumerate() {
            match item.and_then(|item| item.into_input().map_err(ApiError::into_detail)) {
                Ok(input) => {
                    numbers.push(index as u64);
                    inputs.push(input);
                }
                Err(error) => errors.push(ItemError {
                    index: index as u64,
                    error,
                }),
            }
        }
        let sends: Vec<bool> = inputs.iter().map(|input| input.send_email).collect();
        let result = if errors.is_empty() {
            invitations::create_all(
                *db,
                &auth.key_actor(),
                auth.0.organization_id,
                inputs,
                mailer.is_some(),
            )
            .await
        } else {
            // Some items did not parse: the others are checked (and rolled
            // back), so one answer names every refused item.
            invitations::check_all(
                *db,
                &auth.key_actor(),
                auth.0.organization_id,
                inputs,
                mailer.is_some(),
            )
            .await
            .map(|()| Vec::new())
        };
        match result {
            Ok(created_all) if errors.is_empty() => {
                if let (true, Some(mailer)) = (sends.contains(&true), mailer.0) {
                    mailer.wake();
                }
                let items = created_all
                    .into_iter()
                    .zip(sends)
                    .map(|(new, send)| created(new, &url, send))
                    .collect();
                Ok(InvitationBatchCreated::Created(Json(
                    SurveyInvitationBatch { items },
                )))
            }
            Ok(_) => Err(refused(errors)),
            Err(DomainError::InvalidItems(items)) => {
                for item in items {
                    errors.push(ItemError {
                        index: numbers[item.index],
                        error: ApiError::from(item.error).into_detail(),
                    });
                }
                errors.sort_by_key(|item| item.index);
                Err(refused(errors))
            }
            Err(other) => Err(other.into()),
        }
    }

    /// List survey invitations
    ///
    /// The organization's invitations, newest first, without their links.
    /// Filter by `status`, `candidate_id` and `touchpoint_id`. Every role.
    #[oai(
        path = "/survey-invitations",
        method = "get",
        operation_id = "list_survey_invitations",
        tag = "ApiTags::Surveys"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only invitations in this status.
        status: Query<Option<InvitationStatus>>,
        /// Only this candidate's invitations.
        candidate_id: Query<Option<i64>>,
        /// Only invitations about this touchpoint.
        touchpoint_id: Query<Option<i64>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<InvitationList, ApiError> {
        auth.0.require(Capability::Read)?;
        let filter = InvitationFilter {
            status: status.0.map(Into::into),
            candidate_id: candidate_id.0,
            touchpoint_id: touchpoint_id.0,
        };
        let page = invitations::list(
            *db,
            auth.0.organization_id,
            &filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        let pending = invitations::emails_pending(*db, page.items.iter().map(|i| i.id)).await?;
        Ok(InvitationList::Ok(Json(SurveyInvitationPage {
            next_cursor: page.next_cursor.into(),
            items: page
                .items
                .into_iter()
                .map(|model| {
                    let id = model.id;
                    SurveyInvitation::new(model, pending.contains(&id))
                })
                .collect(),
        })))
    }

    /// Get a survey invitation
    ///
    /// One invitation, without its link. Every role.
    #[oai(
        path = "/survey-invitations/:id",
        method = "get",
        operation_id = "get_survey_invitation",
        tag = "ApiTags::Surveys"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Survey invitation id.
        id: Path<i64>,
    ) -> Result<InvitationResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let invitation = invitations::get(*db, auth.0.organization_id, id.0).await?;
        let pending = invitations::email_pending(*db, invitation.id).await?;
        Ok(InvitationResponse::Ok(Json(SurveyInvitation::new(
            invitation, pending,
        ))))
    }

    /// Revoke a survey invitation
    ///
    /// Its link stops working (the page answers 410) and a queued e-mail is
    /// not sent. Revoking a revoked or expired invitation changes nothing;
    /// an answered one cannot be revoked (409 `invitation_closed`). A
    /// revoked invitation does not count for the cool-down. Admins and
    /// recruiters.
    #[oai(
        path = "/survey-invitations/:id/revoke",
        method = "post",
        operation_id = "revoke_survey_invitation",
        tag = "ApiTags::Surveys"
    )]
    async fn revoke(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Survey invitation id.
        id: Path<i64>,
    ) -> Result<InvitationResponse, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let revoked = invitations::revoke(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        Ok(InvitationResponse::Ok(Json(SurveyInvitation::new(
            revoked, false,
        ))))
    }

    /// Survey response rates
    ///
    /// Of the invitations created in the window, per touchpoint, stage or
    /// kind: how many were invited, e-mailed, opened and answered, the
    /// response rate and the median time to answer. Groups with fewer
    /// invitations than the organization's `min_group_size` show only
    /// `invited`. Every role.
    #[oai(
        path = "/reports/survey-responses",
        method = "get",
        operation_id = "get_survey_responses",
        tag = "ApiTags::Reports"
    )]
    async fn responses(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
        /// Split by (default `touchpoint`).
        group_by: Query<Option<ResponsesGroupBy>>,
    ) -> Result<SurveyResponsesResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let group_by = group_by.0.unwrap_or(ResponsesGroupBy::Touchpoint);
        let groups = responses::survey_responses(
            *db,
            auth.0.organization_id,
            &window,
            match group_by {
                ResponsesGroupBy::Touchpoint => ResponseGrouping::Touchpoint,
                ResponsesGroupBy::Stage => ResponseGrouping::Stage,
                ResponsesGroupBy::Kind => ResponseGrouping::Kind,
            },
        )
        .await?;
        Ok(SurveyResponsesResponse::Ok(Json(SurveyResponsesReport {
            from: window.from,
            to: window.to,
            group_by,
            groups: groups
                .into_iter()
                .map(|g| SurveyResponseGroup {
                    group: g.group,
                    invited: g.invited,
                    suppressed: g.suppressed,
                    sent: g.sent.into(),
                    opened: g.opened.into(),
                    answered: g.answered.into(),
                    response_rate: g.response_rate.into(),
                    median_hours_to_answer: g.median_hours_to_answer.into(),
                })
                .collect(),
        })))
    }
}

/// The comments of anonymous answers about one touchpoint.
#[derive(Object)]
pub struct AnonymousCommentGroup {
    /// The touchpoint.
    pub touchpoint_id: i64,
    /// Anonymous answers about it in the window, with or without comment.
    pub answers: i64,
    /// Whether fewer answers than the organization's `min_group_size` back
    /// the group: then `comments` is empty. Always `false` while
    /// `min_group_size` is 0.
    pub suppressed: bool,
    /// The comments, in alphabetical order (never in the order they came),
    /// at most 1,000.
    #[oai(validator(max_items = 1000))]
    pub comments: Vec<CommentText>,
}

/// One anonymous comment, as the candidate wrote it.
#[derive(Object)]
pub struct CommentText {
    /// Up to 1,000 characters.
    #[oai(validator(max_length = 1000))]
    pub text: String,
}

/// The comments of anonymous survey answers in a window.
#[derive(Object)]
pub struct AnonymousCommentsReport {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    /// One group per touchpoint with anonymous answers in the window, by id.
    #[oai(validator(max_items = 20000))]
    pub groups: Vec<AnonymousCommentGroup>,
}

#[derive(ApiResponse)]
pub enum AnonymousCommentsResponse {
    /// The comments.
    #[oai(status = 200)]
    Ok(Json<AnonymousCommentsReport>),
}

#[derive(Default)]
pub struct AnonymousCommentsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Reports")]
impl AnonymousCommentsApi {
    /// Anonymous survey comments
    ///
    /// What candidates wrote in anonymous answers (confidential answers'
    /// comments are their encounters' notes), per touchpoint, for the days
    /// of the window. No day, time or score is shown beside a comment, and
    /// the comments are in alphabetical order, so none can be matched to
    /// an invitation; a touchpoint with fewer anonymous answers than the
    /// organization's `min_group_size` shows its count and no comment.
    /// Every role.
    #[oai(
        path = "/reports/anonymous-comments",
        method = "get",
        operation_id = "get_anonymous_comments"
    )]
    async fn comments(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
        /// Only this touchpoint's comments.
        touchpoint_id: Query<Option<i64>>,
    ) -> Result<AnonymousCommentsResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let groups =
            responses::anonymous_comments(*db, auth.0.organization_id, &window, touchpoint_id.0)
                .await?;
        Ok(AnonymousCommentsResponse::Ok(Json(
            AnonymousCommentsReport {
                from: window.from,
                to: window.to,
                groups: groups
                    .into_iter()
                    .map(|g| AnonymousCommentGroup {
                        touchpoint_id: g.touchpoint_id,
                        answers: g.answers,
                        suppressed: g.suppressed,
                        comments: g
                            .comments
                            .into_iter()
                            .map(|text| CommentText { text })
                            .collect(),
                    })
                    .collect(),
            },
        )))
    }
}
