use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{
    param::{Header, Path, Query},
    payload::Json,
    types::MaybeUndefined,
    ApiResponse, Object, OpenApi,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    idempotency::{answer, idempotency, stored},
    nullable::Nullable,
    page::{page_request, page_type},
    patch::{change, nullable_change, required},
    payload::{example_time, JsonBody},
    security::ApiKeyAuth,
    time::{rfc3339, rfc3339_present, QueryTime},
    vocabulary::{Kind, Source, Stage},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    encounters::group_commit::EncounterWriter,
    encounters::ingest::{CandidateRef, EncounterInput, TouchpointRef},
    encounters::{self, EncounterChanges, EncounterFilter},
    idempotency::StoredResponse,
};

/// One candidate meeting one touchpoint at one moment.
#[derive(Object)]
pub struct Encounter {
    /// The encounter's id.
    pub id: i64,
    /// The candidate who met the touchpoint.
    pub candidate_id: i64,
    /// The touchpoint met.
    pub touchpoint_id: i64,
    /// When it happened (UTC).
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
    /// The answer to "How likely are you to recommend this employer to a
    /// friend as a place to work?", 0 to 10; `null` when not measured.
    pub score: Nullable<i32>,
    /// What the candidate said or showed about the employer.
    #[oai(validator(max_length = 4000))]
    pub note: Nullable<String>,
    /// The API key that recorded it.
    pub recorded_by_key_id: i64,
    /// When the encounter was recorded.
    pub created_at: DateTime<Utc>,
    /// When the encounter was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<entity::encounter::Model> for Encounter {
    fn from(model: entity::encounter::Model) -> Self {
        Encounter {
            id: model.id,
            candidate_id: model.candidate_id,
            touchpoint_id: model.touchpoint_id,
            occurred_at: model.occurred_at,
            source: model.source.into(),
            score: model.score.into(),
            note: model.note.into(),
            recorded_by_key_id: model.recorded_by_key_id,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

fn render_created(model: &entity::encounter::Model) -> StoredResponse {
    stored(201, &Encounter::from(model.clone()))
}

/// A new encounter, e.g. an interview a recruiter just ran.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateEncounter {
    /// The candidate who met the touchpoint.
    pub candidate_id: i64,
    /// A touchpoint that is not archived.
    pub touchpoint_id: i64,
    /// When it happened (UTC); at most 5 minutes in the future.
    #[serde(deserialize_with = "rfc3339")]
    pub occurred_at: DateTime<Utc>,
    /// Defaults to `recruiter_observation`.
    #[serde(default)]
    pub source: Option<Source>,
    /// 0 to 10, or absent when not measured.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default)]
    #[oai(nullable)]
    pub score: Option<i32>,
    /// Up to 4000 characters.
    #[oai(validator(max_length = 4000))]
    #[serde(default)]
    #[oai(nullable)]
    pub note: Option<String>,
}

impl Example for CreateEncounter {
    fn example() -> Self {
        CreateEncounter {
            candidate_id: 1,
            touchpoint_id: 3,
            occurred_at: example_time("2026-11-09T14:00:00Z"),
            source: Some(Source::RecruiterObservation),
            score: Some(3),
            note: Some("Waited 40 minutes, nobody came".to_owned()),
        }
    }
}

/// Changes to an encounter; absent fields stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateEncounter {
    /// Move the encounter to another (not archived) touchpoint.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub touchpoint_id: Option<i64>,
    /// When it happened (UTC); at most 5 minutes in the future.
    #[serde(default, deserialize_with = "rfc3339_present")]
    #[oai(skip_serializing_if_is_none)]
    pub occurred_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub source: Option<Source>,
    /// 0 to 10; `null` removes the score.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default)]
    #[oai(nullable)]
    pub score: MaybeUndefined<i32>,
    /// `null` removes the note.
    #[oai(validator(max_length = 4000))]
    #[serde(default)]
    #[oai(nullable)]
    pub note: MaybeUndefined<String>,
}

/// A partial change: the fields it leaves as they are are absent (they are
/// `skip_serializing_if_is_none`), `null` clears a field.
impl Example for UpdateEncounter {
    fn example() -> Self {
        UpdateEncounter {
            touchpoint_id: None,
            occurred_at: None,
            source: None,
            score: MaybeUndefined::Value(4),
            note: MaybeUndefined::Null,
        }
    }
}

page_type! {
    /// One page of encounters.
    EncounterPage of Encounter
}

#[derive(ApiResponse)]
pub enum EncounterResponse {
    /// The encounter.
    #[oai(status = 200)]
    Ok(Json<Encounter>),
}

#[derive(ApiResponse)]
pub enum EncounterCreated {
    /// The encounter was recorded.
    #[oai(status = 201)]
    Created(Json<Encounter>),
}

#[derive(ApiResponse)]
pub enum EncounterDeleted {
    /// The encounter was deleted.
    #[oai(status = 204)]
    Deleted,
}

#[derive(ApiResponse)]
pub enum EncounterList {
    /// One page of encounters, in the order they were recorded.
    #[oai(status = 200)]
    Ok(Json<EncounterPage>),
}

#[derive(Default)]
pub struct EncountersApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Encounters")]
impl EncountersApi {
    /// List encounters
    ///
    /// Filter by candidate, touchpoint, the touchpoint's kind or stage, and
    /// time (`from` inclusive, `to` exclusive).
    #[oai(path = "/encounters", method = "get", operation_id = "list_encounters")]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only this candidate's encounters.
        candidate_id: Query<Option<i64>>,
        /// Only encounters with this touchpoint.
        touchpoint_id: Query<Option<i64>>,
        /// Only encounters with touchpoints of this kind.
        kind: Query<Option<Kind>>,
        /// Only encounters with touchpoints at this stage.
        stage: Query<Option<Stage>>,
        /// Only encounters at or after this moment.
        from: Query<Option<QueryTime>>,
        /// Only encounters before this moment.
        to: Query<Option<QueryTime>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<EncounterList, ApiError> {
        auth.0.require(Capability::Read)?;
        let filter = EncounterFilter {
            candidate_id: candidate_id.0,
            touchpoint_id: touchpoint_id.0,
            kind: kind.0.map(Into::into),
            stage: stage.0.map(Into::into),
            from: from.0.map(|at| at.0),
            to: to.0.map(|at| at.0),
        };
        let page = encounters::list(
            *db,
            auth.0.organization_id,
            filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(EncounterList::Ok(Json(page.into())))
    }

    /// Log an encounter
    ///
    /// Records a candidate meeting a touchpoint, e.g. an interview, with an
    /// optional perception score. Admins and recruiters. An archived
    /// touchpoint answers 409; an unknown candidate or touchpoint 422.
    ///
    /// Send an `Idempotency-Key` to make retries safe: a repeat with the
    /// same key and body answers with the original encounter and records
    /// nothing; the same key with another body answers 422.
    #[oai(
        path = "/encounters",
        method = "post",
        operation_id = "create_encounter"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        writer: Data<&EncounterWriter>,
        /// A unique key per logical request (1 to 255 visible ASCII
        /// characters, e.g. a UUID), kept for at least 24 hours.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        idempotency_key: Header<Option<String>>,
        /// The encounter to record.
        body: JsonBody<CreateEncounter>,
    ) -> Result<EncounterCreated, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let idempotency = idempotency(
            idempotency_key.0.as_deref(),
            "create_encounter",
            body.digest(),
        )?;
        let body = body.0;
        let input = EncounterInput {
            candidate: CandidateRef::Id(body.candidate_id),
            touchpoint: TouchpointRef::Id(body.touchpoint_id),
            occurred_at: body.occurred_at,
            source: body.source.unwrap_or(Source::RecruiterObservation).into(),
            score: body.score,
            note: body.note,
        };
        let render = render_created as fn(&entity::encounter::Model) -> StoredResponse;
        let written = writer
            .record(
                auth.0.organization_id,
                auth.key_actor(),
                input,
                idempotency.map(|key| (key, render)),
            )
            .await?;
        Ok(EncounterCreated::Created(Json(answer(
            written,
            Encounter::from,
        )?)))
    }

