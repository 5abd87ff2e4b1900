"""Third-party API clients: keys shown once, exchanged for tokens good only for the API
families the client was given, revoked at once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec
import psycopg
import pytest
from litestar.testing import TestClient
from psycopg import sql

from loyalty.api.app import create_app
from loyalty.bootstrap import build_services
from loyalty.commands.operators import add_operator
from loyalty.domain.operator import Role
from loyalty.settings import Settings
from tests.builders import Clock, program

PASSWORD = "correct horse battery staple"
CLIENTS = "/api/v1/backoffice/clients"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    services = build_services(msgspec.structs.replace(settings, two_factor_roles=""), clock)
    services.applier.apply(program())
    add_operator(services.ledger, "root", PASSWORD, Role.ADMIN, (), by="test")
    try:
        with TestClient(create_app(settings, services)) as test_client:
            yield test_client
    finally:
        services.close()


def admin(client: TestClient[Any]) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def register(client: TestClient[Any], name: str, families: list[str]) -> dict[str, Any]:
    response = client.post(
        CLIENTS, json={"name": name, "families": families}, headers=admin(client)
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def exchange(client: TestClient[Any], api_key: str) -> Any:
    return client.post("/api/v1/auth/token", json={"api_key": api_key})


def test_a_key_is_shown_once_and_stored_only_as_a_digest(
    client: TestClient[Any], settings: Settings
) -> None:
    issued = register(client, "crm", ["customer"])

    assert issued["api_key"].startswith(f"lk:crm:{issued['key_id']}:")
    listed = client.get(CLIENTS, headers=admin(client)).json()["items"]
    assert listed == [
        {"name": "crm", "families": ["customer"], "scope": ["chain"], "key_ids": [issued["key_id"]]}
    ]
    with psycopg.connect(settings.conninfo()) as conn:
        query = sql.SQL("SELECT state FROM {}.ledger_events").format(
            sql.Identifier(settings.pg_schema)
        )
        assert all(issued["api_key"].encode() not in bytes(r[0]) for r in conn.execute(query))


def test_a_key_works_only_for_its_api_families(client: TestClient[Any]) -> None:
    analytics = register(client, "bi-tool", ["analytics"])
    backoffice = register(client, "erp", ["backoffice"])

    analytics_token = exchange(client, analytics["api_key"]).json()["access_token"]
    backoffice_token = exchange(client, backoffice["api_key"]).json()["access_token"]

    wrong_family = client.get(
        "/api/v1/backoffice/operators", headers={"authorization": f"Bearer {analytics_token}"}
    )
    not_an_admin = client.get(
        "/api/v1/backoffice/operators", headers={"authorization": f"Bearer {backoffice_token}"}
    )
    assert (wrong_family.status_code, wrong_family.json()["code"]) == (
        403,
        "api_family_not_allowed",
    )
    assert (not_an_admin.status_code, not_an_admin.json()["code"]) == (403, "forbidden")
    me = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {analytics_token}"})
    assert me.json()["families"] == ["analytics"] and me.json()["role"] is None


def test_a_revoked_key_and_its_tokens_stop_working_at_once(client: TestClient[Any]) -> None:
    issued = register(client, "crm", ["customer"])
    token = exchange(client, issued["api_key"]).json()["access_token"]

    revoked = client.delete(f"{CLIENTS}/crm/keys/{issued['key_id']}", headers=admin(client))

    assert revoked.status_code == 204
    assert exchange(client, issued["api_key"]).status_code == 401
    me = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_keys_rotate_a_new_key_works_beside_the_old_one(client: TestClient[Any]) -> None:
    register(client, "crm", ["customer"])

    rotated = client.post(f"{CLIENTS}/crm/keys", headers=admin(client))

    assert rotated.status_code == 201
    assert exchange(client, rotated.json()["api_key"]).status_code == 200


@pytest.mark.parametrize(
    "api_key",
    ["nonsense", "lk:crm:deadbeef:forged", "lk:nobody:00000000:x", "lk:crm"],
)
def test_a_wrong_key_is_refused(client: TestClient[Any], api_key: str) -> None:
    register(client, "crm", ["customer"])

    response = exchange(client, api_key)

    assert (response.status_code, response.json()["code"]) == (401, "unauthenticated")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": "crm", "families": []}, 422, "invalid_field"),
        ({"name": "crm", "families": ["weather"]}, 422, "invalid_field"),
        ({"name": "crm", "families": ["customer"], "scope": ["t1"]}, 422, "invalid_scope"),
        ({"name": "crm", "families": ["customer"], "scope": ["nowhere"]}, 404, "unknown_node"),
    ],
)
def test_bad_client_registrations_get_a_problem(
    client: TestClient[Any], body: dict[str, Any], status: int, code: str
) -> None:
    response = client.post(CLIENTS, json=body, headers=admin(client))

    assert (response.status_code, response.json()["code"]) == (status, code)


def test_revoking_an_unknown_key_or_client_answers_404(client: TestClient[Any]) -> None:
    register(client, "crm", ["customer"])

    unknown_key = client.delete(f"{CLIENTS}/crm/keys/00000000", headers=admin(client))
    unknown_client = client.post(f"{CLIENTS}/nobody/keys", headers=admin(client))

    assert unknown_key.json()["code"] == "unknown_api_key"
    assert unknown_client.json()["code"] == "unknown_api_client"
