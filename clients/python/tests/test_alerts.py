"""Alert rules on constructed data, through the generated client.

On the monitoring organization (``TT_MONITORING_TOKEN``), weeks of scores
are recorded in one batch, each week's mix chosen so that the answer is
known in advance. A weekly drop rule (4 baseline weeks) is evaluated as of
Monday 2026-11-02, that is on the ISO week 2026-10-26..11-01 against
2026-09-28..10-25:

    touchpoint   baseline (4 weeks)         the week               expected
    Big panel    200 scores, cNPS +30       60 scores, cNPS -10    a drop: one alert
    Small panel  40 scores, cNPS +30        10 scores, cNPS -10    the same drop, too few
                                                                   scores to be told from
                                                                   noise: tested, no alert
    Quiet desk   40 scores, cNPS +30        5 scores, all 0        below min_scores (10):
                                                                   not tested at all

The z statistic and one-sided p-value of each group are recomputed here
with scipy.stats.norm from counts recounted from this file's own data (not
from the service), and compared with the alert's details: z to 1e-4 (the
service rounds it to 4 decimals), p to 1e-9 relative. A later week back at
the baseline's mix resolves the alert. A rule with ``cusum`` catches a
step down four weeks old that the weekly z test no longer sees (its baseline
already holds three of the lower weeks); its CUSUM is recomputed too. A
detractor rule raises an alert on a low score as it is recorded, which a
recruiter acknowledges and resolves.
"""

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest
from scipy.stats import norm
from support import make_client, ok, refused
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.alerts import (
    acknowledge_alert,
    create_alert_rule,
    evaluate_alert_rule,
    get_alert,
    list_alerts,
    resolve_alert,
    update_alert_rule,
)
from touchpoint_tracker_client.api.candidates import create_candidate
from touchpoint_tracker_client.api.encounters import create_encounter, create_encounter_batch
from touchpoint_tracker_client.api.keys import create_api_key
from touchpoint_tracker_client.api.organization import update_organization
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.models import (
    Alert,
    AlertEvaluation,
    AlertGroupBy,
    AlertPage,
    AlertPeriod,
    AlertRule,
    AlertRuleKind,
    AlertStatus,
    BatchRecorded,
    Candidate,
    Channel,
    CreateAlertRule,
    CreateApiKey,
    CreateCandidate,
    CreatedApiKey,
    CreateEncounter,
    CreateTouchpoint,
    Encounter,
    ErrorCode,
    EvaluateAlertRule,
    ImportEncounter,
    Kind,
    Organization,
    Role,
    Stage,
    Touchpoint,
    UpdateAlertRule,
    UpdateOrganization,
)

AS_OF = date(2026, 11, 2)  # a Monday: the last complete week is the one before
BASELINE_WEEKS = 4
MIN_SCORES = 10
# A week's mix: (promoters, passives, detractors), spread over its seven days.
GOOD = (5, 3, 2)  # cNPS +30
BAD = (3, 3, 4)  # cNPS -10
# Per touchpoint: the mix of each baseline week, and of the week evaluated.
PLAN = {
    "Big panel": ([(25, 15, 10)] * BASELINE_WEEKS, (18, 18, 24)),
    "Small panel": ([GOOD] * BASELINE_WEEKS, BAD),
    "Quiet desk": ([GOOD] * BASELINE_WEEKS, (0, 0, 5)),
}
# The week after: Big panel back at the baseline's mix (60 scores, cNPS +30).
RECOVERY = (30, 18, 12)


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


PERIOD_START = week_start(AS_OF) - timedelta(weeks=1)
BASELINE_START = PERIOD_START - timedelta(weeks=BASELINE_WEEKS)


@dataclass
class Score:
    touchpoint: str
    day: date
    score: int


def week_of_scores(touchpoint: str, monday: date, mix: tuple[int, int, int]) -> list[Score]:
    """A week's scores: promoters 9 or 10, passives 7 or 8, detractors 0 to 6, over its days."""
    promoters, passives, detractors = mix
    values = [9 + n % 2 for n in range(promoters)] + [7 + n % 2 for n in range(passives)]
    values += [n % 7 for n in range(detractors)]
    return [Score(touchpoint, monday + timedelta(days=n % 7), v) for n, v in enumerate(values)]


def all_scores() -> list[Score]:
    scores = []
    for name, (baseline, week) in PLAN.items():
        for n, mix in enumerate(baseline):
            scores += week_of_scores(name, BASELINE_START + timedelta(weeks=n), mix)
        scores += week_of_scores(name, PERIOD_START, week)
    scores += week_of_scores("Big panel", PERIOD_START + timedelta(weeks=1), RECOVERY)
    return scores


