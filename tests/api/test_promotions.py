"""Backoffice API, promotions: simulating a basket at a till writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

SIMULATE = "/api/v1/backoffice/promotions/simulate"
BASKET = {
    "terminal": "t1",
    "amount": "12.50",
    "currency": "EUR",
    "lines": [
        {"sku": "BREAD", "department": "bakery", "quantity": "1", "unit_price": "12.50",
         "amount": "12.50"}
    ],
}  # fmt: skip


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        clock.advance(hours=2)
        yield test_client


def events(settings: Settings) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.ledger_events").format(
            sql.Identifier(settings.pg_schema)
        )
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


def test_a_simulation_answers_what_the_basket_would_get_and_writes_nothing(
    client: TestClient[Any], settings: Settings
) -> None:
    sam = bearer(client, "sam")
    before = events(settings)

    response = client.post(SIMULATE, json=BASKET, headers=sam)

    result = response.json()
    assert response.status_code == 200, response.text
    assert [(t["kind"], t["amount"]) for t in result["transactions"]] == [("points", "12")]
    assert [f["code"] for f in result["fired"]] == ["base"]
    assert result["balance_after"]["points"] == 12
    assert events(settings) == before


def test_a_simulation_for_a_card_starts_from_its_balance(client: TestClient[Any]) -> None:
    sam = bearer(client, "sam")

    first = client.post(SIMULATE, json={**BASKET, "card": "C1"}, headers=sam).json()
    again = client.post(SIMULATE, json={**BASKET, "card": "C1"}, headers=sam).json()

    assert first["balance_after"] == again["balance_after"]


def test_a_till_outside_the_scope_is_not_found(client: TestClient[Any]) -> None:
    response = client.post(
        SIMULATE, json={**BASKET, "terminal": "t3"}, headers=bearer(client, "sam")
    )

    assert (response.status_code, response.json()["code"]) == (404, "unknown_node")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"amount": "99.00"}, "invalid_movement"),
        ({"type": "return"}, "invalid_movement"),
        ({"card": "NOPE"}, "unknown_card"),
        ({"occurred_at": "2040-01-01T00:00:00Z"}, "invalid_movement"),
    ],
)
def test_a_bad_simulation_says_why(
    client: TestClient[Any], change: dict[str, str], code: str
) -> None:
    response = client.post(SIMULATE, json={**BASKET, **change}, headers=bearer(client, "root"))

    assert response.json()["code"] == code
