"""Backoffice API, promotions: seen by whoever they reach, changed within one's scope,
and every change a new version from its effective time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

PROMOTIONS = "/api/v1/backoffice/promotions"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def terms(name: str, *nodes: str, points: int = 5) -> dict[str, Any]:
    return {
        "name": name,
        "benefits": [{"kind": "fixed_points", "points": points}],
        "where": {"nodes": list(nodes)},
    }


def create(client: TestClient[Any], who: str, code: str, *nodes: str) -> Any:
    body = {"promotion": {"code": code, "campaign": "club", "terms": terms(code, *nodes)}}
    return client.post(PROMOTIONS, json=body, headers=bearer(client, who))


def codes(client: TestClient[Any], who: str) -> list[str]:
    page = client.get(PROMOTIONS, headers=bearer(client, who)).json()
    return [p["code"] for p in page["items"]]


def test_each_operator_sees_the_promotions_that_reach_their_scope(client: TestClient[Any]) -> None:
    assert create(client, "root", "north-bonus", "north").status_code == 201
    assert create(client, "root", "s3-bonus", "s3").status_code == 201

    assert codes(client, "root") == ["base", "north-bonus", "s3-bonus"]
    assert codes(client, "dino") == ["base", "north-bonus"]
    assert codes(client, "sam") == ["base", "north-bonus"]  # north reaches s1


def test_a_promotion_out_of_reach_is_not_found(client: TestClient[Any]) -> None:
    create(client, "root", "s3-bonus", "s3")

    response = client.get(f"{PROMOTIONS}/s3-bonus", headers=bearer(client, "sam"))

    assert (response.status_code, response.json()["code"]) == (404, "unknown_promotion")


def test_a_store_manager_creates_promotions_for_their_store_only(client: TestClient[Any]) -> None:
    mine = create(client, "sam", "s1-bonus", "s1")
    elsewhere = create(client, "sam", "s2-bonus", "s2")
    everywhere = create(client, "sam", "all-bonus")

    assert mine.status_code == 201 and mine.json()["version"] == 1
    assert elsewhere.status_code == 404
    assert (everywhere.status_code, everywhere.json()["code"]) == (403, "forbidden")


def test_a_new_version_applies_from_its_time_and_keeps_the_old_one(
    client: TestClient[Any], clock: Clock
) -> None:
    create(client, "sam", "s1-bonus", "s1")
    clock.advance(minutes=5)

    revised = client.post(
        f"{PROMOTIONS}/s1-bonus/versions",
        json={"terms": terms("s1-bonus", "s1", points=9)},
        headers=bearer(client, "sam"),
    )

    versions = revised.json()["versions"]
    assert revised.json()["version"] == 2
    assert [v["terms"]["benefits"][0]["points"] for v in versions] == [5, 9]
    assert versions[1]["effective_from"] > versions[0]["effective_from"]


def test_a_scoped_operator_cannot_move_a_promotion_out_of_their_scope(
    client: TestClient[Any], clock: Clock
) -> None:
    create(client, "sam", "s1-bonus", "s1")
    clock.advance(minutes=5)

    moved = client.post(
        f"{PROMOTIONS}/s1-bonus/versions",
        json={"terms": terms("s1-bonus", "s2")},
        headers=bearer(client, "sam"),
    )

    assert moved.status_code == 404


def test_deactivating_and_activating_are_versions(client: TestClient[Any], clock: Clock) -> None:
    root = bearer(client, "root")
    clock.advance(minutes=1)

    off = client.post(f"{PROMOTIONS}/base/deactivate", json={}, headers=root)
    clock.advance(minutes=1)
    on = client.post(f"{PROMOTIONS}/base/activate", json={}, headers=root)

    assert (off.json()["active"], off.json()["version"]) == (False, 2)
    assert (on.json()["active"], on.json()["version"]) == (True, 3)
    inactive = client.get(PROMOTIONS, params={"active": False}, headers=root).json()
    assert inactive["total"] == 0


UNKNOWN_CLUSTER = {**terms("x"), "cluster": "vip"}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"promotion": {"code": "base", "campaign": "club", "terms": terms("x", "s1")}}, 409,
         "duplicate_code"),
        ({"promotion": {"code": "x", "campaign": "nope", "terms": terms("x", "s1")}}, 404,
         "unknown_campaign"),
        ({"promotion": {"code": "x", "campaign": "club", "terms": UNKNOWN_CLUSTER}}, 422,
         "invalid_program"),
        ({"promotion": {"code": "x", "campaign": "club", "terms": terms("x", "s1")},
          "effective_from": "2020-01-01T00:00:00Z"}, 422, "invalid_program"),
        ({"promotion": {"code": "x", "campaign": "club", "terms": {"name": "x", "benefits": [
            {"kind": "teleport"}]}}}, 422, "invalid_field"),
    ],
)  # fmt: skip
def test_bad_promotions_say_why(
    client: TestClient[Any], body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(PROMOTIONS, json=body, headers=bearer(client, "root"))

    assert (response.status_code, response.json()["code"]) == (status, code)