# ---------------------------------------------------------------------------
# The recount: adjusted-Wald cNPS and the one-sided z test, with scipy
# ---------------------------------------------------------------------------


@dataclass
class Tally:
    scored: int
    promoters: int
    detractors: int

    @classmethod
    def of(cls, scores: list[int]) -> "Tally":
        return cls(len(scores), sum(s >= 9 for s in scores), sum(s <= 6 for s in scores))

    @classmethod
    def total(cls, tallies: list["Tally"]) -> "Tally":
        return cls(*(sum(getattr(t, f) for t in tallies) for f in ("scored", "promoters", "detractors")))

    def cnps(self) -> float:
        return 100 * (self.promoters - self.detractors) / self.scored

    def adjusted(self) -> tuple[float, float, float]:
        """NPS~, its variance V and n' (Rocks, 2016: 0.75 promoter, 1.5 passive, 0.75 detractor)."""
        n = self.scored + 3
        plus, minus = (self.promoters + 0.75) / n, (self.detractors + 0.75) / n
        nps = plus - minus
        return nps, plus + minus - nps**2, n


def drop_test(baseline: Tally, period: Tally) -> tuple[float, float]:
    """z = (NPS~_period - NPS~_baseline) / sqrt(V_b/n_b' + V_p/n_p'), and p = Phi(z)."""
    nps_b, var_b, n_b = baseline.adjusted()
    nps_p, var_p, n_p = period.adjusted()
    z = (nps_p - nps_b) / math.sqrt(var_b / n_b + var_p / n_p)
    return z, norm.cdf(z)


def cusum(reference: Tally, periods: list[Tally], k: float = 0.5) -> tuple[float, float]:
    """The two-sided CUSUM of the periods, each standardized against the reference:
    x = (NPS~_t - NPS~_ref) / sqrt(V_ref / n_t'); the lower and upper sums after the last."""
    nps_ref, var_ref, _ = reference.adjusted()
    lower = upper = 0.0
    for period in periods:
        nps, _, n = period.adjusted()
        x = (nps - nps_ref) / math.sqrt(var_ref / n)
        lower, upper = max(0.0, lower - x - k), max(0.0, upper + x - k)
    return lower, upper


def tallies(scores: list[Score], touchpoint: str, as_of: date) -> tuple[Tally, Tally]:
    """The baseline's and the period's counts of one touchpoint, from this file's data."""
    period_start = week_start(as_of) - timedelta(weeks=1)
    baseline_start = period_start - timedelta(weeks=BASELINE_WEEKS)
    mine = [s for s in scores if s.touchpoint == touchpoint]
    baseline = [s.score for s in mine if baseline_start <= s.day < period_start]
    period = [s.score for s in mine if period_start <= s.day < week_start(as_of)]
    return Tally.of(baseline), Tally.of(period)


def close_to_rounded(shown: float, exact: float, decimals: int) -> bool:
    return abs(shown - exact) <= 0.5 * 10**-decimals + 1e-9


# ---------------------------------------------------------------------------
# The data and the rule
# ---------------------------------------------------------------------------


def touchpoint(client: AuthenticatedClient, name: str) -> Touchpoint:
    body = CreateTouchpoint(name=name, kind=Kind.EMPLOYER_CREATED, channel=Channel.INTERVIEW, stage=Stage.INTERVIEW)
    return ok(create_touchpoint.sync_detailed(client=client, body=body), Touchpoint, 201)


@pytest.fixture(scope="module")
def weeks(monitoring_admin: AuthenticatedClient) -> dict:
    """The constructed weeks, recorded in one batch, one candidate per score."""
    touchpoints = {name: touchpoint(monitoring_admin, name) for name in PLAN}
    scores = all_scores()
    items = [
        ImportEncounter(
            occurred_at=datetime.combine(s.day, time(10, 30), UTC),
            candidate_external_ref=f"ALERTS-{n:04d}",
            touchpoint_id=touchpoints[s.touchpoint].id,
            score=s.score,
        )
        for n, s in enumerate(scores)
    ]
    recorded = ok(create_encounter_batch.sync_detailed(client=monitoring_admin, body=items), BatchRecorded, 201)
    assert len(recorded.encounter_ids) == len(scores)
    return {"touchpoints": touchpoints, "scores": scores}


