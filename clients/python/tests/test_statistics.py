"""An independent check of the reports' statistics, through the generated client.

On its own organization (``TT_STATS_TOKEN``), the test records a random but
seeded dataset: 12 touchpoints over the three kinds and several stages, 250
candidates and about 2,700 encounters over six months of 2025, about 30% of
them unscored, from the four sources. It then edits some encounters (score,
touchpoint, time, source) and deletes others, exports the encounters (the
NDJSON export, applied in order), and recomputes every figure from the
export with numpy, scipy and statsmodels:

- mean scores and mean (attributed or overall) shifts: the t interval of
  ``scipy.stats.ttest_1samp(...).confidence_interval()``, clipped to the
  values the figure can take (scores 0..10, shifts -10..10), and the
  one-sample t test's p-value against 0;
- cNPS: the adjusted-Wald interval (Rocks, 2016) with ``norm.ppf(0.975)``,
  clipped to [-100, 100], and the two-sided z test of a change (``norm.sf``);
- recruiters' minus candidates' mean score: ``ttest_ind(equal_var=False)``;
- the impact report's ``significant``: ``multipletests(method="fdr_bh")``
  across the rows of one answer, and the summary's most positive and most
  negative touchpoints chosen among the significant rows only.

Each is compared with the service's answer for the perception trend (monthly
by kind, compared with the previous bucket), the touchpoint impact, the
summary, the perception shift by kind, and the perception gap (by nothing,
kind and touchpoint), over a whole-months window and one with partial
months. Then with ``min_group_size`` set so that some groups are withheld:
every suppressed group must show no interval, no p-value and no gap, and the
groups still shown must match as before.

Tolerances: a rounded figure may be off by half a unit of its last decimal
(plus 1e-9); p-values agree to 1e-6 (relative or absolute); a decision is
skipped only when its p-value is within 1e-9 of its threshold.

The attribution rule and the shift definition are README's ("Reports"); the
Rust recount in tests/api/recount.rs counts the same way.
"""

import itertools
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from support import ok
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.encounters import create_encounter_batch, delete_encounter, update_encounter
from touchpoint_tracker_client.api.exports import export_encounters
from touchpoint_tracker_client.api.organization import update_organization
from touchpoint_tracker_client.api.reports import (
    get_perception_gap,
    get_perception_shift,
    get_perception_summary,
    get_perception_trend,
    get_touchpoint_impact,
)
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.models import (
    BatchRecorded,
    Channel,
    CreateTouchpoint,
    Encounter,
    GapGroupBy,
    ImportEncounter,
    Kind,
    Organization,
    PerceptionGapReport,
    PerceptionShiftReport,
    PerceptionSummary,
    PerceptionTrend,
    ShiftGroupBy,
    Source,
    Stage,
    Touchpoint,
    TouchpointImpactReport,
    TrendBucket,
    TrendComparison,
    TrendGroupBy,
    UpdateEncounter,
    UpdateOrganization,
)

SEED = 20261128
ALPHA = 0.05
Z = stats.norm.ppf(1 - ALPHA / 2)
SCORES, SHIFTS, CNPS = (0.0, 10.0), (-10.0, 10.0), (-100.0, 100.0)

CATALOG = [
    # name, kind, channel, stage, how much meeting it moves perception, how often it is met
    ("Careers site", Kind.EMPLOYER_CREATED, Channel.CAREERS_SITE, Stage.AWARENESS, 0.3, 10),
    ("Job ad", Kind.EMPLOYER_CREATED, Channel.JOB_BOARD, Stage.AWARENESS, 0.0, 8),
    ("Application form", Kind.EMPLOYER_CREATED, Channel.CAREERS_SITE, Stage.APPLICATION, -0.8, 9),
    ("Phone screen", Kind.EMPLOYER_CREATED, Channel.PHONE, Stage.SCREENING, 0.5, 7),
    ("Technical interview", Kind.EMPLOYER_CREATED, Channel.INTERVIEW, Stage.INTERVIEW, 1.2, 7),
    ("Offer call", Kind.EMPLOYER_CREATED, Channel.PHONE, Stage.OFFER, 2.0, 3),
    ("Glassdoor reviews", Kind.TRUE, Channel.REVIEW_SITE, Stage.CONSIDERATION, -0.4, 6),
    ("Friend's story", Kind.TRUE, Channel.WORD_OF_MOUTH, Stage.CONSIDERATION, 0.1, 4),
    ("Press article", Kind.TRUE, Channel.PRESS, Stage.AWARENESS, 0.0, 2),
    ("Interviewer no-show", Kind.UNEXPECTED, Channel.INTERVIEW, Stage.INTERVIEW, -3.0, 2),
    ("Recruiter ghosting", Kind.UNEXPECTED, Channel.EMAIL, Stage.SCREENING, -1.5, 2),
    ("Surprise site visit", Kind.UNEXPECTED, Channel.EVENT, Stage.INTERVIEW, 0.8, 1),
]
SOURCES = [Source.RECRUITER_OBSERVATION, Source.CANDIDATE_SURVEY, Source.REVIEW_IMPORT, Source.OTHER]
SOURCE_WEIGHTS = [35, 35, 15, 15]
# Recruiters believe candidates are happier than candidates say.
SOURCE_BIAS = {Source.RECRUITER_OBSERVATION: 0.8}
CANDIDATES = 250
DATA_FROM, DATA_TO = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
# Edited times may leave the data's months: into December 2024 (the summary's
# previous window) and never past June.
EDIT_FROM = datetime(2024, 12, 1, tzinfo=UTC)
EDITS, DELETES = 220, 120

