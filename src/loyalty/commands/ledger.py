"""The Ledger: the one event-sourced application every write goes through.

One application, one ``ledger_events`` table: a single global order for projections,
audit replays and hash chains. :func:`ledger_env` maps our settings onto eventsourcing's
environment: PostgreSQL recorder on psycopg 3, the msgspec mapper, our recorder, and no
``CREATE TABLE`` (migrations own the schema).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import StoredEvent
from psycopg.sql import SQL, Identifier

from loyalty.adapters.eventstore import LedgerRecorder, MovementKey, MsgspecMapper
from loyalty.adapters.keystore import KeyStore, PersonalCipher, master_keys
from loyalty.settings import Settings

Statement = tuple[Any, Sequence[Any] | dict[str, Any]]


def ledger_env(settings: Settings) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_HOST": settings.pg_host,
        "POSTGRES_PORT": str(settings.pg_port),
        "POSTGRES_DBNAME": settings.pg_db,
        "POSTGRES_USER": settings.pg_user,
        "POSTGRES_PASSWORD": settings.pg_password,
        "POSTGRES_SCHEMA": settings.pg_schema,
        "POSTGRES_POOL_SIZE": str(settings.pg_pool_size),
        "POSTGRES_MAX_OVERFLOW": "4",
        "POSTGRES_LOCK_TIMEOUT": "10",
        "CREATE_TABLE": "n",
        "MAPPER_TOPIC": "loyalty.adapters.eventstore:MsgspecMapper",
        "APPLICATION_RECORDER_TOPIC": "loyalty.adapters.eventstore:LedgerRecorder",
    }


class Ledger(Application[UUID]):
    name = "Ledger"

    def __init__(self, settings: Settings) -> None:
        super().__init__(env=ledger_env(settings))
        self.settings = settings
        self.keys = KeyStore(settings, *master_keys(settings))
        assert isinstance(self.mapper, MsgspecMapper)
        self.mapper.personal = PersonalCipher(self.keys)
        assert isinstance(self.recorder, LedgerRecorder)
        self.ledger_recorder: LedgerRecorder = self.recorder
        schema = Identifier(settings.pg_schema)
        self._select_newer = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM {}.ledger_events e"
            " JOIN unnest(%b::uuid[], %b::bigint[]) AS k(id, version)"
            " ON e.originator_id = k.id AND e.originator_version > k.version"
            " ORDER BY e.originator_id, e.originator_version"
        ).format(schema)

    def close(self) -> None:
        self.keys.close()
        super().close()

    def record_movements(
        self, events: Sequence[Any], movement_keys: Sequence[MovementKey]
    ) -> list[int]:
        """Stores the events of a group of movements with their idempotency records.

        The lean twin of :meth:`Application.save` for the hot path (no snapshots, no
        repository cache, no program streams): one statement, one round trip. The events
        were collected from their aggregates by the caller. Returns their notification ids.
        """
        stored = [self.mapper.to_stored_event(event) for event in events]
        return self.ledger_recorder.append_movements(stored, movement_keys)

    def query(self, statement: Any, params: Sequence[Any] | dict[str, Any] = ()) -> list[Any]:
        """Runs one read statement on the event store's pool; returns its rows as tuples."""
        return self.query_all([(statement, params)])[0]

    def execute(self, statement: Any, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Runs one writing statement in its own transaction; the rows it returns, if any."""
        with self.ledger_recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, params)
            return [tuple(row.values()) for row in curs.fetchall()] if curs.description else []

    def query_all(self, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
        """Runs read statements in one round trip (a pipeline); the rows of each, in order."""
        with self.ledger_recorder.datastore.get_connection() as conn:
            with conn.pipeline():
                cursors = [conn.execute(sql, params, prepare=True) for sql, params in statements]
            return [[tuple(row.values()) for row in cursor.fetchall()] for cursor in cursors]

    def newer_events(self, known: dict[UUID, Aggregate | None]) -> Statement:
        """The statement that reads the events appended since each aggregate's version."""
        ids = list(known)
        versions = [known[i].version if known[i] is not None else 0 for i in ids]  # type: ignore[union-attr]
        return self._select_newer, (ids, versions)

    def fast_forward(
        self, known: dict[UUID, Aggregate | None], rows: Iterable[tuple[Any, ...]]
    ) -> dict[UUID, Aggregate | None]:
        """Each aggregate of ``known`` with the newer events of ``rows`` applied."""
        result = dict(known)
        for originator_id, version, topic, state in rows:
            stored = StoredEvent(
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            event = self.mapper.to_domain_event(stored)
            result[originator_id] = event.mutate(result[originator_id])  # type: ignore[attr-defined]
        return result

    def catch_up(self, known: dict[UUID, Aggregate | None]) -> dict[UUID, Aggregate | None]:
        """Brings each aggregate up to date in one round trip; ``None`` loads from scratch.

        Returns every aggregate that exists, fast-forwarded through the events appended
        since its version; ids with no events stay ``None``.
        """
        if not known:
            return {}
        return self.fast_forward(known, self.query(*self.newer_events(known)))

    def load_all(self, ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        found = self.catch_up(dict.fromkeys(ids))
        return {i: a for i, a in found.items() if a is not None}
