"""Seeds a small, realistic demo organization through the generated client.

    TT_BASE_URL=http://127.0.0.1:8080 TT_ADMIN_TOKEN=<admin key> python clients/python/seed_demo.py

With an admin key of an organization with no data, it creates (through the
API, as the people would):

- the HR admin's catalog: a dozen touchpoints of all three kinds, and the
  keys of a recruiter and of a reporting job (role reporter);
- as the recruiter: a few hundred candidates, and their encounters spread
  over the last 12 months, about 60% of them scored, recorded in batches.

Each touchpoint moves a candidate's perception by its own amount (an
interviewer who does not show up costs three points), and the technical
interview gets better over the year, so the reports have something to show.
The random seed is fixed: the same data every run, relative to today.

Prints the reporting job's token on stdout (and nothing else), so that

    TT_TOKEN=$(python clients/python/seed_demo.py) python examples/reporting_job.py

runs the report on it. Progress goes to stderr.
"""

import argparse
import os
import random
import sys
from datetime import UTC, date, datetime, time, timedelta

from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.candidates import create_candidate
from touchpoint_tracker_client.api.encounters import create_encounter_batch
from touchpoint_tracker_client.api.keys import create_api_key
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.models import (
    BatchRecorded,
    Candidate,
    Channel,
    CreateApiKey,
    CreateCandidate,
    CreatedApiKey,
    CreateTouchpoint,
    ErrorBody,
    ImportEncounter,
    Kind,
    Role,
    Source,
    Stage,
    Touchpoint,
)
from touchpoint_tracker_client.types import UNSET

SEED = 20261123

# name, kind, channel, stage, effect on perception (points), description
CATALOG = [
    ("Careers site", Kind.EMPLOYER_CREATED, Channel.CAREERS_SITE, Stage.AWARENESS, 0.3, "Jobs and culture pages"),
    ("Job ad on job boards", Kind.EMPLOYER_CREATED, Channel.JOB_BOARD, Stage.AWARENESS, 0.0, None),
    ("Recruiter outreach e-mail", Kind.EMPLOYER_CREATED, Channel.EMAIL, Stage.APPLICATION, 0.4, None),
    ("Online assessment", Kind.EMPLOYER_CREATED, Channel.ASSESSMENT, Stage.SCREENING, -0.6, "90-minute coding test"),
    ("Technical interview", Kind.EMPLOYER_CREATED, Channel.INTERVIEW, Stage.INTERVIEW, -0.8, "Improves over the year"),
    ("Offer call", Kind.EMPLOYER_CREATED, Channel.PHONE, Stage.OFFER, 1.2, None),
    ("Glassdoor reviews", Kind.TRUE, Channel.REVIEW_SITE, Stage.CONSIDERATION, -0.7, "Employee reviews"),
    ("A friend's story", Kind.TRUE, Channel.WORD_OF_MOUTH, Stage.CONSIDERATION, 0.6, None),
    ("Press coverage", Kind.TRUE, Channel.PRESS, Stage.AWARENESS, 0.2, None),
    ("Interviewer no-show", Kind.UNEXPECTED, Channel.INTERVIEW, Stage.INTERVIEW, -3.0, "Nobody came to the interview"),
    ("Viral post by a former employee", Kind.UNEXPECTED, Channel.SOCIAL_MEDIA, Stage.CONSIDERATION, -1.8, None),
    ("Chance meeting with an employee", Kind.UNEXPECTED, Channel.EVENT, Stage.CONSIDERATION, 1.2, None),
]

FIRST_NAMES = [
    "Lan",
    "Minh",
    "Anh",
    "Bao",
    "Chi",
    "Dung",
    "Hoa",
    "Huy",
    "Khanh",
    "Linh",
    "Mai",
    "Nam",
    "Phuong",
    "Quang",
    "Thao",
    "Trang",
    "Tuan",
    "Vy",
    "Ada",
    "Sam",
    "Noor",
    "Ines",
    "Tomas",
    "Yuki",
]
LAST_NAMES = ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ngo", "Garcia", "Okafor", "Smith"]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        sys.exit(f"seed_demo: set {name}")
    return value


def created(response, model):
    if response.status_code != 201 or not isinstance(response.parsed, model):
        error = response.parsed.error if isinstance(response.parsed, ErrorBody) else response.content[:300]
        sys.exit(f"seed_demo: expected 201, got {response.status_code}: {error}")
    return response.parsed


