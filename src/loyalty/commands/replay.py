"""Replaying the ledger: the rule engine run again over every recorded movement.

The log is walked in its global order, rebuilding every stream the engine reads (the
network, campaigns, promotions with their versions, clusters, cards, customers, accounts,
promotion budgets) exactly as it stood when each movement was recorded. Each movement is
derived again with :func:`loyalty.rules.engine.derive`, from the program and the state
that held then, and compared with what was stored, bit for bit: the input digest (the
same inputs were rebuilt), the derivation (transactions, evidence, receipt), and the
balance after it. Later movements build on the stored events, so one difference does not
cascade.

A replay covers the log up to its last event when it starts. The walk can be split by
account into parts replayed side by side in processes of their own: a movement reads its
own account and otherwise only streams every part reads in full (program, cards,
customers, budgets), so each part decides exactly as the whole walk would, and the parts'
reports add up to the report of one walk. Streams are decoded only when a movement reads
them, and a derivation that encodes to the stored bytes is the stored one: the stored
derivation is decoded only when it differs, or to read a return's original or an erased
customer's clusters from it.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import multiprocessing
import os
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any, cast
from uuid import UUID

import msgspec
from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier

from loyalty.adapters.eventstore import schema_of
from loyalty.commands.collector import collector_paused
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import context_for
from loyalty.commands.program import Program
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.campaign import CampaignView
from loyalty.domain.card import Card
from loyalty.domain.errors import LoyaltyError
from loyalty.domain.movement import REFERS_TO_ORIGINAL, Derivation, Movement
from loyalty.rules.engine import OriginalMovement, derive
from loyalty.settings import Settings

BATCH = 20_000
MAX_REPORTED = 100
PARALLEL_FROM = 50_000
"""Logs of fewer events replay in one process: starting others would cost more than it saves."""
MAX_WORKERS = 8
READ_TOPICS = tuple(
    f"loyalty.domain.{module}:"
    for module in (
        "network",
        "campaign",
        "promotion",
        "cluster",
        "card",
        "customer",
        "account",
        "budget",
    )
)
"""The streams the rule engine reads (directly or through the program)."""
PROGRAM_TOPICS = tuple(
    f"loyalty.domain.{module}:" for module in ("network", "campaign", "promotion", "cluster")
)
ACCOUNT_TOPICS = "loyalty.domain.account:"
RECORDED_TOPIC = get_topic(Account.MovementRecorded)

_encoder = msgspec.json.Encoder()
"""Encodes a derivation as the event store's mapper does."""
_canonical = msgspec.json.Encoder(order="deterministic")
_derivation_decoder = msgspec.json.Decoder(Derivation)


