//! Encounters (a candidate meeting a touchpoint) and the journey they form.

pub mod export;
pub mod group_commit;
pub mod ingest;
pub mod write;

use chrono::{DateTime, Utc};
use entity::{
    candidate, encounter, encounter_tombstone,
    enums::{AuditAction, Kind, Source, Stage},
    touchpoint,
};
use futures_util::{Stream, StreamExt};
use sea_orm::sea_query::{JoinType, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
};

use crate::domain::{
    candidates, catalog,
    encounters::write::EncounterWrite,
    pagination::{Page, PageRequest},
    patch::Patch,
    privacy::audit::{self, Actor, Event},
    validate,
    webhooks::{
        self,
        events::{EventType, NewEvent},
    },
    DomainError, DomainResult,
};

#[derive(Default)]
pub struct EncounterChanges {
    pub touchpoint_id: Patch<i64>,
    pub occurred_at: Patch<DateTime<Utc>>,
    pub source: Patch<Source>,
    pub score: Patch<Option<i32>>,
    pub note: Patch<Option<String>>,
}

#[derive(Default)]
pub struct EncounterFilter {
    pub candidate_id: Option<i64>,
    pub touchpoint_id: Option<i64>,
    pub kind: Option<Kind>,
    pub stage: Option<Stage>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// The touchpoint an encounter is (re)assigned to: it must exist in the
/// organization and must not be archived.
async fn open_touchpoint(
    db: &impl ConnectionTrait,
    organization_id: i64,
    touchpoint_id: i64,
) -> DomainResult<touchpoint::Model> {
    let touchpoint = catalog::find(db, organization_id, touchpoint_id)
        .await?
        .ok_or(DomainError::UnknownReference {
            field: "touchpoint_id",
            resource: "touchpoint",
        })?;
    if touchpoint.archived_at.is_some() {
        return Err(DomainError::Archived {
            field: "touchpoint_id",
            message: format!(
                "touchpoint {} is archived and takes no new encounters",
                touchpoint.id
            ),
        });
    }
    Ok(touchpoint)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, encounter_id = id))]
pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<encounter::Model> {
    encounter::Entity::find_by_id(id)
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "encounter",
        })
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: EncounterFilter,
    page: PageRequest,
) -> DomainResult<Page<encounter::Model>> {
    let mut select = encounter::Entity::find();
    select = match filter.candidate_id {
        // One candidate's encounters come from the candidate's index, in a
        // subquery that also keeps to the organization: with the
        // organization's filter outside, SQLite walked all of its
        // encounters in id order (`idx_encounters_list`) to find them.
        Some(candidate_id) => select.filter(
            encounter::Column::Id.in_subquery(
                Query::select()
                    .column(encounter::Column::Id)
                    .from(encounter::Entity)
                    .and_where(encounter::Column::OrganizationId.eq(organization_id))
                    .and_where(encounter::Column::CandidateId.eq(candidate_id))
                    .to_owned(),
            ),
        ),
        None => select.filter(encounter::Column::OrganizationId.eq(organization_id)),
    };
    if let Some(touchpoint_id) = filter.touchpoint_id {
        select = select.filter(encounter::Column::TouchpointId.eq(touchpoint_id));
    }
    if filter.kind.is_some() || filter.stage.is_some() {
        select = select.join(JoinType::InnerJoin, encounter::Relation::Touchpoint.def());
        if let Some(kind) = filter.kind {
            select = select.filter(touchpoint::Column::Kind.eq(kind));
        }
        if let Some(stage) = filter.stage {
            select = select.filter(touchpoint::Column::Stage.eq(stage));
        }
    }
    if let Some(from) = filter.from {
        select = select.filter(encounter::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(encounter::Column::OccurredAt.lt(to));
    }
    page.fetch(db, select, encounter::Column::Id, |e| e.id)
        .await
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, encounter_id = id))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    changes: EncounterChanges,
) -> DomainResult<encounter::Model> {
    let occurred_at = changes
        .occurred_at
        .try_map(|at| validate::not_in_future("occurred_at", at, crate::domain::now()))?;
    let score = changes
        .score
        .try_map(|score| validate::score("score", score))?;
    let note = changes
        .note
        .try_map(|note| validate::optional_text("note", note, validate::NOTE_MAX))?;
    let mut write = EncounterWrite::begin(db, organization_id).await?;
    let current = get(write.txn(), organization_id, id).await?;
    if let Patch::Set(touchpoint_id) = changes.touchpoint_id {
        if touchpoint_id != current.touchpoint_id {
            open_touchpoint(write.txn(), organization_id, touchpoint_id).await?;
        }
    }
    if matches!(note, Patch::Set(Some(_))) {
        // An erased candidate's encounters keep their scores (corrections
        // are allowed) but take no note: it would be personal data again.
        let candidate = candidates::get(write.txn(), organization_id, current.candidate_id).await?;
        if candidate.erased_at.is_some() {
            return Err(DomainError::erased("note", candidate.id));
        }
    }
    write.touch([current.candidate_id]).await?;
    let event = Event::encounter(id, current.candidate_id, AuditAction::Update)
        .field_if(
            changes.touchpoint_id.changes(&current.touchpoint_id),
            "touchpoint_id",
        )
        .field_if(occurred_at.changes(&current.occurred_at), "occurred_at")
        .field_if(changes.source.changes(&current.source), "source")
        .field_if(score.changes(&current.score), "score")
        .field_if(note.changes(&current.note), "note");
    let previous_score = current.score;
    let mut active: encounter::ActiveModel = current.into();
    if let Patch::Set(touchpoint_id) = changes.touchpoint_id {
        active.touchpoint_id = Set(touchpoint_id);
    }
    if let Patch::Set(occurred_at) = occurred_at {
        active.occurred_at = Set(occurred_at);
    }
    if let Patch::Set(source) = changes.source {
        active.source = Set(source);
    }
    if let Patch::Set(score) = score {
        active.score = Set(score);
    }
    if let Patch::Set(note) = note {
        active.note = Set(note);
    }
    active.change_seq = Set(write.seq());
    active.updated_at = Set(write.now());
    let updated = active.update(write.txn()).await?;
    audit::record(write.txn(), organization_id, actor, write.now(), event).await?;
    let changed = NewEvent::encounter(EventType::EncounterUpdated, &updated);
    webhooks::events::record(write.txn(), organization_id, write.now(), vec![changed]).await?;
    // A score changed to a detractor's alerts as a new one would (once per
    // encounter: its alert is unique).
    if updated.score != previous_score {
        crate::domain::alerts::lifecycle::detractors(
            write.txn(),
            organization_id,
            write.now(),
            std::slice::from_ref(&updated),
        )
        .await?;
    }
    write.commit().await?;
    Ok(updated)
}

