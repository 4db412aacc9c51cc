//! Alerts: raised by rules (a detractor's score in the write that records
//! it; a drop when the rules are evaluated), one per rule, group and
//! period at most, and followed through `open`, `acknowledged`,
//! `resolved`. Opening and resolving emit `alert.opened` and
//! `alert.resolved` webhook events in the same transaction.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{
    alert,
    enums::{AuditAction, Kind, Stage},
    touchpoint,
};
use sea_orm::{
    sea_query::{OnConflict, Query},
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, QueryTrait, Set,
};
use serde_json::{json, Value};

use crate::db::store::Executor;
use crate::domain::{
    alerts::rules::{self, Rule, RuleKind},
    analytics::perception::day_of,
    pagination::{Page, PageRequest},
    privacy::audit::{self, Actor, Event},
    webhooks::{
        self,
        events::{EventType, NewEvent},
    },
    DomainError, DomainResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Open,
    Acknowledged,
    Resolved,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Acknowledged => "acknowledged",
            Status::Resolved => "resolved",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Status::Open, Status::Acknowledged, Status::Resolved]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// An alert to open.
#[derive(Debug, Clone)]
pub struct NewAlert {
    pub rule_id: i64,
    pub rule_kind: RuleKind,
    /// `encounter:<id>` for a detractor; the group's value for a drop.
    pub group_key: String,
    pub period_start: i32,
    pub encounter_id: Option<i64>,
    pub details: Value,
}

/// Every key an alert's details may hold (`GET /api/v1/alerts/{id}` and the
/// alert events show them all, `null` where the kind has none).
pub const DETAIL_KEYS: [&str; 17] = [
    "score",
    "threshold",
    "touchpoint_id",
    "candidate_id",
    "signal",
    "group_by",
    "period",
    "period_end",
    "baseline_start",
    "scored",
    "cnps",
    "baseline_scored",
    "baseline_cnps",
    "z",
    "p_value",
    "cusum_lower",
    "cusum_upper",
];

/// `details` with every key of [`DETAIL_KEYS`] (`null` where missing) and
/// no other.
fn complete(details: Value) -> Value {
    let Value::Object(mut given) = details else {
        return details;
    };
    let mut complete = serde_json::Map::new();
    for key in DETAIL_KEYS {
        complete.insert(key.to_owned(), given.remove(key).unwrap_or(Value::Null));
    }
    Value::Object(complete)
}

/// The event of an alert, without personal data.
fn alert_event(event_type: EventType, alert: &alert::Model, rule_kind: &str) -> NewEvent {
    let details: Value = serde_json::from_str(&alert.details).unwrap_or(Value::Null);
    NewEvent {
        event_type,
        subject_candidate_id: None,
        data: json!({
            "alert_id": alert.id,
            "rule_id": alert.rule_id,
            "rule_kind": rule_kind,
            "group": alert.group_key,
            "period_start": crate::domain::analytics::perception::date_of_day(alert.period_start).to_string(),
            "encounter_id": alert.encounter_id,
            "status": alert.status,
            "details": details,
        }),
    }
}

/// Opens alerts in the caller's transaction, which must hold the
/// organization's write lock; one that exists already (same rule, group
/// and period) is left as it is. Returns those opened now.
pub(crate) async fn open(
    db: &impl Executor,
    organization_id: i64,
    now: DateTime<Utc>,
    new: Vec<NewAlert>,
) -> DomainResult<Vec<alert::Model>> {
    let mut opened = Vec::new();
    let mut events = Vec::new();
    for item in new {
        let details = complete(item.details);
        let insert = alert::Entity::insert(alert::ActiveModel {
            organization_id: Set(organization_id),
            rule_id: Set(item.rule_id),
            group_key: Set(item.group_key.clone()),
            period_start: Set(item.period_start),
            encounter_id: Set(item.encounter_id),
            status: Set(Status::Open.as_str().to_owned()),
            details: Set(details.to_string()),
            opened_at: Set(now),
            acknowledged_at: Set(None),
            resolved_at: Set(None),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                alert::Column::RuleId,
                alert::Column::GroupKey,
                alert::Column::PeriodStart,
            ])
            .do_nothing()
            .to_owned(),
        )
        .into_query()
        .returning_col(alert::Column::Id)
        .to_owned();
        let rows = db.query(&insert).await?;
        let Some(row) = rows.first() else { continue };
        let model = alert::Model {
            id: row.get(alert::Column::Id)?,
            organization_id,
            rule_id: item.rule_id,
            group_key: item.group_key,
            period_start: item.period_start,
            encounter_id: item.encounter_id,
            status: Status::Open.as_str().to_owned(),
            details: details.to_string(),
            opened_at: now,
            acknowledged_at: None,
            resolved_at: None,
        };
        events.push(alert_event(
            EventType::AlertOpened,
            &model,
            item.rule_kind.as_str(),
        ));
        opened.push(model);
    }
    webhooks::events::record(db, organization_id, now, events).await?;
    Ok(opened)
}