@pytest.fixture(scope="module")
def drop_rule(monitoring_admin, weeks) -> AlertRule:
    body = CreateAlertRule(
        name="Interview panels: weekly cNPS drop",
        kind=AlertRuleKind.DROP,
        touchpoint_ids=[t.id for t in weeks["touchpoints"].values()],
        min_scores=MIN_SCORES,
    )
    rule = ok(create_alert_rule.sync_detailed(client=monitoring_admin, body=body), AlertRule, 201)
    # The defaults README states.
    assert (rule.group_by, rule.period, rule.baseline_periods, rule.enabled, rule.cusum) == (
        AlertGroupBy.TOUCHPOINT,
        AlertPeriod.WEEK,
        BASELINE_WEEKS,
        True,
        False,
    )
    return rule


def evaluate(client, rule: AlertRule, as_of: date) -> AlertEvaluation:
    body = EvaluateAlertRule(as_of=as_of)
    return ok(evaluate_alert_rule.sync_detailed(rule.id, client=client, body=body), AlertEvaluation)


def rule_alerts(client, rule: AlertRule) -> list[Alert]:
    return ok(list_alerts.sync_detailed(client=client, rule_id=rule.id), AlertPage).items


# ---------------------------------------------------------------------------
# Drop alerts
# ---------------------------------------------------------------------------


def test_the_constructed_weeks_are_what_the_table_says(weeks):
    # The plan itself, recounted: so the expectations below rest on it.
    for name, cnps_before, cnps_after, n_before, n_after in [
        ("Big panel", 30, -10, 200, 60),
        ("Small panel", 30, -10, 40, 10),
        ("Quiet desk", 30, -100, 40, 5),
    ]:
        baseline, period = tallies(weeks["scores"], name, AS_OF)
        assert (baseline.scored, period.scored) == (n_before, n_after), name
        assert (baseline.cnps(), period.cnps()) == (cnps_before, cnps_after), name
    assert (PERIOD_START, BASELINE_START) == (date(2026, 10, 26), date(2026, 9, 28))


def test_a_real_drop_alerts_once_and_the_same_drop_on_a_small_group_does_not(monitoring_admin, weeks, drop_rule):
    big, small, quiet = (weeks["touchpoints"][n] for n in PLAN)
    evaluation = evaluate(monitoring_admin, drop_rule, AS_OF)
    assert (evaluation.period_start, evaluation.period_end, evaluation.baseline_start) == (
        PERIOD_START,
        PERIOD_START + timedelta(weeks=1),
        BASELINE_START,
    )
    # The quiet desk's 5 scores are below min_scores: not tested, however low.
    assert evaluation.groups_tested == 2
    [opened] = evaluation.opened
    assert evaluation.resolved == []
    assert (opened.rule_id, opened.group, opened.period_start, opened.status) == (
        drop_rule.id,
        str(big.id),
        PERIOD_START,
        AlertStatus.OPEN,
    )
    assert opened.encounter_id is None

    # The figures behind it, against the recount.
    baseline, period = tallies(weeks["scores"], "Big panel", AS_OF)
    z, p = drop_test(baseline, period)
    d = opened.details
    assert (d.scored, d.baseline_scored) == (period.scored, baseline.scored)
    assert close_to_rounded(d.cnps, period.cnps(), 1) and close_to_rounded(d.baseline_cnps, baseline.cnps(), 1)
    assert abs(d.z - z) <= 1e-4, (d.z, z)
    assert math.isclose(d.p_value, p, rel_tol=1e-9), (d.p_value, p)
    assert p < 0.05 and z < 0
    assert (d.group_by, d.period, d.period_end, d.baseline_start) == (
        "touchpoint",
        "week",
        PERIOD_START + timedelta(weeks=1),
        BASELINE_START,
    )
    # Found by the z test (this rule has no CUSUM); detractor fields stay empty.
    assert (d.signal, d.cusum_lower, d.cusum_upper) == ("z", None, None)
    assert (d.score, d.threshold, d.touchpoint_id, d.candidate_id) == (None, None, None, None)

    # The small panel dropped by as many points, from a fifth of the scores:
    # tested, and chance alone would often do that.
    z_small, p_small = drop_test(*tallies(weeks["scores"], "Small panel", AS_OF))
    assert z_small < 0 and p_small >= 0.05, (z_small, p_small)
    assert [a.group for a in rule_alerts(monitoring_admin, drop_rule)] == [str(big.id)]

    # Evaluating the same period again opens nothing (one alert per rule, group and period).
    again = evaluate(monitoring_admin, drop_rule, AS_OF)
    assert (again.groups_tested, again.opened, again.resolved) == (2, [], [])
    assert [a.id for a in rule_alerts(monitoring_admin, drop_rule)] == [opened.id]
    assert ok(get_alert.sync_detailed(opened.id, client=monitoring_admin), Alert).details.z == d.z


