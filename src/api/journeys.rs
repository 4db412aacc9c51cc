use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use poem::web::Data;
use poem_openapi::{param::Path, types::ToJSON, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::ApiError,
    nullable::Nullable,
    security::ApiKeyAuth,
    streamed_json::{ObjectWriter, StreamedJson},
    vocabulary::{Channel, Kind, Source, Stage},
    ApiTags,
};
use crate::domain::{access::auth::Capability, encounters, DomainError};

/// One step of a candidate's journey.
#[derive(Object)]
pub struct JourneyStep {
    /// The encounter.
    pub encounter_id: i64,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The touchpoint met.
    pub touchpoint_id: i64,
    /// The touchpoint's name.
    #[oai(validator(max_length = 200))]
    pub touchpoint_name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    pub source: Source,
    /// The score given at this encounter, 0 to 10; `null` when not
    /// measured.
    pub score: Nullable<i32>,
    /// This score minus the candidate's previous score; `null` for the first
    /// score and for unscored encounters.
    pub shift: Nullable<i32>,
    /// What the candidate said or showed; `null` when none.
    #[oai(validator(max_length = 4000))]
    pub note: Nullable<String>,
}

/// A candidate's encounters in time order and how their perception shifted.
#[derive(Object)]
pub struct Journey {
    /// The candidate.
    pub candidate_id: i64,
    /// Every encounter of the candidate, oldest first.
    pub steps: Vec<JourneyStep>,
    /// The earliest score, `null` when never scored.
    pub first_score: Nullable<i32>,
    /// The most recent score, `null` when never scored.
    pub latest_score: Nullable<i32>,
    /// `latest_score - first_score`; `null` with fewer than two scores.
    pub overall_shift: Nullable<i32>,
}

impl From<encounters::JourneyStep> for JourneyStep {
    fn from(step: encounters::JourneyStep) -> Self {
        JourneyStep {
            encounter_id: step.encounter.id,
            occurred_at: step.encounter.occurred_at,
            touchpoint_id: step.touchpoint.id,
            touchpoint_name: step.touchpoint.name,
            kind: step.touchpoint.kind.into(),
            channel: step.touchpoint.channel.into(),
            stage: step.touchpoint.stage.into(),
            source: step.encounter.source.into(),
            score: step.encounter.score.into(),
            shift: step.shift.into(),
            note: step.encounter.note.into(),
        }
    }
}

impl Journey {
    /// The journey without its steps: the template they are streamed into.
    fn template(candidate_id: i64, summary: encounters::JourneySummary) -> Self {
        Journey {
            candidate_id,
            steps: Vec::new(),
            first_score: summary.first_score.into(),
            latest_score: summary.latest_score.into(),
            overall_shift: summary.overall_shift.into(),
        }
    }
}

/// The journey's JSON document, in chunks, as the steps are read.
fn journey_document(
    journey: encounters::JourneyRead,
) -> impl Stream<Item = Result<Vec<u8>, DomainError>> + Send {
    async_stream::try_stream! {
        let template = Journey::template(journey.candidate.id, journey.summary);
        let mut writer = ObjectWriter::new(template.to_json());
        writer.array("steps");
        {
            let mut steps = std::pin::pin!(journey.steps());
            while let Some(step) = steps.next().await {
                writer.item(&JourneyStep::from(step?));
                if let Some(chunk) = writer.chunk() {
                    yield chunk;
                }
            }
        }
        journey.finish().await?;
        yield writer.finish();
    }
}

#[derive(ApiResponse)]
pub enum JourneyResponse {
    /// The candidate's journey.
    #[oai(status = 200)]
    Ok(StreamedJson<Journey>),
}

#[derive(Default)]
pub struct JourneysApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Candidates")]
impl JourneysApi {
    /// Get a candidate's journey
    ///
    /// The candidate's encounters in time order, each with its touchpoint and
    /// score, and for each scored encounter the shift from the previous
    /// score.
    #[oai(
        path = "/candidates/:id/journey",
        method = "get",
        operation_id = "get_candidate_journey"
    )]
    async fn journey(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Candidate id.
        id: Path<i64>,
    ) -> Result<JourneyResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        // Checked before the answer starts; the steps are then streamed
        // from one snapshot, however many there are.
        let journey = encounters::read_journey(*db, auth.0.organization_id, id.0).await?;
        Ok(JourneyResponse::Ok(
            StreamedJson::start(journey_document(journey)).await?,
        ))
    }
}
