"""The event store: eventsourcing's PostgreSQL recorder, with msgspec serialization and the
write-side indexes kept in the same transaction as the events.

- :class:`MsgspecMapper` stores each event's fields as JSON, typed by the event class's
  own annotations, so Structs, Decimals, dates and UUIDs come back as themselves. Fields
  marked personal (:data:`loyalty.domain.customer.PersonalProfile`) are sealed with the
  customer's own data key first, so that no personal value is ever stored in clear; once
  that key is destroyed (erasure) they come back empty.
- :class:`LedgerRecorder` writes, in the append transaction, the idempotency records of
  the movements being appended (``movement_keys=``), registers program, operator and
  API client streams, and bumps the program revision whenever a program stream (network, campaign,
  promotion, cluster) changes.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from functools import cache
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import get_topic, resolve_topic
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from loyalty.adapters.keystore import PersonalCipher
from loyalty.domain.customer import Personal

ORIGINATOR_FIELDS = frozenset({"originator_id", "originator_version"})
PROGRAM_KINDS = {
    "loyalty.domain.network:": "network",
    "loyalty.domain.campaign:": "campaign",
    "loyalty.domain.promotion:": "promotion",
    "loyalty.domain.cluster:": "cluster",
    "loyalty.domain.translations:": "translations",
}
REGISTERED_KINDS = {
    **PROGRAM_KINDS,
    "loyalty.domain.operator:": "operator",
    "loyalty.domain.apiclient:": "api_client",
    "loyalty.domain.prize:": "prize",
}
"""Streams listed in ``config_streams`` so that they can be found without scanning the log;
only program streams bump the program revision."""

_encoder = msgspec.json.Encoder()
PIPELINED_AT_MOST = 1_000
PIPELINED_BYTES_AT_MOST = 256 * 1024
"""Events (and bytes of them) an append sends in pipeline mode (one round trip); more go
statement by statement."""


class EventSchema(typing.NamedTuple):
    fields: tuple[str, ...]
    struct: type[msgspec.Struct]
    """The stored state's fields, typed."""
    decoder: msgspec.json.Decoder[Any]
    personal: dict[str, type]
    """The personal fields, stored sealed, and the type each opens to."""


@cache
def schema_of(event_class: type) -> EventSchema:
    """The stored fields of ``event_class`` and a decoder typed by its annotations (a
    personal field is stored as the bytes that seal it)."""
    hints = typing.get_type_hints(event_class, include_extras=True)
    fields = tuple(
        f.name for f in dataclasses.fields(event_class) if f.name not in ORIGINATOR_FIELDS
    )
    personal = {
        name: typing.get_args(hints[name])[0]
        for name in fields
        if typing.get_origin(hints[name]) is typing.Annotated
        and Personal in hints[name].__metadata__
    }
    struct = msgspec.defstruct(
        f"{event_class.__qualname__}State",
        [(name, bytes if name in personal else hints[name]) for name in fields],
        kw_only=True,
    )
    return EventSchema(fields, struct, msgspec.json.Decoder(struct), personal)


class MsgspecMapper(Mapper[UUID]):
    """Maps domain events to stored events with msgspec, typed by each event's class."""

    personal: PersonalCipher | None = None
    """Seals personal fields (set by the application that owns the key store)."""

    def cipher_of_personal(self) -> PersonalCipher:
        if self.personal is None:
            raise RuntimeError("personal fields need the key store: set MsgspecMapper.personal")
        return self.personal

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        for name in schema_of(type(domain_event)).personal:  # type: ignore[arg-type]
            state[name] = self.cipher_of_personal().seal(
                originator_id, name, _encoder.encode(state[name])
            )
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        data = _encoder.encode(state)
        if self.compressor:
            data = self.compressor.compress(data)
        if self.cipher:
            data = self.cipher.encrypt(data)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=data,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        data = stored_event.state
        if self.cipher:
            data = self.cipher.decrypt(data)
        if self.compressor:
            data = self.compressor.decompress(data)
        schema = schema_of(cls)
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state = upcast(cls, msgspec.json.decode(data), class_version)
            typed = msgspec.convert(state, schema.struct)
        else:
            typed = schema.decoder.decode(data)
        event_state = {name: getattr(typed, name) for name in schema.fields}
        for name, kind in schema.personal.items():
            clear = self.cipher_of_personal().open(
                UUID(str(stored_event.originator_id)), name, event_state[name]
            )
            event_state[name] = kind() if clear is None else msgspec.json.decode(clear, type=kind)
        event_state["originator_id"] = stored_event.originator_id
        event_state["originator_version"] = stored_event.originator_version
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event


