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
    policy = client.put(
        "/api/v1/backoffice/privacy/policies/it",
        json={"text": "Informativa privacy, versione di giugno"},
        headers=bearer(client, "root"),
    ).json()
    consent = {
        "purpose": "marketing",
        "channel": "email",
        "granted": True,
        "source": "customer_app",
        "policy_version": policy["version"],
        "evidence": {"request_id": "req-81"},
    }

    given = client.post(f"{CUSTOMERS}/C1/consents", json=consent, headers=app)
    client.post(f"{CUSTOMERS}/C1/consents", json={**consent, "granted": False}, headers=app)
    sms = client.post(f"{CUSTOMERS}/C1/consents", json={**consent, "channel": "sms"}, headers=app)

    assert given.status_code == sms.status_code == 201
    trail = client.get(f"{CUSTOMERS}/C1/consents", headers=app).json()
    assert [(c["granted"], c["channel"]) for c in trail] == [
        (True, "email"),
        (False, "email"),
        (True, "sms"),
    ]
    assert (trail[0]["source"], trail[0]["source_id"]) == ("customer_app", "client:app")
    assert trail[0]["policy"] == {"version": 1, "locale": "it", "sha256": policy["sha256"]}
    assert trail[0]["evidence"]["request_id"] == "req-81"
    assert trail[0]["at"].startswith(clock.now.date().isoformat())
    current = client.get(f"{CUSTOMERS}/C1/consents/current", headers=app).json()
    assert sorted((c["channel"], c["granted"]) for c in current) == [
        ("email", False),
        ("sms", True),
    ]


def test_a_consent_names_a_published_policy_and_only_imports_date_it(
    client: TestClient[Any], clock: Clock
) -> None:
    app = app_key(client)
    register(client, app)
    consent = {"purpose": "profiling", "channel": "sms", "granted": True, "source": "customer_app"}

    unknown = client.post(
        f"{CUSTOMERS}/C1/consents", json={**consent, "policy_version": 9}, headers=app
    )
    backdated = client.post(
        f"{CUSTOMERS}/C1/consents", json={**consent, "at": "2026-01-01T00:00:00Z"}, headers=app
    )
    imported = client.post(
        f"{CUSTOMERS}/C1/consents",
        json={**consent, "source": "import", "at": "2026-01-01T00:00:00Z"},
        headers=app,
    )
    odd = client.post(
        f"{CUSTOMERS}/C1/consents", json={**consent, "purpose": "gossip"}, headers=app
    )

    assert unknown.status_code == 404 and unknown.json()["code"] == "unknown_policy"
    assert backdated.status_code == 422 and backdated.json()["field"] == "at"
    assert imported.status_code == 201 and imported.json()[0]["at"].startswith("2026-01-01")
    assert odd.status_code == 422


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


def test_the_history_names_each_movement_type_in_the_requests_language(
    client: TestClient[Any],
) -> None:
    app = app_key(client)
    buy(client, "r1", "10.00")

    italian = client.get(
        f"{CUSTOMERS}/C1/movements",
        params={"campaign": "club"},
        headers={**app, "accept-language": "it"},
    )
    english = client.get(f"{CUSTOMERS}/C1/movements", params={"campaign": "club"}, headers=app)

    assert italian.json()["items"][0]["type_name"] == "Acquisto"
    assert english.json()["items"][0]["type_name"] == "Purchase"
    assert english.json()["items"][0]["type"] == "purchase"


def test_an_unregistered_or_unknown_card_answers_404(client: TestClient[Any]) -> None:
    app = app_key(client)

    unregistered = client.get(f"{CUSTOMERS}/C2", headers=app)
    unknown = client.get(f"{CUSTOMERS}/NOPE", headers=app)

    assert unregistered.json()["code"] == "unknown_customer"
    assert unknown.json()["code"] == "unknown_card"


def register_at(client: TestClient[Any], who: str, card: str, store: str | None) -> Any:
    body = {"card": card, "profile": {"last_name": "Verdi"}}
    return client.post(
        CUSTOMERS,
        json={**body, "home_store": store} if store else body,
        headers=bearer(client, who),
    )


def card_routes(card: str) -> list[tuple[str, str, dict[str, Any]]]:
    """Every route that names a card, with a body it would accept."""
    return [
        ("GET", f"{CUSTOMERS}/{card}", {}),
        ("PATCH", f"{CUSTOMERS}/{card}/profile", {"last_name": "Neri"}),
        ("PUT", f"{CUSTOMERS}/{card}/home-store", {"store": "s1"}),
        (
            "POST",
            f"{CUSTOMERS}/{card}/consents",
            {"purpose": "marketing", "channel": "sms", "granted": True, "source": "store_terminal"},
        ),
        ("GET", f"{CUSTOMERS}/{card}/consents", {}),
        ("GET", f"{CUSTOMERS}/{card}/balances", {}),
        ("GET", f"{CUSTOMERS}/{card}/movements?campaign=club", {}),
    ]


def test_a_store_manager_registers_customers_of_their_own_store_only(
    client: TestClient[Any],
) -> None:
    at_home = register_at(client, "sam", "C1", "s1")
    homeless = register_at(client, "sam", "C2", None)
    elsewhere = register_at(client, "sam", "C2", "s2")
    a_till = register_at(client, "mia", "C3", "t1")

    assert at_home.status_code == 201 and at_home.json()["home_store"] == "s1"
    assert homeless.status_code == 403
    assert elsewhere.status_code == 404 and elsewhere.json()["code"] == "unknown_node"
    assert a_till.status_code == 422 and a_till.json()["code"] == "invalid_program"


def test_scoped_operators_reach_exactly_the_customers_of_their_stores(
    client: TestClient[Any],
) -> None:
    register_at(client, "mia", "C1", "s1")
    register_at(client, "mia", "C2", "s2")
    register_at(client, "mia", "C3", "s3")

    def reached(who: str, card: str) -> set[int]:
        return {
            client.request(method, url, json=body, headers=bearer(client, who)).status_code
            for method, url, body in card_routes(card)
        }

    assert reached("sam", "C1") <= {200, 201}
    for card in ("C2", "C3"):
        assert reached("sam", card) == {404}
    assert reached("dino", "C2") <= {200, 201}
    assert reached("dino", "C3") == {404}
    assert client.get(f"{CUSTOMERS}/C3", headers=bearer(client, "sam")).json()["code"] == (
        "unknown_card"
    )


def test_an_anonymous_card_is_out_of_every_scoped_operators_reach(client: TestClient[Any]) -> None:
    buy(client, "r1", "20.00")

    balances = client.get(f"{CUSTOMERS}/C1/balances", headers=bearer(client, "sam"))

    assert balances.status_code == 404 and balances.json()["code"] == "unknown_card"


def test_moving_the_home_store_moves_the_customer_out_of_reach(client: TestClient[Any]) -> None:
    register_at(client, "sam", "C1", "s1")

    moved = client.put(
        f"{CUSTOMERS}/C1/home-store", json={"store": "s3"}, headers=bearer(client, "mia")
    )
    sam_sees = client.get(f"{CUSTOMERS}/C1", headers=bearer(client, "sam"))
    sam_moves_back = client.put(
        f"{CUSTOMERS}/C1/home-store", json={"store": "s1"}, headers=bearer(client, "sam")
    )

    assert moved.json()["home_store"] == "s3"
    assert sam_sees.status_code == 404 and sam_moves_back.status_code == 404
