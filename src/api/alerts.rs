//! Alert rules (`/api/v1/alert-rules`) and the alerts they raise
//! (`/api/v1/alerts`).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};
use poem::web::Data;
use poem_openapi::types::Example;
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Enum, Object, OpenApi,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    error::ApiError,
    nullable::Nullable,
    page::{page_request, page_type},
    patch::{change, required},
    payload::JsonBody,
    security::ApiKeyAuth,
    vocabulary::{Kind, Stage},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    alerts::{
        drop,
        lifecycle::{self, AlertFilter, Status},
        rules::{self, Grouping, Period, Rule, RuleChanges, RuleKind, RuleSettings},
    },
    analytics::perception::date_of_day,
    DomainError,
};

/// What a rule watches for.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AlertRuleKind {
    /// One score at or below `threshold`: an alert per encounter, raised as
    /// it is recorded.
    Detractor,
    /// A group's cNPS over the last complete period significantly below
    /// its baseline: evaluated on a schedule and on demand.
    Drop,
}

/// What a drop rule compares.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AlertGroupBy {
    /// All watched touchpoints together.
    All,
    /// Each touchpoint.
    Touchpoint,
    /// Each touchpoint kind.
    Kind,
    /// Each channel.
    Channel,
    /// Each journey stage.
    Stage,
}

/// The period a drop rule evaluates.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AlertPeriod {
    /// Yesterday (UTC), against the days before.
    Day,
    /// Last ISO week, against the weeks before.
    Week,
    /// Last calendar month, against the months before.
    Month,
}

/// Where an alert stands.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody has taken it yet.
    Open,
    /// Somebody is on it.
    Acknowledged,
    /// Over: resolved by a user, or (a drop) by a later period without a
    /// drop.
    Resolved,
}

impl From<AlertRuleKind> for RuleKind {
    fn from(value: AlertRuleKind) -> Self {
        match value {
            AlertRuleKind::Detractor => RuleKind::Detractor,
            AlertRuleKind::Drop => RuleKind::Drop,
        }
    }
}

impl From<RuleKind> for AlertRuleKind {
    fn from(value: RuleKind) -> Self {
        match value {
            RuleKind::Detractor => AlertRuleKind::Detractor,
            RuleKind::Drop => AlertRuleKind::Drop,
        }
    }
}

impl From<AlertGroupBy> for Grouping {
    fn from(value: AlertGroupBy) -> Self {
        match value {
            AlertGroupBy::All => Grouping::All,
            AlertGroupBy::Touchpoint => Grouping::Touchpoint,
            AlertGroupBy::Kind => Grouping::Kind,
            AlertGroupBy::Channel => Grouping::Channel,
            AlertGroupBy::Stage => Grouping::Stage,
        }
    }
}

impl From<Grouping> for AlertGroupBy {
    fn from(value: Grouping) -> Self {
        match value {
            Grouping::All => AlertGroupBy::All,
            Grouping::Touchpoint => AlertGroupBy::Touchpoint,
            Grouping::Kind => AlertGroupBy::Kind,
            Grouping::Channel => AlertGroupBy::Channel,
            Grouping::Stage => AlertGroupBy::Stage,
        }
    }
}

impl From<AlertPeriod> for Period {
    fn from(value: AlertPeriod) -> Self {
        match value {
            AlertPeriod::Day => Period::Day,
            AlertPeriod::Week => Period::Week,
            AlertPeriod::Month => Period::Month,
        }
    }
}

impl From<Period> for AlertPeriod {
    fn from(value: Period) -> Self {
        match value {
            Period::Day => AlertPeriod::Day,
            Period::Week => AlertPeriod::Week,
            Period::Month => AlertPeriod::Month,
        }
    }
}

