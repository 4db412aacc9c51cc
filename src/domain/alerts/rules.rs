//! Alert rules: what the service watches.
//!
//! - `detractor`: one score at or below `threshold` (default 6) on the
//!   touchpoints the rule watches raises an alert, in the transaction that
//!   records the encounter.
//! - `drop`: a group's cNPS (per touchpoint, kind, channel or stage, or all
//!   together) over the last complete period (day, ISO week or month) is
//!   significantly lower than over the `baseline_periods` before it
//!   (adjusted-Wald variances, a one-sided z test at 5%). Periods with fewer
//!   than `min_scores` scores (and never fewer than the organization's
//!   `min_group_size`) do not alert.
//!
//! `touchpoint_ids`, `kinds` and `stages` choose the touchpoints a rule
//! watches (empty: all; several: all must hold).

use std::collections::BTreeSet;

use entity::{
    alert_rule,
    enums::{AuditAction, Kind, Stage},
};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, Set,
};

use crate::domain::{
    pagination::{Page, PageRequest},
    patch::Patch,
    privacy::audit::{self, Actor, Event},
    validate, DomainError, DomainResult,
};

/// The most rules an organization may have.
pub const RULES_MAX: u64 = 100;
/// The most values in one of a rule's filters.
pub const FILTER_MAX: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Detractor,
    Drop,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::Detractor => "detractor",
            RuleKind::Drop => "drop",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [RuleKind::Detractor, RuleKind::Drop]
            .into_iter()
            .find(|k| k.as_str() == value)
    }
}

/// What a drop rule compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    All,
    Touchpoint,
    Kind,
    Channel,
    Stage,
}

impl Grouping {
    pub fn as_str(self) -> &'static str {
        match self {
            Grouping::All => "all",
            Grouping::Touchpoint => "touchpoint",
            Grouping::Kind => "kind",
            Grouping::Channel => "channel",
            Grouping::Stage => "stage",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Grouping::All,
            Grouping::Touchpoint,
            Grouping::Kind,
            Grouping::Channel,
            Grouping::Stage,
        ]
        .into_iter()
        .find(|g| g.as_str() == value)
    }
}

/// The calendar period a drop rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn as_str(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Period::Day, Period::Week, Period::Month]
            .into_iter()
            .find(|p| p.as_str() == value)
    }
}

