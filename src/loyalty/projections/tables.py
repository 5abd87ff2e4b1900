"""Read models whose rows live in PostgreSQL tables of the read schema.

Each generation's tables are named ``<name>_<generation>_<table>``, with a ``progress``
row and eventsourcing's tracking table beside them. A batch is applied through one
transaction that first holds the registry row (so a swap waits for it), then writes the
rows, the progress and the tracking position.
"""

from __future__ import annotations

import os
import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self, TypeVar

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from loyalty.projections.feed import Fact
from loyalty.projections.registry import check_shaped
from loyalty.projections.runner import Progress, ReadModel
from loyalty.projections.shapes import code_shape, refuse_other_shape
from loyalty.settings import Settings

INDEX = "_index"
"""Placeholders ending so name an index; the others name a table."""

BULK_MEMORY = Literal("256MB")
"""Memory PostgreSQL may use for each sort or hash of a bulk step (indexing a rebuilt
generation, summing a bulk fill), instead of spilling to disk past the 4-64 MB defaults."""

PROGRESS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, position bigint NOT NULL,"
    " newest_event_at timestamptz NOT NULL, applied_at timestamptz NOT NULL,"
    " events bigint NOT NULL, rate double precision NOT NULL)"
)


@dataclass(frozen=True)
class Tables:
    """The names of one generation of one read model's tables."""

    schema: str
    projection: str
    generation: int

    def prefix(self) -> str:
        return f"{self.projection}_{self.generation}_"

    def __call__(self, table: str) -> Composed:
        return SQL("{}.{}").format(Identifier(self.schema), Identifier(self.prefix() + table))

    def index(self, name: str) -> Identifier:
        return Identifier(self.prefix() + name)

    @property
    def tracking(self) -> str:
        return self.prefix() + "tracking"


class TableModel(ReadModel):
    """A read model of rows: subclasses declare their tables (:attr:`TABLES`) and indexes
    (:attr:`INDEXES`), statements whose ``{name}`` placeholders name this generation's
    tables and indexes, and apply a batch in :meth:`apply`, through the cursor of the
    batch's transaction.

    A rebuilt generation is filled without its indexes, which are built once it has caught
    up (before it serves): inserting into indexed tables costs more than indexing once.
    Batches commit without waiting for the WAL flush (``synchronous_commit = off``): a crash
    can lose the last batches, but with their tracking position, so they are applied again.
    """

    view: PostgresTrackingRecorder
    TABLES: tuple[str, ...] = ()
    INDEXES: tuple[str, ...] = ()

    def __init__(self, view: PostgresTrackingRecorder, tables: Tables, batch: int) -> None:
        super().__init__(view, tables.generation, batch)
        self.tables = tables

    @classmethod
    def open(cls, settings: Settings, generation: int, datastore: PostgresDatastore) -> Self:
        tables = Tables(settings.read_schema, cls.name, generation)
        view = PostgresTrackingRecorder(datastore, tracking_table_name=tables.tracking)
        return cls(view, tables, settings.projection_batch)

    @abstractmethod
    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        """Applies ``facts``, in log order, to this generation's tables."""

    def names(self, statement: str) -> dict[str, Composed | Identifier]:
        """This generation's name of every table and index ``statement`` names."""
        found: dict[str, Composed | Identifier] = {}
        for name in re.findall(r"{(\w+)}", statement):
            found[name] = self.tables.index(name) if name.endswith(INDEX) else self.tables(name)
        return found

    def create(self, indexed: bool = True) -> None:
        self.view.create_table()
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute(SQL(PROGRESS_TABLE).format(self.tables("progress")))
            for statement in self.TABLES:
                curs.execute(SQL(statement).format(**self.names(statement)))
        if indexed:
            self.create_indexes()

    def create_indexes(self) -> None:
        """Builds the indexes :func:`side_by_side`: each build ends in a merge and a write
        that PostgreSQL does on one core."""
        side_by_side(self.create_index, self.INDEXES)

    def create_index(self, statement: str) -> None:
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("SET LOCAL maintenance_work_mem = {}").format(BULK_MEMORY))
            curs.execute(SQL(statement).format(**self.names(statement)))

    def commit(self, facts: Sequence[Fact], last: Tracking, seconds: float) -> None:
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute("SET LOCAL synchronous_commit = off")
            check_generation(curs, self.tables, self.shape)
            self.apply(curs, facts)
            record_progress(curs, self.tables, facts, last, seconds)
            self.view._insert_tracking(curs, last)

    def progress(self) -> Progress | None:
        with self.view.datastore.transaction() as curs:
            return progress_of(curs, self.tables)

    def drop(self) -> None:
        with self.view.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = %s AND starts_with(tablename, %s)",
                (self.tables.schema, self.tables.prefix()),
            )
            for row in curs.fetchall():
                curs.execute(
                    SQL("DROP TABLE IF EXISTS {}.{}").format(
                        Identifier(self.tables.schema), Identifier(row["tablename"])
                    )
                )


