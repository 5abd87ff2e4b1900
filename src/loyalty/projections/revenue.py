"""The revenue cube: what each movement sold, where, when and to whom.

Two fact tables, at the grain of the movement and of its lines, each naming the account
event that recorded it (not indexed: no query reads a fact by it, and the position recorded
with each batch is what applies an event once), extracted from the stored movements by
PostgreSQL itself batch by batch (:data:`MOVEMENTS`), and by worker processes in a rebuild
(:func:`fold_part`, the same facts: a test compares the two):

- ``sales``: local day and hour (in the store's time zone), store and terminal codes,
  customer and card, revenue (a purchase's amount, minus a return's), receipts (1 per
  purchase), items (quantities, minus returned ones), points issued and redeemed;
- ``lines``: local day, store, customer, SKU, department, quantity and amount (negative
  for a return);

and rollups that queries by node or store read instead: ``store_days`` (revenue,
receipts, items, points per store and local day) and ``store_months`` (the same per store and
month, keyed by the month's first day); and one row per customer who bought or returned,
``customers`` (last purchase day, purchases, net spend), which an RFM run as of today
reads instead of the facts.

Queries group them by any interval and dimension (:mod:`loyalty.projections.analytics`);
the network tree's levels roll stores up at query time, from the tree as it stands.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

import msgspec
import psycopg
from eventsourcing.persistence import Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.adapters.copy_text import copy_field
from loyalty.domain.account import Account
from loyalty.projections import feed
from loyalty.projections.bulk import (
    CopyText,
    Memo,
    Part,
    StoredRow,
    copying,
    escaped,
    folded,
    parts_of,
)
from loyalty.projections.feed import Fact, LedgerFeed, RawMovementsMapper, topic_of
from loyalty.projections.log import event_time
from loyalty.projections.tables import (
    BULK_MEMORY,
    TableModel,
    Tables,
    record_position,
    side_by_side,
)
from loyalty.rules.schedule import local_time
from loyalty.settings import Settings

log = logging.getLogger(__name__)
TABLES = (
    "CREATE TABLE IF NOT EXISTS {sales} ("
    " account_id uuid NOT NULL, version bigint NOT NULL, customer_id uuid NOT NULL,"
    ' card text NOT NULL, store text COLLATE "C" NOT NULL, terminal text NOT NULL,'
    " day date NOT NULL, hour smallint NOT NULL, type text NOT NULL, revenue numeric NOT NULL,"
    " receipts integer NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {lines} ("
    " account_id uuid NOT NULL, version bigint NOT NULL, line smallint NOT NULL,"
    ' customer_id uuid NOT NULL, store text COLLATE "C" NOT NULL, day date NOT NULL,'
    " sku text NOT NULL, department text NOT NULL, quantity numeric NOT NULL,"
    " amount numeric NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {owners} (account_id uuid PRIMARY KEY, customer_id uuid NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {store_days} ("
    " day date NOT NULL, store text NOT NULL, revenue numeric NOT NULL,"
    " receipts bigint NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL, PRIMARY KEY (day, store))",
    "CREATE TABLE IF NOT EXISTS {store_months} ("
    " day date NOT NULL, store text NOT NULL, revenue numeric NOT NULL,"
    " receipts bigint NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL, PRIMARY KEY (day, store))",
    "CREATE TABLE IF NOT EXISTS {customers} ("
    " customer_id uuid PRIMARY KEY, last_purchase_on date, purchases bigint NOT NULL,"
    " spend numeric NOT NULL)",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS {lines_day_index} ON {lines} (day, store)",
    "CREATE INDEX IF NOT EXISTS {sales_day_index} ON {sales} (day, store)",
)
"""The larger first, so that a bulk fill starts it first (:meth:`Revenue.finish_fill`). The
facts' stores are codes, compared byte by byte (``COLLATE "C"``): the indexes build a fifth
faster than under a language's collation (and sort byte by byte)."""

BATCH = """
    SELECT e.account_id, e.version, convert_from(e.state, 'UTF8')::jsonb AS j
    FROM unnest(%b::uuid[], %b::bigint[], %b::bytea[]) AS e(account_id, version, state)
"""
"""The movements of a batch the runner read, sent back as stored."""

