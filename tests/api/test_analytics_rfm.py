"""Analytics API, RFM: saved parameters, runs on demand, segments and members within the
caller's scope, migration between runs, in JSON or CSV."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import polars as pl
import pytest
from litestar.testing import TestClient

from loyalty.commands.apply import CustomerSpec
from loyalty.domain.customer import Profile
from loyalty.projections.balances import Balances
from loyalty.projections.customer360 import Customer360
from loyalty.projections.revenue import Revenue
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import START, Clock, as_json, line, program, purchase, terminal_key
from tests.projections.reading import caught_up

RFM = "/api/v1/analytics/rfm"
CUSTOMER = "/api/v1/analytics/customers"
AS_OF = (START + timedelta(days=20)).date().isoformat()


def customer(card: str, store: str) -> CustomerSpec:
    return CustomerSpec(
        cards=(card,),
        profile=Profile(first_name=card),
        signed_up_on=START.date(),
        home_store=store,
    )


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    chain = program(
        customers=(customer("C1", "s1"), customer("C2", "s2"), customer("C3", "s3")),
        cards=("C4",),
    )
    with staffed_client(settings, clock, chain) as test_client:
        clock.advance(hours=2)
        yield test_client


def sell(client: TestClient[Any], clock: Clock, movement_id: str, card: str, days: int) -> int:
    at = START + timedelta(days=days, hours=3)
    clock.now = max(clock.now, at + timedelta(minutes=1))
    terminal = {"C1": "t1", "C2": "t2", "C3": "t3", "C4": "t1"}[card]
    response = client.post(
        "/api/v1/terminal/movements",
        json=as_json(
            purchase(movement_id, line("BREAD", "25.00"), card=card, terminal=terminal, at=at)
        ),
        headers={"authorization": f"Bearer {terminal_key(terminal)}"},
    )
    assert response.status_code == 201, response.text
    return int(response.headers["ledger-position"])


@pytest.fixture
def scored(client: TestClient[Any], clock: Clock, settings: Settings) -> Iterator[dict[str, Any]]:
    """Four customers' purchases followed by the read side, and a run as of day 20."""
    sell(client, clock, "a1", "C1", 1)
    sell(client, clock, "a2", "C1", 18)
    sell(client, clock, "b1", "C2", 2)
    sell(client, clock, "c1", "C3", 10)
    position = sell(client, clock, "d1", "C4", 19)
    with caught_up(settings, [Revenue, Balances]):
        run = client.post(
            f"{RFM}/runs",
            params={"position": str(position)},
            json={"as_of": AS_OF},
            headers=bearer(client, "mia"),
        )
        assert run.status_code == 201, run.text
        yield run.json()


def test_a_run_counts_every_customer_and_names_segments_in_the_callers_language(
    client: TestClient[Any], scored: dict[str, Any]
) -> None:
    italian = client.get(
        f"{RFM}/runs/{scored['run_id']}",
        headers={**bearer(client, "root"), "accept-language": "it"},
    ).json()

    assert scored["customers"] == 4 and scored["computed_by"] == "operator:mia"
    assert sum(s["customers"] for s in scored["segments"]) == 4
    assert scored["segments"][0]["segment"] == "champions"
    names = {s["segment"]: s["name"] for s in italian["segments"]}
    assert names["champions"] == "campioni" and names["cant_lose_them"] == "da non perdere"


def test_a_store_manager_sees_only_the_customers_of_their_store(
    client: TestClient[Any], scored: dict[str, Any]
) -> None:
    sam = bearer(client, "sam")

    run = client.get(f"{RFM}/runs/{scored['run_id']}", headers=sam).json()
    members = client.get(f"{RFM}/runs/{scored['run_id']}/members", headers=sam).json()
    everyone = client.get(
        f"{RFM}/runs/{scored['run_id']}/members", headers=bearer(client, "root")
    ).json()

    assert run["customers"] == 1
    assert [m["cards"] for m in members] == [["C1"]]
    assert sorted(card for m in everyone for card in m["cards"]) == ["C1", "C2", "C3", "C4"]
    assert members[0]["frequency"] == 2 and members[0]["monetary"] == "50.00"


