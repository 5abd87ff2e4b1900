"""The read side's view of the event log: what projections are fed.

Projections subscribe to the ledger through eventsourcing's own subscription machinery,
but decode each stored event with :class:`FactMapper` rather than the write side's mapper:
into a slim msgspec Struct holding only the fields read models use. Decoding skips the
rest of the event (the derivation's evidence, allocations, receipt texts), which is most of
its bytes, and never touches a personal field, so the read side needs no data key and can
reveal nobody: a projection cannot store what it never decodes.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import Mapper, Notification, StoredEvent

from loyalty.commands.ledger import ledger_env
from loyalty.domain.account import Account
from loyalty.domain.card import Card
from loyalty.domain.customer import Customer
from loyalty.domain.movement import MovementType, TransactionKind
from loyalty.domain.segmentation import RfmRun
from loyalty.settings import Settings


class Location(msgspec.Struct, frozen=True):
    path: tuple[str, ...]
    timezone: str


class Movement(msgspec.Struct, frozen=True):
    movement_id: str
    type: MovementType
    card: str
    occurred_at: datetime
    amount: Decimal
    location: Location | None = None


class Transaction(msgspec.Struct, frozen=True):
    kind: TransactionKind
    amount: Decimal
    promotion: str | None = None


class Derivation(msgspec.Struct, frozen=True):
    transactions: tuple[Transaction, ...]
    points_delta: int = 0
    credits_delta: Decimal = Decimal(0)
    local_date: date | None = None

    def points_moved(self) -> tuple[int, int]:
        """The points this movement credited and the points it debited."""
        return points_moved(self.transactions)


class Moved(typing.Protocol):
    """A transaction as a read model reads it: of what kind (as text), and how much."""

    @property
    def kind(self) -> str: ...

    @property
    def amount(self) -> Decimal: ...


def points_moved(transactions: Iterable[Moved]) -> tuple[int, int]:
    """The points ``transactions`` credited and the points they debited."""
    earned = spent = 0
    for transaction in transactions:
        if transaction.kind == TransactionKind.POINTS:
            points = int(transaction.amount)
            if points > 0:
                earned += points
            else:
                spent -= points
    return earned, spent


class MovementRecorded(msgspec.Struct, frozen=True):
    """``Account.MovementRecorded``: a movement on an account and what it derived."""

    movement: Movement
    derivation: Derivation
    points_after: int
    credits_after: Decimal
    timestamp: datetime


class AccountOpened(msgspec.Struct, frozen=True):
    campaign_id: UUID
    customer_id: UUID
    timestamp: datetime


class CardIssued(msgspec.Struct, frozen=True):
    code: str
    customer_id: UUID
    timestamp: datetime


class CardBlocked(msgspec.Struct, frozen=True):
    timestamp: datetime


class CardUnblocked(msgspec.Struct, frozen=True):
    timestamp: datetime


class CardReplaced(msgspec.Struct, frozen=True):
    successor: str
    timestamp: datetime


class CustomerRegistered(msgspec.Struct, frozen=True):
    """``Customer.Registered`` without its profile (personal, sealed)."""

    signed_up_on: date
    cards: tuple[str, ...]
    timestamp: datetime


class CustomerErased(msgspec.Struct, frozen=True):
    timestamp: datetime


class HomeStoreSet(msgspec.Struct, frozen=True):
    store: str
    timestamp: datetime


class SegmentSize(msgspec.Struct, frozen=True):
    segment: str
    customers: int


class RunParameters(msgspec.Struct, frozen=True):
    as_of: date
    scale: int


class RfmRunComputed(msgspec.Struct, frozen=True):
    """``RfmRun.Computed`` without its rules."""

    parameters: RunParameters
    position: int
    previous: UUID | None
    customers: int
    sizes: tuple[SegmentSize, ...]
    digest: str
    by: str
    timestamp: datetime


class SegmentChange(msgspec.Struct, frozen=True, array_like=True):
    customer_id: UUID
    before: str | None
    after: str | None


class SegmentsChanged(msgspec.Struct, frozen=True):
    changes: tuple[SegmentChange, ...]
    timestamp: datetime


def topic_of(event_class: type) -> str:
    return f"{event_class.__module__}:{event_class.__qualname__}"


CUSTOMER_FACTS: dict[str, type[Any]] = {
    topic_of(Account.MovementRecorded): MovementRecorded,
    topic_of(Account.Opened): AccountOpened,
    topic_of(Card.Issued): CardIssued,
    topic_of(Card.Blocked): CardBlocked,
    topic_of(Card.Unblocked): CardUnblocked,
    topic_of(Card.Replaced): CardReplaced,
    topic_of(Customer.Registered): CustomerRegistered,
    topic_of(Customer.Erased): CustomerErased,
    topic_of(Customer.HomeStoreSet): HomeStoreSet,
}
FACTS: dict[str, type[Any]] = {
    **CUSTOMER_FACTS,
    topic_of(RfmRun.Computed): RfmRunComputed,
    topic_of(RfmRun.SegmentsChanged): SegmentsChanged,
}
"""The events the read side decodes, by stored topic, and the slim Struct of each."""

_decoders = {topic: msgspec.json.Decoder(kind) for topic, kind in FACTS.items()}

CUSTOMER_TOPICS = tuple(CUSTOMER_FACTS)
"""Everything the read side knows of customers: their cards, accounts and movements."""


class Stamp(msgspec.Struct):
    timestamp: datetime


class RawMovementRecorded(typing.NamedTuple):
    """``Account.MovementRecorded`` as stored (JSON), for read models that extract what they
    need in the database: decoding every field in Python is most of a rebuild's cost."""

    state: bytes
    timestamp: datetime


