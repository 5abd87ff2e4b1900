"""Backoffice API, the network: each operator sees and changes only their scope."""

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


def codes(client: TestClient[Any], username: str) -> list[str]:
    page = client.get(NETWORK, headers=bearer(client, username)).json()
    return [n["code"] for n in page["items"]]


def test_each_role_lists_the_nodes_of_its_scope_only(client: TestClient[Any]) -> None:
    assert codes(client, "root") == codes(client, "mia")
    assert codes(client, "mia")[:3] == ["chain", "north", "s1"]
    assert codes(client, "dino") == ["north", "s1", "t1", "s2", "t2"]
    assert codes(client, "sam") == ["s1", "t1"]


@pytest.mark.parametrize("code", ["s2", "north", "chain", "t3", "nowhere"])
def test_a_node_outside_the_scope_is_not_found_like_a_missing_one(
    client: TestClient[Any], code: str
) -> None:
    response = client.get(f"{NETWORK}/{code}", headers=bearer(client, "sam"))

    assert (response.status_code, response.json()["code"]) == (404, "unknown_node")


def test_a_distributor_manager_adds_a_store_in_their_sub_network_only(
    client: TestClient[Any],
) -> None:
    dino = bearer(client, "dino")
    store = {"code": "s4", "name": "Store 4", "kind": "store", "timezone": "Europe/Rome"}

    inside = client.post(NETWORK, json={**store, "parent": "north"}, headers=dino)
    outside = client.post(NETWORK, json={**store, "code": "s5", "parent": "south"}, headers=dino)

    assert inside.status_code == 201 and inside.json()["parent"] == "north"
    assert outside.status_code == 404


def test_a_store_manager_cannot_change_the_network(client: TestClient[Any]) -> None:
    response = client.patch(f"{NETWORK}/s1", json={"name": "Mine"}, headers=bearer(client, "sam"))

    assert (response.status_code, response.json()["code"]) == (403, "forbidden")


def test_a_move_needs_both_ends_in_scope(client: TestClient[Any]) -> None:
    out_of_reach = client.post(
        f"{NETWORK}/s1/move", json={"parent": "south"}, headers=bearer(client, "dino")
    )
    by_the_manager = client.post(
        f"{NETWORK}/s1/move", json={"parent": "south"}, headers=bearer(client, "mia")
    )

    assert out_of_reach.status_code == 404
    assert by_the_manager.status_code == 200 and by_the_manager.json()["parent"] == "south"
    assert "s1" not in codes(client, "dino")


def test_renaming_closing_and_reopening_a_node(client: TestClient[Any]) -> None:
    dino = bearer(client, "dino")

    renamed = client.patch(f"{NETWORK}/s2", json={"name": "Store Two"}, headers=dino)
    closed = client.post(f"{NETWORK}/s2/close", headers=dino)
    reopened = client.post(f"{NETWORK}/s2/reopen", headers=dino)

    assert renamed.json()["name"] == "Store Two"
    assert (closed.json()["closed"], reopened.json()["closed"]) == (True, False)


def test_network_rules_still_hold_over_the_api(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    cycle = client.post(f"{NETWORK}/north/move", json={"parent": "s1"}, headers=root)
    no_timezone = client.post(
        NETWORK, json={"code": "s9", "name": "S9", "kind": "store", "parent": "north"}, headers=root
    )
    second_network = client.post(
        NETWORK,
        json={"code": "n2", "name": "N2", "kind": "network", "parent": "chain"},
        headers=root,
    )

    assert cycle.status_code == 422
    assert no_timezone.json()["code"] == "invalid_network_placement"
    assert second_network.json()["code"] == "invalid_network_placement"