/// An alert rule.
#[derive(Object)]
pub struct AlertRule {
    /// The rule's id.
    pub id: i64,
    /// What it is called.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub kind: AlertRuleKind,
    /// Whether it is evaluated.
    pub enabled: bool,
    /// Detractor rules: the highest score that alerts, 0 to 10.
    pub threshold: i32,
    /// Drop rules: the groups compared.
    pub group_by: AlertGroupBy,
    /// Only these touchpoints (empty: all).
    #[oai(validator(max_items = 500))]
    pub touchpoint_ids: Vec<i64>,
    /// Only touchpoints of these kinds (empty: all).
    #[oai(validator(max_items = 3))]
    pub kinds: Vec<Kind>,
    /// Only touchpoints of these stages (empty: all).
    #[oai(validator(max_items = 8))]
    pub stages: Vec<Stage>,
    /// Drop rules: the period evaluated.
    pub period: AlertPeriod,
    /// Drop rules: how many periods before it make the baseline, 1 to 52.
    pub baseline_periods: i32,
    /// Drop rules: the fewest scores the period and the baseline each need
    /// (never fewer than the organization's `min_group_size`).
    pub min_scores: i32,
    /// Drop rules: whether a two-sided CUSUM also watches for slow drifts.
    pub cusum: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<Rule> for AlertRule {
    fn from(rule: Rule) -> Self {
        AlertRule {
            id: rule.id,
            name: rule.name,
            kind: rule.kind.into(),
            enabled: rule.enabled,
            threshold: rule.threshold,
            group_by: rule.group_by.into(),
            touchpoint_ids: rule.touchpoint_ids.into_iter().collect(),
            kinds: rule.kinds.into_iter().map(Into::into).collect(),
            stages: rule.stages.into_iter().map(Into::into).collect(),
            period: rule.period.into(),
            baseline_periods: rule.baseline_periods,
            min_scores: rule.min_scores,
            cusum: rule.cusum,
            created_at: rule.created_at,
            updated_at: rule.updated_at,
        }
    }
}

/// A new alert rule; absent fields take their defaults.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateAlertRule {
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    pub name: String,
    pub kind: AlertRuleKind,
    /// Default `true`.
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    /// Detractor rules: 0 to 10 (default 6: the detractors).
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub threshold: Option<i32>,
    /// Drop rules: default `touchpoint`.
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub group_by: Option<AlertGroupBy>,
    /// Only these touchpoints (default all).
    #[oai(validator(max_items = 500))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub touchpoint_ids: Option<Vec<i64>>,
    /// Only touchpoints of these kinds (default all).
    #[oai(validator(max_items = 3))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub kinds: Option<Vec<Kind>>,
    /// Only touchpoints of these stages (default all).
    #[oai(validator(max_items = 8))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub stages: Option<Vec<Stage>>,
    /// Drop rules: default `week`.
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub period: Option<AlertPeriod>,
    /// Drop rules: 1 to 52 (default 4).
    #[oai(validator(minimum(value = "1"), maximum(value = "52")))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub baseline_periods: Option<i32>,
    /// Drop rules: 1 to 100,000 (default 30).
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub min_scores: Option<i32>,
    /// Drop rules: also watch for slow drifts with a two-sided CUSUM over
    /// the last `baseline_periods` periods, each standardized against the
    /// `baseline_periods` before them (k = 0.5, h = 4); default `false`.
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub cusum: Option<bool>,
}

impl Example for CreateAlertRule {
    fn example() -> Self {
        CreateAlertRule {
            name: "Interview detractors".to_owned(),
            kind: AlertRuleKind::Detractor,
            enabled: None,
            threshold: Some(6),
            group_by: None,
            touchpoint_ids: None,
            kinds: None,
            stages: Some(vec![Stage::Interview]),
            period: None,
            baseline_periods: None,
            min_scores: None,
            cusum: None,
        }
    }
}

/// Changes to a rule; absent fields stay as they are (its kind stays).
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateAlertRule {
    /// 1 to 200 characters.
    #[oai(validator(min_length = 1, max_length = 200))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub name: Option<String>,
    /// Whether it is evaluated.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    /// 0 to 10.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub threshold: Option<i32>,
    /// The groups compared.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub group_by: Option<AlertGroupBy>,
    /// Only these touchpoints (empty: all).
    #[oai(validator(max_items = 500))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub touchpoint_ids: Option<Vec<i64>>,
    /// Only these kinds (empty: all).
    #[oai(validator(max_items = 3))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub kinds: Option<Vec<Kind>>,
    /// Only these stages (empty: all).
    #[oai(validator(max_items = 8))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub stages: Option<Vec<Stage>>,
    /// The period evaluated.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub period: Option<AlertPeriod>,
    /// 1 to 52.
    #[oai(validator(minimum(value = "1"), maximum(value = "52")))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub baseline_periods: Option<i32>,
    /// 1 to 100,000.
    #[oai(validator(minimum(value = "1"), maximum(value = "100000")))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub min_scores: Option<i32>,
    /// The slow-drift CUSUM, on or off.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub cusum: Option<bool>,
}

