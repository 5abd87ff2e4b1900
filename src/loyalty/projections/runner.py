"""Projections follow the ledger's log in order, in batches, each position recorded with
the writes it covers; rebuilt into a fresh generation and swapped in when caught up.

The moving parts are eventsourcing's: :class:`~eventsourcing.projection.Projection`,
its runner (a subscription to the ledger, LISTEN/NOTIFY then pulls, in a thread) and a
:class:`~eventsourcing.postgres.PostgresTrackingRecorder` per generation. What this module
adds:

- **batches**: :class:`ReadModel` buffers the events the runner hands it and applies up
  to ``LOYALTY_PROJECTION_BATCH`` of them in one transaction, together with the tracking
  row of the last one; a flusher thread applies what is buffered every
  ``LOYALTY_PROJECTION_FLUSH_MS``, so an idle log is never held back. A crash loses only
  the buffer, which the subscription delivers again from the recorded position: no event
  is lost or applied twice.
- **generations**: each projection's tables are named ``<name>_<generation>_<table>`` in
  the read schema; the ``projections`` table says which generation serves reads. A
  rebuild fills the next generation from the start of the log while the current one keeps
  serving, and swaps them in one ``UPDATE`` once it has caught up; a runner still applying
  to the old generation finds, at its next batch, that it has been superseded and stops.
"""

from __future__ import annotations

import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.projection import BaseProjectionRunner, Projection
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.projections.feed import Fact, LedgerFeed, feed_env
from loyalty.settings import Settings


class Superseded(Exception):
    """A runner's generation no longer serves nor is being built: a rebuild replaced it."""


@dataclass(frozen=True)
class Tables:
    """The names of one generation of one projection's tables."""

    schema: str
    projection: str
    generation: int

    def prefix(self) -> str:
        return f"{self.projection}_{self.generation}_"

    def __call__(self, table: str) -> Composed:
        return SQL("{}.{}").format(Identifier(self.schema), Identifier(self.prefix() + table))

    @property
    def tracking(self) -> str:
        return self.prefix() + "tracking"


class ReadModel(Projection[PostgresTrackingRecorder]):
    """A projection whose rows live in PostgreSQL, applied a batch at a time.

    Subclasses name their ``topics``, create their tables in :meth:`create` and apply a
    batch of facts in :meth:`apply`, all through the cursor of the batch's transaction.
    """

    name: str
    topics: tuple[str, ...] = ()

    def __init__(self, view: PostgresTrackingRecorder, tables: Tables, batch: int) -> None:
        super().__init__(view)
        self.tables = tables
        self.batch = batch
        self.buffer: list[Fact] = []
        self.last: Tracking | None = None
        self.lock = threading.Lock()
        self.applied_at = time.monotonic()

    @abstractmethod
    def create(self, curs: Cursor[DictRow]) -> None:
        """Creates this generation's tables (``CREATE TABLE IF NOT EXISTS``)."""

    @abstractmethod
    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        """Applies ``facts``, in log order, to this generation's tables."""

    def drop(self, curs: Cursor[DictRow]) -> None:
        """Drops every table of this generation."""
        curs.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND starts_with(tablename, %s)",
            (self.tables.schema, self.tables.prefix()),
        )
        for row in curs.fetchall():
            curs.execute(
                SQL("DROP TABLE IF EXISTS {}.{}").format(
                    Identifier(self.tables.schema), Identifier(row["tablename"])
                )
            )

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        with self.lock:
            self.buffer.append(domain_event)
            self.last = tracking
            if len(self.buffer) >= self.batch:
                self.flush_locked()

    def flush(self) -> None:
        with self.lock:
            self.flush_locked()

    def flush_locked(self) -> None:
        if not self.buffer or self.last is None:
            return
        facts, last = self.buffer, self.last
        with self.view.datastore.transaction(commit=True) as curs:
            check_generation(curs, self.tables)
            self.apply(curs, facts)
            record_progress(curs, self.tables, facts, last, time.monotonic() - self.applied_at)
            self.view._insert_tracking(curs, last)
        self.buffer, self.last = [], None
        self.applied_at = time.monotonic()


