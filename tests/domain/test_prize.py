"""Prizes: a points cost, a stock that never goes negative, a validity window."""

from __future__ import annotations

from datetime import date
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loyalty.domain.errors import InvalidPrize, OutOfStock, PrizeNotAvailable
from loyalty.domain.prize import Prize, PrizeTerms

DAY = date(2026, 6, 3)


def terms(points: int = 100, **extra: object) -> PrizeTerms:
    return PrizeTerms(name="Mug", points=points, **extra)  # type: ignore[arg-type]


def mug(stock: int = 3, **extra: object) -> Prize:
    return Prize.list(uuid4(), "mug", terms(**extra), stock, by="test")


def test_a_prize_costs_a_positive_whole_number_of_points() -> None:
    for points in (0, -5):
        with pytest.raises(InvalidPrize) as refused:
            mug(points=points)
        assert refused.value.context["field"] == "points"


def test_a_prize_needs_a_name_and_ordered_validity_dates() -> None:
    with pytest.raises(InvalidPrize):
        Prize.list(uuid4(), "mug", PrizeTerms(name="  ", points=5), 1, by="test")
    with pytest.raises(InvalidPrize) as refused:
        mug(valid_from=date(2026, 6, 2), valid_until=date(2026, 6, 1))
    assert refused.value.context["field"] == "valid_until"


def test_a_stock_starts_at_zero_or_more() -> None:
    with pytest.raises(InvalidPrize):
        mug(stock=-1)


def test_a_redemption_takes_pieces_and_a_release_puts_them_back() -> None:
    prize = mug(stock=3)

    prize.redeem("t1/r1", 2, DAY)
    assert (prize.stock, prize.redeemed) == (1, 2)
    prize.release("t1/r1", 2)
    assert (prize.stock, prize.redeemed) == (3, 0)


def test_a_redemption_never_takes_more_than_the_stock() -> None:
    prize = mug(stock=1)

    with pytest.raises(OutOfStock) as refused:
        prize.redeem("t1/r1", 2, DAY)

    assert refused.value.context == {"prize": "mug", "stock": 1}
    assert prize.stock == 1 and not prize.pending_events[1:]


def test_a_prize_is_redeemable_only_within_its_validity() -> None:
    prize = mug(valid_from=date(2026, 6, 1), valid_until=date(2026, 6, 30))

    prize.check_redeemable(1, date(2026, 6, 1))
    prize.check_redeemable(1, date(2026, 6, 30))
    for day in (date(2026, 5, 31), date(2026, 7, 1)):
        with pytest.raises(PrizeNotAvailable):
            prize.check_redeemable(1, day)


def test_restocking_needs_a_reason_and_never_leaves_a_negative_stock() -> None:
    prize = mug(stock=2)

    prize.restock(5, "delivery", by="anna")
    prize.restock(-7, "broken in the warehouse", by="anna")
    assert prize.stock == 0
    with pytest.raises(InvalidPrize):
        prize.restock(-1, "lost", by="anna")
    with pytest.raises(InvalidPrize):
        prize.restock(1, " ", by="anna")
    with pytest.raises(InvalidPrize):
        prize.restock(0, "nothing", by="anna")


def test_revising_to_the_same_terms_records_nothing() -> None:
    prize = mug()
    listed = len(prize.pending_events)

    prize.revise(terms(), by="anna")
    prize.revise(terms(points=120), by="anna")

    assert len(prize.pending_events) == listed + 1
    assert prize.terms.points == 120


operations = st.lists(
    st.tuples(st.sampled_from(["redeem", "release", "restock"]), st.integers(-20, 20)),
    max_size=40,
)


@given(start=st.integers(0, 50), steps=operations)
def test_stock_is_never_negative_and_every_piece_is_accounted_for(
    start: int, steps: list[tuple[str, int]]
) -> None:
    prize = mug(stock=start)
    held: list[int] = []
    added = 0
    for kind, quantity in steps:
        try:
            if kind == "redeem" and quantity > 0:
                prize.redeem(f"r{len(held)}", quantity, DAY)
                held.append(quantity)
            elif kind == "release" and held:
                prize.release("r", held.pop())
            elif kind == "restock":
                prize.restock(quantity, "count", by="test")
                added += quantity
        except (OutOfStock, InvalidPrize):
            pass
        assert prize.stock >= 0
        assert prize.stock + sum(held) == start + added
        assert prize.redeemed == sum(held)