# Report windows: whole months, and one of partial months (daily and monthly
# rollups together). The summary compares the second quarter with the 91 days before.
WINDOWS = [(date(2025, 1, 1), date(2025, 7, 1)), (date(2025, 2, 10), date(2025, 5, 20))]
SUMMARY_WINDOWS = [(date(2025, 4, 1), date(2025, 7, 1)), (date(2025, 2, 10), date(2025, 5, 20))]
# Large enough to withhold some trend points, touchpoints, sources and shift groups.
MIN_GROUP_SIZE = 30


# ---------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------


@dataclass
class Row:
    id: int
    candidate: int
    touchpoint: int
    at: datetime
    source: Source
    score: int | None


def random_time(rng: random.Random, start: datetime, end: datetime) -> datetime:
    return start + timedelta(seconds=rng.randrange(int((end - start).total_seconds())))


def generate(rng: random.Random, touchpoints: dict[str, Touchpoint]) -> list[ImportEncounter]:
    """About 2,700 encounters of 250 candidates, whose perception drifts with what they meet."""
    names = [c[0] for c in CATALOG]
    weights = [c[5] for c in CATALOG]
    effect = {c[0]: c[4] for c in CATALOG}
    kind = {c[0]: c[1] for c in CATALOG}
    items = []
    for number in range(CANDIDATES):
        perception = rng.gauss(6.5, 1.5)
        at = random_time(rng, DATA_FROM, DATA_TO - timedelta(days=30))
        for _ in range(rng.randint(6, 20)):
            at += timedelta(seconds=rng.randrange(3600, 14 * 86400))
            if at >= DATA_TO:
                break
            name = rng.choices(names, weights)[0]
            perception = min(10.0, max(0.0, perception + effect[name] + rng.gauss(0, 0.5)))
            source = rng.choices(SOURCES, SOURCE_WEIGHTS)[0]
            # From April, employer-created touchpoints are worse (a process change).
            drift = -1.5 if at.month >= 4 and kind[name] == Kind.EMPLOYER_CREATED else 0.0
            score = None
            if rng.random() >= 0.3:
                noisy = perception + SOURCE_BIAS.get(source, 0.0) + drift + rng.gauss(0, 1.2)
                score = int(min(10, max(0, round(noisy))))
            items.append(
                ImportEncounter(
                    occurred_at=at,
                    candidate_external_ref=f"STATS-{number:04d}",
                    touchpoint_id=touchpoints[name].id,
                    source=source,
                    score=score,
                )
            )
    return items


def export_all(client: AuthenticatedClient) -> dict[int, Row]:
    """Every encounter as the NDJSON export has it, records applied in order."""
    response = export_encounters.sync_detailed(client=client)
    assert response.status_code == 200, response.content[:500]
    records = [json.loads(line) for line in response.parsed.splitlines()]
    assert records and records[-1]["type"] == "end", "an export ends with its end record"
    rows: dict[int, Row] = {}
    for record in records[:-1]:
        if record["type"] == "encounter":
            e = Encounter.from_dict(record["encounter"])
            rows[e.id] = Row(e.id, e.candidate_id, e.touchpoint_id, e.occurred_at, e.source, e.score)
        else:
            assert record["type"] == "deleted", record
            rows.pop(record["encounter_id"], None)
    return rows


