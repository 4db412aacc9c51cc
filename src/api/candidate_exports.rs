//! `GET /api/v1/candidates/{id}/export`: everything stored about one
//! candidate, for a subject-access request.

use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use poem::web::Data;
use poem_openapi::{param::Path, types::ToJSON, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    audit_events::AuditEvent,
    candidates::Candidate,
    error::ApiError,
    nullable::Nullable,
    security::ApiKeyAuth,
    streamed_json::{ObjectWriter, StreamedJson},
    surveys::SurveyInvitation,
    vocabulary::{Channel, Kind, Source, Stage},
    ApiTags,
};
use crate::domain::{access::auth::Capability, privacy::subject_access, DomainError};

/// Everything the service stores about one candidate: the answer to a
/// subject-access request (GDPR Art. 15).
#[derive(Object)]
pub struct CandidateDataExport {
    /// When this export was made.
    pub exported_at: DateTime<Utc>,
    /// The candidate's profile, as `GET /api/v1/candidates/{id}` shows it.
    pub candidate: Candidate,
    /// Every encounter of the candidate, oldest first.
    pub encounters: Vec<CandidateEncounterRecord>,
    /// The earliest score, `null` when never scored.
    pub first_score: Nullable<i32>,
    /// The most recent score, `null` when never scored.
    pub latest_score: Nullable<i32>,
    /// `latest_score - first_score`; `null` with fewer than two scores.
    pub overall_shift: Nullable<i32>,
    /// The audit trail of the candidate and their encounters, oldest
    /// first: who created, changed, deleted or erased them, and when.
    pub audit_events: Vec<AuditEvent>,
    /// The survey invitations sent to the candidate, oldest first (their
    /// links are not stored, so not here either). An anonymous one's
    /// answer is not here: it keeps no link to the candidate.
    pub survey_invitations: Vec<SurveyInvitation>,
}

/// One encounter of the candidate, as stored, with its touchpoint.
#[derive(Object)]
pub struct CandidateEncounterRecord {
    /// The encounter's id.
    pub id: i64,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The touchpoint the candidate met.
    pub touchpoint: CandidateExportTouchpoint,
    /// Who measured the score, or where the record came from.
    pub source: Source,
    /// The score given, 0 to 10; `null` when not measured.
    pub score: Nullable<i32>,
    /// This score minus the candidate's previous score; `null` for the first
    /// score and for unscored encounters.
    pub shift: Nullable<i32>,
    /// What the candidate said or showed; `null` when none or erased.
    #[oai(validator(max_length = 4000))]
    pub note: Nullable<String>,
    /// The id of the API key that recorded it.
    pub recorded_by_key_id: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

/// The touchpoint of an exported encounter.
#[derive(Object)]
pub struct CandidateExportTouchpoint {
    /// The touchpoint's id.
    pub id: i64,
    /// Its name.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
}

impl From<crate::domain::encounters::JourneyStep> for CandidateEncounterRecord {
    fn from(step: crate::domain::encounters::JourneyStep) -> Self {
        CandidateEncounterRecord {
            id: step.encounter.id,
            occurred_at: step.encounter.occurred_at,
            touchpoint: CandidateExportTouchpoint {
                id: step.touchpoint.id,
                name: step.touchpoint.name,
                kind: step.touchpoint.kind.into(),
                channel: step.touchpoint.channel.into(),
                stage: step.touchpoint.stage.into(),
            },
            source: step.encounter.source.into(),
            score: step.encounter.score.into(),
            shift: step.shift.into(),
            note: step.encounter.note.into(),
            recorded_by_key_id: step.encounter.recorded_by_key_id,
            created_at: step.encounter.created_at,
            updated_at: step.encounter.updated_at,
        }
    }
}

impl CandidateDataExport {
    /// The export without its encounters and audit events: the template
    /// they are streamed into.
    fn template(
        data: &subject_access::SubjectAccessRead,
        exported_at: DateTime<Utc>,
        survey_invitations: Vec<SurveyInvitation>,
    ) -> Self {
        let summary = data.journey.summary;
        CandidateDataExport {
            exported_at,
            candidate: data.journey.candidate.clone().into(),
            encounters: Vec::new(),
            first_score: summary.first_score.into(),
            latest_score: summary.latest_score.into(),
            overall_shift: summary.overall_shift.into(),
            audit_events: Vec::new(),
            survey_invitations,
        }
    }
}

/// The export's JSON document, in chunks, as its rows are read. The
/// arrays are filled in the document's order of fields (`audit_events`
/// comes first); both come from the same snapshot.
fn export_document(
    data: subject_access::SubjectAccessRead,
    exported_at: DateTime<Utc>,
) -> impl Stream<Item = Result<Vec<u8>, DomainError>> + Send {
    async_stream::try_stream! {
        let (invitations, pending) = data.survey_invitations().await?;
        let invitations = invitations
            .into_iter()
            .map(|invitation| {
                let pending = pending.contains(&invitation.id);
                SurveyInvitation::new(invitation, pending)
            })
            .collect();
        let template = CandidateDataExport::template(&data, exported_at, invitations);
        let mut writer = ObjectWriter::new(template.to_json());
        writer.array("audit_events");
        {
            let mut events = std::pin::pin!(data.audit_events());
            while let Some(event) = events.next().await {
                writer.item(&AuditEvent::from(event?));
                if let Some(chunk) = writer.chunk() {
                    yield chunk;
                }
            }
        }
        writer.array("encounters");
        {
            let mut steps = std::pin::pin!(data.journey.steps());
            while let Some(step) = steps.next().await {
                writer.item(&CandidateEncounterRecord::from(step?));
                if let Some(chunk) = writer.chunk() {
                    yield chunk;
                }
            }
        }
        data.journey.finish().await?;
        yield writer.finish();
    }
}

#[derive(ApiResponse)]
pub enum CandidateDataExportResponse {
    /// Everything stored about the candidate.
    #[oai(status = 200)]
    Ok(StreamedJson<CandidateDataExport>),
}

#[derive(Default)]
pub struct CandidateExportsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Candidates")]
impl CandidateExportsApi {
    /// Export a candidate's data
    ///
    /// Answers a candidate's request to see their data (GDPR Art. 15), for
    /// admins only: everything the service stores about the candidate in
    /// one JSON document, its profile and every encounter with its
    /// touchpoint, score, shift and note, and the audit trail of them
    /// (who created, changed or erased them, never field values). An erased candidate's export
    /// shows what is left: no personal data, the de-identified encounters.
    #[oai(
        path = "/candidates/:id/export",
        method = "get",
        operation_id = "export_candidate"
    )]
    async fn export(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Candidate id.
        id: Path<i64>,
    ) -> Result<CandidateDataExportResponse, ApiError> {
        auth.0.require(Capability::ManagePersonalData)?;
        let exported_at = crate::domain::now();
        // Checked before the answer starts; the rows are then streamed from
        // one snapshot, however many there are.
        let data = subject_access::read_subject_access(*db, auth.0.organization_id, id.0).await?;
        Ok(CandidateDataExportResponse::Ok(
            StreamedJson::start(export_document(data, exported_at)).await?,
        ))
    }
}
