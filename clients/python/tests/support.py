"""Helpers shared by the tests: clients and checked responses."""

from touchpoint_tracker_client import AuthenticatedClient
from touchpoint_tracker_client.models import ErrorBody
from touchpoint_tracker_client.types import Response


def make_client(base_url: str, token: str) -> AuthenticatedClient:
    # raise_on_unexpected_status: a status the document does not list is a
    # contract break, not something for a test to shrug off.
    return AuthenticatedClient(base_url=base_url, token=token, raise_on_unexpected_status=True, timeout=30.0)


def ok(response: Response, model: type, status: int = 200):
    """The parsed body of a successful response, checked against its model."""
    detail = response.parsed.error if isinstance(response.parsed, ErrorBody) else response.content[:500]
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {detail}"
    assert isinstance(response.parsed, model), f"expected a {model.__name__}, got {type(response.parsed).__name__}"
    return response.parsed


def refused(response: Response, status: int) -> ErrorBody:
    """The parsed ErrorBody of a refused request."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: {response.content[:500]!r}"
    assert isinstance(response.parsed, ErrorBody), f"the error body was not parsed: {response.content[:500]!r}"
    return response.parsed