@pytest.fixture(scope="module")
def dataset(stats_admin: AuthenticatedClient) -> dict:
    """The stats organization's catalog and encounters, after edits and deletes, as exported."""
    rng = random.Random(SEED)
    client = stats_admin
    touchpoints = {}
    for name, kind, channel, stage, _, _ in CATALOG:
        body = CreateTouchpoint(name=name, kind=kind, channel=channel, stage=stage)
        touchpoints[name] = ok(create_touchpoint.sync_detailed(client=client, body=body), Touchpoint, 201)

    items = generate(rng, touchpoints)
    assert 2400 <= len(items) <= 3500, len(items)
    recorded = ok(create_encounter_batch.sync_detailed(client=client, body=items), BatchRecorded, 201)
    assert recorded.candidates_created == CANDIDATES
    ids = recorded.encounter_ids

    # Edits: each changes one or two fields, as a recruiter correcting records would.
    by_name = list(touchpoints.values())
    edited = rng.sample(ids, EDITS)
    counts = Counter()
    for number, encounter_id in enumerate(edited):
        body = UpdateEncounter()
        what = ["score", "touchpoint", "occurred_at", "source"][number % 4]
        if what == "score" or number % 7 == 0:
            body.score = None if rng.random() < 0.25 else rng.randint(0, 10)
            counts["score"] += 1
        if what == "touchpoint":
            body.touchpoint_id = rng.choice(by_name).id
        if what == "occurred_at":
            body.occurred_at = random_time(rng, EDIT_FROM, DATA_TO)
        if what == "source":
            body.source = rng.choice(SOURCES)
        counts[what] += 1
        ok(update_encounter.sync_detailed(encounter_id, client=client, body=body), Encounter)
    deleted = rng.sample(sorted(set(ids) - set(edited)), DELETES // 2) + rng.sample(edited, DELETES // 2)
    for encounter_id in deleted:
        response = delete_encounter.sync_detailed(encounter_id, client=client)
        assert response.status_code == 204, response.content[:500]

    rows = export_all(client)
    assert set(rows) == set(ids) - set(deleted)
    assert min(counts.values()) >= 50, counts
    # Edits moved some encounters into December 2024.
    assert any(r.at < DATA_FROM for r in rows.values())
    return {
        "rows": list(rows.values()),
        "touchpoints": {t.id: t for t in touchpoints.values()},
    }


@pytest.fixture(scope="module", params=[0, MIN_GROUP_SIZE], ids=["all shown", f"min_group_size={MIN_GROUP_SIZE}"])
def min_group_size(request, stats_admin: AuthenticatedClient, dataset) -> int:
    """The organization's min_group_size for the reports of the tests that use it."""
    body = UpdateOrganization(min_group_size=request.param)
    organization = ok(update_organization.sync_detailed(client=stats_admin, body=body), Organization)
    assert organization.min_group_size == request.param
    return request.param


# ---------------------------------------------------------------------------
# The recount, with scipy
# ---------------------------------------------------------------------------


def attributed_shares(rows: list[Row]) -> dict[int, float]:
    """Each encounter's attributed shift over its candidate's whole history (README, "Reports")."""
    history = defaultdict(list)
    for row in rows:
        history[row.candidate].append(row)
    shares = {}
    for encounters in history.values():
        encounters.sort(key=lambda r: (r.at, r.id))
        scored = [i for i, r in enumerate(encounters) if r.score is not None]
        for i, j in itertools.pairwise(scored):
            shift = encounters[j].score - encounters[i].score
            for row in encounters[i + 1 : j + 1]:
                shares[row.id] = shift / (j - i)
    return shares


def in_window(row: Row, window: tuple[date, date]) -> bool:
    return window[0] <= row.at.date() < window[1]


def cnps(scores: list[int]) -> float | None:
    if not scores:
        return None
    promoters = sum(s >= 9 for s in scores)
    detractors = sum(s <= 6 for s in scores)
    return 100 * (promoters - detractors) / len(scores)


@dataclass
class AdjustedNps:
    nps: float
    variance: float
    n: float

    @classmethod
    def of(cls, scores: list[int]) -> "AdjustedNps | None":
        if not scores:
            return None
        n = len(scores) + 3
        promoting = (sum(s >= 9 for s in scores) + 0.75) / n
        detracting = (sum(s <= 6 for s in scores) + 0.75) / n
        nps = promoting - detracting
        return cls(nps, promoting + detracting - nps**2, n)

    def interval(self) -> tuple[float, float]:
        half = Z * 100 * math.sqrt(self.variance / self.n)
        return clip((100 * self.nps - half, 100 * self.nps + half), CNPS)

    @staticmethod
    def change_p_value(earlier: "AdjustedNps", later: "AdjustedNps") -> float:
        z = (later.nps - earlier.nps) / math.sqrt(earlier.variance / earlier.n + later.variance / later.n)
        return min(1.0, 2 * stats.norm.sf(abs(z)))


def clip(interval, bounds) -> tuple[float, float]:
    low, high = bounds
    return (min(max(interval[0], low), high), min(max(interval[1], low), high))


@dataclass
class MeanTest:
    mean: float
    interval: tuple[float, float]
    p_value: float
    degenerate: bool  # every value equal: no spread for scipy to work with


def mean_test(values: list[float], bounds) -> MeanTest | None:
    """The t interval (clipped) and the t test against 0 of a mean; None below two values."""
    if len(values) < 2:
        return None
    x = np.asarray(values, dtype=float)
    mean = float(x.mean())
    if np.ptp(x) == 0:
        # scipy has nothing to divide by; the service documents certainty either way.
        return MeanTest(mean, clip((mean, mean), bounds), 1.0 if abs(mean) < 1e-9 else 0.0, True)
    result = stats.ttest_1samp(x, 0.0)
    ci = result.confidence_interval(confidence_level=1 - ALPHA)
    return MeanTest(mean, clip((ci.low, ci.high), bounds), float(result.pvalue), False)


def bh_decisions(p_values: list[float]) -> tuple[list[bool], bool]:
    """Benjamini-Hochberg at ALPHA, and whether any p-value is within 1e-9 of its rank's threshold."""
    if not p_values:
        return [], False
    rejected, *_ = multipletests(p_values, alpha=ALPHA, method="fdr_bh")
    m = len(p_values)
    close = any(abs(p - (k + 1) * ALPHA / m) <= 1e-9 for k, p in enumerate(sorted(p_values)))
    return [bool(r) for r in rejected], close


# ---------------------------------------------------------------------------
# Comparing, and counting what was compared
# ---------------------------------------------------------------------------


@dataclass
class Check:
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def fail(self, what: str, message: str) -> None:
        self.failures.append(f"{what}: {message}")

    def figure(self, what: str, actual, expected, decimals: int, kind: str = "figures") -> None:
        """A rounded figure against its unrounded recount; None must match None."""
        if expected is None or actual is None:
            if actual is not None or expected is not None:
                self.fail(what, f"got {actual}, expected {expected}")
            self.counts["nulls"] += 1
            return
        if abs(actual - expected) > 0.5 * 10**-decimals + 1e-9:
            self.fail(what, f"got {actual}, expected {expected:.9f} ({decimals} decimals)")
        self.counts[kind] += 1

    def interval(self, what: str, low, high, expected, decimals: int) -> None:
        if expected is None:
            if low is not None or high is not None:
                self.fail(what, f"got [{low}, {high}], expected no interval")
            self.counts["nulls"] += 1
            return
        if low is None or high is None:
            self.fail(what, f"got [{low}, {high}], expected [{expected[0]:.6f}, {expected[1]:.6f}]")
            return
        for end, actual, e in (("low", low, expected[0]), ("high", high, expected[1])):
            if abs(actual - e) > 0.5 * 10**-decimals + 1e-9:
                self.fail(f"{what} {end}", f"got {actual}, expected {e:.9f} ({decimals} decimals)")
        self.counts["intervals"] += 1

    def p_value(self, what: str, actual, expected) -> None:
        if expected is None or actual is None:
            if actual is not None or expected is not None:
                self.fail(what, f"got p = {actual}, expected {expected}")
            self.counts["nulls"] += 1
            return
        if not math.isclose(actual, expected, rel_tol=1e-6, abs_tol=1e-6):
            self.fail(what, f"got p = {actual!r}, expected {expected!r}")
        self.counts["p_values"] += 1

    def decision(self, what: str, actual, expected: bool | None, p: float | None, threshold: float = ALPHA):
        if expected is None:
            if actual is not None:
                self.fail(what, f"got {actual}, expected no decision")
            self.counts["nulls"] += 1
            return
        if p is not None and abs(p - threshold) <= 1e-9:
            self.counts["decisions skipped"] += 1
            return
        if actual is not bool(expected):
            self.fail(what, f"got {actual}, expected {expected} (p = {p!r})")
        self.counts["decisions"] += 1

    def equal(self, what: str, actual, expected) -> None:
        if actual != expected:
            self.fail(what, f"got {actual!r}, expected {expected!r}")
        self.counts["counts"] += 1

    def suppressed(self, what: str, actual: bool, expected: bool) -> None:
        self.equal(f"{what} suppressed", actual, expected)
        if expected:
            self.counts["suppressed groups"] += 1

    def assert_clean(self, at_least: dict[str, int]) -> None:
        print(f"compared: {dict(self.counts)}")
        shown = "\n  ".join(self.failures[:30])
        assert not self.failures, f"{len(self.failures)} disagreements with scipy (first 30):\n  {shown}"
        for what, minimum in at_least.items():
            assert self.counts[what] >= minimum, f"only {self.counts[what]} {what} compared: {dict(self.counts)}"


def shown(values: list, min_size: int) -> bool:
    return len(values) >= min_size


def score_figures(check: Check, what: str, point, scores: list[int], min_size: int) -> AdjustedNps | None:
    """encounters aside: scored, suppressed, mean score and cNPS with their intervals.

    Returns the adjusted cNPS figure when the point shows one.
    """
    check.equal(f"{what} scored", point.scored, len(scores))
    visible = shown(scores, min_size)
    check.suppressed(what, point.suppressed, not visible)
    test = mean_test(scores, SCORES) if visible else None
    adjusted = AdjustedNps.of(scores) if visible else None
    check.figure(f"{what} mean_score", point.mean_score, float(np.mean(scores)) if visible and scores else None, 2)
    check.figure(f"{what} cnps", point.cnps, cnps(scores) if visible else None, 1)
    check.interval(
        f"{what} mean_score interval", point.mean_score_low, point.mean_score_high, test and test.interval, 2
    )
    check.interval(f"{what} cnps interval", point.cnps_low, point.cnps_high, adjusted and adjusted.interval(), 1)
    return adjusted


# ---------------------------------------------------------------------------
# The reports
# ---------------------------------------------------------------------------


def test_perception_trend_monthly_by_kind(stats_admin, dataset, min_group_size):
    rows, touchpoints = dataset["rows"], dataset["touchpoints"]
    check = Check()
    for window in WINDOWS:
        trend = ok(
            get_perception_trend.sync_detailed(
                client=stats_admin,
                from_=window[0],
                to=window[1],
                bucket=TrendBucket.MONTH,
                group_by=TrendGroupBy.KIND,
                compare_to=TrendComparison.PREVIOUS_BUCKET,
            ),
            PerceptionTrend,
        )
        assert trend.compare_to == TrendComparison.PREVIOUS_BUCKET
        assert [s.group for s in trend.series] == [k.value for k in Kind]
        for series in trend.series:
            # The first point is tested against the whole month before the
            # window's first month.
            first = series.points[0].bucket_start
            month_before = (date(first.year - (first.month == 1), (first.month - 2) % 12 + 1, 1), first)
            before = [
                r.score
                for r in rows
                if in_window(r, month_before)
                and r.score is not None
                and touchpoints[r.touchpoint].kind.value == series.group
            ]
            previous = AdjustedNps.of(before) if shown(before, min_group_size) else None
            for point in series.points:
                start = point.bucket_start
                end = date(start.year + start.month // 12, start.month % 12 + 1, 1)
                bucket = (max(start, window[0]), min(end, window[1]))
                members = [
                    r for r in rows if in_window(r, bucket) and touchpoints[r.touchpoint].kind.value == series.group
                ]
                what = f"trend {window[0]}..{window[1]} {series.group} {start:%Y-%m}"
                check.equal(f"{what} encounters", point.encounters, len(members))
                scores = [r.score for r in members if r.score is not None]
                adjusted = score_figures(check, what, point, scores, min_group_size)
                p = AdjustedNps.change_p_value(previous, adjusted) if previous and adjusted else None
                check.p_value(f"{what} cnps_change_p_value", point.cnps_change_p_value, p)
                check.decision(
                    f"{what} cnps_change_significant",
                    point.cnps_change_significant,
                    None if p is None else p < ALPHA,
                    p,
                )
                previous = adjusted
    if min_group_size:
        check.assert_clean({"intervals": 20, "p_values": 5, "decisions": 5, "suppressed groups": 3})
    else:
        check.assert_clean({"intervals": 50, "p_values": 20, "decisions": 20})


def impact_recount(check: Check, report, rows, window, min_size: int, what: str) -> dict[int, dict]:
    """Compares every row of an impact report; returns the recount of each touchpoint."""
    shares = attributed_shares(rows)
    members = defaultdict(list)
    for r in rows:
        if in_window(r, window):
            members[r.touchpoint].append(r)
    check.equal(f"{what} touchpoints", sorted(t.touchpoint_id for t in report.touchpoints), sorted(members))
    recount = {}
    for t in report.touchpoints:
        encounters = members[t.touchpoint_id]
        where = f"{what} touchpoint {t.touchpoint_id} ({t.name})"
        check.equal(f"{where} encounters", t.encounters, len(encounters))
        check.equal(f"{where} candidates", t.candidates, len({r.candidate for r in encounters}))
        scores = [r.score for r in encounters if r.score is not None]
        score_figures(check, where, t, scores, min_size)
        attributed = [shares[r.id] for r in encounters if r.id in shares]
        check.equal(f"{where} attributions", t.attributions, len(attributed))
        visible = shown(scores, min_size) and shown(attributed, min_size)
        test = mean_test(attributed, SHIFTS) if visible else None
        if test and test.degenerate:
            check.counts["degenerate shifts"] += 1
        mean = float(np.mean(attributed)) if visible and attributed else None
        check.figure(f"{where} mean_attributed_shift", t.mean_attributed_shift, mean, 3)
        check.interval(
            f"{where} mean_attributed_shift interval",
            t.mean_attributed_shift_low,
            t.mean_attributed_shift_high,
            test and test.interval,
            3,
        )
        check.p_value(f"{where} mean_attributed_shift_p_value", t.mean_attributed_shift_p_value, test and test.p_value)
        recount[t.touchpoint_id] = {"mean": mean, "test": test, "encounters": len(encounters)}
    # Benjamini-Hochberg across the rows with a p-value.
    tested = [tid for tid, r in recount.items() if r["test"] is not None]
    decisions, close = bh_decisions([recount[tid]["test"].p_value for tid in tested])
    for figures in recount.values():
        figures["significant"] = None
    for tid, decision in zip(tested, decisions, strict=True):
        recount[tid]["significant"] = decision
    for t in report.touchpoints:
        expected = recount[t.touchpoint_id]["significant"]
        if close and expected is not None:
            check.counts["decisions skipped"] += 1
            continue
        check.decision(f"{what} touchpoint {t.touchpoint_id} significant", t.significant, expected, None)
    # The order: shown mean attributed shift ascending (none last), ties by encounters descending.
    keys = [
        (t.mean_attributed_shift is None, t.mean_attributed_shift or 0.0, -t.encounters, t.touchpoint_id)
        for t in report.touchpoints
    ]
    check.equal(f"{what} order", keys, sorted(keys))
    return recount


def test_touchpoint_impact(stats_admin, dataset, min_group_size):
    check = Check()
    for window in WINDOWS:
        report = ok(
            get_touchpoint_impact.sync_detailed(client=stats_admin, from_=window[0], to=window[1]),
            TouchpointImpactReport,
        )
        impact_recount(check, report, dataset["rows"], window, min_group_size, f"impact {window[0]}..{window[1]}")
    if min_group_size:
        check.assert_clean({"intervals": 20, "p_values": 10, "decisions": 10, "suppressed groups": 1})
    else:
        check.assert_clean({"intervals": 60, "p_values": 20, "decisions": 20})


def test_summary(stats_admin, dataset, min_group_size):
    rows = dataset["rows"]
    check = Check()
    significant_listed = 0
    for window in SUMMARY_WINDOWS:
        what = f"summary {window[0]}..{window[1]}"
        summary = ok(
            get_perception_summary.sync_detailed(client=stats_admin, from_=window[0], to=window[1]),
            PerceptionSummary,
        )
        previous_window = (window[0] - (window[1] - window[0]), window[0])
        check.equal(f"{what} previous_from", summary.previous_from, previous_window[0])
        current = [r for r in rows if in_window(r, window)]
        before = [r for r in rows if in_window(r, previous_window)]
        check.equal(f"{what} encounters", summary.encounters, len(current))
        check.equal(f"{what} candidates", summary.candidates, len({r.candidate for r in current}))
        scores = [r.score for r in current if r.score is not None]
        now = score_figures(check, what, summary, scores, min_group_size)
        previous_scores = [r.score for r in before if r.score is not None]
        check.equal(f"{what} previous_scored", summary.previous_scored, len(previous_scores))
        previous_shown = shown(previous_scores, min_group_size)
        check.suppressed(f"{what} previous", summary.previous_suppressed, not previous_shown)
        earlier = AdjustedNps.of(previous_scores) if previous_shown else None
        check.figure(f"{what} previous_cnps", summary.previous_cnps, cnps(previous_scores) if earlier else None, 1)
        check.interval(
            f"{what} previous cnps interval",
            summary.previous_cnps_low,
            summary.previous_cnps_high,
            earlier and earlier.interval(),
            1,
        )
        p = AdjustedNps.change_p_value(earlier, now) if earlier and now else None
        check.p_value(f"{what} cnps_change_p_value", summary.cnps_change_p_value, p)
        check.decision(
            f"{what} cnps_change_significant", summary.cnps_change_significant, None if p is None else p < ALPHA, p
        )

        # The touchpoints: the impact report's rows, tested as above, and the
        # most positive and negative chosen among the significant ones only.
        impact = ok(
            get_touchpoint_impact.sync_detailed(client=stats_admin, from_=window[0], to=window[1]),
            TouchpointImpactReport,
        )
        recount = impact_recount(check, impact, rows, window, min_group_size, f"{what} impact")
        tested = {tid: r for tid, r in recount.items() if r["significant"] is not None}
        significant = {tid: r for tid, r in tested.items() if r["significant"]}
        check.equal(f"{what} touchpoints_tested", summary.touchpoints_tested, len(tested))
        check.equal(f"{what} touchpoints_significant", summary.touchpoints_significant, len(significant))
        negative = sorted(
            (tid for tid, r in significant.items() if r["mean"] < 0),
            key=lambda tid: (significant[tid]["mean"], -significant[tid]["encounters"], tid),
        )[:3]
        positive = sorted(
            (tid for tid, r in significant.items() if r["mean"] > 0),
            key=lambda tid: (-significant[tid]["mean"], -significant[tid]["encounters"], tid),
        )[:3]
        check.equal(f"{what} most_negative", [t.touchpoint_id for t in summary.most_negative], negative)
        check.equal(f"{what} most_positive", [t.touchpoint_id for t in summary.most_positive], positive)
        for t in summary.most_negative + summary.most_positive:
            check.equal(f"{what} listed {t.touchpoint_id} significant", t.significant, True)
            significant_listed += 1
        # Some touchpoints are tested and not significant: the choice is not all of them.
        check.counts["touchpoints not significant"] += len(tested) - len(significant)
    at_least = {"intervals": 20, "p_values": 10, "decisions": 10}
    if not min_group_size:
        at_least.update({"touchpoints not significant": 1})
        assert significant_listed >= 4, "too few significant touchpoints listed to check the choice"
    check.assert_clean(at_least)


def test_perception_shift_by_kind(stats_admin, dataset, min_group_size):
    rows, touchpoints = dataset["rows"], dataset["touchpoints"]
    check = Check()
    for window in WINDOWS:
        report = ok(
            get_perception_shift.sync_detailed(
                client=stats_admin, from_=window[0], to=window[1], group_by=ShiftGroupBy.KIND
            ),
            PerceptionShiftReport,
        )
        scored = defaultdict(list)
        for r in rows:
            if in_window(r, window) and r.score is not None:
                scored[r.candidate].append(r)
        shifts = defaultdict(list)
        for encounters in scored.values():
            if len(encounters) >= 2:
                first = min(encounters, key=lambda r: (r.at, r.id))
                latest = max(encounters, key=lambda r: (r.at, r.id))
                shifts[touchpoints[latest.touchpoint].kind.value].append(latest.score - first.score)
        assert [g.group for g in report.groups] == [k.value for k in Kind]
        for group in report.groups:
            values = shifts[group.group]
            what = f"shift {window[0]}..{window[1]} {group.group}"
            check.equal(f"{what} candidates", group.candidates, len(values))
            visible = shown(values, min_group_size)
            check.suppressed(what, group.suppressed, not visible)
            test = mean_test(values, SHIFTS) if visible else None
            check.figure(f"{what} mean_shift", group.mean_shift, float(np.mean(values)) if visible else None, 2)
            check.interval(
                f"{what} mean_shift interval", group.mean_shift_low, group.mean_shift_high, test and test.interval, 2
            )
            if visible:
                check.equal(f"{what} improved", group.improved, sum(v > 0 for v in values))
                check.equal(f"{what} declined", group.declined, sum(v < 0 for v in values))
            else:
                check.equal(f"{what} withheld", (group.improved, group.unchanged, group.declined), (None, None, None))
                check.equal(f"{what} histogram", group.histogram, [])
    check.assert_clean({"intervals": 4 if min_group_size else 6})


def test_perception_gap(stats_admin, dataset, min_group_size):
    rows, touchpoints = dataset["rows"], dataset["touchpoints"]
    check = Check()
    gaps = Counter()
    group_of = {
        GapGroupBy.NONE: lambda r: "all",
        GapGroupBy.KIND: lambda r: touchpoints[r.touchpoint].kind.value,
        GapGroupBy.TOUCHPOINT: lambda r: str(r.touchpoint),
    }
    for window in WINDOWS:
        for group_by, key in group_of.items():
            response = get_perception_gap.sync_detailed(
                client=stats_admin, from_=window[0], to=window[1], group_by=group_by
            )
            if response.status_code != 200:
                # Recorded, so that the other groupings are still compared.
                check.fail(
                    f"gap {window[0]}..{window[1]} {group_by.value}",
                    f"{response.status_code}: {response.content[:300]!r}",
                )
                continue
            report = ok(response, PerceptionGapReport)
            members = defaultdict(list)
            for r in rows:
                if in_window(r, window):
                    members[key(r)].append(r)
            if group_by == GapGroupBy.TOUCHPOINT:
                expected_groups = [str(tid) for tid in sorted(int(g) for g in members)]
            else:
                expected_groups = ["all"] if group_by == GapGroupBy.NONE else [k.value for k in Kind]
            check.equal(f"gap {group_by.value} groups", [g.group for g in report.groups], expected_groups)
            for group in report.groups:
                what = f"gap {window[0]}..{window[1]} {group_by.value}={group.group}"
                by_source = defaultdict(list)
                for r in members[group.group]:
                    by_source[r.source].append(r)
                check.equal(f"{what} sources", [s.source for s in group.sources], SOURCES)
                scores = {}
                for s in group.sources:
                    encounters = by_source[s.source]
                    check.equal(f"{what} {s.source.value} encounters", s.encounters, len(encounters))
                    scores[s.source] = [r.score for r in encounters if r.score is not None]
                    score_figures(check, f"{what} {s.source.value}", s, scores[s.source], min_group_size)
                recruiters, candidates = scores[Source.RECRUITER_OBSERVATION], scores[Source.CANDIDATE_SURVEY]
                both_shown = shown(recruiters, min_group_size) and shown(candidates, min_group_size)
                welch = None
                if both_shown and len(recruiters) >= 2 and len(candidates) >= 2:
                    welch = stats.ttest_ind(recruiters, candidates, equal_var=False)
                    gaps["tested"] += 1
                difference = float(np.mean(recruiters) - np.mean(candidates)) if welch else None
                check.figure(f"{what} mean_score_gap", group.mean_score_gap, difference, 2)
                interval = welch and welch.confidence_interval(confidence_level=1 - ALPHA)
                check.interval(
                    f"{what} mean_score_gap interval",
                    group.mean_score_gap_low,
                    group.mean_score_gap_high,
                    interval and (interval.low, interval.high),
                    2,
                )
                p = welch and float(welch.pvalue)
                check.p_value(f"{what} mean_score_gap_p_value", group.mean_score_gap_p_value, p)
                check.decision(f"{what} gap_significant", group.gap_significant, None if p is None else p < ALPHA, p)
                if p is not None and p < ALPHA:
                    gaps["significant"] += 1
                # The gap of the cNPS shown (each rounded to 1 decimal), so that
                # it is the difference of the two figures a reader sees.
                shown_cnps = [
                    round_half_away(cnps(v), 1) if both_shown and v else None for v in (recruiters, candidates)
                ]
                cnps_gap = None if None in shown_cnps else shown_cnps[0] - shown_cnps[1]
                check.figure(f"{what} cnps_gap", group.cnps_gap, cnps_gap, 1)
    at_least = {"intervals": 40, "p_values": 10, "decisions": 10}
    if min_group_size:
        at_least["suppressed groups"] = 10
    else:
        at_least = {"intervals": 150, "p_values": 30, "decisions": 30}
        # Recruiters' bias shows somewhere, and not everywhere.
        assert 0 < gaps["significant"] < gaps["tested"], gaps
    check.assert_clean(at_least)


def round_half_away(value: float, decimals: int) -> float:
    factor = 10**decimals
    return math.copysign(math.floor(abs(value) * factor + 0.5), value) / factor


def test_the_check_compares_a_dataset_with_edits_and_deletes(dataset):
    # Guards the premise of the comparisons above.
    rows = dataset["rows"]
    assert len(rows) >= 2400
    assert 0.25 <= sum(r.score is None for r in rows) / len(rows) <= 0.35
    assert {r.source for r in rows} == set(SOURCES)
    assert len({r.candidate for r in rows}) == CANDIDATES