/// Deletes an encounter, leaving a tombstone for the incremental export.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, encounter_id = id))]
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<()> {
    let mut write = EncounterWrite::begin(db, organization_id).await?;
    let current = get(write.txn(), organization_id, id).await?;
    write.touch([current.candidate_id]).await?;
    encounter::Entity::delete_by_id(current.id)
        .exec(write.txn())
        .await?;
    encounter_tombstone::ActiveModel {
        organization_id: Set(organization_id),
        encounter_id: Set(current.id),
        candidate_id: Set(current.candidate_id),
        change_seq: Set(write.seq()),
        deleted_at: Set(write.now()),
        created_at: Set(write.now()),
        updated_at: Set(write.now()),
        ..Default::default()
    }
    .insert(write.txn())
    .await?;
    let event = Event::encounter(current.id, current.candidate_id, AuditAction::Delete);
    audit::record(write.txn(), organization_id, actor, write.now(), event).await?;
    let deleted = NewEvent::encounter_deleted(&current);
    webhooks::events::record(write.txn(), organization_id, write.now(), vec![deleted]).await?;
    write.commit().await
}

/// One step of a candidate's journey.
pub struct JourneyStep {
    pub encounter: encounter::Model,
    pub touchpoint: touchpoint::Model,
    /// This score minus the candidate's previous score; `None` for the first
    /// score and for unscored encounters.
    pub shift: Option<i32>,
}

/// What sums up a journey: its first and latest scores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JourneySummary {
    pub first_score: Option<i32>,
    pub latest_score: Option<i32>,
    /// Latest minus first score; `None` with fewer than two scores.
    pub overall_shift: Option<i32>,
}

/// The shift of each score from the previous score, in journey order.
#[derive(Debug, Default)]
pub struct Shifts {
    previous: Option<i32>,
}

impl Shifts {
    /// The shift of the next encounter's score: `None` when it is unscored
    /// (which leaves the previous score as it is) or the first score.
    pub fn next(&mut self, score: Option<i32>) -> Option<i32> {
        let score = score?;
        let shift = self.previous.map(|before| score - before);
        self.previous = Some(score);
        shift
    }
}

