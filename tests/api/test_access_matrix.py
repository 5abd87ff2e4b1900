"""Every route of the OpenAPI document, called by every kind of caller: the matrix of
who gets through (anything but 401/403), who is refused (403) and who must sign in (401).

A route missing from ``EXPECTED`` fails the test: a new route must say who may use it.
Requests carry an empty JSON body and name nodes inside every scoped operator's scope
(``s1``), so that a 404 here could only mean a bug; scope hiding (404 for nodes outside
the scope) is specified route by route in ``test_network.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.api.access import FAMILY, GRANTS, Action
from loyalty.domain.apiclient import ApiFamily
from loyalty.domain.operator import Role
from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

PUBLIC = "public"
SIGNED_IN = "signed in"
OPERATORS_ONLY = "operators only"
TERMINALS = "terminals"

EXPECTED: dict[tuple[str, str], str | Action] = {
    ("GET", "/health"): PUBLIC,
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/login/second-factor"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    ("POST", "/api/v1/auth/logout"): SIGNED_IN,
    ("POST", "/api/v1/auth/two-factor"): OPERATORS_ONLY,
    ("POST", "/api/v1/auth/two-factor/confirm"): OPERATORS_ONLY,
    ("POST", "/api/v1/terminal/movements"): TERMINALS,
    ("GET", "/api/v1/terminal/cards/{card}"): TERMINALS,
    ("GET", "/api/v1/backoffice/operators"): Action.MANAGE_OPERATORS,
    ("POST", "/api/v1/backoffice/operators"): Action.MANAGE_OPERATORS,
    ("GET", "/api/v1/backoffice/operators/{username}"): Action.MANAGE_OPERATORS,
    ("PUT", "/api/v1/backoffice/operators/{username}/role"): Action.MANAGE_OPERATORS,
    ("POST", "/api/v1/backoffice/operators/{username}/deactivate"): Action.MANAGE_OPERATORS,
    ("POST", "/api/v1/backoffice/operators/{username}/reactivate"): Action.MANAGE_OPERATORS,
    ("GET", "/api/v1/backoffice/clients"): Action.MANAGE_CLIENTS,
    ("POST", "/api/v1/backoffice/clients"): Action.MANAGE_CLIENTS,
    ("POST", "/api/v1/backoffice/clients/{name}/keys"): Action.MANAGE_CLIENTS,
    ("DELETE", "/api/v1/backoffice/clients/{name}/keys/{key_id}"): Action.MANAGE_CLIENTS,
    ("GET", "/api/v1/backoffice/network"): Action.READ_NETWORK,
    ("POST", "/api/v1/backoffice/network"): Action.CHANGE_NETWORK,
    ("GET", "/api/v1/backoffice/network/{code}"): Action.READ_NETWORK,
    ("PATCH", "/api/v1/backoffice/network/{code}"): Action.CHANGE_NETWORK,
    ("POST", "/api/v1/backoffice/network/{code}/move"): Action.CHANGE_NETWORK,
    ("POST", "/api/v1/backoffice/network/{code}/close"): Action.CHANGE_NETWORK,
    ("POST", "/api/v1/backoffice/network/{code}/reopen"): Action.CHANGE_NETWORK,
    ("POST", "/api/v1/backoffice/promotions/simulate"): Action.SIMULATE_PROMOTIONS,
    ("GET", "/api/v1/backoffice/promotions"): Action.READ_PROMOTIONS,
    ("POST", "/api/v1/backoffice/promotions"): Action.CHANGE_PROMOTIONS,
    ("GET", "/api/v1/backoffice/promotions/{code}"): Action.READ_PROMOTIONS,
    ("POST", "/api/v1/backoffice/promotions/{code}/versions"): Action.CHANGE_PROMOTIONS,
    ("POST", "/api/v1/backoffice/promotions/{code}/activate"): Action.CHANGE_PROMOTIONS,
    ("POST", "/api/v1/backoffice/promotions/{code}/deactivate"): Action.CHANGE_PROMOTIONS,
    ("GET", "/api/v1/backoffice/campaigns"): Action.READ_PROMOTIONS,
    ("GET", "/api/v1/backoffice/campaigns/{code}"): Action.READ_PROMOTIONS,
    ("GET", "/api/v1/backoffice/clusters"): Action.READ_PROMOTIONS,
    ("GET", "/api/v1/backoffice/clusters/{code}"): Action.READ_PROMOTIONS,
    ("POST", "/api/v1/backoffice/campaigns"): Action.CHANGE_CAMPAIGNS,
    ("PUT", "/api/v1/backoffice/campaigns/{code}"): Action.CHANGE_CAMPAIGNS,
    ("POST", "/api/v1/backoffice/campaigns/{code}/end"): Action.CHANGE_CAMPAIGNS,
    ("POST", "/api/v1/backoffice/clusters"): Action.CHANGE_CLUSTERS,
    ("POST", "/api/v1/backoffice/clusters/{code}/versions"): Action.CHANGE_CLUSTERS,
    ("POST", "/api/v1/backoffice/clusters/preview"): Action.PREVIEW_CLUSTERS,
    ("GET", "/api/v1/backoffice/clusters/{code}/size"): Action.PREVIEW_CLUSTERS,
    ("GET", "/api/v1/backoffice/translations/{locale}"): Action.READ_TRANSLATIONS,
    ("PUT", "/api/v1/backoffice/translations/{locale}/{code}"): Action.MANAGE_TRANSLATIONS,
    ("DELETE", "/api/v1/backoffice/translations/{locale}/{code}"): Action.MANAGE_TRANSLATIONS,
    ("POST", "/api/v1/customers"): Action.CHANGE_CUSTOMERS,
    ("GET", "/api/v1/customers/{card}"): Action.READ_CUSTOMERS,
    ("PATCH", "/api/v1/customers/{card}/profile"): Action.CHANGE_CUSTOMERS,
    ("PUT", "/api/v1/customers/{card}/home-store"): Action.CHANGE_CUSTOMERS,
    ("POST", "/api/v1/customers/{card}/consents"): Action.CHANGE_CUSTOMERS,
    ("GET", "/api/v1/customers/{card}/consents"): Action.READ_CUSTOMERS,
    ("GET", "/api/v1/customers/{card}/balances"): Action.READ_CUSTOMERS,
    ("GET", "/api/v1/customers/{card}/movements"): Action.READ_CUSTOMERS,
    ("PUT", "/api/v1/products"): Action.SYNC_PRODUCTS,
    ("GET", "/api/v1/products"): Action.READ_PRODUCTS,
    ("GET", "/api/v1/products/{sku}"): Action.READ_PRODUCTS,
    ("GET", "/api/v1/prizes"): Action.READ_PRIZES,
    ("POST", "/api/v1/prizes"): Action.MANAGE_PRIZES,
    ("GET", "/api/v1/prizes/{campaign}/{code}"): Action.READ_PRIZES,
    ("PUT", "/api/v1/prizes/{campaign}/{code}"): Action.MANAGE_PRIZES,
    ("POST", "/api/v1/prizes/{campaign}/{code}/stock"): Action.MANAGE_PRIZES,
    ("POST", "/api/v1/redemptions"): Action.REDEEM_PRIZES,
    ("GET", "/api/v1/redemptions/{redemption_id}"): Action.REDEEM_PRIZES,
    ("POST", "/api/v1/redemptions/{redemption_id}/cancel"): Action.REDEEM_PRIZES,
    ("GET", "/api/v1/backoffice/privacy/customers/{card}/export"): Action.MANAGE_PRIVACY,
    ("POST", "/api/v1/backoffice/privacy/customers/{card}/erase"): Action.MANAGE_PRIVACY,
    ("POST", "/api/v1/backoffice/privacy/customers/samples"): Action.MANAGE_PRIVACY,
    ("GET", "/api/v1/backoffice/privacy/policies"): Action.MANAGE_PRIVACY,
    ("PUT", "/api/v1/backoffice/privacy/policies/{locale}"): Action.MANAGE_PRIVACY,
    ("GET", "/api/v1/customers/{card}/consents/current"): Action.READ_CUSTOMERS,
    ("GET", "/api/v1/audit/chain"): Action.AUDIT_LOG,
    ("GET", "/api/v1/audit/checkpoints"): Action.AUDIT_LOG,
    ("GET", "/api/v1/audit/public-key"): Action.AUDIT_LOG,
    ("POST", "/api/v1/audit/replay"): Action.AUDIT_LOG,
    ("POST", "/api/v1/customers/{card}/contacts"): Action.CHANGE_CUSTOMERS,
    ("GET", "/api/v1/analytics/revenue"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/status"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/rfm/policy"): Action.READ_ANALYTICS,
    ("PUT", "/api/v1/analytics/rfm/policy"): Action.RUN_ANALYTICS,
    ("POST", "/api/v1/analytics/rfm/runs"): Action.RUN_ANALYTICS,
    ("GET", "/api/v1/analytics/rfm/runs"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/rfm/runs/{run_id}"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/rfm/runs/{run_id}/members"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/rfm/migration"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/customers/{card}"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/dashboard"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/clusters"): Action.READ_ANALYTICS,
    ("GET", "/api/v1/analytics/clusters/{code}/members"): Action.READ_ANALYTICS,
    ("POST", "/api/v1/analytics/clusters/{code}/evaluate"): Action.RUN_ANALYTICS,
    ("GET", "/api/v1/analytics/clusters/customers/{card}"): Action.READ_ANALYTICS,
}
PATH_VALUES = {
    "card": "C1",
    "username": "sam",
    "name": "erp",
    "key_id": "00000000",
    "code": "s1",
    "sku": "BREAD",
    "locale": "it",
    "campaign": "club",
    "redemption_id": "r1",
    "run_id": "00000000-0000-0000-0000-000000000000",
}
CALLERS = ("nobody", "root", "mia", "dino", "sam", "audrey", "erp")
"""Anonymous, one operator per role, and ``erp``: an API client of the analytics family."""
ROLES = {
    "root": Role.ADMIN,
    "mia": Role.MANAGER,
    "dino": Role.DISTRIBUTOR_MANAGER,
    "sam": Role.STORE_MANAGER,
    "audrey": Role.AUDITOR,
}


def expected(rule: str | Action, caller: str) -> str:
    """``through``, ``refused`` (403) or ``sign in`` (401) for ``caller`` on a route."""
    if rule == PUBLIC:
        return "through"
    if caller == "nobody" or rule == TERMINALS:
        return "sign in"
    if rule == SIGNED_IN:
        return "through"
    if rule == OPERATORS_ONLY:
        return "refused" if caller == "erp" else "through"
    assert isinstance(rule, Action)
    if caller == "erp":  # an API client of the analytics family: that family's routes only
        return "through" if FAMILY[rule] is ApiFamily.ANALYTICS else "refused"
    return "through" if rule in GRANTS[ROLES[caller]] else "refused"


def outcome(status: int) -> str:
    return {401: "sign in", 403: "refused"}.get(status, "through")


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def callers_headers(client: TestClient[Any]) -> dict[str, dict[str, str]]:
    root = bearer(client, "root")
    erp = client.post(
        "/api/v1/backoffice/clients", json={"name": "erp", "families": ["analytics"]}, headers=root
    ).json()
    token = client.post("/api/v1/auth/token", json={"api_key": erp["api_key"]}).json()
    headers = {name: bearer(client, name) for name in ROLES}
    return {"nobody": {}, **headers, "erp": {"authorization": f"Bearer {token['access_token']}"}}


def test_every_route_lets_through_exactly_the_callers_it_should(client: TestClient[Any]) -> None:
    document = client.get("/api/v1/schema/openapi.json").json()
    routes = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert sorted(routes) == sorted(EXPECTED), "every route must be in EXPECTED, and only those"
    headers = callers_headers(client)
    logout_last = sorted(routes, key=lambda route: route[1] == "/api/v1/auth/logout")

    mismatches = []
    for method, path in logout_last:
        url = path.format(**PATH_VALUES)
        for caller in CALLERS:
            response = client.request(method, url, json={}, headers=headers[caller])
            want, got = expected(EXPECTED[(method, path)], caller), outcome(response.status_code)
            if want != got or response.status_code >= 500:
                mismatches.append(f"{method} {path} as {caller}: {response.status_code}")

    assert mismatches == [], "\n".join(mismatches)
