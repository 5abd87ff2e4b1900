"""Product API: idempotent bulk sync of the catalog, and reading it by page."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import TestClient

from loyalty.settings import Settings
from tests.api.people import bearer, staffed_client
from tests.builders import Clock

PRODUCTS = "/api/v1/products"


@pytest.fixture
def client(settings: Settings, clock: Clock) -> Iterator[TestClient[Any]]:
    with staffed_client(settings, clock) as test_client:
        yield test_client


def product(sku: str, price: str = "1.00", **fields: str) -> dict[str, str]:
    return {"sku": sku, "name": f"Product {sku}", "department": "fresh", "price": price, **fields}


def sync(client: TestClient[Any], *products: dict[str, str], who: str = "mia") -> Any:
    return client.put(PRODUCTS, json={"products": list(products)}, headers=bearer(client, who))


def test_a_sync_creates_and_changes_and_a_repeat_changes_nothing(client: TestClient[Any]) -> None:
    first = sync(client, product("A"), product("B"))
    second = sync(client, product("A"), product("B", price="2.00"), product("C"))
    again = sync(client, product("A"), product("B", price="2.00"), product("C"))

    assert first.json() == {"received": 2, "created": 2, "changed": 0, "unchanged": 0}
    assert second.json() == {"received": 3, "created": 1, "changed": 1, "unchanged": 1}
    assert again.json() == {"received": 3, "created": 0, "changed": 0, "unchanged": 3}


def test_thousands_of_products_sync_in_one_call(client: TestClient[Any]) -> None:
    many = [product(f"SKU{n:05d}", price=f"{n % 50}.99") for n in range(3000)]

    report = sync(client, *many).json()

    assert report["created"] == 3000
    page = client.get(PRODUCTS, params={"limit": 1}, headers=bearer(client, "sam")).json()
    assert page["total"] == 3000


def test_products_are_read_by_page_with_filters_and_sorting(client: TestClient[Any]) -> None:
    sync(
        client,
        product("APPLE", "2.49", brand="Melinda"),
        product("BREAD", "1.20", department="bakery"),
        product("PEAR", "3.10", brand="Melinda"),
    )
    sam = bearer(client, "sam")

    fresh = client.get(PRODUCTS, params={"department": "fresh", "sort": "-price"}, headers=sam)
    searched = client.get(PRODUCTS, params={"q": "pea"}, headers=sam)
    one = client.get(f"{PRODUCTS}/BREAD", headers=sam)

    assert [p["sku"] for p in fresh.json()["items"]] == ["PEAR", "APPLE"]
    assert [p["sku"] for p in searched.json()["items"]] == ["PEAR"]
    assert one.json()["department"] == "bakery"


def test_an_unknown_sku_answers_404(client: TestClient[Any]) -> None:
    response = client.get(f"{PRODUCTS}/NOPE", headers=bearer(client, "sam"))

    assert (response.status_code, response.json()["code"]) == (404, "unknown_product")


@pytest.mark.parametrize(
    ("products", "code"),
    [
        ([product("A"), product("A")], "invalid_program"),
        ([product("A", price="-1.00")], "invalid_program"),
        ([product("A", price="1.001")], "invalid_program"),
        ([{"sku": "", "name": "x"}], "invalid_field"),
        ([], "invalid_field"),
    ],
)
def test_bad_syncs_write_nothing_and_say_why(
    client: TestClient[Any], products: list[dict[str, str]], code: str
) -> None:
    response = sync(client, *products)

    assert (response.status_code, response.json()["code"]) == (422, code)
    assert client.get(PRODUCTS, headers=bearer(client, "mia")).json()["total"] == 0


def test_only_admins_managers_and_product_clients_may_sync(client: TestClient[Any]) -> None:
    assert sync(client, product("A"), who="sam").status_code == 403
    assert sync(client, product("A"), who="root").status_code == 200
