"""Typed errors: refusals arrive as the documented ErrorBody, parsed by the client."""

from datetime import UTC, date, datetime

import pytest
from support import make_client, ok, refused
from touchpoint_tracker_client.api.candidates import create_candidate, get_candidate
from touchpoint_tracker_client.api.encounters import create_encounter, update_encounter
from touchpoint_tracker_client.api.reports import get_perception_trend
from touchpoint_tracker_client.api.touchpoints import create_touchpoint, get_touchpoint
from touchpoint_tracker_client.models import (
    Candidate,
    Channel,
    CreateCandidate,
    CreateEncounter,
    CreateTouchpoint,
    ErrorCode,
    Kind,
    Stage,
    Touchpoint,
    UpdateEncounter,
)


@pytest.fixture(scope="module")
def touchpoint(admin) -> Touchpoint:
    body = CreateTouchpoint(name="Offer call", kind=Kind.EMPLOYER_CREATED, channel=Channel.PHONE, stage=Stage.OFFER)
    return ok(create_touchpoint.sync_detailed(client=admin, body=body), Touchpoint, 201)


@pytest.fixture(scope="module")
def candidate(admin) -> Candidate:
    body = CreateCandidate(external_ref="ATS-ERR-1", display_name="Pham Quoc Bao")
    return ok(create_candidate.sync_detailed(client=admin, body=body), Candidate, 201)


def test_a_score_of_11_is_a_422_naming_the_field(admin, touchpoint, candidate):
    body = CreateEncounter(
        candidate_id=candidate.id,
        touchpoint_id=touchpoint.id,
        occurred_at=datetime(2025, 6, 1, 9, 0, tzinfo=UTC),
        score=11,
    )
    error = refused(create_encounter.sync_detailed(client=admin, body=body), 422)
    assert error.error.code == ErrorCode.VALIDATION_FAILED
    assert error.error.field == "score"
    assert error.error.message


def test_an_unknown_candidate_is_a_422_unknown_reference(admin, touchpoint):
    body = CreateEncounter(
        candidate_id=987654, touchpoint_id=touchpoint.id, occurred_at=datetime(2025, 6, 1, tzinfo=UTC)
    )
    error = refused(create_encounter.sync_detailed(client=admin, body=body), 422)
    assert error.error.code == ErrorCode.UNKNOWN_REFERENCE
    assert error.error.field == "candidate_id"


def test_a_window_that_ends_before_it_starts_is_a_422(admin):
    error = refused(get_perception_trend.sync_detailed(client=admin, from_=date(2025, 3, 1), to=date(2025, 2, 1)), 422)
    assert error.error.code == ErrorCode.VALIDATION_FAILED
    assert error.error.field in {"from", "to"}


def test_unknown_ids_are_404_not_found(admin):
    for response in (
        get_touchpoint.sync_detailed(987654, client=admin),
        get_candidate.sync_detailed(987654, client=admin),
        update_encounter.sync_detailed(987654, client=admin, body=UpdateEncounter(score=5)),
    ):
        error = refused(response, 404)
        assert error.error.code == ErrorCode.NOT_FOUND
        assert error.error.message


def test_a_duplicate_name_is_a_409(admin, touchpoint):
    body = CreateTouchpoint(name=touchpoint.name, kind=Kind.TRUE, channel=Channel.PRESS, stage=Stage.AWARENESS)
    error = refused(create_touchpoint.sync_detailed(client=admin, body=body), 409)
    assert error.error.code == ErrorCode.ALREADY_EXISTS
    assert error.error.field == "name"


def test_a_bad_token_is_a_401(base_url):
    client = make_client(base_url, "tpt_not-a-real-token")
    error = refused(get_touchpoint.sync_detailed(1, client=client), 401)
    assert error.error.code == ErrorCode.UNAUTHORIZED
