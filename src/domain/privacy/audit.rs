//! The audit trail: every change to an organization's data writes an
//! [`Event`] in the transaction of the change, so an event exists exactly
//! when its change committed. An event names the fields that changed,
//! never their values: changed fields are `&'static str`, so no request
//! value (a name, an e-mail, a note) can reach the trail.
//!
//! What one request creates together (a batch, an import chunk) is
//! recorded as one event per run of consecutive ids ([`Runs`]): its
//! `resource_id` is the run's first id and `last_resource_id` its last.
//! Every reader of the trail by resource (the `resource_id` filter, a
//! candidate's export) finds the run that holds an id as well as the events
//! about that id alone.

use chrono::{DateTime, Utc};
use entity::{
    audit_event,
    enums::{AuditAction, AuditResource},
};
use futures_util::{Stream, StreamExt};
use sea_orm::{
    ActiveEnum, ColumnTrait, Condition, ConnectionTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, QueryFilter, Select, Statement, StreamTrait,
};

use crate::db::sql::Sql;
use crate::db::store::{Executor, InsertRows};
use crate::domain::{
    access::auth::Principal,
    pagination::{Page, PageRequest},
    DomainError, DomainResult,
};

/// An API key, as an actor: its id and its name at the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyActor {
    pub key_id: i64,
    pub key_name: String,
}

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Key(KeyActor),
    /// The service itself; what it was doing (e.g. "command line").
    System(&'static str),
}

impl Actor {
    /// The `org` and `key` commands.
    pub const COMMAND_LINE: Actor = Actor::System("command line");
    /// `demo seed`.
    pub const DEMO_SEED: Actor = Actor::System("demo seed");
    /// The retention policy (`--retention-days`), in the service or run by
    /// `retention run`.
    pub const RETENTION_POLICY: Actor = Actor::System("retention policy");
    /// A candidate answering a survey link.
    pub const SURVEY_ANSWER: Actor = Actor::System("candidate survey");
}

/// An actor as an event row names it: a key's id (none for the service)
/// and a name.
#[derive(Debug, Clone, Copy)]
pub struct ActorRef<'a> {
    key_id: Option<i64>,
    name: &'a str,
}

impl<'a> From<&'a Actor> for ActorRef<'a> {
    fn from(actor: &'a Actor) -> Self {
        match actor {
            Actor::Key(key) => key.into(),
            Actor::System(what) => ActorRef {
                key_id: None,
                name: what,
            },
        }
    }
}

impl<'a> From<&'a KeyActor> for ActorRef<'a> {
    fn from(key: &'a KeyActor) -> Self {
        ActorRef {
            key_id: Some(key.key_id),
            name: &key.key_name,
        }
    }
}

impl From<&Principal> for KeyActor {
    fn from(principal: &Principal) -> Self {
        KeyActor {
            key_id: principal.key_id,
            key_name: principal.key_name.clone(),
        }
    }
}

impl From<&Principal> for Actor {
    fn from(principal: &Principal) -> Self {
        Actor::Key(principal.into())
    }
}

impl From<KeyActor> for Actor {
    fn from(key: KeyActor) -> Self {
        Actor::Key(key)
    }
}

/// One change: what it was done to and which fields it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub resource_type: AuditResource,
    pub resource_id: i64,
    /// The last id of a run of resources created together; `None` on an
    /// event about one resource.
    pub last_resource_id: Option<i64>,
    pub action: AuditAction,
    pub changed_fields: Vec<&'static str>,
    pub subject_candidate_id: Option<i64>,
}

impl Event {
    fn new(resource_type: AuditResource, resource_id: i64, action: AuditAction) -> Self {
        Event {
            resource_type,
            resource_id,
            last_resource_id: None,
            action,
            changed_fields: Vec::new(),
            subject_candidate_id: None,
        }
    }

