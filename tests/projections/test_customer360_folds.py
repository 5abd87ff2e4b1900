"""customer360's bulk fold: however the log is cut into parts, merging the parts' folds
(handed over as MessagePack, as worker processes hand them) gives the documents that
folding the whole log at once gives."""

from __future__ import annotations

import itertools

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.projections.customer360 import Part
from loyalty.projections.feed import Fact
from tests.projections.facts import log


def folded(facts: list[Fact]) -> Part:
    part = Part()
    for position, fact in enumerate(facts, start=1):
        part.add(position, fact)
    return part


def handed_over(part: Part) -> Part:
    return msgspec.msgpack.decode(msgspec.msgpack.encode(part), type=Part)


@settings(max_examples=150, deadline=None)
@given(facts=log(), cuts=st.lists(st.integers(0, 200), max_size=4))
def test_merged_parts_give_the_documents_of_one_fold(facts: list[Fact], cuts: list[int]) -> None:
    bounds = sorted({0, len(facts), *(c for c in cuts if c < len(facts))})
    parts = []
    for after, through in itertools.pairwise(bounds):
        part = Part()
        for position in range(after + 1, through + 1):
            part.add(position, facts[position - 1])
        parts.append(handed_over(part))
    merged = parts[0]
    for later in parts[1:]:
        merged.merge(later)

    assert list(merged.documents()) == list(folded(facts).documents())
