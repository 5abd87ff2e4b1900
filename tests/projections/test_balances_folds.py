"""balances' bulk fold: however the log is cut into parts, merging the parts' changes
(handed over as MessagePack, as worker processes hand them) gives the changes and history
of folding the whole log at once."""

from __future__ import annotations

from datetime import date
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.projections.balances import Changes, customers_known
from loyalty.projections.feed import Fact
from tests.projections.facts import customer, cut, log


def handed_over(changes: Changes) -> Changes:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(changes), type=Changes)


def folded(facts: list[Fact]) -> tuple[Changes, list[tuple[Any, ...]]]:
    changes = Changes()
    history = [row for fact in facts if (row := changes.add(fact)) is not None]
    return changes, history


@settings(max_examples=150, deadline=None)
@given(facts=log(), cuts=st.lists(st.integers(0, 200), max_size=4))
def test_merged_parts_give_the_changes_of_one_fold(facts: list[Fact], cuts: list[int]) -> None:
    parts, history = [], []
    for positioned in cut(facts, cuts):
        changes, rows = folded([fact for _, fact in positioned])
        parts.append(handed_over(changes))
        history += rows
    merged = parts[0]
    for later in parts[1:]:
        merged.merge(later)

    whole, whole_history = folded(facts)
    assert history == whole_history
    assert msgspec.msgpack.encode(merged) == msgspec.msgpack.encode(whole)


def test_customers_are_loaded_in_key_order_each_as_its_facts_leave_it() -> None:
    """In key order, a load adds each customer at the end of the key's index."""
    first, second, third = customer(1), customer(2), customer(3)
    facts = [
        (third, date(2026, 1, 2), None, False),
        (first, None, "s1", False),
        (third, None, "s2", False),
        (second, None, None, True),
        (first, date(2026, 1, 3), None, False),
    ]

    assert customers_known(facts) == [
        (first, date(2026, 1, 3), "s1", False),
        (second, None, None, True),
        (third, date(2026, 1, 2), "s2", False),
    ]
