"""Backoffice API, operators: only an admin (with a full session) manages them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from litestar.testing import TestClient

from loyalty.api.app import create_app
from loyalty.bootstrap import Services, build_services
from loyalty.commands.operators import add_operator
from loyalty.domain import ids
from loyalty.domain.operator import Operator, Role
from loyalty.settings import Settings
from tests.builders import Clock, program

PASSWORD = "correct horse battery staple"
OPERATORS = "/api/v1/backoffice/operators"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    """Admins need no second factor here, so that an admin session is a full one."""
    services = build_services(msgspec.structs.replace(settings, two_factor_roles=""), clock)
    services.applier.apply(program())
    add_operator(services.ledger, "root", PASSWORD, Role.ADMIN, (), by="test")
    add_operator(services.ledger, "sam", PASSWORD, Role.STORE_MANAGER, ("s1",), by="test")
    try:
        with TestClient(create_app(settings, services)) as test_client:
            yield test_client
    finally:
        services.close()


def token(client: TestClient[Any], username: str, password: str = PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def test_an_admin_creates_an_operator_who_can_then_sign_in(client: TestClient[Any]) -> None:
    admin = token(client, "root")

    created = client.post(
        OPERATORS,
        json={
            "username": "Dora",
            "password": "another good passphrase",
            "role": "distributor_manager",
            "scope": ["north"],
        },
        headers=admin,
    )

    assert created.status_code == 201
    assert created.json() == {
        "username": "dora",
        "role": "distributor_manager",
        "scope": ["north"],
        "active": True,
        "two_factor": False,
    }
    assert client.get(
        "/api/v1/auth/me", headers=token(client, "dora", "another good passphrase")
    ).json()["scope"] == ["north"]
    listed = client.get(OPERATORS, headers=admin).json()["items"]
    assert [o["username"] for o in listed] == ["dora", "root", "sam"]


def test_a_role_change_is_recorded_with_the_admin_who_made_it(
    client: TestClient[Any],
) -> None:
    changed = client.put(
        f"{OPERATORS}/sam/role",
        json={"role": "store_manager", "scope": ["s1", "s2"]},
        headers=token(client, "root"),
    )

    assert changed.json()["scope"] == ["s1", "s2"]
    services = client.app.state.services
    events = list(services.ledger.events.get(ids.operator_id("sam")))
    assert isinstance(events[-1], Operator.RoleChanged) and events[-1].by == "root"


def test_deactivating_an_operator_ends_their_sessions(client: TestClient[Any]) -> None:
    sam = token(client, "sam")

    deactivated = client.post(
        f"{OPERATORS}/sam/deactivate", json={"reason": "left"}, headers=token(client, "root")
    )

    assert deactivated.json()["active"] is False
    assert client.get("/api/v1/auth/me", headers=sam).status_code == 401
    reactivated = client.post(f"{OPERATORS}/sam/reactivate", headers=token(client, "root"))
    assert reactivated.json()["active"] is True


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (
            {"username": "sam", "password": "another good passphrase", "role": "admin"},
            409,
            "duplicate_code",
        ),
        ({"username": "eve", "password": "password2026", "role": "admin"}, 422, "weak_password"),
        (
            {
                "username": "eve",
                "password": "another good passphrase",
                "role": "store_manager",
                "scope": ["north", "t1"],
            },
            422,
            "invalid_scope",
        ),
        (
            {"username": "eve", "password": "another good passphrase", "role": "owner"},
            422,
            "invalid_field",
        ),
        (
            {"username": "e", "password": "another good passphrase", "role": "admin"},
            422,
            "invalid_username",
        ),
    ],
)
def test_bad_operator_requests_get_a_problem_with_a_stable_code(
    client: TestClient[Any], body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(OPERATORS, json=body, headers=token(client, "root"))

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_an_unknown_operator_answers_404(client: TestClient[Any]) -> None:
    response = client.get(f"{OPERATORS}/nobody", headers=token(client, "root"))

    assert (response.status_code, response.json()["code"]) == (404, "unknown_operator")


def test_an_admin_cannot_deactivate_themselves(client: TestClient[Any]) -> None:
    response = client.post(
        f"{OPERATORS}/root/deactivate", json={"reason": "oops"}, headers=token(client, "root")
    )

    assert response.status_code == 403


def test_other_roles_cannot_manage_operators(client: TestClient[Any]) -> None:
    sam = token(client, "sam")

    assert client.get(OPERATORS, headers=sam).status_code == 403
    assert (
        client.post(
            OPERATORS, json={"username": "x", "password": "y", "role": "admin"}, headers=sam
        ).status_code
        == 403
    )
    assert client.get(OPERATORS).status_code == 401


def test_an_admin_without_the_required_second_factor_is_held_back(
    settings: Settings, services: Services
) -> None:
    services.applier.apply(program())
    add_operator(services.ledger, "root", PASSWORD, Role.ADMIN, (), by="test")
    with TestClient(create_app(settings, services)) as client:
        response = client.get(OPERATORS, headers=token(client, "root"))

    assert (response.status_code, response.json()["code"]) == (403, "two_factor_required")