_stamps = msgspec.json.Decoder(Stamp)
RAW_MOVEMENTS = topic_of(Account.MovementRecorded)


class Fact(typing.NamedTuple):
    """One stored event as projections see it."""

    originator_id: UUID
    originator_version: int
    body: Any
    """One of the Structs of :data:`FACTS`."""


class FactMapper(Mapper[UUID]):
    """Decodes stored events into :class:`Fact`; the read side never writes events."""

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        raise TypeError("the read side does not write events")

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        return fact_of(
            stored_event.originator_id,
            stored_event.originator_version,
            stored_event.topic,
            stored_event.state,
        )


def fact_of(originator_id: object, version: int, topic: str, state: bytes) -> Fact:
    """A stored event decoded into the slim Struct of its topic."""
    stream = originator_id if type(originator_id) is UUID else UUID(str(originator_id))
    return Fact(stream, version, body_of(topic, state))


def body_of(topic: str, state: bytes) -> Any:
    """A stored event's state decoded into the slim Struct of its topic."""
    decoder = _decoders.get(topic)
    if decoder is None:
        raise TypeError(f"projections do not decode {topic}")
    return decoder.decode(state)


class RawMovementsMapper(FactMapper):
    """As :class:`FactMapper`, but hands movements over as stored (only their time read)."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if stored_event.topic != RAW_MOVEMENTS:
            return super().to_domain_event(stored_event)
        state = stored_event.state
        return Fact(
            UUID(str(stored_event.originator_id)),
            stored_event.originator_version,
            RawMovementRecorded(state, _stamps.decode(state).timestamp),
        )


class StoredFact(typing.NamedTuple):
    """Any stored event, untouched, with its place in the log: what is published out."""

    position: int
    topic: str
    state: bytes
    timestamp: datetime


class StoredEventsMapper(FactMapper):
    """Hands every event over as stored (only its time read), whatever its topic."""

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        assert isinstance(stored_event, Notification), "events come from the log"
        state = stored_event.state
        return Fact(
            UUID(str(stored_event.originator_id)),
            stored_event.originator_version,
            StoredFact(stored_event.id, stored_event.topic, state, _stamps.decode(state).timestamp),
        )


class LedgerFeed(Application[UUID]):
    """The ledger's event log, read with :class:`FactMapper`.

    Named like the ledger (``Ledger``), so that tracking records name the sequence they
    follow. Constructed by eventsourcing's projection runner from :func:`feed_env`.
    """

    name = "Ledger"


def feed_env(settings: Settings, mapper: type[FactMapper] = FactMapper) -> dict[str, str]:
    """The environment of a :class:`LedgerFeed` whose events ``mapper`` reads."""
    return {
        **ledger_env(settings),
        "MAPPER_TOPIC": f"{mapper.__module__}:{mapper.__qualname__}",
        "POSTGRES_POOL_SIZE": "2",
    }