def check_generation(curs: Cursor[DictRow], tables: Tables) -> None:
    """Raises :class:`Superseded` unless ``tables`` serve reads or are being built; holds
    the registry row so that a swap waits for this batch."""
    curs.execute(
        SQL("SELECT generation, building FROM {}.projections WHERE name = %s FOR SHARE").format(
            Identifier(tables.schema)
        ),
        (tables.projection,),
    )
    row = curs.fetchone()
    if row is None or tables.generation not in (row["generation"], row["building"]):
        raise Superseded(f"{tables.projection} generation {tables.generation} was replaced")


def record_progress(
    curs: Cursor[DictRow], tables: Tables, facts: Sequence[Fact], last: Tracking, seconds: float
) -> None:
    """The batch's position, the time of its newest event and its rate, for status."""
    newest = max(f.body.timestamp for f in facts)
    rate = len(facts) / seconds if seconds > 0 else 0.0
    curs.execute(
        SQL(
            "INSERT INTO {} (id, position, newest_event_at, applied_at, events, rate)"
            " VALUES (1, %s, %s, now(), %s, %s) ON CONFLICT (id) DO UPDATE SET"
            " position = EXCLUDED.position, newest_event_at = EXCLUDED.newest_event_at,"
            " applied_at = now(), events = {}.events + EXCLUDED.events, rate = EXCLUDED.rate"
        ).format(tables("progress"), tables("progress")),
        (last.notification_id, newest, len(facts), rate),
    )


PROGRESS_TABLE = (
    "CREATE TABLE IF NOT EXISTS {} (id integer PRIMARY KEY, position bigint NOT NULL,"
    " newest_event_at timestamptz NOT NULL, applied_at timestamptz NOT NULL,"
    " events bigint NOT NULL, rate double precision NOT NULL)"
)


def read_datastore(settings: Settings, pool_size: int = 2) -> PostgresDatastore:
    return PostgresDatastore(
        settings.pg_db,
        settings.pg_host,
        settings.pg_port,
        settings.pg_user,
        settings.pg_password,
        schema=settings.read_schema,
        pool_size=pool_size,
        lock_timeout=10,
    )


ReadModelClass = type[ReadModel]


class Registry:
    """The ``projections`` table: which generation of each read model serves reads."""

    def __init__(self, settings: Settings, datastore: PostgresDatastore) -> None:
        self.settings = settings
        self.datastore = datastore
        self.schema = settings.read_schema

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(Identifier(self.schema))

    def serving(self, name: str) -> int:
        """The generation serving reads, the first one created if there is none yet."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "INSERT INTO {}.projections (name, generation) VALUES (%s, 1)"
                    " ON CONFLICT (name) DO NOTHING"
                ),
                (name,),
            )
            curs.execute(
                self._sql("SELECT generation FROM {}.projections WHERE name = %s"), (name,)
            )
            row = curs.fetchone()
            assert row is not None
            generation: int = row["generation"]
            return generation

    def start_building(self, name: str) -> int:
        """Claims the next generation for a rebuild (a rebuild left unfinished is redone)."""
        self.serving(name)
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "UPDATE {}.projections SET building = generation + 1 WHERE name = %s"
                    " RETURNING building"
                ),
                (name,),
            )
            row = curs.fetchone()
            assert row is not None
            building: int = row["building"]
            return building

    def swap(self, name: str, generation: int) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._sql(
                    "UPDATE {}.projections SET generation = building, building = NULL,"
                    " swapped_at = now() WHERE name = %s AND building = %s"
                ),
                (name, generation),
            )


@dataclass
class Runner:
    """One generation of one read model, following the log in its own threads."""

    model: ReadModel
    runner: BaseProjectionRunner[LedgerFeed]
    stop_flushing: threading.Event
    flusher: threading.Thread

    @property
    def position(self) -> int:
        return self.model.view.max_tracking_id(LedgerFeed.name) or 0

    def error(self) -> BaseException | None:
        """What stopped the runner, if it stopped (a :class:`Superseded` included)."""
        if not self.runner.is_interrupted.is_set():
            return None
        try:
            self.runner.run_forever(timeout=0)
        except BaseException as e:
            return e
        return None

    def close(self) -> None:
        self.stop_flushing.set()
        self.flusher.join()
        with suppress(Superseded):
            self.model.flush()
        self.runner.__exit__(None, None, None)


def start(
    settings: Settings,
    model_class: ReadModelClass,
    generation: int,
    datastore: PostgresDatastore,
) -> Runner:
    """Creates the generation's tables if missing and starts following the log from the
    generation's recorded position."""
    tables = Tables(settings.read_schema, model_class.name, generation)
    view = PostgresTrackingRecorder(datastore, tracking_table_name=tables.tracking)
    view.create_table()
    model = model_class(view, tables, settings.projection_batch)
    with datastore.transaction(commit=True) as curs:
        curs.execute(SQL(PROGRESS_TABLE).format(tables("progress")))
        model.create(curs)
    runner: BaseProjectionRunner[LedgerFeed] = BaseProjectionRunner(
        projection=model,
        application_class=LedgerFeed,
        tracking_recorder=view,
        topics=model.topics,
        env=feed_env(settings),
    )
    runner.__enter__()
    stop = threading.Event()

    def flush_periodically() -> None:
        while not stop.wait(settings.projection_flush_ms / 1000):
            try:
                model.flush()
            except BaseException as error:  # the runner reports it, and stops
                runner._thread_error = error
                runner.stop()
                return

    flusher = threading.Thread(target=flush_periodically, name=f"flush-{model_class.name}")
    flusher.start()
    return Runner(model, runner, stop, flusher)


