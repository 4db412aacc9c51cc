"""Webhooks, through the generated client, received by a real HTTP server.

The receiver is Python's http.server in a thread on 127.0.0.1 (clients.sh
starts the service with ``WEBHOOK_ALLOW_HTTP=true`` and
``WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32``, which a production service does
not have). Every delivery is verified with the ``standardwebhooks`` package
(the Standard Webhooks reference library, not the service's code): a change
arrives signed and without personal data unless the endpoint opted in (and
never an erased candidate's, even redelivered), a rotation signs with both
secrets for its overlap, a 500 is retried after 5 s with the same
``webhook-id`` while the next event waits, a 410 disables the endpoint until
an admin enables it again, a ping is signed and logged, private addresses
are refused, and examples/alerts_to_chat.py, run as a process, posts a
detractor's alert and a drop's to a fake chat webhook.

Each test has an endpoint of its own, deleted at its end: an endpoint gets
every event of the organization (the monitoring one, ``TT_MONITORING_TOKEN``)
from its creation on, so two at once would each get the other's.
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from support import ok, refused
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.alerts import (
    create_alert_rule,
    evaluate_alert_rule,
    list_alerts,
    resolve_alert,
    update_alert_rule,
)
from touchpoint_tracker_client.api.candidates import create_candidate, erase_candidate
from touchpoint_tracker_client.api.encounters import create_encounter, create_encounter_batch
from touchpoint_tracker_client.api.touchpoints import create_touchpoint
from touchpoint_tracker_client.api.webhooks import (
    create_webhook,
    delete_webhook,
    get_webhook,
    get_webhook_event,
    list_webhook_deliveries,
    list_webhook_events,
    ping_webhook,
    redeliver_webhook_event,
    rotate_webhook_secret,
    update_webhook,
)
from touchpoint_tracker_client.models import (
    Alert,
    AlertEvaluation,
    AlertPage,
    AlertRule,
    AlertRuleKind,
    BatchRecorded,
    Candidate,
    CandidateErasedEventData,
    Channel,
    CreateAlertRule,
    CreateCandidate,
    CreateEncounter,
    CreateTouchpoint,
    CreateWebhookEndpoint,
    Encounter,
    EncounterEventData,
    ErrorCode,
    EvaluateAlertRule,
    ImportEncounter,
    Kind,
    PingResult,
    Redelivery,
    RotateWebhookSecret,
    Stage,
    Touchpoint,
    UpdateAlertRule,
    UpdateWebhookEndpoint,
    WebhookDeliveryPage,
    WebhookEndpoint,
    WebhookEndpointWithSecret,
    WebhookEvent,
    WebhookEventPage,
    WebhookEventType,
)
from touchpoint_tracker_client.types import UNSET

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "alerts_to_chat.py"
# Deliveries are polled for every second (and a write does not wake the
# dispatcher), so a few seconds is plenty; the retry waits 5 s.
WAIT = 20.0


# ---------------------------------------------------------------------------
# The receiver
# ---------------------------------------------------------------------------


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1, in a thread: it keeps every POST and
    answers each path with its next scripted status (204 when none is left)."""

    def __init__(self):
        self.deliveries: list[Delivery] = []
        self.script: dict[str, deque[int]] = defaultdict(deque)
        self.changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver.changed:
                    script = receiver.script[self.path]
                    status = script.popleft() if script else 204
                    receiver.deliveries.append(Delivery(self.path, headers, body, time.monotonic()))
                    receiver.changed.notify_all()
                answer = b"" if status == 204 else f"answered {status}".encode()
                self.send_response(status)
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass  # quiet: pytest shows what failed

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Delivery]:
        with self.changed:
            return [d for d in self.deliveries if d.path == path]

    def wait_for(self, path: str, count: int, timeout: float = WAIT) -> list[Delivery]:
        """The first `count` deliveries to `path`, waiting for them."""
        with self.changed:
            arrived = self.changed.wait_for(lambda: len(self.at(path)) >= count, timeout)
            assert arrived, f"{len(self.at(path))} of {count} deliveries to {path} within {timeout} s"
            return self.at(path)[:count]


@pytest.fixture(scope="module")
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture
def path(request) -> str:
    """The test's own path on the receiver."""
    return f"/{request.node.name}"


