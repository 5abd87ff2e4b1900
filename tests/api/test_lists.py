"""The list convention, the same on every list endpoint: limit/offset, sort, filters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

NETWORK = "/api/v1/backoffice/network"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def page(client: TestClient[Any], url: str, **params: object) -> Any:
    response = client.get(url, params=params, headers=bearer(client, "root"))
    assert response.status_code == 200, response.text
    return response.json()


def test_a_page_says_how_many_matched_and_which_window_it_holds(client: TestClient[Any]) -> None:
    first = page(client, NETWORK, limit=3)
    second = page(client, NETWORK, limit=3, offset=3)

    assert (first["total"], first["limit"], first["offset"]) == (9, 3, 0)
    assert [n["code"] for n in first["items"] + second["items"]] == [
        "chain", "north", "s1", "t1", "s2", "t2",
    ]  # fmt: skip


def test_sorting_by_several_fields_and_descending(client: TestClient[Any]) -> None:
    nodes = page(client, NETWORK, sort="kind,-code")["items"]

    assert [n["code"] for n in nodes] == [
        "chain",
        "s3",
        "s2",
        "s1",
        "south",
        "north",
        "t3",
        "t2",
        "t1",
    ]


def test_filters_are_plain_query_parameters(client: TestClient[Any]) -> None:
    stores = page(client, NETWORK, kind="store")
    operators = page(client, "/api/v1/backoffice/operators", role="store_manager")

    assert [n["code"] for n in stores["items"]] == ["s1", "s2", "s3"] and stores["total"] == 3
    assert [o["username"] for o in operators["items"]] == ["sam"]


@pytest.mark.parametrize(
    "params", [{"sort": "secret"}, {"limit": 0}, {"limit": 501}, {"offset": -1}, {"kind": "moon"}]
)
def test_bad_list_parameters_get_a_problem(client: TestClient[Any], params: dict[str, Any]) -> None:
    response = client.get(NETWORK, params=params, headers=bearer(client, "root"))

    assert response.status_code in (400, 422) and response.json()["code"] in (
        "invalid_field",
        "bad_request",
    )