class Difference(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: int
    account_id: UUID
    movement_id: str
    what: str
    """``inputs``, ``derivation``, ``balance`` or ``refused``."""
    detail: str


class ReplayReport(msgspec.Struct, frozen=True, kw_only=True):
    identical: bool
    movements: int
    withheld: int
    """Movements of erased customers: checked with the clusters they were recorded in,
    since their personal facts can no longer be read (the input digest covers them)."""
    events: int
    differences: int
    first_differences: tuple[Difference, ...]
    seconds: float
    movements_per_second: float
    events_per_second: float


class Scope(msgspec.Struct, frozen=True, kw_only=True):
    """What one part of a replay covers: the log up to ``head``; the movements with
    ``occurred_at`` in [``start``, ``end``) of the accounts of part ``part`` of ``parts``."""

    start: datetime | None
    end: datetime | None
    head: int
    parts: int = 1
    part: int = 0


class PartReport(msgspec.Struct, frozen=True, kw_only=True):
    """What one part found; its events are its own accounts' (part 0: every other too)."""

    movements: int
    withheld: int
    events: int
    differences: int
    first_differences: tuple[Difference, ...]


class Streams(Mapping[UUID, Any]):
    """The aggregates the engine reads, each brought up to date only when read: until
    then a stream's events wait as stored, so that a part decodes only the cards,
    customers and budgets its own movements read.

    Streams are held by their id's ``int``, which names a UUID as the UUID does: a UUID
    hashes and compares in Python, an int in C (two lookups per read, three reads per
    movement)."""

    def __init__(self, mapper: Mapper[UUID]) -> None:
        self.mapper = mapper
        self.aggregates: dict[int, Any] = {}
        self.waiting: dict[int, list[StoredEvent]] = {}

    def append(self, stored_id: UUID, stored: StoredEvent) -> None:
        self.waiting.setdefault(stored_id.int, []).append(stored)

    def get(self, stream_id: UUID, default: Any = None) -> Any:
        """As ``Mapping.get``, without raising and catching ``KeyError`` for the streams
        that do not exist (a customer never registered, a budget never consumed)."""
        key = stream_id.int
        if key in self.waiting:
            self.fold(key)
        return self.aggregates.get(key, default)

    def __getitem__(self, stream_id: UUID) -> Any:
        key = stream_id.int
        if key in self.waiting:
            self.fold(key)
        try:
            return self.aggregates[key]
        except KeyError:
            raise KeyError(stream_id) from None

    def fold(self, key: int) -> None:
        """Applies the stream's waiting events to its aggregate."""
        aggregate = self.aggregates.get(key)
        for stored in self.waiting.pop(key):
            event = self.mapper.to_domain_event(stored)
            aggregate = event.mutate(aggregate)  # type: ignore[attr-defined]
        self.aggregates[key] = aggregate

    def __iter__(self) -> Iterator[UUID]:
        return (UUID(int=key) for key in self.aggregates.keys() | self.waiting.keys())

    def __len__(self) -> int:
        return len(self.aggregates.keys() | self.waiting.keys())


class RecordedMovement:
    """A stored ``Account.MovementRecorded`` whose derivation is kept as the stored bytes.

    Its fields are decoded as the mapper decodes them (plain JSON typed by the event's
    annotations: the event has no upcasters and holds no personal field), except the
    derivation, decoded only when read.
    """

    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(
        msgspec.defstruct(
            "RecordedWithStoredDerivation",
            [
                (f.name, msgspec.Raw if f.name == "derivation" else f.type)
                for f in msgspec.structs.fields(schema_of(Account.MovementRecorded).struct)
            ],
            kw_only=True,
        )
    )

    def __init__(self, notification_id: int, account_id: UUID, version: int, state: bytes) -> None:
        self.notification_id = notification_id
        self.account_id = account_id
        self.version = version
        self.fields = self.decoder.decode(state)
        self.movement: Movement = self.fields.movement
        self.points_after: int = self.fields.points_after
        self.credits_after: Decimal = self.fields.credits_after
        self.stored_bytes = bytes(self.fields.derivation)

    @cached_property
    def derivation(self) -> Derivation:
        return _derivation_decoder.decode(self.stored_bytes)

    def is_stored(self, derivation: Derivation) -> bool:
        """Whether ``derivation`` encodes to the stored bytes: then it is the stored
        derivation, bit for bit, and decodes from them to itself."""
        return _encoder.encode(derivation) == self.stored_bytes

    def apply_to(self, account: Account, derivation: Derivation) -> None:
        """Applies the stored event to ``account``, with ``derivation`` (the stored one) as
        its derivation."""
        account.apply_recorded(
            self.version,
            self.fields.timestamp,
            self.movement,
            derivation,
            self.points_after,
            self.credits_after,
        )


class Replay:
    """One walk of ``ledger``'s log for ``scope``: compares the movements in its interval
    of its accounts; every other event it reads only rebuilds state."""

    def __init__(self, ledger: Ledger, scope: Scope) -> None:
        self.ledger = ledger
        self.scope = scope
        self.streams = Streams(ledger.mapper)
        self.program = Program(revision=0)
        self.views: dict[int, CampaignView] = {}
        """The campaigns by their id's ``int`` (as :class:`Streams`)."""
        self.program_stale = False
        self.config: set[UUID] = set()
        self.differences: list[Difference] = []
        self.found = self.withheld = self.movements = self.events = 0
        self.erased: set[int] | None = None
        """The erased customers, by their id's ``int`` (as :class:`Streams`)."""
        self._rows = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state"
            " FROM {}.ledger_events WHERE notification_id > %s AND notification_id <= %s"
            " AND (NOT starts_with(topic, %s) OR get_byte(uuid_send(originator_id), 15) %% %s = %s)"
            " ORDER BY notification_id LIMIT %s"
        ).format(Identifier(ledger.settings.pg_schema))
        self._originals = SQL(
            "SELECT e.originator_id, e.originator_version, e.state FROM {}.ledger_events e"
            " JOIN unnest(%s::uuid[], %s::bigint[]) AS k(id, version)"
            " ON e.originator_id = k.id AND e.originator_version = k.version"
        ).format(Identifier(ledger.settings.pg_schema))
        self.originals: dict[tuple[UUID, int], RecordedMovement] = {}
        self.card_ids: dict[str, UUID] = {}

    def run(self) -> PartReport:
        for batch in self.batches():
            recorded = [
                RecordedMovement(notification_id, originator_id, version, state)
                if topic == RECORDED_TOPIC
                else None
                for notification_id, originator_id, version, topic, state in batch
            ]
            self.originals = self.originals_given_back(recorded)
            for (notification_id, originator_id, version, topic, state), movement in zip(
                batch, recorded, strict=True
            ):
                self.read(notification_id, originator_id, version, topic, state, movement)
        return PartReport(
            movements=self.movements,
            withheld=self.withheld,
            events=self.events,
            differences=self.found,
            first_differences=tuple(self.differences),
        )

    def originals_given_back(
        self, batch: list[RecordedMovement | None]
    ) -> dict[tuple[UUID, int], RecordedMovement]:
        """The movements that the returns and cancellations of ``batch`` gave back, read
        in one query, by account and version (one query per return was a sixth of a walk)."""
        wanted = {
            (r.account_id, r.derivation.return_of.account_version)
            for r in batch
            if r is not None
            and r.movement.type in REFERS_TO_ORIGINAL
            and r.derivation.return_of is not None
        }
        if not wanted:
            return {}
        accounts, versions = zip(*wanted, strict=True)
        with self.ledger.ledger_recorder.datastore.get_connection() as conn:
            cursor = conn.cursor(row_factory=tuple_row, binary=True)
            rows = cursor.execute(self._originals, (list(accounts), list(versions))).fetchall()
        return {
            (account_id, version): RecordedMovement(0, account_id, version, state)
            for account_id, version, state in rows
        }

    def batches(self) -> Iterator[list[tuple[Any, ...]]]:
        """The part's rows in the global order, a batch at a time (in binary: half the
        bytes of text, and no hex to decode)."""
        scope, after = self.scope, 0
        while True:
            params = (after, scope.head, ACCOUNT_TOPICS, scope.parts, scope.part, BATCH)
            with self.ledger.ledger_recorder.datastore.get_connection() as conn:
                cursor = conn.cursor(row_factory=tuple_row, binary=True)
                batch = cursor.execute(self._rows, params, prepare=True).fetchall()
            yield batch
            if len(batch) < BATCH:
                return
            after = batch[-1][0]

    def read(
        self,
        notification_id: int,
        originator_id: UUID,
        version: int,
        topic: str,
        state: bytes,
        recorded: RecordedMovement | None,
    ) -> None:
        """Checks a movement of the interval (``recorded``: decoded already); keeps any
        other event the engine reads."""
        if self.scope.part == 0 or topic.startswith(ACCOUNT_TOPICS):
            self.events += 1
        if recorded is not None:
            if self.in_range(recorded.movement):
                self.check(recorded)
                return
        elif not topic.startswith(READ_TOPICS):
            return
        self.streams.append(
            originator_id,
            StoredEvent(
                originator_id=originator_id, originator_version=version, topic=topic, state=state
            ),
        )
        if topic.startswith(PROGRAM_TOPICS):
            self.config.add(originator_id)
            self.program_stale = True

    def in_range(self, movement: Movement) -> bool:
        at, start, end = movement.occurred_at, self.scope.start, self.scope.end
        return (start is None or at >= start) and (end is None or at < end)

    def current_program(self) -> Program:
        if self.program_stale:
            self.program = Program.of(0, [self.streams[i] for i in self.config])
            self.views = {view.id.int: view for view in self.program.views}
            self.program_stale = False
        return self.program

    def check(self, recorded: RecordedMovement) -> None:
        """Derives the movement again and records any difference; then applies the stored
        event to the account, which later movements build on."""
        self.movements += 1
        account = cast(Account, self.streams[recorded.account_id])
        replayed = self.derive_again(recorded, account)
        stored = self.stored_derivation(recorded, replayed)
        if replayed is not None:
            self.check_balance(recorded, account, replayed)
        recorded.apply_to(account, stored)

    def stored_derivation(
        self, recorded: RecordedMovement, replayed: Derivation | None
    ) -> Derivation:
        """The stored derivation: ``replayed`` itself when it encodes to the stored bytes,
        else decoded from them (and how ``replayed`` differs from it is recorded)."""
        if replayed is None:
            return recorded.derivation
        if recorded.is_stored(replayed):
            return replayed
        self.compare(recorded, replayed)
        return recorded.derivation

    def check_balance(
        self, recorded: RecordedMovement, account: Account, replayed: Derivation
    ) -> None:
        points = account.points + replayed.points_delta
        credits = account.credits + replayed.credits_delta
        if (recorded.points_after, recorded.credits_after) != (points, credits):
            self.differ(recorded, "balance", f"{points} points instead of {recorded.points_after}")

    def derive_again(self, recorded: RecordedMovement, account: Account) -> Derivation | None:
        """The movement derived from the state it was decided on, or ``None`` when it
        could not be (the difference is recorded)."""
        movement = recorded.movement
        program = self.current_program()
        card = self.streams.get(self.card_id(movement.card))
        if not isinstance(card, Card):
            self.differ(recorded, "inputs", f"card {movement.card!r} did not exist")
            return None
        erased = self.is_erased(card.customer_id)
        try:
            original = self.original(account, recorded)
            context = context_for(
                program,
                self.views[account.campaign_id.int],
                movement,
                card,
                account,
                self.streams,
                original,
            )
            if erased:
                self.withheld += 1
                known = frozenset(ref.code for ref in recorded.derivation.clusters)
                context = dataclasses.replace(context, memberships=known)
            replayed = derive(movement, context)
        except LoyaltyError as error:
            self.differ(recorded, "refused", f"{error.code}: {error.message}")
            return None
        if erased:
            replayed = msgspec.structs.replace(
                replayed, input_digest=recorded.derivation.input_digest
            )
        return replayed

    def card_id(self, code: str) -> UUID:
        """The id of the card of ``code``, worked out once per card of the part (the write
        path's memo holds a quarter of a million; a part of the synthetic 10M log reads
        twice as many, so that there half the reads missed it and hashed again)."""
        card_id = self.card_ids.get(code)
        if card_id is None:
            card_id = self.card_ids[code] = ids.card_id(code)
        return card_id

    def compare(self, recorded: RecordedMovement, replayed: Derivation) -> None:
        """Records how a derivation whose bytes are not the stored ones differs from the
        stored one: both encoded afresh, so that stored bytes encoded otherwise but equal
        in every value (an event written before a field was added) are no difference."""
        stored = recorded.derivation
        if replayed.input_digest != stored.input_digest:
            detail = f"digest {replayed.input_digest} instead of {stored.input_digest}"
            self.differ(recorded, "inputs", detail)
        elif (encoded := _canonical.encode(replayed)) != _canonical.encode(stored):
            self.differ(recorded, "derivation", encoded.decode())

    def differ(self, recorded: RecordedMovement, what: str, detail: str) -> None:
        self.found += 1
        if len(self.differences) < MAX_REPORTED:
            self.differences.append(
                Difference(
                    notification_id=recorded.notification_id,
                    account_id=recorded.account_id,
                    movement_id=recorded.movement.movement_id,
                    what=what,
                    detail=detail,
                )
            )

    def is_erased(self, customer_id: UUID) -> bool:
        """Whether the customer's data key was destroyed (their facts no longer open)."""
        if self.erased is None:
            self.erased = {erased.int for erased in self.ledger.keys.destroyed()}
        return customer_id.int in self.erased

    def original(self, account: Account, recorded: RecordedMovement) -> OriginalMovement | None:
        """The movement a return or cancellation gave back, as the writer read it."""
        if recorded.movement.type not in REFERS_TO_ORIGINAL:
            return None
        given_back = recorded.derivation.return_of
        if given_back is None:
            return None
        version = given_back.account_version
        stored = self.originals[(account.id, version)]
        return OriginalMovement(
            source=given_back.terminal,
            movement=stored.movement,
            derivation=stored.derivation,
            account_version=version,
            returned_before=account.returned.get((given_back.terminal, given_back.movement_id), ()),
        )


