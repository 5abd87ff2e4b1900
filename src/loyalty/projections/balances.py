"""Balances and histories: per account (a customer in a campaign) its balance, points
earned and spent, last movement; per card its holder and status; per customer the history
of movements with the transactions each derived, and the registration facts the read side
may know (signup day, home store, erased or not: nothing personal).

``earned`` counts points credited by movements, ``spent`` points debited (redemptions,
points taken back by returns, negative adjustments); ``points = earned - spent``. Points
do not expire in this ledger, so no expiry column is kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from loyalty.projections import feed
from loyalty.projections.feed import CUSTOMER_TOPICS, Fact
from loyalty.projections.tables import TableModel, columns

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
    " account_id uuid NOT NULL, version bigint NOT NULL, customer_id uuid NOT NULL,"
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
    "CREATE INDEX IF NOT EXISTS {history_customer_index} ON {history} (customer_id, occurred_at)",
    "CREATE INDEX IF NOT EXISTS {customers_store_index} ON {customers} (home_store)",
)

_encoder = msgspec.json.Encoder()


class AccountTotals(msgspec.Struct, kw_only=True):
    """What one batch adds to an account."""

    points: int = 0
    credits: Decimal = Decimal(0)
    earned: int = 0
    spent: int = 0
    movements: int = 0
    last_movement_at: Any = None
    last_movement_id: str | None = None


class Balances(TableModel):
    name = "balances"
    topics = CUSTOMER_TOPICS

    TABLES = TABLES
    INDEXES = INDEXES

    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        opened: list[tuple[UUID, UUID, UUID]] = []
        totals: dict[UUID, AccountTotals] = {}
        issued: dict[UUID, list[Any]] = {}
        changed: list[tuple[str, str | None, UUID]] = []
        history: list[tuple[Any, ...]] = []
        customers: list[tuple[UUID, Any, str | None, bool]] = []
        for fact in facts:
            body = fact.body
            if isinstance(body, feed.CustomerRegistered | feed.HomeStoreSet | feed.CustomerErased):
                customers.append(customer_row(fact))
            elif isinstance(body, feed.AccountOpened):
                opened.append((fact.originator_id, body.campaign_id, body.customer_id))
            elif isinstance(body, feed.MovementRecorded):
                add_movement(totals.setdefault(fact.originator_id, AccountTotals()), body)
                history.append(history_row(fact, body))
            elif isinstance(body, feed.CardIssued):
                issued[fact.originator_id] = [body.code, body.customer_id, "active", None]
            else:
                status, successor = card_change(body)
                if fact.originator_id in issued:
                    card = issued[fact.originator_id]
                    card[2:] = [status, successor or card[3]]
                else:
                    changed.append((status, successor, fact.originator_id))
        self.write_cards(curs, issued, changed)
        self.write_customers(curs, customers)
        owners = self.write_accounts(curs, opened, totals)
        with curs.copy(
            SQL(
                "COPY {} (account_id, version, customer_id, movement_id, type, card,"
                " occurred_at, store, amount, points_delta, credits_delta, points_after,"
                " credits_after, transactions) FROM STDIN"
            ).format(self.tables("history"))
        ) as copy:
            for row in history:
                copy.write_row((row[0], row[1], owners[row[0]], *row[2:]))

    def write_accounts(
        self,
        curs: Cursor[DictRow],
        opened: list[tuple[UUID, UUID, UUID]],
        totals: dict[UUID, AccountTotals],
    ) -> dict[UUID, UUID]:
        """Opens the batch's new accounts and adds its totals to each; the customer of
        each account that moved."""
        if opened:
            curs.execute(
                SQL(
                    "INSERT INTO {} (account_id, campaign_id, customer_id)"
                    " SELECT * FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[])"
                    " ON CONFLICT (account_id) DO NOTHING"
                ).format(self.tables("accounts")),
                columns(opened, 3),
            )
        if not totals:
            return {}
        rows = [
            (
                account_id,
                t.points,
                t.credits,
                t.earned,
                t.spent,
                t.movements,
                t.last_movement_at,
                t.last_movement_id,
            )
            for account_id, t in totals.items()
        ]
        curs.execute(
            SQL(
                "UPDATE {} AS a SET points = a.points + d.points,"
                " credits = a.credits + d.credits, earned = a.earned + d.earned,"
                " spent = a.spent + d.spent, movements = a.movements + d.movements,"
                " last_movement_at = d.at, last_movement_id = d.movement_id"
                " FROM unnest(%b::uuid[], %b::bigint[], %b::numeric[], %b::bigint[],"
                " %b::bigint[], %b::bigint[], %b::timestamptz[], %b::text[])"
                " AS d(account_id, points, credits, earned, spent, movements, at, movement_id)"
                " WHERE a.account_id = d.account_id RETURNING a.account_id, a.customer_id"
            ).format(self.tables("accounts")),
            columns(rows, 8),
        )
        return {row["account_id"]: row["customer_id"] for row in curs.fetchall()}

    def write_customers(
        self, curs: Cursor[DictRow], customers: list[tuple[UUID, Any, str | None, bool]]
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
            curs.execute(
                SQL(
                    "INSERT INTO {} (card_id, code, customer_id, status, successor)"
                    " SELECT * FROM unnest(%b::uuid[], %b::text[], %b::uuid[], %b::text[],"
                    " %s::text[]) ON CONFLICT (card_id) DO NOTHING"
                ).format(self.tables("cards")),
                columns([(card_id, *row) for card_id, row in issued.items()], 5),
            )
        if changed:
            curs.executemany(
                SQL(
                    "UPDATE {} SET status = %s, successor = COALESCE(%s, successor)"
                    " WHERE card_id = %s"
                ).format(self.tables("cards")),
                changed,
            )


def customer_row(fact: Fact) -> tuple[UUID, Any, str | None, bool]:
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
