"""Small synthetic logs of read-side facts, for properties of the bulk folds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from uuid import UUID

import msgspec
from hypothesis import strategies as st

from loyalty.domain.movement import MovementType, TransactionKind
from loyalty.projections import feed
from loyalty.projections.feed import Fact

T0 = datetime(2026, 3, 28, 23, 30, tzinfo=UTC)
STORES = (("chain", "north", "s1", "s1-pos1"), ("chain", "south", "s2", "s2-pos1"))


def customer(n: int) -> UUID:
    return UUID(int=1_000 + n)


def account(n: int) -> UUID:
    return UUID(int=2_000 + n)


def other_account(n: int) -> UUID:
    """The customer's account in a second campaign (only the first customer joins it)."""
    return UUID(int=4_000 + n)


def card(n: int) -> UUID:
    return UUID(int=3_000 + n)


def opening(customers: int) -> list[Fact]:
    """Each customer's card and account, the first of them registered and in a second
    campaign too."""
    facts: list[Fact] = []
    for n in range(customers):
        facts.append(Fact(card(n), 1, feed.CardIssued(f"C{n}", customer(n), T0)))
        facts.append(Fact(account(n), 1, feed.AccountOpened(UUID(int=9), customer(n), T0)))
    facts.append(Fact(other_account(0), 1, feed.AccountOpened(UUID(int=10), customer(0), T0)))
    facts.append(Fact(customer(0), 1, feed.CustomerRegistered(date(2026, 1, 2), ("C0",), T0)))
    return facts


@st.composite
def movement(draw: st.DrawFn, customers: int, i: int) -> tuple[int, object]:
    n = draw(st.integers(0, customers - 1))
    kind = draw(
        st.sampled_from([MovementType.PURCHASE, MovementType.RETURN, MovementType.ADJUSTMENT])
    )
    path = draw(st.sampled_from([None, *STORES]))
    points = draw(st.integers(-50, 80))
    recorded = feed.MovementRecorded(
        movement=feed.Movement(
            movement_id=f"m{i}",
            type=kind,
            card=f"C{n}",
            occurred_at=T0 + timedelta(hours=draw(st.integers(0, 24 * 60))),
            amount=Decimal(draw(st.integers(1, 10_000))) / 100,
            location=None if path is None else feed.Location(path, "Europe/Rome"),
        ),
        derivation=feed.Derivation(
            transactions=(feed.Transaction(TransactionKind.POINTS, Decimal(points)),),
            points_delta=points,
        ),
        points_after=draw(st.integers(0, 1_000)),
        credits_after=Decimal(draw(st.integers(0, 500))) / 10,
        timestamp=T0,
    )
    return n, recorded


@st.composite
def log(draw: st.DrawFn) -> list[Fact]:
    customers = draw(st.integers(1, 4))
    facts = opening(customers)
    for i in range(draw(st.integers(0, 40))):
        n, recorded = draw(movement(customers, i))
        stream = account(n) if n or draw(st.booleans()) else other_account(n)
        facts.append(Fact(stream, i + 2, recorded))
        if draw(st.integers(0, 9)) == 0:
            facts.append(Fact(card(n), i + 2, feed.CardBlocked(T0)))
        if draw(st.integers(0, 9)) == 0:
            facts.append(Fact(customer(n), i + 2, feed.HomeStoreSet(f"s{i}", T0)))
    return facts


TOPICS = {kind: topic for topic, kind in feed.CUSTOMER_FACTS.items()}


def stored(fact: Fact) -> tuple[str, str, bytes]:
    """A fact as a bulk fold reads it from the log: its stream id as text, topic and
    state."""
    body = fact.body
    return str(fact.originator_id), TOPICS[type(body)], msgspec.json.encode(body)


def cut(facts: list[Fact], cuts: list[int]) -> list[list[tuple[int, Fact]]]:
    """``facts`` with their positions, cut at ``cuts`` into contiguous parts."""
    bounds = sorted({0, len(facts), *(c for c in cuts if c < len(facts))})
    positioned = list(enumerate(facts, start=1))
    return [positioned[after:through] for after, through in pairwise(bounds)]
