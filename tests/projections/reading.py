"""Helpers of the read side's tests: run read models until they have caught up, read rows
of their serving generation."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from loyalty.projections.runner import ReadModel, read_datastore, running
from loyalty.projections.status import wait_until
from loyalty.projections.tables import Tables
from loyalty.settings import Settings


def head(settings: Settings) -> int:
    """The notification id of the newest event of the log."""
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            SQL("SELECT max(notification_id) FROM {}.ledger_events").format(
                Identifier(settings.pg_schema)
            )
        ).fetchone()
    return int(row[0]) if row and row[0] else 0


def serving(settings: Settings, name: str) -> Tables:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            SQL("SELECT generation FROM {}.projections WHERE name = %s").format(
                Identifier(settings.read_schema)
            ),
            (name,),
        ).fetchone()
    assert row is not None
    return Tables(settings.read_schema, name, row[0])


def record_shape(settings: Settings, name: str, shape: int) -> None:
    """Records the serving generation of ``name`` as stored in ``shape`` (as a release of
    another shape would have built it)."""
    with psycopg.connect(settings.conninfo()) as conn:
        conn.execute(
            SQL("UPDATE {}.projections SET shape = %s WHERE name = %s").format(
                Identifier(settings.read_schema)
            ),
            (shape, name),
        )


def rows(settings: Settings, name: str, table: str, order: str) -> list[dict[str, Any]]:
    """Every row of a table of the read model ``name``'s serving generation."""
    tables = serving(settings, name)
    with psycopg.connect(settings.conninfo(), row_factory=dict_row) as conn:
        return conn.execute(
            SQL("SELECT * FROM {} ORDER BY " + order).format(tables(table))
        ).fetchall()


@contextmanager
def caught_up(settings: Settings, models: Sequence[type[ReadModel]]) -> Iterator[None]:
    """The read models running, caught up with the whole log."""
    datastore = read_datastore(settings)
    try:
        with running(settings, models, datastore):
            for model in models:
                assert wait_until(datastore, settings, model, head(settings), timeout=30)
            yield
    finally:
        datastore.close()
