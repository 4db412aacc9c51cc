//! Survey invitations: a link for one candidate about one touchpoint, with
//! its language, its mode (confidential or anonymous) and its expiry. Only
//! the SHA-256 hash of the link's token is stored; the token itself is
//! shown once, in the answer that created it, and kept in the e-mail queue
//! only until its message is sent.

use chrono::{DateTime, Duration, Utc};
use entity::{
    candidate,
    enums::{AuditAction, SurveyLocale, SurveyMode},
    organization, survey_email_queue, survey_invitation, touchpoint,
};
use sea_orm::{
    sea_query::Query, ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Set,
};

use crate::db::store::Executor;
use crate::domain::{
    access::secret,
    encounters::ingest::CandidateRef,
    error::ItemError,
    pagination::{Page, PageRequest},
    privacy::audit::{self, Actor, Event, KeyActor},
    validate, DomainError, DomainResult,
};

/// The most invitations one batch request may carry.
pub const BATCH_MAX: usize = 1000;
/// How long a link stays open when the request does not say.
pub const DEFAULT_EXPIRY_DAYS: i64 = 30;
/// The longest a link may stay open.
pub const MAX_EXPIRY_DAYS: i64 = 365;

/// An invitation to create, as the client sent it.
#[derive(Debug, Clone)]
pub struct InvitationInput {
    pub candidate: CandidateRef,
    pub touchpoint_id: i64,
    /// `None`: the organization's `survey_locale`.
    pub locale: Option<SurveyLocale>,
    pub mode: SurveyMode,
    /// `None`: [`DEFAULT_EXPIRY_DAYS`].
    pub expires_in_days: Option<i64>,
    /// Queue an e-mail to the candidate's address.
    pub send_email: bool,
}

/// An invitation just created, with the token of its link (shown once).
#[derive(Debug)]
pub struct NewInvitation {
    pub invitation: survey_invitation::Model,
    pub token: String,
}

/// Where an invitation stands, derived from its times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Sent,
    Opened,
    Answered,
    Expired,
    Revoked,
}

impl Status {
    pub fn of(invitation: &survey_invitation::Model, now: DateTime<Utc>) -> Status {
        if invitation.answered_at.is_some() {
            Status::Answered
        } else if invitation.revoked_at.is_some() {
            Status::Revoked
        } else if invitation.expires_at <= now {
            Status::Expired
        } else if invitation.opened_at.is_some() {
            Status::Opened
        } else if invitation.sent_at.is_some() {
            Status::Sent
        } else {
            Status::Created
        }
    }

    /// Whether the link still takes an answer.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Created | Status::Sent | Status::Opened)
    }
}

/// Filters of the list; `None` filters nothing.
#[derive(Debug, Default)]
pub struct InvitationFilter {
    pub status: Option<Status>,
    pub candidate_id: Option<i64>,
    pub touchpoint_id: Option<i64>,
}

/// What creating invitations needs of the organization.
struct SurveySettings {
    cooldown_days: i32,
    locale: SurveyLocale,
}

/// Creates one invitation (see [`create_batch`]).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &DatabaseConnection,
    actor: &KeyActor,
    organization_id: i64,
    input: InvitationInput,
    can_email: bool,
) -> DomainResult<NewInvitation> {
    let mut created = create_all(db, actor, organization_id, vec![input], can_email)
        .await
        .map_err(|err| match err {
            DomainError::InvalidItems(mut items) if items.len() == 1 => items.remove(0).error,
            other => other,
        })?;
    created
        .pop()
        .ok_or_else(|| DomainError::internal("an invitation was asked for and none created"))
}

/// Creates invitations in one transaction, all or none: every refused item
/// is reported, by its index. Each one checks its candidate (existing, not
/// erased, with an e-mail address when one is to be sent), its touchpoint
/// (existing, not archived) and the cool-down: no candidate gets a new
/// invitation within `survey_cooldown_days` of their latest one that was
/// not revoked (earlier items of the same batch count).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create_all(
    db: &DatabaseConnection,
    actor: &KeyActor,
    organization_id: i64,
    inputs: Vec<InvitationInput>,
    can_email: bool,
) -> DomainResult<Vec<NewInvitation>> {
    write_all(db, actor, organization_id, inputs, can_email, true).await
}

/// Checks invitations as [`create_all`] would, and creates none: the
/// refusals of a batch whose other items could not even be read.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn check_all(
    db: &DatabaseConnection,
    actor: &KeyActor,
    organization_id: i64,
    inputs: Vec<InvitationInput>,
    can_email: bool,
) -> DomainResult<()> {
    write_all(db, actor, organization_id, inputs, can_email, false)
        .await
        .map(|_| ())
}

