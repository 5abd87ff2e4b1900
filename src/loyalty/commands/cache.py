"""An in-process cache of aggregates, kept fresh by one catch-up query per batch."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from loyalty.commands.ledger import Ledger, Statement


class AggregateCache:
    """Aggregates by id, least recently used evicted first. Not thread-safe: one owner."""

    def __init__(self, ledger: Ledger, maxsize: int) -> None:
        self.ledger = ledger
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, Aggregate] = OrderedDict()

    def fetch(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """The current state of each id that exists, in one round trip."""
        return self.fetch_along(ids, ())[0]

    def fetch_along(
        self, ids: Iterable[UUID], statements: Sequence[Statement]
    ) -> tuple[dict[UUID, Aggregate], list[list[tuple[Any, ...]]]]:
        """As :meth:`fetch`, with other reads in the same round trip; and their rows."""
        known: dict[UUID, Aggregate | None] = {i: self._items.get(i) for i in ids}
        reads = [*statements, self.ledger.newer_events(known)] if known else [*statements]
        if not reads:
            return {}, []
        rows = self.ledger.query_all(reads)
        fresh = self.ledger.fast_forward(known, rows[-1]) if known else {}
        found = {}
        for aggregate_id, aggregate in fresh.items():
            if aggregate is not None:
                self.put(aggregate)
                found[aggregate_id] = aggregate
        return found, rows[: len(statements)]

    def __len__(self) -> int:
        return len(self._items)

    def peek(self, aggregate_id: UUID) -> Aggregate | None:
        """The cached state, maybe stale; ``None`` when not cached."""
        return self._items.get(aggregate_id)

    def put(self, aggregate: Aggregate) -> None:
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def forget(self, ids: Iterable[UUID]) -> None:
        for aggregate_id in ids:
            self._items.pop(aggregate_id, None)
