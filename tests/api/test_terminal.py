"""The Terminal API over HTTP: the contract POS vendors integrate against."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from loyalty.api.app import create_app
from loyalty.bootstrap import Services
from loyalty.commands.admin import block_card
from loyalty.commands.apply import CustomerSpec
from loyalty.domain.customer import Profile
from loyalty.settings import Settings
from tests.builders import Clock, as_json, line, program, purchase, terminal_key

PROBLEM_FIELDS = {"type", "title", "status", "code", "detail"}


@pytest.fixture
def client(settings: Settings, services: Services, clock: Clock) -> Iterator[TestClient[Any]]:
    customer = CustomerSpec(
        cards=("C9",),
        profile=Profile(first_name="Giulia", last_name="Bianchi", email="g@example.org"),
        signed_up_on=clock.now.date(),
    )
    services.applier.apply(program(customers=(customer,)))
    clock.advance(hours=2)
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


def post(client: TestClient[Any], body: Any, terminal: str = "t1", **headers: str) -> Any:
    return client.post(
        "/api/v1/terminal/movements",
        content=body if isinstance(body, bytes) else msgspec.json.encode(body),
        headers={
            "authorization": f"Bearer {terminal_key(terminal)}",
            "content-type": "application/json",
            **headers,
        },
    )


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem: dict[str, Any] = response.json()
    assert problem.keys() >= PROBLEM_FIELDS and problem["code"] == code
    assert problem["status"] == status and problem["detail"]
    return problem


def test_a_purchase_answers_201_with_the_receipt(client: TestClient[Any]) -> None:
    response = post(client, as_json(purchase("r1", line("BREAD", "12.50"))))

    assert response.status_code == 201
    assert response.json() == {
        "movement_id": "r1",
        "card": "C1",
        "transactions": [
            {
                "kind": "points",
                "amount": "12",
                "currency": "PTS",
                "promotion": "base",
                "promotion_version": 1,
            }
        ],
        "balance": {"points": 12, "credits": "0.00"},
        "receipt_messages": ["Points earned: 12", "Points balance: 12"],
    }


def test_a_retry_answers_200_with_the_identical_body(client: TestClient[Any]) -> None:
    first = post(client, as_json(purchase("r1")))
    again = post(client, as_json(purchase("r1")))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content


def test_the_receipt_speaks_the_language_the_till_asks_for(client: TestClient[Any]) -> None:
    body = as_json(purchase("r1", line("BREAD", "12.50")))
    italian = post(client, body, **{"accept-language": "it"})
    retried = post(client, body, **{"accept-language": "it"})
    english = post(client, body)

    assert italian.json()["receipt_messages"] == ["Punti guadagnati: 12", "Saldo punti: 12"]
    assert italian.headers["content-language"] == "it"
    assert retried.status_code == 200 and retried.content == italian.content
    assert english.json()["receipt_messages"] == ["Points earned: 12", "Points balance: 12"]
    assert english.headers["content-language"] == "en"


def test_the_same_movement_id_with_another_body_answers_409(client: TestClient[Any]) -> None:
    post(client, as_json(purchase("r1")))

    response = post(client, as_json(purchase("r1", line("MILK", "2.00"))))

    assert_problem(response, 409, "idempotency_conflict")


def line_json(unit_price: str, quantity: str) -> dict[str, str]:
    amount = str(Decimal(unit_price) * Decimal(quantity))
    return {
        "sku": "X",
        "department": "d",
        "quantity": quantity,
        "unit_price": unit_price,
        "amount": amount,
    }


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"card": "NOPE"}, 404, "unknown_card"),
        ({"amount": "99.00"}, 422, "invalid_movement"),
        ({"amount": "10.001"}, 422, "invalid_movement"),
        ({"occurred_at": "2030-01-01T00:00:00+00:00"}, 422, "invalid_movement"),
        ({"occurred_at": "2026-06-01T10:00:00"}, 422, "invalid_movement"),
        ({"type": "adjustment"}, 422, "invalid_movement"),
        ({"type": "teleport"}, 422, "invalid_field"),
        ({"amount": True}, 422, "invalid_field"),
        ({"lines": "none"}, 422, "invalid_field"),
        ({"card": 1}, 422, "invalid_field"),
        ({"extra": "field"}, 422, "invalid_field"),
        ({"type": "return"}, 422, "invalid_movement"),
        ({"movement_id": "r" * 3000}, 422, "invalid_field"),
        ({"card": "C" * 3000}, 422, "invalid_field"),
        ({"terminal": ""}, 422, "invalid_field"),
        ({"currency": "euro"}, 422, "invalid_field"),
        ({"amount": "NaN"}, 422, "invalid_movement"),
        ({"amount": "1E+30", "lines": [line_json("1E+30", "1")]}, 422, "invalid_movement"),
        ({"amount": "10.00", "lines": [line_json("0.00001", "1E+6")]}, 422, "invalid_movement"),
        ({"amount": "0.00", "lines": [line_json("0.00", "1")] * 1001}, 422, "invalid_field"),
        ({"amount": "1.00", "lines": [line_json("1.00", "1.0001")]}, 422, "invalid_movement"),
    ],
)
def test_bad_movements_get_a_problem_with_a_stable_code(
    client: TestClient[Any], change: dict[str, Any], status: int, code: str
) -> None:
    body = {**as_json(purchase("r1")), **change}

    assert_problem(post(client, body), status, code)


def test_an_overlong_original_movement_id_is_refused(client: TestClient[Any]) -> None:
    body = {**as_json(purchase("r1")), "type": "return", "original_movement_id": "o" * 65}

    problem = assert_problem(post(client, body), 422, "invalid_movement")

    assert problem["field"] == "original_movement_id"


def test_negative_quantities_are_refused(client: TestClient[Any]) -> None:
    body = as_json(purchase("r1"))
    body["lines"][0]["quantity"] = "-1"

    problem = assert_problem(post(client, body), 422, "invalid_movement")

    assert problem["field"] == "lines[0].quantity"


def test_a_blocked_card_answers_422(client: TestClient[Any], services: Services) -> None:
    block_card(services.ledger, "C1", "stolen")

    assert_problem(post(client, as_json(purchase("r1"))), 422, "card_blocked")


def test_malformed_json_answers_400(client: TestClient[Any]) -> None:
    assert_problem(post(client, b'{"movement_id": '), 400, "malformed_json")


def test_a_wrong_content_type_answers_415(client: TestClient[Any]) -> None:
    response = post(client, as_json(purchase("r1")), **{"content-type": "text/plain"})

    assert_problem(response, 415, "unsupported_media_type")


def test_an_oversized_body_answers_413(client: TestClient[Any]) -> None:
    body = msgspec.json.encode({**as_json(purchase("r1")), "pad": "x" * 2_000_000})

    assert_problem(post(client, body), 413, "body_too_large")


def test_without_a_key_a_terminal_gets_401(client: TestClient[Any]) -> None:
    response = client.post("/api/v1/terminal/movements", json=as_json(purchase("r1")))

    assert_problem(response, 401, "unauthenticated")


def test_an_unknown_key_gets_401(client: TestClient[Any]) -> None:
    response = post(client, as_json(purchase("r1")), authorization="Bearer stolen")

    assert_problem(response, 401, "unauthenticated")


def test_a_terminal_may_post_only_for_itself(client: TestClient[Any]) -> None:
    response = post(client, as_json(purchase("r1", terminal="t2")), terminal="t1")

    assert_problem(response, 403, "terminal_mismatch")


def test_a_rejected_movement_writes_nothing(client: TestClient[Any]) -> None:
    assert_problem(
        post(client, {**as_json(purchase("r1")), "amount": "1.00"}), 422, "invalid_movement"
    )

    assert post(client, as_json(purchase("r1"))).status_code == 201


def test_a_card_read_shows_balance_and_status_and_nothing_personal(client: TestClient[Any]) -> None:
    post(client, as_json(purchase("r1", line("BREAD", "20.00"), card="C9")))

    response = client.get(
        "/api/v1/terminal/cards/C9", headers={"authorization": f"Bearer {terminal_key('t1')}"}
    )

    assert response.status_code == 200
    assert response.json() == {
        "card": "C9",
        "status": "active",
        "registered": True,
        "campaign": "club",
        "balance": {"points": 20, "credits": "0.00"},
    }
    assert "Giulia" not in response.text and "example.org" not in response.text


def test_reading_an_unknown_card_answers_404(client: TestClient[Any]) -> None:
    response = client.get(
        "/api/v1/terminal/cards/NOPE", headers={"authorization": f"Bearer {terminal_key('t1')}"}
    )

    assert_problem(response, 404, "unknown_card")


def test_the_openapi_document_describes_the_terminal_api(client: TestClient[Any]) -> None:
    document = client.get("/api/v1/schema/openapi.json").json()

    operation = document["paths"]["/api/v1/terminal/movements"]["post"]
    assert operation["operationId"] == "postMovement"
    assert "PostMovement" in str(operation["requestBody"])