impl Example for UpdateAlertRule {
    fn example() -> Self {
        UpdateAlertRule {
            name: None,
            enabled: Some(false),
            threshold: None,
            group_by: None,
            touchpoint_ids: None,
            kinds: None,
            stages: None,
            period: None,
            baseline_periods: None,
            min_scores: None,
            cusum: None,
        }
    }
}

/// The figures behind an alert: a detractor's score, or a drop's test.
#[derive(Object)]
pub struct AlertDetails {
    /// Detractor: the score.
    pub score: Nullable<i32>,
    /// Detractor: the rule's threshold then.
    pub threshold: Nullable<i32>,
    /// Detractor: the encounter's touchpoint.
    pub touchpoint_id: Nullable<i64>,
    /// Detractor: the encounter's candidate.
    pub candidate_id: Nullable<i64>,
    /// Drop: the rule's grouping then.
    #[oai(validator(max_length = 16))]
    pub group_by: Nullable<String>,
    /// Drop: the rule's period then.
    #[oai(validator(max_length = 8))]
    pub period: Nullable<String>,
    /// Drop: the day after the period.
    pub period_end: Nullable<NaiveDate>,
    /// Drop: the first day of the baseline.
    pub baseline_start: Nullable<NaiveDate>,
    /// Drop: scores in the period.
    pub scored: Nullable<i64>,
    /// Drop: the period's cNPS.
    pub cnps: Nullable<f64>,
    /// Drop: scores in the baseline.
    pub baseline_scored: Nullable<i64>,
    /// Drop: the baseline's cNPS.
    pub baseline_cnps: Nullable<f64>,
    /// Drop: the z statistic (negative: lower than the baseline).
    pub z: Nullable<f64>,
    /// Drop: the one-sided p-value of the z test (below 0.05 when `signal`
    /// names `z`).
    pub p_value: Nullable<f64>,
    /// Drop: what found it: `z` (the z test), `cusum` (the slow-drift
    /// CUSUM) or `z+cusum`.
    #[oai(validator(max_length = 8))]
    pub signal: Nullable<String>,
    /// Drop with `cusum`: the lower CUSUM after the period (above 4:
    /// a drift down).
    pub cusum_lower: Nullable<f64>,
    /// Drop with `cusum`: the upper CUSUM after the period.
    pub cusum_upper: Nullable<f64>,
}

impl AlertDetails {
    pub(crate) fn parse(stored: &str) -> Result<Self, ApiError> {
        let value: serde_json::Value = serde_json::from_str(stored)
            .map_err(|_| DomainError::internal("an alert's details are not JSON"))?;
        Self::from_value(value)
    }

    /// The details as stored (each kind of alert keeps its own fields),
    /// with the others `null`.
    pub(crate) fn from_value(mut value: serde_json::Value) -> Result<Self, ApiError> {
        use poem_openapi::types::ParseFromJSON;
        if let serde_json::Value::Object(fields) = &mut value {
            for name in lifecycle::DETAIL_KEYS {
                fields.entry(name).or_insert(serde_json::Value::Null);
            }
            // Kept by alerts raised before the details were completed.
            fields.remove("period_start");
        }
        Ok(AlertDetails::parse_from_json(Some(value))
            .map_err(|_| DomainError::internal("an alert's details do not read"))?)
    }
}

/// An alert.
#[derive(Object)]
pub struct Alert {
    /// The alert's id.
    pub id: i64,
    /// The rule that raised it.
    pub rule_id: i64,
    /// `encounter:<id>` for a detractor alert; for a drop, the group (a
    /// touchpoint id, kind, channel or stage, or `all`).
    #[oai(validator(max_length = 64))]
    pub group: String,
    /// The first day of the period it is about (a detractor: the
    /// encounter's day).
    pub period_start: NaiveDate,
    /// A detractor alert's encounter.
    pub encounter_id: Nullable<i64>,
    pub status: AlertStatus,
    pub details: AlertDetails,
    /// When it was raised.
    pub opened_at: DateTime<Utc>,
    /// When somebody took it.
    pub acknowledged_at: Nullable<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Nullable<DateTime<Utc>>,
}

