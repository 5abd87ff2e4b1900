"""Revenue documents for the analytics dashboards: one document per store and month
(revenue, receipts, average receipt, points issued and redeemed), in PostgreSQL or
MongoDB, so a dashboard reads a month of the chain as a handful of small documents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from loyalty.adapters.documents import Body, DocumentChange
from loyalty.domain.account import Account
from loyalty.domain.movement import MovementType
from loyalty.projections import feed
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import Fact, topic_of
from loyalty.projections.tables import in_ranges
from loyalty.rules.schedule import local_time
from loyalty.settings import Settings

STORE_MONTHS = "store_months"
FIGURES = ("revenue", "receipts", "points_issued", "points_redeemed")
SIGN = {MovementType.PURCHASE: 1, MovementType.RETURN: -1}


def local_month(at: datetime, timezone: str) -> str:
    return local_time(at, timezone).strftime("%Y-%m")


def key_of(store: str, month: str) -> str:
    return f"{store}|{month}"


STORE_MONTHS_OF_THE_LOG = """
SELECT store, month, sum(sign * amount) AS revenue, count(*) FILTER (WHERE sign = 1) AS receipts,
       sum(p.issued)::bigint AS issued, sum(p.redeemed)::bigint AS redeemed, count(*) AS events
FROM (
    SELECT m->'location'->'path'->>-2 AS store,
           to_char((m->>'occurred_at')::timestamptz AT TIME ZONE (m->'location'->>'timezone'),
                   'YYYY-MM') AS month,
           CASE m->>'type' WHEN 'purchase' THEN 1 WHEN 'return' THEN -1 ELSE 0 END AS sign,
           (m->>'amount')::numeric AS amount, transactions
    FROM (
        SELECT j->'movement' AS m, j->'derivation'->'transactions' AS transactions
        FROM (SELECT convert_from(state, 'UTF8')::jsonb AS j FROM {events}
              WHERE notification_id > %s AND notification_id <= %s AND topic = %s) stored
    ) recorded
    WHERE jsonb_typeof(m->'location') = 'object'
) movements
CROSS JOIN LATERAL (
    SELECT coalesce(sum(t.points) FILTER (WHERE t.points > 0), 0) AS issued,
           coalesce(-sum(t.points) FILTER (WHERE t.points < 0), 0) AS redeemed
    FROM (SELECT (x->>'amount')::bigint AS points FROM jsonb_array_elements(transactions) x
          WHERE x->>'kind' = 'points') t
) p
GROUP BY store, month
"""
"""Every store's months of a range of the log, summed by PostgreSQL where the movements are
stored."""


class Dashboard(DocumentModel):
    name = "dashboard"
    topics = (topic_of(Account.MovementRecorded),)

    def bulk_changes(self, settings: Settings, head: int) -> tuple[list[DocumentChange], int]:
        """Every store's month document of the log up to ``head``, summed in the database."""
        statement = SQL(STORE_MONTHS_OF_THE_LOG).format(
            events=Identifier(settings.pg_schema, "ledger_events")
        )

        def store_months(curs: Cursor[DictRow], after: int, through: int) -> list[DictRow]:
            curs.execute(statement, (after, through, topic_of(Account.MovementRecorded)))
            return curs.fetchall()

        deltas: dict[tuple[str, str], list[Any]] = {}
        events = 0
        for rows in in_ranges(settings, head, store_months):
            for row in rows:
                delta = deltas.setdefault((row["store"], row["month"]), [Decimal(0), 0, 0, 0])
                for i, figure in enumerate(("revenue", "receipts", "issued", "redeemed")):
                    delta[i] += row[figure]
                events += row["events"]
        changes = [
            DocumentChange(
                collection=STORE_MONTHS,
                key=key_of(store, month),
                body=added(None, store, month, delta),
            )
            for (store, month), delta in sorted(deltas.items())
        ]
        return changes, events

    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        deltas: dict[tuple[str, str], list[Any]] = {}
        for fact in facts:
            recorded: feed.MovementRecorded = fact.body
            movement = recorded.movement
            if movement.location is None:
                continue
            store = movement.location.path[-2]
            month = local_month(movement.occurred_at, movement.location.timezone)
            delta = deltas.setdefault((store, month), [Decimal(0), 0, 0, 0])
            add_movement(delta, recorded)
        stored = self.view.get_many(STORE_MONTHS, [key_of(*k) for k in deltas])
        return [
            DocumentChange(
                collection=STORE_MONTHS,
                key=key_of(store, month),
                body=added(stored.get(key_of(store, month)), store, month, delta),
            )
            for (store, month), delta in deltas.items()
        ]


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
