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
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec
import psycopg
from eventsourcing.persistence import Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.domain.account import Account
from loyalty.projections import feed
from loyalty.projections.bulk import (
    CopyText,
    Part,
    StoredRow,
    copy_field,
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
    "CREATE TABLE IF NOT EXISTS {store_months} ("
    " day date NOT NULL, store text NOT NULL, revenue numeric NOT NULL,"
    " receipts bigint NOT NULL, items numeric NOT NULL, points_issued bigint NOT NULL,"
    " points_redeemed bigint NOT NULL, PRIMARY KEY (day, store))",
    "CREATE TABLE IF NOT EXISTS {customers} ("
    " customer_id uuid PRIMARY KEY, last_purchase_on date, purchases bigint NOT NULL,"
    " spend numeric NOT NULL)",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS {sales_day_index} ON {sales} (day, store)",
    "CREATE INDEX IF NOT EXISTS {lines_day_index} ON {lines} (day, store)",
)

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
    shape = 2
    """2: the monthly rollup per store and the per-customer rollup."""
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
        write their facts (:func:`fold_part`), then every fact is rolled up at once and
        ``head`` recorded as the position reached. A crash halfway leaves a generation
        without a position, which a rebuild discards."""
        started = time.monotonic()
        self.find_owners(settings, head)
        log.info("revenue: owners in %.1f s", time.monotonic() - started)
        topics = (topic_of(Account.MovementRecorded),)
        parts = parts_of(settings, self.generation, head, topics)
        texts = [part._replace(stream_ids="text") for part in parts]
        filled = sum(folded(texts, fold_part, int))
        newest = event_time(self.view.datastore, settings, head)
        rolling = time.monotonic()
        self.roll_up_facts()
        log.info("revenue: rolled up in %.1f s", time.monotonic() - rolling)
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

    def roll_up_facts(self) -> None:
        """Every fact rolled up at once, :func:`side_by_side`: by store and day, and by
        customer in as many slices of the customers as there are cores (the customers
        are the larger rollup), each a scan of the facts; then by store and month from the
        days."""
        facts = SQL(FACTS).format(sales=self.tables("sales"))
        customers = SQL(CUSTOMERS).format(customers=self.tables("customers"))
        cores = os.cpu_count() or 1
        slices = [
            SQL("{} WHERE get_byte(uuid_send(customer_id), 15) % {} = {}").format(
                facts, cores, slice_
            )
            for slice_ in range(cores)
        ]
        side_by_side(
            self.execute_in_bulk,
            [(facts, self.rollup("store_days")), *((s, customers) for s in slices)],
        )
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


class Sold(msgspec.Struct, frozen=True):
    type: str
    card: str
    occurred_at: datetime
    amount: Decimal
    lines: tuple[SoldLine, ...] = ()
    location: feed.Location | None = None


class PointsMoved(msgspec.Struct, frozen=True):
    kind: str
    amount: Decimal


class SoldDerivation(msgspec.Struct, frozen=True):
    transactions: tuple[PointsMoved, ...]


class SoldRecorded(msgspec.Struct, frozen=True):
    """What the facts read of a stored ``Account.MovementRecorded``."""

    movement: Sold
    derivation: SoldDerivation


_sold = msgspec.json.Decoder(SoldRecorded)
SIGNS = {"purchase": 1, "return": -1}
SALES = (
    "account_id, version, customer_id, card, store, terminal, day, hour, type, revenue,"
    " receipts, items, points_issued, points_redeemed"
)
LINES = "account_id, version, customer_id, line, store, day, sku, department, quantity, amount"


class Sale(NamedTuple):
    """A movement with a store, as its facts read it, its fields as ``COPY`` text."""

    key: str
    """Its account, version (in the account) and customer, tab-separated."""
    movement: Sold
    store: str
    terminal: str
    local: datetime
    """When it occurred, in the store's time zone."""
    day: str
    sign: int
    """1 for a purchase, -1 for a return, 0 for the other movements."""


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
                movement, issued, redeemed = sold(state)
                customer_id = owners.get(account_id)
                if movement.location is None or customer_id is None:
                    continue
                *_, store, terminal = movement.location.path
                local = local_time(movement.occurred_at, movement.location.timezone)
                sale = Sale(
                    f"{account_id}\t{version}\t{customer_id}",
                    movement,
                    escaped[store],
                    escaped[terminal],
                    local,
                    local.date().isoformat(),
                    SIGNS.get(movement.type, 0),
                )
                sales.add(sales_text(sale, issued, redeemed))
                if sale.sign:
                    lines.add(lines_text(sale))
            sales.flush()
            lines.flush()
    return movements


def owners_of(conn: psycopg.Connection[Any], tables: Tables) -> dict[str, str]:
    """Each account's customer, both as text."""
    query = SQL("SELECT account_id::text, customer_id::text FROM {}").format(tables("owners"))
    return {account_id: customer_id for account_id, customer_id in conn.execute(query)}


def sold(state: bytes) -> tuple[Sold, Decimal, Decimal]:
    """A stored movement's sale, and the points its transactions issued and redeemed."""
    recorded = _sold.decode(state)
    issued = redeemed = Decimal(0)
    for moved in recorded.derivation.transactions:
        if moved.kind != "points":
            continue
        if moved.amount > 0:
            issued += moved.amount
        else:
            redeemed -= moved.amount
    return recorded.movement, issued, redeemed


def sales_text(sale: Sale, issued: Decimal, redeemed: Decimal) -> str:
    """A movement's ``sales`` row (:data:`SALES`)."""
    movement, sign = sale.movement, sale.sign
    items = sign * sum(map(Decimal, [line.quantity for line in movement.lines]), Decimal(0))
    receipts = "1" if movement.type == "purchase" else "0"
    return (
        f"{sale.key}\t{copy_field(movement.card)}\t{sale.store}\t{sale.terminal}\t{sale.day}"
        f"\t{sale.local.hour}\t{movement.type}\t{sign * movement.amount!s}\t{receipts}"
        f"\t{items!s}\t{int(issued)}\t{int(redeemed)}\n"
    )


def lines_text(sale: Sale) -> str:
    """A purchase's or a return's ``lines`` rows (:data:`LINES`), a return's negative."""
    key = sale.key
    where = f"{sale.store}\t{sale.day}"
    signed = str if sale.sign > 0 else negated
    return "".join(
        f"{key}\t{n}\t{where}\t{escaped[line.sku]}\t{escaped[line.department]}"
        f"\t{signed(line.quantity)}\t{signed(line.amount)}\n"
        for n, line in enumerate(sale.movement.lines)
    )


def negated(decimal: str) -> str:
    """A decimal's text negated, as PostgreSQL reads it (``-0`` is 0)."""
    return decimal[1:] if decimal.startswith("-") else f"-{decimal}"
