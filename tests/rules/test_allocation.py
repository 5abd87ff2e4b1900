"""Allocation against a reference: the largest-remainder split worked out in exact fractions."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from math import floor

from hypothesis import given
from hypothesis import strategies as st

from loyalty.rules.allocation import allocate, allocate_units, whole_units

weights = st.lists(st.decimals(Decimal(0), Decimal(1000), places=3), max_size=8)


def largest_remainder(total: int, weights: list[Decimal]) -> tuple[int, ...]:
    """Each line's exact share, rounded down; the units left over go one each to the largest
    fractional parts, ties to the earlier line (with no positive weight, all to the first)."""
    if not weights:
        return ()
    whole = sum(Fraction(w) for w in weights)
    if whole <= 0:
        return (total, *([0] * (len(weights) - 1)))
    shares = [total * Fraction(w) / whole for w in weights]
    parts = [floor(share) for share in shares]
    by_fraction = sorted(range(len(parts)), key=lambda i: (parts[i] - shares[i], i))
    for index in by_fraction[: total - sum(parts)]:
        parts[index] += 1
    return tuple(parts)


@given(st.integers(-1_000, 100_000), weights)
def test_allocations_are_the_exact_largest_remainder_split(
    total: int, weights: list[Decimal]
) -> None:
    assert allocate(total, weights) == largest_remainder(total, weights)


@given(st.integers(0, 100_000), weights)
def test_weights_converted_once_to_whole_units_allocate_as_the_weights_do(
    total: int, weights: list[Decimal]
) -> None:
    units = whole_units(weights)

    assert allocate_units(total, units) == allocate(total, weights)
    assert allocate_units(total + 1, units) == allocate(total + 1, weights)


@given(st.integers(-1_000, 100_000), weights, st.integers(1, 10_000))
def test_units_in_a_finer_common_unit_allocate_alike(
    total: int, weights: list[Decimal], finer: int
) -> None:
    """A benefit over some lines splits by the units of every line's amount (a multiple of
    the eligible lines' own common unit): the same split."""
    units = whole_units(weights)

    assert allocate_units(total, [unit * finer for unit in units]) == allocate_units(total, units)
