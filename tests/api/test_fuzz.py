"""The whole OpenAPI surface, fuzzed with schemathesis (property-based): no request,
however odd, gets a 5xx, and every refusal has the one problem-details shape.

Requests carry an admin's token (a till's key on the Terminal API), so that they get past
authentication and exercise the handlers; sign-out is left out (it would end the token).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, terminal_key

PROBLEM_FIELDS = {"type", "title", "status", "code", "detail"}


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


@pytest.fixture
def credentials(client: TestClient[Any]) -> dict[str, dict[str, str]]:
    return {
        "operator": bearer(client, "root"),
        "terminal": {"authorization": f"Bearer {terminal_key('t1')}"},
    }


def fuzz(operation: Any, headers: dict[str, str]) -> None:
    """Runs generated requests of one operation; fails on a 5xx or a malformed refusal."""

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def refuses_cleanly(case: Any) -> None:
        response = case.call(headers={**headers, **(case.headers or {})})
        where = f"{case.method} {case.formatted_path}"
        assert response.status_code < 500, f"{where}: {response.text}"
        if response.status_code >= 400:
            assert response.headers["content-type"][0].startswith("application/problem+json")
            assert set(response.json()) >= PROBLEM_FIELDS, f"{where}: {response.text}"

    refuses_cleanly()


def test_no_request_gets_a_server_error_and_every_refusal_is_a_problem(
    client: TestClient[Any], credentials: dict[str, dict[str, str]]
) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/schema/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if op.path != "/api/v1/auth/logout"]
    assert len(fuzzed) > 20

    for operation in fuzzed:
        kind = "terminal" if operation.path.startswith("/api/v1/terminal") else "operator"
        fuzz(operation, credentials[kind])
