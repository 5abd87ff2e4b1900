"""The msgspec mapper: stored events come back as exactly the events that were saved."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder

from loyalty.adapters.eventstore import MsgspecMapper, stream_kind
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