def test_members_come_as_csv_when_asked(client: TestClient[Any], scored: dict[str, Any]) -> None:
    response = client.get(
        f"{RFM}/runs/{scored['run_id']}/members",
        headers={**bearer(client, "root"), "accept": "text/csv"},
    )

    table = pl.read_csv(io.BytesIO(response.content))
    assert table.height == 4
    assert set(table.columns) >= {"customer_id", "cards", "segment", "r", "f", "m"}


def test_the_saved_policy_is_validated_and_used_by_later_runs(
    client: TestClient[Any], scored: dict[str, Any]
) -> None:
    mia = bearer(client, "mia")
    overlapping = {"rules": [{"segment": "everyone"}, {"segment": "again"}]}
    two_segments = {
        "scale": 2,
        "rules": [
            {"segment": "recent", "recency": {"low": 2, "high": 2}},
            {"segment": "lapsed", "recency": {"low": 1, "high": 1}},
        ],
    }

    refused = client.put(f"{RFM}/policy", json=overlapping, headers=mia)
    saved = client.put(f"{RFM}/policy", json=two_segments, headers=mia)
    later = client.post(f"{RFM}/runs", json={"as_of": AS_OF}, headers=mia)
    by_sam = client.put(f"{RFM}/policy", json=two_segments, headers=bearer(client, "sam"))

    assert (refused.status_code, refused.json()["code"]) == (422, "invalid_rfm_parameters")
    assert refused.json()["field"] == "rules"
    assert saved.status_code == 200 and saved.json()["saved_by"] == "operator:mia"
    assert [s["segment"] for s in later.json()["segments"]] == ["recent", "lapsed"]
    assert later.json()["previous"] == scored["run_id"]
    assert by_sam.status_code == 403


def test_the_migration_matrix_counts_moves_between_two_runs(
    client: TestClient[Any], scored: dict[str, Any]
) -> None:
    mia = bearer(client, "mia")
    client.put(
        f"{RFM}/policy",
        json={"scale": 2, "rules": [{"segment": "anyone"}]},
        headers=mia,
    )
    later = client.post(f"{RFM}/runs", json={"as_of": AS_OF}, headers=mia).json()

    matrix = client.get(
        f"{RFM}/migration",
        params={"before": scored["run_id"], "after": later["run_id"]},
        headers=mia,
    ).json()

    assert sum(row["customers"] for row in matrix) == 4
    assert {row["to_segment"] for row in matrix} == {"anyone"}


def test_an_unknown_run_answers_404(client: TestClient[Any]) -> None:
    response = client.get(
        f"{RFM}/runs/00000000-0000-0000-0000-000000000000", headers=bearer(client, "root")
    )

    assert (response.status_code, response.json()["code"]) == (404, "unknown_rfm_run")


def test_the_customer_360_view_joins_the_document_the_segment_and_the_clusters(
    client: TestClient[Any], scored: dict[str, Any], settings: Settings
) -> None:
    with caught_up(settings, [Customer360]):
        view = client.get(f"{CUSTOMER}/C1", headers=bearer(client, "sam"))
        hidden = client.get(f"{CUSTOMER}/C2", headers=bearer(client, "sam"))

    assert view.status_code == 200, view.text
    body = view.json()
    assert body["customer"]["cards"] == [{"code": "C1", "status": "active"}]
    assert (body["customer"]["purchases"], body["customer"]["spend"]) == (2, "50.00")
    assert body["segment"]["run_id"] == scored["run_id"]
    assert body["segment"]["name"] == body["segment"]["segment"].replace("_", " ")
    assert body["clusters"] == []
    assert not {"profile", "first_name", "email"} & set(body["customer"])
    assert (hidden.status_code, hidden.json()["code"]) == (404, "unknown_card")
