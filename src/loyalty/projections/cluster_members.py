"""Reading cluster memberships (written by :mod:`loyalty.commands.memberships`): sizes,
latest evaluations, members by page, and the clusters a customer is in.

Every read takes the stores of the caller's scope (``None``: the whole chain, customers
without a home store included) and leaves out customers erased since the evaluation: an
``Erased`` event on their stream is enough, so they drop out at once, static lists too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.utils import get_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.commands.memberships import evaluations_table, members_table
from loyalty.domain.cluster import MembershipKind
from loyalty.domain.customer import Customer
from loyalty.settings import Settings

NOT_ERASED = """
NOT EXISTS (SELECT 1 FROM {events} e
            WHERE e.originator_id = m.customer_id AND e.topic = %(erased)s)
"""
IN_REACH = "(%(stores)s::text[] IS NULL OR m.home_store = ANY(%(stores)s::text[]))"
SIZES = f"""
SELECT m.cluster, count(*) AS size FROM {{members}} m
WHERE {IN_REACH} AND {NOT_ERASED}
GROUP BY m.cluster
"""
LATEST = """
SELECT DISTINCT ON (cluster) cluster, version, evaluated_on, evaluated_at, membership, size,
       joined, departed
FROM {evaluations}
ORDER BY cluster, evaluated_at DESC
"""
MEMBERS = f"""
SELECT m.customer_id, m.home_store FROM {{members}} m
WHERE m.cluster = %(cluster)s AND {IN_REACH} AND {NOT_ERASED}
ORDER BY m.customer_id
LIMIT %(limit)s OFFSET %(offset)s
"""
COUNT = f"""
SELECT count(*) AS total FROM {{members}} m
WHERE m.cluster = %(cluster)s AND {IN_REACH} AND {NOT_ERASED}
"""
OF_CUSTOMER = f"""
SELECT m.cluster FROM {{members}} m
WHERE m.customer_id = %(customer)s AND {NOT_ERASED}
ORDER BY m.cluster
"""


class LatestEvaluation(msgspec.Struct, frozen=True, kw_only=True):
    cluster: str
    version: int
    evaluated_on: date
    evaluated_at: datetime
    membership: MembershipKind
    size: int
    """Members found, chain-wide."""
    joined: int
    departed: int


class MemberRow(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID
    home_store: str | None


def statement(sql: str, settings: Settings) -> Composed:
    return SQL(sql).format(
        members=members_table(settings),
        evaluations=evaluations_table(settings),
        events=Identifier(settings.pg_schema, "ledger_events"),
    )


def reach(stores: Sequence[str] | None, **params: Any) -> dict[str, Any]:
    """The parameters of a read limited to ``stores`` (``None``: everyone)."""
    erased = get_topic(Customer.Erased)
    return {"stores": None if stores is None else list(stores), "erased": erased, **params}


def cluster_sizes(
    curs: Cursor[DictRow], settings: Settings, stores: Sequence[str] | None
) -> dict[str, int]:
    """Each cluster's members within reach of ``stores``."""
    rows = curs.execute(statement(SIZES, settings), reach(stores)).fetchall()
    return {row["cluster"]: row["size"] for row in rows}


def latest_evaluations(curs: Cursor[DictRow], settings: Settings) -> dict[str, LatestEvaluation]:
    rows = curs.execute(statement(LATEST, settings)).fetchall()
    return {row["cluster"]: msgspec.convert(row, LatestEvaluation) for row in rows}


def members_of(
    curs: Cursor[DictRow],
    settings: Settings,
    cluster: str,
    stores: Sequence[str] | None,
    limit: int,
    offset: int,
) -> tuple[list[MemberRow], int]:
    """A page of the cluster's members within reach of ``stores`` (by customer id), and
    how many there are in all."""
    params = reach(stores, cluster=cluster, limit=limit, offset=offset)
    rows = curs.execute(statement(MEMBERS, settings), params).fetchall()
    (total,) = curs.execute(statement(COUNT, settings), params).fetchall()
    return [msgspec.convert(row, MemberRow) for row in rows], total["total"]


def clusters_of(curs: Cursor[DictRow], settings: Settings, customer: UUID) -> list[str]:
    """The codes of the clusters the customer is a member of."""
    rows = curs.execute(statement(OF_CUSTOMER, settings), reach(None, customer=customer))
    return [row["cluster"] for row in rows.fetchall()]
