"""The revenue cube and its queries, each figure checked against a calculation of its own
on the movements the test posted."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.rows import dict_row

from loyalty.bootstrap import Services
from loyalty.commands.schemas import PostMovement
from loyalty.projections.analytics import (
    Comparison,
    Dimension,
    Grain,
    RevenueQuery,
    RevenueRow,
    revenue,
    source_of,
    whole_months,
)
from loyalty.projections.revenue import Revenue, negated
from loyalty.projections.runner import read_datastore, rebuild
from loyalty.projections.tables import Tables
from loyalty.settings import Settings
from tests.builders import START, Clock, line, program, purchase, return_of
from tests.projections.reading import caught_up, rows, serving

STORES = {"s1": "north", "s2": "north", "s3": "south"}
JUNE = (date(2026, 6, 1), date(2026, 6, 30))
JULY = (date(2026, 7, 1), date(2026, 7, 31))


MILK = "MILK\t1L \\ 'whole'\n"
"""A SKU with characters that ``COPY``'s text format escapes."""


def sales() -> list[PostMovement]:
    """Purchases in June and July at three stores, one partly returned in July."""
    june, july = START + timedelta(hours=3), START + timedelta(days=35)
    return [
        purchase("a1", line("BREAD", "10.00"), line("WINE", "25.50", department="drinks"), at=june),
        purchase("a2", line(MILK, "3.20", quantity="2"), card="C2", terminal="t2", at=june),
        purchase(
            "a3", line("WINE", "12.90", department="drinks"), card="C3", terminal="t3", at=june
        ),
        purchase("b1", line("BREAD", "30.00"), card="C2", at=july),
        return_of("b2", "a1", line("WINE", "25.50", department="drinks"), at=july),
    ]


@pytest.fixture
def posted(services: Services, clock: Clock, settings: Settings) -> list[PostMovement]:
    services.applier.apply(program())
    clock.advance(hours=2)
    movements = sales()
    for movement in movements:
        clock.now = max(clock.now, movement.occurred_at + timedelta(minutes=1))
        (outcome,) = services.desk.post([movement])
        assert outcome.status == 201, outcome  # type: ignore[union-attr]
    return movements


def expected_by_store_and_month(movements: list[PostMovement]) -> dict[tuple[date, str], Decimal]:
    """Revenue per (month, store), computed from the movements themselves."""
    found: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for movement in movements:
        store = "s" + movement.terminal[1:]
        month = movement.occurred_at.date().replace(day=1)
        sign = -1 if movement.type == "return" else 1
        found[(month, store)] += sign * movement.amount
    return dict(found)


def ask(settings: Settings, query: RevenueQuery, stores: dict[str, str] | None = None) -> list:
    with psycopg.connect(settings.conninfo(), row_factory=dict_row) as conn, conn.cursor() as curs:
        return revenue(curs, serving(settings, "revenue"), query, stores or STORES_AS_THEMSELVES)


STORES_AS_THEMSELVES = {store: store for store in STORES}


def test_revenue_per_store_per_month_matches_the_movements(
    posted: list[PostMovement], settings: Settings
) -> None:
    with caught_up(settings, [Revenue]):
        found = ask(
            settings,
            RevenueQuery(first=JUNE[0], last=JULY[1], grain=Grain.MONTH, by=(Dimension.STORE,)),
        )

    assert {(r.period, r.group["store"]): r.figures.revenue for r in found} == (
        expected_by_store_and_month(posted)
    )
    june_s1 = next(r for r in found if r.period == JUNE[0] and r.group["store"] == "s1")
    assert (june_s1.figures.receipts, june_s1.figures.items) == (1, Decimal(2))
    assert june_s1.figures.average_receipt == Decimal("35.50")
    assert june_s1.figures.points_issued == 35


def test_stores_roll_up_to_the_nodes_they_are_reported_under(
    posted: list[PostMovement], settings: Settings
) -> None:
    with caught_up(settings, [Revenue]):
        found = ask(
            settings,
            RevenueQuery(
                first=JUNE[0],
                last=JULY[1],
                grain=Grain.TOTAL,
                by=(Dimension.NODE,),
                customers=True,
            ),
            STORES,
        )
        scoped = ask(
            settings, RevenueQuery(first=JUNE[0], last=JULY[1], grain=Grain.TOTAL), {"s3": "s3"}
        )

    assert {r.group["node"]: r.figures.revenue for r in found} == {
        "north": Decimal("10.00")
        + Decimal("25.50")
        + Decimal("3.20")
        + Decimal("30.00")
        - Decimal("25.50"),
        "south": Decimal("12.90"),
    }
    assert {r.group["node"]: r.figures.customers for r in found} == {"north": 2, "south": 1}
    assert [r.figures.revenue for r in scoped] == [Decimal("12.90")]


def test_a_period_is_compared_with_the_one_before(
    posted: list[PostMovement], settings: Settings
) -> None:
    with caught_up(settings, [Revenue]):
        (july,) = ask(
            settings,
            RevenueQuery(
                first=JULY[0], last=JULY[1], grain=Grain.TOTAL, compare=Comparison.PREVIOUS
            ),
        )

    june_total = Decimal("10.00") + Decimal("25.50") + Decimal("3.20") + Decimal("12.90")
    july_total = Decimal("30.00") - Decimal("25.50")
    assert july.figures.revenue == july_total
    assert july.compared is not None and july.compared.revenue == june_total
    assert july.delta is not None and july.delta.revenue == july_total - june_total
    assert july.delta.revenue_pct == ((july_total - june_total) * 100 / june_total).quantize(
        Decimal("0.01")
    )


