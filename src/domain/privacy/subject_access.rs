//! Subject access (GDPR Art. 15): everything stored about one candidate.

use sea_orm::DatabaseConnection;

use crate::domain::{
    encounters::{self, JourneyRead},
    privacy::audit,
    DomainResult,
};

/// Everything stored about one candidate, for a subject-access request
/// (GDPR Art. 15), being read: the profile, every encounter with its
/// touchpoint, score, shift and note ([`JourneyRead`]),
/// the survey invitations sent to them
/// ([`SubjectAccessRead::survey_invitations`]), and the audit trail of
/// them ([`SubjectAccessRead::audit_events`]), all
/// from one snapshot, so the parts agree. Streamed: however long the
/// candidate's history, only a row at a time is held.
pub struct SubjectAccessRead {
    pub journey: JourneyRead,
}

/// Starts reading everything stored about one candidate. Everything that
/// can refuse it (no such candidate in the organization) is checked here,
/// before anything is streamed; an erased candidate's data is what is left.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, candidate_id = id))]
pub async fn read_subject_access(
    db: &DatabaseConnection,
    organization_id: i64,
    id: i64,
) -> DomainResult<SubjectAccessRead> {
    Ok(SubjectAccessRead {
        journey: encounters::read_journey(db, organization_id, id).await?,
    })
}

impl SubjectAccessRead {
    /// The candidate's survey invitations, oldest first, with the ids of
    /// those whose e-mail is still queued; from the same snapshot.
    pub async fn survey_invitations(
        &self,
    ) -> DomainResult<(
        Vec<entity::survey_invitation::Model>,
        std::collections::HashSet<i64>,
    )> {
        use entity::survey_invitation;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
        let candidate = &self.journey.candidate;
        let invitations = survey_invitation::Entity::find()
            .filter(survey_invitation::Column::OrganizationId.eq(candidate.organization_id))
            .filter(survey_invitation::Column::CandidateId.eq(candidate.id))
            .order_by_asc(survey_invitation::Column::Id)
            .all(self.journey.snapshot())
            .await?;
        let pending = crate::domain::surveys::invitations::emails_pending(
            self.journey.snapshot(),
            invitations.iter().map(|invitation| invitation.id),
        )
        .await?;
        Ok((invitations, pending))
    }

    /// The audit events about the candidate and their encounters, deleted
    /// ones included, oldest first.
    pub fn audit_events(
        &self,
    ) -> impl futures_util::Stream<Item = DomainResult<entity::audit_event::Model>> + Send + '_
    {
        let candidate = &self.journey.candidate;
        audit::about_candidate(
            self.journey.snapshot(),
            candidate.organization_id,
            candidate.id,
        )
    }
}