def replay(
    ledger: Ledger,
    start: datetime | None = None,
    end: datetime | None = None,
    workers: int | None = None,
) -> ReplayReport:
    """Replays the log as it stands when called (up to its last event).

    Args:
        start: compare the movements that occurred at or after it (all when not given);
            the earlier ones only rebuild state.
        end: compare the movements that occurred before it.
        workers: the processes that replay accounts side by side, this one included. By
            default one per CPU core (at most :data:`MAX_WORKERS`) on a log of
            :data:`PARALLEL_FROM` events or more, else 1. The report does not depend on it
            (but for its timing).
    """
    started = time.perf_counter()
    head = last_notification_id(ledger)
    parts = workers or default_workers(head)
    reports = replay_parts(ledger, Scope(start=start, end=end, head=head, parts=parts))
    return merged(reports, time.perf_counter() - started)


def last_notification_id(ledger: Ledger) -> int:
    """The notification id of the last event of the log (0 when it is empty)."""
    schema = Identifier(ledger.settings.pg_schema)
    query = SQL("SELECT coalesce(max(notification_id), 0) FROM {}.ledger_events").format(schema)
    ((head,),) = ledger.query(query)
    return int(head)


def default_workers(head: int) -> int:
    return 1 if head < PARALLEL_FROM else min(os.cpu_count() or 1, MAX_WORKERS)