    pub fn touchpoint(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::Touchpoint, id, action)
    }

    /// An event about a candidate, and so part of their subject-access export.
    pub fn candidate(id: i64, action: AuditAction) -> Self {
        Event {
            subject_candidate_id: Some(id),
            ..Self::new(AuditResource::Candidate, id, action)
        }
    }

    /// An event about a candidate's encounter, part of their export.
    pub fn encounter(id: i64, candidate_id: i64, action: AuditAction) -> Self {
        Event {
            subject_candidate_id: Some(candidate_id),
            ..Self::new(AuditResource::Encounter, id, action)
        }
    }

    /// An event about a survey invitation to a candidate, part of their
    /// export.
    pub fn survey_invitation(id: i64, candidate_id: i64, action: AuditAction) -> Self {
        Event {
            subject_candidate_id: Some(candidate_id),
            ..Self::new(AuditResource::SurveyInvitation, id, action)
        }
    }

    pub fn webhook_endpoint(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::WebhookEndpoint, id, action)
    }

    pub fn alert_rule(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::AlertRule, id, action)
    }

    pub fn alert(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::Alert, id, action)
    }

    /// A dashboard sign-in (`create`) or sign-out (`delete`).
    pub fn dashboard_session(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::DashboardSession, id, action)
    }

    pub fn api_key(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::ApiKey, id, action)
    }

    /// An event about the organization itself (created, or its settings
    /// changed): `Event::organization(id, AuditAction::Update).fields(["min_group_size"])`.
    pub fn organization(id: i64, action: AuditAction) -> Self {
        Self::new(AuditResource::Organization, id, action)
    }

    /// These fields were changed (or set, on create).
    pub fn fields(mut self, fields: impl IntoIterator<Item = &'static str>) -> Self {
        self.changed_fields.extend(fields);
        self
    }

    /// This field was changed, when `changed`.
    pub fn field_if(mut self, changed: bool, field: &'static str) -> Self {
        if changed {
            self.changed_fields.push(field);
        }
        self
    }
}

/// The events of what one request created, one per run: each `create`
/// event about a resource is appended to the run before it when both have
/// the same actor and resource type, and its id follows the run's last. A
/// run names every field set on at least one of its resources, and its
/// subject only when all of them have the same. Only creations make runs:
/// a resource is created once, so runs never overlap, which is how a
/// reader finds the run holding an id ([`push_run_holding`]).
#[derive(Debug)]
pub struct Runs<A> {
    events: Vec<(A, Event)>,
}

impl<A: PartialEq> Runs<A> {
    pub fn new() -> Self {
        Runs { events: Vec::new() }
    }

    pub fn push(&mut self, actor: A, event: Event) {
        if let Some((run_actor, run)) = self.events.last_mut() {
            let last = run.last_resource_id.unwrap_or(run.resource_id);
            if *run_actor == actor
                && run.resource_type == event.resource_type
                && run.action == AuditAction::Create
                && event.action == AuditAction::Create
                && event.last_resource_id.is_none()
                && last.checked_add(1) == Some(event.resource_id)
            {
                run.last_resource_id = Some(event.resource_id);
                for field in event.changed_fields {
                    if !run.changed_fields.contains(&field) {
                        run.changed_fields.push(field);
                    }
                }
                if run.subject_candidate_id != event.subject_candidate_id {
                    run.subject_candidate_id = None;
                }
                return;
            }
        }
        self.events.push((actor, event));
    }

    pub fn into_events(self) -> Vec<(A, Event)> {
        self.events
    }
}

impl<A: PartialEq> Default for Runs<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: PartialEq> FromIterator<(A, Event)> for Runs<A> {
    fn from_iter<I: IntoIterator<Item = (A, Event)>>(events: I) -> Self {
        let mut runs = Runs::new();
        for (actor, event) in events {
            runs.push(actor, event);
        }
        runs
    }
}

/// Records one event, in the transaction of its change.
pub async fn record(
    db: &impl Executor,
    organization_id: i64,
    actor: &Actor,
    at: DateTime<Utc>,
    event: Event,
) -> DomainResult<()> {
    record_all(db, organization_id, at, [(actor, event)]).await
}

