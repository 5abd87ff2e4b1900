"""The operators issue's acceptance, over HTTP against a real ``loyalty serve`` process and
the real database: the first admin enrols a second factor; a new store manager is created,
enrols theirs, signs in with password and code, and sees exactly their scope; a third-party
key works only for its API family."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pyotp
import pytest

from loyalty.bootstrap import build_services
from loyalty.commands.operators import add_operator
from loyalty.domain.operator import Role
from loyalty.settings import Settings
from tests.api.test_server import free_port, running
from tests.builders import program

PASSWORD = "correct horse battery staple"


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    """The test chain served by two processes; admins and store managers need a second
    factor; ``root`` is the first admin, made on the command line's path."""
    services = build_services(settings)
    try:
        services.applier.apply(program())
        add_operator(services.ledger, "root", PASSWORD, Role.ADMIN, (), by="cli")
    finally:
        services.close()
    port = free_port()
    environment = {
        "LOYALTY_TWO_FACTOR_ROLES": "admin,store_manager",
        "LOYALTY_SECRET_KEY": settings.secret_key or "",
        "LOYALTY_MASTER_KEY": settings.master_key,
    }
    with (
        running(settings, port, 2, **environment),
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def sign_in(api: httpx.Client, username: str, password: str = PASSWORD) -> dict[str, Any]:
    answer = api.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def enrol(api: httpx.Client, access: str) -> str:
    """Enrols an authenticator for the session's operator; its secret."""
    enrolment = api.post("/api/v1/auth/two-factor", headers=bearer(access)).json()
    confirmed = api.post(
        "/api/v1/auth/two-factor/confirm",
        json={"code": pyotp.TOTP(enrolment["secret"]).now()},
        headers=bearer(access),
    )
    assert confirmed.status_code == 200, confirmed.text
    assert len(confirmed.json()["recovery_codes"]) == 10
    secret: str = enrolment["secret"]
    return secret


def test_a_new_store_manager_enrols_signs_in_and_sees_exactly_their_store(
    api: httpx.Client,
) -> None:
    first = sign_in(api, "root")
    held_back = api.get("/api/v1/backoffice/operators", headers=bearer(first["access_token"]))
    assert held_back.status_code == 403 and held_back.json()["code"] == "two_factor_required"
    enrol(api, first["access_token"])
    root = bearer(first["access_token"])

    created = api.post(
        "/api/v1/backoffice/operators",
        json={
            "username": "lia",
            "password": "seven quiet harbour lights",
            "role": "store_manager",
            "scope": ["s1"],
        },
        headers=root,
    )
    assert created.status_code == 201, created.text
    restricted = sign_in(api, "lia", "seven quiet harbour lights")
    secret = enrol(api, restricted["access_token"])
    challenge = sign_in(api, "lia", "seven quiet harbour lights")
    assert challenge["second_factor_required"] is True
    next_step = pyotp.TOTP(secret).at(time.time() + 30)
    signed_in = api.post(
        "/api/v1/auth/login/second-factor",
        json={"challenge": challenge["challenge"], "code": next_step},
    )
    assert signed_in.status_code == 200, signed_in.text
    lia = bearer(signed_in.json()["access_token"])

    nodes = api.get("/api/v1/backoffice/network", headers=lia).json()["items"]
    assert sorted(n["code"] for n in nodes) == ["s1", "t1"]
    for code in ("s2", "t2", "north", "s3"):
        assert api.get(f"/api/v1/backoffice/network/{code}", headers=lia).status_code == 404
    assert api.get("/api/v1/backoffice/operators", headers=lia).status_code == 403

    registered = api.post(
        "/api/v1/customers",
        json={"card": "C2", "profile": {"last_name": "Neri"}, "home_store": "s2"},
        headers=root,
    )
    assert registered.status_code == 201, registered.text
    for path in ("/api/v1/customers/C2", "/api/v1/customers/C2/balances"):
        assert api.get(path, headers=lia).json()["code"] == "unknown_card"


def test_a_third_party_key_works_only_for_its_family(api: httpx.Client) -> None:
    first = sign_in(api, "root")
    enrol(api, first["access_token"])
    issued = api.post(
        "/api/v1/backoffice/clients",
        json={"name": "catalog-sync", "families": ["product"]},
        headers=bearer(first["access_token"]),
    )
    assert issued.status_code == 201, issued.text
    token = api.post("/api/v1/auth/token", json={"api_key": issued.json()["api_key"]})
    client = bearer(token.json()["access_token"])

    synced = api.put(
        "/api/v1/products",
        json={"products": [{"sku": "BREAD", "name": "Bread", "price": "1.20"}]},
        headers=client,
    )
    elsewhere = [
        api.get("/api/v1/customers/C1", headers=client),
        api.get("/api/v1/backoffice/network", headers=client),
        api.get("/api/v1/prizes", headers=client),
        api.post("/api/v1/terminal/movements", json={}, headers=client),
    ]

    assert synced.status_code == 200 and synced.json()["created"] == 1
    assert [r.json()["code"] for r in elsewhere[:3]] == ["api_family_not_allowed"] * 3
    assert elsewhere[3].status_code == 401
