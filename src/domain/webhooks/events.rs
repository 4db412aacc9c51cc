//! The events webhooks deliver, and the outbox they wait in. An event is
//! written in the transaction of the change that caused it, so it exists
//! exactly when its change committed; nothing personal is written (an
//! endpoint that opted in gets the candidate's data added when the event
//! is sent, as it is then).

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use entity::{encounter, outbox_event, webhook_endpoint};
use sea_orm::{
    sea_query::{Expr, Query},
    ActiveEnum, ColumnTrait, EntityTrait,
};
use serde_json::{json, Value};

use crate::db::store::{Executor, InsertRows};
use crate::domain::DomainResult;

/// The kinds of event, as their `type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    EncounterCreated,
    EncounterUpdated,
    EncounterDeleted,
    CandidateErased,
    SurveyAnswered,
    AlertOpened,
    AlertResolved,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::EncounterCreated,
        EventType::EncounterUpdated,
        EventType::EncounterDeleted,
        EventType::CandidateErased,
        EventType::SurveyAnswered,
        EventType::AlertOpened,
        EventType::AlertResolved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::EncounterCreated => "encounter.created",
            EventType::EncounterUpdated => "encounter.updated",
            EventType::EncounterDeleted => "encounter.deleted",
            EventType::CandidateErased => "candidate.erased",
            EventType::SurveyAnswered => "survey.answered",
            EventType::AlertOpened => "alert.opened",
            EventType::AlertResolved => "alert.resolved",
        }
    }

    pub fn parse(value: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_type: EventType,
    /// The candidate it is about, for endpoints that receive personal data.
    pub subject_candidate_id: Option<i64>,
    /// Its `data`, with nothing personal in it.
    pub data: Value,
}

impl NewEvent {
    /// `encounter.created`, see [`NewEvent::encounter`].
    pub fn encounter_created(encounter: &encounter::Model) -> Self {
        Self::encounter(EventType::EncounterCreated, encounter)
    }

    /// `encounter.created` or `encounter.updated`: the encounter's fields
    /// but its note, which is personal (`has_note` says whether it has one).
    pub fn encounter(event_type: EventType, encounter: &encounter::Model) -> Self {
        NewEvent {
            event_type,
            subject_candidate_id: Some(encounter.candidate_id),
            data: json!({
                "encounter_id": encounter.id,
                "candidate_id": encounter.candidate_id,
                "touchpoint_id": encounter.touchpoint_id,
                "occurred_at": encounter.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "source": encounter.source.to_value(),
                "score": encounter.score,
                "has_note": encounter.note.is_some(),
            }),
        }
    }

    pub fn encounter_deleted(encounter: &encounter::Model) -> Self {
        NewEvent {
            event_type: EventType::EncounterDeleted,
            subject_candidate_id: Some(encounter.candidate_id),
            data: json!({
                "encounter_id": encounter.id,
                "candidate_id": encounter.candidate_id,
                "touchpoint_id": encounter.touchpoint_id,
            }),
        }
    }

    pub fn candidate_erased(candidate_id: i64, erased_at: DateTime<Utc>) -> Self {
        NewEvent {
            event_type: EventType::CandidateErased,
            subject_candidate_id: Some(candidate_id),
            data: json!({
                "candidate_id": candidate_id,
                "erased_at": erased_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            }),
        }
    }
}

/// Whether the organization has a webhook endpoint, enabled or not: only
/// then are its events written (an endpoint starts from the events after
/// its creation, so none is missed).
async fn has_endpoints(db: &impl Executor, organization_id: i64) -> DomainResult<bool> {
    let select = Query::select()
        .expr(Expr::val(1))
        .from(webhook_endpoint::Entity)
        .and_where(webhook_endpoint::Column::OrganizationId.eq(organization_id))
        .limit(1)
        .to_owned();
    Ok(!db.query(&select).await?.is_empty())
}

/// Writes events in the caller's transaction (nothing when the organization
/// has no webhook endpoint).
pub async fn record(
    db: &impl Executor,
    organization_id: i64,
    now: DateTime<Utc>,
    events: impl IntoIterator<Item = NewEvent>,
) -> DomainResult<()> {
    let mut events = events.into_iter().peekable();
    // Past the first, the events are built only when an endpoint may want them.
    if events.peek().is_none() || !has_endpoints(db, organization_id).await? {
        return Ok(());
    }
    use outbox_event::Column as C;
    let mut rows = InsertRows::new(
        outbox_event::Entity,
        [
            C::OrganizationId,
            C::EventType,
            C::SubjectCandidateId,
            C::Payload,
            C::CreatedAt,
        ],
    );
    for event in events {
        rows.push([
            organization_id.into(),
            event.event_type.as_str().into(),
            event.subject_candidate_id.into(),
            event.data.to_string().into(),
            now.into(),
        ]);
    }
    db.insert_rows(&rows, false).await?;
    Ok(())
}

/// The organization's events, oldest first.
pub async fn list(
    db: &impl sea_orm::ConnectionTrait,
    organization_id: i64,
    page: crate::domain::pagination::PageRequest,
) -> DomainResult<crate::domain::pagination::Page<outbox_event::Model>> {
    use sea_orm::QueryFilter;
    let select = outbox_event::Entity::find()
        .filter(outbox_event::Column::OrganizationId.eq(organization_id));
    page.fetch(db, select, outbox_event::Column::Id, |row| row.id)
        .await
}

/// One event of the organization.
pub async fn get(
    db: &impl sea_orm::ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<outbox_event::Model> {
    use sea_orm::QueryFilter;
    outbox_event::Entity::find_by_id(id)
        .filter(outbox_event::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(crate::domain::DomainError::NotFound { resource: "event" })
}

/// The event types an endpoint subscribes to, from their stored JSON.
pub fn subscribed_types(stored: &str) -> BTreeSet<EventType> {
    serde_json::from_str::<Vec<String>>(stored)
        .unwrap_or_default()
        .iter()
        .filter_map(|name| EventType::parse(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_back() {
        for event_type in EventType::ALL {
            assert_eq!(EventType::parse(event_type.as_str()), Some(event_type));
        }
        assert_eq!(EventType::parse("encounter.exploded"), None);
    }
}