/// The shift of each score from the previous score, skipping unscored
/// entries (which get `None`, as does the first score).
pub fn shifts(scores: &[Option<i32>]) -> Vec<Option<i32>> {
    let mut shifts = Shifts::default();
    scores.iter().map(|score| shifts.next(*score)).collect()
}

/// A candidate's journey being read: the checks are done, the candidate
/// and the summary are read, and the steps are read (streamed) from the
/// same snapshot by [`JourneyRead::steps`].
pub struct JourneyRead {
    pub candidate: candidate::Model,
    pub summary: JourneySummary,
    txn: DatabaseTransaction,
}

/// Starts reading a candidate's journey. Everything that can refuse it (no
/// such candidate in the organization) is checked here, before anything
/// is streamed.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, candidate_id = candidate_id))]
pub async fn read_journey(
    db: &DatabaseConnection,
    organization_id: i64,
    candidate_id: i64,
) -> DomainResult<JourneyRead> {
    let txn = crate::db::snapshot(db).await?;
    let candidate = candidates::get(&txn, organization_id, candidate_id).await?;
    let summary = journey_summary(&txn, organization_id, candidate_id).await?;
    Ok(JourneyRead {
        candidate,
        summary,
        txn,
    })
}

/// The first and latest scores, without reading the journey: the first
/// and last scored entries of the candidate's index (which holds the
/// scores), in journey order.
async fn journey_summary(
    db: &impl ConnectionTrait,
    organization_id: i64,
    candidate_id: i64,
) -> DomainResult<JourneySummary> {
    let scored = || {
        encounter::Entity::find()
            .select_only()
            .columns([encounter::Column::Id, encounter::Column::Score])
            .filter(encounter::Column::OrganizationId.eq(organization_id))
            .filter(encounter::Column::CandidateId.eq(candidate_id))
            .filter(encounter::Column::Score.is_not_null())
    };
    let first: Option<(i64, i32)> = scored()
        .order_by_asc(encounter::Column::OccurredAt)
        .order_by_asc(encounter::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    let latest: Option<(i64, i32)> = scored()
        .order_by_desc(encounter::Column::OccurredAt)
        .order_by_desc(encounter::Column::Id)
        .into_tuple()
        .one(db)
        .await?;
    Ok(JourneySummary {
        first_score: first.map(|(_, score)| score),
        latest_score: latest.map(|(_, score)| score),
        overall_shift: first
            .zip(latest)
            .filter(|((first, _), (latest, _))| first != latest)
            .map(|((_, first), (_, latest))| latest - first),
    })
}

impl JourneyRead {
    /// The candidate's encounters, oldest first (then by id), each with its
    /// touchpoint and shift, read from the database as they are taken.
    pub fn steps(&self) -> impl Stream<Item = DomainResult<JourneyStep>> + Send + '_ {
        let organization_id = self.candidate.organization_id;
        let candidate_id = self.candidate.id;
        async_stream::try_stream! {
            let mut rows = encounter::Entity::find()
                .filter(encounter::Column::OrganizationId.eq(organization_id))
                .filter(encounter::Column::CandidateId.eq(candidate_id))
                .order_by_asc(encounter::Column::OccurredAt)
                .order_by_asc(encounter::Column::Id)
                .find_also_related(touchpoint::Entity)
                .stream(&self.txn)
                .await?;
            let mut shifts = Shifts::default();
            while let Some(row) = rows.next().await {
                let (encounter, touchpoint) = row?;
                let touchpoint = touchpoint.ok_or_else(|| {
                    DomainError::internal(format!(
                        "the touchpoint of encounter {} is not there",
                        encounter.id
                    ))
                })?;
                let shift = shifts.next(encounter.score);
                yield JourneyStep {
                    encounter,
                    touchpoint,
                    shift,
                };
            }
        }
    }

    /// The snapshot the journey is read in, for reading more of the
    /// candidate's data from it.
    pub fn snapshot(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Ends the read.
    pub async fn finish(self) -> DomainResult<()> {
        Ok(self.txn.commit().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::shifts;

    #[test]
    fn shifts_skip_unscored_encounters() {
        assert_eq!(
            shifts(&[None, Some(6), None, Some(9), Some(4), None]),
            vec![None, None, None, Some(3), Some(-5), None]
        );
        assert_eq!(shifts(&[]), Vec::<Option<i32>>::new());
        assert_eq!(shifts(&[Some(7)]), vec![None]);
    }
}
