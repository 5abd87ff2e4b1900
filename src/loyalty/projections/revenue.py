"""The revenue cube: what each movement sold, where, when and to whom.

Two fact tables, at the grain of the movement and of its lines, each keyed by the account
event that recorded it, extracted from the stored movements by PostgreSQL itself
(:data:`MOVEMENTS`):

- ``sales``: local day and hour (in the store's time zone), store and terminal codes,
  customer and card, revenue (a purchase's amount, minus a return's), receipts (1 per
  purchase), items (quantities, minus returned ones), points issued and redeemed;
- ``lines``: local day, store, customer, SKU, department, quantity and amount (negative
  for a return);

and a daily rollup that queries by node or store read instead: ``store_days`` (revenue,
receipts, items, points per store and local day).

Queries group them by any interval and dimension (:mod:`loyalty.projections.analytics`);
the network tree's levels roll stores up at query time, from the tree as it stands.
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL

from loyalty.domain.account import Account
from loyalty.projections import feed
from loyalty.projections.feed import Fact, topic_of
from loyalty.projections.tables import TableModel

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
)
INDEXES = (
    "CREATE UNIQUE INDEX IF NOT EXISTS {sales_key_index} ON {sales} (account_id, version)",
    "CREATE INDEX IF NOT EXISTS {sales_day_index} ON {sales} (day, store)",
    "CREATE INDEX IF NOT EXISTS {sales_customer_index} ON {sales} (customer_id, day)",
    "CREATE UNIQUE INDEX IF NOT EXISTS {lines_key_index} ON {lines} (account_id, version, line)",
    "CREATE INDEX IF NOT EXISTS {lines_day_index} ON {lines} (day, store)",
)

MOVEMENTS = """
WITH batch AS MATERIALIZED (
    SELECT e.account_id, e.version, convert_from(e.state, 'UTF8')::jsonb AS j
    FROM unnest(%b::uuid[], %b::bigint[], %b::bytea[]) AS e(account_id, version, state)
), movements AS (
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
    RETURNING day, store, revenue, receipts, items, points_issued, points_redeemed
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
), store_days AS (
    INSERT INTO {store_days} AS t
    SELECT day, store, sum(revenue), sum(receipts), sum(items), sum(points_issued),
           sum(points_redeemed)
    FROM sales GROUP BY day, store
    ON CONFLICT (day, store) DO UPDATE SET revenue = t.revenue + EXCLUDED.revenue,
        receipts = t.receipts + EXCLUDED.receipts, items = t.items + EXCLUDED.items,
        points_issued = t.points_issued + EXCLUDED.points_issued,
        points_redeemed = t.points_redeemed + EXCLUDED.points_redeemed
)
SELECT count(*) FROM sales
"""
"""One batch of movements, from their stored JSON to the facts and the rollups, in one
statement: PostgreSQL parses and sums on its own core while the next batch is read."""


class Revenue(TableModel):
    name = "revenue"
    topics = (topic_of(Account.Opened), topic_of(Account.MovementRecorded))

    TABLES = TABLES
    INDEXES = INDEXES

    raw_movements = True

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
                SQL(MOVEMENTS).format(
                    **{t: self.tables(t) for t in ("owners", "sales", "lines")},
                    store_days=self.tables("store_days"),
                ),
                (
                    [f.originator_id for f in recorded],
                    [f.originator_version for f in recorded],
                    [f.body.state for f in recorded],
                ),
            )
