"""Revenue documents for the analytics dashboards: one document per store and month
(revenue, receipts, average receipt, points issued and redeemed), in PostgreSQL or
MongoDB, so a dashboard reads a month of the chain as a handful of small documents."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.domain.account import Account
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.bulk import Part, StoredRow, decoded, folded, parts_of
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import Fact, topic_of
from loyalty.rules.schedule import local_time
from loyalty.settings import Settings

STORE_MONTHS = "store_months"
FIGURES = ("revenue", "receipts", "points_issued", "points_redeemed")
SIGN = {MovementType.PURCHASE: 1, MovementType.RETURN: -1}


def local_month(at: datetime, timezone: str) -> str:
    return local_time(at, timezone).strftime("%Y-%m")


def key_of(store: str, month: str) -> str:
    return f"{store}|{month}"


class Dashboard(DocumentModel):
    name = "dashboard"
    topics = (topic_of(Account.MovementRecorded),)
    finds = True

    def bulk_changes(self, settings: Settings, head: int) -> tuple[list[DocumentChange], int]:
        """Every store's month document of the log up to ``head``: worker processes sum the
        log's parts, summed again here."""
        parts = folded(
            parts_of(settings, self.generation, head, self.topics), fold_part, MonthsPart
        )
        deltas: Deltas = {}
        for part in parts:
            for store, month, *delta in part.months:
                total = deltas.setdefault((store, month), [Decimal(0), 0, 0, 0])
                for i, figure in enumerate(delta):
                    total[i] += figure
        changes = [
            DocumentChange(
                collection=STORE_MONTHS,
                key=key_of(store, month),
                body=added(None, store, month, delta),
            )
            for (store, month), delta in sorted(deltas.items())
        ]
        return changes, sum(part.events for part in parts)

    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        deltas: Deltas = {}
        for fact in facts:
            add_to_month(deltas, fact.body)
        stored = self.view.get_many(STORE_MONTHS, [key_of(*k) for k in deltas])
        return [
            DocumentChange(
                collection=STORE_MONTHS,
                key=key_of(store, month),
                body=added(stored.get(key_of(store, month)), store, month, delta),
            )
            for (store, month), delta in deltas.items()
        ]


Deltas = dict[tuple[str, str], list[Any]]
"""What movements add to each store's month: revenue, receipts, points issued and redeemed."""


class MonthsPart(msgspec.Struct, frozen=True):
    """What a part of the log adds to each store's month, and its events."""

    months: list[tuple[str, str, Decimal, int, int, int]]
    events: int


def fold_part(part: Part, rows: Iterator[StoredRow]) -> MonthsPart:
    deltas: Deltas = {}
    events = 0
    for _, fact in decoded(rows):
        add_to_month(deltas, fact.body)
        events += 1
    return MonthsPart([(store, month, *delta) for (store, month), delta in deltas.items()], events)


def add_to_month(deltas: Deltas, recorded: feed.MovementRecorded) -> None:
    """Adds a movement to its store's month (one without a store has none)."""
    movement = recorded.movement
    if movement.location is None:
        return
    store = movement.location.path[-2]
    month = local_month(movement.occurred_at, movement.location.timezone)
    add_movement(deltas.setdefault((store, month), [Decimal(0), 0, 0, 0]), recorded)


def add_movement(delta: list[Any], recorded: feed.MovementRecorded) -> None:
    movement = recorded.movement
    sign = SIGN.get(movement.type, 0)
    delta[0] += sign * movement.amount
    delta[1] += 1 if movement.type is MovementType.PURCHASE else 0
    earned, spent = recorded.derivation.points_moved()
    delta[2] += earned
    delta[3] += spent


def added(stored: Body | None, store: str, month: str, delta: list[Any]) -> Body:
    """The document of a store's month with a batch's figures added."""
    revenue = Decimal(stored["revenue"]) if stored else Decimal(0)
    receipts, issued, redeemed = (
        (int(stored["receipts"]), int(stored["points_issued"]), int(stored["points_redeemed"]))
        if stored
        else (0, 0, 0)
    )
    revenue += delta[0]
    receipts += delta[1]
    average = (revenue / receipts).quantize(Decimal("0.01")) if receipts else None
    return {
        "store": store,
        "month": month,
        "revenue": str(revenue),
        "receipts": receipts,
        "average_receipt": None if average is None else str(average),
        "points_issued": issued + delta[2],
        "points_redeemed": redeemed + delta[3],
    }
