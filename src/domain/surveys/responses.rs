//! The response-rate report: per touchpoint, stage or kind, how many
//! invitations created in a window were sent, opened and answered, the
//! response rate and the median time to answer.

use std::collections::BTreeMap;

use entity::{
    enums::{Kind, Stage, SurveyMode},
    survey_invitation, touchpoint,
};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, EntityTrait, Iterable, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::domain::{
    analytics::reports::{MinGroupSize, Window},
    DomainResult,
};

/// Invitations read per query: memory stays flat however many there are.
const PAGE: u64 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseGrouping {
    Touchpoint,
    Stage,
    Kind,
}

/// One group's response figures.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseGroup {
    /// The touchpoint id, stage or kind.
    pub group: String,
    pub invited: i64,
    /// `None` where the group is suppressed (fewer invitations than the
    /// organization's `min_group_size`): in a small group, who answered
    /// (and so, with anonymous mode, whose answer it was) could be told.
    pub sent: Option<i64>,
    pub opened: Option<i64>,
    pub answered: Option<i64>,
    /// Answered over invited, 0 to 1.
    pub response_rate: Option<f64>,
    /// The median hours from invitation to answer, over confidential
    /// answers (anonymous ones keep only the day they were answered).
    pub median_hours_to_answer: Option<f64>,
    pub suppressed: bool,
}

#[derive(Default)]
struct Tally {
    invited: i64,
    sent: i64,
    opened: i64,
    answered: i64,
    /// Seconds from invitation to answer, of confidential answers.
    seconds_to_answer: Vec<i64>,
}

/// The response figures of invitations created in the window, per group.
/// Stages and kinds are all listed, in the vocabulary's order; touchpoints
/// are those with invitations, by id.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn survey_responses(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
    grouping: ResponseGrouping,
) -> DomainResult<Vec<ResponseGroup>> {
    let min = MinGroupSize::of(db, organization_id).await?;
    let touchpoints: BTreeMap<i64, touchpoint::Model> = touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    let mut tallies: BTreeMap<String, Tally> = match grouping {
        ResponseGrouping::Touchpoint => BTreeMap::new(),
        ResponseGrouping::Stage => Stage::iter()
            .map(|s| (s.to_value(), Tally::default()))
            .collect(),
        ResponseGrouping::Kind => Kind::iter()
            .map(|k| (k.to_value(), Tally::default()))
            .collect(),
    };
    let (start, end) = (window.start(), window.end());
    let mut after = 0i64;
    loop {
        let page = survey_invitation::Entity::find()
            .filter(survey_invitation::Column::OrganizationId.eq(organization_id))
            .filter(survey_invitation::Column::CreatedAt.gte(start))
            .filter(survey_invitation::Column::CreatedAt.lt(end))
            .filter(survey_invitation::Column::Id.gt(after))
            .order_by_asc(survey_invitation::Column::Id)
            .limit(PAGE)
            .all(db)
            .await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for invitation in &page {
            let Some(touchpoint) = touchpoints.get(&invitation.touchpoint_id) else {
                continue;
            };
            let group = match grouping {
                ResponseGrouping::Touchpoint => touchpoint.id.to_string(),
                ResponseGrouping::Stage => touchpoint.stage.to_value(),
                ResponseGrouping::Kind => touchpoint.kind.to_value(),
            };
            let tally = tallies.entry(group).or_default();
            tally.invited += 1;
            tally.sent += i64::from(invitation.sent_at.is_some());
            tally.opened += i64::from(invitation.opened_at.is_some());
            if let Some(answered_at) = invitation.answered_at {
                tally.answered += 1;
                if invitation.mode == SurveyMode::Confidential {
                    let seconds = (answered_at - invitation.created_at).num_seconds().max(0);
                    tally.seconds_to_answer.push(seconds);
                }
            }
        }
        if (page.len() as u64) < PAGE {
            break;
        }
    }
    let mut groups: Vec<ResponseGroup> = tallies
        .into_iter()
        .map(|(group, tally)| figures(group, tally, min))
        .collect();
    if grouping == ResponseGrouping::Touchpoint {
        groups.sort_by_key(|g| g.group.parse::<i64>().unwrap_or(i64::MAX));
    } else {
        let order: Vec<String> = match grouping {
            ResponseGrouping::Stage => Stage::iter().map(|s| s.to_value()).collect(),
            _ => Kind::iter().map(|k| k.to_value()).collect(),
        };
        groups.sort_by_key(|g| order.iter().position(|v| *v == g.group));
    }
    Ok(groups)
}

