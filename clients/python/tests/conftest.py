"""Fixtures for the generated-client suite.

The suite talks to a running service through the client that
openapi-python-client generated from openapi/openapi.json
(package ``touchpoint_tracker_client``). It needs:

- ``TT_BASE_URL``: the service, e.g. ``http://127.0.0.1:18080``;
- ``TT_ADMIN_TOKEN``: an admin key of an organization with no data yet
  (``touchpoint-tracker org create`` + ``key create --role admin``);
- ``TT_STATS_TOKEN``: an admin key of a second organization with no data
  yet, for test_statistics.py's random dataset (``admin``'s figures are
  hand-computed for its own data alone);
- ``TT_MONITORING_TOKEN``: an admin key of a third, for test_alerts.py and
  test_webhooks.py: their constructed weeks of scores move no other test's
  reports, and their webhook endpoints get only their own events. The
  service must allow ``http://127.0.0.1`` endpoints
  (``WEBHOOK_ALLOW_HTTP=true WEBHOOK_ALLOWED_NETWORKS=127.0.0.1/32``).

scripts/clients.sh starts a service on a fresh database and sets all four;
scripts/statistics-postgres.sh does the same on PostgreSQL for
test_statistics.py alone.
"""

import os

import pytest
from support import make_client, ok
from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.api.encounters import list_encounters
from touchpoint_tracker_client.api.touchpoints import list_touchpoints
from touchpoint_tracker_client.models import EncounterPage, TouchpointPage


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the suite through scripts/clients.sh", returncode=2)
    return value


@pytest.fixture(scope="session")
def base_url() -> str:
    return _env("TT_BASE_URL").rstrip("/")


def _empty_organization(base_url: str, variable: str) -> AuthenticatedClient:
    client = make_client(base_url, _env(variable))
    touchpoints = ok(list_touchpoints.sync_detailed(client=client, include_archived=True), TouchpointPage)
    encounters = ok(list_encounters.sync_detailed(client=client), EncounterPage)
    if touchpoints.items or encounters.items:
        pytest.exit(f"{variable} must belong to an organization with no data yet", returncode=2)
    return client


@pytest.fixture(scope="session")
def admin(base_url: str) -> AuthenticatedClient:
    # The report assertions are hand-computed for this suite's data alone.
    return _empty_organization(base_url, "TT_ADMIN_TOKEN")


@pytest.fixture(scope="session")
def stats_admin(base_url: str) -> AuthenticatedClient:
    """An admin of the statistics check's own organization (test_statistics.py)."""
    return _empty_organization(base_url, "TT_STATS_TOKEN")


@pytest.fixture(scope="session")
def monitoring_admin(base_url: str) -> AuthenticatedClient:
    """An admin of the alerts' and webhooks' own organization."""
    return _empty_organization(base_url, "TT_MONITORING_TOKEN")
