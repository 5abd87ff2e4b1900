"""Projections follow the ledger's log in order, in batches, each position recorded with
the writes it covers; rebuilt into a fresh generation and swapped in when caught up.

The moving parts are eventsourcing's: :class:`~eventsourcing.projection.Projection`,
its runner (a subscription to the ledger, LISTEN/NOTIFY then pulls, in a thread) and a
tracking recorder per generation. What this module adds:

- **batches**: :class:`ReadModel` buffers the events the runner hands it and commits up to
  ``LOYALTY_PROJECTION_BATCH`` of them at once, together with the position of the last
  one; a flusher thread commits what is buffered every ``LOYALTY_PROJECTION_FLUSH_MS``,
  so an idle log is never held back. Batches are committed in order by a thread of their
  own, so that the next one is decoded while the database writes the last. A crash loses
  only what was not committed, which the subscription delivers again from the recorded
  position: no event is lost or applied twice.
- **generations**: the ``projections`` table of the read schema says which generation of
  each read model serves reads. A rebuild fills the next generation from the start of the
  log while the current one keeps serving, and swaps them in one ``UPDATE`` once it has
  caught up; a runner still applying to the old generation finds, at its next batch, that
  it has been superseded and stops, and :func:`running` starts one on the new generation.
- **shapes**: the registry also records the shape of each generation (what it stores,
  :attr:`ReadModel.shape`); a generation of another shape than the code's is neither read
  nor extended (:mod:`loyalty.projections.shapes`).

Read models keep their rows in PostgreSQL tables (:mod:`loyalty.projections.tables`) or
documents in PostgreSQL or MongoDB (:mod:`loyalty.projections.documents`).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from queue import Full, Queue
from typing import Any, Self, TypeVar

import msgspec
import psycopg
from eventsourcing.persistence import Tracking, TrackingRecorder
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.projection import BaseProjectionRunner, Projection

from loyalty.projections.feed import Fact, FactMapper, LedgerFeed, feed_env
from loyalty.projections.log import log_head
from loyalty.projections.registry import Registry, Superseded
from loyalty.projections.shapes import Reshaped, Reshaping, refuse_other_shape
from loyalty.settings import Settings

log = logging.getLogger(__name__)


class Progress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a generation stands: its last event's position and time, its rate."""

    position: int
    newest_event_at: datetime
    applied_at: datetime
    events: int
    rate: float
    """Events per second over the last batch applied."""


class ReadModel(Projection[Any]):
    """A projection applied a batch at a time, in one generation of its storage.

    Subclasses name their ``topics``, open their storage (:meth:`open`), create it, commit
    a batch with its position (:meth:`commit`), report :meth:`progress` and drop it.
    """

    name: str
    topics: tuple[str, ...] = ()
    """The topics it follows (none: every event)."""
    mapper: type[FactMapper] = FactMapper
    """How it reads stored events: decoded, movements as stored
    (:class:`~loyalty.projections.feed.RawMovementsMapper`), or all as stored."""
    essential: bool = True
    """Whether its failure stops ``loyalty projections run`` (a read model's does; the
    publication to NATS is started again while the read models go on)."""
    own_process: bool = False
    """Whether ``loyalty projections run`` follows it in a child process of its own (see
    :mod:`loyalty.projections.processes`)."""
    shape: int = 1
    """The version of what a generation stores: bump it whenever that changes (a table, a
    column, a document's fields, or what any of them holds), so that a generation built by
    an older release is rebuilt, not read or extended as if it had the new shape."""

    def __init__(self, view: TrackingRecorder, generation: int, batch: int) -> None:
        super().__init__(view)
        self.generation = generation
        self.batch = batch
        self.buffer: list[Fact] = []
        self.last: Tracking | None = None
        self.lock = threading.Lock()
        self.applied_at = time.monotonic()
        self.batches: Queue[tuple[list[Fact], Tracking, float] | None] = Queue(maxsize=1)
        self.committer: threading.Thread | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.failure: BaseException | None = None

    @classmethod
    @abstractmethod
    def open(cls, settings: Settings, generation: int, datastore: PostgresDatastore) -> Self:
        """This read model's generation ``generation``, on its storage."""

    @abstractmethod
    def create(self, indexed: bool = True) -> None:
        """Creates this generation's storage if it is missing (without its secondary
        indexes when not ``indexed``: a rebuild builds them once caught up)."""

    def create_indexes(self) -> None:
        """Builds the secondary indexes a generation created without them needs to serve."""

    def fill(self, settings: Settings, head: int) -> int:
        """Fills this fresh generation with the log up to ``head`` at once, faster than the
        runner would event by event, recording ``head`` as its position; returns the events
        applied (0: this read model has no such path, the runner applies every event)."""
        return 0

    @abstractmethod
    def commit(self, facts: Sequence[Fact], last: Tracking, seconds: float) -> None:
        """Applies ``facts`` (in log order, taking ``seconds`` since the batch before) and
        records ``last`` with them, atomically; raises :class:`Superseded` first if this
        generation no longer serves nor is being built."""

    @abstractmethod
    def progress(self) -> Progress | None:
        """Where this generation stands; ``None`` before its first batch."""

    @abstractmethod
    def drop(self) -> None:
        """Discards this generation's storage."""

    def close(self) -> None:
        """Lets go of connections the storage holds."""

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
        if self.failure is not None:
            raise self.failure
        if not self.buffer or self.last is None:
            return
        batch = (self.buffer, self.last, time.monotonic() - self.applied_at)
        self.buffer, self.last = [], None
        self.applied_at = time.monotonic()
        if self.committer is None:
            self.commit(*batch)
        else:
            self.hand_over(batch)

    def start_committing(self, on_failure: Callable[[BaseException], None]) -> None:
        """Commits batches in a thread of their own, in order, so that the next batch is
        decoded while the database writes the last one (one batch waits at most)."""
        self.on_failure = on_failure

        def commit_in_order() -> None:
            while (batch := self.batches.get()) is not None:
                try:
                    self.commit(*batch)
                except BaseException as error:
                    self.failure = error
                    on_failure(error)
                    return

        self.committer = threading.Thread(target=commit_in_order, name=f"commit-{self.name}")
        self.committer.start()

    def hand_over(self, batch: tuple[list[Fact], Tracking, float] | None) -> None:
        while True:
            if self.failure is not None:
                raise self.failure
            try:
                self.batches.put(batch, timeout=0.1)
                return
            except Full:
                continue

    @contextmanager
    def held(self) -> Iterator[None]:
        """Holds batches back until the block ends, once those handed over are committed:
        the runner waits to hand the next one over. Building indexes locks the tables
        against writes, and a batch waiting for them longer than the lock timeout would
        stop the runner."""
        with self.lock:
            on_failure = self.on_failure
            self.stop_committing()
            try:
                yield
            finally:
                if on_failure is not None:
                    self.start_committing(on_failure)

    def stop_committing(self) -> None:
        """Commits what was handed over, then stops the committer."""
        if self.committer is None:
            return
        with suppress(BaseException):
            self.hand_over(None)
        self.committer.join()
        self.committer = None


