"""Balances and histories: per account (a customer in a campaign) its balance, points
earned and spent, last movement; per card its holder and status; per customer the history
of movements with the transactions each derived, and the registration facts the read side
may know (signup day, home store, erased or not: nothing personal).

``earned`` counts points credited by movements, ``spent`` points debited (redemptions,
points taken back by returns, negative adjustments); ``points = earned - spent``. Points
do not expire in this ledger, so no expiry column is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
import psycopg
from eventsourcing.persistence import Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from loyalty.projections import feed
from loyalty.projections.bulk import Part, StoredRow, copying, decoded, merged, parts_of
from loyalty.projections.feed import CUSTOMER_TOPICS, Fact, LedgerFeed
from loyalty.projections.log import event_time
from loyalty.projections.tables import TableModel, Tables, columns, record_position
from loyalty.settings import Settings

TABLES = (
    "CREATE TABLE IF NOT EXISTS {accounts} ("
    " account_id uuid PRIMARY KEY, campaign_id uuid NOT NULL, customer_id uuid NOT NULL,"
    " points bigint NOT NULL DEFAULT 0, credits numeric NOT NULL DEFAULT 0,"
    " earned bigint NOT NULL DEFAULT 0, spent bigint NOT NULL DEFAULT 0,"
    " movements bigint NOT NULL DEFAULT 0, last_movement_at timestamptz,"
    " last_movement_id text)",
    "CREATE TABLE IF NOT EXISTS {cards} ("
    " card_id uuid PRIMARY KEY, code text NOT NULL UNIQUE, customer_id uuid NOT NULL,"
    " status text NOT NULL, successor text)",
    "CREATE TABLE IF NOT EXISTS {history} ("
    " account_id uuid NOT NULL, version bigint NOT NULL,"
    " movement_id text NOT NULL, type text NOT NULL, card text NOT NULL,"
    " occurred_at timestamptz NOT NULL, store text, amount numeric NOT NULL,"
    " points_delta bigint NOT NULL, credits_delta numeric NOT NULL,"
    " points_after bigint NOT NULL, credits_after numeric NOT NULL,"
    " transactions jsonb NOT NULL)",
    "CREATE TABLE IF NOT EXISTS {customers} ("
    " customer_id uuid PRIMARY KEY, signed_up_on date, home_store text,"
    " erased boolean NOT NULL DEFAULT false)",
)
INDEXES = (
    "CREATE INDEX IF NOT EXISTS {accounts_customer_index} ON {accounts} (customer_id)",
    "CREATE INDEX IF NOT EXISTS {cards_customer_index} ON {cards} (customer_id)",
    "CREATE UNIQUE INDEX IF NOT EXISTS {history_key_index} ON {history} (account_id, version)",
    "CREATE INDEX IF NOT EXISTS {customers_store_index} ON {customers} (home_store)",
)

_encoder = msgspec.json.Encoder()

HISTORY_COLUMNS = (
    "account_id, version, movement_id, type, card, occurred_at, store, amount, points_delta,"
    " credits_delta, points_after, credits_after, transactions"
)


class AccountTotals(msgspec.Struct, kw_only=True):
    """What a run of movements adds to an account."""

    points: int = 0
    credits: Decimal = Decimal(0)
    earned: int = 0
    spent: int = 0
    movements: int = 0
    last_movement_at: datetime | None = None
    last_movement_id: str | None = None

    def merge(self, later: AccountTotals) -> None:
        """Adds what a later run of movements added."""
        self.points += later.points
        self.credits += later.credits
        self.earned += later.earned
        self.spent += later.spent
        self.movements += later.movements
        self.last_movement_at = later.last_movement_at
        self.last_movement_id = later.last_movement_id


class Changes(msgspec.Struct):
    """What a run of facts changes besides the history, folded in log order: accounts
    opened, totals per account, cards issued (with their latest status), changes to
    cards issued before the run, customer facts."""

    opened: list[tuple[UUID, UUID, UUID]] = msgspec.field(default_factory=list)
    totals: dict[UUID, AccountTotals] = msgspec.field(default_factory=dict)
    issued: dict[UUID, list[Any]] = msgspec.field(default_factory=dict)
    changed: list[tuple[str, str | None, UUID]] = msgspec.field(default_factory=list)
    customers: list[tuple[UUID, date | None, str | None, bool]] = msgspec.field(
        default_factory=list
    )
    events: int = 0

    def add(self, fact: Fact) -> tuple[Any, ...] | None:
        """Folds ``fact`` in; the history row of a movement."""
        self.events += 1
        body = fact.body
        if isinstance(body, feed.MovementRecorded):
            add_movement(self.totals.setdefault(fact.originator_id, AccountTotals()), body)
            return history_row(fact, body)
        if isinstance(body, feed.CustomerRegistered | feed.HomeStoreSet | feed.CustomerErased):
            self.customers.append(customer_row(fact))
        elif isinstance(body, feed.AccountOpened):
            self.opened.append((fact.originator_id, body.campaign_id, body.customer_id))
        elif isinstance(body, feed.CardIssued):
            self.issued[fact.originator_id] = [body.code, body.customer_id, "active", None]
        else:
            status, successor = card_change(body)
            self.change_card(fact.originator_id, status, successor)
        return None

    def change_card(self, card_id: UUID, status: str, successor: str | None) -> None:
        if card_id in self.issued:
            card = self.issued[card_id]
            card[2:] = [status, successor or card[3]]
        else:
            self.changed.append((status, successor, card_id))

    def merge(self, later: Changes) -> None:
        """Folds in what a later run of facts changes."""
        self.opened += later.opened
        for account_id, totals in later.totals.items():
            if account_id in self.totals:
                self.totals[account_id].merge(totals)
            else:
                self.totals[account_id] = totals
        self.issued |= later.issued
        for status, successor, card_id in later.changed:
            self.change_card(card_id, status, successor)
        self.customers += later.customers
        self.events += later.events


class Balances(TableModel):
    name = "balances"
    topics = CUSTOMER_TOPICS
    shape = 2

    TABLES = TABLES
    INDEXES = INDEXES

    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        changes = Changes()
        history = [row for fact in facts if (row := changes.add(fact)) is not None]
        self.write_cards(curs, changes.issued, changes.changed)
        self.write_customers(curs, changes.customers)
        self.write_accounts(curs, changes.opened, changes.totals)
        with curs.copy(
            SQL("COPY {} ({}) FROM STDIN").format(self.tables("history"), SQL(HISTORY_COLUMNS))
        ) as copy:
            for row in history:
                copy.write_row(row)

    def fill(self, settings: Settings, head: int) -> int:
        """Fills this fresh generation with the log up to ``head`` in bulk: worker processes
        decode the log's parts, each writing its history rows and folding the rest, which is
        merged here in log order and written at once, with ``head`` as the position. A
        crash halfway leaves a generation without a position, which a rebuild discards."""
        started = time.monotonic()
        changes = merged(parts_of(settings, self.generation, head, self.topics), fold_part, Changes)
        newest = event_time(self.view.datastore, settings, head)
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")
            self.write_cards(curs, changes.issued, changes.changed)
            with curs.copy(
                SQL("COPY {} (customer_id, signed_up_on, home_store, erased) FROM STDIN").format(
                    self.tables("customers")
                )
            ) as copy:
                for row in customers_known(changes.customers):
                    copy.write_row(row)
            self.write_accounts(curs, changes.opened, changes.totals)
            record_position(
                curs, self.tables, head, newest, changes.events, time.monotonic() - started
            )
            self.view._insert_tracking(curs, Tracking(LedgerFeed.name, head))
        return changes.events

    def write_accounts(
        self,
        curs: Cursor[DictRow],
        opened: list[tuple[UUID, UUID, UUID]],
        totals: dict[UUID, AccountTotals],
    ) -> None:
        """Opens the new accounts with the totals of their first movements (in key order,
        as :func:`customers_known`), and adds the totals of the others to each."""
        new = {account_id for account_id, _, _ in opened}
        if opened:
            with curs.copy(
                SQL(
                    "COPY {} (account_id, campaign_id, customer_id, points, credits, earned,"
                    " spent, movements, last_movement_at, last_movement_id) FROM STDIN"
                ).format(self.tables("accounts"))
            ) as copy:
                for account_id, campaign_id, customer_id in sorted(opened, key=by_id):
                    t = totals.get(account_id) or AccountTotals()
                    copy.write_row((account_id, campaign_id, customer_id, *totals_row(t)))
        rows = [
            (account_id, *totals_row(t))
            for account_id, t in totals.items()
            if account_id not in new
        ]
        if not rows:
            return
        curs.execute(
            SQL(
                "UPDATE {} AS a SET points = a.points + d.points,"
                " credits = a.credits + d.credits, earned = a.earned + d.earned,"
                " spent = a.spent + d.spent, movements = a.movements + d.movements,"
                " last_movement_at = d.at, last_movement_id = d.movement_id"
                " FROM unnest(%b::uuid[], %b::bigint[], %b::numeric[], %b::bigint[],"
                " %b::bigint[], %b::bigint[], %b::timestamptz[], %b::text[])"
                " AS d(account_id, points, credits, earned, spent, movements, at, movement_id)"
                " WHERE a.account_id = d.account_id"
            ).format(self.tables("accounts")),
            columns(rows, 8),
        )

    def write_customers(
        self, curs: Cursor[DictRow], customers: list[tuple[UUID, date | None, str | None, bool]]
    ) -> None:
        """Applies customer events in log order (several may concern one customer)."""
        if not customers:
            return
        curs.executemany(
            SQL(
                "INSERT INTO {t} AS c (customer_id, signed_up_on, home_store, erased)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (customer_id) DO UPDATE SET"
                " signed_up_on = COALESCE(EXCLUDED.signed_up_on, c.signed_up_on),"
                " home_store = COALESCE(EXCLUDED.home_store, c.home_store),"
                " erased = c.erased OR EXCLUDED.erased"
            ).format(t=self.tables("customers")),
            customers,
        )

    def write_cards(
        self,
        curs: Cursor[DictRow],
        issued: dict[UUID, list[Any]],
        changed: list[tuple[str, str | None, UUID]],
    ) -> None:
        if issued:
            with curs.copy(
                SQL("COPY {} (card_id, code, customer_id, status, successor) FROM STDIN").format(
                    self.tables("cards")
                )
            ) as copy:
                for card_id, row in issued.items():
                    copy.write_row((card_id, *row))
        if changed:
            curs.executemany(
                SQL(
                    "UPDATE {} SET status = %s, successor = COALESCE(%s, successor)"
                    " WHERE card_id = %s"
                ).format(self.tables("cards")),
                changed,
            )


def fold_part(part: Part, rows: Iterator[StoredRow]) -> Changes:
    """A part of the log's history rows, written by COPY, and the rest of its changes."""
    tables = Tables(part.settings.read_schema, Balances.name, part.generation)
    changes = Changes()
    with (
        psycopg.connect(part.settings.conninfo()) as conn,
        copying(conn, tables("history"), HISTORY_COLUMNS) as copy,
    ):
        for _, fact in decoded(rows):
            row = changes.add(fact)
            if row is not None:
                copy.write_row(row)
    return changes


