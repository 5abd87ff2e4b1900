"""The revenue cube: what each movement sold, where, when and to whom.

Two fact tables, at the grain of the movement and of its lines, each keyed by the account
event that recorded it:

- ``sales``: local day and hour (in the store's time zone), store and terminal codes,
  customer and card, revenue (a purchase's amount, minus a return's), receipts (1 per
  purchase), items (quantities, minus returned ones), points issued and redeemed;
- ``lines``: local day, store, customer, SKU, department, quantity and amount (negative
  for a return).

and two daily rollups that most queries read instead: ``store_days`` (revenue, receipts,
items, points per store and local day) and ``department_days`` (revenue, receipts — the
purchases that bought from the department — and items per store, department and day).

Queries group them by any interval and dimension (:mod:`loyalty.projections.analytics`);
the network tree's levels roll stores up at query time, from the tree as it stands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from loyalty.domain.account import Account
from loyalty.domain.movement import MovementType, TransactionKind
from loyalty.projections import feed
from loyalty.projections.feed import Fact, topic_of
from loyalty.projections.tables import TableModel, columns

TABLES = (
    "CREATE TABLE IF NOT EXISTS {sales} ("
    " account_id uuid NOT NULL, version bigint NOT NULL, customer_id uuid NOT NULL,"
    " card text NOT NULL, store text NOT NULL, terminal text NOT NULL, day date NOT NULL,"
    " hour smallint NOT NULL, type text NOT NULL, revenue numeric NOT NULL,"
    " receipts integer NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {lines} ("
    " account_id uuid NOT NULL, version bigint NOT NULL, line smallint NOT NULL,"
    " customer_id uuid NOT NULL, store text NOT NULL, day date NOT NULL, sku text NOT NULL,"
    " department text NOT NULL, quantity numeric NOT NULL, amount numeric NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {owners} (account_id uuid PRIMARY KEY, customer_id uuid NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {store_days} ("
    " day date NOT NULL, store text NOT NULL, revenue numeric NOT NULL,"
    " receipts bigint NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL, PRIMARY KEY (day, store))",
    "CREATE TABLE IF NOT EXISTS {department_days} ("
    " day date NOT NULL, store text NOT NULL, department text NOT NULL,"
    " revenue numeric NOT NULL, receipts bigint NOT NULL, items numeric NOT NULL,"
    " PRIMARY KEY (day, store, department))",
)
INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS {sales_key_index} ON {sales} (account_id, version)",
    "CREATE INDEX IF NOT EXISTS {sales_day_index} ON {sales} (day, store)",
    "CREATE INDEX IF NOT EXISTS {sales_customer_index} ON {sales} (customer_id, day)",
    "CREATE UNIQUE INDEX IF NOT EXISTS {lines_key_index} ON {lines} (account_id, version, line)",
    "CREATE INDEX IF NOT EXISTS {lines_day_index} ON {lines} (day, store)",
)

STORE_DAYS = (
    "INSERT INTO {t} AS t SELECT * FROM unnest(%s::date[], %s::text[], %s::numeric[],"
    " %s::bigint[], %s::numeric[], %s::bigint[], %s::bigint[])"
    " ON CONFLICT (day, store) DO UPDATE SET revenue = t.revenue + EXCLUDED.revenue,"
    " receipts = t.receipts + EXCLUDED.receipts, items = t.items + EXCLUDED.items,"
    " points_issued = t.points_issued + EXCLUDED.points_issued,"
    " points_redeemed = t.points_redeemed + EXCLUDED.points_redeemed"
)
DEPARTMENT_DAYS = (
    "INSERT INTO {t} AS t SELECT * FROM unnest(%s::date[], %s::text[], %s::text[],"
    " %s::numeric[], %s::bigint[], %s::numeric[])"
    " ON CONFLICT (day, store, department) DO UPDATE SET"
    " revenue = t.revenue + EXCLUDED.revenue, receipts = t.receipts + EXCLUDED.receipts,"
    " items = t.items + EXCLUDED.items"
)

SIGN = {MovementType.PURCHASE: 1, MovementType.RETURN: -1}


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local(at: datetime, timezone: str) -> datetime:
    return at.astimezone(zone(timezone))


class Revenue(TableModel):
    name = "revenue"
    topics = (topic_of(Account.Opened), topic_of(Account.MovementRecorded))

    TABLES = TABLES
    INDEXES = INDEXES

    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        owners = {
            f.originator_id: f.body.customer_id
            for f in facts
            if isinstance(f.body, feed.AccountOpened)
        }
        if owners:
            curs.execute(
                SQL(
                    "INSERT INTO {} SELECT * FROM unnest(%s::uuid[], %s::uuid[])"
                    " ON CONFLICT DO NOTHING"
                ).format(self.tables("owners")),
                (list(owners), list(owners.values())),
            )
        recorded = [
            f
            for f in facts
            if isinstance(f.body, feed.MovementRecorded) and f.body.movement.location is not None
        ]
        missing = list({f.originator_id for f in recorded} - owners.keys())
        if missing:
            curs.execute(
                SQL("SELECT account_id, customer_id FROM {} WHERE account_id = ANY(%s)").format(
                    self.tables("owners")
                ),
                (missing,),
            )
            owners |= {row["account_id"]: row["customer_id"] for row in curs.fetchall()}
        sales = [sale_row(f, owners[f.originator_id]) for f in recorded]
        lines = [row for f in recorded for row in line_rows(f, owners[f.originator_id])]
        with curs.copy(
            SQL(
                "COPY {} (account_id, version, customer_id, card, store, terminal, day, hour,"
                " type, revenue, receipts, items, points_issued, points_redeemed) FROM STDIN"
            ).format(self.tables("sales"))
        ) as copy:
            for row in sales:
                copy.write_row(row)
        with curs.copy(
            SQL(
                "COPY {} (account_id, version, line, customer_id, store, day, sku, department,"
                " quantity, amount) FROM STDIN"
            ).format(self.tables("lines"))
        ) as copy:
            for row in lines:
                copy.write_row(row)
        self.roll_up(curs, sales, lines)

    def roll_up(
        self, curs: Cursor[DictRow], sales: list[tuple[Any, ...]], lines: list[tuple[Any, ...]]
    ) -> None:
        """Adds the batch to the daily rollups per store and per store and department."""
        stores: dict[tuple[Any, ...], list[Any]] = {}
        for row in sales:
            totals = stores.setdefault((row[6], row[4]), [Decimal(0), 0, Decimal(0), 0, 0])
            for index, value in enumerate(row[9:14]):
                totals[index] += value
        departments: dict[tuple[Any, ...], list[Any]] = {}
        bought: set[tuple[Any, ...]] = set()
        for row in lines:
            key = (row[5], row[4], row[7])
            totals = departments.setdefault(key, [Decimal(0), 0, Decimal(0)])
            totals[0] += row[9]
            totals[2] += row[8]
            if row[9] > 0 and (key, row[0], row[1]) not in bought:
                bought.add((key, row[0], row[1]))
                totals[1] += 1
        if stores:
            curs.execute(
                SQL(STORE_DAYS).format(t=self.tables("store_days")),
                columns([(*key, *totals) for key, totals in stores.items()], 7),
            )
        if departments:
            curs.execute(
                SQL(DEPARTMENT_DAYS).format(t=self.tables("department_days")),
                columns([(*key, *totals) for key, totals in departments.items()], 6),
            )


def sale_row(fact: Fact, customer_id: Any) -> tuple[Any, ...]:
    recorded: feed.MovementRecorded = fact.body
    movement = recorded.movement
    assert movement.location is not None
    at = local(movement.occurred_at, movement.location.timezone)
    sign = SIGN.get(movement.type, 0)
    issued = redeemed = 0
    for transaction in recorded.derivation.transactions:
        if transaction.kind is TransactionKind.POINTS:
            points = int(transaction.amount)
            if points > 0:
                issued += points
            else:
                redeemed -= points
    return (
        fact.originator_id,
        fact.originator_version,
        customer_id,
        movement.card,
        movement.location.path[-2],
        movement.location.path[-1],
        at.date(),
        at.hour,
        movement.type.value,
        sign * movement.amount,
        1 if movement.type is MovementType.PURCHASE else 0,
        sign * sum((line.quantity for line in movement.lines), Decimal(0)),
        issued,
        redeemed,
    )


def line_rows(fact: Fact, customer_id: Any) -> list[tuple[Any, ...]]:
    recorded: feed.MovementRecorded = fact.body
    movement = recorded.movement
    sign = SIGN.get(movement.type, 0)
    if not sign:
        return []
    assert movement.location is not None
    day = local(movement.occurred_at, movement.location.timezone).date()
    store = movement.location.path[-2]
    return [
        (
            fact.originator_id,
            fact.originator_version,
            index,
            customer_id,
            store,
            day,
            line.sku,
            line.department,
            sign * line.quantity,
            sign * line.amount,
        )
        for index, line in enumerate(movement.lines)
    ]