def test_departments_are_figured_from_the_lines(
    posted: list[PostMovement], settings: Settings
) -> None:
    with caught_up(settings, [Revenue]):
        found = ask(
            settings,
            RevenueQuery(
                first=JUNE[0], last=JULY[1], grain=Grain.TOTAL, by=(Dimension.DEPARTMENT,)
            ),
        )

    assert {r.group["department"]: r.figures.revenue for r in found} == {
        "grocery": Decimal("10.00") + Decimal("3.20") + Decimal("30.00"),
        "drinks": Decimal("25.50") + Decimal("12.90") - Decimal("25.50"),
    }


@pytest.mark.parametrize(
    "by",
    [
        (),
        (Dimension.STORE,),
        (Dimension.NODE,),
        (Dimension.NODE, Dimension.STORE),
    ],
)
@pytest.mark.parametrize("grain", list(Grain))
@pytest.mark.parametrize("first", [JUNE[0], JUNE[0] + timedelta(days=1)])
def test_the_rollups_give_the_figures_of_the_facts(
    posted: list[PostMovement],
    settings: Settings,
    by: tuple[Dimension, ...],
    grain: Grain,
    first: date,
) -> None:
    query = RevenueQuery(first=first, last=JULY[1], grain=grain, by=by)
    monthly = grain in (Grain.MONTH, Grain.QUARTER, Grain.YEAR, Grain.TOTAL) and first.day == 1
    with caught_up(settings, [Revenue]):
        rolled_up = ask(settings, query, STORES)
        from_facts = ask(settings, msgspec.structs.replace(query, customers=True), STORES)

    def without_customers(rows: list[RevenueRow]) -> list[tuple[Any, ...]]:
        return [
            (r.period, r.group, msgspec.structs.replace(r.figures, customers=None)) for r in rows
        ]

    assert source_of(query, whole_months(first, JULY[1])).table == (
        "store_months" if monthly else "store_days"
    )
    assert without_customers(rolled_up) == without_customers(from_facts)
    assert all(r.figures.customers is None for r in rolled_up)
    assert all(r.figures.customers for r in from_facts)


def weighed_and_returned(services: Services, clock: Clock) -> list[PostMovement]:
    """A purchase of weighed goods, a line of it returned: quantities with three places."""
    cheese = line("CHEESE", "4.35", quantity="0.500")
    movements = [
        purchase("w1", cheese, line("HAM", "3.10", "1.250"), at=clock.advance(minutes=1)),
        return_of("w2", "w1", cheese, at=clock.advance(minutes=1)),
    ]
    clock.advance(minutes=1)
    for movement in movements:
        (outcome,) = services.desk.post([movement])
        assert outcome.status == 201, outcome  # type: ignore[union-attr]
    return movements


def as_text(found: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Rows with their values as text: numerics keep their places (``Decimal`` equality
    would take 1.50 for 1.5)."""
    return [{column: str(value) for column, value in row.items()} for row in found]


@pytest.mark.parametrize("parallel_from", [100_000, 1], ids=["folded here", "in processes"])
def test_a_rebuild_holds_exactly_the_facts_and_rollups_built_incrementally(
    posted: list[PostMovement],
    services: Services,
    clock: Clock,
    settings: Settings,
    parallel_from: int,
) -> None:
    posted = [*posted, *weighed_and_returned(services, clock)]
    orders = {
        "sales": "account_id, version",
        "lines": "account_id, version, line",
        "store_days": "day, store",
        "store_months": "day, store",
        "customers": "customer_id",
    }
    with caught_up(settings, [Revenue]):
        incremental = {
            t: as_text(rows(settings, "revenue", t, order)) for t, order in orders.items()
        }

    datastore = read_datastore(settings)
    generation = rebuild(
        msgspec.structs.replace(settings, fill_parallel_from=parallel_from), Revenue, datastore
    )
    datastore.close()

    assert generation == 2
    rebuilt = {t: as_text(rows(settings, "revenue", t, order)) for t, order in orders.items()}
    assert rebuilt == incremental
    assert {"0.500", "-0.500", "1.250"} <= {row["quantity"] for row in rebuilt["lines"]}
    assert len(incremental["lines"]) == sum(len(m.lines) for m in posted)
    assert secondary_indexes(settings, serving(settings, "revenue")) == {
        "sales_day_index",
        "lines_day_index",
    }


def secondary_indexes(settings: Settings, tables: Tables) -> set[str]:
    """The indexes of a generation's tables that are not primary keys, unprefixed."""
    with psycopg.connect(settings.conninfo()) as conn:
        found = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s"
            " AND starts_with(indexname, %s) AND NOT indexname LIKE '%%pkey'",
            (tables.schema, tables.prefix()),
        ).fetchall()
    return {name.removeprefix(tables.prefix()) for (name,) in found}


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_a_returned_lines_stored_decimal_is_negated_as_text(value: Decimal) -> None:
    """A return's lines are written out from their stored text, negated, without a
    decimal made of them: the same value and places as negating the decimal (PostgreSQL
    then reads ``-0`` as 0, as it makes 0 of ``-1 * 0``; the rebuild test compares the
    rows themselves)."""
    negative = Decimal(negated(str(value)))

    assert negative.as_tuple() == value.copy_negate().as_tuple()