/// Records events of one transaction, many rows per statement; each with
/// its actor (an [`Actor`] or a [`KeyActor`]).
pub async fn record_all<'a, A: Into<ActorRef<'a>>>(
    db: &impl Executor,
    organization_id: i64,
    at: DateTime<Utc>,
    events: impl IntoIterator<Item = (A, Event)>,
) -> DomainResult<()> {
    use audit_event::Column as C;
    let events: Vec<(ActorRef<'a>, Event)> = events
        .into_iter()
        .map(|(actor, event)| (actor.into(), event))
        .collect();
    // Events about one resource leave `last_resource_id` NULL: a statement
    // of them only names it when a run is among them, so it stays the
    // statement written before runs (and a bind a row shorter).
    let any_run = events.iter().any(|(_, e)| e.last_resource_id.is_some());
    let mut columns = vec![
        C::OrganizationId,
        C::OccurredAt,
        C::ActorKeyId,
        C::ActorName,
        C::ResourceType,
        C::ResourceId,
        C::Action,
        C::ChangedFields,
        C::SubjectCandidateId,
    ];
    columns.extend(any_run.then_some(C::LastResourceId));
    let mut rows = InsertRows::new(audit_event::Entity, columns);
    for (actor, event) in events {
        let last = any_run.then(|| event.last_resource_id.into());
        rows.push(
            [
                organization_id.into(),
                at.into(),
                actor.key_id.into(),
                actor.name.into(),
                event.resource_type.into(),
                event.resource_id.into(),
                event.action.into(),
                changed_fields_json(&event.changed_fields).into(),
                event.subject_candidate_id.into(),
            ]
            .into_iter()
            .chain(last),
        );
    }
    db.insert_rows(&rows, false).await?;
    Ok(())
}

fn changed_fields_json(fields: &[&'static str]) -> String {
    // Straight to text: through a `serde_json::Value` it was 4% of the
    // encounter writer's time in a bulk import.
    serde_json::to_string(fields).expect("a list of names serializes")
}

/// The changed field names stored in a row.
pub fn changed_fields(event: &audit_event::Model) -> Vec<String> {
    serde_json::from_str(&event.changed_fields).unwrap_or_default()
}

/// Which events to list; every filter is optional.
#[derive(Debug, Default)]
pub struct EventFilter {
    pub resource_type: Option<AuditResource>,
    pub resource_id: Option<i64>,
    pub actor_key_id: Option<i64>,
    /// Inclusive.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive.
    pub to: Option<DateTime<Utc>>,
}

/// The organization's events, newest first.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: EventFilter,
    page: PageRequest,
) -> DomainResult<Page<audit_event::Model>> {
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if from >= to {
            return Err(DomainError::invalid("from", "must be before to"));
        }
    }
    if filter.resource_id.is_some() && filter.resource_type.is_none() {
        return Err(DomainError::invalid(
            "resource_id",
            "needs resource_type: ids are per resource type",
        ));
    }
    let mut select = of_organization(organization_id);
    if let Some(resource_type) = filter.resource_type {
        select = select.filter(audit_event::Column::ResourceType.eq(resource_type));
    }
    if let (Some(resource_type), Some(resource_id)) = (filter.resource_type, filter.resource_id) {
        let about = audit_event::Column::ResourceId.eq(resource_id);
        let run = run_holding(db, organization_id, resource_type, resource_id).await?;
        select = select.filter(match run {
            Some(run) => Condition::any()
                .add(about)
                .add(audit_event::Column::Id.eq(run)),
            None => Condition::all().add(about),
        });
    }
    if let Some(key_id) = filter.actor_key_id {
        select = select.filter(audit_event::Column::ActorKeyId.eq(key_id));
    }
    if let Some(from) = filter.from {
        select = select.filter(audit_event::Column::OccurredAt.gte(from));
    }
    if let Some(to) = filter.to {
        select = select.filter(audit_event::Column::OccurredAt.lt(to));
    }
    page.fetch_newest_first(db, select, audit_event::Column::Id, |e| e.id)
        .await
}