    /// Get an encounter
    ///
    /// The encounter with this id. Every role.
    #[oai(
        path = "/encounters/:id",
        method = "get",
        operation_id = "get_encounter"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Encounter id.
        id: Path<i64>,
    ) -> Result<EncounterResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let encounter = encounters::get(*db, auth.0.organization_id, id.0).await?;
        Ok(EncounterResponse::Ok(Json(encounter.into())))
    }

    /// Update an encounter
    ///
    /// Changes the fields present in the body. Admins and recruiters.
    #[oai(
        path = "/encounters/:id",
        method = "patch",
        operation_id = "update_encounter"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Encounter id.
        id: Path<i64>,
        /// The fields to change.
        body: JsonBody<UpdateEncounter>,
    ) -> Result<EncounterResponse, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let body = body.0;
        let changes = EncounterChanges {
            touchpoint_id: change(body.touchpoint_id),
            occurred_at: change(body.occurred_at),
            source: change(body.source),
            score: nullable_change(body.score),
            note: nullable_change(body.note),
        };
        let updated =
            encounters::update(*db, &auth.actor(), auth.0.organization_id, id.0, changes).await?;
        Ok(EncounterResponse::Ok(Json(updated.into())))
    }

    /// Delete an encounter
    ///
    /// Removes an encounter logged by mistake. Admins and recruiters.
    #[oai(
        path = "/encounters/:id",
        method = "delete",
        operation_id = "delete_encounter"
    )]
    async fn delete(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Encounter id.
        id: Path<i64>,
    ) -> Result<EncounterDeleted, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        encounters::delete(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        Ok(EncounterDeleted::Deleted)
    }
}
