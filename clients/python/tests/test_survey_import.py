"""A survey vendor's NDJSON import, through the generated client.

The import's body is NDJSON; the generated client sends it as
application/octet-stream (the second media type the document lists). The
file runs after test_story.py, whose reports and exports count that story's
encounters alone; this one records its own, in 2024, on its own touchpoint.
"""

import io
import json
import uuid

from support import ok, refused
from touchpoint_tracker_client.api.encounters import import_encounters, list_encounters
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.models import (
    Channel,
    CreateTouchpoint,
    EncounterPage,
    ErrorCode,
    ImportReport,
    Kind,
    Stage,
    Touchpoint,
)
from touchpoint_tracker_client.types import File


def ndjson(lines: list[dict]) -> File:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    return File(payload=io.BytesIO(text.encode()), mime_type="application/octet-stream")


def answer(n: int, touchpoint: str = "Exit survey 2024") -> dict:
    return {
        "candidate_external_ref": f"SURVEY-{n % 3}",
        "touchpoint_name": touchpoint,
        "occurred_at": f"2024-05-{1 + n:02d}T09:00:00Z",
        "score": n % 11,
        "note": f"answer {n}",
    }


def encounters_of(client, touchpoint_id: int) -> list:
    page = ok(list_encounters.sync_detailed(client=client, touchpoint_id=touchpoint_id, limit=500), EncounterPage)
    return page.items


def test_a_survey_export_is_imported_once_however_often_it_is_sent(admin):
    body = CreateTouchpoint(name="Exit survey 2024", kind=Kind.EMPLOYER_CREATED, channel=Channel.EMAIL, stage=Stage.ALUMNI)
    touchpoint = ok(create_touchpoint.sync_detailed(client=admin, body=body), Touchpoint, 201)
    key = str(uuid.uuid4())

    # A line names a touchpoint that does not exist: nothing of its chunk is recorded.
    lines = [answer(n) for n in range(6)]
    lines[4] = answer(4, touchpoint="No such survey")
    error = refused(import_encounters.sync_detailed(client=admin, body=ndjson(lines), idempotency_key=key), 422)
    assert error.error.code == ErrorCode.INVALID_ITEMS
    assert error.lines_committed == 0
    assert [item.index for item in error.items] == [4]
    assert encounters_of(admin, touchpoint.id) == []

    # Fixed and sent again with the same key, then once more: recorded once.
    lines[4] = answer(4)
    for _ in range(2):
        report = ok(
            import_encounters.sync_detailed(client=admin, body=ndjson(lines), idempotency_key=key), ImportReport
        )
        assert (report.lines_committed, report.encounters_created, report.candidates_created) == (6, 6, 3)
    recorded = encounters_of(admin, touchpoint.id)
    assert sorted(e.note for e in recorded) == [f"answer {n}" for n in range(6)]

    # Another stream under that key is refused, and says nothing of it is recorded.
    error = refused(
        import_encounters.sync_detailed(client=admin, body=ndjson(lines[:3]), idempotency_key=key), 422
    )
    assert error.error.field == "Idempotency-Key"
    assert error.lines_committed == 0
    assert len(encounters_of(admin, touchpoint.id)) == 6