def log_head(
    datastore: PostgresDatastore, settings: Settings, topics: Sequence[str] | None = None
) -> int:
    """The notification id of the newest stored event (of ``topics``, if given)."""
    with datastore.transaction() as curs:
        if topics is None:
            curs.execute(
                SQL("SELECT max(notification_id) AS head FROM {}.ledger_events").format(
                    Identifier(settings.pg_schema)
                )
            )
        else:
            curs.execute(
                SQL(
                    "SELECT max(notification_id) AS head FROM {}.ledger_events"
                    " WHERE topic = ANY(%s)"
                ).format(Identifier(settings.pg_schema)),
                (list(topics),),
            )
        row = curs.fetchone()
        return int(row["head"] or 0) if row else 0


class ProjectionStatus(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    generation: int
    building: int | None
    position: int
    head: int
    lag_events: int
    lag_seconds: float
    rate: float
    """Events per second over the last batch applied."""
    applied_at: datetime | None


def status_of(
    settings: Settings, datastore: PostgresDatastore, model_class: ReadModelClass
) -> ProjectionStatus:
    """Where a read model's serving generation stands against the log."""
    registry = Registry(settings, datastore)
    generation = registry.serving(model_class.name)
    tables = Tables(settings.read_schema, model_class.name, generation)
    head = log_head(datastore, settings, model_class.topics)
    with datastore.transaction() as curs:
        curs.execute(
            SQL("SELECT building FROM {}.projections WHERE name = %s").format(
                Identifier(settings.read_schema)
            ),
            (model_class.name,),
        )
        registered = curs.fetchone()
        curs.execute(
            "SELECT to_regclass(%s) IS NOT NULL AS present",
            (f"{settings.read_schema}.{tables.prefix()}progress",),
        )
        present = curs.fetchone()
        progress = None
        if present and present["present"]:
            curs.execute(SQL("SELECT * FROM {} WHERE id = 1").format(tables("progress")))
            progress = curs.fetchone()
        position = int(progress["position"]) if progress else 0
        lag_events, oldest = pending(curs, settings, model_class.topics, position)
    now = datetime.now(UTC)
    return ProjectionStatus(
        name=model_class.name,
        generation=generation,
        building=registered["building"] if registered else None,
        position=position,
        head=head,
        lag_events=lag_events,
        lag_seconds=round((now - oldest).total_seconds(), 3) if oldest else 0.0,
        rate=round(float(progress["rate"]), 1) if progress else 0.0,
        applied_at=progress["applied_at"] if progress else None,
    )


def pending(
    curs: Cursor[DictRow], settings: Settings, topics: Sequence[str], position: int
) -> tuple[int, datetime | None]:
    """How many events of ``topics`` lie past ``position``, and when the oldest of them was
    recorded."""
    events = Identifier(settings.pg_schema, "ledger_events")
    curs.execute(
        SQL(
            "SELECT count(*) AS lag, min(notification_id) AS first FROM {}"
            " WHERE notification_id > %s AND topic = ANY(%s)"
        ).format(events),
        (position, list(topics)),
    )
    row = curs.fetchone()
    if row is None or not row["lag"]:
        return 0, None
    curs.execute(
        SQL(
            "SELECT (convert_from(state, 'UTF8')::jsonb ->> 'timestamp')::timestamptz AS at"
            " FROM {} WHERE notification_id = %s"
        ).format(events),
        (row["first"],),
    )
    first = curs.fetchone()
    return int(row["lag"]), first["at"] if first else None


def serving_tables(curs: Cursor[DictRow], settings: Settings, name: str) -> Tables | None:
    """The tables of a read model's serving generation; ``None`` before it first ran."""
    curs.execute(
        SQL("SELECT generation FROM {}.projections WHERE name = %s").format(
            Identifier(settings.read_schema)
        ),
        (name,),
    )
    row = curs.fetchone()
    if row is None:
        return None
    tables = Tables(settings.read_schema, name, row["generation"])
    curs.execute(
        "SELECT to_regclass(%s) IS NOT NULL AS present",
        (f"{settings.read_schema}.{tables.prefix()}progress",),
    )
    present = curs.fetchone()
    return tables if present and present["present"] else None


def applied_through(
    curs: Cursor[DictRow], settings: Settings, model_class: ReadModelClass, position: int
) -> bool:
    """Whether the serving generation reflects the log up to ``position``: it applied that
    far, or no event it follows lies between where it stands and ``position``."""
    tables = serving_tables(curs, settings, model_class.name)
    reached = 0
    if tables is not None:
        curs.execute(SQL("SELECT position FROM {} WHERE id = 1").format(tables("progress")))
        row = curs.fetchone()
        reached = int(row["position"]) if row else 0
    if reached >= position:
        return True
    curs.execute(
        SQL(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE notification_id > %s"
            " AND notification_id <= %s AND topic = ANY(%s)) AS pending"
        ).format(Identifier(settings.pg_schema, "ledger_events")),
        (reached, position, list(model_class.topics)),
    )
    pending = curs.fetchone()
    return not (pending and pending["pending"])


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
    while True:
        with datastore.transaction() as curs:
            if applied_through(curs, settings, model_class, position):
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


@contextmanager
def running(
    settings: Settings,
    model_classes: Sequence[ReadModelClass],
    datastore: PostgresDatastore,
) -> Iterator[Callable[[], list[Runner]]]:
    """Runs every read model's serving generation; a runner superseded by a swap is
    replaced by one on the new generation. Yields a function that checks on the runners
    (call it regularly) and returns them."""
    registry = Registry(settings, datastore)
    runners = {
        m.name: start(settings, m, registry.serving(m.name), datastore) for m in model_classes
    }

    def check() -> list[Runner]:
        for model_class in model_classes:
            current = runners[model_class.name]
            error = current.error()
            if error is None:
                continue
            current.close()
            if not isinstance(error, Superseded):
                raise error
            generation = registry.serving(model_class.name)
            runners[model_class.name] = start(settings, model_class, generation, datastore)
        return list(runners.values())

    try:
        yield check
    finally:
        for runner in runners.values():
            runner.close()


def rebuild(
    settings: Settings,
    model_class: ReadModelClass,
    datastore: PostgresDatastore,
    progress: Callable[[int, int], None] = lambda position, head: None,
    poll_s: float = 0.2,
) -> int:
    """Builds the next generation of a read model from the start of the log while the
    serving one keeps answering, swaps it in once it has caught up, and drops the old one.
    Returns the new generation."""
    registry = Registry(settings, datastore)
    old = registry.serving(model_class.name)
    new = registry.start_building(model_class.name)
    discard(settings, model_class, new, datastore)
    runner = start(settings, model_class, new, datastore)
    try:
        while True:
            error = runner.error()
            if error is not None:
                raise error
            head = log_head(datastore, settings, model_class.topics)
            position = runner.position
            progress(position, head)
            if position >= head:
                registry.swap(model_class.name, new)
                break
            time.sleep(poll_s)
    finally:
        runner.close()
    discard(settings, model_class, old, datastore)
    return new


def discard(
    settings: Settings, model_class: ReadModelClass, generation: int, datastore: PostgresDatastore
) -> None:
    """Drops one generation's tables (and its tracking table)."""
    tables = Tables(settings.read_schema, model_class.name, generation)
    view = PostgresTrackingRecorder(datastore, tracking_table_name=tables.tracking)
    model = model_class(view, tables, settings.projection_batch)
    with datastore.transaction(commit=True) as curs:
        model.drop(curs)
