"""Revenue queries over the revenue cube: any interval, grouped by time and dimensions,
compared with the previous interval or the same one a year earlier.

Stores roll up to network nodes through ``stores``: a mapping from each store code the
caller may see to the node it is reported under (the store itself, or the child of the
node being broken down under which the store lies). Stores outside it are not counted, so
the caller's scope is applied by the same mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

import msgspec
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.projections.tables import Tables


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"
    TOTAL = "total"


class Dimension(StrEnum):
    NODE = "node"
    STORE = "store"
    TERMINAL = "terminal"
    DEPARTMENT = "department"
    SKU = "sku"
    CUSTOMER = "customer"
    CARD = "card"
    HOUR = "hour"


class Comparison(StrEnum):
    NONE = "none"
    PREVIOUS = "previous"
    YEAR = "year"


LINE_DIMENSIONS = frozenset({Dimension.DEPARTMENT, Dimension.SKU})
"""Dimensions of the lines: their figures are the lines' (no points; a receipt counts once
per department it bought from)."""


class RevenueQuery(msgspec.Struct, frozen=True, kw_only=True):
    first: date
    last: date
    grain: Grain = Grain.MONTH
    by: tuple[Dimension, ...] = ()
    compare: Comparison = Comparison.NONE
    customers: bool = False
    """Count distinct customers too: exact, from the facts, so slower than the rollups."""


class Figures(msgspec.Struct, frozen=True, kw_only=True):
    revenue: Decimal
    receipts: int
    items: Decimal
    average_receipt: Decimal | None
    customers: int | None = None
    points_issued: int | None = None
    points_redeemed: int | None = None


NOTHING = Figures(revenue=Decimal(0), receipts=0, items=Decimal(0), average_receipt=None)
"""The figures of a period or group with no sales."""


class Delta(msgspec.Struct, frozen=True, kw_only=True):
    revenue: Decimal
    revenue_pct: Decimal | None
    receipts: int
    customers: int | None


class RevenueRow(msgspec.Struct, frozen=True, kw_only=True):
    period: date | None
    """The first day of the row's period (``None`` for ``grain=total``)."""
    group: dict[str, str]
    figures: Figures
    compared: Figures | None = None
    delta: Delta | None = None


def shift_of(query: RevenueQuery) -> timedelta | None:
    """How far back the comparison interval lies (a year: 52 weeks for weekly grain, so
    that weeks align; else the same calendar dates a year earlier)."""
    if query.compare is Comparison.PREVIOUS:
        return timedelta(days=(query.last - query.first).days + 1)
    if query.compare is Comparison.YEAR:
        return timedelta(weeks=52) if query.grain is Grain.WEEK else None
    return None