def upcast(cls: type, state: dict[str, Any], class_version: int) -> dict[str, Any]:
    from_version = state.pop("class_version", 1)
    while from_version < class_version:
        getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
        from_version += 1
    return state


class MovementKey(msgspec.Struct, frozen=True, kw_only=True):
    """The idempotency record of one movement, written with its events."""

    source: str
    movement_id: str
    request_digest: bytes
    response: bytes
    account_id: UUID
    account_version: int


class LedgerRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: Any, *, events_table_name: str = "ledger_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.insert_columns_statement = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(schema, Identifier(self.events_table_name))
        self.insert_keys_statement = SQL(
            "INSERT INTO {}.movement_keys (source, movement_id, request_digest, response,"
            " account_id, account_version)"
            " SELECT * FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::bytea[],"
            " %b::uuid[], %b::bigint[])"
        ).format(schema)
        self.append_movements_statement = SQL(
            "SELECT * FROM {}.append_movements(%b, %b, %b, %b, %b, %b, %b, %b, %b, %b)"
        ).format(schema)
        self.bump_revision_statement = SQL(
            "UPDATE {}.config_revision SET revision = revision + 1"
        ).format(schema)
        self.register_streams_statement = SQL(
            "INSERT INTO {}.config_streams (originator_id, kind)"
            " SELECT * FROM unnest(%s::uuid[], %s::text[]) ON CONFLICT DO NOTHING"
        ).format(schema)

    def append_movements(
        self, stored_events: Sequence[StoredEvent], movement_keys: Sequence[MovementKey]
    ) -> list[int]:
        """Appends a group of movements' events with their idempotency rows, in one round
        trip (migration 0004); the notification ids. The table lock is the same one
        eventsourcing's own insert takes, so the two paths serialize with each other.

        Raises eventsourcing's ``IntegrityError`` when a version or a key is taken.
        """
        params = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
            [k.source for k in movement_keys],
            [k.movement_id for k in movement_keys],
            [k.request_digest for k in movement_keys],
            [k.response for k in movement_keys],
            [k.account_id for k in movement_keys],
            [k.account_version for k in movement_keys],
        )
        with self.datastore.get_connection() as conn:
            rows = conn.execute(self.append_movements_statement, params, prepare=True).fetchall()
        return [row["append_movements"] for row in rows]

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """As eventsourcing does, but a large append (a program issuing a million cards, an
        RFM run recording a million segment changes) goes without pipeline mode: sending a
        big statement while the server sends results back can block both ends for good
        (psycopg issue 685; seen from 55,000 cards, and with 100 events of 600 KB). Nor
        does it time out as idle in its transaction: encoding a million events' columns
        between two statements can take longer than the pool allows a transaction to idle
        (seen loading the 10M benchmark on a busy machine)."""
        size = sum(len(e.state) for e in stored_events)
        if len(stored_events) <= PIPELINED_AT_MOST and size <= PIPELINED_BYTES_AT_MOST:
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
            self._insert_events(curs, stored_events, **kwargs)
            self._insert_stored_events(curs, stored_events, **kwargs)
            return self._fetch_ids_after_insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        """As eventsourcing does (table lock, ``NOTIFY``, insert returning notification
        ids), but with one binary array per column instead of a text array of composites,
        which psycopg escapes value by value in Python (14% of a group's CPU, profiled)."""
        self._lock_table(curs)
        self._notify_channel(curs)
        columns = (
            [e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events],
        )
        curs.execute(self.insert_columns_statement, columns, prepare=True)

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        *,
        movement_keys: Sequence[MovementKey] = (),
        **kwargs: Any,
    ) -> None:
        super()._insert_events(curs, stored_events, **kwargs)
        if movement_keys:
            columns = list(zip(*(msgspec.structs.astuple(k) for k in movement_keys), strict=True))
            curs.execute(self.insert_keys_statement, [list(c) for c in columns], prepare=True)
        registered = [
            (e.originator_id, kind)
            for e in stored_events
            if (kind := stream_kind(e.topic)) is not None
        ]
        if registered:
            if any(kind in PROGRAM_KINDS.values() for _, kind in registered):
                curs.execute(self.bump_revision_statement)
            ids, kinds = zip(*registered, strict=True)
            curs.execute(self.register_streams_statement, [list(ids), list(kinds)])


def stream_kind(topic: str) -> str | None:
    """The registry kind of the stream an event of ``topic`` belongs to, if registered."""
    for prefix, kind in REGISTERED_KINDS.items():
        if topic.startswith(prefix):
            return kind
    return None