def replay_parts(ledger: Ledger, scope: Scope) -> list[PartReport]:
    """The report of each part: part 0 replayed here (without the cyclic garbage collector,
    as :func:`replay_part`), the others each in a new process, spawned rather than forked
    since this one may hold connections and threads (so the program's main module must
    import without side effects, as ``loyalty``'s does)."""
    if scope.parts == 1:
        with collector_paused():
            return [Replay(ledger, scope).run()]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(scope.parts - 1, mp_context=context) as pool:
        others = [
            pool.submit(replay_part, ledger.settings, msgspec.structs.replace(scope, part=part))
            for part in range(1, scope.parts)
        ]
        with collector_paused():
            own = Replay(ledger, scope).run()
        return [own, *(other.result() for other in others)]


def replay_part(settings: Settings, scope: Scope) -> PartReport:
    """One part, in a process of its own with its own connections, and without the cyclic
    garbage collector: a replay makes next to none (about a hundred objects in a part of
    67,000 events), while the collector's passes over its growing heap cost it 3-4%."""
    ledger = Ledger(msgspec.structs.replace(settings, pg_pool_size=1))
    try:
        with collector_paused():
            return Replay(ledger, scope).run()
    finally:
        ledger.close()


def merged(reports: list[PartReport], seconds: float) -> ReplayReport:
    """One report of the parts' reports, as one walk would have made it."""
    movements = sum(r.movements for r in reports)
    events = sum(r.events for r in reports)
    found = sum(r.differences for r in reports)
    first = heapq.merge(*(r.first_differences for r in reports), key=lambda d: d.notification_id)
    return ReplayReport(
        identical=not found,
        movements=movements,
        withheld=sum(r.withheld for r in reports),
        events=events,
        differences=found,
        first_differences=tuple(itertools.islice(first, MAX_REPORTED)),
        seconds=round(seconds, 3),
        movements_per_second=round(movements / seconds, 1) if seconds else 0.0,
        events_per_second=round(events / seconds, 1) if seconds else 0.0,
    )
