"""Audit API: auditors read the chain, the signed checkpoints and a replay; nothing else."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from litestar.testing import TestClient

from loyalty.commands.audit import signed_bytes
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock, as_json, line, purchase, terminal_key

AUDIT = "/api/v1/audit"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        clock.advance(hours=2)
        sale = test_client.post(
            "/api/v1/terminal/movements",
            json=as_json(purchase("r1", line("BREAD", "12.00"))),
            headers={"authorization": f"Bearer {terminal_key('t1')}"},
        )
        assert sale.status_code == 201
        test_client.app.state.services.auditor.checkpoint(clock.now)
        yield test_client


def test_an_auditor_verifies_the_chain_and_each_checkpoint_with_the_public_key(
    client: TestClient[Any],
) -> None:
    audrey = bearer(client, "audrey")

    chain = client.get(f"{AUDIT}/chain", headers=audrey).json()
    (checkpoint,) = client.get(f"{AUDIT}/checkpoints", headers=audrey).json()
    key = client.get(f"{AUDIT}/public-key", headers=audrey).json()

    assert chain["intact"] and chain["checkpoints"] == 1
    message = signed_bytes(
        checkpoint["notification_id"],
        base64.b64decode(checkpoint["link"]),
        datetime.fromisoformat(checkpoint["made_at"]),
    )
    Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["key"])).verify(
        base64.b64decode(checkpoint["signature"]), message
    )


def test_an_auditor_replays_the_ledger_and_reaches_nothing_else(client: TestClient[Any]) -> None:
    audrey = bearer(client, "audrey")

    replayed = client.post(f"{AUDIT}/replay", json={}, headers=audrey).json()

    assert replayed["identical"] and replayed["movements"] == 1
    assert client.get("/api/v1/backoffice/network", headers=audrey).status_code == 403
    assert client.get("/api/v1/customers/C1", headers=audrey).status_code == 403
    assert client.get(f"{AUDIT}/chain", headers=bearer(client, "mia")).status_code == 403