def customers_known(
    facts: list[tuple[UUID, date | None, str | None, bool]],
) -> list[tuple[UUID, date | None, str | None, bool]]:
    """Each customer's row after their facts in log order, as :meth:`Balances.write_customers`
    would leave it; in key order, so that a load adds each at the end of the key's index."""
    known: dict[UUID, list[Any]] = {}
    for customer_id, signed_up_on, home_store, erased in facts:
        row = known.setdefault(customer_id, [None, None, False])
        row[0] = signed_up_on or row[0]
        row[1] = home_store or row[1]
        row[2] = row[2] or erased
    return [(customer_id, *row) for customer_id, row in sorted(known.items(), key=by_id)]


def by_id(row: tuple[Any, ...]) -> int:
    """Orders rows by the UUID they start with, as PostgreSQL orders them, comparing ints
    (comparing the UUIDs themselves calls Python methods: seconds for a million rows)."""
    return int(row[0].int)


def totals_row(t: AccountTotals) -> tuple[Any, ...]:
    return (
        t.points,
        t.credits,
        t.earned,
        t.spent,
        t.movements,
        t.last_movement_at,
        t.last_movement_id,
    )


def customer_row(fact: Fact) -> tuple[UUID, date | None, str | None, bool]:
    """What one customer event tells: signup day, home store, erasure (``None``: unchanged)."""
    body = fact.body
    if isinstance(body, feed.CustomerRegistered):
        return (fact.originator_id, body.signed_up_on, None, False)
    if isinstance(body, feed.HomeStoreSet):
        return (fact.originator_id, None, body.store, False)
    return (fact.originator_id, None, None, True)