T = TypeVar("T")


def side_by_side(work: Callable[[T], None], items: Iterable[T]) -> None:
    """``work`` done on each item, one thread at a time per core, each on a connection of
    its own: a bulk statement keeps one PostgreSQL process, so one core, busy."""
    with ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="bulk") as pool:
        list(pool.map(work, items))


def columns(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """Rows as columns, for ``unnest`` of arrays."""
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


def check_generation(curs: Cursor[DictRow], tables: Tables, shape: int) -> None:
    """Raises :class:`~loyalty.projections.registry.Superseded` unless ``tables`` serve reads
    or are being built, in ``shape``; holds the registry row so that a swap waits for this
    batch."""
    curs.execute(
        SQL(
            "SELECT generation, shape, building, building_shape FROM {}.projections"
            " WHERE name = %s FOR SHARE"
        ).format(Identifier(tables.schema)),
        (tables.projection,),
    )
    check_shaped(curs.fetchone(), tables.projection, tables.generation, shape)


def record_progress(
    curs: Cursor[DictRow], tables: Tables, facts: Sequence[Fact], last: Tracking, seconds: float
) -> None:
    """The batch's position, the time of its newest event and its rate, for status."""
    newest = max(f.body.timestamp for f in facts)
    record_position(curs, tables, last.notification_id, newest, len(facts), seconds)


def record_position(
    curs: Cursor[DictRow],
    tables: Tables,
    position: int,
    newest: datetime,
    events: int,
    seconds: float,
) -> None:
    """Where a generation stands after ``events`` more events applied in ``seconds``."""
    rate = events / seconds if seconds > 0 else 0.0
    curs.execute(
        SQL(
            "INSERT INTO {} (id, position, newest_event_at, applied_at, events, rate)"
            " VALUES (1, %s, %s, now(), %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " position = EXCLUDED.position, newest_event_at = EXCLUDED.newest_event_at,"
            " applied_at = now(), events = {}.events + EXCLUDED.events, rate = EXCLUDED.rate"
        ).format(tables("progress"), tables("progress")),
        (position, newest, events, rate),
    )


def progress_of(curs: Cursor[DictRow], tables: Tables) -> Progress | None:
    curs.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS present",
        (f"{tables.schema}.{tables.prefix()}progress",),
    )
    present = curs.fetchone()
    if not (present and present["present"]):
        return None
    curs.execute(
        SQL(
            "SELECT position, newest_event_at, applied_at, events, rate FROM {} WHERE id = 1"
        ).format(tables("progress"))
    )
    row = curs.fetchone()
    return msgspec.convert(row, Progress) if row else None


def serving_tables(curs: Cursor[DictRow], settings: Settings, name: str) -> Tables | None:
    """The tables of a read model's serving generation; ``None`` before it first ran;
    refused (:class:`~loyalty.domain.errors.ReadModelRebuilding`) if they have another
    shape than the code's."""
    curs.execute(
        SQL("SELECT generation, shape FROM {}.projections WHERE name = %s").format(
            Identifier(settings.read_schema)
        ),
        (name,),
    )
    row = curs.fetchone()
    if row is None:
        return None
    refuse_other_shape(name, row["shape"], code_shape(name))
    tables = Tables(settings.read_schema, name, row["generation"])
    return tables if progress_of(curs, tables) is not None else None
