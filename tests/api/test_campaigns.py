"""Backoffice API, campaigns and clusters as each operator may see them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.commands.apply import ClusterSpec
from loyalty.domain.cluster import Age, ClusterTerms
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, program


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def test_a_campaign_on_the_whole_network_is_seen_with_its_promotions(
    client: TestClient[Any],
) -> None:
    page = client.get("/api/v1/backoffice/campaigns", headers=bearer(client, "sam")).json()

    (campaign,) = page["items"]
    assert (campaign["code"], campaign["promotions"], campaign["terms"]["nodes"]) == (
        "club",
        ["base"],
        ["chain"],
    )


def test_an_unknown_campaign_or_cluster_answers_404(client: TestClient[Any]) -> None:
    sam = bearer(client, "sam")

    campaign = client.get("/api/v1/backoffice/campaigns/nope", headers=sam)
    cluster = client.get("/api/v1/backoffice/clusters/nope", headers=sam)

    assert campaign.json()["code"] == "unknown_campaign"
    assert cluster.json()["code"] == "unknown_cluster"


def test_clusters_are_listed_with_their_versions(client: TestClient[Any]) -> None:
    young = ClusterSpec(code="young", terms=ClusterTerms(name="Under 30", criteria=Age(max=29)))
    client.app.state.services.applier.apply(program(clusters=(young,)))

    page = client.get("/api/v1/backoffice/clusters", headers=bearer(client, "mia")).json()

    (cluster,) = page["items"]
    assert (cluster["code"], cluster["name"], len(cluster["versions"])) == ("young", "Under 30", 1)
    assert cluster["versions"][0]["terms"]["criteria"] == {"kind": "age", "min": None, "max": 29}
