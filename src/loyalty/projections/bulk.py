"""Bulk fills folded in Python: the log up to a head, cut into contiguous parts, each read and
folded by a worker process of its own, the folds handed back in log order.

A rebuild's cost is decoding each stored event and applying it; both are Python work, which
threads would run on one core at a time. Worker processes decode on every core, each
reading its part of the log by one binary ``COPY`` (cheaper per row than fetching pages of
text) and decoding only the fields the read side uses (:func:`~loyalty.projections.feed.fact_of`).
A read model folds a part into a partial result that can be merged with the other parts'
in log order (sums, the last value seen, the first place seen) and writes the merged whole.

Small logs are folded in the calling process: starting workers costs more than they save
below ``LOYALTY_FILL_PARALLEL_FROM`` events.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from itertools import pairwise
from typing import Any, Literal, NamedTuple, Protocol, Self, TypeVar

import msgspec
import psycopg
from psycopg import Copy
from psycopg.sql import SQL, Composed, Identifier

from loyalty.adapters.copy_text import copy_field
from loyalty.commands.collector import collector_paused
from loyalty.projections.feed import Fact, fact_of
from loyalty.settings import Settings

T = TypeVar("T")


class Mergeable(Protocol):
    def merge(self, later: Self) -> None:
        """Folds in what a later part of the log folded into."""


M = TypeVar("M", bound=Mergeable)
log = logging.getLogger(__name__)

STORED_EVENTS = (
    "COPY (SELECT notification_id, originator_id::{}, originator_version, topic, state FROM {}"
    " WHERE notification_id > %s AND notification_id <= %s AND topic = ANY(%s)"
    " ORDER BY notification_id) TO STDOUT (FORMAT BINARY)"
)

STREAM_ID_TYPES = {"uuid": "uuid", "text": "text"}
"""The types a part's stream ids are read as (a whitelist: the name goes into the
statement)."""


class Part(NamedTuple):
    """One contiguous part of the log to fold: the events after ``after``, through
    ``through``, of ``topics``."""

    settings: Settings
    generation: int
    after: int
    through: int
    topics: tuple[str, ...]
    stream_ids: Literal["uuid", "text"] = "uuid"
    """How stream ids are read: as UUIDs, or as text for a fold that only writes them out
    (and would otherwise format millions of UUIDs)."""


StoredRow = tuple[int, Any, int, str, bytes]
"""A stored event: its position, stream (a UUID, or text: :attr:`Part.stream_ids`), version,
topic and state."""

Fold = Callable[[Part, Iterator[StoredRow]], T]
"""Folds a part's stored events (in log order) into its partial result; a module-level
function, so that a worker process can be handed it."""


def stored_rows(part: Part) -> Iterator[StoredRow]:
    """The part's stored events, in log order."""
    statement = SQL(STORED_EVENTS).format(
        SQL(STREAM_ID_TYPES[part.stream_ids]),
        Identifier(part.settings.pg_schema, "ledger_events"),
    )
    with (
        psycopg.connect(part.settings.conninfo()) as conn,
        conn.cursor() as curs,
        curs.copy(statement, (part.after, part.through, list(part.topics))) as copy,
    ):
        copy.set_types(["int8", STREAM_ID_TYPES[part.stream_ids], "int8", "text", "bytea"])
        yield from copy.rows()


def decoded(rows: Iterator[StoredRow]) -> Iterator[tuple[int, Fact]]:
    """Stored events decoded into facts, with their positions."""
    for position, originator_id, version, topic, state in rows:
        yield position, fact_of(originator_id, version, topic, state)


def parts_of(settings: Settings, generation: int, head: int, topics: Sequence[str]) -> list[Part]:
    """The log up to ``head`` in contiguous parts: one when it is short, else two per core
    (so that a part of costlier events does not leave a core idle for long)."""
    cores = os.cpu_count() or 1
    count = 1 if head < settings.fill_parallel_from else min(2 * cores, head)
    bounds = [head * i // count for i in range(count + 1)]
    return [
        Part(settings, generation, after, through, tuple(topics))
        for after, through in pairwise(bounds)
        if through > after
    ]


def folded(parts: Sequence[Part], fold: Fold[T], kind: type[T]) -> list[T]:
    """Each part folded by ``fold`` into a ``kind``, in log order: in worker processes (one
    per core) when there are several parts, else here. A worker hands its fold back encoded
    by msgspec (MessagePack), an order of magnitude faster than pickling a million small
    objects."""
    started = time.monotonic()
    if len(parts) == 1:
        with collector_paused():
            return [fold(parts[0], stored_rows(parts[0]))]
    context = multiprocessing.get_context("spawn")
    workers = min(len(parts), os.cpu_count() or 1)
    decoder = msgspec.msgpack.Decoder(kind)
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool, collector_paused():
        found = [decoder.decode(encoded) for encoded in pool.map(run, [fold] * len(parts), parts)]
    log.info(
        "folded %d parts through %d in %.1f s",
        len(parts),
        parts[-1].through,
        time.monotonic() - started,
    )
    return found


def merged(parts: Sequence[Part], fold: Fold[M], kind: type[M]) -> M:
    """The parts folded (:func:`folded`), then merged in log order into the fold of the
    whole log."""
    found = folded(parts, fold, kind)
    started = time.monotonic()
    with collector_paused():
        whole = found[0]
        for later in found[1:]:
            whole.merge(later)
    log.info("merged %d parts in %.1f s", len(found), time.monotonic() - started)
    return whole


@contextmanager
def copying(conn: psycopg.Connection[Any], table: Composed, columns: str) -> Iterator[Copy]:
    """A worker's ``COPY`` into ``table``, in a transaction of ``conn`` that commits (without
    waiting for the WAL flush: a crash leaves a generation without a position) at the end."""
    with conn.cursor() as curs:
        curs.execute("SET LOCAL synchronous_commit = off")
        with curs.copy(SQL("COPY {} ({}) FROM STDIN").format(table, SQL(columns))) as copy:
            yield copy


class Memo(dict[str, T]):
    """Values made once per text, for the texts a log repeats millions of times (codes,
    quantities). Forgets them all past ``limit`` texts, so that its memory stays bounded
    whatever the log names."""

    def __init__(self, make: Callable[[str], T], limit: int) -> None:
        super().__init__()
        self.make = make
        self.limit = limit

    def __missing__(self, text: str) -> T:
        if len(self) >= self.limit:
            self.clear()
        value = self[text] = self.make(text)
        return value


escaped = Memo(copy_field, 200_000)
"""Codes (stores, SKUs, departments) as fields of ``COPY``'s text format, each escaped once
(lines may name any SKU: hence the limit)."""


class CopyText:
    """Rows already in ``COPY``'s text format, written to a ``COPY`` a chunk at a time."""

    CHUNK = 2_000

    def __init__(self, copy: Copy) -> None:
        self.copy = copy
        self.pending: list[str] = []

    def add(self, text: str) -> None:
        """Adds rows: fields separated by tabs (:data:`escaped`), each row ending in a
        newline."""
        self.pending.append(text)
        if len(self.pending) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        self.copy.write("".join(self.pending))
        self.pending.clear()


def run(fold: Fold[Any], part: Part) -> bytes:
    """``fold`` over ``part``, encoded, without the cyclic garbage collector: a fold
    allocates millions of objects in no cycle, and the collector's passes over them cost
    more than the decoding."""
    with collector_paused():
        return msgspec.msgpack.encode(fold(part, stored_rows(part)))