def year_before(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def revenue(
    curs: Cursor[DictRow],
    tables: Tables,
    query: RevenueQuery,
    stores: Mapping[str, str],
) -> list[RevenueRow]:
    """The figures of ``query`` over the stores of ``stores``, in period and group order."""
    current = figures_by_period(curs, tables, query, stores, query.first, query.last, None)
    if query.compare is Comparison.NONE:
        return [row_of(key, figures) for key, figures in current.items()]
    shift = shift_of(query)
    first = query.first - shift if shift else year_before(query.first)
    last = query.last - shift if shift else year_before(query.last)
    earlier = figures_by_period(curs, tables, query, stores, first, last, shift or "year")
    keys = sorted(current.keys() | earlier.keys(), key=sort_key)
    return [row_of(key, current.get(key, NOTHING), earlier.get(key, NOTHING)) for key in keys]


def sort_key(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple("" if part is None else str(part) for part in key)


def row_of(key: tuple[Any, ...], figures: Figures, compared: Figures | None = None) -> RevenueRow:
    period, *groups = key
    names = [name for name, _ in groups]
    return RevenueRow(
        period=period,
        group=dict(zip(names, (str(value) for _, value in groups), strict=True)),
        figures=figures,
        compared=compared,
        delta=delta_of(figures, compared) if compared is not None else None,
    )


def delta_of(now: Figures, before: Figures) -> Delta:
    pct = (
        ((now.revenue - before.revenue) * 100 / before.revenue).quantize(Decimal("0.01"))
        if before.revenue
        else None
    )
    return Delta(
        revenue=now.revenue - before.revenue,
        revenue_pct=pct,
        receipts=now.receipts - before.receipts,
        customers=(now.customers or 0) - (before.customers or 0)
        if now.customers is not None or before.customers is not None
        else None,
    )


def figures_by_period(
    curs: Cursor[DictRow],
    tables: Tables,
    query: RevenueQuery,
    stores: Mapping[str, str],
    first: date,
    last: date,
    moved: timedelta | str | None,
) -> dict[tuple[Any, ...], Figures]:
    """Figures per (period, group...) between ``first`` and ``last``; with ``moved`` the
    days are first moved forward by it (a timedelta, or ``"year"``) so that a comparison
    interval lands on the periods of the current one."""
    source = source_of(query, whole_months(first, last) and not isinstance(moved, timedelta))
    day: SQL | Composed = SQL("f.day")
    if isinstance(moved, timedelta):
        day = SQL("(f.day + {})").format(SQL(str(moved.days)))
    elif moved == "year":
        day = SQL("(f.day + interval '1 year')::date")
    period = (
        SQL("NULL::date")
        if query.grain is Grain.TOTAL
        else SQL("date_trunc({}, {})::date").format(SQL(f"'{query.grain.value}'"), day)
    )
    groups = [group_expression(d) for d in query.by]
    select_groups = SQL("").join(
        SQL(", {} AS {}").format(g, Identifier(f"g{i}")) for i, g in enumerate(groups)
    )
    group_by = SQL("").join(SQL(", {}").format(Identifier(f"g{i}")) for i in range(len(groups)))
    statement = SQL(
        "SELECT {period} AS period{groups}, {measures}"
        " FROM {facts} f JOIN unnest(%s::text[], %s::text[]) AS s(store, node)"
        " ON s.store = f.store"
        " WHERE f.day BETWEEN %s AND %s"
        " GROUP BY period{group_by} ORDER BY period{group_by}"
    ).format(
        period=period,
        groups=select_groups,
        measures=source.measures(query.customers),
        facts=tables(source.table),
        group_by=group_by,
    )
    curs.execute(statement, (list(stores), list(stores.values()), first, last))
    found = {}
    for row in curs.fetchall():
        key = (row["period"], *((d.value, row[f"g{i}"]) for i, d in enumerate(query.by)))
        found[key] = figures_of(row)
    return found


def whole_months(first: date, last: date) -> bool:
    """Whether ``first..last`` runs from the first day of a month to the last of one."""
    return first.day == 1 and (last + timedelta(days=1)).day == 1


class Source(NamedTuple):
    """A table of the revenue read model, the dimensions it can group by, its measures."""

    table: str
    dimensions: frozenset[Dimension]
    sums: str
    customers: str | None
    """How it counts distinct customers (``None``: it cannot)."""
    of_lines: bool
    monthly: bool = False
    """Whether its rows are months: it answers months and longer periods over whole months
    only."""

    def measures(self, customers: bool) -> SQL:
        counted = self.customers if customers and self.customers else "NULL::bigint"
        return SQL(f"{self.sums}, {counted} AS customers")


EVERY = frozenset(Dimension)
SALE_SUMS = (
    "sum(f.revenue) AS revenue, sum(f.receipts) AS receipts, sum(f.items) AS items,"
    " sum(f.points_issued) AS points_issued, sum(f.points_redeemed) AS points_redeemed"
)
NO_POINTS = "NULL::bigint AS points_issued, NULL::bigint AS points_redeemed"
LINE_SUMS = (
    "sum(f.amount) AS revenue, count(DISTINCT (f.account_id, f.version))"
    f" FILTER (WHERE f.amount > 0) AS receipts, sum(f.quantity) AS items, {NO_POINTS}"
)
DISTINCT_CUSTOMERS = "count(DISTINCT f.customer_id)"
MONTHLY = frozenset({Grain.MONTH, Grain.QUARTER, Grain.YEAR, Grain.TOTAL})
STORES_AND_NODES = frozenset({Dimension.NODE, Dimension.STORE})
SOURCES = (
    Source("store_months", STORES_AND_NODES, SALE_SUMS, None, False, monthly=True),
    Source("store_days", STORES_AND_NODES, SALE_SUMS, None, False),
    Source("sales", EVERY - LINE_DIMENSIONS, SALE_SUMS, DISTINCT_CUSTOMERS, False),
    Source("lines", EVERY, LINE_SUMS, DISTINCT_CUSTOMERS, True),
)
"""The rollups first: a query reads the first table that answers it."""


def source_of(query: RevenueQuery, over_whole_months: bool = False) -> Source:
    """The smallest table that answers ``query``: a rollup per store (monthly when the grain
    and an interval ``over_whole_months`` allow, else daily) unless it groups finer or
    counts distinct customers; lines when it groups by department or SKU."""
    lines = bool(LINE_DIMENSIONS & set(query.by))
    for source in SOURCES:
        if not set(query.by) <= source.dimensions:
            continue
        if source.monthly and not (over_whole_months and query.grain in MONTHLY):
            continue
        if query.customers and source.customers is None:
            continue
        if lines != source.of_lines:
            continue
        return source
    raise AssertionError("the lines answer every query")


def group_expression(dimension: Dimension) -> Composed:
    column = {
        Dimension.NODE: "s.node",
        Dimension.STORE: "f.store",
        Dimension.TERMINAL: "f.terminal",
        Dimension.DEPARTMENT: "f.department",
        Dimension.SKU: "f.sku",
        Dimension.CUSTOMER: "f.customer_id::text",
        Dimension.CARD: "f.card",
        Dimension.HOUR: "f.hour",
    }[dimension]
    return SQL("").join([SQL(column)])


def figures_of(row: Mapping[str, Any]) -> Figures:
    receipts = int(row["receipts"] or 0)
    revenue_total = Decimal(row["revenue"] or 0)
    return Figures(
        revenue=revenue_total,
        receipts=receipts,
        items=Decimal(row["items"] or 0),
        average_receipt=(revenue_total / receipts).quantize(Decimal("0.01")) if receipts else None,
        customers=None if row["customers"] is None else int(row["customers"]),
        points_issued=None if row["points_issued"] is None else int(row["points_issued"]),
        points_redeemed=None if row["points_redeemed"] is None else int(row["points_redeemed"]),
    )