ReadModelClass = type[ReadModel]
M = TypeVar("M", bound=ReadModel)


@contextmanager
def serving_model(
    settings: Settings, datastore: PostgresDatastore, model_class: type[M]
) -> Iterator[M]:
    """The generation of ``model_class`` that serves reads, open for as long as needed;
    refused (:class:`~loyalty.domain.errors.ReadModelRebuilding`) if it has another shape."""
    serving = Registry(settings, datastore).serving(model_class)
    refuse_other_shape(model_class.name, serving.shape, model_class.shape)
    model = model_class.open(settings, serving.generation, datastore)
    try:
        yield model
    finally:
        model.close()


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


@dataclass
class Runner:
    """One generation of one read model, following the log in its own threads."""

    model: ReadModel
    runner: BaseProjectionRunner[LedgerFeed]
    stop_flushing: threading.Event
    flusher: threading.Thread

    @property
    def position(self) -> int:
        found = self.model.progress()
        return found.position if found else 0

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
        self.model.stop_committing()
        with suppress(Superseded):  # the flusher may report it again after error() did
            self.runner.__exit__(None, None, None)
        self.model.close()


def start(
    settings: Settings,
    model_class: ReadModelClass,
    generation: int,
    datastore: PostgresDatastore,
    indexed: bool = True,
) -> Runner:
    """Creates the generation's storage if missing and starts following the log from the
    generation's recorded position."""
    model = model_class.open(settings, generation, datastore)
    model.create(indexed)
    runner: BaseProjectionRunner[LedgerFeed] = BaseProjectionRunner(
        projection=model,
        application_class=LedgerFeed,
        tracking_recorder=model.view,
        topics=model.topics,
        env=feed_env(settings, model_class.mapper),
    )
    runner.__enter__()

    def stop_runner(error: BaseException) -> None:
        runner._thread_error = error
        runner.stop()

    model.start_committing(stop_runner)
    stop = threading.Event()

    def flush_periodically() -> None:
        while not stop.wait(settings.projection_flush_ms / 1000):
            try:
                model.flush()
            except BaseException as error:  # the runner reports it, and stops
                stop_runner(error)
                return

    flusher = threading.Thread(target=flush_periodically, name=f"flush-{model_class.name}")
    flusher.start()
    return Runner(model, runner, stop, flusher)


