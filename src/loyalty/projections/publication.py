"""Events out: every committed event published to NATS JetStream, for third parties and
outreach channel workers, in log order, once per message id.

A follower of the log like the read models (eventsourcing's runner, batches, a tracking
position), whose "storage" is the stream: a batch is published, acknowledged by
JetStream, then its position is committed. A crash between the two publishes the batch
again on restart, with the same message ids (position and digest, :func:`message_id`), which
JetStream drops within its duplicate window and consumers can recognise after it. Messages
are stored in log order, except after a batch that failed part-way (a message timed out
while later ones were stored): its retry stores the missing ones after the rest, so
consumers that need the log's order sort by ``position``.

A publication that fails (NATS unreachable, a message over the server's ``max_payload``)
stops only itself: ``loyalty projections run`` starts it again from its last committed
position while the read models go on.

A message is the stored event as it stands in the event store: personal fields encrypted
under the customer's data key, so the stream reveals no more than the store does, and
nothing of a customer whose key erasure destroyed. Subjects are
``<LOYALTY_NATS_SUBJECT>.<Aggregate>.<Event>``
(``loyalty.events.Account.MovementRecorded``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Self
from uuid import UUID

import msgspec
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg import Cursor
from psycopg.rows import DictRow

from loyalty.adapters.nats import EventStream, Message
from loyalty.projections.feed import Fact, StoredEventsMapper, StoredFact
from loyalty.projections.tables import TableModel, Tables
from loyalty.settings import Settings


class PublishedEvent(msgspec.Struct, frozen=True, kw_only=True):
    """A message's body: the event's place in the log, its stream and its stored state."""

    position: int
    originator_id: UUID
    originator_version: int
    topic: str
    state: msgspec.Raw
    """The event's JSON as stored (encrypted fields included)."""


_encoder = msgspec.json.Encoder()


def subject_of(prefix: str, topic: str) -> str:
    """The subject of events of ``topic``: ``<prefix>.Account.MovementRecorded`` for
    ``loyalty.domain.account:Account.MovementRecorded``."""
    return f"{prefix}.{topic.rpartition(':')[2]}"


def message_of(prefix: str, fact: Fact) -> Message:
    stored: StoredFact = fact.body
    body = PublishedEvent(
        position=stored.position,
        originator_id=fact.originator_id,
        originator_version=fact.originator_version,
        topic=stored.topic,
        state=msgspec.Raw(stored.state),
    )
    return Message(
        subject=subject_of(prefix, stored.topic),
        message_id=message_id(stored),
        payload=_encoder.encode(body),
    )


def message_id(stored: StoredFact) -> str:
    """The event's position and a digest of its bytes: the same event published again
    has the same id, and another event at a position reused (a database restored to an
    earlier point, then written on) has another."""
    return f"{stored.position}-{hashlib.blake2b(stored.state, digest_size=8).hexdigest()}"


class Publication(TableModel):
    """The stream of committed events; a rebuild publishes the whole log again (JetStream
    drops what it still remembers; consumers tell the rest by message id)."""

    name = "publication"
    mapper = StoredEventsMapper
    essential = False
    own_process = True

    def __init__(
        self, view: PostgresTrackingRecorder, tables: Tables, batch: int, stream: EventStream
    ) -> None:
        super().__init__(view, tables, batch)
        self.stream = stream

    @classmethod
    def open(cls, settings: Settings, generation: int, datastore: PostgresDatastore) -> Self:
        tables = Tables(settings.read_schema, cls.name, generation)
        view = PostgresTrackingRecorder(datastore, tracking_table_name=tables.tracking)
        stream = EventStream(settings.nats_url, settings.events_stream, settings.events_subject)
        return cls(view, tables, settings.projection_batch, stream)

    def apply(self, curs: Cursor[DictRow], facts: Sequence[Fact]) -> None:
        """Publishes the batch before its position commits with the transaction."""
        self.stream.publish([message_of(self.stream.subject, fact) for fact in facts])

    def close(self) -> None:
        self.stream.close()
