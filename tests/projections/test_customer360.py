"""The customer 360 documents, in PostgreSQL and in MongoDB alike: built from the log,
checked against the ledger, rebuilt identically, nothing personal in them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import psycopg
import pytest

from loyalty.adapters.documents import DocumentQuery
from loyalty.bootstrap import Services
from loyalty.commands.admin import block_card, replace_card
from loyalty.commands.apply import CustomerSpec
from loyalty.commands.customers import register
from loyalty.domain import ids
from loyalty.domain.customer import Profile
from loyalty.projections.customer360 import Customer360
from loyalty.projections.customer_documents import ACCOUNTS, CARDS, CUSTOMERS
from loyalty.projections.customer_shares import Part
from loyalty.projections.documents import view_name
from loyalty.projections.registry import Registry
from loyalty.projections.runner import read_datastore, rebuild
from loyalty.settings import Settings
from tests.builders import START, Clock, line, program, purchase, return_of
from tests.projections.reading import caught_up


def document(settings: Settings, card: str) -> dict[str, Any] | None:
    datastore = read_datastore(settings)
    generation = Registry(settings, datastore).serving(Customer360).generation
    model = Customer360.open(settings, generation, datastore)
    try:
        return model.view.get(CUSTOMERS, str(ids.customer_id_for_card(card)))
    finally:
        model.close()
        datastore.close()


@pytest.fixture
def shopped(services: Services, clock: Clock) -> Services:
    giulia = CustomerSpec(
        cards=("C1",),
        profile=Profile(first_name="Giulia", last_name="Bianchi", email="giulia@example.org"),
        signed_up_on=START.date(),
        home_store="s1",
    )
    services.applier.apply(program(customers=(giulia,)))
    clock.advance(hours=2)
    at = START + timedelta(hours=3)
    movements = [
        purchase("a1", line("BREAD", "20.00"), at=at),
        purchase("a2", line("WINE", "30.00"), terminal="t2", at=at + timedelta(days=1)),
        return_of("a3", "a2", line("WINE", "30.00"), terminal="t2", at=at + timedelta(days=2)),
        purchase("b1", line("BREAD", "5.00"), card="C2", at=at + timedelta(days=2)),
    ]
    for movement in movements:
        clock.now = max(clock.now, movement.occurred_at + timedelta(minutes=1))
        (outcome,) = services.desk.post([movement])
        assert outcome.status == 201, outcome  # type: ignore[union-attr]
    block_card(services.ledger, "C2", "lost")
    return services


def test_a_customer_document_gathers_cards_balances_spend_and_visits(
    shopped: Services, store: Settings
) -> None:
    with caught_up(store, [Customer360]):
        giulia = document(store, "C1")
        anonymous = document(store, "C2")

    assert giulia is not None and anonymous is not None
    assert giulia["cards"] == [{"code": "C1", "status": "active"}]
    assert (giulia["registered"], giulia["home_store"], giulia["erased"]) == (True, "s1", False)
    assert (giulia["purchases"], giulia["returns"], Decimal(giulia["spend"])) == (2, 1, 20)
    assert sorted((s["store"], s["visits"]) for s in giulia["stores"]) == [("s1", 1), ("s2", 1)]
    assert [m["movement_id"] for m in giulia["recent"]] == ["a3", "a2", "a1"]
    (account,) = giulia["accounts"].values()
    assert account["points"] == 20 and account["earned"] == 50 and account["spent"] == 30
    assert anonymous["cards"] == [{"code": "C2", "status": "blocked"}]
    assert anonymous["registered"] is False
    assert "Giulia" not in repr(giulia) and "example.org" not in repr(giulia)


def every_document(settings: Settings) -> dict[str, list[dict[str, Any]]]:
    datastore = read_datastore(settings)
    generation = Registry(settings, datastore).serving(Customer360).generation
    model = Customer360.open(settings, generation, datastore)
    try:
        return {
            collection: model.view.find(collection, DocumentQuery(limit=1_000)).items
            for collection in (CUSTOMERS, ACCOUNTS, CARDS)
        }
    finally:
        model.close()
        datastore.close()


@pytest.mark.parametrize("parallel_from", [100_000, 1], ids=["folded here", "in processes"])
def test_a_rebuilt_generation_holds_the_same_documents(
    shopped: Services, store: Settings, parallel_from: int
) -> None:
    register(shopped.ledger, "C3", Profile(first_name="Bruno"), START.date())
    (moved,) = shopped.desk.post([purchase("b2", line("WINE", "7.00"), card="C3")])
    assert moved.status == 201, moved  # type: ignore[union-attr]
    replace_card(shopped.ledger, "C3", "C9")
    with caught_up(store, [Customer360]):
        before = every_document(store)

    datastore = read_datastore(store)
    settings = msgspec.structs.replace(store, fill_parallel_from=parallel_from)
    generation = rebuild(settings, Customer360, datastore)
    datastore.close()

    assert generation == 2
    assert len(before[CUSTOMERS]) == 3 and before[CUSTOMERS][0]["recent"]
    assert every_document(store) == before


def indexes_of(settings: Settings, generation: int) -> set[str]:
    """The indexes of a PostgreSQL generation of customer360."""
    with psycopg.connect(settings.conninfo()) as conn:
        found = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s",
            (view_name(settings, Customer360.name, generation),),
        ).fetchall()
    return {name for (name,) in found}


def test_a_rebuilt_generation_indexes_its_keys_not_its_bodies(
    shopped: Services, settings: Settings
) -> None:
    """Documents are read by key: an index of every body would cost each write an entry
    per field, and a rebuild minutes."""
    datastore = read_datastore(settings)
    generation = rebuild(settings, Customer360, datastore)
    datastore.close()

    assert indexes_of(settings, generation) == {"documents_pkey", "notification_tracking_pkey"}


def test_a_fold_hands_each_collection_over_in_key_order() -> None:
    """A view keyed by collection and key then adds each key at the end of its index,
    rather than at random places (which made a load of millions a third slower)."""
    streams = [str(UUID(int=n * 7_919 % 1_000)) for n in range(1, 40)]
    part = Part(
        opened={stream: (stream, "club") for stream in streams},
        issued={stream: (stream, f"C{n}") for n, stream in enumerate(streams)},
    )

    keys = [(change.collection, change.key) for change in part.documents()]

    assert keys == sorted(keys)
    assert len(keys) == 3 * len(streams)
