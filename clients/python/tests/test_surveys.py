"""Candidate surveys, through the generated client.

A recruiter invites candidates after their interview and gets each link;
the candidate's side is the public page, whose form is posted here with
httpx as a browser without scripts posts it (scripts/survey-e2e.sh drives
the page in a real browser). Then: the confidential answer in the journey,
the cool-down, a refused batch, an anonymous answer that counts but names
nobody, README's "Asking candidates" example run as written, and the
survey-responses report against a recount of the invitations.

Every invitation here is created today, so the report's window is the days
around today (a run across midnight still falls in it); this suite's other
data lies in 2024 and 2025. The survey pages are rate-limited per address
(SURVEY_RATE_BURST, 20 by default): this file makes fewer than ten page
requests.
"""

import contextlib
import io
import re
import statistics
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import httpx
import pytest
from support import make_client, ok, refused
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.candidates import create_candidate, get_candidate_journey
from touchpoint_tracker_client.api.encounters import create_encounter
from touchpoint_tracker_client.api.keys import create_api_key
from touchpoint_tracker_client.api.organization import get_organization
from touchpoint_tracker_client.api.reports import get_perception_summary, get_survey_responses
from touchpoint_tracker_client.api.surveys import (
    create_survey_invitation,
    create_survey_invitation_batch,
    get_survey_invitation,
    list_survey_invitations,
)
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.models import (
    Candidate,
    Channel,
    CreateApiKey,
    CreateCandidate,
    CreatedApiKey,
    CreatedSurveyInvitation,
    CreateEncounter,
    CreateSurveyInvitation,
    CreateTouchpoint,
    Encounter,
    ErrorCode,
    InvitationStatus,
    Journey,
    Kind,
    Organization,
    PerceptionSummary,
    ResponsesGroupBy,
    Role,
    Source,
    Stage,
    SurveyInvitation,
    SurveyInvitationBatch,
    SurveyInvitationPage,
    SurveyLocale,
    SurveyMode,
    SurveyResponsesReport,
    Touchpoint,
)

README = Path(__file__).resolve().parents[3] / "README.md"


def today():
    return datetime.now(UTC).date()


@pytest.fixture(scope="module")
def recruiter_key(admin: AuthenticatedClient) -> CreatedApiKey:
    body = CreateApiKey(name="Recruiter Minh (surveys)", role=Role.RECRUITER)
    return ok(create_api_key.sync_detailed(client=admin, body=body), CreatedApiKey, 201)


@pytest.fixture(scope="module")
def recruiter(base_url: str, recruiter_key) -> AuthenticatedClient:
    return make_client(base_url, recruiter_key.token)


@pytest.fixture(scope="module")
def touchpoints(admin: AuthenticatedClient) -> dict[str, Touchpoint]:
    # "Onsite interview" is also the touchpoint README's example asks about.
    created = {}
    for name, stage in [("Onsite interview", Stage.INTERVIEW), ("Offer meeting", Stage.OFFER)]:
        body = CreateTouchpoint(name=name, kind=Kind.EMPLOYER_CREATED, channel=Channel.INTERVIEW, stage=stage)
        created[name] = ok(create_touchpoint.sync_detailed(client=admin, body=body), Touchpoint, 201)
    return created


def candidate(client: AuthenticatedClient, ref: str, name: str) -> Candidate:
    body = CreateCandidate(external_ref=ref, display_name=name, stage=Stage.INTERVIEW)
    return ok(create_candidate.sync_detailed(client=client, body=body), Candidate, 201)


def invite(client, ref: str, touchpoint: Touchpoint, **options) -> CreatedSurveyInvitation:
    body = CreateSurveyInvitation(candidate_external_ref=ref, touchpoint_id=touchpoint.id, **options)
    return ok(create_survey_invitation.sync_detailed(client=client, body=body), CreatedSurveyInvitation, 201)


def answer(url: str, score: int, comment: str = "") -> httpx.Response:
    """The page's form, as a browser without scripts posts it."""
    return httpx.post(url, data={"score": str(score), "comment": comment}, timeout=30.0)


def invitation(client, invitation_id: int) -> SurveyInvitation:
    return ok(get_survey_invitation.sync_detailed(invitation_id, client=client), SurveyInvitation)