/// A rule, read from its row.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub kind: RuleKind,
    pub enabled: bool,
    pub threshold: i32,
    pub group_by: Grouping,
    pub touchpoint_ids: BTreeSet<i64>,
    pub kinds: BTreeSet<Kind>,
    pub stages: BTreeSet<Stage>,
    pub period: Period,
    pub baseline_periods: i32,
    pub min_scores: i32,
    pub cusum: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl Rule {
    pub fn from_row(row: alert_rule::Model) -> DomainResult<Self> {
        let corrupt = || DomainError::internal(format!("alert rule {} does not read", row.id));
        Ok(Rule {
            id: row.id,
            organization_id: row.organization_id,
            kind: RuleKind::parse(&row.kind).ok_or_else(corrupt)?,
            group_by: Grouping::parse(&row.group_by).ok_or_else(corrupt)?,
            period: Period::parse(&row.period).ok_or_else(corrupt)?,
            touchpoint_ids: serde_json::from_str(&row.touchpoint_ids).map_err(|_| corrupt())?,
            kinds: from_values(&row.kinds).ok_or_else(corrupt)?,
            stages: from_values(&row.stages).ok_or_else(corrupt)?,
            name: row.name,
            enabled: row.enabled,
            threshold: row.threshold,
            baseline_periods: row.baseline_periods,
            min_scores: row.min_scores,
            cusum: row.cusum,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    /// Whether the rule watches a touchpoint of this id, kind and stage.
    pub fn watches(&self, touchpoint_id: i64, kind: Kind, stage: Stage) -> bool {
        (self.touchpoint_ids.is_empty() || self.touchpoint_ids.contains(&touchpoint_id))
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
            && (self.stages.is_empty() || self.stages.contains(&stage))
    }
}

fn from_values<E: ActiveEnum<Value = String> + Ord>(stored: &str) -> Option<BTreeSet<E>> {
    let values: Vec<String> = serde_json::from_str(stored).ok()?;
    values
        .into_iter()
        .map(|v| E::try_from_value(&v).ok())
        .collect()
}

fn to_values<E: ActiveEnum<Value = String>>(values: &BTreeSet<E>) -> String {
    serde_json::to_string(&values.iter().map(|v| v.to_value()).collect::<Vec<_>>())
        .expect("strings serialize")
}

/// The settings of a rule to create or the result of a change.
#[derive(Debug, Clone)]
pub struct RuleSettings {
    pub name: String,
    pub kind: RuleKind,
    pub enabled: bool,
    pub threshold: i32,
    pub group_by: Grouping,
    pub touchpoint_ids: BTreeSet<i64>,
    pub kinds: BTreeSet<Kind>,
    pub stages: BTreeSet<Stage>,
    pub period: Period,
    pub baseline_periods: i32,
    pub min_scores: i32,
    pub cusum: bool,
}

impl RuleSettings {
    /// A rule of `kind` with the defaults: threshold 6, per touchpoint,
    /// weekly against the 4 weeks before, at least 30 scores.
    pub fn defaults(name: String, kind: RuleKind) -> Self {
        RuleSettings {
            name,
            kind,
            enabled: true,
            threshold: 6,
            group_by: Grouping::Touchpoint,
            touchpoint_ids: BTreeSet::new(),
            kinds: BTreeSet::new(),
            stages: BTreeSet::new(),
            period: Period::Week,
            baseline_periods: 4,
            min_scores: 30,
            cusum: false,
        }
    }

    /// The rule's row, as stored.
    fn row(
        self,
        organization_id: i64,
        created_at: chrono::DateTime<chrono::Utc>,
        updated_at: chrono::DateTime<chrono::Utc>,
    ) -> alert_rule::ActiveModel {
        alert_rule::ActiveModel {
            organization_id: Set(organization_id),
            name: Set(self.name),
            kind: Set(self.kind.as_str().to_owned()),
            enabled: Set(self.enabled),
            threshold: Set(self.threshold),
            group_by: Set(self.group_by.as_str().to_owned()),
            touchpoint_ids: Set(serde_json::to_string(&self.touchpoint_ids).expect("ids")),
            kinds: Set(to_values(&self.kinds)),
            stages: Set(to_values(&self.stages)),
            period: Set(self.period.as_str().to_owned()),
            baseline_periods: Set(self.baseline_periods),
            min_scores: Set(self.min_scores),
            cusum: Set(self.cusum),
            created_at: Set(created_at),
            updated_at: Set(updated_at),
            ..Default::default()
        }
    }

    fn check(mut self) -> DomainResult<Self> {
        self.name = validate::required_text("name", &self.name, validate::NAME_MAX)?;
        if !(0..=10).contains(&self.threshold) {
            return Err(DomainError::invalid(
                "threshold",
                "must be between 0 and 10",
            ));
        }
        if !(1..=52).contains(&self.baseline_periods) {
            return Err(DomainError::invalid(
                "baseline_periods",
                "must be between 1 and 52",
            ));
        }
        if !(1..=100_000).contains(&self.min_scores) {
            return Err(DomainError::invalid(
                "min_scores",
                "must be between 1 and 100000",
            ));
        }
        if self.touchpoint_ids.len() > FILTER_MAX {
            return Err(DomainError::invalid(
                "touchpoint_ids",
                format!("at most {FILTER_MAX} touchpoints"),
            ));
        }
        Ok(self)
    }
}

impl From<&Rule> for RuleSettings {
    fn from(rule: &Rule) -> Self {
        RuleSettings {
            name: rule.name.clone(),
            kind: rule.kind,
            enabled: rule.enabled,
            threshold: rule.threshold,
            group_by: rule.group_by,
            touchpoint_ids: rule.touchpoint_ids.clone(),
            kinds: rule.kinds.clone(),
            stages: rule.stages.clone(),
            period: rule.period,
            baseline_periods: rule.baseline_periods,
            min_scores: rule.min_scores,
            cusum: rule.cusum,
        }
    }
}

/// Changes to a rule (its kind stays).
#[derive(Debug, Default)]
pub struct RuleChanges {
    pub name: Patch<String>,
    pub enabled: Patch<bool>,
    pub threshold: Patch<i32>,
    pub group_by: Patch<Grouping>,
    pub touchpoint_ids: Patch<BTreeSet<i64>>,
    pub kinds: Patch<BTreeSet<Kind>>,
    pub stages: Patch<BTreeSet<Stage>>,
    pub period: Patch<Period>,
    pub baseline_periods: Patch<i32>,
    pub min_scores: Patch<i32>,
    pub cusum: Patch<bool>,
}

/// Refuses a rule naming a touchpoint the organization does not have: it
/// would watch nothing, silently.
async fn check_touchpoints(
    db: &impl ConnectionTrait,
    organization_id: i64,
    ids: &BTreeSet<i64>,
) -> DomainResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found = entity::touchpoint::Entity::find()
        .filter(entity::touchpoint::Column::OrganizationId.eq(organization_id))
        .filter(entity::touchpoint::Column::Id.is_in(ids.iter().copied()))
        .count(db)
        .await?;
    if found as usize != ids.len() {
        return Err(DomainError::UnknownReference {
            field: "touchpoint_ids",
            resource: "touchpoint",
        });
    }
    Ok(())
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    settings: RuleSettings,
) -> DomainResult<Rule> {
    let settings = settings.check()?;
    let txn = crate::domain::begin_write(db).await?;
    check_touchpoints(&txn, organization_id, &settings.touchpoint_ids).await?;
    let count = alert_rule::Entity::find()
        .filter(alert_rule::Column::OrganizationId.eq(organization_id))
        .count(&txn)
        .await?;
    if count >= RULES_MAX {
        return Err(DomainError::invalid(
            "name",
            format!("an organization has at most {RULES_MAX} alert rules"),
        ));
    }
    let now = crate::domain::now();
    let row = settings.row(organization_id, now, now).insert(&txn).await?;
    let event = Event::alert_rule(row.id, AuditAction::Create).fields(["name", "kind"]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Rule::from_row(row)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn get(db: &impl ConnectionTrait, organization_id: i64, id: i64) -> DomainResult<Rule> {
    let row = alert_rule::Entity::find_by_id(id)
        .filter(alert_rule::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "alert rule",
        })?;
    Rule::from_row(row)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    page: PageRequest,
) -> DomainResult<Page<Rule>> {
    let select =
        alert_rule::Entity::find().filter(alert_rule::Column::OrganizationId.eq(organization_id));
    let page = page
        .fetch(db, select, alert_rule::Column::Id, |row| row.id)
        .await?;
    let items = page
        .items
        .into_iter()
        .map(Rule::from_row)
        .collect::<DomainResult<_>>()?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// The enabled rules of a kind, of one organization or of all.
pub async fn enabled(
    db: &impl ConnectionTrait,
    organization_id: Option<i64>,
    kind: RuleKind,
) -> DomainResult<Vec<Rule>> {
    let mut select = alert_rule::Entity::find()
        .filter(alert_rule::Column::Kind.eq(kind.as_str()))
        .filter(alert_rule::Column::Enabled.eq(true));
    if let Some(id) = organization_id {
        select = select.filter(alert_rule::Column::OrganizationId.eq(id));
    }
    select
        .all(db)
        .await?
        .into_iter()
        .map(Rule::from_row)
        .collect()
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    changes: RuleChanges,
) -> DomainResult<Rule> {
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    let mut next = RuleSettings::from(&current);
    let mut fields = Vec::new();
    macro_rules! apply {
        ($($field:ident),+) => {
            $(
                if let Patch::Set(value) = changes.$field {
                    if value != next.$field {
                        fields.push(stringify!($field));
                    }
                    next.$field = value;
                }
            )+
        };
    }
    apply!(
        name,
        enabled,
        threshold,
        group_by,
        touchpoint_ids,
        kinds,
        stages,
        period,
        baseline_periods,
        min_scores,
        cusum
    );
    let next = next.check()?;
    check_touchpoints(&txn, organization_id, &next.touchpoint_ids).await?;
    let now = crate::domain::now();
    let mut row = next.row(organization_id, current.created_at, now);
    row.id = Set(current.id);
    let row = row.update(&txn).await?;
    let event = Event::alert_rule(id, AuditAction::Update).fields(fields);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Rule::from_row(row)
}

/// Deletes a rule and its alerts.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<()> {
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    entity::alert::Entity::delete_many()
        .filter(entity::alert::Column::RuleId.eq(current.id))
        .exec(&txn)
        .await?;
    alert_rule::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    let now = crate::domain::now();
    audit::record(
        &txn,
        organization_id,
        actor,
        now,
        Event::alert_rule(id, AuditAction::Delete),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