MOVEMENTS = """
WITH batch AS MATERIALIZED ({batch}), movements AS (
    SELECT b.account_id, b.version, o.customer_id, m.movement, m.type,
           (m.movement->>'occurred_at')::timestamptz
               AT TIME ZONE (m.movement->'location'->>'timezone') AS local_at,
           CASE m.type WHEN 'purchase' THEN 1 WHEN 'return' THEN -1 ELSE 0 END AS sign,
           b.j->'derivation'->'transactions' AS transactions
    FROM batch b
    JOIN {owners} o ON o.account_id = b.account_id
    CROSS JOIN LATERAL (SELECT b.j->'movement' AS movement, b.j->'movement'->>'type' AS type) m
    WHERE jsonb_typeof(m.movement->'location') = 'object'
), sales AS (
    INSERT INTO {sales} (account_id, version, customer_id, card, store, terminal, day, hour,
                         type, revenue, receipts, items, points_issued, points_redeemed)
    SELECT m.account_id, m.version, m.customer_id, m.movement->>'card',
           m.movement->'location'->'path'->>-2, m.movement->'location'->'path'->>-1,
           m.local_at::date, extract(hour FROM m.local_at)::smallint, m.type,
           m.sign * (m.movement->>'amount')::numeric, (m.type = 'purchase')::int,
           m.sign * coalesce((SELECT sum((l->>'quantity')::numeric)
                              FROM jsonb_array_elements(m.movement->'lines') l), 0),
           p.issued, p.redeemed
    FROM movements m
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(t.points) FILTER (WHERE t.points > 0), 0) AS issued,
               coalesce(-sum(t.points) FILTER (WHERE t.points < 0), 0) AS redeemed
        FROM (SELECT (x->>'amount')::bigint AS points FROM jsonb_array_elements(m.transactions) x
              WHERE x->>'kind' = 'points') t
    ) p
    RETURNING customer_id, type, day, store, revenue, receipts, items, points_issued,
              points_redeemed
), lines AS (
    INSERT INTO {lines} (account_id, version, line, customer_id, store, day, sku, department,
                         quantity, amount)
    SELECT m.account_id, m.version, (l.n - 1)::smallint, m.customer_id,
           m.movement->'location'->'path'->>-2, m.local_at::date, l.line->>'sku',
           l.line->>'department', m.sign * (l.line->>'quantity')::numeric,
           m.sign * (l.line->>'amount')::numeric
    FROM movements m
    CROSS JOIN LATERAL jsonb_array_elements(m.movement->'lines') WITH ORDINALITY AS l(line, n)
    WHERE m.sign <> 0
){rollups}
SELECT count(*) FROM sales
"""
"""Movements, from their stored JSON to the facts (and the rollups, if given), in one
statement: PostgreSQL parses and sums on its own core while the next batch is read."""

ROLLUPS = """,
store_days AS ({store_days}), store_months AS ({store_months}), customers AS ({customers})
"""
"""What the ``sales`` just inserted add to the rollups."""

ROLLUP = """
    INSERT INTO {rollup} AS t
    SELECT {period}, store, sum(revenue), sum(receipts), sum(items), sum(points_issued),
           sum(points_redeemed)
    FROM sales GROUP BY 1, store
    ON CONFLICT (day, store) DO UPDATE SET revenue = t.revenue + EXCLUDED.revenue,
        receipts = t.receipts + EXCLUDED.receipts, items = t.items + EXCLUDED.items,
        points_issued = t.points_issued + EXCLUDED.points_issued,
        points_redeemed = t.points_redeemed + EXCLUDED.points_redeemed
"""
PERIOD_STARTS = {"store_days": "day", "store_months": "date_trunc('month', day)::date"}

CUSTOMERS = """
    INSERT INTO {customers} AS t
    SELECT customer_id, max(day) FILTER (WHERE type = 'purchase'),
           count(*) FILTER (WHERE type = 'purchase'), sum(revenue)
    FROM sales WHERE type IN ('purchase', 'return') GROUP BY customer_id
    ON CONFLICT (customer_id) DO UPDATE SET
        last_purchase_on = greatest(t.last_purchase_on, EXCLUDED.last_purchase_on),
        purchases = t.purchases + EXCLUDED.purchases, spend = t.spend + EXCLUDED.spend
"""

