"""Backoffice privacy API: export and erasure of a card's holder, policy texts and consent
sample checks, for admins only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

PRIVACY = "/api/v1/backoffice/privacy"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        root = bearer(test_client, "root")
        registered = test_client.post(
            "/api/v1/customers",
            json={"card": "C1", "profile": {"first_name": "Ottavia", "city": "Lucca"}},
            headers=root,
        )
        assert registered.status_code == 201, registered.text
        yield test_client


def test_an_admin_exports_then_erases_a_customer(client: TestClient[Any]) -> None:
    root = bearer(client, "root")

    exported = client.get(f"{PRIVACY}/customers/C1/export", headers=root)
    erased = client.post(f"{PRIVACY}/customers/C1/erase", json={"reason": "ticket 9"}, headers=root)
    after = client.get(f"{PRIVACY}/customers/C1/export", headers=root)
    changed = client.patch("/api/v1/customers/C1/profile", json={"last_name": "X"}, headers=root)

    assert exported.json()["profile"]["first_name"] == "Ottavia"
    assert erased.status_code == 200 and erased.json()["erased"] is True
    assert after.json()["erased"] is True and after.json()["profile"]["first_name"] == ""
    assert changed.status_code == 409 and changed.json()["code"] == "customer_erased"


def test_managers_neither_export_nor_erase(client: TestClient[Any]) -> None:
    mia = bearer(client, "mia")

    assert client.get(f"{PRIVACY}/customers/C1/export", headers=mia).status_code == 403
    assert (
        client.post(f"{PRIVACY}/customers/C1/erase", json={"reason": "x"}, headers=mia).status_code
        == 403
    )


def test_a_sample_check_answers_json_or_html(client: TestClient[Any]) -> None:
    root = bearer(client, "root")
    published = client.put(f"{PRIVACY}/policies/it", json={"text": "Informativa"}, headers=root)
    bad_locale = client.put(f"{PRIVACY}/policies/italian", json={"text": "x"}, headers=root)
    client.post(
        "/api/v1/customers/C1/consents",
        json={"purpose": "marketing", "channel": "sms", "granted": True, "source": "operator"},
        headers=root,
    )

    report = client.post(f"{PRIVACY}/customers/samples", json={"size": 1, "seed": 3}, headers=root)
    page = client.post(
        f"{PRIVACY}/customers/samples",
        json={"size": 1, "seed": 3},
        headers={**root, "accept": "text/html"},
    )

    assert published.json()["version"] == 1 and bad_locale.status_code == 422
    assert [a["code"] for a in report.json()["customers"][0]["anomalies"]] == [
        "no_evidence",
        "no_policy",
    ]
    assert page.headers["content-type"].startswith("text/html") and "no_policy" in page.text
    assert client.get(f"{PRIVACY}/policies", headers=root).json()[0]["sha256"]
