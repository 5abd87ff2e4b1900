"""Product API: bulk sync and reading of the product catalog (SKU, name, department,
brand, price), so that movement lines can be analysed by product and department."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody

from loyalty.api.access import Action, caller, requires
from loyalty.api.lists import Limit, Offset, Page, Sort, page_of
from loyalty.commands.catalog import CatalogDesk
from loyalty.domain.catalog import Product, SyncReport
from loyalty.domain.errors import UnknownProduct

MAX_SYNC = 5000
SORTABLE = ("sku", "name", "department", "brand", "price")


class ProductSync(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    products: Annotated[tuple[Product, ...], msgspec.Meta(min_length=1, max_length=MAX_SYNC)]


class ProductsController(Controller):
    path = "/api/v1/products"
    tags = ("Product",)

    @put(
        operation_id="syncProducts",
        summary=f"Create or update up to {MAX_SYNC} products (idempotent)",
        description="Only products that differ are recorded; a repeated sync changes nothing.",
        sync_to_thread=True,
        guards=[requires(Action.SYNC_PRODUCTS)],
    )
    def sync(
        self, request: Request[object, object, State], data: JSONBody[ProductSync]
    ) -> SyncReport:
        catalog: CatalogDesk = request.app.state.services.catalog
        return catalog.sync(data.products, by=caller(request).username)

    @get(
        operation_id="listProducts",
        summary="The products, by page",
        description="Filters: department, brand, q (in the SKU or name). "
        "Sortable: sku, name, department, brand, price.",
        sync_to_thread=True,
        guards=[requires(Action.READ_PRODUCTS)],
    )
    def list_products(
        self,
        request: Request[object, object, State],
        limit: Limit = 100,
        offset: Offset = 0,
        sort: Sort = None,
        department: FromQuery[str | None] = None,
        brand: FromQuery[str | None] = None,
        q: FromQuery[str | None] = None,
    ) -> Page[Product]:
        needle = (q or "").lower()
        products = [
            p
            for p in sorted(request.app.state.services.catalog.products().values(), key=by_sku)
            if department in (None, p.department)
            and brand in (None, p.brand)
            and (needle in p.sku.lower() or needle in p.name.lower())
        ]
        return page_of(
            products, limit, offset, sort, ("sku", "name", "department", "brand", "price")
        )

    @get(
        "/{sku:str}",
        operation_id="getProduct",
        summary="One product",
        sync_to_thread=True,
        guards=[requires(Action.READ_PRODUCTS)],
    )
    def get_product(self, request: Request[object, object, State], sku: FromPath[str]) -> Product:
        product: Product | None = request.app.state.services.catalog.products().get(sku)
        if product is None:
            raise UnknownProduct(f"no product has the SKU {sku!r}", sku=sku)
        return product


def by_sku(product: Product) -> str:
    return product.sku
