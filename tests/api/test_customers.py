"""Customer API: a customer-facing app registers card holders, completes profiles,
records consents and reads balances and history, with a Customer-family key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, as_json, line, purchase, terminal_key

CUSTOMERS = "/api/v1/customers"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        clock.advance(hours=2)
        yield test_client


def app_key(client: TestClient[Any]) -> dict[str, str]:
    """A token of the customer app: an API client of the Customer family."""
    issued = client.post(
        "/api/v1/backoffice/clients",
        json={"name": "app", "families": ["customer"]},
        headers=bearer(client, "root"),
    ).json()
    token = client.post("/api/v1/auth/token", json={"api_key": issued["api_key"]}).json()
    return {"authorization": f"Bearer {token['access_token']}"}


def buy(client: TestClient[Any], movement_id: str, amount: str) -> None:
    response = client.post(
        "/api/v1/terminal/movements",
        json=as_json(purchase(movement_id, line("BREAD", amount))),
        headers={"authorization": f"Bearer {terminal_key('t1')}"},
    )
    assert response.status_code == 201, response.text


def register(client: TestClient[Any], app: dict[str, str], card: str = "C1") -> Any:
    return client.post(
        CUSTOMERS,
        json={"card": card, "profile": {"first_name": "Giulia", "city": "Milano"}},
        headers=app,
    )


def test_a_card_that_earned_anonymously_is_registered_and_keeps_its_points(
    client: TestClient[Any],
) -> None:
    app = app_key(client)
    buy(client, "r1", "20.00")

    registered = register(client, app)
    balances = client.get(f"{CUSTOMERS}/C1/balances", headers=app).json()

    assert registered.status_code == 201
    assert registered.json()["profile"]["first_name"] == "Giulia"
    assert balances == [{"campaign": "club", "balance": {"points": 20, "credits": "0.00"}}]


def test_registering_twice_is_a_conflict(client: TestClient[Any]) -> None:
    app = app_key(client)
    register(client, app)

    again = register(client, app)

    assert (again.status_code, again.json()["code"]) == (409, "already_registered")


def test_the_profile_is_completed_but_keeps_a_name(client: TestClient[Any]) -> None:
    app = app_key(client)
    register(client, app)

    completed = client.patch(
        f"{CUSTOMERS}/C1/profile",
        json={"first_name": "Giulia", "last_name": "Bianchi", "city": "Roma"},
        headers=app,
    )
    nameless = client.patch(f"{CUSTOMERS}/C1/profile", json={"city": "Roma"}, headers=app)

    assert completed.json()["profile"]["city"] == "Roma"
    assert (nameless.status_code, nameless.json()["code"]) == (422, "invalid_program")


def test_consents_are_recorded_with_time_channel_and_source(
    client: TestClient[Any], clock: Clock
) -> None:
    app = app_key(client)
    register(client, app)
    consent = {"purpose": "marketing", "channel": "email", "granted": True, "source": "app"}

    client.post(f"{CUSTOMERS}/C1/consents", json=consent, headers=app)
    client.post(f"{CUSTOMERS}/C1/consents", json={**consent, "granted": False}, headers=app)

    trail = client.get(f"{CUSTOMERS}/C1/consents", headers=app).json()
    assert [(c["granted"], c["channel"]) for c in trail] == [(True, "email"), (False, "email")]
    assert trail[0]["source"] == "app (client:app)"
    assert trail[0]["at"].startswith(clock.now.date().isoformat())


def test_the_history_lists_movements_newest_first_with_the_balance_after(
    client: TestClient[Any],
) -> None:
    app = app_key(client)
    buy(client, "r1", "10.00")
    buy(client, "r2", "5.00")

    page = client.get(f"{CUSTOMERS}/C1/movements", params={"campaign": "club"}, headers=app)

    items = page.json()["items"]
    assert [(i["movement_id"], i["balance_after"]["points"]) for i in items] == [
        ("r2", 15),
        ("r1", 10),
    ]
    assert items[0]["transactions"][0]["promotion"] == "base"


def test_an_unregistered_or_unknown_card_answers_404(client: TestClient[Any]) -> None:
    app = app_key(client)

    unregistered = client.get(f"{CUSTOMERS}/C2", headers=app)
    unknown = client.get(f"{CUSTOMERS}/NOPE", headers=app)

    assert unregistered.json()["code"] == "unknown_customer"
    assert unknown.json()["code"] == "unknown_card"


def test_store_managers_cannot_reach_customers(client: TestClient[Any]) -> None:
    response = client.get(f"{CUSTOMERS}/C1", headers=bearer(client, "sam"))

    assert response.status_code == 403