/// A touchpoint's kind and stage, as detractor rules filter them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TouchpointClass {
    pub kind: Kind,
    pub stage: Stage,
}

/// Detractor alerts for encounters just recorded, in their transaction:
/// each scored at or below a watching rule's threshold opens one.
pub(crate) async fn detractors(
    db: &impl Executor,
    organization_id: i64,
    now: DateTime<Utc>,
    encounters: &[entity::encounter::Model],
) -> DomainResult<()> {
    if !encounters.iter().any(|e| e.score.is_some()) {
        return Ok(());
    }
    let rules = enabled_detractor_rules(db, organization_id).await?;
    if rules.is_empty() {
        return Ok(());
    }
    let classes = touchpoint_classes(
        db,
        organization_id,
        encounters.iter().map(|e| e.touchpoint_id),
    )
    .await?;
    let mut new = Vec::new();
    for encounter in encounters {
        let Some(score) = encounter.score else {
            continue;
        };
        let Some(class) = classes.get(&encounter.touchpoint_id) else {
            continue;
        };
        for rule in &rules {
            if score <= rule.threshold
                && rule.watches(encounter.touchpoint_id, class.kind, class.stage)
            {
                new.push(NewAlert {
                    rule_id: rule.id,
                    rule_kind: RuleKind::Detractor,
                    group_key: format!("encounter:{}", encounter.id),
                    period_start: day_of(encounter.occurred_at),
                    encounter_id: Some(encounter.id),
                    details: json!({
                        "score": score,
                        "threshold": rule.threshold,
                        "touchpoint_id": encounter.touchpoint_id,
                        "candidate_id": encounter.candidate_id,
                    }),
                });
            }
        }
    }
    open(db, organization_id, now, new).await?;
    Ok(())
}

/// The enabled detractor rules, read through the write's own connection.
async fn enabled_detractor_rules(
    db: &impl Executor,
    organization_id: i64,
) -> DomainResult<Vec<Rule>> {
    use entity::alert_rule;
    let select = alert_rule::Entity::find()
        .filter(alert_rule::Column::OrganizationId.eq(organization_id))
        .filter(alert_rule::Column::Kind.eq(RuleKind::Detractor.as_str()))
        .filter(alert_rule::Column::Enabled.eq(true))
        .into_query();
    let mut rules = Vec::new();
    for row in db.query(&select).await? {
        let model = alert_rule::Model {
            id: row.get(alert_rule::Column::Id)?,
            organization_id: row.get(alert_rule::Column::OrganizationId)?,
            name: row.get(alert_rule::Column::Name)?,
            kind: row.get(alert_rule::Column::Kind)?,
            enabled: row.get(alert_rule::Column::Enabled)?,
            threshold: row.get(alert_rule::Column::Threshold)?,
            group_by: row.get(alert_rule::Column::GroupBy)?,
            touchpoint_ids: row.get(alert_rule::Column::TouchpointIds)?,
            kinds: row.get(alert_rule::Column::Kinds)?,
            stages: row.get(alert_rule::Column::Stages)?,
            period: row.get(alert_rule::Column::Period)?,
            baseline_periods: row.get(alert_rule::Column::BaselinePeriods)?,
            min_scores: row.get(alert_rule::Column::MinScores)?,
            cusum: row.get(alert_rule::Column::Cusum)?,
            created_at: row.get(alert_rule::Column::CreatedAt)?,
            updated_at: row.get(alert_rule::Column::UpdatedAt)?,
        };
        rules.push(Rule::from_row(model)?);
    }
    Ok(rules)
}

async fn touchpoint_classes(
    db: &impl Executor,
    organization_id: i64,
    ids: impl Iterator<Item = i64>,
) -> DomainResult<HashMap<i64, TouchpointClass>> {
    let ids: std::collections::BTreeSet<i64> = ids.collect();
    let mut classes = HashMap::new();
    let ids: Vec<i64> = ids.into_iter().collect();
    for chunk in ids.chunks(500) {
        let select = Query::select()
            .columns([
                touchpoint::Column::Id,
                touchpoint::Column::Kind,
                touchpoint::Column::Stage,
            ])
            .from(touchpoint::Entity)
            .and_where(touchpoint::Column::OrganizationId.eq(organization_id))
            .and_where(touchpoint::Column::Id.is_in(chunk.iter().copied()))
            .to_owned();
        for row in db.query(&select).await? {
            let kind: String = row.get(touchpoint::Column::Kind)?;
            let stage: String = row.get(touchpoint::Column::Stage)?;
            let corrupt = || DomainError::internal("a touchpoint's kind or stage does not read");
            classes.insert(
                row.get(touchpoint::Column::Id)?,
                TouchpointClass {
                    kind: Kind::try_from_value(&kind).map_err(|_| corrupt())?,
                    stage: Stage::try_from_value(&stage).map_err(|_| corrupt())?,
                },
            );
        }
    }
    Ok(classes)
}