def test_a_recruiter_invites_after_an_interview_and_the_answer_is_in_the_journey(
    base_url, recruiter, recruiter_key, touchpoints
):
    interview = touchpoints["Onsite interview"]
    lan = candidate(recruiter, "SURVEY-LAN", "Vo Thi Lan")
    # The recruiter's own impression of the interview, then the candidate's.
    body = CreateEncounter(
        candidate_id=lan.id, touchpoint_id=interview.id, occurred_at=datetime.now(UTC) - timedelta(hours=1), score=6
    )
    ok(create_encounter.sync_detailed(client=recruiter, body=body), Encounter, 201)

    created = invite(recruiter, "SURVEY-LAN", interview, locale=SurveyLocale.EN)
    sent = created.invitation
    assert created.survey_url.startswith(f"{base_url}/s/")
    assert (sent.candidate_id, sent.touchpoint_id) == (lan.id, interview.id)
    assert (sent.status, sent.mode, sent.locale) == (InvitationStatus.CREATED, SurveyMode.CONFIDENTIAL, SurveyLocale.EN)
    assert sent.expires_at - sent.created_at == timedelta(days=30)  # the default
    assert (sent.encounter_id, sent.answered_at, sent.email_pending) == (None, None, False)

    comment = "Friendly panel, but nobody told me the next steps."
    page = answer(created.survey_url, 9, comment)
    assert page.status_code == 200, page.text[:300]
    assert page.headers["content-type"].startswith("text/html")

    answered = invitation(recruiter, sent.id)
    assert answered.status == InvitationStatus.ANSWERED
    assert answered.encounter_id is not None
    assert answered.opened_at is not None  # an answer is an opening too

    journey = ok(get_candidate_journey.sync_detailed(lan.id, client=recruiter), Journey)
    assert [(s.source, s.score) for s in journey.steps] == [
        (Source.RECRUITER_OBSERVATION, 6),
        (Source.CANDIDATE_SURVEY, 9),
    ]
    step = journey.steps[1]
    assert (step.encounter_id, step.touchpoint_id, step.note, step.shift) == (
        answered.encounter_id,
        interview.id,
        comment,
        3,
    )
    assert step.occurred_at == answered.answered_at

    # The link takes one answer.
    assert answer(created.survey_url, 2).status_code == 409
    assert invitation(recruiter, sent.id).encounter_id == answered.encounter_id


def test_a_second_invitation_within_the_cool_down_is_refused(admin, recruiter, touchpoints):
    settings = ok(get_organization.sync_detailed(client=admin), Organization)
    assert settings.survey_cooldown_days == 14  # the default
    candidate(recruiter, "SURVEY-MINH", "Tran Quoc Minh")
    created = invite(recruiter, "SURVEY-MINH", touchpoints["Onsite interview"])
    first = created.invitation
    # Opened, not answered (for the report's recount below).
    assert httpx.post(f"{created.survey_url}/opened", timeout=30.0).status_code == 204
    assert invitation(recruiter, first.id).status == InvitationStatus.OPENED

    # Another touchpoint, the same candidate, the same day.
    body = CreateSurveyInvitation(candidate_external_ref="SURVEY-MINH", touchpoint_id=touchpoints["Offer meeting"].id)
    error = refused(create_survey_invitation.sync_detailed(client=recruiter, body=body), 409)
    assert error.error.code == ErrorCode.SURVEY_COOLDOWN
    assert f"invitation {first.id}" in error.error.message  # it names the earlier one
    page = ok(
        list_survey_invitations.sync_detailed(client=recruiter, candidate_id=first.candidate_id), SurveyInvitationPage
    )
    assert [i.id for i in page.items] == [first.id]


def test_a_batch_with_one_bad_item_creates_nothing(recruiter, touchpoints):
    interview = touchpoints["Onsite interview"]
    people = [candidate(recruiter, f"SURVEY-BATCH-{n}", f"Batch candidate {n}") for n in range(2)]
    items = [
        CreateSurveyInvitation(candidate_external_ref="SURVEY-BATCH-0", touchpoint_id=interview.id),
        CreateSurveyInvitation(candidate_external_ref="SURVEY-NOBODY", touchpoint_id=interview.id),
        CreateSurveyInvitation(candidate_external_ref="SURVEY-BATCH-1", touchpoint_id=interview.id),
    ]
    error = refused(create_survey_invitation_batch.sync_detailed(client=recruiter, body=items), 422)
    assert error.error.code == ErrorCode.INVALID_ITEMS
    assert [(i.index, i.error.code, i.error.field) for i in error.items] == [
        (1, ErrorCode.UNKNOWN_REFERENCE, "candidate_external_ref")
    ]
    for person in people:  # all or nothing
        page = ok(list_survey_invitations.sync_detailed(client=recruiter, candidate_id=person.id), SurveyInvitationPage)
        assert page.items == []

    # Without it, the batch goes through: one link per item, in order.
    del items[1]
    batch = ok(create_survey_invitation_batch.sync_detailed(client=recruiter, body=items), SurveyInvitationBatch, 201)
    assert [c.invitation.candidate_id for c in batch.items] == [p.id for p in people]
    assert len({c.survey_url for c in batch.items}) == 2
    # A second confidential answer, so the report's median has two to take.
    assert answer(batch.items[0].survey_url, 7).status_code == 200