@contextmanager
def running(
    settings: Settings,
    model_classes: Sequence[ReadModelClass],
    datastore: PostgresDatastore,
) -> Iterator[Callable[[], list[Runner]]]:
    """Runs every read model's serving generation (see :func:`follow` for one of another
    shape); a runner superseded by a swap is replaced by one on the new generation. Yields
    a function that checks on the runners (call it regularly) and returns those following
    the log."""
    followers: dict[str, Runner | Reshaping | None] = {}

    def check() -> list[Runner]:
        for model_class in model_classes:
            current = followers[model_class.name]
            if current is None or (error := current.error()) is None:
                continue
            with suppress(Exception):
                current.close()
            if not isinstance(error, Superseded | Reshaped):
                if model_class.essential:
                    raise error
                log.error("%s stopped, starting it again: %r", model_class.name, error)
            followers[model_class.name] = follow(settings, model_class, datastore)
        return [f for f in followers.values() if isinstance(f, Runner)]

    try:
        for model_class in model_classes:
            followers[model_class.name] = follow(settings, model_class, datastore)
        yield check
    finally:
        for follower in followers.values():
            if follower is not None:
                with suppress(Exception):
                    follower.close()


def follow(
    settings: Settings, model_class: ReadModelClass, datastore: PostgresDatastore
) -> Runner | Reshaping | None:
    """A runner on the serving generation if it has the code's shape. One of an older shape
    is rebuilt in a thread of its own, so that the other read models keep being followed
    (reads refuse it meanwhile); one of a newer shape, built by a newer release, is left
    alone."""
    serving = Registry(settings, datastore).serving(model_class)
    if serving.shape == model_class.shape:
        return start(settings, model_class, serving.generation, datastore)
    if serving.shape > model_class.shape:
        log.warning(
            "%s: generation %d has shape %d, newer than this release's %d: not followed",
            model_class.name,
            serving.generation,
            serving.shape,
            model_class.shape,
        )
        return None
    log.warning(
        "%s: generation %d has shape %d, older than this release's %d: rebuilding it",
        model_class.name,
        serving.generation,
        serving.shape,
        model_class.shape,
    )
    return Reshaping(
        model_class.name, lambda stop: rebuild(settings, model_class, datastore, stop=stop)
    )


def rebuild(
    settings: Settings,
    model_class: ReadModelClass,
    datastore: PostgresDatastore,
    progress: Callable[[int, int], None] = lambda position, head: None,
    poll_s: float = 0.2,
    stop: threading.Event | None = None,
) -> int | None:
    """Builds the next generation of a read model, in the code's shape, from the start of
    the log while the serving one keeps answering, swaps it in once it has caught up, and
    drops the old one. Returns the new generation; ``None`` if ``stop`` was set first."""
    pause = stop or threading.Event()
    with rebuilding_alone(settings, model_class.name, pause) as alone:
        if not alone:
            return None
        return rebuilt(settings, model_class, datastore, progress, poll_s, pause)


@contextmanager
def rebuilding_alone(settings: Settings, name: str, stop: threading.Event) -> Iterator[bool]:
    """Holds the read model's rebuild lock (a PostgreSQL advisory lock of the session)
    until the rebuild ends, waiting for another rebuild of it to end first (two at once
    would fill one generation twice); ``False`` if ``stop`` was set while waiting."""
    key = f"{settings.read_schema}:rebuild:{name}"
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        while True:
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (key,)).fetchone()
            if row and row[0]:
                break
            log.warning("%s: waiting for another rebuild of it to end", name)
            if stop.wait(1.0):
                yield False
                return
        yield True


def rebuilt(
    settings: Settings,
    model_class: ReadModelClass,
    datastore: PostgresDatastore,
    progress: Callable[[int, int], None],
    poll_s: float,
    pause: threading.Event,
) -> int | None:
    """:func:`rebuild`, its lock held."""
    registry = Registry(settings, datastore)
    old = registry.serving(model_class).generation
    new = registry.start_building(model_class)
    discard(settings, model_class, new, datastore)
    fill(settings, model_class, new, datastore)
    runner = start(settings, model_class, new, datastore, indexed=False)
    indexed = False
    try:
        while True:
            error = runner.error()
            if error is not None:
                raise error
            head = log_head(datastore, settings, model_class.topics)
            position = runner.position
            progress(position, head)
            if position >= head and indexed:
                registry.swap(model_class.name, new)
                break
            if position >= head:
                started = time.monotonic()
                with runner.model.held():
                    runner.model.create_indexes()
                log.info("%s: indexed in %.1f s", model_class.name, time.monotonic() - started)
                indexed = True
                continue
            if pause.wait(poll_s):
                return None
    finally:
        runner.close()
    discard(settings, model_class, old, datastore)
    return new


def fill(
    settings: Settings, model_class: ReadModelClass, generation: int, datastore: PostgresDatastore
) -> None:
    """Fills a fresh generation up to the log's head at once, if its read model can."""
    model = model_class.open(settings, generation, datastore)
    try:
        model.create(indexed=False)
        head = log_head(datastore, settings, model_class.topics)
        if head:
            model.fill(settings, head)
    finally:
        model.close()


def discard(
    settings: Settings, model_class: ReadModelClass, generation: int, datastore: PostgresDatastore
) -> None:
    """Drops one generation's storage."""
    model = model_class.open(settings, generation, datastore)
    try:
        model.drop()
    finally:
        model.close()