fn figures(group: String, mut tally: Tally, min: MinGroupSize) -> ResponseGroup {
    let suppressed = tally.invited > 0 && min.withholds(tally.invited);
    let shown = |value: i64| (!suppressed).then_some(value);
    let response_rate =
        (!suppressed && tally.invited > 0).then(|| tally.answered as f64 / tally.invited as f64);
    let median_hours_to_answer = if suppressed {
        None
    } else {
        median(&mut tally.seconds_to_answer)
            .map(|seconds| crate::domain::analytics::perception::round_to(seconds / 3600.0, 2))
    };
    ResponseGroup {
        group,
        invited: tally.invited,
        sent: shown(tally.sent),
        opened: shown(tally.opened),
        answered: shown(tally.answered),
        response_rate,
        median_hours_to_answer,
        suppressed,
    }
}

/// The median: the middle value, or the mean of the two middle ones.
fn median(values: &mut [i64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle] as f64
    } else {
        (values[middle - 1] as f64 + values[middle] as f64) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [5]), Some(5.0));
        assert_eq!(median(&mut [9, 1, 5]), Some(5.0));
        assert_eq!(median(&mut [4, 1, 3, 2]), Some(2.5));
    }
}

/// The comments of anonymous answers about one touchpoint in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct AnonymousComments {
    pub touchpoint_id: i64,
    /// Anonymous answers about the touchpoint in the window, with or
    /// without a comment.
    pub answers: i64,
    /// `true` when fewer answers than the organization's `min_group_size`
    /// back the group: then no comment is shown.
    pub suppressed: bool,
    /// The comments, in alphabetical order (never in the order they came,
    /// which could match them to the days invitations were answered).
    pub comments: Vec<String>,
}

/// The most comments one answer lists per touchpoint.
pub const COMMENTS_MAX: usize = 1000;

/// The comments of anonymous answers in the window, per touchpoint with
/// anonymous answers (by id); each touchpoint's only when at least
/// `min_group_size` anonymous answers back it, so none can be told apart
/// by elimination through the API. At most [`COMMENTS_MAX`] per
/// touchpoint, the first alphabetically.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn anonymous_comments(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
    touchpoint_id: Option<i64>,
) -> DomainResult<Vec<AnonymousComments>> {
    use entity::anonymous_answer;
    use sea_orm::{sea_query::Expr, ExprTrait};
    let min = MinGroupSize::of(db, organization_id).await?;
    let in_window = || {
        let mut select = anonymous_answer::Entity::find()
            .filter(anonymous_answer::Column::OrganizationId.eq(organization_id))
            .filter(anonymous_answer::Column::Day.gte(window.from_day()))
            .filter(anonymous_answer::Column::Day.lt(window.to_day()));
        if let Some(id) = touchpoint_id {
            select = select.filter(anonymous_answer::Column::TouchpointId.eq(id));
        }
        select
    };
    let counts: Vec<(i64, i64)> = in_window()
        .select_only()
        .column(anonymous_answer::Column::TouchpointId)
        .expr(Expr::col(anonymous_answer::Column::Id).count())
        .group_by(anonymous_answer::Column::TouchpointId)
        .order_by_asc(anonymous_answer::Column::TouchpointId)
        .into_tuple()
        .all(db)
        .await?;
    let mut groups = Vec::with_capacity(counts.len());
    for (touchpoint_id, answers) in counts {
        let suppressed = min.withholds(answers);
        let comments = if suppressed {
            Vec::new()
        } else {
            in_window()
                .select_only()
                .column(anonymous_answer::Column::Comment)
                .filter(anonymous_answer::Column::TouchpointId.eq(touchpoint_id))
                .filter(anonymous_answer::Column::Comment.is_not_null())
                .order_by_asc(anonymous_answer::Column::Comment)
                .limit(COMMENTS_MAX as u64)
                .into_tuple::<String>()
                .all(db)
                .await?
        };
        groups.push(AnonymousComments {
            touchpoint_id,
            answers,
            suppressed,
            comments,
        });
    }
    Ok(groups)
}
