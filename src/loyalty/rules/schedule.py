"""WHEN: local dates, weekdays and hours, and the cap periods a local date falls in."""

from __future__ import annotations

from datetime import date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo

from loyalty.domain.promotion import Period, When


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(instant: datetime, timezone: str) -> datetime:
    """``instant`` on the wall clock of ``timezone``."""
    return instant.astimezone(zone(timezone))


def is_within(when: When, local: datetime) -> bool:
    day = local.date()
    if when.starts_on is not None and day < when.starts_on:
        return False
    if when.ends_on is not None and day > when.ends_on:
        return False
    if when.weekdays and local.isoweekday() not in when.weekdays:
        return False
    if when.hours:
        clock = local.time().replace(tzinfo=None)
        return any(
            hours.start <= clock and (hours.end == time(0) or clock < hours.end)
            for hours in when.hours
        )
    return True


def period_key(period: Period, day: date) -> str:
    """The cap bucket ``day`` belongs to: ``2026-11-22``, ``2026-W47``, ``2026-11``, ``2026``."""
    match period:
        case Period.DAY:
            return day.isoformat()
        case Period.WEEK:
            year, week, _ = day.isocalendar()
            return f"{year}-W{week:02d}"
        case Period.MONTH:
            return f"{day.year}-{day.month:02d}"
        case Period.YEAR:
            return str(day.year)
    return "ever"
