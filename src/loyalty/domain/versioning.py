"""Definitions that change over time without rewriting the past.

Promotions and clusters keep every version with the instant it takes effect. A movement
is judged by the versions in force at its ``occurred_at``; a new version may only take
effect from now on, so no movement already recorded could have been judged otherwise.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from typing import Generic, TypeVar

import msgspec

from loyalty.domain.errors import InvalidProgram

T = TypeVar("T")


class Version(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    number: int
    effective_from: datetime
    terms: T


def version_in_force(versions: Sequence[Version[T]], at: datetime) -> Version[T] | None:
    """The latest version whose ``effective_from`` is not after ``at`` (versions are sorted)."""
    index = bisect_right([v.effective_from for v in versions], at)
    return versions[index - 1] if index else None


def check_effective_from(
    versions: Sequence[Version[T]], effective_from: datetime, now: datetime
) -> None:
    if effective_from.tzinfo is None:
        raise InvalidProgram("effective_from needs a UTC offset")
    if effective_from < now:
        raise InvalidProgram(
            f"a new version cannot take effect in the past ({effective_from.isoformat()} "
            f"is before {now.isoformat()})"
        )
    if versions and effective_from <= versions[-1].effective_from:
        raise InvalidProgram(
            "a new version must take effect after the version before it "
            f"({versions[-1].effective_from.isoformat()})"
        )
