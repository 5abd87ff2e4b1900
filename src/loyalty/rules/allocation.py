"""Splitting a whole amount over lines, and reversing a returned share, to the unit.

Both are exact: allocations use the largest-remainder method (ties to the earlier line),
and a return reverses ``floor(a * returned_after / q) - floor(a * returned_before / q)``
per line, so that the returns of a whole purchase reverse exactly what it earned.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from math import lcm


def allocate(total: int, weights: Sequence[Decimal]) -> tuple[int, ...]:
    """``total`` units split over ``weights`` in proportion; the parts sum to ``total``.

    With no positive weight, everything goes to the first line (or nowhere, without lines).
    """
    if not weights:
        return ()
    return allocate_units(total, whole_units(weights))


def allocate_units(total: int, units: Sequence[int]) -> tuple[int, ...]:
    """:func:`allocate` on weights already in whole units (see :func:`whole_units`), so
    that a movement's lines are converted once however many benefits split over them.

    The leftover units go to the largest remainders: a stable sort in reverse keeps equal
    remainders in line order, so ties go to the earlier line.
    """
    if len(units) < 2:
        return (total,) if units else ()
    unit_sum = sum(units)
    if unit_sum <= 0:
        return (total, *([0] * (len(units) - 1)))
    parts = [total * unit // unit_sum for unit in units]
    remainder = total - sum(parts)
    if remainder:
        leftovers = [total * unit % unit_sum for unit in units]
        by_leftover = sorted(range(len(units)), key=leftovers.__getitem__, reverse=True)
        for index in by_leftover[:remainder]:
            parts[index] += 1
    return tuple(parts)


def whole_units(weights: Sequence[Decimal]) -> list[int]:
    """The weights as integers in one common unit (exactly: 1.5 and 0.25 give 6 and 1)."""
    ratios = [w.as_integer_ratio() for w in weights]
    common = lcm(*[d for _, d in ratios])
    return [n * (common // d) for n, d in ratios]


def reversed_share(
    allocated: int, quantity: Decimal, returned_before: Decimal, returned_after: Decimal
) -> int:
    """Units of ``allocated`` that returning up to ``returned_after`` of ``quantity`` gives back."""
    qn, qd = quantity.as_integer_ratio()
    an, ad = returned_after.as_integer_ratio()
    bn, bd = returned_before.as_integer_ratio()
    return (allocated * qd * an) // (qn * ad) - (allocated * qd * bn) // (qn * bd)