ROLLED_UP = "WITH sales AS NOT MATERIALIZED ({source}) {rollup}"
"""A rollup of a whole table at once, after a bulk fill: of the facts (``FACTS``), or the
months of the days (``DAYS``)."""
FACTS = """
    SELECT customer_id, type, day, store, revenue, receipts, items, points_issued,
           points_redeemed
    FROM {sales}
"""
DAYS = """
    SELECT day, store, revenue, receipts, items, points_issued, points_redeemed FROM {store_days}
"""

OWNERS = """
INSERT INTO {owners}
SELECT e.originator_id, (convert_from(e.state, 'UTF8')::jsonb->>'customer_id')::uuid
FROM {events} e WHERE e.notification_id > %s AND e.notification_id <= %s AND e.topic = %s
"""
"""The owners of the accounts opened in a range of the log."""


class Revenue(TableModel):
    name = "revenue"
    shape = 3
    """2: the monthly rollup per store and the per-customer rollup; 3: the facts' stores
    ``COLLATE "C"``."""
    topics = (topic_of(Account.Opened), topic_of(Account.MovementRecorded))

    TABLES = TABLES
    INDEXES = INDEXES

    mapper = RawMovementsMapper

    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        owners = {
            f.originator_id: f.body.customer_id
            for f in facts
            if isinstance(f.body, feed.AccountOpened)
        }
        if owners:
            curs.execute(
                SQL(
                    "INSERT INTO {} SELECT * FROM unnest(%b::uuid[], %b::uuid[])"
                    " ON CONFLICT DO NOTHING"
                ).format(self.tables("owners")),
                (list(owners), list(owners.values())),
            )
        recorded = [f for f in facts if isinstance(f.body, feed.RawMovementRecorded)]
        if recorded:
            curs.execute(
                self.movements(SQL(BATCH), self.rollups()),
                (
                    [f.originator_id for f in recorded],
                    [f.originator_version for f in recorded],
                    [f.body.state for f in recorded],
                ),
            )

    def movements(self, batch: SQL | Composed, rollups: SQL | Composed) -> Composed:
        """:data:`MOVEMENTS` over ``batch`` (:data:`BATCH`)."""
        return SQL(MOVEMENTS).format(
            batch=batch,
            owners=self.tables("owners"),
            sales=self.tables("sales"),
            lines=self.tables("lines"),
            rollups=rollups,
        )

    def rollups(self) -> Composed:
        """:data:`ROLLUPS` of this generation."""
        return SQL(ROLLUPS).format(
            store_days=self.rollup("store_days"),
            store_months=self.rollup("store_months"),
            customers=SQL(CUSTOMERS).format(customers=self.tables("customers")),
        )

    def rollup(self, table: str) -> Composed:
        """The statement adding ``sales`` to a rollup per store and period."""
        return SQL(ROLLUP).format(rollup=self.tables(table), period=SQL(PERIOD_STARTS[table]))

    def fill(self, settings: Settings, head: int) -> int:
        """Fills this fresh generation with the log up to ``head`` in bulk: the owners of
        accounts first (by PostgreSQL), then worker processes decode the log's parts and
        write their facts (:func:`fold_part`), then the facts are indexed and rolled up
        (:meth:`finish_fill`) and ``head`` recorded as the position reached. A crash
        halfway leaves a generation without a position, which a rebuild discards."""
        started = time.monotonic()
        self.find_owners(settings, head)
        log.info("revenue: owners in %.1f s", time.monotonic() - started)
        topics = (topic_of(Account.MovementRecorded),)
        parts = parts_of(settings, self.generation, head, topics)
        texts = [part._replace(stream_ids="text") for part in parts]
        filled = sum(folded(texts, fold_part, int))
        newest = event_time(self.view.datastore, settings, head)
        finishing = time.monotonic()
        self.finish_fill()
        log.info("revenue: indexed and rolled up in %.1f s", time.monotonic() - finishing)
        with self.view.datastore.transaction(commit=True) as curs:
            seconds = time.monotonic() - started
            record_position(curs, self.tables, head, newest, filled, seconds)
            self.view._insert_tracking(curs, Tracking(LedgerFeed.name, head))
        return filled

    def find_owners(self, settings: Settings, head: int) -> None:
        """The owner of every account opened up to ``head``, found by PostgreSQL in the
        log's parts :func:`side_by_side` (each reads its part of the whole log: the opened
        accounts are strewn through it)."""
        statement = SQL(OWNERS).format(
            owners=self.tables("owners"), events=Identifier(settings.pg_schema, "ledger_events")
        )
        opened = (topic_of(Account.Opened),)

        def find(part: Part) -> None:
            with self.view.datastore.transaction(commit=True) as curs:
                curs.execute(statement, (part.after, part.through, part.topics[0]))

        side_by_side(find, parts_of(settings, self.generation, head, opened))

    def finish_fill(self) -> None:
        """The facts indexed and rolled up at once, :func:`side_by_side`, each a statement
        on a core of its own as soon as one is free: the indexes (largest first), the
        rollup by store (by day, then by month from the days), and the rollup by customer
        in as many slices of the customers as there are cores (the larger rollup). Rollups
        and indexes read the same facts and write apart, so indexing first and rolling up
        after would leave a core idle while the largest index builds. (The runner's
        :meth:`create_indexes` then finds them built.)"""
        facts = SQL(FACTS).format(sales=self.tables("sales"))
        customers = SQL(CUSTOMERS).format(customers=self.tables("customers"))
        cores = os.cpu_count() or 1
        slices = [
            SQL("{} WHERE get_byte(uuid_send(customer_id), 15) % {} = {}").format(
                facts, cores, slice_
            )
            for slice_ in range(cores)
        ]
        work: list[Callable[[], None]] = [
            *(partial(self.create_index, statement) for statement in self.INDEXES),
            partial(self.roll_up_stores, facts),
            *(partial(self.execute_in_bulk, (s, customers)) for s in slices),
        ]
        side_by_side(lambda do: do(), work)

    def roll_up_stores(self, facts: Composed) -> None:
        """The facts rolled up by store and day, then the days by store and month."""
        self.execute_in_bulk((facts, self.rollup("store_days")))
        days = SQL(DAYS).format(store_days=self.tables("store_days"))
        self.execute_in_bulk((days, self.rollup("store_months")))

    def execute_in_bulk(self, rollup: tuple[Composed, Composed]) -> None:
        """A rollup (:data:`ROLLED_UP`) of a source, in a transaction of its own."""
        source, statement = rollup
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SET LOCAL work_mem = {}").format(BULK_MEMORY))
            curs.execute(SQL(ROLLED_UP).format(source=source, rollup=statement))


