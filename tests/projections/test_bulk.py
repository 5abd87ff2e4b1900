"""Cutting the log into parts for bulk folds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import msgspec
import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.adapters.copy_text import copy_field
from loyalty.projections.bulk import CopyText, Memo, escaped, parts_of
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


@pytest.fixture(scope="module")
def texts(database: Settings) -> Iterator[psycopg.Connection[Any]]:
    """A connection with a table of one text column, emptied by each use."""
    with psycopg.connect(database.admin_conninfo(database.pg_db), autocommit=True) as conn:
        conn.execute("CREATE TEMPORARY TABLE texts (n integer, value text)")
        yield conn


@settings(max_examples=50, deadline=None)
@given(values=st.lists(st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"))))
def test_text_rows_copy_in_as_written(texts: psycopg.Connection[Any], values: list[str]) -> None:
    texts.execute("TRUNCATE texts")
    with texts.cursor() as curs, curs.copy("COPY texts (n, value) FROM STDIN") as copy:
        rows = CopyText(copy)
        for n, value in enumerate(values):
            rows.add(f"{n}\t{copy_field(value)}\n" if n % 2 else f"{n}\t{escaped[value]}\n")
        rows.flush()

    assert [v for (v,) in texts.execute("SELECT value FROM texts ORDER BY n")] == values


def test_memorised_codes_are_forgotten_past_a_limit() -> None:
    codes = Memo(copy_field, 3)

    for n in range(4):
        assert codes[f"SKU\t{n}"] == f"SKU\\t{n}"

    assert len(codes) == 1
