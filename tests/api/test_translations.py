"""Messages in the language the request asks for, from a catalog admins can change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.api.i18n import bundled, locale_for, localised, localised_line
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

MISSING_NODE = "/api/v1/backoffice/network/nowhere"
MESSAGE = "/api/v1/backoffice/translations/it/unknown_node"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def ask(client: TestClient[Any], language: str) -> Any:
    return client.get(MISSING_NODE, headers={**bearer(client, "sam"), "accept-language": language})


def test_a_refusal_speaks_the_language_the_request_asks_for(client: TestClient[Any]) -> None:
    italian = ask(client, "it-IT,it;q=0.9,en;q=0.5")
    english = ask(client, "fr, en;q=0.4")

    assert italian.json()["detail"] == "nessun nodo della rete ha il codice nowhere"
    assert italian.headers["content-language"] == "it"
    assert english.json()["detail"] == "no network node has the code nowhere"
    assert english.json()["code"] == italian.json()["code"] == "unknown_node"


def test_an_admin_changes_a_message_at_once_and_can_go_back(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    changed = client.put(MESSAGE, json={"text": "il nodo {node} non esiste"}, headers=root)
    after = ask(client, "it")
    reset = client.delete(MESSAGE, headers=root)
    again = ask(client, "it")

    assert changed.json() == {
        "locale": "it",
        "messages": {"unknown_node": "il nodo {node} non esiste"},
    }
    assert after.json()["detail"] == "il nodo nowhere non esiste"
    assert reset.status_code == 204
    assert again.json()["detail"] == "nessun nodo della rete ha il codice nowhere"


def test_only_admins_change_messages_and_every_operator_reads_them(
    client: TestClient[Any],
) -> None:
    sam = bearer(client, "sam")

    refused = client.put(MESSAGE, json={"text": "x"}, headers=sam)
    catalog = client.get("/api/v1/backoffice/translations/it", headers=sam)

    assert refused.status_code == 403
    assert catalog.json()["messages"]["card_blocked"] == "la tessera {card} è bloccata"


def test_a_bad_locale_or_code_is_refused(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    bad_locale = client.put(
        "/api/v1/backoffice/translations/Italian/unknown_node", json={"text": "x"}, headers=root
    )
    bad_code = client.put(
        "/api/v1/backoffice/translations/it/Not-A-Code", json={"text": "x"}, headers=root
    )

    assert bad_locale.status_code == bad_code.status_code == 422


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        ("it-CH", "it"),
        ("de-CH, de;q=0.9", "en"),
        ("fr;q=0.9, it;q=0.8", "it"),
        ("it;q=0, en", "en"),
        ("", "en"),
        ("*", "en"),
        ("it;q=nonsense, en", "en"),
    ],
)
def test_the_locale_is_the_best_available_of_accept_language(header: str, locale: str) -> None:
    assert locale_for(header, {"en", "it"}, "en") == locale


def test_a_message_whose_field_is_missing_keeps_the_server_wording() -> None:
    assert localised("la tessera {card} è bloccata", "card X is blocked", {}) == "card X is blocked"
    assert localised("la tessera {card}", "fallback", {"card": "C1"}) == "la tessera C1"
    assert localised(None, "fallback", {"card": "C1"}) == "fallback"


def test_receipt_lines_are_rendered_again_from_the_catalog() -> None:
    italian = {**bundled("it"), "promotion_summer_sale": "Grazie per la spesa!"}
    promotions = {"Thanks for shopping!": "summer-sale"}

    assert localised_line("Points earned: 12", italian, promotions) == "Punti guadagnati: 12"
    assert localised_line("Points balance: -0", italian, promotions) == "Saldo punti: -0"
    assert localised_line("Thanks for shopping!", italian, promotions) == "Grazie per la spesa!"
    assert localised_line("Thanks for shopping!", bundled("it"), promotions) == (
        "Thanks for shopping!"
    )
    assert localised_line("Anything else", italian, promotions) == "Anything else"