def add_movement(totals: AccountTotals, recorded: feed.MovementRecorded) -> None:
    earned, spent = recorded.derivation.points_moved()
    totals.earned += earned
    totals.spent += spent
    totals.points += recorded.derivation.points_delta
    totals.credits += recorded.derivation.credits_delta
    totals.movements += 1
    totals.last_movement_at = recorded.movement.occurred_at
    totals.last_movement_id = recorded.movement.movement_id


def history_row(fact: Fact, recorded: feed.MovementRecorded) -> tuple[Any, ...]:
    movement = recorded.movement
    return (
        fact.originator_id,
        fact.originator_version,
        movement.movement_id,
        movement.type.value,
        movement.card,
        movement.occurred_at,
        movement.location.path[-2] if movement.location else None,
        movement.amount,
        recorded.derivation.points_delta,
        recorded.derivation.credits_delta,
        recorded.points_after,
        recorded.credits_after,
        _encoder.encode(recorded.derivation.transactions).decode(),
    )


def card_change(body: Any) -> tuple[str, str | None]:
    """A card's status after a block, unblock or replacement, and its successor."""
    if isinstance(body, feed.CardBlocked):
        return "blocked", None
    if isinstance(body, feed.CardReplaced):
        return "replaced", body.successor
    return "active", None