/// Filters of the alert list.
#[derive(Debug, Default)]
pub struct AlertFilter {
    pub status: Option<Status>,
    pub rule_id: Option<i64>,
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    filter: &AlertFilter,
    page: PageRequest,
) -> DomainResult<Page<alert::Model>> {
    let mut select =
        alert::Entity::find().filter(alert::Column::OrganizationId.eq(organization_id));
    if let Some(status) = filter.status {
        select = select.filter(alert::Column::Status.eq(status.as_str()));
    }
    if let Some(rule_id) = filter.rule_id {
        select = select.filter(alert::Column::RuleId.eq(rule_id));
    }
    page.fetch_newest_first(db, select, alert::Column::Id, |row| row.id)
        .await
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<alert::Model> {
    alert::Entity::find_by_id(id)
        .filter(alert::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { resource: "alert" })
}

/// Moves an alert on: `acknowledged` (from open) or `resolved` (from open
/// or acknowledged). Asking for the state it is in changes nothing; a
/// resolved alert stays resolved (409).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn transition(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    to: Status,
) -> DomainResult<alert::Model> {
    let txn = crate::domain::begin_write(db).await?;
    webhooks::endpoints::lock_organization(&txn, organization_id).await?;
    let current = get(&txn, organization_id, id).await?;
    let from = Status::parse(&current.status)
        .ok_or_else(|| DomainError::internal("an alert's status does not read"))?;
    if from == to {
        return Ok(current);
    }
    if from == Status::Resolved || to == Status::Open {
        return Err(DomainError::AlertResolved(format!(
            "alert {id} is {} and cannot become {}",
            from.as_str(),
            to.as_str()
        )));
    }
    let now = crate::domain::now();
    let rule = rules::get(&txn, organization_id, current.rule_id).await?;
    let changed = close(&txn, organization_id, current, to, now, rule.kind).await?;
    let field = match to {
        Status::Acknowledged => "acknowledged_at",
        _ => "resolved_at",
    };
    let event = Event::alert(id, AuditAction::Update).fields(["status", field]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(changed)
}

/// Writes an alert's new status (and `alert.resolved` when resolved), in
/// a transaction holding the organization's write lock.
pub(crate) async fn close(
    txn: &impl Executor,
    organization_id: i64,
    current: alert::Model,
    to: Status,
    now: DateTime<Utc>,
    rule_kind: RuleKind,
) -> DomainResult<alert::Model> {
    let mut changed = current;
    changed.status = to.as_str().to_owned();
    let mut update = Query::update();
    update
        .table(alert::Entity)
        .value(alert::Column::Status, to.as_str())
        .and_where(alert::Column::Id.eq(changed.id));
    match to {
        Status::Acknowledged => {
            changed.acknowledged_at = Some(now);
            update.value(alert::Column::AcknowledgedAt, now);
        }
        Status::Resolved => {
            changed.resolved_at = Some(now);
            update.value(alert::Column::ResolvedAt, now);
        }
        Status::Open => {}
    }
    txn.execute(&update).await?;
    if to == Status::Resolved {
        let event = alert_event(EventType::AlertResolved, &changed, rule_kind.as_str());
        webhooks::events::record(txn, organization_id, now, vec![event]).await?;
    }
    Ok(changed)
}

/// The alerts of a rule still open or acknowledged, by group.
pub(crate) async fn unresolved_by_group(
    db: &impl ConnectionTrait,
    rule_id: i64,
) -> DomainResult<BTreeMap<String, Vec<alert::Model>>> {
    let rows = alert::Entity::find()
        .filter(alert::Column::RuleId.eq(rule_id))
        .filter(alert::Column::Status.ne(Status::Resolved.as_str()))
        .all(db)
        .await?;
    let mut groups: BTreeMap<String, Vec<alert::Model>> = BTreeMap::new();
    for row in rows {
        groups.entry(row.group_key.clone()).or_default().push(row);
    }
    Ok(groups)
}

/// Alerts open or acknowledged per rule kind, and all alerts kept: for the
/// metrics.
pub async fn counts(db: &DatabaseConnection) -> DomainResult<(Vec<(String, i64)>, i64)> {
    let mut sql = crate::db::sql::Sql::new(db);
    sql.push(
        "SELECT r.kind AS kind, COUNT(*) AS alerts FROM alerts a \
         JOIN alert_rules r ON r.id = a.rule_id WHERE a.status <> ",
    )
    .bind(Status::Resolved.as_str())
    .push(" GROUP BY r.kind");
    let mut open = Vec::new();
    for row in sql.all(db).await? {
        open.push((row.try_get("", "kind")?, row.try_get("", "alerts")?));
    }
    let total = alert::Entity::find().count(db).await? as i64;
    Ok((open, total))
}