impl Alert {
    fn new(model: entity::alert::Model) -> Result<Self, ApiError> {
        let status = match Status::parse(&model.status) {
            Some(Status::Open) => AlertStatus::Open,
            Some(Status::Acknowledged) => AlertStatus::Acknowledged,
            Some(Status::Resolved) => AlertStatus::Resolved,
            None => return Err(DomainError::internal("an alert's status does not read").into()),
        };
        Ok(Alert {
            id: model.id,
            rule_id: model.rule_id,
            group: model.group_key,
            period_start: date_of_day(model.period_start),
            encounter_id: model.encounter_id.into(),
            status,
            details: AlertDetails::parse(&model.details)?,
            opened_at: model.opened_at,
            acknowledged_at: model.acknowledged_at.into(),
            resolved_at: model.resolved_at.into(),
        })
    }
}

fn alerts(models: Vec<entity::alert::Model>) -> Result<Vec<Alert>, ApiError> {
    models.into_iter().map(Alert::new).collect()
}

/// An evaluation asked for.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct EvaluateAlertRule {
    /// Evaluate the last complete period before this day (default today,
    /// UTC; at most tomorrow): a past period can be checked again.
    #[serde(default)]
    #[oai(nullable)]
    pub as_of: Option<NaiveDate>,
}

impl Example for EvaluateAlertRule {
    fn example() -> Self {
        EvaluateAlertRule {
            as_of: NaiveDate::from_ymd_opt(2026, 11, 2),
        }
    }
}

/// What an evaluation did.
#[derive(Object)]
pub struct AlertEvaluation {
    /// The first day of the period evaluated.
    pub period_start: NaiveDate,
    /// The day after it.
    pub period_end: NaiveDate,
    /// The first day of the baseline.
    pub baseline_start: NaiveDate,
    /// Groups with enough scores in the period and the baseline to test.
    pub groups_tested: i64,
    /// Alerts opened now (an alert already open for a group and period is
    /// not opened again).
    #[oai(validator(max_items = 20000))]
    pub opened: Vec<Alert>,
    /// Earlier alerts resolved because the period shows no drop.
    #[oai(validator(max_items = 20000))]
    pub resolved: Vec<Alert>,
}

page_type! {
    /// One page of alert rules.
    AlertRulePage of AlertRule
}

/// One page of alerts.
#[derive(Object)]
pub struct AlertPage {
    /// The rows of this page.
    #[oai(validator(max_items = 500))]
    pub items: Vec<Alert>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    #[oai(validator(max_length = 128))]
    pub next_cursor: Nullable<String>,
}

#[derive(ApiResponse)]
pub enum RuleCreated {
    /// The rule.
    #[oai(status = 201)]
    Created(Json<AlertRule>),
}

#[derive(ApiResponse)]
pub enum RuleResponse {
    /// The rule.
    #[oai(status = 200)]
    Ok(Json<AlertRule>),
}

#[derive(ApiResponse)]
pub enum RuleList {
    /// One page of rules, in creation order.
    #[oai(status = 200)]
    Ok(Json<AlertRulePage>),
}

#[derive(ApiResponse)]
pub enum RuleDeleted {
    /// Deleted, with its alerts.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum EvaluationResponse {
    /// What the evaluation did.
    #[oai(status = 200)]
    Ok(Json<AlertEvaluation>),
}

#[derive(ApiResponse)]
pub enum AlertResponse {
    /// The alert.
    #[oai(status = 200)]
    Ok(Json<Alert>),
}

#[derive(ApiResponse)]
pub enum AlertList {
    /// One page of alerts, newest first.
    #[oai(status = 200)]
    Ok(Json<AlertPage>),
}

/// The body's JSON is read with serde, so the document's `maxItems` are
/// checked here: at most 500 touchpoints, 3 kinds, 8 stages.
fn check_filters(
    touchpoint_ids: &Option<Vec<i64>>,
    kinds: &Option<Vec<Kind>>,
    stages: &Option<Vec<Stage>>,
) -> Result<(), ApiError> {
    for (field, length, max) in [
        (
            "touchpoint_ids",
            touchpoint_ids.as_ref().map_or(0, Vec::len),
            500,
        ),
        ("kinds", kinds.as_ref().map_or(0, Vec::len), 3),
        ("stages", stages.as_ref().map_or(0, Vec::len), 8),
    ] {
        if length > max {
            return Err(ApiError::validation(
                field,
                format!("must hold at most {max} values"),
            ));
        }
    }
    Ok(())
}

fn set<T, U: From<T> + Ord>(values: Option<Vec<T>>) -> BTreeSet<U> {
    values
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect()
}

