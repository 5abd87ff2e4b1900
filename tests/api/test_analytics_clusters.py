"""Analytics API, clusters: kinds, sizes and members within the caller's scope, the
clusters of a card's holder, and evaluating a cluster now (a static one only once)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import date
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from loyalty.commands.apply import ClusterSpec, CustomerSpec
from loyalty.domain import ids
from loyalty.domain.cluster import City, ClusterTerms, Criterion, MembershipKind, Registered
from loyalty.domain.customer import Profile
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, program

CLUSTERS = "/api/v1/analytics/clusters"
HOMES = ("s1", "s1", "s2", "s3", None)
"""The home stores of K0..K4; the even ones live in Milano."""


def customer(n: int) -> CustomerSpec:
    return CustomerSpec(
        cards=(f"K{n}",),
        profile=Profile(first_name=f"N{n}", city="Milano" if n % 2 == 0 else "Roma"),
        signed_up_on=date(2026, 6, 1),
        home_store=HOMES[n],
    )


def cluster(code: str, criteria: Criterion, membership: MembershipKind) -> ClusterSpec:
    terms = ClusterTerms(name=code.title(), criteria=criteria, membership=membership)
    return ClusterSpec(code=code, terms=terms)


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    """The test chain with K0..K4 and two clusters: milanesi (dynamic: K0, K2, K4) and
    founders (static: everyone registered)."""
    chain = program(
        customers=tuple(customer(n) for n in range(len(HOMES))),
        clusters=(
            cluster("milanesi", City(values=("Milano",)), MembershipKind.DYNAMIC),
            cluster("founders", Registered(), MembershipKind.STATIC),
        ),
    )
    with staffed_client(settings, clock, chain) as test_client:
        yield test_client


@pytest.fixture
def evaluated(client: TestClient[Any]) -> TestClient[Any]:
    """Both clusters evaluated by an admin."""
    root = bearer(client, "root")
    for code in ("milanesi", "founders"):
        response = client.post(f"{CLUSTERS}/{code}/evaluate", headers=root)
        assert response.status_code == 200, response.text
    return client


def listed(client: TestClient[Any], who: str) -> dict[str, Any]:
    response = client.get(CLUSTERS, headers=bearer(client, who))
    assert response.status_code == 200, response.text
    return {item["code"]: item for item in response.json()}


def member_cards(client: TestClient[Any], code: str, who: str) -> list[str]:
    response = client.get(f"{CLUSTERS}/{code}/members", headers=bearer(client, who))
    assert response.status_code == 200, response.text
    return [card for item in response.json()["items"] for card in item["cards"]]


def client_token(client: TestClient[Any], name: str, family: str) -> dict[str, str]:
    """The bearer header of a new API client of ``family``."""
    created = client.post(
        "/api/v1/backoffice/clients",
        json={"name": name, "families": [family]},
        headers=bearer(client, "root"),
    )
    assert created.status_code == 201, created.text
    token = client.post("/api/v1/auth/token", json={"api_key": created.json()["api_key"]}).json()
    return {"authorization": f"Bearer {token['access_token']}"}


def test_clusters_are_listed_with_their_kind_and_no_evaluation_yet(
    client: TestClient[Any],
) -> None:
    clusters = listed(client, "mia")

    assert {code: (c["membership"], c["version"]) for code, c in clusters.items()} == {
        "founders": ("static", 1),
        "milanesi": ("dynamic", 1),
    }
    assert [(c["last_evaluation"], c["size"]) for c in clusters.values()] == [(None, 0)] * 2


def test_an_evaluation_answers_the_clusters_size_and_what_changed(
    client: TestClient[Any],
) -> None:
    response = client.post(f"{CLUSTERS}/milanesi/evaluate", headers=bearer(client, "mia"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["size"], body["last_evaluation"]["version"]) == (3, 1)
    assert (body["last_evaluation"]["joined"], body["last_evaluation"]["departed"]) == (3, 0)


def test_admins_see_every_member_those_without_a_home_store_too(
    evaluated: TestClient[Any],
) -> None:
    response = evaluated.get(
        f"{CLUSTERS}/milanesi/members", params={"limit": 2}, headers=bearer(evaluated, "root")
    )

    page = response.json()
    assert (page["total"], page["limit"], len(page["items"])) == (3, 2, 2)
    assert sorted(member_cards(evaluated, "milanesi", "root")) == ["K0", "K2", "K4"]


def test_a_member_is_a_customer_id_with_cards_and_no_profile(evaluated: TestClient[Any]) -> None:
    response = evaluated.get(f"{CLUSTERS}/milanesi/members", headers=bearer(evaluated, "root"))

    by_card = {item["cards"][0]: item for item in response.json()["items"]}
    assert by_card["K4"] == {
        "customer_id": str(ids.customer_id_for_card("K4")),
        "cards": ["K4"],
        "home_store": None,
    }


def test_a_store_manager_counts_and_lists_only_the_members_of_their_store(
    evaluated: TestClient[Any],
) -> None:
    clusters = listed(evaluated, "sam")

    assert {code: c["size"] for code, c in clusters.items()} == {"founders": 2, "milanesi": 1}
    assert clusters["milanesi"]["last_evaluation"]["joined"] is None
    assert member_cards(evaluated, "milanesi", "sam") == ["K0"]
    assert sorted(member_cards(evaluated, "founders", "dino")) == ["K0", "K1", "K2"]


def test_a_member_who_moved_away_leaves_the_old_stores_list_at_once(
    evaluated: TestClient[Any],
) -> None:
    moved = evaluated.put(
        "/api/v1/customers/K0/home-store", json={"store": "s3"}, headers=bearer(evaluated, "root")
    )
    assert moved.status_code == 200, moved.text

    assert member_cards(evaluated, "founders", "sam") == ["K1"]


def test_members_come_as_csv_or_parquet_when_asked(evaluated: TestClient[Any]) -> None:
    root = bearer(evaluated, "root")
    url = f"{CLUSTERS}/milanesi/members"

    csv = evaluated.get(url, headers={**root, "accept": "text/csv"})
    parquet = evaluated.get(url, headers={**root, "accept": "application/vnd.apache.parquet"})

    assert csv.headers["content-type"].startswith("text/csv")
    table = pl.read_csv(io.BytesIO(csv.content))
    assert table.columns == ["customer_id", "cards", "home_store"]
    assert sorted(table["cards"].to_list()) == ["K0", "K2", "K4"]
    assert pl.read_parquet(io.BytesIO(parquet.content)).equals(table, null_equal=True)


def test_a_static_cluster_is_evaluated_only_once(evaluated: TestClient[Any]) -> None:
    again = evaluated.post(f"{CLUSTERS}/founders/evaluate", headers=bearer(evaluated, "root"))

    assert again.status_code == 409
    assert again.json()["code"] == "cluster_frozen"


def test_a_static_cluster_defined_in_the_backoffice_is_evaluated_at_once(
    client: TestClient[Any],
) -> None:
    terms = {"name": "Romani", "criteria": {"kind": "city", "values": ["Roma"]}}
    defined = client.post(
        "/api/v1/backoffice/clusters",
        json={"cluster": {"code": "romani", "terms": {**terms, "membership": "static"}}},
        headers=bearer(client, "mia"),
    )
    assert defined.status_code == 201, defined.text

    romani = listed(client, "mia")["romani"]

    assert (romani["membership"], romani["size"]) == ("static", 2)
    assert romani["last_evaluation"]["version"] == 1


def test_the_clusters_of_a_card_holder(evaluated: TestClient[Any]) -> None:
    response = evaluated.get(f"{CLUSTERS}/customers/K0", headers=bearer(evaluated, "sam"))

    assert response.status_code == 200, response.text
    assert [(c["code"], c["membership"], c["version"]) for c in response.json()] == [
        ("founders", "static", 1),
        ("milanesi", "dynamic", 1),
    ]


def test_a_card_of_another_store_is_unknown_to_a_store_manager(
    evaluated: TestClient[Any],
) -> None:
    sam = bearer(evaluated, "sam")

    for card in ("K2", "K4", "C1"):
        response = evaluated.get(f"{CLUSTERS}/customers/{card}", headers=sam)
        assert (response.status_code, response.json()["code"]) == (404, "unknown_card"), card


def test_an_unknown_cluster_answers_404(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    members = client.get(f"{CLUSTERS}/nope/members", headers=root)
    evaluation = client.post(f"{CLUSTERS}/nope/evaluate", headers=root)

    assert [members.status_code, evaluation.status_code] == [404, 404]
    assert {members.json()["code"], evaluation.json()["code"]} == {"unknown_cluster"}


def test_an_analytics_client_reads_and_evaluates_clusters(client: TestClient[Any]) -> None:
    analyst = client_token(client, "insights", "analytics")

    evaluation = client.post(f"{CLUSTERS}/milanesi/evaluate", headers=analyst)
    members = client.get(f"{CLUSTERS}/milanesi/members", headers=analyst)

    assert (evaluation.status_code, members.json()["total"]) == (200, 3)


def test_a_client_of_another_api_family_is_refused(client: TestClient[Any]) -> None:
    crm = client_token(client, "crm", "customer")

    response = client.get(CLUSTERS, headers=crm)

    assert (response.status_code, response.json()["code"]) == (403, "api_family_not_allowed")
