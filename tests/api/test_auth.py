"""The Auth API over HTTP: sign-in, throttling, rotating refresh tokens, sign-out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.api.app import create_app
from loyalty.bootstrap import Services
from loyalty.commands.operators import add_operator, change_password, deactivate_operator
from loyalty.domain import ids
from loyalty.domain.operator import Role
from loyalty.domain.signin import MAX_FAILURES, SignIns
from loyalty.settings import Settings
from tests.builders import Clock, program

PASSWORD = "correct horse battery staple"


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient[Any]]:
    services.applier.apply(program())
    add_operator(services.ledger, "anna", PASSWORD, Role.STORE_MANAGER, ("s1",), by="test")
    with TestClient(create_app(settings, services)) as test_client:
        yield test_client


def sign_in(client: TestClient[Any], username: str = "anna", password: str = PASSWORD) -> Any:
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def me(client: TestClient[Any], access_token: str) -> Any:
    return client.get("/api/v1/auth/me", headers=bearer(access_token))


def test_a_right_password_gets_tokens_that_say_who_the_operator_is(
    client: TestClient[Any],
) -> None:
    response = sign_in(client)

    tokens = response.json()
    assert response.status_code == 200
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 900
    assert me(client, tokens["access_token"]).json() == {
        "username": "anna",
        "role": "store_manager",
        "scope": ["s1"],
        "families": ["analytics", "audit", "backoffice", "customer", "prize", "product"],
        "two_factor": False,
        "restricted": False,
    }


def test_a_wrong_password_and_an_unknown_username_get_the_same_answer(
    client: TestClient[Any],
) -> None:
    wrong = sign_in(client, password="not the password at all")
    unknown = sign_in(client, username="nobody")

    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["code"] == "unauthenticated"


def test_repeated_failures_lock_the_username_out_even_for_the_right_password(
    client: TestClient[Any], services: Services
) -> None:
    for _ in range(MAX_FAILURES):
        assert sign_in(client, password="not the password at all").status_code == 401

    locked = sign_in(client)

    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert int(locked.headers["retry-after"]) > 0
    trail = [type(e).__name__ for e in services.ledger.events.get(ids.sign_ins_id("anna"))]
    assert trail == ["Started", *["Failed"] * MAX_FAILURES, "LockedOut"]


def test_an_unknown_username_is_locked_out_like_a_real_one(client: TestClient[Any]) -> None:
    for _ in range(MAX_FAILURES):
        sign_in(client, username="nobody")

    assert sign_in(client, username="nobody").status_code == 429


def test_the_lock_out_ends_after_its_time(
    client: TestClient[Any], services: Services, clock: Clock
) -> None:
    for _ in range(MAX_FAILURES):
        sign_in(client, password="not the password at all")

    clock.advance(minutes=16)

    assert sign_in(client).status_code == 200
    attempts = services.ledger.repository.get(ids.sign_ins_id("anna"))
    assert isinstance(attempts, SignIns) and attempts.failures_in_a_row == 0


def test_many_failures_from_one_address_are_throttled_whatever_the_username(
    client: TestClient[Any],
) -> None:
    for n in range(20):
        assert sign_in(client, username=f"user{n}", password="x" * 12).status_code == 401

    assert sign_in(client).status_code == 429


def test_a_refresh_token_rotates_the_pair_and_works_once(client: TestClient[Any]) -> None:
    first = sign_in(client).json()

    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert second.status_code == 200
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert me(client, second.json()["access_token"]).status_code == 200


def test_a_reused_refresh_token_revokes_its_whole_family(
    client: TestClient[Any], services: Services
) -> None:
    first = sign_in(client).json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})

    assert reused.status_code == 401
    assert me(client, second.json()["access_token"]).status_code == 401
    later = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]}
    )
    assert later.status_code == 401
    trail = list(services.ledger.events.get(ids.sign_ins_id("anna")))
    assert isinstance(trail[-1], SignIns.SessionRevoked)
    assert trail[-1].reason == "refresh token reused"


def test_sign_out_revokes_the_session(client: TestClient[Any], services: Services) -> None:
    tokens = sign_in(client).json()

    assert (
        client.post("/api/v1/auth/logout", headers=bearer(tokens["access_token"])).status_code
        == 204
    )

    assert me(client, tokens["access_token"]).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401
    trail = [type(e).__name__ for e in services.ledger.events.get(ids.sign_ins_id("anna"))]
    assert trail == ["Started", "Succeeded", "SignedOut"]


def test_an_access_token_expires(client: TestClient[Any], clock: Clock) -> None:
    tokens = sign_in(client).json()

    clock.advance(minutes=16)

    assert me(client, tokens["access_token"]).status_code == 401


def test_a_deactivated_operator_can_neither_sign_in_nor_use_a_token(
    client: TestClient[Any], services: Services
) -> None:
    tokens = sign_in(client).json()

    deactivate_operator(services.ledger, "anna", "left the company", by="test")

    assert me(client, tokens["access_token"]).status_code == 401
    assert sign_in(client).status_code == 401


def test_a_hash_made_with_weaker_parameters_is_replaced_at_sign_in(
    client: TestClient[Any], services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from argon2 import PasswordHasher

    from loyalty.commands import passwords

    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8192))
    change_password(services.ledger, "anna", PASSWORD, by="test")
    monkeypatch.undo()

    assert sign_in(client).status_code == 200

    operator = services.ledger.repository.get(ids.operator_id("anna"))
    assert "m=65536,t=3" in operator.password_hash  # type: ignore[attr-defined]


def test_operator_routes_need_an_access_token(client: TestClient[Any]) -> None:
    assert client.get("/api/v1/auth/me").status_code == 401
    assert me(client, "not-a-token").status_code == 401