class SoldLine(msgspec.Struct, frozen=True, gc=False):
    """A line as stored: its quantity and amount are decimals as text, which a purchase's
    ``lines`` rows copy as they are and a return's negate (:func:`negated`). They go into
    ``COPY`` unescaped: the event store's mapper, the log's only writer, writes them from
    ``Decimal`` values the domain checked (finite), with ``str``."""

    sku: str
    department: str
    quantity: str
    amount: str


class Sold(msgspec.Struct, frozen=True, gc=False):
    """A movement as the facts read it: its amount is a decimal as text, as its lines'
    (:class:`SoldLine`)."""

    type: str
    card: str
    occurred_at: datetime
    amount: str
    lines: tuple[SoldLine, ...] = ()
    location: feed.Location | None = None


class PointsMoved(msgspec.Struct, frozen=True, gc=False):
    kind: str
    amount: Decimal


class SoldDerivation(msgspec.Struct, frozen=True, gc=False):
    transactions: tuple[PointsMoved, ...]


class SoldRecorded(msgspec.Struct, frozen=True, gc=False):
    """What the facts read of a stored ``Account.MovementRecorded``."""

    movement: Sold
    derivation: SoldDerivation


_sold = msgspec.json.Decoder(SoldRecorded)
decimals = Memo(Decimal, 10_000)
"""Lines' quantities as decimals (most are a few whole numbers)."""
SIGNS = {"purchase": 1, "return": -1}
SALES = (
    "account_id, version, customer_id, card, store, terminal, day, hour, type, revenue,"
    " receipts, items, points_issued, points_redeemed"
)
LINES = "account_id, version, customer_id, line, store, day, sku, department, quantity, amount"


