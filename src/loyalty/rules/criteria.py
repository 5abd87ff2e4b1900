"""WHO: whether a customer meets a cluster's criteria at a movement."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from loyalty.domain.cluster import (
    Age,
    AllOf,
    AnyOf,
    CardStatusIs,
    City,
    Criterion,
    Gender,
    LastPurchase,
    Not,
    PostalCode,
    PurchaseCount,
    Registered,
    Signup,
    SpendInLastDays,
    TotalSpend,
)
from loyalty.domain.customer import CustomerFacts

Ordered = TypeVar("Ordered", int, Decimal, date)


class Behaviour(Protocol):
    """What the ledger knows of a customer's spending, before the movement at hand."""

    @property
    def total_spend(self) -> Decimal: ...
    @property
    def purchase_count(self) -> int: ...
    @property
    def last_purchase_on(self) -> date | None: ...
    def spend_between(self, first: date, last: date) -> Decimal: ...


def matches(criterion: Criterion, facts: CustomerFacts, behaviour: Behaviour, day: date) -> bool:
    match criterion:
        case AllOf(of=parts):
            return all(matches(part, facts, behaviour, day) for part in parts)
        case AnyOf(of=parts):
            return any(matches(part, facts, behaviour, day) for part in parts)
        case Not(criterion=inner):
            return not matches(inner, facts, behaviour, day)
        case Age(min=low, max=high):
            return facts.birth_date is not None and within(age_on(facts.birth_date, day), low, high)
        case Gender(values=values):
            return folded(facts.gender) in {folded(v) for v in values}
        case City(values=values):
            return folded(facts.city) in {folded(v) for v in values}
        case PostalCode(prefixes=prefixes):
            return facts.postal_code is not None and facts.postal_code.startswith(prefixes)
        case Signup(on_or_after=first, on_or_before=last):
            signed = facts.signed_up_on
            return signed is not None and within(signed, first, last)
        case CardStatusIs(values=values):
            return facts.card_status in values
        case Registered(value=value):
            return facts.registered is value
        case TotalSpend(min=low, max=high):
            return within(behaviour.total_spend, low, high)
        case PurchaseCount(min=low, max=high):
            return within(behaviour.purchase_count, low, high)
        case LastPurchase(within_days=recent, not_within_days=lapsed):
            return last_purchase_matches(behaviour.last_purchase_on, day, recent, lapsed)
        case SpendInLastDays(days=days, min=low, max=high):
            spent = behaviour.spend_between(day - timedelta(days=days - 1), day)
            return within(spent, low, high)
    raise TypeError(f"unknown criterion {criterion!r}")


def within(value: Ordered, low: Ordered | None, high: Ordered | None) -> bool:
    return (low is None or value >= low) and (high is None or value <= high)


def folded(text: str | None) -> str | None:
    return text.strip().casefold() if text is not None else None


def age_on(birth: date, day: date) -> int:
    """Whole years from ``birth`` to ``day``."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def last_purchase_matches(
    last: date | None, day: date, recent: int | None, lapsed: int | None
) -> bool:
    if recent is not None and (last is None or (day - last).days > recent):
        return False
    return lapsed is None or last is None or (day - last).days > lapsed