async fn write_all(
    db: &DatabaseConnection,
    actor: &KeyActor,
    organization_id: i64,
    inputs: Vec<InvitationInput>,
    can_email: bool,
    commit: bool,
) -> DomainResult<Vec<NewInvitation>> {
    if inputs.len() > BATCH_MAX {
        return Err(DomainError::invalid(
            "items",
            format!("at most {BATCH_MAX} invitations per request"),
        ));
    }
    let now = crate::domain::now();
    let mut errors = Vec::new();
    let mut checked = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.into_iter().enumerate() {
        match check(input, can_email) {
            Ok(input) => checked.push((index, input)),
            Err(error) => errors.push(ItemError { index, error }),
        }
    }
    let txn = crate::domain::begin_write(db).await?;
    let settings = settings_of(&txn, organization_id).await?;
    let mut created = Vec::with_capacity(checked.len());
    let mut events = Vec::with_capacity(checked.len());
    for (index, input) in checked {
        match create_in(&txn, organization_id, actor, &settings, input, now).await {
            Ok(new) => {
                events.push(
                    Event::survey_invitation(
                        new.invitation.id,
                        new.invitation.candidate_id,
                        AuditAction::Create,
                    )
                    .fields([
                        "candidate_id",
                        "touchpoint_id",
                        "locale",
                        "mode",
                        "expires_at",
                    ]),
                );
                created.push(new);
            }
            Err(error @ (DomainError::Unavailable(_) | DomainError::Internal(_))) => {
                return Err(error)
            }
            Err(error) => errors.push(ItemError { index, error }),
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|item| item.index);
        // Dropping the transaction rolls back the items that were written.
        return Err(DomainError::InvalidItems(errors));
    }
    if !commit {
        return Ok(Vec::new());
    }
    audit::record_all(
        &txn,
        organization_id,
        now,
        events.into_iter().map(|e| (actor, e)),
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// The rules that need no database.
fn check(input: InvitationInput, can_email: bool) -> DomainResult<InvitationInput> {
    if let Some(days) = input.expires_in_days {
        if !(1..=MAX_EXPIRY_DAYS).contains(&days) {
            return Err(DomainError::invalid(
                "expires_in_days",
                format!("must be between 1 and {MAX_EXPIRY_DAYS}"),
            ));
        }
    }
    if input.send_email && !can_email {
        return Err(DomainError::invalid(
            "send_email",
            "this service has no SMTP server configured (SMTP_URL): send the survey_url yourself",
        ));
    }
    let candidate = match input.candidate {
        CandidateRef::ExternalRef(external_ref) => CandidateRef::ExternalRef(validate::identifier(
            "candidate_external_ref",
            &external_ref,
            validate::EXTERNAL_REF_MAX,
        )?),
        id => id,
    };
    Ok(InvitationInput { candidate, ..input })
}

async fn settings_of(
    db: &impl ConnectionTrait,
    organization_id: i64,
) -> DomainResult<SurveySettings> {
    let organization = organization::Entity::find_by_id(organization_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "organization",
        })?;
    Ok(SurveySettings {
        cooldown_days: organization.survey_cooldown_days,
        locale: organization.survey_locale,
    })
}

async fn create_in(
    txn: &DatabaseTransaction,
    organization_id: i64,
    actor: &KeyActor,
    settings: &SurveySettings,
    input: InvitationInput,
    now: DateTime<Utc>,
) -> DomainResult<NewInvitation> {
    let (candidate_field, mut find) = match &input.candidate {
        CandidateRef::Id(id) => (
            "candidate_id",
            candidate::Entity::find().filter(candidate::Column::Id.eq(*id)),
        ),
        CandidateRef::ExternalRef(external_ref) => (
            "candidate_external_ref",
            candidate::Entity::find().filter(candidate::Column::ExternalRef.eq(external_ref)),
        ),
    };
    // On PostgreSQL the candidate's row lock makes concurrent invitations
    // for them take turns, so the cool-down holds; SQLite's write lock
    // already does (the clause is not written there).
    find = find
        .filter(candidate::Column::OrganizationId.eq(organization_id))
        .lock_exclusive();
    let candidate = find.one(txn).await?.ok_or(DomainError::UnknownReference {
        field: candidate_field,
        resource: "candidate",
    })?;
    if candidate.erased_at.is_some() {
        return Err(DomainError::erased(candidate_field, candidate.id));
    }
    if input.send_email && candidate.email.is_none() {
        return Err(DomainError::invalid(
            "send_email",
            format!("candidate {} has no e-mail address", candidate.id),
        ));
    }
    let touchpoint = touchpoint::Entity::find_by_id(input.touchpoint_id)
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .one(txn)
        .await?
        .ok_or(DomainError::UnknownReference {
            field: "touchpoint_id",
            resource: "touchpoint",
        })?;
    if touchpoint.archived_at.is_some() {
        return Err(DomainError::Archived {
            field: "touchpoint_id",
            message: format!(
                "touchpoint {} is archived and takes no new invitations",
                touchpoint.id
            ),
        });
    }
    check_cooldown(
        txn,
        organization_id,
        candidate_field,
        candidate.id,
        settings,
        now,
    )
    .await?;
    let token = secret::random_token("");
    let expires_at = now + Duration::days(input.expires_in_days.unwrap_or(DEFAULT_EXPIRY_DAYS));
    let invitation = survey_invitation::ActiveModel {
        organization_id: Set(organization_id),
        candidate_id: Set(candidate.id),
        touchpoint_id: Set(touchpoint.id),
        token_hash: Set(secret::hash_token(&token)),
        locale: Set(input.locale.unwrap_or(settings.locale)),
        mode: Set(input.mode),
        created_by_key_id: Set(actor.key_id),
        created_at: Set(now),
        expires_at: Set(expires_at),
        sent_at: Set(None),
        opened_at: Set(None),
        answered_at: Set(None),
        revoked_at: Set(None),
        encounter_id: Set(None),
        email_attempts: Set(0),
        email_last_error: Set(None),
        ..Default::default()
    }
    .insert(txn)
    .await?;
    if input.send_email {
        survey_email_queue::ActiveModel {
            invitation_id: Set(invitation.id),
            organization_id: Set(organization_id),
            token: Set(token.clone()),
            next_attempt_at: Set(now),
            claimed_until: Set(None),
        }
        .insert(txn)
        .await?;
    }
    Ok(NewInvitation { invitation, token })
}

/// Refuses a candidate invited (and not revoked) within the cool-down.
async fn check_cooldown(
    txn: &DatabaseTransaction,
    organization_id: i64,
    field: &'static str,
    candidate_id: i64,
    settings: &SurveySettings,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    if settings.cooldown_days <= 0 {
        return Ok(());
    }
    let since = now - Duration::days(settings.cooldown_days.into());
    let latest = survey_invitation::Entity::find()
        .filter(survey_invitation::Column::OrganizationId.eq(organization_id))
        .filter(survey_invitation::Column::CandidateId.eq(candidate_id))
        .filter(survey_invitation::Column::CreatedAt.gt(since))
        .filter(survey_invitation::Column::RevokedAt.is_null())
        .order_by_desc(survey_invitation::Column::CreatedAt)
        .one(txn)
        .await?;
    match latest {
        None => Ok(()),
        Some(earlier) => Err(DomainError::SurveyCooldown {
            field,
            message: format!(
                "candidate {candidate_id} was invited on {} (invitation {}); the organization's \
                 survey_cooldown_days is {}, so the next invitation is possible from {}",
                earlier.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                earlier.id,
                settings.cooldown_days,
                (earlier.created_at + Duration::days(settings.cooldown_days.into()))
                    .format("%Y-%m-%dT%H:%M:%SZ"),
            ),
        }),
    }
}

/// One invitation of the organization.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<survey_invitation::Model> {
    survey_invitation::Entity::find_by_id(id)
        .filter(survey_invitation::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "survey invitation",
        })
}

