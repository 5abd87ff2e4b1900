"""Splitting a whole amount over lines, and reversing a returned share, to the unit.

Both are exact: allocations use the largest-remainder method (ties to the earlier line),
and a return reverses ``floor(a * returned_after / q) - floor(a * returned_before / q)``
per line, so that the returns of a whole purchase reverse exactly what it earned.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from math import floor


def allocate(total: int, weights: Sequence[Decimal]) -> tuple[int, ...]:
    """``total`` units split over ``weights`` in proportion; the parts sum to ``total``.

    With no positive weight, everything goes to the first line (or nowhere, without lines).
    """
    if not weights:
        return ()
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:
        return (total, *([0] * (len(weights) - 1)))
    shares = [Fraction(total) * Fraction(w) / Fraction(weight_sum) for w in weights]
    parts = [floor(share) for share in shares]
    remainder = total - sum(parts)
    by_fraction = sorted(range(len(shares)), key=lambda i: (-(shares[i] - parts[i]), i))
    for index in by_fraction[:remainder]:
        parts[index] += 1
    return tuple(parts)


def reversed_share(
    allocated: int, quantity: Decimal, returned_before: Decimal, returned_after: Decimal
) -> int:
    """Units of ``allocated`` that returning up to ``returned_after`` of ``quantity`` gives back."""
    per_unit = Fraction(allocated) / Fraction(quantity)
    return floor(per_unit * Fraction(returned_after)) - floor(per_unit * Fraction(returned_before))