def test_a_group_smaller_than_min_group_size_is_not_tested(monitoring_admin, drop_rule):
    # An alert never speaks of a figure a report would withhold: the big
    # panel's week has 60 scores, so at 61 nothing is tested.
    def set_min(size: int):
        body = UpdateOrganization(min_group_size=size)
        assert (
            ok(update_organization.sync_detailed(client=monitoring_admin, body=body), Organization).min_group_size
            == size
        )

    set_min(61)
    try:
        evaluation = evaluate(monitoring_admin, drop_rule, AS_OF)
        assert (evaluation.groups_tested, evaluation.opened, evaluation.resolved) == (0, [], [])
    finally:
        set_min(0)


def test_a_later_period_without_a_drop_resolves_the_alert(monitoring_admin, weeks, drop_rule):
    big = weeks["touchpoints"]["Big panel"]
    [alert] = rule_alerts(monitoring_admin, drop_rule)
    later = AS_OF + timedelta(weeks=1)
    baseline, period = tallies(weeks["scores"], "Big panel", later)
    z, p = drop_test(baseline, period)
    assert p >= 0.05, p  # the week after, back at the old mix: no drop
    evaluation = evaluate(monitoring_admin, drop_rule, later)
    # Only the big panel has scores that week.
    assert (evaluation.groups_tested, evaluation.opened) == (1, [])
    [resolved] = evaluation.resolved
    assert (resolved.id, resolved.group, resolved.status) == (alert.id, str(big.id), AlertStatus.RESOLVED)
    now = ok(get_alert.sync_detailed(alert.id, client=monitoring_admin), Alert)
    assert now.status == AlertStatus.RESOLVED and now.resolved_at is not None

    # Evaluating the drop's week again does not open it anew.
    again = evaluate(monitoring_admin, drop_rule, AS_OF)
    assert again.opened == []
    assert [a.status for a in rule_alerts(monitoring_admin, drop_rule)] == [AlertStatus.RESOLVED]
    # Nothing else is evaluated from now on (the schedule skips a disabled rule).
    body = UpdateAlertRule(enabled=False)
    assert not ok(update_alert_rule.sync_detailed(drop_rule.id, client=monitoring_admin, body=body), AlertRule).enabled


def test_a_slow_drift_the_z_test_misses_alerts_through_the_cusum(monitoring_admin):
    # Eight weeks: four at cNPS +30 (the CUSUM's reference), then four at +10.
    # The z test compares the last week with the four before it, three of
    # them already low: no drop. The CUSUM of the last four against the
    # reference adds up the shortfall.
    desk = touchpoint(monitoring_admin, "Slow drift desk")
    first = PERIOD_START - timedelta(weeks=2 * BASELINE_WEEKS - 1)
    weeks = [first + timedelta(weeks=n) for n in range(2 * BASELINE_WEEKS)]
    scores = []
    for n, monday in enumerate(weeks):
        scores += week_of_scores(desk.name, monday, (25, 15, 10) if n < BASELINE_WEEKS else (20, 15, 15))
    items = [
        ImportEncounter(
            occurred_at=datetime.combine(s.day, time(11, 0), UTC),
            candidate_external_ref=f"ALERTS-DRIFT-{n:03d}",
            touchpoint_id=desk.id,
            score=s.score,
        )
        for n, s in enumerate(scores)
    ]
    ok(create_encounter_batch.sync_detailed(client=monitoring_admin, body=items), BatchRecorded, 201)
    body = CreateAlertRule(
        name="Slow drift desk: drops and drifts",
        kind=AlertRuleKind.DROP,
        touchpoint_ids=[desk.id],
        min_scores=MIN_SCORES,
        cusum=True,
    )
    rule = ok(create_alert_rule.sync_detailed(client=monitoring_admin, body=body), AlertRule, 201)
    assert rule.cusum

    # The recount.
    weekly = [Tally.of([s.score for s in scores if week_start(s.day) == monday]) for monday in weeks]
    n = BASELINE_WEEKS
    z, p = drop_test(Tally.total(weekly[n - 1 : -1]), weekly[-1])
    lower, upper = cusum(Tally.total(weekly[:n]), weekly[n:])
    assert p >= 0.05 and lower > 4, (p, lower)  # h = 4

    evaluation = evaluate(monitoring_admin, rule, AS_OF)
    assert (evaluation.period_start, evaluation.baseline_start, evaluation.groups_tested) == (
        PERIOD_START,
        BASELINE_START,
        1,
    )
    [alert] = evaluation.opened
    d = alert.details
    assert d.signal == "cusum"
    assert abs(d.cusum_lower - lower) <= 1e-4 and abs(d.cusum_upper - upper) <= 1e-4, (d.cusum_lower, lower)
    assert abs(d.z - z) <= 1e-4 and math.isclose(d.p_value, p, rel_tol=1e-9)
    assert (d.scored, d.baseline_scored) == (weekly[-1].scored, Tally.total(weekly[n - 1 : -1]).scored)
    body = UpdateAlertRule(enabled=False)
    ok(update_alert_rule.sync_detailed(rule.id, client=monitoring_admin, body=body), AlertRule)