/// The organization's invitations, newest first.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: &InvitationFilter,
    page: PageRequest,
) -> DomainResult<Page<survey_invitation::Model>> {
    let now = crate::domain::now();
    let mut select = survey_invitation::Entity::find()
        .filter(survey_invitation::Column::OrganizationId.eq(organization_id));
    if let Some(id) = filter.candidate_id {
        select = select.filter(survey_invitation::Column::CandidateId.eq(id));
    }
    if let Some(id) = filter.touchpoint_id {
        select = select.filter(survey_invitation::Column::TouchpointId.eq(id));
    }
    if let Some(status) = filter.status {
        select = select.filter(status_condition(status, now));
    }
    page.fetch_newest_first(db, select, survey_invitation::Column::Id, |row| row.id)
        .await
}

/// The rows of one status: the SQL twin of [`Status::of`].
fn status_condition(status: Status, now: DateTime<Utc>) -> Condition {
    use survey_invitation::Column as C;
    let open = Condition::all()
        .add(C::AnsweredAt.is_null())
        .add(C::RevokedAt.is_null())
        .add(C::ExpiresAt.gt(now));
    match status {
        Status::Answered => Condition::all().add(C::AnsweredAt.is_not_null()),
        Status::Revoked => Condition::all()
            .add(C::AnsweredAt.is_null())
            .add(C::RevokedAt.is_not_null()),
        Status::Expired => Condition::all()
            .add(C::AnsweredAt.is_null())
            .add(C::RevokedAt.is_null())
            .add(C::ExpiresAt.lte(now)),
        Status::Opened => open.add(C::OpenedAt.is_not_null()),
        Status::Sent => open.add(C::OpenedAt.is_null()).add(C::SentAt.is_not_null()),
        Status::Created => open.add(C::OpenedAt.is_null()).add(C::SentAt.is_null()),
    }
}

