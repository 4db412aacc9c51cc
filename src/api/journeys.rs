use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Path, payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::ApiError,
    nullable::Nullable,
    security::ApiKeyAuth,
    vocabulary::{Channel, Kind, Source, Stage},
    ApiTags,
};
use crate::domain::{auth::Capability, encounters};

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

impl From<encounters::Journey> for Journey {
    fn from(journey: encounters::Journey) -> Self {
        Journey {
            candidate_id: journey.candidate.id,
            steps: journey
                .steps
                .into_iter()
                .map(|step| JourneyStep {
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
                })
                .collect(),
            first_score: journey.first_score.into(),
            latest_score: journey.latest_score.into(),
            overall_shift: journey.overall_shift.into(),
        }
    }
}

#[derive(ApiResponse)]
pub enum JourneyResponse {
    /// The candidate's journey.
    #[oai(status = 200)]
    Ok(Json<Journey>),
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
        let journey = encounters::journey(*db, auth.0.organization_id, id.0).await?;
        Ok(JourneyResponse::Ok(Json(journey.into())))
    }
}