#[derive(Default)]
pub struct AlertsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Alerts")]
impl AlertsApi {
    /// Create an alert rule
    ///
    /// `detractor`: a score at or below `threshold` on a watched touchpoint
    /// opens an alert as it is recorded. `drop`: a group's cNPS over the
    /// last complete `period` significantly below the `baseline_periods`
    /// before it (one-sided z test on the adjusted-Wald figures, 5%), with
    /// at least `min_scores` on each side, opens an alert; evaluated every
    /// `ALERT_EVALUATION_SECONDS` and on demand. Admin only.
    #[oai(
        path = "/alert-rules",
        method = "post",
        operation_id = "create_alert_rule"
    )]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The rule to create.
        body: JsonBody<CreateAlertRule>,
    ) -> Result<RuleCreated, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let body = body.0;
        check_filters(&body.touchpoint_ids, &body.kinds, &body.stages)?;
        let mut settings = RuleSettings::defaults(body.name, body.kind.into());
        if let Some(enabled) = body.enabled {
            settings.enabled = enabled;
        }
        if let Some(threshold) = body.threshold {
            settings.threshold = threshold;
        }
        if let Some(group_by) = body.group_by {
            settings.group_by = group_by.into();
        }
        settings.touchpoint_ids = body
            .touchpoint_ids
            .unwrap_or_default()
            .into_iter()
            .collect();
        settings.kinds = set(body.kinds);
        settings.stages = set(body.stages);
        if let Some(period) = body.period {
            settings.period = period.into();
        }
        if let Some(baseline) = body.baseline_periods {
            settings.baseline_periods = baseline;
        }
        if let Some(min) = body.min_scores {
            settings.min_scores = min;
        }
        if let Some(cusum) = body.cusum {
            settings.cusum = cusum;
        }
        let rule = rules::create(*db, &auth.actor(), auth.0.organization_id, settings).await?;
        Ok(RuleCreated::Created(Json(rule.into())))
    }

    /// List alert rules
    ///
    /// The organization's rules. Admin only.
    #[oai(
        path = "/alert-rules",
        method = "get",
        operation_id = "list_alert_rules"
    )]
    async fn list_rules(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<RuleList, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let page = rules::list(*db, auth.0.organization_id, page_request(&cursor, &limit)?).await?;
        Ok(RuleList::Ok(Json(page.into())))
    }

    /// Get an alert rule
    ///
    /// One rule. Admin only.
    #[oai(
        path = "/alert-rules/:id",
        method = "get",
        operation_id = "get_alert_rule"
    )]
    async fn get_rule(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert rule id.
        id: Path<i64>,
    ) -> Result<RuleResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let rule = rules::get(*db, auth.0.organization_id, id.0).await?;
        Ok(RuleResponse::Ok(Json(rule.into())))
    }

    /// Update an alert rule
    ///
    /// Changes the fields present in the body; its kind stays. Admin only.
    #[oai(
        path = "/alert-rules/:id",
        method = "patch",
        operation_id = "update_alert_rule"
    )]
    async fn update_rule(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert rule id.
        id: Path<i64>,
        /// The fields to change.
        body: JsonBody<UpdateAlertRule>,
    ) -> Result<RuleResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let body = body.0;
        check_filters(&body.touchpoint_ids, &body.kinds, &body.stages)?;
        let changes = RuleChanges {
            name: change(body.name),
            enabled: change(body.enabled),
            threshold: change(body.threshold),
            group_by: change(body.group_by),
            touchpoint_ids: change(
                body.touchpoint_ids
                    .map(|ids| ids.into_iter().collect::<BTreeSet<i64>>()),
            ),
            kinds: change(body.kinds.map(|k| set(Some(k)))),
            stages: change(body.stages.map(|s| set(Some(s)))),
            period: change(body.period),
            baseline_periods: change(body.baseline_periods),
            min_scores: change(body.min_scores),
            cusum: change(body.cusum),
        };
        let rule = rules::update(*db, &auth.actor(), auth.0.organization_id, id.0, changes).await?;
        Ok(RuleResponse::Ok(Json(rule.into())))
    }

    /// Delete an alert rule
    ///
    /// The rule and its alerts. Admin only.
    #[oai(
        path = "/alert-rules/:id",
        method = "delete",
        operation_id = "delete_alert_rule"
    )]
    async fn delete_rule(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert rule id.
        id: Path<i64>,
    ) -> Result<RuleDeleted, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        rules::delete(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        Ok(RuleDeleted::NoContent)
    }

    /// Evaluate a drop rule now
    ///
    /// Evaluates the last complete period before `as_of` (default today)
    /// at once, as the schedule would: opens the alerts it finds (never
    /// twice for one group and period) and resolves earlier ones of groups
    /// that no longer drop. 422 for a detractor rule. Admin only.
    #[oai(
        path = "/alert-rules/:id/evaluate",
        method = "post",
        operation_id = "evaluate_alert_rule"
    )]
    async fn evaluate(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert rule id.
        id: Path<i64>,
        /// When to evaluate.
        body: JsonBody<EvaluateAlertRule>,
    ) -> Result<EvaluationResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let today = Utc::now().date_naive();
        let as_of = body.0.as_of.unwrap_or(today);
        if as_of > today.succ_opt().unwrap_or(today)
            || as_of < NaiveDate::from_ymd_opt(1971, 1, 1).unwrap_or(as_of)
        {
            return Err(ApiError::validation(
                "as_of",
                "must be between 1971-01-01 and tomorrow",
            ));
        }
        let rule = rules::get(*db, auth.0.organization_id, id.0).await?;
        let evaluation = drop::evaluate(*db, &rule, as_of).await?;
        let periods = evaluation
            .periods
            .ok_or_else(|| DomainError::internal("an evaluation without its periods"))?;
        Ok(EvaluationResponse::Ok(Json(AlertEvaluation {
            period_start: date_of_day(periods.start),
            period_end: date_of_day(periods.end),
            baseline_start: date_of_day(periods.baseline_start),
            groups_tested: evaluation.groups_tested as i64,
            opened: alerts(evaluation.opened)?,
            resolved: alerts(evaluation.resolved)?,
        })))
    }

    /// List alerts
    ///
    /// The organization's alerts, newest first, filtered by `status` and
    /// `rule_id`. Every role.
    #[oai(path = "/alerts", method = "get", operation_id = "list_alerts")]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only alerts in this status.
        status: Query<Option<AlertStatus>>,
        /// Only this rule's alerts.
        rule_id: Query<Option<i64>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<AlertList, ApiError> {
        auth.0.require(Capability::Read)?;
        let filter = AlertFilter {
            status: status.0.map(|s| match s {
                AlertStatus::Open => Status::Open,
                AlertStatus::Acknowledged => Status::Acknowledged,
                AlertStatus::Resolved => Status::Resolved,
            }),
            rule_id: rule_id.0,
        };
        let page = lifecycle::list(
            *db,
            auth.0.organization_id,
            &filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(AlertList::Ok(Json(AlertPage {
            items: alerts(page.items)?,
            next_cursor: page.next_cursor.into(),
        })))
    }

    /// Get an alert
    ///
    /// One alert, with the figures behind it. Every role.
    #[oai(path = "/alerts/:id", method = "get", operation_id = "get_alert")]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert id.
        id: Path<i64>,
    ) -> Result<AlertResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let alert = lifecycle::get(*db, auth.0.organization_id, id.0).await?;
        Ok(AlertResponse::Ok(Json(Alert::new(alert)?)))
    }

    /// Acknowledge an alert
    ///
    /// Somebody is on it. Acknowledging again changes nothing; a resolved
    /// alert stays resolved (409 `alert_resolved`). Admins and recruiters.
    #[oai(
        path = "/alerts/:id/acknowledge",
        method = "post",
        operation_id = "acknowledge_alert"
    )]
    async fn acknowledge(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert id.
        id: Path<i64>,
    ) -> Result<AlertResponse, ApiError> {
        auth.0.require(Capability::FollowUpAlerts)?;
        let alert = lifecycle::transition(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            id.0,
            Status::Acknowledged,
        )
        .await?;
        Ok(AlertResponse::Ok(Json(Alert::new(alert)?)))
    }

    /// Resolve an alert
    ///
    /// It is over; `alert.resolved` goes to the webhooks. Resolving again
    /// changes nothing. Admins and recruiters.
    #[oai(
        path = "/alerts/:id/resolve",
        method = "post",
        operation_id = "resolve_alert"
    )]
    async fn resolve(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Alert id.
        id: Path<i64>,
    ) -> Result<AlertResponse, ApiError> {
        auth.0.require(Capability::FollowUpAlerts)?;
        let alert = lifecycle::transition(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            id.0,
            Status::Resolved,
        )
        .await?;
        Ok(AlertResponse::Ok(Json(Alert::new(alert)?)))
    }
}
