"""The three users of the service, through the generated client.

(a) an HR admin sets up the touchpoint catalog and the keys of a recruiter
    and of a reporting job;
(b) the recruiter records candidates and their encounters, with scores;
    the reporting job's key may not write;
(c) the reporting job reads the perception trend and the touchpoint impact
    (checked against numbers worked out by hand below) and exports the
    encounters incrementally.

The data, all in March 2025 but one encounter (times UTC):

    candidate  when   touchpoint (kind)                  score
    C1         03-02  Careers site (employer_created)    7
    C1         03-05  Glassdoor reviews (true)           -
    C1         03-09  Interviewer no-show (unexpected)   3
    C1         03-20  Technical interview (employer_c.)  9
    C2         03-03  Careers site                       10
    C2         03-10  Technical interview                6
    C2         04-02  Careers site                       9     (April)
    C3         03-04  Glassdoor reviews                  8
    C3         03-08  Interviewer no-show                -
    C3         03-12  Technical interview                9

Attributed shift (README): each shift between two consecutive scores of a
candidate is shared equally among that candidate's encounters after the
earlier score, up to and including the later one:

    C1 7 -> 3 = -4 over Glassdoor (-2) and no-show (-2); 3 -> 9 = +6 to the interview
    C2 10 -> 6 = -4 to the interview;  6 -> 9 = +3 to the April careers site
    C3 8 -> 9 = +1 over no-show (+0.5) and the interview (+0.5)
"""

import json
from datetime import UTC, date, datetime

import pytest
from support import make_client, ok, refused
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.candidates import create_candidate, get_candidate_journey
from touchpoint_tracker_client.api.encounters import create_encounter, get_encounter, update_encounter
from touchpoint_tracker_client.api.exports import export_encounters
from touchpoint_tracker_client.api.keys import create_api_key, list_api_keys
from touchpoint_tracker_client.api.reports import get_perception_trend, get_touchpoint_impact
from touchpoint_tracker_client.api.touchpoints import create_touchpoint, list_touchpoints
from touchpoint_tracker_client.models import (
    ApiKeyPage,
    Candidate,
    Channel,
    CreateApiKey,
    CreateCandidate,
    CreatedApiKey,
    CreateEncounter,
    CreateTouchpoint,
    Encounter,
    ErrorCode,
    ExportRecordExportedDeletion,
    ExportRecordExportedEncounter,
    ExportRecordExportEnd,
    Journey,
    Kind,
    PerceptionTrend,
    Role,
    Source,
    Stage,
    Touchpoint,
    TouchpointImpactReport,
    TouchpointPage,
    TrendBucket,
    TrendGroupBy,
    UpdateEncounter,
)
from touchpoint_tracker_client.types import UNSET

CATALOG = [
    # name, kind, channel, stage
    ("Careers site", Kind.EMPLOYER_CREATED, Channel.CAREERS_SITE, Stage.AWARENESS),
    ("Technical interview", Kind.EMPLOYER_CREATED, Channel.INTERVIEW, Stage.INTERVIEW),
    ("Glassdoor reviews", Kind.TRUE, Channel.REVIEW_SITE, Stage.CONSIDERATION),
    ("Interviewer no-show", Kind.UNEXPECTED, Channel.INTERVIEW, Stage.INTERVIEW),
]

ENCOUNTERS = [
    # candidate, (month, day, hour), touchpoint, score
    ("C1", (3, 2, 9), "Careers site", 7),
    ("C1", (3, 5, 20), "Glassdoor reviews", None),
    ("C1", (3, 9, 14), "Interviewer no-show", 3),
    ("C1", (3, 20, 10), "Technical interview", 9),
    ("C2", (3, 3, 11), "Careers site", 10),
    ("C2", (3, 10, 15), "Technical interview", 6),
    ("C2", (4, 2, 8), "Careers site", 9),
    ("C3", (3, 4, 18), "Glassdoor reviews", 8),
    ("C3", (3, 8, 12), "Interviewer no-show", None),
    ("C3", (3, 12, 16), "Technical interview", 9),
]

