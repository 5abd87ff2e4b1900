"""Where each read model stands against the log: position, lag in events and seconds,
rate; and waiting until a read model reflects a position (read-your-writes)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from eventsourcing.postgres import PostgresDatastore
from psycopg.sql import SQL, Identifier

from loyalty.projections.log import event_time, log_head
from loyalty.projections.registry import Registry
from loyalty.projections.runner import Progress, ReadModelClass, serving_model
from loyalty.settings import Settings


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    generation: int
    shape: int
    """What the serving generation stores (:attr:`~loyalty.projections.runner.ReadModel.shape`)."""
    code_shape: int
    """What this release stores and reads: a serving generation of another shape answers
    no reads (one of an older shape is being rebuilt)."""
    building: int | None
    position: int
    head: int
    """The position of the newest event this read model follows."""
    lag_events: int
    lag_seconds: float
    """How long ago the oldest event not yet applied was recorded."""
    rate: float
    """Events per second over the last batch applied."""
    applied_at: datetime | None


def status_of(
    settings: Settings, datastore: PostgresDatastore, model_class: ReadModelClass
) -> ProjectionStatus:
    """Where a read model's serving generation stands against the log."""
    registry = Registry(settings, datastore)
    serving = registry.serving(model_class)
    progress = progress_of(settings, datastore, model_class, serving.generation)
    position = progress.position if progress else 0
    lag_events, oldest = pending(datastore, settings, model_class.topics, position)
    now = datetime.now(UTC)
    return ProjectionStatus(
        name=model_class.name,
        generation=serving.generation,
        shape=serving.shape,
        code_shape=model_class.shape,
        building=registry.building(model_class.name),
        position=position,
        head=log_head(datastore, settings, model_class.topics),
        lag_events=lag_events,
        lag_seconds=round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        rate=round(progress.rate, 1) if progress else 0.0,
        applied_at=progress.applied_at if progress else None,
    )


def progress_of(
    settings: Settings, datastore: PostgresDatastore, model_class: ReadModelClass, generation: int
) -> Progress | None:
    model = model_class.open(settings, generation, datastore)
    try:
        return model.progress()
    finally:
        model.close()


def position_of(
    settings: Settings, datastore: PostgresDatastore, model_class: ReadModelClass
) -> int:
    """The position the serving generation has applied."""
    with serving_model(settings, datastore, model_class) as model:
        progress = model.progress()
    return progress.position if progress else 0


OF_TOPICS = "(cardinality(%s::text[]) = 0 OR topic = ANY(%s))"
"""Events of the topics a follower follows (all events for one that names none)."""


def topics_of(topics: Sequence[str]) -> tuple[list[str], list[str]]:
    """The parameters of :data:`OF_TOPICS`."""
    return list(topics), list(topics)


def pending(
    datastore: PostgresDatastore, settings: Settings, topics: Sequence[str], position: int
) -> tuple[int, datetime | None]:
    """How many events of ``topics`` (none: of any topic) lie past ``position``, and when
    the oldest of them was recorded."""
    with datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT count(*) AS lag, min(notification_id) AS first FROM {}"
                " WHERE notification_id > %s AND " + OF_TOPICS
            ).format(Identifier(settings.pg_schema, "ledger_events")),
            (position, *topics_of(topics)),
        )
        row = curs.fetchone()
    if row is None or not row["lag"]:
        return 0, None
    return int(row["lag"]), event_time(datastore, settings, row["first"])


def applied_through(
    datastore: PostgresDatastore, settings: Settings, model_class: ReadModelClass, position: int
) -> bool:
    """Whether the serving generation reflects the log up to ``position``: it applied that
    far, or no event it follows lies between where it stands and ``position``; refused
    (:class:`~loyalty.domain.errors.ReadModelRebuilding`) if it has another shape."""
    reached = position_of(settings, datastore, model_class)
    if reached >= position:
        return True
    with datastore.transaction() as curs:
        curs.execute(
            SQL(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE notification_id > %s"
                " AND notification_id <= %s AND " + OF_TOPICS + ") AS pending"
            ).format(Identifier(settings.pg_schema, "ledger_events")),
            (reached, position, *topics_of(model_class.topics)),
        )
        row = curs.fetchone()
    return not (row and row["pending"])


def wait_until(
    datastore: PostgresDatastore,
    settings: Settings,
    model_class: ReadModelClass,
    position: int,
    timeout: float,
) -> bool:
    """Whether the serving generation reflects the log up to ``position`` within
    ``timeout`` seconds (read-your-writes), polling every 20 ms."""
    deadline = time.monotonic() + timeout
    while not applied_through(datastore, settings, model_class, position):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True
