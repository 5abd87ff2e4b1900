"""A chain staffed with one operator per role, and their tokens (for API tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgspec
from litestar.testing import TestClient

from loyalty.api.app import create_app
from loyalty.bootstrap import Services, build_services
from loyalty.commands.apply import ProgramFile
from loyalty.commands.operators import add_operator
from loyalty.domain.operator import Role
from loyalty.settings import Settings
from tests.builders import Clock, program

PASSWORD = "correct horse battery staple"
STAFF = {
    "root": (Role.ADMIN, ()),
    "mia": (Role.MANAGER, ()),
    "dino": (Role.DISTRIBUTOR_MANAGER, ("north",)),
    "sam": (Role.STORE_MANAGER, ("s1",)),
    "audrey": (Role.AUDITOR, ()),
}
"""In ``tests.builders.chain_nodes``: north holds s1 and s2, south holds s3."""


@contextmanager
def staffed_client(
    settings: Settings, clock: Clock, chain: ProgramFile | None = None
) -> Iterator[TestClient[Any]]:
    """The API over the test chain (or ``chain``) and its staff (admins need no second
    factor here)."""
    services: Services = build_services(
        msgspec.structs.replace(settings, two_factor_roles=""), clock
    )
    services.applier.apply(chain or program())
    for username, (role, scope) in STAFF.items():
        add_operator(services.ledger, username, PASSWORD, role, scope, by="test")
    try:
        with TestClient(create_app(settings, services)) as client:
            yield client
    finally:
        services.close()


def bearer(client: TestClient[Any], username: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"authorization": f"Bearer {response.json()['access_token']}"}