CANDIDATES = {
    "C1": ("ATS-1042", "Nguyen Thi Lan", Stage.INTERVIEW),
    "C2": ("ATS-1043", "Tran Van Minh", Stage.OFFER),
    "C3": ("ATS-1044", "Le Hoang Anh", Stage.INTERVIEW),
}


def at(month: int, day: int, hour: int) -> datetime:
    return datetime(2025, month, day, hour, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog(admin: AuthenticatedClient) -> dict[str, Touchpoint]:
    touchpoints = {}
    for name, kind, channel, stage in CATALOG:
        body = CreateTouchpoint(name=name, kind=kind, channel=channel, stage=stage, description=f"{name} (suite)")
        touchpoints[name] = ok(create_touchpoint.sync_detailed(client=admin, body=body), Touchpoint, 201)
    return touchpoints


@pytest.fixture(scope="module")
def keys(admin: AuthenticatedClient) -> dict[Role, CreatedApiKey]:
    created = {}
    for role, name in [(Role.RECRUITER, "Recruiter Lan"), (Role.REPORTER, "Monthly BI export")]:
        body = CreateApiKey(name=name, role=role)
        created[role] = ok(create_api_key.sync_detailed(client=admin, body=body), CreatedApiKey, 201)
    return created


@pytest.fixture(scope="module")
def recruiter(base_url: str, keys) -> AuthenticatedClient:
    return make_client(base_url, keys[Role.RECRUITER].token)


@pytest.fixture(scope="module")
def reporter(base_url: str, keys) -> AuthenticatedClient:
    return make_client(base_url, keys[Role.REPORTER].token)


@pytest.fixture(scope="module")
def recorded(recruiter: AuthenticatedClient, catalog) -> dict:
    """The recruiter's candidates and encounters, as the service answered."""
    candidates = {}
    for label, (ref, name, stage) in CANDIDATES.items():
        body = CreateCandidate(external_ref=ref, display_name=name, stage=stage)
        candidates[label] = ok(create_candidate.sync_detailed(client=recruiter, body=body), Candidate, 201)
    encounters = []
    for label, when, touchpoint, score in ENCOUNTERS:
        body = CreateEncounter(
            candidate_id=candidates[label].id,
            touchpoint_id=catalog[touchpoint].id,
            occurred_at=at(*when),
            score=score,
            note="Waited 40 minutes, nobody came" if touchpoint == "Interviewer no-show" else UNSET,
        )
        encounters.append(ok(create_encounter.sync_detailed(client=recruiter, body=body), Encounter, 201))
    return {"candidates": candidates, "encounters": encounters}


# (a) The HR admin's catalog and keys.


def test_admin_sets_up_a_catalog_of_all_three_kinds(admin, catalog):
    for name, kind, channel, stage in CATALOG:
        touchpoint = catalog[name]
        assert (touchpoint.name, touchpoint.kind, touchpoint.channel, touchpoint.stage) == (name, kind, channel, stage)
        assert touchpoint.description == f"{name} (suite)"
        assert touchpoint.archived_at is None
    assert {t.kind for t in catalog.values()} == {Kind.EMPLOYER_CREATED, Kind.TRUE, Kind.UNEXPECTED}

    # The catalog as the API lists it (other tests may add touchpoints of their own).
    ours = {t.id: t.name for t in catalog.values()}
    page = ok(list_touchpoints.sync_detailed(client=admin, limit=500), TouchpointPage)
    assert {t.id: t.name for t in page.items if t.id in ours} == ours
    for kind in Kind:
        page = ok(list_touchpoints.sync_detailed(client=admin, kind=kind, limit=500), TouchpointPage)
        assert {t.kind for t in page.items} == {kind}
        assert sorted(t.name for t in page.items if t.id in ours) == sorted(n for n, k, *_ in CATALOG if k == kind)


def test_admin_creates_keys_for_a_recruiter_and_a_reporting_job(admin, keys):
    recruiter_key, reporter_key = keys[Role.RECRUITER], keys[Role.REPORTER]
    assert (recruiter_key.key.name, recruiter_key.key.role) == ("Recruiter Lan", Role.RECRUITER)
    assert (reporter_key.key.name, reporter_key.key.role) == ("Monthly BI export", Role.REPORTER)
    for created in (recruiter_key, reporter_key):
        assert created.token.startswith(created.key.token_prefix)
        assert created.key.revoked_at is None

    listed = {k.id: k for k in ok(list_api_keys.sync_detailed(client=admin), ApiKeyPage).items}
    assert listed[recruiter_key.key.id].role == Role.RECRUITER
    assert listed[reporter_key.key.id].name == "Monthly BI export"
    assert {k.role for k in listed.values()} == {Role.ADMIN, Role.RECRUITER, Role.REPORTER}


# (b) The recruiter's candidates and encounters; the reporter may not write.


def test_recruiter_records_candidates_and_scored_encounters(recruiter, keys, catalog, recorded):
    candidates, encounters = recorded["candidates"], recorded["encounters"]
    for label, (ref, name, stage) in CANDIDATES.items():
        assert (candidates[label].external_ref, candidates[label].display_name) == (ref, name)
        assert candidates[label].stage == stage

    recruiter_key_id = keys[Role.RECRUITER].key.id
    for encounter, (label, when, touchpoint, score) in zip(encounters, ENCOUNTERS, strict=True):
        assert encounter.candidate_id == candidates[label].id
        assert encounter.touchpoint_id == catalog[touchpoint].id
        assert encounter.occurred_at == at(*when)
        assert encounter.score == score
        assert encounter.source == Source.RECRUITER_OBSERVATION  # the documented default
        assert encounter.recorded_by_key_id == recruiter_key_id

    # Read back: the same values.
    again = ok(get_encounter.sync_detailed(encounters[2].id, client=recruiter), Encounter)
    assert (again.score, again.note) == (3, "Waited 40 minutes, nobody came")

    # C1's journey: 7, (unscored), 3, 9.
    journey = ok(get_candidate_journey.sync_detailed(candidates["C1"].id, client=recruiter), Journey)
    assert (journey.first_score, journey.latest_score, journey.overall_shift) == (7, 9, 2)
    assert [s.touchpoint_name for s in journey.steps] == [
        "Careers site",
        "Glassdoor reviews",
        "Interviewer no-show",
        "Technical interview",
    ]
    assert [s.score for s in journey.steps] == [7, None, 3, 9]
    assert [s.shift for s in journey.steps] == [None, None, -4, 6]
    assert journey.steps[2].kind == Kind.UNEXPECTED


def test_recruiter_may_not_change_the_catalog(recruiter):
    body = CreateTouchpoint(name="Job ad", kind=Kind.EMPLOYER_CREATED, channel=Channel.JOB_BOARD, stage=Stage.AWARENESS)
    error = refused(create_touchpoint.sync_detailed(client=recruiter, body=body), 403)
    assert error.error.code == ErrorCode.FORBIDDEN


def test_reporter_may_not_write(reporter, catalog, recorded):
    body = CreateCandidate(external_ref="ATS-9999", display_name="Not allowed")
    error = refused(create_candidate.sync_detailed(client=reporter, body=body), 403)
    assert error.error.code == ErrorCode.FORBIDDEN
    assert error.error.message

    body = CreateEncounter(
        candidate_id=recorded["candidates"]["C1"].id,
        touchpoint_id=catalog["Careers site"].id,
        occurred_at=at(3, 25, 9),
        score=10,
    )
    error = refused(create_encounter.sync_detailed(client=reporter, body=body), 403)
    assert error.error.code == ErrorCode.FORBIDDEN


# (c) The reporting job.


def test_reporting_job_reads_the_perception_trend(reporter, recorded):
    # All of March: scores 7, 3, 9, 10, 6, 8, 9 (seven of nine encounters).
    # Promoters (9-10): 9, 10, 9 = 3; passives (7-8): 7, 8 = 2; detractors (0-6): 3, 6 = 2.
    # cNPS = (3 - 2) / 7 * 100 = 14.29 -> 14.3; mean = 52 / 7 = 7.43.
    trend = ok(
        get_perception_trend.sync_detailed(client=reporter, from_=date(2025, 3, 1), to=date(2025, 4, 1)),
        PerceptionTrend,
    )
    assert (trend.bucket, trend.group_by) == (TrendBucket.MONTH, TrendGroupBy.NONE)  # the defaults
    assert [s.group for s in trend.series] == ["all"]
    [march] = trend.series[0].points
    assert march.bucket_start == date(2025, 3, 1)
    assert (march.encounters, march.scored) == (9, 7)
    assert (march.promoters, march.passives, march.detractors) == (3, 2, 2)
    assert march.cnps == 14.3
    assert march.mean_score == 7.43

    # Monthly by kind, March to May.
    trend = ok(
        get_perception_trend.sync_detailed(
            client=reporter,
            from_=date(2025, 3, 1),
            to=date(2025, 6, 1),
            bucket=TrendBucket.MONTH,
            group_by=TrendGroupBy.KIND,
        ),
        PerceptionTrend,
    )
    series = {s.group: s.points for s in trend.series}
    assert set(series) == {"employer_created", "true", "unexpected"}
    for points in series.values():
        assert [p.bucket_start for p in points] == [date(2025, 3, 1), date(2025, 4, 1), date(2025, 5, 1)]

    def row(p):
        return (p.encounters, p.scored, p.promoters, p.passives, p.detractors, p.mean_score, p.cnps)

    # employer_created in March: careers site 7, 10 and interviews 9, 6, 9:
    # 3 promoters, 1 passive, 1 detractor: cNPS (3 - 1) / 5 = 40.0; mean 41 / 5 = 8.2.
    # In April, C2's careers-site visit scored 9: cNPS 100.0. May is empty:
    # zero counts and null (never 0) mean and cNPS.
    assert [row(p) for p in series["employer_created"]] == [
        (5, 5, 3, 1, 1, 8.2, 40.0),
        (1, 1, 1, 0, 0, 9.0, 100.0),
        (0, 0, 0, 0, 0, None, None),
    ]
    # true: Glassdoor twice, scored once (8, a passive): cNPS 0.0, not null.
    assert row(series["true"][0]) == (2, 1, 0, 1, 0, 8.0, 0.0)
    # unexpected: the no-show twice, scored once (3, a detractor).
    assert row(series["unexpected"][0]) == (2, 1, 0, 0, 1, 3.0, -100.0)
    for kind in ("true", "unexpected"):
        assert [row(p) for p in series[kind][1:]] == [(0, 0, 0, 0, 0, None, None)] * 2


def test_reporting_job_reads_the_touchpoint_impact(reporter, catalog, recorded):
    report = ok(
        get_touchpoint_impact.sync_detailed(client=reporter, from_=date(2025, 3, 1), to=date(2025, 4, 1)),
        TouchpointImpactReport,
    )
    assert (report.from_, report.to) == (date(2025, 3, 1), date(2025, 4, 1))
    # Attributed in March (see the module docstring):
    #   Glassdoor   -2 (C1)                     sum -2.0, 1 attribution,  mean -2.0
    #   no-show     -2 (C1), +0.5 (C3)          sum -1.5, 2 attributions, mean -0.75
    #   interview   +6 (C1), -4 (C2), +0.5 (C3) sum  2.5, 3 attributions, mean 0.833
    #   careers     none in March (C2's +3 went to the April visit): mean null, last.
    rows = [
        (
            t.name,
            t.kind,
            t.encounters,
            t.candidates,
            t.scored,
            t.mean_score,
            t.cnps,
            t.attributed_shift_sum,
            t.attributions,
            t.mean_attributed_shift,
        )
        for t in report.touchpoints
    ]
    assert rows == [
        ("Glassdoor reviews", Kind.TRUE, 2, 2, 1, 8.0, 0.0, -2.0, 1, -2.0),
        ("Interviewer no-show", Kind.UNEXPECTED, 2, 2, 1, 3.0, -100.0, -1.5, 2, -0.75),
        # scores 9, 6, 9: 2 promoters, 1 detractor: cNPS 33.3; mean 8.0.
        ("Technical interview", Kind.EMPLOYER_CREATED, 3, 3, 3, 8.0, 33.3, 2.5, 3, 0.833),
        # scores 7, 10: 1 promoter, 1 passive: cNPS 50.0; mean 8.5.
        ("Careers site", Kind.EMPLOYER_CREATED, 2, 2, 2, 8.5, 50.0, 0.0, 0, None),
    ]
    assert [t.touchpoint_id for t in report.touchpoints] == [
        catalog[name].id for name in ("Glassdoor reviews", "Interviewer no-show", "Technical interview", "Careers site")
    ]


def export(client: AuthenticatedClient, cursor: str | None = None):
    """One NDJSON export: its records, parsed into the generated models, and the next cursor.

    The generated client hands the 200 body over as one ``str``: it has no
    type for the NDJSON stream, so the lines are split and each is parsed
    into the model its ``type`` names.
    """
    response = export_encounters.sync_detailed(client=client, cursor=cursor if cursor is not None else UNSET)
    assert response.status_code == 200, response.content[:500]
    assert response.headers["content-type"].startswith("application/x-ndjson")
    assert isinstance(response.parsed, str)
    models = {
        "encounter": ExportRecordExportedEncounter,
        "deleted": ExportRecordExportedDeletion,
        "end": ExportRecordExportEnd,
    }
    records = [models[line["type"]].from_dict(line) for line in map(json.loads, response.parsed.splitlines())]
    *changes, end = records
    assert isinstance(end, ExportRecordExportEnd), "an export ends with its end record"
    assert end.rows == len(changes)
    assert response.headers["x-next-cursor"] == end.next_cursor
    seqs = [c.change_seq for c in changes]
    assert seqs == sorted(seqs)
    return changes, end.next_cursor


def test_reporting_job_exports_encounters_incrementally(reporter, recruiter, catalog, recorded):
    # The first export, without a cursor: every encounter, once, as recorded.
    changes, cursor = export(reporter)
    assert all(isinstance(c, ExportRecordExportedEncounter) for c in changes)
    exported = {c.encounter.id: c.encounter for c in changes}
    assert len(changes) == len(exported) == len(ENCOUNTERS)
    for encounter in recorded["encounters"]:
        assert exported[encounter.id].score == encounter.score
        assert exported[encounter.id].occurred_at == encounter.occurred_at

    # Meanwhile C3's Glassdoor score is corrected and C2 meets the no-show.
    glassdoor_c3 = recorded["encounters"][7]
    changed = ok(
        update_encounter.sync_detailed(glassdoor_c3.id, client=recruiter, body=UpdateEncounter(score=5, note="typo")),
        Encounter,
    )
    assert (changed.score, changed.note) == (5, "typo")
    body = CreateEncounter(
        candidate_id=recorded["candidates"]["C2"].id,
        touchpoint_id=catalog["Interviewer no-show"].id,
        occurred_at=at(4, 9, 14),
        source=Source.CANDIDATE_SURVEY,
        score=2,
    )
    added = ok(create_encounter.sync_detailed(client=recruiter, body=body), Encounter, 201)

    # The second export, from the first one's cursor: only those two.
    changes, cursor = export(reporter, cursor)
    assert [c.encounter.id for c in changes] == [glassdoor_c3.id, added.id]
    assert (changes[0].encounter.score, changes[0].encounter.note) == (5, "typo")
    assert (changes[1].encounter.score, changes[1].encounter.source) == (2, Source.CANDIDATE_SURVEY)
    assert changes[1].encounter.candidate_id == recorded["candidates"]["C2"].id

    # And a third: nothing new.
    changes, _ = export(reporter, cursor)
    assert changes == []
