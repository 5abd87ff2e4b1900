"""The product catalog: what the chain sells, so that movement lines can be analysed by
product, department and brand. One stream; a sync records only what it changes.

Invariants:
- a SKU appears once in the catalog, and once per sync;
- prices are non-negative amounts to the cent.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate, event

from loyalty.domain import ids
from loyalty.domain.errors import InvalidProgram
from loyalty.domain.movement import has_cents_at_most

Text = Annotated[str, msgspec.Meta(max_length=200)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class Product(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    sku: Code
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    department: Annotated[str, msgspec.Meta(max_length=64)] = ""
    brand: Annotated[str, msgspec.Meta(max_length=64)] = ""
    price: Decimal | None = None


class SyncReport(msgspec.Struct, frozen=True, kw_only=True):
    received: int
    created: int
    changed: int
    unchanged: int


def check_products(products: tuple[Product, ...]) -> None:
    seen: set[str] = set()
    for index, product in enumerate(products):
        if product.sku in seen:
            raise InvalidProgram(
                f"SKU {product.sku!r} appears twice in one sync", field=f"products[{index}].sku"
            )
        seen.add(product.sku)
        price = product.price
        if price is not None and (price < 0 or not has_cents_at_most(price)):
            raise InvalidProgram(
                "a price is a non-negative amount to the cent", field=f"products[{index}].price"
            )


class Catalog(Aggregate):
    class Opened(Aggregate.Created):
        pass

    class ProductsUpserted(Aggregate.Event):
        products: tuple[Product, ...]
        by: str

    @staticmethod
    def create_id() -> UUID:
        return ids.CATALOG_ID

    @event(Opened)
    def __init__(self) -> None:
        self.products: dict[str, Product] = {}

    def sync(self, products: tuple[Product, ...], by: str) -> SyncReport:
        """Creates or updates the products given; records only those that differ."""
        check_products(products)
        different = tuple(p for p in products if self.products.get(p.sku) != p)
        created = sum(1 for p in different if p.sku not in self.products)
        if different:
            self._upsert(products=different, by=by)
        return SyncReport(
            received=len(products),
            created=created,
            changed=len(different) - created,
            unchanged=len(products) - len(different),
        )

    @event(ProductsUpserted)
    def _upsert(self, products: tuple[Product, ...], by: str) -> None:
        for product in products:
            self.products[product.sku] = product
