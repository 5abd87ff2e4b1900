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
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from loyalty.projections import feed
from loyalty.projections.feed import CUSTOMER_TOPICS, RAW_MOVEMENTS, Fact, LedgerFeed, fact_of
from loyalty.projections.log import event_time
from loyalty.projections.tables import (
    BULK_MEMORY,
    TableModel,
    columns,
    in_ranges,
    record_position,
)
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

HISTORY_OF_THE_LOG = """
INSERT INTO {history} (account_id, version, customer_id, movement_id, type, card,
                       occurred_at, store, amount, points_delta, credits_delta, points_after,
                       credits_after, transactions)
SELECT e.originator_id, e.originator_version, a.customer_id, m->>'movement_id', m->>'type',
       m->>'card', (m->>'occurred_at')::timestamptz,
       CASE WHEN jsonb_typeof(m->'location') = 'object' THEN m->'location'->'path'->>-2 END,
       (m->>'amount')::numeric, coalesce((d->>'points_delta')::bigint, 0),
       coalesce((d->>'credits_delta')::numeric, 0), (j->>'points_after')::bigint,
       (j->>'credits_after')::numeric,
       (SELECT coalesce(jsonb_agg(jsonb_build_object('kind', x->'kind', 'amount', x->'amount',
                                                     'promotion', x->'promotion') ORDER BY n),
                        '[]'::jsonb)
        FROM jsonb_array_elements(d->'transactions') WITH ORDINALITY AS t(x, n))
FROM (
    SELECT originator_id, originator_version, j, j->'movement' AS m, j->'derivation' AS d
    FROM (SELECT originator_id, originator_version, convert_from(state, 'UTF8')::jsonb AS j
          FROM {events} WHERE notification_id > %s AND notification_id <= %s AND topic = %s) s
) e
JOIN {accounts} a ON a.account_id = e.originator_id
"""
"""The history rows of the movements of a range of the log, as :func:`history_row` makes
them, extracted by PostgreSQL where the movements are stored."""

TOTALS_OF_THE_HISTORY = """
UPDATE {accounts} AS a SET points = t.points, credits = t.credits, earned = t.earned,
    spent = t.spent, movements = t.movements, last_movement_at = t.last_at,
    last_movement_id = t.last_id
FROM (
    SELECT h.account_id, sum(h.points_delta) AS points, sum(h.credits_delta) AS credits,
           sum(p.earned) AS earned, sum(p.spent) AS spent, count(*) AS movements,
           (array_agg(h.occurred_at ORDER BY h.version DESC))[1] AS last_at,
           (array_agg(h.movement_id ORDER BY h.version DESC))[1] AS last_id
    FROM {history} h
    CROSS JOIN LATERAL (
        SELECT coalesce(sum(x.points) FILTER (WHERE x.points > 0), 0) AS earned,
               coalesce(-sum(x.points) FILTER (WHERE x.points < 0), 0) AS spent
        FROM (SELECT (t->>'amount')::numeric::bigint AS points
              FROM jsonb_array_elements(h.transactions) t WHERE t->>'kind' = 'points') x
    ) p
    GROUP BY h.account_id
) t
WHERE a.account_id = t.account_id
"""
"""Every account's totals, from its history (after a bulk fill), as :func:`add_movement`
adds them up."""

FILL_BATCH = 5_000
"""Cards', customers' and accounts' events applied at a time by a bulk fill."""
MOVEMENTS = RAW_MOVEMENTS


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

    def fill(self, settings: Settings, head: int) -> int:
        """Fills this fresh generation with the log up to ``head`` in bulk: cards,
        customers and accounts decoded and applied as a batch is (few, small events), then
        the movements' history extracted by PostgreSQL, range by range, one range per core
        at a time, and every account's totals summed from it at once; ``head`` is recorded
        last, so a crash halfway leaves a generation without a position, which a rebuild
        discards."""
        events = Identifier(settings.pg_schema, "ledger_events")
        started = time.monotonic()
        entities = [t for t in CUSTOMER_TOPICS if t != MOVEMENTS]
        applied = 0
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")
            for facts in entity_facts(curs, events, entities, head):
                self.apply(curs, facts)
                applied += len(facts)
        history = SQL(HISTORY_OF_THE_LOG).format(
            history=self.tables("history"), accounts=self.tables("accounts"), events=events
        )

        def fill_range(curs: Cursor[DictRow], after: int, through: int) -> int:
            curs.execute(history, (after, through, MOVEMENTS))
            return curs.rowcount

        applied += sum(in_ranges(settings, head, fill_range))
        newest = event_time(self.view.datastore, settings, head)
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SET LOCAL work_mem = {}").format(BULK_MEMORY))
            curs.execute(
                SQL(TOTALS_OF_THE_HISTORY).format(
                    accounts=self.tables("accounts"), history=self.tables("history")
                )
            )
            seconds = time.monotonic() - started
            record_position(curs, self.tables, head, newest, applied, seconds)
            self.view._insert_tracking(curs, Tracking(LedgerFeed.name, head))
        return applied

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


def entity_facts(
    curs: Cursor[DictRow], events: Identifier, topics: list[str], head: int
) -> Iterator[list[Fact]]:
    """The stored events of ``topics`` up to ``head``, decoded, a batch at a time."""
    with curs.connection.cursor(name="entities") as stored:
        stored.itersize = FILL_BATCH
        stored.execute(
            SQL(
                "SELECT originator_id, originator_version, topic, state FROM {}"
                " WHERE notification_id <= %s AND topic = ANY(%s) ORDER BY notification_id"
            ).format(events),
            (head, topics),
        )
        while rows := stored.fetchmany(FILL_BATCH):
            yield [
                fact_of(r["originator_id"], r["originator_version"], r["topic"], r["state"])
                for r in rows
            ]
