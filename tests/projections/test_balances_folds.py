"""balances' bulk fold: however the log is cut into parts, merging the parts' changes
(handed over as MessagePack, as worker processes hand them) gives the changes and history
of folding the whole log at once."""

from __future__ import annotations

from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.projections.balances import Changes
from loyalty.projections.feed import Fact
from tests.projections.facts import cut, log


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
