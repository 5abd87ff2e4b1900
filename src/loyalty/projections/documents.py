"""Read models of whole documents, in PostgreSQL or MongoDB (``LOYALTY_DOCUMENT_STORE``).

Each generation is a document view of its own: the schema (PostgreSQL) or database
(MongoDB) ``<read schema>_<name>_<generation>``. A batch is committed by one
:meth:`~loyalty.adapters.documents.DocumentView.write`: the changed documents, a progress
document and the tracking position in one transaction of the store. Whether the generation
still serves (or is being built), in the code's shape, is checked against the registry in
PostgreSQL just before; a batch that slips past a swap lands in a generation about to be
dropped.
"""

from __future__ import annotations

import logging
import time
from abc import abstractmethod
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Self

import msgspec
from eventsourcing.persistence import ProgrammingError, Tracking
from eventsourcing.postgres import PostgresDatastore

from loyalty.adapters.documents import DocumentChange, DocumentView, document_view
from loyalty.commands.collector import collector_paused
from loyalty.projections.feed import Fact, LedgerFeed
from loyalty.projections.log import event_time
from loyalty.projections.registry import Registry
from loyalty.projections.runner import Progress, ReadModel
from loyalty.settings import Settings

log = logging.getLogger(__name__)

PROGRESS = ("progress", "read_model")
"""The collection and key of a generation's progress document."""


def view_name(settings: Settings, name: str, generation: int) -> str:
    return f"{settings.read_schema}_{name}_{generation}"


class DocumentModel(ReadModel):
    """A read model of documents: subclasses turn a batch of facts into document changes
    (:meth:`changes`), reading the documents they change through ``self.view``."""

    view: DocumentView
    finds: bool = False
    """Whether reads filter its documents (``find``, ``count_by``) rather than get them by
    key: only then does a PostgreSQL view keep an index of every body, which costs each
    write an entry per field and a rebuild minutes of indexing."""

    def __init__(self, view: DocumentView, generation: int, batch: int, registry: Registry) -> None:
        super().__init__(view, generation, batch)
        self.registry = registry

    @classmethod
    def open(cls, settings: Settings, generation: int, datastore: PostgresDatastore) -> Self:
        name = view_name(settings, cls.name, generation)
        postgres = (
            PostgresDatastore(
                settings.pg_db,
                settings.pg_host,
                settings.pg_port,
                settings.pg_user,
                settings.pg_password,
                schema=name,
                pool_size=2,
            )
            if settings.document_store == "postgres"
            else None
        )
        view = document_view(
            settings.document_store, postgres=postgres, mongo_url=settings.mongo_url, name=name
        )
        return cls(view, generation, settings.projection_batch, Registry(settings, datastore))

    @abstractmethod
    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        """The documents ``facts`` change, in log order."""

    def create(self, indexed: bool = True) -> None:
        self.view.create_table(indexed and self.finds)

    def create_indexes(self) -> None:
        if self.finds:
            self.view.create_indexes()

    def commit(self, facts: Sequence[Fact], last: Tracking, seconds: float) -> None:
        self.registry.check(self.name, self.generation, self.shape)
        before = self.progress()
        progress = Progress(
            position=last.notification_id,
            newest_event_at=max(f.body.timestamp for f in facts),
            applied_at=datetime.now(UTC),
            events=(before.events if before else 0) + len(facts),
            rate=len(facts) / seconds if seconds > 0 else 0.0,
        )
        collection, key = PROGRESS
        body = msgspec.to_builtins(progress)
        self.view.write(
            [*self.changes(facts), DocumentChange(collection=collection, key=key, body=body)],
            last,
        )

    def bulk_changes(
        self, settings: Settings, head: int
    ) -> tuple[Iterable[DocumentChange], int] | None:
        """Every document of the log up to ``head`` (each once) and the events they sum,
        computed at once (``None``: this read model has no such path)."""
        return None

    def fill(self, settings: Settings, head: int) -> int:
        started = time.monotonic()
        with collector_paused():
            bulk = self.bulk_changes(settings, head)
            if bulk is None:
                return 0
            changes, events = bulk
            loaded = self.view.load(changes)
        seconds = time.monotonic() - started
        log.info("%s: %d documents of %d events in %.1f s", self.name, loaded, events, seconds)
        progress = Progress(
            position=head,
            newest_event_at=event_time(self.registry.datastore, settings, head),
            applied_at=datetime.now(UTC),
            events=events,
            rate=events / seconds if seconds > 0 else 0.0,
        )
        collection, key = PROGRESS
        body = msgspec.to_builtins(progress)
        self.view.write(
            [DocumentChange(collection=collection, key=key, body=body)],
            Tracking(LedgerFeed.name, head),
        )
        return events

    def progress(self) -> Progress | None:
        try:
            found = self.view.get(*PROGRESS)
        except ProgrammingError:  # a generation never started: no storage yet
            return None
        if found is None:
            return None
        return msgspec.convert(
            {k: v for k, v in found.items() if k != "key"}, Progress, strict=False
        )

    def drop(self) -> None:
        # A generation never started has nothing to clear yet; creating its table must not
        # index it either, as a rebuild clears the generation it then fills.
        self.view.create_table(indexed=False)
        self.view.clear()

    def close(self) -> None:
        self.view.close()
