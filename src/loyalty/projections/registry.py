"""The registry of the read side: the ``projections`` table of the read schema says which
generation of each read model serves reads, which one is being built, and the shape of
each (what it stores, :attr:`~loyalty.projections.runner.ReadModel.shape`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec
from eventsourcing.postgres import PostgresDatastore
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.settings import Settings

if TYPE_CHECKING:
    from loyalty.projections.runner import ReadModelClass


class Superseded(Exception):
    """A runner's generation no longer serves nor is being built (a rebuild replaced it),
    or is recorded in another shape than the runner's."""


class Serving(msgspec.Struct, frozen=True, kw_only=True):
    """The generation of a read model that serves reads, and its shape."""

    generation: int
    shape: int


class Registry:
    """The ``projections`` table: which generation of each read model serves reads, which
    one is being built, and the shape of each."""

    def __init__(self, settings: Settings, datastore: PostgresDatastore) -> None:
        self.datastore = datastore
        self.schema = settings.read_schema

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(Identifier(self.schema))

    def serving(self, model_class: ReadModelClass) -> Serving:
        """The generation serving reads; if there is none yet, the first one, in the code's
        shape."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "INSERT INTO {}.projections (name, generation, shape) VALUES (%s, 1, %s)"
                    " ON CONFLICT (name) DO NOTHING"
                ),
                (model_class.name, model_class.shape),
            )
            curs.execute(
                self._sql("SELECT generation, shape FROM {}.projections WHERE name = %s"),
                (model_class.name,),
            )
            row = curs.fetchone()
            assert row is not None
            return Serving(generation=row["generation"], shape=row["shape"])

    def building(self, name: str) -> int | None:
        with self.datastore.transaction() as curs:
            curs.execute(self._sql("SELECT building FROM {}.projections WHERE name = %s"), (name,))
            row = curs.fetchone()
            return row["building"] if row else None

    def check(self, name: str, generation: int, shape: int) -> None:
        """Raises :class:`Superseded` unless ``generation`` serves or is being built, in
        ``shape``."""
        with self.datastore.transaction() as curs:
            curs.execute(
                self._sql(
                    "SELECT generation, shape, building, building_shape FROM {}.projections"
                    " WHERE name = %s"
                ),
                (name,),
            )
            check_shaped(curs.fetchone(), name, generation, shape)

    def start_building(self, model_class: ReadModelClass) -> int:
        """Claims the next generation for a rebuild in the code's shape (a rebuild left
        unfinished is redone)."""
        self.serving(model_class)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "UPDATE {}.projections SET building = generation + 1, building_shape = %s"
                    " WHERE name = %s RETURNING building"
                ),
                (model_class.shape, model_class.name),
            )
            row = curs.fetchone()
            assert row is not None
            building: int = row["building"]
            return building

    def swap(self, name: str, generation: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "UPDATE {}.projections SET generation = building, shape = building_shape,"
                    " building = NULL, building_shape = NULL, swapped_at = now()"
                    " WHERE name = %s AND building = %s"
                ),
                (name, generation),
            )


def check_shaped(row: DictRow | None, name: str, generation: int, shape: int) -> None:
    """Raises :class:`Superseded` unless the registry ``row`` of the read model ``name``
    says that ``generation`` serves or is being built, in ``shape``."""
    if row is None or generation not in (row["generation"], row["building"]):
        raise Superseded(f"{name} generation {generation} was replaced")
    recorded = row["shape"] if generation == row["generation"] else row["building_shape"]
    if recorded != shape:
        raise Superseded(f"{name} generation {generation} has shape {recorded}, not {shape}")
