"""The msgspec mapper: stored events come back as exactly the events that were saved."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.persistence import JSONTranscoder

from loyalty.adapters.eventstore import MsgspecMapper, stream_kind
from loyalty.bootstrap import Services
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.movement import (
    Derivation,
    Line,
    Movement,
    MovementType,
    Transaction,
    TransactionKind,
)
from loyalty.domain.segmentation import RfmParameters, RfmRun, SegmentChange, SegmentSize


def recorded_account() -> Account:
    account = Account(
        campaign_id=ids.campaign_id("club"), customer_id=ids.customer_id_for_card("C1")
    )
    movement = Movement(
        movement_id="r1",
        type=MovementType.PURCHASE,
        card="C1",
        occurred_at=datetime(2026, 6, 1, 10, tzinfo=UTC),
        amount=Decimal("10.50"),
        currency="EUR",
        lines=(
            Line(
                sku="A",
                department="d",
                quantity=Decimal("1.5"),
                unit_price=Decimal("7.00"),
                amount=Decimal("10.50"),
            ),
        ),
    )
    derivation = Derivation(
        transactions=(
            Transaction(
                kind=TransactionKind.POINTS,
                amount=Decimal(10),
                currency="PTS",
                allocation=(Decimal(10),),
            ),
        ),
        points_delta=10,
        local_date=datetime(2026, 6, 1).date(),
    )
    account.record(movement, derivation)
    return account


def test_events_round_trip_through_the_mapper_with_their_types() -> None:
    mapper = MsgspecMapper(transcoder=JSONTranscoder())
    events = recorded_account().collect_events()

    restored = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in events]

    assert [vars(e) for e in restored] == [vars(e) for e in events]
    assert isinstance(restored[1].movement.lines[0].quantity, Decimal)  # type: ignore[attr-defined]
    assert isinstance(restored[0].originator_id, UUID)


def test_an_aggregate_rebuilt_from_stored_events_has_the_same_state() -> None:
    mapper = MsgspecMapper(transcoder=JSONTranscoder())
    original = recorded_account()
    events = [mapper.to_domain_event(mapper.to_stored_event(e)) for e in original.collect_events()]

    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)  # type: ignore[attr-defined]

    assert isinstance(rebuilt, Account)
    assert (rebuilt.points, rebuilt.total_spend, rebuilt.version) == (10, Decimal("10.50"), 2)


def test_registered_streams_are_told_by_their_topic() -> None:
    assert stream_kind("loyalty.domain.promotion:Promotion.Versioned") == "promotion"
    assert stream_kind("loyalty.domain.operator:Operator.Created") == "operator"
    assert stream_kind("loyalty.domain.account:Account.MovementRecorded") is None


def test_an_append_of_a_few_large_events_is_stored_without_hanging(services: Services) -> None:
    """Pipeline mode blocked for good on 100 events of 750 KB (an RFM run's segment
    changes): the save runs in a thread so that a hang fails the test."""
    run = RfmRun.compute(
        run_id=ids.rfm_run_id("large"),
        parameters=RfmParameters(as_of=date(2026, 6, 1)),
        position=1,
        previous=None,
        sizes=(SegmentSize(segment="lost", customers=1_000_000),),
        digest="d",
        by="test",
    )
    changes = [
        SegmentChange(customer_id=uuid5(NAMESPACE_URL, str(n)), before=None, after="lost")
        for n in range(1_000_000)
    ]
    for start in range(0, len(changes), 10_000):
        run.record_changes(tuple(changes[start : start + 10_000]))
    saving = threading.Thread(target=services.ledger.save, args=(run,), daemon=True)

    saving.start()
    saving.join(timeout=120)

    assert not saving.is_alive(), "the append hung"
    stored = services.ledger.repository.get(run.id)
    assert isinstance(stored, RfmRun) and stored.changes == 1_000_000
