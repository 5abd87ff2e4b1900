"""The Product API's write and read side: catalog syncs, and a cached catalog that one
query brings up to date before every read."""

from __future__ import annotations

import threading

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.catalog import Catalog, Product, SyncReport
from loyalty.domain.errors import ConcurrentUpdate

ATTEMPTS = 3


class CatalogDesk:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._lock = threading.Lock()
        self._catalog: Catalog | None = None

    def products(self) -> dict[str, Product]:
        """The catalog now, by SKU (a copy: safe to use while others sync)."""
        with self._lock:
            found = self.ledger.catch_up({ids.CATALOG_ID: self._catalog})
            catalog = found.get(ids.CATALOG_ID)
            self._catalog = catalog if isinstance(catalog, Catalog) else None
            return dict(self._catalog.products) if self._catalog else {}

    def sync(self, products: tuple[Product, ...], by: str) -> SyncReport:
        """Creates and updates ``products`` in one save; retried if another sync won."""
        for _ in range(ATTEMPTS):
            catalog = self.load()
            report = catalog.sync(products, by)
            try:
                self.ledger.save(catalog)
            except IntegrityError:
                continue
            return report
        raise ConcurrentUpdate("the catalog kept changing meanwhile; retry")

    def load(self) -> Catalog:
        try:
            catalog: Aggregate = self.ledger.repository.get(ids.CATALOG_ID)
        except AggregateNotFoundError:
            return Catalog()
        assert isinstance(catalog, Catalog)
        return catalog