# ---------------------------------------------------------------------------
# Detractor alerts
# ---------------------------------------------------------------------------


def test_a_detractors_score_alerts_as_it_is_recorded(base_url, monitoring_admin):
    watched = touchpoint(monitoring_admin, "Final interview (alerts)")
    other = touchpoint(monitoring_admin, "Reception desk (alerts)")
    body = CreateAlertRule(name="Final interview detractors", kind=AlertRuleKind.DETRACTOR, touchpoint_ids=[watched.id])
    rule = ok(create_alert_rule.sync_detailed(client=monitoring_admin, body=body), AlertRule, 201)
    assert rule.threshold == 6  # the default: detractors
    # It acts as encounters are recorded; there is nothing to evaluate.
    error = refused(evaluate_alert_rule.sync_detailed(rule.id, client=monitoring_admin, body=EvaluateAlertRule()), 422)
    assert error.error.code == ErrorCode.VALIDATION_FAILED

    key = CreateApiKey(name="Recruiter (alerts)", role=Role.RECRUITER)
    recruiter = make_client(
        base_url, ok(create_api_key.sync_detailed(client=monitoring_admin, body=key), CreatedApiKey, 201).token
    )
    body = CreateCandidate(external_ref="ALERTS-DETRACTOR", display_name="Le Van Khoa", stage=Stage.INTERVIEW)
    person = ok(create_candidate.sync_detailed(client=recruiter, body=body), Candidate, 201)

    def record(on: Touchpoint, score: int) -> Encounter:
        at = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)
        body = CreateEncounter(candidate_id=person.id, touchpoint_id=on.id, occurred_at=at, score=score)
        return ok(create_encounter.sync_detailed(client=recruiter, body=body), Encounter, 201)

    record(watched, 7)  # a passive
    record(other, 2)  # a touchpoint the rule does not watch
    low = record(watched, 6)  # at the threshold
    [alert] = rule_alerts(monitoring_admin, rule)  # already there: raised in the write
    assert (alert.group, alert.encounter_id, alert.period_start, alert.status) == (
        f"encounter:{low.id}",
        low.id,
        date(2026, 11, 10),
        AlertStatus.OPEN,
    )
    d = alert.details
    assert (d.score, d.threshold, d.touchpoint_id, d.candidate_id) == (6, 6, watched.id, person.id)
    assert (d.z, d.p_value, d.scored) == (None, None, None)

    # A recruiter takes it, then closes it; a resolved alert stays resolved.
    taken = ok(acknowledge_alert.sync_detailed(alert.id, client=recruiter), Alert)
    assert taken.status == AlertStatus.ACKNOWLEDGED and taken.acknowledged_at is not None
    assert (
        ok(acknowledge_alert.sync_detailed(alert.id, client=recruiter), Alert).acknowledged_at == taken.acknowledged_at
    )
    done = ok(resolve_alert.sync_detailed(alert.id, client=recruiter), Alert)
    assert done.status == AlertStatus.RESOLVED and done.resolved_at is not None
    assert done.acknowledged_at == taken.acknowledged_at
    error = refused(acknowledge_alert.sync_detailed(alert.id, client=recruiter), 409)
    assert error.error.code == ErrorCode.ALERT_RESOLVED
    assert ok(resolve_alert.sync_detailed(alert.id, client=recruiter), Alert).resolved_at == done.resolved_at
    listed = ok(list_alerts.sync_detailed(client=recruiter, status=AlertStatus.RESOLVED, rule_id=rule.id), AlertPage)
    assert [a.id for a in listed.items] == [alert.id]
