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
    payload::JsonBody,
    security::ApiKeyAuth,
    vocabulary::Stage,
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    candidates::{self, CandidateChanges, CandidateFilter, NewCandidate},
    idempotency::StoredResponse,
    privacy::erasure,
};

fn render_created(model: &entity::candidate::Model) -> StoredResponse {
    stored(201, &Candidate::from(model.clone()))
}

/// A person tracked through the candidate journey. `external_ref`,
/// `display_name` and `email` are personal data; once the candidate is
/// erased (`erased_at` set) all three are `null`.
#[derive(Object)]
pub struct Candidate {
    /// The candidate's id.
    pub id: i64,
    /// The applicant-tracking system's id; unique within the organization.
    /// `null` once the candidate is erased.
    #[oai(validator(max_length = 200))]
    pub external_ref: Nullable<String>,
    /// How to address the candidate; `null` when not given or erased.
    #[oai(validator(max_length = 200))]
    pub display_name: Nullable<String>,
    /// The candidate's e-mail address; `null` when not given or erased.
    #[oai(validator(max_length = 320))]
    pub email: Nullable<String>,
    /// Where the candidate is in the journey now.
    pub stage: Stage,
    /// When the candidate was created.
    pub created_at: DateTime<Utc>,
    /// When the candidate was last changed.
    pub updated_at: DateTime<Utc>,
    /// When the candidate's personal data was erased; `null` while it is
    /// kept. An erased candidate takes no changes and no encounters.
    pub erased_at: Nullable<DateTime<Utc>>,
}

impl From<entity::candidate::Model> for Candidate {
    fn from(model: entity::candidate::Model) -> Self {
        // An erased candidate's stored reference is a placeholder, not data.
        let external_ref = model.erased_at.is_none().then_some(model.external_ref);
        Candidate {
            id: model.id,
            external_ref: external_ref.into(),
            display_name: model.display_name.into(),
            email: model.email.into(),
            stage: model.stage.into(),
            created_at: model.created_at,
            updated_at: model.updated_at,
            erased_at: model.erased_at.into(),
        }
    }
}

/// A new candidate.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateCandidate {
    /// The applicant-tracking system's id; unique within the organization,
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub external_ref: String,
    /// Up to 200 characters.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(nullable)]
    pub display_name: Option<String>,
    /// An e-mail address, up to 320 characters: `local@domain`, one `@`, no
    /// whitespace or control characters (surrounding whitespace is trimmed;
    /// blank is none).
    #[oai(validator(
        max_length = 320,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    #[serde(default)]
    #[oai(nullable)]
    pub email: Option<String>,
    /// Defaults to `awareness`.
    #[serde(default)]
    pub stage: Option<Stage>,
}

impl Example for CreateCandidate {
    fn example() -> Self {
        CreateCandidate {
            external_ref: "ATS-1042".to_owned(),
            display_name: Some("Nguyen Thi Lan".to_owned()),
            email: Some("lan.nguyen@example.com".to_owned()),
            stage: Some(Stage::Interview),
        }
    }
}

/// Changes to a candidate; absent fields stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateCandidate {
    /// A new applicant-tracking system id; unique within the organization,
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub external_ref: Option<String>,
    /// `null` clears it.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(nullable)]
    pub display_name: MaybeUndefined<String>,
    /// An e-mail address, as in `CreateCandidate`; `null` clears it.
    #[oai(validator(
        max_length = 320,
        pattern = r"^[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+@[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+)?[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    #[serde(default)]
    #[oai(nullable)]
    pub email: MaybeUndefined<String>,
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub stage: Option<Stage>,
}

/// A partial change: the fields it leaves as they are are absent (they are
/// `skip_serializing_if_is_none`), `null` clears a field.
impl Example for UpdateCandidate {
    fn example() -> Self {
        UpdateCandidate {
            external_ref: None,
            display_name: MaybeUndefined::Undefined,
            email: MaybeUndefined::Null,
            stage: Some(Stage::Offer),
        }
    }
}

page_type! {
    /// One page of candidates.
    CandidatePage of Candidate
}

#[derive(ApiResponse)]
pub enum CandidateResponse {
    /// The candidate.
    #[oai(status = 200)]
    Ok(Json<Candidate>),
}

#[derive(ApiResponse)]
pub enum CandidateErased {
    /// The candidate is erased: `erased_at` is set and every personal field
    /// is `null`. The same answer for a candidate erased earlier.
    #[oai(status = 200)]
    Ok(Json<Candidate>),
}

#[derive(ApiResponse)]
pub enum CandidateCreated {
    /// The candidate was created.
    #[oai(status = 201)]
    Created(Json<Candidate>),
}

#[derive(ApiResponse)]
pub enum CandidateList {
    /// One page of candidates, in creation order.
    #[oai(status = 200)]
    Ok(Json<CandidatePage>),
}