def window_start(today: date) -> date:
    """The first day of the month eleven months before today's: twelve calendar months up to today."""
    month = today.year * 12 + today.month - 1 - 11
    return date(month // 12, month % 12 + 1, 1)


def journeys(rng: random.Random, catalog: dict[str, Touchpoint], start: datetime, end: datetime, candidates: int):
    """Each candidate's encounters: (candidate index, touchpoint, occurred_at, score or None)."""
    by_stage = {}
    for name, _kind, _channel, stage, _effect, _description in CATALOG:
        by_stage.setdefault(stage, []).append(name)
    effects = {name: effect for name, _k, _c, _s, effect, _d in CATALOG}
    span = (end - start).total_seconds()
    for index in range(candidates):
        perception = rng.gauss(7.0, 1.5)
        moment = start + timedelta(seconds=rng.uniform(0, span * 0.95))
        # Before applying: one to three things they saw or heard.
        path = rng.sample(by_stage[Stage.AWARENESS] + by_stage[Stage.CONSIDERATION][:2], rng.randint(1, 3))
        if rng.random() < 0.2:
            path.append("Viral post by a former employee")
        if rng.random() < 0.15:
            path.append("Chance meeting with an employee")
        # The process, with drop-off at every step.
        for stage in (Stage.APPLICATION, Stage.SCREENING, Stage.INTERVIEW, Stage.OFFER):
            if rng.random() > 0.8:
                break
            if stage is Stage.INTERVIEW:
                path.append("Interviewer no-show" if rng.random() < 0.1 else "Technical interview")
                if rng.random() < 0.4:
                    path.append("Technical interview")
            else:
                path.extend(n for n in by_stage[stage] if n != "Interviewer no-show")
        for name in path:
            moment += timedelta(days=rng.uniform(0.5, 9), hours=rng.uniform(0, 8))
            if moment >= end:
                break
            effect = effects[name]
            if name == "Technical interview":
                # The interview panel was retrained: from -0.8 to +1.0 over the year.
                effect += 1.8 * (moment - start).total_seconds() / span
            perception = min(10.0, max(0.0, perception + effect + rng.gauss(0, 0.6)))
            score = None
            if rng.random() < 0.6:
                score = int(min(10, max(0, round(perception + rng.gauss(0, 0.7)))))
            yield index, catalog[name], moment, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=400)
    parser.add_argument("--today", type=date.fromisoformat, default=datetime.now(UTC).date())
    args = parser.parse_args()

    base_url = env("TT_BASE_URL")
    admin = AuthenticatedClient(base_url=base_url, token=env("TT_ADMIN_TOKEN"), timeout=60.0)
    rng = random.Random(SEED)

    catalog = {}
    for name, kind, channel, stage, _effect, description in CATALOG:
        body = CreateTouchpoint(name=name, kind=kind, channel=channel, stage=stage, description=description)
        catalog[name] = created(create_touchpoint.sync_detailed(client=admin, body=body), Touchpoint)
    keys = {}
    for role, name in [(Role.RECRUITER, "Demo recruiter"), (Role.REPORTER, "Monthly perception report")]:
        body = CreateApiKey(name=name, role=role)
        keys[role] = created(create_api_key.sync_detailed(client=admin, body=body), CreatedApiKey)
    recruiter = AuthenticatedClient(base_url=base_url, token=keys[Role.RECRUITER].token, timeout=60.0)

    candidates = []
    for index in range(args.candidates):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        body = CreateCandidate(
            external_ref=f"DEMO-{index + 1:04d}",
            display_name=f"{last} {first}",
            email=f"{first.lower()}.{last.lower()}.{index + 1}@example.com",
        )
        candidates.append(created(create_candidate.sync_detailed(client=recruiter, body=body), Candidate))

    now = datetime.now(UTC) - timedelta(minutes=1)
    end = min(now, datetime.combine(args.today + timedelta(days=1), time(), UTC))
    start = datetime.combine(window_start(args.today), time(), UTC)
    items = []
    for index, touchpoint, moment, score in journeys(rng, catalog, start, end, args.candidates):
        survey = touchpoint.kind is not Kind.EMPLOYER_CREATED or touchpoint.channel is Channel.CAREERS_SITE
        items.append(
            ImportEncounter(
                candidate_id=candidates[index].id,
                touchpoint_id=touchpoint.id,
                occurred_at=moment,
                source=Source.CANDIDATE_SURVEY if survey else Source.RECRUITER_OBSERVATION,
                score=UNSET if score is None else score,
            )
        )
    recorded = 0
    for chunk in range(0, len(items), 1000):
        response = create_encounter_batch.sync_detailed(client=recruiter, body=items[chunk : chunk + 1000])
        recorded += len(created(response, BatchRecorded).encounter_ids)
    scored = sum(1 for item in items if item.score is not UNSET)
    print(
        f"seed_demo: {len(catalog)} touchpoints, {len(candidates)} candidates, "
        f"{recorded} encounters ({scored} scored) from {start.date()} to {end.date()}",
        file=sys.stderr,
    )
    print(keys[Role.REPORTER].token)


if __name__ == "__main__":
    main()
