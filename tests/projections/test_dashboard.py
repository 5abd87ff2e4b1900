"""The dashboard's store-month documents, in PostgreSQL and in MongoDB alike: figures
checked by hand, and a rebuild (summed in bulk, in worker processes or not) identical to
what the runner built event by event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec
import pytest

from loyalty.adapters.documents import DocumentQuery
from loyalty.bootstrap import Services
from loyalty.projections.dashboard import STORE_MONTHS, Dashboard
from loyalty.projections.runner import read_datastore, rebuild, serving_model
from loyalty.settings import Settings
from tests.builders import START, Clock, line, program, purchase, return_of
from tests.projections.reading import caught_up


def documents(settings: Settings) -> list[dict[str, Any]]:
    datastore = read_datastore(settings)
    try:
        with serving_model(settings, datastore, Dashboard) as model:
            query = DocumentQuery(sort=(("month", False), ("store", False)), limit=100)
            return [
                {k: v for k, v in d.items() if k not in ("key", "_id")}
                for d in model.view.find(STORE_MONTHS, query).items
            ]
    finally:
        datastore.close()


@pytest.fixture
def shopped(services: Services, clock: Clock) -> Services:
    """June: 35.50 and 3.20 at s1, 12.90 at s2; July: 30.00 at s1, 25.50 of June returned."""
    services.applier.apply(program())
    clock.advance(hours=2)
    june, july = START + timedelta(hours=3), START + timedelta(days=35)
    movements = [
        purchase("a1", line("BREAD", "10.00"), line("WINE", "25.50"), at=june),
        purchase("a2", line("MILK", "3.20"), card="C2", at=june),
        purchase("a3", line("WINE", "12.90"), card="C3", terminal="t2", at=june),
        purchase("b1", line("BREAD", "30.00"), card="C2", at=july),
        return_of("b2", "a1", line("WINE", "25.50"), at=july),
    ]
    for movement in movements:
        clock.now = max(clock.now, movement.occurred_at + timedelta(minutes=1))
        (outcome,) = services.desk.post([movement])
        assert outcome.status == 201, outcome  # type: ignore[union-attr]
    return services


def test_each_store_month_sums_its_movements(shopped: Services, store: Settings) -> None:
    with caught_up(store, [Dashboard]):
        found = documents(store)

    assert [(d["month"], d["store"], d["revenue"], d["receipts"]) for d in found] == [
        ("2026-06", "s1", "38.70", 2),
        ("2026-06", "s2", "12.90", 1),
        ("2026-07", "s1", "4.50", 1),
    ]
    assert found[0]["average_receipt"] == "19.35"
    assert found[0]["points_issued"] == 38


@pytest.mark.parametrize("parallel_from", [100_000, 1], ids=["folded here", "in processes"])
def test_a_rebuild_in_bulk_holds_exactly_what_the_runner_built(
    shopped: Services, store: Settings, parallel_from: int
) -> None:
    with caught_up(store, [Dashboard]):
        incremental = documents(store)

    datastore = read_datastore(store)
    settings = msgspec.structs.replace(store, fill_parallel_from=parallel_from)
    generation = rebuild(settings, Dashboard, datastore)
    datastore.close()

    assert generation == 2
    assert documents(store) == incremental