def fold_part(part: Part, rows: Iterator[StoredRow]) -> int:
    """Writes the facts of a part of the log by ``COPY``, sales and lines each on a
    connection of its own, as :data:`MOVEMENTS` extracts them; the movements read. Rows
    are written as ``COPY`` text made here (:func:`sales_text`, :func:`lines_text`): three
    times cheaper than letting psycopg adapt each value."""
    tables = Tables(part.settings.read_schema, Revenue.name, part.generation)
    movements = 0
    with (
        psycopg.connect(part.settings.conninfo()) as sales_conn,
        psycopg.connect(part.settings.conninfo()) as lines_conn,
    ):
        owners = owners_of(sales_conn, tables)
        with (
            copying(sales_conn, tables("sales"), SALES) as sales_copy,
            copying(lines_conn, tables("lines"), LINES) as lines_copy,
        ):
            sales, lines = CopyText(sales_copy), CopyText(lines_copy)
            for _, account_id, version, _, state in rows:
                movements += 1
                recorded = _sold.decode(state)
                movement = recorded.movement
                location = movement.location
                customer_id = owners.get(account_id)
                if location is None or customer_id is None:
                    continue
                local = local_time(movement.occurred_at, location.timezone)
                sign = SIGNS.get(movement.type, 0)
                key = f"{account_id}\t{version}\t{customer_id}"
                store, day = escaped[location.path[-2]], local.date().isoformat()
                terminal = escaped[location.path[-1]]
                where = f"{store}\t{terminal}\t{day}\t{local.hour}"
                sales.add(sales_text(key, where, recorded, sign))
                if sign:
                    lines.add(lines_text(key, f"{store}\t{day}", movement.lines, sign))
            sales.flush()
            lines.flush()
    return movements


def owners_of(conn: psycopg.Connection[Any], tables: Tables) -> dict[str, str]:
    """Each account's customer, both as text."""
    query = SQL("SELECT account_id::text, customer_id::text FROM {}").format(tables("owners"))
    return {account_id: customer_id for account_id, customer_id in conn.execute(query)}


def sales_text(key: str, where: str, recorded: SoldRecorded, sign: int) -> str:
    """A movement's ``sales`` row (:data:`SALES`): ``key`` is its account, version and
    customer, ``where`` its store, terminal, local day and hour, as ``COPY`` text; ``sign``
    1 for a purchase, -1 for a return, 0 for the other movements."""
    movement = recorded.movement
    quantities = sum(
        map(decimals.__getitem__, [line.quantity for line in movement.lines]), Decimal(0)
    )
    if sign > 0:
        revenue, items = movement.amount, quantities
    elif sign < 0:
        revenue, items = negated(movement.amount), -quantities
    else:
        revenue, items = str(0 * Decimal(movement.amount)), 0 * quantities
    issued = redeemed = Decimal(0)
    for moved in recorded.derivation.transactions:
        if moved.kind != "points":
            continue
        if moved.amount > 0:
            issued += moved.amount
        else:
            redeemed -= moved.amount
    receipts = "1" if movement.type == "purchase" else "0"
    return (
        f"{key}\t{copy_field(movement.card)}\t{where}\t{movement.type}\t{revenue}\t{receipts}"
        f"\t{items!s}\t{int(issued)}\t{int(redeemed)}\n"
    )


def lines_text(key: str, where: str, sold: tuple[SoldLine, ...], sign: int) -> str:
    """A purchase's or a return's ``lines`` rows (:data:`LINES`), a return's negative."""
    signed = str if sign > 0 else negated
    return "".join(
        f"{key}\t{n}\t{where}\t{escaped[line.sku]}\t{escaped[line.department]}"
        f"\t{signed(line.quantity)}\t{signed(line.amount)}\n"
        for n, line in enumerate(sold)
    )


def negated(decimal: str) -> str:
    """A decimal's text negated, as PostgreSQL reads it (``-0`` is 0)."""
    return decimal[1:] if decimal.startswith("-") else f"-{decimal}"