#[derive(Default)]
pub struct CandidatesApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Candidates")]
impl CandidatesApi {
    /// List candidates
    ///
    /// Filter by stage, look a candidate up by the ATS id, or search by
    /// part of the reference or the name.
    #[oai(path = "/candidates", method = "get", operation_id = "list_candidates")]
    // One argument per query parameter: poem-openapi documents each.
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only candidates at this stage.
        stage: Query<Option<Stage>>,
        /// Only the candidate with this ATS id.
        #[oai(validator(max_length = 200))]
        external_ref: Query<Option<String>>,
        /// Only candidates whose ATS id or display name contains this text
        /// (1 to 200 characters), in any case (on SQLite, only the letters
        /// A to Z match in either case). Erased candidates have neither.
        #[oai(validator(max_length = 200))]
        q: Query<Option<String>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<CandidateList, ApiError> {
        auth.0.require(Capability::Read)?;
        let filter = CandidateFilter {
            stage: stage.0.map(Into::into),
            external_ref: external_ref.0,
            search: q.0,
        };
        let page = candidates::list(
            *db,
            auth.0.organization_id,
            filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(CandidateList::Ok(Json(page.into())))
    }

    /// Create a candidate
    ///
    /// Admins and recruiters. An `external_ref` already used in the
    /// organization answers 409.
    ///
    /// Send an `Idempotency-Key` to make retries safe: a repeat with the
    /// same key and body answers with the original candidate and creates
    /// nothing; the same key with another body answers 422.
    #[oai(
        path = "/candidates",
        method = "post",
        operation_id = "create_candidate"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// A unique key per logical request (1 to 255 visible ASCII
        /// characters, e.g. a UUID), kept for at least 24 hours.
        #[oai(
            name = "Idempotency-Key",
            validator(min_length = 1, max_length = 255, pattern = r"^[!-~]+$")
        )]
        idempotency_key: Header<Option<String>>,
        /// The candidate to create.
        body: JsonBody<CreateCandidate>,
    ) -> Result<CandidateCreated, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let idempotency = idempotency(
            idempotency_key.0.as_deref(),
            "create_candidate",
            body.digest(),
        )?;
        let body = body.0;
        let new = NewCandidate {
            external_ref: body.external_ref,
            display_name: body.display_name,
            email: body.email,
            stage: body.stage.unwrap_or(Stage::Awareness).into(),
        };
        let render = render_created as fn(&entity::candidate::Model) -> StoredResponse;
        let written = candidates::create_once(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            new,
            idempotency.as_ref().map(|key| (key, render)),
        )
        .await?;
        Ok(CandidateCreated::Created(Json(answer(
            written,
            Candidate::from,
        )?)))
    }

    /// Get a candidate
    ///
    /// The candidate with this id. Every role.
    #[oai(
        path = "/candidates/:id",
        method = "get",
        operation_id = "get_candidate"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Candidate id.
        id: Path<i64>,
    ) -> Result<CandidateResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let candidate = candidates::get(*db, auth.0.organization_id, id.0).await?;
        Ok(CandidateResponse::Ok(Json(candidate.into())))
    }

    /// Update a candidate
    ///
    /// Changes the fields present in the body. Admins and recruiters. An
    /// erased candidate takes no changes: 409 `candidate_erased`.
    #[oai(
        path = "/candidates/:id",
        method = "patch",
        operation_id = "update_candidate"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Candidate id.
        id: Path<i64>,
        /// The fields to change.
        body: JsonBody<UpdateCandidate>,
    ) -> Result<CandidateResponse, ApiError> {
        auth.0.require(Capability::RecordEncounters)?;
        let body = body.0;
        let changes = CandidateChanges {
            external_ref: change(body.external_ref),
            display_name: nullable_change(body.display_name),
            email: nullable_change(body.email),
            stage: change(body.stage),
        };
        let updated =
            candidates::update(*db, &auth.actor(), auth.0.organization_id, id.0, changes).await?;
        Ok(CandidateResponse::Ok(Json(updated.into())))
    }

    /// Erase a candidate
    ///
    /// Answers a candidate's request for erasure (GDPR Art. 17), for
    /// admins only. Removes, irreversibly and in one transaction, the
    /// candidate's `external_ref`, `display_name` and `email` and the
    /// `note` of every encounter of theirs, and sets `erased_at`. The
    /// encounters and their scores stay, de-identified, so every report is
    /// the same before and after; the next incremental export carries the
    /// encounters whose note was removed again, without it.
    ///
    /// Afterwards the candidate takes no changes and no encounters (409
    /// `candidate_erased`), and its former `external_ref` is free: a batch
    /// item naming it creates a new candidate. Erasing an erased candidate
    /// answers the same and changes nothing.
    #[oai(
        path = "/candidates/:id",
        method = "delete",
        operation_id = "erase_candidate"
    )]
    async fn erase(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Candidate id.
        id: Path<i64>,
    ) -> Result<CandidateErased, ApiError> {
        auth.0.require(Capability::ManagePersonalData)?;
        let erased = erasure::erase(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            id.0,
            &super::personal_data::StoredAnswerRedactor,
        )
        .await?;
        Ok(CandidateErased::Ok(Json(erased.into())))
    }
}