/// The id of the run event (see [`Runs`]) of `resource_type` that holds
/// `resource_id`, if one does.
async fn run_holding(
    db: &impl ConnectionTrait,
    organization_id: i64,
    resource_type: AuditResource,
    resource_id: i64,
) -> DomainResult<Option<i64>> {
    let mut sql = Sql::new(db);
    sql.push("SELECT ");
    push_run_holding(&mut sql, organization_id, resource_type, |sql| {
        sql.bind(resource_id);
    });
    sql.push(" AS id");
    let row = db.query_one_raw(sql.statement()).await?;
    Ok(match row {
        Some(row) => row.try_get::<Option<i64>>("", "id")?,
        None => None,
    })
}

/// Appends a scalar subquery: the id of the run event of `resource` that
/// holds the id `id` writes, or NULL. Runs are disjoint (a resource is
/// created once), so it is the nearest run starting at or before that id,
/// if it reaches it: one probe of the runs' partial index.
fn push_run_holding(
    sql: &mut Sql,
    organization_id: i64,
    resource: AuditResource,
    id: impl Fn(&mut Sql),
) {
    sql.push("(SELECT CASE WHEN r.last_resource_id >= ");
    id(sql);
    sql.push(" THEN r.id END FROM audit_events r WHERE r.organization_id = ")
        .bind(organization_id)
        .push(" AND r.resource_type = ")
        .bind(resource.to_value())
        .push(" AND r.last_resource_id IS NOT NULL AND r.resource_id <= ");
    id(sql);
    sql.push(" ORDER BY r.resource_id DESC LIMIT 1)");
}

fn of_organization(organization_id: i64) -> Select<audit_event::Entity> {
    audit_event::Entity::find().filter(audit_event::Column::OrganizationId.eq(organization_id))
}

/// Every event about a candidate, oldest first: those about the candidate
/// and those about every encounter the candidate ever had (deleted ones,
/// through their tombstones, included), and the runs that created them,
/// each once. Streamed from one statement, which
/// the database sorts, so only a row at a time is held. Looked up by
/// resource, which the resource index answers; see the migration for why
/// there is no index on the subject.
pub fn about_candidate(
    db: &DatabaseTransaction,
    organization_id: i64,
    candidate_id: i64,
) -> impl Stream<Item = DomainResult<audit_event::Model>> + Send + '_ {
    let statement = about_candidate_statement(Sql::new(db), organization_id, candidate_id);
    async_stream::try_stream! {
        let mut rows = db.stream_raw(statement).await?;
        while let Some(row) = rows.next().await {
            yield audit_event::Model::from_query_result(&row?, "")?;
        }
    }
}