@pytest.fixture
def endpoint(monitoring_admin: AuthenticatedClient, receiver: Receiver, path: str):
    """Makes the test's endpoint (at its path on the receiver by default); deletes it after."""
    made = []

    def make(types: list[WebhookEventType], url: str | None = None, **options) -> tuple[WebhookEndpoint, str]:
        body = CreateWebhookEndpoint(url=url or receiver.url(path), event_types=types, **options)
        created = ok(create_webhook.sync_detailed(client=monitoring_admin, body=body), WebhookEndpointWithSecret, 201)
        made.append(created.endpoint.id)
        return created.endpoint, created.secret

    yield make
    for endpoint_id in made:
        assert delete_webhook.sync_detailed(endpoint_id, client=monitoring_admin).status_code == 204


def state(client, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    return ok(get_webhook.sync_detailed(endpoint.id, client=client), WebhookEndpoint)


def eventually(check, timeout: float = WAIT):
    """Polls `check` until it returns something truthy (the service records an
    attempt just after the receiver answered it)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return result


def verified(secret: str, delivery: Delivery) -> dict:
    """The payload, once standardwebhooks accepted its signature and timestamp."""
    return Webhook(secret).verify(delivery.body, delivery.headers)


def refuses(secret: str, delivery: Delivery) -> bool:
    try:
        Webhook(secret).verify(delivery.body, delivery.headers)
    except WebhookVerificationError:
        return True
    return False


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def interview(monitoring_admin) -> Touchpoint:
    body = CreateTouchpoint(
        name="Panel interview (webhooks)", kind=Kind.EMPLOYER_CREATED, channel=Channel.INTERVIEW, stage=Stage.INTERVIEW
    )
    return ok(create_touchpoint.sync_detailed(client=monitoring_admin, body=body), Touchpoint, 201)


PEOPLE = iter(range(1, 1000))


def someone(client) -> Candidate:
    n = next(PEOPLE)
    body = CreateCandidate(
        external_ref=f"HOOK-{n:03d}",
        display_name=f"Tran Thi Mai {n}",
        email=f"mai{n}@example.com",
        stage=Stage.INTERVIEW,
    )
    return ok(create_candidate.sync_detailed(client=client, body=body), Candidate, 201)


def record(client, person: Candidate, on: Touchpoint, score: int, note: str | None = None) -> Encounter:
    at = datetime.now(UTC) - timedelta(hours=2)
    body = CreateEncounter(candidate_id=person.id, touchpoint_id=on.id, occurred_at=at, score=score, note=note or UNSET)
    return ok(create_encounter.sync_detailed(client=client, body=body), Encounter, 201)


def events(client) -> list[WebhookEvent]:
    return ok(list_webhook_events.sync_detailed(client=client, limit=500), WebhookEventPage).items


def attempts(client, endpoint: WebhookEndpoint, event_id: int | None = None):
    extra = {} if event_id is None else {"event_id": event_id}
    return ok(list_webhook_deliveries.sync_detailed(endpoint.id, client=client, **extra), WebhookDeliveryPage).items


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_a_change_arrives_signed_and_without_personal_data(monitoring_admin, receiver, path, endpoint, interview):
    # Without an endpoint, the organization's changes write no event.
    record(monitoring_admin, someone(monitoring_admin), interview, 5)
    assert events(monitoring_admin) == []

    hook, secret = endpoint([WebhookEventType.ENCOUNTER_CREATED], description="ATS sync")
    assert secret.startswith("whsec_")
    assert (hook.enabled, hook.include_personal_data, hook.backlog) == (True, False, 0)
    person = someone(monitoring_admin)
    note = "Asked twice about remote work; nobody knew"
    made = record(monitoring_admin, person, interview, 8, note)

    [delivery] = receiver.wait_for(path, 1)
    payload = verified(secret, delivery)
    assert delivery.headers["content-type"] == "application/json"
    assert payload["type"] == "encounter.created"
    data = payload["data"]
    assert (data["encounter_id"], data["candidate_id"], data["touchpoint_id"], data["score"]) == (
        made.id,
        person.id,
        interview.id,
        8,
    )
    assert (data["source"], data["has_note"]) == ("recruiter_observation", True)
    assert datetime.fromisoformat(data["occurred_at"]) == made.occurred_at
    # Nothing personal: no candidate, no note, none of their words anywhere.
    assert "candidate" not in data and "note" not in data
    for personal in (person.external_ref, person.display_name, person.email, note):
        assert personal.encode() not in delivery.body

    # The signature covers the id, the timestamp and every byte of the body.
    assert refuses(
        secret, Delivery(delivery.path, delivery.headers, delivery.body.replace(b'"score":8', b'"score":9'), 0)
    )
    _, other_secret = endpoint([WebhookEventType.ALERT_OPENED], url=receiver.url("/unused"))
    assert refuses(other_secret, delivery)

    # The event as the API shows it: the one written since the endpoint exists.
    [event] = events(monitoring_admin)
    assert delivery.id == f"evt_{event.id}"
    assert event.type_ == WebhookEventType.ENCOUNTER_CREATED
    assert isinstance(event.data, EncounterEventData) and event.data.encounter_id == made.id
    assert event.timestamp == datetime.fromisoformat(payload["timestamp"])
    one = ok(get_webhook_event.sync_detailed(event.id, client=monitoring_admin), WebhookEvent)
    assert one.to_dict() == event.to_dict()

    # The log: one attempt, answered 204.
    [attempt] = eventually(lambda: attempts(monitoring_admin, hook))
    assert (attempt.event_id, attempt.status_code, attempt.error) == (event.id, 204, None)
    assert attempt.latency_ms >= 0


def test_personal_data_goes_only_where_asked_and_never_after_erasure(
    monitoring_admin, receiver, path, endpoint, interview
):
    types = [WebhookEventType.ENCOUNTER_CREATED, WebhookEventType.CANDIDATE_ERASED]
    hook, secret = endpoint(types, include_personal_data=True)
    person = someone(monitoring_admin)
    made = record(monitoring_admin, person, interview, 4, "Said the offer felt rushed")
    [created] = receiver.wait_for(path, 1)
    data = verified(secret, created)["data"]
    assert data["candidate"] == {
        "external_ref": person.external_ref,
        "display_name": person.display_name,
        "email": person.email,
    }
    assert data["note"] == "Said the offer felt rushed"

    # Erased: downstream copies are told to erase too, with nothing personal.
    assert erase_candidate.sync_detailed(person.id, client=monitoring_admin).status_code == 200
    erased = receiver.wait_for(path, 2)[1]
    payload = verified(secret, erased)
    assert payload["type"] == "candidate.erased"
    assert payload["data"]["candidate_id"] == person.id and payload["data"]["candidate"] is None
    event = ok(
        get_webhook_event.sync_detailed(int(erased.id.removeprefix("evt_")), client=monitoring_admin), WebhookEvent
    )
    assert isinstance(event.data, CandidateErasedEventData)

    # The earlier event, delivered again on demand: the same webhook-id, and
    # the personal data as it is now, that is none.
    event_id = int(created.id.removeprefix("evt_"))
    response = redeliver_webhook_event.sync_detailed(
        hook.id, client=monitoring_admin, body=Redelivery(event_id=event_id)
    )
    assert response.status_code == 202, response.content
    again = receiver.wait_for(path, 3)[2]
    assert again.id == created.id
    data = verified(secret, again)["data"]
    assert (data["encounter_id"], data["candidate"], data["note"]) == (made.id, None, None)
    for personal in (person.external_ref, person.display_name, person.email):
        assert personal.encode() not in again.body


def test_a_rotated_secret_signs_beside_the_new_one_for_its_overlap(
    monitoring_admin, receiver, path, endpoint, interview
):
    hook, first = endpoint([WebhookEventType.ENCOUNTER_CREATED])
    body = RotateWebhookSecret(overlap_seconds=3600)
    rotated = ok(
        rotate_webhook_secret.sync_detailed(hook.id, client=monitoring_admin, body=body), WebhookEndpointWithSecret
    )
    second = rotated.secret
    assert second != first and second.startswith("whsec_")
    until = rotated.endpoint.previous_secret_expires_at
    assert abs(until - datetime.now(UTC) - timedelta(hours=1)) < timedelta(minutes=1)

    record(monitoring_admin, someone(monitoring_admin), interview, 9)
    [during] = receiver.wait_for(path, 1)
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    # Receivers holding either secret accept it.
    verified(first, during)
    verified(second, during)

    # Without an overlap the previous secret stops at once.
    body = RotateWebhookSecret(overlap_seconds=0)
    third = ok(
        rotate_webhook_secret.sync_detailed(hook.id, client=monitoring_admin, body=body), WebhookEndpointWithSecret
    ).secret
    record(monitoring_admin, someone(monitoring_admin), interview, 9)
    after = receiver.wait_for(path, 2)[1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    verified(third, after)
    assert refuses(second, after) and refuses(first, after)


def test_a_failed_delivery_is_retried_after_5_s_and_the_next_event_waits(
    monitoring_admin, receiver, path, endpoint, interview
):
    hook, secret = endpoint([WebhookEventType.ENCOUNTER_CREATED])
    receiver.script[path].append(500)
    first = record(monitoring_admin, someone(monitoring_admin), interview, 6)
    failed = receiver.wait_for(path, 1)[0]
    second = record(monitoring_admin, someone(monitoring_admin), interview, 10)
    # While it waits: one failure, the two events behind.
    waiting = eventually(lambda: (s := state(monitoring_admin, hook)).attempts == 1 and s)
    assert (waiting.consecutive_failures, waiting.backlog, waiting.enabled) == (1, 2, True)
    assert waiting.next_attempt_at > datetime.now(UTC)

    retried, then = receiver.wait_for(path, 3)[1:]
    assert retried.id == failed.id and retried.body == failed.body  # the same event, the same webhook-id
    assert 4.5 <= retried.at - failed.at <= 5 + 3, retried.at - failed.at
    assert verified(secret, retried)["data"]["encounter_id"] == first.id
    # In order: the next event only after the first got through.
    assert verified(secret, then)["data"]["encounter_id"] == second.id and then.id != failed.id

    event_id = int(failed.id.removeprefix("evt_"))
    log = eventually(lambda: len(items := attempts(monitoring_admin, hook, event_id)) == 2 and items)
    assert [(a.status_code, a.error, a.response_prefix) for a in log] == [  # newest first
        (204, None, None),
        (500, "the receiver answered 500", "answered 500"),
    ]
    done = eventually(lambda: (s := state(monitoring_admin, hook)).backlog == 0 and s)
    assert (done.consecutive_failures, done.attempts) == (0, 0)


def test_410_gone_disables_the_endpoint_until_an_admin_enables_it(
    monitoring_admin, receiver, path, endpoint, interview
):
    hook, secret = endpoint([WebhookEventType.ENCOUNTER_CREATED])
    receiver.script[path].append(410)
    first = record(monitoring_admin, someone(monitoring_admin), interview, 7)
    gone = receiver.wait_for(path, 1)[0]
    off = eventually(lambda: not (s := state(monitoring_admin, hook)).enabled and s)
    assert off.disabled_reason == "the receiver answered 410 Gone"
    second = record(monitoring_admin, someone(monitoring_admin), interview, 8)
    time.sleep(2.5)  # two of the dispatcher's rounds: nothing goes to a disabled endpoint
    assert len(receiver.at(path)) == 1

    body = UpdateWebhookEndpoint(enabled=True)
    on = ok(update_webhook.sync_detailed(hook.id, client=monitoring_admin, body=body), WebhookEndpoint)
    assert (on.enabled, on.disabled_reason, on.consecutive_failures) == (True, None, 0)
    # It goes on from the event it stopped at.
    resent, then = receiver.wait_for(path, 3)[1:]
    assert resent.id == gone.id
    assert [verified(secret, d)["data"]["encounter_id"] for d in (resent, then)] == [first.id, second.id]


def test_a_ping_is_signed_and_logged(monitoring_admin, receiver, path, endpoint):
    hook, secret = endpoint([WebhookEventType.ALERT_OPENED])
    result = ok(ping_webhook.sync_detailed(hook.id, client=monitoring_admin), PingResult)
    assert (result.delivered, result.status_code, result.error) == (True, 204, None)
    [ping] = receiver.at(path)  # sent before the answer
    payload = verified(secret, ping)
    assert (payload["type"], payload["data"]) == ("webhook.ping", {"endpoint_id": hook.id})
    assert ping.id.startswith("ping_")
    [logged] = attempts(monitoring_admin, hook)
    assert (logged.event_id, logged.status_code) == (None, 204)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",  # private
        "https://192.168.1.20/hook",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://100.64.0.1/hook",  # carrier-grade NAT
        "http://127.0.0.2:8080/hook",  # loopback, outside the allowed 127.0.0.1/32
        "http://[::1]:8080/hook",
        "ftp://hooks.example.com/hook",
    ],
)
def test_endpoints_may_not_reach_private_addresses(monitoring_admin, url):
    body = CreateWebhookEndpoint(url=url, event_types=[WebhookEventType.ALERT_OPENED])
    error = refused(create_webhook.sync_detailed(client=monitoring_admin, body=body), 422)
    assert (error.error.code, error.error.field) == (ErrorCode.VALIDATION_FAILED, "url")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(process: subprocess.Popen, port: int) -> bool:
    assert process.poll() is None, f"the example exited with {process.returncode}"
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_the_chat_example_posts_alerts(monitoring_admin, receiver, endpoint, interview):
    """examples/alerts_to_chat.py as a process: the service's deliveries in, the chat's JSON out."""
    chat_path = "/chat"
    port = free_port()
    hook, secret = endpoint(
        [WebhookEventType.ALERT_OPENED, WebhookEventType.ALERT_RESOLVED], url=f"http://127.0.0.1:{port}/"
    )
    env = {**os.environ, "WEBHOOK_SECRET": secret, "CHAT_WEBHOOK_URL": receiver.url(chat_path), "PORT": str(port)}
    example = subprocess.Popen([sys.executable, str(EXAMPLE)], env=env)
    rules = []

    def rule(**fields) -> AlertRule:
        made = ok(
            create_alert_rule.sync_detailed(client=monitoring_admin, body=CreateAlertRule(**fields)), AlertRule, 201
        )
        rules.append(made)
        return made

    try:
        eventually(lambda: listening(example, port))
        # A detractor's score: opened as it is recorded, then resolved by hand.
        detractors = rule(name="Panel detractors (chat)", kind=AlertRuleKind.DETRACTOR, touchpoint_ids=[interview.id])
        made = record(monitoring_admin, someone(monitoring_admin), interview, 2)
        [alert] = ok(list_alerts.sync_detailed(client=monitoring_admin, rule_id=detractors.id), AlertPage).items
        assert alert.encounter_id == made.id
        [opened] = receiver.wait_for(chat_path, 1)
        assert opened.headers["content-type"] == "application/json"
        assert opened.json() == {"text": f"Alert {alert.id} opened: a score of 2 on touchpoint {interview.id}"}
        ok(resolve_alert.sync_detailed(alert.id, client=monitoring_admin), Alert)
        resolved = receiver.wait_for(chat_path, 2)[1]
        assert resolved.json() == {"text": f"Alert {alert.id} resolved: a score of 2 on touchpoint {interview.id}"}

        # A drop: a week of promoters, then a week of detractors, on a touchpoint of its own.
        body = CreateTouchpoint(
            name="Onboarding call (chat)", kind=Kind.EMPLOYER_CREATED, channel=Channel.PHONE, stage=Stage.OFFER
        )
        call = ok(create_touchpoint.sync_detailed(client=monitoring_admin, body=body), Touchpoint, 201)
        items = [
            ImportEncounter(
                occurred_at=datetime(2026, 10, 20 if n < 20 else 27, 9, tzinfo=UTC) + timedelta(minutes=n),
                candidate_external_ref=f"HOOK-DROP-{n:02d}",
                touchpoint_id=call.id,
                score=10 if n < 20 else 0,
            )
            for n in range(40)
        ]
        ok(create_encounter_batch.sync_detailed(client=monitoring_admin, body=items), BatchRecorded, 201)
        drops = rule(
            name="Onboarding drop (chat)",
            kind=AlertRuleKind.DROP,
            touchpoint_ids=[call.id],
            baseline_periods=1,
            min_scores=20,
        )
        evaluation = evaluate_alert_rule.sync_detailed(
            drops.id, client=monitoring_admin, body=EvaluateAlertRule(as_of=date(2026, 11, 2))
        )
        [drop] = ok(evaluation, AlertEvaluation).opened
        posted = receiver.wait_for(chat_path, 3)[2]
        assert posted.json() == {
            "text": f"Alert {drop.id} opened: cNPS of touchpoint {call.id} 100.0 -> -100.0 "
            f"in the week from 2026-10-26 (signal: z, p = {drop.details.p_value:.2g})"
        }

        # The service saw 2xx answers, so nothing is retried.
        log = eventually(lambda: len(items := attempts(monitoring_admin, hook)) == 3 and items)
        assert [a.status_code for a in log] == [204, 204, 204]
        # A delivery not signed with the secret is refused, and nothing is posted.
        forged = json.dumps({"type": "alert.opened", "timestamp": "2026-11-02T00:00:00Z", "data": {}}).encode()
        headers = {
            "webhook-id": "evt_999999",
            "webhook-timestamp": str(int(time.time())),
            "webhook-signature": "v1,AAAA",
            "content-type": "application/json",
        }
        assert httpx.post(f"http://127.0.0.1:{port}/", content=forged, headers=headers, timeout=10).status_code == 401
        assert len(receiver.at(chat_path)) == 3
    finally:
        example.terminate()
        example.wait(timeout=10)
        for made in rules:  # quiet for whatever comes next
            body = UpdateAlertRule(enabled=False)
            ok(update_alert_rule.sync_detailed(made.id, client=monitoring_admin, body=body), AlertRule)