def test_an_anonymous_answer_counts_but_names_nobody(base_url, recruiter, touchpoints):
    interview = touchpoints["Onsite interview"]
    window = {"from_": today(), "to": today() + timedelta(days=1)}
    before = ok(get_perception_summary.sync_detailed(client=recruiter, **window), PerceptionSummary)

    hoa = candidate(recruiter, "SURVEY-HOA", "Nguyen Thi Hoa")
    created = invite(recruiter, "SURVEY-HOA", interview, mode=SurveyMode.ANONYMOUS, locale=SurveyLocale.VI)
    # The page's script reports the opening; for an anonymous link only its day is kept.
    assert httpx.post(f"{created.survey_url}/opened", timeout=30.0).status_code == 204
    assert answer(created.survey_url, 3, "Phòng chờ quá nóng.").status_code == 200

    answered = invitation(recruiter, created.invitation.id)
    assert answered.status == InvitationStatus.ANSWERED
    assert answered.encounter_id is None
    for moment in (answered.answered_at, answered.opened_at):
        assert (moment.utcoffset(), moment.time()) == (timedelta(0), time(0)), moment  # midnight UTC
        assert moment.date() == today()

    journey = ok(get_candidate_journey.sync_detailed(hoa.id, client=recruiter), Journey)
    assert journey.steps == []

    # It counts as a score of the window, yet reaches no candidate.
    after = ok(get_perception_summary.sync_detailed(client=recruiter, **window), PerceptionSummary)
    assert after.scored == before.scored + 1
    assert after.candidates == before.candidates


def readme_block(name: str) -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(rf"<!-- {name}:start -->\n```python\n(.*?)```\n<!-- {name}:end -->", text, re.DOTALL)
    assert found, f"README.md has no ```python block between the {name} markers"
    return found.group(1)


def test_the_readme_example_runs_as_written(base_url, recruiter, recruiter_key, touchpoints, monkeypatch):
    # The example's candidate; the touchpoint it looks up is the fixture's.
    ref = candidate(recruiter, "ATS-2001", "Pham Van Duc")
    monkeypatch.setenv("TT_BASE_URL", base_url)
    monkeypatch.setenv("TT_TOKEN", recruiter_key.token)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        # The block as README shows it, in a namespace of its own.
        code = compile(readme_block("surveys-python"), "README.md (surveys-python)", "exec")
        exec(code, {"__name__": "readme"})  # noqa: S102
    printed = out.getvalue()

    [link] = re.findall(rf"{re.escape(base_url)}/s/\S+", printed)
    [made] = ok(
        list_survey_invitations.sync_detailed(client=recruiter, candidate_id=ref.id), SurveyInvitationPage
    ).items
    assert (made.touchpoint_id, made.locale, made.status) == (
        touchpoints["Onsite interview"].id,
        SurveyLocale.VI,
        InvitationStatus.CREATED,
    )
    # The link works (a GET never writes, so the invitation stays unanswered).
    assert httpx.get(link, timeout=30.0).status_code == 200
    # The report's line for the interview.
    assert re.search(r"^Onsite interview: \d+ of \d+ answered", printed, re.MULTILINE), printed


def test_the_survey_responses_report_equals_a_recount_of_the_invitations(recruiter, touchpoints):
    start, end = today() - timedelta(days=1), today() + timedelta(days=2)
    invitations, cursor = [], None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = ok(list_survey_invitations.sync_detailed(client=recruiter, limit=500, **extra), SurveyInvitationPage)
        invitations += page.items
        if not page.next_cursor:
            break
        cursor = page.next_cursor

    expected = {}
    for i in invitations:
        if not start <= i.created_at.astimezone(UTC).date() < end:
            continue
        group = expected.setdefault(
            str(i.touchpoint_id), {"invited": 0, "sent": 0, "opened": 0, "answered": 0, "hours": []}
        )
        group["invited"] += 1
        group["sent"] += i.sent_at is not None
        group["opened"] += i.opened_at is not None
        if i.answered_at is not None:
            group["answered"] += 1
            if i.mode == SurveyMode.CONFIDENTIAL:  # anonymous ones keep only the day
                group["hours"].append((i.answered_at - i.created_at).total_seconds() / 3600)
    interview = expected[str(touchpoints["Onsite interview"].id)]
    # The earlier tests' invitations: opened without an answer, two confidential answers, one anonymous.
    assert interview["opened"] > interview["answered"] >= 3 and len(interview["hours"]) >= 2, interview

    report = ok(
        get_survey_responses.sync_detailed(client=recruiter, from_=start, to=end, group_by=ResponsesGroupBy.TOUCHPOINT),
        SurveyResponsesReport,
    )
    got = {
        g.group: (g.invited, g.sent, g.opened, g.answered, g.response_rate, g.median_hours_to_answer, g.suppressed)
        for g in report.groups
    }
    assert got == {
        group: (
            e["invited"],
            e["sent"],
            e["opened"],
            e["answered"],
            e["answered"] / e["invited"],
            round(statistics.median(e["hours"]), 2) if e["hours"] else None,
            False,  # min_group_size is 0 in this organization
        )
        for group, e in expected.items()
    }