/// The events of [`about_candidate`]: those about the candidate, and those
/// about each of their encounters, looked up one encounter at a time on the
/// resource index; then the runs holding the candidate or one of their
/// encounters, found for each and read once; merged by id.
fn about_candidate_statement(mut sql: Sql, organization_id: i64, candidate_id: i64) -> Statement {
    const COLUMNS: &str = "id, organization_id, occurred_at, actor_key_id, actor_name, \
                           resource_type, resource_id, last_resource_id, action, \
                           changed_fields, subject_candidate_id";
    let events = |sql: &mut Sql, resource: AuditResource| {
        sql.push("SELECT ")
            .push(COLUMNS)
            .push(" FROM audit_events WHERE organization_id = ")
            .bind(organization_id)
            .push(" AND subject_candidate_id = ")
            .bind(candidate_id)
            .push(" AND resource_type = ")
            .bind(resource.to_value())
            .push(" AND last_resource_id IS NULL");
    };
    // Every encounter the candidate ever had: current ones, and deleted
    // ones through their tombstones.
    let encounter_ids = |sql: &mut Sql| {
        sql.push("SELECT id FROM encounters WHERE organization_id = ")
            .bind(organization_id)
            .push(" AND candidate_id = ")
            .bind(candidate_id)
            .push(
                " UNION ALL SELECT encounter_id FROM encounter_tombstones \
                 WHERE organization_id = ",
            )
            .bind(organization_id)
            .push(" AND candidate_id = ")
            .bind(candidate_id);
    };
    events(&mut sql, AuditResource::Candidate);
    sql.push(" AND resource_id = ").bind(candidate_id);
    sql.push(" UNION ALL ");
    sql.push_rows_per_id(
        |sql| events(sql, AuditResource::Encounter),
        "resource_id",
        encounter_ids,
    );
    sql.push(" UNION ALL SELECT ")
        .push(COLUMNS)
        .push(" FROM (SELECT DISTINCT run_id FROM (SELECT ");
    push_run_holding(&mut sql, organization_id, AuditResource::Candidate, |sql| {
        sql.bind(candidate_id);
    });
    sql.push(" AS run_id UNION ALL SELECT ");
    push_run_holding(&mut sql, organization_id, AuditResource::Encounter, |sql| {
        sql.push("e.id");
    });
    sql.push(" AS run_id FROM (");
    encounter_ids(&mut sql);
    sql.push(") AS e) AS held) AS runs JOIN audit_events ON audit_events.id = runs.run_id");
    sql.push(" ORDER BY id");
    sql.statement()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_are_a_json_array_of_names() {
        assert_eq!(changed_fields_json(&[]), "[]");
        assert_eq!(
            changed_fields_json(&["display_name", "email"]),
            r#"["display_name","email"]"#
        );
    }

    #[test]
    fn runs_take_consecutive_creations_of_one_actor_and_resource_type() {
        let created = |id, candidate, note| {
            Event::encounter(id, candidate, AuditAction::Create)
                .fields(["score"])
                .field_if(note, "note")
        };
        let runs: Runs<&str> = [
            ("key", created(10, 1, false)),
            ("key", created(11, 1, true)),
            ("key", created(12, 2, false)),
            // Not consecutive: a run of its own.
            ("key", created(14, 2, false)),
            // Another actor.
            ("other", created(15, 2, false)),
            // Another resource type, then not a creation.
            ("other", Event::candidate(16, AuditAction::Create)),
            ("other", Event::candidate(17, AuditAction::Update)),
            ("other", Event::candidate(18, AuditAction::Update)),
        ]
        .into_iter()
        .collect();
        let events = runs.into_events();
        let summary: Vec<_> = events
            .iter()
            .map(|(actor, e)| {
                (
                    *actor,
                    e.resource_id,
                    e.last_resource_id,
                    e.changed_fields.clone(),
                    e.subject_candidate_id,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("key", 10, Some(12), vec!["score", "note"], None),
                ("key", 14, None, vec!["score"], Some(2)),
                ("other", 15, None, vec!["score"], Some(2)),
                ("other", 16, None, vec![], Some(16)),
                ("other", 17, None, vec![], Some(17)),
                ("other", 18, None, vec![], Some(18)),
            ]
        );
        // A run of one candidate keeps its subject.
        let events = [("key", created(3, 9, false)), ("key", created(4, 9, false))]
            .into_iter()
            .collect::<Runs<_>>()
            .into_events();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1.subject_candidate_id, Some(9));
        assert_eq!(events[0].1.last_resource_id, Some(4));
    }

    #[test]
    fn candidate_and_encounter_events_name_their_subject() {
        let event = Event::candidate(7, AuditAction::Erase).fields(["email"]);
        assert_eq!(event.subject_candidate_id, Some(7));
        assert_eq!(event.resource_type, AuditResource::Candidate);
        let event = Event::encounter(3, 7, AuditAction::Create)
            .field_if(true, "score")
            .field_if(false, "note");
        assert_eq!(event.subject_candidate_id, Some(7));
        assert_eq!(event.changed_fields, vec!["score"]);
        assert_eq!(
            Event::touchpoint(1, AuditAction::Archive).subject_candidate_id,
            None
        );
    }
}
