"""Cutting the log into parts for bulk folds."""

from __future__ import annotations

import os
from itertools import pairwise

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from loyalty.projections.bulk import parts_of
from loyalty.settings import Settings


@given(head=st.integers(min_value=1, max_value=10**9), parallel_from=st.integers(1, 10**6))
def test_the_parts_cover_the_log_once_in_order(head: int, parallel_from: int) -> None:
    settings = msgspec.structs.replace(Settings(), fill_parallel_from=parallel_from)

    parts = parts_of(settings, 3, head, ("topic",))

    assert parts[0].after == 0 and parts[-1].through == head
    assert all(a.through == b.after for a, b in pairwise(parts))
    assert all(part.through > part.after for part in parts)
    cores = os.cpu_count() or 1
    assert len(parts) == (1 if head < parallel_from else min(2 * cores, head))
    assert {(part.generation, part.topics) for part in parts} == {(3, ("topic",))}