/// Revokes an invitation: its link stops working and a pending e-mail is
/// not sent. Revoking a revoked or expired one changes nothing; an answered
/// one cannot be revoked.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn revoke(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<survey_invitation::Model> {
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    let now = crate::domain::now();
    match Status::of(&current, now) {
        Status::Answered => {
            return Err(DomainError::InvitationClosed(format!(
                "survey invitation {id} is answered and can no longer be revoked"
            )))
        }
        Status::Revoked | Status::Expired => return Ok(current),
        _ => {}
    }
    let candidate_id = current.candidate_id;
    let mut active: survey_invitation::ActiveModel = current.into();
    active.revoked_at = Set(Some(now));
    let revoked = active.update(&txn).await?;
    cancel_emails(&txn, organization_id, &[id]).await?;
    let event =
        Event::survey_invitation(id, candidate_id, AuditAction::Revoke).fields(["revoked_at"]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(revoked)
}

/// Revokes the open invitations of a candidate being erased and forgets
/// their pending e-mails (with the tokens) and the last e-mail errors
/// (which a mail server may have written the address into); within the
/// erasure's transaction.
pub(crate) async fn revoke_for_erasure(
    txn: &impl Executor,
    organization_id: i64,
    candidate_id: i64,
    now: DateTime<Utc>,
) -> DomainResult<Vec<i64>> {
    let revoke = Query::update()
        .table(survey_invitation::Entity)
        .value(survey_invitation::Column::RevokedAt, now)
        .and_where(survey_invitation::Column::OrganizationId.eq(organization_id))
        .and_where(survey_invitation::Column::CandidateId.eq(candidate_id))
        .and_where(survey_invitation::Column::AnsweredAt.is_null())
        .and_where(survey_invitation::Column::RevokedAt.is_null())
        .and_where(survey_invitation::Column::ExpiresAt.gt(now))
        .returning_col(survey_invitation::Column::Id)
        .to_owned();
    let mut revoked = Vec::new();
    for row in txn.query(&revoke).await? {
        revoked.push(row.get::<i64>(survey_invitation::Column::Id)?);
    }
    let forget_errors = Query::update()
        .table(survey_invitation::Entity)
        .value(
            survey_invitation::Column::EmailLastError,
            Option::<String>::None,
        )
        .and_where(survey_invitation::Column::OrganizationId.eq(organization_id))
        .and_where(survey_invitation::Column::CandidateId.eq(candidate_id))
        .and_where(survey_invitation::Column::EmailLastError.is_not_null())
        .to_owned();
    txn.execute(&forget_errors).await?;
    let all: Vec<i64> = {
        let select = Query::select()
            .column(survey_invitation::Column::Id)
            .from(survey_invitation::Entity)
            .and_where(survey_invitation::Column::OrganizationId.eq(organization_id))
            .and_where(survey_invitation::Column::CandidateId.eq(candidate_id))
            .to_owned();
        let mut ids = Vec::new();
        for row in txn.query(&select).await? {
            ids.push(row.get::<i64>(survey_invitation::Column::Id)?);
        }
        ids
    };
    cancel_emails(txn, organization_id, &all).await?;
    revoked.sort_unstable();
    Ok(revoked)
}

/// Drops the queued e-mails of these invitations.
pub(crate) async fn cancel_emails(
    txn: &impl Executor,
    organization_id: i64,
    invitation_ids: &[i64],
) -> DomainResult<()> {
    for chunk in invitation_ids.chunks(500) {
        let delete = Query::delete()
            .from_table(survey_email_queue::Entity)
            .and_where(survey_email_queue::Column::OrganizationId.eq(organization_id))
            .and_where(survey_email_queue::Column::InvitationId.is_in(chunk.iter().copied()))
            .to_owned();
        txn.execute(&delete).await?;
    }
    Ok(())
}

/// Which of these invitations have an e-mail waiting.
pub async fn emails_pending(
    db: &impl ConnectionTrait,
    invitation_ids: impl IntoIterator<Item = i64>,
) -> DomainResult<std::collections::HashSet<i64>> {
    let ids: Vec<i64> = invitation_ids.into_iter().collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(survey_email_queue::Entity::find()
        .select_only()
        .column(survey_email_queue::Column::InvitationId)
        .filter(survey_email_queue::Column::InvitationId.is_in(ids))
        .into_tuple::<i64>()
        .all(db)
        .await?
        .into_iter()
        .collect())
}

/// Whether an e-mail is waiting for this invitation.
pub async fn email_pending(db: &impl ConnectionTrait, invitation_id: i64) -> DomainResult<bool> {
    Ok(survey_email_queue::Entity::find_by_id(invitation_id)
        .one(db)
        .await?
        .is_some())
}
